/*
 * sse - an incremental parser for a Server-Sent Events stream (client side).
 *
 * Feed it the bytes of an event stream in whatever pieces the network hands
 * over; it calls back once per complete event, following the WHATWG
 * "event stream interpretation": lines end in CRLF, LF or CR; `field: value`
 * with one optional space after the colon; `data` lines accumulate joined by
 * LF; `event` names the type (default "message"); `id` is kept as the last
 * event id; `retry` sets the reconnection time; lines starting with ':' are
 * comments; a blank line dispatches; a leading UTF-8 BOM is skipped. A line
 * cut between two feeds (and so a UTF-8 sequence cut in half) is kept until
 * the rest arrives, which makes the events independent of the split points.
 *
 * Memory is bounded: a line, or an event's accumulated data, longer than the
 * max given at init fails the feed with RF_TOO_LARGE. One parser belongs to
 * one stream and one thread. The server-side SSE writer is a different module.
 */
#ifndef REFOLD_LLM_SSE_H
#define REFOLD_LLM_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"

/* One dispatched event. All strings are NUL-terminated and borrowed for the
 * duration of the callback only. data may contain NUL bytes: use data_len. */
struct sse_event {
    const char *type; /* the `event` field, "message" when none was given */
    const char *data; /* `data` lines joined by "\n" */
    size_t data_len;
    const char *id; /* last event id seen so far in the stream ("" when none) */
};

/* Called once per event; a non-RF_OK return stops the feed and is returned by it. */
typedef enum rf_status (*sse_event_fn)(void *ud, const struct sse_event *ev);

struct sse_parser {
    sse_event_fn on_event;
    void *ud;
    struct buf line;  /* the current, not yet terminated line */
    struct buf data;  /* data of the event being built */
    struct buf type;  /* event type of the event being built */
    struct buf id;    /* last event id */
    int64_t retry_ms; /* last valid `retry` field, -1 when none */
    bool after_cr;    /* the previous byte was a CR: a following LF belongs to it */
    bool started;     /* the first line (which may carry a BOM) was processed */
};

/* Caller-owned struct. max caps one line and one event's data (bytes). */
void sse_parser_init(struct sse_parser *p, size_t max, sse_event_fn on_event, void *ud);
/* Free what the parser holds; init again to reuse. */
void sse_parser_release(struct sse_parser *p);
/* Parse n more bytes. Returns RF_OK, RF_TOO_LARGE, or the first failure of on_event
 * (after which the parser must not be fed again). */
enum rf_status sse_parser_feed(struct sse_parser *p, const char *bytes, size_t n);
/* True when a partial line or an undispatched event is pending: at the end of a
 * stream this means the stream was cut off mid-event (the WHATWG rule drops it). */
bool sse_parser_pending(const struct sse_parser *p);

#endif
