/*
 * test_llm_retry - the retry policy as pure functions (src/llm/retry.c):
 * the backoff bounds formula, which statuses retry, x-should-retry, and the
 * retry-after-ms / retry-after (seconds or HTTP date) parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "llm/retry.h"
#include "core/banned.h"

static void test_llm_retry_backoff_bounds(void **state)
{
    (void)state;
    /* [base * 2^n * 0.75, base * 2^n], capped at 8 s. */
    const int64_t hi[] = {500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (int n = 0; n < 7; n++) {
        assert_int_equal(retry_backoff_ms(n, 0.0), hi[n]);
        int64_t lo = hi[n] * 3 / 4;
        assert_int_equal(retry_backoff_ms(n, 0.9999999), lo);
        for (int i = 0; i < 2000; i++) {
            int64_t d = retry_backoff_ms(n, crypto_random_unit());
            if (d < lo || d > hi[n])
                fail_msg("retry %d waited %lld ms, outside [%lld, %lld]", n, (long long)d,
                         (long long)lo, (long long)hi[n]);
        }
    }
    assert_int_equal(retry_backoff_ms(0, 0.5), 438);     /* 500 * (1 - 0.125), rounded */
    assert_int_equal(retry_backoff_ms(1000, 0.0), 8000); /* no overflow far past the cap */
    assert_int_equal(retry_backoff_scaled_ms(2, 0.0, 20, 1000), 80);
    assert_int_equal(retry_backoff_scaled_ms(9, 0.0, 20, 1000), 1000);
}

static void test_llm_retry_statuses(void **state)
{
    (void)state;
    const long retry[] = {408, 409, 429, 500, 502, 503, 504, 529};
    const long no[] = {400, 401, 403, 404, 413, 422, 200, 301};
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++) {
        assert_true(retry_status_retryable(retry[i]));
        assert_int_equal(retry_status_class(retry[i]), RF_TRANSIENT);
        assert_true(retry_http_retryable(retry[i], NULL));
        assert_false(retry_http_retryable(retry[i], "false"));
        assert_true(retry_http_retryable(retry[i], "maybe"));
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        assert_false(retry_status_retryable(no[i]));
        assert_int_equal(retry_status_class(no[i]), RF_PERMANENT);
        assert_false(retry_http_retryable(no[i], NULL));
        assert_true(retry_http_retryable(no[i], "true"));
    }
    assert_int_equal(retry_should_retry_header("true"), 1);
    assert_int_equal(retry_should_retry_header("false"), 0);
    assert_int_equal(retry_should_retry_header("TRUE "), -1);
    assert_int_equal(retry_should_retry_header(NULL), -1);
}

static void test_llm_retry_after_headers(void **state)
{
    (void)state;
    const int64_t now = 784111777000;                       /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(retry_after_ms("150", "3", now), 150); /* -ms wins */
    assert_int_equal(retry_after_ms("12.6", NULL, now), 13);
    assert_int_equal(retry_after_ms(NULL, "3", now), 3000);
    assert_int_equal(retry_after_ms(NULL, "0.25", now), 250);
    assert_int_equal(retry_after_ms("soon", "2", now), 2000); /* unparsable -ms falls back */
    assert_int_equal(retry_after_ms(NULL, "Sun, 06 Nov 1994 08:50:07 GMT", now), 30000);
    assert_int_equal(retry_after_ms(NULL, "Sun, 06 Nov 1994 08:49:27 GMT", now), -10000);
    assert_int_equal(retry_after_ms(NULL, "later", now), -1);
    assert_int_equal(retry_after_ms(NULL, "3s", now), -1);
    assert_int_equal(retry_after_ms(NULL, NULL, now), -1);
    assert_int_equal(retry_after_ms("", "", now), -1);

    int64_t ms = 0;
    assert_true(retry_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &ms));
    assert_int_equal(ms, now);
    assert_true(retry_parse_http_date("Thu, 26 Nov 2026 10:24:26 GMT", &ms));
    assert_int_equal(ms, 1795688666000);
    assert_false(retry_parse_http_date("Sun, 06 Nov 1994 08:49:37 PST", &ms));
    assert_false(retry_parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT", &ms));
    assert_false(retry_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT trailing", &ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_retry_backoff_bounds),
        cmocka_unit_test(test_llm_retry_statuses),
        cmocka_unit_test(test_llm_retry_after_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
