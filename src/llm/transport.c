/*
 * transport - one LLM call over HTTP: attempts, retries, timeouts, cancel.
 *
 * An attempt is one POST run on the client's CURL easy handle inside its multi
 * handle. The loop calls curl_multi_poll with a 100 ms ceiling, so between
 * network events it still wakes to poll should_cancel, the idle deadline (no
 * byte received for idle_timeout_ms, measured here to the millisecond rather
 * than with CURLOPT_LOW_SPEED_TIME's whole seconds) and the call's deadline
 * (total_timeout_ms, also handed to curl as CURLOPT_TIMEOUT_MS). Aborting is
 * removing the easy handle from the multi handle, which closes the connection.
 *
 * A 2xx text/event-stream body goes through the SSE parser into the provider's
 * on_event; any other body is collected (capped) and parsed at the end, as a
 * reply (2xx) or an error. The outcome of an attempt is a status, whether it
 * may be retried inside the call, and the wait the server asked for; the loop
 * in transport_call applies retry.h's rules to it. Only failures before a
 * response (connection errors, a connect timeout) and HTTP errors are retried
 * here: once a 200 streams, its failures end the call (as the SDKs do).
 *
 * Single-threaded: everything runs on the caller's thread with the client's
 * handles; the callbacks only touch the struct attempt they are given.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "llm/llm_internal.h"
#include "llm/retry.h"
#include "core/banned.h"

#define POLL_MS 100

struct attempt {
    const struct llm_provider *p;
    struct llm_stream st;
    struct sse_parser sse;
    struct buf body; /* a body that is not an event stream */
    bool body_started;
    bool streaming;  /* a 2xx event stream */
    bool got_status; /* a status line arrived */
    long status;
    char request_id[128];
    char retry_after[64];
    char retry_after_ms[64];
    char should_retry[16];
    char content_type[128];
    int64_t last_byte_ms; /* monotonic time of the last byte received */
    bool cb_failed;       /* a callback stopped the transfer; cb_err says why */
    struct rf_err cb_err;
    const char *shown_url; /* the URL for error messages, no credentials (borrowed) */
    char *redirect;        /* a 3xx's Location, resolved, no credentials/query (owned) */
};

/* What one attempt came to. */
struct outcome {
    enum rf_status rc;
    bool retryable;      /* may be retried inside this call */
    int64_t server_wait; /* the wait the server asked for (ms), -1 when none */
    struct rf_err err;
};

static enum rf_status sse_event_cb(void *ud, const struct sse_event *ev)
{
    struct attempt *a = ud;
    return a->p->on_event(&a->st, ev, &a->cb_err);
}

static void header_value(const char *v, size_t n, char *out, size_t cap)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *ud)
{
    struct attempt *a = ud;
    size_t n = size * nitems;
    a->last_byte_ms = clock_mono_ms();
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous headers. */
        const char *d = memchr(line, ' ', n);
        const char *end = line + n;
        long status = 0;
        for (int i = 0; d && ++d < end && i < 3 && *d >= '0' && *d <= '9'; i++)
            status = status * 10 + (*d - '0');
        a->status = status;
        a->got_status = true;
        a->request_id[0] = a->retry_after[0] = a->retry_after_ms[0] = '\0';
        a->should_retry[0] = a->content_type[0] = '\0';
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = n - name_len - 1;
    struct {
        const char *name;
        char *out;
        size_t cap;
    } wanted[] = {
        {a->p->request_id_header, a->request_id, sizeof a->request_id},
        {"retry-after", a->retry_after, sizeof a->retry_after},
        {"retry-after-ms", a->retry_after_ms, sizeof a->retry_after_ms},
        {"x-should-retry", a->should_retry, sizeof a->should_retry},
        {"content-type", a->content_type, sizeof a->content_type},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++)
        if (strlen(wanted[i].name) == name_len && strncasecmp(line, wanted[i].name, name_len) == 0)
            header_value(v, vlen, wanted[i].out, wanted[i].cap);
    return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct attempt *a = ud;
    size_t n = size * nmemb;
    a->last_byte_ms = clock_mono_ms();
    if (!a->body_started) {
        a->body_started = true;
        a->streaming = a->status >= 200 && a->status < 300 &&
                       strncasecmp(a->content_type, "text/event-stream", 17) == 0;
    }
    if (a->streaming) {
        enum rf_status rc = sse_parser_feed(&a->sse, data, n);
        if (rc == RF_TOO_LARGE)
            rf_fail(&a->cb_err, RF_PERMANENT, "%s: an event of the stream exceeds %u bytes",
                    a->p->name, LLM_MAX_EVENT);
        if (rc) {
            a->cb_failed = true;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        return n;
    }
    if (buf_append(&a->body, data, n)) {
        rf_fail(&a->cb_err, RF_PERMANENT, "%s: the response body exceeds %u bytes", a->p->name,
                LLM_MAX_BODY);
        a->cb_failed = true;
        return 0;
    }
    return n;
}

static void outcome_set(struct outcome *o, enum rf_status rc, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void outcome_set(struct outcome *o, enum rf_status rc, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    o->rc = rc;
    o->retryable = retryable;
    o->err.code = rc;
    vsnprintf(o->err.message, sizeof o->err.message, fmt, ap);
    va_end(ap);
}

/* Failures of libcurl before any response status arrived that the SDKs retry. */
static bool connection_error(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Turn a finished transfer into an outcome. */
static void judge(struct attempt *a, CURLcode code, const char *curl_msg, bool timed_out_total,
                  int64_t elapsed_ms, struct outcome *o)
{
    const char *name = a->p->name;
    o->server_wait = -1;
    if (a->got_status && (a->status < 200 || a->status >= 300)) {
        if (a->retry_after_ms[0] || a->retry_after[0])
            o->server_wait =
                retry_after_ms(a->retry_after_ms[0] ? a->retry_after_ms : NULL,
                               a->retry_after[0] ? a->retry_after : NULL, clock_now_ms());
        char msg[200];
        if (code == CURLE_OK)
            llm_error_text(buf_str(&a->body), a->body.len, a->st.secret, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "body unread: %s", curl_msg);
        if (a->status >= 300 && a->status < 400) {
            /* Redirects are not followed (a POST would be replayed as a GET by some, and
             * the key sent on to another host): name where it pointed, so the base URL
             * can be fixed (http:// for https://, a path missing /v1 behind a proxy). */
            outcome_set(o, retry_status_class(a->status),
                        retry_http_retryable(a->status, a->should_retry[0] ? a->should_retry : NULL),
                        "%s: HTTP %ld redirect to %s: refold does not follow redirects; make the "
                        "base URL the final one (POST %s)",
                        name, a->status, a->redirect ? a->redirect : "(no usable Location header)",
                        a->shown_url ? a->shown_url : "?");
            return;
        }
        /* A wrong base URL (".../v1" twice, Ollama without /v1) answers 404 or 405: say
         * where the request went. */
        bool where = (a->status == 404 || a->status == 405) && a->shown_url;
        outcome_set(o, retry_status_class(a->status),
                    retry_http_retryable(a->status, a->should_retry[0] ? a->should_retry : NULL),
                    "%s: HTTP %ld %s%s%s%s", name, a->status, msg, where ? " (POST " : "",
                    where ? a->shown_url : "", where ? ")" : "");
        return;
    }
    if (a->cb_failed) {
        *o = (struct outcome){
            .rc = a->cb_err.code, .retryable = false, .server_wait = -1, .err = a->cb_err};
        return;
    }
    if (code == CURLE_OPERATION_TIMEDOUT && timed_out_total) {
        outcome_set(o, RF_TRANSIENT, false, "%s: no complete reply within the total timeout", name);
        return;
    }
    if (code == CURLE_OPERATION_TIMEDOUT && !a->got_status) {
        /* Not the total deadline, so curl's other timer: the connect timeout. */
        outcome_set(o, RF_TRANSIENT, true, "%s: connect timeout after %lld ms (%s)", name,
                    (long long)elapsed_ms, curl_msg);
        return;
    }
    if (code != CURLE_OK && a->streaming && a->st.done) {
        code = CURLE_OK; /* broken after message_stop / [DONE]: the reply is complete */
    } else if (code != CURLE_OK) {
        if (a->got_status)
            outcome_set(o, RF_TRANSIENT, false, "%s: the stream was cut off: %s", name, curl_msg);
        else if (connection_error(code))
            outcome_set(o, RF_TRANSIENT, true, "%s: connection failed: %s", name, curl_msg);
        else
            outcome_set(o, RF_PERMANENT, false, "%s: request failed: %s", name, curl_msg);
        return;
    }
    if (!a->got_status) {
        outcome_set(o, RF_TRANSIENT, true, "%s: no HTTP response", name);
        return;
    }
    /* A clean 2xx. */
    enum rf_status rc;
    if (a->streaming) {
        if (sse_parser_pending(&a->sse) && !a->st.done)
            rc = rf_fail(&o->err, RF_TRANSIENT, "%s: the stream was cut off mid-event", name);
        else
            rc = a->p->on_end(&a->st, &o->err);
    } else {
        json_t *body = json_loadb(buf_str(&a->body), a->body.len, 0, NULL);
        if (!json_is_object(body))
            rc = rf_fail(&o->err, RF_TRANSIENT,
                         "%s: HTTP %ld with neither an event stream nor a JSON reply", name,
                         a->status);
        else
            rc = a->p->on_body(&a->st, body, &o->err);
        json_decref(body);
    }
    o->rc = rc;
    o->retryable = false;
}

static void attempt_init(struct attempt *a, const struct llm_provider *p,
                         const struct llm_request *req, const char *secret)
{
    memset(a, 0, sizeof *a);
    a->p = p;
    llm_stream_init(&a->st, req, secret);
    sse_parser_init(&a->sse, LLM_MAX_EVENT, sse_event_cb, a);
    buf_init(&a->body, LLM_MAX_BODY);
}

static void attempt_release(struct attempt *a)
{
    free(a->redirect);
    a->redirect = NULL;
    llm_stream_release(&a->st);
    sse_parser_release(&a->sse);
    buf_release(&a->body);
}

/* url without user, password, query or fragment, for messages; caller frees. NULL when
 * url does not parse. */
static char *shown_url(const char *url)
{
    char *out = NULL, *clean = NULL;
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK)
        out = xstrdup(clean);
    curl_free(clean);
    curl_url_cleanup(u);
    return out;
}

/* Run one attempt to its end (or its abort) and judge it. */
static void run_attempt(struct llm_client *c, struct attempt *a, const struct llm_request *req,
                        int64_t deadline, struct outcome *o)
{
    CURL *e = c->easy;
    char errbuf[CURL_ERROR_SIZE] = "";
    int64_t start = clock_mono_ms();
    int64_t budget = deadline - start;
    if (budget < 1)
        budget = 1; /* 0 would mean no timeout to libcurl */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)budget);
    a->last_byte_ms = start;

    bool cancelled = false, idle = false, failed_multi = false;
    curl_multi_add_handle(c->multi, e);
    for (;;) {
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            failed_multi = true;
            break;
        }
        if (!running)
            break;
        if (llm_cancelled(req)) {
            cancelled = true;
            break;
        }
        if (clock_mono_ms() - a->last_byte_ms >= c->cfg.idle_timeout_ms) {
            idle = true;
            break;
        }
        if (curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL) != CURLM_OK) {
            failed_multi = true;
            break;
        }
    }
    CURLcode code = CURLE_OK;
    bool finished = false;
    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(c->multi, &queued)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) {
            code = msg->data.result;
            finished = true;
        }
    curl_multi_remove_handle(c->multi, e);
    int64_t end = clock_mono_ms();
    if (a->got_status && a->status >= 300 && a->status < 400) {
        char *to = NULL; /* the Location, resolved against the request's URL */
        if (curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &to) == CURLE_OK && to)
            a->redirect = shown_url(to);
    }

    if (cancelled) {
        outcome_set(o, RF_CANCELLED, false, "%s: the call was cancelled", a->p->name);
        o->server_wait = -1;
    } else if (idle) {
        outcome_set(o, RF_TRANSIENT, false,
                    "%s: no data from the server for %lld ms (idle timeout)", a->p->name,
                    (long long)(end - a->last_byte_ms));
        o->server_wait = -1;
    } else if (failed_multi || !finished) {
        outcome_set(o, RF_INTERNAL, false, "%s: libcurl multi interface failed", a->p->name);
        o->server_wait = -1;
    } else {
        const char *cm = errbuf[0] ? errbuf : curl_easy_strerror(code);
        judge(a, code, cm, end >= deadline - 5, end - start, o);
    }
    /* The error buffer is a local: take it back from the handle. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
}

static void set_common_options(struct llm_client *c, const char *url, const char *body,
                               size_t body_len, struct curl_slist *hdrs)
{
    CURL *e = c->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "refold/0.1");
}

static const char *outcome_word(enum rf_status rc, bool will_retry)
{
    if (rc == RF_OK)
        return "ok";
    if (rc == RF_CANCELLED)
        return "cancelled";
    return will_retry ? "retry" : "fail";
}

static void log_attempt(const struct llm_client *c, const char *model, int n,
                        const struct attempt *a, const struct outcome *o, bool will_retry,
                        int64_t delay_ms, int64_t latency_ms)
{
    char qerr[320], qmodel[160], qid[160];
    enum log_level level = o->rc == RF_OK || o->rc == RF_CANCELLED ? LOG_INFO
                           : will_retry                            ? LOG_WARN
                                                                   : LOG_ERROR;
    log_quote(model, qmodel, sizeof qmodel);
    log_quote(a->request_id, qid, sizeof qid);
    if (o->rc == RF_OK) {
        log_write(level, "llm attempt",
                  "provider=%s model=%s attempt=%d status=%ld outcome=ok latency_ms=%lld "
                  "request_id=%s",
                  c->cfg.provider, qmodel, n, a->status, (long long)latency_ms, qid);
        return;
    }
    log_write(level, "llm attempt",
              "provider=%s model=%s attempt=%d status=%ld outcome=%s latency_ms=%lld "
              "delay_ms=%lld request_id=%s error=%s",
              c->cfg.provider, qmodel, n, a->got_status ? a->status : 0L,
              outcome_word(o->rc, will_retry), (long long)latency_ms, (long long)delay_ms, qid,
              log_quote(o->err.message, qerr, sizeof qerr));
}

enum rf_status transport_call(struct llm_client *c, const struct llm_request *req,
                              const char *model, struct llm_response *resp, struct rf_err *err)
{
    const struct llm_provider *p = c->provider;
    enum rf_status rc = RF_OK;
    char *url = xasprintf("%s%s", c->cfg.base_url, p->path);
    char *url_shown = shown_url(url);
    json_t *body_json = p->build_body(req, model);
    char *body = jx_dump(body_json);
    json_decref(body_json);
    resp->request_json = xstrdup(body);

    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "content-type: application/json");
    hdrs = curl_slist_append(hdrs, "accept: text/event-stream");
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = p->headers(hdrs, c->cfg.api_key);

    int64_t base = c->cfg.retry_base_ms > 0 ? c->cfg.retry_base_ms : RETRY_BASE_MS;
    int64_t cap = c->cfg.retry_cap_ms > 0 ? c->cfg.retry_cap_ms : RETRY_CAP_MS;
    int64_t start = clock_mono_ms();
    int64_t deadline = start + c->cfg.total_timeout_ms;
    set_common_options(c, url, body, strlen(body), hdrs);

    for (int n = 1;; n++) {
        if (llm_cancelled(req)) {
            rc = rf_fail(err, RF_CANCELLED, "%s: the call was cancelled", p->name);
            goto out;
        }
        struct attempt a;
        struct outcome o = {0};
        attempt_init(&a, p, req, c->cfg.api_key);
        a.shown_url = url_shown;
        int64_t t0 = clock_mono_ms();
        run_attempt(c, &a, req, deadline, &o);
        llm_scrub(o.err.message, sizeof o.err.message, c->cfg.api_key);
        int64_t now = clock_mono_ms();

        resp->attempts = n;
        resp->http_status = a.got_status ? a.status : 0;
        snprintf(resp->request_id, sizeof resp->request_id, "%s",
                 a.request_id[0] ? a.request_id : a.st.message_id);

        if (o.rc == RF_OK) {
            log_attempt(c, model, n, &a, &o, false, 0, now - t0);
            const char *raw = a.st.have_stop ? a.st.raw_stop : "";
            snprintf(resp->raw_stop_reason, sizeof resp->raw_stop_reason, "%s", raw);
            snprintf(resp->stop_reason, sizeof resp->stop_reason, "%s", p->normalise_stop(raw));
            resp->input_tokens = a.st.input_tokens;
            resp->output_tokens = a.st.output_tokens;
            resp->text = buf_detach(&a.st.text, &resp->text_len);
            attempt_release(&a);
            rc = RF_OK;
            goto out;
        }

        /* Decide: retry here, or end the call. */
        bool retry = o.retryable && n <= c->cfg.max_retries && o.rc != RF_CANCELLED;
        int64_t delay = 0;
        bool too_long = o.server_wait > RETRY_AFTER_MAX_MS;
        if (retry && too_long)
            retry = false;
        if (retry) {
            delay = o.server_wait > 0
                        ? o.server_wait
                        : retry_backoff_scaled_ms(n - 1, crypto_random_unit(), base, cap);
            if (now + delay >= deadline)
                retry = false;
        }
        log_attempt(c, model, n, &a, &o, retry, retry ? delay : 0, now - t0);
        /* What the provider counted before the failure: the prompt's tokens once the
         * stream started, the output's once its final count came (message_delta, the
         * usage chunk) - the counts of message_start are placeholders. */
        resp->input_tokens = a.st.input_tokens;
        resp->output_tokens = a.st.have_stop ? a.st.output_tokens : -1;
        attempt_release(&a);

        if (!retry) {
            if (o.rc == RF_TRANSIENT && o.server_wait > 0)
                resp->retry_after_ms = o.server_wait;
            if (too_long && o.rc == RF_TRANSIENT)
                rc = rf_fail(err, o.rc, "%s (retry-after %lld ms is over the %d ms limit)",
                             o.err.message, (long long)o.server_wait, RETRY_AFTER_MAX_MS);
            else if (n > 1)
                rc = rf_fail(err, o.rc, "%s (after %d attempts)", o.err.message, n);
            else
                rc = rf_fail(err, o.rc, "%s", o.err.message);
            goto out;
        }
        if (req->on_retry)
            req->on_retry(req->ud, n, delay, &o.err);
        if (llm_wait(req, delay) == RF_CANCELLED) {
            rc = rf_fail(err, RF_CANCELLED, "%s: the call was cancelled while waiting to retry",
                         p->name);
            goto out;
        }
    }
out:
    resp->latency_ms = clock_mono_ms() - start;
    /* The header list holds the key: wipe it before freeing. */
    for (struct curl_slist *h = hdrs; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
    curl_easy_reset(c->easy); /* drop pointers to the body, url and headers */
    free(body);
    free(url);
    free(url_shown);
    return rc;
}
