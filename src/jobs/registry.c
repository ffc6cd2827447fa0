/*
 * registry - the job types this binary can run. Adding a type is one row in the table
 * below and one file with its handler (see jobs.h for the handler contract).
 *
 * The table is static; the only state is whether test-only types are visible, set once
 * before threads start (REFOLD_TEST_JOBS=1), so lookups are thread-safe.
 */
#include <stdbool.h>
#include <string.h>

#include "jobs/jobs.h"
#include "improve/improve.h"
#include "jobs/types.h"
#include "core/banned.h"

static const struct job_type types[] = {
    {IMPROVE_JOB_TYPE, job_prompt_improvement, false},
    {"test_sleep", job_test_sleep, true},
};

static bool test_enabled;

void job_types_enable_test(bool on)
{
    test_enabled = on;
}

bool job_types_test_enabled(void)
{
    return test_enabled;
}

const struct job_type *job_type_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0)
            return types[i].test_only && !test_enabled ? NULL : &types[i];
    return NULL;
}

size_t job_type_names(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0] && n + 1 < max; i++)
        if (!types[i].test_only || test_enabled)
            out[n++] = types[i].name;
    if (max)
        out[n] = NULL;
    return n;
}
