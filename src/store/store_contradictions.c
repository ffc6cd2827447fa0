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
 * tests/unit/test_store.c checks the plan with EXPLAIN QUERY PLAN.
 */
#include <string.h>

#include "core/jsonx.h"
#include "store/store_internal.h"
#include "core/banned.h"

static const char *SQL_CONTRADICTIONS =
    "SELECT f.trace_id, x.eval_id, e.name, f.rating, f.note, x.predicted_result, "
    "x.predicted_reason, f.updated_at, CASE WHEN CAST(? AS INTEGER) = 1 THEN t.input END, "
    "CASE WHEN CAST(? AS INTEGER) = 1 THEN t.output END "
    "FROM feedback f CROSS JOIN eval_executions x CROSS JOIN evals e CROSS JOIN traces t "
    "WHERE f.agent_id = ? AND f.rating IN ('positive', 'negative') "
    "AND (CAST(? AS TEXT) IS NULL OR f.rating = ?) "
    "AND x.trace_id = f.trace_id "
    "AND x.predicted_result = (CASE WHEN f.rating = 'positive' THEN 0 ELSE 1 END) "
    "AND e.id = x.eval_id AND t.id = f.trace_id "
    "ORDER BY f.updated_at DESC, f.trace_id DESC LIMIT ?";
static const char *SQL_AGENT_IN_WS = "SELECT 1 FROM agents WHERE id = ? AND workspace_id = ?";

const char *contradictions_sql(void)
{
    return SQL_CONTRADICTIONS;
}

enum rf_status store_contradictions(struct store *st, const char *ws, const char *agent_id,
                                    const char *kind, int limit, size_t max_bytes, bool texts,
                                    json_t **out, struct rf_err *err)
{
    int64_t one;
    bool found;
    enum rf_status rc =
        db_scalar(st->db, SQL_AGENT_IN_WS, DB_ARGS(DB_T(agent_id), DB_T(ws)), &one, &found, err);
    if (rc)
        return rc;
    if (!found)
        return rf_fail(err, RF_NOT_FOUND, "agent %s not found", agent_id);
    const char *rating = NULL;
    if (kind)
        rating = *kind == 'm' ? "negative" : "positive";
    struct db_stmt *s;
    bool row;
    rc = db_query_rows(
        st->db, SQL_CONTRADICTIONS,
        DB_ARGS(DB_I(texts), DB_I(texts), DB_T(agent_id), DB_T(rating), DB_T(rating), DB_I(limit)),
        &s, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    size_t bytes = 0;
    while ((!max_bytes || bytes < max_bytes) && (rc = db_next(s, &row, err)) == RF_OK && row) {
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
        bytes += jx_size_estimate(c);
        json_array_append_new(arr, c);
    }
    db_done(s);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return RF_OK;
}
