/*
 * clock - time in the units refold stores: integer milliseconds.
 *
 * Wall-clock time (for stored timestamps) and a monotonic clock (for
 * timeouts and latencies), plus RFC 3339 formatting and parsing in UTC with
 * milliseconds, the API's timestamp format. Thread-safe, no state.
 */
#ifndef REFOLD_CLOCK_H
#define REFOLD_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define RFC3339_LEN 32

/* Milliseconds since the Unix epoch. */
int64_t clock_now_ms(void);
/* Monotonic milliseconds (arbitrary origin). */
int64_t clock_mono_ms(void);
/* Monotonic microseconds (arbitrary origin), for latency measurements. */
int64_t clock_mono_us(void);
/* Sleep for ms milliseconds (restarts after signals). */
void clock_sleep_ms(int64_t ms);
/* "2026-11-26T09:17:33.123Z" into out (at least RFC3339_LEN bytes). */
void clock_format(int64_t ms, char *out);
/* Parse RFC 3339 (with 'Z' or an offset, optional fraction) into ms. */
bool clock_parse(const char *s, int64_t *ms);

#endif
