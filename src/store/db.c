/*
 * db - backend selection and the conveniences built on the driver calls.
 * See db.h for the contract. No state of its own.
 */
#include "store/db.h"

#include <string.h>

#include "core/xalloc.h"
#include "core/banned.h"

static const struct db_driver *driver_of(const char *url)
{
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return &db_pg_driver;
    return &db_sqlite_driver;
}

enum rf_status db_open(const char *url, struct db **out, struct rf_err *err)
{
    return driver_of(url)->open(url, out, err);
}

const char *db_url_backend(const char *url)
{
    return driver_of(url)->name;
}

void db_close(struct db *db)
{
    if (db)
        db->drv->close(db);
}

enum rf_status db_exec_script(struct db *db, const char *sql, struct rf_err *err)
{
    return db->drv->exec_script(db, sql, err);
}

enum rf_status db_query(struct db *db, const char *sql, const struct db_val *args, int n,
                        struct db_stmt **out, struct rf_err *err)
{
    return db->drv->query(db, sql, args, n, out, err);
}

enum rf_status db_query_rows(struct db *db, const char *sql, const struct db_val *args, int n,
                             struct db_stmt **out, struct rf_err *err)
{
    if (!db->drv->query_rows)
        return db->drv->query(db, sql, args, n, out, err);
    return db->drv->query_rows(db, sql, args, n, out, err);
}

enum rf_status db_next(struct db_stmt *st, bool *row, struct rf_err *err)
{
    return st->db->drv->next(st, row, err);
}

void db_done(struct db_stmt *st)
{
    if (st)
        st->db->drv->done(st);
}

bool db_is_null(struct db_stmt *st, int col)
{
    return st->db->drv->is_null(st, col);
}

const char *db_text(struct db_stmt *st, int col)
{
    return st->db->drv->text(st, col);
}

int64_t db_int(struct db_stmt *st, int col)
{
    return st->db->drv->integer(st, col);
}

double db_double(struct db_stmt *st, int col)
{
    return st->db->drv->real(st, col);
}

char *db_strdup(struct db_stmt *st, int col)
{
    return xstrdup(db_text(st, col));
}

enum rf_status db_run(struct db *db, const char *sql, const struct db_val *args, int n,
                      int64_t *changes, struct rf_err *err)
{
    struct db_stmt *st = NULL;
    bool row;
    enum rf_status rc = db_query(db, sql, args, n, &st, err);
    if (rc)
        return rc;
    rc = db_next(st, &row, err);
    if (rc == RF_OK && changes)
        *changes = db->drv->changes(st);
    db_done(st);
    return rc;
}

enum rf_status db_row(struct db *db, const char *sql, const struct db_val *args, int n,
                      struct db_stmt **out, bool *found, struct rf_err *err)
{
    *out = NULL;
    *found = false;
    enum rf_status rc = db_query(db, sql, args, n, out, err);
    if (rc)
        return rc;
    rc = db_next(*out, found, err);
    if (rc) {
        db_done(*out);
        *out = NULL;
    }
    return rc;
}

enum rf_status db_scalar(struct db *db, const char *sql, const struct db_val *args, int n,
                         int64_t *out, bool *found, struct rf_err *err)
{
    struct db_stmt *st;
    bool row;
    enum rf_status rc = db_row(db, sql, args, n, &st, &row, err);
    if (rc)
        return rc;
    if (row)
        *out = db_int(st, 0);
    if (found)
        *found = row;
    db_done(st);
    return RF_OK;
}

enum rf_status db_begin(struct db *db, struct rf_err *err)
{
    db_read_end(db);
    if (db->depth > 0) {
        db->depth++;
        return RF_OK;
    }
    enum rf_status rc = db->drv->begin(db, err);
    if (rc == RF_OK) {
        db->depth = 1;
        db->aborted = false;
    }
    return rc;
}

enum rf_status db_commit(struct db *db, struct rf_err *err)
{
    if (db->depth > 1) {
        db->depth--;
        return RF_OK;
    }
    if (db->depth == 0)
        return rf_fail(err, RF_INTERNAL, "commit without a transaction");
    if (db->aborted) {
        db->drv->rollback(db);
        db->depth = 0;
        return rf_fail(err, RF_INTERNAL, "transaction was rolled back by an inner step");
    }
    enum rf_status rc = db->drv->commit(db, err);
    if (rc)
        db->drv->rollback(db);
    db->depth = 0;
    return rc;
}

enum rf_status db_end(struct db *db, enum rf_status rc, struct rf_err *err)
{
    if (rc == RF_OK)
        return db_commit(db, err);
    db_rollback(db);
    return rc;
}

void db_rollback(struct db *db)
{
    if (db->depth == 0)
        return;
    if (db->depth > 1) {
        db->depth--;
        db->aborted = true;
        return;
    }
    db->drv->rollback(db);
    db->depth = 0;
}

bool db_retryable(const struct rf_err *err)
{
    return err && err->code == RF_UNAVAILABLE &&
           (strcmp(err->reason, "deadlock") == 0 || strcmp(err->reason, "serialization_failure") == 0);
}

enum rf_status db_ping(struct db *db, struct rf_err *err)
{
    return db->drv->ping(db, err);
}

enum rf_status db_listen(struct db *db, const char *channel, struct rf_err *err)
{
    if (!db->drv->listen)
        return rf_fail(err, RF_UNSUPPORTED, "the %s backend has no notifications", db->drv->name);
    return db->drv->listen(db, channel, err);
}

int db_notify_fd(struct db *db)
{
    return db->drv->notify_fd ? db->drv->notify_fd(db) : -1;
}

enum rf_status db_notifications(struct db *db, db_notify_fn fn, void *ud, struct rf_err *err)
{
    return db->drv->notifications ? db->drv->notifications(db, fn, ud, err) : RF_OK;
}

enum rf_status db_read_begin(struct db *db, struct rf_err *err)
{
    if (db->reading || db->depth > 0 || !db->drv->read_begin)
        return RF_OK;
    enum rf_status rc = db->drv->read_begin(db, err);
    db->reading = rc == RF_OK;
    return rc;
}

void db_read_end(struct db *db)
{
    if (!db->reading)
        return;
    db->reading = false;
    db->drv->read_end(db);
}

enum rf_status db_data_version(struct db *db, uint64_t *out, struct rf_err *err)
{
    if (!db->drv->data_version)
        return rf_fail(err, RF_UNSUPPORTED, "%s cannot report a data version", db->drv->name);
    return db->drv->data_version(db, out, err);
}
