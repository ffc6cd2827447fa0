/*
 * store_pg - the PostgreSQL driver of the store's SQL layer (db.h), over libpq.
 *
 * The same portable SQL as SQLite: `?` placeholders are rewritten to $1..$n
 * when a statement is first used on a connection, then prepared server-side
 * under a generated name. Parameters travel as text; results come back as
 * text and are converted by the accessors.
 *
 * Connection loss. A call that finds the connection broken reports
 * RF_UNAVAILABLE; the next call outside a transaction resets it (PQreset),
 * forgets the server-side prepared statements, sets the session up again
 * (settings, LISTENs) and counts a new session in db->sessions, so callers
 * recover by retrying. A connection lost inside a transaction is never reset
 * under it: every later call of that transaction reports RF_UNAVAILABLE until
 * the caller rolls back. Before the first statement outside a transaction the
 * driver looks (poll(2), no round trip) whether the server has already closed
 * the connection - what a server restart does to idle sessions - and reconnects
 * first, so a restart costs the callers nothing once the server is back.
 * Connection settings the URL leaves out get defaults that bound how long a
 * dead server can hold a caller (connect_timeout 5 s, TCP keepalives); the
 * URL's own values win.
 *
 * Notifications: db_listen remembers its channels and LISTENs again on every
 * new session; libpq queues notifications that arrive during other queries,
 * and pg_notifications hands them all over.
 *
 * Threading: one PGconn per struct db, used by one thread at a time.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/db.h"
#include "core/banned.h"

#define MAX_PARAMS 64
#define MAX_CHANNELS 4

struct pg_stmt {
    struct db_stmt base;
    const char *sql; /* key: the caller's constant */
    char name[16];
    char *text;      /* with $n placeholders */
    bool prepared;   /* on the current server connection */
    PGresult *res;
    int row, rows;
    bool pending; /* db_query_rows: libpq has more results (rows) of it to return */
    char scratch[MAX_PARAMS][32]; /* text of integer and double parameters */
};

struct pg {
    struct db base;
    PGconn *conn;
    bool ready; /* the current session is set up (settings, LISTENs) */
    struct pg_stmt **cache;
    size_t cap, count;
    unsigned next_name;
    char *channels[MAX_CHANNELS]; /* LISTENed on every session */
    int nchannels;
};

/* The first line of libpq's current error text. */
static const char *conn_error(PGconn *conn, char *out, size_t n)
{
    snprintf(out, n, "%s", PQerrorMessage(conn));
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static enum rf_status result_fail(struct pg *p, PGresult *res, struct rf_err *err,
                                  const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    enum rf_status code = RF_INTERNAL;
    if (PQstatus(p->conn) != CONNECTION_OK)
        code = RF_UNAVAILABLE;
    else if (state && strcmp(state, "23505") == 0)
        code = RF_CONFLICT;
    else if (state && (strcmp(state, "23503") == 0 || strcmp(state, "23514") == 0 ||
                       strcmp(state, "23502") == 0))
        code = RF_INVALID;
    else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                       strncmp(state, "08", 2) == 0 ||
                       strncmp(state, "57P0", 4) == 0))
        code = RF_UNAVAILABLE; /* serialization, deadlock, connection, shutdown/startup */
    else if (state && (strncmp(state, "53", 2) == 0 || strcmp(state, "25006") == 0))
        code = RF_UNAVAILABLE; /* insufficient resources (disk full, out of memory, …);
                                * a read-only transaction (a standby, read-only default) */
    /* db_retryable: the transaction lost to a concurrent one and may be run again. */
    const char *reason = !state                           ? ""
                         : strcmp(state, "40P01") == 0 ? "deadlock"
                         : strcmp(state, "40001") == 0 ? "serialization_failure"
                         : strcmp(state, "53100") == 0 ? "storage_full"
                         : strcmp(state, "25006") == 0 ? "read_only"
                                                       : "";
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(p->conn);
    char clean[200];
    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : PQerrorMessage(p->conn));
    clean[strcspn(clean, "\n")] = '\0';
    return rf_fail_reason(err, code, reason, "database %s failed: %s", what, clean);
}

/* Server notices and the FATAL a server sends before it closes an idle session (a
 * restart): into the log instead of libpq's bare stderr lines. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char text[240], q[300];
    snprintf(text, sizeof text, "%s", message);
    text[strcspn(text, "\n")] = '\0';
    log_warn("database notice", "message=%s", log_quote(text, q, sizeof q));
}

static void forget_prepared(struct pg *p)
{
    for (size_t i = 0; i < p->cap; i++)
        if (p->cache[i])
            p->cache[i]->prepared = false;
}

static enum rf_status simple(struct pg *p, const char *sql, struct rf_err *err)
{
    PGresult *res = PQexec(p->conn, sql);
    enum rf_status rc = RF_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = result_fail(p, res, err, sql);
    PQclear(res);
    return rc;
}

static enum rf_status listen_one(struct pg *p, const char *channel, struct rf_err *err)
{
    char *ident = PQescapeIdentifier(p->conn, channel, strlen(channel));
    if (!ident)
        return rf_fail(err, RF_UNAVAILABLE, "database LISTEN failed: %s", PQerrorMessage(p->conn));
    char *sql = xasprintf("LISTEN %s", ident);
    PQfreemem(ident);
    enum rf_status rc = simple(p, sql, err);
    free(sql);
    return rc;
}

/* Settings and LISTENs of a new session; counts it. */
static enum rf_status session_setup(struct pg *p, struct rf_err *err)
{
    enum rf_status rc = simple(p, "SET client_min_messages = warning", err);
    for (int i = 0; rc == RF_OK && i < p->nchannels; i++)
        rc = listen_one(p, p->channels[i], err);
    if (rc)
        return rc;
    p->ready = true;
    p->base.sessions++;
    return RF_OK;
}

/* Outside a transaction, with nothing in flight: has the server closed the session
 * meanwhile (readable socket: its FATAL, then EOF)? Reading the EOF makes the status bad.
 * One read may stop after the FATAL message, hence the loop; a few rounds at most, since
 * a listening connection may keep receiving notifications. */
static void notice_drop(struct pg *p)
{
    for (int round = 0; round < 4; round++) {
        int fd = PQsocket(p->conn);
        if (fd < 0 || PQstatus(p->conn) != CONNECTION_OK)
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0 || !PQconsumeInput(p->conn))
            return; /* nothing waiting; or the connection is gone (CONNECTION_BAD) */
    }
}

/* Bring a broken connection back (outside transactions only); forget statements prepared
 * on the old session and set the new one up. */
static enum rf_status ensure_connected(struct pg *p, struct rf_err *err)
{
    if (p->base.depth > 0) {
        if (PQstatus(p->conn) != CONNECTION_OK)
            return rf_fail(err, RF_UNAVAILABLE, "database connection lost in a transaction");
        return RF_OK;
    }
    if (PQstatus(p->conn) == CONNECTION_OK)
        notice_drop(p);
    if (PQstatus(p->conn) == CONNECTION_OK && p->ready)
        return RF_OK;
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char clean[200];
        p->ready = false;
        forget_prepared(p);
        PQreset(p->conn);
        if (PQstatus(p->conn) != CONNECTION_OK)
            return rf_fail(err, RF_UNAVAILABLE, "database unreachable: %s",
                           conn_error(p->conn, clean, sizeof clean));
    }
    return session_setup(p, err);
}

/* Defaults for what the URL leaves out; the URL (expanded from dbname, last) wins. */
static PGconn *connect_url(const char *url)
{
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "application_name",
                                       "dbname",
                                       NULL};
    const char *values[] = {"5", "30", "10", "3", "refold", url, NULL};
    return PQconnectdbParams(keys, values, 1);
}

static enum rf_status pg_open(const char *url, struct db **out, struct rf_err *err)
{
    PGconn *conn = connect_url(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        char clean[200];
        conn_error(conn, clean, sizeof clean);
        PQfinish(conn);
        return rf_fail(err, RF_UNAVAILABLE, "cannot connect to PostgreSQL: %s", clean);
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    struct pg *p = xcalloc(1, sizeof *p);
    p->base.drv = &db_pg_driver;
    p->base.backend = DB_POSTGRES;
    p->conn = conn;
    p->cap = 64;
    p->cache = xcalloc(p->cap, sizeof *p->cache);
    enum rf_status rc = session_setup(p, err);
    if (rc) {
        db_pg_driver.close(&p->base);
        return rc;
    }
    *out = &p->base;
    return RF_OK;
}

static void pg_close(struct db *db)
{
    struct pg *p = (struct pg *)db;
    for (size_t i = 0; i < p->cap; i++) {
        if (p->cache[i]) {
            PQclear(p->cache[i]->res);
            free(p->cache[i]->text);
            free(p->cache[i]);
        }
    }
    free(p->cache);
    for (int i = 0; i < p->nchannels; i++)
        free(p->channels[i]);
    PQfinish(p->conn);
    free(p);
}

static enum rf_status pg_exec_script(struct db *db, const char *sql, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    enum rf_status rc = ensure_connected(p, err);
    if (rc)
        return rc;
    PGresult *res = PQexec(p->conn, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY)
        rc = result_fail(p, res, err, "script");
    PQclear(res);
    return rc;
}

/* `?` -> `$n`, leaving quoted strings and identifiers alone. */
static char *rewrite(const char *sql)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    int n = 0;
    char quote = 0;
    for (const char *s = sql; *s; s++) {
        if (quote) {
            if (*s == quote)
                quote = 0;
            buf_putc(&b, *s);
        } else if (*s == '\'' || *s == '"') {
            quote = *s;
            buf_putc(&b, *s);
        } else if (*s == '?') {
            buf_printf(&b, "$%d", ++n);
        } else {
            buf_putc(&b, *s);
        }
    }
    return buf_detach(&b, NULL);
}

static size_t slot_of(struct pg *p, const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 7) & (p->cap - 1);
    while (p->cache[i] && p->cache[i]->sql != sql)
        i = (i + 1) & (p->cap - 1);
    return i;
}

static void grow(struct pg *p)
{
    struct pg_stmt **old = p->cache;
    size_t oldcap = p->cap;
    p->cap *= 2;
    p->cache = xcalloc(p->cap, sizeof *p->cache);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            p->cache[slot_of(p, old[i]->sql)] = old[i];
    free(old);
}

/* Read and drop what is left of a single-row query, one row at a time. */
static void drain(struct pg *p, struct pg_stmt *st)
{
    PGresult *res;
    while (st->pending && (res = PQgetResult(p->conn)) != NULL)
        PQclear(res);
    st->pending = false;
}

/* The statement of sql, prepared on the current session, with its parameters' text in
 * values; its previous result is freed. */
static enum rf_status stmt_ready(struct pg *p, const char *sql, const struct db_val *args, int n,
                                 const char **values, struct pg_stmt **out, struct rf_err *err)
{
    if (n > MAX_PARAMS)
        return rf_fail(err, RF_INTERNAL, "too many query parameters (%d)", n);
    enum rf_status rc = ensure_connected(p, err);
    if (rc)
        return rc;
    size_t i = slot_of(p, sql);
    struct pg_stmt *st = p->cache[i];
    if (!st) {
        st = xcalloc(1, sizeof *st);
        st->base.db = &p->base;
        st->sql = sql;
        st->text = rewrite(sql);
        snprintf(st->name, sizeof st->name, "s%u", p->next_name++);
        p->cache[i] = st;
        if (++p->count * 2 > p->cap)
            grow(p);
    }
    drain(p, st);
    PQclear(st->res);
    st->res = NULL;
    if (!st->prepared) {
        PGresult *res = PQprepare(p->conn, st->name, st->text, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = result_fail(p, res, err, "prepare");
            PQclear(res);
            return rc;
        }
        PQclear(res);
        st->prepared = true;
    }
    for (int k = 0; k < n; k++) {
        const struct db_val *v = &args[k];
        switch (v->type) {
        case DBV_NULL: values[k] = NULL; break;
        case DBV_TEXT: values[k] = v->s; break;
        case DBV_INT:
            snprintf(st->scratch[k], sizeof st->scratch[k], "%" PRId64, v->i);
            values[k] = st->scratch[k];
            break;
        case DBV_DOUBLE:
            snprintf(st->scratch[k], sizeof st->scratch[k], "%.17g", v->d);
            values[k] = st->scratch[k];
            break;
        }
    }
    *out = st;
    return RF_OK;
}

/* A query that failed (res may be NULL: the send failed): the error, res freed, and the
 * prepared statements forgotten when the connection went with it. */
static enum rf_status query_fail(struct pg *p, PGresult *res, struct rf_err *err)
{
    enum rf_status rc = result_fail(p, res, err, "query");
    PQclear(res);
    if (PQstatus(p->conn) != CONNECTION_OK)
        forget_prepared(p);
    return rc;
}

static enum rf_status pg_query(struct db *db, const char *sql, const struct db_val *args, int n,
                               struct db_stmt **out, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    const char *values[MAX_PARAMS];
    struct pg_stmt *st;
    enum rf_status rc = stmt_ready(p, sql, args, n, values, &st, err);
    if (rc)
        return rc;
    PGresult *res = PQexecPrepared(p->conn, st->name, n, values, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        return query_fail(p, res, err);
    st->res = res;
    st->row = -1;
    st->rows = PQntuples(res);
    *out = &st->base;
    return RF_OK;
}

/* libpq's single-row mode: each row is its own result, fetched by pg_next, so a caller
 * that stops early (a page that reached its byte budget) never held the rows after it. */
static enum rf_status pg_query_rows(struct db *db, const char *sql, const struct db_val *args,
                                    int n, struct db_stmt **out, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    const char *values[MAX_PARAMS];
    struct pg_stmt *st;
    enum rf_status rc = stmt_ready(p, sql, args, n, values, &st, err);
    if (rc)
        return rc;
    if (!PQsendQueryPrepared(p->conn, st->name, n, values, NULL, NULL, 0))
        return query_fail(p, NULL, err);
    st->pending = true;
    PQsetSingleRowMode(p->conn); /* cannot fail right after the send; if it did, the first
                                  * result would hold every row, which works too */
    st->row = st->rows = 0;
    *out = &st->base;
    return RF_OK;
}

/* The next result of a query sent by pg_query_rows. */
static enum rf_status next_result(struct pg *p, struct pg_stmt *st, struct rf_err *err)
{
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    st->rows = 0;
    PGresult *res = st->pending ? PQgetResult(p->conn) : NULL;
    if (!res) {
        st->pending = false;
        return RF_OK;
    }
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_SINGLE_TUPLE || s == PGRES_TUPLES_OK) {
        st->res = res;
        st->rows = PQntuples(res);
        if (s == PGRES_TUPLES_OK) /* the end (or every row at once): nothing follows */
            drain(p, st);
        return RF_OK;
    }
    enum rf_status rc = query_fail(p, res, err);
    drain(p, st);
    return rc;
}

static enum rf_status pg_next(struct db_stmt *stmt, bool *row, struct rf_err *err)
{
    struct pg_stmt *st = (struct pg_stmt *)stmt;
    if (st->pending && st->row + 1 >= st->rows) {
        enum rf_status rc = next_result((struct pg *)st->base.db, st, err);
        if (rc) {
            *row = false;
            return rc;
        }
    }
    if (st->row < st->rows)
        st->row++;
    *row = st->row < st->rows;
    return RF_OK;
}

static bool pg_is_null(struct db_stmt *stmt, int col)
{
    struct pg_stmt *st = (struct pg_stmt *)stmt;
    return PQgetisnull(st->res, st->row, col);
}

static const char *pg_text(struct db_stmt *stmt, int col)
{
    struct pg_stmt *st = (struct pg_stmt *)stmt;
    if (PQgetisnull(st->res, st->row, col))
        return NULL;
    return PQgetvalue(st->res, st->row, col);
}

static int64_t pg_int(struct db_stmt *stmt, int col)
{
    const char *s = pg_text(stmt, col);
    return s ? strtoll(s, NULL, 10) : 0;
}

static double pg_real(struct db_stmt *stmt, int col)
{
    const char *s = pg_text(stmt, col);
    return s ? strtod(s, NULL) : 0.0;
}

static int64_t pg_changes(struct db_stmt *stmt)
{
    struct pg_stmt *st = (struct pg_stmt *)stmt;
    const char *s = PQcmdTuples(st->res);
    return s && *s ? strtoll(s, NULL, 10) : 0;
}

static void pg_done(struct db_stmt *stmt)
{
    struct pg_stmt *st = (struct pg_stmt *)stmt;
    drain((struct pg *)st->base.db, st);
    PQclear(st->res);
    st->res = NULL;
}

static enum rf_status pg_begin(struct db *db, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    enum rf_status rc = ensure_connected(p, err);
    return rc ? rc : simple(p, "BEGIN", err);
}

static enum rf_status pg_commit(struct db *db, struct rf_err *err)
{
    return simple((struct pg *)db, "COMMIT", err);
}

static void pg_rollback(struct db *db)
{
    struct pg *p = (struct pg *)db;
    if (PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* 1 when this session's writes can succeed: a standby (after a failover to it) or
 * default_transaction_read_only answers 0, and every write would fail. Not the current
 * transaction's read-only flag: /healthz may run inside a read-only snapshot. */
static const char *SQL_PING =
    "SELECT CASE WHEN pg_is_in_recovery() OR "
    "current_setting('default_transaction_read_only') = 'on' THEN 0 ELSE 1 END";

static enum rf_status pg_ping(struct db *db, struct rf_err *err)
{
    int64_t v = 0;
    enum rf_status rc = db_scalar(db, SQL_PING, DB_NOARGS, &v, NULL, err);
    if (rc == RF_OK && v != 1)
        rc = rf_fail_reason(err, RF_UNAVAILABLE, "read_only",
                            "database is read-only: the server refuses writes (a standby, or "
                            "default_transaction_read_only)");
    return rc;
}

static enum rf_status pg_listen(struct db *db, const char *channel, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    bool known = false;
    for (int i = 0; i < p->nchannels; i++)
        known = known || strcmp(p->channels[i], channel) == 0;
    if (!known) {
        if (p->nchannels == MAX_CHANNELS)
            return rf_fail(err, RF_INTERNAL, "too many LISTEN channels");
        p->channels[p->nchannels++] = xstrdup(channel);
    }
    enum rf_status rc = ensure_connected(p, err);
    return rc ? rc : listen_one(p, channel, err);
}

static int pg_notify_fd(struct db *db)
{
    struct pg *p = (struct pg *)db;
    return PQstatus(p->conn) == CONNECTION_OK ? PQsocket(p->conn) : -1;
}

static enum rf_status pg_notifications(struct db *db, db_notify_fn fn, void *ud, struct rf_err *err)
{
    struct pg *p = (struct pg *)db;
    if (PQstatus(p->conn) == CONNECTION_OK)
        PQconsumeInput(p->conn);
    PGnotify *n;
    while ((n = PQnotifies(p->conn)) != NULL) {
        fn(ud, n->extra);
        PQfreemem(n);
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char clean[200];
        return rf_fail(err, RF_UNAVAILABLE, "database connection lost: %s",
                       conn_error(p->conn, clean, sizeof clean));
    }
    return RF_OK;
}

const struct db_driver db_pg_driver = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .exec_script = pg_exec_script,
    .query = pg_query,
    .query_rows = pg_query_rows,
    .next = pg_next,
    .is_null = pg_is_null,
    .text = pg_text,
    .integer = pg_int,
    .real = pg_real,
    .changes = pg_changes,
    .done = pg_done,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .ping = pg_ping,
    .listen = pg_listen,
    .notify_fd = pg_notify_fd,
    .notifications = pg_notifications,
};
