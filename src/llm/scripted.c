/*
 * scripted - canned replies from a JSON file, for the offline demo and tests.
 *
 * File format (REFOLD_SCRIPTED_REPLIES; docs/llm.md has the details):
 *   {"loop": false,
 *    "replies": [
 *      {"text": "...", "stop_reason": "end_turn", "input_tokens": 812, "output_tokens": 95,
 *       "delay_ms": 0, "chunks": 4},
 *      {"error": {"kind": "transient", "message": "overloaded", "retry_after_ms": 0}}]}
 * Each call consumes the next reply, in file order; past the last one a call
 * fails RF_PERMANENT, unless "loop" is true. Missing token counts are estimated
 * at 4 bytes per token. The text goes through on_text in `chunks` pieces spread
 * over delay_ms, so progress and cancellation code runs as with a real model.
 * It never pretends: responses carry scripted = true, provider "scripted" and
 * request ids "scripted-N", and every log line says scripted=true.
 *
 * THREADING: one process-wide registry of loaded files, so every client (one
 * per worker thread) reading the same path shares one position. `lock` guards
 * the registry list and every source's `next`; a source's `replies` is
 * read-only once loaded and lives until llm_global_cleanup.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "llm/llm_internal.h"
#include "core/banned.h"

struct scripted_source {
    struct scripted_source *link; /* registry list */
    char *path;
    json_t *replies; /* array of validated objects; read-only */
    bool loop;
    size_t next; /* guarded by lock */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct scripted_source *sources; /* guarded by lock */

static enum rf_status check_reply(const json_t *r, size_t i, const char *path, struct rf_err *err)
{
    const json_t *error = json_object_get(r, "error");
    if (!json_is_object(r))
        return rf_fail(err, RF_INVALID, "%s: reply %zu is not an object", path, i);
    if (error) {
        const char *kind = json_string_value(json_object_get(error, "kind"));
        if (!json_is_object(error) || !json_is_string(json_object_get(error, "message")) || !kind ||
            (strcmp(kind, "transient") != 0 && strcmp(kind, "permanent") != 0))
            return rf_fail(err, RF_INVALID,
                           "%s: reply %zu: error needs kind (transient|permanent) and message",
                           path, i);
        const json_t *ra = json_object_get(error, "retry_after_ms");
        if (ra && (!json_is_integer(ra) || json_integer_value(ra) < 0))
            return rf_fail(err, RF_INVALID, "%s: reply %zu: retry_after_ms must be >= 0", path, i);
        return RF_OK;
    }
    if (!json_is_string(json_object_get(r, "text")))
        return rf_fail(err, RF_INVALID, "%s: reply %zu needs a text string (or an error)", path, i);
    const json_t *stop = json_object_get(r, "stop_reason");
    if (stop && !json_is_string(stop))
        return rf_fail(err, RF_INVALID, "%s: reply %zu: stop_reason must be a string", path, i);
    static const char *ints[] = {"input_tokens", "output_tokens", "delay_ms", "chunks"};
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
        const json_t *v = json_object_get(r, ints[k]);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
            return rf_fail(err, RF_INVALID, "%s: reply %zu: %s must be an integer >= 0", path, i,
                           ints[k]);
    }
    return RF_OK;
}

static enum rf_status load(const char *path, struct scripted_source **out, struct rf_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return rf_fail(err, RF_INVALID, "scripted replies %s: %s (line %d)", path, je.text,
                       je.line);
    const json_t *replies = json_object_get(root, "replies");
    const json_t *loop = json_object_get(root, "loop");
    enum rf_status rc = RF_OK;
    if (!json_is_array(replies) || json_array_size(replies) == 0) {
        rc = rf_fail(err, RF_INVALID, "scripted replies %s: needs a non-empty \"replies\" array",
                     path);
        goto out;
    }
    if (loop && !json_is_boolean(loop)) {
        rc = rf_fail(err, RF_INVALID, "scripted replies %s: loop must be a boolean", path);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(replies); i++)
        if ((rc = check_reply(json_array_get(replies, i), i, path, err)))
            goto out;
    struct scripted_source *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    s->replies = json_incref((json_t *)replies);
    s->loop = json_is_true(loop);
    *out = s;
out:
    json_decref(root);
    return rc;
}

enum rf_status scripted_open(const char *path, struct scripted_source **out, struct rf_err *err)
{
    if (!path || !*path)
        return rf_fail(err, RF_INVALID,
                       "the scripted provider needs a replies file "
                       "(REFOLD_SCRIPTED_REPLIES)");
    enum rf_status rc = RF_OK;
    pthread_mutex_lock(&lock);
    struct scripted_source *s = sources;
    while (s && strcmp(s->path, path) != 0)
        s = s->link;
    if (!s && (rc = load(path, &s, err)) == RF_OK) {
        s->link = sources;
        sources = s;
    }
    pthread_mutex_unlock(&lock);
    if (rc == RF_OK) {
        *out = s;
        log_info("llm scripted provider: canned replies, not a model",
                 "provider=scripted scripted=true replies=%zu", json_array_size(s->replies));
    }
    return rc;
}

void scripted_cleanup(void)
{
    pthread_mutex_lock(&lock);
    while (sources) {
        struct scripted_source *s = sources;
        sources = s->link;
        json_decref(s->replies);
        free(s->path);
        free(s);
    }
    pthread_mutex_unlock(&lock);
}

static json_t *request_body(const struct llm_request *req, const char *model)
{
    json_t *messages = json_array();
    for (size_t i = 0; i < req->n_messages; i++)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role",
                                        req->messages[i].role == LLM_USER ? "user" : "assistant",
                                        "content", req->messages[i].content));
    json_t *body = json_pack("{s:s, s:b, s:s, s:i}", "provider", "scripted", "scripted", 1, "model",
                             model, "max_tokens", req->max_tokens);
    if (req->system && *req->system)
        json_object_set_new(body, "system", json_string(req->system));
    json_object_set_new(body, "messages", messages);
    if (req->temperature >= 0)
        json_object_set_new(body, "temperature", json_real(req->temperature));
    return body;
}

static const char *normalise(const char *raw)
{
    if (strcmp(raw, "end_turn") == 0 || strcmp(raw, "stop") == 0 ||
        strcmp(raw, "stop_sequence") == 0)
        return "end_turn";
    if (strcmp(raw, "max_tokens") == 0 || strcmp(raw, "length") == 0)
        return "max_tokens";
    return "other";
}

static int64_t int_or(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

enum rf_status scripted_call(struct llm_client *c, const struct llm_request *req, const char *model,
                             struct llm_response *resp, struct rf_err *err)
{
    struct scripted_source *s = c->script;
    int64_t start = clock_mono_ms();
    json_t *reply = NULL;
    enum rf_status rc = RF_OK;
    struct llm_stream st;
    llm_stream_init(&st, req, NULL);

    json_t *body = request_body(req, model);
    resp->request_json = jx_dump(body);
    json_decref(body);
    resp->attempts = 1;

    size_t n = json_array_size(s->replies), index;
    pthread_mutex_lock(&lock);
    index = s->next;
    if (index >= n && s->loop)
        index = 0;
    if (index < n) {
        s->next = index + 1;
        reply = json_deep_copy(json_array_get(s->replies, index));
    }
    pthread_mutex_unlock(&lock);
    snprintf(resp->request_id, sizeof resp->request_id, "scripted-%zu", index + 1);
    if (!reply) {
        rc = rf_fail(err, RF_PERMANENT, "scripted: all %zu replies of %s were used", n, s->path);
        log_error("llm scripted reply",
                  "provider=scripted scripted=true reply=%zu of=%zu "
                  "outcome=exhausted",
                  index + 1, n);
        goto out;
    }

    const json_t *error = json_object_get(reply, "error");
    if (error) {
        const char *kind = json_string_value(json_object_get(error, "kind"));
        enum rf_status code = strcmp(kind, "transient") == 0 ? RF_TRANSIENT : RF_PERMANENT;
        if (code == RF_TRANSIENT)
            resp->retry_after_ms = int_or(error, "retry_after_ms", 0);
        rc = rf_fail(err, code, "scripted: %s",
                     json_string_value(json_object_get(error, "message")));
        log_warn("llm scripted reply",
                 "provider=scripted scripted=true reply=%zu of=%zu "
                 "outcome=fail kind=%s",
                 index + 1, n, kind);
        goto out;
    }

    const json_t *text = json_object_get(reply, "text");
    const char *t = json_string_value(text);
    size_t len = json_string_length(text);
    int64_t chunks = int_or(reply, "chunks", 4);
    if (chunks < 1)
        chunks = 1;
    int64_t delay = int_or(reply, "delay_ms", 0);
    size_t step = (len + (size_t)chunks - 1) / (size_t)chunks;
    if (step == 0)
        step = 1;
    for (size_t at = 0; at < len;) {
        size_t end = at + step < len ? at + step : len;
        while (end < len && ((unsigned char)t[end] & 0xC0) == 0x80)
            end++; /* never split a UTF-8 sequence */
        if ((rc = llm_wait(req, delay / chunks)) ||
            (rc = llm_stream_text(&st, t + at, end - at, err))) {
            if (rc == RF_CANCELLED)
                rf_fail(err, rc, "scripted: the call was cancelled");
            goto out;
        }
        at = end;
    }
    if (llm_cancelled(req)) {
        rc = rf_fail(err, RF_CANCELLED, "scripted: the call was cancelled");
        goto out;
    }

    const char *raw = json_string_value(json_object_get(reply, "stop_reason"));
    if (!raw)
        raw = "end_turn";
    snprintf(resp->raw_stop_reason, sizeof resp->raw_stop_reason, "%s", raw);
    snprintf(resp->stop_reason, sizeof resp->stop_reason, "%s", normalise(raw));
    resp->input_tokens = int_or(reply, "input_tokens", (int64_t)strlen(resp->request_json) / 4);
    resp->output_tokens = int_or(reply, "output_tokens", (int64_t)len / 4 + 1);
    resp->http_status = 200;
    resp->text = buf_detach(&st.text, &resp->text_len);
    log_info("llm scripted reply",
             "provider=scripted scripted=true reply=%zu of=%zu outcome=ok stop_reason=%s "
             "output_tokens=%lld",
             index + 1, n, resp->stop_reason, (long long)resp->output_tokens);
out:
    resp->latency_ms = clock_mono_ms() - start;
    json_decref(reply);
    llm_stream_release(&st);
    return rc;
}
