/*
 * llm_internal - what the pieces of src/llm share and nothing outside uses.
 *
 * llm.c owns the client and dispatches a call either to the HTTP transport
 * (transport.c) with a provider's wire format (anthropic.c, openai.c), or to
 * the scripted provider (scripted.c). A provider is a table of functions that
 * build the request body and headers and fold the reply (SSE events, or one
 * JSON body when a server ignores "stream": true) into a struct llm_stream.
 * Everything here runs on the calling thread of llm_client_call.
 */
#ifndef REFOLD_LLM_INTERNAL_H
#define REFOLD_LLM_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "llm/llm.h"
#include "llm/sse.h"

#define LLM_MAX_TEXT (8u << 20)  /* the reply text */
#define LLM_MAX_EVENT (8u << 20) /* one SSE line or event */
#define LLM_MAX_BODY (8u << 20)  /* a non-streamed body (JSON reply or error) */

struct scripted_source;

struct llm_client {
    struct llm_config cfg;
    const struct llm_provider *provider; /* NULL for scripted */
    CURLM *multi;                        /* HTTP providers: one transfer at a time */
    CURL *easy;
    struct scripted_source *script; /* scripted: shared, owned by scripted.c's registry */
};

/* The reply as it is being assembled, one per attempt. */
struct llm_stream {
    const struct llm_request *req; /* for on_text */
    struct buf text;
    char raw_stop[64];
    bool have_stop;        /* a stop/finish reason arrived */
    bool done;             /* message_stop / [DONE] arrived */
    bool refused;          /* the text is a refusal (OpenAI's refusal field), the stop "refusal" */
    int64_t input_tokens;  /* -1 unknown */
    int64_t output_tokens; /* -1 unknown */
    int64_t deltas;
    char message_id[128]; /* the body's id (msg_..., chatcmpl-...) */
    const char *secret;   /* the API key, to redact from provider text (borrowed) */
};

struct llm_provider {
    const char *name;
    const char *path;              /* appended to the base URL */
    const char *request_id_header; /* lower case */
    /* The request body; caller owns (json_decref). */
    json_t *(*build_body)(const struct llm_request *req, const char *model);
    /* Append the protocol and auth headers; api_key may be "". */
    struct curl_slist *(*headers)(struct curl_slist *h, const char *api_key);
    /* One event of a 2xx text/event-stream body. */
    enum rf_status (*on_event)(struct llm_stream *st, const struct sse_event *ev,
                               struct rf_err *err);
    /* A whole 2xx JSON body (a server that did not stream). */
    enum rf_status (*on_body)(struct llm_stream *st, const json_t *body, struct rf_err *err);
    /* The stream ended cleanly: RF_OK when the reply is complete. */
    enum rf_status (*on_end)(struct llm_stream *st, struct rf_err *err);
    /* Map the provider's stop word to end_turn | max_tokens | other. */
    const char *(*normalise_stop)(const char *raw);
};

extern const struct llm_provider llm_anthropic;
extern const struct llm_provider llm_openai;

/* llm.c helpers */
void llm_stream_init(struct llm_stream *st, const struct llm_request *req, const char *secret);
void llm_stream_release(struct llm_stream *st);
/* Append a piece of reply text and report it through on_text. */
enum rf_status llm_stream_text(struct llm_stream *st, const char *s, size_t n, struct rf_err *err);
/* Remember a stop reason (a JSON string; null and non-strings are ignored). */
void llm_stream_stop(struct llm_stream *st, const json_t *reason);
/* An integer field of obj, or keep *out. */
void llm_json_tokens(const json_t *obj, const char *key, int64_t *out);
/* The human message of an error body in either provider's shape (or a cleaned
 * excerpt of a non-JSON body) into out, with secret redacted before any cut. */
void llm_error_text(const char *body, size_t len, const char *secret, char *out, size_t n);
/* "type: message" of an {"error": {"type", "message"}} object (either provider)
 * into out, with secret redacted before any cut. */
void llm_error_object_text(const json_t *error, const char *secret, char *out, size_t n);
/* A copy of s[0..len) with every occurrence of secret (when >= 4 chars) replaced by
 * "[redacted]"; caller frees. */
char *llm_redact(const char *s, size_t len, const char *secret);
/* The same in place, for a NUL-terminated s in a buffer of n bytes (may cut the tail). */
void llm_scrub(char *s, size_t n, const char *secret);
/* Messages array and system prompt validation shared by every provider. */
enum rf_status llm_request_check(const struct llm_request *req, struct rf_err *err);
/* Sleep up to ms, waking every <= 50 ms to poll should_cancel; RF_CANCELLED if it fired. */
enum rf_status llm_wait(const struct llm_request *req, int64_t ms);
static inline bool llm_cancelled(const struct llm_request *req)
{
    return req->should_cancel && req->should_cancel(req->ud);
}

/* transport.c: one HTTP call with the retry policy. */
enum rf_status transport_call(struct llm_client *c, const struct llm_request *req,
                              const char *model, struct llm_response *resp, struct rf_err *err);

/* scripted.c */
enum rf_status scripted_open(const char *path, struct scripted_source **out, struct rf_err *err);
enum rf_status scripted_call(struct llm_client *c, const struct llm_request *req, const char *model,
                             struct llm_response *resp, struct rf_err *err);
void scripted_cleanup(void);

#endif
