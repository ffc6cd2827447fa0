/*
 * template - see template.h. A linear scan. Names are kept in a JSON object used
 * as a hash set while they are collected and compared: a client's template (256 KiB)
 * can hold some 27,000 distinct names and its "variables" array (8 MiB) ten times as
 * many, and a search of the list for each name took seconds to hours of an HTTP
 * thread. Tags may be many (a long template full of sections): they are counted in a
 * JSON object used as a hash map, and a search for a tag's closing delimiter
 * stops at the next brace (one-line tags) or the next opener of its kind, so
 * no text is searched twice by tags of one kind.
 */
#include "core/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/banned.h"

static bool is_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_rest(char c)
{
    return is_start(c) || (c >= '0' && c <= '9') || c == '.';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Add the name [name, name + len) to set (a JSON object whose keys are the names): true
 * when it was not there yet. The set is never dumped, so its keys need no UTF-8 check. */
static bool set_add(json_t *set, const char *name, size_t len)
{
    if (json_object_getn(set, name, len))
        return false;
    json_object_setn_new_nocheck(set, name, len, json_true());
    return true;
}

json_t *template_variables(const char *tmpl)
{
    json_t *out = json_array(), *seen = json_object();
    const char *p = tmpl ? tmpl : "";
    while ((p = strstr(p, "{{")) != NULL) {
        const char *q = p + 2;
        while (is_space(*q))
            q++;
        const char *name = q;
        if (!is_start(*q)) {
            p += 1;
            continue;
        }
        while (is_rest(*q))
            q++;
        size_t len = (size_t)(q - name);
        while (is_space(*q))
            q++;
        if (q[0] == '}' && q[1] == '}') {
            if (set_add(seen, name, len))
                json_array_append_new(out, json_stringn(name, len));
            p = q + 2;
        } else {
            p += 1;
        }
    }
    json_decref(seen);
    return out;
}

json_t *template_missing(const json_t *a, const json_t *b)
{
    json_t *out = json_array(), *in_b = json_object(), *seen = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(b, i, v)
    {
        const char *s = json_string_value(v);
        if (s)
            set_add(in_b, s, strlen(s));
    }
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        size_t len = s ? strlen(s) : 0;
        if (s && !json_object_getn(in_b, s, len) && set_add(seen, s, len))
            json_array_append_new(out, json_stringn(s, len));
    }
    json_decref(in_b);
    json_decref(seen);
    return out;
}

bool template_same_set(const json_t *a, const json_t *b)
{
    json_t *x = template_missing(a, b), *y = template_missing(b, a);
    bool same = json_array_size(x) == 0 && json_array_size(y) == 0;
    json_decref(x);
    json_decref(y);
    return same;
}

char *template_braced(const json_t *names)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    buf_printf(&b, "%s{{%s}}", i ? ", " : "", json_string_value(n));
    return buf_detach(&b, NULL);
}

/* ---- tags ---- */

/* [s, s + n) with its whitespace runs made one space and none at either end. */
static void put_collapsed(struct buf *b, const char *s, size_t n)
{
    const char *end = s + n;
    while (s < end && is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    bool gap = false;
    for (; s < end; s++) {
        if (is_space(*s)) {
            gap = true;
            continue;
        }
        if (gap)
            buf_putc(b, ' ');
        gap = false;
        buf_putc(b, *s);
    }
}

/* The first `close` at or after p; NULL when the text ends first, or a `stop` opener
 * comes first, or (one_line) a newline or a brace that does not start `close`. */
static const char *find_close(const char *p, const char *close, const char *stop, bool one_line)
{
    size_t cl = strlen(close), sl = stop ? strlen(stop) : 0;
    for (; *p; p++) {
        if (strncmp(p, close, cl) == 0)
            return p;
        if (one_line && (*p == '\n' || *p == '\r' || *p == '{' || *p == '}'))
            return NULL;
        if (stop && strncmp(p, stop, sl) == 0)
            return NULL;
    }
    return NULL;
}

/* The trailing whitespace-control mark of a tag's body [s, *end) ('~', '-', '+' as
 * allowed), removed from it; 0 when there is none. */
static char trailing_mark(const char *s, const char **end, const char *marks)
{
    const char *e = *end;
    while (e > s && is_space(e[-1]))
        e--;
    if (e > s && strchr(marks, e[-1])) {
        *end = e - 1;
        return e[-1];
    }
    return 0;
}

/* A plain variable's inside: optional whitespace, a name, optional whitespace. */
static bool plain_name(const char *s, const char *end)
{
    while (s < end && is_space(*s))
        s++;
    if (s == end || !is_start(*s))
        return false;
    while (s < end && is_rest(*s))
        s++;
    while (s < end && is_space(*s))
        s++;
    return s == end;
}

/* `{{{…}}}` at p: its length, its normalised text in norm; 0 when it is not one. */
static size_t triple_tag(const char *p, struct buf *norm)
{
    const char *s = p + 3, *end = find_close(s, "}}}", NULL, true);
    if (!end)
        return 0;
    while (s < end && is_space(*s))
        s++;
    if (s == end)
        return 0;
    buf_puts(norm, "{{{");
    put_collapsed(norm, s, (size_t)(end - s));
    buf_puts(norm, "}}}");
    return (size_t)(end + 3 - p);
}

/* `{{…}}` at p (see template.h). */
static size_t mustache_tag(const char *p, struct buf *norm)
{
    const char *q = p + 2;
    char lead = (*q == '~' || *q == '-') ? *q++ : 0;
    while (is_space(*q))
        q++;
    char sigil = 0;
    const char *body, *end, *after;
    if (*q == '!') {
        sigil = '!';
        body = q + 1;
        if (q[1] == '-' && q[2] == '-') {
            end = find_close(q + 3, "--}}", "{{!--", false);
            if (end)
                end += 2; /* the body keeps its dashes: "{{!-- x --}}" */
        } else {
            end = find_close(q + 1, "}}", "{{", false);
        }
    } else if (*q && strchr("#/^>&=", *q)) {
        sigil = *q;
        body = q + 1;
        end = find_close(body, "}}", NULL, true);
    } else if (is_start(*q) || *q == '@' || *q == '.') {
        body = q;
        end = find_close(body, "}}", NULL, true);
    } else {
        return 0;
    }
    if (!end)
        return 0;
    after = end + 2;
    /* A comment's dashes are its own; elsewhere a mark before `}}` controls whitespace. */
    char trail = sigil == '!' ? 0 : trailing_mark(body, &end, lead == '-' ? "-" : "~-");
    if (!sigil && !lead && !trail && plain_name(body, end))
        return 0; /* a variable */
    buf_puts(norm, "{{");
    if (lead)
        buf_printf(norm, lead == '-' ? "%c " : "%c", lead);
    if (sigil)
        buf_putc(norm, sigil);
    put_collapsed(norm, body, (size_t)(end - body));
    if (trail)
        buf_printf(norm, trail == '-' ? " %c" : "%c", trail);
    buf_puts(norm, "}}");
    return (size_t)(after - p);
}

/* `{%…%}` or `{#…#}` at p. */
static size_t jinja_tag(const char *p, struct buf *norm)
{
    char kind = p[1];
    char open[3] = {'{', kind, '\0'}, close[3] = {kind, '}', '\0'};
    const char *q = p + 2;
    char lead = (*q == '-' || *q == '+') ? *q++ : 0;
    const char *end = find_close(q, close, open, false);
    if (!end)
        return 0;
    const char *after = end + 2;
    char trail = trailing_mark(q, &end, "-+");
    const char *s = q;
    while (s < end && is_space(*s))
        s++;
    if (s == end)
        return 0;
    buf_puts(norm, open);
    if (lead)
        buf_putc(norm, lead);
    buf_putc(norm, ' ');
    put_collapsed(norm, s, (size_t)(end - s));
    buf_putc(norm, ' ');
    if (trail)
        buf_putc(norm, trail);
    buf_puts(norm, close);
    return (size_t)(after - p);
}

json_t *template_tags(const char *tmpl)
{
    json_t *out = json_array();
    struct buf norm;
    buf_init(&norm, BUF_UNLIMITED);
    const char *p = strchr(tmpl ? tmpl : "", '{');
    while (p) {
        size_t n = 0;
        buf_reset(&norm);
        if (p[1] == '{') {
            if (p[2] == '{')
                n = triple_tag(p, &norm);
            if (!n) {
                buf_reset(&norm);
                n = mustache_tag(p, &norm);
            }
        } else if (p[1] == '%' || p[1] == '#') {
            n = jinja_tag(p, &norm);
        }
        if (n)
            json_array_append_new(out, json_string(buf_str(&norm)));
        p = strchr(p + (n ? n : 1), '{');
    }
    buf_release(&norm);
    return out;
}

static json_int_t count_of(const json_t *counts, const char *tag)
{
    return json_integer_value(json_object_get(counts, tag));
}

static void count_up(json_t *counts, const char *tag)
{
    json_object_set_new(counts, tag, json_integer(count_of(counts, tag) + 1));
}

json_t *template_tags_counted(const json_t *tags)
{
    json_t *counts = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        if (json_is_string(v))
            count_up(counts, json_string_value(v));
    }
    return counts; /* jansson keeps an object's keys in insertion order */
}

json_t *template_tags_missing(const json_t *a, const json_t *b)
{
    json_t *out = json_array(), *in_b = template_tags_counted(b), *seen = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *t = json_string_value(v);
        if (!t)
            continue;
        count_up(seen, t);
        if (count_of(seen, t) > count_of(in_b, t))
            json_array_append_new(out, json_string(t));
    }
    json_decref(in_b);
    json_decref(seen);
    return out;
}

/* The block a tag opens or closes: *key ("m:if", "j:for") and 1 (opens), -1 (closes)
 * or 0 (neither, key untouched). A Jinja statement opens only a word of ends. */
static int block_of(const char *t, const json_t *ends, char *key, size_t size)
{
    if (t[0] != '{')
        return 0;
    if (t[1] == '{' && t[2] != '{') {
        const char *s = t + 2 + (t[2] == '~' || t[2] == '-');
        s += *s == ' ';
        char sigil = *s++;
        if (sigil != '#' && sigil != '^' && sigil != '/')
            return 0;
        while (*s == ' ' || (sigil == '#' && (*s == '>' || *s == '*')))
            s++;
        size_t n = strcspn(s, " ~-}");
        if (n == 0)
            return 0; /* {{^}} is Handlebars' else */
        snprintf(key, size, "m:%.*s", (int)n, s);
        return sigil == '/' ? -1 : 1;
    }
    if (t[1] == '%') {
        const char *s = t + 2 + (t[2] == '-' || t[2] == '+');
        s += *s == ' ';
        size_t n = strcspn(s, " -+%");
        if (n > 3 && strncmp(s, "end", 3) == 0) {
            snprintf(key, size, "j:%.*s", (int)(n - 3), s + 3);
            return -1;
        }
        snprintf(key, size, "j:%.*s", (int)n, s);
        return json_object_get(ends, key) ? 1 : 0;
    }
    return 0;
}

bool template_tags_nested(const json_t *tags, char *why, size_t size)
{
    char key[128];
    json_t *ends = json_object(), *stack = json_array(); /* [[key, tag], …] */
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        const char *t = json_string_value(v);
        if (t && block_of(t, NULL, key, sizeof key) < 0)
            json_object_set_new(ends, key, json_true());
    }
    bool ok = true;
    json_array_foreach(tags, i, v)
    {
        const char *t = json_string_value(v);
        int kind = t ? block_of(t, ends, key, sizeof key) : 0;
        if (kind > 0) {
            json_array_append_new(stack, json_pack("[s, s]", key, t));
        } else if (kind < 0) {
            size_t depth = json_array_size(stack);
            json_t *top = depth ? json_array_get(stack, depth - 1) : NULL;
            if (!top) {
                snprintf(why, size, "%s closes no open block", t);
                ok = false;
                break;
            }
            if (strcmp(json_string_value(json_array_get(top, 0)), key) != 0) {
                snprintf(why, size, "%s closes %s", t, json_string_value(json_array_get(top, 1)));
                ok = false;
                break;
            }
            json_array_remove(stack, depth - 1);
        }
    }
    if (ok && json_array_size(stack) > 0) {
        snprintf(why, size, "%s is never closed",
                 json_string_value(json_array_get(json_array_get(stack, 0), 1)));
        ok = false;
    }
    json_decref(ends);
    json_decref(stack);
    return ok;
}
