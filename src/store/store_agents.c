/*
 * store_agents - agents, their versioned prompt templates and the version
 * state machine.
 *
 * Invariants kept here: version numbers are 1, 2, 3 ... per agent (max + 1
 * inside the inserting transaction, backed by the unique (agent_id, version)
 * index); at most one version per agent is active (partial unique index) and
 * agents.active_version_id names it; promote moves the old active version to
 * archived in the same transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/template.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

#define AGENT_COLS                                                                                 \
    "a.id, a.name, a.description, a.status, a.active_version_id, a.created_at, a.updated_at"
#define AGENT_NCOLS 7

static const char *SQL_AGENT_INSERT =
    "INSERT INTO agents (id, workspace_id, name, description, status, active_version_id, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)";
static const char *SQL_STATS_INSERT = "INSERT INTO agent_stats (agent_id) VALUES (?)";
static const char *SQL_AGENT_SET_ACTIVE =
    "UPDATE agents SET active_version_id = ?, updated_at = ? WHERE id = ?";
static const char *SQL_AGENT_GET =
    "SELECT " AGENT_COLS ", " VERSION_COLS " FROM agents a "
    "LEFT JOIN agent_versions v ON v.id = a.active_version_id "
    "WHERE a.id = ? AND a.workspace_id = ?";
static const char *SQL_AGENT_LIST =
    "SELECT " AGENT_COLS ", " VERSION_COLS " FROM agents a "
    "LEFT JOIN agent_versions v ON v.id = a.active_version_id "
    "WHERE a.workspace_id = ? AND a.id < ? AND (CAST(? AS TEXT) IS NULL OR a.status = ?) "
    "AND (CAST(? AS TEXT) IS NULL OR a.name = ?) ORDER BY a.id DESC LIMIT ?";
static const char *SQL_AGENT_STATUS =
    "SELECT status FROM agents WHERE id = ? AND workspace_id = ?";
static const char *SQL_AGENT_UPDATE =
    "UPDATE agents SET name = COALESCE(?, name), "
    "description = CASE WHEN ? = 1 THEN ? ELSE description END, "
    "status = COALESCE(?, status), updated_at = ? WHERE id = ? AND workspace_id = ?";
static const char *SQL_AGENT_ARCHIVE =
    "UPDATE agents SET status = 'archived', updated_at = ? "
    "WHERE id = ? AND workspace_id = ? AND status <> 'archived'";
/* The 10 stats columns (agent_stats s, agent a) in the order stats_from_row reads. */
#define STATS_COLS                                                                                 \
    "s.traces, s.positive, s.negative, s.neutral, s.executions, s.pos_pass, s.pos_fail, "        \
    "s.neg_pass, s.neg_fail, (SELECT COUNT(*) FROM evals e WHERE e.agent_id = a.id)"
static const char *SQL_STATS_GET =
    "SELECT " STATS_COLS " FROM agent_stats s JOIN agents a ON a.id = s.agent_id "
    "WHERE s.agent_id = ? AND a.workspace_id = ?";
/* GET /v1/agents/{id}: the agent, its active version and its stats in one statement. */
static const char *SQL_AGENT_GET_STATS =
    "SELECT " AGENT_COLS ", " VERSION_COLS ", " STATS_COLS " FROM agents a "
    "LEFT JOIN agent_versions v ON v.id = a.active_version_id "
    "LEFT JOIN agent_stats s ON s.agent_id = a.id "
    "WHERE a.id = ? AND a.workspace_id = ?";
static const char *SQL_STATS_ADD =
    "UPDATE agent_stats SET traces = traces + ?, positive = positive + ?, "
    "negative = negative + ?, neutral = neutral + ?, executions = executions + ?, "
    "pos_pass = pos_pass + ?, pos_fail = pos_fail + ?, neg_pass = neg_pass + ?, "
    "neg_fail = neg_fail + ? WHERE agent_id = ?";

/* Every change to an agent's versions (a new version, promote, reject) first takes the
 * agent row's lock, before it reads anything: on PostgreSQL that serialises them per
 * agent, so version numbers are consecutive and each transition reads the state the
 * previous one committed (two promotes at once would otherwise both archive the old
 * active version and collide on agent_versions_one_active; a reject racing a promote
 * could reject the version just made active). SQLite writers are serialised anyway. */
static const char *SQL_AGENT_LOCK = "UPDATE agents SET updated_at = updated_at WHERE id = ?";
static const char *SQL_VERSION_SAME_TEMPLATE =
    "SELECT id FROM agent_versions WHERE agent_id = ? AND prompt_template = ? "
    "ORDER BY version LIMIT 1";
static const char *SQL_VERSION_NEXT =
    "SELECT COALESCE(MAX(version), 0) + 1 FROM agent_versions WHERE agent_id = ?";
static const char *SQL_VERSION_INSERT =
    "INSERT INTO agent_versions (id, agent_id, version, prompt_template, variables, source, "
    "parent_version_id, status, change_summary, changes, failure_patterns, created_by_job_id, "
    "created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char *SQL_VERSION_GET =
    "SELECT " VERSION_COLS " FROM agent_versions v JOIN agents a ON a.id = v.agent_id "
    "WHERE v.agent_id = ? AND a.workspace_id = ? AND v.version = ?";
static const char *SQL_VERSION_BY_ID =
    "SELECT " VERSION_COLS " FROM agent_versions v WHERE v.id = ?";
static const char *SQL_VERSION_FIND =
    "SELECT " VERSION_COLS " FROM agent_versions v JOIN agents a ON a.id = v.agent_id "
    "WHERE v.id = ? AND a.workspace_id = ?";
static const char *SQL_VERSION_LIST =
    "SELECT " VERSION_COLS " FROM agent_versions v "
    "WHERE v.agent_id = ? AND v.version < ? AND (CAST(? AS TEXT) IS NULL OR v.status = ?) "
    "ORDER BY v.version DESC LIMIT ?";
static const char *SQL_VERSION_ARCHIVE_ACTIVE =
    "UPDATE agent_versions SET status = 'archived', decided_at = ? "
    "WHERE agent_id = ? AND status = 'active'";
static const char *SQL_VERSION_DECIDE =
    "UPDATE agent_versions SET status = ?, decided_at = ?, review_note = COALESCE(?, review_note) "
    "WHERE id = ?";

static json_t *agent_from_row(struct db_stmt *s)
{
    json_t *a = json_object();
    json_object_set_new(a, "id", col_str(s, 0));
    json_object_set_new(a, "name", col_str(s, 1));
    json_object_set_new(a, "description", col_str(s, 2));
    json_object_set_new(a, "status", col_str(s, 3));
    json_object_set_new(a, "active_version_id", col_str(s, 4));
    json_object_set_new(a, "active_version",
                        db_is_null(s, AGENT_NCOLS) ? json_null()
                                                   : version_from_row(s, AGENT_NCOLS));
    json_object_set_new(a, "created_at", col_time(s, 5));
    json_object_set_new(a, "updated_at", col_time(s, 6));
    return a;
}

/* The agent's status, or RF_NOT_FOUND when it is not in ws. */
static enum rf_status agent_status(struct db *db, const char *ws, const char *id, char *status,
                                   size_t n, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(db, SQL_AGENT_STATUS, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        snprintf(status, n, "%s", db_text(s, 0));
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "agent %s not found", id);
}

static enum rf_status name_taken(struct rf_err *err, const char *name)
{
    return rf_fail_field(err, RF_CONFLICT, "name", "an agent named \"%s\" already exists", name);
}

/* Begin a transaction that changes agent_id's versions, holding the agent's lock. */
static enum rf_status begin_versions(struct db *db, const char *agent_id, struct rf_err *err)
{
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_AGENT_LOCK, DB_ARGS(DB_T(agent_id)), NULL, err);
    return rc ? db_end(db, rc, err) : RF_OK;
}

/* Insert version max+1; parent is the current active version. Caller holds a transaction
 * (and, unless the agent is new, the agent's lock: begin_versions). */
static enum rf_status insert_version(struct db *db, const char *agent_id, const char *parent_id,
                                     const struct version_new *in, const char *status,
                                     char id[ID_MAX], struct rf_err *err)
{
    int64_t number = 1, now = clock_now_ms();
    enum rf_status rc = db_scalar(db, SQL_VERSION_NEXT, DB_ARGS(DB_T(agent_id)), &number, NULL, err);
    if (rc)
        return rc;
    json_t *vars = template_variables(in->prompt_template);
    char *vars_text = jx_dump(vars);
    char *changes = in->changes ? jx_dump(in->changes) : NULL;
    char *patterns = in->failure_patterns ? jx_dump(in->failure_patterns) : NULL;
    id_new("agv_", id);
    bool decided = strcmp(status, "candidate") != 0;
    rc = db_run(db, SQL_VERSION_INSERT,
                DB_ARGS(DB_T(id), DB_T(agent_id), DB_I(number), DB_T(in->prompt_template),
                        DB_T(vars_text), DB_T(in->source), DB_T(parent_id), DB_T(status),
                        DB_T(in->change_summary), DB_T(changes), DB_T(patterns),
                        DB_T(in->created_by_job_id), DB_I(now), DB_IN(now, decided)),
                NULL, err);
    json_decref(vars);
    free(vars_text);
    free(changes);
    free(patterns);
    if (rc == RF_CONFLICT)
        rf_fail(err, RF_CONFLICT, "version %lld of agent %s was created concurrently",
                (long long)number, agent_id);
    return rc;
}

enum rf_status store_agent_create(struct store *st, const char *ws, const struct agent_new *in,
                                  json_t **out, struct rf_err *err)
{
    struct db *db = st->db;
    char id[ID_MAX], vid[ID_MAX];
    id_new("agent_", id);
    int64_t now = clock_now_ms();
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_AGENT_INSERT,
                DB_ARGS(DB_T(id), DB_T(ws), DB_T(in->name), DB_T(in->description),
                        DB_T(in->status ? in->status : "confirmed"), DB_I(now), DB_I(now)),
                NULL, err);
    if (rc == RF_CONFLICT)
        name_taken(err, in->name);
    if (rc == RF_OK)
        rc = db_run(db, SQL_STATS_INSERT, DB_ARGS(DB_T(id)), NULL, err);
    if (rc == RF_OK && in->prompt_template) {
        struct version_new v = {.prompt_template = in->prompt_template, .source = "manual"};
        rc = insert_version(db, id, NULL, &v, "active", vid, err);
        if (rc == RF_OK)
            rc = db_run(db, SQL_AGENT_SET_ACTIVE, DB_ARGS(DB_T(vid), DB_I(now), DB_T(id)), NULL,
                        err);
    }
    rc = db_end(db, rc, err);
    if (rc == RF_OK && out)
        rc = store_agent_get(st, ws, id, false, out, err);
    return rc;
}

enum rf_status store_agent_list(struct store *st, const char *ws, const char *status,
                                const char *name, const struct store_page *page,
                                struct store_list *out, struct rf_err *err)
{
    char bound[ID_MAX];
    enum rf_status rc = page_id_cursor(page, "agent_", bound, err);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_query_rows(st->db, SQL_AGENT_LIST, /* rows carry prompt templates */
                       DB_ARGS(DB_T(ws), DB_T(bound), DB_T(status), DB_T(status), DB_T(name),
                               DB_T(name), DB_I(page->limit + 1)),
                       &s, err);
    if (rc)
        return rc;
    return page_collect(s, agent_from_row, page->limit, "id", out, err);
}

static json_t *stats_from_row(struct db_stmt *s, int c);

enum rf_status store_agent_get(struct store *st, const char *ws, const char *id, bool with_stats,
                               json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, with_stats ? SQL_AGENT_GET_STATS : SQL_AGENT_GET,
                               DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    json_t *a = found ? agent_from_row(s) : NULL;
    if (a && with_stats)
        json_object_set_new(a, "stats", stats_from_row(s, AGENT_NCOLS + VERSION_NCOLS));
    db_done(s);
    if (!found)
        return rf_fail(err, RF_NOT_FOUND, "agent %s not found", id);
    *out = a;
    return RF_OK;
}

enum rf_status store_agent_update(struct store *st, const char *ws, const char *id,
                                  const struct agent_patch *in, json_t **out, struct rf_err *err)
{
    struct db *db = st->db;
    int64_t changes = 0;
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = db_run(db, SQL_AGENT_UPDATE,
                DB_ARGS(DB_T(in->name), DB_I(in->set_description ? 1 : 0), DB_T(in->description),
                        DB_T(in->status), DB_I(clock_now_ms()), DB_T(id), DB_T(ws)),
                &changes, err);
    if (rc == RF_CONFLICT && in->name)
        name_taken(err, in->name);
    if (rc == RF_OK && changes == 0)
        rc = rf_fail(err, RF_NOT_FOUND, "agent %s not found", id);
    rc = db_end(db, rc, err);
    if (rc == RF_CONFLICT && !in->name) {
        /* Un-archived onto a taken name: its own, read once the transaction is over
         * (PostgreSQL reads nothing in a failed one). */
        json_t *agent = NULL;
        struct rf_err ignored;
        const char *name = NULL;
        if (store_agent_get(st, ws, id, false, &agent, &ignored) == RF_OK)
            name = json_string_value(json_object_get(agent, "name"));
        name_taken(err, name ? name : id);
        json_decref(agent);
    }
    if (rc == RF_OK && out)
        rc = store_agent_get(st, ws, id, false, out, err);
    return rc;
}

enum rf_status store_agent_archive(struct store *st, const char *ws, const char *id,
                                   struct rf_err *err)
{
    struct db *db = st->db;
    char status[16];
    enum rf_status rc = db_begin(db, err);
    if (rc)
        return rc;
    rc = agent_status(db, ws, id, status, sizeof status, err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_AGENT_ARCHIVE, DB_ARGS(DB_I(clock_now_ms()), DB_T(id), DB_T(ws)),
                    NULL, err);
    return db_end(db, rc, err);
}

int64_t *stats_for(struct stats_deltas *d, const char *agent_id)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->a[i].agent_id, agent_id) == 0)
            return d->a[i].v;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4;
        d->a = xrealloc(d->a, sizeof *d->a * (size_t)d->cap);
    }
    memset(&d->a[d->n], 0, sizeof d->a[d->n]);
    snprintf(d->a[d->n].agent_id, ID_MAX, "%s", agent_id);
    return d->a[d->n++].v;
}

static int by_agent(const void *a, const void *b)
{
    return strcmp(((const struct stats_delta_row *)a)->agent_id,
                  ((const struct stats_delta_row *)b)->agent_id);
}

enum rf_status stats_apply(struct db *db, struct stats_deltas *d, struct rf_err *err)
{
    enum rf_status rc = RF_OK;
    /* In agent order: concurrent batches (PostgreSQL) then lock the counter rows in one
     * order and cannot deadlock on them. */
    if (d->n > 1)
        qsort(d->a, (size_t)d->n, sizeof *d->a, by_agent);
    for (int i = 0; rc == RF_OK && i < d->n; i++) {
        const int64_t *v = d->a[i].v;
        bool any = false;
        for (int k = 0; k < ST_COUNT; k++)
            any = any || v[k] != 0;
        if (any)
            rc = db_run(db, SQL_STATS_ADD,
                        DB_ARGS(DB_I(v[ST_TRACES]), DB_I(v[ST_POSITIVE]), DB_I(v[ST_NEGATIVE]),
                                DB_I(v[ST_NEUTRAL]), DB_I(v[ST_EXECUTIONS]),
                                DB_I(v[ST_POS_PASS]), DB_I(v[ST_POS_FAIL]),
                                DB_I(v[ST_NEG_PASS]), DB_I(v[ST_NEG_FAIL]),
                                DB_T(d->a[i].agent_id)),
                        NULL, err);
    }
    free(d->a);
    memset(d, 0, sizeof *d);
    return rc;
}

enum rf_status counted_tx(struct db *db, counted_fn fn, void *ctx, struct rf_err *err)
{
    enum { ATTEMPTS = 5 };
    bool outermost = db->depth == 0;
    for (int attempt = 1;; attempt++) {
        struct stats_deltas deltas = {0};
        enum rf_status rc = db_begin(db, err);
        if (rc)
            return rc;
        rc = fn(db, ctx, &deltas, err);
        if (rc == RF_OK)
            rc = stats_apply(db, &deltas, err);
        free(deltas.a);
        rc = db_end(db, rc, err);
        if (rc == RF_OK || !outermost || attempt == ATTEMPTS || !db_retryable(err))
            return rc;
        log_info("transaction retried", "attempt=%d reason=%s", attempt, err->reason);
    }
}

void stats_bucket(int64_t *v, const char *rating, bool predicted, int64_t sign)
{
    if (!rating)
        return;
    if (strcmp(rating, "positive") == 0)
        v[predicted ? ST_POS_PASS : ST_POS_FAIL] += sign;
    else if (strcmp(rating, "negative") == 0)
        v[predicted ? ST_NEG_PASS : ST_NEG_FAIL] += sign;
}

const char *agent_stats_sql(void)
{
    return SQL_STATS_GET;
}

const char *agent_get_stats_sql(void)
{
    return SQL_AGENT_GET_STATS;
}

/* The Stats object of SPEC §4.2 from the STATS_COLS at column c (all NULL: no counters
 * row, which every agent has; reported as zeros). */
static json_t *stats_from_row(struct db_stmt *s, int c)
{
    int64_t traces = db_int(s, c), pos = db_int(s, c + 1), neg = db_int(s, c + 2),
            neu = db_int(s, c + 3), execs = db_int(s, c + 4), pp = db_int(s, c + 5),
            pf = db_int(s, c + 6), np = db_int(s, c + 7), nf = db_int(s, c + 8),
            evals = db_int(s, c + 9);
    int64_t judged = pp + pf + np + nf, contradictions = pf + np;
    json_t *o = json_object();
    json_object_set_new(o, "traces", json_integer(traces));
    json_object_set_new(o, "rated", json_integer(pos + neg + neu));
    json_object_set_new(o, "positive", json_integer(pos));
    json_object_set_new(o, "negative", json_integer(neg));
    json_object_set_new(o, "neutral", json_integer(neu));
    json_object_set_new(o, "evals", json_integer(evals));
    json_object_set_new(o, "executions", json_integer(execs));
    json_object_set_new(o, "contradictions", json_integer(contradictions));
    json_object_set_new(o, "missed_failures", json_integer(np));
    json_object_set_new(o, "false_alarms", json_integer(pf));
    json_object_set_new(o, "contradiction_rate",
                        judged ? json_real((double)contradictions / (double)judged)
                               : json_null());
    json_object_set_new(o, "eval_accuracy",
                        judged ? json_real(1.0 - (double)contradictions / (double)judged)
                               : json_null());
    return o;
}

enum rf_status store_agent_stats(struct store *st, const char *ws, const char *agent_id,
                                 json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc =
        db_row(st->db, SQL_STATS_GET, DB_ARGS(DB_T(agent_id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = stats_from_row(s, 0);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "agent %s not found", agent_id);
}

/* ---- versions ---- */

static enum rf_status version_by_id(struct db *db, const char *id, json_t **out,
                                    struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(db, SQL_VERSION_BY_ID, DB_ARGS(DB_T(id)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = version_from_row(s, 0);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "version %s not found", id);
}

enum rf_status store_version_create(struct store *st, const char *ws, const char *agent_id,
                                    const struct version_new *in, json_t **out, bool *created,
                                    struct rf_err *err)
{
    struct db *db = st->db;
    char status[16], vid[ID_MAX];
    json_t *active = NULL;
    bool same = false;
    if (created)
        *created = false;
    enum rf_status rc = begin_versions(db, agent_id, err);
    if (rc)
        return rc;
    rc = agent_status(db, ws, agent_id, status, sizeof status, err);
    if (rc == RF_OK && strcmp(status, "archived") == 0) {
        rc = rf_fail_reason(err, RF_CONFLICT, "agent_archived", "agent %s is archived", agent_id);
    }
    if (rc == RF_OK && in->reuse_identical) {
        struct db_stmt *s;
        rc = db_row(db, SQL_VERSION_SAME_TEMPLATE,
                    DB_ARGS(DB_T(agent_id), DB_T(in->prompt_template)), &s, &same, err);
        if (rc == RF_OK && same)
            snprintf(vid, sizeof vid, "%s", db_text(s, 0));
        if (rc == RF_OK)
            db_done(s);
    }
    if (rc == RF_OK && !same) {
        rc = store_version_active(st, ws, agent_id, &active, err);
        if (rc == RF_CONFLICT) /* no active version: the new one has no parent */
            rc = RF_OK;
    }
    /* Made active: the old active version is archived first (at most one active). */
    bool activate = in->status && strcmp(in->status, "active") == 0;
    int64_t now = clock_now_ms();
    if (rc == RF_OK && !same && activate)
        rc = db_run(db, SQL_VERSION_ARCHIVE_ACTIVE, DB_ARGS(DB_I(now), DB_T(agent_id)), NULL, err);
    if (rc == RF_OK && !same)
        rc = insert_version(db, agent_id,
                            in->parent_version_id ? in->parent_version_id
                            : active ? json_string_value(json_object_get(active, "id"))
                                     : NULL,
                            in, in->status ? in->status : "candidate", vid, err);
    if (rc == RF_OK && !same && activate)
        rc = db_run(db, SQL_AGENT_SET_ACTIVE, DB_ARGS(DB_T(vid), DB_I(now), DB_T(agent_id)), NULL,
                    err);
    json_decref(active);
    rc = db_end(db, rc, err);
    if (rc == RF_OK && created)
        *created = !same;
    if (rc == RF_OK && out)
        rc = version_by_id(db, vid, out, err);
    return rc;
}

static json_t *version_row(struct db_stmt *s)
{
    return version_from_row(s, 0);
}

enum rf_status store_version_list(struct store *st, const char *ws, const char *agent_id,
                                  const char *status, const struct store_page *page,
                                  struct store_list *out, struct rf_err *err)
{
    char astatus[16];
    int64_t bound = INT32_MAX;
    if (page->cursor) {
        char *end;
        bound = strtoll(page->cursor, &end, 10);
        if (*end || bound < 1)
            return rf_fail_field(err, RF_INVALID, "cursor", "cursor is not one this API returned");
    }
    enum rf_status rc = agent_status(st->db, ws, agent_id, astatus, sizeof astatus, err);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_query_rows(st->db, SQL_VERSION_LIST,
                       DB_ARGS(DB_T(agent_id), DB_I(bound), DB_T(status), DB_T(status),
                               DB_I(page->limit + 1)),
                       &s, err);
    if (rc)
        return rc;
    return page_collect(s, version_row, page->limit, "version", out, err);
}

enum rf_status store_version_get(struct store *st, const char *ws, const char *agent_id,
                                 int64_t number, json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_VERSION_GET,
                               DB_ARGS(DB_T(agent_id), DB_T(ws), DB_I(number)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = version_from_row(s, 0);
    db_done(s);
    if (found)
        return RF_OK;
    char status[16];
    rc = agent_status(st->db, ws, agent_id, status, sizeof status, err);
    return rc ? rc
              : rf_fail(err, RF_NOT_FOUND, "agent %s has no version %lld", agent_id,
                        (long long)number);
}

enum rf_status store_version_find(struct store *st, const char *ws, const char *version_id,
                                  json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc =
        db_row(st->db, SQL_VERSION_FIND, DB_ARGS(DB_T(version_id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = version_from_row(s, 0);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "version %s not found", version_id);
}

enum rf_status store_version_active(struct store *st, const char *ws, const char *agent_id,
                                    json_t **out, struct rf_err *err)
{
    json_t *agent = NULL;
    enum rf_status rc = store_agent_get(st, ws, agent_id, false, &agent, err);
    if (rc)
        return rc;
    json_t *v = json_object_get(agent, "active_version");
    if (json_is_object(v)) {
        *out = json_incref(v);
    } else {
        rc = rf_fail_reason(err, RF_CONFLICT, "no_active_version",
                            "agent %s has no active version", agent_id);
    }
    json_decref(agent);
    return rc;
}

static enum rf_status invalid_transition(struct rf_err *err, const char *verb, int64_t n,
                                         const char *status)
{
    return rf_fail_reason(err, RF_CONFLICT, "invalid_transition", "cannot %s version %lld: it is %s",
                          verb, (long long)n, status);
}

enum rf_status store_version_promote(struct store *st, const char *ws, const char *agent_id,
                                     int64_t number, const char *note, json_t **out,
                                     struct rf_err *err)
{
    struct db *db = st->db;
    json_t *v = NULL;
    int64_t now = clock_now_ms();
    enum rf_status rc = begin_versions(db, agent_id, err);
    if (rc)
        return rc;
    rc = store_version_get(st, ws, agent_id, number, &v, err);
    if (rc)
        goto out;
    const char *status = json_string_value(json_object_get(v, "status"));
    const char *vid = json_string_value(json_object_get(v, "id"));
    if (strcmp(status, "candidate") != 0 && strcmp(status, "archived") != 0) {
        rc = invalid_transition(err, "promote", number, status);
        goto out;
    }
    rc = db_run(db, SQL_VERSION_ARCHIVE_ACTIVE, DB_ARGS(DB_I(now), DB_T(agent_id)), NULL, err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_VERSION_DECIDE, DB_ARGS(DB_T("active"), DB_I(now), DB_T(note), DB_T(vid)),
                    NULL, err);
    if (rc == RF_OK)
        rc = db_run(db, SQL_AGENT_SET_ACTIVE, DB_ARGS(DB_T(vid), DB_I(now), DB_T(agent_id)), NULL,
                    err);
    if (rc == RF_OK) {
        char id[ID_MAX];
        snprintf(id, sizeof id, "%s", vid);
        json_decref(v);
        v = NULL;
        rc = version_by_id(db, id, &v, err);
    }
out:
    rc = db_end(db, rc, err);
    if (rc == RF_OK && out)
        *out = v;
    else
        json_decref(v);
    return rc;
}

enum rf_status store_version_reject(struct store *st, const char *ws, const char *agent_id,
                                    int64_t number, const char *reason, json_t **out,
                                    struct rf_err *err)
{
    struct db *db = st->db;
    json_t *v = NULL;
    enum rf_status rc = begin_versions(db, agent_id, err);
    if (rc)
        return rc;
    rc = store_version_get(st, ws, agent_id, number, &v, err);
    if (rc)
        goto out;
    const char *status = json_string_value(json_object_get(v, "status"));
    char id[ID_MAX];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(v, "id")));
    if (strcmp(status, "candidate") != 0) {
        rc = invalid_transition(err, "reject", number, status);
        goto out;
    }
    rc = db_run(db, SQL_VERSION_DECIDE,
                DB_ARGS(DB_T("rejected"), DB_I(clock_now_ms()), DB_T(reason), DB_T(id)), NULL,
                err);
    json_decref(v);
    v = NULL;
    if (rc == RF_OK)
        rc = version_by_id(db, id, &v, err);
out:
    rc = db_end(db, rc, err);
    if (rc == RF_OK && out)
        *out = v;
    else
        json_decref(v);
    return rc;
}
