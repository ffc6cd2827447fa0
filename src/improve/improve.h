/*
 * improve - the Prompt Improvement job (SPEC §7): from the contradictions
 * between human ratings and eval predictions to a validated candidate prompt.
 *
 * DESIGN
 * The job is a job type (jobs.h) whose handler runs on a worker thread:
 *
 *   fetching_agent 0 -> fetching_contradictions 10 -> analyzing_failures 30
 *   (LLM call 1) -> fetching_best_practices 50 -> generating_improved_prompt 60
 *   (LLM call 2) -> validating_prompt 70 (up to 2 repair turns) ->
 *   creating_new_version 80 -> finalizing 90 -> completed 100
 *
 * Reads go through the worker's store connection; every write (stage,
 * events, the LLM transcript) goes through the fenced job_* calls, and the
 * candidate version is created by a callback that runs inside the job's
 * completing transaction, so a crash or a lost lease leaves no candidate
 * behind and a re-run creates exactly one.
 *
 * The meta-prompts are Markdown files (prompts.h); trace text is budgeted and
 * fenced (evidence.h); replies are parsed and validated (reply.h). The LLM
 * client (llm.h) is created per run from the environment and aborted through
 * the job's cancellation flag.
 */
#ifndef REFOLD_IMPROVE_H
#define REFOLD_IMPROVE_H

#include <jansson.h>

#include "core/status.h"
#include "jobs/jobs.h"

#define IMPROVE_JOB_TYPE "prompt_improvement"
#define IMPROVE_DEFAULT_CONTRADICTIONS 20
#define IMPROVE_MAX_CONTRADICTIONS 200
/* Output token limits of the two calls (SPEC §7's defaults), overridden by
 * REFOLD_ANALYSIS_MAX_TOKENS and REFOLD_REWRITE_MAX_TOKENS within these bounds: a prompt
 * template of more than about 14 KB cannot be rewritten within 4,096 tokens. */
#define IMPROVE_ANALYSIS_MAX_TOKENS 2048
#define IMPROVE_REWRITE_MAX_TOKENS 4096
#define IMPROVE_MIN_MAX_TOKENS 256
#define IMPROVE_MAX_MAX_TOKENS 128000
#define IMPROVE_REPAIR_TURNS 2
#define IMPROVE_PRACTICES 10

/* The job handler (registered in jobs/registry.c). */
enum rf_status job_prompt_improvement(struct job_ctx *ctx, struct rf_err *err);

#endif
