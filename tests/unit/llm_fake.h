/*
 * llm_fake - the harness shared by the unit tests that run the LLM clients
 * (src/llm/) against tests/fakes/fake_llm.mjs: test_llm (what goes over the
 * wire and what the client makes of it) and test_llm_resilience (retries,
 * timeouts, cancellation).
 *
 * fake_start, as a cmocka group set-up, starts the fake (node) on an ephemeral
 * loopback port, once per binary; each test then scripts it (fake_script resets
 * it first), runs the production client on a struct fake_case (or with fake_run
 * on parts of its own), and checks what came back and what the fake received
 * (fake_requests: headers, body, arrival times). struct fake_call records what
 * the client's callbacks reported, so a test can check the delay the client
 * chose before a retry as well as when the fake saw the next attempt.
 *
 * Not a test binary (no test_ prefix): tests/CMakeLists.txt links it into the
 * unit tests. Control requests fail the running test through cmocka. The fake's
 * pid and port are process globals set by the group set-up; the helpers are
 * for the test thread only.
 */
#ifndef REFOLD_TESTS_LLM_FAKE_H
#define REFOLD_TESTS_LLM_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/status.h"
#include "llm/llm.h"

/* The API key fake_config sets; "4f1c9e" alone also counts as a leak. */
#define FAKE_KEY "sk-test-4f1c9e7a2b8d-SECRET"

/* cmocka group set-up and teardown: start the fake (and llm_global_init), stop it. */
int fake_start(void **state);
int fake_stop(void **state);

/* Forget everything, then queue these entries (a JSON array, fake_llm.mjs's script). */
void fake_script(const char *entries);
/* The requests the fake received since the last reset; caller frees (json_decref). */
json_t *fake_requests(void);
/* How many requests the fake received since the last reset. */
size_t fake_request_count(void);
/* Of the i-th request in reqs: when its head arrived (ms since the epoch, fractional), and
 * a header by its lower-case name (borrowed from reqs; NULL if absent). */
double fake_arrival(const json_t *reqs, size_t i);
const char *fake_req_header(const json_t *reqs, size_t i, const char *name);

/* What one call's callbacks saw, and when it is to be cancelled. */
struct fake_call {
    struct buf text; /* everything on_text delivered */
    int text_calls;
    int64_t last_tokens;
    int cancel_after_calls; /* cancel once on_text ran this often (0: never) */
    int64_t cancel_at;      /* monotonic ms at which to cancel (0: never) */
    int64_t cancelled_at;   /* when should_cancel first said yes */
    int retries;
    int64_t delays[8];
    int64_t retry_times[8];
    char why[8][256];
};

void fake_call_init(struct fake_call *c);
void fake_call_release(struct fake_call *c);

/* A config for provider ("anthropic" or "openai") pointed at the fake, key FAKE_KEY,
 * model "test-model", the other fields llm_config_init's. */
void fake_config(struct llm_config *cfg, const char *provider);

/* One call (a fixed three-message conversation with a system prompt, max_tokens 64,
 * temperature 0.5) with a fresh client, so no connection is reused across tests; c
 * records the callbacks. resp is initialised here; the caller releases it. */
enum rf_status fake_run(const struct llm_config *cfg, struct fake_call *c,
                        struct llm_response *resp, struct rf_err *err);

/* One call's state, caller-owned (on the stack): its config (edit it before
 * fake_case_run), what its callbacks saw (set c.cancel_* before the run too), the
 * response and the error. */
struct fake_case {
    struct llm_config cfg;
    struct fake_call c;
    struct llm_response resp;
    struct rf_err err;
};

/* fake_config(provider) and fake_call_init, with resp initialised and err cleared, so
 * fake_case_release is safe on a case that never ran. */
void fake_case_init(struct fake_case *t, const char *provider);
/* fake_run on t's fields; resp must hold nothing (fresh from fake_case_init or released). */
enum rf_status fake_case_run(struct fake_case *t);
/* Frees what resp and c hold; t may be initialised again afterwards. */
void fake_case_release(struct fake_case *t);

#endif
