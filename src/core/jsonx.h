/*
 * jsonx - jansson helpers: parsing with limits, validated field access, and
 * the few value constructors the API needs (timestamps, nullable strings).
 *
 * Field getters fill struct rf_err with RF_INVALID naming the field, so
 * handlers can return their status straight to the client. Returned strings
 * are borrowed from the json_t they came from. Thread-safe (jansson is, for
 * distinct values).
 */
#ifndef REFOLD_JSONX_H
#define REFOLD_JSONX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

enum jx_flags {
    JX_OPTIONAL = 0,
    JX_REQUIRED = 1,
    JX_NULLABLE = 2, /* an explicit null is accepted (reported as absent) */
    JX_NAME = 4,     /* jx_string: a name or identifier, refused when it holds a control
                        character (utf8_control: C0, DEL, C1). Free text (descriptions, notes,
                        templates, trace text) goes without it: tabs and newlines belong there */
    JX_TRIMMED = 8,  /* jx_string: refused when it begins or ends with white space, or is
                        nothing else (utf8_untrimmed): agent and eval names, where "bot" and
                        "bot " would be two names that look like one */
};

/* Parse a JSON document. Fails RF_INVALID with jansson's position message. */
enum rf_status jx_parse(const char *text, size_t len, json_t **out, struct rf_err *err);
/* Compact JSON text; caller frees with free(). */
char *jx_dump(const json_t *v);

/* Reading a response (no validation): the string at key, or fallback when it is absent or
 * not a string; the integer at key, or 0. */
const char *jx_get_str(const json_t *obj, const char *key, const char *fallback);
long long jx_get_int(const json_t *obj, const char *key);

/* String field: *out stays NULL when absent (or null with JX_NULLABLE).
 * max_chars counts UTF-8 characters; 0 means no limit; empty strings are
 * rejected when allow_empty is false, control characters with JX_NAME, white space
 * at either end with JX_TRIMMED. A NUL is always refused. */
enum rf_status jx_string(const json_t *obj, const char *key, int flags, size_t max_chars,
                         bool allow_empty, const char **out, struct rf_err *err);
/* Integer field within [min, max]; *present says whether it was given. */
enum rf_status jx_int(const json_t *obj, const char *key, int flags, int64_t min, int64_t max,
                      int64_t *out, bool *present, struct rf_err *err);
enum rf_status jx_bool(const json_t *obj, const char *key, int flags, bool *out, bool *present,
                       struct rf_err *err);
/* Field of a given JSON type (JSON_OBJECT, JSON_ARRAY); *out borrowed, NULL when absent. */
enum rf_status jx_typed(const json_t *obj, const char *key, int flags, json_type type,
                        json_t **out, struct rf_err *err);

/* Constructors that never return NULL. */
json_t *jx_time(int64_t ms);                 /* RFC 3339 string */
json_t *jx_time_or_null(int64_t ms, bool set);
json_t *jx_str_or_null(const char *s);       /* null when s is NULL */
/* Parse stored JSON text; null when text is NULL or unparsable. */
json_t *jx_from_text(const char *text);
/* Number of UTF-8 characters in s (bytes that are not continuation bytes). */
size_t jx_utf8_len(const char *s);
/* About how many bytes v takes as compact JSON: string lengths plus a few bytes per value
 * and key, without serialising it (escapes are not counted). */
size_t jx_size_estimate(const json_t *v);

#endif
