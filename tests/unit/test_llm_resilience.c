/*
 * test_llm_resilience - the LLM clients' retries, timeouts and cancellation
 * (src/llm/transport.c with the policy of retry.c) against
 * tests/fakes/fake_llm.mjs.
 *
 * 3 attempts with backoff-bounded gaps for 408/409/429/500/503/529, a reset and
 * a connect timeout (a loopback listener with a full accept queue); one attempt
 * for 400/401/403/404/413/422; retry-after-ms over retry-after; x-should-retry;
 * a retry-after over 60 s ending the call at once; the retry-after hint when
 * retries run out; idle and total timeouts; cancellation within 1 s mid-stream,
 * before the response and during the wait before a retry.
 *
 * Retry gaps are checked twice: the delay the client chose (on_retry) against
 * the documented bounds, and the gap between arrivals at the fake against that
 * delay. The policy as pure functions is test_llm_retry's; the harness (the
 * fake, scripting it, one call of the client) is llm_fake.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "llm_fake.h"

#include "core/clock.h"
#include "llm/llm.h"
#include "core/banned.h"

#define SLACK_MS 400 /* scheduling and ASan overhead allowed on top of a wait */

/* ---- retries ------------------------------------------------------------- */

/* After a call that retried twice with the SDKs' backoff: the chosen delays are
 * within [0.75, 1] * 500 and * 1000 ms, and the fake saw the attempts that far apart.
 * The fake (a node process) stamps an arrival when it gets to run, late on a loaded
 * machine: attempts more than SLACK_MS later than the wait fail only on the last of the
 * caller's runs (!last: false, and the caller runs the case again), so that a client
 * that waits too long every time fails, and one that waits too little at once. */
static bool check_backoff_gaps(const struct fake_call *c, const json_t *reqs, bool last)
{
    assert_int_equal(c->retries, 2);
    const int64_t hi[2] = {500, 1000};
    for (int k = 0; k < 2; k++) {
        if (c->delays[k] < hi[k] * 3 / 4 || c->delays[k] > hi[k])
            fail_msg("retry %d chose %lld ms, outside [%lld, %lld]", k + 1, (long long)c->delays[k],
                     (long long)(hi[k] * 3 / 4), (long long)hi[k]);
        if (reqs) {
            double gap = fake_arrival(reqs, (size_t)k + 1) - fake_arrival(reqs, (size_t)k);
            bool late = gap > (double)c->delays[k] + SLACK_MS;
            if (gap < (double)c->delays[k] - 2 || (late && last))
                fail_msg("attempts %d and %d arrived %.1f ms apart; the wait was %lld ms", k + 1,
                         k + 2, gap, (long long)c->delays[k]);
            if (late) {
                print_message("attempts %d and %d arrived %.1f ms apart after a %lld ms wait: "
                              "again\n",
                              k + 1, k + 2, gap, (long long)c->delays[k]);
                return false;
            }
        }
    }
    return true;
}

static void test_llm_retry_statuses_three_attempts(void **state)
{
    (void)state;
    const long statuses[] = {408, 409, 429, 500, 503, 529};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
        for (int run = 1;; run++) { /* again when the fake stamped an arrival late */
            char entries[200];
            snprintf(entries, sizeof entries, "[{\"status\": %ld, \"times\": 3}]", statuses[i]);
            fake_script(entries);
            struct fake_case t;
            fake_case_init(&t, "anthropic");
            int64_t t0 = clock_mono_ms();
            assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
            int64_t took = clock_mono_ms() - t0;
            assert_int_equal(t.err.code, RF_TRANSIENT);
            assert_int_equal(t.resp.attempts, 3);
            assert_int_equal(t.resp.http_status, statuses[i]);
            assert_null(t.resp.text);
            char want[32];
            snprintf(want, sizeof want, "HTTP %ld", statuses[i]);
            if (!strstr(t.err.message, want) || !strstr(t.err.message, "after 3 attempts"))
                fail_msg("status %ld: unexpected message '%s'", statuses[i], t.err.message);
            json_t *reqs = fake_requests();
            assert_int_equal(json_array_size(reqs), 3);
            bool in_time = check_backoff_gaps(&t.c, reqs, run == 3);
            assert_true(took >= t.c.delays[0] + t.c.delays[1]);
            json_decref(reqs);
            fake_case_release(&t);
            if (in_time)
                break;
        }
}

static void test_llm_retry_then_success(void **state)
{
    (void)state;
    fake_script("[{\"status\": 529, \"times\": 2}, {\"text\": \"Third time lucky.\"}]");
    struct fake_case t;
    fake_case_init(&t, "openai");
    t.cfg.retry_base_ms = 40; /* the scaled formula; the real bounds are tested above */
    assert_int_equal(fake_case_run(&t), RF_OK);
    assert_string_equal(t.resp.text, "Third time lucky.");
    assert_int_equal(t.resp.attempts, 3);
    assert_int_equal(t.resp.http_status, 200);
    assert_string_equal(t.resp.request_id, "req_fake_3");
    assert_int_equal(t.c.retries, 2);
    assert_true(t.c.delays[0] >= 30 && t.c.delays[0] <= 40);
    assert_true(t.c.delays[1] >= 60 && t.c.delays[1] <= 80);
    assert_non_null(strstr(t.c.why[0], "HTTP 529"));
    fake_case_release(&t);
}

static void test_llm_retry_connection_reset(void **state)
{
    (void)state;
    for (int run = 1;; run++) { /* again when the fake stamped an arrival late */
        fake_script("[{\"reset_after_bytes\": 0, \"times\": 3}]");
        struct fake_case t;
        fake_case_init(&t, "anthropic");
        assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
        assert_int_equal(t.resp.attempts, 3);
        assert_int_equal(t.resp.http_status, 0);
        assert_non_null(strstr(t.err.message, "connection failed"));
        json_t *reqs = fake_requests();
        assert_int_equal(json_array_size(reqs), 3);
        bool in_time = check_backoff_gaps(&t.c, reqs, run == 3);
        json_decref(reqs);
        fake_case_release(&t);
        if (in_time)
            break;
    }
}

/* A loopback listener whose accept queue is full: further SYNs are dropped, so a
 * connect hangs until the client's connect timeout. */
static int full_listener(int *port, int *fillers, int nfill)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    for (int i = 0; i < nfill; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(fillers[i], (struct sockaddr *)&a, sizeof a);
        assert_true(r == 0 || errno == EINPROGRESS);
    }
    clock_sleep_ms(100);
    return fd;
}

static void test_llm_retry_connect_timeout(void **state)
{
    (void)state;
    int fillers[4], port;
    int lfd = full_listener(&port, fillers, 4);
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    snprintf(t.cfg.base_url, sizeof t.cfg.base_url, "http://127.0.0.1:%d", port);
    t.cfg.connect_timeout_ms = 250;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    int64_t t3 = clock_mono_ms();
    assert_int_equal(t.resp.attempts, 3);
    assert_non_null(strstr(t.err.message, "connect timeout"));
    check_backoff_gaps(&t.c, NULL, true);
    /* Each attempt spent the connect timeout; between them, the chosen waits. */
    int64_t spans[3] = {t.c.retry_times[0] - t0, t.c.retry_times[1] - t.c.retry_times[0],
                        t3 - t.c.retry_times[1]};
    int64_t waits[3] = {0, t.c.delays[0], t.c.delays[1]};
    for (int k = 0; k < 3; k++)
        if (spans[k] < waits[k] + 250 - 5 || spans[k] > waits[k] + 250 + SLACK_MS)
            fail_msg("attempt %d took %lld ms after a %lld ms wait (connect timeout 250 ms)", k + 1,
                     (long long)spans[k], (long long)waits[k]);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
    fake_case_release(&t);
}

static void test_llm_permanent_statuses_one_attempt(void **state)
{
    (void)state;
    const long statuses[] = {400, 401, 403, 404, 413, 422};
    const char *providers[] = {"anthropic", "openai"};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
            char entries[200];
            snprintf(entries, sizeof entries,
                     "[{\"status\": %ld, \"error\": {\"type\": \"some_error\", \"message\": "
                     "\"no good %ld\"}}, {\"text\": \"must not be reached\"}]",
                     statuses[i], statuses[i]);
            fake_script(entries);
            struct fake_case t;
            fake_case_init(&t, providers[p]);
            assert_int_equal(fake_case_run(&t), RF_PERMANENT);
            assert_int_equal(t.resp.attempts, 1);
            assert_int_equal(t.resp.http_status, statuses[i]);
            assert_int_equal(t.c.retries, 0);
            char want[1024];
            snprintf(want, sizeof want, "%s: HTTP %ld some_error: no good %ld", providers[p],
                     statuses[i], statuses[i]);
            if (statuses[i] == 404) /* where the request went: a wrong base URL is common */
                snprintf(want + strlen(want), sizeof want - strlen(want),
                         " (POST %s%s)", t.cfg.base_url,
                         p == 0 ? "/v1/messages" : "/chat/completions");
            assert_string_equal(t.err.message, want);
            assert_int_equal(fake_request_count(), 1);
            fake_case_release(&t);
        }
}

static void test_llm_retry_after_ms_beats_retry_after(void **state)
{
    (void)state;
    for (int run = 1;; run++) { /* again when the fake stamped an arrival late (see above) */
        fake_script(
            "[{\"status\": 429, \"headers\": {\"retry-after-ms\": \"150\", \"retry-after\": "
            "\"5\"}},"
            " {\"status\": 503, \"headers\": {\"retry-after\": \"0.3\"}}, {\"text\": \"ok\"}]");
        struct fake_case t;
        fake_case_init(&t, "anthropic");
        assert_int_equal(fake_case_run(&t), RF_OK);
        assert_int_equal(t.resp.attempts, 3);
        assert_int_equal(t.c.retries, 2);
        assert_int_equal(t.c.delays[0], 150);
        assert_int_equal(t.c.delays[1], 300);
        json_t *reqs = fake_requests();
        double gap1 = fake_arrival(reqs, 1) - fake_arrival(reqs, 0);
        double gap2 = fake_arrival(reqs, 2) - fake_arrival(reqs, 1);
        json_decref(reqs);
        fake_case_release(&t);
        assert_true(gap1 >= 148 && gap2 >= 298);
        bool in_time = gap1 <= 150 + SLACK_MS && gap2 <= 300 + SLACK_MS;
        if (!in_time && run == 3)
            fail_msg("attempts arrived %.1f and %.1f ms apart after waits of 150 and 300 ms", gap1,
                     gap2);
        if (in_time)
            break;
        print_message("attempts arrived %.1f and %.1f ms apart: again\n", gap1, gap2);
    }
}

static void test_llm_x_should_retry(void **state)
{
    (void)state;
    /* false: a 529 is not retried (and stays transient for the job layer). */
    fake_script(
        "[{\"status\": 529, \"headers\": {\"x-should-retry\": \"false\"}}, {\"text\": \"no\"}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    assert_int_equal(t.resp.attempts, 1);
    assert_int_equal(t.c.retries, 0);
    assert_int_equal(fake_request_count(), 1);
    fake_case_release(&t);

    /* true: even a 400 is retried. */
    fake_script(
        "[{\"status\": 400, \"headers\": {\"x-should-retry\": \"true\"}}, {\"text\": \"yes\"}]");
    fake_case_init(&t, "openai");
    t.cfg.retry_base_ms = 20;
    assert_int_equal(fake_case_run(&t), RF_OK);
    assert_string_equal(t.resp.text, "yes");
    assert_int_equal(t.resp.attempts, 2);
    fake_case_release(&t);
}

static void test_llm_retry_after_over_cap(void **state)
{
    (void)state;
    const char *entries[] = {
        "[{\"status\": 429, \"headers\": {\"retry-after\": \"120\"}}, {\"text\": \"no\"}]",
        "[{\"status\": 529, \"headers\": {\"retry-after-ms\": \"90000\"}}, {\"text\": \"no\"}]",
    };
    const int64_t want[] = {120000, 90000};
    for (int i = 0; i < 2; i++) {
        fake_script(entries[i]);
        struct fake_case t;
        fake_case_init(&t, "anthropic");
        int64_t t0 = clock_mono_ms();
        assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
        assert_true(clock_mono_ms() - t0 < 1000); /* it did not sleep */
        assert_int_equal(t.resp.attempts, 1);
        assert_int_equal(t.resp.retry_after_ms, want[i]);
        assert_non_null(strstr(t.err.message, "over the 60000 ms limit"));
        fake_case_release(&t);
    }
}

/* When retries run out, a retry-after within the cap is still handed up as the hint. */
static void test_llm_retry_after_hint_when_exhausted(void **state)
{
    (void)state;
    fake_script("[{\"status\": 429, \"times\": 3, \"headers\": {\"retry-after-ms\": \"30\"}}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    assert_int_equal(t.resp.attempts, 3);
    assert_int_equal(t.resp.retry_after_ms, 30);
    fake_case_release(&t);
}

/* ---- timeouts and cancellation --------------------------------------------- */

static void test_llm_idle_timeout(void **state)
{
    (void)state;
    /* Stalls mid-stream, then before the response head. */
    const char *entries[] = {
        "[{\"text\": \"one chunk then silence\", \"chunk_size\": 4, \"stall_ms\": 6000}]",
        "[{\"latency_ms\": 6000}]",
    };
    for (int i = 0; i < 2; i++) {
        fake_script(entries[i]);
        struct fake_case t;
        fake_case_init(&t, i == 0 ? "anthropic" : "openai");
        t.cfg.idle_timeout_ms = 1000;
        int64_t t0 = clock_mono_ms();
        assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
        int64_t took = clock_mono_ms() - t0;
        if (took < 1000 || took > 1000 + 2000)
            fail_msg("stall case %d ended after %lld ms (idle timeout 1000 ms)", i,
                     (long long)took);
        assert_non_null(strstr(t.err.message, "idle timeout"));
        assert_null(t.resp.text);
        assert_int_equal(t.resp.attempts, 1);
        fake_case_release(&t);
    }
}

static void test_llm_total_timeout(void **state)
{
    (void)state;
    fake_script("[{\"text\": \"a slow but steady stream of many small pieces of text\", "
                "\"chunk_size\": 1, \"chunk_delay_ms\": 200}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    t.cfg.total_timeout_ms = 1200;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 1150 && took <= 1200 + 2000);
    assert_non_null(strstr(t.err.message, "total timeout"));
    assert_null(t.resp.text);
    fake_case_release(&t);
}

static void test_llm_cancel_in_flight(void **state)
{
    (void)state;
    /* Mid-stream: cancel once two deltas arrived (pieces every 300 ms, ~20 s in all). */
    fake_script("[{\"text\": \"a long reply that would take twenty seconds to stream out\", "
                "\"chunk_size\": 1, \"chunk_delay_ms\": 300}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    t.c.cancel_after_calls = 2;
    assert_int_equal(fake_case_run(&t), RF_CANCELLED);
    int64_t lag = clock_mono_ms() - t.c.cancelled_at;
    assert_true(t.c.cancelled_at > 0);
    if (lag > 1000)
        fail_msg("the call returned %lld ms after cancellation", (long long)lag);
    assert_null(t.resp.text);
    assert_int_equal(t.err.code, RF_CANCELLED);
    fake_case_release(&t);

    /* Before any byte: the server takes 10 s to answer; cancel after 300 ms. */
    fake_script("[{\"latency_ms\": 10000}]");
    fake_case_init(&t, "openai");
    int64_t t0 = clock_mono_ms();
    t.c.cancel_at = t0 + 300;
    assert_int_equal(fake_case_run(&t), RF_CANCELLED);
    assert_true(clock_mono_ms() - t0 < 300 + 1000);
    fake_case_release(&t);

    /* During the wait before a retry (a 5 s retry-after). */
    fake_script("[{\"status\": 503, \"headers\": {\"retry-after\": \"5\"}}]");
    fake_case_init(&t, "anthropic");
    t0 = clock_mono_ms();
    t.c.cancel_at = t0 + 300;
    assert_int_equal(fake_case_run(&t), RF_CANCELLED);
    assert_true(clock_mono_ms() - t0 < 300 + 1000);
    assert_int_equal(t.c.retries, 1);
    assert_int_equal(t.c.delays[0], 5000);
    fake_case_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_retry_statuses_three_attempts),
        cmocka_unit_test(test_llm_retry_then_success),
        cmocka_unit_test(test_llm_retry_connection_reset),
        cmocka_unit_test(test_llm_retry_connect_timeout),
        cmocka_unit_test(test_llm_permanent_statuses_one_attempt),
        cmocka_unit_test(test_llm_retry_after_ms_beats_retry_after),
        cmocka_unit_test(test_llm_x_should_retry),
        cmocka_unit_test(test_llm_retry_after_over_cap),
        cmocka_unit_test(test_llm_retry_after_hint_when_exhausted),
        cmocka_unit_test(test_llm_idle_timeout),
        cmocka_unit_test(test_llm_total_timeout),
        cmocka_unit_test(test_llm_cancel_in_flight),
    };
    return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
