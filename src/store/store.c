/*
 * store - connection lifecycle, migrations, transactions and the row
 * readers shared by the store_*.c files. See store.h for the contract.
 *
 * Migrations are the files src/store/migrations/NNN_name.sql compiled into
 * the binary, applied in order, each in its own transaction together with
 * its row in schema_migrations. Concurrent migrators are serialised: SQLite by
 * BEGIN IMMEDIATE, PostgreSQL by an advisory lock held for the whole run.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/embed.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

#define MIGRATION_DIR "src/store/migrations/"
#define MIGRATE_LOCK_ID 7878001

static const char *SQL_MIGRATIONS_TABLE =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
static const char *SQL_MIGRATION_APPLIED =
    "SELECT COUNT(*) FROM schema_migrations WHERE version = ?";
static const char *SQL_MIGRATION_RECORD =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)";
static const char *SQL_SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
static const char *SQL_TABLE_EXISTS_LITE =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
static const char *SQL_TABLE_EXISTS_PG =
    "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
    "AND table_schema = current_schema()";
static const char *SQL_PG_LOCK = "SELECT pg_advisory_lock(?)";
static const char *SQL_PG_UNLOCK = "SELECT pg_advisory_unlock(?)";

enum rf_status store_open(const char *url, struct store **out, struct rf_err *err)
{
    struct db *db = NULL;
    enum rf_status rc = db_open(url, &db, err);
    if (rc)
        return rc;
    struct store *st = xcalloc(1, sizeof *st);
    st->db = db;
    *out = st;
    return RF_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    db_close(st->db);
    free(st);
}

const char *store_backend(const struct store *st)
{
    return st->db->drv->name;
}

const char *store_url_backend(const char *url)
{
    return db_url_backend(url);
}

enum rf_status store_ping(struct store *st, struct rf_err *err)
{
    return db_ping(st->db, err);
}

enum rf_status store_begin(struct store *st, struct rf_err *err)
{
    return db_begin(st->db, err);
}

enum rf_status store_commit(struct store *st, struct rf_err *err)
{
    return db_commit(st->db, err);
}

void store_rollback(struct store *st)
{
    db_rollback(st->db);
}

enum rf_status store_read_begin(struct store *st, struct rf_err *err)
{
    return db_read_begin(st->db, err);
}

void store_read_end(struct store *st)
{
    db_read_end(st->db);
}

enum rf_status store_data_version(struct store *st, uint64_t *out, struct rf_err *err)
{
    return db_data_version(st->db, out, err);
}

/* Migrations in the embedded table, sorted by path (so by number). */
static int migration_number(const char *path)
{
    const char *base = path + strlen(MIGRATION_DIR);
    return (int)strtol(base, NULL, 10);
}

static bool is_migration(const struct embed_file *f)
{
    size_t n = strlen(MIGRATION_DIR), len = strlen(f->path);
    return strncmp(f->path, MIGRATION_DIR, n) == 0 && len > 4 &&
           strcmp(f->path + len - 4, ".sql") == 0;
}

int store_migrations_known(void)
{
    int n = 0;
    for (const struct embed_file *f = embed_table(); f->path; f++)
        if (is_migration(f))
            n++;
    return n;
}

/* Tests only: REFOLD_TEST_MIGRATE_TO=N (with REFOLD_TEST_JOBS=1) stops store_migrate after
 * migration N, so an upgrade test can build a database at an older schema version, fill it
 * and upgrade it with the real binary (tests/integration/upgrade.test.mjs). 0: no limit. */
static int migrate_limit(void)
{
    const char *jobs = getenv("REFOLD_TEST_JOBS"), *to = getenv("REFOLD_TEST_MIGRATE_TO");
    if (!jobs || strcmp(jobs, "1") != 0 || !to || !*to)
        return 0;
    return (int)strtol(to, NULL, 10);
}

static enum rf_status apply_one(struct db *db, const struct embed_file *f, bool *ran,
                                struct rf_err *err)
{
    int number = migration_number(f->path);
    int64_t count = 0;
    *ran = false;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_scalar(db, SQL_MIGRATION_APPLIED, DB_ARGS(DB_I(number)), &count, NULL, err);
    bool applying = rc == RF_OK && count == 0;
    if (applying) {
        rc = db_exec_script(db, (const char *)f->data, err);
        if (rc == RF_OK)
            rc = db_run(db, SQL_MIGRATION_RECORD,
                        DB_ARGS(DB_I(number), DB_T(f->path + strlen(MIGRATION_DIR)),
                                DB_I(clock_now_ms())),
                        NULL, err);
    }
    rc = db_end(db, rc, err);
    *ran = applying && rc == RF_OK; /* not before its COMMIT went through (a full disk) */
    return rc;
}

enum rf_status store_migrate(struct store *st, int *applied, struct rf_err *err)
{
    struct db *db = st->db;
    bool pg = db->backend == DB_POSTGRES;
    int done = 0;
    enum rf_status rc = RF_OK;
    if (pg) {
        int64_t ignored;
        rc = db_scalar(db, SQL_PG_LOCK, DB_ARGS(DB_I(MIGRATE_LOCK_ID)), &ignored, NULL, err);
        if (rc)
            return rc;
    }
    int limit = migrate_limit();
    rc = db_exec_script(db, SQL_MIGRATIONS_TABLE, err);
    for (const struct embed_file *f = embed_table(); rc == RF_OK && f->path; f++) {
        if (!is_migration(f) || (limit > 0 && migration_number(f->path) > limit))
            continue;
        bool ran = false;
        rc = apply_one(db, f, &ran, err);
        if (ran) {
            done++;
            log_info("migration applied", "migration=%s backend=%s",
                     f->path + strlen(MIGRATION_DIR), db->drv->name);
        }
    }
    if (pg) {
        int64_t ignored;
        struct rf_err e2;
        db_scalar(db, SQL_PG_UNLOCK, DB_ARGS(DB_I(MIGRATE_LOCK_ID)), &ignored, NULL, &e2);
    }
    if (applied)
        *applied = done;
    return rc;
}

enum rf_status store_schema_version(struct store *st, int *version, struct rf_err *err)
{
    int64_t exists = 0, v = 0;
    const char *sql = st->db->backend == DB_POSTGRES ? SQL_TABLE_EXISTS_PG : SQL_TABLE_EXISTS_LITE;
    enum rf_status rc = db_scalar(st->db, sql, DB_NOARGS, &exists, NULL, err);
    if (rc == RF_OK && exists)
        rc = db_scalar(st->db, SQL_SCHEMA_VERSION, DB_NOARGS, &v, NULL, err);
    *version = (int)v;
    return rc;
}

const char *store_query_sql(const char *name)
{
    if (strcmp(name, "contradictions") == 0)
        return contradictions_sql(false);
    if (strcmp(name, "contradictions_pg") == 0)
        return contradictions_sql(true);
    if (strcmp(name, "agent_stats") == 0)
        return agent_stats_sql();
    if (strcmp(name, "agent_get") == 0)
        return agent_get_stats_sql();
    if (strcmp(name, "job_counts_open") == 0)
        return job_counts_open_sql();
    return NULL;
}

/* ---- shared row readers ---- */

json_t *col_str(struct db_stmt *s, int col)
{
    return jx_str_or_null(db_text(s, col));
}

json_t *col_time(struct db_stmt *s, int col)
{
    return db_is_null(s, col) ? json_null() : jx_time(db_int(s, col));
}

json_t *col_json(struct db_stmt *s, int col)
{
    return jx_from_text(db_text(s, col));
}

json_t *version_from_row(struct db_stmt *s, int c)
{
    json_t *v = json_object();
    json_object_set_new(v, "id", col_str(s, c + 0));
    json_object_set_new(v, "agent_id", col_str(s, c + 1));
    json_object_set_new(v, "version", json_integer(db_int(s, c + 2)));
    json_object_set_new(v, "prompt_template", col_str(s, c + 3));
    json_object_set_new(v, "variables", col_json(s, c + 4));
    json_object_set_new(v, "source", col_str(s, c + 5));
    json_object_set_new(v, "parent_version_id", col_str(s, c + 6));
    json_object_set_new(v, "status", col_str(s, c + 7));
    json_object_set_new(v, "accuracy",
                        db_is_null(s, c + 8) ? json_null() : json_real(db_double(s, c + 8)));
    json_object_set_new(v, "change_summary", col_str(s, c + 9));
    json_object_set_new(v, "changes", col_json(s, c + 10));
    json_object_set_new(v, "failure_patterns", col_json(s, c + 11));
    json_object_set_new(v, "created_by_job_id", col_str(s, c + 12));
    json_object_set_new(v, "review_note", col_str(s, c + 13));
    json_object_set_new(v, "created_at", col_time(s, c + 14));
    json_object_set_new(v, "decided_at", col_time(s, c + 15));
    return v;
}

void store_list_release(struct store_list *l)
{
    json_decref(l->data);
    free(l->next_cursor);
    l->data = NULL;
    l->next_cursor = NULL;
}

enum rf_status page_id_cursor(const struct store_page *p, const char *prefix, char *bound,
                              struct rf_err *err)
{
    if (!p->cursor) {
        /* Not "~", past every id only bytewise: a database whose collation is linguistic
         * (en_US.UTF-8, a common PostgreSQL default) ignores punctuation and sorts "~"
         * before every id, and every list's first page came back empty. Letters follow
         * digits and 'z' is the last letter in every collation, so 26 of them pass every
         * ULID, and any other id of letters and digits a row was given by hand. */
        snprintf(bound, ID_MAX, "%s%.*s", prefix, ULID_LEN, "zzzzzzzzzzzzzzzzzzzzzzzzzz");
        return RF_OK;
    }
    /* Any other string would bound the ids all the same ("zzz" sorts after every one):
     * a first page answered as if it were the one asked for. */
    if (!id_valid(prefix, p->cursor))
        return rf_fail_field(err, RF_INVALID, "cursor", "cursor is not one this API returned");
    snprintf(bound, ID_MAX, "%s", p->cursor);
    return RF_OK;
}

struct keyed {
    const char *key;
    int i;
};

static int by_key_then_pos(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

void batch_repeats(const char *const *keys, int n, bool *repeat)
{
    struct keyed *order = xcalloc((size_t)n + 1, sizeof *order);
    int m = 0;
    for (int i = 0; i < n; i++) {
        repeat[i] = false;
        if (keys[i])
            order[m++] = (struct keyed){keys[i], i};
    }
    qsort(order, (size_t)m, sizeof *order, by_key_then_pos);
    for (int k = 1; k < m; k++)
        repeat[order[k].i] = strcmp(order[k].key, order[k - 1].key) == 0;
    free(order);
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum rf_status batch_insert(struct db *db, const char *sql, const struct db_val *args, int nargs,
                            const char *const *ids, int n, bool *created, struct rf_err *err)
{
    struct db_stmt *s = NULL;
    bool row;
    char **made = xcalloc((size_t)n + 1, sizeof *made);
    size_t nmade = 0;
    enum rf_status rc = db_query(db, sql, args, nargs, &s, err);
    if (rc == RF_OK) {
        while ((rc = db_next(s, &row, err)) == RF_OK && row && nmade < (size_t)n)
            made[nmade++] = xstrdup(db_text(s, 0));
        db_done(s);
    }
    qsort(made, nmade, sizeof *made, by_str);
    for (int i = 0; i < n; i++)
        created[i] = rc == RF_OK && ids[i] &&
                     bsearch(&ids[i], made, nmade, sizeof *made, by_str) != NULL;
    for (size_t k = 0; k < nmade; k++)
        free(made[k]);
    free(made);
    return rc;
}

enum rf_status rows_collect(struct db_stmt *s, row_fn from_row, json_t **out, struct rf_err *err)
{
    bool row;
    enum rf_status rc;
    json_t *arr = json_array();
    while ((rc = db_next(s, &row, err)) == RF_OK && row)
        json_array_append_new(arr, from_row(s));
    db_done(s);
    if (rc) {
        json_decref(arr);
        arr = NULL;
    }
    *out = arr;
    return rc;
}

enum rf_status page_collect(struct db_stmt *s, row_fn from_row, int limit, const char *key_field,
                            struct store_list *out, struct rf_err *err)
{
    bool row;
    enum rf_status rc;
    size_t bytes = 0;
    out->data = json_array();
    out->next_cursor = NULL;
    while ((rc = db_next(s, &row, err)) == RF_OK && row) {
        size_t n = json_array_size(out->data);
        if ((int)n == limit || (n > 0 && bytes >= STORE_PAGE_BYTES)) {
            /* A row past the page: there is a next one, after the last kept element. */
            json_t *key = json_object_get(json_array_get(out->data, n - 1), key_field);
            out->next_cursor = json_is_integer(key)
                                   ? xasprintf("%lld", (long long)json_integer_value(key))
                                   : xstrdup(json_string_value(key));
            break;
        }
        json_t *item = from_row(s);
        bytes += jx_size_estimate(item);
        json_array_append_new(out->data, item);
    }
    db_done(s);
    if (rc) {
        store_list_release(out);
        out->data = NULL;
        out->next_cursor = NULL;
    }
    return rc;
}

const char *store_outcome_name(enum store_outcome o)
{
    switch (o) {
    case OUTCOME_CREATED: return "created";
    case OUTCOME_UPDATED: return "updated";
    case OUTCOME_UNCHANGED: return "unchanged";
    case OUTCOME_REJECTED: return "rejected";
    }
    return "rejected";
}
