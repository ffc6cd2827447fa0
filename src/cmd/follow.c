/*
 * follow - a job's event stream, resumed across reconnections; see follow.h.
 */
#include "cmd/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "llm/sse.h"
#include "core/banned.h"

#define FOLLOW_MAX_EVENT (4u * 1024 * 1024)
#define FOLLOW_RECONNECT_FOR_MS 120000
#define FOLLOW_DEFAULT_RETRY_MS 1000

struct follow {
    struct sse_parser parser;
    follow_event_fn fn;
    follow_link_fn link;
    void *ud;
    int64_t lost_at; /* when the stream was lost (0: it is not) */
    int64_t told_at; /* when the link function last heard of it */
    const struct client *cl;
    int64_t last_seq;                   /* Last-Event-ID for a reconnection */
    char terminal[FOLLOW_TERMINAL_MAX]; /* the terminal event's type once seen */
};

static enum rf_status on_event(void *ud, const struct sse_event *ev)
{
    struct follow *f = ud;
    char *end = NULL;
    long long seq = strtoll(ev->id, &end, 10);
    if (!*ev->id || *end || seq <= f->last_seq)
        return RF_OK; /* not a job event, or one already delivered */
    f->last_seq = seq;
    json_t *data = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (data && !f->cl->raw)
        client_visible(data);
    if (f->fn)
        f->fn(f->ud, seq, ev->type, data ? data : json_null());
    json_decref(data);
    if (!strcmp(ev->type, "completed") || !strcmp(ev->type, "failed") ||
        !strcmp(ev->type, "cancelled")) {
        snprintf(f->terminal, sizeof f->terminal, "%s", ev->type);
        return RF_CANCELLED; /* stop reading: the server closes the stream anyway */
    }
    return RF_OK;
}

/* The server answers again after the stream was lost. */
static void back(struct follow *f)
{
    if (f->lost_at && f->link)
        f->link(f->ud, FOLLOW_BACK, clock_mono_ms() - f->lost_at, NULL);
    f->lost_at = 0;
}

/* While it reconnects: say how long it has been, about every second, also during a
 * request that waits (a server that accepts connections but does not answer). */
static void away(struct follow *f)
{
    int64_t now = clock_mono_ms();
    if (f->lost_at && f->link && now - f->told_at >= 1000) {
        f->told_at = now;
        f->link(f->ud, FOLLOW_AWAY, now - f->lost_at, NULL);
    }
}

static void on_tick(void *ud)
{
    away(ud);
}

static bool on_chunk(void *ud, const char *data, size_t len)
{
    struct follow *f = ud;
    back(f);
    return sse_parser_feed(&f->parser, data, len) == RF_OK;
}

/* The job's current status into out. */
static enum rf_status status_now(struct client *cl, const char *id, char *out, size_t n,
                                 struct rf_err *err)
{
    json_t *job = NULL;
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    enum rf_status rc = client_call(cl, "GET", path, NULL, NULL, &job, NULL, err);
    const char *s = json_string_value(json_object_get(job, "status"));
    snprintf(out, n, "%s", rc == RF_OK && s ? s : "");
    json_decref(job);
    return rc;
}

enum rf_status follow_job(struct client *cl, const char *id, follow_event_fn fn,
                          follow_link_fn link, void *ud, char terminal[FOLLOW_TERMINAL_MAX],
                          struct rf_err *err)
{
    struct follow f = {.fn = fn, .link = link, .ud = ud, .cl = cl};
    char path[160], last_header[64];
    int64_t give_up = 0;
    bool answered = cl->answered; /* the server has answered (improve: its POST) */
    bool ended = false; /* terminal holds the last stream's terminal event: is it the last? */
    enum rf_status rc;
    terminal[0] = '\0';
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    for (;;) {
        const char *headers[] = {last_header, NULL};
        snprintf(last_header, sizeof last_header, "Last-Event-ID: %lld", (long long)f.last_seq);
        long code = 0;
        sse_parser_init(&f.parser, FOLLOW_MAX_EVENT, on_event, &f);
        rf_err_clear(err);
        rc = client_stream(cl, path, f.last_seq > 0 ? headers : NULL, on_chunk, on_tick, &f, &code,
                           err);
        int64_t retry = f.parser.retry_ms > 0 ? f.parser.retry_ms : FOLLOW_DEFAULT_RETRY_MS;
        sse_parser_release(&f.parser);
        if (rc == RF_UNAVAILABLE && !answered && code == 0)
            return rc; /* no server there (or not yet): say so now, not in two minutes */
        answered = answered || code != 0;
        if (f.terminal[0]) {
            /* The server ends the stream after any terminal event, also one of an earlier
             * run of a job retried since (POST /v1/jobs/{id}/retry), whose new events come
             * after it. Ask at once for what follows: 204, nothing, the job ended there. */
            snprintf(terminal, FOLLOW_TERMINAL_MAX, "%s", f.terminal);
            f.terminal[0] = '\0';
            ended = true;
            continue;
        }
        if (ended) {
            if (rc != RF_OK || code == 204) { /* it ended there (or nothing more can be had) */
                rf_err_clear(err);
                return RF_OK;
            }
            ended = false; /* the job runs again: follow the new run */
            terminal[0] = '\0';
        }
        if (rc == RF_OK && code == 204) { /* finished before we got here, nothing new */
            back(&f);
            return status_now(cl, id, terminal, FOLLOW_TERMINAL_MAX, err);
        }
        if (rc != RF_OK && rc != RF_UNAVAILABLE) /* 404, 401, ...: reconnecting won't help */
            return rc;
        /* The stream ended early (server restart) or the server is away: resume from the
         * last event; give up after FOLLOW_RECONNECT_FOR_MS without reaching it. */
        int64_t now = clock_mono_ms();
        if (!f.lost_at) {
            f.lost_at = f.told_at = now;
            /* Why, in words: libcurl's for a stream cut off ("Transferred a partial
             * file") would puzzle; a server's answer (503) or "cannot reach" is clear. */
            const char *why = err->message;
            if (code >= 200 && code < 300 && rc == RF_OK)
                why = "the server ended the stream";
            else if (code >= 200 && code < 300 && strcmp(err->reason, CLIENT_STALLED) != 0)
                why = "the stream was cut off";
            if (f.link)
                f.link(f.ud, FOLLOW_LOST, 0, why);
        }
        if (rc == RF_OK || !give_up) {
            give_up = now + FOLLOW_RECONNECT_FOR_MS;
        } else if (now > give_up) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err->message);
            return rf_fail(err, rc, "gave up following %s after %d minutes without the server: %s",
                           id, FOLLOW_RECONNECT_FOR_MS / 60000, why);
        }
        /* Wait in steps of at most a second, saying how long it has been. */
        for (int64_t wake = now + retry; (now = clock_mono_ms()) < wake;) {
            int64_t step = 1000 - (now - f.told_at);
            clock_sleep_ms(step < 1 ? 1 : step < wake - now ? step : wake - now);
            away(&f);
        }
    }
}

void follow_link_text(int64_t away_ms, bool utf8, char *out, size_t n)
{
    snprintf(out, n, "connection lost, reconnecting%s (%lld s)", utf8 ? "…" : "...",
             (long long)(away_ms / 1000));
}

void follow_link_stderr(void *ud, enum follow_link state, int64_t away_ms, const char *why)
{
    (void)ud;
    if (state == FOLLOW_LOST)
        fprintf(stderr,
                "refold: connection lost (%s); reconnecting for up to %d minutes, the events "
                "resume where they stopped\n",
                why && *why ? why : "no reason given", FOLLOW_RECONNECT_FOR_MS / 60000);
    else if (state == FOLLOW_BACK)
        fprintf(stderr, "refold: reconnected after %lld s\n", (long long)(away_ms / 1000));
    fflush(stderr);
}

void follow_stop_on_interrupt(const char *id, bool clear_line)
{
    char line[320];
    int n = snprintf(line, sizeof line,
                     "refold: stopped following %s, which keeps running: refold job %s --follow "
                     "follows it again, refold cancel %s stops it\n",
                     id, id, id);
    cmd_exit_on_interrupt(n > 0 && (size_t)n < sizeof line ? line : "",
                          clear_line ? STDOUT_FILENO : -1);
}
