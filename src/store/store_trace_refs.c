/*
 * store_trace_refs - the traces a write names: resolving a trace_ref (an id, or
 * source and external_id) inside a workspace with the trace's rating, and on
 * PostgreSQL locking them.
 *
 * Counters are deltas computed from what a write read, so on PostgreSQL a write
 * that reads a trace's feedback or executions holds the trace's row lock
 * (FOR NO KEY UPDATE) until it commits. A feedback or executions batch locks all
 * its traces up front, in id order, in one statement (trace_lock_batch), so
 * concurrent batches queue instead of deadlocking; an executions batch, which
 * changes no rating, also reads the locked traces' ratings in one statement
 * (trace_locks_read) and resolves its items from that read. SQLite has one writer
 * at a time and needs none of it. Contracts in store_internal.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

_Static_assert(offsetof(struct feedback_new, trace) == 0, "trace_lock_batch reads the ref at offset 0");
_Static_assert(offsetof(struct execution_new, trace) == 0, "trace_lock_batch reads the ref at offset 0");

#define TRACE_REF_SELECT                                                                           \
    "SELECT t.id, t.agent_id, f.rating, f.note FROM traces t "                                    \
    "LEFT JOIN feedback f ON f.trace_id = t.id "
#define TRACE_REF_BY_ID "WHERE t.id = ? AND t.workspace_id = ?"
#define TRACE_REF_BY_EXTERNAL "WHERE t.workspace_id = ? AND t.source = ? AND t.external_id = ?"
static const char *SQL_TRACE_REF_ID = TRACE_REF_SELECT TRACE_REF_BY_ID;
static const char *SQL_TRACE_REF_EXTERNAL = TRACE_REF_SELECT TRACE_REF_BY_EXTERNAL;
/* PostgreSQL only (trace_resolve, trace_lock_batch): the same reads taking the trace's row
 * lock, and the lock on all of a batch's traces in id order (the refs as JSON arrays: ids,
 * and [source, external_id] pairs). */
static const char *SQL_TRACE_REF_ID_LOCK =
    TRACE_REF_SELECT TRACE_REF_BY_ID " FOR NO KEY UPDATE OF t";
static const char *SQL_TRACE_REF_EXTERNAL_LOCK =
    TRACE_REF_SELECT TRACE_REF_BY_EXTERNAL " FOR NO KEY UPDATE OF t";
static const char *SQL_TRACE_LOCK_BATCH =
    "SELECT id, agent_id, source, external_id FROM traces WHERE id IN ("
    "SELECT t.id FROM traces t WHERE t.workspace_id = ? "
    "AND t.id IN (SELECT jsonb_array_elements_text(CAST(? AS jsonb))) "
    "UNION ALL "
    "SELECT t.id FROM jsonb_array_elements(CAST(? AS jsonb)) r JOIN traces t "
    "ON t.workspace_id = ? AND t.source = r->>0 AND t.external_id = r->>1) "
    "ORDER BY id FOR NO KEY UPDATE";
static const char *SQL_TRACE_LOCKED_RATINGS =
    "SELECT trace_id, rating FROM feedback "
    "WHERE trace_id IN (SELECT jsonb_array_elements_text(CAST(? AS jsonb)))";


static enum rf_status trace_not_found(const struct trace_ref *ref, const char *source,
                                      struct rf_err *err)
{
    if (ref->trace_id)
        return rf_fail_field(err, RF_NOT_FOUND, "trace_id", "trace %s not found", ref->trace_id);
    return rf_fail_field(err, RF_NOT_FOUND, "external_id", "no trace with source %s and "
                         "external_id %s", source, ref->external_id);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct trace_locked *)a)->id, ((const struct trace_locked *)b)->id);
}

/* (source, external_id) order, a trace without external_id first. */
static int ext_cmp(const char *source, const char *external_id, const struct trace_locked *r)
{
    int c = strcmp(source, r->source);
    if (c || !external_id || !r->external_id)
        return c ? c : (external_id != NULL) - (r->external_id != NULL);
    return strcmp(external_id, r->external_id);
}

static int by_ext(const void *a, const void *b)
{
    const struct trace_locked *x = *(struct trace_locked *const *)a;
    return ext_cmp(x->source, x->external_id, *(struct trace_locked *const *)b);
}

static struct trace_locked *locked_by_id(const struct trace_locks *l, const char *id)
{
    if (!l || !l->n)
        return NULL;
    struct trace_locked key = {.id = (char *)id};
    return bsearch(&key, l->rows, (size_t)l->n, sizeof *l->rows, by_id);
}

static struct trace_locked *locked_by_ext(const struct trace_locks *l, const char *source,
                                          const char *external_id)
{
    for (int lo = 0, hi = l->n - 1; lo <= hi;) {
        int mid = lo + (hi - lo) / 2, c = ext_cmp(source, external_id, l->by_ext[mid]);
        if (c == 0)
            return l->by_ext[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

enum rf_status trace_lock_batch(struct db *db, const char *ws, const void *items, size_t stride,
                                int n, struct trace_locks *out, struct rf_err *err)
{
    memset(out, 0, sizeof *out);
    if (db->backend != DB_POSTGRES || n == 0)
        return RF_OK;
    json_t *ids = json_array(), *pairs = json_array();
    for (int i = 0; i < n; i++) {
        const struct trace_ref *r = (const void *)((const char *)items + stride * (size_t)i);
        if (r->trace_id)
            json_array_append_new(ids, json_string(r->trace_id));
        else if (r->external_id)
            json_array_append_new(pairs, json_pack("[ss]", r->source ? r->source : "api",
                                                   r->external_id));
    }
    char *ids_text = jx_dump(ids), *pairs_text = jx_dump(pairs);
    json_decref(ids);
    json_decref(pairs);
    struct db_stmt *s;
    enum rf_status rc = db_query(db, SQL_TRACE_LOCK_BATCH,
                                 DB_ARGS(DB_T(ws), DB_T(ids_text), DB_T(pairs_text), DB_T(ws)), &s,
                                 err);
    free(ids_text);
    free(pairs_text);
    if (rc)
        return rc;
    out->rows = xcalloc((size_t)n, sizeof *out->rows);
    bool row;
    while ((rc = db_next(s, &row, err)) == RF_OK && row && out->n < n) {
        struct trace_locked *r = &out->rows[out->n++];
        r->id = db_strdup(s, 0);
        r->agent_id = db_strdup(s, 1);
        r->source = db_strdup(s, 2);
        r->external_id = db_strdup(s, 3);
    }
    db_done(s);
    /* PostgreSQL locked in its collation's order; the lookups here use strcmp's. */
    qsort(out->rows, (size_t)out->n, sizeof *out->rows, by_id);
    out->by_ext = xcalloc((size_t)out->n + 1, sizeof *out->by_ext);
    for (int i = 0; i < out->n; i++)
        out->by_ext[i] = &out->rows[i];
    qsort(out->by_ext, (size_t)out->n, sizeof *out->by_ext, by_ext);
    if (rc)
        trace_locks_release(out);
    return rc;
}

enum rf_status trace_locks_query(struct db *db, const struct trace_locks *l, const char *sql,
                                 struct db_stmt **out, struct rf_err *err)
{
    json_t *ids = json_array();
    for (int i = 0; i < l->n; i++)
        json_array_append_new(ids, json_string(l->rows[i].id));
    char *ids_text = jx_dump(ids);
    json_decref(ids);
    enum rf_status rc = db_query(db, sql, DB_ARGS(DB_T(ids_text)), out, err);
    free(ids_text);
    return rc;
}

enum rf_status trace_locks_read(struct db *db, struct trace_locks *l, struct rf_err *err)
{
    if (db->backend != DB_POSTGRES || l->n == 0)
        return RF_OK;
    struct db_stmt *s;
    enum rf_status rc = trace_locks_query(db, l, SQL_TRACE_LOCKED_RATINGS, &s, err);
    if (rc)
        return rc;
    bool row;
    while ((rc = db_next(s, &row, err)) == RF_OK && row) {
        struct trace_locked *r = locked_by_id(l, db_text(s, 0));
        if (r)
            snprintf(r->rating, sizeof r->rating, "%s", db_text(s, 1) ? db_text(s, 1) : "");
    }
    db_done(s);
    l->rated = rc == RF_OK;
    return rc;
}

void trace_locks_release(struct trace_locks *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->rows[i].id);
        free(l->rows[i].agent_id);
        free(l->rows[i].source);
        free(l->rows[i].external_id);
    }
    free(l->rows);
    free(l->by_ext);
    memset(l, 0, sizeof *l);
}

static bool holds(const struct trace_locks *l, const char *id)
{
    return locked_by_id(l, id) != NULL;
}

/* One read of a trace ref and its feedback; `lock` takes the trace's row lock (PostgreSQL). */
static enum rf_status read_ref(struct db *db, const char *ws, const struct trace_ref *ref,
                               const char *source, bool lock, struct trace_found *out,
                               bool *found, struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc;
    if (ref->trace_id)
        rc = db_row(db, lock ? SQL_TRACE_REF_ID_LOCK : SQL_TRACE_REF_ID,
                    DB_ARGS(DB_T(ref->trace_id), DB_T(ws)), &s, found, err);
    else
        rc = db_row(db, lock ? SQL_TRACE_REF_EXTERNAL_LOCK : SQL_TRACE_REF_EXTERNAL,
                    DB_ARGS(DB_T(ws), DB_T(source), DB_T(ref->external_id)), &s, found, err);
    if (rc)
        return rc;
    if (*found) {
        snprintf(out->trace_id, ID_MAX, "%s", db_text(s, 0));
        snprintf(out->agent_id, ID_MAX, "%s", db_text(s, 1));
        snprintf(out->rating, sizeof out->rating, "%s", db_text(s, 2) ? db_text(s, 2) : "");
        out->note = db_strdup(s, 3);
    }
    db_done(s);
    return RF_OK;
}

struct trace_locked *trace_locked_find(const struct trace_locks *l, const struct trace_ref *ref)
{
    if (ref->trace_id)
        return locked_by_id(l, ref->trace_id);
    if (ref->external_id)
        return locked_by_ext(l, ref->source ? ref->source : "api", ref->external_id);
    return NULL;
}

enum rf_status trace_resolve(struct db *db, const char *ws, const struct trace_ref *ref,
                             const struct trace_locks *locks, struct trace_found *out,
                             struct rf_err *err)
{
    bool found, pg = db->backend == DB_POSTGRES;
    const char *source = ref->source ? ref->source : "api";
    memset(out, 0, sizeof *out);
    if (locks && locks->rated) {
        const struct trace_locked *l = trace_locked_find(locks, ref);
        if (l) { /* the locked read already has it (without the note) */
            snprintf(out->trace_id, ID_MAX, "%s", l->id);
            snprintf(out->agent_id, ID_MAX, "%s", l->agent_id);
            snprintf(out->rating, sizeof out->rating, "%s", l->rating);
            return RF_OK;
        }
    }
    enum rf_status rc = read_ref(db, ws, ref, source, pg, out, &found, err);
    if (rc == RF_OK && found && pg && !holds(locks, out->trace_id)) {
        /* The read may have waited for another transaction's lock, and a statement sees
         * the data as of its start: read again, now that the lock is ours. */
        char id[ID_MAX];
        snprintf(id, sizeof id, "%s", out->trace_id);
        trace_found_release(out);
        rc = read_ref(db, ws, &(struct trace_ref){.trace_id = id}, source, false, out, &found,
                      err);
    }
    if (rc)
        return rc;
    return found ? RF_OK : trace_not_found(ref, source, err);
}

enum rf_status trace_resolve_item(struct db *db, const char *ws, const struct trace_ref *ref,
                                  const struct trace_locks *locks, struct trace_found *out,
                                  struct store_item_result *r, bool *found, struct rf_err *err)
{
    enum rf_status rc = trace_resolve(db, ws, ref, locks, out, &r->err);
    *found = rc == RF_OK;
    if (rc == RF_NOT_FOUND) {
        r->outcome = OUTCOME_REJECTED;
        return RF_OK;
    }
    if (rc && err)
        *err = r->err;
    return rc;
}

void trace_found_release(struct trace_found *t)
{
    free(t->note);
    t->note = NULL;
}

