/*
 * sse - Server-Sent Events: the wire format and the job event stream; see sse.h.
 */
#include "http/sse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "jobs/hub.h"
#include "store/store.h"
#include "core/banned.h"

#define STREAM_BLOCK 4096
#define STREAM_MAX_PENDING (64u * 1024 * 1024)
#define REPLAY_PAGE 1000
#define HUB_READ_BATCH 256
#define SUBSCRIBE_TRIES 8
#define REAUTH_MS 1000 /* a stream checks its credential at most this often */

enum rf_status sse_format_event(struct buf *out, int64_t id, const char *event, const char *data)
{
    enum rf_status rc = RF_OK;
    size_t before = out->len;
    if (id >= 0)
        rc = buf_printf(out, "id: %lld\n", (long long)id);
    if (rc == RF_OK && event)
        rc = buf_printf(out, "event: %s\n", event);
    /* One data: line per line of the payload; CRLF, CR and LF all end a line (WHATWG). */
    const char *p = data ? data : "";
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        if (rc == RF_OK)
            rc = buf_puts(out, "data: ");
        if (rc == RF_OK)
            rc = buf_append(out, p, n);
        if (rc == RF_OK)
            rc = buf_putc(out, '\n');
        p += n;
        if (!*p)
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    if (rc == RF_OK)
        rc = buf_putc(out, '\n');
    if (rc && out->data) { /* all or nothing: never half a frame */
        out->len = before;
        out->data[before] = '\0';
    }
    return rc;
}

enum rf_status sse_format_comment(struct buf *out, const char *text)
{
    return buf_printf(out, ": %s\n\n", text);
}

bool sse_terminal_event(const char *type)
{
    return type && (strcmp(type, "completed") == 0 || strcmp(type, "failed") == 0 ||
                    strcmp(type, "cancelled") == 0);
}

/* ---- the job event stream ---- */

struct stream {
    pthread_mutex_t lock; /* guards suspended and woken */
    bool suspended;       /* the connection is suspended: a wake must resume it */
    bool woken;           /* a wake arrived since the reader last looked */
    struct MHD_Connection *conn;
    struct hub_sub *sub; /* NULL when the replay already ended the stream */
    struct buf out;      /* pending bytes, from off on: the content reader's */
    size_t off;
    bool done; /* end once out is drained: the content reader's */
    int events;
    /* The credential that opened the stream, checked again before events go out (at most
     * every REAUTH_MS) and at each keep-alive: a revoked key or an ended session stops
     * receiving the job's events. The content reader's. */
    struct http_server *srv;
    bool cookie;
    char *credential;
    int64_t auth_checked_ms;
};

static void stream_wake(void *ud)
{
    struct stream *s = ud;
    pthread_mutex_lock(&s->lock);
    s->woken = true;
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
}

static void add_event(struct stream *s, int64_t seq, const char *type, const char *data)
{
    if (s->done)
        return; /* nothing goes out after a terminal event */
    if (sse_format_event(&s->out, seq, type, data) != RF_OK) {
        /* A client this far behind is dropped; it resumes with Last-Event-ID. */
        log_warn("event stream too far behind: closing it", "seq=%lld", (long long)seq);
        s->done = true;
        return;
    }
    s->events++;
    if (sse_terminal_event(type))
        s->done = true;
}

static void on_hub_event(void *ud, int64_t seq, const char *type, const char *data)
{
    add_event(ud, seq, type, data);
}

static int on_stored_event(void *ud, int64_t seq, const char *type, const char *data,
                           int64_t created_at)
{
    (void)created_at;
    struct stream *s = ud;
    add_event(s, seq, type, data);
    return s->done;
}

/* Whether the stream's credential still holds (checked at most every REAUTH_MS unless
 * forced). A database that cannot answer keeps the stream going: its clients would only
 * reconnect to the same outage. */
static bool still_authorized(struct stream *s, bool force)
{
    if (!s->credential)
        return true;
    int64_t now = clock_mono_ms();
    if (!force && now - s->auth_checked_ms < REAUTH_MS)
        return true;
    s->auth_checked_ms = now;
    struct rf_err err;
    rf_err_clear(&err);
    return http_still_authorized(s->srv, s->cookie, s->credential, &err) != RF_UNAUTHORIZED;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    for (;;) {
        if (s->off < s->out.len) {
            size_t n = s->out.len - s->off;
            if (n > max)
                n = max;
            memcpy(out, s->out.data + s->off, n);
            s->off += n;
            if (s->off == s->out.len) {
                buf_reset(&s->out);
                s->off = 0;
            }
            return (ssize_t)n;
        }
        if (s->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->lock);
        s->woken = false;
        pthread_mutex_unlock(&s->lock);
        struct hub_read_flags f = {0};
        hub_read(s->sub, on_hub_event, s, HUB_READ_BATCH, &f);
        if ((s->out.len > 0 || f.ping) && !still_authorized(s, f.ping)) {
            /* Nothing read since the check goes out; EventSource reconnects and gets 401. */
            buf_reset(&s->out);
            sse_format_comment(&s->out, "signed out: the API key was revoked or the session ended");
            s->done = true;
            continue;
        }
        if (f.ping && !s->done)
            sse_format_comment(&s->out, "ping");
        if (f.closing)
            s->done = true;
        if (s->out.len > 0 || s->done)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->woken) { /* a wake landed while we looked: look again */
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    hub_unsubscribe(s->sub); /* afterwards no wake can reach s */
    buf_release(&s->out);
    free(s->credential);
    pthread_mutex_destroy(&s->lock);
    free(s);
    metrics_add(METRIC_SSE_STREAMS, -1);
}

/* Append the stored events after *pos (advancing it), up to a terminal one. */
static enum rf_status replay(struct store *st, struct stream *s, const char *job_id, int64_t *pos,
                             struct rf_err *err)
{
    for (;;) {
        int before = s->events;
        int64_t last = *pos;
        enum rf_status rc =
            store_job_events_each(st, job_id, *pos, REPLAY_PAGE, on_stored_event, s, &last, err);
        if (rc)
            return rc;
        *pos = last;
        if (s->done || s->events - before < REPLAY_PAGE)
            return RF_OK;
    }
}

static bool finished(const char *status)
{
    return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

enum rf_status sse_job_stream(struct req *req, struct hub *hub, const char *job_id,
                              const char *job_status, int64_t after, struct resp *resp,
                              struct rf_err *err)
{
    struct stream *s = xcalloc(1, sizeof *s);
    int64_t pos = after;
    enum rf_status rc = RF_OK;
    pthread_mutex_init(&s->lock, NULL);
    s->conn = req->conn;
    s->srv = req->server;
    s->cookie = req->cookie_auth;
    s->credential = req->credential ? xstrdup(req->credential) : NULL;
    s->auth_checked_ms = clock_mono_ms();
    buf_init(&s->out, STREAM_MAX_PENDING);
    metrics_add(METRIC_SSE_STREAMS, 1);

    buf_printf(&s->out, "retry: %d\n", SSE_RETRY_MS);
    sse_format_comment(&s->out, "ok");
    rc = replay(req->store, s, job_id, &pos, err);
    if (rc)
        goto fail;
    if (s->events == 0 && pos > 0) {
        /* A Last-Event-ID past the job's last event counts as that event: the hub must
         * never be given a position no event has reached, or it would wait for that seq
         * and hold back every event of the job, for this stream and for every later one
         * of the same job. */
        int64_t last = 0;
        rc = store_job_events_last(req->store, job_id, &last, err);
        if (rc)
            goto fail;
        if (last < pos)
            pos = last;
    }
    if (s->events == 0 && finished(job_status)) {
        /* Nothing more will come: 204 tells EventSource not to reconnect. */
        stream_free(s);
        resp_empty(resp, 204);
        return RF_OK;
    }
    for (int tries = 0; !s->done; tries++) {
        bool behind = false;
        if (!hub) {
            rc = rf_fail(err, RF_UNAVAILABLE, "live job events are not available here");
            goto fail;
        }
        rc = hub_subscribe(hub, job_id, pos, stream_wake, s, &s->sub, &behind, err);
        if (rc)
            goto fail;
        if (!behind)
            break;
        if (tries == SUBSCRIBE_TRIES) {
            rc = rf_fail(err, RF_UNAVAILABLE, "job events are arriving too fast; try again");
            goto fail;
        }
        rc = replay(req->store, s, job_id, &pos, err);
        if (rc)
            goto fail;
    }
    resp->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s,
                                                  stream_free);
    if (!resp->raw) {
        rc = rf_fail(err, RF_INTERNAL, "cannot create the event stream");
        goto fail;
    }
    MHD_add_response_header(resp->raw, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp->raw, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp->raw, "X-Accel-Buffering", "no");
    resp->status = 200;
    return RF_OK;
fail:
    stream_free(s);
    return rc;
}
