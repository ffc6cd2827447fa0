/*
 * log - logfmt lines on stderr.
 *
 * One line per call, written with a single write(2) so lines from threads and
 * processes never interleave: `ts=... level=info msg="..." k=v ...`. The level
 * threshold comes from REFOLD_LOG (debug, info, warn, error; default info).
 * Callers format their own k=v fields; free text goes through log_quote.
 * Secrets (API keys) must never be passed here.
 */
#ifndef REFOLD_LOG_H
#define REFOLD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the threshold from a name; false (threshold unchanged) for an unknown name. Call
 * before threads start. */
bool log_set_level(const char *name);
int log_enabled(enum log_level level);
/* msg is quoted; fields (may be NULL) is a printf format for trailing k=v pairs. */
void log_write(enum log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));
/* Quote s as a logfmt value ("..." with \" \\ \n \r \t escaped, other control characters
 * as \xNN) into out, so that no text can end the line or forge a field; truncates to n. */
const char *log_quote(const char *s, char *out, size_t n);
/* s as it is when it is an HTTP token (RFC 9110 §5.6.2) of under 32 characters, such as a
 * request method; else log_quote(s, out, n). libmicrohttpd passes on a method of any bytes
 * up to the first space ("GE\"T\e[31m\tstatus=200" would forge a field). */
const char *log_token(const char *s, char *out, size_t n);

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
