/*
 * template - the `{{variable}}` placeholders and the other tags of prompt
 * templates.
 *
 * A placeholder is `{{`, optional whitespace, a name matching
 * [A-Za-z_][A-Za-z0-9_.]*, optional whitespace, `}}`. Anything else between
 * braces (`{{ 1x }}`, `{{}}`, an unclosed `{{name`) is not a variable.
 *
 * A tag is the syntax of a template engine that is not a plain variable
 * (Mustache, Handlebars, Jinja and their kin), closed, and one of:
 *   `{{#…}}` `{{/…}}` `{{^…}}` `{{>…}}` `{{&…}}` `{{=…}}`  sections, partials, …
 *   `{{!…}}` `{{!--…--}}`                                    comments
 *   `{{{…}}}`                                                unescaped output
 *   `{{…}}` starting with a letter, `_`, `@` or `.` that is not a plain
 *           variable: `{{else if x}}`, `{{ x | upper }}`, `{{@index}}`, `{{.}}`
 *   `{%…%}` `{#…#}`                                          Jinja statements, comments
 * optionally with whitespace control (`{{~`, `{{-`, `{%-`, …). Tags written
 * with `{{` (comments aside) and triple braces stay on one line and hold no
 * brace; comments and `{%…%}` may span lines but not hold another opener of
 * their kind. Anything else - a lone `{` or `{{`, `{{ "x" }}`, an unclosed
 * tag - is text. So `{{else}}`, `{{end}}` are variables, not tags, and
 * `{{{raw}}}` is both the variable raw and a tag. Tags compare by their
 * normalised text: whitespace inside collapsed to one space, none around the
 * delimiters and sigil (`{{# if  x }}` is `{{#if x}}`), except the single
 * space Jinja writes there (`{%if x%}` is `{% if x %}`).
 *
 * Every scan is linear in the template. Stateless and thread-safe.
 */
#ifndef REFOLD_TEMPLATE_H
#define REFOLD_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

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

/* Every tag of tmpl, normalised, in order of appearance, repeats included (caller owns). */
json_t *template_tags(const char *tmpl);
/* The tags a holds more often than b, each as many times as the difference, in the order
 * of a (caller owns): empty in both directions when two templates have the same tags. */
json_t *template_tags_missing(const json_t *a, const json_t *b);
/* How many times each tag of tags occurs, as an object from tag to count whose keys
 * come in order of first appearance (caller owns). */
json_t *template_tags_counted(const json_t *tags);
/* True when the block tags of tags (as template_tags gives them) nest: each `{{/x}}`
 * closes the innermost open `{{#x …}}` or `{{^x}}`, each `{% endx %}` the innermost
 * open `{% x … %}` (such a tag opens a block only when tags hold an `{% endx %}`), and
 * every block is closed. Otherwise false, with the first problem in why ("{{/if}}
 * closes {{#each items}}"). */
bool template_tags_nested(const json_t *tags, char *why, size_t size);

#endif
