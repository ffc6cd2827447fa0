/*
 * cmd_diff - `refold diff AGENT N [M]`: the unified diff of version N's prompt template
 * against version M (default: N's parent, else the active version), as the API computes
 * it (GET /v1/agents/{id}/versions/{n}/diff). A version with neither (v1 while it is
 * active) is an error saying how to compare two versions, not an empty diff. Coloured on a
 * terminal (--color=always|never forces it either way), with a one-line header there; plain
 * diff text otherwise, so it can be piped to other tools.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/term.h"
#include "core/xalloc.h"
#include "core/banned.h"

void cmd_print_diff(FILE *out, const char *unified, bool color)
{
    const char *p = unified;
    bool in_hunk = false; /* past the first @@: "--- x" is then the removed line "-- x" */
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        const char *sgr = "";
        if (p[0] == '@')
            in_hunk = true;
        if (color) {
            if (!in_hunk && (!strncmp(p, "+++", 3) || !strncmp(p, "---", 3)))
                sgr = "\033[1m";
            else if (p[0] == '@')
                sgr = "\033[36m";
            else if (p[0] == '+')
                sgr = "\033[32m";
            else if (p[0] == '-')
                sgr = "\033[31m";
        }
        fprintf(out, "%s%.*s%s\n", sgr, len, p, *sgr ? "\033[0m" : "");
        p += len + (nl ? 1 : 0);
    }
}

int cmd_diff(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    bool as_json = false;
    enum term_color color = TERM_COLOR_AUTO;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"color", required_argument, NULL, 'c'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'j') {
            as_json = true;
        } else if (c == 'c' && term_parse_color(optarg, &color)) {
            continue;
        } else {
            if (c == 'c')
                return cmd_usage_error("diff", "--color takes always, never or auto, not \"%.40s\"",
                                       optarg);
            return cmd_usage("diff");
        }
    }
    long long n = 0, m = 0;
    if (argc - optind < 2 || argc - optind > 3)
        return cmd_usage("diff");
    const char *name = argv[optind];
    if (!cmd_version_arg(argv[optind + 1], &n) ||
        (argc - optind == 3 && !cmd_version_arg(argv[optind + 2], &m)))
        return EXIT_USAGE;

    struct client cl;
    struct rf_err err;
    json_t *agent = NULL, *d = NULL;
    char *path = NULL;
    int rc = 1;
    if (client_init(&cl, &cfg, &err) != RF_OK)
        return cmd_fail(&err);
    cl.raw = as_json;
    if (client_agent(&cl, name, &agent, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    const char *agent_name = json_string_value(json_object_get(agent, "name"));
    if (m)
        path = xasprintf("/v1/agents/%s/versions/%lld/diff?base=%lld",
                         json_string_value(json_object_get(agent, "id")), n, m);
    else
        path = xasprintf("/v1/agents/%s/versions/%lld/diff",
                         json_string_value(json_object_get(agent, "id")), n);
    if (client_call(&cl, "GET", path, NULL, NULL, &d, NULL, &err) != RF_OK) {
        char word[512];
        cmd_shell_word(name, word, sizeof word);
        if (!strcmp(err.reason, CLIENT_NO_ROUTE))
            ; /* REFOLD_URL has a path: err says so */
        else if (err.code == RF_NOT_FOUND && !strcmp(err.field, "base"))
            rf_fail(&err, RF_NOT_FOUND, "%s has no version %lld (see refold versions %s)",
                    agent_name, m, word);
        else if (err.code == RF_NOT_FOUND)
            rf_fail(&err, RF_NOT_FOUND, "%s has no version %lld (see refold versions %s)",
                    agent_name, n, word);
        rc = cmd_fail(&err);
        goto out;
    }
    rc = 0;
    if (as_json) {
        cmd_print_json(d);
        goto out;
    }
    json_t *base = json_object_get(d, "base"), *target = json_object_get(d, "target");
    if (!m && json_is_object(base) &&
        json_integer_value(json_object_get(base, "version")) ==
            json_integer_value(json_object_get(target, "version"))) {
        /* No parent, and itself the active version: the API's default base is the version
         * itself, and an empty diff would read as "no change" (on a pipe, as nothing). */
        char word[512];
        cmd_shell_word(name, word, sizeof word);
        rf_fail(&err, RF_INVALID,
                "%s v%lld has nothing to compare with: it has no parent and is the active "
                "version (compare it with another: refold diff %s %lld M; see refold versions %s)",
                agent_name, n, word, n, word);
        rc = cmd_fail(&err);
        goto out;
    }
    bool on = term_use_color(color, STDOUT_FILENO);
    const char *unified = json_string_value(json_object_get(d, "unified"));
    json_t *stats = json_object_get(d, "stats");
    if (term_is_terminal(STDOUT_FILENO)) { /* a person reads it, whatever TERM says */
        char b[64] = "nothing";
        if (json_is_object(base))
            snprintf(b, sizeof b, "v%lld (%s)",
                     (long long)json_integer_value(json_object_get(base, "version")),
                     json_string_value(json_object_get(base, "status")));
        printf("%s%s v%lld (%s) against %s: %lld line%s added, %lld removed%s\n", TERM_SGR(on, "1"),
               agent_name, (long long)json_integer_value(json_object_get(target, "version")),
               json_string_value(json_object_get(target, "status")), b,
               (long long)json_integer_value(json_object_get(stats, "added")),
               json_integer_value(json_object_get(stats, "added")) == 1 ? "" : "s",
               (long long)json_integer_value(json_object_get(stats, "removed")), TERM_RESET(on));
    }
    cmd_print_diff(stdout, unified ? unified : "", on);
out:
    json_decref(agent);
    json_decref(d);
    free(path);
    client_release(&cl);
    return rc;
}
