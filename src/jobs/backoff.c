/*
 * backoff - the retry delay of SPEC §5 as a pure function, so its bounds can be checked
 * over many samples (tests/unit/test_jobs.c).
 */
#include <math.h>

#include "jobs/jobs.h"
#include "core/banned.h"

int64_t job_backoff_ms(int attempt, int64_t base_ms, int64_t retry_after_ms, double unit)
{
    if (attempt < 1)
        attempt = 1;
    if (base_ms < 0)
        base_ms = 0;
    if (unit < 0.0 || unit >= 1.0)
        unit = 0.5;
    /* 2^(attempt-1) overflows nothing before the cap: stop doubling once past it. */
    double delay = (double)base_ms;
    for (int i = 1; i < attempt && delay < JOB_BACKOFF_CAP_MS * 2.0; i++)
        delay *= 2.0;
    delay *= 1.0 + (unit * 2.0 - 1.0) * 0.10;
    if (delay > JOB_BACKOFF_CAP_MS)
        delay = JOB_BACKOFF_CAP_MS;
    int64_t ms = (int64_t)llround(delay);
    if (retry_after_ms > JOB_RETRY_AFTER_MAX_MS)
        retry_after_ms = JOB_RETRY_AFTER_MAX_MS;
    return retry_after_ms > ms ? retry_after_ms : ms;
}
