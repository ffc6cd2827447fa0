/*
 * store_evals - evals and their executions, with the agent counters.
 *
 * An execution is one eval's prediction on one trace, upserted by
 * (eval_id, trace_id). The trace must belong to the eval's agent. Counter
 * upkeep: a new execution adds to `executions`, and when its trace is rated
 * positive or negative also to the matching pass/fail bucket; a changed
 * prediction moves it between buckets. A batch gathers the changes and writes
 * them once (struct stats_deltas). New executions are inserted first and
 * looked up only when the insert changed nothing (see store_traces.c): one
 * statement per item on SQLite (insert_each), one per batch on PostgreSQL, where
 * every statement is a round trip (insert_many). The outcomes are those of the
 * items applied one by one, in order, either way.
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
/* The names an execution rejected for another agent's trace is reported with. */
static const char *SQL_EXEC_OTHER_AGENT_NAMES =
    "SELECT e.name, ea.name, ta.name FROM evals e JOIN agents ea ON ea.id = e.agent_id "
    "JOIN agents ta ON ta.id = ? WHERE e.id = ?";
static const char *SQL_EXEC_GET =
    "SELECT id, predicted_result, predicted_reason, execution_time_ms FROM eval_executions "
    "WHERE eval_id = ? AND trace_id = ?";
static const char *SQL_EXEC_INSERT =
    "INSERT INTO eval_executions (id, eval_id, trace_id, agent_id, predicted_result, "
    "predicted_reason, execution_time_ms, executed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (eval_id, trace_id) DO NOTHING";
/* PostgreSQL: a batch's new executions in one statement ($4: [{id, t, p, r, ms}, …]). */
static const char *SQL_EXEC_INSERT_MANY =
    "INSERT INTO eval_executions (id, eval_id, trace_id, agent_id, predicted_result, "
    "predicted_reason, execution_time_ms, executed_at) "
    "SELECT r.id, ?, r.t, ?, r.p, r.r, r.ms, ? "
    "FROM jsonb_to_recordset(CAST(? AS jsonb)) AS r(id text, t text, p integer, r text, ms bigint) "
    "ON CONFLICT (eval_id, trace_id) DO NOTHING RETURNING id";
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
    char bound[ID_MAX];
    enum rf_status rc = page_id_cursor(page, "eval_", bound, err);
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

/* An execution whose (eval, trace) row exists: compare, and update when something changed. */
static enum rf_status update_execution(struct db *db, const char *eval_id, const char *trace_id,
                                       const char *rating, const struct execution_new *in,
                                       int64_t now, int64_t *v, struct store_item_result *r,
                                       struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc =
        db_row(db, SQL_EXEC_GET, DB_ARGS(DB_T(eval_id), DB_T(trace_id)), &s, &found, err);
    if (rc)
        return rc;
    if (!found) {
        db_done(s);
        return rf_fail(err, RF_INTERNAL, "execution of eval %s on trace %s conflicts but "
                       "cannot be found", eval_id, trace_id);
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

/* An item's trace, resolved and checked to belong to the eval's agent. */
struct exec_target {
    char trace_id[ID_MAX];
    char rating[16]; /* "" when unrated */
    bool ok;         /* false: rejected (in its result) */
};

/* Reject item i, whose trace belongs to agent trace_agent, not to the eval's: by names (the
 * trace as the item named it, the eval, both agents), as whoever sent it knows them, with
 * details {field: the trace's field, reason: "trace_of_another_agent"}. */
static enum rf_status reject_other_agent(struct db *db, const struct exec_batch *b, int i,
                                         const char *trace_id, const char *trace_agent,
                                         struct rf_err *err)
{
    const struct trace_ref *ref = &b->items[i].trace;
    struct store_item_result *r = &b->results[i];
    char trace[200];
    if (ref->external_id)
        snprintf(trace, sizeof trace, "source %s and external_id %s",
                 ref->source ? ref->source : "api", ref->external_id);
    else
        snprintf(trace, sizeof trace, "id %s", trace_id);
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(db, SQL_EXEC_OTHER_AGENT_NAMES,
                               DB_ARGS(DB_T(trace_agent), DB_T(b->eval_id)), &s, &found, err);
    if (rc)
        return rc;
    r->outcome = OUTCOME_REJECTED;
    if (found)
        rf_fail_field(&r->err, RF_INVALID, ref->external_id ? "external_id" : "trace_id",
                      "the trace with %s belongs to agent \"%s\", not to agent \"%s\" of eval "
                      "\"%s\"",
                      trace, db_text(s, 2), db_text(s, 1), db_text(s, 0));
    else
        rf_fail_field(&r->err, RF_INVALID, ref->external_id ? "external_id" : "trace_id",
                      "the trace with %s belongs to another agent than eval %s", trace,
                      b->eval_id);
    db_done(s);
    snprintf(r->err.reason, sizeof r->err.reason, "trace_of_another_agent");
    return RF_OK;
}

static enum rf_status resolve_target(struct db *db, const struct exec_batch *b, const char *agent,
                                     const struct trace_locks *locks, int i,
                                     struct exec_target *t, struct rf_err *err)
{
    struct store_item_result *r = &b->results[i];
    struct trace_found f;
    bool found;
    memset(t, 0, sizeof *t);
    enum rf_status rc = trace_resolve_item(db, b->ws, &b->items[i].trace, locks, &f, r, &found, err);
    if (rc || !found)
        return rc;
    trace_found_release(&f); /* only the rating is needed */
    if (strcmp(f.agent_id, agent) != 0)
        return reject_other_agent(db, b, i, f.trace_id, f.agent_id, err);
    snprintf(t->trace_id, sizeof t->trace_id, "%s", f.trace_id);
    snprintf(t->rating, sizeof t->rating, "%s", f.rating);
    t->ok = true;
    id_new("exe_", r->id);
    return RF_OK;
}

/* SQLite: one INSERT … ON CONFLICT DO NOTHING per resolved item, in order. */
static enum rf_status insert_each(struct db *db, const struct exec_batch *b, const char *agent,
                                  const struct exec_target *t, int64_t now, bool *created,
                                  struct rf_err *err)
{
    enum rf_status rc = RF_OK;
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        const struct execution_new *in = &b->items[i];
        int64_t inserted = 0;
        if (t[i].ok)
            rc = db_run(db, SQL_EXEC_INSERT,
                        DB_ARGS(DB_T(b->results[i].id), DB_T(b->eval_id), DB_T(t[i].trace_id),
                                DB_T(agent), DB_I(in->predicted_result),
                                DB_T(in->predicted_reason),
                                DB_IN(in->execution_time_ms, in->has_execution_time), DB_I(now)),
                        &inserted, err);
        created[i] = inserted != 0;
    }
    return rc;
}

/* PostgreSQL, where each statement is a round trip: the same inserts as insert_each in
 * one statement. An item naming a trace an earlier item named stays out of it, as
 * insert_each's DO NOTHING would leave it out. */
static enum rf_status insert_many(struct db *db, const struct exec_batch *b, const char *agent,
                                  const struct exec_target *t, int64_t now, bool *created,
                                  struct rf_err *err)
{
    int n = b->n;
    const char **keys = xcalloc((size_t)n + 1, sizeof *keys);
    const char **ids = xcalloc((size_t)n + 1, sizeof *ids);
    bool *repeat = xcalloc((size_t)n + 1, sizeof *repeat);
    for (int i = 0; i < n; i++)
        keys[i] = t[i].ok ? t[i].trace_id : NULL;
    batch_repeats(keys, n, repeat);
    json_t *rows = json_array();
    for (int i = 0; i < n; i++) {
        if (!t[i].ok || repeat[i])
            continue;
        const struct execution_new *in = &b->items[i];
        ids[i] = b->results[i].id;
        json_array_append_new(
            rows, json_pack("{s:s, s:s, s:i, s:o, s:o}", "id", ids[i], "t", t[i].trace_id, "p",
                            in->predicted_result ? 1 : 0, "r", jx_str_or_null(in->predicted_reason),
                            "ms", in->has_execution_time ? json_integer(in->execution_time_ms)
                                                         : json_null()));
    }
    char *text = jx_dump(rows);
    enum rf_status rc = batch_insert(db, SQL_EXEC_INSERT_MANY,
                                     DB_ARGS(DB_T(b->eval_id), DB_T(agent), DB_I(now), DB_T(text)),
                                     ids, n, created, err);
    free(text);
    json_decref(rows);
    free(keys);
    free(ids);
    free(repeat);
    return rc;
}

/* Resolve every item, insert the new executions, then compare-and-update the rest in
 * order: the outcomes of the items applied one by one, whichever way the inserts went.
 * (Executions change no rating, so resolving them all first reads what resolving each
 * just before its write would.) */
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
    struct exec_target *t = xcalloc((size_t)b->n + 1, sizeof *t);
    bool *created = xcalloc((size_t)b->n + 1, sizeof *created);
    rc = trace_lock_batch(db, b->ws, b->items, sizeof *b->items, b->n, &locks, err);
    if (rc == RF_OK)
        rc = trace_locks_read(db, &locks, err); /* executions leave ratings as they are */
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        memset(&b->results[i], 0, sizeof b->results[i]);
        rc = resolve_target(db, b, agent, &locks, i, &t[i], err);
    }
    if (rc == RF_OK)
        rc = db->backend == DB_POSTGRES ? insert_many(db, b, agent, t, now, created, err)
                                        : insert_each(db, b, agent, t, now, created, err);
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        const struct execution_new *in = &b->items[i];
        const char *rating = t[i].rating[0] ? t[i].rating : NULL;
        if (!t[i].ok)
            continue;
        if (created[i]) {
            b->results[i].outcome = OUTCOME_CREATED;
            v[ST_EXECUTIONS]++;
            stats_bucket(v, rating, in->predicted_result, 1);
        } else { /* judged before, or earlier in this batch */
            rc = update_execution(db, b->eval_id, t[i].trace_id, rating, in, now, v,
                                  &b->results[i], err);
        }
    }
    free(t);
    free(created);
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
