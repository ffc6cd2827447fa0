/*
 * pool - the worker pool that runs jobs: N worker threads and a monitor thread per
 * process (`refold serve`, `refold worker`). The DESIGN comment is at the top of pool.c;
 * the monitor thread is in monitor.c, the handler's context of jobs.h in job_ctx.c.
 */
#ifndef REFOLD_JOBS_POOL_H
#define REFOLD_JOBS_POOL_H

#include <stdint.h>

#include "core/status.h"

struct worker_pool;
struct hub;

struct pool_config {
    const char *db_url;      /* each thread opens its own connection */
    int workers;             /* worker threads, >= 1 */
    int64_t lease_ms;        /* lease taken by a claim and by each heartbeat (30 s) */
    int64_t heartbeat_ms;    /* lease extension interval (10 s) */
    int64_t poll_ms;         /* idle claim poll, for other processes' jobs and run_at (200 ms) */
    int64_t sweep_ms;        /* expired-lease sweep interval (1 s) */
    int64_t cancel_poll_ms;  /* how often running jobs' cancel flags are read (200 ms) */
    int64_t backoff_base_ms; /* first retry delay before jitter (5 s) */
    struct hub *hub;         /* may be NULL: told about every event written here */
};

#define POOL_DEFAULT_LEASE_MS 30000
#define POOL_DEFAULT_HEARTBEAT_MS 10000
#define POOL_DEFAULT_POLL_MS 200
#define POOL_DEFAULT_SWEEP_MS 1000
#define POOL_DEFAULT_CANCEL_POLL_MS 200
#define POOL_DEFAULT_GRACE_MS 30000

/* The defaults above (db_url and hub NULL, 2 workers). */
void pool_config_init(struct pool_config *cfg);
/* Open the connections and start the threads. Caller owns the pool; stop with pool_stop. */
enum rf_status pool_start(const struct pool_config *cfg, struct worker_pool **out,
                          struct rf_err *err);
/* A job was enqueued by this process: wake an idle worker now (pool may be NULL). */
void pool_wake(struct worker_pool *pool);
/* A cancel of job_id was committed: if this pool runs it, make job_cancelled() true now
 * instead of at the next cancel poll (pool may be NULL). */
void pool_cancel(struct worker_pool *pool, const char *job_id);
/* Graceful stop (SIGTERM): claim nothing more, let running jobs finish for up to grace_ms,
 * then stop them and release them to the queue without using an attempt, and join the
 * threads. pool_wake and pool_cancel stay safe (and do nothing) until pool_free. NULL is
 * ignored; a second call does nothing. */
void pool_stop(struct worker_pool *pool, int64_t grace_ms);
/* End pool_stop's grace period now (an operator's second signal): running jobs are
 * stopped and released as when the grace runs out, with less time to stop by themselves.
 * Callable from any thread, before or during pool_stop, until pool_free; never blocks.
 * NULL is ignored. */
void pool_hurry(struct worker_pool *pool);
/* Free the pool (stopping it first, without grace, if needed). NULL is ignored. */
void pool_free(struct worker_pool *pool);

#endif
