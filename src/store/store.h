/*
 * store - refold's one persistence interface.
 *
 * Everything that is stored goes through here; no SQL, no SQLite or libpq
 * type leaves src/store/. The backend is chosen by the URL given to
 * store_open (a postgres:// URL selects PostgreSQL, anything else is a SQLite
 * file), and callers cannot tell which one they got.
 *
 * Entities cross this boundary as jansson objects shaped exactly like the
 * API's objects (SPEC §4.2: ids, RFC 3339 timestamps, nested JSON columns
 * parsed), because the HTTP layer, the CLI and the jobs all consume them in
 * that shape; inputs are plain C structs that the caller has validated.
 * Every query is scoped by workspace id: an object of another workspace is
 * reported exactly like a missing one (RF_NOT_FOUND).
 *
 * Returned json_t values are owned by the caller (json_decref). Strings in
 * input structs are borrowed for the duration of the call.
 *
 * Threading: a struct store is one database connection for one thread at a
 * time; each thread opens its own. Writes are transactions; store_begin /
 * store_commit let a caller group several store calls (they nest: the
 * outermost commit decides).
 *
 * Counters: agent_stats holds exact per-agent counts behind Agent.stats and
 * is maintained by every write path of traces, feedback and executions; the
 * contradiction query walks an agent's feedback newest first by index. See
 * docs/architecture.md.
 */
#ifndef REFOLD_STORE_H
#define REFOLD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/ulid.h"

struct store;

/* ---- connection, schema, transactions ---- */

/* Open a connection (does not migrate). Caller owns it; close with store_close. */
enum rf_status store_open(const char *url, struct store **out, struct rf_err *err);
void store_close(struct store *st);
/* "sqlite" or "postgres". */
const char *store_backend(const struct store *st);
/* The same for the connection store_open would make for url, without opening one. */
const char *store_url_backend(const char *url);
/* Apply pending numbered migrations; *applied (may be NULL) gets how many ran. Safe to run
 * from several processes at once. Tests only: REFOLD_TEST_MIGRATE_TO=N with REFOLD_TEST_JOBS=1
 * applies none above N (an older schema for the upgrade tests). */
enum rf_status store_migrate(struct store *st, int *applied, struct rf_err *err);
/* Highest applied migration number (0 on an empty database). */
enum rf_status store_schema_version(struct store *st, int *version, struct rf_err *err);
/* Number of migrations compiled into this binary. */
int store_migrations_known(void);
enum rf_status store_ping(struct store *st, struct rf_err *err);
enum rf_status store_begin(struct store *st, struct rf_err *err);
enum rf_status store_commit(struct store *st, struct rf_err *err);
void store_rollback(struct store *st);
/* Let the reads up to store_read_end share one snapshot: one read transaction instead of
 * one per statement, for request paths that read several times. A store_begin inside the
 * scope ends it first. Scopes do not nest; store_read_end without one does nothing. */
enum rf_status store_read_begin(struct store *st, struct rf_err *err);
void store_read_end(struct store *st);
/* A number that differs between two calls on this connection whenever anything at all was
 * committed to the database in between (by this process or another). Equal values mean
 * every read would answer the same, which is what lets the HTTP layer reuse a response.
 * RF_UNSUPPORTED on backends that cannot tell (PostgreSQL). */
enum rf_status store_data_version(struct store *st, uint64_t *out, struct rf_err *err);

/* ---- lists ---- */

#define STORE_LIMIT_DEFAULT 50
#define STORE_LIMIT_MAX 500
/* A list page (and the API's contradictions) ends early past about this much JSON. */
#define STORE_PAGE_BYTES (8u * 1024 * 1024)

struct store_page {
    int limit;          /* 1..STORE_LIMIT_MAX */
    const char *cursor; /* NULL for the first page; else a next_cursor seen before */
};

struct store_list {
    json_t *data;      /* array, caller owns */
    char *next_cursor; /* NULL on the last page; caller frees */
};

/* Release both members. */
void store_list_release(struct store_list *l);

/* ---- workspaces and API keys ---- */

/* {id, name, created_at}; RF_CONFLICT when the name is taken. */
enum rf_status store_workspace_create(struct store *st, const char *name, json_t **out,
                                      struct rf_err *err);
/* By name or id. */
enum rf_status store_workspace_find(struct store *st, const char *name_or_id, json_t **out,
                                    struct rf_err *err);
enum rf_status store_workspace_list(struct store *st, json_t **out, struct rf_err *err);

#define API_KEY_PREFIX_LEN 8

/* Create a key; *secret (caller frees) is the only time the plain key exists.
 * out: {id, workspace_id, name, prefix, created_at, revoked_at}. */
enum rf_status store_key_create(struct store *st, const char *workspace_id, const char *name,
                                char **secret, json_t **out, struct rf_err *err);
enum rf_status store_key_list(struct store *st, const char *workspace_id, json_t **out,
                              struct rf_err *err);
/* Revoke by id or by prefix: RF_CONFLICT when several active keys have that prefix. */
enum rf_status store_key_revoke(struct store *st, const char *workspace_id,
                                const char *id_or_prefix, json_t **out, struct rf_err *err);
/* Resolve a presented key to its workspace; RF_UNAUTHORIZED when unknown or revoked. */
enum rf_status store_key_authenticate(struct store *st, const char *secret,
                                      char workspace_id[ID_MAX], struct rf_err *err);

/* Sign in with an API key: a new session token (caller frees) valid for ttl_ms. Deletes
 * the expired sessions of every key, as store_session_delete does. */
enum rf_status store_session_create(struct store *st, const char *api_key, int64_t ttl_ms,
                                    char **token, struct rf_err *err);
/* Resolve a session token to its workspace; RF_UNAUTHORIZED when unknown, expired or its
 * key was revoked. */
enum rf_status store_session_authenticate(struct store *st, const char *token,
                                          char workspace_id[ID_MAX], struct rf_err *err);
/* Sign out (unknown tokens are ignored), and delete the expired sessions. */
enum rf_status store_session_delete(struct store *st, const char *token, struct rf_err *err);

/* ---- agents ---- */

struct agent_new {
    const char *name;
    const char *description;     /* may be NULL */
    const char *prompt_template; /* may be NULL: then no version is created */
    const char *status;          /* NULL: "confirmed" */
};

/* Creates the agent and, with a template, version 1 (manual, active). */
enum rf_status store_agent_create(struct store *st, const char *ws, const struct agent_new *in,
                                  json_t **out, struct rf_err *err);
/* Newest first; status and name (exact match) filter when not NULL. A name matches at
 * most one non-archived agent, and any number of archived ones. */
enum rf_status store_agent_list(struct store *st, const char *ws, const char *status,
                                const char *name, const struct store_page *page,
                                struct store_list *out, struct rf_err *err);
/* Agent with its active version, and with "stats" when with_stats. */
enum rf_status store_agent_get(struct store *st, const char *ws, const char *id, bool with_stats,
                               json_t **out, struct rf_err *err);

struct agent_patch {
    const char *name;        /* NULL: unchanged */
    bool set_description;    /* description given (NULL clears it) */
    const char *description;
    const char *status;      /* NULL: unchanged */
};

enum rf_status store_agent_update(struct store *st, const char *ws, const char *id,
                                  const struct agent_patch *in, json_t **out, struct rf_err *err);
/* Archive (idempotent). */
enum rf_status store_agent_archive(struct store *st, const char *ws, const char *id,
                                   struct rf_err *err);
/* Stats object of SPEC §4.2 from the counters. */
enum rf_status store_agent_stats(struct store *st, const char *ws, const char *agent_id,
                                 json_t **out, struct rf_err *err);

/* ---- versions ---- */

struct version_new {
    const char *prompt_template;
    const char *source;            /* "manual", "ai_improved", "discovered" */
    const char *status;            /* NULL: "candidate"; "active": promoted at once */
    const char *change_summary;    /* may be NULL */
    const json_t *changes;         /* array or NULL */
    const json_t *failure_patterns; /* array or NULL */
    const char *created_by_job_id; /* may be NULL */
    const char *parent_version_id; /* NULL: the agent's active version (if any) */
    bool reuse_identical; /* a version with exactly this template is the answer, if any */
};

/* New version max+1 of the agent; parent = the active version (if any). Variables are
 * extracted from the template. RF_CONFLICT (reason agent_archived) for archived agents.
 * With in->reuse_identical, the agent's oldest version whose template is byte for byte
 * in->prompt_template, when there is one, is *out instead (checked under the agent's
 * lock, so two such calls at once make one version). *created (may be NULL) says which.
 * A new version with in->status "active" is promoted in the same transaction. */
enum rf_status store_version_create(struct store *st, const char *ws, const char *agent_id,
                                    const struct version_new *in, json_t **out, bool *created,
                                    struct rf_err *err);
/* Ordered by version descending; the cursor is a version number. */
enum rf_status store_version_list(struct store *st, const char *ws, const char *agent_id,
                                  const char *status, const struct store_page *page,
                                  struct store_list *out, struct rf_err *err);
enum rf_status store_version_get(struct store *st, const char *ws, const char *agent_id,
                                 int64_t number, json_t **out, struct rf_err *err);
/* A version by id. */
enum rf_status store_version_find(struct store *st, const char *ws, const char *version_id,
                                  json_t **out, struct rf_err *err);
/* The agent's active version; RF_CONFLICT with reason "no_active_version" when none. */
enum rf_status store_version_active(struct store *st, const char *ws, const char *agent_id,
                                    json_t **out, struct rf_err *err);
/* candidate|archived -> active; the previous active -> archived; one transaction.
 * RF_CONFLICT (reason invalid_transition) from other states. */
enum rf_status store_version_promote(struct store *st, const char *ws, const char *agent_id,
                                     int64_t number, const char *note, json_t **out,
                                     struct rf_err *err);
/* candidate -> rejected; RF_CONFLICT from other states. */
enum rf_status store_version_reject(struct store *st, const char *ws, const char *agent_id,
                                    int64_t number, const char *reason, json_t **out,
                                    struct rf_err *err);

/* ---- batches (traces, feedback, executions) ---- */

enum store_outcome { OUTCOME_CREATED, OUTCOME_UPDATED, OUTCOME_UNCHANGED, OUTCOME_REJECTED };

/* What happened to one item of a batch. */
struct store_item_result {
    enum store_outcome outcome;
    char id[ID_MAX];   /* the stored object's id unless rejected */
    struct rf_err err; /* when rejected */
};

const char *store_outcome_name(enum store_outcome o);

/* A reference to a trace: by id, or by (source, external_id). */
struct trace_ref {
    const char *trace_id;
    const char *source; /* NULL: "api" */
    const char *external_id;
};

/* ---- traces ---- */

struct trace_new {
    const char *agent_id;         /* one of agent_id (active version) ... */
    const char *agent_version_id; /* ... or agent_version_id is required */
    const char *source;           /* NULL: "api" */
    const char *external_id;      /* may be NULL: then never deduplicated */
    int64_t timestamp;            /* ms */
    bool has_timestamp;           /* false: now */
    const char *input;
    const char *output;
    const char *steps;    /* compact JSON array text or NULL */
    const char *metadata; /* compact JSON object text or NULL */
};

/* Insert or update n traces in one transaction. An item whose (source, external_id)
 * exists is updated when its content differs (unchanged otherwise); an item naming an
 * unknown or foreign agent/version is rejected alone. results has n entries. */
enum rf_status store_traces_put(struct store *st, const char *ws, const struct trace_new *items,
                                int n, struct store_item_result *results, struct rf_err *err);
/* The Trace object, plus "evaluations": every eval's verdict on it, [{eval_id, eval_name,
 * predicted_result, predicted_reason, execution_time_ms, executed_at}] by eval name. */
enum rf_status store_trace_get(struct store *st, const char *ws, const char *id, json_t **out,
                               struct rf_err *err);
/* Only the trace's input and output (caller owns both, free()); RF_NOT_FOUND when the
 * workspace has no such trace. */
enum rf_status store_trace_texts(struct store *st, const char *ws, const char *id, char **input,
                                 char **output, struct rf_err *err);

struct trace_filter {
    const char *agent_id; /* NULL: all */
    int64_t version;      /* with agent_id; 0: all */
    const char *rating;   /* NULL: any */
    int has_feedback;     /* -1 any, 0 without, 1 with */
};

enum rf_status store_trace_list(struct store *st, const char *ws, const struct trace_filter *f,
                                const struct store_page *page, struct store_list *out,
                                struct rf_err *err);
/* Delete a trace with its feedback and executions (counters follow). */
enum rf_status store_trace_delete(struct store *st, const char *ws, const char *id,
                                  struct rf_err *err);

/* ---- feedback ---- */

struct feedback_new {
    struct trace_ref trace;
    const char *rating; /* positive|negative|neutral */
    const char *note;   /* may be NULL */
};

/* Upsert n feedback rows in one transaction (one per trace); results has n entries, whose
 * id is the trace id. */
enum rf_status store_feedback_put(struct store *st, const char *ws, const struct feedback_new *items,
                                  int n, struct store_item_result *results, struct rf_err *err);
/* {rating, note, updated_at} of a trace's feedback. */
enum rf_status store_feedback_get(struct store *st, const char *ws, const char *trace_id,
                                  json_t **out, struct rf_err *err);
enum rf_status store_feedback_delete(struct store *st, const char *ws, const char *trace_id,
                                     struct rf_err *err);

/* ---- evals and executions ---- */

/* {id, agent_id, name, description, created_at}; RF_CONFLICT on a duplicate name. */
enum rf_status store_eval_create(struct store *st, const char *ws, const char *agent_id,
                                 const char *name, const char *description, json_t **out,
                                 struct rf_err *err);
enum rf_status store_eval_list(struct store *st, const char *ws, const char *agent_id,
                               const struct store_page *page, struct store_list *out,
                               struct rf_err *err);
enum rf_status store_eval_get(struct store *st, const char *ws, const char *id, json_t **out,
                              struct rf_err *err);

struct execution_new {
    struct trace_ref trace;
    bool predicted_result;
    const char *predicted_reason; /* may be NULL */
    int64_t execution_time_ms;
    bool has_execution_time;
};

/* Upsert n executions of one eval, one per (eval, trace); the trace must belong to the
 * eval's agent. results' ids are execution ids. */
enum rf_status store_executions_put(struct store *st, const char *ws, const char *eval_id,
                                    const struct execution_new *items, int n,
                                    struct store_item_result *results, struct rf_err *err);

/* ---- contradictions ---- */

/* Up to limit contradictions of the agent (SPEC §7 step 2), newest feedback first (a
 * trace's several, by eval id descending); kind is NULL, "missed_failure" or
 * "false_alarm". Elements: {trace_id, eval_id, eval_name, kind, human_rating, note,
 * predicted_result, predicted_reason, feedback_at, input, output}.
 * With max_bytes > 0, fewer once the elements reach about that much JSON (never none
 * when there is one): the API's answer stays bounded while each carries its trace.
 * Without texts, the elements leave out input and output (the improvement job reads them
 * one trace at a time). cursor (NULL: from the newest) continues after a previous page:
 * a malformed one is RF_INVALID, field "cursor". next_cursor, when not NULL, receives the
 * next page's cursor when more follow, else NULL (caller owns, free with free()). */
enum rf_status store_contradictions(struct store *st, const char *ws, const char *agent_id,
                                    const char *kind, int limit, size_t max_bytes, bool texts,
                                    const char *cursor, char **next_cursor, json_t **out,
                                    struct rf_err *err);

/* ---- query introspection (tests and benchmarks) ---- */

/* The SQL text of a named store query, for plan checks (EXPLAIN QUERY PLAN) in tests and
 * benchmarks: "contradictions" (SPEC §7 step 2; "contradictions_pg" is the text PostgreSQL
 * runs, with `?` placeholders like the others), "agent_get" (an agent with its stats, as
 * GET /v1/agents/{id} reads it), "agent_stats". NULL for unknown names. Static storage. */
const char *store_query_sql(const char *name);

/* ---- best practices ---- */

enum rf_status store_practice_list(struct store *st, const char *ws, const char *category,
                                   const struct store_page *page, struct store_list *out,
                                   struct rf_err *err);
enum rf_status store_practice_create(struct store *st, const char *ws, const char *category,
                                     const char *title, const char *content, const char *url,
                                     json_t **out, struct rf_err *err);
/* Delete one of the workspace's own rows; built-in rows and other workspaces' rows
 * answer RF_NOT_FOUND. */
enum rf_status store_practice_delete(struct store *st, const char *ws, const char *id,
                                     struct rf_err *err);
/* The practices the improvement job sends (SPEC §7 step 4): categories clarity, structure,
 * reasoning, general; workspace rows first, then newest; at most limit. */
enum rf_status store_practice_select(struct store *st, const char *ws, int limit, json_t **out,
                                     struct rf_err *err);

/* ======================================================================================
 * ---- jobs, job events and LLM calls (store_jobs.c, store_job_worker.c,
 *      store_job_events.c, store_llm_calls.c; semantics in docs/jobs.md) ----
 *
 * A job moves queued -> running (claim) -> completed | failed | cancelled, or back to
 * queued (transient failure, expired lease, shutdown release, API retry). Every write a
 * worker makes is fenced: it names the claim (job id, attempt, lease_owner) and matches
 * nothing once the job was requeued or claimed again, which the store reports as
 * RF_LEASE_LOST with nothing written. Events get seq 1, 2, 3 ... per job from
 * jobs.event_seq, incremented in the same transaction as the change they describe.
 * ====================================================================================== */

#define JOB_TYPE_MAX 64
#define JOB_OWNER_MAX 80
#define JOB_DEFAULT_MAX_ATTEMPTS 3
#define JOB_MAX_ATTEMPTS_LIMIT 20
#define IDEMPOTENCY_KEY_MAX 200

struct job_new {
    const char *type;
    const char *params;          /* compact JSON object text */
    const char *agent_id;        /* may be NULL; kept for the agent_id list filter */
    int max_attempts;            /* 1..JOB_MAX_ATTEMPTS_LIMIT */
    int64_t run_at;              /* ms */
    const char *idempotency_key; /* may be NULL */
    const char *fingerprint;     /* with a key: hash of what the key stands for */
};

/* Insert a queued job; *out is the row as inserted (read before the commit, so never a
 * worker's later claim). With an idempotency key already used in ws: *created is false and
 * *out is the existing job as it is now when the fingerprints match, else RF_CONFLICT (reason
 * "idempotency_key_reused"). Concurrent callers with one key get one job. *out caller owns. */
enum rf_status store_job_create(struct store *st, const char *ws, const struct job_new *in,
                                json_t **out, bool *created, struct rf_err *err);
/* The job an earlier request made with idempotency key `key` in ws: *out set when its
 * fingerprint matches, RF_CONFLICT ("idempotency_key_reused") when it does not, *out NULL
 * when no job holds the key. *out caller owns. */
enum rf_status store_job_by_key(struct store *st, const char *ws, const char *key,
                                const char *fingerprint, json_t **out, struct rf_err *err);
/* The Job object of SPEC §4.2. */
enum rf_status store_job_get(struct store *st, const char *ws, const char *id, json_t **out,
                             struct rf_err *err);

struct job_filter {
    const char *status;   /* NULL: any */
    const char *type;     /* NULL: any */
    const char *agent_id; /* NULL: any */
};

/* Newest first; the cursor is a job id. */
enum rf_status store_job_list(struct store *st, const char *ws, const struct job_filter *f,
                              const struct store_page *page, struct store_list *out,
                              struct rf_err *err);

/* What a worker got from a claim. params: caller owns (json_decref). */
struct job_claimed {
    char id[ID_MAX];
    char workspace_id[ID_MAX];
    char type[JOB_TYPE_MAX];
    json_t *params;
    int attempt; /* this run's attempt, 1-based */
    int max_attempts;
    bool cancel_requested;
};

/* Move the oldest due queued job (run_at <= now) to running under lease_owner until
 * now + lease_ms, incrementing attempt. *claimed false when nothing is due. */
enum rf_status store_job_claim(struct store *st, const char *owner, int64_t now,
                               int64_t lease_ms, struct job_claimed *out, bool *claimed,
                               struct rf_err *err);
/* The earliest run_at of a queued job; *found false when none is queued. */
enum rf_status store_job_next_due(struct store *st, int64_t *run_at, bool *found,
                                  struct rf_err *err);

/* Names one claim of a job; every worker write carries it. Strings borrowed. */
struct job_fence {
    const char *job_id;
    int attempt;
    const char *owner;
};

/* Extend the lease to lease_until; *cancel_requested (may be NULL) gets the flag.
 * RF_LEASE_LOST when the claim no longer holds. */
enum rf_status store_job_heartbeat(struct store *st, const struct job_fence *f,
                                   int64_t lease_until, bool *cancel_requested,
                                   struct rf_err *err);
/* Read the cancel flag of a claim (no write); RF_LEASE_LOST when the claim no longer holds. */
enum rf_status store_job_check(struct store *st, const struct job_fence *f,
                               bool *cancel_requested, struct rf_err *err);
/* Store stage/progress on the job and append a `progress` event {job_id, status, stage,
 * progress, ...extra}. extra (may be NULL) is an object of stage-specific fields. */
enum rf_status store_job_progress(struct store *st, const struct job_fence *f, const char *stage,
                                  int progress, const json_t *extra, struct rf_err *err);
/* Append a `log` event {job_id, level, message}. */
enum rf_status store_job_log(struct store *st, const struct job_fence *f, const char *level,
                             const char *message, struct rf_err *err);

/* Run inside a job's completing transaction, after the fence matched and before the
 * result is stored; may add rows with st and fields to result. A failure rolls back
 * the whole completion. */
typedef enum rf_status (*store_txn_fn)(struct store *st, json_t *result, void *ud,
                                       struct rf_err *err);

/* running -> completed with result (borrowed; fn may change it), the `completed` event and
 * fn's rows, in one transaction. fn may be NULL. */
enum rf_status store_job_complete(struct store *st, const struct job_fence *f, json_t *result,
                                  store_txn_fn fn, void *ud, struct rf_err *err);
/* running -> failed with {code, message} and a `failed` event, or -> cancelled with a
 * `cancelled` event when a cancel was requested meanwhile. *status (may be NULL) gets the
 * state reached: "failed" or "cancelled". */
enum rf_status store_job_fail(struct store *st, const struct job_fence *f, const char *code,
                              const char *message, const char **status, struct rf_err *err);
/* running -> queued at run_at keeping {code, message} as the last error, with a `retry`
 * event; or -> cancelled when a cancel was requested. *status: "queued" or "cancelled". */
enum rf_status store_job_reschedule(struct store *st, const struct job_fence *f, int64_t run_at,
                                    const char *code, const char *message, const char **status,
                                    struct rf_err *err);
/* running -> cancelled with a `cancelled` event (the handler stopped on request). */
enum rf_status store_job_cancelled(struct store *st, const struct job_fence *f, struct rf_err *err);
/* running -> queued, due now, giving the attempt back (shutdown), with a `log` event. */
enum rf_status store_job_release(struct store *st, const struct job_fence *f, struct rf_err *err);

/* One job the sweeper touched. */
struct job_swept {
    char id[ID_MAX];
    const char *status; /* "queued", "failed" or "cancelled" (static strings) */
};

/* Requeue up to max running jobs whose lease expired before now (a `retry` event each), or
 * fail them (`failed`) when their attempts are exhausted, or cancel them when a cancel was
 * requested. out has room for max entries; *n gets how many were touched. */
enum rf_status store_job_sweep(struct store *st, int64_t now, struct job_swept *out, int max,
                               int *n, struct rf_err *err);

/* API cancel: queued -> cancelled at once (with a `cancelled` event); running ->
 * cancel_requested = 1 (*running true); cancelled stays as is. RF_CONFLICT (reason
 * "invalid_transition") for completed and failed jobs. *out: the Job as this call left it,
 * read before the commit (a running job: still running, cancel_requested true). */
enum rf_status store_job_cancel(struct store *st, const char *ws, const char *id, json_t **out,
                                bool *running, struct rf_err *err);
/* API retry: failed|cancelled -> queued with attempt 0 (a fresh budget), same id, and a
 * `progress` event saying so. RF_CONFLICT (reason "invalid_transition") otherwise. *out: the
 * Job as the retry wrote it (queued, attempt 0), read before the commit. */
enum rf_status store_job_retry(struct store *st, const char *ws, const char *id, json_t **out,
                               struct rf_err *err);

/* Called once per event, in seq order; data is the event's compact JSON text (borrowed for
 * the call), with "created_at" (the row's created_at as RFC 3339, the time the event was
 * written) added as its last key. A non-zero return stops the walk. */
typedef int (*store_event_fn)(void *ud, int64_t seq, const char *type, const char *data,
                              int64_t created_at);

/* Events of a job (no workspace check: callers checked the job) with seq > after, at most
 * limit, in order; *last (may be NULL) gets the last seq visited (after when none). */
enum rf_status store_job_events_each(struct store *st, const char *job_id, int64_t after,
                                     int limit, store_event_fn fn, void *ud, int64_t *last,
                                     struct rf_err *err);
/* The same as a JSON array of {seq, type, data, created_at} (caller owns). */
enum rf_status store_job_events(struct store *st, const char *job_id, int64_t after, int limit,
                                json_t **out, struct rf_err *err);
/* The seq of the job's last stored event into *seq (0 when it has none). */
enum rf_status store_job_events_last(struct store *st, const char *job_id, int64_t *seq,
                                     struct rf_err *err);

/* Number of jobs by status, indexed like JOB_STATUSES. */
#define JOB_NSTATUS 5
extern const char *const JOB_STATUSES[JOB_NSTATUS + 1]; /* NULL-terminated */
enum rf_status store_job_counts(struct store *st, int64_t counts[JOB_NSTATUS],
                                struct rf_err *err);
/* Only the queued and running jobs into counts (the other statuses 0): through the partial
 * indexes of those statuses, so it costs what those jobs are, not the whole table. */
enum rf_status store_job_counts_open(struct store *st, int64_t counts[JOB_NSTATUS],
                                     struct rf_err *err);

/* A cheap "did anything change?" probe for the SSE hub's watcher on SQLite: *changed is
 * true when another connection may have committed since the previous call on this
 * connection (PRAGMA data_version). PostgreSQL always reports true: there the wake-up is
 * store_job_events_listen's notifications. */
enum rf_status store_changes_poll(struct store *st, int64_t *token, bool *changed,
                                  struct rf_err *err);

/* ---- cross-node wake-ups (PostgreSQL LISTEN/NOTIFY) ---- */

/* Every transaction that writes job events also sends, on PostgreSQL, a notification on
 * channel refold_job_events with the job id as payload; it is delivered at commit to every
 * listening connection, on any node. This makes st such a listener, now and after every
 * reconnect. RF_UNSUPPORTED on SQLite (poll store_changes_poll there); RF_UNAVAILABLE when
 * the database is down (the LISTEN still happens at the next reconnect). */
enum rf_status store_job_events_listen(struct store *st, struct rf_err *err);
/* The descriptor to poll(2) for readability between calls: notifications, or the server
 * closing the connection. -1 while disconnected (and on SQLite). */
int store_notify_fd(struct store *st);
typedef void (*store_job_id_fn)(void *ud, const char *job_id);
/* Hand fn the job id of each notification received so far, including those that arrived
 * during other queries on st. RF_UNAVAILABLE when the connection is lost: any later call
 * (store_ping) reconnects. */
enum rf_status store_job_events_notified(struct store *st, store_job_id_fn fn, void *ud,
                                         struct rf_err *err);
/* Server sessions st has had: 1, then one more per reconnect. Notifications sent while the
 * connection was down are lost, so a listener re-reads what it follows when this changes. */
uint64_t store_sessions(const struct store *st);

/* ---- LLM calls (the job's transcript) ---- */

struct llm_call_new {
    const char *step;                /* analysis | rewrite | repair */
    const char *provider;
    const char *model;
    const char *request;             /* compact JSON text, no secrets */
    const char *response_text;       /* may be NULL */
    const char *stop_reason;         /* may be NULL */
    int http_status;                 /* 0: none (stored NULL) */
    const char *provider_request_id; /* may be NULL */
    bool has_input_tokens;           /* each count is stored NULL unless known */
    bool has_output_tokens;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t latency_ms;
    const char *error;               /* may be NULL */
};

/* Insert one call of the claim's attempt, fenced like every worker write; id (may be NULL)
 * gets the new llm_ id. */
enum rf_status store_llm_call_insert(struct store *st, const struct job_fence *f,
                                     const struct llm_call_new *in, char *id,
                                     struct rf_err *err);
/* The job's calls, oldest first (a transcript); the cursor is a call id. Elements: {id,
 * job_id, attempt, step, provider, model, request, response_text, stop_reason, http_status,
 * provider_request_id, input_tokens, output_tokens, latency_ms, error, created_at}. */
enum rf_status store_llm_call_list(struct store *st, const char *ws, const char *job_id,
                                   const struct store_page *page, struct store_list *out,
                                   struct rf_err *err);

#endif
