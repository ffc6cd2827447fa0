/*
 * test_jobs - unit tests of the job machinery's pure parts and of its store layer on a
 * temporary SQLite file: the backoff bounds over many samples (issue 3, test 5), the SSE
 * frame formatter, atomic claims, fencing, the sweeper, cancel/retry transitions,
 * idempotency, and the event hub.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/jsonx.h"
#include "http/sse.h"
#include "jobs/hub.h"
#include "jobs/jobs.h"
#include "store/store.h"

/* ---- backoff ---- */

static void test_jobs_backoff_bounds(void **state)
{
    (void)state;
    for (int attempt = 1; attempt <= 12; attempt++) {
        double nominal = 5000.0;
        for (int i = 1; i < attempt; i++)
            nominal *= 2;
        double lo = nominal * 0.9, hi = nominal * 1.1;
        if (lo > JOB_BACKOFF_CAP_MS)
            lo = JOB_BACKOFF_CAP_MS;
        if (hi > JOB_BACKOFF_CAP_MS)
            hi = JOB_BACKOFF_CAP_MS;
        int64_t min = INT64_MAX, max = 0;
        double sum = 0;
        const int samples = 20000;
        for (int s = 0; s < samples; s++) {
            int64_t d = job_backoff_ms(attempt, 5000, 0, crypto_random_unit());
            assert_true(d >= (int64_t)lo - 1);
            assert_true(d <= (int64_t)hi + 1);
            min = d < min ? d : min;
            max = d > max ? d : max;
            sum += (double)d;
        }
        /* The jitter really spans +/- 10 % (until the cap flattens it) and centres on the
         * nominal delay. */
        if (hi < JOB_BACKOFF_CAP_MS) {
            assert_true((double)min < lo + nominal * 0.01);
            assert_true((double)max > hi - nominal * 0.01);
            assert_true(sum / samples > nominal * 0.99 && sum / samples < nominal * 1.01);
        }
    }
    assert_int_equal(job_backoff_ms(1, 5000, 0, 0.0), 4500);
    assert_int_equal(job_backoff_ms(1, 5000, 0, 0.5), 5000);
    assert_int_equal(job_backoff_ms(3, 5000, 0, 0.5), 20000);
    assert_int_equal(job_backoff_ms(7, 5000, 0, 0.5), JOB_BACKOFF_CAP_MS); /* 320 s -> cap */
    assert_int_equal(job_backoff_ms(60, 5000, 0, 0.999), JOB_BACKOFF_CAP_MS);
    assert_int_equal(job_backoff_ms(2, 200, 0, 0.5), 400);
}

static void test_jobs_backoff_retry_after(void **state)
{
    (void)state;
    for (int s = 0; s < 10000; s++) {
        double u = crypto_random_unit();
        assert_int_equal(job_backoff_ms(1, 5000, 12000, u), 12000); /* longer: wins */
        int64_t d = job_backoff_ms(1, 5000, 1000, u);               /* shorter: ignored */
        assert_true(d >= 4500 && d <= 5500);
        assert_int_equal(job_backoff_ms(9, 5000, 400000, u), 400000); /* beyond the cap too */
    }
    assert_int_equal(job_backoff_ms(1, 5000, 100LL * 3600 * 1000, 0.5), JOB_RETRY_AFTER_MAX_MS);
}

/* ---- SSE frames ---- */

static void expect_event(int64_t id, const char *event, const char *data, const char *want)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    assert_int_equal(sse_format_event(&b, id, event, data), RF_OK);
    assert_string_equal(buf_str(&b), want);
    buf_release(&b);
}

static void test_sse_format_event(void **state)
{
    (void)state;
    expect_event(7, "progress", "{\"a\":1}", "id: 7\nevent: progress\ndata: {\"a\":1}\n\n");
    expect_event(1, "log", "one\ntwo", "id: 1\nevent: log\ndata: one\ndata: two\n\n");
    expect_event(2, "log", "one\r\ntwo\rthree\n",
                 "id: 2\nevent: log\ndata: one\ndata: two\n"
                 "data: three\ndata: \n\n");
    expect_event(3, "x", "", "id: 3\nevent: x\ndata: \n\n");
    expect_event(-1, NULL, "plain", "data: plain\n\n");
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    sse_format_comment(&b, "ping");
    assert_string_equal(buf_str(&b), ": ping\n\n");
    buf_release(&b);
    /* Past the buffer's cap nothing is appended: never half a frame. */
    buf_init(&b, 24);
    assert_int_equal(sse_format_event(&b, 1, NULL, "{}"), RF_OK);
    assert_int_equal(sse_format_event(&b, 2, "progress", "{}"), RF_TOO_LARGE);
    assert_string_equal(buf_str(&b), "id: 1\ndata: {}\n\n");
    buf_release(&b);
    assert_true(sse_terminal_event("completed"));
    assert_true(sse_terminal_event("failed"));
    assert_true(sse_terminal_event("cancelled"));
    assert_false(sse_terminal_event("progress"));
    assert_false(sse_terminal_event("retry"));
}

/* ---- the store's queue on a temporary SQLite file ---- */

struct fixture {
    char dir[64];
    char db[96];
    struct store *st;
    char ws[ID_MAX];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct rf_err err;
    json_t *w = NULL;
    snprintf(f->dir, sizeof f->dir, "/tmp/refold-unit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
    assert_int_equal(store_open(f->db, &f->st, &err), RF_OK);
    assert_int_equal(store_migrate(f->st, NULL, &err), RF_OK);
    assert_int_equal(store_workspace_create(f->st, "w", &w, &err), RF_OK);
    snprintf(f->ws, sizeof f->ws, "%s", json_string_value(json_object_get(w, "id")));
    json_decref(w);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];
    store_close(f->st);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", f->db, suffix[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void new_job(struct fixture *f, const char *key, const char *params, int max_attempts,
                    char id[ID_MAX], bool *created_out, enum rf_status want)
{
    struct rf_err err;
    json_t *job = NULL;
    bool created = false;
    struct job_new in = {.type = "test_sleep",
                         .params = params,
                         .max_attempts = max_attempts,
                         .run_at = clock_now_ms(),
                         .idempotency_key = key,
                         .fingerprint = key ? params : NULL};
    assert_int_equal(store_job_create(f->st, f->ws, &in, &job, &created, &err), want);
    if (want == RF_OK)
        snprintf(id, ID_MAX, "%s", json_string_value(json_object_get(job, "id")));
    if (created_out)
        *created_out = created;
    json_decref(job);
}

static void claim(struct fixture *f, const char *owner, int64_t lease, struct job_claimed *c,
                  bool want)
{
    struct rf_err err;
    bool got = false;
    assert_int_equal(store_job_claim(f->st, owner, clock_now_ms(), lease, c, &got, &err), RF_OK);
    assert_int_equal(got, want);
}

static int64_t count_events(struct fixture *f, const char *id)
{
    json_t *ev = NULL;
    struct rf_err err;
    assert_int_equal(store_job_events(f->st, id, 0, 1000, &ev, &err), RF_OK);
    int64_t n = (int64_t)json_array_size(ev);
    for (size_t i = 0; i < json_array_size(ev); i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, i), "seq")),
                         (json_int_t)i + 1);
    json_decref(ev);
    return n;
}

static const char *status_of(struct fixture *f, const char *id, char *buf, size_t n)
{
    json_t *j = NULL;
    struct rf_err err;
    assert_int_equal(store_job_get(f->st, f->ws, id, &j, &err), RF_OK);
    snprintf(buf, n, "%s", json_string_value(json_object_get(j, "status")));
    json_decref(j);
    return buf;
}

static void test_store_jobs_claim_and_fence(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    char id[ID_MAX], s[16];
    struct job_claimed c1, c2, none;
    new_job(f, NULL, "{}", 3, id, NULL, RF_OK);
    claim(f, "owner-a", 10, &c1, true);
    assert_string_equal(c1.id, id);
    assert_int_equal(c1.attempt, 1);
    claim(f, "owner-b", 10, &none, false); /* nothing else is due */

    struct job_fence fa = {id, 1, "owner-a"};
    assert_int_equal(store_job_progress(f->st, &fa, "one", 10, NULL, &err), RF_OK);
    assert_int_equal(count_events(f, id), 1);

    /* The lease runs out; the sweeper requeues with a retry event; b claims attempt 2. */
    usleep(20000);
    struct job_swept swept[4];
    int n = 0;
    assert_int_equal(store_job_sweep(f->st, clock_now_ms(), swept, 4, &n, &err), RF_OK);
    assert_int_equal(n, 1);
    assert_string_equal(swept[0].status, "queued");
    claim(f, "owner-b", 30000, &c2, true);
    assert_int_equal(c2.attempt, 2);

    /* Every write of the stale claim matches nothing and changes nothing. */
    int64_t before = count_events(f, id);
    assert_int_equal(store_job_progress(f->st, &fa, "stale", 50, NULL, &err), RF_LEASE_LOST);
    assert_int_equal(store_job_log(f->st, &fa, "info", "stale", &err), RF_LEASE_LOST);
    assert_int_equal(store_job_heartbeat(f->st, &fa, clock_now_ms() + 1000, NULL, &err),
                     RF_LEASE_LOST);
    json_t *result = json_object();
    assert_int_equal(store_job_complete(f->st, &fa, result, NULL, NULL, &err), RF_LEASE_LOST);
    assert_int_equal(store_job_fail(f->st, &fa, "x", "y", NULL, &err), RF_LEASE_LOST);
    assert_int_equal(store_job_release(f->st, &fa, &err), RF_LEASE_LOST);
    struct llm_call_new call = {.step = "analysis", .provider = "p", .model = "m", .latency_ms = 1};
    assert_int_equal(store_llm_call_insert(f->st, &fa, &call, NULL, &err), RF_LEASE_LOST);
    assert_int_equal(count_events(f, id), before);
    assert_string_equal(status_of(f, id, s, sizeof s), "running");

    /* The holder completes: the `completed` stage's progress event, then `completed`. */
    struct job_fence fb = {id, 2, "owner-b"};
    assert_int_equal(store_job_complete(f->st, &fb, result, NULL, NULL, &err), RF_OK);
    assert_string_equal(status_of(f, id, s, sizeof s), "completed");
    assert_int_equal(count_events(f, id), before + 2);
    json_decref(result);
    json_decref(c1.params);
    json_decref(c2.params);
}

static enum rf_status failing_commit(struct store *st, json_t *result, void *ud, struct rf_err *err)
{
    (void)st;
    (void)result;
    struct job_fence *f = ud;
    struct llm_call_new call = {.step = "rewrite", .provider = "p", .model = "m"};
    enum rf_status rc = store_llm_call_insert(st, f, &call, NULL, err);
    assert_int_equal(rc, RF_OK);
    return rf_fail_reason(err, RF_PERMANENT, "boom", "the commit callback failed");
}

static void test_store_jobs_complete_is_atomic(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    char id[ID_MAX], s[16];
    struct job_claimed c;
    struct store_list calls = {0};
    new_job(f, NULL, "{}", 3, id, NULL, RF_OK);
    claim(f, "o", 30000, &c, true);
    struct job_fence fence = {id, 1, "o"};
    json_t *result = json_object();
    assert_int_equal(store_job_complete(f->st, &fence, result, failing_commit, &fence, &err),
                     RF_PERMANENT);
    json_decref(result);
    /* Neither the callback's row nor the result nor the event survived. */
    struct store_page page = {.limit = 10};
    assert_int_equal(store_llm_call_list(f->st, f->ws, id, &page, &calls, &err), RF_OK);
    assert_int_equal(json_array_size(calls.data), 0);
    store_list_release(&calls);
    assert_int_equal(count_events(f, id), 0);
    assert_string_equal(status_of(f, id, s, sizeof s), "running");
    json_decref(c.params);
}

static void test_store_jobs_cancel_wins(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    char id[ID_MAX], s[16];
    struct job_claimed c;
    json_t *job = NULL;
    bool running = false;
    const char *status = NULL;
    new_job(f, NULL, "{}", 3, id, NULL, RF_OK);
    claim(f, "o", 30000, &c, true);
    assert_int_equal(store_job_cancel(f->st, f->ws, id, &job, &running, &err), RF_OK);
    assert_true(running);
    assert_true(json_is_true(json_object_get(job, "cancel_requested")));
    json_decref(job);
    bool flag = false;
    struct job_fence fence = {id, 1, "o"};
    assert_int_equal(store_job_check(f->st, &fence, &flag, &err), RF_OK);
    assert_true(flag);
    /* A transient failure now is not retried: the job ends cancelled. */
    assert_int_equal(store_job_reschedule(f->st, &fence, clock_now_ms(), "t", "m", &status, &err),
                     RF_OK);
    assert_string_equal(status, "cancelled");
    assert_string_equal(status_of(f, id, s, sizeof s), "cancelled");
    /* API retry: back to queued with attempt 0; a second retry is a conflict. */
    assert_int_equal(store_job_retry(f->st, f->ws, id, &job, &err), RF_OK);
    assert_string_equal(json_string_value(json_object_get(job, "status")), "queued");
    assert_int_equal(json_integer_value(json_object_get(job, "attempt")), 0);
    json_decref(job);
    assert_int_equal(store_job_retry(f->st, f->ws, id, &job, &err), RF_CONFLICT);
    assert_string_equal(err.reason, "invalid_transition");
    assert_int_equal(count_events(f, id), 2);
    json_decref(c.params);
}

static void test_store_jobs_idempotency(void **state)
{
    struct fixture *f = *state;
    char a[ID_MAX], b[ID_MAX], other[ID_MAX];
    bool created = false;
    new_job(f, "key-1", "{\"x\":1}", 3, a, &created, RF_OK);
    assert_true(created);
    new_job(f, "key-1", "{\"x\":1}", 3, b, &created, RF_OK);
    assert_false(created);
    assert_string_equal(a, b);
    new_job(f, "key-1", "{\"x\":2}", 3, other, &created, RF_CONFLICT);
    new_job(f, "key-2", "{\"x\":1}", 3, other, &created, RF_OK);
    assert_true(created);
    assert_string_not_equal(a, other);
}

static void test_store_jobs_sweep_exhausted(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    char id[ID_MAX], s[16];
    struct job_claimed c;
    new_job(f, NULL, "{}", 1, id, NULL, RF_OK);
    claim(f, "o", 1, &c, true);
    usleep(5000);
    struct job_swept swept[2];
    int n = 0;
    assert_int_equal(store_job_sweep(f->st, clock_now_ms(), swept, 2, &n, &err), RF_OK);
    assert_int_equal(n, 1);
    assert_string_equal(swept[0].status, "failed");
    assert_string_equal(status_of(f, id, s, sizeof s), "failed");
    json_t *j = NULL;
    assert_int_equal(store_job_get(f->st, f->ws, id, &j, &err), RF_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "lease_expired");
    json_decref(j);
    json_decref(c.params);
}

/* ---- the event hub ---- */

struct waker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wakes;
};

static void on_wake(void *ud)
{
    struct waker *w = ud;
    pthread_mutex_lock(&w->lock);
    w->wakes++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

struct seen {
    int64_t seqs[64];
    int n;
};

static void on_event(void *ud, int64_t seq, const char *type, const char *data)
{
    (void)type;
    (void)data;
    struct seen *s = ud;
    s->seqs[s->n++] = seq;
}

/* Read from sub until `want` events arrived in total (or 3 s passed). */
static void read_until(struct hub_sub *sub, struct waker *w, struct seen *s, int want)
{
    int64_t deadline = clock_mono_ms() + 3000;
    struct hub_read_flags fl;
    hub_read(sub, on_event, s, 0, &fl);
    while (s->n < want && clock_mono_ms() < deadline) {
        pthread_mutex_lock(&w->lock);
        int seen = w->wakes;
        while (w->wakes == seen && clock_mono_ms() < deadline) {
            pthread_mutex_unlock(&w->lock);
            usleep(1000);
            pthread_mutex_lock(&w->lock);
        }
        pthread_mutex_unlock(&w->lock);
        hub_read(sub, on_event, s, 0, &fl);
    }
}

static void test_jobs_hub_delivers_in_order(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    char id[ID_MAX];
    struct job_claimed c;
    struct hub *hub = NULL;
    struct hub_config cfg = {.db_url = f->db, .poll_ms = 20, .resync_ms = 5000, .ping_ms = 60000};
    struct waker w1 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct waker w2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct seen s1 = {0}, s2 = {0};
    struct hub_sub *a = NULL, *b = NULL;
    bool behind = false;

    new_job(f, NULL, "{}", 3, id, NULL, RF_OK);
    claim(f, "o", 30000, &c, true);
    struct job_fence fence = {id, 1, "o"};
    assert_int_equal(store_job_log(f->st, &fence, "info", "one", &err), RF_OK);
    assert_int_equal(hub_start(&cfg, &hub, &err), RF_OK);

    /* a subscribes having replayed nothing; b having replayed event 1 itself. */
    assert_int_equal(hub_subscribe(hub, id, 0, on_wake, &w1, &a, &behind, &err), RF_OK);
    assert_false(behind);
    read_until(a, &w1, &s1, 1); /* a new topic loads past its position at once */
    assert_int_equal(s1.n, 1);
    assert_int_equal(hub_subscribe(hub, id, 1, on_wake, &w2, &b, &behind, &err), RF_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_job_progress(f->st, &fence, "s", i * 10, NULL, &err), RF_OK);
        hub_notify(hub, id);
    }
    read_until(a, &w1, &s1, 6);
    read_until(b, &w2, &s2, 5);
    assert_int_equal(s1.n, 6);
    assert_int_equal(s2.n, 5);
    for (int i = 0; i < 6; i++)
        assert_int_equal(s1.seqs[i], i + 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s2.seqs[i], i + 2);

    /* Without hub_notify (another process wrote), the data_version poll finds it. */
    assert_int_equal(store_job_log(f->st, &fence, "info", "quiet", &err), RF_OK);
    read_until(a, &w1, &s1, 7);
    assert_int_equal(s1.n, 7);
    assert_int_equal(s1.seqs[6], 7);
    assert_int_equal(hub_subscribers(hub), 2);

    hub_unsubscribe(a);
    hub_unsubscribe(b);
    assert_int_equal(hub_subscribers(hub), 0);
    /* A stopping hub refuses subscribers. */
    hub_stop(hub, 100);
    assert_int_equal(hub_subscribe(hub, id, 0, on_wake, &w1, &a, &behind, &err), RF_UNAVAILABLE);
    hub_free(hub);
    json_decref(c.params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_backoff_bounds),
        cmocka_unit_test(test_jobs_backoff_retry_after),
        cmocka_unit_test(test_sse_format_event),
        cmocka_unit_test_setup_teardown(test_store_jobs_claim_and_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_jobs_complete_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_jobs_cancel_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_jobs_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_jobs_sweep_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_hub_delivers_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
