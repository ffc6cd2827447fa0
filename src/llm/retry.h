/*
 * retry - the retry policy of the LLM clients, as pure functions.
 *
 * The same rules as the official Anthropic and OpenAI SDKs (SPEC §8): which
 * failures are retried inside one call, how long to wait, and how a provider's
 * retry-after headers change that wait. No state, no I/O, no clock: the
 * transport (transport.c) feeds in what it saw and gets decisions back, which
 * keeps every rule testable on its own. Thread-safe.
 */
#ifndef REFOLD_LLM_RETRY_H
#define REFOLD_LLM_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

#define RETRY_BASE_MS 500        /* first wait: 0.5 s */
#define RETRY_CAP_MS 8000        /* no wait longer than 8 s */
#define RETRY_AFTER_MAX_MS 60000 /* a server-asked wait above this ends the call */

/* Wait before retry n (0 for the first retry): min(base * 2^n, cap) * (1 - 0.25 * unit),
 * unit in [0, 1) (a random draw), so within [0.75, 1] of the un-jittered value. */
int64_t retry_backoff_scaled_ms(int n, double unit, int64_t base_ms, int64_t cap_ms);
/* retry_backoff_scaled_ms with the SDKs' base 500 ms and cap 8000 ms. */
int64_t retry_backoff_ms(int n, double unit);

/* Whether an HTTP status is retried inside a call when no x-should-retry header
 * says otherwise: 408, 409, 429 and every 5xx (529 included). */
bool retry_status_retryable(long status);
/* The failure class of an HTTP status: RF_TRANSIENT for 408, 409, 429, 5xx and
 * 529, RF_PERMANENT for the rest (400, 401, 403, 404, 413, 422 ...). */
enum rf_status retry_status_class(long status);
/* The x-should-retry header: 1 for "true", 0 for "false", -1 absent or other. */
int retry_should_retry_header(const char *value);
/* The decision for an HTTP error response: x-should-retry when it says true or
 * false, else retry_status_retryable. value may be NULL. */
bool retry_http_retryable(long status, const char *x_should_retry);

/* The wait a server asked for, in ms: retry-after-ms (a number of ms) first,
 * else retry-after (seconds, possibly fractional, or an HTTP date, against
 * now_ms). -1 when neither is present and parsable; may be <= 0. Either header
 * may be NULL. */
int64_t retry_after_ms(const char *retry_after_ms_header, const char *retry_after_header,
                       int64_t now_ms);

/* Parse an HTTP date (RFC 9110 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT")
 * into ms since the epoch. */
bool retry_parse_http_date(const char *s, int64_t *ms);

#endif
