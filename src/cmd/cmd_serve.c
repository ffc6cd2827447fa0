/*
 * cmd_serve - `refold serve`: migrate, then run the HTTP API, the web UI, the job
 * workers and the job event hub until SIGTERM/SIGINT/SIGHUP. Signals are blocked in every
 * thread and taken by sigwait() in the main thread, so no handler runs at an arbitrary
 * point.
 *
 * Shutdown order: the workers drain first (claim nothing more, finish or release running
 * jobs within REFOLD_SHUTDOWN_GRACE_MS) while the API keeps answering, so SSE followers
 * see the last events; then the HTTP server's shutdown hook ends every event stream
 * (hub_stop) before the daemon stops; then the pool and the hub are freed, once no
 * handler can reach them. The whole stop is bounded (shutdown.c): threads stuck in
 * database calls that get no answer are abandoned, and the process exits with status 1.
 * A second SIGTERM/SIGINT ends the grace period at once (running jobs are released) and
 * the process exits with 128 + that signal's number (shutdown.c).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "llm/llm.h"
#include "http/router.h"
#include "http/server.h"
#include "jobs/hub.h"
#include "jobs/jobs.h"
#include "jobs/pool.h"
#include "store/store.h"
#include "core/banned.h"

void cmd_block_signals(sigset_t *set)
{
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    /* SIGHUP (the terminal was closed) stops gracefully too; its default kills at once.
     * Unless it was ignored when we started (nohup): a blocked signal is queued for
     * sigwait even when ignored, so it must stay out of the set to stay ignored. */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Allow as many open files as the hard limit permits (SSE streams hold sockets). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    const char *port_file = NULL;
    bool listen_flag = false;
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"port-file", required_argument, NULL, 'p'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'd': cfg.db = optarg; break;
        case 'l':
            cfg.listen = optarg;
            listen_flag = true;
            break;
        case 'w':
            if (!cmd_int_arg("workers", optarg, 0, CONFIG_MAX_WORKERS, &cfg.workers))
                return EXIT_USAGE;
            break;
        case 'p': port_file = optarg; break;
        default: return cmd_usage("serve");
        }
    }
    if (optind != argc)
        return cmd_usage("serve");

    sigset_t stop;
    cmd_block_signals(&stop);
    llm_global_init(); /* libcurl's global set-up, before any worker thread exists */
    raise_fd_limit();

    struct rf_err err;
    rf_err_clear(&err);
    /* Before anything starts: a second `refold serve` on a busy port must not run jobs. */
    if (http_listen_check(cfg.listen, &err) != RF_OK) {
        /* A malformed --listen is bad usage (2); a busy port, or the same mistake in
         * REFOLD_LISTEN, is a failure (1). */
        int status = cmd_fail(&err);
        return listen_flag && err.code == RF_INVALID ? EXIT_USAGE : status;
    }
    struct store *st = cmd_open_store(cfg.db, true);
    if (!st)
        return 1;
    store_close(st);

    struct http_config hc = {.listen = cfg.listen, .db_url = cfg.db,
                             .max_body = (size_t)cfg.max_body,
                             .threads = cfg.http_threads, .port_file = port_file};
    const char *memo = getenv("REFOLD_HTTP_MEMO");
    hc.no_memo = memo && strcmp(memo, "0") == 0;
    job_types_enable_test(cfg.test_jobs);
    router_enable_test_routes(cfg.test_jobs);
    struct hub *hub = NULL;
    struct hub_config hcfg = {.db_url = cfg.db,
                              .poll_ms = cfg.sse_poll_ms,
                              .resync_ms = cfg.sse_resync_ms,
                              .ping_ms = cfg.sse_ping_ms};
    if (hub_start(&hcfg, &hub, &err) != RF_OK)
        return cmd_fail(&err);
    struct worker_pool *pool = NULL;
    if (cfg.workers > 0) {
        cmd_llm_check();
        struct pool_config pc;
        cmd_pool_config(&cfg, &pc);
        pc.hub = hub;
        if (pool_start(&pc, &pool, &err) != RF_OK) {
            hub_free(hub);
            return cmd_fail(&err);
        }
    }
    hc.hub = hub;
    hc.pool = pool;
    struct http_server *srv = NULL;
    if (http_server_start(&hc, &srv, &err) != RF_OK) {
        pool_free(pool);
        hub_free(hub);
        return cmd_fail(&err);
    }
    http_server_on_shutdown(srv, hub_end_streams, hub);
    log_info("listening", "addr=%s port=%d db=%s workers=%d test_jobs=%d", cfg.listen,
             http_server_port(srv), strncmp(cfg.db, "postgres", 8) == 0 ? "postgres" : cfg.db,
             cfg.workers, cfg.test_jobs ? 1 : 0);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("shutting down", "signal=%d", sig);
    /* Bounded even when the database does not answer; a second signal cuts it short. */
    cmd_shutdown_start(cfg.grace_ms, pool);
    http_server_drain(srv); /* /healthz 503 at once, while running jobs finish */
    cmd_shutdown_phase("workers");
    pool_stop(pool, cfg.grace_ms);
    cmd_shutdown_pool_stopped();
    cmd_shutdown_phase("http server");
    http_server_stop(srv);
    cmd_shutdown_phase("closing");
    pool_free(pool);
    hub_free(hub);
    llm_global_cleanup();
    int status = cmd_shutdown_status();
    log_info("stopped", "status=%d", status);
    return status;
}
