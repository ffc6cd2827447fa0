/*
 * status - the project's one status enum and the error carrier.
 *
 * Functions return enum rf_status and hand data back through out-parameters
 * (in the spirit of CURLcode). A caller-provided struct rf_err carries the
 * human text, and optionally the offending field and a machine reason, up to
 * the HTTP layer (JSON error body) or the CLI (one stderr line).
 */
#ifndef REFOLD_STATUS_H
#define REFOLD_STATUS_H

enum rf_status {
    RF_OK = 0,
    RF_INVALID,      /* bad input: 400 invalid_request */
    RF_UNAUTHORIZED, /* 401 */
    RF_NOT_FOUND,    /* 404 */
    RF_METHOD,       /* 405 method_not_allowed */
    RF_CONFLICT,     /* 409 */
    RF_TOO_LARGE,    /* 413 payload_too_large */
    RF_UNSUPPORTED,  /* 415 unsupported_media_type */
    RF_INTERNAL,     /* 500: a bug or a database failure */
    RF_UNAVAILABLE,  /* 503: shutting down, database unreachable */
    RF_TRANSIENT,    /* an operation that may succeed if retried (LLM, network) */
    RF_PERMANENT,    /* an operation that will not succeed if retried */
    RF_CANCELLED,    /* stopped on request */
    RF_LEASE_LOST,   /* a fenced job write matched no row */
};

struct rf_err {
    enum rf_status code;
    char message[256];
    char field[64];  /* details.field, empty when none */
    char reason[64]; /* details.reason, empty when none */
};

/* Fill err (may be NULL) and return code: `return rf_fail(err, RF_INVALID, "...")`.
 * The message is made valid UTF-8 (utf8_scrub), as JSON error bodies need. */
enum rf_status rf_fail(struct rf_err *err, enum rf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like rf_fail, naming the offending field. */
enum rf_status rf_fail_field(struct rf_err *err, enum rf_status code, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Like rf_fail, with a machine-readable details.reason (e.g. "no_active_version"). */
enum rf_status rf_fail_reason(struct rf_err *err, enum rf_status code, const char *reason,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Reset err to RF_OK with empty strings. */
void rf_err_clear(struct rf_err *err);
/* Stable lower-case name of a status, e.g. "not_found" (the API's error code). */
const char *rf_status_name(enum rf_status code);

#endif
