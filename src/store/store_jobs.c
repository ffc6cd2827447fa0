/*
 * store_jobs - the durable job queue as the API sees it: creating a job (with its
 * idempotency key), reading, listing and counting jobs, and the API's transitions,
 * cancel and retry. See store.h for the contract and docs/jobs.md for the lifecycle.
 * The worker's side of the queue (claim, fenced writes, sweeper) is store_job_worker.c,
 * job events and their wake-ups store_job_events.c, LLM call rows store_llm_calls.c.
 *
 * Invariants kept here:
 *   - Idempotency: the unique (workspace_id, idempotency_key) index decides races;
 *     INSERT ... ON CONFLICT DO NOTHING loses quietly and the loser reads the winner.
 *   - Cancel and retry decide on the status they read holding the job's row lock
 *     (SQL_JOB_STATUS_LOCK), because workers, the sweeper and other requests update the
 *     same row; the UPDATE that moves the job reserves the event's seq, and the event is
 *     inserted in the same transaction (insert_event, store_job_events.c).
 *
 * Threading: no state of its own; every call runs on the caller's connection (a struct
 * store is one thread's at a time, store.h). Concurrent writers meet in the database,
 * on the job row's lock.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "store/store_internal.h"
#include "core/banned.h"

const char *const JOB_STATUSES[JOB_NSTATUS + 1] = {"queued", "running",   "completed",
                                                   "failed", "cancelled", NULL};

#define JOB_COLS                                                                                   \
    "id, type, status, stage, progress, params, result, error_code, error_message, attempt, "      \
    "max_attempts, run_at, cancel_requested, created_at, started_at, finished_at"

static const char *SQL_JOB_INSERT =
    "INSERT INTO jobs (id, workspace_id, type, agent_id, status, progress, params, attempt, "
    "max_attempts, run_at, cancel_requested, idempotency_key, idempotency_fingerprint, "
    "created_at, event_seq) VALUES (?, ?, ?, ?, 'queued', 0, ?, 0, ?, ?, 0, ?, ?, ?, 0) "
    "ON CONFLICT (workspace_id, idempotency_key) DO NOTHING";
static const char *SQL_JOB_BY_KEY =
    "SELECT id, idempotency_fingerprint FROM jobs WHERE workspace_id = ? AND idempotency_key = ?";
static const char *SQL_JOB_GET = "SELECT " JOB_COLS " FROM jobs WHERE id = ? AND workspace_id = ?";
static const char *SQL_JOB_LIST_ALL =
    "SELECT " JOB_COLS " FROM jobs WHERE workspace_id = ? AND id < ? "
    "AND (CAST(? AS TEXT) IS NULL OR type = ?) ORDER BY id DESC LIMIT ?";
static const char *SQL_JOB_LIST_STATUS =
    "SELECT " JOB_COLS " FROM jobs WHERE workspace_id = ? AND status = ? AND id < ? "
    "AND (CAST(? AS TEXT) IS NULL OR type = ?) ORDER BY id DESC LIMIT ?";
static const char *SQL_JOB_LIST_AGENT =
    "SELECT " JOB_COLS " FROM jobs WHERE agent_id = ? AND workspace_id = ? AND id < ? "
    "AND (CAST(? AS TEXT) IS NULL OR status = ?) AND (CAST(? AS TEXT) IS NULL OR type = ?) "
    "ORDER BY id DESC LIMIT ?";
static const char *SQL_COUNTS = "SELECT status, COUNT(*) FROM jobs GROUP BY status";
/* Each count reads the partial index of its status alone (jobs_due, jobs_leased): the
 * IS NOT NULL terms, always true (run_at is NOT NULL, and the claim, the only way to
 * running, sets a lease), make SQLite pick them over a scan of jobs_workspace_status. */
static const char *SQL_COUNTS_OPEN =
    "SELECT 'queued', (SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND run_at IS NOT "
    "NULL) UNION ALL SELECT 'running', (SELECT COUNT(*) FROM jobs WHERE status = 'running' "
    "AND lease_expires_at IS NOT NULL)";

static const char *SQL_CANCEL_QUEUED =
    "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, "
    "event_seq = event_seq + 1 WHERE id = ? AND workspace_id = ? AND status = 'queued' "
    "RETURNING event_seq";
static const char *SQL_CANCEL_RUNNING =
    "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND workspace_id = ? "
    "AND status = 'running'";
/* Reads the status holding the job row's lock (a no-op update, portable to both backends):
 * on PostgreSQL a cancel or retry then decides on the status no one else can change before
 * it commits (workers, the sweeper and other requests update the same row). */
static const char *SQL_JOB_STATUS_LOCK =
    "UPDATE jobs SET status = status WHERE id = ? AND workspace_id = ? RETURNING status";
static const char *SQL_RETRY =
    "UPDATE jobs SET status = 'queued', attempt = 0, run = run + 1, run_at = ?, "
    "cancel_requested = 0, "
    "stage = NULL, progress = 0, result = NULL, error_code = NULL, error_message = NULL, "
    "started_at = NULL, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    "event_seq = event_seq + 1 WHERE id = ? AND workspace_id = ? "
    "AND status IN ('failed', 'cancelled') RETURNING event_seq";

static json_t *job_from_row(struct db_stmt *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", col_str(s, 0));
    json_object_set_new(j, "type", col_str(s, 1));
    json_object_set_new(j, "status", col_str(s, 2));
    json_object_set_new(j, "stage", col_str(s, 3));
    json_object_set_new(j, "progress", json_integer(db_int(s, 4)));
    json_object_set_new(j, "params", col_json(s, 5));
    json_object_set_new(j, "result", col_json(s, 6));
    if (db_is_null(s, 7))
        json_object_set_new(j, "error", json_null());
    else
        json_object_set_new(
            j, "error", json_pack("{s:o, s:o}", "code", col_str(s, 7), "message", col_str(s, 8)));
    json_object_set_new(j, "attempt", json_integer(db_int(s, 9)));
    json_object_set_new(j, "max_attempts", json_integer(db_int(s, 10)));
    json_object_set_new(j, "run_at", col_time(s, 11));
    json_object_set_new(j, "cancel_requested", json_boolean(db_int(s, 12) != 0));
    json_object_set_new(j, "created_at", col_time(s, 13));
    json_object_set_new(j, "started_at", col_time(s, 14));
    json_object_set_new(j, "finished_at", col_time(s, 15));
    return j;
}

static enum rf_status job_not_found(struct rf_err *err, const char *id)
{
    return rf_fail(err, RF_NOT_FOUND, "job %s not found", id);
}

/* End the transaction (db_end); when it does not commit, drop the row read for the answer. */
static enum rf_status end_with_row(struct db *db, enum rf_status rc, json_t **row,
                                   struct rf_err *err)
{
    rc = db_end(db, rc, err);
    if (rc) {
        json_decref(*row);
        *row = NULL;
    }
    return rc;
}

/* ---- creation and reads ---- */

enum rf_status store_job_get(struct store *st, const char *ws, const char *id, json_t **out,
                             struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    *out = NULL;
    enum rf_status rc = db_row(st->db, SQL_JOB_GET, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = job_from_row(s);
    db_done(s);
    return found ? RF_OK : job_not_found(err, id);
}

enum rf_status store_job_by_key(struct store *st, const char *ws, const char *key,
                                const char *fingerprint, json_t **out, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false, same = false;
    char id[ID_MAX] = "";
    *out = NULL;
    enum rf_status rc = db_row(st->db, SQL_JOB_BY_KEY, DB_ARGS(DB_T(ws), DB_T(key)), &s, &found,
                               err);
    if (rc)
        return rc;
    if (found) {
        snprintf(id, sizeof id, "%s", db_text(s, 0));
        const char *fp = db_text(s, 1);
        same = fp && fingerprint && strcmp(fp, fingerprint) == 0;
    }
    db_done(s);
    if (!found)
        return RF_OK;
    if (!same)
        return rf_fail_reason(err, RF_CONFLICT, "idempotency_key_reused",
                              "Idempotency-Key \"%s\" was already used with a different request",
                              key);
    return store_job_get(st, ws, id, out, err);
}

enum rf_status store_job_create(struct store *st, const char *ws, const struct job_new *in,
                                json_t **out, bool *created, struct rf_err *err)
{
    struct db *db = st->db;
    char id[ID_MAX];
    int64_t changes = 0;
    id_new("job_", id);
    *created = false;
    *out = NULL;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_JOB_INSERT,
                DB_ARGS(DB_T(id), DB_T(ws), DB_T(in->type), DB_T(in->agent_id), DB_T(in->params),
                        DB_I(in->max_attempts), DB_I(in->run_at), DB_T(in->idempotency_key),
                        DB_T(in->idempotency_key ? in->fingerprint : NULL), DB_I(clock_now_ms())),
                &changes, err);
    /* The answer is the row as inserted, read before the commit: once committed, a worker
     * may claim the job at once, and a read after would show it running. */
    if (rc == RF_OK && changes > 0)
        rc = store_job_get(st, ws, id, out, err);
    rc = end_with_row(db, rc, out, err);
    if (rc)
        return rc;
    if (changes == 0) { /* the key is taken */
        rc = store_job_by_key(st, ws, in->idempotency_key, in->fingerprint, out, err);
        if (rc == RF_OK && !*out) /* the winner of the race rolled back: try again */
            rc = rf_fail(err, RF_UNAVAILABLE, "job creation raced; try again");
        return rc;
    }
    *created = true;
    return RF_OK;
}

enum rf_status store_job_list(struct store *st, const char *ws, const struct job_filter *f,
                              const struct store_page *page, struct store_list *out,
                              struct rf_err *err)
{
    char bound[ID_MAX];
    struct db_stmt *s = NULL;
    out->data = NULL;
    out->next_cursor = NULL;
    enum rf_status rc = page_id_cursor(page, "job_", bound, err);
    if (rc)
        return rc;
    if (f->agent_id)
        rc = db_query(st->db, SQL_JOB_LIST_AGENT,
                      DB_ARGS(DB_T(f->agent_id), DB_T(ws), DB_T(bound), DB_T(f->status),
                              DB_T(f->status), DB_T(f->type), DB_T(f->type), DB_I(page->limit + 1)),
                      &s, err);
    else if (f->status)
        rc = db_query(st->db, SQL_JOB_LIST_STATUS,
                      DB_ARGS(DB_T(ws), DB_T(f->status), DB_T(bound), DB_T(f->type), DB_T(f->type),
                              DB_I(page->limit + 1)),
                      &s, err);
    else
        rc = db_query(
            st->db, SQL_JOB_LIST_ALL,
            DB_ARGS(DB_T(ws), DB_T(bound), DB_T(f->type), DB_T(f->type), DB_I(page->limit + 1)), &s,
            err);
    if (rc)
        return rc;
    return page_collect(s, job_from_row, page->limit, "id", out, err);
}

static enum rf_status counts_by(struct store *st, const char *sql, int64_t counts[JOB_NSTATUS],
                                struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool row;
    memset(counts, 0, sizeof(int64_t) * JOB_NSTATUS);
    enum rf_status rc = db_query(st->db, sql, DB_NOARGS, &s, err);
    if (rc)
        return rc;
    while ((rc = db_next(s, &row, err)) == RF_OK && row) {
        const char *status = db_text(s, 0);
        for (int i = 0; i < JOB_NSTATUS; i++)
            if (status && strcmp(status, JOB_STATUSES[i]) == 0)
                counts[i] = db_int(s, 1);
    }
    db_done(s);
    return rc;
}

enum rf_status store_job_counts(struct store *st, int64_t counts[JOB_NSTATUS], struct rf_err *err)
{
    return counts_by(st, SQL_COUNTS, counts, err);
}

const char *job_counts_open_sql(void)
{
    return SQL_COUNTS_OPEN;
}

enum rf_status store_job_counts_open(struct store *st, int64_t counts[JOB_NSTATUS],
                                     struct rf_err *err)
{
    return counts_by(st, SQL_COUNTS_OPEN, counts, err);
}

/* ---- API transitions ---- */

/* Status of a job in ws into status, locking the job's row until the transaction ends
 * (RF_NOT_FOUND when absent). */
static enum rf_status job_status_locked(struct db *db, const char *ws, const char *id,
                                        char *status, size_t n, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    enum rf_status rc =
        db_row(db, SQL_JOB_STATUS_LOCK, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        snprintf(status, n, "%s", db_text(s, 0));
    db_done(s);
    return found ? RF_OK : job_not_found(err, id);
}

/* Begin a transaction holding the job's row lock, with its status read (job_status_locked);
 * on failure nothing is left open. */
static enum rf_status begin_job(struct db *db, const char *ws, const char *id, char *status,
                                size_t n, struct rf_err *err)
{
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = job_status_locked(db, ws, id, status, n, err);
    return rc ? db_end(db, rc, err) : RF_OK;
}

/* Move the job with sql (an UPDATE taking now, id, ws and RETURNING event_seq) and write
 * the event that says so; data is stolen. */
static enum rf_status move_job(struct db *db, const char *sql, const char *ws, const char *id,
                               int64_t now, const char *type, json_t *data, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    int64_t seq = 0;
    enum rf_status rc = db_row(db, sql, DB_ARGS(DB_I(now), DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc == RF_OK && found)
        seq = db_int(s, 0);
    db_done(s);
    if (rc == RF_OK && !found) /* begin_job read a status this update accepts, under lock */
        rc = rf_fail(err, RF_INTERNAL, "job %s changed under its lock", id);
    if (rc) {
        json_decref(data);
        return rc;
    }
    return insert_event(db, id, seq, type, data, now, err);
}

/* Read the job for the answer while the transaction still holds its row (the row as this
 * call wrote or found it: after the commit a worker may claim a requeued job at once), then
 * commit or roll back. */
static enum rf_status end_job(struct store *st, const char *ws, const char *id, json_t **out,
                              enum rf_status rc, struct rf_err *err)
{
    if (rc == RF_OK)
        rc = store_job_get(st, ws, id, out, err);
    return end_with_row(st->db, rc, out, err);
}

enum rf_status store_job_cancel(struct store *st, const char *ws, const char *id, json_t **out,
                                bool *running, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t now = clock_now_ms();
    char status[16] = "";
    *running = false;
    *out = NULL;
    enum rf_status rc = begin_job(db, ws, id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "queued") == 0) {
        rc = move_job(db, SQL_CANCEL_QUEUED, ws, id, now, "cancelled",
                      json_pack("{s:s, s:s}", "job_id", id, "status", "cancelled"), err);
    } else if (strcmp(status, "running") == 0) {
        rc = db_run(db, SQL_CANCEL_RUNNING, DB_ARGS(DB_T(id), DB_T(ws)), NULL, err);
        *running = rc == RF_OK;
    } else if (strcmp(status, "cancelled") != 0) {
        rc = rf_fail_reason(err, RF_CONFLICT, "invalid_transition",
                            "job %s is %s and can no longer be cancelled", id, status);
    }
    return end_job(st, ws, id, out, rc, err);
}

enum rf_status store_job_retry(struct store *st, const char *ws, const char *id, json_t **out,
                               struct rf_err *err)
{
    struct db *db = st->db;
    char status[16] = "";
    *out = NULL;
    enum rf_status rc = begin_job(db, ws, id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)
        rc = move_job(db, SQL_RETRY, ws, id, clock_now_ms(), "progress",
                      json_pack("{s:s, s:s, s:n, s:i, s:b}", "job_id", id, "status", "queued",
                                "stage", "progress", 0, "retried", 1),
                      err);
    else
        rc = rf_fail_reason(err, RF_CONFLICT, "invalid_transition",
                            "job %s is %s: only failed or cancelled jobs can be retried", id,
                            status);
    return end_job(st, ws, id, out, rc, err);
}
