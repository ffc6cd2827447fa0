/*
 * cmd_improve - `refold improve AGENT`: start a Prompt Improvement job
 * (POST /v1/agents/{id}/improve-prompt) and follow its event stream to the end with the
 * job view (jobview.h): a progress bar with the stage on a terminal, one line per event
 * otherwise. Exit 0 when the job completes (printing the candidate and how to review
 * it), 1 when it fails or is cancelled (the error on stderr, one line); Ctrl-C stops
 * following, not the job (follow_stop_on_interrupt). --no-wait only starts the job;
 * --json prints the API's Job instead of the view (after the wait, the finished Job).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/follow.h"
#include "cmd/jobview.h"
#include "cmd/term.h"
#include "core/xalloc.h"
#include "core/banned.h"

static void bullets(FILE *out, const json_t *arr, bool color)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v))
            fprintf(out, "  %s-%s %s\n", TERM_SGR(color, "2"), TERM_RESET(color),
                    json_string_value(v));
    }
}

void cmd_improve_summary(FILE *out, const char *agent_name, const json_t *result, bool color)
{
    const json_t *ver = json_object_get(result, "new_version_number");
    const json_t *c = json_object_get(result, "contradictions");
    const json_t *usage = json_object_get(result, "usage");
    const char *summary = json_string_value(json_object_get(result, "changes_summary"));
    if (!json_is_integer(ver)) { /* nothing to improve */
        fprintf(out, "\n%s\n", summary ? summary : "No candidate was created.");
        return;
    }
    long long total = json_integer_value(json_object_get(c, "total"));
    char dis[96];
    fprintf(out, "\n%sFailure patterns%s (%lld contradiction%s: %s)\n", TERM_SGR(color, "1"),
            TERM_RESET(color), total, cmd_plural(total),
            cmd_disagreements(json_integer_value(json_object_get(c, "missed_failures")),
                              json_integer_value(json_object_get(c, "false_alarms")), dis,
                              sizeof dis));
    bullets(out, json_object_get(result, "failure_patterns"), color);
    fprintf(out, "\n%sCandidate v%lld of %s%s, changes:\n", TERM_SGR(color, "1"),
            (long long)json_integer_value(ver), agent_name, TERM_RESET(color));
    bullets(out, json_object_get(result, "best_practices_applied"), color);
    char in[32], outn[32];
    const char *provider = json_string_value(json_object_get(result, "provider"));
    const char *model = json_string_value(json_object_get(result, "model"));
    bool scripted = json_is_true(json_object_get(result, "scripted"));
    fprintf(out, "%s(%lld LLM calls, %s tokens in, %s out; ", TERM_SGR(color, "2"),
            (long long)json_integer_value(json_object_get(usage, "llm_calls")),
            cmd_grouped((long long)json_integer_value(json_object_get(usage, "input_tokens")), in,
                        sizeof in),
            cmd_grouped((long long)json_integer_value(json_object_get(usage, "output_tokens")),
                        outn, sizeof outn));
    if (scripted)
        fprintf(out, "canned replies of the scripted provider)%s\n", TERM_RESET(color));
    else
        fprintf(out, "%s %s)%s\n", provider ? provider : "?", model ? model : "",
                TERM_RESET(color));
}

int cmd_improve(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    bool as_json = false, no_wait = false, force_tty = false;
    const char *max = NULL, *instructions = NULL, *model = NULL;
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"no-wait", no_argument, NULL, 'w'},
                                         {"tty", no_argument, NULL, 't'},
                                         {"max-contradictions", required_argument, NULL, 'm'},
                                         {"instructions", required_argument, NULL, 'i'},
                                         {"model", required_argument, NULL, 'M'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 'w':
            no_wait = true;
            break;
        case 't':
            force_tty = true;
            break;
        case 'm':
            max = optarg;
            break;
        case 'i':
            instructions = optarg;
            break;
        case 'M':
            model = optarg;
            break;
        default:
            return cmd_usage("improve");
        }
    }
    if (argc - optind != 1)
        return cmd_usage("improve");
    if ((instructions && !cmd_text_arg("instructions", instructions)) ||
        (model && !cmd_text_arg("model", model)))
        return EXIT_USAGE;
    json_t *body = json_object();
    if (max) {
        char *end;
        long long n = strtoll(max, &end, 10);
        if (!*max || *end || n < 1 || n > 200) {
            json_decref(body);
            cmd_error("--max-contradictions takes a number from 1 to 200, not \"%s\"", max);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "max_contradictions", json_integer(n));
    }
    if (instructions)
        json_object_set_new(body, "instructions", json_string(instructions));
    if (model)
        json_object_set_new(body, "model", json_string(model));

    struct client cl;
    struct rf_err err;
    json_t *agent = NULL, *job = NULL, *final = NULL;
    char *path = NULL;
    char terminal[FOLLOW_TERMINAL_MAX] = "";
    struct job_view view;
    bool tty = force_tty || term_tty(STDOUT_FILENO);
    bool color = tty && term_use_color(TERM_COLOR_AUTO, STDOUT_FILENO);
    int rc = 1;
    job_view_init(&view, stdout, tty, color);
    if (client_init(&cl, &cfg, &err) != RF_OK) {
        json_decref(body);
        return cmd_fail(&err);
    }
    cl.raw = as_json;
    if (client_agent(&cl, argv[optind], &agent, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    const char *agent_id = json_string_value(json_object_get(agent, "id"));
    const char *name = json_string_value(json_object_get(agent, "name"));
    path = xasprintf("/v1/agents/%s/improve-prompt", agent_id);
    if (client_call(&cl, "POST", path, body, NULL, &job, NULL, &err) != RF_OK) {
        char word[512];
        cmd_shell_word(argv[optind], word, sizeof word);
        if (!strcmp(err.reason, "no_active_version"))
            rf_fail(&err, RF_CONFLICT,
                    "%s has no active version to improve: promote one first (refold versions %s)",
                    name, word);
        rc = cmd_fail_options(&err); /* an option the server refused (--model "") is usage */
        goto out;
    }
    const char *job_id = json_string_value(json_object_get(job, "id"));
    if (no_wait) {
        if (as_json)
            cmd_print_json(job);
        else
            printf("Started %s (improving %s).\nFollow it with: refold job %s --follow\n", job_id,
                   name, job_id);
        rc = 0;
        goto out;
    }
    if (!as_json) {
        json_t *active = json_object_get(agent, "active_version");
        printf("%sImproving %s%s v%lld from its contradictions (job %s)\n", TERM_SGR(color, "1"),
               name, TERM_RESET(color),
               (long long)json_integer_value(json_object_get(active, "version")), job_id);
        fflush(stdout);
    }
    follow_stop_on_interrupt(job_id, tty && !as_json);
    enum rf_status frc =
        follow_job(&cl, job_id, as_json ? NULL : job_view_event,
                   as_json ? follow_link_stderr : job_view_link, &view, terminal, &err);
    job_view_end(&view);
    if (frc != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    /* The finished Job: what --json prints, and the result or error when the stream did
     * not carry them (the job had finished before we connected). */
    char jp[128];
    snprintf(jp, sizeof jp, "/v1/jobs/%s", job_id);
    if (client_call(&cl, "GET", jp, NULL, NULL, &final, NULL, &err) != RF_OK) {
        rc = cmd_fail(&err);
        goto out;
    }
    if (as_json) {
        cmd_print_json(final);
        if (strcmp(terminal, "completed") == 0) {
            rc = 0;
            goto out;
        }
        /* A job that did not complete still gets its one line on stderr (SPEC §9), shown
         * as any text for people is (the JSON above went out raw). */
        client_visible(final);
        client_visible(agent);
        name = json_string_value(json_object_get(agent, "name"));
    }
    const json_t *result = json_object_get(final, "result");
    const json_t *error = json_object_get(final, "error");
    char word[512];
    cmd_shell_word(name, word, sizeof word);
    if (strcmp(terminal, "completed") == 0 && !as_json) {
        const json_t *ver = json_object_get(result, "new_version_number");
        cmd_improve_summary(stdout, name, result, color);
        if (json_is_integer(ver)) {
            long long n = (long long)json_integer_value(ver);
            printf("\nReview it:   refold diff %s %lld\n"
                   "Promote it:  refold promote %s %lld\n"
                   "Reject it:   refold reject %s %lld --reason \"...\"\n",
                   word, n, word, n, word, n);
        }
        rc = 0;
    } else if (strcmp(terminal, "failed") == 0) {
        cmd_error("improving %s failed: %s: %s (details: refold job %s)", name,
                  json_string_value(json_object_get(error, "code"))
                      ? json_string_value(json_object_get(error, "code"))
                      : "error",
                  json_string_value(json_object_get(error, "message"))
                      ? json_string_value(json_object_get(error, "message"))
                      : "unknown",
                  job_id);
    } else {
        cmd_error("job %s was %s", job_id, terminal[0] ? terminal : "stopped");
    }
out:
    job_view_end(&view);
    json_decref(agent);
    json_decref(body);
    json_decref(job);
    json_decref(final);
    free(path);
    client_release(&cl);
    return rc;
}
