/*
 * clock - time in the units refold stores: integer milliseconds.
 *
 * Wall-clock time (for stored timestamps) and a monotonic clock (for
 * timeouts and latencies), plus RFC 3339 formatting and parsing in UTC with
 * milliseconds, the API's timestamp format. Thread-safe, no state.
 */
#ifndef REFOLD_CLOCK_H
#define REFOLD_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RFC3339_LEN 32

/* Milliseconds since the Unix epoch. */
int64_t clock_now_ms(void);
/* Monotonic milliseconds (arbitrary origin). */
int64_t clock_mono_ms(void);
/* Monotonic microseconds (arbitrary origin), for latency measurements. */
int64_t clock_mono_us(void);
/* Rate limiting (say, of a repeated warning): true when period_ms have passed on the
 * monotonic clock since *last, which it then sets to now. Start *last at 0. */
bool clock_every(int64_t *last, int64_t period_ms);
/* Sleep for ms milliseconds (restarts after signals). */
void clock_sleep_ms(int64_t ms);
/* A condition variable whose timed waits use the monotonic clock (clock_cond_wait_ms). */
void clock_cond_init(pthread_cond_t *c);
/* Wait on c (made by clock_cond_init, with m held) until signalled or ms milliseconds pass
 * (ms < 0 counts as 0). */
void clock_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms);
/* The instants RFC 3339 can write: 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. */
#define CLOCK_MIN_MS INT64_C(-62167219200000)
#define CLOCK_MAX_MS INT64_C(253402300799999)

/* "2026-11-26T09:17:33.123Z" into out (at least RFC3339_LEN bytes); ms outside
 * [CLOCK_MIN_MS, CLOCK_MAX_MS] is written as the nearer bound. */
void clock_format(int64_t ms, char *out);
/* Parse RFC 3339 (with 'Z' or an offset, optional fraction) into ms; false when s is not
 * RFC 3339 or names an instant outside [CLOCK_MIN_MS, CLOCK_MAX_MS]. */
bool clock_parse(const char *s, int64_t *ms);

#endif
