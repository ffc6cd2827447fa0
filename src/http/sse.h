/*
 * sse - the Server-Sent Events writer: the wire format, and the stream of a job's events
 * behind GET /v1/jobs/{id}/events (SPEC §6).
 *
 * A stream is a libmicrohttpd response whose content reader hands out what is pending and,
 * when nothing is, suspends its connection; the event hub (jobs/hub.h) resumes it when the
 * job has new events or a keep-alive comment is due. There is no polling loop per client.
 * Each stream guards its `suspended` and `woken` flags with its own mutex (NOTES.md): a
 * wake that lands between "nothing to send" and the suspension is never lost, and a
 * connection is only resumed if it is suspended. The pending bytes belong to the content
 * reader (MHD calls it for one connection at a time), so they need no lock.
 *
 * Lifetime: a stream is freed by MHD's free callback when its response is done: after the
 * terminal event, when the hub shuts down, or when a write fails because the client went
 * away (a keep-alive comment is what notices that on an idle stream). The free callback
 * unsubscribes from the hub first, so no wake can touch a freed stream.
 */
#ifndef REFOLD_HTTP_SSE_H
#define REFOLD_HTTP_SSE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/http.h"

struct hub;

/* Append one event: `id: N`, `event: TYPE`, one `data:` line per line of data, a blank
 * line. id < 0 omits the id line; NULL event omits the event line. All or nothing: past
 * the buf's max it fails RF_TOO_LARGE and leaves out as it was. */
enum rf_status sse_format_event(struct buf *out, int64_t id, const char *event, const char *data);
/* Append a comment: `: text` and a blank line. */
enum rf_status sse_format_comment(struct buf *out, const char *text);
/* True for the event types after which a job's stream ends. */
bool sse_terminal_event(const char *type);

#define SSE_RETRY_MS 3000

/* Answer with job_id's event stream from after seq `after` (Last-Event-ID): the stored
 * events at once, then new ones as they are committed, ending after a terminal event.
 * job_status is the job's current status: a finished job with nothing after `after`
 * answers 204 so that EventSource clients stop reconnecting. */
enum rf_status sse_job_stream(struct req *req, struct hub *hub, const char *job_id,
                              const char *job_status, int64_t after, struct resp *resp,
                              struct rf_err *err);

#endif
