/*
 * reply - reading the LLM's answers (SPEC §7 steps 3 and 6).
 *
 * A reply is parsed as JSON, else from a fenced code block, else from the
 * first balanced {…} object in the text. The analysis falls back to the
 * whole text when no object is found; the rewrite is validated strictly and
 * every problem is named, so a repair turn can ask for all fixes at once.
 * Stateless.
 */
#ifndef REFOLD_IMPROVE_REPLY_H
#define REFOLD_IMPROVE_REPLY_H

#include <jansson.h>
#include <stdbool.h>

/* The JSON object in text, or NULL (caller owns). */
json_t *reply_extract_object(const char *text);

struct analysis {
    json_t *failure_patterns; /* array of strings (owned) */
    char *summary;
    bool from_json;           /* false: the plain-text fallback */
    bool cut_off;             /* the complete patterns of a reply cut at max_tokens */
    const char *problem;      /* why the reply cannot be used (static), NULL when it can */
};

/* Read the failure analysis: its JSON object; else, for a reply cut off at the output
 * token limit (stop_reason "max_tokens") inside its failure_patterns, the entries written
 * whole (cut_off, an empty summary); else the whole text as the one pattern and the
 * summary. Entries of failure_patterns that are objects or arrays are kept as their
 * compact JSON text; empty strings and other scalars are dropped. stop_reason is the
 * normalised one. False when there is nothing to use (out->problem says why; out is
 * filled all the same and must be released): an empty reply, or one that ended before
 * its JSON object was complete, with no whole pattern - cut off at the output token
 * limit, or stopped by the provider (stop_reason "other": a refusal, a content filter). */
bool reply_analysis(const char *text, const char *stop_reason, struct analysis *out);
void reply_analysis_release(struct analysis *a);

struct rewrite {
    json_t *obj;           /* the reply object (owned), NULL when none was found */
    const char *improved_prompt; /* borrowed from obj when valid */
    const json_t *changes;
    const char *reasoning;
    json_t *reasons;       /* array of strings: every problem found (owned) */
};

/* Validate a rewrite reply against the variables the prompt must keep and the current
 * prompt, whose template tags (template.h) it must keep too: the same ones as many times,
 * and nested when the current prompt's are. stop_reason is the normalised one
 * ("max_tokens" means cut off). True when the reply can be stored; otherwise out->reasons
 * names every problem. */
bool reply_rewrite(const char *text, const char *stop_reason, const json_t *variables,
                   const char *current_prompt, struct rewrite *out);
void reply_rewrite_release(struct rewrite *r);

#endif
