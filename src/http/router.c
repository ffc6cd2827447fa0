/*
 * router - the route table and matching; see router.h. The table is static
 * and read-only, so matching is thread-safe.
 */
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "http/handlers.h"
#include "core/banned.h"

static const struct route routes[] = {
    {"POST", "/v1/agents", h_agents_create, 0},
    {"GET", "/v1/agents", h_agents_list, ROUTE_MEMO},
    {"GET", "/v1/agents/{id}", h_agents_get, ROUTE_MEMO},
    {"PATCH", "/v1/agents/{id}", h_agents_update, 0},
    {"DELETE", "/v1/agents/{id}", h_agents_delete, 0},
    {"GET", "/v1/agents/{id}/contradictions", h_agents_contradictions, ROUTE_MEMO},
    {"POST", "/v1/agents/{id}/improve-prompt", h_agents_improve, 0},
    {"POST", "/v1/agents/{id}/versions", h_versions_create, 0},
    {"GET", "/v1/agents/{id}/versions", h_versions_list, ROUTE_MEMO},
    {"GET", "/v1/agents/{id}/versions/{n}", h_versions_get, ROUTE_MEMO},
    {"GET", "/v1/agents/{id}/versions/{n}/diff", h_versions_diff, ROUTE_MEMO},
    {"POST", "/v1/agents/{id}/versions/{n}/promote", h_versions_promote, 0},
    {"POST", "/v1/agents/{id}/versions/{n}/reject", h_versions_reject, 0},
    {"POST", "/v1/traces", h_traces_create, 0},
    {"GET", "/v1/traces", h_traces_list, ROUTE_MEMO},
    {"GET", "/v1/traces/{id}", h_traces_get, ROUTE_MEMO},
    {"DELETE", "/v1/traces/{id}", h_traces_delete, 0},
    {"PUT", "/v1/traces/{id}/feedback", h_feedback_put, 0},
    {"GET", "/v1/traces/{id}/feedback", h_feedback_get, ROUTE_MEMO},
    {"DELETE", "/v1/traces/{id}/feedback", h_feedback_delete, 0},
    {"POST", "/v1/feedback", h_feedback_batch, 0},
    {"POST", "/v1/evals", h_evals_create, 0},
    {"GET", "/v1/evals", h_evals_list, ROUTE_MEMO},
    {"GET", "/v1/evals/{id}", h_evals_get, ROUTE_MEMO},
    {"POST", "/v1/evals/{id}/executions", h_executions_put, 0},
    {"GET", "/v1/best-practices", h_practices_list, ROUTE_MEMO},
    {"POST", "/v1/best-practices", h_practices_create, 0},
    {"DELETE", "/v1/best-practices/{id}", h_practices_delete, 0},
    {"GET", "/v1/jobs", h_jobs_list, 0},
    {"GET", "/v1/jobs/{id}", h_jobs_get, 0},
    {"POST", "/v1/jobs/{id}/cancel", h_jobs_cancel, 0},
    {"POST", "/v1/jobs/{id}/retry", h_jobs_retry, 0},
    {"GET", "/v1/jobs/{id}/events", h_jobs_events, ROUTE_NO_HEAD},
    {"GET", "/v1/jobs/{id}/llm-calls", h_jobs_llm_calls, 0},
    {"POST", "/v1/test/jobs", h_test_jobs_create, ROUTE_TEST_ONLY},
    {"POST", "/v1/session", h_session_create, ROUTE_PUBLIC},
    {"DELETE", "/v1/session", h_session_delete, ROUTE_PUBLIC},
    {"GET", "/healthz", h_healthz, ROUTE_PUBLIC | ROUTE_NO_STORE},
    {"GET", "/metrics", h_metrics, ROUTE_PUBLIC | ROUTE_NO_STORE},
    {"GET", "/", h_ui, ROUTE_PUBLIC},
    {"GET", "/ui/{file}", h_ui, ROUTE_PUBLIC},
};

static bool test_routes;

void router_enable_test_routes(bool on)
{
    test_routes = on;
}

int router_count(void)
{
    return (int)(sizeof routes / sizeof routes[0]);
}

const struct route *router_get(int index)
{
    return &routes[index];
}

/* Match one pattern; on success the captured segments are copied into buf
 * (NUL-separated) and pointed to by params. */
static bool match(const char *pattern, const char *path, char *buf, const char **params,
                  int *nparams)
{
    const char *p = pattern, *s = path;
    char *o = buf;
    *nparams = 0;
    for (int i = 0; i < HTTP_MAX_PARAMS; i++)
        params[i] = NULL;
    while (*p && *s) {
        if (*p == '{') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len == 0 || *nparams == HTTP_MAX_PARAMS)
                return false;
            memcpy(o, s, len);
            o[len] = '\0';
            params[(*nparams)++] = o;
            o += len + 1;
            s += len;
            p = strchr(p, '}') + 1;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return false;
        }
    }
    return *p == '\0' && *s == '\0';
}

enum route_match router_match(const char *method, const char *path, struct req *req, int *index,
                              char *allow, size_t allow_len)
{
    size_t n = strlen(path);
    char *buf = xmalloc(n + HTTP_MAX_PARAMS + 1);
    const char *params[HTTP_MAX_PARAMS] = {0};
    int nparams;
    bool path_seen = false;
    size_t used = 0;
    if (allow_len)
        allow[0] = '\0';
    for (int i = 0; i < router_count(); i++) {
        if ((routes[i].flags & ROUTE_TEST_ONLY) && !test_routes)
            continue;
        if (!match(routes[i].pattern, path, buf, params, &nparams))
            continue;
        bool head = strcmp(routes[i].method, "GET") == 0 && !(routes[i].flags & ROUTE_NO_HEAD);
        if (strcmp(routes[i].method, method) == 0 || (head && strcmp(method, "HEAD") == 0)) {
            req->param_buf = buf;
            memcpy(req->params, params, sizeof params);
            *index = i;
            return ROUTE_FOUND;
        }
        path_seen = true;
        int w = snprintf(allow + used, allow_len - used, "%s%s%s", used ? ", " : "",
                         routes[i].method, head ? ", HEAD" : "");
        if (w > 0 && used + (size_t)w < allow_len)
            used += (size_t)w;
    }
    free(buf);
    return path_seen ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
