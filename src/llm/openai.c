/*
 * openai - the chat completions wire format (POST {base}/chat/completions),
 * spoken by OpenAI and by OpenAI-compatible servers (vLLM, llama.cpp, Ollama).
 *
 * The body asks for "stream": true with stream_options.include_usage, so the
 * usage arrives in a last chunk whose choices array is empty. Chunks are
 * `data:` lines of JSON; choices[0].delta.content carries the text,
 * choices[0].finish_reason the stop ("stop", "length", ...), and the stream
 * ends with `data: [DONE]`. A model that declines sends its words in
 * delta.refusal (message.refusal unstreamed) and finishes with "stop": that
 * text is the reply text and the stop is reported as "refusal", as Anthropic's
 * stop_reason says it, so the layers above treat both providers' refusals
 * alike. An {"error": {...}} object inside the stream fails the attempt as
 * transient. A stream that ends with neither [DONE] nor a
 * finish_reason was cut off. The system prompt travels as the first message.
 */
#include <stdio.h>
#include <string.h>

#include "llm/llm_internal.h"
#include "core/banned.h"

static json_t *build_body(const struct llm_request *req, const char *model)
{
    json_t *messages = json_array();
    if (req->system && *req->system)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", req->system));
    for (size_t i = 0; i < req->n_messages; i++)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role",
                                        req->messages[i].role == LLM_USER ? "user" : "assistant",
                                        "content", req->messages[i].content));
    json_t *body = json_pack("{s:s}", "model", model);
    json_object_set_new(body, "messages", messages);
    /* max_tokens, not max_completion_tokens: what every compatible server accepts. */
    json_object_set_new(body, "max_tokens", json_integer(req->max_tokens));
    if (req->temperature >= 0)
        json_object_set_new(body, "temperature", json_real(req->temperature));
    json_object_set_new(body, "stream", json_true());
    json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    return body;
}

static struct curl_slist *headers(struct curl_slist *h, const char *api_key)
{
    if (api_key && *api_key) {
        char line[600];
        snprintf(line, sizeof line, "Authorization: Bearer %s", api_key);
        h = curl_slist_append(h, line);
        explicit_bzero(line, sizeof line);
    }
    return h;
}

static void take_usage(struct llm_stream *st, const json_t *usage)
{
    llm_json_tokens(usage, "prompt_tokens", &st->input_tokens);
    llm_json_tokens(usage, "completion_tokens", &st->output_tokens);
}

static enum rf_status on_chunk(struct llm_stream *st, const json_t *chunk, bool streamed,
                               struct rf_err *err)
{
    const json_t *error = json_object_get(chunk, "error");
    if (error && !json_is_null(error)) {
        char msg[200];
        llm_error_object_text(error, st->secret, msg, sizeof msg);
        return rf_fail(err, RF_TRANSIENT, "openai: error %s: %s",
                       streamed ? "object in the stream" : "in the reply", msg);
    }
    const char *id = json_string_value(json_object_get(chunk, "id"));
    if (id && !st->message_id[0])
        snprintf(st->message_id, sizeof st->message_id, "%s", id);
    const json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (choice) {
        const json_t *part = json_object_get(choice, streamed ? "delta" : "message");
        const json_t *content = json_object_get(part, "content");
        if (json_is_string(content)) {
            enum rf_status rc =
                llm_stream_text(st, json_string_value(content), json_string_length(content), err);
            if (rc)
                return rc;
        }
        const json_t *refusal = json_object_get(part, "refusal");
        if (json_is_string(refusal) && json_string_length(refusal) > 0) {
            st->refused = true;
            enum rf_status rc =
                llm_stream_text(st, json_string_value(refusal), json_string_length(refusal), err);
            if (rc)
                return rc;
        }
        llm_stream_stop(st, json_object_get(choice, "finish_reason"));
        if (st->refused && st->have_stop)
            snprintf(st->raw_stop, sizeof st->raw_stop, "refusal");
    }
    take_usage(st, json_object_get(chunk, "usage"));
    return RF_OK;
}

static enum rf_status on_event(struct llm_stream *st, const struct sse_event *ev,
                               struct rf_err *err)
{
    if (strcmp(ev->type, "message") != 0 && strcmp(ev->type, "error") != 0)
        return RF_OK; /* named events are not part of this protocol */
    if (ev->data_len >= 6 && strncmp(ev->data, "[DONE]", 6) == 0) {
        st->done = true;
        return RF_OK;
    }
    json_t *chunk = json_loadb(ev->data, ev->data_len, 0, NULL);
    enum rf_status rc;
    if (!json_is_object(chunk))
        rc = rf_fail(err, RF_TRANSIENT, "openai: malformed chunk in the stream");
    else if (strcmp(ev->type, "error") == 0 && !json_object_get(chunk, "error"))
        rc = rf_fail(err, RF_TRANSIENT, "openai: error event in the stream");
    else
        rc = on_chunk(st, chunk, true, err);
    json_decref(chunk);
    return rc;
}

static enum rf_status on_body(struct llm_stream *st, const json_t *body, struct rf_err *err)
{
    if (!json_is_array(json_object_get(body, "choices")) && !json_object_get(body, "error"))
        return rf_fail(err, RF_TRANSIENT, "openai: reply without a choices array");
    enum rf_status rc = on_chunk(st, body, false, err);
    if (rc == RF_OK)
        st->done = true;
    return rc;
}

static enum rf_status on_end(struct llm_stream *st, struct rf_err *err)
{
    /* Some compatible servers omit [DONE]; a finish_reason still marks the end. */
    if (!st->done && !st->have_stop)
        return rf_fail(err, RF_TRANSIENT,
                       "openai: the stream ended without [DONE] or a finish_reason (cut off after "
                       "%zu bytes of text)",
                       st->text.len);
    if (st->refused && !st->have_stop) { /* [DONE] without a finish_reason */
        snprintf(st->raw_stop, sizeof st->raw_stop, "refusal");
        st->have_stop = true;
    }
    return RF_OK;
}

static const char *normalise_stop(const char *raw)
{
    if (strcmp(raw, "stop") == 0)
        return "end_turn";
    if (strcmp(raw, "length") == 0)
        return "max_tokens";
    return "other"; /* refusal, content_filter, tool_calls, function_call, ... */
}

const struct llm_provider llm_openai = {
    .name = "openai",
    .path = "/chat/completions",
    .request_id_header = "x-request-id",
    .build_body = build_body,
    .headers = headers,
    .on_event = on_event,
    .on_body = on_body,
    .on_end = on_end,
    .normalise_stop = normalise_stop,
};
