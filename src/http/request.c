/*
 * request - the helpers of http.h that handlers call on their request and response:
 * query arguments and headers, the JSON body, paging and enumerated filters, and the
 * resp_* setters. They read what dispatch.c gathered (the connection, the body) and
 * know nothing of routing, authentication or libmicrohttpd's callbacks, which stay
 * in dispatch.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/jsonx.h"
#include "http/http.h"
#include "core/banned.h"

const char *req_query(struct req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *req_header(struct req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

enum rf_status req_json(struct req *req, bool allow_empty, json_t **out, struct rf_err *err)
{
    *out = NULL;
    if (req->body.len == 0) {
        if (!allow_empty)
            return rf_fail(err, RF_INVALID, "a JSON object body is required");
        *out = json_object();
        return RF_OK;
    }
    enum rf_status rc = jx_parse(req->body.data, req->body.len, out, err);
    if (rc)
        return rc;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return rf_fail(err, RF_INVALID, "the request body must be a JSON object");
    }
    return RF_OK;
}

bool req_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*end || errno || n < min || n > max)
        return false;
    *out = n;
    return true;
}

enum rf_status req_query_int(struct req *req, const char *key, int64_t min, int64_t max,
                             int64_t *out, struct rf_err *err)
{
    const char *v = req_query(req, key);
    if (v && !req_parse_int(v, min, max, out))
        return rf_fail_field(err, RF_INVALID, key, "%s must be an integer between %lld and %lld",
                             key, (long long)min, (long long)max);
    return RF_OK;
}

enum rf_status req_page(struct req *req, struct store_page *page, struct rf_err *err)
{
    int64_t limit = STORE_LIMIT_DEFAULT;
    enum rf_status rc = req_query_int(req, "limit", 1, STORE_LIMIT_MAX, &limit, err);
    page->limit = (int)limit;
    page->cursor = req_query(req, "cursor");
    return rc;
}

enum rf_status req_query_id(struct req *req, const char *key, const char **out,
                            struct rf_err *err)
{
    *out = req_query(req, key);
    if (*out && (!**out || strlen(*out) >= ID_MAX))
        return rf_fail_field(err, RF_INVALID, key, "%s must be an id", key);
    return RF_OK;
}

bool one_of(const char *v, const char *const *choices)
{
    for (; *choices; choices++)
        if (strcmp(v, *choices) == 0)
            return true;
    return false;
}

enum rf_status req_query_enum(struct req *req, const char *key, const char *const *choices,
                              const char **out, struct rf_err *err)
{
    const char *v = req_query(req, key);
    *out = NULL;
    if (!v)
        return RF_OK;
    if (!one_of(v, choices)) {
        char list[256] = "";
        size_t used = 0;
        for (const char *const *c = choices; *c; c++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *c);
            if (w > 0 && used + (size_t)w < sizeof list)
                used += (size_t)w;
        }
        return rf_fail_field(err, RF_INVALID, key, "%s must be one of: %s", key, list);
    }
    *out = v;
    return RF_OK;
}

void resp_json(struct resp *resp, int status, json_t *body)
{
    resp->status = status;
    json_decref(resp->json);
    resp->json = body;
}

void resp_list(struct resp *resp, struct store_list *list)
{
    json_t *body = json_pack("{s:o, s:o}", "data", list->data, "next_cursor",
                             jx_str_or_null(list->next_cursor));
    list->data = NULL;
    free(list->next_cursor);
    list->next_cursor = NULL;
    resp_json(resp, 200, body);
}

void resp_empty(struct resp *resp, int status)
{
    resp->status = status;
    json_decref(resp->json);
    resp->json = NULL;
}
