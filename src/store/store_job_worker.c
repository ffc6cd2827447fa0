/*
 * store_job_worker - the worker's side of the durable job queue: claiming a due job, the
 * writes a worker makes under its claim (heartbeat, cancel check, progress, log,
 * complete, fail, reschedule, cancelled, release) and the sweeper that takes back the
 * claims whose lease expired. See store.h for the contract and docs/jobs.md for the
 * lifecycle; the API's side of the queue (create, read, cancel, retry) is store_jobs.c.
 *
 * Invariants kept here:
 *   - A claim is atomic: one UPDATE ... WHERE id = (SELECT id ... ORDER BY run_at LIMIT 1)
 *     RETURNING. SQLite runs it inside BEGIN IMMEDIATE; on PostgreSQL the subquery is
 *     SELECT ... FOR UPDATE SKIP LOCKED on the jobs table alone (no join), and the
 *     statement runs on its own, one round trip: the row it picked is locked until the
 *     statement commits, so two workers never take the same job, and a locked row is
 *     skipped, not waited for. The claim and the event notifications (store_job_events.c)
 *     are the only places that know the backend.
 *   - Every worker write starts with fence_reserve(): an UPDATE of the job row matching
 *     (id, attempt, lease_owner, status 'running') that also increments event_seq. No
 *     row means the claim is gone (RF_LEASE_LOST) and the transaction is rolled back, so
 *     a stale worker writes nothing. On PostgreSQL that UPDATE also takes the row lock,
 *     so the rest of the transaction sees a row nobody else can change. The same fence
 *     (FENCE_WHERE, lease_lost) guards the LLM call rows (store_llm_calls.c).
 *   - The sweeper fences on the claim it saw expire (FENCE_WHERE and the lease still
 *     expired), so a heartbeat that got there first, or another sweeper, wins; it ends
 *     the claim with the same transitions a worker uses (set_cancelled, set_failed,
 *     set_queued), which is why it lives here and not with the API's transitions.
 *   - Each transition inserts its event in its own transaction, with the seq the fence
 *     reserved (insert_event, store_job_events.c).
 *
 * Threading: no state of its own; every call runs on the caller's connection (a struct
 * store is one thread's at a time, store.h): each worker thread, and the pool's monitor
 * that heartbeats and sweeps, has its own. Workers, monitors and nodes meet in the
 * database, on the job row's lock and the fence.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

#define CLAIM_SET                                                                                  \
    "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = ?, "                 \
    "lease_expires_at = ?, started_at = COALESCE(started_at, ?) "
#define CLAIM_RETURNING                                                                            \
    " RETURNING id, workspace_id, type, params, attempt, max_attempts, cancel_requested"
static const char *SQL_CLAIM_LITE =
    CLAIM_SET "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ? "
              "ORDER BY run_at LIMIT 1) AND status = 'queued'" CLAIM_RETURNING;
static const char *SQL_CLAIM_PG = CLAIM_SET
    "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ? "
    "ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'queued'" CLAIM_RETURNING;
static const char *SQL_NEXT_DUE = "SELECT MIN(run_at) FROM jobs WHERE status = 'queued'";

static const char *SQL_HEARTBEAT =
    "UPDATE jobs SET lease_expires_at = ? WHERE " FENCE_WHERE " RETURNING cancel_requested";
static const char *SQL_CHECK = "SELECT cancel_requested FROM jobs WHERE " FENCE_WHERE;
static const char *SQL_FENCE = "UPDATE jobs SET event_seq = event_seq + ? WHERE " FENCE_WHERE
                               " RETURNING event_seq, cancel_requested";
static const char *SQL_SET_PROGRESS = "UPDATE jobs SET stage = ?, progress = ? WHERE id = ?";
static const char *SQL_SET_COMPLETED =
    "UPDATE jobs SET status = 'completed', stage = 'completed', progress = 100, result = ?, "
    "error_code = NULL, error_message = NULL, finished_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = ?";
static const char *SQL_SET_FAILED =
    "UPDATE jobs SET status = 'failed', error_code = ?, error_message = ?, finished_at = ?, "
    "lease_owner = NULL, lease_expires_at = NULL WHERE id = ?";
static const char *SQL_SET_CANCELLED =
    "UPDATE jobs SET status = 'cancelled', finished_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = ?";
static const char *SQL_SET_QUEUED =
    "UPDATE jobs SET status = 'queued', run_at = ?, error_code = ?, error_message = ?, "
    "lease_owner = NULL, lease_expires_at = NULL WHERE id = ?";
static const char *SQL_SET_RELEASED =
    "UPDATE jobs SET status = 'queued', attempt = attempt - 1, run_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = ?";

static const char *SQL_SWEEP_FIND =
    "SELECT id, attempt, lease_owner, max_attempts FROM jobs WHERE status = 'running' "
    "AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?";
static const char *SQL_SWEEP_FENCE =
    "UPDATE jobs SET event_seq = event_seq + 1 WHERE " FENCE_WHERE
    " AND lease_expires_at < ? RETURNING event_seq, cancel_requested";

/* ---- claim ---- */

static void claimed_from_row(struct db_stmt *s, struct job_claimed *out)
{
    snprintf(out->id, sizeof out->id, "%s", db_text(s, 0));
    snprintf(out->workspace_id, sizeof out->workspace_id, "%s", db_text(s, 1));
    snprintf(out->type, sizeof out->type, "%s", db_text(s, 2));
    out->params = jx_from_text(db_text(s, 3));
    out->attempt = (int)db_int(s, 4);
    out->max_attempts = (int)db_int(s, 5);
    out->cancel_requested = db_int(s, 6) != 0;
}

enum rf_status store_job_claim(struct store *st, const char *owner, int64_t now, int64_t lease_ms,
                               struct job_claimed *out, bool *claimed, struct rf_err *err)
{
    struct db *db = st->db;
    struct db_stmt *s = NULL;
    bool found = false, pg = db->backend == DB_POSTGRES;
    *claimed = false;
    memset(out, 0, sizeof *out);
    enum rf_status rc = pg ? RF_OK : db_begin(db, err); /* PostgreSQL: one statement */
    if (rc)
        return rc;
    rc = db_row(db, pg ? SQL_CLAIM_PG : SQL_CLAIM_LITE,
                DB_ARGS(DB_T(owner), DB_I(now + lease_ms), DB_I(now), DB_I(now)), &s, &found, err);
    if (rc == RF_OK && found) {
        claimed_from_row(s, out);
        *claimed = true;
    }
    db_done(s);
    if (!pg)
        rc = db_end(db, rc, err);
    if (rc) {
        json_decref(out->params);
        out->params = NULL;
        *claimed = false;
    }
    return rc;
}

enum rf_status store_job_next_due(struct store *st, int64_t *run_at, bool *found,
                                  struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool row = false;
    *found = false;
    enum rf_status rc = db_row(st->db, SQL_NEXT_DUE, DB_NOARGS, &s, &row, err);
    if (rc)
        return rc;
    if (row && !db_is_null(s, 0)) {
        *run_at = db_int(s, 0);
        *found = true;
    }
    db_done(s);
    return RF_OK;
}

/* ---- fenced worker writes ---- */

enum rf_status lease_lost(struct rf_err *err, const struct job_fence *f)
{
    return rf_fail(err, RF_LEASE_LOST, "job %s attempt %d is no longer held by %s", f->job_id,
                   f->attempt, f->owner);
}

enum rf_status store_job_heartbeat(struct store *st, const struct job_fence *f, int64_t lease_until,
                                   bool *cancel_requested, struct rf_err *err)
{
    struct db *db = st->db;
    struct db_stmt *s = NULL;
    bool found = false;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_row(db, SQL_HEARTBEAT,
                DB_ARGS(DB_I(lease_until), DB_T(f->job_id), DB_I(f->attempt), DB_T(f->owner)), &s,
                &found, err);
    if (rc == RF_OK && found && cancel_requested)
        *cancel_requested = db_int(s, 0) != 0;
    db_done(s);
    if (rc == RF_OK && !found)
        rc = lease_lost(err, f);
    return db_end(db, rc, err);
}

enum rf_status store_job_check(struct store *st, const struct job_fence *f, bool *cancel_requested,
                               struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    enum rf_status rc =
        db_row(st->db, SQL_CHECK, DB_ARGS(DB_T(f->job_id), DB_I(f->attempt), DB_T(f->owner)), &s,
               &found, err);
    if (rc)
        return rc;
    if (found)
        *cancel_requested = db_int(s, 0) != 0;
    db_done(s);
    return found ? RF_OK : lease_lost(err, f);
}

/* Start a fenced write: inside the caller's transaction, reserve the next event seq (or
 * the next two: *seq is the second) on the claim's row. RF_LEASE_LOST when the claim no
 * longer holds. */
static enum rf_status fence_reserve_n(struct db *db, const struct job_fence *f, int n, int64_t *seq,
                                      bool *cancel_requested, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    assert(n == 1 || n == 2);
    enum rf_status rc =
        db_row(db, SQL_FENCE, DB_ARGS(DB_I(n), DB_T(f->job_id), DB_I(f->attempt), DB_T(f->owner)),
               &s, &found, err);
    if (rc)
        return rc;
    if (found) {
        *seq = db_int(s, 0);
        if (cancel_requested)
            *cancel_requested = db_int(s, 1) != 0;
    }
    db_done(s);
    return found ? RF_OK : lease_lost(err, f);
}

static enum rf_status fence_reserve(struct db *db, const struct job_fence *f, int64_t *seq,
                                    bool *cancel_requested, struct rf_err *err)
{
    return fence_reserve_n(db, f, 1, seq, cancel_requested, err);
}

static json_t *error_object(const char *code, const char *message)
{
    return json_pack("{s:s, s:s}", "code", code ? code : "internal", "message",
                     message ? message : "");
}

enum rf_status store_job_progress(struct store *st, const struct job_fence *f, const char *stage,
                                  int progress, const json_t *extra, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, NULL, err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_SET_PROGRESS, DB_ARGS(DB_T(stage), DB_I(progress), DB_T(f->job_id)),
                    NULL, err);
    if (rc == RF_OK) {
        json_t *data = json_object();
        json_object_set_new(data, "job_id", json_string(f->job_id));
        json_object_set_new(data, "status", json_string("running"));
        json_object_set_new(data, "stage", jx_str_or_null(stage));
        json_object_set_new(data, "progress", json_integer(progress));
        if (json_is_object(extra))
            json_object_update_missing(data, (json_t *)extra);
        rc = insert_event(db, f->job_id, n, "progress", data, clock_now_ms(), err);
    }
    return db_end(db, rc, err);
}

enum rf_status store_job_log(struct store *st, const struct job_fence *f, const char *level,
                             const char *message, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, NULL, err);
    if (rc == RF_OK)
        rc = insert_event(
            db, f->job_id, n, "log",
            json_pack("{s:s, s:s, s:s}", "job_id", f->job_id, "level", level, "message", message),
            clock_now_ms(), err);
    return db_end(db, rc, err);
}

enum rf_status store_job_complete(struct store *st, const struct job_fence *f, json_t *result,
                                  store_txn_fn fn, void *ud, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0, now = clock_now_ms();
    char *text = NULL;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    /* The last stage, `completed` at 100, is a progress event like every other stage;
     * then the terminal event. Both seqs are reserved while the fence still holds. */
    rc = fence_reserve_n(db, f, 2, &n, NULL, err);
    int64_t stage_seq = n - 1;
    if (rc == RF_OK && fn)
        rc = fn(st, result, ud, err);
    if (rc == RF_OK) {
        text = jx_dump(result);
        rc = db_run(db, SQL_SET_COMPLETED, DB_ARGS(DB_T(text), DB_I(now), DB_T(f->job_id)), NULL,
                    err);
    }
    if (rc == RF_OK)
        rc = insert_event_quiet(db, f->job_id, stage_seq, "progress",
                                json_pack("{s:s, s:s, s:s, s:i}", "job_id", f->job_id, "status",
                                          "completed", "stage", "completed", "progress", 100),
                                now, err);
    if (rc == RF_OK)
        rc = insert_event(db, f->job_id, n, "completed",
                          json_pack("{s:s, s:s, s:O}", "job_id", f->job_id, "status", "completed",
                                    "result", result),
                          now, err);
    free(text);
    return db_end(db, rc, err);
}

/* The terminal `cancelled` transition, inside a transaction whose seq n is reserved. */
static enum rf_status set_cancelled(struct db *db, const char *job_id, int64_t n, int64_t now,
                                    struct rf_err *err)
{
    enum rf_status rc = db_run(db, SQL_SET_CANCELLED, DB_ARGS(DB_I(now), DB_T(job_id)), NULL, err);
    if (rc == RF_OK)
        rc = insert_event(db, job_id, n, "cancelled",
                          json_pack("{s:s, s:s}", "job_id", job_id, "status", "cancelled"), now,
                          err);
    return rc;
}

static enum rf_status set_failed(struct db *db, const char *job_id, int64_t n, const char *code,
                                 const char *message, int64_t now, struct rf_err *err)
{
    enum rf_status rc = db_run(
        db, SQL_SET_FAILED, DB_ARGS(DB_T(code), DB_T(message), DB_I(now), DB_T(job_id)), NULL, err);
    if (rc == RF_OK)
        rc = insert_event(db, job_id, n, "failed",
                          json_pack("{s:s, s:s, s:o}", "job_id", job_id, "status", "failed",
                                    "error", error_object(code, message)),
                          now, err);
    return rc;
}

static enum rf_status set_queued(struct db *db, const char *job_id, int attempt, int64_t n,
                                 int64_t run_at, const char *code, const char *message, int64_t now,
                                 struct rf_err *err)
{
    enum rf_status rc =
        db_run(db, SQL_SET_QUEUED, DB_ARGS(DB_I(run_at), DB_T(code), DB_T(message), DB_T(job_id)),
               NULL, err);
    if (rc == RF_OK)
        rc =
            insert_event(db, job_id, n, "retry",
                         json_pack("{s:s, s:i, s:o, s:o}", "job_id", job_id, "attempt", attempt,
                                   "run_at", jx_time(run_at), "error", error_object(code, message)),
                         now, err);
    return rc;
}

/* End f's claim in one transaction: cancelled when a cancel was requested, else failed
 * (run_at < 0) or queued again for run_at; *status (may be NULL) says which. */
static enum rf_status end_claim(struct store *st, const struct job_fence *f, int64_t run_at,
                                const char *code, const char *message, const char **status,
                                struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0, now = clock_now_ms();
    bool cancel = false;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, &cancel, err);
    if (rc == RF_OK && cancel)
        rc = set_cancelled(db, f->job_id, n, now, err);
    else if (rc == RF_OK && run_at < 0)
        rc = set_failed(db, f->job_id, n, code, message, now, err);
    else if (rc == RF_OK)
        rc = set_queued(db, f->job_id, f->attempt, n, run_at, code, message, now, err);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && status)
        *status = cancel ? "cancelled" : run_at < 0 ? "failed" : "queued";
    return rc;
}

enum rf_status store_job_fail(struct store *st, const struct job_fence *f, const char *code,
                              const char *message, const char **status, struct rf_err *err)
{
    return end_claim(st, f, -1, code, message, status, err);
}

enum rf_status store_job_reschedule(struct store *st, const struct job_fence *f, int64_t run_at,
                                    const char *code, const char *message, const char **status,
                                    struct rf_err *err)
{
    return end_claim(st, f, run_at, code, message, status, err);
}

enum rf_status store_job_cancelled(struct store *st, const struct job_fence *f, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, NULL, err);
    if (rc == RF_OK)
        rc = set_cancelled(db, f->job_id, n, clock_now_ms(), err);
    return db_end(db, rc, err);
}

enum rf_status store_job_release(struct store *st, const struct job_fence *f, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0, now = clock_now_ms();
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, NULL, err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_SET_RELEASED, DB_ARGS(DB_I(now), DB_T(f->job_id)), NULL, err);
    if (rc == RF_OK)
        rc = insert_event(db, f->job_id, n, "log",
                          json_pack("{s:s, s:s, s:s}", "job_id", f->job_id, "level", "warn",
                                    "message",
                                    "worker shutting down: job released to the queue; "
                                    "this attempt does not count"),
                          now, err);
    return db_end(db, rc, err);
}

/* ---- sweeper ---- */

struct expired {
    char id[ID_MAX];
    char owner[JOB_OWNER_MAX];
    int attempt, max_attempts;
};

enum rf_status store_job_sweep(struct store *st, int64_t now, struct job_swept *out, int max,
                               int *n, struct rf_err *err)
{
    struct db *db = st->db;
    struct db_stmt *s = NULL;
    struct expired *ex = xcalloc((size_t)(max > 0 ? max : 1), sizeof *ex);
    int found = 0;
    bool row;
    *n = 0;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        goto out;
    rc = db_query(db, SQL_SWEEP_FIND, DB_ARGS(DB_I(now), DB_I(max)), &s, err);
    if (rc)
        goto out;
    while (found < max && (rc = db_next(s, &row, err)) == RF_OK && row) {
        snprintf(ex[found].id, sizeof ex[found].id, "%s", db_text(s, 0));
        ex[found].attempt = (int)db_int(s, 1);
        snprintf(ex[found].owner, sizeof ex[found].owner, "%s", db_text(s, 2));
        ex[found].max_attempts = (int)db_int(s, 3);
        found++;
    }
    db_done(s);
    s = NULL;
    for (int i = 0; rc == RF_OK && i < found; i++) {
        struct db_stmt *f = NULL;
        bool held = false, cancel = false;
        int64_t seq = 0;
        rc = db_row(db, SQL_SWEEP_FENCE,
                    DB_ARGS(DB_T(ex[i].id), DB_I(ex[i].attempt), DB_T(ex[i].owner), DB_I(now)), &f,
                    &held, err);
        if (rc == RF_OK && held) {
            seq = db_int(f, 0);
            cancel = db_int(f, 1) != 0;
        }
        db_done(f);
        if (rc || !held) /* heartbeated or handled by another sweeper meanwhile */
            continue;
        const char *status;
        if (cancel) {
            status = "cancelled";
            rc = set_cancelled(db, ex[i].id, seq, now, err);
        } else if (ex[i].attempt >= ex[i].max_attempts) {
            status = "failed";
            rc = set_failed(db, ex[i].id, seq, "lease_expired",
                            "the worker running the last attempt stopped heartbeating", now, err);
        } else {
            status = "queued";
            rc = set_queued(db, ex[i].id, ex[i].attempt, seq, now, "lease_expired",
                            "the worker running this attempt stopped heartbeating", now, err);
        }
        if (rc == RF_OK) {
            snprintf(out[*n].id, sizeof out[*n].id, "%s", ex[i].id);
            out[*n].status = status;
            (*n)++;
        }
    }
out:
    free(ex);
    rc = db_end(db, rc, err);
    if (rc)
        *n = 0;
    return rc;
}
