/*
 * template - the `{{variable}}` placeholders of prompt templates.
 *
 * A placeholder is `{{`, optional whitespace, a name matching
 * [A-Za-z_][A-Za-z0-9_.]*, optional whitespace, `}}`. Anything else between
 * braces (`{{ 1x }}`, `{{}}`, an unclosed `{{name`) is text, not a variable.
 * Stateless and thread-safe.
 */
#ifndef REFOLD_TEMPLATE_H
#define REFOLD_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>

/* The largest prompt template refold stores (SPEC §4.1: 256 KiB), whoever writes it: the
 * API (http.h LIMIT_TEMPLATE_BYTES) or an improvement job's rewrite. */
#define TEMPLATE_MAX_BYTES (256 * 1024)

/* The distinct variable names of tmpl in order of first appearance (caller owns). */
json_t *template_variables(const char *tmpl);
/* True when two arrays of names hold the same set (order and repeats ignored). */
bool template_same_set(const json_t *a, const json_t *b);
/* The names written as placeholders, "{{a}}, {{b}}" (caller frees); "" for none. */
char *template_braced(const json_t *names);
/* Names in a that are not in b, as a new array (caller owns). */
json_t *template_missing(const json_t *a, const json_t *b);

#endif
