/*
 * store_traces - traces, with the agent counters; their feedback is store_feedback.c.
 *
 * Batches run in one transaction; an item that cannot be stored (unknown
 * agent, a trace that exists under another agent) is rejected alone and the
 * rest commit. Idempotency: a trace with (source, external_id) that already
 * exists is compared field by field and updated only when something differs.
 *
 * Counter upkeep (agent_stats): inserting a trace adds to `traces`; a
 * feedback row moves the trace between rating buckets and moves its
 * executions between pos_pass/pos_fail/neg_pass/neg_fail; deletes undo both.
 * A batch gathers its counter changes per agent (struct stats_deltas) and
 * writes them once, in the same transaction as the rows they describe.
 *
 * New rows are inserted first (INSERT ... ON CONFLICT DO NOTHING) and looked
 * up only when that changed nothing: an import of new traces pays for one
 * index probe per row instead of two: one statement per trace on SQLite
 * (insert_each), one for the whole batch on PostgreSQL, where each statement is a
 * round trip (insert_many); the outcomes are the same. Resolving and locking
 * the traces a feedback or executions write names is store_trace_refs.c.
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

static const char *SQL_VERSION_OF_AGENT =
    "SELECT a.active_version_id, a.status FROM agents a WHERE a.id = ? AND a.workspace_id = ?";
static const char *SQL_AGENT_OF_VERSION =
    "SELECT v.agent_id, a.status FROM agent_versions v JOIN agents a ON a.id = v.agent_id "
    "WHERE v.id = ? AND a.workspace_id = ?";
static const char *SQL_TRACE_BY_EXTERNAL =
    "SELECT id, agent_id, agent_version_id, \"timestamp\", input, output, steps, metadata "
    "FROM traces WHERE workspace_id = ? AND source = ? AND external_id = ?";
static const char *SQL_TRACE_INSERT =
    "INSERT INTO traces (id, workspace_id, agent_id, agent_version_id, source, external_id, "
    "\"timestamp\", input, output, steps, metadata, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workspace_id, source, external_id) DO NOTHING";
/* PostgreSQL: a batch's new traces in one statement ($3: [{id, a, v, s, e, ts, i, o, st,
 * m}, …]). */
static const char *SQL_TRACE_INSERT_MANY =
    "INSERT INTO traces (id, workspace_id, agent_id, agent_version_id, source, external_id, "
    "\"timestamp\", input, output, steps, metadata, created_at) "
    "SELECT r.id, ?, r.a, r.v, r.s, r.e, r.ts, r.i, r.o, r.st, r.m, ? "
    "FROM jsonb_to_recordset(CAST(? AS jsonb)) AS r(id text, a text, v text, s text, e text, "
    "ts bigint, i text, o text, st text, m text) "
    "ON CONFLICT (workspace_id, source, external_id) DO NOTHING RETURNING id";
static const char *SQL_TRACE_UPDATE =
    "UPDATE traces SET agent_version_id = ?, \"timestamp\" = ?, input = ?, output = ?, "
    "steps = ?, metadata = ? WHERE id = ?";
static const char *SQL_TRACE_DELETE = "DELETE FROM traces WHERE id = ?";
#define TRACE_COLS                                                                                 \
    "SELECT t.id, t.agent_id, t.agent_version_id, v.version, t.source, t.external_id, "           \
    "t.\"timestamp\", t.input, t.output, t.steps, t.metadata, t.created_at, f.rating, f.note, "   \
    "f.updated_at FROM traces t JOIN agent_versions v ON v.id = t.agent_version_id "
#define TRACE_SELECT TRACE_COLS "LEFT JOIN feedback f ON f.trace_id = t.id "
/* Lists repeat the cursor bound (the first `?`) on feedback: with a rating filter PostgreSQL
 * may merge-join the traces walk with feedback_trace_id_key walked backwards, and without
 * the bound that walk starts at the newest rating of every agent instead of at the cursor
 * (18 ms instead of 2 for a page deep in 200,000 traces, growing with the table;
 * bench/README-pg.md). Both conditions on t.id and f.trace_id say the same thing. */
#define TRACE_LIST_SELECT TRACE_COLS "LEFT JOIN feedback f ON f.trace_id = t.id AND f.trace_id < ? "
#define TRACE_FILTERS                                                                              \
    " AND t.id < ? AND (CAST(? AS TEXT) IS NULL OR f.rating = ?) AND (? = -1 OR "                 \
    "(? = 1 AND f.trace_id IS NOT NULL) OR (? = 0 AND f.trace_id IS NULL)) "
/* A list walks the index that starts with its filter column (lead), whose other equality
 * `more` is checked on the way: traces_workspace, traces_agent or traces_version. */
#define TRACE_LIST(lead, more)                                                                     \
    TRACE_LIST_SELECT "WHERE " lead " = ? " more TRACE_FILTERS "ORDER BY t.id DESC LIMIT ?"
/* PostgreSQL walks traces_pkey backwards instead, filtering, when it expects the filter to
 * match often: its cost model spreads the matches evenly over the ids, but an old version's
 * traces all lie behind every newer trace, so the first page of version 1 of the largest
 * agent read 666,000 traces (0.7-1 s with 1,000,000; bench/README-pg.md). Written as
 * `= ANY (ARRAY[…])` the version is no constant to the planner, so ordering by (version,
 * id) is what traces_version's walk gives and what a walk of traces_pkey would need a sort
 * of every match for. Same rows, same order. Not for the agent and workspace lists: there
 * it made a rating filter deep in the cursor sort every rating below the cursor instead. */
#define TRACE_LIST_PG(lead, more)                                                                  \
    TRACE_LIST_SELECT "WHERE " lead " = ANY (ARRAY[CAST(? AS TEXT)]) " more TRACE_FILTERS         \
                      "ORDER BY " lead " DESC, t.id DESC LIMIT ?"
static const char *SQL_TRACE_GET = TRACE_SELECT "WHERE t.id = ? AND t.workspace_id = ?";
static const char *SQL_TRACE_TEXTS =
    "SELECT input, output FROM traces WHERE id = ? AND workspace_id = ?";
/* [PostgreSQL?][by workspace, agent, version] */
static const char *const SQL_TRACE_LIST[2][3] = {
    {TRACE_LIST("t.workspace_id", ""), TRACE_LIST("t.agent_id", "AND t.workspace_id = ?"),
     TRACE_LIST("t.agent_version_id", "AND t.workspace_id = ?")},
    {TRACE_LIST("t.workspace_id", ""), TRACE_LIST("t.agent_id", "AND t.workspace_id = ?"),
     TRACE_LIST_PG("t.agent_version_id", "AND t.workspace_id = ?")},
};
static const char *SQL_TRACE_EVALUATIONS =
    "SELECT x.eval_id, e.name, x.predicted_result, x.predicted_reason, x.execution_time_ms, "
    "x.executed_at FROM eval_executions x JOIN evals e ON e.id = x.eval_id "
    "WHERE x.trace_id = ? ORDER BY e.name";
static const char *SQL_VERSION_ID_BY_NUMBER =
    "SELECT v.id FROM agent_versions v JOIN agents a ON a.id = v.agent_id "
    "WHERE v.agent_id = ? AND a.workspace_id = ? AND v.version = ?";

static const char *SQL_EXEC_COUNTS =
    "SELECT COALESCE(SUM(predicted_result), 0), COUNT(*) FROM eval_executions WHERE trace_id = ?";

/* The agent and version a trace goes to, as resolved last in this batch (traces of a batch
 * usually share them). */
struct target {
    const char *key_agent, *key_version; /* the trace_new fields it was resolved from */
    char agent_id[ID_MAX], version_id[ID_MAX];
    bool archived;
};

/* Agent and version for a new trace, checked against ws. Rejections go to item_err. */
static enum rf_status resolve_target(struct db *db, const char *ws, const struct trace_new *in,
                                     struct target *t, bool *rejected, struct rf_err *item_err,
                                     struct rf_err *err)
{
    struct db_stmt *s;
    bool found = true;
    enum rf_status rc;
    *rejected = false;
    bool same = t->agent_id[0] &&
                (in->agent_version_id ? t->key_version &&
                                            strcmp(t->key_version, in->agent_version_id) == 0
                                      : t->key_agent && strcmp(t->key_agent, in->agent_id) == 0);
    if (!same) {
        memset(t, 0, sizeof *t);
        if (in->agent_version_id)
            rc = db_row(db, SQL_AGENT_OF_VERSION, DB_ARGS(DB_T(in->agent_version_id), DB_T(ws)),
                        &s, &found, err);
        else
            rc = db_row(db, SQL_VERSION_OF_AGENT, DB_ARGS(DB_T(in->agent_id), DB_T(ws)), &s,
                        &found, err);
        if (rc)
            return rc;
        if (found && in->agent_version_id) {
            snprintf(t->agent_id, ID_MAX, "%s", db_text(s, 0));
            snprintf(t->version_id, ID_MAX, "%s", in->agent_version_id);
        } else if (found) {
            snprintf(t->agent_id, ID_MAX, "%s", in->agent_id);
            snprintf(t->version_id, ID_MAX, "%s", db_text(s, 0) ? db_text(s, 0) : "");
        }
        t->archived = found && strcmp(db_text(s, 1), "archived") == 0;
        db_done(s);
        if (found) {
            t->key_agent = in->agent_id;
            t->key_version = in->agent_version_id;
        }
    }
    *rejected = true;
    if (!found && in->agent_version_id)
        rf_fail_field(item_err, RF_NOT_FOUND, "agent_version_id", "agent version %s not found",
                      in->agent_version_id);
    else if (!found)
        rf_fail_field(item_err, RF_NOT_FOUND, "agent_id", "agent %s not found", in->agent_id);
    else if (t->archived)
        rf_fail_reason(item_err, RF_CONFLICT, "agent_archived", "agent %s is archived",
                       t->agent_id);
    else if (!t->version_id[0])
        rf_fail_reason(item_err, RF_CONFLICT, "no_active_version",
                       "agent %s has no active version to attach the trace to", t->agent_id);
    else
        *rejected = false;
    return RF_OK;
}

bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *trace_source(const struct trace_new *in)
{
    return in->source ? in->source : "api";
}

static int64_t trace_ts(const struct trace_new *in, int64_t now)
{
    return in->has_timestamp ? in->timestamp : now;
}

/* A trace whose (source, external_id) exists: the same trace again, perhaps changed.
 * Compare, and update when something differs; another agent's trace is rejected. */
static enum rf_status update_trace(struct db *db, const char *ws, const struct trace_new *in,
                                   const char *agent_id, const char *version_id, int64_t ts,
                                   struct store_item_result *r, struct rf_err *err)
{
    const char *source = trace_source(in);
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(db, SQL_TRACE_BY_EXTERNAL,
                               DB_ARGS(DB_T(ws), DB_T(source), DB_T(in->external_id)), &s, &found,
                               err);
    if (rc)
        return rc;
    if (!found) {
        db_done(s);
        return rf_fail(err, RF_INTERNAL, "trace %s/%s conflicts but cannot be found", source,
                       in->external_id);
    }
    snprintf(r->id, ID_MAX, "%s", db_text(s, 0));
    bool other_agent = strcmp(db_text(s, 1), agent_id) != 0;
    if (!in->has_timestamp)
        ts = db_int(s, 3);
    /* Sent with agent_id, which names no version, it keeps the version it is stored
     * under, as it keeps its timestamp: the agent's active version may have changed since,
     * and a pipeline re-sending its data must not move old traces onto the new one. */
    char stored_version[ID_MAX];
    snprintf(stored_version, sizeof stored_version, "%s", db_text(s, 2));
    if (!in->agent_version_id)
        version_id = stored_version;
    bool same = strcmp(stored_version, version_id) == 0 && db_int(s, 3) == ts &&
                same_text(db_text(s, 4), in->input) && same_text(db_text(s, 5), in->output) &&
                same_text(db_text(s, 6), in->steps) && same_text(db_text(s, 7), in->metadata);
    db_done(s);
    if (other_agent) {
        r->outcome = OUTCOME_REJECTED;
        rf_fail_field(&r->err, RF_CONFLICT, "external_id",
                      "trace %s/%s already exists under another agent", source, in->external_id);
        return RF_OK;
    }
    if (same) {
        r->outcome = OUTCOME_UNCHANGED;
        return RF_OK;
    }
    r->outcome = OUTCOME_UPDATED;
    return db_run(db, SQL_TRACE_UPDATE,
                  DB_ARGS(DB_T(version_id), DB_I(ts), DB_T(in->input), DB_T(in->output),
                          DB_T(in->steps), DB_T(in->metadata), DB_T(r->id)),
                  NULL, err);
}

/* A batch of traces, for counted_tx. */
struct batch {
    const char *ws;
    const struct trace_new *items;
    int n;
    struct store_item_result *results;
    int64_t now;
};

/* A trace item once resolved: where it goes (ok false: rejected, in its result). */
struct trace_target {
    char agent_id[ID_MAX], version_id[ID_MAX];
    bool ok;
};

/* SQLite: one INSERT … ON CONFLICT DO NOTHING per resolved item, in order. */
static enum rf_status insert_each(struct db *db, const struct batch *b,
                                  const struct trace_target *t, bool *created,
                                  struct rf_err *err)
{
    const struct trace_new *items = b->items;
    enum rf_status rc = RF_OK;
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        const struct trace_new *in = &items[i];
        int64_t inserted = 0;
        if (t[i].ok)
            rc = db_run(db, SQL_TRACE_INSERT,
                        DB_ARGS(DB_T(b->results[i].id), DB_T(b->ws), DB_T(t[i].agent_id),
                                DB_T(t[i].version_id), DB_T(trace_source(in)),
                                DB_T(in->external_id), DB_I(trace_ts(in, b->now)),
                                DB_T(in->input), DB_T(in->output), DB_T(in->steps),
                                DB_T(in->metadata), DB_I(b->now)),
                        &inserted, err);
        created[i] = inserted != 0;
    }
    return rc;
}

/* PostgreSQL, where each statement is a round trip: the same inserts as insert_each in
 * one statement. An item repeating an earlier item's (source, external_id) stays out of
 * it, as insert_each's DO NOTHING would leave it out. */
static enum rf_status insert_many(struct db *db, const struct batch *b,
                                  const struct trace_target *t, bool *created,
                                  struct rf_err *err)
{
    const struct trace_new *items = b->items;
    int n = b->n;
    char **keys = xcalloc((size_t)n + 1, sizeof *keys);
    const char **ids = xcalloc((size_t)n + 1, sizeof *ids);
    bool *repeat = xcalloc((size_t)n + 1, sizeof *repeat);
    for (int i = 0; i < n; i++)
        if (t[i].ok && items[i].external_id) /* without one, never deduplicated */
            keys[i] = xasprintf("%s\x1f%s", trace_source(&items[i]), items[i].external_id);
    batch_repeats((const char *const *)keys, n, repeat);
    json_t *rows = json_array();
    for (int i = 0; i < n; i++) {
        const struct trace_new *in = &items[i];
        if (!t[i].ok || repeat[i])
            continue;
        ids[i] = b->results[i].id;
        json_array_append_new(
            rows, json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:o, s:o}", "id", ids[i],
                            "a", t[i].agent_id, "v", t[i].version_id, "s", trace_source(in), "e",
                            jx_str_or_null(in->external_id), "ts",
                            (json_int_t)trace_ts(in, b->now), "i", in->input, "o", in->output,
                            "st", jx_str_or_null(in->steps), "m", jx_str_or_null(in->metadata)));
    }
    char *text = jx_dump(rows);
    enum rf_status rc = batch_insert(db, SQL_TRACE_INSERT_MANY,
                                     DB_ARGS(DB_T(b->ws), DB_I(b->now), DB_T(text)), ids, n,
                                     created, err);
    free(text);
    json_decref(rows);
    for (int i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(ids);
    free(repeat);
    return rc;
}

/* Resolve every item, insert the new traces, then compare-and-update the rest in order:
 * the outcomes of the items applied one by one, whichever way the inserts went. */
static enum rf_status traces_put_tx(struct db *db, void *ctx, struct stats_deltas *deltas,
                                    struct rf_err *err)
{
    struct batch *b = ctx;
    const struct trace_new *items = b->items;
    struct trace_target *t = xcalloc((size_t)b->n + 1, sizeof *t);
    bool *created = xcalloc((size_t)b->n + 1, sizeof *created);
    struct target target = {0};
    enum rf_status rc = RF_OK;
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        struct store_item_result *r = &b->results[i];
        bool rejected;
        memset(r, 0, sizeof *r);
        rc = resolve_target(db, b->ws, &items[i], &target, &rejected, &r->err, err);
        if (rc || rejected) {
            r->outcome = OUTCOME_REJECTED;
            continue;
        }
        t[i].ok = true;
        snprintf(t[i].agent_id, ID_MAX, "%s", target.agent_id);
        snprintf(t[i].version_id, ID_MAX, "%s", target.version_id);
        id_new("trace_", r->id);
    }
    if (rc == RF_OK)
        rc = db->backend == DB_POSTGRES ? insert_many(db, b, t, created, err)
                                        : insert_each(db, b, t, created, err);
    for (int i = 0; rc == RF_OK && i < b->n; i++) {
        if (!t[i].ok)
            continue;
        if (created[i]) {
            b->results[i].outcome = OUTCOME_CREATED;
            stats_for(deltas, t[i].agent_id)[ST_TRACES]++;
        } else {
            rc = update_trace(db, b->ws, &items[i], t[i].agent_id, t[i].version_id,
                              trace_ts(&items[i], b->now), &b->results[i], err);
        }
    }
    free(t);
    free(created);
    return rc;
}

enum rf_status store_traces_put(struct store *st, const char *ws, const struct trace_new *items,
                                int n, struct store_item_result *results, struct rf_err *err)
{
    struct batch b = {ws, items, n, results, clock_now_ms()};
    return counted_tx(st->db, traces_put_tx, &b, err);
}

static json_t *trace_from_row(struct db_stmt *s)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", col_str(s, 0));
    json_object_set_new(t, "agent_id", col_str(s, 1));
    json_object_set_new(t, "agent_version_id", col_str(s, 2));
    json_object_set_new(t, "version", json_integer(db_int(s, 3)));
    json_object_set_new(t, "source", col_str(s, 4));
    json_object_set_new(t, "external_id", col_str(s, 5));
    json_object_set_new(t, "timestamp", col_time(s, 6));
    json_object_set_new(t, "input", col_str(s, 7));
    json_object_set_new(t, "output", col_str(s, 8));
    json_object_set_new(t, "steps", col_json(s, 9));
    json_object_set_new(t, "metadata", col_json(s, 10));
    json_object_set_new(t, "feedback",
                        db_is_null(s, 12)
                            ? json_null()
                            : json_pack("{s:o, s:o, s:o}", "rating", col_str(s, 12), "note",
                                        col_str(s, 13), "updated_at", col_time(s, 14)));
    json_object_set_new(t, "created_at", col_time(s, 11));
    return t;
}

static json_t *evaluation_from_row(struct db_stmt *s)
{
    return json_pack("{s:o, s:o, s:b, s:o, s:o, s:o}", "eval_id", col_str(s, 0), "eval_name",
                     col_str(s, 1), "predicted_result", db_int(s, 2) != 0, "predicted_reason",
                     col_str(s, 3), "execution_time_ms",
                     db_is_null(s, 4) ? json_null() : json_integer(db_int(s, 4)), "executed_at",
                     col_time(s, 5));
}

/* The eval verdicts on one trace: [{eval_id, eval_name, predicted_result, ...}]. */
static enum rf_status trace_evaluations(struct db *db, const char *trace_id, json_t **out,
                                        struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc = db_query(db, SQL_TRACE_EVALUATIONS, DB_ARGS(DB_T(trace_id)), &s, err);
    if (rc)
        return rc;
    return rows_collect(s, evaluation_from_row, out, err);
}

enum rf_status store_trace_get(struct store *st, const char *ws, const char *id, json_t **out,
                               struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_TRACE_GET, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    json_t *t = found ? trace_from_row(s) : NULL;
    db_done(s);
    if (!found)
        return rf_fail(err, RF_NOT_FOUND, "trace %s not found", id);
    json_t *evals = NULL;
    rc = trace_evaluations(st->db, id, &evals, err);
    if (rc) {
        json_decref(t);
        return rc;
    }
    json_object_set_new(t, "evaluations", evals);
    *out = t;
    return RF_OK;
}

enum rf_status store_trace_texts(struct store *st, const char *ws, const char *id, char **input,
                                char **output, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_TRACE_TEXTS, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found) {
        *input = xstrdup(db_text(s, 0));
        *output = xstrdup(db_text(s, 1));
    }
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "trace %s not found", id);
}

enum rf_status store_trace_list(struct store *st, const char *ws, const struct trace_filter *f,
                                const struct store_page *page, struct store_list *out,
                                struct rf_err *err)
{
    char bound[ID_MAX];
    enum rf_status rc = page_id_cursor(page, "trace_", bound, err);
    if (rc)
        return rc;
    char version_id[ID_MAX] = "";
    if (f->agent_id && f->version > 0) {
        struct db_stmt *s;
        bool found;
        rc = db_row(st->db, SQL_VERSION_ID_BY_NUMBER,
                    DB_ARGS(DB_T(f->agent_id), DB_T(ws), DB_I(f->version)), &s, &found, err);
        if (rc)
            return rc;
        if (found)
            snprintf(version_id, sizeof version_id, "%s", db_text(s, 0));
        db_done(s);
        if (!found)
            return rf_fail_field(err, RF_NOT_FOUND, "version", "agent %s has no version %lld",
                                 f->agent_id, (long long)f->version);
    }
    const char *sql = SQL_TRACE_LIST[st->db->backend == DB_POSTGRES][version_id[0] ? 2
                                                                     : f->agent_id  ? 1
                                                                                    : 0];
    struct db_stmt *s;
    int64_t hf = f->has_feedback;
#define FILTER_ARGS                                                                                \
    DB_T(bound), DB_T(f->rating), DB_T(f->rating), DB_I(hf), DB_I(hf), DB_I(hf),                   \
        DB_I(page->limit + 1)
    /* One row at a time: a trace may hold 4 MiB, and the page stops at STORE_PAGE_BYTES. */
    if (version_id[0])
        rc = db_query_rows(st->db, sql,
                           DB_ARGS(DB_T(bound), DB_T(version_id), DB_T(ws), FILTER_ARGS), &s, err);
    else if (f->agent_id)
        rc = db_query_rows(st->db, sql,
                           DB_ARGS(DB_T(bound), DB_T(f->agent_id), DB_T(ws), FILTER_ARGS), &s, err);
    else
        rc = db_query_rows(st->db, sql, DB_ARGS(DB_T(bound), DB_T(ws), FILTER_ARGS), &s, err);
#undef FILTER_ARGS
    if (rc)
        return rc;
    return page_collect(s, trace_from_row, page->limit, "id", out, err);
}

/* How many of the trace's executions predicted 1 (pass) and 0 (fail). */
enum rf_status exec_counts(struct db *db, const char *trace_id, int64_t *pass,
                                  int64_t *fail_n, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(db, SQL_EXEC_COUNTS, DB_ARGS(DB_T(trace_id)), &s, &found, err);
    if (rc)
        return rc;
    *pass = found ? db_int(s, 0) : 0;
    *fail_n = found ? db_int(s, 1) - *pass : 0;
    db_done(s);
    return RF_OK;
}

/* Counter deltas v for a trace with pass and fail_n executions whose rating goes from
 * `from` to `to` (both set and different). */
void rating_deltas(const char *from, const char *to, int64_t pass, int64_t fail_n,
                          int64_t *v)
{
    const char *r[2] = {from, to};
    for (int k = 0; k < 2; k++) {
        int64_t sign = k == 0 ? -1 : 1;
        if (!r[k])
            continue;
        v[strcmp(r[k], "positive") == 0   ? ST_POSITIVE
          : strcmp(r[k], "negative") == 0 ? ST_NEGATIVE
                                          : ST_NEUTRAL] += sign;
        stats_bucket(v, r[k], true, sign * pass);
        stats_bucket(v, r[k], false, sign * fail_n);
    }
}

/* Counter deltas v for a trace whose rating goes from `from` to `to` ("" or NULL: none). */
enum rf_status move_rating(struct db *db, const char *trace_id, const char *from,
                                  const char *to, int64_t *v, struct rf_err *err)
{
    from = from && *from ? from : NULL;
    to = to && *to ? to : NULL;
    if (same_text(from, to))
        return RF_OK;
    int64_t pass, fail_n;
    enum rf_status rc = exec_counts(db, trace_id, &pass, &fail_n, err);
    if (rc == RF_OK)
        rating_deltas(from, to, pass, fail_n, v);
    return rc;
}

static enum rf_status trace_delete_tx(struct db *db, void *ctx, struct stats_deltas *deltas,
                                      struct rf_err *err)
{
    struct trace_removal *x = ctx;
    struct trace_found t;
    struct trace_ref ref = {.trace_id = x->id};
    int64_t pass = 0, fail_n = 0;
    enum rf_status rc = trace_resolve(db, x->ws, &ref, NULL, &t, err);
    if (rc)
        return rc;
    rc = move_rating(db, t.trace_id, t.rating, NULL, stats_for(deltas, t.agent_id), err);
    if (rc == RF_OK)
        rc = exec_counts(db, t.trace_id, &pass, &fail_n, err);
    if (rc == RF_OK) {
        int64_t *v = stats_for(deltas, t.agent_id);
        v[ST_TRACES] -= 1;
        v[ST_EXECUTIONS] -= pass + fail_n;
        rc = db_run(db, SQL_TRACE_DELETE, DB_ARGS(DB_T(t.trace_id)), NULL, err);
    }
    trace_found_release(&t);
    return rc;
}

enum rf_status store_trace_delete(struct store *st, const char *ws, const char *id,
                                  struct rf_err *err)
{
    struct trace_removal x = {ws, id};
    return counted_tx(st->db, trace_delete_tx, &x, err);
}
