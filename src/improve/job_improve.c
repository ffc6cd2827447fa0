/*
 * job_improve - the prompt_improvement job handler; see improve.h for the
 * design. One run = one attempt: everything it needs is re-read from the
 * store, so a retried or re-claimed job starts over cleanly.
 */
#include "improve/improve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/template.h"
#include "core/xalloc.h"
#include "improve/evidence.h"
#include "improve/prompts.h"
#include "improve/reply.h"
#include "llm/llm.h"
#include "store/store.h"
#include "core/banned.h"

/* Everything one run accumulates. */
struct run {
    struct job_ctx *ctx;
    struct llm_client *llm;
    const char *model;       /* params.model or NULL (the configured default) */
    const char *stage;       /* for token progress events */
    int progress;
    const char *step;        /* LLM step in flight */
    int64_t last_tick_ms;    /* last token progress event */
    int64_t input_tokens, output_tokens;
    int llm_calls;
    char provider[16];
    char used_model[LLM_MODEL_MAX + 1];
    char raw_stop[64];       /* the provider's stop word of the last successful call */
    bool scripted;
};

/* The candidate written inside the completing transaction (owned copies). */
struct candidate {
    char *ws, *agent_id, *parent_id, *job_id;
    char *prompt, *reasoning;
    json_t *changes, *patterns;
    bool crash_before_commit; /* test hook, see crash_hook() */
};

static void candidate_free(void *p)
{
    struct candidate *c = p;
    free(c->ws);
    free(c->agent_id);
    free(c->parent_id);
    free(c->job_id);
    free(c->prompt);
    free(c->reasoning);
    json_decref(c->changes);
    json_decref(c->patterns);
    free(c);
}

static enum rf_status stage(struct run *r, const char *name, int progress, json_t *extra,
                            struct rf_err *err)
{
    r->stage = name;
    r->progress = progress;
    enum rf_status rc = job_progress(r->ctx, name, progress, extra, err);
    json_decref(extra);
    return rc;
}

/* Streaming progress: at most one event every 500 ms while a reply arrives. */
static void on_text(void *ud, const char *delta, size_t len, int64_t tokens)
{
    (void)delta;
    (void)len;
    struct run *r = ud;
    int64_t now = clock_mono_ms();
    if (now - r->last_tick_ms < 500)
        return;
    r->last_tick_ms = now;
    struct rf_err ignored;
    json_t *extra = json_pack("{s:s, s:I}", "step", r->step, "output_tokens",
                              (json_int_t)tokens);
    job_progress(r->ctx, r->stage, r->progress, extra, &ignored);
    json_decref(extra);
}

static int should_cancel(void *ud)
{
    return job_abort_requested(((struct run *)ud)->ctx);
}

static void on_retry(void *ud, int failed_attempt, int64_t delay_ms, const struct rf_err *why)
{
    struct run *r = ud;
    char msg[512];
    snprintf(msg, sizeof msg, "LLM %s call attempt %d failed (%s); retrying in %lld ms", r->step,
             failed_attempt, why->message, (long long)delay_ms);
    struct rf_err ignored;
    job_log(r->ctx, "warn", msg, &ignored);
    metrics_add(METRIC_LLM_RETRIES, 1);
}

/* One LLM call, recorded in the transcript whatever happens. On success *text (caller
 * frees) and stop_reason are set. Failures are classified for the job: transient (with
 * the provider's retry-after), permanent, or cancelled. */
static enum rf_status call_llm(struct run *r, const char *step, const char *system,
                               const struct llm_message *msgs, size_t n, int max_tokens,
                               char **text, char stop_reason[16], struct rf_err *err)
{
    struct llm_request req = {.system = system, .messages = msgs, .n_messages = n,
                              .model = r->model, .max_tokens = max_tokens, .temperature = -1,
                              .on_text = on_text, .should_cancel = should_cancel,
                              .on_retry = on_retry, .ud = r};
    struct llm_response resp;
    struct rf_err cerr;
    rf_err_clear(&cerr);
    llm_response_init(&resp);
    r->step = step;
    r->last_tick_ms = clock_mono_ms();
    enum rf_status rc = llm_client_call(r->llm, &req, &resp, &cerr);
    r->llm_calls++;
    metrics_add(METRIC_LLM_CALLS, 1);
    if (resp.input_tokens > 0) {
        r->input_tokens += resp.input_tokens;
        metrics_add(METRIC_LLM_INPUT_TOKENS, resp.input_tokens);
    }
    if (resp.output_tokens > 0) {
        r->output_tokens += resp.output_tokens;
        metrics_add(METRIC_LLM_OUTPUT_TOKENS, resp.output_tokens);
    }
    snprintf(r->provider, sizeof r->provider, "%s", resp.provider);
    snprintf(r->used_model, sizeof r->used_model, "%s", resp.model);
    r->scripted = r->scripted || resp.scripted;
    struct llm_call_new call = {
        .step = step,
        .provider = resp.provider[0] ? resp.provider : llm_client_provider(r->llm),
        .model = resp.model[0] ? resp.model : (r->model ? r->model : ""),
        .request = resp.request_json ? resp.request_json : "{}",
        .response_text = resp.text,
        .stop_reason = resp.stop_reason[0] ? resp.stop_reason : NULL,
        .http_status = (int)resp.http_status,
        .provider_request_id = resp.request_id[0] ? resp.request_id : NULL,
        .has_input_tokens = resp.input_tokens >= 0,
        .has_output_tokens = resp.output_tokens >= 0,
        .input_tokens = resp.input_tokens,
        .output_tokens = resp.output_tokens,
        .latency_ms = resp.latency_ms,
        .error = rc ? cerr.message : NULL,
    };
    /* One line per call for the operator: what it cost and how it went, never its text.
     * The model may come from the caller's params and the request id from the provider:
     * quoted, they cannot forge a line. */
    char qmodel[300], qrid[300];
    log_info("llm call",
             "job=%s step=%s provider=%s model=%s outcome=%s http_status=%ld attempts=%d "
             "latency_ms=%lld input_tokens=%lld output_tokens=%lld request_id=%s",
             job_id(r->ctx), step, call.provider, log_quote(call.model, qmodel, sizeof qmodel),
             rc ? rf_status_name(rc) : "ok", resp.http_status, resp.attempts,
             (long long)resp.latency_ms, (long long)resp.input_tokens,
             (long long)resp.output_tokens, log_quote(resp.request_id, qrid, sizeof qrid));
    enum rf_status rec = job_record_llm_call(r->ctx, &call, NULL, err);
    if (rec) {
        llm_response_release(&resp);
        return rec; /* lost lease: stop */
    }
    if (rc == RF_OK) {
        *text = resp.text;
        resp.text = NULL;
        snprintf(stop_reason, 16, "%s", resp.stop_reason);
        snprintf(r->raw_stop, sizeof r->raw_stop, "%s", resp.raw_stop_reason);
    } else if (rc == RF_CANCELLED) {
        rf_fail(err, RF_CANCELLED, "cancelled during the %s call", step);
    } else if (rc == RF_TRANSIENT) {
        metrics_add(METRIC_LLM_ERRORS, 1);
        if (resp.retry_after_ms > 0)
            job_retry_after(r->ctx, resp.retry_after_ms);
        rf_fail_reason(err, RF_TRANSIENT, "llm_unavailable", "the %s call failed: %s", step,
                       cerr.message);
    } else {
        metrics_add(METRIC_LLM_ERRORS, 1);
        rf_fail_reason(err, RF_PERMANENT, "llm_error", "the %s call failed: %s", step,
                       cerr.message);
        rc = RF_PERMANENT;
    }
    llm_response_release(&resp);
    return rc;
}

static bool blank(const char *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* "- a\n- b\n" */
static char *bullets(const json_t *arr)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    buf_printf(&b, "- %s\n", json_string_value(v));
    if (b.len == 0)
        buf_puts(&b, "- (none)\n");
    return buf_detach(&b, NULL);
}

/* What the rewrite and repair requests say about the current prompt's template tags
 * (template.h), an addition to SPEC §7 step 5: all "" for a prompt without tags, so its
 * requests are what they were before tags were checked. Owned strings. */
struct tags_text {
    char *rule;        /* rewrite_system: a line after the variables rule */
    char *requirement; /* rewrite_user: lines after requirement 1 */
    char *repair;      /* repair: lines after the variables */
};

static void tags_text_init(struct tags_text *t, const json_t *tags)
{
    if (json_array_size(tags) == 0) {
        t->rule = xstrdup("");
        t->requirement = xstrdup("");
        t->repair = xstrdup("");
        return;
    }
    struct buf list, req;
    buf_init(&list, BUF_UNLIMITED);
    buf_init(&req, BUF_UNLIMITED);
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        buf_printf(&list, "\n%s", json_string_value(v));
        buf_printf(&req, "\n   %s", json_string_value(v));
    }
    t->rule = xstrdup("\n- Keep every template tag listed in the requirements (the sections, "
                      "conditions, loops, partials and comments of the application's template "
                      "engine) exactly as written and as many times as it appears, each block "
                      "still opened and closed around the text it governs: the template engine "
                      "fails on a missing or misplaced tag.");
    t->requirement = xasprintf(
        "\n   Keep these template tags as well, listed in the order they appear (spacing "
        "inside a tag does not matter): each one as many times as it is listed, every block "
        "opened and closed in the same order. Do not add or remove any.%s",
        buf_str(&req));
    t->repair = xasprintf("\nIt must also keep these template tags, each as many times as "
                          "listed, every block opened and closed in the same order:%s",
                          buf_str(&list));
    buf_release(&list);
    buf_release(&req);
}

static void tags_text_release(struct tags_text *t)
{
    free(t->rule);
    free(t->requirement);
    free(t->repair);
}

static char *practices_text(const json_t *practices)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    size_t i;
    json_t *p;
    json_array_foreach(practices, i, p)
    {
        buf_printf(&b, "### %s (%s)\n%s\n\n", json_string_value(json_object_get(p, "title")),
                   json_string_value(json_object_get(p, "category")),
                   json_string_value(json_object_get(p, "content")));
    }
    if (b.len == 0)
        buf_puts(&b, "(none)\n");
    return buf_detach(&b, NULL);
}

/* Tests only (REFOLD_TEST_JOBS=1): REFOLD_TEST_IMPROVE_CRASH=before_commit makes the first
 * attempt exit the process inside the completing transaction, after the candidate row was
 * written and before it commits. */
static bool crash_hook(struct job_ctx *ctx)
{
    const char *v = getenv("REFOLD_TEST_IMPROVE_CRASH");
    return job_types_test_enabled() && v && strcmp(v, "before_commit") == 0 &&
           job_attempt(ctx) == 1;
}

static size_t trace_budget(void)
{
    return (size_t)env_int("REFOLD_TRACE_BUDGET", EVIDENCE_DEFAULT_BUDGET, 1000, 100000000);
}

static int max_tokens(const char *name, int dflt)
{
    return (int)env_int(name, dflt, IMPROVE_MIN_MAX_TOKENS, IMPROVE_MAX_MAX_TOKENS);
}

static enum rf_status create_candidate(struct store *st, json_t *result, void *ud,
                                       struct rf_err *err)
{
    struct candidate *c = ud;
    struct version_new v = {.prompt_template = c->prompt, .source = "ai_improved",
                            .status = "candidate", .change_summary = c->reasoning,
                            .changes = c->changes, .failure_patterns = c->patterns,
                            .created_by_job_id = c->job_id, .parent_version_id = c->parent_id};
    json_t *version = NULL;
    enum rf_status rc = store_version_create(st, c->ws, c->agent_id, &v, &version, NULL, err);
    if (rc == RF_NOT_FOUND || rc == RF_CONFLICT) /* the agent vanished or was archived */
        rc = rf_fail_reason(err, RF_PERMANENT, rc == RF_NOT_FOUND ? "agent_not_found"
                                                                  : "agent_archived",
                            "cannot create the candidate: %s", err->message);
    if (rc)
        return rc;
    if (c->crash_before_commit) {
        log_warn("test hook: crashing before the completing commit", "job=%s", c->job_id);
        _exit(137);
    }
    json_object_set(result, "new_version_id", json_object_get(version, "id"));
    json_object_set(result, "new_version_number", json_object_get(version, "version"));
    json_decref(version);
    return RF_OK;
}

/* The result object of SPEC §7 step 8, without the new version (added at commit). */
static json_t *result_object(struct run *r, const char *parent_id, const char *summary,
                             const json_t *patterns, const json_t *applied,
                             const json_t *considered, int missed, int false_alarms,
                             const json_t *variables)
{
    json_t *res = json_pack(
        "{s:n, s:n, s:s?, s:s, s:O, s:O, s:O, s:{s:i, s:i, s:i}, s:O, s:{s:i, s:I, s:I}}",
        "new_version_id", "new_version_number", "parent_version_id", parent_id,
        "changes_summary", summary, "failure_patterns", patterns, "best_practices_applied",
        applied, "best_practices_considered", considered, "contradictions", "total",
        missed + false_alarms, "missed_failures", missed, "false_alarms", false_alarms,
        "variables", variables, "usage", "llm_calls", r->llm_calls, "input_tokens",
        (json_int_t)r->input_tokens, "output_tokens", (json_int_t)r->output_tokens);
    if (r->llm_calls > 0) {
        json_object_set_new(res, "provider", json_string(r->provider));
        json_object_set_new(res, "model", json_string(r->used_model));
    }
    if (r->scripted)
        json_object_set_new(res, "scripted", json_true());
    return res;
}

/* The evidence of rows (contradictions without their texts), each trace read for its
 * turn. A trace deleted since counts with empty text. */
static enum rf_status evidence_read(struct store *st, const char *ws, const json_t *rows,
                                    const char *fence, struct evidence *ev, struct rf_err *err)
{
    evidence_begin(ev, json_array_size(rows), trace_budget(), fence);
    size_t i;
    const json_t *c;
    json_array_foreach(rows, i, c)
    {
        char *input = NULL, *output = NULL;
        const char *id = json_string_value(json_object_get(c, "trace_id"));
        enum rf_status rc = store_trace_texts(st, ws, id, &input, &output, err);
        if (rc && rc != RF_NOT_FOUND) {
            evidence_end(ev);
            return rc;
        }
        rf_err_clear(err);
        evidence_add(ev, c, input, output);
        free(input);
        free(output);
    }
    evidence_end(ev);
    return RF_OK;
}

enum rf_status job_prompt_improvement(struct job_ctx *ctx, struct rf_err *err)
{
    struct run r = {.ctx = ctx};
    struct store *st = job_store(ctx);
    const char *ws = job_workspace(ctx);
    const json_t *params = job_params(ctx);
    const char *agent_id = json_string_value(json_object_get(params, "agent_id"));
    json_int_t max = json_integer_value(json_object_get(params, "max_contradictions"));
    const char *instructions = json_string_value(json_object_get(params, "instructions"));
    r.model = json_string_value(json_object_get(params, "model"));
    if (max < 1 || max > IMPROVE_MAX_CONTRADICTIONS)
        max = IMPROVE_DEFAULT_CONTRADICTIONS;

    json_t *agent = NULL, *rows = NULL, *practices = NULL, *titles = NULL, *vars = NULL;
    json_t *tags = NULL;
    struct tags_text tt = {0};
    json_t *result = NULL;
    char *analysis_text = NULL, *sys = NULL, *user = NULL;
    char *patterns_text = NULL, *bp_text = NULL, *vars_text = NULL, *instr_text = NULL;
    struct evidence ev = {0};
    struct analysis an = {0};
    struct rewrite rw = {0};
    struct buf convo[IMPROVE_REPAIR_TURNS];
    for (int i = 0; i < IMPROVE_REPAIR_TURNS; i++)
        buf_init(&convo[i], BUF_UNLIMITED);
    char *replies[IMPROVE_REPAIR_TURNS + 1] = {0};
    char stop_reason[16] = "";
    enum rf_status rc;

    /* 1. The agent and its active version. */
    if ((rc = stage(&r, "fetching_agent", 0, NULL, err)))
        goto out;
    if (!agent_id) {
        rc = rf_fail_reason(err, RF_PERMANENT, "invalid_params", "params.agent_id is missing");
        goto out;
    }
    rc = store_agent_get(st, ws, agent_id, false, &agent, err);
    if (rc == RF_NOT_FOUND)
        rc = rf_fail_reason(err, RF_PERMANENT, "agent_not_found", "agent %s not found",
                            agent_id);
    if (rc)
        goto out;
    const json_t *active = json_object_get(agent, "active_version");
    if (!json_is_object(active)) {
        rc = rf_fail_reason(err, RF_PERMANENT, "no_active_version",
                            "agent %s has no active version", agent_id);
        goto out;
    }
    const char *parent_id = json_string_value(json_object_get(active, "id"));
    const char *current = json_string_value(json_object_get(active, "prompt_template"));
    vars = template_variables(current);
    tags = template_tags(current);

    /* 2. Contradictions, without their trace text. */
    if ((rc = stage(&r, "fetching_contradictions", 10, NULL, err)))
        goto out;
    if ((rc = store_contradictions(st, ws, agent_id, NULL, (int)max, 0, false, NULL, NULL, &rows, err)))
        goto out;
    if (json_array_size(rows) == 0) {
        json_t *none = json_array();
        result = result_object(&r, parent_id, "No contradictions found - improvement not needed",
                               none, none, none, 0, 0, vars);
        json_decref(none);
        job_succeed(ctx, result, NULL, NULL);
        result = NULL;
        rc = RF_OK;
        goto out;
    }

    struct llm_config cfg;
    struct rf_err lerr;
    if (llm_config_from_env(&cfg, &lerr) != RF_OK || llm_client_new(&cfg, &r.llm, &lerr) != RF_OK) {
        rc = rf_fail_reason(err, RF_PERMANENT, "llm_not_configured",
                            "the LLM provider is not configured: %s", lerr.message);
        goto out;
    }

    /* The evidence, each trace read for its turn (a trace's text may be 2 MiB, and only
     * trace_budget() characters of them all are used); the reads share one snapshot. */
    char fence[FENCE_MAX];
    evidence_fence(fence);
    (void)store_read_begin(st, &lerr); /* failing to start it only costs speed */
    rc = evidence_read(st, ws, rows, fence, &ev, err);
    store_read_end(st);
    if (rc)
        goto out;

    /* 3. Failure analysis. */
    if ((rc = stage(&r, "analyzing_failures", 30,
                    json_pack("{s:i, s:i, s:i}", "contradictions_found",
                              ev.missed_count + ev.false_alarm_count, "missed_failures",
                              ev.missed_count, "false_alarms", ev.false_alarm_count),
                    err)))
        goto out;
    {
        char total[16], missed[16], alarms[16];
        snprintf(total, sizeof total, "%d", ev.missed_count + ev.false_alarm_count);
        snprintf(missed, sizeof missed, "%d", ev.missed_count);
        snprintf(alarms, sizeof alarms, "%d", ev.false_alarm_count);
        const char *desc = json_string_value(json_object_get(agent, "description"));
        json_t *sv = json_pack("{s:s}", "fence", fence);
        json_t *uv = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "agent_name",
                               json_string_value(json_object_get(agent, "name")),
                               "agent_description", desc ? desc : "(none)", "current_prompt",
                               current, "total", total, "missed_count", missed,
                               "false_alarm_count", alarms, "missed_failures",
                               ev.missed_failures, "false_alarms", ev.false_alarms);
        rc = prompt_render("analysis_system", sv, &sys, err);
        if (rc == RF_OK)
            rc = prompt_render("analysis_user", uv, &user, err);
        json_decref(sv);
        json_decref(uv);
        if (rc)
            goto out;
    }
    {
        struct llm_message m = {LLM_USER, user};
        rc = call_llm(&r, "analysis", sys, &m, 1,
                      max_tokens("REFOLD_ANALYSIS_MAX_TOKENS", IMPROVE_ANALYSIS_MAX_TOKENS),
                      &analysis_text,
                      stop_reason, err);
        if (rc)
            goto out;
    }
    if (!reply_analysis(analysis_text, stop_reason, &an)) {
        bool cut = strcmp(stop_reason, "max_tokens") == 0;
        rc = rf_fail_reason(err, RF_PERMANENT, "invalid_llm_output",
                            "the failure analysis cannot be used: %s%s%s%s", an.problem,
                            cut ? " (a smaller max_contradictions asks for a shorter one; "
                                  "REFOLD_ANALYSIS_MAX_TOKENS raises the limit)"
                                : "",
                            !cut && r.raw_stop[0] ? "; stop_reason " : "",
                            !cut ? r.raw_stop : "");
        goto out;
    }
    free(sys);
    free(user);
    sys = user = NULL;

    /* 4. Best practices. */
    if ((rc = stage(&r, "fetching_best_practices", 50, NULL, err)))
        goto out;
    if ((rc = store_practice_select(st, ws, IMPROVE_PRACTICES, &practices, err)))
        goto out;
    titles = json_array();
    {
        size_t i;
        json_t *p;
        json_array_foreach(practices, i, p)
        json_array_append(titles, json_object_get(p, "title"));
    }

    /* 5. Rewrite. */
    if ((rc = stage(&r, "generating_improved_prompt", 60, NULL, err)))
        goto out;
    patterns_text = bullets(an.failure_patterns);
    bp_text = practices_text(practices);
    vars_text = json_array_size(vars) ? template_braced(vars) : xstrdup("(none)");
    tags_text_init(&tt, tags);
    instr_text = instructions && *instructions
                     ? xasprintf("6. Follow these additional instructions from the team:\n%s\n",
                                 instructions)
                     : xstrdup("");
    {
        json_t *sv = json_pack("{s:s}", "tags_rule", tt.rule);
        json_t *uv = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "current_prompt", current,
                               "analysis_summary", an.summary, "failure_patterns", patterns_text,
                               "best_practices", bp_text, "variables", vars_text, "tags",
                               tt.requirement, "instructions", instr_text);
        rc = prompt_render("rewrite_system", sv, &sys, err);
        if (rc == RF_OK)
            rc = prompt_render("rewrite_user", uv, &user, err);
        json_decref(sv);
        json_decref(uv);
        if (rc)
            goto out;
    }
    struct llm_message msgs[1 + 2 * IMPROVE_REPAIR_TURNS];
    size_t nmsgs = 1;
    msgs[0] = (struct llm_message){LLM_USER, user};
    int rewrite_tokens = max_tokens("REFOLD_REWRITE_MAX_TOKENS", IMPROVE_REWRITE_MAX_TOKENS);
    rc = call_llm(&r, "rewrite", sys, msgs, nmsgs, rewrite_tokens, &replies[0], stop_reason,
                  err);
    if (rc)
        goto out;

    /* 6. Validation, with repair turns. */
    if ((rc = stage(&r, "validating_prompt", 70, NULL, err)))
        goto out;
    for (int turn = 0;; turn++) {
        reply_rewrite_release(&rw);
        if (reply_rewrite(replies[turn], stop_reason, vars, current, &rw))
            break;
        if (turn == IMPROVE_REPAIR_TURNS) {
            struct buf all;
            buf_init(&all, BUF_UNLIMITED);
            size_t i;
            json_t *why;
            json_array_foreach(rw.reasons, i, why)
            buf_printf(&all, "%s%s", i ? "; " : "", json_string_value(why));
            if (strcmp(stop_reason, "max_tokens") == 0)
                buf_printf(&all, " (REFOLD_REWRITE_MAX_TOKENS, now %d, raises the limit)",
                           rewrite_tokens);
            rc = rf_fail_reason(err, RF_PERMANENT, "invalid_llm_output",
                                "the rewrite was still invalid after %d repair turns: %s",
                                IMPROVE_REPAIR_TURNS, buf_str(&all));
            buf_release(&all);
            goto out;
        }
        char *reasons = bullets(rw.reasons);
        char msg[1024];
        snprintf(msg, sizeof msg, "The rewrite was rejected (repair turn %d of %d): %s",
                 turn + 1, IMPROVE_REPAIR_TURNS, json_string_value(json_array_get(rw.reasons, 0)));
        struct rf_err ignored;
        job_log(ctx, "warn", msg, &ignored);
        json_t *rv = json_pack("{s:s, s:s, s:s}", "reasons", reasons, "variables", vars_text,
                               "tags", tt.repair);
        char *repair = NULL;
        rc = prompt_render("repair", rv, &repair, err);
        json_decref(rv);
        free(reasons);
        if (rc)
            goto out;
        buf_puts(&convo[turn], repair);
        free(repair);
        /* Anthropic refuses an empty or blank turn (400) other than a final assistant one:
         * an empty reply goes back as a placeholder the repair message explains. */
        msgs[nmsgs++] = (struct llm_message){
            LLM_ASSISTANT, blank(replies[turn]) ? "(an empty reply)" : replies[turn]};
        msgs[nmsgs++] = (struct llm_message){LLM_USER, buf_str(&convo[turn])};
        rc = call_llm(&r, "repair", sys, msgs, nmsgs, rewrite_tokens,
                      &replies[turn + 1], stop_reason, err);
        if (rc)
            goto out;
    }

    /* 7-9. The candidate, created in the completing transaction. */
    if ((rc = stage(&r, "creating_new_version", 80, NULL, err)))
        goto out;
    if ((rc = stage(&r, "finalizing", 90, NULL, err)))
        goto out;
    result = result_object(&r, parent_id, rw.reasoning, an.failure_patterns, rw.changes, titles,
                           ev.missed_count, ev.false_alarm_count, vars);
    json_object_set_new(result, "analysis_summary", json_string(an.summary));
    json_object_set_new(result, "analysis_cut_off", json_boolean(an.cut_off));
    /* create_candidate runs after this handler returns (at commit): it gets copies, freed
     * by the pool whether or not the commit happens. */
    struct candidate *c = xcalloc(1, sizeof *c);
    c->ws = xstrdup(ws);
    c->job_id = xstrdup(job_id(ctx));
    c->agent_id = xstrdup(agent_id);
    c->parent_id = xstrdup(parent_id);
    c->prompt = xstrdup(rw.improved_prompt);
    c->reasoning = xstrdup(rw.reasoning);
    c->changes = json_deep_copy(rw.changes);
    c->patterns = json_deep_copy(an.failure_patterns);
    c->crash_before_commit = crash_hook(ctx);
    job_succeed_with(ctx, result, create_candidate, c, candidate_free);
    result = NULL;
    rc = RF_OK;

out:
    if (r.llm)
        llm_client_free(r.llm);
    json_decref(result);
    json_decref(agent);
    json_decref(rows);
    json_decref(practices);
    json_decref(titles);
    json_decref(vars);
    json_decref(tags);
    tags_text_release(&tt);
    free(analysis_text);
    free(sys);
    free(user);
    free(patterns_text);
    free(bp_text);
    free(vars_text);
    free(instr_text);
    for (int i = 0; i <= IMPROVE_REPAIR_TURNS; i++)
        free(replies[i]);
    for (int i = 0; i < IMPROVE_REPAIR_TURNS; i++)
        buf_release(&convo[i]);
    evidence_release(&ev);
    reply_analysis_release(&an);
    reply_rewrite_release(&rw);
    return rc;
}
