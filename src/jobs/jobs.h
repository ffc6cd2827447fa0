/*
 * jobs - durable background jobs (SPEC §5): what a job type's handler sees, the type
 * registry, enqueueing and the retry backoff. The worker pool that runs handlers is
 * pool.h; the pub/sub behind the SSE stream is hub.h; the lifecycle is docs/jobs.md.
 *
 * Writing a job type (one table entry in registry.c and one file):
 *
 *     static enum rf_status run(struct job_ctx *ctx, struct rf_err *err)
 *     {
 *         rc = job_progress(ctx, "fetching_agent", 0, NULL, err);   (stored + `progress` event)
 *         if (rc) return rc;                                           (RF_LEASE_LOST: stop)
 *         ... long work; poll job_cancelled(ctx) (a relaxed atomic load) every ~200 ms and
 *         return RF_CANCELLED when it is true; let a blocking LLM call abort through
 *         job_cancelled() from CURLOPT_XFERINFOFUNCTION and/or job_on_abort() ...
 *         job_record_llm_call(ctx, &call, NULL, err);                  (the transcript)
 *         job_succeed(ctx, result, create_rows, ud);                   (see below)
 *         return RF_OK;
 *     }
 *
 * What the handler returns decides what happens:
 *   RF_OK         completed: the result, the `completed` event and whatever the commit
 *                 callback given to job_succeed() writes commit in ONE transaction;
 *   RF_TRANSIENT  retried after the backoff (job_retry_after() may ask for longer: a
 *                 provider's retry-after) with a `retry` event, or failed when the attempts
 *                 are exhausted;
 *   RF_CANCELLED  the job stopped because job_cancelled() said so: cancelled (or, when the
 *                 process is shutting down, released to the queue without using an attempt);
 *   RF_LEASE_LOST a ctx write found the job taken away: nothing more is written;
 *   anything else failed permanently. The job's error is {code: err->reason when set, else
 *   the status name; message: err->message}.
 *
 * Threading: a handler runs on one worker thread with that thread's own store connection
 * (job_store). job_cancelled() and job_on_abort() are the only calls other threads are
 * involved in; everything else on ctx must be called from the handler's thread.
 */
#ifndef REFOLD_JOBS_H
#define REFOLD_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "store/store.h"

struct job_ctx;
struct worker_pool;

typedef enum rf_status (*job_handler)(struct job_ctx *ctx, struct rf_err *err);

struct job_type {
    const char *name;
    job_handler handler;
    bool test_only; /* only with job_types_enable_test(true) (REFOLD_TEST_JOBS=1) */
};

/* ---- registry (registry.c) ---- */

/* Make the test-only types (test_sleep) visible. Call before any thread starts. */
void job_types_enable_test(bool on);
bool job_types_test_enabled(void);
/* The registered type called name, or NULL. */
const struct job_type *job_type_find(const char *name);
/* The names of the types job_type_find finds, in table order, into out (at most max - 1 of
 * them, then a NULL: the shape req_query_enum takes); returns how many. Borrowed, static. */
size_t job_type_names(const char **out, size_t max);

/* ---- the handler's context (job_ctx.c) ---- */

/* Borrowed for the handler's run. */
const char *job_id(const struct job_ctx *ctx);
const char *job_workspace(const struct job_ctx *ctx);
const char *job_type_of(const struct job_ctx *ctx);
/* This run's attempt (1-based) and the job's budget. */
int job_attempt(const struct job_ctx *ctx);
int job_max_attempts(const struct job_ctx *ctx);
/* The job's params object. */
const json_t *job_params(const struct job_ctx *ctx);
/* The worker thread's connection, for reads. Writes made with it outside job_succeed's
 * callback are NOT fenced and survive a lost lease: use the job_* writers instead. */
struct store *job_store(struct job_ctx *ctx);

/* Store stage and progress (0..100) on the job and emit a `progress` event; extra (may be
 * NULL, borrowed) adds stage-specific fields to the event. Fenced. */
enum rf_status job_progress(struct job_ctx *ctx, const char *stage, int progress,
                            const json_t *extra, struct rf_err *err);
/* Emit a `log` event; level is debug, info, warn or error. Fenced. */
enum rf_status job_log(struct job_ctx *ctx, const char *level, const char *message,
                       struct rf_err *err);
/* Record one LLM call of this attempt (llm_calls); id (may be NULL, ID_MAX bytes) gets its
 * id. Fenced: a stale worker's calls are not recorded. */
enum rf_status job_record_llm_call(struct job_ctx *ctx, const struct llm_call_new *call, char *id,
                                   struct rf_err *err);

/* True once the job must stop: a cancel was requested, the lease was lost, or the process
 * is shutting down past its grace period. A relaxed atomic load: poll it freely. Cancels
 * made through this process's API are seen at once, others within REFOLD_CANCEL_POLL_MS. */
bool job_cancelled(const struct job_ctx *ctx);
/* The same shaped for C callbacks: returns 1 when the job must stop (ud is the ctx), e.g.
 * from a CURLOPT_XFERINFOFUNCTION that returns it to abort the transfer. */
int job_abort_requested(void *ctx);
/* Call fn(ud) once, from another thread, when job_cancelled() becomes true (for instance
 * curl_multi_wakeup, so a blocking wait ends at once instead of at the next progress
 * callback). fn must be quick and must not call back into ctx. NULL fn removes the hook;
 * after that returns fn is not running and will not run. The hook is also dropped when the
 * handler returns. If the job is already stopped, fn runs before this returns. */
void job_on_abort(struct job_ctx *ctx, void (*fn)(void *ud), void *ud);
/* Sleep up to ms, returning early (false) when job_cancelled() becomes true. */
bool job_sleep(struct job_ctx *ctx, int64_t ms);

/* For RF_TRANSIENT returns: retry no sooner than ms from now when that is longer than the
 * backoff (a provider's retry-after). */
void job_retry_after(struct job_ctx *ctx, int64_t ms);
/* Set the outcome before returning RF_OK: result (ownership taken; NULL means {}) and an
 * optional fn(st, result, ud, err) run INSIDE the completing transaction, after the fence
 * matched: rows it writes with st (e.g. the candidate version) commit together with the
 * result and the `completed` event, or not at all. fn may add fields to result. A failure
 * of fn is handled like the handler returning that status. */
void job_succeed(struct job_ctx *ctx, json_t *result, store_txn_fn fn, void *ud);
/* job_succeed for a ud that outlives the handler: free_ud(ud) runs once the run is over,
 * whether the completion committed or not. */
void job_succeed_with(struct job_ctx *ctx, json_t *result, store_txn_fn fn, void *ud,
                      void (*free_ud)(void *ud));

/* ---- enqueueing ---- */

struct job_spec {
    const char *type;            /* a registered type */
    const json_t *params;        /* object, borrowed; normalise it (apply defaults) first:
                                    it is what an Idempotency-Key is compared on */
    const char *agent_id;        /* may be NULL; kept for GET /v1/jobs?agent_id= */
    int max_attempts;            /* 0: JOB_DEFAULT_MAX_ATTEMPTS */
    int64_t delay_ms;            /* run_at = now + delay_ms */
    const char *idempotency_key; /* may be NULL; the request's Idempotency-Key header */
};

/* Persist a queued job in workspace ws and wake this process's workers (pool may be
 * NULL). With an idempotency key used before in ws: the same (type, params) returns that
 * job with *created false (answer 200 instead of 202); different ones fail RF_CONFLICT
 * (details.reason "idempotency_key_reused"). *job: the Job object, caller owns. */
enum rf_status jobs_enqueue(struct store *st, struct worker_pool *pool, const char *ws,
                            const struct job_spec *spec, json_t **job, bool *created,
                            struct rf_err *err);
/* The job an earlier request with spec's idempotency key made for the same (type, params):
 * *job set; RF_CONFLICT when the key was used for something else; *job NULL when the key is
 * new or there is none. A handler asks before the checks that depend on what may have
 * changed since (an agent archived), so that a repeat gets the job it created. */
enum rf_status jobs_find_repeat(struct store *st, const char *ws, const struct job_spec *spec,
                                json_t **job, struct rf_err *err);

/* ---- retry policy (backoff.c) ---- */

#define JOB_BACKOFF_BASE_MS 5000
#define JOB_BACKOFF_CAP_MS (5 * 60 * 1000)
#define JOB_RETRY_AFTER_MAX_MS (60 * 60 * 1000)

/* Delay before retrying after failed attempt `attempt` (1-based): base_ms * 2^(attempt-1)
 * scaled by 1 +/- 10 % (unit in [0, 1) picks where), capped at JOB_BACKOFF_CAP_MS; a
 * retry_after_ms that is longer wins (itself capped at JOB_RETRY_AFTER_MAX_MS). Pure. */
int64_t job_backoff_ms(int attempt, int64_t base_ms, int64_t retry_after_ms, double unit);

#endif
