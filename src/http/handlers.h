/*
 * handlers - one file per resource (h_<resource>.c); each handler is listed
 * in router.c's table. Handlers validate input, call the store (or jobs),
 * and fill struct resp; see http.h.
 */
#ifndef REFOLD_HTTP_HANDLERS_H
#define REFOLD_HTTP_HANDLERS_H

#include "http/http.h"

#define HANDLER(name) enum rf_status name(struct req *req, struct resp *resp, struct rf_err *err)

/* h_agents.c */
HANDLER(h_agents_create);
HANDLER(h_agents_list);
HANDLER(h_agents_get);
HANDLER(h_agents_update);
HANDLER(h_agents_delete);
HANDLER(h_agents_contradictions);
/* h_improve.c */
HANDLER(h_agents_improve);
/* h_versions.c */
HANDLER(h_versions_create);
HANDLER(h_versions_list);
HANDLER(h_versions_get);
HANDLER(h_versions_diff);
HANDLER(h_versions_promote);
HANDLER(h_versions_reject);
/* h_traces.c */
HANDLER(h_traces_create);
HANDLER(h_traces_list);
HANDLER(h_traces_get);
HANDLER(h_traces_delete);
HANDLER(h_feedback_put);
HANDLER(h_feedback_get);
HANDLER(h_feedback_delete);
HANDLER(h_feedback_batch);
/* h_evals.c */
HANDLER(h_evals_create);
HANDLER(h_evals_list);
HANDLER(h_evals_get);
HANDLER(h_executions_put);
/* h_practices.c */
HANDLER(h_practices_list);
HANDLER(h_practices_create);
HANDLER(h_practices_delete);
/* h_jobs.c */
HANDLER(h_jobs_list);
HANDLER(h_jobs_get);
HANDLER(h_jobs_cancel);
HANDLER(h_jobs_retry);
HANDLER(h_jobs_events);
HANDLER(h_jobs_llm_calls);
HANDLER(h_test_jobs_create);
/* h_system.c */
HANDLER(h_session_create);
HANDLER(h_session_delete);
HANDLER(h_healthz);
HANDLER(h_metrics);
HANDLER(h_ui);

/* Answer a job enqueued by jobs_enqueue: 202 with Location: /v1/jobs/{id} when created, 200
 * when an Idempotency-Key matched an existing job. Takes ownership of job. */
void resp_job_enqueued(struct resp *resp, json_t *job, bool created);

#endif
