/*
 * h_system - the endpoints that are not resources: web sign-in sessions,
 * /healthz, /metrics and the static web UI compiled into the binary.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/embed.h"
#include "core/jsonx.h"
#include "core/metrics.h"
#include "http/handlers.h"
#include "http/router.h"
#include "http/server.h"
#include "http/session.h"
#include "jobs/hub.h"
#include "store/store.h"
#include "core/banned.h"

/* Whether the browser reached us over HTTPS through a proxy that says so
 * (X-Forwarded-Proto: https, as nginx, HAProxy and the cloud balancers send). The
 * session cookie is then Secure, never sent over plain http. Trusting the header is
 * safe here: a forged one only restricts the client's own cookie. refold itself speaks
 * plain HTTP, where a Secure cookie would never come back. */
static bool via_https(struct req *req)
{
    const char *proto = req_header(req, "X-Forwarded-Proto");
    return proto && strncasecmp(proto, "https", 5) == 0 && (proto[5] == '\0' || proto[5] == ',');
}

HANDLER(h_session_create)
{
    json_t *body = NULL;
    const char *key;
    char *token = NULL;
    enum rf_status rc = req_json(req, false, &body, err);
    if (rc == RF_OK)
        rc = jx_string(body, "api_key", JX_REQUIRED, 256, false, &key, err);
    if (rc == RF_OK)
        rc = store_session_create(req->store, key, SESSION_TTL_MS, &token, err);
    json_decref(body);
    if (rc)
        return rc;
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", token,
             SESSION_TTL_MS / 1000, via_https(req) ? "; Secure" : "");
    free(token);
    resp_empty(resp, 204);
    return RF_OK;
}

HANDLER(h_session_delete)
{
    const char *token = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
    if (token) {
        enum rf_status rc = store_session_delete(req->store, token, err);
        if (rc)
            return rc;
    }
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
             via_https(req) ? "; Secure" : "");
    resp_empty(resp, 204);
    return RF_OK;
}

/* A round trip to the database on this thread's connection (which reconnects when it
 * broke): 200 while it answers, 503 while it does not - or while the thread's connection
 * cannot be opened, with the configured backend all the same. */
HANDLER(h_healthz)
{
    struct rf_err dberr;
    rf_err_clear(&dberr);
    (void)err;
    if (http_server_draining(req->server)) { /* SIGTERM: take this node out first */
        resp_json(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error",
                                       "shutting down"));
        return RF_OK;
    }
    struct store *st = req_store(req, &dberr);
    if (st && store_ping(st, &dberr) == RF_OK) {
        resp_json(
            resp, 200,
            json_pack("{s:s, s:s, s:s}", "status", "ok", "db", "ok", "backend", store_backend(st)));
    } else {
        resp_json(resp, 503,
                  json_pack("{s:s, s:s, s:s, s:s}", "status", "unavailable", "db", "error",
                            "backend", http_server_backend(req->server), "error",
                            dberr.message));
    }
    return RF_OK;
}

static const char *route_label(int index, const char **method)
{
    const struct route *r = router_get(index);
    *method = r->method;
    return r->pattern;
}

/* refold_jobs for the finished statuses (completed, failed, cancelled): counting them
 * reads the whole jobs table (50-60 ms at 200,000 jobs on PostgreSQL), so a scrape counts
 * them again only when the last count is older than FINISHED_COUNTS_MS; the queued and
 * running counts, read from their partial indexes, are exact at every scrape. The lock
 * guards the fields; the counting itself runs outside it. */
#define FINISHED_COUNTS_MS 60000
static struct {
    pthread_mutex_t lock;
    bool have, counting;
    int64_t at; /* clock_mono_ms() of the count */
    int64_t counts[JOB_NSTATUS];
} finished = {.lock = PTHREAD_MUTEX_INITIALIZER};

static enum rf_status job_counts(struct store *st, int64_t counts[JOB_NSTATUS],
                                 struct rf_err *err)
{
    int64_t all[JOB_NSTATUS];
    enum rf_status rc = store_job_counts_open(st, counts, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&finished.lock);
    int64_t now = clock_mono_ms();
    /* One scrape recounts while the others use the last count; before the first count
     * every scrape counts. */
    bool recount = !finished.have || (!finished.counting && now - finished.at >= FINISHED_COUNTS_MS);
    if (recount) {
        finished.counting = true;
        pthread_mutex_unlock(&finished.lock);
        rc = store_job_counts(st, all, err);
        pthread_mutex_lock(&finished.lock);
        finished.counting = false;
        if (rc == RF_OK) {
            memcpy(finished.counts, all, sizeof all);
            finished.have = true;
            finished.at = now;
        }
    }
    for (int i = 0; i < JOB_NSTATUS; i++)
        if (strcmp(JOB_STATUSES[i], "queued") != 0 && strcmp(JOB_STATUSES[i], "running") != 0)
            counts[i] = finished.counts[i];
    pthread_mutex_unlock(&finished.lock);
    return rc;
}

HANDLER(h_metrics)
{
    (void)err;
    struct buf out;
    buf_init(&out, BUF_UNLIMITED);
    metrics_render(&out, route_label);
    int64_t counts[JOB_NSTATUS];
    struct rf_err jerr;
    struct store *st = req_store(req, &jerr);
    bool db_up = st && job_counts(st, counts, &jerr) == RF_OK;
    buf_printf(&out,
               "# HELP refold_db_up 1 when this node's last database query succeeded\n"
               "# TYPE refold_db_up gauge\nrefold_db_up %d\n",
               db_up ? 1 : 0);
    if (db_up) {
        buf_puts(&out, "# HELP refold_jobs jobs in the database by status\n"
                       "# TYPE refold_jobs gauge\n");
        for (int i = 0; i < JOB_NSTATUS; i++)
            buf_printf(&out, "refold_jobs{status=\"%s\"} %lld\n", JOB_STATUSES[i],
                       (long long)counts[i]);
    }
    buf_printf(&out, "# HELP refold_sse_subscribers job event subscribers attached to the hub\n"
                     "# TYPE refold_sse_subscribers gauge\nrefold_sse_subscribers %d\n",
               hub_subscribers(req->hub));
    size_t len;
    char *text = buf_detach(&out, &len);
    resp->raw = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp->raw, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    resp->status = 200;
    return RF_OK;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

HANDLER(h_ui)
{
    char path[256];
    const char *file = req->params[0] ? req->params[0] : "index.html";
    if (strstr(file, "..") || strchr(file, '/'))
        return rf_fail(err, RF_NOT_FOUND, "no such file");
    snprintf(path, sizeof path, "web/%s", file);
    const struct embed_file *f = embed_find(path);
    if (!f)
        return rf_fail(err, RF_NOT_FOUND, "no such file: /ui/%s", file);
    resp->raw = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp->raw, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(path));
    MHD_add_response_header(resp->raw, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp->raw, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    resp->status = 200;
    return RF_OK;
}
