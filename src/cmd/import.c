/*
 * import - the bulk importer's line reader, the routing of each line, the bulk lines
 * (trace, feedback, eval_execution) and import_run. The DESIGN comment is in import.h;
 * import_internal.h says what the other two files hold.
 */
#include "cmd/import.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/import_internal.h"
#include "cmd/term.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "core/banned.h"

#define MAX_BATCH 1000
#define DEFAULT_PARALLEL 3
#define MAX_PARALLEL 16
#define READ_BLOCK (1u << 20)
#define PROGRESS_EVERY_US 200000

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
    bool skipping;        /* discarding the rest of an over-long line */
    struct importer *imp; /* its requests move on while the input is awaited */
    bool stopped;         /* a read was interrupted (import_stopping): no more lines */
};

static void tick(struct importer *imp, bool force);

/* Before a read that may block (a pipe whose writer is slow): wait for the input and for the
 * answers of the requests in flight together, so that those are sent and answered, and
 * their rejections reported, instead of waiting for the next lines; and look at
 * import_stopping at least once a second, since a signal that came just before read(2)
 * would not interrupt it. */
static void await_input(struct reader *r)
{
    struct importer *imp = r->imp;
    while (!imp->fatal && !import_stopping(imp)) {
        struct curl_waitfd w = {.fd = r->src->fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(imp->multi, &w, 1, 1000, NULL);
        if (imp->head) {
            import_pump(imp, false);
            tick(imp, false);
        }
        if (w.revents)
            return;
    }
}

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
    await_input(r);
    for (;;) {
        if (import_stopping(r->imp)) { /* Ctrl-C while waiting for input on a pipe */
            r->stopped = true;
            return RF_OK;
        }
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
        if (r->stopped) { /* the partial line read so far is left unread */
            *more = false;
            return RF_OK;
        }
    }
}

/* ---- reporting ---- */

void import_report(struct importer *imp, int64_t line, enum import_type t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    char *shown = term_visible(msg, strlen(msg)); /* names and values quoted from the file */
    imp->st->by_type[t].rejected++;
    imp->st->rejected++;
    if (imp->opts->errors && imp->opts->before_report)
        imp->opts->before_report(imp->opts->ud);
    if (imp->opts->errors)
        fprintf(imp->opts->errors, "%s:%lld: %s: %s\n", imp->name, (long long)line, type_names[t],
                shown ? shown : msg);
    free(shown);
}

enum rf_status import_fatal(struct importer *imp, const struct rf_err *e)
{
    if (!imp->fatal) {
        *imp->err = *e;
        imp->fatal = e->code ? e->code : RF_INTERNAL;
    }
    return imp->fatal;
}

bool import_stopping(const struct importer *imp)
{
    return imp->opts->stop && *imp->opts->stop;
}

bool import_not_string(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_string(v) && !json_is_null(v);
}

/* Whether an API failure should stop everything rather than reject one line. */
static bool is_fatal(enum rf_status rc)
{
    return rc == RF_UNAVAILABLE || rc == RF_UNAUTHORIZED;
}

void import_api_failed(struct importer *imp, int64_t line, enum import_type t, enum rf_status rc,
                       const struct rf_err *err)
{
    if (is_fatal(rc))
        import_stopped_at(imp, line, err);
    else
        import_report(imp, line, t, "%s", err->message);
}

/* ---- the bulk lines: trace, feedback, eval_execution ---- */

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

static void on_trace(struct importer *imp, const json_t *obj, const char *text, size_t len,
                     int64_t line)
{
    const char *ext = json_string_value(json_object_get(obj, "external_id"));
    struct rf_err err;
    enum rf_status rc;
    if (json_object_get(obj, "agent_id") || json_object_get(obj, "agent_version_id")) {
        import_report(imp, line, IMPORT_TRACE,
                      "name the agent with \"agent\" (and the version with \"version\"), not with "
                      "agent_id or agent_version_id");
        return;
    }
    if (!ext || !*ext) {
        import_report(imp, line, IMPORT_TRACE,
                      "\"external_id\" %s: with source it identifies the trace, so that "
                      "importing again does not duplicate it",
                      import_not_string(obj, "external_id") ? "must be a string"
                      : ext                                 ? "must not be empty"
                                                            : "is required");
        return;
    }
    int ai = import_line_agent(imp, obj, line, IMPORT_TRACE);
    if (ai < 0)
        return;
    struct agent_ent *a = &imp->agents[ai];
    char prefix[ID_MAX + 32];
    const json_t *ver = json_object_get(obj, "version");
    if (ver && !json_is_null(ver)) {
        if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
            import_report(imp, line, IMPORT_TRACE, "version must be a version number (1, 2, ...)");
            return;
        }
        if ((rc = import_load_versions(imp, a, &err))) {
            import_api_failed(imp, line, IMPORT_TRACE, rc, &err);
            return;
        }
        const struct version_ent *v = NULL;
        for (int i = 0; i < a->nversions && !v; i++)
            if (a->versions[i].number == json_integer_value(ver))
                v = &a->versions[i];
        if (!v) {
            import_report(imp, line, IMPORT_TRACE, "agent \"%s\" has no version %lld", a->name,
                          (long long)json_integer_value(ver));
            return;
        }
        snprintf(prefix, sizeof prefix, "{\"agent_version_id\":\"%s\",", v->id);
    } else if (a->file_version[0]) {
        snprintf(prefix, sizeof prefix, "{\"agent_version_id\":\"%s\",", a->file_version);
    } else {
        snprintf(prefix, sizeof prefix, "{\"agent_id\":\"%s\",", a->id);
    }
    import_add_item(imp, &imp->pending_traces, IMPORT_TRACE, -1, text, len, prefix, line,
                    trace_key(obj));
}

static void on_feedback(struct importer *imp, const json_t *obj, const char *text, size_t len,
                        int64_t line)
{
    import_add_item(imp, &imp->pending_feedback, IMPORT_FEEDBACK, -1, text, len, NULL, line,
                    trace_key(obj));
}

static void on_execution(struct importer *imp, const json_t *obj, const char *text, size_t len,
                         int64_t line)
{
    const char *name = json_string_value(json_object_get(obj, "eval"));
    struct rf_err err;
    enum rf_status rc;
    if (!name || !*name) {
        import_report(imp, line, IMPORT_EXECUTION, "\"eval\" (the eval's name) %s",
                      import_not_string(obj, "eval") ? "must be a string" : "is required");
        return;
    }
    int ai = import_line_agent(imp, obj, line, IMPORT_EXECUTION);
    if (ai < 0)
        return;
    int ei = import_eval_lookup(imp, ai, name, &rc, &err);
    if (rc) {
        import_api_failed(imp, line, IMPORT_EXECUTION, rc, &err);
        return;
    }
    if (ei < 0) {
        import_report(imp, line, IMPORT_EXECUTION,
                      "agent \"%s\" has no eval \"%s\" (an eval line must come first)",
                      imp->agents[ai].name, name);
        return;
    }
    import_add_item(imp, &imp->evals[ei].pending, IMPORT_EXECUTION, ei, text, len, NULL, line,
                    trace_key(obj));
}

static void on_line(struct importer *imp, const char *text, size_t len, int64_t line)
{
    json_error_t je;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        /* jansson's words for the two causes that are about the file, not the JSON */
        bool not_utf8 = strncmp(je.text, "unable to decode byte", 21) == 0;
        bool nul = strstr(je.text, "JSON_ALLOW_NUL") != NULL;
        import_report(imp, line, IMPORT_INVALID, "invalid JSON at column %d: %s%s", je.column,
                      nul ? "\\u0000 (NUL) is not allowed in strings" : je.text,
                      not_utf8 ? ": not UTF-8 (import files are UTF-8: convert this one, e.g. "
                                 "with iconv -f ISO-8859-1 -t UTF-8)"
                               : "");
        return;
    }
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!json_is_object(obj)) {
        import_report(imp, line, IMPORT_INVALID, "not a JSON object");
    } else if (!type) {
        import_report(imp, line, IMPORT_INVALID,
                      "%s (agent, version, eval, trace, feedback or eval_execution)",
                      json_object_get(obj, "type") ? "\"type\" must be a string" : "no \"type\"");
    } else if (!strcmp(type, "trace")) {
        on_trace(imp, obj, text, len, line);
    } else if (!strcmp(type, "feedback")) {
        on_feedback(imp, obj, text, len, line);
    } else if (!strcmp(type, "eval_execution")) {
        on_execution(imp, obj, text, len, line);
    } else if (!strcmp(type, "agent")) {
        import_agent_line(imp, obj, line);
    } else if (!strcmp(type, "version")) {
        import_version_line(imp, obj, line);
    } else if (!strcmp(type, "eval")) {
        import_eval_line(imp, obj, line);
    } else {
        import_report(imp, line, IMPORT_INVALID,
                      "unknown type \"%.64s\" (agent, version, eval, trace, feedback or "
                      "eval_execution)",
                      type);
    }
    json_decref(obj);
}

/* What the first line's first bytes say the input is when it is no JSON Lines in UTF-8 at
 * all (a UTF-16 file, as Windows PowerShell writes with `>`; a compressed file), with how to
 * import it; NULL otherwise. Every line of such a file would be rejected, each with a
 * message about a byte that says nothing of the cause. */
static const char *not_utf8_jsonl(const char *line, size_t len, const char **fix)
{
    const unsigned char *b = (const unsigned char *)line;
    static const struct {
        const char *magic;
        size_t n;
        const char *what, *fix;
    } kinds[] = {
        {"\xFF\xFE", 2, "in UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8",
         "iconv -f UTF-16 -t UTF-8 FILE | refold import -"},
        {"\xFE\xFF", 2, "in UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8",
         "iconv -f UTF-16 -t UTF-8 FILE | refold import -"},
        {"\x1F\x8B", 2, "gzip-compressed", "zcat FILE | refold import -"},
        {"\x28\xB5\x2F\xFD", 4, "zstd-compressed", "zstdcat FILE | refold import -"},
        {"\xFD\x37zXZ", 5, "xz-compressed", "xzcat FILE | refold import -"},
        {"BZh", 3, "bzip2-compressed", "bzcat FILE | refold import -"},
        {"PK\x03\x04", 4, "a zip archive", "unzip -p FILE | refold import -"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (len >= kinds[i].n && memcmp(line, kinds[i].magic, kinds[i].n) == 0) {
            *fix = kinds[i].fix;
            return kinds[i].what;
        }
    if (len >= 4 && ((b[0] && !b[1] && b[2] && !b[3]) || (!b[0] && b[1] && !b[2] && b[3]))) {
        *fix = "iconv -f UTF-16 -t UTF-8 FILE | refold import -";
        return "in UTF-16 (NUL bytes between its characters), not UTF-8";
    }
    return NULL;
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
    struct reader r = {.src = src, .imp = &imp};
    enum rf_status rc = RF_OK;
    bool at_end = false; /* every line was read */
    memset(st, 0, sizeof *st);
    rf_err_clear(err);
    st->started_us = clock_mono_us();
    imp.batch_max = opts->batch > 0 && opts->batch <= MAX_BATCH ? opts->batch : MAX_BATCH;
    imp.parallel =
        opts->parallel > 0 && opts->parallel <= MAX_PARALLEL ? opts->parallel : DEFAULT_PARALLEL;
    import_batches_init(&imp);
    import_names_init(&imp);
    if (!src->mem) {
        r.cap = READ_BLOCK;
        r.buf = xmalloc(r.cap);
    }

    for (;;) {
        const char *line;
        size_t len;
        bool too_long, more;
        if (import_stopping(&imp))
            break;
        if ((rc = next_line(&r, &line, &len, &too_long, &more, err)))
            break;
        if (!more) {
            at_end = !r.stopped;
            break;
        }
        st->lines++;
        if (st->lines == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3; /* a UTF-8 byte order mark is not part of the first object */
            len -= 3;
        }
        const char *fix, *what = st->lines == 1 ? not_utf8_jsonl(line, len, &fix) : NULL;
        if (what) {
            struct rf_err e;
            rf_fail(&e, RF_INVALID, "%s is %s: import it as UTF-8 JSON Lines, e.g. %s", imp.name,
                    what, fix);
            import_fatal(&imp, &e);
            break;
        }
        if (too_long) {
            st->records++;
            import_report(&imp, st->lines, IMPORT_INVALID, "line is longer than %u MiB",
                          IMPORT_MAX_LINE >> 20);
        } else if (!blank(line, len)) {
            st->records++;
            on_line(&imp, line, len, st->lines);
        }
        if (imp.fatal)
            break;
        if ((st->lines & 63) == 0) { /* keep uploads and answers moving while parsing */
            import_pump(&imp, false);
            tick(&imp, false);
        }
    }
    /* After a read error too, what was read is imported; an interrupt, perhaps while
     * draining, leaves the rest. */
    if (!imp.fatal && !import_stopping(&imp))
        import_drain(&imp);
    if (!imp.fatal && import_stopping(&imp)) {
        rf_err_clear(err); /* before: an answer awaited may still stop the import (fatal) */
        import_wind_down(&imp, at_end ? INT64_MAX : st->lines + 1);
        rc = RF_CANCELLED;
    }
    if (imp.fatal)
        rc = imp.fatal;

    import_batches_release(&imp); /* with requests still in flight after a fatal error */
    import_names_release(&imp);
    free(r.buf);
    tick(&imp, true);
    return rc;
}
