/*
 * import_batch - the importer's batches and their requests (see import.h, "Ordering").
 *
 * Bulk lines accumulate in per-type batches (executions per eval). A batch is sent once
 * it holds batch_max items or about imp->body_target bytes, after the batches it must
 * follow have answered: trace batches before what refers to their traces, and batches of
 * one type that share a key one after the other. Up to `parallel` requests are in flight
 * on one libcurl multi handle (kept-alive connections); answers are settled oldest first,
 * so the lines the server rejects are reported in the file's order among themselves (the
 * lines the importer rejects itself are reported at once, ahead of earlier lines still
 * waiting in a batch). A request whose connection broke or
 * could not be made, or that got a 503, is sent again (retry); if it still fails, the
 * import stops with one fatal error rather than a report for each of its lines. One
 * refused as too large (413: the server's REFOLD_MAX_BODY is below BATCH_BODY_TARGET) is
 * sent again in halves while it is settled, and imp->body_target shrinks for the batches
 * after it (resend_halves); one refused as a bad request (400) is sent again in halves
 * too, so one line cannot sink it.
 * Runs on the importer's thread.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/import_internal.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "core/banned.h"

/* A batch request is sent once its body passes this size, whatever its count: the
 * server's default body limit is 8 MiB. */
#define BATCH_BODY_TARGET (4u * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 600000L

void import_batches_init(struct importer *imp)
{
    imp->body_target = BATCH_BODY_TARGET;
    imp->multi = curl_multi_init();
    curl_multi_setopt(imp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)imp->parallel);
    imp->headers = curl_slist_append(imp->headers, imp->cl->auth);
    imp->headers = curl_slist_append(imp->headers, "Content-Type: application/json");
    imp->headers = curl_slist_append(imp->headers, "Accept: application/json");
    imp->headers = curl_slist_append(imp->headers, "Expect:"); /* no 100-continue round trip */
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether sorted key sets share a key. */
static bool intersect(const struct batch *a, const struct batch *b)
{
    int i = 0, j = 0;
    while (i < a->n && j < b->n) {
        if (a->keys[i] == b->keys[j])
            return true;
        if (a->keys[i] < b->keys[j])
            i++;
        else
            j++;
    }
    return false;
}

static struct batch *batch_new(struct importer *imp, enum import_type type, int eval)
{
    struct batch *b = imp->free_list;
    if (b) {
        imp->free_list = b->next;
    } else {
        b = xcalloc(1, sizeof *b);
        buf_init(&b->body, BUF_UNLIMITED);
        buf_init(&b->resp, CLIENT_MAX_RESPONSE);
        b->cap = imp->batch_max;
        b->lines = xmalloc(sizeof *b->lines * (size_t)b->cap);
        b->keys = xmalloc(sizeof *b->keys * (size_t)b->cap);
        b->starts = xmalloc(sizeof *b->starts * (size_t)b->cap);
        b->ends = xmalloc(sizeof *b->ends * (size_t)b->cap);
        b->easy = curl_easy_init();
        if (!b->easy) {
            fprintf(stderr, "refold: cannot initialise libcurl\n");
            abort();
        }
    }
    b->type = type;
    b->eval = eval;
    b->n = 0;
    b->done = false;
    b->tries = 0;
    b->lost = false;
    b->next = NULL;
    buf_reset(&b->body);
    buf_reset(&b->resp);
    buf_puts(&b->body, type == IMPORT_TRACE      ? "{\"traces\":["
                       : type == IMPORT_FEEDBACK ? "{\"feedback\":["
                                                 : "{\"executions\":[");
    return b;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    if (b->easy)
        curl_easy_cleanup(b->easy);
    buf_release(&b->body);
    buf_release(&b->resp);
    free(b->lines);
    free(b->keys);
    free(b->starts);
    free(b->ends);
    free(b);
}

static size_t on_resp(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct batch *b = ud;
    size_t n = size * nmemb;
    return buf_append(&b->resp, ptr, n) == RF_OK ? n : 0;
}

/* Every line of b rejected for one reason. Once the import is stopping, b's lines were not
 * rejected but left undone: neither listed nor counted (the fatal error says from which
 * line on, and the summary counts what the server answered). */
static void reject_all(struct importer *imp, const struct batch *b, const char *why)
{
    for (int i = 0; i < b->n && !imp->fatal; i++)
        import_report(imp, b->lines[i], b->type, "%s", why);
}

static int64_t first_line(const struct batch *b, int64_t line)
{
    return b && b->n > 0 && b->lines[0] < line ? b->lines[0] : line;
}

/* The first line of the batches not answered yet (b, those in flight, those not sent), or
 * line when it comes first. */
static int64_t first_undone_line(const struct importer *imp, const struct batch *b, int64_t line)
{
    line = first_line(b, line);
    for (const struct batch *f = imp->head; f; f = f->next)
        line = first_line(f, line);
    line = first_line(imp->pending_traces, line);
    line = first_line(imp->pending_feedback, line);
    for (int i = 0; i < imp->nevals; i++)
        line = first_line(imp->evals[i].pending, line);
    return line;
}

void import_stopped_at(struct importer *imp, int64_t line, const struct rf_err *e)
{
    struct rf_err f = *e;
    char n[32];
    if (imp->answered)
        rf_fail(&f, e->code,
                "%s; the lines from line %s on may or may not be stored: importing the file "
                "again is safe",
                e->message, cmd_grouped(first_undone_line(imp, NULL, line), n, sizeof n));
    import_fatal(imp, &f);
}

enum rf_status import_wrong_url(struct importer *imp, struct rf_err *err)
{
    char what[sizeof err->message];
    snprintf(what, sizeof what, "%s", err->message);
    if (strcmp(err->reason, CLIENT_NO_ROUTE) == 0) /* client.c said it already */
        return rf_fail(err, RF_UNAVAILABLE, "%s", what);
    return rf_fail(err, RF_UNAVAILABLE, "%s: " CLIENT_NO_PATH_HINT, what, imp->cl->base);
}

/* Whether b's finished request (result cc) is worth sending again, after the pause this
 * waits: the connection broke or could not be made (the server restarted, a proxy dropped
 * it) or the server answered 503 (its database is unreachable or full). Batches are
 * upserts, so a batch sent twice is stored once. Blocking: every transfer waits, as they
 * would all hit the same trouble. The caller sends b again (its response buffer is emptied
 * here). */
static bool retry(struct batch *b, CURLcode cc)
{
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    bool broken = cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                  cc == CURLE_PARTIAL_FILE || cc == CURLE_COULDNT_CONNECT;
    if ((!broken && status != 503) || b->tries >= IMPORT_RETRIES)
        return false;
    clock_sleep_ms(IMPORT_RETRY_PAUSE_MS << b->tries);
    b->tries++;
    b->lost = b->lost || broken || b->sends > 1;
    buf_reset(&b->resp);
    return true;
}

static void prepare(struct importer *imp, struct batch *b);
static void settle(struct importer *imp, struct batch *b);

/* The server refused b as a whole: as larger than its body limit (too_large: a
 * REFOLD_MAX_BODY below the 4 MiB the client aims at), or as a bad request (400: an item
 * the client parsed but the server cannot once it is inside the batch, e.g. nested within
 * a hair of jansson's depth limit). Send b's items again in two halves, one request after
 * the other (b's answer is being settled, so the ordering between batches holds), and
 * when too_large make the next batches no larger. A half refused again is halved again;
 * an item refused alone is reported as rejected, with the server's reason. Each half is
 * retried like any batch. */
static void resend_halves(struct importer *imp, struct batch *b, bool too_large)
{
    size_t half = (b->ends[b->n - 1] - b->starts[0] + 1) / 2;
    if (too_large && half < imp->body_target)
        imp->body_target = half;
    for (int i = 0; i < b->n && !imp->fatal;) {
        struct batch *s = batch_new(imp, b->type, b->eval);
        int first = i, last = first == 0 ? b->n - 1 : b->n; /* the first half leaves one */
        do {
            if (s->n)
                buf_putc(&s->body, ',');
            s->starts[s->n] = s->body.len;
            buf_append(&s->body, b->body.data + b->starts[i], b->ends[i] - b->starts[i]);
            s->ends[s->n] = s->body.len;
            s->lines[s->n++] = b->lines[i++];
        } while (i < last && b->ends[i - 1] - b->starts[first] < half);
        prepare(imp, s);
        do {
            s->sends = 0;
            s->cc = curl_easy_perform(s->easy);
        } while (retry(s, s->cc));
        settle(imp, s);
        s->next = imp->free_list;
        imp->free_list = s;
    }
}

/* Report b's item at, rejected by the server with error e. A trace sent with the agent's id
 * (the file stated no version) whose agent has no active version is reported with the
 * agent's name from the line, and what to add, rather than with the id the user never
 * wrote; every other reason as the server gave it. */
static void report_item(struct importer *imp, const struct batch *b, int at, const json_t *e)
{
    const char *m = json_string_value(json_object_get(e, "message"));
    const char *reason =
        json_string_value(json_object_get(json_object_get(e, "details"), "reason"));
    if (b->type == IMPORT_TRACE && reason && strcmp(reason, "no_active_version") == 0) {
        json_t *obj =
            json_loadb(b->body.data + b->starts[at], b->ends[at] - b->starts[at], 0, NULL);
        const char *agent = json_string_value(json_object_get(obj, "agent"));
        bool named = agent != NULL;
        if (named)
            import_report(imp, b->lines[at], b->type,
                          "agent \"%s\" has no active version to attach the trace to: give it "
                          "a prompt_template (agent line) or an active version (a version line "
                          "with \"status\": \"active\"), or give the trace a \"version\"",
                          agent);
        json_decref(obj);
        if (named)
            return;
    }
    import_report(imp, b->lines[at], b->type, "%s", m ? m : "rejected");
}

/* Account for an answered batch: the summary's counts and each rejected item's line. */
static void settle(struct importer *imp, struct batch *b)
{
    long status = 0;
    curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *doc = b->cc == CURLE_OK
                      ? json_loadb(b->resp.data ? b->resp.data : "", b->resp.len, 0, NULL)
                      : NULL;
    bool refused = b->cc == CURLE_COULDNT_CONNECT || b->cc == CURLE_COULDNT_RESOLVE_HOST;
    bool no_route = status == 404 || status == 405; /* REFOLD_URL has a path: nothing stored */
    if (json_is_object(doc) && status != 401 && !no_route) /* refold may have stored lines */
        imp->answered = true;
    if (b->cc != CURLE_OK || status == 503) { /* still, after the retries: stop */
        const char *m =
            json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        char why[400];
        struct rf_err e;
        if (refused)
            snprintf(why, sizeof why, "cannot reach refold at %s: is `refold serve` running?",
                     imp->cl->base);
        else if (b->cc != CURLE_OK)
            snprintf(why, sizeof why, "the server stopped answering (%s)",
                     curl_easy_strerror(b->cc));
        else
            snprintf(why, sizeof why, "the server is unavailable (HTTP 503: %s)",
                     m ? m : "no reason given");
        if (!refused)
            imp->answered = true; /* this batch itself may be stored */
        rf_fail(&e, RF_UNAVAILABLE, "%s", why);
        import_stopped_at(imp, first_line(b, INT64_MAX), &e);
        reject_all(imp, b, why);
        json_decref(doc);
        return;
    }
    if ((status == 413 || status == 400) && b->n > 1) {
        json_decref(doc);
        resend_halves(imp, b, status == 413);
        return;
    }
    if (status < 200 || status >= 300) {
        json_t *e = json_object_get(doc, "error");
        const char *m = json_string_value(json_object_get(e, "message"));
        char why[400];
        if (!m || !json_string_value(json_object_get(e, "code"))) {
            /* not refold's answer: stop rather than reject every line of the file */
            struct rf_err fe;
            rf_fail(&fe, RF_UNAVAILABLE,
                    "HTTP %ld from %s, which does not answer like refold: "
                    "is REFOLD_URL (%s) the refold server?",
                    status, b->url, imp->cl->base);
            import_stopped_at(imp, first_line(b, INT64_MAX), &fe);
            json_decref(doc);
            return;
        }
        if (no_route) {
            struct rf_err fe;
            rf_fail(&fe, RF_NOT_FOUND, "%s", m);
            import_wrong_url(imp, &fe);
            import_stopped_at(imp, first_line(b, INT64_MAX), &fe);
            json_decref(doc);
            return;
        }
        snprintf(why, sizeof why, "the batch request was refused (HTTP %ld): %s", status,
                 m ? m : "no reason given");
        if (status == 401) {
            struct rf_err fe;
            rf_fail(&fe, RF_UNAUTHORIZED, "%s", m ? m : "the API key was refused");
            import_stopped_at(imp, first_line(b, INT64_MAX), &fe); /* revoked mid-import */
        }
        reject_all(imp, b, why);
        json_decref(doc);
        return;
    }
    json_t *sum = json_object_get(doc, "summary");
    json_t *data = json_object_get(doc, "data");
    if (!json_is_object(sum) || !json_is_array(data)) {
        reject_all(imp, b, "the server's answer could not be read");
        json_decref(doc);
        return;
    }
    struct import_counts *c = &imp->st->by_type[b->type];
    c->created += json_integer_value(json_object_get(sum, "created"));
    c->updated += json_integer_value(json_object_get(sum, "updated"));
    c->unchanged += json_integer_value(json_object_get(sum, "unchanged"));
    if (b->lost || b->sends > 1) /* libcurl sent it again by itself */
        imp->st->uncertain += json_integer_value(json_object_get(sum, "unchanged"));
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        json_t *e = json_object_get(item, "error");
        json_int_t at = json_integer_value(json_object_get(item, "index"));
        if (!e || at < 0 || at >= b->n)
            continue;
        report_item(imp, b, (int)at, e);
    }
    json_decref(doc);
}

/* Move transfers along; with block, wait until at least the oldest batch answered.
 * Answered batches are settled oldest first, so their reports follow the file's order. */
void import_pump(struct importer *imp, bool block)
{
    for (;;) {
        int running = 0, left = 0;
        curl_multi_perform(imp->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(imp->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct batch *b = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&b);
            curl_multi_remove_handle(imp->multi, m->easy_handle);
            if (retry(b, m->data.result)) { /* it stays in flight, so the ordering holds */
                b->sends = 0;
                curl_multi_add_handle(imp->multi, b->easy);
                continue;
            }
            b->cc = m->data.result;
            b->done = true;
        }
        bool settled = false;
        while (imp->head && imp->head->done) {
            struct batch *b = imp->head;
            imp->head = b->next;
            if (!imp->head)
                imp->tail = NULL;
            imp->inflight--;
            settle(imp, b);
            b->next = imp->free_list;
            imp->free_list = b;
            settled = true;
        }
        if (!block || settled || !imp->head)
            return;
        /* Interrupted: return now and then, so that the caller can see it and stop waiting. */
        curl_multi_poll(imp->multi, NULL, 0, import_stopping(imp) ? 100 : 1000, NULL);
        if (import_stopping(imp))
            return;
    }
}

/* Wait until batch w (in flight) has been settled. */
static void wait_for(struct importer *imp, const struct batch *w)
{
    for (;;) {
        bool in_flight = false;
        for (struct batch *b = imp->head; b; b = b->next)
            in_flight = in_flight || b == w;
        if (!in_flight || import_stopping(imp))
            return;
        import_pump(imp, true);
    }
}

/* Close b's body and set up its request. */
static void prepare(struct importer *imp, struct batch *b)
{
    buf_puts(&b->body, "]}");
    if (b->type == IMPORT_TRACE)
        snprintf(b->url, sizeof b->url, "%s/v1/traces?outcomes=rejected", imp->cl->base);
    else if (b->type == IMPORT_FEEDBACK)
        snprintf(b->url, sizeof b->url, "%s/v1/feedback?outcomes=rejected", imp->cl->base);
    else
        snprintf(b->url, sizeof b->url, "%s/v1/evals/%s/executions?outcomes=rejected",
                 imp->cl->base, imp->evals[b->eval].id);
    CURL *e = b->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, b->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, imp->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_resp);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)b);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, client_count_send);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &b->sends);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
}

static void submit(struct importer *imp, struct batch *b);

/* Send b: after the trace batches its items depend on and the same-type batches it
 * shares keys with have answered, and once a request slot is free. */
static void submit(struct importer *imp, struct batch *b)
{
    qsort(b->keys, (size_t)b->n, sizeof *b->keys, by_key);
    if (b->type != IMPORT_TRACE && imp->pending_traces && imp->pending_traces->n > 0) {
        struct batch *t = imp->pending_traces;
        imp->pending_traces = NULL;
        submit(imp, t);
    }
    for (bool again = true; again && !import_stopping(imp);) {
        again = false;
        for (struct batch *f = imp->head; f; f = f->next) {
            /* Ordered when they share a trace: batches of one type (the later line wins;
             * executions only of the same eval, the others never touch the same row), and
             * a trace batch against what refers to its traces. Feedback and executions
             * are not: the server keeps the counters exact whichever commits first. */
            bool related = f->type == b->type ? b->type != IMPORT_EXECUTION || f->eval == b->eval
                                              : f->type == IMPORT_TRACE || b->type == IMPORT_TRACE;
            if (related && intersect(f, b)) {
                wait_for(imp, f);
                again = true;
                break;
            }
        }
    }
    while (imp->inflight >= imp->parallel && !import_stopping(imp))
        import_pump(imp, true);
    if (imp->fatal) { /* an answer while waiting stopped the import: b is not sent */
        reject_all(imp, b, "not sent");
        b->next = imp->free_list;
        imp->free_list = b;
        return;
    }
    if (import_stopping(imp)) { /* interrupted: b is left unsent (import_wind_down) */
        if (!imp->first_unsent || b->lines[0] < imp->first_unsent)
            imp->first_unsent = b->lines[0];
        b->next = imp->free_list;
        imp->free_list = b;
        return;
    }
    prepare(imp, b);
    b->next = NULL;
    if (imp->tail)
        imp->tail->next = b;
    else
        imp->head = b;
    imp->tail = b;
    imp->inflight++;
    b->sends = 0;
    curl_multi_add_handle(imp->multi, b->easy);
    import_pump(imp, false);
}

/* Send the pending trace batch and wait until every trace batch has answered. */
void import_flush_traces(struct importer *imp)
{
    if (imp->pending_traces && imp->pending_traces->n) {
        struct batch *b = imp->pending_traces;
        imp->pending_traces = NULL;
        submit(imp, b);
    }
    for (;;) {
        bool traces = false;
        for (struct batch *f = imp->head; f; f = f->next)
            traces = traces || f->type == IMPORT_TRACE;
        if (!traces || imp->fatal)
            return;
        import_pump(imp, true);
    }
}

/* Send every pending batch and wait until every request has answered. */
void import_drain(struct importer *imp)
{
    if (imp->pending_traces && imp->pending_traces->n) {
        struct batch *b = imp->pending_traces;
        imp->pending_traces = NULL;
        submit(imp, b);
    }
    if (imp->pending_feedback && imp->pending_feedback->n) {
        struct batch *b = imp->pending_feedback;
        imp->pending_feedback = NULL;
        submit(imp, b);
    }
    for (int i = 0; i < imp->nevals; i++) {
        struct batch *b = imp->evals[i].pending;
        if (b && b->n) {
            imp->evals[i].pending = NULL;
            submit(imp, b);
        }
    }
    while (imp->head && !import_stopping(imp))
        import_pump(imp, true);
}

void import_wind_down(struct importer *imp, int64_t next)
{
    int64_t deadline = clock_mono_ms() + IMPORT_STOP_WAIT_MS;
    for (;;) {
        import_pump(imp, false);
        int64_t left = deadline - clock_mono_ms();
        if (!imp->head || imp->fatal || left <= 0)
            break;
        curl_multi_poll(imp->multi, NULL, 0, left < 100 ? (int)left : 100, NULL);
    }
    int64_t line = first_undone_line(imp, NULL, next);
    if (imp->first_unsent && imp->first_unsent < line)
        line = imp->first_unsent;
    imp->st->undone_from = line == INT64_MAX ? 0 : line;
    for (const struct batch *b = imp->head; b; b = b->next)
        imp->st->unanswered += b->n;
}

/* Add one item (the line, with prefix spliced after its opening brace when given) to the
 * pending batch *slot of its type, sending the batch when it is full. */
void import_add_item(struct importer *imp, struct batch **slot, enum import_type type, int eval,
                     const char *line, size_t len, const char *prefix, int64_t lineno, uint64_t key)
{
    struct batch *b = *slot;
    if (b && (b->n == imp->batch_max || b->body.len + len + 128 > imp->body_target) && b->n) {
        *slot = NULL;
        submit(imp, b);
        b = NULL;
    }
    if (!b)
        b = *slot = batch_new(imp, type, eval);
    if (b->n)
        buf_putc(&b->body, ',');
    b->starts[b->n] = b->body.len;
    if (prefix) {
        const char *brace = memchr(line, '{', len); /* a JSON object: there is one */
        buf_puts(&b->body, prefix);
        buf_append(&b->body, brace + 1, len - (size_t)(brace + 1 - line));
    } else {
        buf_append(&b->body, line, len);
    }
    b->ends[b->n] = b->body.len;
    b->lines[b->n] = lineno;
    b->keys[b->n] = key;
    b->n++;
}

void import_batches_release(struct importer *imp)
{
    for (struct batch *b = imp->head, *next; b; b = next) {
        next = b->next;
        curl_multi_remove_handle(imp->multi, b->easy);
        batch_free(b);
    }
    for (struct batch *b = imp->free_list, *next; b; b = next) {
        next = b->next;
        batch_free(b);
    }
    batch_free(imp->pending_traces);
    batch_free(imp->pending_feedback);
    for (int i = 0; i < imp->nevals; i++)
        batch_free(imp->evals[i].pending);
    curl_slist_free_all(imp->headers);
    curl_multi_cleanup(imp->multi);
}
