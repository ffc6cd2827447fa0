/*
 * cmd_worker - `refold worker`: job workers only, no HTTP. Extra capacity next to
 * `refold serve`, on the same SQLite file or (the point of it) on other machines sharing
 * a PostgreSQL database. Events it writes reach the server's SSE subscribers through the
 * server's event watcher (jobs/hub.h). SIGTERM (or SIGINT, SIGHUP) drains like `refold serve`,
 * and a second SIGTERM/SIGINT stops it at once (shutdown.c).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "llm/llm.h"
#include "jobs/jobs.h"
#include "jobs/pool.h"
#include "store/store.h"
#include "core/banned.h"

void cmd_llm_check(void)
{
    struct llm_config lc;
    struct rf_err err;
    rf_err_clear(&err);
    if (llm_config_from_env(&lc, &err) != RF_OK)
        log_warn("the LLM provider is not configured: improvement jobs will fail",
                 "error=\"%s\"", err.message);
    explicit_bzero(&lc, sizeof lc); /* it may hold the API key */
}

void cmd_pool_config(const struct config *cfg, struct pool_config *pc)
{
    pool_config_init(pc);
    pc->db_url = cfg->db;
    pc->workers = cfg->workers;
    pc->lease_ms = cfg->lease_ms;
    pc->heartbeat_ms = cfg->heartbeat_ms;
    pc->poll_ms = cfg->poll_ms;
    pc->sweep_ms = cfg->sweep_ms;
    pc->cancel_poll_ms = cfg->cancel_poll_ms;
    pc->backoff_base_ms = cfg->backoff_base_ms;
}

int cmd_worker(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'd':
            cfg.db = optarg;
            break;
        case 'w':
            if (!cmd_int_arg("workers", optarg, 1, CONFIG_MAX_WORKERS, &cfg.workers))
                return EXIT_USAGE;
            break;
        default:
            return cmd_usage("worker");
        }
    }
    if (optind != argc)
        return cmd_usage("worker");
    if (cfg.workers < 1) { /* REFOLD_WORKERS=0, fine for a serve-only node, not here */
        cmd_error("refold worker needs at least one worker thread: REFOLD_WORKERS is 0 "
                  "(set it, or give --workers N)");
        return 1;
    }

    sigset_t stop;
    cmd_block_signals(&stop);
    llm_global_init(); /* libcurl's global set-up, before any worker thread exists */
    struct store *st = cmd_open_store(cfg.db, true);
    if (!st)
        return 1;
    store_close(st);

    job_types_enable_test(cfg.test_jobs);
    cmd_llm_check();
    struct rf_err err;
    rf_err_clear(&err);
    struct pool_config pc;
    cmd_pool_config(&cfg, &pc);
    struct worker_pool *pool = NULL;
    if (pool_start(&pc, &pool, &err) != RF_OK)
        return cmd_fail(&err);
    log_info("worker running", "db=%s workers=%d test_jobs=%d",
             strncmp(cfg.db, "postgres", 8) == 0 ? "postgres" : cfg.db, cfg.workers,
             cfg.test_jobs ? 1 : 0);
    int sig = 0;
    sigwait(&stop, &sig);
    log_info("shutting down", "signal=%d", sig);
    /* Bounded even when the database does not answer; a second signal cuts it short. */
    cmd_shutdown_start(cfg.grace_ms, pool);
    pool_stop(pool, cfg.grace_ms);
    cmd_shutdown_pool_stopped();
    cmd_shutdown_phase("closing");
    pool_free(pool);
    llm_global_cleanup();
    int status = cmd_shutdown_status();
    log_info("stopped", "status=%d", status);
    return status;
}
