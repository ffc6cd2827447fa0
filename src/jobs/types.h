/*
 * types - the handlers of the registered job types, one file each (registry.c lists
 * them). Private to src/jobs/.
 */
#ifndef REFOLD_JOBS_TYPES_H
#define REFOLD_JOBS_TYPES_H

#include "jobs/jobs.h"

/* test_sleep.c: sleeps, fails or crashes on request; only with REFOLD_TEST_JOBS=1. */
enum rf_status job_test_sleep(struct job_ctx *ctx, struct rf_err *err);

#endif
