/*
 * store_feedback - one rating per trace (SPEC §3): single and batch upserts, reads
 * and deletes, with the agent counters they move.
 *
 * A rating moves its trace between the rating buckets of agent_stats and moves
 * the trace's executions between pos_pass/pos_fail/neg_pass/neg_fail
 * (rating_deltas, in store_traces.c with the trace side of the counters). An
 * item whose rating and note are those stored is unchanged and writes nothing.
 *
 * Batches apply their items in order, as if one by one. On SQLite each item is
 * resolved, upserted and counted with its own statements (no round trips to
 * save). On PostgreSQL, where each statement is a round trip, a batch locks its
 * traces (trace_lock_batch), reads their feedback and execution counts in one
 * statement, applies the items in memory and upserts the changed ratings in one
 * statement: three round trips per batch instead of three per item.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

/* A batch of feedback items, for counted_tx. */
struct batch {
    const char *ws;
    const struct feedback_new *items;
    int n;
    struct store_item_result *results;
    int64_t now;
};

static const char *SQL_FEEDBACK_UPSERT =
    "INSERT INTO feedback (id, trace_id, agent_id, rating, note, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET rating = excluded.rating, "
    "note = excluded.note, updated_at = excluded.updated_at";
static const char *SQL_FEEDBACK_GET =
    "SELECT f.rating, f.note, f.updated_at, f.created_at FROM feedback f "
    "JOIN traces t ON t.id = f.trace_id WHERE f.trace_id = ? AND t.workspace_id = ?";
static const char *SQL_FEEDBACK_DELETE = "DELETE FROM feedback WHERE trace_id = ?";
/* PostgreSQL batches (feedback_put_many): the locked traces' feedback and execution counts,
 * and the changed ratings in one upsert ($3: [{id, t, a, r, n}, …], one per trace). */
static const char *SQL_FEEDBACK_STATES =
    "SELECT t.id, f.rating, f.note, "
    "(SELECT COALESCE(SUM(x.predicted_result), 0) FROM eval_executions x WHERE x.trace_id = t.id), "
    "(SELECT COUNT(*) FROM eval_executions x WHERE x.trace_id = t.id) "
    "FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id "
    "WHERE t.id IN (SELECT jsonb_array_elements_text(CAST(? AS jsonb)))";
static const char *SQL_FEEDBACK_UPSERT_MANY =
    "INSERT INTO feedback (id, trace_id, agent_id, rating, note, created_at, updated_at) "
    "SELECT r.id, r.t, r.a, r.r, r.n, ?, ? "
    "FROM jsonb_to_recordset(CAST(? AS jsonb)) AS r(id text, t text, a text, r text, n text) "
    "ON CONFLICT (trace_id) DO UPDATE SET rating = excluded.rating, note = excluded.note, "
    "updated_at = excluded.updated_at";

/* What item `in` does to a trace whose feedback is rating ("" when none) and note. */
static enum store_outcome feedback_outcome(const char *rating, const char *note,
                                           const struct feedback_new *in)
{
    if (!rating[0])
        return OUTCOME_CREATED;
    bool same = strcmp(rating, in->rating) == 0 && same_text(note, in->note);
    return same ? OUTCOME_UNCHANGED : OUTCOME_UPDATED;
}

static enum rf_status put_feedback(struct db *db, const char *ws, const struct feedback_new *in,
                                   const struct trace_locks *locks, int64_t now,
                                   struct stats_deltas *deltas,
                                   struct store_item_result *r, struct rf_err *err)
{
    struct trace_found t;
    bool found;
    enum rf_status rc = trace_resolve_item(db, ws, &in->trace, locks, &t, r, &found, err);
    if (rc || !found)
        return rc;
    snprintf(r->id, ID_MAX, "%s", t.trace_id);
    r->outcome = feedback_outcome(t.rating, t.note, in);
    if (r->outcome == OUTCOME_UNCHANGED) {
        trace_found_release(&t);
        return RF_OK;
    }
    char fid[ID_MAX];
    id_new("fb_", fid);
    rc = db_run(db, SQL_FEEDBACK_UPSERT,
                DB_ARGS(DB_T(fid), DB_T(t.trace_id), DB_T(t.agent_id), DB_T(in->rating),
                        DB_T(in->note), DB_I(now), DB_I(now)),
                NULL, err);
    if (rc == RF_OK)
        rc = move_rating(db, t.trace_id, t.rating, in->rating, stats_for(deltas, t.agent_id), err);
    trace_found_release(&t);
    return rc;
}

/* A locked trace's feedback as a PostgreSQL batch sees it: read once, then changed by the
 * batch's items in order, and written in one statement at the end. */
struct fb_state {
    char rating[16]; /* "" when unrated */
    char *note;
    int64_t pass, fail_n; /* its executions (a feedback batch writes none) */
    bool dirty;           /* an item changed it: upsert */
    char fid[ID_MAX];     /* the id the row gets if the upsert inserts it */
};

/* PostgreSQL: every locked trace's feedback and execution counts in one statement. */
static enum rf_status fb_states_read(struct db *db, const struct trace_locks *l,
                                     struct fb_state *out, struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc = trace_locks_query(db, l, SQL_FEEDBACK_STATES, &s, err);
    if (rc)
        return rc;
    bool row;
    while ((rc = db_next(s, &row, err)) == RF_OK && row) {
        struct trace_ref ref = {.trace_id = db_text(s, 0)};
        struct trace_locked *t = trace_locked_find(l, &ref);
        if (!t)
            continue;
        struct fb_state *f = &out[t - l->rows];
        snprintf(f->rating, sizeof f->rating, "%s", db_text(s, 1) ? db_text(s, 1) : "");
        f->note = db_strdup(s, 2);
        f->pass = db_int(s, 3);
        f->fail_n = db_int(s, 4) - f->pass;
    }
    db_done(s);
    return rc;
}

/* PostgreSQL: the batch applied item by item in memory, from one read of the locked traces'
 * feedback, then the changed ratings written in one statement: the outcomes and counters of
 * put_feedback in three round trips instead of three per item. An item naming no locked
 * trace goes through put_feedback (it rejects it, or finds a trace created since). */
static enum rf_status feedback_put_many(struct db *db, struct batch *b,
                                        const struct trace_locks *locks,
                                        struct stats_deltas *deltas, struct rf_err *err)
{
    const struct feedback_new *items = b->items;
    struct fb_state *state = xcalloc((size_t)locks->n + 1, sizeof *state);
    enum rf_status rc = fb_states_read(db, locks, state, err);
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        const struct feedback_new *in = &items[i];
        struct store_item_result *r = &b->results[i];
        memset(r, 0, sizeof *r);
        const struct trace_locked *t = trace_locked_find(locks, &in->trace);
        if (!t) {
            rc = put_feedback(db, b->ws, in, locks, b->now, deltas, r, err);
            continue;
        }
        struct fb_state *f = &state[t - locks->rows];
        snprintf(r->id, ID_MAX, "%s", t->id);
        r->outcome = feedback_outcome(f->rating, f->note, in);
        if (r->outcome == OUTCOME_UNCHANGED)
            continue;
        if (strcmp(f->rating, in->rating) != 0)
            rating_deltas(f->rating[0] ? f->rating : NULL, in->rating, f->pass, f->fail_n,
                          stats_for(deltas, t->agent_id));
        if (!f->dirty) /* the id of the row, should the upsert insert it */
            id_new("fb_", f->fid);
        snprintf(f->rating, sizeof f->rating, "%s", in->rating);
        free(f->note);
        f->note = in->note ? xstrdup(in->note) : NULL;
        f->dirty = true;
    }
    json_t *rows = json_array();
    for (int i = 0; i < locks->n; i++) {
        struct fb_state *f = &state[i];
        if (f->dirty)
            json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", f->fid, "t",
                                                  locks->rows[i].id, "a", locks->rows[i].agent_id,
                                                  "r", f->rating, "n", jx_str_or_null(f->note)));
        free(f->note);
    }
    if (rc == RF_OK && json_array_size(rows)) {
        char *text = jx_dump(rows);
        rc = db_run(db, SQL_FEEDBACK_UPSERT_MANY, DB_ARGS(DB_I(b->now), DB_I(b->now), DB_T(text)),
                    NULL, err);
        free(text);
    }
    json_decref(rows);
    free(state);
    return rc;
}

static enum rf_status feedback_put_tx(struct db *db, void *ctx, struct stats_deltas *deltas,
                                      struct rf_err *err)
{
    struct batch *b = ctx;
    const struct feedback_new *items = b->items;
    struct trace_locks locks;
    enum rf_status rc = trace_lock_batch(db, b->ws, items, sizeof *items, b->n, &locks, err);
    if (rc == RF_OK && db->backend == DB_POSTGRES)
        rc = feedback_put_many(db, b, &locks, deltas, err);
    else
        for (int i = 0; rc == RF_OK && i < b->n; i++) {
            memset(&b->results[i], 0, sizeof b->results[i]);
            rc = put_feedback(db, b->ws, &items[i], &locks, b->now, deltas, &b->results[i], err);
        }
    trace_locks_release(&locks);
    return rc;
}

enum rf_status store_feedback_put(struct store *st, const char *ws,
                                  const struct feedback_new *items, int n,
                                  struct store_item_result *results, struct rf_err *err)
{
    struct batch b = {ws, items, n, results, clock_now_ms()};
    return counted_tx(st->db, feedback_put_tx, &b, err);
}

enum rf_status store_feedback_get(struct store *st, const char *ws, const char *trace_id,
                                  json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc =
        db_row(st->db, SQL_FEEDBACK_GET, DB_ARGS(DB_T(trace_id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = json_pack("{s:s, s:o, s:o, s:o, s:o}", "trace_id", trace_id, "rating",
                         col_str(s, 0), "note", col_str(s, 1), "created_at", col_time(s, 3),
                         "updated_at", col_time(s, 2));
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "trace %s has no feedback", trace_id);
}

static enum rf_status feedback_delete_tx(struct db *db, void *ctx, struct stats_deltas *deltas,
                                         struct rf_err *err)
{
    struct trace_removal *x = ctx;
    struct trace_found t;
    struct trace_ref ref = {.trace_id = x->id};
    enum rf_status rc = trace_resolve(db, x->ws, &ref, NULL, &t, err);
    if (rc)
        return rc;
    if (!t.rating[0])
        rc = rf_fail(err, RF_NOT_FOUND, "trace %s has no feedback", x->id);
    if (rc == RF_OK)
        rc = move_rating(db, t.trace_id, t.rating, NULL, stats_for(deltas, t.agent_id), err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_FEEDBACK_DELETE, DB_ARGS(DB_T(t.trace_id)), NULL, err);
    trace_found_release(&t);
    return rc;
}

enum rf_status store_feedback_delete(struct store *st, const char *ws, const char *trace_id,
                                     struct rf_err *err)
{
    struct trace_removal x = {ws, trace_id};
    return counted_tx(st->db, feedback_delete_tx, &x, err);
}
