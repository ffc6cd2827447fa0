/*
 * test_llm - the LLM clients (src/llm/) against tests/fakes/fake_llm.mjs: what
 * each provider's client puts on the wire and what it makes of what comes back.
 *
 * Replies of both providers, streamed (CRLF, unknown events, writes that cut
 * lines and UTF-8) and not, with the headers and body the fake received;
 * max_tokens; an error inside a 200 stream and streams cut off (RF_TRANSIENT,
 * never partial text); the API key in no log line, error or stored request;
 * request validation; the configuration from the environment; and the scripted
 * provider, across threads. Retries, timeouts and cancellation are
 * test_llm_resilience's; the harness (the fake, scripting it, one call of the
 * client) is llm_fake.h.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "llm_fake.h"

#include "core/buf.h"
#include "core/log.h"
#include "llm/llm.h"
#include "core/banned.h"

/* ---- replies ------------------------------------------------------------- */

static void test_llm_anthropic_stream(void **state)
{
    (void)state;
    /* CRLF lines, an unknown event type, writes of 3 bytes (cutting lines and UTF-8). */
    fake_script("[{\"text\": \"Grün \xE2\x80\x94 a colour \xF0\x9F\x8C\xBF, said the fake.\", "
                "\"chunk_size\": 5, \"line_ending\": \"\\r\\n\", \"unknown_event\": true, "
                "\"write_size\": 3, \"usage\": {\"input_tokens\": 42, \"output_tokens\": 9}}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    assert_int_equal(fake_case_run(&t), RF_OK);
    const char *want = "Grün \xE2\x80\x94 a colour \xF0\x9F\x8C\xBF, said the fake.";
    assert_string_equal(t.resp.text, want);
    assert_int_equal(t.resp.text_len, strlen(want));
    assert_string_equal(buf_str(&t.c.text), want);
    assert_true(t.c.text_calls >= 5);
    assert_string_equal(t.resp.stop_reason, "end_turn");
    assert_string_equal(t.resp.raw_stop_reason, "end_turn");
    assert_int_equal(t.resp.input_tokens, 42);
    assert_int_equal(t.resp.output_tokens, 9);
    assert_string_equal(t.resp.request_id, "req_fake_1");
    assert_int_equal(t.resp.http_status, 200);
    assert_int_equal(t.resp.attempts, 1);
    assert_string_equal(t.resp.provider, "anthropic");
    assert_string_equal(t.resp.model, "test-model");
    assert_false(t.resp.scripted);
    assert_true(t.resp.latency_ms >= 0);

    json_t *reqs = fake_requests();
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *r = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/messages");
    assert_string_equal(fake_req_header(reqs, 0, "x-api-key"), FAKE_KEY);
    assert_string_equal(fake_req_header(reqs, 0, "anthropic-version"), "2023-06-01");
    assert_string_equal(fake_req_header(reqs, 0, "content-type"), "application/json");
    assert_null(fake_req_header(reqs, 0, "authorization"));
    /* What was stored is exactly what was sent. */
    assert_string_equal(json_string_value(json_object_get(r, "raw_body")), t.resp.request_json);
    const json_t *body = json_object_get(r, "body");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_string_equal(json_string_value(json_object_get(body, "model")), "test-model");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 64);
    assert_string_equal(json_string_value(json_object_get(body, "system")),
                        "You answer in one word.");
    assert_int_equal(json_array_size(json_object_get(body, "messages")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(body, "messages"), 1), "role")),
                        "assistant");
    assert_true(json_real_value(json_object_get(body, "temperature")) == 0.5);
    json_decref(reqs);
    fake_case_release(&t);
}

static void test_llm_openai_stream(void **state)
{
    (void)state;
    fake_script("[{\"text\": \"Vert, said the OpenAI-shaped fake.\", \"chunk_size\": 4, "
                "\"unknown_event\": true, \"write_size\": 7, "
                "\"usage\": {\"input_tokens\": 31, \"output_tokens\": 8}}]");
    struct fake_case t;
    fake_case_init(&t, "openai");
    assert_int_equal(fake_case_run(&t), RF_OK);
    assert_string_equal(t.resp.text, "Vert, said the OpenAI-shaped fake.");
    assert_string_equal(buf_str(&t.c.text), t.resp.text);
    assert_true(t.c.text_calls >= 8);
    assert_string_equal(t.resp.stop_reason, "end_turn");
    assert_string_equal(t.resp.raw_stop_reason, "stop");
    assert_int_equal(t.resp.input_tokens, 31);
    assert_int_equal(t.resp.output_tokens, 8);
    assert_string_equal(t.resp.request_id, "req_fake_1");
    assert_int_equal(t.resp.attempts, 1);

    json_t *reqs = fake_requests();
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *r = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/chat/completions");
    assert_string_equal(fake_req_header(reqs, 0, "authorization"), "Bearer " FAKE_KEY);
    assert_null(fake_req_header(reqs, 0, "x-api-key"));
    assert_string_equal(json_string_value(json_object_get(r, "raw_body")), t.resp.request_json);
    const json_t *body = json_object_get(r, "body");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    const json_t *first = json_array_get(json_object_get(body, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "role")), "system");
    assert_string_equal(json_string_value(json_object_get(first, "content")),
                        "You answer in one word.");
    assert_int_equal(json_array_size(json_object_get(body, "messages")), 4);
    json_decref(reqs);
    fake_case_release(&t);
}

/* A server that ignores "stream": true and answers one JSON body. */
static void test_llm_non_streamed_reply(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    for (int i = 0; i < 2; i++) {
        fake_script("[{\"stream\": false, \"text\": \"Plain JSON reply.\", "
                    "\"usage\": {\"input_tokens\": 5, \"output_tokens\": 4}}]");
        struct fake_case t;
        fake_case_init(&t, providers[i]);
        assert_int_equal(fake_case_run(&t), RF_OK);
        assert_string_equal(t.resp.text, "Plain JSON reply.");
        assert_string_equal(buf_str(&t.c.text), "Plain JSON reply.");
        assert_string_equal(t.resp.stop_reason, "end_turn");
        assert_int_equal(t.resp.input_tokens, 5);
        assert_int_equal(t.resp.output_tokens, 4);
        fake_case_release(&t);
    }
}

static void test_llm_max_tokens_both_providers(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    const char *raw[] = {"max_tokens", "length"};
    for (int i = 0; i < 2; i++) {
        fake_script("[{\"text\": \"This reply was cut sh\", \"stop_reason\": \"max_tokens\"}]");
        struct fake_case t;
        fake_case_init(&t, providers[i]);
        assert_int_equal(fake_case_run(&t), RF_OK);
        assert_string_equal(t.resp.text, "This reply was cut sh");
        assert_string_equal(t.resp.stop_reason, "max_tokens");
        assert_string_equal(t.resp.raw_stop_reason, raw[i]);
        fake_case_release(&t);
    }
}

/* A model that declines: OpenAI puts its words in delta.refusal (message.refusal unstreamed)
 * and finishes with "stop"; Anthropic sends text and stop_reason "refusal". Both come back
 * as the reply text with the stop "other" (raw "refusal"), not as an empty, finished reply. */
static void test_llm_refusal_both_providers(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai", "anthropic", "openai"};
    const char *no = "I'm sorry, but I can't help with that.";
    for (int i = 0; i < 4; i++) {
        char script[256];
        snprintf(script, sizeof script, "[{\"refusal\": \"%s\", \"chunk_size\": 5%s}]", no,
                 i < 2 ? "" : ", \"stream\": false");
        fake_script(script);
        struct fake_case t;
        fake_case_init(&t, providers[i]);
        assert_int_equal(fake_case_run(&t), RF_OK);
        assert_string_equal(t.resp.text, no);
        assert_string_equal(buf_str(&t.c.text), no);
        assert_string_equal(t.resp.stop_reason, "other");
        assert_string_equal(t.resp.raw_stop_reason, "refusal");
        fake_case_release(&t);
    }
}

/* A base URL that already ends in /v1 posts to /v1/v1/messages: the 404 says where the
 * request went (a provider may answer just "Not Found"), without the URL's credentials. */
static void test_llm_404_names_the_url(void **state)
{
    (void)state;
    fake_script("[]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    char base[64]; /* 127.0.0.1:PORT */
    snprintf(base, sizeof base, "%.60s", t.cfg.base_url + strlen("http://"));
    snprintf(t.cfg.base_url, sizeof t.cfg.base_url, "http://user:pw-4f1c9e@%s/v1", base);
    assert_int_equal(fake_case_run(&t), RF_PERMANENT);
    assert_int_equal(t.resp.http_status, 404);
    char want[128];
    snprintf(want, sizeof want, "(POST http://%s/v1/v1/messages)", base);
    if (!strstr(t.err.message, want))
        fail_msg("'%s' does not hold '%s'", t.err.message, want);
    assert_null(strstr(t.err.message, "4f1c9e"));
    fake_case_release(&t);
}

/* A 3xx (http:// for https://, a proxy that redirects a path missing /v1) is not followed:
 * the error names the status and where it pointed, resolved, without credentials, query or
 * fragment, and says to make the base URL the final one. Not retried. */
static void test_llm_redirect_not_followed(void **state)
{
    (void)state;
    struct {
        const char *provider;
        long status;
        const char *location;
        const char *want; /* around "HOST", the fake's host:port */
    } cases[] = {
        {"openai", 301,
         "https://user:pw-4f1c9e@api.example.com/v1/chat/completions?key=4f1c9e#t=4f1c9e",
         "HTTP 301 redirect to https://api.example.com/v1/chat/completions: refold does not "
         "follow redirects; make the base URL the final one (POST http://HOST/v1/chat/completions)"},
        {"anthropic", 307, "/proxy/v1/messages?sig=4f1c9e",
         "HTTP 307 redirect to http://HOST/proxy/v1/messages: refold does not follow redirects"},
        {"anthropic", 302, NULL, "HTTP 302 redirect to (no usable Location header)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char script[512];
        if (cases[i].location)
            snprintf(script, sizeof script,
                     "[{\"status\": %ld, \"headers\": {\"location\": \"%s\"}}]",
                     cases[i].status, cases[i].location);
        else
            snprintf(script, sizeof script, "[{\"status\": %ld}]", cases[i].status);
        fake_script(script);
        struct fake_case t;
        fake_case_init(&t, cases[i].provider);
        char host[64]; /* 127.0.0.1:PORT */
        const char *h = t.cfg.base_url + strlen("http://");
        snprintf(host, sizeof host, "%.*s", (int)strcspn(h, "/"), h);
        assert_int_equal(fake_case_run(&t), RF_PERMANENT);
        assert_int_equal(t.resp.http_status, cases[i].status);
        assert_int_equal(t.resp.attempts, 1);
        assert_int_equal(fake_request_count(), 1);
        char want[512];
        const char *at = strstr(cases[i].want, "HOST");
        if (at)
            snprintf(want, sizeof want, "%.*s%s%s", (int)(at - cases[i].want), cases[i].want,
                     host, at + 4);
        else
            snprintf(want, sizeof want, "%s", cases[i].want);
        if (!strstr(t.err.message, want))
            fail_msg("'%s' does not hold '%s'", t.err.message, want);
        assert_null(strstr(t.err.message, "4f1c9e"));
        fake_case_release(&t);
    }
}

/* ---- failures inside a 200 stream ------------------------------------------ */

static void test_llm_anthropic_overloaded_mid_stream(void **state)
{
    (void)state;
    fake_script("[{\"text\": \"This partial text must never be returned.\", \"chunk_size\": 4, "
                "\"error_after_chunks\": 3, \"usage\": {\"input_tokens\": 321, "
                "\"output_tokens\": 50}}, {\"text\": \"not reached\"}]");
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    assert_null(t.resp.text);
    assert_int_equal(t.resp.text_len, 0);
    assert_string_equal(t.resp.stop_reason, "");
    assert_int_equal(t.c.text_calls, 3); /* progress saw the deltas before the error */
    /* The prompt was billed: its count (message_start) is kept; the output's final count
     * never came (message_start's is a placeholder). */
    assert_int_equal(t.resp.input_tokens, 321);
    assert_int_equal(t.resp.output_tokens, -1);
    assert_int_equal(t.resp.attempts, 1);
    assert_int_equal(t.resp.http_status, 200);
    assert_non_null(strstr(t.err.message, "overloaded_error"));
    assert_int_equal(fake_request_count(), 1);
    fake_case_release(&t);
}

static void test_llm_openai_error_in_stream(void **state)
{
    (void)state;
    fake_script("[{\"text\": \"Partial then an error object.\", \"chunk_size\": 4, "
                "\"error_after_chunks\": 2, \"stream_error\": {\"type\": \"server_error\", "
                "\"message\": \"The model crashed\"}}]");
    struct fake_case t;
    fake_case_init(&t, "openai");
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    assert_null(t.resp.text);
    assert_int_equal(t.resp.attempts, 1);
    assert_non_null(strstr(t.err.message, "server_error: The model crashed"));
    fake_case_release(&t);
}

static void test_llm_stream_cut_off(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai", "anthropic", "openai"};
    const char *entries[] = {
        "[{\"text\": \"ends without message_stop\", \"chunk_size\": 3, \"end_after_chunks\": 2}]",
        "[{\"text\": \"ends without DONE\", \"chunk_size\": 3, \"end_after_chunks\": 2}]",
        "[{\"text\": \"reset mid-stream\", \"chunk_size\": 3, \"reset_after_bytes\": 600}]",
        "[{\"text\": \"closed mid-stream\", \"chunk_size\": 3, \"close_after_bytes\": 500}]",
    };
    for (int i = 0; i < 4; i++) {
        fake_script(entries[i]);
        struct fake_case t;
        fake_case_init(&t, providers[i]);
        assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
        assert_null(t.resp.text);
        assert_int_equal(t.resp.attempts, 1); /* a started stream is not retried in the call */
        if (!strstr(t.err.message, "cut off"))
            fail_msg("case %d: unexpected message '%s'", i, t.err.message);
        fake_case_release(&t);
    }
}

/* A connection broken after message_stop / [DONE] does not lose a complete reply. */
static void test_llm_reset_after_complete_stream(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    for (int i = 0; i < 2; i++) {
        fake_script("[{\"text\": \"complete before the reset\", \"reset_at_end\": true}]");
        struct fake_case t;
        fake_case_init(&t, providers[i]);
        enum rf_status rc = fake_case_run(&t);
        if (rc != RF_OK)
            fail_msg("%s: %s", providers[i], t.err.message);
        assert_string_equal(t.resp.text, "complete before the reset");
        assert_int_equal(t.resp.attempts, 1);
        fake_case_release(&t);
    }
}

/* ---- secrets --------------------------------------------------------------- */

struct capture {
    int saved;
    int fd;
    char path[64];
};

/* The capture in progress: a failing assertion longjmps past capture_end, so the
 * test's teardown (restore_stderr) ends it and replays what it held. */
static struct capture *active_capture;

static void capture_start(struct capture *cap)
{
    active_capture = cap;
    snprintf(cap->path, sizeof cap->path, "/tmp/test_llm_stderr_XXXXXX");
    cap->fd = mkstemp(cap->path);
    assert_true(cap->fd >= 0);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    dup2(cap->fd, STDERR_FILENO);
}

static char *capture_end(struct capture *cap)
{
    active_capture = NULL;
    fflush(stderr);
    dup2(cap->saved, STDERR_FILENO);
    close(cap->saved);
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    char chunk[4096];
    ssize_t n;
    lseek(cap->fd, 0, SEEK_SET);
    while ((n = read(cap->fd, chunk, sizeof chunk)) > 0)
        buf_append(&b, chunk, (size_t)n);
    close(cap->fd);
    unlink(cap->path);
    return buf_detach(&b, NULL);
}

static int restore_stderr(void **state)
{
    (void)state;
    if (active_capture) {
        char *held = capture_end(active_capture);
        fprintf(stderr, "--- stderr captured before the failure ---\n%s", held);
        free(held);
    }
    log_set_level("info");
    return 0;
}

static void test_llm_api_key_never_leaks(void **state)
{
    (void)state;
    log_set_level("debug");
    struct capture cap;
    capture_start(&cap);
    struct buf errors, stored;
    buf_init(&errors, BUF_UNLIMITED);
    buf_init(&stored, BUF_UNLIMITED);
    const char *providers[] = {"anthropic", "openai"};
    for (int p = 0; p < 2; p++) {
        /* The server echoes the key in its error message; retries log each attempt. */
        fake_script("[{\"status\": 401, \"echo_auth\": true, \"error\": {\"message\": \""
                    "A long message so that the echoed key straddles the point where the client "
                    "cuts provider text to fit its error line, which must not let half a key out"
                    "\"}}, "
                    "{\"status\": 529, \"echo_auth\": true, \"times\": 3}, "
                    "{\"text\": \"fine\"}, {\"reset_after_bytes\": 0, \"times\": 3}]");
        for (int i = 0; i < 4; i++) {
            struct fake_case t;
            fake_case_init(&t, providers[p]);
            t.cfg.retry_base_ms = 10;
            enum rf_status rc = fake_case_run(&t);
            assert_int_equal(rc, i == 2 ? RF_OK : i == 0 ? RF_PERMANENT : RF_TRANSIENT);
            if (rc) {
                buf_printf(&errors, "%s\n", t.err.message);
                for (int k = 0; k < t.c.retries && k < 8; k++)
                    buf_printf(&errors, "%s\n", t.c.why[k]);
            }
            buf_printf(&stored, "%s\n", t.resp.request_json);
            fake_case_release(&t);
        }
        /* The server did receive the key: the test would see a leak. */
        json_t *reqs = fake_requests();
        const char *sent = fake_req_header(reqs, 0, p == 0 ? "x-api-key" : "authorization");
        assert_non_null(sent);
        assert_non_null(strstr(sent, FAKE_KEY));
        json_decref(reqs);
    }
    /* A transport failure too (nothing listens on port 1). */
    struct fake_case t;
    fake_case_init(&t, "anthropic");
    snprintf(t.cfg.base_url, sizeof t.cfg.base_url, "http://127.0.0.1:1");
    t.cfg.max_retries = 0;
    assert_int_equal(fake_case_run(&t), RF_TRANSIENT);
    buf_printf(&errors, "%s\n", t.err.message);
    fake_case_release(&t);
    char *logs = capture_end(&cap);
    log_set_level("info");

    assert_non_null(strstr(logs, "llm attempt")); /* the capture did capture the logs */
    assert_non_null(strstr(logs, "outcome=retry"));
    assert_non_null(strstr(buf_str(&errors), "[redacted]")); /* the echo was scrubbed */
    if (strstr(logs, FAKE_KEY) || strstr(logs, "4f1c9e"))
        fail_msg("the API key appears in the logs:\n%s", logs);
    if (strstr(buf_str(&errors), FAKE_KEY) || strstr(buf_str(&errors), "4f1c9e"))
        fail_msg("the API key appears in an error message:\n%s", buf_str(&errors));
    if (strstr(buf_str(&stored), FAKE_KEY) || strstr(buf_str(&stored), "4f1c9e"))
        fail_msg("the API key appears in a stored request:\n%s", buf_str(&stored));
    free(logs);
    buf_release(&errors);
    buf_release(&stored);
}

/* ---- validation, configuration ---------------------------------------------- */

static void test_llm_request_validation(void **state)
{
    (void)state;
    fake_script("[]");
    struct llm_config cfg;
    fake_config(&cfg, "anthropic");
    struct llm_client *client = NULL;
    struct rf_err err;
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_OK);
    struct llm_message bad[] = {{LLM_USER, "caf\xC3"}};
    struct llm_request req = {
        .messages = bad, .n_messages = 1, .max_tokens = 10, .temperature = -1};
    struct llm_response resp;
    llm_response_init(&resp);
    assert_int_equal(llm_client_call(client, &req, &resp, &err), RF_INVALID);
    assert_non_null(strstr(err.message, "UTF-8"));
    struct llm_message ok[] = {{LLM_USER, "hi"}};
    req.messages = ok;
    req.max_tokens = 0;
    assert_int_equal(llm_client_call(client, &req, &resp, &err), RF_INVALID);
    req.n_messages = 0;
    req.max_tokens = 10;
    assert_int_equal(llm_client_call(client, &req, &resp, &err), RF_INVALID);
    /* temperature < 0 is left out of the body */
    req.n_messages = 1;
    assert_int_equal(llm_client_call(client, &req, &resp, &err), RF_OK);
    assert_null(strstr(resp.request_json, "temperature"));
    assert_null(strstr(resp.request_json, "system"));
    assert_int_equal(fake_request_count(), 1); /* the invalid ones were never sent */
    llm_response_release(&resp);
    llm_client_free(client);

    snprintf(cfg.base_url, sizeof cfg.base_url, "ftp://example.com");
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_INVALID);
    fake_config(&cfg, "gemini");
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_INVALID);
    llm_client_free(NULL);
}

static void clear_env(void)
{
    const char *vars[] = {"REFOLD_LLM_PROVIDER",
                          "REFOLD_MODEL",
                          "ANTHROPIC_API_KEY",
                          "ANTHROPIC_BASE_URL",
                          "OPENAI_API_KEY",
                          "OPENAI_BASE_URL",
                          "REFOLD_SCRIPTED_REPLIES",
                          "REFOLD_LLM_CONNECT_TIMEOUT_MS",
                          "REFOLD_LLM_IDLE_TIMEOUT_MS",
                          "REFOLD_LLM_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void test_llm_config_from_env(void **state)
{
    (void)state;
    struct llm_config cfg;
    struct rf_err err;
    clear_env();
    /* anthropic is the default and needs a key */
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "ANTHROPIC_API_KEY");
    setenv("ANTHROPIC_API_KEY", "sk-a", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_OK);
    assert_string_equal(cfg.provider, "anthropic");
    assert_string_equal(cfg.api_key, "sk-a");
    assert_string_equal(cfg.base_url, "https://api.anthropic.com");
    assert_string_equal(cfg.model, "claude-sonnet-4-5-20250929");
    assert_int_equal(cfg.connect_timeout_ms, 5000);
    assert_int_equal(cfg.idle_timeout_ms, 120000);
    assert_int_equal(cfg.total_timeout_ms, 600000);
    assert_int_equal(cfg.max_retries, 2);

    setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/", 1);
    setenv("REFOLD_MODEL", "claude-haiku", 1);
    setenv("REFOLD_LLM_CONNECT_TIMEOUT_MS", "250", 1);
    setenv("REFOLD_LLM_IDLE_TIMEOUT_MS", "1500", 1);
    setenv("REFOLD_LLM_TIMEOUT_MS", "9000", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_OK);
    assert_string_equal(cfg.base_url, "http://127.0.0.1:9");
    assert_string_equal(cfg.model, "claude-haiku");
    assert_int_equal(cfg.connect_timeout_ms, 250);
    assert_int_equal(cfg.idle_timeout_ms, 1500);
    assert_int_equal(cfg.total_timeout_ms, 9000);

    /* A key with the newline of the file it came from broke the header: the provider
     * answered "Empty reply from server", retried as a network failure. */
    setenv("ANTHROPIC_API_KEY", "sk-a\r", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "ANTHROPIC_API_KEY");
    assert_null(strstr(err.message, "sk-a"));
    setenv("ANTHROPIC_API_KEY", "sk-a", 1);
    setenv("ANTHROPIC_BASE_URL", "api.anthropic.com", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "ANTHROPIC_BASE_URL");
    setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/", 1);

    setenv("REFOLD_LLM_IDLE_TIMEOUT_MS", "soon", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "REFOLD_LLM_IDLE_TIMEOUT_MS");
    unsetenv("REFOLD_LLM_IDLE_TIMEOUT_MS");

    setenv("REFOLD_LLM_PROVIDER", "openai", 1);
    unsetenv("REFOLD_MODEL");
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID); /* no model: say so */
    assert_string_equal(err.field, "REFOLD_MODEL");
    setenv("REFOLD_MODEL", "gpt-test", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_OK); /* a key is optional */
    assert_string_equal(cfg.base_url, "https://api.openai.com/v1");
    assert_string_equal(cfg.api_key, "");
    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("OPENAI_BASE_URL", "http://localhost:11434/v1", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_OK);
    assert_string_equal(cfg.api_key, "sk-o");
    assert_string_equal(cfg.base_url, "http://localhost:11434/v1");
    setenv("OPENAI_API_KEY", "sk-o\n", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "OPENAI_API_KEY");
    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("OPENAI_BASE_URL", "localhost:11434/v1", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "OPENAI_BASE_URL");
    setenv("OPENAI_BASE_URL", "http://localhost:11434/v1", 1);

    setenv("REFOLD_LLM_PROVIDER", "scripted", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "REFOLD_SCRIPTED_REPLIES");
    setenv("REFOLD_SCRIPTED_REPLIES", "/tmp/replies.json", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_OK);
    assert_string_equal(cfg.scripted_path, "/tmp/replies.json");

    setenv("REFOLD_LLM_PROVIDER", "gemini", 1);
    assert_int_equal(llm_config_from_env(&cfg, &err), RF_INVALID);
    assert_string_equal(err.field, "REFOLD_LLM_PROVIDER");
    clear_env();
}

/* ---- scripted provider ----------------------------------------------------- */

struct scripted_worker {
    const struct llm_config *cfg;
    char texts[4][64];
    enum rf_status rcs[4];
    bool scripted[4];
    int calls;
};

static void *scripted_thread(void *arg)
{
    struct scripted_worker *w = arg;
    struct llm_client *client = NULL;
    struct rf_err err;
    if (llm_client_new(w->cfg, &client, &err) != RF_OK)
        return NULL;
    struct llm_message msgs[] = {{LLM_USER, "hi"}};
    struct llm_request req = {
        .messages = msgs, .n_messages = 1, .max_tokens = 10, .temperature = -1};
    for (int i = 0; i < w->calls; i++) {
        struct llm_response resp;
        llm_response_init(&resp);
        w->rcs[i] = llm_client_call(client, &req, &resp, &err);
        snprintf(w->texts[i], sizeof w->texts[i], "%s", resp.text ? resp.text : "");
        w->scripted[i] = resp.scripted;
        llm_response_release(&resp);
    }
    llm_client_free(client);
    return NULL;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_llm_scripted_provider(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_llm_scripted_%d.json", (int)getpid());
    write_file(path, "{\"replies\": ["
                     "{\"text\": \"first reply, in a few chunks\", \"stop_reason\": \"end_turn\", "
                     "\"input_tokens\": 11, \"output_tokens\": 7, \"chunks\": 4},"
                     "{\"text\": \"second\", \"stop_reason\": \"max_tokens\"},"
                     "{\"error\": {\"kind\": \"transient\", \"message\": \"scripted overload\", "
                     "\"retry_after_ms\": 2500}},"
                     "{\"text\": \"fourth\"},"
                     "{\"text\": \"fifth\"},"
                     "{\"text\": \"sixth\"}]}");
    struct llm_config cfg;
    llm_config_init(&cfg);
    snprintf(cfg.provider, sizeof cfg.provider, "scripted");
    snprintf(cfg.scripted_path, sizeof cfg.scripted_path, "%s", path);

    struct capture cap;
    capture_start(&cap);
    struct fake_call c;
    fake_call_init(&c);
    struct llm_response resp;
    struct rf_err err;
    struct llm_client *client = NULL;
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_OK);
    assert_true(llm_client_is_scripted(client));
    assert_string_equal(llm_client_provider(client), "scripted");
    llm_client_free(client);

    assert_int_equal(fake_run(&cfg, &c, &resp, &err), RF_OK);
    assert_string_equal(resp.text, "first reply, in a few chunks");
    assert_string_equal(buf_str(&c.text), resp.text);
    assert_int_equal(c.text_calls, 4);
    assert_true(resp.scripted);
    assert_string_equal(resp.provider, "scripted");
    assert_string_equal(resp.request_id, "scripted-1");
    assert_int_equal(resp.input_tokens, 11);
    assert_int_equal(resp.output_tokens, 7);
    assert_string_equal(resp.stop_reason, "end_turn");
    assert_non_null(strstr(resp.request_json, "\"scripted\":true"));
    assert_non_null(strstr(resp.request_json, "Another one, in one word."));
    llm_response_release(&resp);

    fake_call_release(&c);
    fake_call_init(&c);
    assert_int_equal(fake_run(&cfg, &c, &resp, &err), RF_OK); /* a new client, same position */
    assert_string_equal(resp.text, "second");
    assert_string_equal(resp.stop_reason, "max_tokens");
    llm_response_release(&resp);

    assert_int_equal(fake_run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_string_equal(err.message, "scripted: scripted overload");
    assert_int_equal(resp.retry_after_ms, 2500);
    assert_null(resp.text);
    llm_response_release(&resp);
    char *logs = capture_end(&cap);
    assert_non_null(strstr(logs, "provider=scripted scripted=true"));
    free(logs);

    /* Three threads share the remaining three replies: each is used exactly once. */
    struct scripted_worker w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].cfg = &cfg;
        w[i].calls = 2;
        pthread_create(&th[i], NULL, scripted_thread, &w[i]);
    }
    int ok = 0, exhausted = 0;
    char seen[64] = "";
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        for (int k = 0; k < 2; k++) {
            if (w[i].rcs[k] == RF_OK) {
                ok++;
                assert_true(w[i].scripted[k]);
                size_t len = strlen(seen);
                snprintf(seen + len, sizeof seen - len, "%c", w[i].texts[k][1]);
            } else {
                assert_int_equal(w[i].rcs[k], RF_PERMANENT);
                exhausted++;
            }
        }
    }
    assert_int_equal(ok, 3);
    assert_int_equal(exhausted, 3);
    /* 'o' from fourth, 'i' from fifth and sixth: each reply exactly once */
    int o = 0, i_count = 0;
    for (char *s = seen; *s; s++) {
        o += *s == 'o';
        i_count += *s == 'i';
    }
    assert_int_equal(o, 1);
    assert_int_equal(i_count, 2);
    fake_call_release(&c);

    /* A malformed file fails at client creation. */
    char bad[80];
    snprintf(bad, sizeof bad, "%s.bad", path);
    write_file(bad, "{\"replies\": [{\"stop_reason\": \"end_turn\"}]}");
    snprintf(cfg.scripted_path, sizeof cfg.scripted_path, "%s", bad);
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_INVALID);
    assert_non_null(strstr(err.message, "needs a text"));
    unlink(bad);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_anthropic_stream),
        cmocka_unit_test(test_llm_openai_stream),
        cmocka_unit_test(test_llm_non_streamed_reply),
        cmocka_unit_test(test_llm_max_tokens_both_providers),
        cmocka_unit_test(test_llm_refusal_both_providers),
        cmocka_unit_test(test_llm_404_names_the_url),
        cmocka_unit_test(test_llm_redirect_not_followed),
        cmocka_unit_test(test_llm_anthropic_overloaded_mid_stream),
        cmocka_unit_test(test_llm_openai_error_in_stream),
        cmocka_unit_test(test_llm_stream_cut_off),
        cmocka_unit_test(test_llm_reset_after_complete_stream),
        cmocka_unit_test_teardown(test_llm_api_key_never_leaks, restore_stderr),
        cmocka_unit_test(test_llm_request_validation),
        cmocka_unit_test(test_llm_config_from_env),
        cmocka_unit_test_teardown(test_llm_scripted_provider, restore_stderr),
    };
    return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
