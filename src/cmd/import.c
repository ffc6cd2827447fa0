/*
 * import - the bulk importer; the DESIGN comment is in import.h.
 */
#include "cmd/import.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "core/banned.h"

#define MAX_BATCH 1000
#define DEFAULT_PARALLEL 3
#define MAX_PARALLEL 16
/* A batch request is sent once its body passes this size, whatever its count: the
 * server's default body limit is 8 MiB. */
#define BATCH_BODY_TARGET (4u * 1024 * 1024)
#define READ_BLOCK (1u << 20)
#define PROGRESS_EVERY_US 200000
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 600000L

static const char *const type_names[IMPORT_NTYPES] = {
    "agent", "version", "eval", "trace", "feedback", "eval_execution", "invalid"};

const char *import_type_name(enum import_type t)
{
    return t >= 0 && t < IMPORT_NTYPES ? type_names[t] : "?";
}

/* ---- the line reader ---- */

struct reader {
    const struct import_source *src;
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start..end) */
    size_t mem_pos;
    bool eof;
    bool skipping; /* discarding the rest of an over-long line */
};

/* Fill with more bytes; false at end of input. */
static enum rf_status refill(struct reader *r, struct rf_err *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t cap = r->cap * 2 > IMPORT_MAX_LINE + 1 ? IMPORT_MAX_LINE + 1 : r->cap * 2;
        if (cap > r->cap) {
            r->buf = xrealloc(r->buf, cap);
            r->cap = cap;
        }
    }
    for (;;) {
        ssize_t n = read(r->src->fd, r->buf + r->end, r->cap - r->end);
        if (n > 0) {
            r->end += (size_t)n;
            return RF_OK;
        }
        if (n == 0) {
            r->eof = true;
            return RF_OK;
        }
        if (errno != EINTR)
            return rf_fail(err, RF_INTERNAL, "cannot read %s: %s", r->src->name, strerror(errno));
    }
}

/* The next line (without its LF) in *line and *len, borrowed until the next call; *too_long
 * when it was cut at IMPORT_MAX_LINE (the rest is skipped). *more false at the end. */
static enum rf_status next_line(struct reader *r, const char **line, size_t *len, bool *too_long,
                                bool *more, struct rf_err *err)
{
    *too_long = false;
    if (r->src->mem) {
        if (r->mem_pos >= r->src->mem_len) {
            *more = false;
            return RF_OK;
        }
        const char *p = r->src->mem + r->mem_pos;
        size_t left = r->src->mem_len - r->mem_pos;
        const char *nl = memchr(p, '\n', left);
        *line = p;
        *len = nl ? (size_t)(nl - p) : left;
        r->mem_pos += *len + (nl ? 1 : 0);
        *too_long = *len > IMPORT_MAX_LINE;
        *more = true;
        return RF_OK;
    }
    for (;;) {
        char *p = r->buf + r->start;
        char *nl = memchr(p, '\n', r->end - r->start);
        if (nl) {
            size_t n = (size_t)(nl - p);
            r->start += n + 1;
            if (r->skipping) { /* the end of an over-long line: report it now */
                r->skipping = false;
                *too_long = true;
                *line = p;
                *len = 0;
                *more = true;
                return RF_OK;
            }
            *line = p;
            *len = n;
            *more = true;
            return RF_OK;
        }
        if (r->eof) {
            if (r->start == r->end && !r->skipping) {
                *more = false;
                return RF_OK;
            }
            *line = p;
            *len = r->end - r->start;
            *too_long = r->skipping;
            r->skipping = false;
            r->start = r->end;
            *more = true;
            return RF_OK;
        }
        if (r->start == 0 && r->end == r->cap && r->cap >= IMPORT_MAX_LINE + 1) {
            r->skipping = true; /* no newline within the limit: drop what we have */
            r->start = r->end = 0;
        }
        enum rf_status rc = refill(r, err);
        if (rc)
            return rc;
    }
}

/* ---- batches ---- */

struct batch {
    enum import_type type; /* IMPORT_TRACE, IMPORT_FEEDBACK or IMPORT_EXECUTION */
    int eval;              /* executions: index into imp->evals */
    struct buf body;
    int n;
    int64_t *lines; /* line number of each item */
    uint64_t *keys; /* hash of each item's trace key, sorted once sent */
    int cap;
    CURL *easy;
    struct buf resp;
    char url[512];
    bool done;
    CURLcode cc;
    struct batch *next; /* in-flight FIFO, or the free list */
};

struct version_ent {
    int64_t number;
    char id[ID_MAX];
    char *tmpl;
};

struct agent_ent {
    char *name;
    char id[ID_MAX];
    bool missing;        /* no such agent in the workspace (yet) */
    json_t *description; /* as stored (string or null) */
    bool versions_loaded, evals_loaded;
    /* The version the file last stated as the agent's prompt (its agent line's template, or
     * a version line with status active): traces without "version" are pinned to it, so
     * their version does not depend on what is active when the file is imported again.
     * "" until the file states one: then traces go to the active version. */
    char file_version[ID_MAX];
    struct version_ent *versions;
    int nversions;
};

struct eval_ent {
    char id[ID_MAX];
    int agent;
    struct batch *pending;
};

struct importer {
    struct client *cl;
    const struct import_opts *opts;
    struct import_stats *st;
    const char *name;
    int batch_max, parallel;
    CURLM *multi;
    struct curl_slist *headers;
    struct batch *pending_traces, *pending_feedback;
    struct batch *head, *tail; /* in flight, oldest first */
    int inflight;
    struct batch *free_list;
    json_t *agent_index; /* name -> index into agents */
    struct agent_ent *agents;
    int nagents;
    json_t *eval_index; /* "agent_id\x1fname" -> index into evals, or -1 (missing) */
    struct eval_ent *evals;
    int nevals;
    int last_eval;        /* the previous successful eval lookup, -1 when none ... */
    char *last_eval_name; /* ... by name (owned); executions come in runs */
    enum rf_status fatal; /* set once: stop */
    struct rf_err *err;
    int64_t last_progress_us;
};

static void report(struct importer *imp, int64_t line, enum import_type t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Count a rejected line and say why, one line: "NAME:LINE: TYPE: why". */
static void report(struct importer *imp, int64_t line, enum import_type t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    imp->st->by_type[t].rejected++;
    imp->st->rejected++;
    if (imp->opts->errors)
        fprintf(imp->opts->errors, "%s:%lld: %s: %s\n", imp->name, (long long)line, type_names[t],
                msg);
}

/* A fatal problem: stop the import with err (the first one wins). */
static enum rf_status fatal(struct importer *imp, const struct rf_err *e)
{
    if (!imp->fatal) {
        *imp->err = *e;
        imp->fatal = e->code ? e->code : RF_INTERNAL;
    }
    return imp->fatal;
}

/* Whether an API failure should stop everything rather than reject one line. */
static bool is_fatal(enum rf_status rc)
{
    return rc == RF_UNAVAILABLE || rc == RF_UNAUTHORIZED;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator */
    h *= 0x100000001b3ULL;
    return h;
}

/* The hash of the trace an item names: (source, external_id), or its trace_id. */
static uint64_t trace_key(const json_t *obj)
{
    const char *ext = json_string_value(json_object_get(obj, "external_id"));
    const char *src = json_string_value(json_object_get(obj, "source"));
    const char *tid = json_string_value(json_object_get(obj, "trace_id"));
    uint64_t h = 0xcbf29ce484222325ULL;
    if (ext)
        return fnv(fnv(h, src ? src : "api"), ext);
    return fnv(fnv(h, "\x01id"), tid ? tid : "");
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
    free(b);
}

static size_t on_resp(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct batch *b = ud;
    size_t n = size * nmemb;
    return buf_append(&b->resp, ptr, n) == RF_OK ? n : 0;
}

/* Every line of b rejected for one reason (counted but not listed once the import is
 * stopping: the fatal error says it all). */
static void reject_all(struct importer *imp, const struct batch *b, const char *why)
{
    for (int i = 0; i < b->n; i++) {
        if (imp->fatal) {
            imp->st->by_type[b->type].rejected++;
            imp->st->rejected++;
        } else {
            report(imp, b->lines[i], b->type, "%s", why);
        }
    }
}

/* Account for an answered batch: the summary's counts and each rejected item's line. */
static void settle(struct importer *imp, struct batch *b)
{
    long status = 0;
    curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    if (b->cc == CURLE_COULDNT_CONNECT || b->cc == CURLE_COULDNT_RESOLVE_HOST) {
        struct rf_err e;
        rf_fail(&e, RF_UNAVAILABLE, "cannot reach refold at %s: is `refold serve` running?",
                imp->cl->base);
        fatal(imp, &e);
        reject_all(imp, b, "not sent: the server could not be reached");
        return;
    }
    if (b->cc != CURLE_OK) {
        char why[300];
        snprintf(why, sizeof why, "the batch request failed: %s (it may have been stored)",
                 curl_easy_strerror(b->cc));
        reject_all(imp, b, why);
        return;
    }
    json_t *doc = json_loadb(b->resp.data ? b->resp.data : "", b->resp.len, 0, NULL);
    if (status < 200 || status >= 300) {
        json_t *e = json_object_get(doc, "error");
        const char *m = json_string_value(json_object_get(e, "message"));
        char why[400];
        snprintf(why, sizeof why, "the batch request was refused (HTTP %ld): %s", status,
                 m ? m : "no reason given");
        if (status == 401) {
            struct rf_err fe;
            rf_fail(&fe, RF_UNAUTHORIZED, "%s", m ? m : "the API key was refused");
            fatal(imp, &fe);
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
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        json_t *e = json_object_get(item, "error");
        json_int_t at = json_integer_value(json_object_get(item, "index"));
        if (!e || at < 0 || at >= b->n)
            continue;
        const char *m = json_string_value(json_object_get(e, "message"));
        report(imp, b->lines[at], b->type, "%s", m ? m : "rejected");
    }
    json_decref(doc);
}

/* Move transfers along; with block, wait until at least the oldest batch answered.
 * Answered batches are settled oldest first, so reports follow the file's order. */
static void pump(struct importer *imp, bool block)
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
            b->cc = m->data.result;
            b->done = true;
            curl_multi_remove_handle(imp->multi, m->easy_handle);
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
        curl_multi_poll(imp->multi, NULL, 0, 1000, NULL);
    }
}

/* Wait until batch w (in flight) has been settled. */
static void wait_for(struct importer *imp, const struct batch *w)
{
    for (;;) {
        bool in_flight = false;
        for (struct batch *b = imp->head; b; b = b->next)
            in_flight = in_flight || b == w;
        if (!in_flight)
            return;
        pump(imp, true);
    }
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
    for (bool again = true; again;) {
        again = false;
        for (struct batch *f = imp->head; f; f = f->next) {
            /* Ordered when they share a trace: batches of one type (the later line wins;
             * executions only of the same eval, the others never touch the same row), and
             * a trace batch against what refers to its traces. Feedback and executions
             * are not: the server keeps the counters exact whichever commits first. */
            bool related = f->type == b->type
                               ? b->type != IMPORT_EXECUTION || f->eval == b->eval
                               : f->type == IMPORT_TRACE || b->type == IMPORT_TRACE;
            if (related && intersect(f, b)) {
                wait_for(imp, f);
                again = true;
                break;
            }
        }
    }
    while (imp->inflight >= imp->parallel)
        pump(imp, true);
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
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    b->next = NULL;
    if (imp->tail)
        imp->tail->next = b;
    else
        imp->head = b;
    imp->tail = b;
    imp->inflight++;
    curl_multi_add_handle(imp->multi, e);
    pump(imp, false);
}

/* Send every pending batch and wait until every request has answered. */
static void drain(struct importer *imp)
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
    while (imp->head)
        pump(imp, true);
}

/* Add one item (the line, with prefix spliced after its opening brace when given) to the
 * pending batch *slot of its type, sending the batch when it is full. */
static void add_item(struct importer *imp, struct batch **slot, enum import_type type, int eval,
                     const char *line, size_t len, const char *prefix, int64_t lineno, uint64_t key)
{
    struct batch *b = *slot;
    if (b && (b->n == imp->batch_max || b->body.len + len + 128 > BATCH_BODY_TARGET) && b->n) {
        *slot = NULL;
        submit(imp, b);
        b = NULL;
    }
    if (!b)
        b = *slot = batch_new(imp, type, eval);
    if (b->n)
        buf_putc(&b->body, ',');
    if (prefix) {
        const char *brace = memchr(line, '{', len); /* a JSON object: there is one */
        buf_puts(&b->body, prefix);
        buf_append(&b->body, brace + 1, len - (size_t)(brace + 1 - line));
    } else {
        buf_append(&b->body, line, len);
    }
    b->lines[b->n] = lineno;
    b->keys[b->n] = key;
    b->n++;
}

/* ---- names: agents, versions, evals ---- */

/* A string field: NULL when absent or null; *bad when present with another type. */
static const char *opt_str(const json_t *obj, const char *key, bool *bad)
{
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_string(v) && !json_is_null(v))
        *bad = true;
    return json_string_value(v);
}

/* The index of agent name in the cache, loading it from the server (GET
 * /v1/agents?name=) the first time. -1 with *rc set when the lookup failed. A missing
 * agent gets an entry too (missing = true), so it is asked about once. */
static int agent_lookup(struct importer *imp, const char *name, enum rf_status *rc,
                        struct rf_err *err)
{
    json_t *at = json_object_get(imp->agent_index, name);
    *rc = RF_OK;
    if (at)
        return (int)json_integer_value(at);
    json_t *list = NULL;
    char *e = client_escape(imp->cl, name), *path = xasprintf("/v1/agents?name=%s", e);
    free(e);
    *rc = client_list_all(imp->cl, path, &list, err);
    free(path);
    if (*rc)
        return -1;
    imp->agents = xrealloc(imp->agents, sizeof *imp->agents * (size_t)(imp->nagents + 1));
    struct agent_ent *a = &imp->agents[imp->nagents];
    memset(a, 0, sizeof *a);
    a->name = xstrdup(name);
    a->missing = true;
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        const char *status = json_string_value(json_object_get(row, "status"));
        if (status && strcmp(status, "archived") != 0) {
            snprintf(a->id, sizeof a->id, "%s", json_string_value(json_object_get(row, "id")));
            a->description = json_incref(json_object_get(row, "description"));
            a->missing = false;
            break;
        }
    }
    json_decref(list);
    json_object_set_new(imp->agent_index, name, json_integer(imp->nagents));
    return imp->nagents++;
}

static void add_version(struct agent_ent *a, const json_t *v)
{
    a->versions = xrealloc(a->versions, sizeof *a->versions * (size_t)(a->nversions + 1));
    struct version_ent *e = &a->versions[a->nversions++];
    e->number = json_integer_value(json_object_get(v, "version"));
    snprintf(e->id, sizeof e->id, "%s", json_string_value(json_object_get(v, "id")));
    const char *t = json_string_value(json_object_get(v, "prompt_template"));
    e->tmpl = xstrdup(t ? t : "");
}

/* Make sure the agent's versions are in the cache (one list call per agent). */
static enum rf_status load_versions(struct importer *imp, struct agent_ent *a, struct rf_err *err)
{
    if (a->versions_loaded)
        return RF_OK;
    json_t *list = NULL;
    char *path = xasprintf("/v1/agents/%s/versions", a->id);
    enum rf_status rc = client_list_all(imp->cl, path, &list, err);
    free(path);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) add_version(a, v);
    json_decref(list);
    a->versions_loaded = true;
    return RF_OK;
}

static const struct version_ent *version_by_template(const struct agent_ent *a, const char *t)
{
    for (int i = 0; i < a->nversions; i++)
        if (strcmp(a->versions[i].tmpl, t) == 0)
            return &a->versions[i];
    return NULL;
}

/* Pin the agent's traces to its version with template tmpl (see file_version). */
static void pin(struct agent_ent *a, const char *tmpl)
{
    const struct version_ent *v = version_by_template(a, tmpl);
    if (v)
        snprintf(a->file_version, sizeof a->file_version, "%s", v->id);
}

static char *eval_key(const char *agent_id, const char *name)
{
    return xasprintf("%s\x1f%s", agent_id, name);
}

static int eval_add(struct importer *imp, int agent, const char *id, const char *name)
{
    imp->evals = xrealloc(imp->evals, sizeof *imp->evals * (size_t)(imp->nevals + 1));
    struct eval_ent *e = &imp->evals[imp->nevals];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->agent = agent;
    char *k = eval_key(imp->agents[agent].id, name);
    json_object_set_new(imp->eval_index, k, json_integer(imp->nevals));
    free(k);
    return imp->nevals++;
}

/* The index of the agent's eval named name, or -1 (with *rc RF_OK when there is none). */
static int eval_lookup(struct importer *imp, int agent, const char *name, enum rf_status *rc,
                       struct rf_err *err)
{
    struct agent_ent *a = &imp->agents[agent];
    *rc = RF_OK;
    if (!a->evals_loaded) {
        json_t *list = NULL;
        char *path = xasprintf("/v1/evals?agent_id=%s", a->id);
        *rc = client_list_all(imp->cl, path, &list, err);
        free(path);
        if (*rc)
            return -1;
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
            eval_add(imp, agent, json_string_value(json_object_get(v, "id")),
                     json_string_value(json_object_get(v, "name")));
        json_decref(list);
        imp->agents[agent].evals_loaded = true;
    }
    if (imp->last_eval >= 0 && imp->evals[imp->last_eval].agent == agent &&
        strcmp(imp->last_eval_name, name) == 0)
        return imp->last_eval;
    char *k = eval_key(imp->agents[agent].id, name);
    json_t *at = json_object_get(imp->eval_index, k);
    free(k);
    if (!at)
        return -1;
    free(imp->last_eval_name);
    imp->last_eval_name = xstrdup(name);
    imp->last_eval = (int)json_integer_value(at);
    return imp->last_eval;
}

/* An API failure on line: fatal for the import, or a rejection of the line. */
static void api_failed(struct importer *imp, int64_t line, enum import_type t, enum rf_status rc,
                       const struct rf_err *err)
{
    if (is_fatal(rc))
        fatal(imp, err);
    else
        report(imp, line, t, "%s", err->message);
}

/* The agent named by field "agent" of a line, or -1 after reporting why not. */
static int line_agent(struct importer *imp, const json_t *obj, int64_t line, enum import_type t)
{
    const char *name = json_string_value(json_object_get(obj, "agent"));
    struct rf_err err;
    enum rf_status rc;
    if (!name || !*name) {
        report(imp, line, t, "\"agent\" (the agent's name) is required");
        return -1;
    }
    int ai = agent_lookup(imp, name, &rc, &err);
    if (rc) {
        api_failed(imp, line, t, rc, &err);
        return -1;
    }
    if (imp->agents[ai].missing) {
        report(imp, line, t,
               "unknown agent \"%s\": it is not in the workspace and no agent line before "
               "this one defines it",
               name);
        return -1;
    }
    return ai;
}

/* POST .../versions (and promote it when activate); the new version joins the cache. */
static enum rf_status create_version(struct importer *imp, struct agent_ent *a, const char *tmpl,
                                     bool activate, struct rf_err *err)
{
    json_t *body = json_pack("{s:s}", "prompt_template", tmpl), *v = NULL, *p = NULL;
    char *path = xasprintf("/v1/agents/%s/versions", a->id);
    enum rf_status rc = client_call(imp->cl, "POST", path, body, NULL, &v, NULL, err);
    free(path);
    path = NULL;
    if (rc == RF_OK && activate) {
        path = xasprintf("/v1/agents/%s/versions/%lld/promote", a->id,
                         (long long)json_integer_value(json_object_get(v, "version")));
        rc = client_call(imp->cl, "POST", path, NULL, NULL, &p, NULL, err);
    }
    if (v)
        add_version(a, v);
    json_decref(body);
    json_decref(v);
    json_decref(p);
    free(path);
    return rc;
}

static void on_agent(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *name = opt_str(obj, "name", &bad);
    const char *desc = opt_str(obj, "description", &bad);
    const char *tmpl = opt_str(obj, "prompt_template", &bad);
    struct rf_err err;
    enum rf_status rc;
    json_t *out = NULL;
    if (!name || !*name || bad) {
        report(imp, line, IMPORT_AGENT,
               bad ? "name, description and prompt_template must be strings"
                   : "\"name\" is required");
        return;
    }
    int ai = agent_lookup(imp, name, &rc, &err);
    if (rc) {
        api_failed(imp, line, IMPORT_AGENT, rc, &err);
        return;
    }
    struct agent_ent *a = &imp->agents[ai];
    if (a->missing) {
        json_t *body = json_pack("{s:s}", "name", name);
        if (desc)
            json_object_set_new(body, "description", json_string(desc));
        if (tmpl)
            json_object_set_new(body, "prompt_template", json_string(tmpl));
        rc = client_call(imp->cl, "POST", "/v1/agents", body, NULL, &out, NULL, &err);
        json_decref(body);
        if (rc) {
            api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        snprintf(a->id, sizeof a->id, "%s", json_string_value(json_object_get(out, "id")));
        json_decref(a->description);
        a->description = json_incref(json_object_get(out, "description"));
        a->missing = false;
        a->versions_loaded = a->evals_loaded = true; /* a new agent: we know them all */
        json_t *active = json_object_get(out, "active_version");
        if (json_is_object(active)) {
            add_version(a, active);
            pin(a, tmpl);
        }
        imp->st->by_type[IMPORT_AGENT].created++;
        json_decref(out);
        return;
    }
    bool changed = false;
    const json_t *d = json_object_get(obj, "description");
    if (d && !json_equal((json_t *)d, a->description)) {
        json_t *body = json_pack("{s:O}", "description", d);
        char *path = xasprintf("/v1/agents/%s", a->id);
        rc = client_call(imp->cl, "PATCH", path, body, NULL, &out, NULL, &err);
        free(path);
        json_decref(body);
        if (rc) {
            api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        json_decref(a->description);
        a->description = json_incref(json_object_get(out, "description"));
        json_decref(out);
        changed = true;
    }
    if (tmpl) {
        if ((rc = load_versions(imp, a, &err))) {
            api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        if (!version_by_template(a, tmpl)) {
            if ((rc = create_version(imp, a, tmpl, true, &err))) {
                api_failed(imp, line, IMPORT_AGENT, rc, &err);
                return;
            }
            changed = true;
        }
        pin(a, tmpl);
    }
    if (changed)
        imp->st->by_type[IMPORT_AGENT].updated++;
    else
        imp->st->by_type[IMPORT_AGENT].unchanged++;
}

static void on_version(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *tmpl = opt_str(obj, "prompt_template", &bad);
    const char *status = opt_str(obj, "status", &bad);
    struct rf_err err;
    enum rf_status rc;
    if (bad || !tmpl) {
        report(imp, line, IMPORT_VERSION, "\"prompt_template\" (a string) is required");
        return;
    }
    if (status && strcmp(status, "candidate") != 0 && strcmp(status, "active") != 0) {
        report(imp, line, IMPORT_VERSION, "status must be \"candidate\" or \"active\", not \"%s\"",
               status);
        return;
    }
    int ai = line_agent(imp, obj, line, IMPORT_VERSION);
    if (ai < 0)
        return;
    struct agent_ent *a = &imp->agents[ai];
    if ((rc = load_versions(imp, a, &err))) {
        api_failed(imp, line, IMPORT_VERSION, rc, &err);
        return;
    }
    bool activate = status && strcmp(status, "active") == 0;
    if (version_by_template(a, tmpl)) {
        imp->st->by_type[IMPORT_VERSION].unchanged++;
    } else if ((rc = create_version(imp, a, tmpl, activate, &err))) {
        api_failed(imp, line, IMPORT_VERSION, rc, &err);
        return;
    } else {
        imp->st->by_type[IMPORT_VERSION].created++;
    }
    if (activate)
        pin(a, tmpl);
}

static void on_eval(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *name = opt_str(obj, "name", &bad);
    const char *desc = opt_str(obj, "description", &bad);
    struct rf_err err;
    enum rf_status rc;
    if (bad || !name || !*name) {
        report(imp, line, IMPORT_EVAL,
               bad ? "name and description must be strings" : "\"name\" is required");
        return;
    }
    int ai = line_agent(imp, obj, line, IMPORT_EVAL);
    if (ai < 0)
        return;
    int ei = eval_lookup(imp, ai, name, &rc, &err);
    if (rc) {
        api_failed(imp, line, IMPORT_EVAL, rc, &err);
        return;
    }
    if (ei >= 0) { /* evals have no update: an existing one is left as it is */
        imp->st->by_type[IMPORT_EVAL].unchanged++;
        return;
    }
    json_t *body = json_pack("{s:s, s:s}", "agent_id", imp->agents[ai].id, "name", name), *out;
    if (desc)
        json_object_set_new(body, "description", json_string(desc));
    rc = client_call(imp->cl, "POST", "/v1/evals", body, NULL, &out, NULL, &err);
    json_decref(body);
    if (rc) {
        api_failed(imp, line, IMPORT_EVAL, rc, &err);
        return;
    }
    eval_add(imp, ai, json_string_value(json_object_get(out, "id")), name);
    json_decref(out);
    imp->st->by_type[IMPORT_EVAL].created++;
}

static void on_trace(struct importer *imp, const json_t *obj, const char *text, size_t len,
                     int64_t line)
{
    const char *ext = json_string_value(json_object_get(obj, "external_id"));
    struct rf_err err;
    enum rf_status rc;
    if (json_object_get(obj, "agent_id") || json_object_get(obj, "agent_version_id")) {
        report(imp, line, IMPORT_TRACE,
               "name the agent with \"agent\" (and the version with \"version\"), not with "
               "agent_id or agent_version_id");
        return;
    }
    if (!ext || !*ext) {
        report(imp, line, IMPORT_TRACE,
               "\"external_id\" is required: with source it identifies the trace, so that "
               "importing again does not duplicate it");
        return;
    }
    int ai = line_agent(imp, obj, line, IMPORT_TRACE);
    if (ai < 0)
        return;
    struct agent_ent *a = &imp->agents[ai];
    char prefix[ID_MAX + 32];
    const json_t *ver = json_object_get(obj, "version");
    if (ver && !json_is_null(ver)) {
        if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
            report(imp, line, IMPORT_TRACE, "version must be a version number (1, 2, ...)");
            return;
        }
        if ((rc = load_versions(imp, a, &err))) {
            api_failed(imp, line, IMPORT_TRACE, rc, &err);
            return;
        }
        const struct version_ent *v = NULL;
        for (int i = 0; i < a->nversions && !v; i++)
            if (a->versions[i].number == json_integer_value(ver))
                v = &a->versions[i];
        if (!v) {
            report(imp, line, IMPORT_TRACE, "agent \"%s\" has no version %lld", a->name,
                   (long long)json_integer_value(ver));
            return;
        }
        snprintf(prefix, sizeof prefix, "{\"agent_version_id\":\"%s\",", v->id);
    } else if (a->file_version[0]) {
        snprintf(prefix, sizeof prefix, "{\"agent_version_id\":\"%s\",", a->file_version);
    } else {
        snprintf(prefix, sizeof prefix, "{\"agent_id\":\"%s\",", a->id);
    }
    add_item(imp, &imp->pending_traces, IMPORT_TRACE, -1, text, len, prefix, line, trace_key(obj));
}

static void on_feedback(struct importer *imp, const json_t *obj, const char *text, size_t len,
                        int64_t line)
{
    add_item(imp, &imp->pending_feedback, IMPORT_FEEDBACK, -1, text, len, NULL, line,
             trace_key(obj));
}

static void on_execution(struct importer *imp, const json_t *obj, const char *text, size_t len,
                         int64_t line)
{
    const char *name = json_string_value(json_object_get(obj, "eval"));
    struct rf_err err;
    enum rf_status rc;
    if (!name || !*name) {
        report(imp, line, IMPORT_EXECUTION, "\"eval\" (the eval's name) is required");
        return;
    }
    int ai = line_agent(imp, obj, line, IMPORT_EXECUTION);
    if (ai < 0)
        return;
    int ei = eval_lookup(imp, ai, name, &rc, &err);
    if (rc) {
        api_failed(imp, line, IMPORT_EXECUTION, rc, &err);
        return;
    }
    if (ei < 0) {
        report(imp, line, IMPORT_EXECUTION,
               "agent \"%s\" has no eval \"%s\" (an eval line must come first)",
               imp->agents[ai].name, name);
        return;
    }
    add_item(imp, &imp->evals[ei].pending, IMPORT_EXECUTION, ei, text, len, NULL, line,
             trace_key(obj));
}

static void on_line(struct importer *imp, const char *text, size_t len, int64_t line)
{
    json_error_t je;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        report(imp, line, IMPORT_INVALID, "invalid JSON at column %d: %s", je.column, je.text);
        return;
    }
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!json_is_object(obj)) {
        report(imp, line, IMPORT_INVALID, "not a JSON object");
    } else if (!type) {
        report(imp, line, IMPORT_INVALID,
               "no \"type\" (agent, version, eval, trace, feedback or eval_execution)");
    } else if (!strcmp(type, "trace")) {
        on_trace(imp, obj, text, len, line);
    } else if (!strcmp(type, "feedback")) {
        on_feedback(imp, obj, text, len, line);
    } else if (!strcmp(type, "eval_execution")) {
        on_execution(imp, obj, text, len, line);
    } else if (!strcmp(type, "agent")) {
        on_agent(imp, obj, line);
    } else if (!strcmp(type, "version")) {
        on_version(imp, obj, line);
    } else if (!strcmp(type, "eval")) {
        on_eval(imp, obj, line);
    } else {
        report(imp, line, IMPORT_INVALID,
               "unknown type \"%.64s\" (agent, version, eval, trace, feedback or "
               "eval_execution)",
               type);
    }
    json_decref(obj);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static void tick(struct importer *imp, bool force)
{
    int64_t now = clock_mono_us();
    imp->st->elapsed_us = now - imp->st->started_us;
    if (imp->opts->progress && (force || now - imp->last_progress_us >= PROGRESS_EVERY_US)) {
        imp->last_progress_us = now;
        imp->opts->progress(imp->opts->ud, imp->st);
    }
}

enum rf_status import_run(struct client *cl, const struct import_source *src,
                          const struct import_opts *opts, struct import_stats *st,
                          struct rf_err *err)
{
    struct importer imp = {.cl = cl,
                           .opts = opts,
                           .st = st,
                           .err = err,
                           .name = src->name ? src->name : "input",
                           .last_eval = -1};
    struct reader r = {.src = src};
    enum rf_status rc = RF_OK;
    memset(st, 0, sizeof *st);
    rf_err_clear(err);
    st->started_us = clock_mono_us();
    imp.batch_max = opts->batch > 0 && opts->batch <= MAX_BATCH ? opts->batch : MAX_BATCH;
    imp.parallel =
        opts->parallel > 0 && opts->parallel <= MAX_PARALLEL ? opts->parallel : DEFAULT_PARALLEL;
    imp.multi = curl_multi_init();
    curl_multi_setopt(imp.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)imp.parallel);
    imp.headers = curl_slist_append(imp.headers, cl->auth);
    imp.headers = curl_slist_append(imp.headers, "Content-Type: application/json");
    imp.headers = curl_slist_append(imp.headers, "Accept: application/json");
    imp.headers = curl_slist_append(imp.headers, "Expect:"); /* no 100-continue round trip */
    imp.agent_index = json_object();
    imp.eval_index = json_object();
    if (!src->mem) {
        r.cap = READ_BLOCK;
        r.buf = xmalloc(r.cap);
    }

    for (;;) {
        const char *line;
        size_t len;
        bool too_long, more;
        if ((rc = next_line(&r, &line, &len, &too_long, &more, err)))
            break;
        if (!more)
            break;
        st->lines++;
        if (st->lines == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3; /* a UTF-8 byte order mark is not part of the first object */
            len -= 3;
        }
        if (too_long) {
            st->records++;
            report(&imp, st->lines, IMPORT_INVALID, "line is longer than %u MiB",
                   IMPORT_MAX_LINE >> 20);
        } else if (!blank(line, len)) {
            st->records++;
            on_line(&imp, line, len, st->lines);
        }
        if (imp.fatal)
            break;
        if ((st->lines & 63) == 0) { /* keep uploads and answers moving while parsing */
            pump(&imp, false);
            tick(&imp, false);
        }
    }
    if (!rc && !imp.fatal)
        drain(&imp);
    if (imp.fatal)
        rc = imp.fatal;

    /* Cleanup, including requests still in flight after a fatal error. */
    for (struct batch *b = imp.head, *next; b; b = next) {
        next = b->next;
        curl_multi_remove_handle(imp.multi, b->easy);
        batch_free(b);
    }
    for (struct batch *b = imp.free_list, *next; b; b = next) {
        next = b->next;
        batch_free(b);
    }
    batch_free(imp.pending_traces);
    batch_free(imp.pending_feedback);
    for (int i = 0; i < imp.nevals; i++)
        batch_free(imp.evals[i].pending);
    for (int i = 0; i < imp.nagents; i++) {
        free(imp.agents[i].name);
        json_decref(imp.agents[i].description);
        for (int k = 0; k < imp.agents[i].nversions; k++)
            free(imp.agents[i].versions[k].tmpl);
        free(imp.agents[i].versions);
    }
    free(imp.agents);
    free(imp.evals);
    free(imp.last_eval_name);
    json_decref(imp.agent_index);
    json_decref(imp.eval_index);
    curl_slist_free_all(imp.headers);
    curl_multi_cleanup(imp.multi);
    free(r.buf);
    tick(&imp, true);
    return rc;
}
