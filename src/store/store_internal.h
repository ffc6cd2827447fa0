/*
 * store_internal - what the store_*.c files share: the connection struct,
 * the column lists and row readers that turn result rows into API objects,
 * and the page/cursor helpers. Private to src/store/.
 */
#ifndef REFOLD_STORE_INTERNAL_H
#define REFOLD_STORE_INTERNAL_H

#include <jansson.h>

#include "store/db.h"
#include "store/store.h"

struct store {
    struct db *db;
};

/* The 16 columns of agent_versions, aliased v, in the order version_from_row reads. */
#define VERSION_COLS                                                                               \
    "v.id, v.agent_id, v.version, v.prompt_template, v.variables, v.source, "                      \
    "v.parent_version_id, v.status, v.accuracy, v.change_summary, v.changes, "                     \
    "v.failure_patterns, v.created_by_job_id, v.review_note, v.created_at, v.decided_at"
#define VERSION_NCOLS 16

/* The Version object from columns col..col+15 of the current row. */
json_t *version_from_row(struct db_stmt *s, int col);

/* Text column or JSON null. */
json_t *col_str(struct db_stmt *s, int col);
/* Millisecond column as an RFC 3339 string, or null. */
json_t *col_time(struct db_stmt *s, int col);
/* Stored JSON text column parsed, or null. */
json_t *col_json(struct db_stmt *s, int col);

/* The id bound of a list page (`id < bound`, newest first): the cursor, validated as an id
 * with the list's prefix ("agent_"), as the list's own next_cursor is (else RF_INVALID,
 * field "cursor"); without a cursor, prefix + "zz…z", which sorts after every id of that
 * prefix bytewise and in PostgreSQL's linguistic collations alike. bound holds ID_MAX bytes. */
enum rf_status page_id_cursor(const struct store_page *p, const char *prefix, char *bound,
                              struct rf_err *err);

/* An API object from the current row of a statement. */
typedef json_t *(*row_fn)(struct db_stmt *s);
/* Every remaining row of s through from_row into a new array *out (NULL on failure);
 * finishes s either way. */
enum rf_status rows_collect(struct db_stmt *s, row_fn from_row, json_t **out, struct rf_err *err);
/* A page of at most limit elements from s, fetched with LIMIT limit+1, into out: when
 * more rows follow, out->next_cursor is key_field of the last kept element. A page also
 * ends early once its elements reach about STORE_PAGE_BYTES of JSON (never before its
 * first element), so listing large traces or prompts stays within bounded memory;
 * clients follow next_cursor either way. */
enum rf_status page_collect(struct db_stmt *s, row_fn from_row, int limit, const char *key_field,
                            struct store_list *out, struct rf_err *err);

/* Batches written in one statement (PostgreSQL, where each statement is a round trip). */
/* Mark in repeat (n entries) the items whose key an earlier item already has (keys[i]
 * NULL: never a repeat): only the first of them can go into the one statement. */
void batch_repeats(const char *const *keys, int n, bool *repeat);
/* Run sql, an INSERT … RETURNING id, and set created[i] for every item whose ids[i] came
 * back (ids[i] NULL: the item was not in the statement). */
enum rf_status batch_insert(struct db *db, const char *sql, const struct db_val *args, int nargs,
                            const char *const *ids, int n, bool *created, struct rf_err *err);

/* The counters of agent_stats, in column order. */
enum stat {
    ST_TRACES, ST_POSITIVE, ST_NEGATIVE, ST_NEUTRAL, ST_EXECUTIONS,
    ST_POS_PASS, ST_POS_FAIL, ST_NEG_PASS, ST_NEG_FAIL, ST_COUNT
};

/* Counter changes gathered over a batch, per agent, written by stats_apply in one UPDATE
 * per agent inside the batch's transaction (one UPDATE per item was a tenth of an
 * import's time). */
struct stats_delta_row {
    char agent_id[ID_MAX];
    int64_t v[ST_COUNT];
};

struct stats_deltas {
    struct stats_delta_row *a;
    int n, cap;
};

/* The agent's row of deltas (zeros at first), valid until the next call. */
int64_t *stats_for(struct stats_deltas *d, const char *agent_id);
/* Add every row of deltas to agent_stats and free them (also on failure). */
enum rf_status stats_apply(struct db *db, struct stats_deltas *d, struct rf_err *err);
/*
 * A write that moves counters: fn does the rows and gathers its counter changes in
 * deltas; counted_tx runs it in a transaction, applies the deltas and commits (rolls back
 * on failure). On PostgreSQL, writes that depend on a trace's feedback or executions lock
 * the trace's row first (trace_resolve), so concurrent batches serialise per trace; two
 * batches that lock the same traces in opposite orders deadlock and PostgreSQL aborts one,
 * which counted_tx then rolls back and runs again (up to 5 attempts) unless it is nested
 * in an outer transaction. fn must therefore start from a clean slate on every call.
 */
typedef enum rf_status (*counted_fn)(struct db *db, void *ctx, struct stats_deltas *deltas,
                                     struct rf_err *err);
enum rf_status counted_tx(struct db *db, counted_fn fn, void *ctx, struct rf_err *err);
/* Counter moves for one execution on a trace rated `rating` (NULL: unrated), signed. */
void stats_bucket(int64_t *v, const char *rating, bool predicted, int64_t sign);

/* A trace reference resolved inside a workspace, with the trace's feedback. */
struct trace_found {
    char trace_id[ID_MAX];
    char agent_id[ID_MAX];
    char rating[16]; /* "" when the trace has no feedback */
    char *note;      /* the feedback's note or NULL; release with trace_found_release */
};

/* The traces a batch locked up front (PostgreSQL), sorted by id, as the locking read saw
 * them; by_ext: the same sorted by (source, external_id). With `rated` (trace_locks_read),
 * each one's rating as of after the lock, so trace_resolve answers from here. */
struct trace_locked {
    char *id, *agent_id, *source, *external_id;
    char rating[16];
};
struct trace_locks {
    struct trace_locked *rows;
    struct trace_locked **by_ext;
    int n;
    bool rated;
};

/* PostgreSQL: lock every trace the batch's n items name, in one statement and in id order,
 * so that concurrent batches sharing traces wait for each other instead of deadlocking.
 * Items are `stride` bytes apart and each begins with its struct trace_ref. SQLite (one
 * writer at a time): nothing to do. Release out with trace_locks_release. */
enum rf_status trace_lock_batch(struct db *db, const char *ws, const void *items, size_t stride,
                                int n, struct trace_locks *out, struct rf_err *err);
void trace_locks_release(struct trace_locks *l);
/* Start sql, whose one parameter is the locked traces' ids as a JSON array (PostgreSQL:
 * jsonb_array_elements_text). */
enum rf_status trace_locks_query(struct db *db, const struct trace_locks *l, const char *sql,
                                 struct db_stmt **out, struct rf_err *err);
/* The locked trace ref names, or NULL: none that the locking read saw. */
struct trace_locked *trace_locked_find(const struct trace_locks *l, const struct trace_ref *ref);
/* PostgreSQL, after trace_lock_batch: read the locked traces' ratings (one statement), so
 * that trace_resolve needs no query for them. For batches that do not change ratings (eval
 * executions): a rating written by the batch itself would not show. */
enum rf_status trace_locks_read(struct db *db, struct trace_locks *l, struct rf_err *err);

/* Resolve ref inside workspace ws; RF_NOT_FOUND (naming the field) when it names no trace.
 * For writers only: on PostgreSQL the trace's row stays locked (FOR NO KEY UPDATE) until the
 * transaction ends, so the feedback and executions read under the lock cannot change
 * underneath; locks (may be NULL) are the ones the batch already holds. */
enum rf_status trace_resolve(struct db *db, const char *ws, const struct trace_ref *ref,
                             const struct trace_locks *locks, struct trace_found *out,
                             struct rf_err *err);
void trace_found_release(struct trace_found *t);
/* trace_resolve for one item of a batch: a ref naming no trace rejects the item (r->outcome,
 * r->err) and is no error (RF_OK, *found false); other failures go to r->err and err. */
enum rf_status trace_resolve_item(struct db *db, const char *ws, const struct trace_ref *ref,
                                  const struct trace_locks *locks, struct trace_found *out,
                                  struct store_item_result *r, bool *found, struct rf_err *err);


/* One trace named by id, for counted_tx: its feedback or the trace itself goes. */
struct trace_removal {
    const char *ws;
    const char *id;
};

/* store_traces.c, for store_feedback.c: both texts NULL or equal. */
bool same_text(const char *a, const char *b);
/* How many of the trace's executions predicted 1 (pass) and 0 (fail). */
enum rf_status exec_counts(struct db *db, const char *trace_id, int64_t *pass, int64_t *fail_n,
                           struct rf_err *err);
/* Counter deltas v for a trace with pass and fail_n executions whose rating goes from
 * `from` to `to` (NULL: none; different). */
void rating_deltas(const char *from, const char *to, int64_t pass, int64_t fail_n, int64_t *v);
/* The same, reading the trace's executions; equal ratings ("" or NULL: none) change nothing. */
enum rf_status move_rating(struct db *db, const char *trace_id, const char *from, const char *to,
                           int64_t *v, struct rf_err *err);

/* The durable job queue: store_jobs.c (the API's side), store_job_worker.c (claims and
 * fenced worker writes), store_job_events.c, store_llm_calls.c. */
/* The WHERE of a fenced write: the job row still held by the claim (id, attempt, owner). */
#define FENCE_WHERE "id = ? AND attempt = ? AND lease_owner = ? AND status = 'running'"
/* store_job_worker.c: RF_LEASE_LOST naming the claim f, for a fenced write that matched no row. */
enum rf_status lease_lost(struct rf_err *err, const struct job_fence *f);
/* store_job_events.c: insert event seq of job_id and notify the listeners (PostgreSQL, at
 * commit); data is stolen. */
enum rf_status insert_event(struct db *db, const char *job_id, int64_t seq, const char *type,
                            json_t *data, int64_t now, struct rf_err *err);
/* The same without the notification, for a transaction that ends with insert_event. */
enum rf_status insert_event_quiet(struct db *db, const char *job_id, int64_t seq, const char *type,
                                  json_t *data, int64_t now, struct rf_err *err);

/* The SQL of named queries, for store_query_sql. */
const char *contradictions_sql(bool pg);
const char *agent_stats_sql(void);
const char *agent_get_stats_sql(void);
const char *job_counts_open_sql(void);

#endif
