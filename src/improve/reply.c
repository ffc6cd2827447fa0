/*
 * reply - see reply.h.
 */
#include "improve/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/template.h"
#include "core/utf8.h"
#include "core/xalloc.h"
#include "core/banned.h"

static json_t *parse_object(const char *s, size_t len)
{
    json_t *v = json_loadb(s, len, 0, NULL);
    if (json_is_object(v))
        return v;
    json_decref(v);
    return NULL;
}

/* The first balanced {...} starting at or after p that parses as an object. */
static json_t *balanced(const char *p)
{
    for (const char *start = strchr(p, '{'); start; start = strchr(start + 1, '{')) {
        int depth = 0;
        bool in_str = false, esc = false;
        for (const char *q = start; *q; q++) {
            char c = *q;
            if (in_str) {
                if (esc)
                    esc = false;
                else if (c == '\\')
                    esc = true;
                else if (c == '"')
                    in_str = false;
                continue;
            }
            if (c == '"')
                in_str = true;
            else if (c == '{')
                depth++;
            else if (c == '}' && --depth == 0) {
                json_t *v = parse_object(start, (size_t)(q - start + 1));
                if (v)
                    return v;
                break;
            }
        }
    }
    return NULL;
}

json_t *reply_extract_object(const char *text)
{
    if (!text)
        return NULL;
    json_t *v = parse_object(text, strlen(text));
    if (v)
        return v;
    /* Fenced code blocks: ```json ... ``` or ``` ... ```. */
    for (const char *f = strstr(text, "```"); f; f = strstr(f, "```")) {
        const char *body = strchr(f + 3, '\n');
        if (!body)
            break;
        body++;
        const char *end = strstr(body, "```");
        if (!end)
            break;
        v = parse_object(body, (size_t)(end - body));
        if (v)
            return v;
        f = end + 3;
    }
    return balanced(text);
}

static char *trimmed(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    return xstrndup(s, n);
}

/* A failure pattern as the model gave it: a non-empty string, or its own structure
 * ({"pattern": …, "evidence": …}) kept as compact JSON; anything else is dropped. */
static void add_pattern(json_t *patterns, json_t *p)
{
    if (json_is_string(p) && json_string_length(p) > 0) {
        json_array_append(patterns, p);
    } else if ((json_is_object(p) && json_object_size(p) > 0) ||
               (json_is_array(p) && json_array_size(p) > 0)) {
        char *s = jx_dump(p);
        json_array_append_new(patterns, json_string(s));
        free(s);
    }
}

/* The complete entries of the failure_patterns array in a reply cut off before its end:
 * each entry is decoded on its own (jansson stops after one value and says how far it
 * read) until the one the cut went through. NULL when not one entry is complete. */
static json_t *salvaged_patterns(const char *text)
{
    const char *p = text ? strstr(text, "\"failure_patterns\"") : NULL;
    if (!p)
        return NULL;
    p += strlen("\"failure_patterns\"");
    p += strspn(p, " \t\r\n");
    if (*p++ != ':')
        return NULL;
    p += strspn(p, " \t\r\n");
    if (*p++ != '[')
        return NULL;
    const char *end = p + strlen(p);
    json_t *patterns = json_array();
    for (;;) {
        p += strspn(p, " \t\r\n");
        json_error_t jerr;
        json_t *v = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
        if (!v)
            break;
        add_pattern(patterns, v);
        json_decref(v);
        p += jerr.position;
        p += strspn(p, " \t\r\n");
        if (*p++ != ',')
            break;
    }
    if (json_array_size(patterns) == 0) {
        json_decref(patterns);
        return NULL;
    }
    return patterns;
}

bool reply_analysis(const char *text, const char *stop_reason, struct analysis *out)
{
    memset(out, 0, sizeof *out);
    json_t *obj = reply_extract_object(text);
    json_t *patterns = json_object_get(obj, "failure_patterns");
    const char *summary = json_string_value(json_object_get(obj, "summary"));
    if (json_is_array(patterns)) {
        out->failure_patterns = json_array();
        size_t i;
        json_t *p;
        json_array_foreach(patterns, i, p)
            add_pattern(out->failure_patterns, p);
        if (json_array_size(out->failure_patterns) > 0 || summary) {
            out->summary = summary ? xstrdup(summary) : xstrdup("");
            out->from_json = true;
            json_decref(obj);
            return true;
        }
        json_decref(out->failure_patterns);
    }
    json_decref(obj);
    /* Cut off at the output token limit inside the JSON we asked for: the patterns that
     * were written whole are the analysis (the summary, written after them, is lost). */
    if (stop_reason && strcmp(stop_reason, "max_tokens") == 0 &&
        (out->failure_patterns = salvaged_patterns(text)) != NULL) {
        out->summary = xstrdup("");
        out->from_json = true;
        out->cut_off = true;
        return true;
    }
    /* Not the JSON we asked for: the whole text is both the pattern and the summary. */
    char *t = trimmed(text ? text : "");
    out->failure_patterns = json_array();
    if (*t)
        json_array_append_new(out->failure_patterns, json_string(t));
    out->summary = t;
    out->from_json = false;
    if (!*t)
        out->problem = "the reply is empty";
    else if (stop_reason && strcmp(stop_reason, "max_tokens") == 0)
        out->problem = "the reply was cut off at the output token limit (stop_reason "
                       "max_tokens) before its JSON was complete";
    else if (stop_reason && strcmp(stop_reason, "other") == 0)
        out->problem = "the provider ended the reply before its JSON was complete, not at the "
                       "end of an answer (a refusal or a content filter)";
    return out->problem == NULL;
}

void reply_analysis_release(struct analysis *a)
{
    json_decref(a->failure_patterns);
    free(a->summary);
    a->failure_patterns = NULL;
    a->summary = NULL;
}

static void reason(json_t *reasons, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reason(json_t *reasons, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_scrub(msg); /* the cut may end inside a character; json_string needs UTF-8 */
    json_array_append_new(reasons, json_string(msg));
}

static const char *string_field(const json_t *obj, const char *key, json_t *reasons)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        reason(reasons, "the field \"%s\" is missing", key);
    else if (!json_is_string(v))
        reason(reasons, "the field \"%s\" must be a string", key);
    else if (json_string_length(v) == 0)
        reason(reasons, "the field \"%s\" is empty", key);
    else
        return json_string_value(v);
    return NULL;
}

/* Tags as "{{/if}} (2 times), {{#each x}}": the distinct ones in order, with their
 * count; after REASON_TAGS of them, how many more. */
#define REASON_TAGS 10
static void put_tags(struct buf *b, const json_t *tags)
{
    json_t *counts = template_tags_counted(tags);
    size_t i = 0;
    const char *t;
    json_t *n;
    json_object_foreach(counts, t, n)
    {
        if (i == REASON_TAGS) {
            buf_printf(b, " and %zu more", json_object_size(counts) - i);
            break;
        }
        buf_printf(b, "%s%s", i++ ? ", " : "", t);
        if (json_integer_value(n) > 1)
            buf_printf(b, " (%lld times)", (long long)json_integer_value(n));
    }
    json_decref(counts);
}

/* The template tags (template.h) a rewrite must keep: the same multiset as the current
 * prompt's, nested as well as they were. An addition to SPEC §7 step 6: a tag lost or
 * moved out of its block breaks the team's template engine, not only the prompt. */
static void check_tags(const char *prompt, const char *current_prompt, json_t *reasons)
{
    json_t *want = template_tags(current_prompt), *got = template_tags(prompt);
    json_t *lost = template_tags_missing(want, got), *added = template_tags_missing(got, want);
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    if (json_array_size(lost)) {
        buf_puts(&b, "improved_prompt lost the template tags ");
        put_tags(&b, lost);
        buf_puts(&b, ": keep every one, as many times as the current prompt has it");
        json_array_append_new(reasons, json_string(buf_str(&b)));
    }
    if (json_array_size(added)) {
        buf_reset(&b);
        buf_puts(&b, "improved_prompt adds template tags that the current prompt does not have: ");
        put_tags(&b, added);
        json_array_append_new(reasons, json_string(buf_str(&b)));
    }
    char why[512];
    if (!json_array_size(lost) && !json_array_size(added) &&
        template_tags_nested(want, why, sizeof why) &&
        !template_tags_nested(got, why, sizeof why)) {
        utf8_scrub(why); /* a long tag cut in the middle of a character */
        buf_reset(&b);
        buf_printf(&b,
                   "improved_prompt breaks the nesting of its template tags (%s): open and "
                   "close every block in the order the current prompt does",
                   why);
        json_array_append_new(reasons, json_string(buf_str(&b)));
    }
    buf_release(&b);
    json_decref(want);
    json_decref(got);
    json_decref(lost);
    json_decref(added);
}

bool reply_rewrite(const char *text, const char *stop_reason, const json_t *variables,
                   const char *current_prompt, struct rewrite *out)
{
    memset(out, 0, sizeof *out);
    out->reasons = json_array();
    if (stop_reason && strcmp(stop_reason, "max_tokens") == 0)
        reason(out->reasons, "the reply was cut off at the output token limit "
                             "(stop_reason max_tokens); answer more briefly");
    out->obj = reply_extract_object(text);
    if (!out->obj) {
        reason(out->reasons, "the reply does not contain a JSON object");
        return false;
    }
    const char *prompt = string_field(out->obj, "improved_prompt", out->reasons);
    const char *reasoning = string_field(out->obj, "reasoning", out->reasons);
    const json_t *changes = json_object_get(out->obj, "changes");
    if (!changes) {
        reason(out->reasons, "the field \"changes\" is missing");
    } else if (!json_is_array(changes)) {
        reason(out->reasons, "the field \"changes\" must be an array of strings");
    } else if (json_array_size(changes) == 0) {
        reason(out->reasons, "the field \"changes\" is empty");
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(changes, i, c)
        {
            if (!json_is_string(c) || json_string_length(c) == 0) {
                reason(out->reasons, "every entry of \"changes\" must be a non-empty string");
                break;
            }
        }
    }
    if (prompt) {
        json_t *found = template_variables(prompt);
        json_t *missing = template_missing(variables, found);
        json_t *extra = template_missing(found, variables);
        if (json_array_size(missing)) {
            char *s = template_braced(missing);
            reason(out->reasons, "improved_prompt lost the template variables %s: keep every one",
                   s);
            free(s);
        }
        if (json_array_size(extra)) {
            char *s = template_braced(extra);
            reason(out->reasons, "improved_prompt adds template variables that do not exist: %s",
                   s);
            free(s);
        }
        json_decref(found);
        json_decref(missing);
        json_decref(extra);
        check_tags(prompt, current_prompt, out->reasons);
        if (strlen(prompt) > TEMPLATE_MAX_BYTES)
            reason(out->reasons,
                   "improved_prompt is longer than %d bytes, the limit of a prompt template",
                   TEMPLATE_MAX_BYTES);
        char *a = trimmed(prompt), *b = trimmed(current_prompt ? current_prompt : "");
        if (strcmp(a, b) == 0)
            reason(out->reasons, "improved_prompt is identical to the current prompt");
        free(a);
        free(b);
    }
    if (json_array_size(out->reasons) > 0)
        return false;
    out->improved_prompt = prompt;
    out->changes = changes;
    out->reasoning = reasoning;
    return true;
}

void reply_rewrite_release(struct rewrite *r)
{
    json_decref(r->obj);
    json_decref(r->reasons);
    memset(r, 0, sizeof *r);
}
