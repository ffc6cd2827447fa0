/*
 * store_job_events - a job's events (job_events): writing them for the transitions of
 * store_jobs.c and store_job_worker.c, reading them back in seq order, and the wake-ups
 * that tell the SSE hub (src/jobs/hub.h) when to read them again: LISTEN/NOTIFY on
 * PostgreSQL, PRAGMA data_version on SQLite.
 *
 * Invariants kept here:
 *   - An event is inserted in the transaction of the change it describes, with the seq
 *     that transaction reserved (the fence of a worker write, or the UPDATE of an API
 *     transition): seqs per job are 1, 2, 3 ... with no gap. insert_event only writes
 *     the seq it is given.
 *   - On PostgreSQL every event insert also sends NOTIFY refold_job_events with the job id
 *     (pg_notify, in the same transaction: delivered at commit, never for a rollback), the
 *     cross-node wake-up of the SSE hubs; a transaction writing several events may send
 *     it once (insert_event_quiet, then insert_event). job_events stays the truth: a
 *     notification only says "read this job's events again".
 *   - An event's data as read carries its row's created_at (RFC 3339 UTC, milliseconds),
 *     added on every read rather than stored in data: the live stream, a resumed one, the
 *     JSON list and another node's stream all give the same time, and events stored
 *     before the field existed carry it too.
 *
 * Threading: no state of its own; every call runs on the caller's connection (a struct
 * store is one thread's at a time, store.h). The listening connection is the hub
 * watcher's own.
 */
#include <stdlib.h>

#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

static const char *SQL_EVENT_INSERT =
    "INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)";
#define EVENTS_CHANNEL "refold_job_events"
static const char *SQL_EVENT_NOTIFY_PG = "SELECT pg_notify('" EVENTS_CHANNEL "', ?)";

static const char *SQL_EVENTS_AFTER =
    "SELECT seq, type, data, created_at FROM job_events WHERE job_id = ? AND seq > ? "
    "ORDER BY seq LIMIT ?";
static const char *SQL_EVENTS_LAST =
    "SELECT COALESCE(MAX(seq), 0) FROM job_events WHERE job_id = ?";
static const char *SQL_DATA_VERSION = "PRAGMA data_version";

/* ---- writing events ---- */

/* Tell the listening nodes (PostgreSQL) that job_id has new events, at commit. */
static enum rf_status notify_events(struct db *db, const char *job_id, struct rf_err *err)
{
    if (db->backend != DB_POSTGRES)
        return RF_OK;
    return db_run(db, SQL_EVENT_NOTIFY_PG, DB_ARGS(DB_T(job_id)), NULL, err);
}

/* Insert event seq of job_id, without the notification (the caller sends it once for
 * several events); data is stolen. */
enum rf_status insert_event_quiet(struct db *db, const char *job_id, int64_t seq, const char *type,
                                  json_t *data, int64_t now, struct rf_err *err)
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
enum rf_status insert_event(struct db *db, const char *job_id, int64_t seq, const char *type,
                            json_t *data, int64_t now, struct rf_err *err)
{
    enum rf_status rc = insert_event_quiet(db, job_id, seq, type, data, now, err);
    return rc ? rc : notify_events(db, job_id, err);
}

/* ---- reading events ---- */

/* data (an object's JSON text) with "created_at" set to the row's time; caller frees.
 * Data that is not an object (no writer stores one) is handed on unchanged. */
static char *with_time(const char *data, int64_t created_at)
{
    json_t *v = jx_from_text(data);
    char *text;
    if (json_is_object(v)) {
        json_object_set_new(v, "created_at", jx_time(created_at));
        text = jx_dump(v);
    } else {
        text = xstrdup(data ? data : "{}");
    }
    json_decref(v);
    return text;
}

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
        int64_t created_at = db_int(s, 3);
        char *data = with_time(db_text(s, 2), created_at);
        int stop = fn(ud, seq, db_text(s, 1), data, created_at);
        free(data);
        if (stop)
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

enum rf_status store_job_events_last(struct store *st, const char *job_id, int64_t *seq,
                                     struct rf_err *err)
{
    *seq = 0;
    return db_scalar(st->db, SQL_EVENTS_LAST, DB_ARGS(DB_T(job_id)), seq, NULL, err);
}

/* ---- wake-ups ---- */

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
