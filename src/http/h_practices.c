/*
 * h_practices - /v1/best-practices: the built-in rows plus the workspace's
 * own; create and delete own rows (source "custom").
 */
#include <strings.h>

#include "core/jsonx.h"
#include "http/handlers.h"
#include "core/banned.h"

static const char *const categories[] = {"structure", "clarity", "safety", "reasoning", "general",
                                         NULL};

HANDLER(h_practices_list)
{
    struct store_page page;
    const char *category;
    struct store_list list = {0};
    enum rf_status rc = req_page(req, &page, err);
    if (rc == RF_OK)
        rc = req_query_enum(req, "category", categories, &category, err);
    if (rc == RF_OK)
        rc = store_practice_list(req->store, req->workspace_id, category, &page, &list, err);
    if (rc)
        return rc;
    resp_list(resp, &list);
    return RF_OK;
}

HANDLER(h_practices_create)
{
    json_t *body = NULL, *bp = NULL;
    const char *category, *title, *content, *url;
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "category", JX_REQUIRED, 0, false, &category, err);
    if (rc == RF_OK && !one_of(category, categories))
        rc = rf_fail_field(err, RF_INVALID, "category",
                           "category must be structure, clarity, safety, reasoning or general");
    if (rc == RF_OK)
        rc = jx_string(body, "title", JX_REQUIRED | JX_NAME, LIMIT_NAME_CHARS, false, &title, err);
    if (rc == RF_OK)
        rc = jx_string(body, "content", JX_REQUIRED, LIMIT_TEXT_CHARS, false, &content, err);
    if (rc == RF_OK)
        rc = jx_string(body, "url", JX_NULLABLE | JX_NAME, 2000, false, &url, err);
    /* The UI links to it: only a web address, never javascript: or data:. */
    if (rc == RF_OK && url && strncasecmp(url, "https://", 8) != 0 &&
        strncasecmp(url, "http://", 7) != 0)
        rc = rf_fail_field(err, RF_INVALID, "url", "url must start with https:// or http://");
    if (rc == RF_OK)
        rc = store_practice_create(req->store, req->workspace_id, category, title, content, url,
                                   &bp, err);
    json_decref(body);
    if (rc)
        return rc;
    resp_json(resp, 201, bp);
    return RF_OK;
}

HANDLER(h_practices_delete)
{
    enum rf_status rc = store_practice_delete(req->store, req->workspace_id, req->params[0], err);
    if (rc)
        return rc;
    resp_empty(resp, 204);
    return RF_OK;
}
