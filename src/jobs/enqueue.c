/*
 * enqueue - jobs_enqueue: validate a job spec, persist it as a queued job (with its
 * Idempotency-Key fingerprint) and wake this process's workers. See jobs.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "jobs/jobs.h"
#include "jobs/pool.h"
#include "core/banned.h"

/* An Idempotency-Key: 1..IDEMPOTENCY_KEY_MAX printable ASCII characters. */
static enum rf_status check_key(const char *key, struct rf_err *err)
{
    size_t n = strlen(key);
    bool ok = n > 0 && n <= IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!ok)
        return rf_fail_field(err, RF_INVALID, "Idempotency-Key",
                             "Idempotency-Key must be 1 to %d printable ASCII characters",
                             IDEMPOTENCY_KEY_MAX);
    return RF_OK;
}

/* What the key stands for: the type and the normalised params, key order aside. */
static void fingerprint_of(const struct job_spec *spec, char out[SHA256_HEX_LEN + 1])
{
    char *sorted = json_dumps(spec->params, JSON_COMPACT | JSON_SORT_KEYS);
    char *canon = xasprintf("%s\n%s", spec->type, sorted);
    crypto_sha256_hex(canon, strlen(canon), out);
    free(sorted);
    free(canon);
}

enum rf_status jobs_find_repeat(struct store *st, const char *ws, const struct job_spec *spec,
                                json_t **job, struct rf_err *err)
{
    char fingerprint[SHA256_HEX_LEN + 1];
    *job = NULL;
    if (!spec->idempotency_key || !json_is_object(spec->params))
        return RF_OK;
    enum rf_status rc = check_key(spec->idempotency_key, err);
    if (rc)
        return rc;
    fingerprint_of(spec, fingerprint);
    return store_job_by_key(st, ws, spec->idempotency_key, fingerprint, job, err);
}

enum rf_status jobs_enqueue(struct store *st, struct worker_pool *pool, const char *ws,
                            const struct job_spec *spec, json_t **job, bool *created,
                            struct rf_err *err)
{
    char *params = NULL;
    char fingerprint[SHA256_HEX_LEN + 1] = "";
    enum rf_status rc = RF_OK;
    *job = NULL;
    *created = false;
    if (!job_type_find(spec->type)) {
        rc = rf_fail_field(err, RF_INVALID, "type", "unknown job type \"%s\"",
                           spec->type ? spec->type : "");
        goto out;
    }
    if (!json_is_object(spec->params)) {
        rc = rf_fail_field(err, RF_INVALID, "params", "job params must be a JSON object");
        goto out;
    }
    int max_attempts = spec->max_attempts ? spec->max_attempts : JOB_DEFAULT_MAX_ATTEMPTS;
    if (max_attempts < 1 || max_attempts > JOB_MAX_ATTEMPTS_LIMIT) {
        rc = rf_fail_field(err, RF_INVALID, "max_attempts", "max_attempts must be 1 to %d",
                           JOB_MAX_ATTEMPTS_LIMIT);
        goto out;
    }
    if (spec->idempotency_key) {
        rc = check_key(spec->idempotency_key, err);
        if (rc)
            goto out;
        fingerprint_of(spec, fingerprint);
    }
    params = jx_dump(spec->params);
    struct job_new in = {.type = spec->type,
                         .params = params,
                         .agent_id = spec->agent_id,
                         .max_attempts = max_attempts,
                         .run_at = clock_now_ms() + (spec->delay_ms > 0 ? spec->delay_ms : 0),
                         .idempotency_key = spec->idempotency_key,
                         .fingerprint = spec->idempotency_key ? fingerprint : NULL};
    rc = store_job_create(st, ws, &in, job, created, err);
    if (rc == RF_OK && *created)
        pool_wake(pool);
out:
    free(params);
    return rc;
}
