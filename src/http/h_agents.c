/*
 * h_agents - /v1/agents: create, list, read (with stats), update, archive,
 * and the agent's contradictions (SPEC §4.3, §7 step 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "core/template.h"
#include "http/handlers.h"
#include "core/banned.h"

static const char *const agent_statuses[] = {"discovered", "confirmed", "archived", NULL};

/* names as a JSON list in about max bytes: as many whole names as fit, then "+N more".
 * The error message holds 255 bytes, and both of validate_template's lists must show. */
static void names_excerpt(const json_t *names, char *out, size_t max)
{
    size_t n = json_array_size(names), shown = 0, used = 1;
    snprintf(out, max, "[");
    for (; shown < n; shown++) {
        char *q = jx_dump(json_array_get(names, shown));
        size_t len = strlen(q) + (shown ? 1 : 0);
        bool fits = used + len + sizeof ",+4294967295 more]" <= max;
        if (fits)
            used += (size_t)snprintf(out + used, max - used, "%s%s", shown ? "," : "", q);
        free(q);
        if (!fits)
            break;
    }
    if (shown < n)
        snprintf(out + used, max - used, "%s+%zu more]", shown ? "," : "", n - shown);
    else
        snprintf(out + used, max - used, "]");
}

enum rf_status validate_template(const json_t *body, const char *tmpl, struct rf_err *err)
{
    if (strlen(tmpl) > LIMIT_TEMPLATE_BYTES)
        return rf_fail_field(err, RF_TOO_LARGE, "prompt_template",
                             "prompt_template is larger than %d bytes", LIMIT_TEMPLATE_BYTES);
    json_t *given = NULL;
    enum rf_status rc = jx_typed(body, "variables", JX_NULLABLE, JSON_ARRAY, &given, err);
    if (rc || !given)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(given, i, v)
    {
        if (!json_is_string(v))
            return rf_fail_field(err, RF_INVALID, "variables", "variables must be strings");
    }
    json_t *found = template_variables(tmpl);
    json_t *missing = template_missing(given, found);  /* declared, not in the template */
    json_t *extra = template_missing(found, given);    /* in the template, not declared */
    if (json_array_size(missing) || json_array_size(extra)) {
        char m[96], x[96];
        names_excerpt(missing, m, sizeof m);
        names_excerpt(extra, x, sizeof x);
        rf_fail_field(err, RF_INVALID, "variables",
                      "variables differ from the template's placeholders: not in the template "
                      "%s, not declared %s",
                      m, x);
        rc = RF_INVALID;
    }
    json_decref(found);
    json_decref(missing);
    json_decref(extra);
    return rc;
}

HANDLER(h_agents_create)
{
    json_t *body = NULL, *agent = NULL;
    struct agent_new in = {0};
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "name", JX_REQUIRED | JX_NAME | JX_TRIMMED, LIMIT_NAME_CHARS, false,
                       &in.name, err);
    if (rc == RF_OK)
        rc = jx_string(body, "description", JX_NULLABLE, LIMIT_TEXT_CHARS, true, &in.description,
                       err);
    if (rc == RF_OK)
        rc = jx_string(body, "prompt_template", JX_NULLABLE, 0, false, &in.prompt_template, err);
    if (rc == RF_OK)
        rc = jx_string(body, "status", JX_NULLABLE, 0, false, &in.status, err);
    if (rc == RF_OK && in.status && (!one_of(in.status, agent_statuses) ||
                                     strcmp(in.status, "archived") == 0))
        rc = rf_fail_field(err, RF_INVALID, "status", "status must be discovered or confirmed");
    if (rc == RF_OK && in.prompt_template)
        rc = validate_template(body, in.prompt_template, err);
    if (rc == RF_OK && !in.prompt_template && json_object_get(body, "variables") &&
        !json_is_null(json_object_get(body, "variables")))
        rc = rf_fail_field(err, RF_INVALID, "variables", "variables need a prompt_template");
    if (rc == RF_OK)
        rc = store_agent_create(req->store, req->workspace_id, &in, &agent, err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, 201, agent);
    return RF_OK;
}

HANDLER(h_agents_list)
{
    struct store_page page;
    const char *status, *name = req_query(req, "name");
    struct store_list list = {0};
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_enum(req, "status", agent_statuses, &status, err);
    /* A filter, not a name being stored: no JX_NAME check, so an agent named before names
     * were checked is still found by its name. */
    if (rc == RF_OK && name && (!*name || jx_utf8_len(name) > LIMIT_NAME_CHARS))
        rc = rf_fail_field(err, RF_INVALID, "name", "name must be 1 to %d characters",
                           LIMIT_NAME_CHARS);
    if (rc == RF_OK)
        rc = store_agent_list(req->store, req->workspace_id, status, name, &page, &list, err);
    /* Stats come from the counter table: one indexed row per agent. */
    size_t i;
    json_t *a;
    if (rc == RF_OK) {
        json_array_foreach(list.data, i, a)
        {
            json_t *stats = NULL;
            rc = store_agent_stats(req->store, req->workspace_id,
                                   json_string_value(json_object_get(a, "id")), &stats, err);
            if (rc)
                break;
            json_object_set_new(a, "stats", stats);
        }
    }
    if (rc) {
        store_list_release(&list);
        return rc;
    }
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_agents_get)
{
    json_t *agent = NULL;
    enum rf_status rc = store_agent_get(req->store, req->workspace_id, req->params[0], true,
                                        &agent, err);
    if (rc)
        return rc;
    resp_json(resp, 200, agent);
    return RF_OK;
}

HANDLER(h_agents_update)
{
    json_t *body = NULL, *agent = NULL;
    struct agent_patch in = {0};
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "name", JX_NAME | JX_TRIMMED, LIMIT_NAME_CHARS, false, &in.name, err);
    if (rc == RF_OK && json_object_get(body, "description")) {
        in.set_description = true;
        rc = jx_string(body, "description", JX_NULLABLE, LIMIT_TEXT_CHARS, true, &in.description,
                       err);
    }
    if (rc == RF_OK)
        rc = jx_string(body, "status", JX_OPTIONAL, 0, false, &in.status, err);
    if (rc == RF_OK && in.status && !one_of(in.status, agent_statuses))
        rc = rf_fail_field(err, RF_INVALID, "status",
                           "status must be discovered, confirmed or archived");
    if (rc == RF_OK)
        rc = store_agent_update(req->store, req->workspace_id, req->params[0], &in, &agent, err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, 200, agent);
    return RF_OK;
}

HANDLER(h_agents_delete)
{
    enum rf_status rc = store_agent_archive(req->store, req->workspace_id, req->params[0], err);
    if (rc)
        return rc;
    resp_empty(resp, 204);
    return RF_OK;
}

HANDLER(h_agents_contradictions)
{
    static const char *const kinds[] = {"missed_failure", "false_alarm", NULL};
    int64_t limit = STORE_LIMIT_DEFAULT;
    const char *kind;
    json_t *rows = NULL;
    enum rf_status rc = req_query_int(req, "limit", 1, STORE_LIMIT_MAX, &limit, err);
    if (rc == RF_OK)
        rc = req_query_enum(req, "kind", kinds, &kind, err);
    char *next = NULL;
    if (rc == RF_OK)
        rc = store_contradictions(req->store, req->workspace_id, req->params[0], kind, (int)limit,
                                  STORE_PAGE_BYTES, true, req_query(req, "cursor"), &next,
                                  &rows, err);
    if (rc)
        return rc;
    resp_json(resp, 200,
              json_pack("{s:o, s:o}", "data", rows, "next_cursor", jx_str_or_null(next)));
    free(next);
    return RF_OK;
}
