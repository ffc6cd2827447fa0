/*
 * test_clock - RFC 3339 formatting: clock_format is arithmetic (no gmtime), so
 * it is checked against gmtime_r over a wide range of instants, and against
 * clock_parse for the round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/banned.h"

/* What clock_format must print, the slow way. */
static void reference(int64_t ms, char out[96])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static void check(int64_t ms)
{
    char got[RFC3339_LEN], want[96];
    clock_format(ms, got);
    reference(ms, want);
    if (strcmp(got, want) != 0)
        fail_msg("clock_format(%lld) = %s, want %s", (long long)ms, got, want);
    int64_t back = 0;
    assert_true(clock_parse(got, &back));
    assert_int_equal(back, ms);
}

static void test_clock_format_edges(void **state)
{
    (void)state;
    const int64_t edges[] = {
        0, 1, 999, 1000, -1, -999, -1000, -1001,
        951782400000,  /* 2000-02-29 */
        951868799999,  /* 2000-02-29T23:59:59.999 */
        4107542400000, /* 2100-03-01 */
        1767225600000, /* 2026-01-01 */
        -2208988800000, /* 1900-01-01 */
        253402300799999, /* 9999-12-31T23:59:59.999 */
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check(edges[i]);
    char out[RFC3339_LEN];
    clock_format(1764148653123, out);
    assert_string_equal(out, "2025-11-26T09:17:33.123Z");
}

/* Instants RFC 3339 cannot write are written as the nearer bound (they used to come out
 * as, say, 9999-08-16T31:12:54.808Z for INT64_MIN), and are not parsed. */
static void test_clock_out_of_range(void **state)
{
    (void)state;
    char out[RFC3339_LEN];
    check(CLOCK_MIN_MS);
    check(CLOCK_MAX_MS);
    clock_format(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
    clock_format(CLOCK_MIN_MS - 1, out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
    clock_format(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    clock_format(CLOCK_MAX_MS + 1, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    int64_t ms = 42;
    assert_false(clock_parse("0000-01-01T00:00:00+00:01", &ms));
    assert_false(clock_parse("9999-12-31T23:59:59.999-00:01", &ms));
    assert_int_equal(ms, 42);
    assert_true(clock_parse("0000-01-01T00:00:00-00:01", &ms));
    assert_int_equal(ms, CLOCK_MIN_MS + 60000);
}

/* Dates and offsets that do not exist are refused, not moved to another day. */
static void test_clock_parse_impossible(void **state)
{
    (void)state;
    int64_t ms = 42;
    const char *bad[] = {"2026-02-29T00:00:00Z", "2026-02-31T00:00:00Z", "2026-04-31T00:00:00Z",
                         "1900-02-29T00:00:00Z", "2026-01-01T00:00:00+24:00",
                         "2026-01-01T00:00:00+99:99", "2026-01-01T00:00:00-00:60"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (clock_parse(bad[i], &ms))
            fail_msg("clock_parse accepted %s", bad[i]);
    assert_int_equal(ms, 42);
    assert_true(clock_parse("2000-02-29T00:00:00Z", &ms));
    assert_int_equal(ms, 951782400000);
    assert_true(clock_parse("2024-02-29T12:00:00+23:59", &ms));
    assert_true(clock_parse("2026-12-31T23:59:59.999Z", &ms));
}

static void test_clock_format_matches_gmtime(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    const int64_t lo = -2208988800000, span = INT64_C(400) * 366 * 86400 * 1000;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check(lo + (int64_t)(x % (uint64_t)span));
    }
}

/* clock_every: the first call is due, the next ones within the period are not, and the
 * period starts over once one is. */
static void test_clock_every(void **state)
{
    (void)state;
    /* 400 ms: the calls "within the period" follow each other at once, but a loaded
     * machine can hold a thread off the CPU for tens of milliseconds between them. */
    int64_t last = 0;
    assert_true(clock_every(&last, 400));
    assert_true(last > 0);
    int64_t first = last;
    assert_false(clock_every(&last, 400));
    assert_int_equal(last, first);
    clock_sleep_ms(450);
    assert_true(clock_every(&last, 400));
    assert_true(last >= first + 400);
    assert_false(clock_every(&last, 400));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_format_edges),
        cmocka_unit_test(test_clock_out_of_range),
        cmocka_unit_test(test_clock_parse_impossible),
        cmocka_unit_test(test_clock_format_matches_gmtime),
        cmocka_unit_test(test_clock_every),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
