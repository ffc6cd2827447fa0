/*
 * metrics - see metrics.h. Route tables are allocated once at start-up and
 * never freed (they live as long as the process).
 */
#include "core/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/xalloc.h"
#include "core/banned.h"

static _Atomic int64_t counters[METRIC_COUNT];

static const struct {
    const char *name, *help, *type;
} counter_info[METRIC_COUNT] = {
    [METRIC_LLM_CALLS] = {"refold_llm_calls_total", "LLM calls made", "counter"},
    [METRIC_LLM_ERRORS] = {"refold_llm_errors_total", "LLM calls that failed", "counter"},
    [METRIC_LLM_RETRIES] = {"refold_llm_retries_total", "LLM HTTP retries inside calls",
                            "counter"},
    [METRIC_LLM_INPUT_TOKENS] = {"refold_llm_input_tokens_total", "LLM input tokens", "counter"},
    [METRIC_LLM_OUTPUT_TOKENS] = {"refold_llm_output_tokens_total", "LLM output tokens",
                                  "counter"},
    [METRIC_JOB_RETRIES] = {"refold_job_retries_total", "jobs rescheduled after a transient "
                            "failure", "counter"},
    [METRIC_JOBS_CLAIMED] = {"refold_jobs_claimed_total", "job attempts started by this process",
                             "counter"},
    [METRIC_SSE_STREAMS] = {"refold_sse_streams", "open Server-Sent Events streams", "gauge"},
    [METRIC_JOB_FENCED_WRITES] = {"refold_job_fenced_writes_total",
                                  "job writes refused because the worker had lost its lease",
                                  "counter"},
    [METRIC_JOB_LEASES_EXPIRED] = {"refold_job_leases_expired_total",
                                   "running jobs rescued by this process's sweeper", "counter"},
    [METRIC_RATING_GROUPS] = {"refold_rating_groups_total",
                              "transactions that stored single ratings (PUT feedback), "
                              "grouped", "counter"},
    [METRIC_RATINGS_GROUPED] = {"refold_ratings_grouped_total",
                                "single ratings stored through those transactions", "counter"},
};

/* Status codes tracked per route; anything else is counted as "other". */
static const int codes[] = {200, 201, 202, 204, 400, 401, 404, 405, 409, 413, 415, 500, 503, 0};
#define NCODES ((int)(sizeof codes / sizeof codes[0]))
/* Latency bucket upper bounds in milliseconds. */
static const double bounds[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBOUNDS ((int)(sizeof bounds / sizeof bounds[0]))

struct route_stats {
    _Atomic int64_t count[NCODES];
    _Atomic int64_t bucket[NBOUNDS + 1];
    _Atomic int64_t sum_us;
    _Atomic int64_t total;
};

static struct route_stats *routes;
static int route_count;

void metrics_add(enum metric m, int64_t delta)
{
    atomic_fetch_add_explicit(&counters[m], delta, memory_order_relaxed);
}

int64_t metrics_get(enum metric m)
{
    return atomic_load_explicit(&counters[m], memory_order_relaxed);
}

void metrics_init_routes(int nroutes)
{
    if (routes)
        return;
    routes = xcalloc((size_t)nroutes + 1, sizeof *routes); /* +1: unmatched requests */
    route_count = nroutes;
}

void metrics_request(int route, int status, int64_t micros)
{
    if (!routes)
        return;
    if (route < 0 || route > route_count)
        route = route_count;
    struct route_stats *r = &routes[route];
    int c = NCODES - 1;
    for (int i = 0; i < NCODES - 1; i++)
        if (codes[i] == status)
            c = i;
    atomic_fetch_add_explicit(&r->count[c], 1, memory_order_relaxed);
    double ms = (double)micros / 1000.0;
    int b = NBOUNDS;
    for (int i = 0; i < NBOUNDS; i++) {
        if (ms <= bounds[i]) {
            b = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&r->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, micros, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->total, 1, memory_order_relaxed);
}

void metrics_render(struct buf *out, const char *(*route_name)(int index, const char **method))
{
    for (int m = 0; m < METRIC_COUNT; m++)
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", counter_info[m].name,
                   counter_info[m].help, counter_info[m].name, counter_info[m].type,
                   counter_info[m].name, (long long)metrics_get((enum metric)m));
    if (!routes)
        return;
    buf_puts(out, "# HELP refold_http_requests_total HTTP requests by route and status\n"
                  "# TYPE refold_http_requests_total counter\n");
    for (int r = 0; r <= route_count; r++) {
        const char *method = "", *name = r < route_count ? route_name(r, &method) : "unmatched";
        for (int c = 0; c < NCODES; c++) {
            int64_t n = atomic_load_explicit(&routes[r].count[c], memory_order_relaxed);
            if (!n)
                continue;
            if (codes[c])
                buf_printf(out,
                           "refold_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
                           "%lld\n",
                           method, name, codes[c], (long long)n);
            else
                buf_printf(out,
                           "refold_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"}"
                           " %lld\n",
                           method, name, (long long)n);
        }
    }
    buf_puts(out, "# HELP refold_http_request_duration_seconds HTTP request latency by route\n"
                  "# TYPE refold_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= route_count; r++) {
        int64_t total = atomic_load_explicit(&routes[r].total, memory_order_relaxed);
        if (!total)
            continue;
        const char *method = "", *name = r < route_count ? route_name(r, &method) : "unmatched";
        int64_t cum = 0;
        for (int b = 0; b <= NBOUNDS; b++) {
            cum += atomic_load_explicit(&routes[r].bucket[b], memory_order_relaxed);
            if (b < NBOUNDS)
                buf_printf(out,
                           "refold_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                           "le=\"%g\"} %lld\n",
                           method, name, bounds[b] / 1000.0, (long long)cum);
            else
                buf_printf(out,
                           "refold_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                           "le=\"+Inf\"} %lld\n",
                           method, name, (long long)cum);
        }
        buf_printf(out,
                   "refold_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
                   "refold_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lld\n",
                   method, name,
                   (double)atomic_load_explicit(&routes[r].sum_us, memory_order_relaxed) / 1e6,
                   method, name, (long long)total);
    }
}
