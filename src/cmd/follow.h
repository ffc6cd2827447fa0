/*
 * follow - follow a job's event stream (GET /v1/jobs/{id}/events, SSE) until its
 * terminal event, for `refold job --follow`, `refold improve` and `refold demo`.
 *
 * Events are parsed with llm/sse.h's client parser and handed to a callback once each,
 * in seq order. A terminal event is the end only when nothing follows it: a job retried
 * after it failed or was cancelled goes on with its new run's events. When the stream
 * breaks (a server restart) it reconnects after the stream's `retry:` delay with
 * Last-Event-ID, so no event is missed or repeated, and gives up after two minutes
 * without reaching the server (a stream silent for CLIENT_STREAM_IDLE_S counts as
 * broken); when no server answered the first request at all, nor an earlier request of
 * the client (improve's POST), it fails at once (a wrong REFOLD_URL, no `refold serve`).
 * While it reconnects, the caller is told (follow_link_fn), so that the user sees why
 * nothing happens: a status line on a terminal, a line on stderr otherwise.
 * Single-threaded: it runs on the caller's thread and client.
 */
#ifndef REFOLD_CMD_FOLLOW_H
#define REFOLD_CMD_FOLLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/client.h"

/* One job event; data is the parsed payload (borrowed for the call; JSON null when it
 * did not parse). */
typedef void (*follow_event_fn)(void *ud, int64_t seq, const char *type, const json_t *data);

/* The stream's connection, for telling the user while no events can come: FOLLOW_LOST
 * once when the stream broke or the server stopped answering (why: the error, one line),
 * FOLLOW_AWAY about every second while it reconnects, FOLLOW_BACK once when the server
 * answers again (before the events that follow). away_ms: since it was lost. */
enum follow_link { FOLLOW_LOST, FOLLOW_AWAY, FOLLOW_BACK };
typedef void (*follow_link_fn)(void *ud, enum follow_link state, int64_t away_ms, const char *why);

#define FOLLOW_TERMINAL_MAX 16

/* Follow job id until it completes, fails or is cancelled; terminal gets that status.
 * fn may be NULL (wait without looking at the events); link (may be NULL) hears about
 * the connection; both get ud. When the job had already finished with nothing left to
 * send, terminal is read from the job itself. Fails (err) on 404/401 and when the server
 * stays away. */
enum rf_status follow_job(struct client *cl, const char *id, follow_event_fn fn,
                          follow_link_fn link, void *ud, char terminal[FOLLOW_TERMINAL_MAX],
                          struct rf_err *err);

/* The notice for a status line: "connection lost, reconnecting… (12 s)" (with "..." when
 * not utf8). */
void follow_link_text(int64_t away_ms, bool utf8, char *out, size_t n);
/* A follow_link_fn (ud unused) for output that is not a terminal: one line on stderr when
 * the stream is lost, saying why, and one when it resumes. */
void follow_link_stderr(void *ud, enum follow_link state, int64_t away_ms, const char *why);

/* From now until the process exits, SIGINT (Ctrl-C) or SIGTERM stops following job id
 * without touching the job, which keeps running on the server: the process erases the
 * status line of a terminal view first (clear_line: "\r\e[K" on stdout), says on stderr,
 * in one line, how to follow or cancel the job, and exits with 128 + the signal (130
 * after Ctrl-C). For `refold improve` and `refold job --follow`; `refold demo` handles
 * its signals itself. */
void follow_stop_on_interrupt(const char *id, bool clear_line);

#endif
