/*
 * store_evals - evals and their executions, with the agent counters.
 *
 * An execution is one eval's prediction on one trace, upserted by
 * (eval_id, trace_id). The trace must belong to the eval's agent. Counter
 * upkeep: a new execution adds to `executions`, and when its trace is rated
 * positive or negative also to the matching pass/fail bucket; a changed
 * prediction moves it between buckets. A batch gathers the changes and writes
 * them once (struct stats_deltas). New executions are inserted first and
 * looked up only when the insert changed nothing (see store_traces.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

_Static_assert(offsetof(struct execution_new, trace) == 0, "trace_lock_batch reads the ref at offset 0");

#define EVAL_COLS "e.id, e.agent_id, e.name, e.description, e.created_at"

static const char *SQL_AGENT_IN_WS =
    "SELECT status FROM agents WHERE id = ? AND workspace_id = ?";
static const char *SQL_EVAL_INSERT =
    "INSERT INTO evals (id, agent_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)";
static const char *SQL_EVAL_GET =
    "SELECT " EVAL_COLS " FROM evals e JOIN agents a ON a.id = e.agent_id "
    "WHERE e.id = ? AND a.workspace_id = ?";
static const char *SQL_EVAL_LIST_WS =
    "SELECT " EVAL_COLS " FROM evals e JOIN agents a ON a.id = e.agent_id "
    "WHERE a.workspace_id = ? AND e.id < ? ORDER BY e.id DESC LIMIT ?";
static const char *SQL_EVAL_LIST_AGENT =
    "SELECT " EVAL_COLS " FROM evals e JOIN agents a ON a.id = e.agent_id "
    "WHERE e.agent_id = ? AND a.workspace_id = ? AND e.id < ? ORDER BY e.id DESC LIMIT ?";
static const char *SQL_EXEC_GET =
    "SELECT id, predicted_result, predicted_reason, execution_time_ms FROM eval_executions "
    "WHERE eval_id = ? AND trace_id = ?";
static const char *SQL_EXEC_INSERT =
    "INSERT INTO eval_executions (id, eval_id, trace_id, agent_id, predicted_result, "
    "predicted_reason, execution_time_ms, executed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (eval_id, trace_id) DO NOTHING";
static const char *SQL_EXEC_UPDATE =
    "UPDATE eval_executions SET predicted_result = ?, predicted_reason = ?, "
    "execution_time_ms = ?, executed_at = ? WHERE id = ?";

static json_t *eval_from_row(struct db_stmt *s)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "id", col_str(s, 0), "agent_id", col_str(s, 1),
                     "name", col_str(s, 2), "description", col_str(s, 3), "created_at",
                     col_time(s, 4));
}

enum rf_status store_eval_create(struct store *st, const char *ws, const char *agent_id,
                                 const char *name, const char *description, json_t **out,
                                 struct rf_err *err)
{
    struct db *db = st->db;
    char id[ID_MAX];
    id_new("eval_", id);
    bool found;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_row(db, SQL_AGENT_IN_WS, DB_ARGS(DB_T(agent_id), DB_T(ws)), &s, &found, err);
    if (rc == RF_OK) {
        db_done(s);
        if (!found)
            rc = rf_fail_field(err, RF_NOT_FOUND, "agent_id", "agent %s not found", agent_id);
    }
    if (rc == RF_OK) {
        rc = db_run(db, SQL_EVAL_INSERT,
                    DB_ARGS(DB_T(id), DB_T(agent_id), DB_T(name), DB_T(description),
                            DB_I(clock_now_ms())),
                    NULL, err);
        if (rc == RF_CONFLICT)
            rf_fail_field(err, RF_CONFLICT, "name", "agent %s already has an eval named \"%s\"",
                          agent_id, name);
    }
    rc = db_end(db, rc, err);
    if (rc == RF_OK && out)
        rc = store_eval_get(st, ws, id, out, err);
    return rc;
}

enum rf_status store_eval_get(struct store *st, const char *ws, const char *id, json_t **out,
                              struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_EVAL_GET, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = eval_from_row(s);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "eval %s not found", id);
}

enum rf_status store_eval_list(struct store *st, const char *ws, const char *agent_id,
                               const struct store_page *page, struct store_list *out,
                               struct rf_err *err)
{
    const char *bound;
    enum rf_status rc = page_id_cursor(page, &bound, err);
    if (rc)
        return rc;
    struct db_stmt *s;
    if (agent_id)
        rc = db_query(st->db, SQL_EVAL_LIST_AGENT,
                      DB_ARGS(DB_T(agent_id), DB_T(ws), DB_T(bound), DB_I(page->limit + 1)), &s,
                      err);
    else
        rc = db_query(st->db, SQL_EVAL_LIST_WS,
                      DB_ARGS(DB_T(ws), DB_T(bound), DB_I(page->limit + 1)), &s, err);
    if (rc)
        return rc;
    return page_collect(s, eval_from_row, page->limit, "id", out, err);
}

static enum rf_status put_execution(struct db *db, const char *ws, const char *eval_id,
                                    const char *eval_agent, const struct execution_new *in,
                                    const struct trace_locks *locks, int64_t now, int64_t *v, struct store_item_result *r,
                                    struct rf_err *err)
{
    struct trace_found t;
    bool found;
    enum rf_status rc = trace_resolve_item(db, ws, &in->trace, locks, &t, r, &found, err);
    if (rc || !found)
        return rc;
    trace_found_release(&t); /* only the rating is needed */
    const char *rating = t.rating[0] ? t.rating : NULL;
    if (strcmp(t.agent_id, eval_agent) != 0) {
        r->outcome = OUTCOME_REJECTED;
        rf_fail_field(&r->err, RF_INVALID, "trace_id",
                      "trace %s belongs to another agent than eval %s", t.trace_id, eval_id);
        return RF_OK;
    }
    int64_t inserted = 0;
    id_new("exe_", r->id);
    rc = db_run(db, SQL_EXEC_INSERT,
                DB_ARGS(DB_T(r->id), DB_T(eval_id), DB_T(t.trace_id), DB_T(t.agent_id),
                        DB_I(in->predicted_result), DB_T(in->predicted_reason),
                        DB_IN(in->execution_time_ms, in->has_execution_time), DB_I(now)),
                &inserted, err);
    if (rc)
        return rc;
    if (inserted) {
        r->outcome = OUTCOME_CREATED;
        v[ST_EXECUTIONS]++;
        stats_bucket(v, rating, in->predicted_result, 1);
        return RF_OK;
    }
    /* The eval judged this trace before: compare, and update when something changed. */
    struct db_stmt *s;
    rc = db_row(db, SQL_EXEC_GET, DB_ARGS(DB_T(eval_id), DB_T(t.trace_id)), &s, &found, err);
    if (rc)
        return rc;
    if (!found) {
        db_done(s);
        return rf_fail(err, RF_INTERNAL, "execution of eval %s on trace %s conflicts but "
                       "cannot be found", eval_id, t.trace_id);
    }
    snprintf(r->id, ID_MAX, "%s", db_text(s, 0));
    bool old_pred = db_int(s, 1) != 0;
    bool same = old_pred == in->predicted_result &&
                ((!db_text(s, 2) && !in->predicted_reason) ||
                 (db_text(s, 2) && in->predicted_reason &&
                  strcmp(db_text(s, 2), in->predicted_reason) == 0)) &&
                (db_is_null(s, 3) ? !in->has_execution_time
                                  : in->has_execution_time && db_int(s, 3) == in->execution_time_ms);
    db_done(s);
    if (same) {
        r->outcome = OUTCOME_UNCHANGED;
        return RF_OK;
    }
    r->outcome = OUTCOME_UPDATED;
    rc = db_run(db, SQL_EXEC_UPDATE,
                DB_ARGS(DB_I(in->predicted_result), DB_T(in->predicted_reason),
                        DB_IN(in->execution_time_ms, in->has_execution_time), DB_I(now),
                        DB_T(r->id)),
                NULL, err);
    if (rc == RF_OK && old_pred != in->predicted_result) {
        stats_bucket(v, rating, old_pred, -1);
        stats_bucket(v, rating, in->predicted_result, 1);
    }
    return rc;
}

/* A batch of executions of one eval, for counted_tx. */
struct exec_batch {
    const char *ws;
    const char *eval_id;
    const struct execution_new *items;
    int n;
    struct store_item_result *results;
};

static enum rf_status executions_put_tx(struct db *db, void *ctx, struct stats_deltas *deltas,
                                        struct rf_err *err)
{
    struct exec_batch *b = ctx;
    json_t *eval = NULL;
    struct store st = {db};
    enum rf_status rc = store_eval_get(&st, b->ws, b->eval_id, &eval, err);
    if (rc)
        return rc;
    char agent[ID_MAX];
    snprintf(agent, sizeof agent, "%s", json_string_value(json_object_get(eval, "agent_id")));
    json_decref(eval);
    int64_t *v = stats_for(deltas, agent);
    int64_t now = clock_now_ms();
    struct trace_locks locks;
    rc = trace_lock_batch(db, b->ws, b->items, sizeof *b->items, b->n, &locks, err);
    if (rc == RF_OK)
        rc = trace_locks_read(db, &locks, err); /* executions leave ratings as they are */
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        memset(&b->results[i], 0, sizeof b->results[i]);
        rc = put_execution(db, b->ws, b->eval_id, agent, &b->items[i], &locks, now, v,
                           &b->results[i], err);
    }
    trace_locks_release(&locks);
    return rc;
}

enum rf_status store_executions_put(struct store *st, const char *ws, const char *eval_id,
                                    const struct execution_new *items, int n,
                                    struct store_item_result *results, struct rf_err *err)
{
    struct exec_batch b = {ws, eval_id, items, n, results};
    return counted_tx(st->db, executions_put_tx, &b, err);
}
