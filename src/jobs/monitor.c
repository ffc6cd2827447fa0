/*
 * monitor - the worker pool's monitor thread, one per pool (pool_start starts it, pool_stop
 * joins it): it keeps the leases of this process's running jobs alive, notices cancels
 * made by other processes, and rescues the jobs whose lease expired anywhere. The pool's
 * DESIGN comment is at the top of pool.c; the structs are in pool_internal.h.
 *
 * DESIGN. The monitor ticks every few tens of milliseconds: for each running job it reads
 * the cancel flag every cancel_poll_ms and extends the lease every heartbeat_ms, both
 * fenced (a heartbeat that matches no row means the lease is lost); and every sweep_ms
 * it runs the sweeper, which requeues jobs whose lease expired anywhere (a crashed or
 * stopped process) or fails them when their attempts are used up. Any number of
 * processes may sweep: the sweep's own fence makes a second sweeper match nothing.
 *
 * The lease guard. A job whose lease ran out without a heartbeat confirming it (the
 * database unreachable) is stopped like a lost lease: see Database outages in pool.c.
 * That check runs on a thread of its own, the guard, which never touches the database:
 * a heartbeat can hang rather than fail - a network that stopped delivering packets, a
 * frozen server: TCP keepalives do not end a query the server just never answers - and
 * the monitor, stuck in it, could then not stop the job while another node runs it again.
 *
 * Threading. The monitor talks to the database on its own connection (pool->mst; pool_stop
 * uses it only after joining the monitor). It copies what it needs of the running claims
 * under pool->lock, asks the database without the lock, and takes the lock again to act
 * on the answer, only if the worker still runs the same claim (owner strings are unique
 * per claim). hb_log and sweep_log are the monitor's alone.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "jobs/hub.h"
#include "jobs/pool_internal.h"
#include "store/store.h"
#include "core/banned.h"

#define SWEEP_BATCH 64
#define MONITOR_TICK_MAX_MS 50

/* Set a stop flag on w's job if it still runs the claim named by owner. */
static void flag_if_same(struct worker_pool *pool, struct worker *w, const char *owner, bool lost)
{
    pthread_mutex_lock(&pool->lock);
    struct job_ctx *ctx = w->ctx;
    if (ctx && !ctx->finishing && strcmp(ctx->owner, owner) == 0) {
        if (lost && !atomic_load(&ctx->lost)) {
            log_warn("lease lost: job taken away from this worker", "job=%s attempt=%d owner=%s",
                     ctx->claim.id, ctx->claim.attempt, ctx->owner);
            job_ctx_stop(ctx, &ctx->lost);
        } else if (!lost && !atomic_load(&ctx->cancel)) {
            job_ctx_stop(ctx, &ctx->cancel);
        }
    }
    pthread_mutex_unlock(&pool->lock);
}

/* A heartbeat of the claim named by owner went through: its lease holds until `until`. */
static void heartbeat_done(struct worker_pool *pool, struct worker *w, const char *owner,
                           int64_t until)
{
    pthread_mutex_lock(&pool->lock);
    struct job_ctx *ctx = w->ctx;
    if (ctx && strcmp(ctx->owner, owner) == 0)
        atomic_store(&ctx->lease_until, until);
    pthread_mutex_unlock(&pool->lock);
}

/* Heartbeat or poll the running jobs that are due; list has room for one per worker. */
static void monitor_jobs(struct worker_pool *pool, struct watched *list)
{
    int k = 0;
    int64_t mono = clock_mono_ms();
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->n; i++) {
        struct worker *w = &pool->workers[i];
        struct job_ctx *ctx = w->ctx;
        if (!ctx || ctx->finishing || atomic_load(&ctx->lost))
            continue;
        bool hb = mono >= w->heartbeat_due, check = mono >= w->check_due;
        if (!hb && !check)
            continue;
        if (hb)
            w->heartbeat_due = mono + pool->cfg.heartbeat_ms;
        w->check_due = mono + pool->cfg.cancel_poll_ms;
        list[k].w = w;
        snprintf(list[k].id, sizeof list[k].id, "%s", ctx->claim.id);
        snprintf(list[k].owner, sizeof list[k].owner, "%s", ctx->owner);
        list[k].attempt = ctx->claim.attempt;
        list[k].heartbeat = hb;
        list[k].lease_until = clock_now_ms() + pool->cfg.lease_ms;
        k++;
    }
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < k; i++) {
        struct job_fence f = {list[i].id, list[i].attempt, list[i].owner};
        struct rf_err err;
        bool cancel = false;
        enum rf_status rc =
            list[i].heartbeat
                ? store_job_heartbeat(pool->mst, &f, list[i].lease_until, &cancel, &err)
                : store_job_check(pool->mst, &f, &cancel, &err);
        if (list[i].heartbeat && rc == RF_OK)
            heartbeat_done(pool, list[i].w, list[i].owner, list[i].lease_until);
        if (rc == RF_LEASE_LOST)
            flag_if_same(pool, list[i].w, list[i].owner, true);
        else if (rc == RF_OK && cancel)
            flag_if_same(pool, list[i].w, list[i].owner, false);
        else if (rc && clock_every(&pool->hb_log, LOG_EVERY_MS)) {
            char q[300];
            log_warn("cannot heartbeat job", "job=%s error=%s", list[i].id,
                     log_quote(err.message, q, sizeof q));
        }
    }
}

static void sweep(struct worker_pool *pool)
{
    struct job_swept swept[SWEEP_BATCH];
    int n = 0;
    struct rf_err err;
    enum rf_status rc = store_job_sweep(pool->mst, clock_now_ms(), swept, SWEEP_BATCH, &n, &err);
    if (rc) {
        if (clock_every(&pool->sweep_log, LOG_EVERY_MS)) {
            char q[300];
            log_warn("sweeper failed", "error=%s", log_quote(err.message, q, sizeof q));
        }
        return;
    }
    metrics_add(METRIC_JOB_LEASES_EXPIRED, n);
    for (int i = 0; i < n; i++) {
        hub_notify(pool->cfg.hub, swept[i].id);
        log_info("lease expired", "job=%s now=%s", swept[i].id, swept[i].status);
    }
    if (n > 0)
        pool_wake(pool);
}

void *monitor_main(void *arg)
{
    struct worker_pool *pool = arg;
    int64_t tick = min64(min64(pool->cfg.cancel_poll_ms, pool->cfg.heartbeat_ms),
                         min64(pool->cfg.sweep_ms, MONITOR_TICK_MAX_MS));
    if (tick < 1)
        tick = 1;
    int64_t next_sweep = 0; /* at once: a restart rescues what the last run left behind */
    struct watched *list = xcalloc((size_t)pool->n + 1, sizeof *list);
    pthread_mutex_lock(&pool->lock);
    while (!pool->monitor_stop) {
        pthread_mutex_unlock(&pool->lock);
        monitor_jobs(pool, list);
        if (clock_mono_ms() >= next_sweep) {
            sweep(pool);
            next_sweep = clock_mono_ms() + pool->cfg.sweep_ms;
        }
        pthread_mutex_lock(&pool->lock);
        if (!pool->monitor_stop)
            clock_cond_wait_ms(&pool->mwake, &pool->lock, tick);
    }
    pthread_mutex_unlock(&pool->lock);
    free(list);
    return NULL;
}

/* The lease guard's body: see the DESIGN comment at the top. */
void *guard_main(void *arg)
{
    struct worker_pool *pool = arg;
    int64_t tick = min64(pool->cfg.heartbeat_ms, MONITOR_TICK_MAX_MS);
    if (tick < 1)
        tick = 1;
    pthread_mutex_lock(&pool->lock);
    while (!pool->monitor_stop) {
        int64_t now = clock_now_ms();
        for (int i = 0; i < pool->n; i++) {
            struct job_ctx *ctx = pool->workers[i].ctx;
            if (!ctx || ctx->finishing || atomic_load(&ctx->lost) ||
                now + tick < atomic_load(&ctx->lease_until))
                continue;
            /* No heartbeat confirmed for a whole lease: from the end of it another node's
             * sweeper may requeue the job (by its clock), so stop running it here - up to a
             * tick early, so that the stop lands before the lease ends, not after. */
            log_warn("lease ran out without a heartbeat (database unreachable?): job stopped",
                     "job=%s attempt=%d owner=%s", ctx->claim.id, ctx->claim.attempt, ctx->owner);
            job_ctx_stop(ctx, &ctx->lost);
        }
        clock_cond_wait_ms(&pool->mwake, &pool->lock, tick);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
