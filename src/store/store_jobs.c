/*
 * store_jobs - the durable job queue: jobs, their events and their LLM calls.
 * See store.h for the contract and docs/jobs.md for the lifecycle.
 *
 * Invariants kept here:
 *   - A claim is atomic: one UPDATE ... WHERE id = (SELECT id ... ORDER BY run_at LIMIT 1)
 *     RETURNING. SQLite runs it inside BEGIN IMMEDIATE; on PostgreSQL the subquery is
 *     SELECT ... FOR UPDATE SKIP LOCKED on the jobs table alone (no join), and the
 *     statement runs on its own, one round trip: the row it picked is locked until the
 *     statement commits, so two workers never take the same job, and a locked row is
 *     skipped, not waited for. The claim and the notifications below are the only places
 *     that know the backend.
 *   - Every worker write starts with fence_reserve(): an UPDATE of the job row matching
 *     (id, attempt, lease_owner, status 'running') that also increments event_seq. No
 *     row means the claim is gone (RF_LEASE_LOST) and the transaction is rolled back, so
 *     a stale worker writes nothing. On PostgreSQL that UPDATE also takes the row lock,
 *     so the rest of the transaction sees a row nobody else can change.
 *   - An event is inserted in the transaction of the change it describes, with the seq
 *     that transaction reserved: seqs per job are 1, 2, 3 ... with no gap.
 *   - On PostgreSQL every event insert also sends NOTIFY refold_job_events with the job id
 *     (pg_notify, in the same transaction: delivered at commit, never for a rollback), the
 *     cross-node wake-up of the SSE hubs. job_events stays the truth: a notification only
 *     says "read this job's events again".
 *   - Idempotency: the unique (workspace_id, idempotency_key) index decides races;
 *     INSERT ... ON CONFLICT DO NOTHING loses quietly and the loser reads the winner.
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

const char *const JOB_STATUSES[JOB_NSTATUS + 1] = {"queued", "running",   "completed",
                                                   "failed", "cancelled", NULL};

#define JOB_COLS                                                                                   \
    "id, type, status, stage, progress, params, result, error_code, error_message, attempt, "      \
    "max_attempts, run_at, cancel_requested, created_at, started_at, finished_at"

#define FENCE_WHERE "id = ? AND attempt = ? AND lease_owner = ? AND status = 'running'"

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
static const char *SQL_EVENT_INSERT =
    "INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)";
#define EVENTS_CHANNEL "refold_job_events"
static const char *SQL_EVENT_NOTIFY_PG = "SELECT pg_notify('" EVENTS_CHANNEL "', ?)";

static const char *SQL_SWEEP_FIND =
    "SELECT id, attempt, lease_owner, max_attempts FROM jobs WHERE status = 'running' "
    "AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?";
static const char *SQL_SWEEP_FENCE =
    "UPDATE jobs SET event_seq = event_seq + 1 WHERE " FENCE_WHERE
    " AND lease_expires_at < ? RETURNING event_seq, cancel_requested";

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
    "UPDATE jobs SET status = 'queued', attempt = 0, run_at = ?, cancel_requested = 0, "
    "stage = NULL, progress = 0, result = NULL, error_code = NULL, error_message = NULL, "
    "started_at = NULL, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, "
    "event_seq = event_seq + 1 WHERE id = ? AND workspace_id = ? "
    "AND status IN ('failed', 'cancelled') RETURNING event_seq";

static const char *SQL_EVENTS_AFTER =
    "SELECT seq, type, data, created_at FROM job_events WHERE job_id = ? AND seq > ? "
    "ORDER BY seq LIMIT ?";
static const char *SQL_COUNTS = "SELECT status, COUNT(*) FROM jobs GROUP BY status";
static const char *SQL_DATA_VERSION = "PRAGMA data_version";

static const char *SQL_LLM_INSERT =
    "INSERT INTO llm_calls (id, job_id, attempt, step, provider, model, request, response_text, "
    "stop_reason, http_status, provider_request_id, input_tokens, output_tokens, latency_ms, "
    "error, created_at) SELECT ?, id, attempt, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    "FROM jobs WHERE " FENCE_WHERE;
static const char *SQL_LLM_LIST =
    "SELECT c.id, c.job_id, c.attempt, c.step, c.provider, c.model, c.request, "
    "c.response_text, c.stop_reason, c.http_status, c.provider_request_id, c.input_tokens, "
    "c.output_tokens, c.latency_ms, c.error, c.created_at FROM llm_calls c "
    "JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ? AND j.workspace_id = ? AND c.id > ? "
    "ORDER BY c.id LIMIT ?";

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

/* The job already holding (ws, key): the same one when fingerprints match, else 409. */
static enum rf_status existing_by_key(struct store *st, const char *ws, const struct job_new *in,
                                      json_t **out, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool found = false;
    char id[ID_MAX] = "";
    bool same = false;
    enum rf_status rc = db_row(st->db, SQL_JOB_BY_KEY, DB_ARGS(DB_T(ws), DB_T(in->idempotency_key)),
                               &s, &found, err);
    if (rc)
        return rc;
    if (found) {
        snprintf(id, sizeof id, "%s", db_text(s, 0));
        const char *fp = db_text(s, 1);
        same = fp && in->fingerprint && strcmp(fp, in->fingerprint) == 0;
    }
    db_done(s);
    if (!found) /* the winner of the race rolled back: let the caller try again */
        return rf_fail(err, RF_UNAVAILABLE, "job creation raced; try again");
    if (!same)
        return rf_fail_reason(err, RF_CONFLICT, "idempotency_key_reused",
                              "Idempotency-Key \"%s\" was already used with a different request",
                              in->idempotency_key);
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
    rc = db_end(db, rc, err);
    if (rc)
        return rc;
    if (changes == 0) /* the key is taken */
        return existing_by_key(st, ws, in, out, err);
    *created = true;
    return store_job_get(st, ws, id, out, err);
}

enum rf_status store_job_list(struct store *st, const char *ws, const struct job_filter *f,
                              const struct store_page *page, struct store_list *out,
                              struct rf_err *err)
{
    const char *bound;
    struct db_stmt *s = NULL;
    out->data = NULL;
    out->next_cursor = NULL;
    enum rf_status rc = page_id_cursor(page, &bound, err);
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

static enum rf_status lease_lost(struct rf_err *err, const struct job_fence *f)
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

/* Tell the listening nodes (PostgreSQL) that job_id has new events, at commit. */
static enum rf_status notify_events(struct db *db, const char *job_id, struct rf_err *err)
{
    if (db->backend != DB_POSTGRES)
        return RF_OK;
    return db_run(db, SQL_EVENT_NOTIFY_PG, DB_ARGS(DB_T(job_id)), NULL, err);
}

/* Insert event seq of job_id, without the notification (the caller sends it once for
 * several events); data is stolen. */
static enum rf_status insert_event_quiet(struct db *db, const char *job_id, int64_t seq,
                                         const char *type, json_t *data, int64_t now,
                                         struct rf_err *err)
{
    char *text = jx_dump(data);
    json_decref(data);
    enum rf_status rc =
        db_run(db, SQL_EVENT_INSERT,
               DB_ARGS(DB_T(job_id), DB_I(seq), DB_T(type), DB_T(text), DB_I(now)), NULL, err);
    free(text);
    return rc;
}

/* Insert event seq of job_id and notify; data is stolen. */
static enum rf_status insert_event(struct db *db, const char *job_id, int64_t seq, const char *type,
                                   json_t *data, int64_t now, struct rf_err *err)
{
    enum rf_status rc = insert_event_quiet(db, job_id, seq, type, data, now, err);
    return rc ? rc : notify_events(db, job_id, err);
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

enum rf_status store_job_fail(struct store *st, const struct job_fence *f, const char *code,
                              const char *message, const char **status, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t n = 0, now = clock_now_ms();
    bool cancel = false;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = fence_reserve(db, f, &n, &cancel, err);
    if (rc == RF_OK)
        rc = cancel ? set_cancelled(db, f->job_id, n, now, err)
                    : set_failed(db, f->job_id, n, code, message, now, err);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && status)
        *status = cancel ? "cancelled" : "failed";
    return rc;
}

enum rf_status store_job_reschedule(struct store *st, const struct job_fence *f, int64_t run_at,
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
    if (rc == RF_OK)
        rc = cancel ? set_cancelled(db, f->job_id, n, now, err)
                    : set_queued(db, f->job_id, f->attempt, n, run_at, code, message, now, err);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && status)
        *status = cancel ? "cancelled" : "queued";
    return rc;
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

/* Commit or roll back, then read the job for the answer. */
static enum rf_status end_job(struct store *st, const char *ws, const char *id, json_t **out,
                              enum rf_status rc, struct rf_err *err)
{
    rc = db_end(st->db, rc, err);
    return rc ? rc : store_job_get(st, ws, id, out, err);
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

/* ---- events ---- */

enum rf_status store_job_events_each(struct store *st, const char *job_id, int64_t after, int limit,
                                     store_event_fn fn, void *ud, int64_t *last, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool row;
    int64_t seq = after;
    enum rf_status rc = db_query(st->db, SQL_EVENTS_AFTER,
                                 DB_ARGS(DB_T(job_id), DB_I(after), DB_I(limit)), &s, err);
    if (rc)
        return rc;
    while ((rc = db_next(s, &row, err)) == RF_OK && row) {
        seq = db_int(s, 0);
        if (fn(ud, seq, db_text(s, 1), db_text(s, 2), db_int(s, 3)))
            break;
    }
    db_done(s);
    if (last)
        *last = seq;
    return rc;
}

static int collect_event(void *ud, int64_t seq, const char *type, const char *data,
                         int64_t created_at)
{
    json_array_append_new(ud,
                          json_pack("{s:I, s:s, s:o, s:o}", "seq", (json_int_t)seq, "type", type,
                                    "data", jx_from_text(data), "created_at", jx_time(created_at)));
    return 0;
}

enum rf_status store_job_events(struct store *st, const char *job_id, int64_t after, int limit,
                                json_t **out, struct rf_err *err)
{
    *out = json_array();
    enum rf_status rc =
        store_job_events_each(st, job_id, after, limit, collect_event, *out, NULL, err);
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

enum rf_status store_job_counts(struct store *st, int64_t counts[JOB_NSTATUS], struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool row;
    memset(counts, 0, sizeof(int64_t) * JOB_NSTATUS);
    enum rf_status rc = db_query(st->db, SQL_COUNTS, DB_NOARGS, &s, err);
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

enum rf_status store_changes_poll(struct store *st, int64_t *token, bool *changed,
                                  struct rf_err *err)
{
    *changed = true;
    if (st->db->backend != DB_SQLITE)
        return RF_OK;
    int64_t v = 0;
    enum rf_status rc = db_scalar(st->db, SQL_DATA_VERSION, DB_NOARGS, &v, NULL, err);
    if (rc)
        return rc;
    *changed = v != *token;
    *token = v;
    return RF_OK;
}

enum rf_status store_job_events_listen(struct store *st, struct rf_err *err)
{
    return db_listen(st->db, EVENTS_CHANNEL, err);
}

int store_notify_fd(struct store *st)
{
    return db_notify_fd(st->db);
}

struct notified {
    store_job_id_fn fn;
    void *ud;
};

static void on_notification(void *ud, const char *payload)
{
    struct notified *n = ud;
    if (payload && *payload)
        n->fn(n->ud, payload);
}

enum rf_status store_job_events_notified(struct store *st, store_job_id_fn fn, void *ud,
                                         struct rf_err *err)
{
    struct notified n = {fn, ud};
    return db_notifications(st->db, on_notification, &n, err);
}

uint64_t store_sessions(const struct store *st)
{
    return st->db->sessions;
}

/* ---- LLM calls ---- */

enum rf_status store_llm_call_insert(struct store *st, const struct job_fence *f,
                                     const struct llm_call_new *in, char *id_out,
                                     struct rf_err *err)
{
    struct db *db = st->db;
    char id[ID_MAX];
    int64_t changes = 0;
    id_new("llm_", id);
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_LLM_INSERT,
                DB_ARGS(DB_T(id), DB_T(in->step), DB_T(in->provider), DB_T(in->model),
                        DB_T(in->request ? in->request : "{}"), DB_T(in->response_text),
                        DB_T(in->stop_reason), DB_IN(in->http_status, in->http_status != 0),
                        DB_T(in->provider_request_id), DB_IN(in->input_tokens, in->has_usage),
                        DB_IN(in->output_tokens, in->has_usage), DB_I(in->latency_ms),
                        DB_T(in->error), DB_I(clock_now_ms()), DB_T(f->job_id), DB_I(f->attempt),
                        DB_T(f->owner)),
                &changes, err);
    if (rc == RF_OK && changes == 0)
        rc = lease_lost(err, f);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && id_out)
        snprintf(id_out, ID_MAX, "%s", id);
    return rc;
}

static json_t *int_or_null(struct db_stmt *s, int col)
{
    return db_is_null(s, col) ? json_null() : json_integer(db_int(s, col));
}

static json_t *llm_call_from_row(struct db_stmt *s)
{
    json_t *c = json_object();
    json_object_set_new(c, "id", col_str(s, 0));
    json_object_set_new(c, "job_id", col_str(s, 1));
    json_object_set_new(c, "attempt", json_integer(db_int(s, 2)));
    json_object_set_new(c, "step", col_str(s, 3));
    json_object_set_new(c, "provider", col_str(s, 4));
    json_object_set_new(c, "model", col_str(s, 5));
    json_object_set_new(c, "request", col_json(s, 6));
    json_object_set_new(c, "response_text", col_str(s, 7));
    json_object_set_new(c, "stop_reason", col_str(s, 8));
    json_object_set_new(c, "http_status", int_or_null(s, 9));
    json_object_set_new(c, "provider_request_id", col_str(s, 10));
    json_object_set_new(c, "input_tokens", int_or_null(s, 11));
    json_object_set_new(c, "output_tokens", int_or_null(s, 12));
    json_object_set_new(c, "latency_ms", json_integer(db_int(s, 13)));
    json_object_set_new(c, "error", col_str(s, 14));
    json_object_set_new(c, "created_at", col_time(s, 15));
    return c;
}

enum rf_status store_llm_call_list(struct store *st, const char *ws, const char *job_id,
                                   const struct store_page *page, struct store_list *out,
                                   struct rf_err *err)
{
    const char *bound = "";
    struct db_stmt *s = NULL;
    json_t *job = NULL;
    out->data = NULL;
    out->next_cursor = NULL;
    enum rf_status rc = store_job_get(st, ws, job_id, &job, err);
    json_decref(job);
    if (rc)
        return rc;
    if (page->cursor) {
        rc = page_id_cursor(page, &bound, err);
        if (rc)
            return rc;
    }
    rc = db_query(st->db, SQL_LLM_LIST,
                  DB_ARGS(DB_T(job_id), DB_T(ws), DB_T(bound), DB_I(page->limit + 1)), &s, err);
    if (rc)
        return rc;
    return page_collect(s, llm_call_from_row, page->limit, "id", out, err);
}
