/*
 * h_improve - POST /v1/agents/{id}/improve-prompt: validate, then enqueue a
 * prompt_improvement job (202 with the Job and Location; with an
 * Idempotency-Key, a repeat with the same body returns the same job with 200
 * and a different body is 409).
 */
#include <string.h>

#include "core/jsonx.h"
#include "http/handlers.h"
#include "improve/improve.h"
#include "jobs/jobs.h"
#include "core/banned.h"

#define MODEL_MAX_CHARS 128

HANDLER(h_agents_improve)
{
    json_t *body = NULL, *agent = NULL, *params = NULL, *job = NULL;
    int64_t max = IMPROVE_DEFAULT_CONTRADICTIONS;
    const char *model = NULL, *instructions = NULL;
    const char *key = req_header(req, "Idempotency-Key");
    bool created = false;
    enum rf_status rc = req_json(req, true, &body, err);
    if (rc == RF_OK)
        rc = jx_int(body, "max_contradictions", JX_NULLABLE, 1, IMPROVE_MAX_CONTRADICTIONS, &max,
                    NULL, err);
    if (rc == RF_OK)
        rc = jx_string(body, "model", JX_NULLABLE | JX_NAME, MODEL_MAX_CHARS, false, &model, err);
    if (rc == RF_OK)
        rc = jx_string(body, "instructions", JX_NULLABLE, LIMIT_TEXT_CHARS, true, &instructions,
                       err);
    if (rc == RF_OK) {
        params = json_pack("{s:s, s:I}", "agent_id", req->params[0], "max_contradictions",
                           (json_int_t)max);
        if (model)
            json_object_set_new(params, "model", json_string(model));
        if (instructions && *instructions)
            json_object_set_new(params, "instructions", json_string(instructions));
    }
    struct job_spec spec = {.type = IMPROVE_JOB_TYPE, .params = params,
                            .agent_id = req->params[0], .idempotency_key = key};
    /* A repeat gets the job its key made even if the agent was archived since. It also
     * checks the key (1 to IDEMPOTENCY_KEY_MAX printable ASCII characters). */
    if (rc == RF_OK)
        rc = jobs_find_repeat(req->store, req->workspace_id, &spec, &job, err);
    if (rc == RF_OK && !job)
        rc = store_agent_get(req->store, req->workspace_id, req->params[0], false, &agent, err);
    if (rc == RF_OK && agent &&
        strcmp(json_string_value(json_object_get(agent, "status")), "archived") == 0)
        rc = rf_fail_reason(err, RF_CONFLICT, "agent_archived", "agent %s is archived",
                            req->params[0]);
    if (rc == RF_OK && agent && !json_is_object(json_object_get(agent, "active_version")))
        rc = rf_fail_reason(err, RF_CONFLICT, "no_active_version",
                            "agent %s has no active version to improve", req->params[0]);
    if (rc == RF_OK && !job)
        rc = jobs_enqueue(req->store, req->pool, req->workspace_id, &spec, &job, &created, err);
    json_decref(params);
    json_decref(agent);
    json_decref(body);
    if (rc)
        return rc;
    resp_job_enqueued(resp, job, created);
    return RF_OK;
}
