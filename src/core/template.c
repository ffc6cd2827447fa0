/*
 * template - see template.h. A linear scan; names are short, so set
 * comparisons are quadratic on purpose (templates hold a handful of names).
 */
#include "core/template.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"
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

static bool contains(const json_t *arr, const char *name, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strlen(s) == len && memcmp(s, name, len) == 0)
            return true;
    }
    return false;
}

json_t *template_variables(const char *tmpl)
{
    json_t *out = json_array();
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
            if (!contains(out, name, len)) {
                char *s = xstrndup(name, len);
                json_array_append_new(out, json_string(s));
                free(s);
            }
            p = q + 2;
        } else {
            p += 1;
        }
    }
    return out;
}

json_t *template_missing(const json_t *a, const json_t *b)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        if (s && !contains(b, s, strlen(s)) && !contains(out, s, strlen(s)))
            json_array_append_new(out, json_string(s));
    }
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
