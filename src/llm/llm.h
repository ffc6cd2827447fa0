/*
 * llm - the one interface to large language models.
 *
 * DESIGN
 * A request (system prompt, messages, model, max_tokens, temperature) goes in;
 * the reply text, a normalised stop reason, token usage, the provider's request
 * id, the HTTP status, the latency and the exact request JSON that was sent come
 * out. Three providers sit behind it:
 *   anthropic  POST {base}/v1/messages, streamed (anthropic.c)
 *   openai     POST {base}/chat/completions on any OpenAI-compatible server (openai.c)
 *   scripted   canned replies read in order from a JSON file; offline demo and
 *              tests only, and it says so (scripted.c)
 * Both HTTP providers always stream and share one transport (transport.c): a
 * libcurl multi loop that wakes every 100 ms to poll should_cancel and the idle
 * and total deadlines, and the retry policy of the official SDKs (retry.c):
 * up to max_retries more tries inside one call for connection failures and
 * HTTP 408/409/429/5xx/529, backoff 0.5 s * 2^n capped at 8 s minus up to 25 %
 * jitter, x-should-retry obeyed, retry-after-ms then retry-after honoured when
 * 0 < delay <= 60 s; a longer delay ends the call at once as RF_TRANSIENT with
 * response.retry_after_ms set so the job layer can reschedule. Nothing is
 * retried inside the call once a 200 started streaming: a stream cut off, an
 * error event in it, an idle or total timeout end the call as RF_TRANSIENT.
 *
 * ERRORS
 * llm_client_call returns RF_OK, RF_TRANSIENT (retrying later may work),
 * RF_PERMANENT (it will not), RF_CANCELLED (should_cancel said so) or
 * RF_INVALID (a bad request or config, before anything was sent), with one
 * line in struct rf_err. Partial text is never returned as a success.
 *
 * SECRETS
 * The API key lives only in the client's config and in the HTTP header list
 * handed to libcurl. It never reaches a log line, an rf_err message (provider
 * messages are scrubbed of it), or response.request_json.
 *
 * THREADING
 * Call llm_global_init() once before threads start. A struct llm_client belongs
 * to one thread (it owns its CURL handles and connection cache); create one per
 * worker. The scripted provider's reading position is shared by every client of
 * the process reading the same file, under a mutex (scripted.c).
 */
#ifndef REFOLD_LLM_H
#define REFOLD_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define LLM_DEFAULT_MODEL "claude-sonnet-4-5-20250929"
#define LLM_DEFAULT_ANTHROPIC_BASE_URL "https://api.anthropic.com"
#define LLM_DEFAULT_OPENAI_BASE_URL "https://api.openai.com/v1"
/* The longest model name a request may name, in bytes: 128 characters (the API's limit
 * on a job's model) of up to 4 UTF-8 bytes each. */
#define LLM_MODEL_MAX 512

/* Caller-owned, plain data (no pointers): copy it freely. */
struct llm_config {
    char provider[16];  /* "anthropic" (default) | "openai" | "scripted" */
    char api_key[512];  /* secret; "" sends no auth header (local OpenAI-compatible servers) */
    char base_url[512]; /* no trailing slash */
    char model[128];    /* default model, LLM_DEFAULT_MODEL */
    char scripted_path[1024];   /* the scripted provider's replies file */
    int64_t connect_timeout_ms; /* 5000 */
    int64_t idle_timeout_ms;    /* no byte received for this long aborts: 120000 */
    int64_t total_timeout_ms;   /* one call, retries and their waits included: 600000 */
    int max_retries;            /* retries inside one call: 2 */
    /* Tests only: the backoff base and cap (0 = the SDKs' 500 and 8000 ms). */
    int64_t retry_base_ms;
    int64_t retry_cap_ms;
};

/* Fill cfg with the defaults above (provider anthropic, no key). */
void llm_config_init(struct llm_config *cfg);
/* llm_config_init, then the environment: REFOLD_LLM_PROVIDER, REFOLD_MODEL,
 * ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, OPENAI_API_KEY, OPENAI_BASE_URL,
 * REFOLD_SCRIPTED_REPLIES, REFOLD_LLM_CONNECT_TIMEOUT_MS, REFOLD_LLM_IDLE_TIMEOUT_MS,
 * REFOLD_LLM_TIMEOUT_MS. Fails RF_INVALID naming the variable (an unknown
 * provider, a non-positive timeout, anthropic without a key, a key holding spaces or
 * control characters, a base URL not http(s)://, scripted without a file). */
enum rf_status llm_config_from_env(struct llm_config *cfg, struct rf_err *err);

enum llm_role { LLM_USER, LLM_ASSISTANT };

struct llm_message {
    enum llm_role role;
    const char *content; /* borrowed, UTF-8 */
};

/* Streaming progress: delta is the newest piece of the reply (borrowed for the
 * call, not NUL-terminated); output_tokens_so_far is the provider's count when it
 * sent one, else the number of text deltas received (providers stream about
 * one token per delta); the exact count is in the response. */
typedef void (*llm_text_fn)(void *ud, const char *delta, size_t len, int64_t output_tokens_so_far);
/* Polled at least every 100 ms while a call runs (transfer and retry waits);
 * non-zero aborts the call with RF_CANCELLED. Called on the calling thread. */
typedef int (*llm_cancel_fn)(void *ud);
/* Called before each retry inside a call: the attempt that failed (1-based),
 * the wait about to start, and why (borrowed). Lets a job log the retry. */
typedef void (*llm_retry_fn)(void *ud, int failed_attempt, int64_t delay_ms,
                             const struct rf_err *why);

/* Everything borrowed for the duration of llm_client_call. */
struct llm_request {
    const char *system;                 /* may be NULL */
    const struct llm_message *messages; /* at least one; the first should be LLM_USER */
    size_t n_messages;
    const char *model;   /* NULL: the config's model; at most LLM_MODEL_MAX bytes */
    int max_tokens;      /* > 0 */
    double temperature;  /* < 0: omitted (provider default) */
    llm_text_fn on_text; /* each may be NULL */
    llm_cancel_fn should_cancel;
    llm_retry_fn on_retry;
    void *ud; /* passed to the three callbacks */
};

/* Filled by llm_client_call on success and, as far as known, on failure (so a
 * failed call can be stored in llm_calls too). Release with llm_response_release. */
struct llm_response {
    char *text; /* owned; NULL unless the call succeeded */
    size_t text_len;
    char stop_reason[16];     /* "end_turn" | "max_tokens" | "other" ("" on failure) */
    char raw_stop_reason[64]; /* the provider's word: end_turn, stop_sequence, stop, length, ... */
    int64_t input_tokens;     /* -1 when the provider did not say (on failure: so far) */
    int64_t output_tokens;    /* -1 when the provider did not say (on failure: its final count) */
    char request_id[128];   /* request-id / x-request-id header of the last attempt ("" if none) */
    char provider[16];      /* "anthropic" | "openai" | "scripted" */
    char model[LLM_MODEL_MAX + 1]; /* the model asked for */
    bool scripted;          /* true for canned replies: never a real model's output */
    long http_status;       /* of the last attempt; 0 when no response arrived */
    int64_t latency_ms;     /* the whole call, retries and waits included */
    int attempts;           /* HTTP requests made (1 + retries); 1 for scripted */
    int64_t retry_after_ms; /* on RF_TRANSIENT: the provider's suggested wait, 0 when none */
    char *request_json;     /* owned; the exact body sent, no secrets (for llm_calls.request) */
};

void llm_response_init(struct llm_response *resp);
/* Free the owned strings; the struct may be reused after llm_response_init. */
void llm_response_release(struct llm_response *resp);

struct llm_client;

/* curl_global_init; call once before any thread starts. */
void llm_global_init(void);
/* Frees the scripted providers' shared state and libcurl's; after every client is freed. */
void llm_global_cleanup(void);

/* A client for one thread; cfg is copied. Fails RF_INVALID on a bad config
 * (the scripted file is read here: a missing or malformed file fails). */
enum rf_status llm_client_new(const struct llm_config *cfg, struct llm_client **out,
                              struct rf_err *err);
/* NULL does nothing. */
void llm_client_free(struct llm_client *c);
/* The provider's name, borrowed from the client. */
const char *llm_client_provider(const struct llm_client *c);
/* True for the scripted provider, whose replies are canned. */
bool llm_client_is_scripted(const struct llm_client *c);

/* One model call, with the retries described above. resp must have been
 * initialised; it is overwritten (released first). Returns RF_OK, RF_TRANSIENT,
 * RF_PERMANENT, RF_CANCELLED or RF_INVALID, with err filled on failure. */
enum rf_status llm_client_call(struct llm_client *c, const struct llm_request *req,
                               struct llm_response *resp, struct rf_err *err);

#endif
