/*
 * h_evals - /v1/evals: create, list and read evals, and upsert their
 * executions in batches (batch.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "http/batch.h"
#include "http/handlers.h"
#include "core/banned.h"

HANDLER(h_evals_create)
{
    json_t *body = NULL, *eval = NULL;
    const char *agent_id, *name, *description;
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "agent_id", JX_REQUIRED, ID_MAX, false, &agent_id, err);
    if (rc == RF_OK)
        rc = jx_string(body, "name", JX_REQUIRED | JX_NAME | JX_TRIMMED, LIMIT_NAME_CHARS, false,
                       &name, err);
    if (rc == RF_OK)
        rc = jx_string(body, "description", JX_NULLABLE, LIMIT_TEXT_CHARS, true, &description,
                       err);
    if (rc == RF_OK)
        rc = store_eval_create(req->store, req->workspace_id, agent_id, name, description, &eval,
                               err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, 201, eval);
    return RF_OK;
}

HANDLER(h_evals_list)
{
    struct store_page page;
    struct store_list list = {0};
    const char *agent_id = NULL;
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_id(req, "agent_id", &agent_id, err);
    if (rc == RF_OK)
        rc = store_eval_list(req->store, req->workspace_id, agent_id, &page, &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_evals_get)
{
    json_t *eval = NULL;
    enum rf_status rc = store_eval_get(req->store, req->workspace_id, req->params[0], &eval, err);
    if (rc)
        return rc;
    resp_json(resp, 200, eval);
    return RF_OK;
}

static enum rf_status parse_execution(const json_t *obj, void *item, struct batch_scratch *sc,
                                      struct rf_err *err)
{
    (void)sc;
    struct execution_new *x = item;
    memset(x, 0, sizeof *x);
    enum rf_status rc;
    if ((rc = parse_trace_ref(obj, &x->trace, err)) ||
        (rc = jx_bool(obj, "predicted_result", JX_REQUIRED, &x->predicted_result, NULL, err)) ||
        (rc = jx_string(obj, "predicted_reason", JX_NULLABLE, LIMIT_TEXT_CHARS, true,
                        &x->predicted_reason, err)) ||
        (rc = jx_int(obj, "execution_time_ms", JX_NULLABLE, 0, INT64_MAX / 2,
                     &x->execution_time_ms, &x->has_execution_time, err)))
        return rc;
    return RF_OK;
}

static enum rf_status store_executions(struct req *req, void *ctx, const void *items, int n,
                                       struct store_item_result *results, struct rf_err *err)
{
    return store_executions_put(req->store, req->workspace_id, ctx, items, n, results, err);
}

static const struct batch_spec execution_batch = {sizeof(struct execution_new), parse_execution,
                                                  store_executions};

HANDLER(h_executions_put)
{
    json_t *body = NULL, *items = NULL, *eval = NULL;
    struct store_item_result *results = NULL;
    bool only = false;
    enum rf_status rc = batch_rejected_only(req, &only, err);
    if (rc == RF_OK)
        rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = batch_items(body, "executions", &items, err);
    /* An unknown eval fails the request, not each item. */
    if (rc == RF_OK)
        rc = store_eval_get(req->store, req->workspace_id, req->params[0], &eval, err);
    if (rc == RF_OK)
        rc = batch_run(req, items, &execution_batch, (void *)req->params[0], &results, err);
    if (rc == RF_OK)
        resp_json(resp, 200, batch_render(results, (int)json_array_size(items), only));
    free(results);
    json_decref(eval);
    json_decref(body);
    return rc;
}
