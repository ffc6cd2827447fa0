/*
 * dispatch - one request's way through the HTTP server, from libmicrohttpd's first
 * call of the access handler to the completion callback. See server.h for the
 * server's design; server.c starts and stops the daemon that calls in here.
 *
 * DESIGN. Per-request state (struct req_state) is created on the first call of the
 * access handler, where the head alone decides what does not need the body: ambiguous
 * framing (400), a body over its route's cap (413), and - before a body of up to
 * max_body is kept - the route and the API key (before_body). The following calls
 * accumulate the body; the last one dispatches: the URL's UTF-8 check, routing,
 * authentication, the content type, the memo (memo.h), then the route's handler. A
 * handler that suspended its connection is answered when it is resumed. Errors become
 * the JSON error body of SPEC §4.1 with the request id. The completion callback records
 * the request in the metrics and the log and frees its state.
 *
 * Threading: every function here runs on the pool thread that owns the connection;
 * what they share is struct http_server (server_internal.h), read-only but for its
 * atomics, and each thread's own store connection and memo.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/utf8.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "http/memo.h"
#include "http/router.h"
#include "http/server_internal.h"
#include "http/session.h"
#include "http/write_group.h"
#include "store/store.h"
#include "core/banned.h"

/* A body declared larger than the limit, up to this size, is read and dropped before the
 * 413 goes out: a client that is still sending when the server closes sees a connection
 * reset instead of the answer. Past it (or when the client waits for 100 Continue) the
 * 413 goes out at once and the connection closes. */
#define BODY_DRAIN_MAX (64ull * 1024 * 1024)
/* The body cap of the routes that need no key (sign-in, health, metrics, the UI): only
 * POST /v1/session takes a body, a small one. */
#define PUBLIC_MAX_BODY (16u * 1024)

struct req_state {
    struct req req;
    int route;
    int status;
    int64_t start_us;
    size_t max_body;     /* the body cap of this request's route */
    bool too_large;
    bool discard;        /* the body is read and dropped: the answer does not depend on it */
    bool auth_done;      /* authenticated before the body was read (before_body) ... */
    enum rf_status auth_rc; /* ... with this outcome */
    struct rf_err auth_err;
    char *memo_key;      /* set for a GET of a ROUTE_MEMO route: its body may be remembered */
    bool has_version;    /* the store's data version was read ... */
    uint64_t version;    /* ... inside the request's read scope */
    char *failure;       /* a 5xx answer's error message, logged when the request ends */
};

static struct memo *thread_memo(struct http_server *srv)
{
    struct memo *m = pthread_getspecific(srv->memo_key);
    if (!m) {
        m = memo_new();
        pthread_setspecific(srv->memo_key, m);
    }
    return m;
}

static struct store *thread_store(struct http_server *srv, struct rf_err *err)
{
    struct store *st = pthread_getspecific(srv->store_key);
    if (st)
        return st;
    if (store_open(srv->db_url, &st, err) != RF_OK)
        return NULL;
    pthread_setspecific(srv->store_key, st);
    return st;
}

struct store *req_store(struct req *req, struct rf_err *err)
{
    if (!req->store && (req->store = thread_store(req->server, err)) == NULL)
        err->code = RF_UNAVAILABLE;
    return req->store;
}

static int http_status_of(enum rf_status code)
{
    switch (code) {
    case RF_OK: return 200;
    case RF_INVALID: return 400;
    case RF_UNAUTHORIZED: return 401;
    case RF_NOT_FOUND: return 404;
    case RF_METHOD: return 405;
    case RF_CONFLICT: return 409;
    case RF_TOO_LARGE: return 413;
    case RF_UNSUPPORTED: return 415;
    case RF_UNAVAILABLE: return 503;
    default: return 500;
    }
}

json_t *http_error_object(const struct rf_err *err)
{
    enum rf_status code = err->code;
    if (http_status_of(code) == 500)
        code = RF_INTERNAL;
    json_t *e = json_pack("{s:s, s:s}", "code", rf_status_name(code), "message",
                          err->message[0] ? err->message : rf_status_name(code));
    if (err->field[0] || err->reason[0]) {
        json_t *d = json_object();
        if (err->field[0])
            json_object_set_new(d, "field", json_string(err->field));
        if (err->reason[0])
            json_object_set_new(d, "reason", json_string(err->reason));
        json_object_set_new(e, "details", d);
    }
    return e;
}

static json_t *error_body(const struct rf_err *err, const char *request_id)
{
    json_t *e = http_error_object(err);
    json_object_set_new(e, "request_id", json_string(request_id));
    return json_pack("{s:o}", "error", e);
}

json_t *batch_render(const struct store_item_result *results, int n, bool rejected_only)
{
    json_t *data = json_array();
    int counts[4] = {0};
    for (int i = 0; i < n; i++) {
        const struct store_item_result *r = &results[i];
        counts[r->outcome]++;
        if (r->outcome == OUTCOME_REJECTED)
            json_array_append_new(data, json_pack("{s:i, s:o}", "index", i, "error",
                                                  http_error_object(&r->err)));
        else if (!rejected_only)
            json_array_append_new(data, json_pack("{s:i, s:s, s:s}", "index", i, "id", r->id,
                                                  "result", store_outcome_name(r->outcome)));
    }
    return json_pack("{s:o, s:{s:i, s:i, s:i, s:i}}", "data", data, "summary", "created",
                     counts[OUTCOME_CREATED], "updated", counts[OUTCOME_UPDATED], "unchanged",
                     counts[OUTCOME_UNCHANGED], "rejected", counts[OUTCOME_REJECTED]);
}

static enum MHD_Result queue(struct req_state *rs, struct resp *resp)
{
    struct MHD_Response *r = resp->raw;
    if (!r && resp->json && resp->status == 200 && rs->memo_key &&
        !atomic_load(&rs->req.server->draining)) { /* a memo response is shared: no header */
        r = memo_respond(thread_memo(rs->req.server), rs->req.workspace_id, rs->memo_key,
                         rs->has_version, rs->version, resp->json);
    } else if (!r) {
        char *text = resp->json ? jx_dump(resp->json) : NULL;
        size_t len = text ? strlen(text) : 0;
        r = MHD_create_response_from_buffer(len, text ? text : (void *)"",
                                            text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (text)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    "application/json; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    MHD_add_response_header(r, "X-Request-Id", rs->req.request_id);
    /* Every answer, JSON, event stream or file: a browser takes it for the type it says,
     * never sniffs a body that quotes what a client sent into HTML or a script. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (atomic_load(&rs->req.server->draining)) /* the client reconnects elsewhere */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (resp->location[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    if (resp->set_cookie[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, resp->set_cookie);
    rs->status = resp->status;
    enum MHD_Result ok = MHD_queue_response(rs->req.conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    json_decref(resp->json);
    resp->json = NULL;
    return ok;
}

static enum MHD_Result queue_error(struct req_state *rs, const struct rf_err *err,
                                   const char *allow)
{
    struct resp resp = {.status = http_status_of(err->code)};
    resp.json = error_body(err, rs->req.request_id);
    if (resp.status >= 500 && !rs->failure) /* logged by dispatch_on_completed */
        rs->failure = xstrdup(err->message);
    if (allow) {
        struct MHD_Response *r = NULL;
        char *text = jx_dump(resp.json);
        r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        json_decref(resp.json);
        resp.json = NULL;
        resp.raw = r;
    }
    return queue(rs, &resp);
}

/* Bearer key or session cookie -> workspace. */
static enum rf_status authenticate(struct req *req, struct rf_err *err)
{
    const char *auth = req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *key = NULL;
    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return rf_fail(err, RF_UNAUTHORIZED, "Authorization must be \"Bearer <api key>\"");
        key = auth + 7;
        while (*key == ' ')
            key++;
    } else {
        key = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
        req->cookie_auth = key != NULL;
    }
    if (!key || !*key)
        return rf_fail(err, RF_UNAUTHORIZED,
                       "missing API key: send \"Authorization: Bearer <api key>\"");
    if (req->cookie_auth && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        const char *xrw = req_header(req, "X-Requested-With");
        if (!xrw || strcmp(xrw, "refold") != 0)
            return rf_fail(err, RF_UNAUTHORIZED,
                           "requests signed in by cookie must send X-Requested-With: refold");
    }
    if (strlen(key) > 256)
        return rf_fail(err, RF_UNAUTHORIZED, "invalid or revoked API key");
    req->credential = key;
    if (req->cookie_auth)
        return store_session_authenticate(req->store, key, req->workspace_id, err);
    return store_key_authenticate(req->store, key, req->workspace_id, err);
}

enum rf_status http_still_authorized(struct http_server *srv, bool cookie, const char *credential,
                                     struct rf_err *err)
{
    char ws[ID_MAX];
    struct store *st = thread_store(srv, err);
    if (!st)
        return RF_UNAVAILABLE;
    return cookie ? store_session_authenticate(st, credential, ws, err)
                  : store_key_authenticate(st, credential, ws, err);
}

static bool has_json_type(struct req *req)
{
    const char *ct = req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return false;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' ||
                                                           ct[n] == ' ');
}

static enum MHD_Result answer(struct req_state *rs, enum rf_status rc, struct resp *resp,
                              struct rf_err *err);

/* MHD_get_connection_values callback: stops at the first query argument that is not
 * valid UTF-8. */
static enum MHD_Result arg_is_utf8(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    bool *ok = cls;
    *ok = utf8_valid(key) && (!value || utf8_valid(value));
    return *ok ? MHD_YES : MHD_NO;
}

/* libmicrohttpd's percent-decoding of the path and the query arguments, except that %00
 * becomes 0xFF, a byte that is never UTF-8, instead of a NUL: a NUL would end the C
 * string there and route the request elsewhere (DELETE /v1/traces/ID%00/feedback would
 * reach DELETE /v1/traces/ID and delete the trace). url_is_utf8 then refuses it. */
size_t dispatch_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    size_t n = MHD_http_unescape(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = (char)0xFF;
    return n;
}

/* The path and query arguments arrive percent-decoded, as any bytes: ids and filters
 * that are not UTF-8 (or held a %00, see dispatch_unescape) are refused here, before they reach
 * an error message or a PostgreSQL parameter (which must be UTF-8). */
static bool url_is_utf8(struct req *req)
{
    bool ok = utf8_valid(req->path);
    if (ok)
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, arg_is_utf8, &ok);
    return ok;
}

static enum MHD_Result dispatch(struct http_server *srv, struct req_state *rs)
{
    struct req *req = &rs->req;
    struct rf_err err;
    rf_err_clear(&err);
    char allow[64];
    if (!url_is_utf8(req)) {
        rf_fail(&err, RF_INVALID,
                "the URL's path and query must be UTF-8 without NUL once percent-decoded");
        return queue_error(rs, &err, NULL);
    }
    enum route_match m = rs->route >= 0 ? ROUTE_FOUND /* before_body matched it */
                                        : router_match(req->method, req->path, req, &rs->route,
                                                       allow, sizeof allow);
    if (m == ROUTE_NO_PATH) {
        rf_fail(&err, RF_NOT_FOUND, "no such endpoint: %s", req->path);
        return queue_error(rs, &err, NULL);
    }
    if (m == ROUTE_NO_METHOD) {
        rf_fail(&err, RF_METHOD, "%s is not allowed on %s (allowed: %s)", req->method, req->path,
                allow);
        return queue_error(rs, &err, allow);
    }
    if (rs->too_large) {
        rf_fail(&err, RF_TOO_LARGE, "request body is larger than %zu bytes", rs->max_body);
        return queue_error(rs, &err, NULL);
    }
    const struct route *route = router_get(rs->route);
    if (!(route->flags & ROUTE_NO_STORE) && !req_store(req, &err))
        return queue_error(rs, &err, NULL);
    /* A GET reads several times (the key, then the resource): one snapshot for all of
     * them costs one read transaction instead of one per statement. (ROUTE_NO_STORE
     * routes have no connection yet.) */
    bool read_scope = req->store &&
                      (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
                      store_read_begin(req->store, &err) == RF_OK;
    rf_err_clear(&err); /* a scope that failed to start only costs speed */
    enum rf_status rc = RF_OK;
    if (!(route->flags & ROUTE_PUBLIC) && rs->auth_done) {
        rc = rs->auth_rc;
        err = rs->auth_err;
    } else if (!(route->flags & ROUTE_PUBLIC)) {
        rc = authenticate(req, &err);
    }
    if (rc == RF_OK && req->body.len > 0 && !has_json_type(req))
        rc = rf_fail(&err, RF_UNSUPPORTED, "request bodies must be application/json");
    struct resp resp = {0};
    if (rc == RF_OK && read_scope && srv->memo && (route->flags & ROUTE_MEMO) &&
        !atomic_load(&srv->draining)) {
        /* Nothing committed since this thread last answered the same request: answer the
         * same (memo.h). The key was checked above, inside this snapshot. */
        struct rf_err ignored;
        rs->memo_key = memo_key(req->conn, req->path);
        rs->has_version = store_data_version(req->store, &rs->version, &ignored) == RF_OK;
        if (rs->has_version && rs->memo_key)
            resp.raw = memo_lookup(thread_memo(srv), req->workspace_id, rs->memo_key,
                                   rs->version);
        if (resp.raw)
            resp.status = 200;
    }
    if (rc == RF_OK && !resp.raw)
        rc = route->handler(req, &resp, &err);
    if (read_scope)
        store_read_end(req->store);
    if (rc == RF_OK && req->resume)
        return MHD_YES; /* suspended: answered when resumed (dispatch_on_request) */
    return answer(rs, rc, &resp, &err);
}

/* Queue the handler's response, or the error it failed with. */
static enum MHD_Result answer(struct req_state *rs, enum rf_status rc, struct resp *resp,
                              struct rf_err *err)
{
    if (rc) {
        json_decref(resp->json);
        if (resp->raw)
            MHD_destroy_response(resp->raw);
        if (err->code == RF_OK)
            err->code = rc;
        return queue_error(rs, err, NULL);
    }
    if (!resp->status)
        resp->status = 200;
    return queue(rs, resp);
}

/* MHD_get_connection_values callback: counts the Content-Length and Transfer-Encoding
 * headers, notes a transfer coding other than a lone "chunked" and a header name holding
 * whitespace ("Content-Length : 5", which a proxy may read as the length). */
struct framing {
    int content_length, transfer_encoding;
    bool other_coding, spaced_name;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (strpbrk(key, " \t"))
        f->spaced_name = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_length++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
        if (!value || strcasecmp(value, "chunked") != 0)
            f->other_coding = true;
    }
    return MHD_YES;
}

/* Why the request's body framing is ambiguous, or NULL. libmicrohttpd frames the body by
 * the first Content-Length or by any Transfer-Encoding and keeps the connection open
 * after; a proxy in front that framed it otherwise (the last Content-Length, the length
 * rather than the coding) would pass the rest of this body on as a request of its own,
 * or this request would swallow the next client's. RFC 9112 §6.3: refuse and close. */
static const char *framing_problem(struct MHD_Connection *conn)
{
    struct framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.spaced_name)
        return "a header name must not contain whitespace";
    if (f.content_length > 1)
        return "a request must not carry more than one Content-Length header";
    if (f.transfer_encoding && f.content_length)
        return "a request must not carry both Content-Length and Transfer-Encoding";
    if (f.transfer_encoding > 1 || f.other_coding)
        return "the only Transfer-Encoding accepted is a single \"chunked\"";
    return NULL;
}

/* The client waits for 100 Continue before it sends the body. */
static bool expects_continue(struct MHD_Connection *conn)
{
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return expect && strcasecmp(expect, "100-continue") == 0;
}

/* First call of a request that has a body: decide from the head alone what does not
 * depend on the body, so that only a client with a valid key makes the server hold a
 * body of up to max_body bytes. Without this, clients without a key could each park
 * max_body bytes in the server's memory on as many connections as they liked (8 MiB per
 * connection by default, 10,000 connections). The body of a request whose path has no
 * such route, or whose key is refused, is read and dropped (as a too large one is, so
 * that the client sees the answer instead of a reset); the answer is the one dispatch
 * would give. Routes that need no key take at most PUBLIC_MAX_BODY. */
static enum MHD_Result before_body(struct req_state *rs, unsigned long long declared)
{
    struct req *req = &rs->req;
    if (rs->route < 0) {
        rs->discard = true; /* dispatch answers 404 or 405 */
        buf_release(&req->body);
        return MHD_YES;
    }
    if (router_get(rs->route)->flags & ROUTE_PUBLIC)
        return MHD_YES; /* rs->max_body is PUBLIC_MAX_BODY at most */
    struct rf_err err;
    rf_err_clear(&err);
    if (!req_store(req, &err))
        return MHD_YES; /* dispatch tries again, and answers 503 */
    rf_err_clear(&rs->auth_err);
    rs->auth_rc = authenticate(req, &rs->auth_err);
    rs->auth_done = true;
    if (rs->auth_rc == RF_OK)
        return MHD_YES;
    rs->discard = true;
    buf_release(&req->body);
    if (declared > BODY_DRAIN_MAX || expects_continue(req->conn))
        return queue_error(rs, &rs->auth_err, NULL); /* MHD closes the connection after it */
    return MHD_YES;
}

enum MHD_Result dispatch_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size,
                                    void **req_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct req_state *rs = *req_cls;
    if (!rs) {
        rs = xcalloc(1, sizeof *rs);
        rs->start_us = clock_mono_us();
        rs->route = -1;
        rs->req.conn = conn;
        rs->req.server = srv;
        rs->req.hub = srv->hub;
        rs->req.writes = srv->writes;
        rs->req.pool = srv->pool;
        rs->req.method = method;
        rs->req.path = url;
        id_new("req_", rs->req.request_id);
        *req_cls = rs;
        atomic_fetch_add(&srv->inflight, 1);
        const char *framing = framing_problem(conn);
        if (framing) {
            /* Answered before the body is read: MHD closes the connection after it. */
            struct rf_err err;
            rf_fail(&err, RF_INVALID, "%s", framing);
            return queue_error(rs, &err, NULL);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        bool has_body = declared > 0 || MHD_lookup_connection_value(
                                            conn, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
        rs->max_body = srv->max_body;
        if (has_body) { /* routed now (dispatch keeps it), for before_body and the cap */
            char allow[64];
            router_match(method, url, &rs->req, &rs->route, allow, sizeof allow);
            if (rs->route >= 0 && (router_get(rs->route)->flags & ROUTE_PUBLIC) &&
                rs->max_body > PUBLIC_MAX_BODY)
                rs->max_body = PUBLIC_MAX_BODY;
        }
        buf_init(&rs->req.body, rs->max_body);
        if (declared > rs->max_body) {
            if (declared > BODY_DRAIN_MAX || expects_continue(conn)) {
                /* Refuse before reading the body; MHD closes the connection after this. */
                struct rf_err err;
                rf_fail(&err, RF_TOO_LARGE, "request body is larger than %zu bytes",
                        rs->max_body);
                return queue_error(rs, &err, NULL);
            }
            rs->too_large = true; /* read and drop it, then answer 413 (dispatch) */
            buf_release(&rs->req.body);
            return MHD_YES;
        }
        return has_body ? before_body(rs, declared) : MHD_YES;
    }
    if (*upload_size) {
        if (!rs->too_large && !rs->discard &&
            buf_append(&rs->req.body, upload_data, *upload_size) != RF_OK) {
            rs->too_large = true;
            buf_release(&rs->req.body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->status)
        return MHD_YES; /* already answered (early 413) */
    if (rs->req.resume) {
        /* Resumed after the handler suspended the connection: answer now. */
        enum rf_status (*resume)(struct req *, struct resp *, struct rf_err *) = rs->req.resume;
        rs->req.resume = NULL;
        struct resp resp = {0};
        struct rf_err err;
        rf_err_clear(&err);
        enum rf_status rc = resume(&rs->req, &resp, &err);
        return answer(rs, rc, &resp, &err);
    }
    return dispatch(srv, rs);
}

void dispatch_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    (void)conn;
    (void)toe;
    struct req_state *rs = *req_cls;
    if (!rs)
        return;
    atomic_fetch_sub(&srv->inflight, 1);
    int64_t us = clock_mono_us() - rs->start_us;
    metrics_request(rs->route, rs->status, us);
    /* One line per request: every one at debug; at info a 500 (error) and, at most once a
     * second, a 503 (warn: the database is unreachable, read-only or full - every request
     * answers so meanwhile). The path is the client's, percent-decoded: quoted, it cannot
     * forge a line. */
    static _Atomic int64_t last_503;
    static atomic_int skipped_503;
    int level = log_enabled(LOG_DEBUG) ? (int)LOG_DEBUG : -1;
    if (rs->status == 500) {
        level = LOG_ERROR;
    } else if (rs->status == 503) {
        int64_t now = clock_mono_ms(), last = atomic_load(&last_503);
        if (now - last >= 1000 && atomic_compare_exchange_strong(&last_503, &last, now))
            level = LOG_WARN;
        else if (level < 0)
            atomic_fetch_add(&skipped_503, 1);
    }
    if (level >= 0) {
        char qpath[512], qerr[600], qmethod[80], extra[700] = "";
        int skipped = level == LOG_WARN ? atomic_exchange(&skipped_503, 0) : 0;
        if (rs->failure)
            snprintf(extra, sizeof extra, " error=%s",
                     log_quote(rs->failure, qerr, sizeof qerr));
        if (skipped)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                     " unlogged_503s=%d", skipped);
        log_write((enum log_level)level, rs->status >= 500 ? "request failed" : "request",
                  "request_id=%s method=%s path=%s status=%d duration_us=%lld%s",
                  rs->req.request_id, log_token(rs->req.method, qmethod, sizeof qmethod),
                  log_quote(rs->req.path, qpath, sizeof qpath), rs->status, (long long)us,
                  extra);
    }
    free(rs->failure);
    write_group_discard(rs->req.rating); /* its connection went away before the answer */
    buf_release(&rs->req.body);
    free(rs->req.param_buf);
    free(rs->memo_key);
    free(rs);
    *req_cls = NULL;
}
