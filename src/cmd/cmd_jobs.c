/*
 * cmd_jobs - the job commands, clients of a running server's API (cmd/client.h):
 * `refold jobs`, `refold job ID [--follow]`, `refold cancel ID`, `refold retry ID`.
 * --follow reads the SSE stream with the client-side parser of llm/sse.h and prints one
 * line per event (or one JSON object per line with --json).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/term.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/jsonx.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "cmd/follow.h"
#include "core/banned.h"

/* A job id argument: job_ and a ULID (so it can go into a URL as is). */
static bool valid_job_id(const char *id)
{
    return id_valid("job_", id);
}

int cmd_jobs(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    const char *status = NULL, *type = NULL;
    int limit = 50;
    bool as_json = false;
    static const struct option opts[] = {{"status", required_argument, NULL, 's'},
                                         {"type", required_argument, NULL, 't'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"json", no_argument, NULL, 'j'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 's':
            status = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'n':
            if (!cmd_int_arg("limit", optarg, 1, 500, &limit))
                return EXIT_USAGE;
            break;
        case 'j':
            as_json = true;
            break;
        default:
            return cmd_usage("jobs");
        }
    }
    if (optind != argc)
        return cmd_usage("jobs");

    struct client cl;
    struct rf_err err;
    json_t *list = NULL;
    struct buf path;
    int rc = 1;
    buf_init(&path, BUF_UNLIMITED);
    if (client_init(&cl, &cfg, &err) != RF_OK) {
        buf_release(&path);
        return cmd_fail(&err);
    }
    cl.raw = as_json;
    buf_printf(&path, "/v1/jobs?limit=%d", limit);
    char *e;
    if (status) {
        e = client_escape(&cl, status);
        buf_printf(&path, "&status=%s", e);
        free(e);
    }
    if (type) {
        e = client_escape(&cl, type);
        buf_printf(&path, "&type=%s", e);
        free(e);
    }
    if (client_call(&cl, "GET", buf_str(&path), NULL, NULL, &list, NULL, &err) != RF_OK) {
        rc = cmd_fail_options(&err);
        goto out;
    }
    if (as_json) {
        cmd_print_json(json_object_get(list, "data"));
        rc = 0;
        goto out;
    }
    printf("%-32s  %-9s  %-20s  %-7s  %4s  %-26s  %s\n", "ID", "STATUS", "TYPE", "ATTEMPT", "PROG",
           "STAGE", "CREATED");
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(list, "data"), i, j)
    {
        char attempt[32];
        snprintf(attempt, sizeof attempt, "%lld/%lld",
                 (long long)json_integer_value(json_object_get(j, "attempt")),
                 (long long)json_integer_value(json_object_get(j, "max_attempts")));
        printf("%-32s  %-9s  %-20s  %-7s  %3lld%%  %-26s  %s\n", jx_get_str(j, "id", "-"),
               jx_get_str(j, "status", "-"), jx_get_str(j, "type", "-"), attempt,
               (long long)json_integer_value(json_object_get(j, "progress")),
               jx_get_str(j, "stage", "-"), jx_get_str(j, "created_at", "-"));
    }
    if (json_array_size(json_object_get(list, "data")) == 0)
        printf("(no jobs)\n");
    rc = 0;
out:
    json_decref(list);
    buf_release(&path);
    client_release(&cl);
    return rc;
}

static void print_job(const json_t *j)
{
    printf("id:         %s\n", jx_get_str(j, "id", "-"));
    printf("type:       %s\n", jx_get_str(j, "type", "-"));
    printf("status:     %s%s\n", jx_get_str(j, "status", "-"),
           json_is_true(json_object_get(j, "cancel_requested")) &&
                   strcmp(jx_get_str(j, "status", "-"), "running") == 0
               ? " (cancel requested)"
               : "");
    printf("stage:      %s (%lld%%)\n", jx_get_str(j, "stage", "-"),
           (long long)json_integer_value(json_object_get(j, "progress")));
    printf("attempt:    %lld of %lld\n",
           (long long)json_integer_value(json_object_get(j, "attempt")),
           (long long)json_integer_value(json_object_get(j, "max_attempts")));
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e))
        printf("error:      %s: %s\n", jx_get_str(e, "code", "-"), jx_get_str(e, "message", "-"));
    printf("run at:     %s\n", jx_get_str(j, "run_at", "-"));
    printf("created:    %s\n", jx_get_str(j, "created_at", "-"));
    printf("started:    %s\n", jx_get_str(j, "started_at", "-"));
    printf("finished:   %s\n", jx_get_str(j, "finished_at", "-"));
    json_t *params = json_object_get(j, "params"), *result = json_object_get(j, "result");
    char *p = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("params:     %s\n", p ? p : "null");
    free(p);
    if (!json_is_null(result) && result) {
        char *r = json_dumps(result, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("result:     %s\n", r ? r : "null");
        free(r);
    }
}

/* Exit status for a finished job: 0 completed, 1 failed or cancelled. */
static int exit_for(const char *status)
{
    return strcmp(status, "completed") == 0 ? 0 : 1;
}

static int job_follow(struct client *cl, const char *id, bool as_json);

int cmd_job(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    bool as_json = false, follow = false;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"follow", no_argument, NULL, 'f'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "f", opts)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 'f':
            follow = true;
            break;
        default:
            return cmd_usage("job");
        }
    }
    if (optind != argc - 1)
        return cmd_usage("job");
    const char *id = argv[optind];
    if (!valid_job_id(id)) {
        cmd_error("\"%s\" is not a job id (job_ followed by 26 characters)", id);
        return EXIT_USAGE;
    }
    struct client cl;
    struct rf_err err;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = as_json;
    int rc;
    if (follow) {
        rc = job_follow(&cl, id, as_json);
    } else {
        json_t *job = NULL;
        char path[128];
        snprintf(path, sizeof path, "/v1/jobs/%s", id);
        if (client_call(&cl, "GET", path, NULL, NULL, &job, NULL, &err) != RF_OK) {
            rc = cmd_fail(&err);
        } else {
            if (as_json)
                cmd_print_json(job);
            else
                print_job(job);
            rc = 0;
        }
        json_decref(job);
    }
    client_release(&cl);
    return rc;
}

/* POST /v1/jobs/ID/<action>; prints what happened, or the Job with --json. */
static int job_action(int argc, char **argv, const char *action)
{
    struct config cfg;
    config_load(&cfg);
    bool as_json = false;
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c != 'j')
            return cmd_usage(action);
        as_json = true;
    }
    if (optind != argc - 1)
        return cmd_usage(action);
    const char *id = argv[optind];
    if (!valid_job_id(id)) {
        cmd_error("\"%s\" is not a job id (job_ followed by 26 characters)", id);
        return EXIT_USAGE;
    }
    struct client cl;
    struct rf_err err;
    json_t *job = NULL;
    char path[128];
    int rc = 0;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = as_json;
    snprintf(path, sizeof path, "/v1/jobs/%s/%s", id, action);
    if (client_call(&cl, "POST", path, NULL, NULL, &job, NULL, &err) != RF_OK) {
        rc = cmd_fail(&err);
    } else if (as_json) {
        cmd_print_json(job);
    } else if (strcmp(action, "cancel") == 0) {
        if (strcmp(jx_get_str(job, "status", "-"), "running") == 0)
            printf("%s: cancel requested; the running attempt stops at its next check\n", id);
        else
            printf("%s: %s\n", id, jx_get_str(job, "status", "-"));
    } else {
        /* The retry queued it; a worker may have claimed it before the answer was read
         * back ("running again" was what that printed). */
        printf("%s: queued again (attempt budget %lld)\n", id,
               (long long)json_integer_value(json_object_get(job, "max_attempts")));
    }
    json_decref(job);
    client_release(&cl);
    return rc;
}

int cmd_cancel(int argc, char **argv)
{
    return job_action(argc, argv, "cancel");
}

int cmd_retry(int argc, char **argv)
{
    return job_action(argc, argv, "retry");
}

/* ---- refold job ID --follow ---- */

struct follow_print {
    bool as_json;
    bool tty;          /* stdout is a terminal (and not --json): notices go there */
    bool notice;       /* a reconnection notice is on the terminal's last line */
    bool saw_terminal; /* the stream carried the terminal event */
};

/* Take the reconnection notice off the terminal's last line. */
static void clear_notice(struct follow_print *p)
{
    if (p->notice) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        p->notice = false;
    }
}

/* The connection (a follow_link_fn): on a terminal, a notice on the last line until the
 * server answers again; otherwise a line on stderr when lost and one when back. */
static void on_follow_link(void *ud, enum follow_link state, int64_t away_ms, const char *why)
{
    struct follow_print *p = ud;
    if (!p->tty) {
        follow_link_stderr(NULL, state, away_ms, why);
    } else if (state == FOLLOW_BACK) {
        clear_notice(p);
    } else {
        bool utf8 = term_utf8();
        char text[96], cut[128];
        follow_link_text(away_ms, utf8, text, sizeof text);
        term_fit(text, term_width(STDOUT_FILENO) - 1, utf8, cut, sizeof cut);
        printf("\r\033[K%s", cut);
        fflush(stdout);
        p->notice = true;
    }
}

/* One line for an event: "SEQ TYPE details". */
static void print_event_line(int64_t seq, const char *type, const json_t *d)
{
    printf("%lld %s", (long long)seq, type);
    if (strcmp(type, "progress") == 0) {
        printf(" %s %lld%%", jx_get_str(d, "stage", "-"),
               (long long)json_integer_value(json_object_get(d, "progress")));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)d, k, v)
        {
            if (!strcmp(k, "job_id") || !strcmp(k, "status") || !strcmp(k, "stage") ||
                !strcmp(k, "progress") || !strcmp(k, "created_at"))
                continue;
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf(" %s=%s", k, text ? text : "null");
            free(text);
        }
    } else if (strcmp(type, "log") == 0) {
        printf(" [%s] %s", jx_get_str(d, "level", "-"), jx_get_str(d, "message", "-"));
    } else if (strcmp(type, "retry") == 0) {
        json_t *e = json_object_get(d, "error");
        printf(" attempt %lld failed (%s: %s); next attempt at %s",
               (long long)json_integer_value(json_object_get(d, "attempt")),
               jx_get_str(e, "code", "-"), jx_get_str(e, "message", "-"),
               jx_get_str(d, "run_at", "-"));
    } else if (strcmp(type, "failed") == 0) {
        json_t *e = json_object_get(d, "error");
        printf(" %s: %s", jx_get_str(e, "code", "-"), jx_get_str(e, "message", "-"));
    } else if (strcmp(type, "completed") == 0) {
        char *text = json_dumps(json_object_get(d, "result"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf(" result=%s", text ? text : "null");
        free(text);
    }
    printf("\n");
}

static void on_follow_event(void *ud, int64_t seq, const char *type, const json_t *data)
{
    struct follow_print *p = ud;
    if (!strcmp(type, "completed") || !strcmp(type, "failed") || !strcmp(type, "cancelled"))
        p->saw_terminal = true;
    if (p->as_json) {
        json_t *line = json_pack("{s:I, s:s, s:O}", "seq", (json_int_t)seq, "type", type, "data",
                                 data);
        char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
        free(text);
        json_decref(line);
    } else {
        print_event_line(seq, type, data);
    }
    fflush(stdout);
}

/* Print the job's events as they happen until its terminal event (follow.h resumes
 * across server restarts). */
static int job_follow(struct client *cl, const char *id, bool as_json)
{
    struct follow_print p = {.as_json = as_json, .tty = !as_json && term_tty(STDOUT_FILENO)};
    struct rf_err err;
    char terminal[FOLLOW_TERMINAL_MAX];
    follow_stop_on_interrupt(id, p.tty);
    enum rf_status rc = follow_job(cl, id, on_follow_event, on_follow_link, &p, terminal, &err);
    clear_notice(&p);
    if (rc != RF_OK)
        return cmd_fail(&err);
    if (!p.as_json && !p.saw_terminal)
        printf("%s is %s\n", id, terminal);
    return exit_for(terminal);
}
