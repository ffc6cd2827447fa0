/*
 * import_internal - what the importer's three files share; private to src/cmd/import*.c.
 *
 *   import.c        the line reader, each line's routing, the bulk lines (trace, feedback,
 *                   eval_execution) and import_run;
 *   import_batch.c  the batches and their requests: the ordering rules between batches
 *                   and the libcurl multi handle that keeps `parallel` of them in flight;
 *   import_names.c  agent, version and eval lines, applied at once, and the cache of names
 *                   resolved through the API.
 *
 * The DESIGN comment (ordering, idempotency) is in import.h. Everything here runs on the
 * importer's one thread.
 */
#ifndef REFOLD_CMD_IMPORT_INTERNAL_H
#define REFOLD_CMD_IMPORT_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>

#include "cmd/import.h"
#include "core/buf.h"
#include "core/ulid.h"

/* A request whose connection broke or could not be made (the server restarted), or that
 * got a 503, is sent again up to this often, after 0.5 s, then 1 s: a restart or a short
 * outage passes, a dead server stops the import. Batches are upserts, and the agent, eval
 * and version calls are made safe to repeat (import_names.c). */
#define IMPORT_RETRIES 2
#define IMPORT_RETRY_PAUSE_MS 500

/* One request of up to batch_max bulk items of one type (executions: of one eval). */
struct batch {
    enum import_type type; /* IMPORT_TRACE, IMPORT_FEEDBACK or IMPORT_EXECUTION */
    int eval;              /* executions: index into imp->evals */
    struct buf body;
    int n;
    int64_t *lines;        /* line number of each item */
    uint64_t *keys;        /* hash of each item's trace key, sorted once sent */
    size_t *starts, *ends; /* where each item is in body (resend_halves) */
    int cap;
    CURL *easy;
    struct buf resp;
    char url[512];
    bool done;
    int tries; /* times sent again (import_batch.c's retry) */
    bool lost; /* an earlier transfer broke or was sent twice: its first sending may be stored */
    int sends; /* times the request went out in this transfer (libcurl resends on its own) */
    CURLcode cc;
    struct batch *next; /* in-flight FIFO, or the free list */
};

/* The cache of names (import_names.c): an agent's versions, the agents, the evals. */
struct version_ent {
    int64_t number;
    char id[ID_MAX];
    char *tmpl;
};

struct agent_ent {
    char *name;
    char id[ID_MAX];
    bool missing;        /* no such agent in the workspace (yet) */
    json_t *description; /* as stored (string or null) */
    bool versions_loaded, evals_loaded;
    /* The version the file last stated as the agent's prompt (its agent line's template, or
     * a version line with status active): traces without "version" are pinned to it, so
     * their version does not depend on what is active when the file is imported again.
     * "" until the file states one: then traces go to the active version. */
    char file_version[ID_MAX];
    struct version_ent *versions;
    int nversions;
};

struct eval_ent {
    char id[ID_MAX];
    int agent;
    struct batch *pending;
};

/* One import_run's state. */
struct importer {
    struct client *cl;
    const struct import_opts *opts;
    struct import_stats *st;
    const char *name;
    int batch_max, parallel;
    size_t body_target; /* a batch is sent once its body passes this (import_batch.c) */
    CURLM *multi;
    struct curl_slist *headers;
    struct batch *pending_traces, *pending_feedback;
    struct batch *head, *tail; /* in flight, oldest first */
    int inflight;
    struct batch *free_list;
    json_t *agent_index; /* name -> index into agents */
    struct agent_ent *agents;
    int nagents;
    json_t *eval_index; /* "agent_id\x1fname" -> index into evals, or -1 (missing) */
    struct eval_ent *evals;
    int nevals;
    int last_eval;        /* the previous successful eval lookup, -1 when none ... */
    char *last_eval_name; /* ... by name (owned); executions come in runs */
    bool answered;        /* the server has answered a request of this import */
    enum rf_status fatal; /* set once: stop */
    struct rf_err *err;
    int64_t last_progress_us;
    int64_t first_unsent; /* interrupted: the first line of a batch left unsent, else 0 */
};

/* ---- import.c ---- */

/* Count a rejected line and say why, one line on opts->errors: "NAME:LINE: TYPE: why". */
void import_report(struct importer *imp, int64_t line, enum import_type t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether the import was interrupted (opts->stop): read and send nothing more. */
bool import_stopping(const struct importer *imp);
/* Whether field key of obj is there with a type other than string (or null). */
bool import_not_string(const json_t *obj, const char *key);
/* A fatal problem: stop the import with err (the first one wins). Returns imp->fatal. */
enum rf_status import_fatal(struct importer *imp, const struct rf_err *e);
/* An API failure on line: fatal for the import, or a rejection of the line. */
void import_api_failed(struct importer *imp, int64_t line, enum import_type t, enum rf_status rc,
                       const struct rf_err *err);

/* ---- import_batch.c ---- */

/* Stop the import with e (see import_fatal), its message saying from which line on lines
 * may or may not be stored (line, or the first line of a batch not answered yet) when
 * the server has answered anything of this import. */
void import_stopped_at(struct importer *imp, int64_t line, const struct rf_err *e);

/* err (refold's 404 or 405 for a route it does not have: REFOLD_URL has a path, e.g. one
 * ending in /v1) made into the import's fatal error (RF_UNAVAILABLE), saying so. Every
 * request the importer makes names a route and objects the server gave it, so only a wrong
 * URL answers that way; rejecting each line for it would report the whole file. */
enum rf_status import_wrong_url(struct importer *imp, struct rf_err *err);

/* Add one item (the line, with prefix spliced after its opening brace when given, e.g.
 * {"agent_id":"…",) to the pending batch *slot of its type, sending the batch when full.
 * key is the hash of the trace the item names. */
void import_add_item(struct importer *imp, struct batch **slot, enum import_type type, int eval,
                     const char *line, size_t len, const char *prefix, int64_t lineno,
                     uint64_t key);
/* Move transfers along; with block, wait until at least the oldest batch answered. */
void import_pump(struct importer *imp, bool block);
/* Send the pending trace batch and wait until every trace batch has answered: before an
 * agent's active version changes, so that the traces sent with agent_id before it get the
 * version that was active when their lines were read. */
void import_flush_traces(struct importer *imp);
/* Send every pending batch and wait until every request has answered. */
void import_drain(struct importer *imp);
/* The import was interrupted before line next (not read): wait up to IMPORT_STOP_WAIT_MS for
 * the requests in flight, leave the batches not sent, and set st->undone_from and
 * st->unanswered. */
void import_wind_down(struct importer *imp, int64_t next);
/* Set up imp->multi and imp->headers (needs imp->cl and imp->parallel). */
void import_batches_init(struct importer *imp);
/* Free every batch (in flight after a fatal error, pending, or free) and the multi handle. */
void import_batches_release(struct importer *imp);

/* ---- import_names.c ---- */

void import_agent_line(struct importer *imp, const json_t *obj, int64_t line);
void import_version_line(struct importer *imp, const json_t *obj, int64_t line);
void import_eval_line(struct importer *imp, const json_t *obj, int64_t line);
/* The agent named by field "agent" of a line, or -1 after reporting why not. */
int import_line_agent(struct importer *imp, const json_t *obj, int64_t line, enum import_type t);
/* Make sure the agent's versions are in the cache (one list call per agent). */
enum rf_status import_load_versions(struct importer *imp, struct agent_ent *a, struct rf_err *err);
/* The index of the agent's eval named name, or -1 (with *rc RF_OK when there is none). */
int import_eval_lookup(struct importer *imp, int agent, const char *name, enum rf_status *rc,
                       struct rf_err *err);
/* Set up and free the agent and eval caches. */
void import_names_init(struct importer *imp);
void import_names_release(struct importer *imp);

#endif
