/*
 * follow - follow a job's event stream (GET /v1/jobs/{id}/events, SSE) until its
 * terminal event, for `refold job --follow`, `refold improve` and `refold demo`.
 *
 * Events are parsed with llm/sse.h's client parser and handed to a callback once each,
 * in seq order. A terminal event is the end only when nothing follows it: a job retried
 * after it failed or was cancelled goes on with its new run's events. When the stream
 * breaks (a server restart) it reconnects after the stream's `retry:` delay with
 * Last-Event-ID, so no event is missed or repeated, and gives up after two minutes
 * without reaching the server; when no server answered the first request at all, it
 * fails at once (a wrong REFOLD_URL, no `refold serve`). Single-threaded: it runs on the
 * caller's thread and client.
 */
#ifndef REFOLD_CMD_FOLLOW_H
#define REFOLD_CMD_FOLLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmd/client.h"

/* One job event; data is the parsed payload (borrowed for the call; JSON null when it
 * did not parse). */
typedef void (*follow_event_fn)(void *ud, int64_t seq, const char *type, const json_t *data);

#define FOLLOW_TERMINAL_MAX 16

/* Follow job id until it completes, fails or is cancelled; terminal gets that status.
 * fn may be NULL (wait without looking at the events).
 * When the job had already finished with nothing left to send, terminal is read from
 * the job itself. Fails (err) on 404/401 and when the server stays away. */
enum rf_status follow_job(struct client *cl, const char *id, follow_event_fn fn, void *ud,
                          char terminal[FOLLOW_TERMINAL_MAX], struct rf_err *err);

/* From now until the process exits, SIGINT (Ctrl-C) or SIGTERM stops following job id
 * without touching the job, which keeps running on the server: the process erases the
 * status line of a terminal view first (clear_line: "\r\e[K" on stdout), says on stderr,
 * in one line, how to follow or cancel the job, and exits with 128 + the signal (130
 * after Ctrl-C). For `refold improve` and `refold job --follow`; `refold demo` handles
 * its signals itself. */
void follow_stop_on_interrupt(const char *id, bool clear_line);

#endif
