/*
 * status - error helpers; see status.h. Stateless and thread-safe.
 *
 * Messages quote what callers were given (ids from URL paths, names from bodies) and
 * end up in JSON error bodies, which must be valid UTF-8: vfail scrubs each message
 * (core/utf8.h), so a stray byte reads '?' and a character cut in two by the
 * message's fixed size is dropped.
 */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"
#include "core/banned.h"

static enum rf_status vfail(struct rf_err *err, enum rf_status code, const char *field,
                            const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static enum rf_status vfail(struct rf_err *err, enum rf_status code, const char *field,
                            const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    utf8_scrub(err->message);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    err->reason[0] = '\0';
    return code;
}

enum rf_status rf_fail(struct rf_err *err, enum rf_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

enum rf_status rf_fail_field(struct rf_err *err, enum rf_status code, const char *field,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, field, fmt, ap);
    va_end(ap);
    return code;
}

enum rf_status rf_fail_reason(struct rf_err *err, enum rf_status code, const char *reason,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, NULL, fmt, ap);
    va_end(ap);
    if (err)
        snprintf(err->reason, sizeof err->reason, "%s", reason);
    return code;
}

void rf_err_clear(struct rf_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

const char *rf_status_name(enum rf_status code)
{
    switch (code) {
    case RF_OK: return "ok";
    case RF_INVALID: return "invalid_request";
    case RF_UNAUTHORIZED: return "unauthorized";
    case RF_NOT_FOUND: return "not_found";
    case RF_METHOD: return "method_not_allowed";
    case RF_CONFLICT: return "conflict";
    case RF_TOO_LARGE: return "payload_too_large";
    case RF_UNSUPPORTED: return "unsupported_media_type";
    case RF_INTERNAL: return "internal";
    case RF_UNAVAILABLE: return "unavailable";
    case RF_TRANSIENT: return "transient";
    case RF_PERMANENT: return "permanent";
    case RF_CANCELLED: return "cancelled";
    case RF_LEASE_LOST: return "lease_lost";
    }
    return "internal";
}
