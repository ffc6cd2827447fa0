/*
 * cmd_demo - `refold demo`: refold end to end in a few seconds, offline, from nothing but
 * the binary.
 *
 * It does what a newcomer would do by hand, through the same code: a fresh database in a
 * temporary directory (init: migrations, built-in best practices, a workspace and a key),
 * `refold serve` in-process (HTTP on 127.0.0.1 with a free port, the worker pool, the
 * event hub, wired as in cmd_serve.c), `refold import` of the sample data compiled into
 * the binary (examples/support-agent.jsonl, through import.h and the API), `refold
 * improve acme-support` (the job view of jobview.h on the live SSE stream), then `refold
 * diff` of the candidate and the commands that review it.
 *
 * The LLM: the scripted provider with the canned replies of examples/demo-replies.json
 * (also compiled in, written to the temporary directory for the provider to read), unless
 * a real provider is configured: REFOLD_LLM_PROVIDER, else ANTHROPIC_API_KEY, else
 * OPENAI_API_KEY. --offline forces the canned replies. The choice is printed.
 *
 * The temporary directory is removed at the end unless --keep, in which case the demo
 * prints where it is and how to serve it. Interrupted (SIGINT, SIGTERM, SIGHUP), it is
 * removed too: the signals are blocked in every thread and one thread waits for them,
 * removes the directory and exits 128 + the signal, as the main thread may be blocked in
 * a request or the event stream for minutes with a real provider. Log lines below warn are
 * muted (REFOLD_LOG overrides), so the output is the story, not the server's log.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/follow.h"
#include "cmd/import.h"
#include "cmd/jobview.h"
#include "cmd/term.h"
#include "core/clock.h"
#include "core/embed.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/server.h"
#include "jobs/hub.h"
#include "jobs/pool.h"
#include "llm/llm.h"
#include "store/store.h"
#include "core/banned.h"

#define DEMO_DATA "examples/support-agent.jsonl"
#define DEMO_REPLIES "examples/demo-replies.json"
#define DEMO_AGENT "acme-support"
#define DEMO_MAX_CONTRADICTIONS 50
#define DEMO_STOP_GRACE_MS 5000

/* Everything the demo starts, for one teardown. */
struct demo {
    char dir[4096];
    char db[4200];
    char *key;
    struct hub *hub;
    struct worker_pool *pool;
    struct http_server *srv;
    struct client cl;
    bool client_ready;
    bool keep;
    bool tty, color;
    bool canned; /* the scripted provider answers */
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(struct demo *d)
{
    if (d->client_ready)
        client_release(&d->cl);
    pool_stop(d->pool, DEMO_STOP_GRACE_MS);
    http_server_stop(d->srv);
    pool_free(d->pool);
    hub_free(d->hub);
    d->srv = NULL;
    d->pool = NULL;
    d->hub = NULL;
    if (d->dir[0] && !d->keep)
        nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d->key);
    llm_global_cleanup();
}

/* The temporary directory, whether an interrupt keeps it (--keep), and the signals it
 * waits for: set before the waiting thread starts. */
static char interrupt_dir[4096];
static bool interrupt_keep;
static sigset_t interrupt_set;

/* The thread that waits for an interrupt: it removes the temporary directory (again,
 * should a thread have created a file in it meanwhile) and ends the process. */
static void *on_interrupt(void *arg)
{
    (void)arg;
    int sig = 0;
    if (sigwait(&interrupt_set, &sig) != 0)
        return NULL;
    fflush(stdout);
    for (int i = 0; i < 3 && !interrupt_keep; i++)
        if (nftw(interrupt_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
            break;
    fprintf(stderr, "\nrefold: demo interrupted; %s %s\n", interrupt_keep ? "kept" : "removed",
            interrupt_dir);
    _exit(128 + sig);
}

/* Write an embedded file to path. */
static enum rf_status write_embedded(const char *name, const char *path, struct rf_err *err)
{
    const struct embed_file *f = embed_find(name);
    if (!f)
        return rf_fail(err, RF_INTERNAL, "%s is not compiled into this binary", name);
    FILE *out = fopen(path, "wb");
    if (!out)
        return rf_fail(err, RF_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    bool ok = fwrite(f->data, 1, f->len, out) == f->len;
    ok = fclose(out) == 0 && ok;
    return ok ? RF_OK : rf_fail(err, RF_INTERNAL, "cannot write %s", path);
}

/* Choose the LLM provider and set the environment the job's llm_config_from_env reads;
 * describe the choice in what. */
static enum rf_status choose_llm(struct demo *d, bool offline, char *what, size_t n,
                                 struct rf_err *err)
{
    const char *provider = getenv("REFOLD_LLM_PROVIDER"), *model = getenv("REFOLD_MODEL");
    const char *anthropic = getenv("ANTHROPIC_API_KEY"), *openai = getenv("OPENAI_API_KEY");
    const char *note = "";
    bool canned = offline;
    if (!canned && provider && *provider) {
        canned = strcmp(provider, "scripted") == 0 && !getenv("REFOLD_SCRIPTED_REPLIES");
    } else if (!canned && anthropic && *anthropic) {
        setenv("REFOLD_LLM_PROVIDER", "anthropic", 1);
    } else if (!canned && openai && *openai && model && *model) {
        setenv("REFOLD_LLM_PROVIDER", "openai", 1);
    } else {
        if (!canned && openai && *openai)
            note = "OPENAI_API_KEY is set but REFOLD_MODEL is not; ";
        canned = true;
    }
    d->canned = canned;
    if (canned) {
        char path[4300];
        snprintf(path, sizeof path, "%s/demo-replies.json", d->dir);
        enum rf_status rc = write_embedded(DEMO_REPLIES, path, err);
        if (rc)
            return rc;
        setenv("REFOLD_LLM_PROVIDER", "scripted", 1);
        setenv("REFOLD_SCRIPTED_REPLIES", path, 1);
    }
    struct llm_config lc;
    enum rf_status rc = llm_config_from_env(&lc, err);
    if (rc)
        return rc;
    if (canned)
        snprintf(what, n,
                 "%scanned replies from %s (the scripted provider; set ANTHROPIC_API_KEY, or "
                 "OPENAI_API_KEY and REFOLD_MODEL, to ask a model)",
                 note, DEMO_REPLIES);
    else
        snprintf(what, n, "%s, model %s (--offline uses canned replies instead)", lc.provider,
                 lc.model);
    return RF_OK;
}

/* A fresh database with a workspace and a key (what `refold init` does). */
static enum rf_status create_database(struct demo *d, struct rf_err *err)
{
    struct store *st = NULL;
    json_t *ws = NULL, *key = NULL;
    enum rf_status rc = store_open(d->db, &st, err);
    if (rc == RF_OK)
        rc = store_migrate(st, NULL, err);
    if (rc == RF_OK)
        rc = store_workspace_create(st, "default", &ws, err);
    if (rc == RF_OK)
        rc = store_key_create(st, json_string_value(json_object_get(ws, "id")), "demo", &d->key,
                              &key, err);
    json_decref(ws);
    json_decref(key);
    store_close(st);
    return rc;
}

/* The in-process server: event hub, worker pool and HTTP on a free loopback port. */
static enum rf_status start_server(struct demo *d, const struct config *cfg, struct rf_err *err)
{
    struct hub_config hc = {.db_url = d->db,
                            .poll_ms = cfg->sse_poll_ms,
                            .resync_ms = cfg->sse_resync_ms,
                            .ping_ms = cfg->sse_ping_ms};
    enum rf_status rc = hub_start(&hc, &d->hub, err);
    if (rc)
        return rc;
    struct pool_config pc;
    cmd_pool_config(cfg, &pc);
    pc.db_url = d->db;
    pc.workers = 2;
    pc.hub = d->hub;
    if ((rc = pool_start(&pc, &d->pool, err)))
        return rc;
    struct http_config http = {.listen = "127.0.0.1:0",
                               .db_url = d->db,
                               .max_body = HTTP_DEFAULT_MAX_BODY,
                               .threads = 2,
                               .hub = d->hub,
                               .pool = d->pool};
    if ((rc = http_server_start(&http, &d->srv, err)))
        return rc;
    http_server_on_shutdown(d->srv, hub_end_streams, d->hub);
    return RF_OK;
}

static void say(const struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A step heading: "==> text" (bold on a terminal). */
static void say(const struct demo *d, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("\n%s==>%s %s%s%s\n", TERM_SGR(d->color, "34;1"), TERM_RESET(d->color),
           TERM_SGR(d->color, "1"), msg, TERM_RESET(d->color));
    fflush(stdout);
}

static int import_sample(struct demo *d, struct rf_err *err)
{
    const struct embed_file *f = embed_find(DEMO_DATA);
    if (!f) {
        rf_fail(err, RF_INTERNAL, "%s is not compiled into this binary", DEMO_DATA);
        return 1;
    }
    struct import_source src = {.mem = (const char *)f->data, .mem_len = f->len, .name = DEMO_DATA};
    struct import_opts io = {.errors = stderr};
    struct import_stats st;
    char n[32];
    say(d, "Importing the sample data (%s, %zu KB) through the API", DEMO_DATA, f->len / 1024);
    if (import_run(&d->cl, &src, &io, &st, err) != RF_OK)
        return 1;
    const struct import_counts *t = st.by_type;
    printf("%s records in %.2f s: %lld agent, %lld evals, %lld traces, %lld ratings, %lld eval "
           "executions%s\n",
           cmd_grouped(st.records, n, sizeof n), (double)st.elapsed_us / 1e6,
           (long long)t[IMPORT_AGENT].created, (long long)t[IMPORT_EVAL].created,
           (long long)t[IMPORT_TRACE].created, (long long)t[IMPORT_FEEDBACK].created,
           (long long)t[IMPORT_EXECUTION].created, st.rejected ? " (some lines rejected)" : "");
    if (st.rejected) {
        rf_fail(err, RF_INTERNAL, "%lld sample lines were rejected", (long long)st.rejected);
        return 1;
    }
    return 0;
}

/* The agent's numbers, as `refold show` has them. */
static int show_agent(struct demo *d, json_t **agent, struct rf_err *err)
{
    json_t *a = NULL;
    if (client_agent(&d->cl, DEMO_AGENT, &a, err) != RF_OK)
        return 1;
    char *path = xasprintf("/v1/agents/%s", json_string_value(json_object_get(a, "id")));
    enum rf_status rc = client_call(&d->cl, "GET", path, NULL, NULL, agent, NULL, err);
    free(path);
    json_decref(a);
    if (rc)
        return 1;
    json_t *s = json_object_get(*agent, "stats");
    long long rated = json_integer_value(json_object_get(s, "rated"));
    printf("%s: %lld traces, %lld rated by people, %lld evals with %lld predictions.\n"
           "People and evals disagree %lld times: %lld missed failures (the human said bad, the\n"
           "eval said good) and %lld false alarms (the other way round).\n",
           DEMO_AGENT, (long long)json_integer_value(json_object_get(s, "traces")), rated,
           (long long)json_integer_value(json_object_get(s, "evals")),
           (long long)json_integer_value(json_object_get(s, "executions")),
           (long long)json_integer_value(json_object_get(s, "contradictions")),
           (long long)json_integer_value(json_object_get(s, "missed_failures")),
           (long long)json_integer_value(json_object_get(s, "false_alarms")));
    return 0;
}

/* Run the improvement and follow it; *version gets the candidate's number (0: none). */
static int improve(struct demo *d, const json_t *agent, long long *version, struct rf_err *err)
{
    const char *id = json_string_value(json_object_get(agent, "id"));
    json_t *body = json_pack("{s:i}", "max_contradictions", DEMO_MAX_CONTRADICTIONS);
    json_t *job = NULL, *final = NULL;
    char *path = xasprintf("/v1/agents/%s/improve-prompt", id);
    char terminal[FOLLOW_TERMINAL_MAX] = "";
    struct job_view view;
    int rc = 1;
    *version = 0;
    job_view_init(&view, stdout, d->tty, d->color);
    if (client_call(&d->cl, "POST", path, body, NULL, &job, NULL, err) != RF_OK)
        goto out;
    const char *job_id = json_string_value(json_object_get(job, "id"));
    say(d, "Improving the prompt: refold improve %s (job %s)", DEMO_AGENT, job_id);
    if (follow_job(&d->cl, job_id, job_view_event, job_view_link, &view, terminal, err) != RF_OK)
        goto out;
    job_view_end(&view);
    free(path);
    path = xasprintf("/v1/jobs/%s", job_id);
    if (client_call(&d->cl, "GET", path, NULL, NULL, &final, NULL, err) != RF_OK)
        goto out;
    if (strcmp(terminal, "completed") != 0) {
        json_t *e = json_object_get(final, "error");
        rf_fail(err, RF_INTERNAL, "the improvement job %s: %s", terminal,
                json_is_object(e) ? json_string_value(json_object_get(e, "message"))
                                  : "no reason given");
        goto out;
    }
    json_t *result = json_object_get(final, "result");
    cmd_improve_summary(stdout, DEMO_AGENT, result, d->color);
    *version = json_integer_value(json_object_get(result, "new_version_number"));
    rc = 0;
out:
    job_view_end(&view);
    json_decref(body);
    json_decref(job);
    json_decref(final);
    free(path);
    return rc;
}

static int show_diff(struct demo *d, const json_t *agent, long long version, struct rf_err *err)
{
    json_t *diff = NULL;
    char *path = xasprintf("/v1/agents/%s/versions/%lld/diff",
                           json_string_value(json_object_get(agent, "id")), version);
    enum rf_status rc = client_call(&d->cl, "GET", path, NULL, NULL, &diff, NULL, err);
    free(path);
    if (rc)
        return 1;
    json_t *stats = json_object_get(diff, "stats");
    say(d,
        "The candidate against the active prompt: refold diff %s %lld (%lld lines added, %lld "
        "removed)",
        DEMO_AGENT, version, (long long)json_integer_value(json_object_get(stats, "added")),
        (long long)json_integer_value(json_object_get(stats, "removed")));
    const char *unified = json_string_value(json_object_get(diff, "unified"));
    cmd_print_diff(stdout, unified ? unified : "", d->color);
    json_decref(diff);
    return 0;
}

/* listen is where `refold serve` will listen (REFOLD_LISTEN or its default). */
static void next_steps(const struct demo *d, const char *listen, long long version)
{
    say(d, "Next: review the candidate, then promote or reject it");
    if (d->keep) {
        printf("The demo database is kept in %s. Serve it and use the CLI on it:\n\n"
               "  refold serve --db %s &\n"
               "  export REFOLD_URL=http://%s REFOLD_API_KEY=%s\n"
               "  refold show %s %lld\n"
               "  refold promote %s %lld        # or: refold reject %s %lld --reason \"...\"\n\n"
               "The web UI is at http://%s (sign in with the key above).\n"
               "Delete the directory when you are done: rm -r %s\n",
               d->dir, d->db, listen, d->key, DEMO_AGENT, version, DEMO_AGENT, version,
               DEMO_AGENT, version, listen, d->dir);
    } else {
        printf(
            "  refold show %s %lld\n"
            "  refold promote %s %lld        # or: refold reject %s %lld --reason \"...\"\n\n"
            "This demo's database was temporary and has been deleted. Run `refold demo --keep`\n"
            "to keep it and try these commands on it, or load your own data with\n"
            "`refold init`, `refold serve` and `refold import FILE.jsonl` (README, \"Import\").\n",
            DEMO_AGENT, version, DEMO_AGENT, version, DEMO_AGENT, version);
    }
}

int cmd_demo(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    bool offline = false, force_tty = false;
    struct demo d = {0};
    static const struct option opts[] = {{"keep", no_argument, NULL, 'k'},
                                         {"offline", no_argument, NULL, 'o'},
                                         {"tty", no_argument, NULL, 't'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'k')
            d.keep = true;
        else if (c == 'o')
            offline = true;
        else if (c == 't')
            force_tty = true;
        else
            return cmd_usage("demo");
    }
    if (optind != argc)
        return cmd_usage("demo");
    /* Before any thread starts, so that all of them inherit the mask. */
    sigemptyset(&interrupt_set);
    sigaddset(&interrupt_set, SIGINT);
    sigaddset(&interrupt_set, SIGTERM);
    sigaddset(&interrupt_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &interrupt_set, NULL);
    const char *log = getenv("REFOLD_LOG");
    if (!log || !*log)
        log_set_level("warn");
    signal(SIGPIPE, SIG_IGN);
    d.tty = force_tty || term_tty(STDOUT_FILENO);
    d.color = d.tty && term_use_color(TERM_COLOR_AUTO, STDOUT_FILENO);
    llm_global_init();

    struct rf_err err;
    char llm[512];
    long long version = 0;
    json_t *agent = NULL;
    int rc = 1;
    int64_t started = clock_mono_ms();
    rf_err_clear(&err);
    const char *tmp = getenv("TMPDIR");
    snprintf(d.dir, sizeof d.dir, "%s/refold-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d.dir)) {
        cmd_error("cannot create a temporary directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
                  strerror(errno));
        d.dir[0] = '\0';
        llm_global_cleanup();
        return 1;
    }
    snprintf(d.db, sizeof d.db, "%s/refold.db", d.dir);
    snprintf(interrupt_dir, sizeof interrupt_dir, "%s", d.dir);
    interrupt_keep = d.keep;
    pthread_t waiter;
    if (pthread_create(&waiter, NULL, on_interrupt, NULL) == 0)
        pthread_detach(waiter);
    else
        pthread_sigmask(SIG_UNBLOCK, &interrupt_set, NULL); /* interrupts as before */

    printf("%srefold demo%s: the sample support agent, its ratings and evals, and one prompt "
           "improvement.\n",
           TERM_SGR(d.color, "1"), TERM_RESET(d.color));
    if (choose_llm(&d, offline, llm, sizeof llm, &err) != RF_OK)
        goto out;
    say(&d, "Starting refold on a fresh database in %s", d.dir);
    if (create_database(&d, &err) != RF_OK || start_server(&d, &cfg, &err) != RF_OK)
        goto out;
    struct config ccfg = cfg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_server_port(d.srv));
    ccfg.url = url;
    ccfg.api_key = d.key;
    if (client_init(&d.cl, &ccfg, &err) != RF_OK)
        goto out;
    d.client_ready = true;
    printf("API and workers on %s; LLM: %s\n", url, llm);
    if (import_sample(&d, &err) || show_agent(&d, &agent, &err) ||
        improve(&d, agent, &version, &err))
        goto out;
    if (version > 0 && show_diff(&d, agent, version, &err))
        goto out;
    if (version > 0)
        next_steps(&d, cfg.listen, version);
    printf("\nDone in %.1f s.\n", (double)(clock_mono_ms() - started) / 1000.0);
    rc = 0;
out:
    fflush(stdout);
    json_decref(agent);
    if (rc)
        cmd_error("demo failed: %s%s", err.message[0] ? err.message : "see above",
                  d.canned || !d.client_ready ? ""
                                              : " (`refold demo --offline` uses canned replies)");
    teardown(&d);
    return rc;
}
