/*
 * http - what request handlers see: the request, the response they fill,
 * and the helpers for query strings, JSON bodies and pages.
 *
 * A handler runs on one of libmicrohttpd's pool threads once the whole body
 * has arrived. It returns RF_OK after filling struct resp, or an error status
 * with struct rf_err filled; the server renders errors as the JSON error body
 * of SPEC §4.1 (code, message, details.field/reason, request_id).
 *
 * req->store is the calling thread's own database connection (opened on
 * first use, closed when the thread exits); handlers never share it.
 */
#ifndef REFOLD_HTTP_H
#define REFOLD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "core/template.h"
#include "core/ulid.h"
#include "store/store.h"

#define HTTP_MAX_PARAMS 4

struct http_server;
struct hub;
struct worker_pool;

struct resp;
struct rating;

struct req {
    struct MHD_Connection *conn;
    struct http_server *server;
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS]; /* {placeholders} of the route, in order */
    char *param_buf;                     /* owns the params' storage */
    char workspace_id[ID_MAX];           /* set for authenticated routes */
    bool cookie_auth;                    /* authenticated by the session cookie */
    const char *credential;              /* the API key or session token (borrowed) */
    char request_id[ID_MAX];
    struct buf body;
    struct store *store;
    struct hub *hub;          /* job events for SSE (may be NULL) */
    struct worker_pool *pool; /* this process's workers (may be NULL) */
    struct write_group *writes; /* the server's group commit of single ratings */
    /* A handler that suspended its connection sets resume: the server calls it when the
     * connection is resumed, to answer. */
    enum rf_status (*resume)(struct req *req, struct resp *resp, struct rf_err *err);
    struct rating *rating; /* a rating queued in writes, until resume takes it */
};

struct resp {
    int status;                 /* HTTP status; 0 until set */
    json_t *json;               /* body (stolen); NULL for an empty body */
    struct MHD_Response *raw;   /* instead of json: a ready response (static files, SSE) */
    char location[160];         /* Location header when non-empty */
    char set_cookie[512];       /* Set-Cookie header when non-empty */
};

typedef enum rf_status (*http_handler)(struct req *req, struct resp *resp, struct rf_err *err);

/* ---- request helpers ---- */

/* A query-string argument, or NULL. */
const char *req_query(struct req *req, const char *key);
/* A request header, or NULL. */
const char *req_header(struct req *req, const char *name);
/* The body parsed as a JSON object (caller owns). An empty body is {} when allow_empty. */
enum rf_status req_json(struct req *req, bool allow_empty, json_t **out, struct rf_err *err);
/* This thread's database connection, opened on first use (req->store is set, except for
 * ROUTE_NO_STORE routes, which call this). NULL with RF_UNAVAILABLE in err when it cannot
 * be opened. Borrowed: the thread owns it. */
struct store *req_store(struct req *req, struct rf_err *err);
/* Whether a credential that authenticated a request earlier (an API key, or with cookie a
 * session token) still does: RF_UNAUTHORIZED once the key is revoked or the session ended
 * or was signed out. For long-lived responses (SSE), on the calling pool thread's store. */
enum rf_status http_still_authorized(struct http_server *srv, bool cookie, const char *credential,
                                     struct rf_err *err);
/* ?limit= and ?cursor= into page (defaults and bounds of SPEC §4.1). */
enum rf_status req_page(struct req *req, struct store_page *page, struct rf_err *err);
/* s as a whole decimal integer within [min, max]: digits, after an optional '-' only
 * (strtoll alone would also take leading spaces and a '+', so that "/versions/ 1" or
 * "?limit=+5" passed for numbers). */
bool req_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* An integer query argument within [min, max]; *out untouched when absent. */
enum rf_status req_query_int(struct req *req, const char *key, int64_t min, int64_t max,
                             int64_t *out, struct rf_err *err);
/* An id query argument (?agent_id=): absent (*out NULL), or 1 to ID_MAX - 1 bytes; an
 * empty one is 400 naming it, never a filter that matches nothing. */
enum rf_status req_query_id(struct req *req, const char *key, const char **out,
                            struct rf_err *err);
/* A query argument that must be one of the NULL-terminated choices (or absent). */
enum rf_status req_query_enum(struct req *req, const char *key, const char *const *choices,
                              const char **out, struct rf_err *err);

/* ---- response helpers ---- */

/* Respond with a JSON body (stolen). */
void resp_json(struct resp *resp, int status, json_t *body);
/* Respond {"data": [...], "next_cursor": ...} from a store list (consumed). */
void resp_list(struct resp *resp, struct store_list *list);
/* Respond with no body. */
void resp_empty(struct resp *resp, int status);

/* ---- limits (SPEC §4.1) ---- */

#define LIMIT_NAME_CHARS 200
#define LIMIT_TEMPLATE_BYTES TEMPLATE_MAX_BYTES
#define LIMIT_TRACE_FIELD_BYTES (1024 * 1024)
#define LIMIT_BATCH_ITEMS 1000
#define LIMIT_TEXT_CHARS 10000 /* descriptions, notes, reasons */

/* True when v is one of the NULL-terminated choices. */
bool one_of(const char *v, const char *const *choices);

/* ---- shared validation and rendering ---- */

/* A prompt template's size limit, and when body has "variables", that they equal the set
 * of the template's placeholders (400 naming the difference). */
enum rf_status validate_template(const json_t *body, const char *tmpl, struct rf_err *err);
/* {trace_id} or {source?, external_id}: how feedback and executions name a trace. */
enum rf_status parse_trace_ref(const json_t *obj, struct trace_ref *ref, struct rf_err *err);
/* {code, message, details?} for err (the inner object of the error body). */
json_t *http_error_object(const struct rf_err *err);
/* {"data": [{index, id, result} | {index, error}], "summary": {created, updated, unchanged,
 * rejected}} for the n outcomes of a batch; with rejected_only, data lists only the
 * rejected items (the summary still counts every item). */
json_t *batch_render(const struct store_item_result *results, int n, bool rejected_only);
/* Whether the request asked for ?outcomes=rejected (RF_INVALID for other values than
 * "all" and "rejected"). */
enum rf_status batch_rejected_only(struct req *req, bool *out, struct rf_err *err);

#endif
