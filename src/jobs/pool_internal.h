/*
 * pool_internal - what the worker pool's files share, and nothing outside src/jobs/ uses:
 * pool.c (the lifecycle, the worker threads, running one job), job_ctx.c (the handler's
 * context of jobs.h) and monitor.c (the monitor thread: heartbeats, cancel polls,
 * sweeper). The structs below say what guards each field; the DESIGN comment at the top
 * of pool.c says how the threads share them.
 */
#ifndef REFOLD_JOBS_POOL_INTERNAL_H
#define REFOLD_JOBS_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "jobs/jobs.h"
#include "jobs/pool.h"
#include "store/store.h"

#define LOG_EVERY_MS 10000 /* repeated database failures are logged this often */

struct worker;

struct job_ctx {
    struct worker *w;
    struct job_claimed claim;
    char owner[JOB_OWNER_MAX];
    struct job_fence fence;
    atomic_bool cancel;          /* a cancel was requested */
    atomic_bool lost;            /* the lease is gone */
    atomic_bool shutdown;        /* the process stops past its grace period */
    atomic_bool stop;            /* any of the three: what job_cancelled() reads */
    _Atomic int64_t lease_until; /* wall ms: the lease holds at least until then */
    bool finishing;              /* guarded by pool->lock: the outcome is being written */
    bool abort_fired;            /* guarded by pool->lock, with the hook below */
    void (*abort_fn)(void *ud);
    void *abort_ud;
    json_t *result; /* the handler thread's own, like the rest below */
    store_txn_fn commit_fn;
    void *commit_ud;
    void (*commit_free)(void *ud); /* frees commit_ud after the run, committed or not */
    int64_t retry_after_ms;
};

struct worker {
    struct worker_pool *pool;
    int index;
    pthread_t thread;
    bool thread_started;
    struct store *st;
    pthread_cond_t sleep_cond; /* job_sleep waits here, with pool->lock */
    uint64_t claims;           /* worker-thread only: numbers this worker's claims */
    /* guarded by pool->lock */
    struct job_ctx *ctx; /* the running job; NULL when idle */
    int64_t heartbeat_due, check_due;
};

struct worker_pool {
    struct pool_config cfg;
    char owner_prefix[48]; /* host:pid:random, the part of lease owners shared by the pool */
    pthread_mutex_t lock;  /* guards what pool.c's DESIGN comment says */
    pthread_cond_t wake;   /* idle workers wait here for work */
    pthread_cond_t idle;   /* a job finished (pool_stop waits here) */
    pthread_cond_t mwake;  /* the monitor's and the lease guard's sleep */
    bool stopping;
    atomic_bool hurry; /* pool_hurry: cut the stop's waits short (read without the lock) */
    bool monitor_stop;
    uint64_t wake_seq;
    int busy;
    struct worker *workers;
    int n;
    pthread_t monitor;
    bool monitor_started;
    pthread_t guard; /* the lease guard (monitor.c), stopped with the monitor */
    bool guard_started;
    struct store *mst;         /* the monitor's connection */
    int stuck;                 /* workers pool_stop had to leave behind */
    int64_t hb_log, sweep_log; /* monitor only: when a failure was last logged */
};

/* A running claim copied out under pool->lock, so that the database can be asked about it
 * without holding the lock (the monitor's heartbeats, pool_stop's releases). */
struct watched {
    struct worker *w;
    char id[ID_MAX];
    char owner[JOB_OWNER_MAX];
    int attempt;
    bool heartbeat;
    int64_t lease_until; /* what the heartbeat asks for */
};

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- job_ctx.c ---- */

/* Tell a running job to stop for reason why (&ctx->cancel, &ctx->lost or &ctx->shutdown):
 * job_cancelled() turns true, job_sleep() wakes, the abort hook fires. Caller holds
 * pool->lock. */
void job_ctx_stop(struct job_ctx *ctx, atomic_bool *why);
/* Log and count a write of ctx's claim that its fence rejected (RF_LEASE_LOST). */
void job_ctx_fenced_out(const struct job_ctx *ctx, const char *op);
/* After a write of ctx's claim failed with RF_UNAVAILABLE: wait *delay (doubling, starts at
 * 0) and say whether to try it again. outcome: the worker's finishing write (pool.c). */
bool job_ctx_retry_db(struct job_ctx *ctx, int64_t *delay, bool outcome, const char *op);

/* ---- monitor.c ---- */

/* The monitor thread's body; arg is the pool. Returns once pool->monitor_stop is set. */
void *monitor_main(void *arg);
/* The lease guard thread's body; arg is the pool. Returns once pool->monitor_stop is set. */
void *guard_main(void *arg);

#endif
