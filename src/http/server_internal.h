/*
 * server_internal - what server.c (the daemon's lifecycle) and dispatch.c (each
 * request's way through it) share: struct http_server and dispatch.c's libmicrohttpd
 * callbacks, which http_server_start registers. Private to src/http/.
 *
 * struct http_server is written by http_server_start before the daemon runs and read
 * by every pool thread after; the fields that change while it serves are atomics
 * (draining, closing, inflight). Each pool thread's store connection and memo hang off
 * the pthread keys, never shared.
 */
#ifndef REFOLD_HTTP_SERVER_INTERNAL_H
#define REFOLD_HTTP_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

struct hub;
struct worker_pool;
struct write_group;

struct http_server {
    struct MHD_Daemon *daemon;
    char *listen;
    char *db_url;
    size_t max_body;
    int port;
    pthread_key_t store_key;
    pthread_key_t memo_key; /* each pool thread's struct memo */
    bool memo;              /* responses of ROUTE_MEMO routes may be reused */
    http_shutdown_hook hook;
    void *hook_ud;
    struct hub *hub;
    struct worker_pool *pool;
    struct write_group *writes; /* single ratings, committed in groups */
    atomic_bool draining; /* shutting down: /healthz 503, every answer closes its connection */
    atomic_bool closing;  /* http_server_stop began: new connections are refused */
    atomic_int inflight;  /* requests begun and not completed (dispatch_on_request ..
                             dispatch_on_completed) */
};

/* libmicrohttpd's access handler (MHD_AccessHandlerCallback): accumulates a request,
 * routes, authenticates and answers it. cls is the struct http_server. */
enum MHD_Result dispatch_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size,
                                    void **req_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: records the request in the metrics and the log, frees it. */
void dispatch_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe);
/* MHD_OPTION_UNESCAPE_CALLBACK: percent-decoding that turns %00 into a byte that is never
 * UTF-8, so that the request is refused rather than cut short at a NUL. */
size_t dispatch_unescape(void *cls, struct MHD_Connection *conn, char *s);

#endif
