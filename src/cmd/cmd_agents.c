/*
 * cmd_agents - the read commands, clients of a running server's API:
 * `refold agents` (the workspace's agents with their numbers), `refold versions AGENT`
 * (the prompt's history) and `refold show AGENT [N]` (an agent, or one version, with
 * its template). AGENT is a name or an agent id (client_agent). --json prints the API's
 * JSON instead: a list's `data` (every page), or the object.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/term.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "core/banned.h"

/* The widest the agents table's NAME column gets, in terminal columns. */
#define NAME_COLS 40
/* The widest a version's summary gets in the versions table. */
#define SUMMARY_COLS 60

/* Options shared by the read commands: --json, and --status for the lists. */
struct read_opts {
    bool as_json;
    const char *status;
};

/* Parse options; returns the index of the first operand, or -1 after a usage error. */
static int read_options(int argc, char **argv, struct read_opts *o, bool with_status)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"status", required_argument, NULL, 's'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'j')
            o->as_json = true;
        else if (c == 's' && with_status)
            o->status = optarg;
        else
            return -1;
    }
    return optind;
}

/* "86.0%" from a 0..1 number, "-" for null. */
static void percent(const json_t *v, char *out, size_t n)
{
    if (json_is_number(v))
        snprintf(out, n, "%.1f%%", 100.0 * json_number_value(v));
    else
        snprintf(out, n, "-");
}

int cmd_agents(int argc, char **argv)
{
    struct config cfg;
    struct read_opts o = {0};
    config_load(&cfg);
    int first = read_options(argc, argv, &o, true);
    if (first < 0 || first != argc)
        return cmd_usage("agents");
    struct client cl;
    struct rf_err err;
    json_t *list = NULL;
    char *path = NULL;
    int rc = 1;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = o.as_json;
    if (o.status) {
        char *e = client_escape(&cl, o.status);
        path = xasprintf("/v1/agents?status=%s", e);
        free(e);
    } else {
        path = xstrdup("/v1/agents");
    }
    if (client_list_all(&cl, path, &list, &err) != RF_OK) {
        rc = cmd_fail_options(&err);
        goto out;
    }
    rc = 0;
    if (o.as_json) {
        cmd_print_json(list);
        goto out;
    }
    if (json_array_size(list) == 0) {
        printf("(no agents; add some with refold import FILE.jsonl or POST /v1/agents)\n");
        goto out;
    }
    /* The name column is as wide as the widest name, in the columns a terminal gives it
     * (wide CJK characters count 2), up to NAME_COLS: a longer name is cut with an
     * ellipsis, and the row's ID (last) still names the agent. */
    int w = 4;
    bool utf8 = term_utf8();
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        int cols = term_cols(jx_get_str(a, "name", "-"));
        w = cols > w ? (cols > NAME_COLS ? NAME_COLS : cols) : w;
    }
    term_pad(stdout, "NAME", w);
    printf("  %-10s  %-6s  %8s  %8s  %5s  %14s  %13s  %s\n", "STATUS", "ACTIVE", "TRACES", "RATED",
           "EVALS", "CONTRADICTIONS", "EVAL ACCURACY", "ID");
    json_array_foreach(list, i, a)
    {
        json_t *s = json_object_get(a, "stats"), *active = json_object_get(a, "active_version");
        char ver[24], acc[16], name[1024];
        if (json_is_object(active))
            snprintf(ver, sizeof ver, "v%lld", jx_get_int(active, "version"));
        else
            snprintf(ver, sizeof ver, "-");
        percent(json_object_get(s, "eval_accuracy"), acc, sizeof acc);
        term_fit(jx_get_str(a, "name", "-"), w, utf8, name, sizeof name);
        term_pad(stdout, name, w);
        printf("  %-10s  %-6s  %8lld  %8lld  %5lld  %14lld  %13s  %s\n",
               jx_get_str(a, "status", "-"), ver, jx_get_int(s, "traces"), jx_get_int(s, "rated"),
               jx_get_int(s, "evals"), jx_get_int(s, "contradictions"), acc,
               jx_get_str(a, "id", "-"));
    }
out:
    json_decref(list);
    free(path);
    client_release(&cl);
    return rc;
}

/* "v3" for a version id found in versions, "-" when id is null or not there. */
static void number_of(const json_t *versions, const char *id, char *out, size_t n)
{
    size_t i;
    json_t *v;
    snprintf(out, n, "-");
    if (!id)
        return;
    json_array_foreach(versions, i, v)
    {
        if (strcmp(jx_get_str(v, "id", "-"), id) == 0) {
            snprintf(out, n, "v%lld", jx_get_int(v, "version"));
            return;
        }
    }
}

/* The first line of s, cut to SUMMARY_COLS terminal columns, with an ellipsis when more
 * follows (more of the line, or more lines). out must hold 4 * SUMMARY_COLS + 8 bytes. */
static void one_line(const char *s, bool utf8, char *out, size_t n)
{
    const char *dots = utf8 ? "…" : "...";
    size_t len = strcspn(s, "\r\n"); /* CRLF line ends stay in text shown (term_visible) */
    bool more = s[len + strspn(s + len, "\r\n")] != '\0';
    int room = SUMMARY_COLS - (more ? (int)jx_utf8_len(dots) : 0);
    char *first = xmalloc(len + 1);
    memcpy(first, s, len);
    first[len] = '\0';
    int cols = term_cols(first);
    if (more && cols <= room) /* the line fits: say that lines follow */
        snprintf(out, n, "%s%s", first, dots);
    else /* cut it (the ellipsis then says both) */
        term_fit(first, more && cols <= SUMMARY_COLS ? cols - 1 : SUMMARY_COLS, utf8, out, n);
    free(first);
}

int cmd_versions(int argc, char **argv)
{
    struct config cfg;
    struct read_opts o = {0};
    config_load(&cfg);
    int first = read_options(argc, argv, &o, true);
    if (first < 0 || first != argc - 1)
        return cmd_usage("versions");
    struct client cl;
    struct rf_err err;
    json_t *agent = NULL, *list = NULL;
    char *path = NULL;
    int rc = 1;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = o.as_json;
    if (client_agent(&cl, argv[first], &agent, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    path = xasprintf("/v1/agents/%s/versions", jx_get_str(agent, "id", "-"));
    if (o.status) {
        char *e = client_escape(&cl, o.status), *p = xasprintf("%s?status=%s", path, e);
        free(e);
        free(path);
        path = p;
    }
    if (client_list_all(&cl, path, &list, &err) != RF_OK) {
        rc = cmd_fail_options(&err);
        goto out;
    }
    rc = 0;
    if (o.as_json) {
        cmd_print_json(list);
        goto out;
    }
    printf("%s (%s)\n", jx_get_str(agent, "name", "-"), jx_get_str(agent, "id", "-"));
    if (json_array_size(list) == 0) {
        printf("(no versions)\n");
        goto out;
    }
    printf("%-7s  %-9s  %-11s  %-6s  %-24s  %s\n", "VERSION", "STATUS", "SOURCE", "PARENT",
           "CREATED", "SUMMARY");
    size_t i;
    bool utf8 = term_utf8();
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char parent[24], ver[24], summary[4 * SUMMARY_COLS + 8];
        number_of(list, json_string_value(json_object_get(v, "parent_version_id")), parent,
                  sizeof parent);
        if (strcmp(parent, "-") == 0 && json_is_string(json_object_get(v, "parent_version_id")))
            snprintf(parent, sizeof parent, "?");
        snprintf(ver, sizeof ver, "v%lld", jx_get_int(v, "version"));
        one_line(json_is_string(json_object_get(v, "change_summary"))
                     ? jx_get_str(v, "change_summary", "-")
                     : "",
                 utf8, summary, sizeof summary);
        printf("%-7s  %-9s  %-11s  %-6s  %-24s  %s\n", ver, jx_get_str(v, "status", "-"),
               jx_get_str(v, "source", "-"), parent, jx_get_str(v, "created_at", "-"), summary);
    }
out:
    json_decref(agent);
    json_decref(list);
    free(path);
    client_release(&cl);
    return rc;
}

/* "a, b, c" from an array of strings. */
static void joined(const json_t *arr, char *out, size_t n)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", json_string_value(v));
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
    if (!used)
        snprintf(out, n, "(none)");
}

static void bullets(const char *title, const json_t *arr)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return;
    printf("%s\n", title);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        printf("  - %s\n", json_string_value(v) ? json_string_value(v) : "?");
}

static void print_template(const char *title, const char *tmpl)
{
    size_t n = strlen(tmpl);
    printf("\n--- %s ---\n%s%s", title, tmpl, n && tmpl[n - 1] == '\n' ? "" : "\n");
}

static void show_agent(const json_t *a)
{
    json_t *s = json_object_get(a, "stats"), *active = json_object_get(a, "active_version");
    char vars[512], acc[16];
    printf("%s (%s)\n", jx_get_str(a, "name", "-"), jx_get_str(a, "id", "-"));
    printf("status:          %s\n", jx_get_str(a, "status", "-"));
    if (json_is_string(json_object_get(a, "description")))
        printf("description:     %s\n", jx_get_str(a, "description", "-"));
    if (json_is_object(active)) {
        joined(json_object_get(active, "variables"), vars, sizeof vars);
        printf("active version:  v%lld (%s; variables: %s)\n", jx_get_int(active, "version"),
               jx_get_str(active, "source", "-"), vars);
    } else {
        printf("active version:  none\n");
    }
    printf("traces:          %lld (%lld rated: %lld positive, %lld negative, %lld neutral)\n",
           jx_get_int(s, "traces"), jx_get_int(s, "rated"), jx_get_int(s, "positive"),
           jx_get_int(s, "negative"), jx_get_int(s, "neutral"));
    printf("evals:           %lld (%lld executions)\n", jx_get_int(s, "evals"),
           jx_get_int(s, "executions"));
    percent(json_object_get(s, "eval_accuracy"), acc, sizeof acc);
    char dis[96];
    printf("contradictions:  %lld (%s); eval accuracy %s\n", jx_get_int(s, "contradictions"),
           cmd_disagreements(jx_get_int(s, "missed_failures"), jx_get_int(s, "false_alarms"),
                             dis, sizeof dis),
           acc);
    printf("created:         %s\n", jx_get_str(a, "created_at", "-"));
    if (json_is_object(active)) {
        char title[64];
        snprintf(title, sizeof title, "prompt template, v%lld", jx_get_int(active, "version"));
        print_template(title, jx_get_str(active, "prompt_template", "-"));
    }
}

static void show_version(const json_t *agent, const json_t *v, const json_t *versions)
{
    char parent[24], vars[512];
    number_of(versions, json_string_value(json_object_get(v, "parent_version_id")), parent,
              sizeof parent);
    joined(json_object_get(v, "variables"), vars, sizeof vars);
    printf("%s v%lld (%s)\n", jx_get_str(agent, "name", "-"), jx_get_int(v, "version"),
           jx_get_str(v, "id", "-"));
    printf("status:       %s\n", jx_get_str(v, "status", "-"));
    if (json_is_string(json_object_get(v, "created_by_job_id")))
        printf("source:       %s (job %s)\n", jx_get_str(v, "source", "-"),
               jx_get_str(v, "created_by_job_id", "-"));
    else
        printf("source:       %s\n", jx_get_str(v, "source", "-"));
    printf("parent:       %s\n", parent);
    printf("variables:    %s\n", vars);
    printf("created:      %s\n", jx_get_str(v, "created_at", "-"));
    if (json_is_string(json_object_get(v, "decided_at")))
        printf("decided:      %s\n", jx_get_str(v, "decided_at", "-"));
    if (json_is_string(json_object_get(v, "review_note")))
        printf("review note:  %s\n", jx_get_str(v, "review_note", "-"));
    if (json_is_string(json_object_get(v, "change_summary")))
        printf("summary:      %s\n", jx_get_str(v, "change_summary", "-"));
    bullets("changes:", json_object_get(v, "changes"));
    bullets("failure patterns:", json_object_get(v, "failure_patterns"));
    print_template("prompt template", jx_get_str(v, "prompt_template", "-"));
}

int cmd_show(int argc, char **argv)
{
    struct config cfg;
    struct read_opts o = {0};
    config_load(&cfg);
    int first = read_options(argc, argv, &o, false);
    long long n = 0;
    if (first < 0 || argc - first < 1 || argc - first > 2)
        return cmd_usage("show");
    if (argc - first == 2 && !cmd_version_arg(argv[first + 1], &n))
        return EXIT_USAGE;
    struct client cl;
    struct rf_err err;
    json_t *agent = NULL, *full = NULL, *version = NULL, *versions = NULL;
    char *path = NULL;
    int rc = 1;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = o.as_json;
    if (client_agent(&cl, argv[first], &agent, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    if (n == 0) { /* the agent, with its stats */
        path = xasprintf("/v1/agents/%s", jx_get_str(agent, "id", "-"));
        if (client_call(&cl, "GET", path, NULL, NULL, &full, NULL, &err) != RF_OK) {
            rc = cmd_fail(&err);
            goto out;
        }
        if (o.as_json)
            cmd_print_json(full);
        else
            show_agent(full);
        rc = 0;
        goto out;
    }
    path = xasprintf("/v1/agents/%s/versions/%lld", jx_get_str(agent, "id", "-"), n);
    if (client_call(&cl, "GET", path, NULL, NULL, &version, NULL, &err) != RF_OK) {
        char word[512];
        cmd_shell_word(argv[first], word, sizeof word);
        if (err.code == RF_NOT_FOUND && strcmp(err.reason, CLIENT_NO_ROUTE) != 0)
            rf_fail(&err, RF_NOT_FOUND, "%s has no version %lld (see refold versions %s)",
                    jx_get_str(agent, "name", "-"), n, word);
        rc = cmd_fail(&err);
        goto out;
    }
    rc = 0;
    if (o.as_json) {
        cmd_print_json(version);
        goto out;
    }
    free(path);
    path = xasprintf("/v1/agents/%s/versions", jx_get_str(agent, "id", "-"));
    if (client_list_all(&cl, path, &versions, &err) != RF_OK) { /* only for the parent's number */
        versions = json_array();
    }
    show_version(agent, version, versions);
out:
    json_decref(agent);
    json_decref(full);
    json_decref(version);
    json_decref(versions);
    free(path);
    client_release(&cl);
    return rc;
}
