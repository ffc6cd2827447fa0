/* write_group - group commit of single ratings; design in write_group.h. */
#include "http/write_group.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "jobs/jobs.h"
#include "core/banned.h"

/* A group's size bound: the writer answers a long queue in several transactions. */
#define GROUP_MAX 128

struct rating {
    struct write_group *g;
    struct MHD_Connection *conn; /* resumed when done; NULL for write_group_now */
    char *ws, *trace_id, *rating, *note;
    enum rf_status rc;
    struct rf_err err;
    json_t *fb;
    bool done;   /* the writer is finished with it (g->lock) */
    bool orphan; /* its connection went away first: the writer frees it (g->lock) */
    struct rating *next;
};

struct write_group {
    char *db_url;
    char *fail_note; /* tests: a rating with this note fails (REFOLD_TEST_RATING_FAIL) */
    int hold_ms;     /* tests: the writer waits this long for more (REFOLD_TEST_RATING_HOLD_MS) */
    pthread_mutex_t lock;
    pthread_cond_t work; /* ratings queued, or stopping */
    struct rating *head, *tail;
    pthread_t thread;
    bool started, stopping;
};

struct write_group *write_group_new(const char *db_url)
{
    struct write_group *g = xcalloc(1, sizeof *g);
    g->db_url = xstrdup(db_url);
    if (job_types_test_enabled()) { /* the test hooks exist with REFOLD_TEST_JOBS=1 only */
        const char *fail = getenv("REFOLD_TEST_RATING_FAIL");
        g->fail_note = fail && *fail ? xstrdup(fail) : NULL;
        const char *hold = getenv("REFOLD_TEST_RATING_HOLD_MS");
        g->hold_ms = hold ? (int)strtol(hold, NULL, 10) : 0;
    }
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->work, NULL);
    return g;
}

static struct rating *rating_new(struct write_group *g, const char *ws, const char *trace_id,
                                 const char *rating, const char *note);

static void rating_free(struct rating *r)
{
    if (!r)
        return;
    free(r->ws);
    free(r->trace_id);
    free(r->rating);
    free(r->note);
    json_decref(r->fb);
    free(r);
}

/* One rating inside the open transaction. Its own outcome (an unknown trace) goes to r;
 * the return value is for failures of the transaction itself. */
static enum rf_status apply(struct write_group *g, struct store *st, struct rating *r,
                            struct rf_err *err)
{
    if (g->fail_note && r->note && strcmp(r->note, g->fail_note) == 0)
        return rf_fail(err, RF_INTERNAL, "refused for the test (REFOLD_TEST_RATING_FAIL)");
    struct feedback_new item = {.trace = {.trace_id = r->trace_id}, .rating = r->rating,
                                .note = r->note};
    struct store_item_result res;
    enum rf_status rc = store_feedback_put(st, r->ws, &item, 1, &res, err);
    if (rc)
        return rc;
    if (res.outcome == OUTCOME_REJECTED) {
        r->err = res.err;
        r->err.field[0] = '\0'; /* the trace is the path, not a body field */
        r->rc = r->err.code;
        return RF_OK;
    }
    return store_feedback_get(st, r->ws, r->trace_id, &r->fb, err);
}

static void reset(struct rating *r)
{
    json_decref(r->fb);
    r->fb = NULL;
    r->rc = RF_OK;
    rf_err_clear(&r->err);
}

/* Apply n ratings from first in one transaction; true when it committed. */
static bool apply_together(struct write_group *g, struct store *st, struct rating *first, int n,
                           struct rf_err *err)
{
    enum rf_status rc = store_begin(st, err);
    struct rating *r = first;
    for (int i = 0; rc == RF_OK && i < n; i++, r = r->next)
        rc = apply(g, st, r, err);
    if (rc == RF_OK)
        return store_commit(st, err) == RF_OK;
    store_rollback(st);
    return false;
}

static void apply_alone(struct write_group *g, struct store *st, struct rating *r)
{
    reset(r);
    struct rating *next = r->next;
    r->next = NULL;
    if (!apply_together(g, st, r, 1, &r->err)) {
        json_decref(r->fb);
        r->fb = NULL;
        r->rc = r->err.code ? r->err.code : RF_INTERNAL;
    }
    r->next = next;
}

static void count_group(int n)
{
    metrics_add(METRIC_RATING_GROUPS, 1);
    metrics_add(METRIC_RATINGS_GROUPED, n);
}

static void write_all(struct write_group *g, struct store *st, struct rating *first, int n)
{
    struct rf_err err = {0};
    count_group(n);
    if (apply_together(g, st, first, n, &err))
        return;
    /* The transaction failed as a whole: each rating again on its own, so that the cause
     * fails only its own request. */
    struct rating *r = first;
    for (int i = 0; i < n; i++, r = r->next)
        apply_alone(g, st, r);
}

static void *writer_main(void *arg)
{
    struct write_group *g = arg;
    struct store *st = NULL;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stopping)
            pthread_cond_wait(&g->work, &g->lock);
        if (!g->head)
            break; /* stopping, and nothing left */
        if (g->hold_ms > 0) {
            pthread_mutex_unlock(&g->lock);
            clock_sleep_ms(g->hold_ms);
            pthread_mutex_lock(&g->lock);
        }
        struct rating *first = g->head, *last = first;
        int n = 1;
        while (last->next && n < GROUP_MAX) {
            last = last->next;
            n++;
        }
        g->head = last->next;
        if (!g->head)
            g->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&g->lock);

        struct rf_err err = {0};
        if (!st && store_open(g->db_url, &st, &err) != RF_OK) {
            log_error("ratings cannot reach the database", "error=\"%s\"", err.message);
            err.code = RF_UNAVAILABLE;
            for (struct rating *r = first; r; r = r->next) {
                r->rc = RF_UNAVAILABLE;
                r->err = err;
            }
        } else {
            write_all(g, st, first, n);
        }

        /* Hand the outcomes over: mark them done under the lock, then resume the
         * connections outside it (their handlers may free the ratings at once). */
        struct MHD_Connection *resume[GROUP_MAX];
        int nresume = 0;
        pthread_mutex_lock(&g->lock);
        for (struct rating *r = first, *next; r; r = next) {
            next = r->next;
            r->done = true;
            if (r->orphan)
                rating_free(r);
            else
                resume[nresume++] = r->conn;
        }
        pthread_mutex_unlock(&g->lock);
        for (int i = 0; i < nresume; i++)
            MHD_resume_connection(resume[i]);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    store_close(st);
    return NULL;
}

struct rating *write_group_submit(struct write_group *g, struct MHD_Connection *conn,
                                  const char *ws, const char *trace_id, const char *rating,
                                  const char *note)
{
    pthread_mutex_lock(&g->lock);
    if (g->stopping) {
        pthread_mutex_unlock(&g->lock);
        return NULL;
    }
    if (!g->started) {
        if (pthread_create(&g->thread, NULL, writer_main, g) != 0) {
            pthread_mutex_unlock(&g->lock);
            return NULL;
        }
        g->started = true;
    }
    struct rating *r = rating_new(g, ws, trace_id, rating, note);
    r->conn = conn;
    /* Suspended before the writer can see it, so its resume always finds it suspended. */
    MHD_suspend_connection(conn);
    if (g->tail)
        g->tail->next = r;
    else
        g->head = r;
    g->tail = r;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->lock);
    return r;
}

enum rf_status write_group_finish(struct rating *r, json_t **out, struct rf_err *err)
{
    enum rf_status rc = r->rc;
    if (rc) {
        *err = r->err;
        if (!err->code)
            rf_fail(err, rc, "the rating could not be stored");
    } else {
        *out = r->fb;
        r->fb = NULL;
    }
    rating_free(r);
    return rc;
}

void write_group_discard(struct rating *r)
{
    if (!r)
        return;
    struct write_group *g = r->g;
    pthread_mutex_lock(&g->lock);
    bool done = r->done;
    if (!done)
        r->orphan = true;
    pthread_mutex_unlock(&g->lock);
    if (done)
        rating_free(r);
}

static struct rating *rating_new(struct write_group *g, const char *ws, const char *trace_id,
                                 const char *rating, const char *note)
{
    struct rating *r = xcalloc(1, sizeof *r);
    r->g = g;
    r->ws = xstrdup(ws);
    r->trace_id = xstrdup(trace_id);
    r->rating = xstrdup(rating);
    r->note = xstrdup(note);
    return r;
}

enum rf_status write_group_now(struct write_group *g, struct store *st, const char *ws,
                               const char *trace_id, const char *rating, const char *note,
                               json_t **out, struct rf_err *err)
{
    struct rating *r = rating_new(g, ws, trace_id, rating, note);
    count_group(1);
    apply_alone(g, st, r);
    return write_group_finish(r, out, err);
}

void write_group_stop(struct write_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    bool started = g->started;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->lock);
    if (started)
        pthread_join(g->thread, NULL);
    g->started = false;
}

void write_group_free(struct write_group *g)
{
    if (!g)
        return;
    write_group_stop(g);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->work);
    free(g->db_url);
    free(g->fail_note);
    free(g);
}
