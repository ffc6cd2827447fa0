/*
 * pool - the worker pool and the handler context (struct job_ctx) of jobs.h.
 *
 * DESIGN (in the manner of Redis's bio.c)
 *
 * Threads. A pool is N worker threads plus one monitor thread. Each opens its own store
 * connection in pool_start and is its only user.
 *   - A worker loops: claim the oldest due job (store_job_claim: one atomic statement, a
 *     lease of lease_ms under an owner string unique to this claim), run its type's
 *     handler, then finish the job with one fenced transaction, and claim again at once.
 *     With nothing due it sleeps on pool->wake until pool_wake() (a job enqueued by this
 *     process: started within a millisecond or two) or until poll_ms or the next run_at
 *     passes (jobs enqueued by other processes, delayed retries). An idle worker looks
 *     with a read (the earliest run_at) before it claims, so idling takes no write lock.
 *   - The monitor ticks every few tens of milliseconds: for each running job it reads the
 *     cancel flag every cancel_poll_ms and extends the lease every heartbeat_ms, both
 *     fenced (a heartbeat that matches no row means the lease is lost); and every sweep_ms
 *     it runs the sweeper, which requeues jobs whose lease expired anywhere (a crashed or
 *     stopped process) or fails them when their attempts are used up. Any number of
 *     processes may sweep: the sweep's own fence makes a second sweeper match nothing.
 *
 * Locks. pool->lock guards stopping, wake_seq, busy, every worker's `ctx` pointer and
 * due times, and the abort hooks. The flags a handler polls (job_cancelled) are atomics,
 * so polling never takes a lock. Lost wake-ups: a worker reads wake_seq before it tries
 * to claim and only sleeps if wake_seq is unchanged afterwards.
 *
 * Stop flags. A running job is told to stop by one of three atomics, each set with
 * pool->lock held by ctx_stop(), which also wakes job_sleep() and fires the abort hook:
 * `cancel` (API cancel: at once in this process through pool_cancel, else within
 * cancel_poll_ms), `lost` (the monitor's heartbeat or check matched no row) and
 * `shutdown` (grace period over). The monitor re-checks that the worker still runs the
 * same claim (owner strings are unique per claim) before it sets a flag.
 *
 * Database outages. A claim that fails (RF_UNAVAILABLE: the database is down or restarting)
 * is retried after a backoff that doubles from poll_ms up to CLAIM_BACKOFF_MAX_MS; each
 * try reconnects (store_pg.c resets a broken connection on its next call). A worker write
 * of a running job that fails the same way - progress, log, LLM call, the finishing
 * transaction - is retried with backoff while the lease may still hold: the fence makes a
 * retry safe (a write that did commit before its answer was lost makes the retry match no
 * row), so a short outage costs a job a pause, not an attempt. Each claim knows until when
 * its lease is valid (lease_until, moved on by every successful heartbeat); once that
 * passes while heartbeats fail, the monitor stops the job like a lost lease, since another
 * node's sweeper may requeue it from then on: so a job does not run twice at once on a
 * database outage longer than the lease, as long as the nodes' clocks agree (leases are
 * wall-clock times).
 *
 * Fencing. Every write the worker or the handler makes goes through a store_job_* call
 * carrying (job id, attempt, lease owner); once the sweeper requeued the job or another
 * worker claimed it, the write matches no row, the store rolls its transaction back and
 * reports RF_LEASE_LOST, and the worker drops the job. Such rejections are logged
 * ("fenced write changed 0 rows") and counted in refold_job_fenced_writes_total.
 *
 * Outcomes (finish()): RF_OK -> completed (result, event and the handler's commit
 * callback in one transaction); a stop flag or RF_CANCELLED -> released (shutdown),
 * cancelled, or nothing (lost); RF_TRANSIENT/RF_UNAVAILABLE with attempts left ->
 * queued after job_backoff_ms() with a `retry` event; anything else -> failed. The store
 * turns "failed" and "queued" into "cancelled" when a cancel arrived meanwhile, so a
 * cancelled job is never retried.
 *
 * Shutdown (pool_stop). Set stopping (idle workers exit, busy ones claim nothing more),
 * wait up to the grace period for running jobs, then set `shutdown` on the rest: their
 * handlers return and the workers release the jobs to the queue giving the attempt back.
 * A handler that ignores that for ABORT_WAIT_MS more has its job released by pool_stop
 * itself (fenced, so the straggler's later writes match nothing); its thread is left
 * behind and the pool's memory with it, since the process is about to exit. The pool
 * struct outlives pool_stop until pool_free, so that HTTP handlers still answering during
 * the drain can call pool_wake/pool_cancel safely (they find no worker to wake).
 */
#include "jobs/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "jobs/hub.h"
#include "jobs/jobs.h"
#include "store/store.h"
#include "core/banned.h"

#define ABORT_WAIT_MS 2000
#define SWEEP_BATCH 64
#define MONITOR_TICK_MAX_MS 50
#define CLAIM_BACKOFF_MAX_MS 2000
#define DB_RETRY_FIRST_MS 50
#define DB_RETRY_MAX_MS 1000
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
    atomic_bool hb_failing;      /* the last heartbeat failed (database unreachable) */
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
    pthread_mutex_t lock;  /* guards what the DESIGN comment says */
    pthread_cond_t wake;   /* idle workers wait here for work */
    pthread_cond_t idle;   /* a job finished (pool_stop waits here) */
    pthread_cond_t mwake;  /* the monitor's sleep */
    bool stopping;
    bool monitor_stop;
    uint64_t wake_seq;
    int busy;
    struct worker *workers;
    int n;
    pthread_t monitor;
    bool monitor_started;
    struct store *mst;         /* the monitor's connection */
    int stuck;                 /* workers pool_stop had to leave behind */
    int64_t hb_log, sweep_log; /* monitor only: when a failure was last logged */
};

/* ---- small helpers ---- */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Tell a running job to stop for reason `why`. Caller holds pool->lock. */
static void ctx_stop(struct job_ctx *ctx, atomic_bool *why)
{
    atomic_store_explicit(why, true, memory_order_relaxed);
    atomic_store_explicit(&ctx->stop, true, memory_order_release);
    pthread_cond_broadcast(&ctx->w->sleep_cond);
    if (ctx->abort_fn && !ctx->abort_fired) {
        ctx->abort_fired = true;
        ctx->abort_fn(ctx->abort_ud);
    }
}

static void fenced_out(const struct job_ctx *ctx, const char *op)
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
        fenced_out(ctx, op);
    return rc;
}

/* A worker write failed with RF_UNAVAILABLE (database down, restarting, or a deadlock):
 * wait *delay (doubling) and say whether to try again - not once the lease may have run
 * out (the sweeper may have requeued the job: the write would be fenced out anyway), nor
 * at shutdown. `outcome`: the finishing write itself, retried even when the job was told
 * to stop; the handler's writes are not retried once it was, nor inside the completing
 * transaction (a completion callback's: that transaction is retried as a whole). */
static bool retry_db(struct job_ctx *ctx, int64_t *delay, bool outcome, const char *op)
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
    while (rc == RF_UNAVAILABLE && retry_db(ctx, &delay, false, "progress"));
    return after_write(ctx, rc, "progress");
}

enum rf_status job_log(struct job_ctx *ctx, const char *level, const char *message,
                       struct rf_err *err)
{
    enum rf_status rc;
    int64_t delay = 0;
    do
        rc = store_job_log(ctx->w->st, &ctx->fence, level, message, err);
    while (rc == RF_UNAVAILABLE && retry_db(ctx, &delay, false, "log"));
    return after_write(ctx, rc, "log");
}

enum rf_status job_record_llm_call(struct job_ctx *ctx, const struct llm_call_new *call, char *id,
                                   struct rf_err *err)
{
    enum rf_status rc;
    int64_t delay = 0;
    do
        rc = store_llm_call_insert(ctx->w->st, &ctx->fence, call, id, err);
    while (rc == RF_UNAVAILABLE && retry_db(ctx, &delay, false, "llm_call"));
    if (rc == RF_LEASE_LOST)
        fenced_out(ctx, "llm_call");
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

/* ---- running one job ---- */

static bool is_transient(enum rf_status rc)
{
    return rc == RF_TRANSIENT || rc == RF_UNAVAILABLE;
}

/* Record the job's outcome: one fenced transaction (see DESIGN, Outcomes). */
static void finish(struct worker *w, struct job_ctx *ctx, enum rf_status rc, struct rf_err *err)
{
    struct worker_pool *pool = w->pool;
    struct rf_err ferr;
    const char *status = NULL, *op = NULL;
    enum rf_status frc = RF_OK;
    int64_t pause = 0; /* retry_db's */
    rf_err_clear(&ferr);

    if (rc == RF_OK) {
        if (!ctx->result)
            ctx->result = json_object();
        op = "complete";
        do
            frc = store_job_complete(w->st, &ctx->fence, ctx->result, ctx->commit_fn,
                                     ctx->commit_ud, &ferr);
        while (frc == RF_UNAVAILABLE && retry_db(ctx, &pause, true, op));
        status = "completed";
        if (frc == RF_OK || frc == RF_LEASE_LOST || frc == RF_UNAVAILABLE)
            goto out; /* unavailable to the end: the lease expires, the sweeper requeues */
        /* The completion itself failed (its callback, or the database): like a handler
         * failure, with that error. */
        rc = frc;
        *err = ferr;
        rf_err_clear(&ferr);
    }
    if (rc == RF_LEASE_LOST || atomic_load(&ctx->lost)) {
        frc = RF_LEASE_LOST;
        op = "finish";
        goto out;
    }
    if (atomic_load(&ctx->shutdown) && !atomic_load(&ctx->cancel)) {
        op = "release";
        status = "queued";
        frc = store_job_release(w->st, &ctx->fence, &ferr);
        goto out; /* no retry: the process is stopping; the sweeper requeues the job */
    }
    if (rc == RF_CANCELLED || atomic_load(&ctx->cancel)) {
        op = "cancel";
        status = "cancelled";
        do
            frc = store_job_cancelled(w->st, &ctx->fence, &ferr);
        while (frc == RF_UNAVAILABLE && retry_db(ctx, &pause, true, op));
        goto out;
    }
    const char *code = err->reason[0]     ? err->reason
                       : is_transient(rc) ? "transient_error"
                                          : rf_status_name(rc);
    const char *message = err->message[0] ? err->message : rf_status_name(rc);
    if (is_transient(rc) && ctx->claim.attempt < ctx->claim.max_attempts) {
        int64_t delay = job_backoff_ms(ctx->claim.attempt, pool->cfg.backoff_base_ms,
                                       ctx->retry_after_ms, crypto_random_unit());
        op = "retry";
        do
            frc = store_job_reschedule(w->st, &ctx->fence, clock_now_ms() + delay, code, message,
                                       &status, &ferr);
        while (frc == RF_UNAVAILABLE && retry_db(ctx, &pause, true, op));
        if (frc == RF_OK && strcmp(status, "queued") == 0) {
            metrics_add(METRIC_JOB_RETRIES, 1);
            log_info("job will be retried", "job=%s type=%s attempt=%d delay_ms=%lld error=%s",
                     ctx->claim.id, ctx->claim.type, ctx->claim.attempt, (long long)delay, code);
        }
    } else {
        op = "fail";
        do
            frc = store_job_fail(w->st, &ctx->fence, code, message, &status, &ferr);
        while (frc == RF_UNAVAILABLE && retry_db(ctx, &pause, true, op));
        if (frc == RF_OK && strcmp(status, "failed") == 0)
            log_info("job failed", "job=%s type=%s attempt=%d error=%s", ctx->claim.id,
                     ctx->claim.type, ctx->claim.attempt, code);
    }
out:
    if (frc == RF_OK) {
        hub_notify(pool->cfg.hub, ctx->claim.id);
        log_debug("job finished", "job=%s type=%s attempt=%d status=%s", ctx->claim.id,
                  ctx->claim.type, ctx->claim.attempt, status ? status : "?");
    } else if (frc == RF_LEASE_LOST) {
        if (op && strcmp(op, "finish") != 0)
            fenced_out(ctx, op);
        else
            log_warn("lease lost: job dropped without writing", "job=%s attempt=%d owner=%s",
                     ctx->claim.id, ctx->claim.attempt, ctx->owner);
    } else {
        /* The lease will expire and the sweeper will requeue the job. */
        log_error("cannot record job outcome", "job=%s attempt=%d op=%s error=\"%s\"",
                  ctx->claim.id, ctx->claim.attempt, op ? op : "?", ferr.message);
    }
}

static void run_job(struct worker *w, struct job_ctx *ctx)
{
    struct worker_pool *pool = w->pool;
    struct rf_err err;
    rf_err_clear(&err);
    metrics_add(METRIC_JOBS_CLAIMED, 1);
    const struct job_type *type = job_type_find(ctx->claim.type);
    enum rf_status rc;
    if (!type) {
        rc = rf_fail_reason(&err, RF_PERMANENT, "unknown_job_type",
                            "no handler for job type \"%s\" in this process", ctx->claim.type);
    } else if (ctx->claim.cancel_requested) {
        pthread_mutex_lock(&pool->lock);
        ctx_stop(ctx, &ctx->cancel);
        pthread_mutex_unlock(&pool->lock);
        rc = RF_CANCELLED;
    } else {
        rc = type->handler(ctx, &err);
    }
    /* From here the claim may legitimately vanish (the finishing write clears it): the
     * monitor must not take that for a lost lease. */
    pthread_mutex_lock(&pool->lock);
    ctx->finishing = true;
    ctx->abort_fn = NULL; /* its ud may have lived on the handler's stack */
    pthread_mutex_unlock(&pool->lock);
    finish(w, ctx, rc, &err);
}

/* ---- worker thread ---- */

static void make_owner(struct worker *w, char *out)
{
    snprintf(out, JOB_OWNER_MAX, "%s:w%d:%llu", w->pool->owner_prefix, w->index,
             (unsigned long long)++w->claims);
}

/* How long an idle worker may sleep: 0 when a queued job is due now, else until the next
 * run_at, at most poll_ms. A read, so idle polling never takes the write lock. 0 as well
 * when the read fails: the claim then fails too, and backs off. */
static int64_t until_due(struct worker *w)
{
    struct worker_pool *pool = w->pool;
    int64_t next = 0;
    bool found = false;
    struct rf_err err;
    if (store_job_next_due(w->st, &next, &found, &err) != RF_OK)
        return 0;
    if (!found)
        return pool->cfg.poll_ms;
    int64_t left = next - clock_now_ms();
    return left <= 0 ? 0 : min64(left, pool->cfg.poll_ms);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct worker_pool *pool = w->pool;
    int64_t last_error_log = 0;
    int64_t claim_wait = 0;      /* backoff after failed claims (database unreachable) */
    bool failing_logged = false; /* "cannot claim jobs" was logged since the last success */
    bool claim_now = true;       /* false once a claim found nothing: look before claiming */
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        bool stop = pool->stopping;
        uint64_t seen = pool->wake_seq;
        pthread_mutex_unlock(&pool->lock);
        if (stop)
            break;
        if (!claim_now) {
            int64_t wait = until_due(w);
            if (wait > 0) {
                pthread_mutex_lock(&pool->lock);
                if (!pool->stopping && pool->wake_seq == seen)
                    clock_cond_wait_ms(&pool->wake, &pool->lock, wait);
                pthread_mutex_unlock(&pool->lock);
                continue;
            }
        }

        struct job_ctx *ctx = xcalloc(1, sizeof *ctx);
        struct rf_err err;
        bool claimed = false;
        ctx->w = w;
        make_owner(w, ctx->owner);
        int64_t now = clock_now_ms();
        enum rf_status rc = store_job_claim(w->st, ctx->owner, now, pool->cfg.lease_ms, &ctx->claim,
                                            &claimed, &err);
        if (rc == RF_OK) {
            claim_wait = 0;
            if (failing_logged)
                log_info("database reachable again: claiming jobs", "worker=%d", w->index);
            failing_logged = false;
        }
        if (rc == RF_OK && claimed) {
            ctx->fence = (struct job_fence){ctx->claim.id, ctx->claim.attempt, ctx->owner};
            atomic_store(&ctx->lease_until, now + pool->cfg.lease_ms);
            int64_t mono = clock_mono_ms();
            pthread_mutex_lock(&pool->lock);
            w->ctx = ctx;
            w->heartbeat_due = mono + pool->cfg.heartbeat_ms;
            w->check_due = mono + pool->cfg.cancel_poll_ms;
            pool->busy++;
            pthread_mutex_unlock(&pool->lock);

            run_job(w, ctx);

            pthread_mutex_lock(&pool->lock);
            w->ctx = NULL;
            pool->busy--;
            pthread_cond_broadcast(&pool->idle);
            pthread_mutex_unlock(&pool->lock);
            json_decref(ctx->claim.params);
            json_decref(ctx->result);
            if (ctx->commit_free)
                ctx->commit_free(ctx->commit_ud);
            free(ctx);
            claim_now = true;
            continue;
        }
        free(ctx);
        claim_now = false;
        if (rc != RF_OK) {
            if (clock_every(&last_error_log, LOG_EVERY_MS)) {
                char q[300];
                log_warn("cannot claim jobs", "worker=%d error=%s", w->index,
                         log_quote(err.message, q, sizeof q));
                failing_logged = true;
            }
            claim_wait =
                claim_wait ? min64(claim_wait * 2, CLAIM_BACKOFF_MAX_MS) : pool->cfg.poll_ms;
            pthread_mutex_lock(&pool->lock);
            if (!pool->stopping)
                clock_cond_wait_ms(&pool->wake, &pool->lock, claim_wait);
            pthread_mutex_unlock(&pool->lock);
            claim_now = true; /* try the claim itself again, not only a look */
        }
    }
    return NULL;
}

/* ---- monitor thread: heartbeats, cancel polls, sweeper ---- */

struct watched {
    struct worker *w;
    char id[ID_MAX];
    char owner[JOB_OWNER_MAX];
    int attempt;
    bool heartbeat;
    int64_t lease_until; /* what the heartbeat asks for */
};

/* Set a stop flag on w's job if it still runs the claim named by owner. */
static void flag_if_same(struct worker_pool *pool, struct worker *w, const char *owner, bool lost)
{
    pthread_mutex_lock(&pool->lock);
    struct job_ctx *ctx = w->ctx;
    if (ctx && !ctx->finishing && strcmp(ctx->owner, owner) == 0) {
        if (lost && !atomic_load(&ctx->lost)) {
            log_warn("lease lost: job taken away from this worker", "job=%s attempt=%d owner=%s",
                     ctx->claim.id, ctx->claim.attempt, ctx->owner);
            ctx_stop(ctx, &ctx->lost);
        } else if (!lost && !atomic_load(&ctx->cancel)) {
            ctx_stop(ctx, &ctx->cancel);
        }
    }
    pthread_mutex_unlock(&pool->lock);
}

/* A heartbeat of the claim named by owner went through (its lease holds until `until`),
 * or failed (until 0). */
static void heartbeat_done(struct worker_pool *pool, struct worker *w, const char *owner,
                           int64_t until)
{
    pthread_mutex_lock(&pool->lock);
    struct job_ctx *ctx = w->ctx;
    if (ctx && strcmp(ctx->owner, owner) == 0) {
        atomic_store(&ctx->hb_failing, until == 0);
        if (until)
            atomic_store(&ctx->lease_until, until);
    }
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
        if (!ctx || ctx->finishing)
            continue;
        if (atomic_load(&ctx->hb_failing) && clock_now_ms() >= atomic_load(&ctx->lease_until) &&
            !atomic_load(&ctx->lost)) {
            /* Heartbeats failed for a whole lease: from now on another node's sweeper may
             * requeue the job, so stop running it here. (A heartbeat that is merely slow
             * does not count: it may still get through before any sweeper.) */
            log_warn("lease ran out without a heartbeat (database unreachable?): job stopped",
                     "job=%s attempt=%d owner=%s", ctx->claim.id, ctx->claim.attempt, ctx->owner);
            ctx_stop(ctx, &ctx->lost);
            continue;
        }
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
        if (list[i].heartbeat && (rc == RF_OK || rc == RF_UNAVAILABLE))
            heartbeat_done(pool, list[i].w, list[i].owner, rc == RF_OK ? list[i].lease_until : 0);
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

static void *monitor_main(void *arg)
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

/* ---- lifecycle ---- */

void pool_config_init(struct pool_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 2;
    cfg->lease_ms = POOL_DEFAULT_LEASE_MS;
    cfg->heartbeat_ms = POOL_DEFAULT_HEARTBEAT_MS;
    cfg->poll_ms = POOL_DEFAULT_POLL_MS;
    cfg->sweep_ms = POOL_DEFAULT_SWEEP_MS;
    cfg->cancel_poll_ms = POOL_DEFAULT_CANCEL_POLL_MS;
    cfg->backoff_base_ms = JOB_BACKOFF_BASE_MS;
}

static void free_pool(struct worker_pool *pool)
{
    for (int i = 0; i < pool->n; i++) {
        store_close(pool->workers[i].st);
        pthread_cond_destroy(&pool->workers[i].sleep_cond);
    }
    store_close(pool->mst);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->mwake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

enum rf_status pool_start(const struct pool_config *cfg, struct worker_pool **out,
                          struct rf_err *err)
{
    *out = NULL;
    if (cfg->workers < 1 || cfg->lease_ms < 1 || cfg->heartbeat_ms < 1 || cfg->poll_ms < 1 ||
        cfg->sweep_ms < 1 || cfg->cancel_poll_ms < 1)
        return rf_fail(err, RF_INVALID, "worker pool settings must be positive");
    if (cfg->heartbeat_ms >= cfg->lease_ms)
        return rf_fail(err, RF_INVALID,
                       "the heartbeat interval (%lld ms) must be shorter than the lease (%lld ms)",
                       (long long)cfg->heartbeat_ms, (long long)cfg->lease_ms);
    struct worker_pool *pool = xcalloc(1, sizeof *pool);
    pool->cfg = *cfg;
    pool->n = cfg->workers;
    pool->workers = xcalloc((size_t)pool->n, sizeof *pool->workers);
    pthread_mutex_init(&pool->lock, NULL);
    clock_cond_init(&pool->wake);
    clock_cond_init(&pool->idle);
    clock_cond_init(&pool->mwake);
    char host[64] = "host";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    host[strcspn(host, ".")] = '\0';
    unsigned char rnd[3];
    crypto_random(rnd, sizeof rnd);
    snprintf(pool->owner_prefix, sizeof pool->owner_prefix, "%.20s:%d:%02x%02x%02x", host,
             (int)getpid(), rnd[0], rnd[1], rnd[2]);

    enum rf_status rc = RF_OK;
    for (int i = 0; i < pool->n && rc == RF_OK; i++) {
        struct worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        clock_cond_init(&w->sleep_cond);
        rc = store_open(cfg->db_url, &w->st, err);
    }
    if (rc == RF_OK)
        rc = store_open(cfg->db_url, &pool->mst, err);
    if (rc) {
        free_pool(pool);
        return rc;
    }
    for (int i = 0; i < pool->n; i++) {
        struct worker *w = &pool->workers[i];
        w->thread_started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        if (!w->thread_started)
            log_error("cannot start worker thread", "worker=%d", i);
    }
    pool->monitor_started = pthread_create(&pool->monitor, NULL, monitor_main, pool) == 0;
    if (!pool->monitor_started)
        log_error("cannot start the worker monitor thread", NULL);
    log_info("workers started", "workers=%d lease_ms=%lld heartbeat_ms=%lld owner=%s", pool->n,
             (long long)cfg->lease_ms, (long long)cfg->heartbeat_ms, pool->owner_prefix);
    *out = pool;
    return RF_OK;
}

void pool_wake(struct worker_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->wake_seq++;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
}

void pool_cancel(struct worker_pool *pool, const char *job_id)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->n; i++) {
        struct job_ctx *ctx = pool->workers[i].ctx;
        if (ctx && strcmp(ctx->claim.id, job_id) == 0 && !atomic_load(&ctx->cancel))
            ctx_stop(ctx, &ctx->cancel);
    }
    pthread_mutex_unlock(&pool->lock);
}

/* Wait (pool->lock held) until no job runs or deadline (monotonic ms) passes. */
static void wait_idle(struct worker_pool *pool, int64_t deadline)
{
    while (pool->busy > 0) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            break;
        clock_cond_wait_ms(&pool->idle, &pool->lock, left);
    }
}

void pool_stop(struct worker_pool *pool, int64_t grace_ms)
{
    if (!pool || (pool->stopping && !pool->monitor_started))
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    if (pool->busy > 0)
        log_info("waiting for running jobs", "jobs=%d grace_ms=%lld", pool->busy,
                 (long long)grace_ms);
    wait_idle(pool, clock_mono_ms() + grace_ms);
    if (pool->busy > 0) {
        log_info("grace period over: stopping running jobs", "jobs=%d", pool->busy);
        for (int i = 0; i < pool->n; i++)
            if (pool->workers[i].ctx && !atomic_load(&pool->workers[i].ctx->shutdown))
                ctx_stop(pool->workers[i].ctx, &pool->workers[i].ctx->shutdown);
        wait_idle(pool, clock_mono_ms() + ABORT_WAIT_MS);
    }
    /* Handlers that ignored the stop: remember their claims, release them below. */
    int stuck = 0;
    struct watched *left = xcalloc((size_t)pool->n, sizeof *left);
    for (int i = 0; i < pool->n; i++) {
        struct job_ctx *ctx = pool->workers[i].ctx;
        if (!ctx)
            continue;
        left[stuck].w = &pool->workers[i];
        snprintf(left[stuck].id, sizeof left[stuck].id, "%s", ctx->claim.id);
        snprintf(left[stuck].owner, sizeof left[stuck].owner, "%s", ctx->owner);
        left[stuck].attempt = ctx->claim.attempt;
        stuck++;
    }
    pool->monitor_stop = true;
    pthread_cond_broadcast(&pool->mwake);
    pthread_mutex_unlock(&pool->lock);

    if (pool->monitor_started) {
        pthread_join(pool->monitor, NULL);
        pool->monitor_started = false;
    }
    for (int i = 0; i < stuck; i++) {
        struct job_fence f = {left[i].id, left[i].attempt, left[i].owner};
        struct rf_err err;
        if (store_job_release(pool->mst, &f, &err) == RF_OK) {
            hub_notify(pool->cfg.hub, left[i].id);
            log_warn("job did not stop in time: released to the queue", "job=%s", left[i].id);
        }
    }
    for (int i = 0; i < pool->n; i++) {
        struct worker *w = &pool->workers[i];
        bool is_stuck = false;
        for (int j = 0; j < stuck; j++)
            is_stuck = is_stuck || left[j].w == w;
        if (!w->thread_started)
            continue;
        if (is_stuck)
            pthread_detach(w->thread);
        else
            pthread_join(w->thread, NULL);
        w->thread_started = false;
    }
    free(left);
    pool->stuck = stuck;
    if (stuck)
        log_warn("leaving stuck worker threads behind", "threads=%d", stuck);
    else
        log_info("workers stopped", NULL);
}

void pool_free(struct worker_pool *pool)
{
    if (!pool)
        return;
    if (!pool->stopping || pool->monitor_started)
        pool_stop(pool, 0);
    if (pool->stuck)
        return; /* stragglers still use the pool; the process is exiting anyway */
    free_pool(pool);
}
