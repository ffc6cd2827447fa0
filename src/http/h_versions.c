/*
 * h_versions - /v1/agents/{id}/versions: create (manual candidates), list,
 * read, diff, and the review transitions promote and reject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diff.h"
#include "core/jsonx.h"
#include "http/handlers.h"
#include "core/banned.h"

static const char *const version_statuses[] = {"candidate", "active", "rejected", "archived", NULL};

/* The {n} path segment as a version number; anything else is a missing version. */
static enum rf_status version_number(struct req *req, const char *s, int64_t *n,
                                     struct rf_err *err)
{
    if (!req_parse_int(s, 1, INT32_MAX, n))
        return rf_fail(err, RF_NOT_FOUND, "agent %s has no version %s", req->params[0], s);
    return RF_OK;
}

HANDLER(h_versions_create)
{
    json_t *body = NULL, *version = NULL;
    struct version_new in = {.source = "manual"};
    bool created = false;
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "prompt_template", JX_REQUIRED, 0, false, &in.prompt_template, err);
    if (rc == RF_OK)
        rc = validate_template(body, in.prompt_template, err);
    if (rc == RF_OK)
        rc = jx_bool(body, "reuse_identical", JX_NULLABLE, &in.reuse_identical, NULL, err);
    if (rc == RF_OK)
        rc = jx_string(body, "status", JX_NULLABLE, 0, false, &in.status, err);
    if (rc == RF_OK && in.status && strcmp(in.status, "candidate") != 0 &&
        strcmp(in.status, "active") != 0)
        rc = rf_fail_field(err, RF_INVALID, "status", "status must be candidate or active");
    if (rc == RF_OK)
        rc = store_version_create(req->store, req->workspace_id, req->params[0], &in, &version,
                                  &created, err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, created ? 201 : 200, version);
    return RF_OK;
}

HANDLER(h_versions_list)
{
    struct store_page page;
    const char *status;
    struct store_list list = {0};
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_enum(req, "status", version_statuses, &status, err);
    if (rc == RF_OK)
        rc = store_version_list(req->store, req->workspace_id, req->params[0], status, &page,
                                &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_versions_get)
{
    int64_t n;
    json_t *v = NULL;
    enum rf_status rc = version_number(req, req->params[1], &n, err);
    if (rc == RF_OK)
        rc = store_version_get(req->store, req->workspace_id, req->params[0], n, &v, err);
    if (rc)
        return rc;
    resp_json(resp, 200, v);
    return RF_OK;
}

HANDLER(h_versions_diff)
{
    int64_t n, m = 0;
    json_t *target = NULL, *base = NULL;
    enum rf_status rc = version_number(req, req->params[1], &n, err);
    if (rc == RF_OK)
        rc = req_query_int(req, "base", 1, INT32_MAX, &m, err);
    if (rc == RF_OK)
        rc = store_version_get(req->store, req->workspace_id, req->params[0], n, &target, err);
    if (rc == RF_OK && m > 0) {
        rc = store_version_get(req->store, req->workspace_id, req->params[0], m, &base, err);
        if (rc == RF_NOT_FOUND)
            rf_fail_field(err, RF_NOT_FOUND, "base", "agent %s has no version %lld",
                          req->params[0], (long long)m);
    } else if (rc == RF_OK) {
        /* Default base: the parent, else the active version. */
        const char *parent = json_string_value(json_object_get(target, "parent_version_id"));
        if (parent)
            rc = store_version_find(req->store, req->workspace_id, parent, &base, err);
        if (rc == RF_OK && !base) {
            rc = store_version_active(req->store, req->workspace_id, req->params[0], &base, err);
            if (rc == RF_CONFLICT) /* no active version: diff against nothing */
                rc = RF_OK;
        }
    }
    if (rc) {
        json_decref(target);
        json_decref(base);
        return rc;
    }
    char a_label[64], b_label[64];
    snprintf(a_label, sizeof a_label, "v%lld",
             base ? (long long)json_integer_value(json_object_get(base, "version")) : 0LL);
    snprintf(b_label, sizeof b_label, "v%lld", (long long)n);
    struct diff_result d;
    diff_lines(base ? json_string_value(json_object_get(base, "prompt_template")) : "",
               json_string_value(json_object_get(target, "prompt_template")), a_label, b_label, &d);
    json_t *out = json_pack("{s:o, s:o, s:s, s:{s:i, s:i}}", "base", base ? base : json_null(),
                            "target", target, "unified", d.unified, "stats", "added", d.added,
                            "removed", d.removed);
    free(d.unified);
    resp_json(resp, 200, out);
    return RF_OK;
}

static enum rf_status decide(struct req *req, struct resp *resp, struct rf_err *err,
                             bool promote)
{
    int64_t n;
    json_t *body = NULL, *v = NULL;
    const char *text = NULL;
    const char *field = promote ? "note" : "reason";
    enum rf_status rc = version_number(req, req->params[1], &n, err);
    if (rc == RF_OK)
        rc = req_json(req, true, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, field, JX_NULLABLE, LIMIT_TEXT_CHARS, true, &text, err);
    if (rc == RF_OK && promote)
        rc = store_version_promote(req->store, req->workspace_id, req->params[0], n, text, &v,
                                   err);
    else if (rc == RF_OK)
        rc = store_version_reject(req->store, req->workspace_id, req->params[0], n, text, &v, err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, 200, v);
    return RF_OK;
}

HANDLER(h_versions_promote)
{
    return decide(req, resp, err, true);
}

HANDLER(h_versions_reject)
{
    return decide(req, resp, err, false);
}
