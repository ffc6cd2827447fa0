/*
 * job_ctx - the handler's context of jobs.h (struct job_ctx): what a running job's handler
 * reads (its claim, its worker's store connection), the fenced writes it makes (progress,
 * log, LLM calls), the stop flags it polls, job_sleep, and the outcome it leaves for the
 * worker (job_succeed, job_retry_after). The worker that creates the context for a claim,
 * runs the handler and writes the outcome is pool.c; the struct is in pool_internal.h.
 *
 * Threading. A context lives for one claim and belongs to the worker thread that runs it:
 * the handler's calls run on that thread (jobs.h). Other threads - the monitor, pool_cancel,
 * the lease guard, pool_stop - touch it only with pool->lock held: they read its claim and
 * owner and tell the job to stop through job_ctx_stop(); the monitor also moves
 * lease_until, an atomic. job_sleep() and a write's retry wait on the worker's sleep_cond
 * with pool->lock, so that a stop wakes them at once.
 *
 * Stop flags. A running job is told to stop by one of three atomics, each set with
 * pool->lock held by job_ctx_stop(), which also wakes job_sleep() and fires the abort hook:
 * `cancel` (API cancel: at once in this process through pool_cancel, else within
 * cancel_poll_ms), `lost` (the monitor's heartbeat or check matched no row, or the lease
 * guard saw the lease run out with no heartbeat confirming it) and
 * `shutdown` (grace period over). The monitor re-checks that the worker still runs the
 * same claim (owner strings are unique per claim) before it sets a flag. job_cancelled()
 * reads `stop`, set with any of the three, so polling never takes a lock.
 *
 * Writes. Every write here is fenced on (job id, attempt, lease owner) and one that fails
 * with RF_UNAVAILABLE is retried while the lease may still hold (job_ctx_retry_db, which
 * the worker's finishing write uses too): see Fencing and Database outages in pool.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/utf8.h"
#include "core/xalloc.h"
#include "jobs/hub.h"
#include "jobs/jobs.h"
#include "jobs/pool_internal.h"
#include "store/store.h"
#include "core/banned.h"

#define DB_RETRY_FIRST_MS 50
#define DB_RETRY_MAX_MS 1000

/* ---- stop flags and writes, shared with pool.c and monitor.c ---- */

/* Tell a running job to stop for reason `why`. Caller holds pool->lock. */
void job_ctx_stop(struct job_ctx *ctx, atomic_bool *why)
{
    atomic_store_explicit(why, true, memory_order_relaxed);
    atomic_store_explicit(&ctx->stop, true, memory_order_release);
    pthread_cond_broadcast(&ctx->w->sleep_cond);
    if (ctx->abort_fn && !ctx->abort_fired) {
        ctx->abort_fired = true;
        ctx->abort_fn(ctx->abort_ud);
    }
}

void job_ctx_fenced_out(const struct job_ctx *ctx, const char *op)
{
    metrics_add(METRIC_JOB_FENCED_WRITES, 1);
    log_warn("fenced write changed 0 rows: lease lost, job dropped",
             "job=%s attempt=%d owner=%s op=%s", ctx->claim.id, ctx->claim.attempt, ctx->owner, op);
}

/* After a ctx write: tell the hub, or note a fenced-out write. */
static enum rf_status after_write(struct job_ctx *ctx, enum rf_status rc, const char *op)
{
    if (rc == RF_OK)
        hub_notify(ctx->w->pool->cfg.hub, ctx->claim.id);
    else if (rc == RF_LEASE_LOST)
        job_ctx_fenced_out(ctx, op);
    return rc;
}

/* A worker write failed with RF_UNAVAILABLE (database down, restarting, or a deadlock):
 * wait *delay (doubling) and say whether to try again - not once the lease may have run
 * out (the sweeper may have requeued the job: the write would be fenced out anyway), nor
 * at shutdown. `outcome`: the finishing write itself, retried even when the job was told
 * to stop; the handler's writes are not retried once it was, nor inside the completing
 * transaction (a completion callback's: that transaction is retried as a whole). */
bool job_ctx_retry_db(struct job_ctx *ctx, int64_t *delay, bool outcome, const char *op)
{
    struct worker_pool *pool = ctx->w->pool;
    if (clock_now_ms() + *delay >= atomic_load(&ctx->lease_until) || atomic_load(&ctx->shutdown) ||
        (!outcome && (ctx->finishing || job_cancelled(ctx))))
        return false;
    if (*delay == 0)
        log_warn("database unavailable: retrying a job write", "job=%s attempt=%d op=%s",
                 ctx->claim.id, ctx->claim.attempt, op);
    *delay = *delay ? min64(*delay * 2, DB_RETRY_MAX_MS) : DB_RETRY_FIRST_MS;
    int64_t deadline = clock_mono_ms() + *delay;
    pthread_mutex_lock(&pool->lock);
    while (!atomic_load(&ctx->shutdown) && (outcome || !job_cancelled(ctx)) &&
           clock_mono_ms() < deadline)
        clock_cond_wait_ms(&ctx->w->sleep_cond, &pool->lock, deadline - clock_mono_ms());
    pthread_mutex_unlock(&pool->lock);
    return true;
}

/* ---- the handler context (jobs.h) ---- */

const char *job_id(const struct job_ctx *ctx)
{
    return ctx->claim.id;
}

const char *job_workspace(const struct job_ctx *ctx)
{
    return ctx->claim.workspace_id;
}

const char *job_type_of(const struct job_ctx *ctx)
{
    return ctx->claim.type;
}

int job_attempt(const struct job_ctx *ctx)
{
    return ctx->claim.attempt;
}

int job_max_attempts(const struct job_ctx *ctx)
{
    return ctx->claim.max_attempts;
}

const json_t *job_params(const struct job_ctx *ctx)
{
    return ctx->claim.params;
}

struct store *job_store(struct job_ctx *ctx)
{
    return ctx->w->st;
}

enum rf_status job_progress(struct job_ctx *ctx, const char *stage, int progress,
                            const json_t *extra, struct rf_err *err)
{
    if (progress < 0)
        progress = 0;
    if (progress > 100)
        progress = 100;
    enum rf_status rc;
    int64_t delay = 0;
    do
        rc = store_job_progress(ctx->w->st, &ctx->fence, stage, progress, extra, err);
    while (rc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &delay, false, "progress"));
    return after_write(ctx, rc, "progress");
}

enum rf_status job_log(struct job_ctx *ctx, const char *level, const char *message,
                       struct rf_err *err)
{
    enum rf_status rc;
    int64_t delay = 0;
    /* A message cut to a fixed size may end inside a character; json_pack refuses text
     * that is not UTF-8, so it is scrubbed here for every caller. */
    char *text = xstrdup(message);
    utf8_scrub(text);
    do
        rc = store_job_log(ctx->w->st, &ctx->fence, level, text, err);
    while (rc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &delay, false, "log"));
    free(text);
    return after_write(ctx, rc, "log");
}

enum rf_status job_record_llm_call(struct job_ctx *ctx, const struct llm_call_new *call, char *id,
                                   struct rf_err *err)
{
    enum rf_status rc;
    int64_t delay = 0;
    do
        rc = store_llm_call_insert(ctx->w->st, &ctx->fence, call, id, err);
    while (rc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &delay, false, "llm_call"));
    if (rc == RF_LEASE_LOST)
        job_ctx_fenced_out(ctx, "llm_call");
    return rc;
}

bool job_cancelled(const struct job_ctx *ctx)
{
    return atomic_load_explicit(&ctx->stop, memory_order_acquire);
}

int job_abort_requested(void *ctx)
{
    return job_cancelled(ctx) ? 1 : 0;
}

void job_on_abort(struct job_ctx *ctx, void (*fn)(void *ud), void *ud)
{
    struct worker_pool *pool = ctx->w->pool;
    pthread_mutex_lock(&pool->lock);
    ctx->abort_fn = fn;
    ctx->abort_ud = ud;
    ctx->abort_fired = false;
    if (fn && job_cancelled(ctx)) {
        ctx->abort_fired = true;
        fn(ud);
    }
    pthread_mutex_unlock(&pool->lock);
}

bool job_sleep(struct job_ctx *ctx, int64_t ms)
{
    struct worker_pool *pool = ctx->w->pool;
    int64_t deadline = clock_mono_ms() + ms;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (job_cancelled(ctx) || left <= 0)
            break;
        clock_cond_wait_ms(&ctx->w->sleep_cond, &pool->lock, left);
    }
    pthread_mutex_unlock(&pool->lock);
    return !job_cancelled(ctx);
}

void job_retry_after(struct job_ctx *ctx, int64_t ms)
{
    ctx->retry_after_ms = ms;
}

void job_succeed(struct job_ctx *ctx, json_t *result, store_txn_fn fn, void *ud)
{
    job_succeed_with(ctx, result, fn, ud, NULL);
}

void job_succeed_with(struct job_ctx *ctx, json_t *result, store_txn_fn fn, void *ud,
                      void (*free_ud)(void *ud))
{
    json_decref(ctx->result);
    if (ctx->commit_free)
        ctx->commit_free(ctx->commit_ud);
    ctx->result = result;
    ctx->commit_fn = fn;
    ctx->commit_ud = ud;
    ctx->commit_free = free_ud;
}
