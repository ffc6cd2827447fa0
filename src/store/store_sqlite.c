/*
 * store_sqlite - the SQLite driver of the store's SQL layer (db.h).
 *
 * DESIGN. Every struct db is a thread's own sqlite3 connection, opened
 * NOMUTEX because a connection belongs to one thread, in WAL mode with
 * synchronous=NORMAL (a commit is durable once the WAL is checkpointed; an OS
 * crash may lose the last transactions, a process crash loses nothing),
 * foreign keys on and a busy_timeout for other processes. Reads run there,
 * one statement per transaction, or several in one deferred transaction
 * between db_read_begin and db_read_end (each read transaction costs shared-
 * memory locks and an fstat: a third of a short GET before read scopes).
 * SQLite's memory statistics are turned off: they take a process-wide mutex
 * on every allocation.
 *
 * Writes of this process to one database file all go through one shared
 * connection, the file's struct writer: db_begin takes writer->lock, runs
 * BEGIN IMMEDIATE on the writer's connection, and every statement up to
 * COMMIT/ROLLBACK goes to that connection. In WAL mode a connection drops its
 * whole page cache whenever another connection has committed; as nobody else
 * in the process writes, the writer's cache stays valid from one write to the
 * next and a write walks its b-trees in memory instead of re-reading each
 * page with pread. It also keeps one process-wide writer per file, so threads
 * queue on a mutex instead of spinning on SQLITE_BUSY; other processes are
 * waited for by busy_timeout. In-memory and URI databases (":memory:",
 * "file:...") cannot be shared that way and write on their own connection
 * under solo_lock.
 *
 * Checkpoints: the writer does not checkpoint when it commits
 * (wal_autocheckpoint=0). Its WAL hook wakes the writer's checkpointer thread
 * once CHECKPOINT_FRAMES frames wait to be copied, and that thread runs a
 * PASSIVE checkpoint on a connection of its own, so the copying and the fsyncs
 * happen beside the writes instead of inside one of them (inline, every
 * thousandth frame stalled every writer for a copy and two fsyncs). Only when
 * the WAL has grown to WAL_RESTART_FRAMES does it checkpoint under the write
 * lock, so that the WAL can start over (see checkpointer()). The thread starts
 * on first need and is joined when the last connection to the file closes. Its own
 * connection is opened at the first checkpoint; when that fails (say, no file descriptor
 * left), it tries again CHECKPOINT_RETRY_MS later instead of leaving the WAL to grow.
 *
 * A database file deleted or replaced while refold runs: the open connections keep
 * using the old file (its inode lives on while they hold it open), so writes would be
 * acknowledged and then lost with the process, and a restart would find the file at the
 * path instead. SQLite refuses such writes itself in rollback-journal mode only
 * (SQLITE_READONLY_DBMOVED), not in WAL mode. So the writer remembers the identity
 * (device, inode) of the file it was opened on, and every write transaction and every
 * ping first checks that the path still names that file: when it does not, writes fail
 * as unavailable (503, details.reason "database_moved") and /healthz answers 503, which
 * tells the operator to restart refold on the file that is there now. The same for the
 * -wal file: deleted under a running refold, it would take with it every commit not yet
 * checkpointed (the whole database's recent past) at the next crash, while the open
 * connections went on appending to the unlinked one. Its identity is taken inside the
 * first write transaction, when the WAL surely exists; no SQLite connection deletes it
 * while another of this process, all of which hold the database's shared lock, is open.
 * Two stat() calls per write transaction.
 *
 * Reader page caches are small (READER_CACHE_KIB): under writes they are
 * dropped at every transaction anyway, and each one counts in the server's
 * memory. The writer's cache is larger (WRITER_CACHE_KIB).
 *
 * Statements are prepared once per connection and cached in a small
 * open-addressing table keyed by the address of the SQL constant.
 *
 * Locks: writers_lock guards the writers list and each writer's refs;
 * writer->lock is the right to use writer->conn (held from BEGIN to the end of
 * the transaction); writer->ckpt_lock guards the checkpointer's fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/db.h"
#include "store/sqlite_access.h"
#include "core/banned.h"

#define BUSY_TIMEOUT_MS 10000
#define READER_CACHE_KIB 2048
#define WRITER_CACHE_KIB 16384
#define CHECKPOINT_FRAMES 1000
/* A checkpointer that cannot open its connection, or whose checkpoint copied nothing,
 * tries again this much later; a failing checkpoint is logged at most this often. */
#define CHECKPOINT_RETRY_MS 1000
#define CHECKPOINT_LOG_MS 10000
#define WAL_RESTART_FRAMES 8000
/* After a checkpoint the WAL file is cut back to this size. */
#define WAL_SIZE_LIMIT (64 * 1024 * 1024)

struct writer;

struct conn {
    sqlite3 *h;
    struct writer *owner; /* the writer whose connection this is, else NULL */
    struct lite_stmt **cache; /* open addressing by SQL pointer */
    size_t cap, count;
    sqlite3_stmt *begin, *commit, *rollback, *read_begin;
};

struct lite_stmt {
    struct db_stmt base;
    sqlite3_stmt *s;
    const char *sql;
    struct conn *conn;
};

struct writer {
    struct writer *next;
    char *path;
    int refs; /* lite connections open on path (writers_lock) */
    bool have_id; /* the file's identity, set once when the writer is created */
    dev_t dev;
    ino_t ino;
    char *wal_path; /* path-wal, and its identity: set once, by the first write transaction */
    atomic_bool have_wal_id; /* set (release) after wal_dev and wal_ino */
    dev_t wal_dev;
    ino_t wal_ino;
    /* "read_only"/"storage_full" from a failed write until a write succeeds again: /healthz
     * then probes with a write instead of answering 200 for a node that cannot write. */
    _Atomic(const char *) blocked;
    int64_t changes_at_begin; /* the connection's total changes at BEGIN (lock) */
    pthread_mutex_t lock;
    struct conn conn; /* h is NULL until the first write */

    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_stop;
    int wal_frames; /* frames in the WAL after the last commit */
    int backfilled; /* frames the last checkpoint copied into the database */
};

struct lite {
    struct db base;
    struct conn own;
    struct writer *w; /* NULL: write on own under solo_lock */
    struct conn *cur; /* own, or w->conn inside a write transaction */
    uint64_t own_commits; /* write transactions committed on own (solo databases) */
};

static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer *writers;
static pthread_mutex_t solo_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    /* Memory statistics take a process-wide mutex on every allocation: the busiest lock
     * of a multi-threaded reader. Fails harmlessly when SQLite is already initialised. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

static enum rf_status fail(struct conn *c, struct rf_err *err, int rc, const char *what)
{
    int ext = sqlite3_extended_errcode(c->h);
    enum rf_status code = RF_INTERNAL;
    const char *unwritable = sqlite_access_unwritable(c->h);
    if (unwritable) {
        /* 503 until it can write again; the failed transaction is rolled back. */
        if (c->owner)
            atomic_store(&c->owner->blocked, unwritable);
        const char *file = sqlite3_db_filename(c->h, "main");
        bool full = strcmp(unwritable, "storage_full") == 0;
        char why[PATH_MAX + 160];
        if (full || !file || !sqlite_access_explain(file, SQLITE_READONLY, why, sizeof why))
            snprintf(why, sizeof why, "%s",
                     full ? "free space, then retry"
                          : "check the filesystem's mount and the mode and owner of the file, "
                            "its -wal and -shm files and its directory");
        return rf_fail_reason(err, RF_UNAVAILABLE, unwritable, "%s: cannot write %s (%s): %s",
                              full ? "disk full" : "database is read-only",
                              file && *file ? file : "(memory)", sqlite3_errmsg(c->h), why);
    }
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        code = RF_CONFLICT;
    else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY || ext == SQLITE_CONSTRAINT_CHECK ||
             ext == SQLITE_CONSTRAINT_NOTNULL)
        code = RF_INVALID;
    else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        code = RF_UNAVAILABLE;
    return rf_fail_reason(err, code, "", "database %s failed: %s", what, sqlite3_errmsg(c->h));
}

static int prepare(sqlite3 *h, const char *sql, sqlite3_stmt **out)
{
    return sqlite3_prepare_v3(h, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

/* An open that failed: name the file or directory at fault when it is one
 * (sqlite_access.c), as SQLite's message does not. */
static void cannot(struct rf_err *err, const char *what, const char *path, int rc,
                   const char *sqlite_msg)
{
    char why[PATH_MAX + 160];
    if (sqlite_access_explain(path, rc, why, sizeof why))
        rf_fail(err, RF_UNAVAILABLE, "cannot %s database %s: %s (SQLite: %s)", what, path, why,
                sqlite_msg);
    else
        rf_fail(err, RF_UNAVAILABLE, "cannot %s database %s: %s", what, path, sqlite_msg);
}

static enum rf_status conn_open(const char *path, int cache_kib, bool writer, struct conn *c,
                                struct rf_err *err)
{
    sqlite3 *h = NULL;
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        cannot(err, "open", path, rc, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return RF_UNAVAILABLE;
    }
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    char pragmas[512];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL;"
             "PRAGMA synchronous=NORMAL;"
             "PRAGMA foreign_keys=ON;"
             "PRAGMA temp_store=MEMORY;"
             "PRAGMA cache_size=-%d;"
             "PRAGMA journal_size_limit=%d;%s",
             cache_kib, WAL_SIZE_LIMIT, writer ? "PRAGMA wal_autocheckpoint=0;" : "");
    char *msg = NULL;
    if (sqlite3_exec(h, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        prepare(h, "BEGIN IMMEDIATE", &c->begin) != SQLITE_OK ||
        prepare(h, "COMMIT", &c->commit) != SQLITE_OK ||
        prepare(h, "ROLLBACK", &c->rollback) != SQLITE_OK ||
        prepare(h, "BEGIN", &c->read_begin) != SQLITE_OK) {
        cannot(err, "configure", path, sqlite3_extended_errcode(h), msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        sqlite3_finalize(c->begin);
        sqlite3_finalize(c->commit);
        sqlite3_finalize(c->rollback);
        sqlite3_finalize(c->read_begin);
        sqlite3_close(h);
        return RF_UNAVAILABLE;
    }
    c->h = h;
    c->cap = 64;
    c->cache = xcalloc(c->cap, sizeof *c->cache);
    return RF_OK;
}

static void conn_close(struct conn *c)
{
    if (!c->h)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        if (c->cache[i]) {
            sqlite3_finalize(c->cache[i]->s);
            free(c->cache[i]);
        }
    }
    free(c->cache);
    sqlite3_finalize(c->begin);
    sqlite3_finalize(c->commit);
    sqlite3_finalize(c->rollback);
    sqlite3_finalize(c->read_begin);
    sqlite3_close(c->h);
    memset(c, 0, sizeof *c);
}

/* Run one of the connection's prepared transaction statements. */
static int run_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- checkpointer ---- */

static void *checkpointer(void *arg)
{
    struct writer *w = arg;
    struct conn c = {0};
    struct rf_err err;
    int64_t retry_at = 0; /* after a try that got nowhere: not before then */
    int64_t last_log = 0;
    bool failing = false;
    pthread_mutex_lock(&w->ckpt_lock);
    for (;;) {
        int64_t now;
        while (!w->ckpt_stop) {
            if (w->wal_frames - w->backfilled < CHECKPOINT_FRAMES)
                pthread_cond_wait(&w->ckpt_cond, &w->ckpt_lock);
            else if ((now = clock_mono_ms()) < retry_at) /* commits signal meanwhile */
                clock_cond_wait_ms(&w->ckpt_cond, &w->ckpt_lock, retry_at - now);
            else
                break;
        }
        if (w->ckpt_stop)
            break;
        /* A WAL that writers keep appending to is never completely checkpointed, and only
         * a complete one restarts from its beginning: past WAL_RESTART_FRAMES, checkpoint
         * the tail while holding the write lock. */
        bool locked = w->wal_frames >= WAL_RESTART_FRAMES;
        int before = w->backfilled;
        pthread_mutex_unlock(&w->ckpt_lock);
        if (!c.h && conn_open(w->path, 256, false, &c, &err) != RF_OK) {
            /* Out of file descriptors, say: try again a little later, or nothing would
             * checkpoint the WAL for the rest of the process's life. */
            if (!failing)
                log_error("checkpointer cannot open the database: retrying",
                          "error=\"%s\"", err.message);
            failing = true;
            pthread_mutex_lock(&w->ckpt_lock);
            retry_at = clock_mono_ms() + CHECKPOINT_RETRY_MS;
            continue;
        }
        if (failing)
            log_info("checkpointer opened the database", NULL);
        failing = false;
        if (locked)
            pthread_mutex_lock(&w->lock);
        int log_frames = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c.h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                           &done);
        if (locked)
            pthread_mutex_unlock(&w->lock);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && clock_every(&last_log, CHECKPOINT_LOG_MS))
            log_warn("checkpoint failed", "error=\"%s\"", sqlite3_errmsg(c.h));
        pthread_mutex_lock(&w->ckpt_lock);
        w->backfilled = done > 0 ? done : w->backfilled;
        /* Nothing copied - a reader still uses those frames (a long read, a backup), the
         * disk is full, another process checkpoints: the next try waits, or this loop
         * would spin on a core (and log) until that changes. */
        if (rc != SQLITE_OK || done <= before)
            retry_at = clock_mono_ms() + CHECKPOINT_RETRY_MS;
    }
    pthread_mutex_unlock(&w->ckpt_lock);
    conn_close(&c);
    return NULL;
}

/* After each commit of the writer connection (writer->lock held): frames is the WAL's
 * size in frames. */
static int on_wal(void *ud, sqlite3 *h, const char *dbname, int frames)
{
    (void)h;
    (void)dbname;
    struct writer *w = ud;
    pthread_mutex_lock(&w->ckpt_lock);
    if (frames < w->backfilled)
        w->backfilled = 0; /* the WAL restarted */
    w->wal_frames = frames;
    if (frames - w->backfilled >= CHECKPOINT_FRAMES) {
        if (!w->ckpt_started && !w->ckpt_stop)
            w->ckpt_started = pthread_create(&w->ckpt_thread, NULL, checkpointer, w) == 0;
        pthread_cond_signal(&w->ckpt_cond);
    }
    pthread_mutex_unlock(&w->ckpt_lock);
    return SQLITE_OK;
}

/* ---- the writer registry ---- */

static bool shareable(const char *path)
{
    return path[0] && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0;
}

/* The writer of path, with one more reference. */
static struct writer *writer_acquire(const char *path)
{
    char *real = realpath(path, NULL);
    const char *key = real ? real : path;
    pthread_mutex_lock(&writers_lock);
    struct writer *w = writers;
    while (w && strcmp(w->path, key) != 0)
        w = w->next;
    if (!w) {
        w = xcalloc(1, sizeof *w);
        w->path = xstrdup(key);
        w->wal_path = xasprintf("%s-wal", key);
        struct stat sb;
        if (stat(key, &sb) == 0) { /* the caller has just opened it */
            w->have_id = true;
            w->dev = sb.st_dev;
            w->ino = sb.st_ino;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_mutex_init(&w->ckpt_lock, NULL);
        clock_cond_init(&w->ckpt_cond);
        w->next = writers;
        writers = w;
    }
    w->refs++;
    pthread_mutex_unlock(&writers_lock);
    free(real);
    return w;
}

/* Fail when w's path no longer names the file the writer was opened on (see DESIGN). */
static enum rf_status check_unmoved(const struct writer *w, struct rf_err *err)
{
    struct stat sb;
    if (!w || !w->have_id)
        return RF_OK;
    if (stat(w->path, &sb) != 0 || sb.st_dev != w->dev || sb.st_ino != w->ino)
        return rf_fail_reason(err, RF_UNAVAILABLE, "database_moved",
                              "the database file %s was deleted or replaced while refold was "
                              "running: restart refold",
                              w->path);
    if (atomic_load_explicit(&w->have_wal_id, memory_order_acquire) &&
        (stat(w->wal_path, &sb) != 0 || sb.st_dev != w->wal_dev || sb.st_ino != w->wal_ino))
        return rf_fail_reason(err, RF_UNAVAILABLE, "database_moved",
                              "the database's WAL file %s was deleted or replaced while refold "
                              "was running (the commits it held are lost at the next restart "
                              "unless refold stops cleanly): stop refold with SIGTERM",
                              w->wal_path);
    return RF_OK;
}

/* Inside the writer's first write transaction (w->lock held): the WAL's identity. */
static void note_wal(struct writer *w)
{
    struct stat sb;
    if (stat(w->wal_path, &sb) != 0)
        return;
    w->wal_dev = sb.st_dev;
    w->wal_ino = sb.st_ino;
    atomic_store_explicit(&w->have_wal_id, true, memory_order_release);
}

static void writer_release(struct writer *w)
{
    pthread_mutex_lock(&writers_lock);
    if (--w->refs > 0) {
        pthread_mutex_unlock(&writers_lock);
        return;
    }
    for (struct writer **p = &writers; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&writers_lock);
    pthread_mutex_lock(&w->ckpt_lock);
    w->ckpt_stop = true;
    pthread_cond_signal(&w->ckpt_cond);
    bool started = w->ckpt_started;
    pthread_mutex_unlock(&w->ckpt_lock);
    if (started)
        pthread_join(w->ckpt_thread, NULL);
    conn_close(&w->conn);
    pthread_cond_destroy(&w->ckpt_cond);
    pthread_mutex_destroy(&w->ckpt_lock);
    pthread_mutex_destroy(&w->lock);
    free(w->path);
    free(w->wal_path);
    free(w);
}

/* ---- driver ---- */

/* A database file that does not exist yet is created here, readable by its owner only,
 * before SQLite would create it under the umask (0644 by default): it holds every
 * workspace's traces and prompts, which the API keeps apart by key and which the config
 * file's key (mode 0600) guards. SQLite gives the -wal and -shm files the database file's
 * mode. An existing file keeps the mode its owner chose. */
static void create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    /* else: it exists (EEXIST), or SQLite reports why it cannot be opened */
}

static enum rf_status lite_open(const char *url, struct db **out, struct rf_err *err)
{
    pthread_once(&lib_once, lib_init);
    const char *path = url;
    if (strncmp(path, "sqlite://", 9) == 0)
        path += 9;
    if (shareable(path))
        create_private(path);
    struct lite *l = xcalloc(1, sizeof *l);
    enum rf_status rc = conn_open(path, READER_CACHE_KIB, false, &l->own, err);
    if (rc) {
        free(l);
        return rc;
    }
    l->base.drv = &db_sqlite_driver;
    l->base.backend = DB_SQLITE;
    l->base.sessions = 1;
    l->cur = &l->own;
    if (shareable(path))
        l->w = writer_acquire(path);
    *out = &l->base;
    return RF_OK;
}

static void unlock_writes(struct lite *l)
{
    l->cur = &l->own;
    pthread_mutex_unlock(l->w ? &l->w->lock : &solo_lock);
}

static void lite_close(struct db *db)
{
    struct lite *l = (struct lite *)db;
    if (l->base.depth > 0) {
        run_stmt(l->cur->rollback);
        unlock_writes(l);
    }
    conn_close(&l->own);
    if (l->w)
        writer_release(l->w);
    free(l);
}

static enum rf_status lite_exec_script(struct db *db, const char *sql, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    char *msg = NULL;
    int rc = sqlite3_exec(l->cur->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        enum rf_status code = fail(l->cur, err, rc, "script");
        sqlite3_free(msg);
        return code;
    }
    return RF_OK;
}

static size_t slot_of(struct conn *c, const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 7) & (c->cap - 1);
    while (c->cache[i] && c->cache[i]->sql != sql)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static void grow(struct conn *c)
{
    struct lite_stmt **old = c->cache;
    size_t oldcap = c->cap;
    c->cap *= 2;
    c->cache = xcalloc(c->cap, sizeof *c->cache);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            c->cache[slot_of(c, old[i]->sql)] = old[i];
    free(old);
}

static enum rf_status lite_query(struct db *db, const char *sql, const struct db_val *args, int n,
                                 struct db_stmt **out, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    struct conn *c = l->cur;
    size_t i = slot_of(c, sql);
    struct lite_stmt *st = c->cache[i];
    if (!st) {
        sqlite3_stmt *s = NULL;
        int rc = prepare(c->h, sql, &s);
        if (rc != SQLITE_OK)
            return fail(c, err, rc, "prepare");
        st = xcalloc(1, sizeof *st);
        st->s = s;
        st->sql = sql;
        st->conn = c;
        c->cache[i] = st;
        if (++c->count * 2 > c->cap)
            grow(c);
    } else {
        sqlite3_reset(st->s);
        sqlite3_clear_bindings(st->s);
    }
    st->base.db = db; /* the writer's statements serve one struct db after another */
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
            return fail(c, err, rc, "bind");
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
    return fail(st->conn, err, rc, "query");
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
    return sqlite3_changes64(((struct lite_stmt *)stmt)->conn->h);
}

static void lite_done(struct db_stmt *stmt)
{
    struct lite_stmt *st = (struct lite_stmt *)stmt;
    sqlite3_reset(st->s);
}

static enum rf_status lite_begin(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    struct writer *w = l->w;
    pthread_mutex_lock(w ? &w->lock : &solo_lock);
    if (w && !w->conn.h) {
        enum rf_status rc = conn_open(w->path, WRITER_CACHE_KIB, true, &w->conn, err);
        if (rc) {
            pthread_mutex_unlock(&w->lock);
            return rc;
        }
        w->conn.owner = w;
        sqlite3_wal_hook(w->conn.h, on_wal, w);
    }
    l->cur = w ? &w->conn : &l->own;
    if (check_unmoved(w, err) != RF_OK) {
        unlock_writes(l);
        return RF_UNAVAILABLE;
    }
    int rc = run_stmt(l->cur->begin);
    if (rc != SQLITE_OK) {
        enum rf_status code = fail(l->cur, err, rc, "begin");
        unlock_writes(l);
        return code;
    }
    if (w && w->have_id && !atomic_load_explicit(&w->have_wal_id, memory_order_relaxed))
        note_wal(w);
    if (w)
        w->changes_at_begin = sqlite3_total_changes64(w->conn.h);
    return RF_OK;
}

static enum rf_status lite_commit(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    int rc = run_stmt(l->cur->commit);
    if (rc != SQLITE_OK)
        return fail(l->cur, err, rc, "commit"); /* db_commit rolls back, which unlocks */
    if (l->cur == &l->own)
        l->own_commits++;
    else if (atomic_load_explicit(&l->w->blocked, memory_order_relaxed) &&
             sqlite3_total_changes64(l->cur->h) > l->w->changes_at_begin)
        atomic_store(&l->w->blocked, NULL); /* not when it changed nothing: that commits */
    unlock_writes(l);
    return RF_OK;
}

static void lite_rollback(struct db *db)
{
    struct lite *l = (struct lite *)db;
    if (!sqlite3_get_autocommit(l->cur->h))
        run_stmt(l->cur->rollback);
    unlock_writes(l);
}

/* A deferred BEGIN: the read transaction starts at the first read and ends at COMMIT. */
static enum rf_status lite_read_begin(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    int rc = run_stmt(l->own.read_begin);
    return rc == SQLITE_OK ? RF_OK : fail(&l->own, err, rc, "begin");
}

static void lite_read_end(struct db *db)
{
    struct lite *l = (struct lite *)db;
    if (!sqlite3_get_autocommit(l->own.h))
        run_stmt(l->own.commit);
}

static const char *SQL_DATA_VERSION = "PRAGMA data_version";

/* PRAGMA data_version changes with every commit of another connection (the writer is one)
 * but not with this connection's own, which only solo databases make: count those. */
static enum rf_status lite_data_version(struct db *db, uint64_t *out, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    int64_t v = 0;
    enum rf_status rc = db_scalar(db, SQL_DATA_VERSION, DB_NOARGS, &v, NULL, err);
    if (rc == RF_OK)
        *out = l->own_commits << 32 ^ (uint64_t)v;
    return rc;
}

static const char *SQL_PING = "SELECT 1";

static const char *SQL_USER_VERSION = "PRAGMA user_version";

/* Whether the database can be written again: a one-page commit of the header's
 * user_version (unused by refold) written back unchanged. */
static enum rf_status probe_write(struct lite *l, struct rf_err *err)
{
    int64_t v = 0;
    char sql[64];
    enum rf_status rc = lite_begin(&l->base, err);
    if (rc)
        return rc;
    rc = db_scalar(&l->base, SQL_USER_VERSION, DB_NOARGS, &v, NULL, err);
    if (rc == RF_OK) {
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v);
        rc = lite_exec_script(&l->base, sql, err);
    }
    if (rc == RF_OK)
        rc = lite_commit(&l->base, err);
    if (rc) /* lite_commit unlocks only when it succeeds */
        lite_rollback(&l->base);
    else
        atomic_store(&l->w->blocked, NULL);
    return rc;
}

/* A read; while writes fail (read-only, disk full) a probing write too (/healthz). */
static enum rf_status lite_ping(struct db *db, struct rf_err *err)
{
    struct lite *l = (struct lite *)db;
    int64_t v;
    enum rf_status rc = check_unmoved(l->w, err);
    if (rc == RF_OK)
        rc = db_scalar(db, SQL_PING, DB_NOARGS, &v, NULL, err);
    if (rc == RF_OK && l->w && l->base.depth == 0 && atomic_load(&l->w->blocked))
        rc = probe_write(l, err);
    return rc;
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
    .read_begin = lite_read_begin,
    .read_end = lite_read_end,
    .data_version = lite_data_version,
};
