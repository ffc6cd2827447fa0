/*
 * router - the static route table of SPEC §4.3 and path matching.
 *
 * Patterns are literal segments and `{name}` placeholders; a match fills the
 * request's params in order. Each route has a stable index used by metrics
 * (requests and latency by route and status).
 */
#ifndef REFOLD_HTTP_ROUTER_H
#define REFOLD_HTTP_ROUTER_H

#include <stdbool.h>

#include "http/http.h"

enum route_flags {
    ROUTE_PUBLIC = 1,    /* no API key needed */
    ROUTE_TEST_ONLY = 2, /* exists only after router_enable_test_routes (REFOLD_TEST_JOBS=1) */
    ROUTE_MEMO = 4,      /* a GET whose answer depends only on the request and the database
                          * (no clock, no process state): http/memo.h may reuse it */
    ROUTE_NO_STORE = 8,  /* public; req->store stays NULL: the handler calls req_store() and
                          * answers even when the database is down (/healthz, /metrics) */
    ROUTE_NO_HEAD = 16,  /* a GET that HEAD does not reach (the event stream) */
};

struct route {
    const char *method;
    const char *pattern;
    http_handler handler;
    unsigned flags;
};

/* Make ROUTE_TEST_ONLY routes match (otherwise they answer like unknown paths). Call
 * before the server starts. */
void router_enable_test_routes(bool on);

/* Number of routes and the table itself. */
int router_count(void);
const struct route *router_get(int index);

enum route_match { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD };

/* Find the route for method and path; on ROUTE_FOUND fills req->params (allocating
 * req->param_buf) and *index. On ROUTE_NO_METHOD, allow gets the allowed methods. HEAD
 * finds the GET route of the path (libmicrohttpd sends the headers without the body),
 * unless the route is ROUTE_NO_HEAD. */
enum route_match router_match(const char *method, const char *path, struct req *req, int *index,
                              char *allow, size_t allow_len);

#endif
