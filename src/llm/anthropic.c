/*
 * anthropic - the Messages API wire format (POST {base}/v1/messages).
 *
 * The body always asks for "stream": true. The event stream is folded event by
 * event: message_start (id, input tokens), content_block_start/delta/stop (text
 * of text blocks; other block and delta types are skipped), message_delta
 * (stop_reason, cumulative usage), message_stop (the reply is complete), ping,
 * and error, which can arrive after the 200 (overloaded_error ...) and fails
 * the attempt as transient. Unknown event types are ignored, as Anthropic asks.
 * A stream that ends without message_stop was cut off: transient. Stateless
 * apart from the struct llm_stream it is handed.
 */
#include <stdio.h>
#include <string.h>

#include "llm/llm_internal.h"
#include "core/banned.h"

static json_t *build_body(const struct llm_request *req, const char *model)
{
    json_t *messages = json_array();
    for (size_t i = 0; i < req->n_messages; i++)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role",
                                        req->messages[i].role == LLM_USER ? "user" : "assistant",
                                        "content", req->messages[i].content));
    json_t *body = json_pack("{s:s, s:i}", "model", model, "max_tokens", req->max_tokens);
    if (req->system && *req->system)
        json_object_set_new(body, "system", json_string(req->system));
    json_object_set_new(body, "messages", messages);
    if (req->temperature >= 0)
        json_object_set_new(body, "temperature", json_real(req->temperature));
    json_object_set_new(body, "stream", json_true());
    return body;
}

static struct curl_slist *headers(struct curl_slist *h, const char *api_key)
{
    h = curl_slist_append(h, "anthropic-version: 2023-06-01");
    if (api_key && *api_key) {
        char line[600];
        snprintf(line, sizeof line, "x-api-key: %s", api_key);
        h = curl_slist_append(h, line);
        explicit_bzero(line, sizeof line);
    }
    return h;
}

static enum rf_status stream_error(const json_t *data, const char *secret, struct rf_err *err)
{
    char msg[200];
    llm_error_object_text(json_object_get(data, "error"), secret, msg, sizeof msg);
    return rf_fail(err, RF_TRANSIENT, "anthropic: error event in the stream: %s", msg);
}

static enum rf_status on_event(struct llm_stream *st, const struct sse_event *ev,
                               struct rf_err *err)
{
    static const char *known[] = {"message_start",
                                  "content_block_start",
                                  "content_block_delta",
                                  "content_block_stop",
                                  "message_delta",
                                  "message_stop",
                                  "error"};
    bool is_known = false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        is_known = is_known || strcmp(ev->type, known[i]) == 0;
    if (!is_known)
        return RF_OK; /* ping, and whatever new types the API adds */

    json_t *data = json_loadb(ev->data, ev->data_len, 0, NULL);
    enum rf_status rc = RF_OK;
    if (!json_is_object(data)) {
        rc = rf_fail(err, RF_TRANSIENT, "anthropic: malformed %s event in the stream", ev->type);
        goto out;
    }
    if (strcmp(ev->type, "error") == 0) {
        rc = stream_error(data, st->secret, err);
    } else if (strcmp(ev->type, "message_start") == 0) {
        const json_t *msg = json_object_get(data, "message");
        const char *id = json_string_value(json_object_get(msg, "id"));
        if (id)
            snprintf(st->message_id, sizeof st->message_id, "%s", id);
        const json_t *usage = json_object_get(msg, "usage");
        llm_json_tokens(usage, "input_tokens", &st->input_tokens);
        llm_json_tokens(usage, "output_tokens", &st->output_tokens);
    } else if (strcmp(ev->type, "content_block_start") == 0) {
        const json_t *block = json_object_get(data, "content_block");
        const char *type = json_string_value(json_object_get(block, "type"));
        const json_t *text = json_object_get(block, "text");
        if (type && strcmp(type, "text") == 0 && json_is_string(text))
            rc = llm_stream_text(st, json_string_value(text), json_string_length(text), err);
    } else if (strcmp(ev->type, "content_block_delta") == 0) {
        const json_t *delta = json_object_get(data, "delta");
        const char *type = json_string_value(json_object_get(delta, "type"));
        const json_t *text = json_object_get(delta, "text");
        if (type && strcmp(type, "text_delta") == 0 && json_is_string(text))
            rc = llm_stream_text(st, json_string_value(text), json_string_length(text), err);
    } else if (strcmp(ev->type, "message_delta") == 0) {
        llm_stream_stop(st, json_object_get(json_object_get(data, "delta"), "stop_reason"));
        const json_t *usage = json_object_get(data, "usage");
        llm_json_tokens(usage, "output_tokens", &st->output_tokens);
        llm_json_tokens(usage, "input_tokens", &st->input_tokens);
    } else if (strcmp(ev->type, "message_stop") == 0) {
        st->done = true;
    }
out:
    json_decref(data);
    return rc;
}

static enum rf_status on_body(struct llm_stream *st, const json_t *body, struct rf_err *err)
{
    const char *type = json_string_value(json_object_get(body, "type"));
    if (type && strcmp(type, "error") == 0)
        return stream_error(body, st->secret, err);
    const json_t *content = json_object_get(body, "content");
    if (!json_is_array(content))
        return rf_fail(err, RF_TRANSIENT, "anthropic: reply without a content array");
    size_t i;
    const json_t *block;
    json_array_foreach(content, i, block)
    {
        const char *btype = json_string_value(json_object_get(block, "type"));
        const json_t *text = json_object_get(block, "text");
        if (btype && strcmp(btype, "text") == 0 && json_is_string(text)) {
            enum rf_status rc =
                llm_stream_text(st, json_string_value(text), json_string_length(text), err);
            if (rc)
                return rc;
        }
    }
    const char *id = json_string_value(json_object_get(body, "id"));
    if (id)
        snprintf(st->message_id, sizeof st->message_id, "%s", id);
    llm_stream_stop(st, json_object_get(body, "stop_reason"));
    const json_t *usage = json_object_get(body, "usage");
    llm_json_tokens(usage, "input_tokens", &st->input_tokens);
    llm_json_tokens(usage, "output_tokens", &st->output_tokens);
    st->done = true;
    return RF_OK;
}

static enum rf_status on_end(struct llm_stream *st, struct rf_err *err)
{
    if (!st->done)
        return rf_fail(err, RF_TRANSIENT,
                       "anthropic: the stream ended before message_stop (cut off after %zu bytes "
                       "of text)",
                       st->text.len);
    return RF_OK;
}

static const char *normalise_stop(const char *raw)
{
    if (strcmp(raw, "end_turn") == 0 || strcmp(raw, "stop_sequence") == 0)
        return "end_turn";
    if (strcmp(raw, "max_tokens") == 0)
        return "max_tokens";
    return "other"; /* tool_use, pause_turn, refusal, none, ... */
}

const struct llm_provider llm_anthropic = {
    .name = "anthropic",
    .path = "/v1/messages",
    .request_id_header = "request-id",
    .build_body = build_body,
    .headers = headers,
    .on_event = on_event,
    .on_body = on_body,
    .on_end = on_end,
    .normalise_stop = normalise_stop,
};
