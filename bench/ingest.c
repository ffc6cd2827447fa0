/*
 * bench_ingest - loads an import file (SPEC §9 format) straight through the
 * store's batch calls, as `refold import` will: the ceiling for the import
 * figure, without HTTP. Single-threaded, batches of --batch records, one
 * transaction per batch (store_traces_put, store_feedback_put,
 * store_executions_put). The file must be in dependency order, as bench_gen
 * writes it.
 *
 * usage: bench_ingest --db PATH [--batch N] FILE.jsonl
 * Prints `phase=<kind> records=N seconds=S rate=R` lines and a total.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "store/store.h"
#include "core/banned.h"

#define MAX_AGENTS 64
#define MAX_EVALS 16
#define MAX_VERSIONS 16

struct agent {
    char name[128];
    char id[ID_MAX];
    char versions[MAX_VERSIONS][ID_MAX];
    char eval_names[MAX_EVALS][128];
    char eval_ids[MAX_EVALS][ID_MAX];
    int nevals;
};

static struct agent agents[MAX_AGENTS];
static int nagents;
static struct store *st;
static char ws[ID_MAX];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static struct agent *agent_named(const char *name)
{
    for (int i = 0; name && i < nagents; i++)
        if (strcmp(agents[i].name, name) == 0)
            return &agents[i];
    return NULL;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A batch of parsed lines (kept alive for the borrowed strings) and their structs. */
struct batch {
    json_t *lines[1000];
    union {
        struct trace_new t[1000];
        struct feedback_new f[1000];
        struct execution_new x[1000];
    } u;
    int n;
    int eval; /* executions: index into the agent's evals, -1 none */
    struct agent *agent;
};

static struct batch b;
static struct store_item_result results[1000];
static long rejected;
static int batch_max = 1000;

static void flush(int kind)
{
    struct rf_err err;
    enum rf_status rc = RF_OK;
    if (b.n == 0)
        return;
    if (kind == 1)
        rc = store_traces_put(st, ws, b.u.t, b.n, results, &err);
    else if (kind == 2)
        rc = store_feedback_put(st, ws, b.u.f, b.n, results, &err);
    else
        rc = store_executions_put(st, ws, b.agent->eval_ids[b.eval], b.u.x, b.n, results, &err);
    if (rc)
        die("batch", err.message);
    for (int i = 0; i < b.n; i++) {
        if (results[i].outcome == OUTCOME_REJECTED && rejected++ == 0)
            fprintf(stderr, "bench_ingest: rejected: %s\n", results[i].err.message);
        json_decref(b.lines[i]);
    }
    b.n = 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch_max = (int)strtol(argv[++i], NULL, 10);
        else
            file = argv[i];
    }
    if (!db || !file || batch_max < 1 || batch_max > 1000)
        die("usage", "bench_ingest --db PATH [--batch N] FILE.jsonl");
    struct rf_err err;
    json_t *w = NULL;
    if (store_open(db, &st, &err) || store_migrate(st, NULL, &err) ||
        store_workspace_find(st, "default", &w, &err))
        die("open", err.message);
    snprintf(ws, sizeof ws, "%s", str(w, "id"));
    json_decref(w);
    FILE *f = fopen(file, "r");
    if (!f)
        die("cannot open", file);

    static const char *const names[] = {"setup", "traces", "feedback", "executions"};
    long counts[4] = {0};
    double secs[4] = {0};
    int cur = 0;
    int64_t t_phase = clock_mono_us(), t_all = t_phase;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        if (!o)
            die("unparsable line", line);
        const char *type = str(o, "type");
        int kind = !type                                  ? -1
                   : strcmp(type, "trace") == 0           ? 1
                   : strcmp(type, "feedback") == 0        ? 2
                   : strcmp(type, "eval_execution") == 0  ? 3
                                                          : 0;
        if (kind < 0)
            die("line without a type", line);
        struct agent *ag = agent_named(str(o, "agent"));
        int eval = -1;
        if (kind == 3) {
            for (int i = 0; ag && i < ag->nevals; i++)
                if (strcmp(ag->eval_names[i], str(o, "eval")) == 0)
                    eval = i;
            if (eval < 0)
                die("execution of an unknown eval", line);
        }
        if (kind != cur || b.n == batch_max || (kind == 3 && (b.agent != ag || b.eval != eval))) {
            flush(cur);
            if (kind != cur) {
                int64_t now = clock_mono_us();
                secs[cur] += (double)(now - t_phase) / 1e6;
                t_phase = now;
                cur = kind;
            }
        }
        counts[kind]++;
        if (kind == 0) {
            json_t *out = NULL;
            if (strcmp(type, "agent") == 0) {
                struct agent_new in = {.name = str(o, "name"),
                                       .description = str(o, "description"),
                                       .prompt_template = str(o, "prompt_template")};
                if (nagents == MAX_AGENTS || store_agent_create(st, ws, &in, &out, &err))
                    die("agent", err.message);
                struct agent *a = &agents[nagents++];
                snprintf(a->name, sizeof a->name, "%s", in.name);
                snprintf(a->id, sizeof a->id, "%s", str(out, "id"));
                snprintf(a->versions[1], ID_MAX, "%s", str(out, "active_version_id"));
            } else if (strcmp(type, "version") == 0 && ag) {
                struct version_new in = {.prompt_template = str(o, "prompt_template"),
                                         .source = "manual"};
                if (store_version_create(st, ws, ag->id, &in, &out, NULL, &err))
                    die("version", err.message);
                json_int_t v = json_integer_value(json_object_get(out, "version"));
                if (v < 1 || v >= MAX_VERSIONS)
                    die("version", "too many versions");
                snprintf(ag->versions[v], ID_MAX, "%s", str(out, "id"));
                const char *status = str(o, "status");
                json_t *p = NULL;
                if (status && strcmp(status, "active") == 0 &&
                    store_version_promote(st, ws, ag->id, v, NULL, &p, &err))
                    die("promote", err.message);
                json_decref(p);
            } else if (strcmp(type, "eval") == 0 && ag && ag->nevals < MAX_EVALS) {
                if (store_eval_create(st, ws, ag->id, str(o, "name"), str(o, "description"),
                                      &out, &err))
                    die("eval", err.message);
                snprintf(ag->eval_names[ag->nevals], 128, "%s", str(o, "name"));
                snprintf(ag->eval_ids[ag->nevals], ID_MAX, "%s", str(out, "id"));
                ag->nevals++;
            } else {
                die("unknown record", line);
            }
            json_decref(out);
            json_decref(o);
            continue;
        }
        b.lines[b.n] = o;
        if (kind == 1) {
            if (!ag)
                die("trace of an unknown agent", line);
            struct trace_new *t = &b.u.t[b.n];
            memset(t, 0, sizeof *t);
            json_int_t v = json_integer_value(json_object_get(o, "version"));
            if (v >= 1 && v < MAX_VERSIONS && ag->versions[v][0])
                t->agent_version_id = ag->versions[v];
            else
                t->agent_id = ag->id;
            t->source = str(o, "source");
            t->external_id = str(o, "external_id");
            t->has_timestamp = clock_parse(str(o, "timestamp") ? str(o, "timestamp") : "",
                                           &t->timestamp);
            t->input = str(o, "input");
            t->output = str(o, "output");
            json_t *meta = json_object_get(o, "metadata");
            if (meta) {
                char *text = json_dumps(meta, JSON_COMPACT);
                json_object_set_new(o, "_metadata", json_string(text));
                free(text);
                t->metadata = str(o, "_metadata");
            }
        } else if (kind == 2) {
            struct feedback_new *fb = &b.u.f[b.n];
            memset(fb, 0, sizeof *fb);
            fb->trace.source = str(o, "source");
            fb->trace.external_id = str(o, "external_id");
            fb->rating = str(o, "rating");
            fb->note = str(o, "note");
        } else {
            struct execution_new *x = &b.u.x[b.n];
            memset(x, 0, sizeof *x);
            x->trace.source = str(o, "source");
            x->trace.external_id = str(o, "external_id");
            x->predicted_result = json_is_true(json_object_get(o, "predicted_result"));
            x->predicted_reason = str(o, "predicted_reason");
            b.agent = ag;
            b.eval = eval;
        }
        b.n++;
    }
    flush(cur);
    int64_t now = clock_mono_us();
    secs[cur] += (double)(now - t_phase) / 1e6;
    double total = (double)(now - t_all) / 1e6;
    long records = 0;
    for (int k = 0; k < 4; k++) {
        if (!counts[k])
            continue;
        printf("phase=%s records=%ld seconds=%.3f rate=%.0f\n", names[k], counts[k], secs[k],
               (double)counts[k] / secs[k]);
        if (k)
            records += counts[k];
    }
    printf("phase=total records=%ld seconds=%.3f rate=%.0f rejected=%ld\n", records, total,
           (double)records / total, rejected);
    free(line);
    fclose(f);
    store_close(st);
    return rejected ? 1 : 0;
}
