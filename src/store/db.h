/*
 * db - the store's private SQL layer: one small driver interface that the
 * SQLite and PostgreSQL backends implement, so every store_*.c query is
 * written once.
 *
 * SQL is portable text with `?` placeholders (the PostgreSQL driver rewrites
 * them to $n when it prepares). Arguments are passed as a typed array built
 * with DB_ARGS(DB_T(s), DB_I(n), ...), so no varargs type can go wrong.
 * Statements are prepared once per connection and cached by the address of
 * the SQL constant: pass named constants, never built strings.
 *
 * Threading: a struct db is one connection used by one thread at a time. A
 * query's struct db_stmt is valid until db_done(); only one statement per SQL
 * constant may be open at a time on a connection.
 *
 * Sessions and notifications (PostgreSQL): a connection that broke is reset by
 * the next call, which counts a new session in db->sessions; channels LISTENed
 * with db_listen are LISTENed again on every new session, but notifications
 * sent while the connection was down are lost, so a listener that sees
 * db->sessions change must re-read what it follows. SQLite has no
 * notifications (db_listen reports it unsupported) and always one session.
 *
 * Writes happen inside db_begin()/db_commit(). On SQLite db_begin takes a
 * process-wide write lock and then BEGIN IMMEDIATE, so threads of one process
 * queue on a mutex instead of spinning on SQLITE_BUSY; other processes are
 * waited for by busy_timeout.
 *
 * Nothing here leaves src/store/: callers outside see only store.h.
 */
#ifndef REFOLD_STORE_DB_H
#define REFOLD_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum db_backend { DB_SQLITE, DB_POSTGRES };

enum db_val_type { DBV_NULL, DBV_TEXT, DBV_INT, DBV_DOUBLE };

struct db_val {
    enum db_val_type type;
    const char *s; /* DBV_TEXT; NULL binds SQL NULL */
    int64_t i;
    double d;
};

#define DB_T(x) ((struct db_val){.type = DBV_TEXT, .s = (x)})
#define DB_I(x) ((struct db_val){.type = DBV_INT, .i = (int64_t)(x)})
#define DB_D(x) ((struct db_val){.type = DBV_DOUBLE, .d = (x)})
#define DB_NULL ((struct db_val){.type = DBV_NULL})
/* An integer, or NULL when set is false. */
#define DB_IN(x, set) ((set) ? DB_I(x) : DB_NULL)
#define DB_ARGS(...)                                                                               \
    (const struct db_val[]){__VA_ARGS__},                                                          \
        (int)(sizeof((const struct db_val[]){__VA_ARGS__}) / sizeof(struct db_val))
#define DB_NOARGS NULL, 0

struct db;

/* Drivers embed this header first in their statement type. */
struct db_stmt {
    struct db *db;
};

/* One notification: its payload, borrowed for the call. */
typedef void (*db_notify_fn)(void *ud, const char *payload);

struct db_driver {
    const char *name;
    enum rf_status (*open)(const char *url, struct db **out, struct rf_err *err);
    void (*close)(struct db *db);
    enum rf_status (*exec_script)(struct db *db, const char *sql, struct rf_err *err);
    enum rf_status (*query)(struct db *db, const char *sql, const struct db_val *args, int n,
                            struct db_stmt **out, struct rf_err *err);
    /* Optional (NULL: query, whose rows are already read one at a time): see
     * db_query_rows. */
    enum rf_status (*query_rows)(struct db *db, const char *sql, const struct db_val *args,
                                 int n, struct db_stmt **out, struct rf_err *err);
    enum rf_status (*next)(struct db_stmt *st, bool *row, struct rf_err *err);
    bool (*is_null)(struct db_stmt *st, int col);
    const char *(*text)(struct db_stmt *st, int col);
    int64_t (*integer)(struct db_stmt *st, int col);
    double (*real)(struct db_stmt *st, int col);
    int64_t (*changes)(struct db_stmt *st);
    void (*done)(struct db_stmt *st);
    enum rf_status (*begin)(struct db *db, struct rf_err *err);
    enum rf_status (*commit)(struct db *db, struct rf_err *err);
    void (*rollback)(struct db *db);
    enum rf_status (*ping)(struct db *db, struct rf_err *err);
    /* Optional (NULL on SQLite): LISTEN, the socket to poll, and the pending
     * notifications. */
    enum rf_status (*listen)(struct db *db, const char *channel, struct rf_err *err);
    int (*notify_fd)(struct db *db);
    enum rf_status (*notifications)(struct db *db, db_notify_fn fn, void *ud, struct rf_err *err);
    /* Optional (NULL: reads stay one statement each). */
    enum rf_status (*read_begin)(struct db *db, struct rf_err *err);
    void (*read_end)(struct db *db);
    /* Optional (NULL: RF_UNSUPPORTED). */
    enum rf_status (*data_version)(struct db *db, uint64_t *out, struct rf_err *err);
};

/* Every connection starts with this header (drivers embed it first). */
struct db {
    const struct db_driver *drv;
    enum db_backend backend;
    int depth;         /* nesting of db_begin; the driver sees only the outermost */
    bool aborted;      /* an inner level rolled back: the outermost commit must not */
    bool reading;      /* inside db_read_begin */
    uint64_t sessions; /* server sessions so far: 1 after open, +1 per reconnect */
};

extern const struct db_driver db_sqlite_driver;
extern const struct db_driver db_pg_driver;

/* Open a connection: postgres:// or postgresql:// URLs use PostgreSQL, anything else is a
 * SQLite path. Caller owns the connection; close with db_close. */
enum rf_status db_open(const char *url, struct db **out, struct rf_err *err);
/* The name of the driver db_open would use for url ("sqlite", "postgres"). */
const char *db_url_backend(const char *url);
void db_close(struct db *db);

/* Run a script of several statements without parameters (migrations). */
enum rf_status db_exec_script(struct db *db, const char *sql, struct rf_err *err);
/* Start a query; step through rows with db_next; always finish with db_done. */
enum rf_status db_query(struct db *db, const char *sql, const struct db_val *args, int n,
                        struct db_stmt **out, struct rf_err *err);
/* db_query for a read that may stop early: a page of large rows cut at a byte budget.
 * The rows come from the server one at a time (libpq's single-row mode; SQLite steps
 * anyway), so the rows after the last one read are never held in memory: with db_query,
 * PostgreSQL's whole result (every row up to the LIMIT) is. Nothing else may run on the
 * connection until db_done, which reads and drops what is left. */
enum rf_status db_query_rows(struct db *db, const char *sql, const struct db_val *args, int n,
                             struct db_stmt **out, struct rf_err *err);
enum rf_status db_next(struct db_stmt *st, bool *row, struct rf_err *err);
void db_done(struct db_stmt *st);
/* Column accessors for the current row. Text is borrowed until the next db_next/db_done;
 * NULL for SQL NULL. */
bool db_is_null(struct db_stmt *st, int col);
const char *db_text(struct db_stmt *st, int col);
int64_t db_int(struct db_stmt *st, int col);
double db_double(struct db_stmt *st, int col);
/* Duplicate of a text column (NULL stays NULL); caller frees. */
char *db_strdup(struct db_stmt *st, int col);

/* Run a statement that returns no rows; *changes (may be NULL) gets the affected rows. */
enum rf_status db_run(struct db *db, const char *sql, const struct db_val *args, int n,
                      int64_t *changes, struct rf_err *err);
/* Run a query expected to return at most one row; *found says whether it did. The
 * statement stays open on that row for the accessors: call db_done after reading. */
enum rf_status db_row(struct db *db, const char *sql, const struct db_val *args, int n,
                      struct db_stmt **out, bool *found, struct rf_err *err);
/* A single integer (first column of the first row); *found false when there is no row. */
enum rf_status db_scalar(struct db *db, const char *sql, const struct db_val *args, int n,
                         int64_t *out, bool *found, struct rf_err *err);

/* Write transactions. They nest: inner levels only count, the outermost commits, and a
 * rollback at any level makes the whole transaction roll back. db_rollback is safe to
 * call when no transaction is open. */
enum rf_status db_begin(struct db *db, struct rf_err *err);
enum rf_status db_commit(struct db *db, struct rf_err *err);
void db_rollback(struct db *db);
/* End the transaction db_begin opened: commit when rc is RF_OK, else roll back. Returns rc,
 * or the commit's failure. */
enum rf_status db_end(struct db *db, enum rf_status rc, struct rf_err *err);
/* Whether err is a transaction the database aborted for a concurrent one (PostgreSQL
 * deadlock or serialization failure, details.reason "deadlock" / "serialization_failure"):
 * rolled back, the same transaction may succeed when run again. */
bool db_retryable(const struct rf_err *err);
enum rf_status db_ping(struct db *db, struct rf_err *err);

/* LISTEN on channel, now and after every reconnect. RF_UNSUPPORTED on SQLite. */
enum rf_status db_listen(struct db *db, const char *channel, struct rf_err *err);
/* The descriptor that becomes readable when notifications (or a dropped connection) may be
 * waiting; -1 when there is none (SQLite, or disconnected). */
int db_notify_fd(struct db *db);
/* Hand fn every notification received so far, including those that arrived while other
 * queries ran. RF_UNAVAILABLE when the connection turned out to be lost (the next call on
 * db reconnects). Does nothing on SQLite. */
enum rf_status db_notifications(struct db *db, db_notify_fn fn, void *ud, struct rf_err *err);
/* A read scope: the reads up to db_read_end share one snapshot (one read transaction on
 * SQLite), instead of a transaction each. db_begin inside the scope ends it first, so a
 * write never runs in it. Scopes do not nest; db_read_end without one does nothing. */
enum rf_status db_read_begin(struct db *db, struct rf_err *err);
void db_read_end(struct db *db);
/* A number that differs between two calls on this connection whenever anything was
 * committed to the database in between, by any connection or process. RF_UNSUPPORTED when
 * the backend cannot tell. */
enum rf_status db_data_version(struct db *db, uint64_t *out, struct rf_err *err);

#endif
