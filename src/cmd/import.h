/*
 * import - the bulk importer behind `refold import` and `refold demo`: a JSON Lines
 * stream of agents, versions, evals, traces, feedback and eval executions (SPEC §9),
 * written through the HTTP API of a running server.
 *
 * DESIGN. The stream is read in large blocks and never held whole (files of 1 GB and
 * more). Each line is parsed once, with the same jansson flags as the server, so a line
 * that the client accepts is never what breaks a batch request. The API's batch
 * endpoints do the work for the three bulk types: traces, feedback and executions
 * accumulate in per-type batches (executions per eval) of up to 1,000 items, and each
 * line travels as it was written, with the resolved id spliced in front for traces
 * ({"agent_id":"…", …}): the API ignores the fields it does not know, so no line is
 * re-serialised. Up to `parallel` batch requests are in flight at once on kept-alive
 * connections (a libcurl multi handle), so the client parses the next batch while the
 * server stores the previous one. Names are resolved once and cached: agents by name
 * (GET /v1/agents?name=), an agent's evals and versions in one list call each.
 *
 * Ordering. The result is what importing the lines one by one, in file order, would
 * give, for files whose references point upwards (an agent or eval line before the
 * lines naming it, a trace before its feedback and executions):
 *   - agent, version and eval lines are applied synchronously, in order;
 *   - a trace line without "version" is pinned to the version the file last stated as
 *     the agent's prompt (the agent line's prompt_template, or the latest version line
 *     with "status": "active"), so it does not matter when its batch reaches the server,
 *     nor which version is active when the file is imported again; with no such line it
 *     goes to the agent's active version (sent with agent_id: the trace batches are
 *     flushed before the importer activates another version);
 *   - a feedback or execution batch is sent only after every earlier trace batch that
 *     holds one of its traces has answered; feedback and execution batches that share a
 *     trace may be in flight together (the server computes each one's counter deltas
 *     from the other's rows inside its transaction, under the trace's row lock on
 *     PostgreSQL, so the counters come out exact in either order);
 *   - two batches of one type that share a key (the same trace, or the same eval and
 *     trace) are never in flight together, so the later line wins, as in file order.
 * Keys are compared as 64-bit hashes; a collision only costs a wait.
 *
 * Failures. A line the server rejects is reported with its line number and the import
 * goes on. A request (a batch, or an agent, eval or version call) whose connection broke
 * or could not be made, or that got a 503, is sent again twice after a pause (batches are
 * upserts, the other calls are made safe to repeat); if it still fails, or the key is
 * refused, the import stops with one error (import_run returns it) naming the line from
 * which on lines may be undone, instead of a report for each such line. A batch sent again
 * after its connection broke (by the importer, or by libcurl itself on a kept-alive
 * connection: CURLOPT_PREREQFUNCTION counts the sendings) may find its lines stored by the
 * first sending, whose answer was lost: they count as unchanged and in st->uncertain (a
 * create of an agent, eval or version sent again counts as created: import_names.c).
 *
 * Interruption (opts->stop, set by the first SIGINT or SIGTERM): no more lines are read
 * (a read waiting on a pipe is cut short) and no more requests sent; the requests in flight
 * get IMPORT_STOP_WAIT_MS to answer, as they may be stored, and are then given up and
 * counted in st->unanswered; st->undone_from says from which line on the file was not
 * (all) imported. A version is never activated while trace batches sent with agent_id are
 * unanswered, interrupted or not (import_flush_traces waits for them), so importing the
 * file again gives every trace the version a whole import would.
 *
 * Idempotency (docs in README, "Import"): agents are found by name among non-archived
 * agents, evals by (agent, name), traces by (source, external_id); feedback and
 * executions are upserts. A template (an agent's prompt_template, or a version line)
 * that is byte-identical to any existing version of the agent is `unchanged`, whatever
 * that version's status, so a re-import never undoes a promotion or a rejection made in
 * refold. A new template becomes a new manual version, activated for agent lines and
 * for version lines with "status": "active". Two runs at once: an agent or eval that
 * exists by the time it is created (409) is looked up again and is an existing one, and
 * versions are created with reuse_identical, so one template makes one version.
 *
 * Single-threaded: the caller's thread runs the parser and the transfers.
 */
#ifndef REFOLD_CMD_IMPORT_H
#define REFOLD_CMD_IMPORT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd/client.h"

enum import_type {
    IMPORT_AGENT,
    IMPORT_VERSION,
    IMPORT_EVAL,
    IMPORT_TRACE,
    IMPORT_FEEDBACK,
    IMPORT_EXECUTION,
    IMPORT_INVALID, /* lines without a known type: not JSON, no "type", ... */
    IMPORT_NTYPES,
};

/* The line type's name as written in files ("eval_execution"; "invalid"). */
const char *import_type_name(enum import_type t);

struct import_counts {
    int64_t created, updated, unchanged, rejected;
};

struct import_stats {
    struct import_counts by_type[IMPORT_NTYPES];
    int64_t lines;    /* lines read, blank ones included */
    int64_t records;  /* non-blank lines */
    int64_t rejected; /* records rejected, all types */
    /* Records counted unchanged in the answers to batches sent again after their
     * connection broke: if the first sending was stored before its answer was lost, this
     * import created or updated them (README, "Import"). */
    int64_t uncertain;
    /* An interrupted import (import_run returned RF_CANCELLED): the first line not imported
     * (the records before it were all answered; from it on, lines were left unread, unsent or
     * unanswered), and how many records went in requests still unanswered when the importer
     * stopped waiting: they may or may not be stored. */
    int64_t undone_from;
    int64_t unanswered;
    int64_t started_us; /* clock_mono_us() at the start */
    int64_t elapsed_us; /* so far */
};

/* Where the lines come from: a descriptor (read in blocks), or bytes in memory. */
struct import_source {
    int fd;          /* used when mem is NULL */
    const char *mem; /* e.g. an embedded file */
    size_t mem_len;
    const char *name; /* for messages: "examples/x.jsonl", "stdin" */
};

struct import_opts {
    int batch;    /* items per request, 1..1000 (0: 1000) */
    int parallel; /* batch requests in flight, 1..16 (0: 3) */
    FILE *errors; /* each rejected line is reported here ("NAME:LINE: TYPE: why") */
    /* Called about every 200 ms while importing (may be NULL). */
    void (*progress)(void *ud, const struct import_stats *st);
    /* Called before a rejected line is reported on errors (may be NULL): a progress line
     * drawn on the same terminal is erased first, so the report starts a line of its own. */
    void (*before_report)(void *ud);
    void *ud;
    /* When *stop becomes non-zero (a signal: cmd_interrupt_flag), the import winds down: no
     * more lines are read and no more requests are sent, the requests in flight get up to
     * IMPORT_STOP_WAIT_MS to answer, and import_run returns RF_CANCELLED (may be NULL). */
    const volatile sig_atomic_t *stop;
};

/* How long an interrupted import waits for the answers to its requests in flight: a batch
 * normally answers in milliseconds, and an answer says what was stored. */
#define IMPORT_STOP_WAIT_MS 3000

#define IMPORT_MAX_LINE (8u * 1024 * 1024)

/* Import every line of src through the API client cl. Rejected lines are reported and
 * counted, and do not stop the import; a fatal problem (the server cannot be reached,
 * the input cannot be read) does, with err set; opts->stop does too, returning
 * RF_CANCELLED with err empty. *st gets the counts either way. */
enum rf_status import_run(struct client *cl, const struct import_source *src,
                          const struct import_opts *opts, struct import_stats *st,
                          struct rf_err *err);

#endif
