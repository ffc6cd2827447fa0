/*
 * store_contradictions - the query at the heart of the improvement job
 * (SPEC §7 step 2): pairs of (feedback, eval execution) on an agent's traces
 * where the human and the eval disagree, newest feedback first.
 *
 * Plan: walk feedback_agent_time backwards for the agent (no sort), and for
 * each rated trace probe eval_executions_trace by (trace_id, the predicted
 * result that would contradict the rating); evals and traces are joined by
 * primary key. CROSS JOIN pins that order on SQLite; the cost is bounded by
 * the number of feedback rows visited before `limit` contradictions are found.
 * tests/unit/test_store_plans.c checks the plan with EXPLAIN QUERY PLAN.
 *
 * PostgreSQL reorders joins itself and cannot estimate the SQLite text's
 * `x.predicted_result = CASE … END`: it assumed 1 row in 200 contradicts (about
 * 1 in 4 does), so for limit 200 it joined every execution of the table by hash
 * and sorted the agent (400 ms at 600,000 executions, growing with the table;
 * bench/README-pg.md). Its text spells the condition as two rating/result pairs,
 * which it estimates from the columns' statistics, and it walks the index too.
 *
 * Order and pages: newest feedback first (updated_at, then trace_id, descending), and
 * within a trace by eval_id descending, sorted here: a trace has at most one execution
 * per eval of its agent, so a trace's rows (its "group") are few, and SQL orders only
 * what the index walk gives for free. A page's cursor is its last row's
 * (updated_at, trace_id, eval_id); the next page starts at that trace again (`<=`) and
 * skips the rows up to it. The SQL LIMIT leaves room for two whole groups beyond the
 * page (the cursor's trace, and the one that says whether more follow), and rows are
 * read one at a time (db_query_rows), holding one group: a page cut at its byte budget
 * never held the rows after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

#define CONTRADICTIONS(contradicts)                                                                \
    "SELECT f.trace_id, x.eval_id, e.name, f.rating, f.note, x.predicted_result, "                \
    "x.predicted_reason, f.updated_at, CASE WHEN CAST(? AS INTEGER) = 1 THEN t.input END, "       \
    "CASE WHEN CAST(? AS INTEGER) = 1 THEN t.output END "                                          \
    "FROM feedback f CROSS JOIN eval_executions x CROSS JOIN evals e CROSS JOIN traces t "        \
    "WHERE f.agent_id = ? AND f.updated_at <= ? AND (f.updated_at < ? OR f.trace_id <= ?) "       \
    "AND f.rating IN ('positive', 'negative') "                                                    \
    "AND (CAST(? AS TEXT) IS NULL OR f.rating = ?) "                                               \
    "AND x.trace_id = f.trace_id AND " contradicts " "                                             \
    "AND e.id = x.eval_id AND t.id = f.trace_id "                                                  \
    "ORDER BY f.updated_at DESC, f.trace_id DESC LIMIT ?"
static const char *SQL_CONTRADICTIONS =
    CONTRADICTIONS("x.predicted_result = (CASE WHEN f.rating = 'positive' THEN 0 ELSE 1 END)");
static const char *SQL_CONTRADICTIONS_PG =
    CONTRADICTIONS("((f.rating = 'positive' AND x.predicted_result = 0) "
                   "OR (f.rating = 'negative' AND x.predicted_result = 1))");
/* The agent in the workspace, with the number of its evals (the most rows one trace has). */
static const char *SQL_AGENT_EVALS =
    "SELECT (SELECT count(*) FROM evals e WHERE e.agent_id = a.id) FROM agents a "
    "WHERE a.id = ? AND a.workspace_id = ?";

const char *contradictions_sql(bool pg)
{
    return pg ? SQL_CONTRADICTIONS_PG : SQL_CONTRADICTIONS;
}

/* A position in the order: the last row of a page. */
struct position {
    int64_t updated_at;
    char trace_id[ID_MAX];
    char eval_id[ID_MAX];
};

/* "UPDATED_AT.TRACE_ID.EVAL_ID", as store_contradictions makes them. */
static bool parse_cursor(const char *c, struct position *p)
{
    char *end;
    errno = 0;
    long long t = strtoll(c, &end, 10);
    if (end == c || *end != '.' || errno || t < 0)
        return false;
    const char *trace = end + 1, *dot = strchr(trace, '.');
    if (!dot || (size_t)(dot - trace) >= ID_MAX)
        return false;
    p->updated_at = t;
    snprintf(p->trace_id, ID_MAX, "%.*s", (int)(dot - trace), trace);
    snprintf(p->eval_id, ID_MAX, "%s", dot + 1);
    return id_valid("trace_", p->trace_id) && id_valid("eval_", dot + 1);
}

struct row {
    json_t *obj;
    char eval_id[ID_MAX];
};

static int by_eval_desc(const void *a, const void *b)
{
    return strcmp(((const struct row *)b)->eval_id, ((const struct row *)a)->eval_id);
}

static json_t *row_object(struct db_stmt *s, bool texts)
{
    bool positive = db_text(s, 3)[0] == 'p';
    json_t *c = json_object();
    json_object_set_new(c, "trace_id", col_str(s, 0));
    json_object_set_new(c, "eval_id", col_str(s, 1));
    json_object_set_new(c, "eval_name", col_str(s, 2));
    json_object_set_new(c, "kind", json_string(positive ? "false_alarm" : "missed_failure"));
    json_object_set_new(c, "human_rating", col_str(s, 3));
    json_object_set_new(c, "note", col_str(s, 4));
    json_object_set_new(c, "predicted_result", json_boolean(db_int(s, 5) != 0));
    json_object_set_new(c, "predicted_reason", col_str(s, 6));
    json_object_set_new(c, "feedback_at", col_time(s, 7));
    if (texts) {
        json_object_set_new(c, "input", col_str(s, 8));
        json_object_set_new(c, "output", col_str(s, 9));
    }
    return c;
}

enum rf_status store_contradictions(struct store *st, const char *ws, const char *agent_id,
                                    const char *kind, int limit, size_t max_bytes, bool texts,
                                    const char *cursor, char **next_cursor, json_t **out,
                                    struct rf_err *err)
{
    int64_t evals;
    bool found;
    struct position from = {.updated_at = INT64_MAX};
    snprintf(from.trace_id, ID_MAX, "trace_%.*s", ULID_LEN, "zzzzzzzzzzzzzzzzzzzzzzzzzz");
    if (next_cursor)
        *next_cursor = NULL;
    if (cursor && !parse_cursor(cursor, &from))
        return rf_fail_field(err, RF_INVALID, "cursor", "cursor is not one this API returned");
    enum rf_status rc = db_scalar(st->db, SQL_AGENT_EVALS, DB_ARGS(DB_T(agent_id), DB_T(ws)),
                                  &evals, &found, err);
    if (rc)
        return rc;
    if (!found)
        return rf_fail(err, RF_NOT_FOUND, "agent %s not found", agent_id);
    const char *rating = NULL;
    if (kind)
        rating = *kind == 'm' ? "negative" : "positive";
    int64_t sql_limit = (int64_t)limit + 2 * evals + 1;
    struct db_stmt *s;
    rc = db_query_rows(st->db, contradictions_sql(st->db->backend == DB_POSTGRES),
                       DB_ARGS(DB_I(texts), DB_I(texts), DB_T(agent_id), DB_I(from.updated_at),
                               DB_I(from.updated_at), DB_T(from.trace_id), DB_T(rating),
                               DB_T(rating), DB_I(sql_limit)),
                       &s, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    struct row *group = xmalloc(((size_t)evals + 1) * sizeof *group);
    size_t n = 0, cap = (size_t)evals + 1, bytes = 0;
    int64_t read = 0, g_time = 0;
    char g_trace[ID_MAX] = "";
    struct position last = {0};
    bool more = false, row = false;
    for (;;) {
        rc = db_next(s, &row, err);
        if (rc)
            break;
        bool same = row && n && db_int(s, 7) == g_time && strcmp(db_text(s, 0), g_trace) == 0;
        if (n && !same) {
            /* The group is whole, unless the LIMIT cut it: then it waits for the next
             * page, which starts at its trace (never reached while each trace has at most
             * `evals` rows; the guard keeps a page from skipping rows if one had more). */
            if (!row && read == sql_limit && json_array_size(arr)) {
                more = true;
                break;
            }
            qsort(group, n, sizeof *group, by_eval_desc);
            bool at_cursor = cursor && g_time == from.updated_at &&
                             strcmp(g_trace, from.trace_id) == 0;
            for (size_t i = 0; i < n && !more; i++) {
                if (at_cursor && strcmp(group[i].eval_id, from.eval_id) >= 0)
                    continue;
                if ((int)json_array_size(arr) == limit ||
                    (max_bytes && bytes >= max_bytes && json_array_size(arr))) {
                    more = true;
                    break;
                }
                bytes += jx_size_estimate(group[i].obj);
                json_array_append(arr, group[i].obj);
                last.updated_at = g_time;
                snprintf(last.trace_id, ID_MAX, "%s", g_trace);
                snprintf(last.eval_id, ID_MAX, "%s", group[i].eval_id);
            }
            for (size_t i = 0; i < n; i++)
                json_decref(group[i].obj);
            n = 0;
            if (more)
                break;
        }
        if (!row)
            break;
        read++;
        if (n == 0) {
            g_time = db_int(s, 7);
            snprintf(g_trace, ID_MAX, "%s", db_text(s, 0));
        }
        if (n == cap) {
            cap *= 2;
            group = xrealloc(group, cap * sizeof *group);
        }
        snprintf(group[n].eval_id, ID_MAX, "%s", db_text(s, 1));
        group[n++].obj = row_object(s, texts);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(group[i].obj);
    free(group);
    db_done(s);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    if (more && next_cursor) {
        char c[3 * ID_MAX];
        snprintf(c, sizeof c, "%" PRId64 ".%s.%s", last.updated_at, last.trace_id, last.eval_id);
        *next_cursor = xstrdup(c);
    }
    *out = arr;
    return RF_OK;
}
