/*
 * h_jobs - /v1/jobs: list, read, cancel, retry, the event stream (SSE, or JSON with
 * Accept: application/json) and the LLM transcript (SPEC §4.3, §5, §6). Also
 * POST /v1/test/jobs, which only exists with REFOLD_TEST_JOBS=1 (a ROUTE_TEST_ONLY route)
 * and enqueues test_sleep jobs through the same jobs_enqueue the real endpoints use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "http/handlers.h"
#include "http/sse.h"
#include "jobs/hub.h"
#include "jobs/jobs.h"
#include "jobs/pool.h"
#include "core/banned.h"

#define TEST_DELAY_MAX_MS (24LL * 3600 * 1000)

void resp_job_enqueued(struct resp *resp, json_t *job, bool created)
{
    const char *id = json_string_value(json_object_get(job, "id"));
    if (created && id)
        snprintf(resp->location, sizeof resp->location, "/v1/jobs/%s", id);
    resp_json(resp, created ? 202 : 200, job);
}

/* 202 with Location for a job an API call changed (cancel, retry). */
static void resp_job_changed(struct resp *resp, json_t *job)
{
    const char *id = json_string_value(json_object_get(job, "id"));
    if (id)
        snprintf(resp->location, sizeof resp->location, "/v1/jobs/%s", id);
    resp_json(resp, 202, job);
}

HANDLER(h_jobs_list)
{
    struct store_page page;
    struct job_filter f = {0};
    struct store_list list = {0};
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_enum(req, "status", JOB_STATUSES, &f.status, err);
    const char *types[8];
    job_type_names(types, sizeof types / sizeof types[0]);
    if (rc == RF_OK)
        rc = req_query_enum(req, "type", types, &f.type, err);
    if (rc == RF_OK)
        rc = req_query_id(req, "agent_id", &f.agent_id, err);
    if (rc == RF_OK)
        rc = store_job_list(req->store, req->workspace_id, &f, &page, &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_jobs_get)
{
    json_t *job = NULL;
    enum rf_status rc = store_job_get(req->store, req->workspace_id, req->params[0], &job, err);
    if (rc)
        return rc;
    resp_json(resp, 200, job);
    return RF_OK;
}

HANDLER(h_jobs_cancel)
{
    json_t *job = NULL;
    bool running = false;
    const char *id = req->params[0];
    enum rf_status rc = store_job_cancel(req->store, req->workspace_id, id, &job, &running, err);
    if (rc)
        return rc;
    hub_notify(req->hub, id);
    if (running)
        pool_cancel(req->pool, id);
    resp_job_changed(resp, job);
    return RF_OK;
}

HANDLER(h_jobs_retry)
{
    json_t *job = NULL;
    const char *id = req->params[0];
    enum rf_status rc = store_job_retry(req->store, req->workspace_id, id, &job, err);
    if (rc)
        return rc;
    hub_notify(req->hub, id);
    pool_wake(req->pool);
    resp_job_changed(resp, job);
    return RF_OK;
}

/* A non-negative event seq from a header or query value. */
static enum rf_status parse_seq(const char *v, const char *field, int64_t *out, struct rf_err *err)
{
    if (!req_parse_int(v, 0, INT64_MAX, out))
        return rf_fail_field(err, RF_INVALID, field, "%s must be an event id (a seq >= 0)", field);
    return RF_OK;
}

static bool wants_json(struct req *req)
{
    const char *accept = req_header(req, MHD_HTTP_HEADER_ACCEPT);
    return accept && strstr(accept, "application/json") && !strstr(accept, "text/event-stream");
}

HANDLER(h_jobs_events)
{
    json_t *job = NULL, *events = NULL;
    const char *id = req->params[0];
    int64_t after = 0;
    enum rf_status rc = store_job_get(req->store, req->workspace_id, id, &job, err);
    if (rc)
        return rc;
    const char *last = req_header(req, "Last-Event-ID");
    if (last && *last)
        rc = parse_seq(last, "Last-Event-ID", &after, err);
    else if (req_query(req, "last_event_id"))
        rc = parse_seq(req_query(req, "last_event_id"), "last_event_id", &after, err);
    if (rc == RF_OK && wants_json(req)) {
        struct store_page page;
        rc = req_page(req, &page, err);
        if (rc == RF_OK && page.cursor)
            rc = parse_seq(page.cursor, "cursor", &after, err);
        if (rc == RF_OK)
            rc = store_job_events(req->store, id, after, page.limit, &events, err);
        if (rc == RF_OK) {
            json_t *next = json_null();
            size_t n = json_array_size(events);
            if ((int)n == page.limit)
                next = json_sprintf("%lld", (long long)json_integer_value(json_object_get(
                                                json_array_get(events, n - 1), "seq")));
            resp_json(resp, 200, json_pack("{s:o, s:o}", "data", events, "next_cursor", next));
        }
    } else if (rc == RF_OK) {
        rc = sse_job_stream(req, req->hub, id, json_string_value(json_object_get(job, "status")),
                            after, resp, err);
    }
    json_decref(job);
    return rc;
}

HANDLER(h_jobs_llm_calls)
{
    struct store_page page;
    struct store_list list = {0};
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = store_llm_call_list(req->store, req->workspace_id, req->params[0], &page, &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

/* ---- POST /v1/test/jobs (REFOLD_TEST_JOBS=1 only) ---- */

/* One test_sleep job: {params?, max_attempts?, delay_ms?, agent_id?}. */
static enum rf_status enqueue_test_job(struct req *req, const json_t *item, const char *key,
                                       json_t **job, bool *created, struct rf_err *err)
{
    json_t *params = NULL;
    int64_t max_attempts = 0, delay_ms = 0;
    bool present;
    struct job_spec spec = {.type = "test_sleep", .idempotency_key = key};
    enum rf_status rc = jx_typed(item, "params", JX_NULLABLE, JSON_OBJECT, &params, err);
    if (rc == RF_OK)
        rc = jx_int(item, "max_attempts", JX_NULLABLE, 1, JOB_MAX_ATTEMPTS_LIMIT, &max_attempts,
                    &present, err);
    if (rc == RF_OK)
        rc = jx_int(item, "delay_ms", JX_NULLABLE, 0, TEST_DELAY_MAX_MS, &delay_ms, &present, err);
    if (rc == RF_OK)
        rc = jx_string(item, "agent_id", JX_NULLABLE, ID_MAX - 1, false, &spec.agent_id, err);
    if (rc)
        return rc;
    json_t *empty = params ? NULL : json_object();
    spec.params = params ? params : empty;
    spec.max_attempts = (int)max_attempts;
    spec.delay_ms = delay_ms;
    rc = jobs_enqueue(req->store, req->pool, req->workspace_id, &spec, job, created, err);
    json_decref(empty);
    return rc;
}

HANDLER(h_test_jobs_create)
{
    json_t *body = NULL, *jobs = NULL, *job = NULL, *out = NULL;
    bool created = false;
    enum rf_status rc = req_json(req, true, &body, err);
    if (rc == RF_OK)
        rc = jx_typed(body, "jobs", JX_NULLABLE, JSON_ARRAY, &jobs, err);
    if (rc)
        goto out;
    if (!jobs) {
        rc = enqueue_test_job(req, body, req_header(req, "Idempotency-Key"), &job, &created, err);
        if (rc == RF_OK)
            resp_job_enqueued(resp, job, created);
        goto out;
    }
    if (json_array_size(jobs) > LIMIT_BATCH_ITEMS) {
        rc = rf_fail_field(err, RF_TOO_LARGE, "jobs", "at most %d jobs per request",
                           LIMIT_BATCH_ITEMS);
        goto out;
    }
    out = json_array();
    rc = store_begin(req->store, err);
    size_t i;
    json_t *item;
    json_array_foreach(jobs, i, item)
    {
        if (rc)
            break;
        if (!json_is_object(item)) {
            rc = rf_fail_field(err, RF_INVALID, "jobs", "jobs[%zu] must be an object", i);
            break;
        }
        rc = enqueue_test_job(req, item, NULL, &job, &created, err);
        if (rc == RF_OK)
            json_array_append_new(out, json_pack("{s:O}", "id", json_object_get(job, "id")));
        json_decref(job);
        job = NULL;
    }
    if (rc == RF_OK)
        rc = store_commit(req->store, err);
    else
        store_rollback(req->store);
    if (rc == RF_OK) {
        pool_wake(req->pool);
        resp_json(resp, 202, json_pack("{s:O}", "data", out));
    }
out:
    json_decref(out);
    json_decref(body);
    return rc;
}
