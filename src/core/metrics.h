/*
 * metrics - process-wide counters for /metrics (Prometheus text format).
 *
 * Two kinds: fixed counters that any module bumps (LLM calls, tokens,
 * retries, jobs), and per-route HTTP request counts and latency histograms
 * that the HTTP server records. Everything is a relaxed atomic: counting
 * never takes a lock and never blocks a request.
 */
#ifndef REFOLD_METRICS_H
#define REFOLD_METRICS_H

#include <stdint.h>

#include "core/buf.h"

enum metric {
    METRIC_LLM_CALLS,
    METRIC_LLM_ERRORS,
    METRIC_LLM_RETRIES,
    METRIC_LLM_INPUT_TOKENS,
    METRIC_LLM_OUTPUT_TOKENS,
    METRIC_JOB_RETRIES,
    METRIC_JOBS_CLAIMED,
    METRIC_SSE_STREAMS,
    METRIC_JOB_FENCED_WRITES,
    METRIC_JOB_LEASES_EXPIRED,
    METRIC_RATING_GROUPS,
    METRIC_RATINGS_GROUPED,
    METRIC_COUNT
};

void metrics_add(enum metric m, int64_t delta);
int64_t metrics_get(enum metric m);

/* Size the per-route tables; call once before the server starts. */
void metrics_init_routes(int nroutes);
/* Record one finished request. */
void metrics_request(int route, int status, int64_t micros);
/* Append every metric in Prometheus text format; route_name(i) names route i. */
void metrics_render(struct buf *out, const char *(*route_name)(int index, const char **method));

#endif
