/*
 * store_llm_calls - the LLM calls a job made (llm_calls): one row per llm_client_call
 * (its HTTP retries inside the call included: the row holds the last response's status,
 * and a failed call's error says after how many attempts), written by the worker as the
 * job runs and listed, oldest first, as the job's transcript (GET /v1/jobs/{id}/llm-calls).
 *
 * Invariants kept here:
 *   - An insert is a fenced worker write (see store_job_worker.c): the INSERT ... SELECT
 *     takes job_id, run and attempt from the job row matching the claim (FENCE_WHERE), so a
 *     worker whose claim is gone inserts nothing and gets RF_LEASE_LOST. A call is no
 *     event: it reserves no seq.
 *   - A list first reads the job in the caller's workspace, so a job of another
 *     workspace is RF_NOT_FOUND like a missing one.
 *
 * Threading: no state of its own; every call runs on the caller's connection (a struct
 * store is one thread's at a time, store.h).
 */
#include <stdio.h>

#include "core/clock.h"
#include "store/store_internal.h"
#include "core/banned.h"

static const char *SQL_LLM_INSERT =
    "INSERT INTO llm_calls (id, job_id, run, attempt, step, provider, model, request, "
    "response_text, stop_reason, http_status, provider_request_id, input_tokens, output_tokens, "
    "latency_ms, error, created_at) SELECT ?, id, run, attempt, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ? FROM jobs WHERE " FENCE_WHERE;
static const char *SQL_LLM_LIST =
    "SELECT c.id, c.job_id, c.attempt, c.step, c.provider, c.model, c.request, "
    "c.response_text, c.stop_reason, c.http_status, c.provider_request_id, c.input_tokens, "
    "c.output_tokens, c.latency_ms, c.error, c.created_at, c.run FROM llm_calls c "
    "JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ? AND j.workspace_id = ? AND c.id > ? "
    "ORDER BY c.id LIMIT ?";

enum rf_status store_llm_call_insert(struct store *st, const struct job_fence *f,
                                     const struct llm_call_new *in, char *id_out,
                                     struct rf_err *err)
{
    struct db *db = st->db;
    char id[ID_MAX];
    int64_t changes = 0;
    id_new("llm_", id);
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_LLM_INSERT,
                DB_ARGS(DB_T(id), DB_T(in->step), DB_T(in->provider), DB_T(in->model),
                        DB_T(in->request ? in->request : "{}"), DB_T(in->response_text),
                        DB_T(in->stop_reason), DB_IN(in->http_status, in->http_status != 0),
                        DB_T(in->provider_request_id),
                        DB_IN(in->input_tokens, in->has_input_tokens),
                        DB_IN(in->output_tokens, in->has_output_tokens), DB_I(in->latency_ms),
                        DB_T(in->error), DB_I(clock_now_ms()), DB_T(f->job_id), DB_I(f->attempt),
                        DB_T(f->owner)),
                &changes, err);
    if (rc == RF_OK && changes == 0)
        rc = lease_lost(err, f);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && id_out)
        snprintf(id_out, ID_MAX, "%s", id);
    return rc;
}

static json_t *int_or_null(struct db_stmt *s, int col)
{
    return db_is_null(s, col) ? json_null() : json_integer(db_int(s, col));
}

static json_t *llm_call_from_row(struct db_stmt *s)
{
    json_t *c = json_object();
    json_object_set_new(c, "id", col_str(s, 0));
    json_object_set_new(c, "job_id", col_str(s, 1));
    json_object_set_new(c, "run", json_integer(db_int(s, 16)));
    json_object_set_new(c, "attempt", json_integer(db_int(s, 2)));
    json_object_set_new(c, "step", col_str(s, 3));
    json_object_set_new(c, "provider", col_str(s, 4));
    json_object_set_new(c, "model", col_str(s, 5));
    json_object_set_new(c, "request", col_json(s, 6));
    json_object_set_new(c, "response_text", col_str(s, 7));
    json_object_set_new(c, "stop_reason", col_str(s, 8));
    json_object_set_new(c, "http_status", int_or_null(s, 9));
    json_object_set_new(c, "provider_request_id", col_str(s, 10));
    json_object_set_new(c, "input_tokens", int_or_null(s, 11));
    json_object_set_new(c, "output_tokens", int_or_null(s, 12));
    json_object_set_new(c, "latency_ms", json_integer(db_int(s, 13)));
    json_object_set_new(c, "error", col_str(s, 14));
    json_object_set_new(c, "created_at", col_time(s, 15));
    return c;
}

enum rf_status store_llm_call_list(struct store *st, const char *ws, const char *job_id,
                                   const struct store_page *page, struct store_list *out,
                                   struct rf_err *err)
{
    char bound[ID_MAX] = "";
    struct db_stmt *s = NULL;
    json_t *job = NULL;
    out->data = NULL;
    out->next_cursor = NULL;
    enum rf_status rc = store_job_get(st, ws, job_id, &job, err);
    json_decref(job);
    if (rc)
        return rc;
    if (page->cursor) {
        rc = page_id_cursor(page, "llm_", bound, err);
        if (rc)
            return rc;
    }
    rc = db_query_rows(st->db, SQL_LLM_LIST,
                       DB_ARGS(DB_T(job_id), DB_T(ws), DB_T(bound), DB_I(page->limit + 1)), &s,
                       err);
    if (rc)
        return rc;
    return page_collect(s, llm_call_from_row, page->limit, "id", out, err);
}
