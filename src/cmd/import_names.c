/*
 * import_names - the importer's agent, version and eval lines, and the names they resolve.
 *
 * These lines are applied synchronously, in file order, through the ordinary API calls
 * (see import.h, "Ordering" and "Idempotency"). Names are resolved once and cached: an
 * agent by name (GET /v1/agents?name=; a missing one is cached too, so it is asked about
 * once), an agent's versions and its evals in one list call each. Runs on the
 * importer's thread.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/import_internal.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "core/banned.h"

void import_names_init(struct importer *imp)
{
    imp->agent_index = json_object();
    imp->eval_index = json_object();
}

void import_names_release(struct importer *imp)
{
    for (int i = 0; i < imp->nagents; i++) {
        free(imp->agents[i].name);
        json_decref(imp->agents[i].description);
        for (int k = 0; k < imp->agents[i].nversions; k++)
            free(imp->agents[i].versions[k].tmpl);
        free(imp->agents[i].versions);
    }
    free(imp->agents);
    free(imp->evals);
    free(imp->last_eval_name);
    json_decref(imp->agent_index);
    json_decref(imp->eval_index);
}

/* After a failed call: an answer that is not refold's (a wrong REFOLD_URL, a proxy) stops
 * the import with one line rather than rejecting every line of the file. */
static enum rf_status not_refold(struct importer *imp, enum rf_status rc, struct rf_err *err)
{
    if (rc == RF_OK || strcmp(err->reason, CLIENT_NOT_REFOLD) != 0)
        return rc;
    char what[sizeof err->message];
    snprintf(what, sizeof what, "%s", err->message);
    return rf_fail(err, RF_UNAVAILABLE,
                   "%s, which does not answer like refold: is REFOLD_URL (%s) the refold server?",
                   what, imp->cl->base);
}

/* After a try that found no server: pause and say to try again, up to IMPORT_RETRIES. */
static bool again(enum rf_status rc, int tries)
{
    if (rc != RF_UNAVAILABLE || tries >= IMPORT_RETRIES)
        return false;
    clock_sleep_ms(IMPORT_RETRY_PAUSE_MS << tries);
    return true;
}

/* The outcome of a request: not refold's answer stops the import (not_refold); any
 * answer from the server marks it answered. */
static enum rf_status answered(struct importer *imp, enum rf_status rc, struct rf_err *err)
{
    rc = not_refold(imp, rc, err);
    if (rc != RF_UNAVAILABLE && rc != RF_UNAUTHORIZED)
        imp->answered = true;
    return rc;
}

/* client_call, sent again like a batch (IMPORT_RETRIES) when the server could not be reached
 * or answered 503. Every call made here is safe to repeat: a lookup; an agent or eval
 * create, whose repeat is a 409 handled like a race with another import; a version create
 * with reuse_identical (see create_version); a description PATCH. *retried (may be NULL)
 * says whether it was sent more than once, here or by libcurl (client.h, sends). */
static enum rf_status call(struct importer *imp, const char *method, const char *path,
                           const json_t *body, json_t **out, long *status, bool *retried,
                           struct rf_err *err)
{
    enum rf_status rc;
    for (int tries = 0;; tries++) {
        rc = client_call(imp->cl, method, path, body, NULL, out, status, err);
        if (retried) /* sent again here, or by libcurl on a new connection (client.h) */
            *retried = tries > 0 || imp->cl->sends > 1;
        if (!again(rc, tries))
            break;
    }
    return answered(imp, rc, err);
}

/* client_list_all, sent again like call(). */
static enum rf_status list_all(struct importer *imp, const char *path, json_t **data,
                               struct rf_err *err)
{
    enum rf_status rc;
    for (int tries = 0;; tries++) {
        rc = client_list_all(imp->cl, path, data, err);
        if (!again(rc, tries))
            break;
    }
    if ((rc == RF_NOT_FOUND || rc == RF_METHOD) && strcmp(err->reason, CLIENT_NOT_REFOLD) != 0)
        rc = import_wrong_url(imp, err); /* refold has every list route the importer uses */
    return answered(imp, rc, err);
}

/* A string field: NULL when absent or null; *bad when present with another type. */
static const char *opt_str(const json_t *obj, const char *key, bool *bad)
{
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_string(v) && !json_is_null(v))
        *bad = true;
    return json_string_value(v);
}

/* Ask the server for agent a by its name (GET /v1/agents?name=): its id and description
 * when a non-archived one exists, else a->missing. */
static enum rf_status agent_fetch(struct importer *imp, struct agent_ent *a, struct rf_err *err)
{
    json_t *list = NULL;
    char *e = client_escape(imp->cl, a->name), *path = xasprintf("/v1/agents?name=%s", e);
    free(e);
    enum rf_status rc = list_all(imp, path, &list, err);
    free(path);
    if (rc)
        return rc;
    a->missing = true;
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        const char *status = json_string_value(json_object_get(row, "status"));
        if (status && strcmp(status, "archived") != 0) {
            snprintf(a->id, sizeof a->id, "%s", json_string_value(json_object_get(row, "id")));
            json_decref(a->description);
            a->description = json_incref(json_object_get(row, "description"));
            a->missing = false;
            break;
        }
    }
    json_decref(list);
    return RF_OK;
}

/* The index of agent name in the cache, loading it from the server the first time. -1
 * with *rc set when the lookup failed. A missing agent gets an entry too (missing =
 * true), so it is asked about once. */
static int agent_lookup(struct importer *imp, const char *name, enum rf_status *rc,
                        struct rf_err *err)
{
    json_t *at = json_object_get(imp->agent_index, name);
    *rc = RF_OK;
    if (at)
        return (int)json_integer_value(at);
    struct agent_ent a = {.name = xstrdup(name)};
    if ((*rc = agent_fetch(imp, &a, err))) {
        free(a.name);
        return -1;
    }
    imp->agents = xrealloc(imp->agents, sizeof *imp->agents * (size_t)(imp->nagents + 1));
    imp->agents[imp->nagents] = a;
    json_object_set_new(imp->agent_index, name, json_integer(imp->nagents));
    return imp->nagents++;
}

static void add_version(struct agent_ent *a, const json_t *v)
{
    a->versions = xrealloc(a->versions, sizeof *a->versions * (size_t)(a->nversions + 1));
    struct version_ent *e = &a->versions[a->nversions++];
    e->number = json_integer_value(json_object_get(v, "version"));
    snprintf(e->id, sizeof e->id, "%s", json_string_value(json_object_get(v, "id")));
    const char *t = json_string_value(json_object_get(v, "prompt_template"));
    e->tmpl = xstrdup(t ? t : "");
}

/* Make sure the agent's versions are in the cache (one list call per agent). */
enum rf_status import_load_versions(struct importer *imp, struct agent_ent *a, struct rf_err *err)
{
    if (a->versions_loaded)
        return RF_OK;
    json_t *list = NULL;
    char *path = xasprintf("/v1/agents/%s/versions", a->id);
    enum rf_status rc = list_all(imp, path, &list, err);
    free(path);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) add_version(a, v);
    json_decref(list);
    a->versions_loaded = true;
    return RF_OK;
}

static const struct version_ent *version_by_template(const struct agent_ent *a, const char *t)
{
    for (int i = 0; i < a->nversions; i++)
        if (strcmp(a->versions[i].tmpl, t) == 0)
            return &a->versions[i];
    return NULL;
}

/* Pin the agent's traces to its version with template tmpl (see file_version). */
static void pin(struct agent_ent *a, const char *tmpl)
{
    const struct version_ent *v = version_by_template(a, tmpl);
    if (v)
        snprintf(a->file_version, sizeof a->file_version, "%s", v->id);
}

static char *eval_key(const char *agent_id, const char *name)
{
    return xasprintf("%s\x1f%s", agent_id, name);
}

static int eval_add(struct importer *imp, int agent, const char *id, const char *name)
{
    imp->evals = xrealloc(imp->evals, sizeof *imp->evals * (size_t)(imp->nevals + 1));
    struct eval_ent *e = &imp->evals[imp->nevals];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->agent = agent;
    char *k = eval_key(imp->agents[agent].id, name);
    json_object_set_new(imp->eval_index, k, json_integer(imp->nevals));
    free(k);
    return imp->nevals++;
}

/* Add the agent's evals the cache does not hold yet (one list call). */
static enum rf_status evals_fetch(struct importer *imp, int agent, struct rf_err *err)
{
    json_t *list = NULL;
    char *path = xasprintf("/v1/evals?agent_id=%s", imp->agents[agent].id);
    enum rf_status rc = list_all(imp, path, &list, err);
    free(path);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        char *k = eval_key(imp->agents[agent].id, name ? name : "");
        if (name && !json_object_get(imp->eval_index, k))
            eval_add(imp, agent, json_string_value(json_object_get(v, "id")), name);
        free(k);
    }
    json_decref(list);
    imp->agents[agent].evals_loaded = true;
    return RF_OK;
}

/* The index of the agent's eval named name, or -1 (with *rc RF_OK when there is none). */
int import_eval_lookup(struct importer *imp, int agent, const char *name, enum rf_status *rc,
                       struct rf_err *err)
{
    *rc = RF_OK;
    if (!imp->agents[agent].evals_loaded && (*rc = evals_fetch(imp, agent, err)))
        return -1;
    if (imp->last_eval >= 0 && imp->evals[imp->last_eval].agent == agent &&
        strcmp(imp->last_eval_name, name) == 0)
        return imp->last_eval;
    char *k = eval_key(imp->agents[agent].id, name);
    json_t *at = json_object_get(imp->eval_index, k);
    free(k);
    if (!at)
        return -1;
    free(imp->last_eval_name);
    imp->last_eval_name = xstrdup(name);
    imp->last_eval = (int)json_integer_value(at);
    return imp->last_eval;
}

/* The agent named by field "agent" of a line, or -1 after reporting why not. */
int import_line_agent(struct importer *imp, const json_t *obj, int64_t line, enum import_type t)
{
    const char *name = json_string_value(json_object_get(obj, "agent"));
    struct rf_err err;
    enum rf_status rc;
    if (!name || !*name) {
        import_report(imp, line, t, "\"agent\" (the agent's name) %s",
                      import_not_string(obj, "agent") ? "must be a string" : "is required");
        return -1;
    }
    int ai = agent_lookup(imp, name, &rc, &err);
    if (rc) {
        import_api_failed(imp, line, t, rc, &err);
        return -1;
    }
    if (imp->agents[ai].missing) {
        import_report(imp, line, t,
                      "unknown agent \"%s\": it is not in the workspace and no agent line before "
                      "this one defines it",
                      name);
        return -1;
    }
    return ai;
}

/* POST .../versions, made active in the same request when activate (so an import that
 * stops, or another one running at once, never leaves it created but not promoted); the
 * new version joins the cache. *created is false when the server already had a version
 * with this template (another import of the same file running at the same time made it
 * since the cache was loaded): that version is left as it is, as one found in the cache
 * would be. After a request sent again, an existing version may be the one the first
 * request made: it is taken as created. */
static enum rf_status create_version(struct importer *imp, struct agent_ent *a, const char *tmpl,
                                     bool activate, bool *created, struct rf_err *err)
{
    json_t *body = json_pack("{s:s, s:b, s:s}", "prompt_template", tmpl, "reuse_identical", 1,
                             "status", activate ? "active" : "candidate"),
           *v = NULL;
    char *path = xasprintf("/v1/agents/%s/versions", a->id);
    long status = 0;
    bool retried = false;
    /* Traces read before this line that go to the active version (sent with agent_id)
     * must get the one active until now, as if applied one by one. */
    if (activate)
        import_flush_traces(imp);
    enum rf_status rc = imp->fatal ? imp->fatal
                                   : call(imp, "POST", path, body, &v, &status, &retried, err);
    *created = rc == RF_OK && (status == 201 || retried);
    if (v)
        add_version(a, v);
    json_decref(body);
    json_decref(v);
    free(path);
    return rc;
}

void import_agent_line(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *name = opt_str(obj, "name", &bad);
    const char *desc = opt_str(obj, "description", &bad);
    const char *tmpl = opt_str(obj, "prompt_template", &bad);
    struct rf_err err;
    enum rf_status rc;
    json_t *out = NULL;
    bool retried = false, made_by_lost = false;
    if (!name || !*name || bad) {
        import_report(imp, line, IMPORT_AGENT,
                      bad ? "name, description and prompt_template must be strings"
                          : "\"name\" is required");
        return;
    }
    int ai = agent_lookup(imp, name, &rc, &err);
    if (rc) {
        import_api_failed(imp, line, IMPORT_AGENT, rc, &err);
        return;
    }
    struct agent_ent *a = &imp->agents[ai];
    if (a->missing) {
        json_t *body = json_pack("{s:s}", "name", name);
        if (desc)
            json_object_set_new(body, "description", json_string(desc));
        if (tmpl)
            json_object_set_new(body, "prompt_template", json_string(tmpl));
        rc = call(imp, "POST", "/v1/agents", body, &out, NULL, &retried, &err);
        json_decref(body);
        if (rc == RF_CONFLICT && strcmp(err.field, "name") == 0) {
            /* Made since the lookup (another import of the same file, running at the same
             * time): from here on it is an agent that exists. After a request sent again,
             * it is the one the first request made (its answer was lost): it counts as
             * created, like a version (create_version). */
            made_by_lost = retried;
            struct rf_err ferr;
            enum rf_status frc = agent_fetch(imp, a, &ferr);
            if (frc) {
                import_api_failed(imp, line, IMPORT_AGENT, frc, &ferr);
                return;
            }
            if (!a->missing)
                rc = RF_OK;
        }
        if (rc) {
            import_api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
    }
    if (out) { /* created */
        snprintf(a->id, sizeof a->id, "%s", json_string_value(json_object_get(out, "id")));
        json_decref(a->description);
        a->description = json_incref(json_object_get(out, "description"));
        a->missing = false;
        a->versions_loaded = a->evals_loaded = true; /* a new agent: we know them all */
        json_t *active = json_object_get(out, "active_version");
        if (json_is_object(active)) {
            add_version(a, active);
            pin(a, tmpl);
        }
        imp->st->by_type[IMPORT_AGENT].created++;
        json_decref(out);
        return;
    }
    bool changed = false;
    const json_t *d = json_object_get(obj, "description");
    if (d && !json_equal((json_t *)d, a->description)) {
        json_t *body = json_pack("{s:O}", "description", d);
        char *path = xasprintf("/v1/agents/%s", a->id);
        rc = call(imp, "PATCH", path, body, &out, NULL, NULL, &err);
        free(path);
        json_decref(body);
        if (rc) {
            import_api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        json_decref(a->description);
        a->description = json_incref(json_object_get(out, "description"));
        json_decref(out);
        changed = true;
    }
    if (tmpl) {
        if ((rc = import_load_versions(imp, a, &err))) {
            import_api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        bool created = false;
        if (!version_by_template(a, tmpl) &&
            (rc = create_version(imp, a, tmpl, true, &created, &err))) {
            import_api_failed(imp, line, IMPORT_AGENT, rc, &err);
            return;
        }
        changed = changed || created;
        pin(a, tmpl);
    }
    if (made_by_lost)
        imp->st->by_type[IMPORT_AGENT].created++;
    else if (changed)
        imp->st->by_type[IMPORT_AGENT].updated++;
    else
        imp->st->by_type[IMPORT_AGENT].unchanged++;
}

void import_version_line(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *tmpl = opt_str(obj, "prompt_template", &bad);
    const char *status = opt_str(obj, "status", &bad);
    struct rf_err err;
    enum rf_status rc;
    if (bad || !tmpl) {
        import_report(imp, line, IMPORT_VERSION, "%s",
                      import_not_string(obj, "status")
                          ? "status must be a string"
                          : "\"prompt_template\" (a string) is required");
        return;
    }
    if (status && strcmp(status, "candidate") != 0 && strcmp(status, "active") != 0) {
        import_report(imp, line, IMPORT_VERSION,
                      "status must be \"candidate\" or \"active\", not \"%s\"", status);
        return;
    }
    int ai = import_line_agent(imp, obj, line, IMPORT_VERSION);
    if (ai < 0)
        return;
    struct agent_ent *a = &imp->agents[ai];
    if ((rc = import_load_versions(imp, a, &err))) {
        import_api_failed(imp, line, IMPORT_VERSION, rc, &err);
        return;
    }
    bool activate = status && strcmp(status, "active") == 0, created = false;
    if (!version_by_template(a, tmpl) &&
        (rc = create_version(imp, a, tmpl, activate, &created, &err))) {
        import_api_failed(imp, line, IMPORT_VERSION, rc, &err);
        return;
    }
    if (created)
        imp->st->by_type[IMPORT_VERSION].created++;
    else
        imp->st->by_type[IMPORT_VERSION].unchanged++;
    if (activate)
        pin(a, tmpl);
}

void import_eval_line(struct importer *imp, const json_t *obj, int64_t line)
{
    bool bad = false;
    const char *name = opt_str(obj, "name", &bad);
    const char *desc = opt_str(obj, "description", &bad);
    struct rf_err err;
    enum rf_status rc;
    if (bad || !name || !*name) {
        import_report(imp, line, IMPORT_EVAL,
                      bad ? "name and description must be strings" : "\"name\" is required");
        return;
    }
    int ai = import_line_agent(imp, obj, line, IMPORT_EVAL);
    if (ai < 0)
        return;
    int ei = import_eval_lookup(imp, ai, name, &rc, &err);
    if (rc) {
        import_api_failed(imp, line, IMPORT_EVAL, rc, &err);
        return;
    }
    if (ei >= 0) { /* evals have no update: an existing one is left as it is */
        imp->st->by_type[IMPORT_EVAL].unchanged++;
        return;
    }
    json_t *body = json_pack("{s:s, s:s}", "agent_id", imp->agents[ai].id, "name", name), *out;
    if (desc)
        json_object_set_new(body, "description", json_string(desc));
    bool retried = false;
    rc = call(imp, "POST", "/v1/evals", body, &out, NULL, &retried, &err);
    json_decref(body);
    if (rc == RF_CONFLICT && strcmp(err.field, "name") == 0) {
        /* Made since the lookup (another import of the same file, running at the same
         * time): it exists, and is left as it is. After a request sent again, it is the
         * one the first request made (its answer was lost): it counts as created. */
        struct rf_err ferr;
        enum rf_status frc = evals_fetch(imp, ai, &ferr);
        if (frc) {
            import_api_failed(imp, line, IMPORT_EVAL, frc, &ferr);
            return;
        }
        if (import_eval_lookup(imp, ai, name, &frc, &ferr) >= 0) {
            if (retried)
                imp->st->by_type[IMPORT_EVAL].created++;
            else
                imp->st->by_type[IMPORT_EVAL].unchanged++;
            return;
        }
    }
    if (rc) {
        import_api_failed(imp, line, IMPORT_EVAL, rc, &err);
        return;
    }
    eval_add(imp, ai, json_string_value(json_object_get(out, "id")), name);
    json_decref(out);
    imp->st->by_type[IMPORT_EVAL].created++;
}
