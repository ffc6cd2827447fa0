/*
 * write_group - PUT /v1/traces/{id}/feedback requests that arrive together share
 * one transaction (group commit).
 *
 * DESIGN. A rating is the hottest single write (a labelling UI, a pipeline
 * sending one rating per call), and each one alone pays a whole transaction:
 * the write lock, BEGIN, the counter update, COMMIT and its WAL pages. Under a
 * stream of them the HTTP threads also queue on the write lock, and a mutex
 * lets some of them wait many turns (wrk's p99 was 5x its p50). Here a request
 * joins a queue; the first thread that finds no leader becomes the leader and
 * applies everything queued so far - in arrival order, each item with its own
 * workspace, read-back and outcome - in one transaction, then wakes the
 * members, then leads again while requests keep arriving. So a request waits
 * for at most the group in progress and its own, not for a lottery, and a
 * group of n pays one transaction.
 *
 * Outcomes stay per request: a rating for an unknown trace answers 404 to its
 * request alone. If the group's transaction fails as a whole (a database
 * error), each member is applied again alone, so one request's failure never
 * becomes another's. For tests (tests/integration/rating_groups.test.mjs):
 * REFOLD_TEST_RATING_FAIL=NOTE makes every rating with that note fail inside
 * the transaction, and REFOLD_TEST_RATING_HOLD_MS=N makes a leader wait N ms
 * before it takes the queue, so that groups form even on a busy machine.
 */
#ifndef REFOLD_WRITE_GROUP_H
#define REFOLD_WRITE_GROUP_H

#include <jansson.h>

#include "core/status.h"
#include "store/store.h"

struct write_group;

struct write_group *write_group_new(void);
void write_group_free(struct write_group *g);

/* Rate trace_id in workspace ws (note may be NULL) through the group, using st (the calling
 * thread's store) when this thread leads. On success *out is the trace's feedback as stored
 * ({trace_id, rating, note, created_at, updated_at}); caller owns it. */
enum rf_status write_group_feedback(struct write_group *g, struct store *st, const char *ws,
                                    const char *trace_id, const char *rating, const char *note,
                                    json_t **out, struct rf_err *err);

#endif
