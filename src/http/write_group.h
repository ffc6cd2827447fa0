/*
 * write_group - PUT /v1/traces/{id}/feedback requests that arrive together share
 * one transaction (group commit), written by a thread of their own while the
 * HTTP threads go on serving.
 *
 * DESIGN. A rating is the hottest single write (a labelling UI, a pipeline
 * sending one rating per call), and each one alone pays a whole transaction:
 * the write lock, BEGIN, the counter update, COMMIT and its WAL pages. Worse,
 * an HTTP thread that waits for the write lock leaves every other connection it
 * serves waiting too, and a mutex lets some threads wait many turns (wrk's p99
 * was 5x its p50). So the rating handler suspends its connection
 * (MHD_suspend_connection) and queues the rating; the group's writer thread
 * takes everything queued - in arrival order, up to GROUP_MAX - and applies it
 * in one transaction, each item with its own workspace, read-back and outcome,
 * then resumes the connections, whose handlers answer from the result
 * (write_group_finish). The HTTP thread is free meanwhile; a rating waits for at
 * most the group in progress and its own.
 *
 * Outcomes stay per request: a rating for an unknown trace answers 404 to its
 * request alone. If the group's transaction fails as a whole (a database
 * error), each member is applied again alone, so one request's failure never
 * becomes another's. Once write_group_stop has run (server shutdown), ratings
 * are written at once on the caller's thread, so that no connection is left
 * suspended when the daemon stops.
 *
 * For tests (tests/integration/rating_groups.test.mjs), read only with
 * REFOLD_TEST_JOBS=1: REFOLD_TEST_RATING_FAIL=NOTE makes every rating with that
 * note fail inside the transaction, and REFOLD_TEST_RATING_HOLD_MS=N makes the
 * writer wait N ms before it takes the queue, so that groups form even on a
 * busy machine.
 */
#ifndef REFOLD_WRITE_GROUP_H
#define REFOLD_WRITE_GROUP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "core/status.h"
#include "store/store.h"

struct write_group;
struct rating; /* one queued rating and, later, its outcome */

/* A group writing to db_url; its writer thread starts on the first rating. */
struct write_group *write_group_new(const char *db_url);
/* Write what is queued, stop the writer; later ratings are written at once. */
void write_group_stop(struct write_group *g);
void write_group_free(struct write_group *g);

/* Queue a rating of trace_id in workspace ws (note may be NULL): suspends conn and resumes it
 * once the rating is written. Returns the rating to hand to write_group_finish when the
 * connection's handler runs again. NULL after write_group_stop: write with
 * write_group_now instead. The strings are copied. */
struct rating *write_group_submit(struct write_group *g, struct MHD_Connection *conn,
                                  const char *ws, const char *trace_id, const char *rating,
                                  const char *note);
/* The outcome of a submitted rating, then frees it: on success *out is the trace's feedback
 * as stored ({trace_id, rating, note, created_at, updated_at}); caller owns it. */
enum rf_status write_group_finish(struct rating *r, json_t **out, struct rf_err *err);
/* Free a rating whose connection went away before write_group_finish. */
void write_group_discard(struct rating *r);
/* Write one rating now, in its own transaction on st. */
enum rf_status write_group_now(struct write_group *g, struct store *st, const char *ws,
                               const char *trace_id, const char *rating, const char *note,
                               json_t **out, struct rf_err *err);

#endif
