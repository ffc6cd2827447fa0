/*
 * evidence - turns contradictions into the evidence sections of the failure
 * analysis request (SPEC §7 step 3), within a budget and behind fences.
 *
 * Budget: the trace text of all examples together (inputs, outputs, human
 * notes, eval reasons) never exceeds `budget` characters, whatever the traces
 * weigh. Each example gets budget / n; a field shorter than its share gives
 * the rest to the others; long fields keep their head and tail around a
 * "[… N characters omitted …]" marker.
 *
 * Fences: trace text is untrusted data. Every piece is wrapped in
 * <FENCE>…</FENCE> where FENCE is "trace-data-" plus a random nonce chosen per
 * request, so text cannot close its fence without guessing the nonce; any
 * "trace-data" tag-like sequence inside the text is defused as well.
 */
#ifndef REFOLD_IMPROVE_EVIDENCE_H
#define REFOLD_IMPROVE_EVIDENCE_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

#define EVIDENCE_DEFAULT_BUDGET 24000
#define FENCE_MAX 48

/* A new fence name ("trace-data-" + 16 hex characters) into out (FENCE_MAX bytes). */
void evidence_fence(char *out);

struct evidence {
    char *missed_failures; /* Markdown sections; "(none)" when there are none */
    char *false_alarms;
    int missed_count, false_alarm_count;
    size_t trace_chars; /* characters of trace text included (<= budget) */
    /* while building */
    struct buf sec[2]; /* missed failures, false alarms */
    size_t n, added, left;
    char fence[FENCE_MAX];
};

/* Build the sections one contradiction (an object of store_contradictions) at a time, so
 * that a caller loads each one's trace text only for its turn (the job: one trace in
 * memory, not all n): n is how many evidence_add will be given, each with its trace's
 * input and output (NULL: empty); evidence_end fills the sections. */
void evidence_begin(struct evidence *ev, size_t n, size_t budget, const char *fence);
void evidence_add(struct evidence *ev, const json_t *contradiction, const char *input,
                  const char *output);
void evidence_end(struct evidence *ev);
void evidence_release(struct evidence *ev);

/* Cut text to at most max characters (UTF-8 aware), keeping head and tail around an
 * omission marker. Caller frees. Exposed for tests. */
char *evidence_cut(const char *text, size_t max);
/* Copy of text with every "<fence"/"</fence" look-alike defused. Caller frees. */
char *evidence_defuse(const char *text);

#endif
