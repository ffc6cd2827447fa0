/*
 * bench_load - loads an import file (SPEC §9 format) through the HTTP API.
 *
 * The stand-in for `refold import` until that command exists: agents,
 * versions and evals are created one by one; traces, feedback and eval
 * executions go out as batches of up to --batch items (1,000, the API's
 * limit) over --conns keep-alive connections in parallel. Feedback needs its
 * trace and executions need theirs, so the loader drains all in-flight
 * batches whenever the record kind changes (the file is in dependency order,
 * as bench_gen writes it).
 *
 * Threads: the main thread reads and converts lines and pushes request
 * bodies on a bounded queue (mutex `q.lock` guards the queue, its counters
 * and the first error); --conns worker threads each own one CURL handle.
 *
 * Prints one line per phase and a total, as key=value pairs:
 *   phase=traces records=N seconds=S rate=R
 * Exit status 1 when any request failed or any item was rejected.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/banned.h"

#define QUEUE_CAP 16
#define MAX_AGENTS 256
#define MAX_EVALS 16
#define MAX_VERSIONS 64

struct job {
    char *path;
    char *body;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full, idle;
    struct job items[QUEUE_CAP];
    int head, count, busy;
    bool closing;
    long failures;
    char first_error[512];
} q = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .not_empty = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};

static const char *base_url;
static char auth_header[512];

struct agent {
    char name[128];
    char id[64];
    char versions[MAX_VERSIONS][64]; /* index = version number */
    char eval_names[MAX_EVALS][128];
    char eval_ids[MAX_EVALS][64];
    int nevals;
};

static struct agent agents[MAX_AGENTS];
static int nagents;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct resp_buf {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct resp_buf *b = ud;
    size_t k = size * n;
    char *d = realloc(b->data, b->len + k + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, k);
    b->len += k;
    d[b->len] = '\0';
    b->data = d;
    return k;
}

static CURL *new_handle(struct curl_slist **headers)
{
    CURL *c = curl_easy_init();
    *headers = curl_slist_append(NULL, auth_header);
    *headers = curl_slist_append(*headers, "Content-Type: application/json");
    *headers = curl_slist_append(*headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    return c;
}

/* POST body to path; returns the HTTP status (0 on transport errors), *out the reply. */
static long post(CURL *c, const char *path, const char *body, char **out)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    struct resp_buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    *out = b.data ? b.data : calloc(1, 1);
    return status;
}

static void note_failure(const char *path, long status, const char *reply)
{
    pthread_mutex_lock(&q.lock);
    if (q.failures++ == 0)
        snprintf(q.first_error, sizeof q.first_error, "%s -> %ld %.400s", path, status, reply);
    pthread_mutex_unlock(&q.lock);
}

static void *worker(void *arg)
{
    (void)arg;
    struct curl_slist *headers;
    CURL *c = new_handle(&headers);
    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (q.count == 0 && !q.closing)
            pthread_cond_wait(&q.not_empty, &q.lock);
        if (q.count == 0) {
            pthread_mutex_unlock(&q.lock);
            break;
        }
        struct job j = q.items[q.head];
        q.head = (q.head + 1) % QUEUE_CAP;
        q.count--;
        q.busy++;
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.lock);

        char *reply;
        long status = post(c, j.path, j.body, &reply);
        bool ok = (status == 200 || status == 201) && strstr(reply, "\"rejected\":0");
        if (!ok)
            note_failure(j.path, status, reply);
        free(reply);
        free(j.path);
        free(j.body);

        pthread_mutex_lock(&q.lock);
        if (--q.busy == 0 && q.count == 0)
            pthread_cond_broadcast(&q.idle);
        pthread_mutex_unlock(&q.lock);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return NULL;
}

static void enqueue(char *path, char *body)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == QUEUE_CAP)
        pthread_cond_wait(&q.not_full, &q.lock);
    q.items[(q.head + q.count) % QUEUE_CAP] = (struct job){path, body};
    q.count++;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

static void drain(void)
{
    pthread_mutex_lock(&q.lock);
    while (q.count > 0 || q.busy > 0)
        pthread_cond_wait(&q.idle, &q.lock);
    pthread_mutex_unlock(&q.lock);
}

static struct agent *agent_named(const char *name)
{
    for (int i = 0; name && i < nagents; i++)
        if (strcmp(agents[i].name, name) == 0)
            return &agents[i];
    return NULL;
}

static void fatal(const char *what, const char *detail)
{
    fprintf(stderr, "bench_load: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

/* A synchronous request for the set-up records; returns the parsed reply. */
static json_t *setup_post(CURL *c, const char *path, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char *reply;
    long status = post(c, path, text, &reply);
    free(text);
    if (status != 200 && status != 201)
        fatal(path, reply);
    json_t *r = json_loads(reply, 0, NULL);
    free(reply);
    if (!r)
        fatal(path, "unparsable reply");
    return r;
}

static void copy_str(char *dst, size_t n, const json_t *v)
{
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* A batch being filled: the items array and where it goes. */
struct batch {
    json_t *items;
    char path[256];
    const char *key; /* "traces", "feedback", "executions" */
};

static void flush(struct batch *b)
{
    if (!b->items || json_array_size(b->items) == 0)
        return;
    json_t *body = json_object();
    json_object_set_new(body, b->key, b->items);
    b->items = NULL;
    enqueue(strdup(b->path), json_dumps(body, JSON_COMPACT));
    json_decref(body);
}

static void add(struct batch *b, json_t *item, size_t max)
{
    if (!b->items)
        b->items = json_array();
    json_array_append_new(b->items, item);
    if (json_array_size(b->items) >= max)
        flush(b);
}

enum kind { K_SETUP, K_TRACE, K_FEEDBACK, K_EXEC };
static const char *const kind_names[] = {"setup", "traces", "feedback", "executions"};

int main(int argc, char **argv)
{
    const char *file = NULL, *key = NULL;
    int conns = 4;
    size_t batch_max = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            base_url = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch_max = (size_t)strtoul(argv[++i], NULL, 10);
        else
            fatal("usage", "bench_load --url URL --key KEY --file FILE [--conns N] [--batch N]");
    }
    if (!base_url || !key || !file || conns < 1 || batch_max < 1)
        fatal("usage", "bench_load --url URL --key KEY --file FILE [--conns N] [--batch N]");
    snprintf(auth_header, sizeof auth_header, "Authorization: Bearer %s", key);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    FILE *f = fopen(file, "r");
    if (!f)
        fatal("cannot open", file);

    pthread_t *threads = calloc((size_t)conns, sizeof *threads);
    for (int i = 0; i < conns; i++)
        pthread_create(&threads[i], NULL, worker, NULL);
    struct curl_slist *setup_headers;
    CURL *setup = new_handle(&setup_headers);

    struct batch traces = {.key = "traces"}, feedback = {.key = "feedback"};
    struct batch exec[MAX_AGENTS][MAX_EVALS];
    memset(exec, 0, sizeof exec);
    snprintf(traces.path, sizeof traces.path, "/v1/traces");
    snprintf(feedback.path, sizeof feedback.path, "/v1/feedback");

    enum kind cur = K_SETUP;
    long counts[4] = {0};
    double started[4] = {0}, ended[4] = {0}, t_begin = now_s();
    started[K_SETUP] = t_begin;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
        if (!o)
            fatal("unparsable line", jerr.text);
        char type[32];
        const char *tv = json_string_value(json_object_get(o, "type"));
        if (!tv)
            fatal("line without a type", line);
        snprintf(type, sizeof type, "%s", tv);
        enum kind k = strcmp(type, "trace") == 0            ? K_TRACE
                      : strcmp(type, "feedback") == 0       ? K_FEEDBACK
                      : strcmp(type, "eval_execution") == 0 ? K_EXEC
                                                            : K_SETUP;
        if (k != cur) {
            flush(&traces);
            flush(&feedback);
            for (int a = 0; a < nagents; a++)
                for (int e = 0; e < agents[a].nevals; e++)
                    flush(&exec[a][e]);
            drain();
            ended[cur] = now_s();
            if (started[k] == 0)
                started[k] = ended[cur];
            cur = k;
        }
        json_object_del(o, "type");
        struct agent *ag = agent_named(json_string_value(json_object_get(o, "agent")));
        if (strcmp(type, "agent") == 0) {
            if (nagents == MAX_AGENTS)
                fatal("too many agents", NULL);
            json_t *r = setup_post(setup, "/v1/agents", o);
            struct agent *a = &agents[nagents++];
            copy_str(a->name, sizeof a->name, json_object_get(o, "name"));
            copy_str(a->id, sizeof a->id, json_object_get(r, "id"));
            copy_str(a->versions[1], sizeof a->versions[1], json_object_get(r, "active_version_id"));
            json_decref(r);
        } else if (strcmp(type, "version") == 0) {
            if (!ag)
                fatal("version of an unknown agent", line);
            char path[256];
            snprintf(path, sizeof path, "/v1/agents/%s/versions", ag->id);
            json_t *body = json_pack("{s:O}", "prompt_template",
                                     json_object_get(o, "prompt_template"));
            json_t *r = setup_post(setup, path, body);
            json_int_t v = json_integer_value(json_object_get(r, "version"));
            if (v < 1 || v >= MAX_VERSIONS)
                fatal("unexpected version number", NULL);
            copy_str(ag->versions[v], sizeof ag->versions[v], json_object_get(r, "id"));
            const char *status = json_string_value(json_object_get(o, "status"));
            if (status && strcmp(status, "active") == 0) {
                snprintf(path, sizeof path, "/v1/agents/%s/versions/%lld/promote", ag->id,
                         (long long)v);
                json_t *empty = json_object();
                json_decref(setup_post(setup, path, empty));
                json_decref(empty);
            }
            json_decref(body);
            json_decref(r);
        } else if (strcmp(type, "eval") == 0) {
            if (!ag || ag->nevals == MAX_EVALS)
                fatal("eval of an unknown agent (or too many evals)", line);
            json_object_del(o, "agent");
            json_object_set_new(o, "agent_id", json_string(ag->id));
            json_t *r = setup_post(setup, "/v1/evals", o);
            copy_str(ag->eval_names[ag->nevals], sizeof ag->eval_names[0],
                     json_object_get(o, "name"));
            copy_str(ag->eval_ids[ag->nevals], sizeof ag->eval_ids[0], json_object_get(r, "id"));
            ag->nevals++;
            json_decref(r);
        } else if (k == K_TRACE) {
            if (!ag)
                fatal("trace of an unknown agent", line);
            json_t *ver = json_object_get(o, "version");
            if (json_is_integer(ver)) {
                json_int_t v = json_integer_value(ver);
                if (v < 1 || v >= MAX_VERSIONS || !ag->versions[v][0])
                    fatal("trace of an unknown version", line);
                json_object_set_new(o, "agent_version_id", json_string(ag->versions[v]));
            } else {
                json_object_set_new(o, "agent_id", json_string(ag->id));
            }
            json_object_del(o, "agent");
            json_object_del(o, "version");
            add(&traces, json_incref(o), batch_max);
        } else if (k == K_FEEDBACK) {
            add(&feedback, json_incref(o), batch_max);
        } else if (k == K_EXEC) {
            const char *ename = json_string_value(json_object_get(o, "eval"));
            int e = -1;
            for (int i = 0; ag && ename && i < ag->nevals; i++)
                if (strcmp(ag->eval_names[i], ename) == 0)
                    e = i;
            if (e < 0)
                fatal("execution of an unknown eval", line);
            struct batch *b = &exec[ag - agents][e];
            if (!b->key) {
                b->key = "executions";
                snprintf(b->path, sizeof b->path, "/v1/evals/%s/executions", ag->eval_ids[e]);
            }
            json_object_del(o, "agent");
            json_object_del(o, "eval");
            add(b, json_incref(o), batch_max);
        } else {
            fatal("unknown record type", type);
        }
        counts[k]++;
        json_decref(o);
    }
    flush(&traces);
    flush(&feedback);
    for (int a = 0; a < nagents; a++)
        for (int e = 0; e < agents[a].nevals; e++)
            flush(&exec[a][e]);
    drain();
    ended[cur] = now_s();
    double total = now_s() - t_begin;

    pthread_mutex_lock(&q.lock);
    q.closing = true;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    for (int i = 0; i < conns; i++)
        pthread_join(threads[i], NULL);

    long records = 0;
    for (int k = K_SETUP; k <= K_EXEC; k++) {
        double s = ended[k] - started[k];
        if (counts[k] == 0)
            continue;
        printf("phase=%s records=%ld seconds=%.3f rate=%.0f\n", kind_names[k], counts[k], s,
               s > 0 ? (double)counts[k] / s : 0.0);
        if (k != K_SETUP)
            records += counts[k];
    }
    printf("phase=total records=%ld seconds=%.3f rate=%.0f\n", records, total,
           (double)records / total);
    free(line);
    fclose(f);
    curl_easy_cleanup(setup);
    curl_slist_free_all(setup_headers);
    curl_global_cleanup();
    free(threads);
    if (q.failures) {
        fprintf(stderr, "bench_load: %ld failed batches; first: %s\n", q.failures,
                q.first_error);
        return 1;
    }
    return 0;
}
