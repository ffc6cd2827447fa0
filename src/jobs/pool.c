/*
 * pool - the worker pool: its lifecycle (pool_start, pool_stop, pool_free), the worker
 * threads, and running one job from its claim to its outcome. The handler's context
 * (struct job_ctx and the job_* calls of jobs.h) is job_ctx.c; the monitor thread
 * (heartbeats, cancel polls, sweeper) is monitor.c; the structs the three share are in
 * pool_internal.h.
 *
 * DESIGN (in the manner of Redis's bio.c)
 *
 * Threads. A pool is N worker threads plus one monitor thread, each with its own store
 * connection (opened in pool_start, used by that thread alone), and a lease guard thread
 * that never touches the database.
 *   - A worker loops: claim the oldest due job (store_job_claim: one atomic statement, a
 *     lease of lease_ms under an owner string unique to this claim), run its type's
 *     handler, then finish the job with one fenced transaction, and claim again at once.
 *     With nothing due it sleeps on pool->wake until pool_wake() (a job enqueued by this
 *     process: started within a millisecond or two) or until poll_ms or the next run_at
 *     passes (jobs enqueued by other processes, delayed retries). An idle worker looks
 *     with a read (the earliest run_at) before it claims, so idling takes no write lock.
 *   - The monitor (monitor.c, where its DESIGN is) reads each running job's cancel flag
 *     every cancel_poll_ms and extends its lease every heartbeat_ms, both fenced, and
 *     every sweep_ms runs the sweeper, which requeues or fails the jobs whose lease
 *     expired anywhere.
 *   - The lease guard (monitor.c) stops a running job whose lease ran out with no
 *     heartbeat confirming it, even while the monitor is stuck in a query.
 *
 * Locks. pool->lock guards stopping, wake_seq, busy, every worker's `ctx` pointer and
 * due times, and the abort hooks. The flags a handler polls (job_cancelled) are atomics,
 * so polling never takes a lock. Lost wake-ups: a worker reads wake_seq before it tries
 * to claim and only sleeps if wake_seq is unchanged afterwards.
 *
 * Stop flags. A running job is told to stop by one of three atomics of its context,
 * `cancel`, `lost` and `shutdown`, each set with pool->lock held by job_ctx_stop(): who
 * sets which, and why, is in job_ctx.c.
 *
 * Database outages. A claim that fails (RF_UNAVAILABLE: the database is down or restarting)
 * is retried after a backoff that doubles from poll_ms up to CLAIM_BACKOFF_MAX_MS; each
 * try reconnects (store_pg.c resets a broken connection on its next call). A worker write
 * of a running job that fails the same way - progress, log, LLM call, the finishing
 * transaction - is retried with backoff (job_ctx_retry_db) while the lease may still hold:
 * the fence makes a retry safe (a write that did commit before its answer was lost makes
 * the retry match no row), so a short outage costs a job a pause, not an attempt. Each
 * claim knows until when its lease is valid (lease_until, moved on by every successful
 * heartbeat); once that passes - heartbeats failing, or hanging on a network that stopped
 * delivering packets - the lease guard stops the job like a lost lease, since another
 * node's sweeper may requeue it from then on: so a job does not run twice at once on a
 * database outage or partition longer than the lease, as long as the nodes' clocks agree
 * (leases are wall-clock times).
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
 * Shutdown (pool_stop). Set stopping (idle workers exit, busy ones claim nothing more; a
 * claim already in flight that commits afterwards is released at once, never run: the
 * worker checks stopping again, under the lock, before it counts the job as running),
 * wait up to the grace period for running jobs, then set `shutdown` on the rest: their
 * handlers return and the workers release the jobs to the queue giving the attempt back.
 * A handler that ignores that for ABORT_WAIT_MS more has its job released by pool_stop
 * itself (fenced, so the straggler's later writes match nothing); its thread is left
 * behind and the pool's memory with it, since the process is about to exit. pool_hurry
 * (a second SIGTERM/SIGINT, from another thread) ends the grace period at once and
 * shortens that wait to HURRY_ABORT_WAIT_MS: the same release, sooner. The pool
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
#include "jobs/pool_internal.h"
#include "store/store.h"
#include "core/banned.h"

#define ABORT_WAIT_MS 2000
#define HURRY_ABORT_WAIT_MS 1000 /* ABORT_WAIT_MS once pool_hurry was called */
#define HURRY_LOOK_MS 100        /* wait_idle looks at pool->hurry at least this often */
#define CLAIM_BACKOFF_MAX_MS 2000

/* ---- running one job ---- */

static bool is_transient(enum rf_status rc)
{
    return rc == RF_TRANSIENT || rc == RF_UNAVAILABLE;
}

/* Record the job's outcome: one fenced transaction (see DESIGN, Outcomes). */
static void finish(struct worker *w, struct job_ctx *ctx, enum rf_status rc, struct rf_err *err,
                   int64_t started_ms)
{
    struct worker_pool *pool = w->pool;
    struct rf_err ferr;
    const char *status = NULL, *op = NULL, *code = NULL;
    int64_t delay = -1; /* a retry's */
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
        while (frc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &pause, true, op));
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
        while (frc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &pause, true, op));
        goto out;
    }
    code = err->reason[0]     ? err->reason
           : is_transient(rc) ? "transient_error"
                              : rf_status_name(rc);
    const char *message = err->message[0] ? err->message : rf_status_name(rc);
    if (is_transient(rc) && ctx->claim.attempt < ctx->claim.max_attempts) {
        delay = job_backoff_ms(ctx->claim.attempt, pool->cfg.backoff_base_ms,
                               ctx->retry_after_ms, crypto_random_unit());
        op = "retry";
        do
            frc = store_job_reschedule(w->st, &ctx->fence, clock_now_ms() + delay, code, message,
                                       &status, &ferr);
        while (frc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &pause, true, op));
        if (frc == RF_OK && strcmp(status, "queued") == 0)
            metrics_add(METRIC_JOB_RETRIES, 1);
    } else {
        op = "fail";
        do
            frc = store_job_fail(w->st, &ctx->fence, code, message, &status, &ferr);
        while (frc == RF_UNAVAILABLE && job_ctx_retry_db(ctx, &pause, true, op));
    }
out:
    if (frc == RF_OK) {
        hub_notify(pool->cfg.hub, ctx->claim.id);
        /* One line per run of a job: how it ended. The error is its code, never its
         * message (which may quote an LLM reply or a trace). */
        char extra[128] = "";
        if (code && status && strcmp(status, "queued") == 0 && delay >= 0)
            snprintf(extra, sizeof extra, " error=%s retry_in_ms=%lld", code, (long long)delay);
        else if (code && status && strcmp(status, "completed") != 0)
            snprintf(extra, sizeof extra, " error=%s", code);
        log_info("job finished", "job=%s type=%s attempt=%d status=%s op=%s duration_ms=%lld%s",
                 ctx->claim.id, ctx->claim.type, ctx->claim.attempt, status ? status : "?",
                 op ? op : "?", (long long)(clock_mono_ms() - started_ms), extra);
    } else if (frc == RF_LEASE_LOST) {
        if (op && strcmp(op, "finish") != 0)
            job_ctx_fenced_out(ctx, op);
        else
            log_warn("lease lost: job dropped without writing", "job=%s attempt=%d owner=%s",
                     ctx->claim.id, ctx->claim.attempt, ctx->owner);
    } else {
        /* The lease will expire and the sweeper will requeue the job. */
        char q[600];
        log_error("cannot record job outcome", "job=%s attempt=%d op=%s error=%s", ctx->claim.id,
                  ctx->claim.attempt, op ? op : "?", log_quote(ferr.message, q, sizeof q));
    }
}

static void run_job(struct worker *w, struct job_ctx *ctx)
{
    struct worker_pool *pool = w->pool;
    struct rf_err err;
    rf_err_clear(&err);
    metrics_add(METRIC_JOBS_CLAIMED, 1);
    int64_t started_ms = clock_mono_ms();
    log_info("job started", "job=%s type=%s attempt=%d of=%d worker=%d", ctx->claim.id,
             ctx->claim.type, ctx->claim.attempt, ctx->claim.max_attempts, w->index);
    const struct job_type *type = job_type_find(ctx->claim.type);
    enum rf_status rc;
    if (!type) {
        rc = rf_fail_reason(&err, RF_PERMANENT, "unknown_job_type",
                            "no handler for job type \"%s\" in this process", ctx->claim.type);
    } else if (ctx->claim.cancel_requested) {
        pthread_mutex_lock(&pool->lock);
        job_ctx_stop(ctx, &ctx->cancel);
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
    finish(w, ctx, rc, &err, started_ms);
}

/* ---- worker thread ---- */

/* A claim that committed after pool_stop began (the claim was in flight when it set
 * stopping): pool_stop neither waits for it nor keeps its lease alive, so it must not run
 * here. Release it at once, giving the attempt back; if that fails the lease expires and
 * a sweeper requeues it. Frees ctx. */
static void give_back(struct worker *w, struct job_ctx *ctx)
{
    struct rf_err err;
    if (store_job_release(w->st, &ctx->fence, &err) == RF_OK) {
        hub_notify(w->pool->cfg.hub, ctx->claim.id);
        log_info("job claimed while stopping: released to the queue", "job=%s worker=%d",
                 ctx->claim.id, w->index);
    } else {
        char q[300];
        log_warn("cannot release a job claimed while stopping", "job=%s error=%s",
                 ctx->claim.id, log_quote(err.message, q, sizeof q));
    }
    json_decref(ctx->claim.params);
    free(ctx);
}

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
            bool late = pool->stopping;
            if (!late) {
                w->ctx = ctx;
                w->heartbeat_due = mono + pool->cfg.heartbeat_ms;
                w->check_due = mono + pool->cfg.cancel_poll_ms;
                pool->busy++;
            }
            pthread_mutex_unlock(&pool->lock);
            if (late) {
                give_back(w, ctx);
                break;
            }

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
    pool->guard_started = pthread_create(&pool->guard, NULL, guard_main, pool) == 0;
    if (!pool->guard_started)
        log_error("cannot start the lease guard thread", NULL);
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
            job_ctx_stop(ctx, &ctx->cancel);
    }
    pthread_mutex_unlock(&pool->lock);
}

void pool_hurry(struct worker_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->hurry, true);
    /* Without pool->lock, so that this never blocks (the shutdown watchdog calls it): a
     * wake-up lost in the race costs wait_idle at most HURRY_LOOK_MS. */
    pthread_cond_broadcast(&pool->idle);
}

/* Wait (pool->lock held) until no job runs or deadline (monotonic ms) passes, or, once
 * pool_hurry was called, hurried_deadline if that is earlier. */
static void wait_idle(struct worker_pool *pool, int64_t deadline, int64_t hurried_deadline)
{
    while (pool->busy > 0) {
        int64_t until = atomic_load(&pool->hurry) ? min64(deadline, hurried_deadline) : deadline;
        int64_t left = until - clock_mono_ms();
        if (left <= 0)
            break;
        clock_cond_wait_ms(&pool->idle, &pool->lock, min64(left, HURRY_LOOK_MS));
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
    wait_idle(pool, clock_mono_ms() + grace_ms, 0);
    if (pool->busy > 0) {
        log_info(atomic_load(&pool->hurry) ? "stopping running jobs now"
                                           : "grace period over: stopping running jobs",
                 "jobs=%d", pool->busy);
        for (int i = 0; i < pool->n; i++)
            if (pool->workers[i].ctx && !atomic_load(&pool->workers[i].ctx->shutdown))
                job_ctx_stop(pool->workers[i].ctx, &pool->workers[i].ctx->shutdown);
        int64_t now = clock_mono_ms();
        wait_idle(pool, now + ABORT_WAIT_MS, now + HURRY_ABORT_WAIT_MS);
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

    if (pool->guard_started) {
        pthread_join(pool->guard, NULL);
        pool->guard_started = false;
    }
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
