/*
 * cmd_review - the review decisions on a candidate version: `refold promote AGENT N
 * [--note TEXT]` (candidate, or archived for a rollback, becomes active; the previous
 * active version is archived in the same transaction) and `refold reject AGENT N
 * [--reason TEXT]` (candidate only). The server enforces the state machine; its 409s are
 * turned into sentences that say what state the version is in.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "core/xalloc.h"
#include "core/banned.h"

static int decide(int argc, char **argv, bool promote)
{
    const char *command = promote ? "promote" : "reject";
    const char *field = promote ? "note" : "reason";
    struct config cfg;
    config_load(&cfg);
    bool as_json = false;
    const char *text = NULL;
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"note", required_argument, NULL, 'n'},
                                         {"reason", required_argument, NULL, 'r'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'j')
            as_json = true;
        else if ((c == 'n' && promote) || (c == 'r' && !promote))
            text = optarg;
        else if (c == 'n' || c == 'r')
            return cmd_usage_error(command, "--%s is for %s", c == 'n' ? "note" : "reason",
                                   promote ? "reject" : "promote");
        else
            return cmd_usage(command);
    }
    long long n;
    if (argc - optind != 2)
        return cmd_usage(command);
    if (!cmd_version_arg(argv[optind + 1], &n) || (text && !cmd_text_arg(field, text)))
        return EXIT_USAGE;

    struct client cl;
    struct rf_err err;
    json_t *agent = NULL, *body = json_object(), *v = NULL, *before = NULL;
    char *path = NULL;
    int rc = 1;
    if (text)
        json_object_set_new(body, field, json_string(text));
    if (client_init(&cl, &cfg, &err) != RF_OK) {
        json_decref(body);
        return cmd_fail(&err);
    }
    cl.raw = as_json;
    if (client_agent(&cl, argv[optind], &agent, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    const char *id = json_string_value(json_object_get(agent, "id"));
    const char *name = json_string_value(json_object_get(agent, "name"));
    json_t *active = json_object_get(agent, "active_version");
    long long was =
        json_is_object(active) ? json_integer_value(json_object_get(active, "version")) : 0;
    path = xasprintf("/v1/agents/%s/versions/%lld/%s", id, n, command);
    if (client_call(&cl, "POST", path, body, NULL, &v, NULL, &err) != RF_OK) {
        if (err.code == RF_NOT_FOUND && !strcmp(err.reason, CLIENT_NO_ROUTE)) {
            /* REFOLD_URL has a path: err says so */
        } else if (err.code == RF_NOT_FOUND) {
            char word[512];
            cmd_shell_word(argv[optind], word, sizeof word);
            rf_fail(&err, RF_NOT_FOUND, "%s has no version %lld (see refold versions %s)", name, n,
                    word);
        } else if (err.code == RF_CONFLICT && !strcmp(err.reason, "invalid_transition")) {
            /* Say what the version is instead of the state machine's rule. */
            char *vp = xasprintf("/v1/agents/%s/versions/%lld", id, n);
            struct rf_err ignored;
            if (client_call(&cl, "GET", vp, NULL, NULL, &before, NULL, &ignored) == RF_OK)
                rf_fail(&err, RF_CONFLICT, "%s v%lld is %s: only %s can be %sed", name, n,
                        json_string_value(json_object_get(before, "status")),
                        promote ? "a candidate or an archived version" : "a candidate",
                        promote ? "promot" : "reject");
            free(vp);
        }
        rc = cmd_fail_options(&err); /* a --note or --reason the server refused is usage */
        goto out;
    }
    rc = 0;
    if (as_json)
        cmd_print_json(v);
    else if (promote && was && was != n)
        printf("%s v%lld is now active (v%lld archived).\n", name, n, was);
    else if (promote)
        printf("%s v%lld is now active.\n", name, n);
    else
        printf("%s v%lld rejected.\n", name, n);
out:
    json_decref(agent);
    json_decref(body);
    json_decref(v);
    json_decref(before);
    free(path);
    client_release(&cl);
    return rc;
}

int cmd_promote(int argc, char **argv)
{
    return decide(argc, argv, true);
}

int cmd_reject(int argc, char **argv)
{
    return decide(argc, argv, false);
}
