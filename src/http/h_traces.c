/*
 * h_traces - /v1/traces and feedback: ingest one trace or a batch, list and
 * read traces, delete a trace, and rate traces one at a time (PUT) or in
 * batches (POST /v1/feedback). Batches follow batch.h: per-item outcomes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "http/batch.h"
#include "http/handlers.h"
#include "http/write_group.h"
#include "core/banned.h"

static const char *const ratings[] = {"positive", "negative", "neutral", NULL};

/* A text field with a byte cap answered by 413 naming the field. */
static enum rf_status big_text(const json_t *obj, const char *key, int flags, size_t max_bytes,
                               const char **out, struct rf_err *err)
{
    enum rf_status rc = jx_string(obj, key, flags, 0, true, out, err);
    if (rc == RF_OK && *out && strlen(*out) > max_bytes)
        rc = rf_fail_field(err, RF_TOO_LARGE, key, "%s is larger than %zu bytes", key, max_bytes);
    return rc;
}

static enum rf_status parse_trace(const json_t *obj, void *item, struct batch_scratch *sc,
                                  struct rf_err *err)
{
    struct trace_new *t = item;
    memset(t, 0, sizeof *t);
    enum rf_status rc;
    if ((rc = jx_string(obj, "agent_id", JX_NULLABLE, ID_MAX, false, &t->agent_id, err)) ||
        (rc = jx_string(obj, "agent_version_id", JX_NULLABLE, ID_MAX, false, &t->agent_version_id,
                        err)) ||
        (rc = jx_string(obj, "source", JX_NULLABLE | JX_NAME, LIMIT_NAME_CHARS, false, &t->source,
                        err)) ||
        (rc = jx_string(obj, "external_id", JX_NULLABLE | JX_NAME, LIMIT_NAME_CHARS, false,
                        &t->external_id, err)) ||
        (rc = big_text(obj, "input", JX_REQUIRED, LIMIT_TRACE_FIELD_BYTES, &t->input, err)) ||
        (rc = big_text(obj, "output", JX_REQUIRED, LIMIT_TRACE_FIELD_BYTES, &t->output, err)))
        return rc;
    if (!t->agent_id == !t->agent_version_id)
        return rf_fail_field(err, RF_INVALID, t->agent_id ? "agent_version_id" : "agent_id",
                             "give exactly one of agent_id and agent_version_id");
    const json_t *ts = json_object_get(obj, "timestamp");
    if (json_is_string(ts)) {
        if (!clock_parse(json_string_value(ts), &t->timestamp))
            return rf_fail_field(err, RF_INVALID, "timestamp",
                                 "timestamp must be RFC 3339 within years 0000 to 9999, e.g. "
                                 "2026-11-26T09:17:33.123Z");
        t->has_timestamp = true;
    } else if (json_is_integer(ts)) {
        t->timestamp = json_integer_value(ts);
        t->has_timestamp = true;
        if (t->timestamp < CLOCK_MIN_MS || t->timestamp > CLOCK_MAX_MS)
            return rf_fail_field(err, RF_INVALID, "timestamp",
                                 "timestamp must be between %lld and %lld milliseconds (years "
                                 "0000 to 9999)",
                                 (long long)CLOCK_MIN_MS, (long long)CLOCK_MAX_MS);
    } else if (ts && !json_is_null(ts)) {
        return rf_fail_field(err, RF_INVALID, "timestamp",
                             "timestamp must be an RFC 3339 string or milliseconds");
    }
    json_t *steps, *meta;
    if ((rc = jx_typed(obj, "steps", JX_NULLABLE, JSON_ARRAY, &steps, err)) ||
        (rc = jx_typed(obj, "metadata", JX_NULLABLE, JSON_OBJECT, &meta, err)))
        return rc;
    if (steps) {
        t->steps = batch_keep(sc, jx_dump(steps));
        if (strlen(t->steps) > LIMIT_TRACE_FIELD_BYTES)
            return rf_fail_field(err, RF_TOO_LARGE, "steps", "steps are larger than %d bytes",
                                 LIMIT_TRACE_FIELD_BYTES);
    }
    if (meta) {
        t->metadata = batch_keep(sc, jx_dump(meta));
        if (strlen(t->metadata) > LIMIT_TRACE_FIELD_BYTES)
            return rf_fail_field(err, RF_TOO_LARGE, "metadata", "metadata is larger than %d bytes",
                                 LIMIT_TRACE_FIELD_BYTES);
    }
    return RF_OK;
}

static enum rf_status store_traces(struct req *req, void *ctx, const void *items, int n,
                                   struct store_item_result *results, struct rf_err *err)
{
    (void)ctx;
    return store_traces_put(req->store, req->workspace_id, items, n, results, err);
}

static const struct batch_spec trace_batch = {sizeof(struct trace_new), parse_trace,
                                              store_traces};

HANDLER(h_traces_create)
{
    json_t *body = NULL, *items = NULL, *single = NULL;
    struct store_item_result *results = NULL;
    bool only = false;
    enum rf_status rc = batch_rejected_only(req, &only, err);
    if (rc == RF_OK)
        rc = req_json(req, false, &body, err);
    if (rc)
        return rc;
    bool batch = json_object_get(body, "traces") != NULL;
    if (batch) {
        rc = batch_items(body, "traces", &items, err);
    } else {
        single = json_array();
        json_array_append(single, body);
        items = single;
    }
    if (rc == RF_OK)
        rc = batch_run(req, items, &trace_batch, NULL, &results, err);
    if (rc == RF_OK && batch) {
        resp_json(resp, 201, batch_render(results, (int)json_array_size(items), only));
    } else if (rc == RF_OK) {
        if (results[0].outcome == OUTCOME_REJECTED) {
            *err = results[0].err;
            rc = err->code;
        } else {
            json_t *t = NULL;
            rc = store_trace_get(req->store, req->workspace_id, results[0].id, &t, err);
            if (rc == RF_OK)
                resp_json(resp, results[0].outcome == OUTCOME_CREATED ? 201 : 200, t);
        }
    }
    free(results);
    json_decref(single);
    json_decref(body);
    return rc;
}

HANDLER(h_traces_list)
{
    struct store_page page;
    struct trace_filter f = {.has_feedback = -1};
    struct store_list list = {0};
    int64_t hf = -1;
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_id(req, "agent_id", &f.agent_id, err);
    if (rc == RF_OK)
        rc = req_query_int(req, "version", 1, INT32_MAX, &f.version, err);
    if (rc == RF_OK && f.version && !f.agent_id)
        rc = rf_fail_field(err, RF_INVALID, "version", "version needs agent_id");
    if (rc == RF_OK)
        rc = req_query_enum(req, "rating", ratings, &f.rating, err);
    const char *has = req_query(req, "has_feedback");
    if (rc == RF_OK && has) {
        if (strcmp(has, "true") == 0 || strcmp(has, "1") == 0)
            hf = 1;
        else if (strcmp(has, "false") == 0 || strcmp(has, "0") == 0)
            hf = 0;
        else
            rc = rf_fail_field(err, RF_INVALID, "has_feedback", "has_feedback must be true or false");
    }
    f.has_feedback = (int)hf;
    if (rc == RF_OK)
        rc = store_trace_list(req->store, req->workspace_id, &f, &page, &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_traces_get)
{
    json_t *t = NULL;
    enum rf_status rc = store_trace_get(req->store, req->workspace_id, req->params[0], &t, err);
    if (rc)
        return rc;
    resp_json(resp, 200, t);
    return RF_OK;
}

HANDLER(h_traces_delete)
{
    enum rf_status rc = store_trace_delete(req->store, req->workspace_id, req->params[0], err);
    if (rc)
        return rc;
    resp_empty(resp, 204);
    return RF_OK;
}

/* A reference finds a stored trace, so its source and external_id are not held to JX_NAME:
 * a trace stored before names were checked can still be rated and evaluated. */
enum rf_status parse_trace_ref(const json_t *obj, struct trace_ref *ref, struct rf_err *err)
{
    enum rf_status rc;
    memset(ref, 0, sizeof *ref);
    if ((rc = jx_string(obj, "trace_id", JX_NULLABLE, ID_MAX, false, &ref->trace_id, err)) ||
        (rc = jx_string(obj, "source", JX_NULLABLE, LIMIT_NAME_CHARS, false, &ref->source, err)) ||
        (rc = jx_string(obj, "external_id", JX_NULLABLE, LIMIT_NAME_CHARS, false,
                        &ref->external_id, err)))
        return rc;
    if (!ref->trace_id && !ref->external_id)
        return rf_fail_field(err, RF_INVALID, "trace_id",
                             "give trace_id, or external_id (with source, default \"api\")");
    if (ref->trace_id && ref->external_id)
        return rf_fail_field(err, RF_INVALID, "external_id",
                             "give trace_id or external_id, not both");
    return RF_OK;
}

static enum rf_status parse_rating(const json_t *obj, const char **rating, const char **note,
                                   struct rf_err *err)
{
    enum rf_status rc = jx_string(obj, "rating", JX_REQUIRED, 0, false, rating, err);
    if (rc == RF_OK && !one_of(*rating, ratings))
        rc = rf_fail_field(err, RF_INVALID, "rating",
                           "rating must be positive, negative or neutral");
    if (rc == RF_OK)
        rc = jx_string(obj, "note", JX_NULLABLE, LIMIT_TEXT_CHARS, true, note, err);
    return rc;
}

static enum rf_status parse_feedback(const json_t *obj, void *item, struct batch_scratch *sc,
                                     struct rf_err *err)
{
    (void)sc;
    struct feedback_new *f = item;
    memset(f, 0, sizeof *f);
    enum rf_status rc = parse_trace_ref(obj, &f->trace, err);
    return rc ? rc : parse_rating(obj, &f->rating, &f->note, err);
}

static enum rf_status store_feedback(struct req *req, void *ctx, const void *items, int n,
                                     struct store_item_result *results, struct rf_err *err)
{
    (void)ctx;
    return store_feedback_put(req->store, req->workspace_id, items, n, results, err);
}

static const struct batch_spec feedback_batch = {sizeof(struct feedback_new), parse_feedback,
                                                 store_feedback};

HANDLER(h_feedback_batch)
{
    json_t *body = NULL, *items = NULL;
    struct store_item_result *results = NULL;
    bool only = false;
    enum rf_status rc = batch_rejected_only(req, &only, err);
    if (rc == RF_OK)
        rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = batch_items(body, "feedback", &items, err);
    if (rc == RF_OK)
        rc = batch_run(req, items, &feedback_batch, NULL, &results, err);
    if (rc == RF_OK)
        resp_json(resp, 200, batch_render(results, (int)json_array_size(items), only));
    free(results);
    json_decref(body);
    return rc;
}

/* The answer to a queued rating, once the group that wrote it resumed the connection. */
static enum rf_status feedback_put_done(struct req *req, struct resp *resp, struct rf_err *err)
{
    json_t *fb = NULL;
    struct rating *r = req->rating;
    req->rating = NULL;
    enum rf_status rc = write_group_finish(r, &fb, err);
    if (rc == RF_OK)
        resp_json(resp, 200, fb);
    return rc;
}

HANDLER(h_feedback_put)
{
    json_t *body = NULL, *fb = NULL;
    const char *rating = NULL, *note = NULL;
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = parse_rating(body, &rating, &note, err);
    /* Queued for the group commit (write_group.h), which writes it, reads it back in the
     * same transaction - the reply shows exactly this write - and resumes the connection.
     * After shutdown began: written at once. */
    if (rc == RF_OK) {
        req->rating = write_group_submit(req->writes, req->conn, req->workspace_id,
                                         req->params[0], rating, note);
        if (req->rating)
            req->resume = feedback_put_done;
        else
            rc = write_group_now(req->writes, req->store, req->workspace_id, req->params[0],
                                 rating, note, &fb, err);
    }
    json_decref(body);
    if (rc == RF_OK && !req->resume)
        resp_json(resp, 200, fb);
    return rc;
}

HANDLER(h_feedback_get)
{
    json_t *fb = NULL;
    enum rf_status rc = store_feedback_get(req->store, req->workspace_id, req->params[0], &fb, err);
    if (rc)
        return rc;
    resp_json(resp, 200, fb);
    return RF_OK;
}

HANDLER(h_feedback_delete)
{
    enum rf_status rc = store_feedback_delete(req->store, req->workspace_id, req->params[0], err);
    if (rc)
        return rc;
    resp_empty(resp, 204);
    return RF_OK;
}
