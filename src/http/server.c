/*
 * server - the HTTP server's lifecycle: the listen address, libmicrohttpd's daemon and
 * its options, draining and stopping. See server.h for the design; each request's way
 * through the server (accumulation, routing, authentication, error bodies, request ids,
 * metrics) is dispatch.c's.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/env.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "http/memo.h"
#include "http/router.h"
#include "http/server_internal.h"
#include "http/write_group.h"
#include "store/store.h"
#include "core/banned.h"

static void close_thread_store(void *p)
{
    store_close(p);
}

static void free_thread_memo(void *p)
{
    memo_free(p);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's messages, one warn line each; except that a connection refused at
 * HTTP_MAX_CONNECTIONS or at REFOLD_MAX_CONNECTIONS_PER_IP, which MHD reports every time,
 * is logged at most once a second with how many went unlogged meanwhile: a client
 * opening connections in a loop would otherwise write the log as fast as it connects. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static _Atomic int64_t last_refusal;
    static atomic_int unlogged;
    char msg[512], q[600], extra[48] = "";
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    if (strncmp(msg, "Server reached connection limit", 31) == 0) {
        int64_t now = clock_mono_ms(), last = atomic_load(&last_refusal);
        if (now - last < 1000 || !atomic_compare_exchange_strong(&last_refusal, &last, now)) {
            atomic_fetch_add(&unlogged, 1);
            return;
        }
        int n = atomic_exchange(&unlogged, 0);
        if (n)
            snprintf(extra, sizeof extra, " unlogged_refusals=%d", n);
    }
    log_warn("libmicrohttpd", "detail=%s%s", log_quote(msg, q, sizeof q), extra);
}

static enum rf_status parse_listen(const char *listen, struct sockaddr_storage *ss,
                                   struct rf_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return rf_fail(err, RF_INVALID, "listen address must be host:port, got \"%s\"", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = '\0';
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return rf_fail(err, RF_INVALID, "invalid port in listen address \"%s\"", listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(h, colon + 1, &hints, &res);
    if (gai != 0 || !res)
        return rf_fail(err, RF_INVALID, "cannot resolve listen host \"%s\": %s", h,
                       gai_strerror(gai));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return RF_OK;
}

/* Once http_server_stop began, a new connection is closed at once (see there). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    return atomic_load(&((struct http_server *)cls)->closing) ? MHD_NO : MHD_YES;
}

enum rf_status http_server_start(const struct http_config *cfg, struct http_server **out,
                                 struct rf_err *err)
{
    struct sockaddr_storage ss;
    enum rf_status rc = parse_listen(cfg->listen, &ss, err);
    if (rc)
        return rc;
    struct http_server *srv = xcalloc(1, sizeof *srv);
    srv->listen = xstrdup(cfg->listen);
    srv->db_url = xstrdup(cfg->db_url);
    srv->max_body = cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
    srv->hub = cfg->hub;
    srv->writes = write_group_new(srv->db_url);
    srv->pool = cfg->pool;
    srv->memo = !cfg->no_memo;
    pthread_key_create(&srv->store_key, close_thread_store);
    pthread_key_create(&srv->memo_key, free_thread_memo);
    metrics_init_routes(router_count());
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    int threads = cfg->threads > 0 ? cfg->threads : HTTP_DEFAULT_THREADS;
    /* Off by default: behind a reverse proxy every client has the proxy's address, and a
     * limit would refuse them all together. */
    unsigned per_ip = (unsigned)env_int(HTTP_PER_IP_ENV, 0, 0, HTTP_MAX_CONNECTIONS);
    srv->daemon = MHD_start_daemon(
        flags, 0, accept_policy, srv, dispatch_on_request, srv,
        /* The logger first: MHD warns (on its own logger) about any option before it. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, dispatch_unescape, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_NOTIFY_COMPLETED, dispatch_on_completed, srv,
        MHD_OPTION_END);
    if (!srv->daemon) {
        rf_fail(err, RF_UNAVAILABLE, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        pthread_key_delete(srv->store_key);
        pthread_key_delete(srv->memo_key);
        write_group_free(srv->writes);
        free(srv->listen);
        free(srv->db_url);
        free(srv);
        return RF_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    if (per_ip)
        log_info("connections per client address limited", "max=%u setting=%s", per_ip,
                 HTTP_PER_IP_ENV);
    if (cfg->port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", cfg->port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", srv->port);
            fclose(f);
            rename(tmp, cfg->port_file);
        }
    }
    *out = srv;
    return RF_OK;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

void http_server_on_shutdown(struct http_server *srv, http_shutdown_hook fn, void *ud)
{
    srv->hook = fn;
    srv->hook_ud = ud;
}

void http_server_drain(struct http_server *srv)
{
    if (srv)
        atomic_store(&srv->draining, true);
}

bool http_server_draining(const struct http_server *srv)
{
    return atomic_load(&srv->draining);
}

const char *http_server_backend(const struct http_server *srv)
{
    return store_url_backend(srv->db_url);
}

void http_server_stop(struct http_server *srv)
{
    if (!srv)
        return;
    http_server_drain(srv);
    if (srv->hook)
        srv->hook(srv->hook_ud);
    /* No connection may stay suspended when the daemon stops: write the queued ratings
     * (their connections resume); later ones are written at once. */
    write_group_stop(srv->writes);
    /* Accept no more connections, and let the requests in flight (an import's batch,
     * the ends of event streams) be answered before MHD_stop_daemon closes every
     * connection, for at most HTTP_STOP_WAIT_MS: a slow upload does not hold the exit. */
    /* New connections are refused by accept_policy, not by MHD_quiesce_daemon: with a
     * thread pool on epoll a pool thread then sometimes fails to take the listening
     * socket out of its epoll set, and libmicrohttpd aborts the process ("Failed to
     * remove listen FD from epoll set"; shutdown_http under load). */
    atomic_store(&srv->closing, true);
    int64_t until = clock_mono_ms() + HTTP_STOP_WAIT_MS;
    while (atomic_load(&srv->inflight) > 0 && clock_mono_ms() < until)
        clock_sleep_ms(10);
    MHD_stop_daemon(srv->daemon);
    pthread_key_delete(srv->store_key);
    pthread_key_delete(srv->memo_key);
    write_group_free(srv->writes);
    free(srv->listen);
    free(srv->db_url);
    free(srv);
}

enum rf_status http_listen_check(const char *listen, struct rf_err *err)
{
    struct sockaddr_storage ss;
    enum rf_status rc = parse_listen(listen, &ss, err);
    if (rc)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    socklen_t len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    /* As MHD binds: SO_REUSEADDR, so only a socket still listening there is in the way. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0)
        rc = rf_fail(err, RF_UNAVAILABLE, "cannot listen on %s: %s", listen, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}
