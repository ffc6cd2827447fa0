/*
 * jsonx - see jsonx.h.
 */
#include "core/jsonx.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/utf8.h"
#include "core/banned.h"

enum rf_status jx_parse(const char *text, size_t len, json_t **out, struct rf_err *err)
{
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return rf_fail(err, RF_INVALID, "malformed JSON at line %d column %d: %s", je.line,
                       je.column, je.text);
    return RF_OK;
}

char *jx_dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

size_t jx_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

size_t jx_size_estimate(const json_t *v)
{
    size_t n = 0;
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) + 2;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, item)
            n += strlen(key) + 4 + jx_size_estimate(item);
        return n + 2;
    case JSON_ARRAY:
        json_array_foreach(v, i, item)
            n += jx_size_estimate(item) + 1;
        return n + 2;
    default:
        return 8;
    }
}

static enum rf_status absent(const json_t *v, const char *key, int flags, struct rf_err *err,
                             bool *is_absent)
{
    *is_absent = false;
    if (!v || (json_is_null(v) && (flags & JX_NULLABLE))) {
        *is_absent = true;
        if (flags & JX_REQUIRED)
            return rf_fail_field(err, RF_INVALID, key, "%s is required", key);
    }
    return RF_OK;
}

enum rf_status jx_string(const json_t *obj, const char *key, int flags, size_t max_chars,
                         bool allow_empty, const char **out, struct rf_err *err)
{
    const json_t *v = json_object_get(obj, key);
    bool none;
    *out = NULL;
    enum rf_status rc = absent(v, key, flags, err, &none);
    if (rc || none)
        return rc;
    if (!json_is_string(v))
        return rf_fail_field(err, RF_INVALID, key, "%s must be a string", key);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return rf_fail_field(err, RF_INVALID, key, "%s must not contain NUL characters", key);
    if (!allow_empty && !*s)
        return rf_fail_field(err, RF_INVALID, key, "%s must not be empty", key);
    if (max_chars && jx_utf8_len(s) > max_chars)
        return rf_fail_field(err, RF_INVALID, key, "%s is longer than %zu characters", key,
                             max_chars);
    size_t at;
    long cc = (flags & JX_NAME) ? utf8_control(s, &at) : -1;
    if (cc >= 0)
        return rf_fail_field(err, RF_INVALID, key,
                             "%s must not contain control characters (U+%04lX at character %zu)",
                             key, (unsigned long)cc, at + 1);
    if ((flags & JX_TRIMMED) && utf8_untrimmed(s))
        return rf_fail_field(err, RF_INVALID, key,
                             utf8_blank(s) ? "%s must not be only white space"
                                           : "%s must not begin or end with white space",
                             key);
    *out = s;
    return RF_OK;
}

enum rf_status jx_int(const json_t *obj, const char *key, int flags, int64_t min, int64_t max,
                      int64_t *out, bool *present, struct rf_err *err)
{
    const json_t *v = json_object_get(obj, key);
    bool none;
    if (present)
        *present = false;
    enum rf_status rc = absent(v, key, flags, err, &none);
    if (rc || none)
        return rc;
    if (!json_is_integer(v))
        return rf_fail_field(err, RF_INVALID, key, "%s must be an integer", key);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return rf_fail_field(err, RF_INVALID, key, "%s must be between %lld and %lld", key,
                             (long long)min, (long long)max);
    *out = i;
    if (present)
        *present = true;
    return RF_OK;
}

enum rf_status jx_bool(const json_t *obj, const char *key, int flags, bool *out, bool *present,
                       struct rf_err *err)
{
    const json_t *v = json_object_get(obj, key);
    bool none;
    if (present)
        *present = false;
    enum rf_status rc = absent(v, key, flags, err, &none);
    if (rc || none)
        return rc;
    if (!json_is_boolean(v))
        return rf_fail_field(err, RF_INVALID, key, "%s must be a boolean", key);
    *out = json_is_true(v);
    if (present)
        *present = true;
    return RF_OK;
}

enum rf_status jx_typed(const json_t *obj, const char *key, int flags, json_type type,
                        json_t **out, struct rf_err *err)
{
    json_t *v = json_object_get(obj, key);
    bool none;
    *out = NULL;
    enum rf_status rc = absent(v, key, flags, err, &none);
    if (rc || none)
        return rc;
    if (json_typeof(v) != type)
        return rf_fail_field(err, RF_INVALID, key, "%s must be %s", key,
                             type == JSON_OBJECT  ? "an object"
                             : type == JSON_ARRAY ? "an array"
                                                  : "of another type");
    *out = v;
    return RF_OK;
}

json_t *jx_time(int64_t ms)
{
    char ts[RFC3339_LEN];
    clock_format(ms, ts);
    return json_string(ts);
}

json_t *jx_time_or_null(int64_t ms, bool set)
{
    return set ? jx_time(ms) : json_null();
}

const char *jx_get_str(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

long long jx_get_int(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

json_t *jx_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *jx_from_text(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}
