/* write_group - group commit of single ratings; design in write_group.h. */
#include "http/write_group.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/metrics.h"
#include "core/xalloc.h"
#include "core/banned.h"

/* A group's size bound: a leader does not hold its own request back for ever. */
#define GROUP_MAX 128

struct member {
    const char *ws;
    struct feedback_new item;
    enum rf_status rc;
    struct rf_err err;
    json_t *fb;
    bool done;
    struct member *next;
};

struct write_group {
    char *fail_note; /* tests: a rating with this note fails (REFOLD_TEST_RATING_FAIL) */
    int hold_ms;     /* tests: a leader waits this long for others (REFOLD_TEST_RATING_HOLD_MS) */
    pthread_mutex_t lock;
    pthread_cond_t done; /* a group finished */
    struct member *head, *tail;
    bool leading;
};

struct write_group *write_group_new(void)
{
    struct write_group *g = xcalloc(1, sizeof *g);
    const char *fail = getenv("REFOLD_TEST_RATING_FAIL");
    g->fail_note = fail && *fail ? xstrdup(fail) : NULL;
    const char *hold = getenv("REFOLD_TEST_RATING_HOLD_MS");
    g->hold_ms = hold ? (int)strtol(hold, NULL, 10) : 0;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->done, NULL);
    return g;
}

void write_group_free(struct write_group *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->done);
    free(g->fail_note);
    free(g);
}

/* One member inside the open transaction. Its own outcome (an unknown trace) goes to m;
 * the return value is for failures of the transaction itself. */
static enum rf_status apply(struct write_group *g, struct store *st, struct member *m,
                            struct rf_err *err)
{
    if (g->fail_note && m->item.note && strcmp(m->item.note, g->fail_note) == 0)
        return rf_fail(err, RF_INTERNAL, "refused for the test (REFOLD_TEST_RATING_FAIL)");
    struct store_item_result r;
    enum rf_status rc = store_feedback_put(st, m->ws, &m->item, 1, &r, err);
    if (rc)
        return rc;
    if (r.outcome == OUTCOME_REJECTED) {
        m->err = r.err;
        m->err.field[0] = '\0'; /* the trace is the path, not a body field */
        m->rc = m->err.code;
        return RF_OK;
    }
    rc = store_feedback_get(st, m->ws, m->item.trace.trace_id, &m->fb, err);
    m->rc = rc;
    return rc;
}

static void reset(struct member *m)
{
    json_decref(m->fb);
    m->fb = NULL;
    m->rc = RF_OK;
    rf_err_clear(&m->err);
}

/* Apply members in one transaction; true when it committed. */
static bool apply_together(struct write_group *g, struct store *st, struct member *first, int n,
                           struct rf_err *err)
{
    enum rf_status rc = store_begin(st, err);
    struct member *m = first;
    for (int i = 0; rc == RF_OK && i < n; i++, m = m->next)
        rc = apply(g, st, m, err);
    if (rc == RF_OK)
        return store_commit(st, err) == RF_OK;
    store_rollback(st);
    return false;
}

static void lead(struct write_group *g, struct store *st, struct member *first, int n)
{
    struct rf_err err = {0};
    metrics_add(METRIC_RATING_GROUPS, 1);
    metrics_add(METRIC_RATINGS_GROUPED, n);
    if (apply_together(g, st, first, n, &err))
        return;
    /* The transaction failed as a whole: each member again on its own, so that the cause
     * fails only its own request. */
    struct member *m = first;
    for (int i = 0; i < n; i++, m = m->next) {
        reset(m);
        if (!apply_together(g, st, m, 1, &m->err)) {
            json_decref(m->fb);
            m->fb = NULL;
            m->rc = m->err.code ? m->err.code : RF_INTERNAL;
        }
    }
}

enum rf_status write_group_feedback(struct write_group *g, struct store *st, const char *ws,
                                    const char *trace_id, const char *rating, const char *note,
                                    json_t **out, struct rf_err *err)
{
    struct member me = {.ws = ws,
                        .item = {.trace = {.trace_id = trace_id}, .rating = rating, .note = note}};
    pthread_mutex_lock(&g->lock);
    if (g->tail)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (!me.done) {
        if (g->leading) {
            pthread_cond_wait(&g->done, &g->lock);
            continue;
        }
        /* Lead: take what is queued (this request is in it, unless an earlier group took it
         * and is about to report), up to GROUP_MAX. */
        g->leading = true;
        if (g->hold_ms > 0) {
            pthread_mutex_unlock(&g->lock);
            nanosleep(&(struct timespec){0, (long)g->hold_ms * 1000000}, NULL);
            pthread_mutex_lock(&g->lock);
        }
        struct member *first = g->head, *last = first;
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
        lead(g, st, first, n);
        pthread_mutex_lock(&g->lock);
        for (struct member *m = first; m; m = m->next)
            m->done = true;
        g->leading = false;
        pthread_cond_broadcast(&g->done);
    }
    pthread_mutex_unlock(&g->lock);
    if (me.rc) {
        *err = me.err;
        if (!err->code)
            rf_fail(err, me.rc, "the rating could not be stored");
        json_decref(me.fb);
        return me.rc;
    }
    *out = me.fb;
    return RF_OK;
}
