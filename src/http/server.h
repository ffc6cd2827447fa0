/*
 * server - refold's HTTP server (libmicrohttpd), used by `refold serve` and
 * `refold demo`.
 *
 * DESIGN. libmicrohttpd runs a pool of internal threads, each with its own
 * epoll loop (MHD_USE_EPOLL_INTERNAL_THREAD + MHD_OPTION_THREAD_POOL_SIZE),
 * with suspend/resume allowed for Server-Sent Events. A request's body is
 * accumulated (capped at max_body) once its head has shown a route and a valid
 * key (else it is read and dropped), and the response is queued on a later
 * call of the access handler, never the first: queuing on the first call
 * makes MHD close keep-alive connections. Each pool thread lazily opens its
 * own store connection (pthread key; closed when the thread exits). Routing
 * is a static table (router.c); authentication, the JSON error body, request
 * ids and metrics are applied for every route by dispatch.c, which takes each
 * request through; server.c starts, drains and stops the daemon.
 *
 * Shutdown: http_server_drain marks the server as going away (/healthz answers
 * 503, every answer closes its connection) while it still serves; http_server_stop
 * then lets registered stream owners (SSE) end their suspended connections, stops
 * accepting connections, waits up to HTTP_STOP_WAIT_MS for the requests in flight to
 * be answered, and stops the daemon.
 */
#ifndef REFOLD_HTTP_SERVER_H
#define REFOLD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

struct http_server;
struct hub;
struct worker_pool;

struct http_config {
    const char *listen;    /* "host:port"; port 0 picks a free one */
    const char *db_url;    /* store URL for the per-thread connections */
    size_t max_body;       /* request body cap in bytes */
    int threads;           /* MHD pool size */
    const char *port_file; /* if set, the bound port is written there once listening */
    struct hub *hub;           /* job event pub/sub for SSE; NULL: no live streams */
    struct worker_pool *pool;  /* this process's workers, woken on enqueue; may be NULL */
    bool no_memo;          /* render every response (http/memo.h); REFOLD_HTTP_MEMO=0 */
};

#define HTTP_DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define HTTP_DEFAULT_THREADS 4
/* Open connections at most, in all. */
#define HTTP_MAX_CONNECTIONS 10000
/* The variable http_server_start reads for the most connections one client address may
 * hold open at once (0, the default: no limit but HTTP_MAX_CONNECTIONS); a connection
 * past it is closed as soon as it is accepted. */
#define HTTP_PER_IP_ENV "REFOLD_MAX_CONNECTIONS_PER_IP"

/* Whether listen ("host:port") parses and can be bound now, without serving: `refold
 * serve` asks before its workers start, so a busy port or a bad address claims no job. */
enum rf_status http_listen_check(const char *listen, struct rf_err *err);
enum rf_status http_server_start(const struct http_config *cfg, struct http_server **out,
                                 struct rf_err *err);
/* The port actually bound. */
int http_server_port(const struct http_server *srv);
/* Shutdown has begun: /healthz answers 503 and every response carries "Connection:
 * close", so a load balancer and keep-alive clients move to other nodes; requests are
 * still served. NULL is ignored. */
void http_server_drain(struct http_server *srv);
bool http_server_draining(const struct http_server *srv);
/* The configured store's backend ("sqlite", "postgres"), known without a connection. */
const char *http_server_backend(const struct http_server *srv);
#define HTTP_STOP_WAIT_MS 5000
/* Stop serving (after the requests in flight, up to HTTP_STOP_WAIT_MS) and free the
 * server (NULL is ignored). */
void http_server_stop(struct http_server *srv);

/* Hook run by http_server_stop before the daemon stops (e.g. to end SSE streams).
 * One hook per server; set before start returns to callers. */
typedef void (*http_shutdown_hook)(void *ud);
void http_server_on_shutdown(struct http_server *srv, http_shutdown_hook fn, void *ud);

#endif
