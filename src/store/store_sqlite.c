/*
 * store_sqlite - the SQLite driver of the store's SQL layer (db.h).
 *
 * One sqlite3 connection per struct db, opened NOMUTEX because a connection
 * belongs to one thread. Connections run in WAL mode with synchronous=NORMAL
 * (a commit is durable once the WAL is checkpointed; an OS crash may lose the
 * last transactions, a process crash loses nothing), foreign keys on and a
 * busy_timeout for other processes.
 *
 * Statements are cached per connection in a small open-addressing table keyed
 * by the address of the SQL constant.
 *
 * Write lock: all writers of this process take write_lock before BEGIN
 * IMMEDIATE and drop it after COMMIT/ROLLBACK (guards: the right to hold a
 * SQLite write transaction in this process). Readers never take it.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "store/db.h"
#include "core/banned.h"

#define BUSY_TIMEOUT_MS 10000

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

struct lite_stmt {
    struct db_stmt base;
    sqlite3_stmt *s;
    const char *sql;
};

struct lite {
    struct db base;
    sqlite3 *h;
    struct lite_stmt **cache; /* open addressing by SQL pointer */
    size_t cap, count;
};

static enum rf_status fail(struct lite *l, struct rf_err *err, int rc, const char *what)
{
    int ext = sqlite3_extended_errcode(l->h);
    enum rf_status code = RF_INTERNAL;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        code = RF_CONFLICT;
    else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY || ext == SQLITE_CONSTRAINT_CHECK ||
             ext == SQLITE_CONSTRAINT_NOTNULL)
        code = RF_INVALID;
    else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        code = RF_UNAVAILABLE;
    return rf_fail(err, code, "database %s failed: %s", what, sqlite3_errmsg(l->h));
}

static enum rf_status lite_open(const char *url, struct db **out, struct rf_err *err)
{
    sqlite3 *h = NULL;
    const char *path = url;
    if (strncmp(path, "sqlite://", 9) == 0)
        path += 9;
    int rc = sqlite3_open_v2(path, &h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        rf_fail(err, RF_UNAVAILABLE, "cannot open database %s: %s", path,
                h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return RF_UNAVAILABLE;
    }
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    static const char *pragmas = "PRAGMA journal_mode=WAL;"
                                 "PRAGMA synchronous=NORMAL;"
                                 "PRAGMA foreign_keys=ON;"
                                 "PRAGMA temp_store=MEMORY;"
                                 "PRAGMA cache_size=-16000;";
    char *msg = NULL;
    if (sqlite3_exec(h, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        rf_fail(err, RF_UNAVAILABLE, "cannot configure database %s: %s", path,
                msg ? msg : "unknown error");
        sqlite3_free(msg);
        sqlite3_close(h);
        return RF_UNAVAILABLE;
    }
    struct lite *l = xcalloc(1, sizeof *l);
    l->base.drv = &db_sqlite_driver;
    l->base.backend = DB_SQLITE;
    l->base.sessions = 1;
    l->h = h;
    l->cap = 64;
    l->cache = xcalloc(l->cap, sizeof *l->cache);
    *out = &l->base;
    return RF_OK;
}

static void lite_close(struct db *db)
{
    struct lite *l = (struct lite *)db;
    if (l->base.depth > 0) {
        sqlite3_exec(l->h, "ROLLBACK", NULL, NULL, NULL);
        pthread_mutex_unlock(&write_lock);
    }
    for (size_t i = 0; i < l->cap; i++) {
        if (l->cache[i]) {
            sqlite3_finalize(l->cache[i]->s);
            free(l->cache[i]);
        }
    }
    free(l->cache);
    sqlite3_close(l->h);
    free(l);
}

static enum rf_status lite_exec_script(struct db *db, const char *sql, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    char *msg = NULL;
    int rc = sqlite3_exec(l->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        enum rf_status code = fail(l, err, rc, "script");
        sqlite3_free(msg);
        return code;
    }
    return RF_OK;
}

static size_t slot_of(struct lite *l, const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 7) & (l->cap - 1);
    while (l->cache[i] && l->cache[i]->sql != sql)
        i = (i + 1) & (l->cap - 1);
    return i;
}

static void grow(struct lite *l)
{
    struct lite_stmt **old = l->cache;
    size_t oldcap = l->cap;
    l->cap *= 2;
    l->cache = xcalloc(l->cap, sizeof *l->cache);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            l->cache[slot_of(l, old[i]->sql)] = old[i];
    free(old);
}

static enum rf_status lite_query(struct db *db, const char *sql, const struct db_val *args, int n,
                                 struct db_stmt **out, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    size_t i = slot_of(l, sql);
    struct lite_stmt *st = l->cache[i];
    if (!st) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v3(l->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
        if (rc != SQLITE_OK)
            return fail(l, err, rc, "prepare");
        st = xcalloc(1, sizeof *st);
        st->base.db = db;
        st->s = s;
        st->sql = sql;
        l->cache[i] = st;
        if (++l->count * 2 > l->cap)
            grow(l);
    } else {
        sqlite3_reset(st->s);
        sqlite3_clear_bindings(st->s);
    }
    for (int k = 0; k < n; k++) {
        int rc = SQLITE_OK;
        const struct db_val *v = &args[k];
        switch (v->type) {
        case DBV_NULL: rc = sqlite3_bind_null(st->s, k + 1); break;
        case DBV_TEXT:
            rc = v->s ? sqlite3_bind_text(st->s, k + 1, v->s, -1, SQLITE_STATIC)
                      : sqlite3_bind_null(st->s, k + 1);
            break;
        case DBV_INT: rc = sqlite3_bind_int64(st->s, k + 1, v->i); break;
        case DBV_DOUBLE: rc = sqlite3_bind_double(st->s, k + 1, v->d); break;
        }
        if (rc != SQLITE_OK)
            return fail(l, err, rc, "bind");
    }
    *out = &st->base;
    return RF_OK;
}

static enum rf_status lite_next(struct db_stmt *stmt, bool *row, struct rf_err *err)
{
    struct lite_stmt *st = (struct lite_stmt *)stmt;
    int rc = sqlite3_step(st->s);
    if (rc == SQLITE_ROW) {
        *row = true;
        return RF_OK;
    }
    *row = false;
    if (rc == SQLITE_DONE)
        return RF_OK;
    return fail((struct lite *)stmt->db, err, rc, "query");
}

static bool lite_is_null(struct db_stmt *stmt, int col)
{
    return sqlite3_column_type(((struct lite_stmt *)stmt)->s, col) == SQLITE_NULL;
}

static const char *lite_text(struct db_stmt *stmt, int col)
{
    return (const char *)sqlite3_column_text(((struct lite_stmt *)stmt)->s, col);
}

static int64_t lite_int(struct db_stmt *stmt, int col)
{
    return sqlite3_column_int64(((struct lite_stmt *)stmt)->s, col);
}

static double lite_real(struct db_stmt *stmt, int col)
{
    return sqlite3_column_double(((struct lite_stmt *)stmt)->s, col);
}

static int64_t lite_changes(struct db_stmt *stmt)
{
    return sqlite3_changes64(((struct lite *)stmt->db)->h);
}

static void lite_done(struct db_stmt *stmt)
{
    struct lite_stmt *st = (struct lite_stmt *)stmt;
    sqlite3_reset(st->s);
}

static enum rf_status lite_begin(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    pthread_mutex_lock(&write_lock);
    int rc = sqlite3_exec(l->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        enum rf_status code = fail(l, err, rc, "begin");
        pthread_mutex_unlock(&write_lock);
        return code;
    }
    return RF_OK;
}

static enum rf_status lite_commit(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    int rc = sqlite3_exec(l->h, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(l, err, rc, "commit"); /* db_commit rolls back, which unlocks */
    pthread_mutex_unlock(&write_lock);
    return RF_OK;
}

static void lite_rollback(struct db *db)
{
    struct lite *l = (struct lite *)db;
    if (!sqlite3_get_autocommit(l->h))
        sqlite3_exec(l->h, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&write_lock);
}

static const char *SQL_PING = "SELECT 1";

static enum rf_status lite_ping(struct db *db, struct rf_err *err)
{
    int64_t v;
    return db_scalar(db, SQL_PING, DB_NOARGS, &v, NULL, err);
}

const struct db_driver db_sqlite_driver = {
    .name = "sqlite",
    .open = lite_open,
    .close = lite_close,
    .exec_script = lite_exec_script,
    .query = lite_query,
    .next = lite_next,
    .is_null = lite_is_null,
    .text = lite_text,
    .integer = lite_int,
    .real = lite_real,
    .changes = lite_changes,
    .done = lite_done,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .ping = lite_ping,
};
