/*
 * llm_fake - see llm_fake.h: the fake LLM server (tests/fakes/fake_llm.mjs) as a
 * child process, its control endpoint, and one call of the production client
 * against it.
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "llm_fake.h"

#include "core/buf.h"
#include "core/clock.h"
#include "llm/llm.h"
#include "core/banned.h"

static pid_t fake_pid;
static int fake_port;

/* ---- the fake server ----------------------------------------------------- */

int fake_start(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    llm_global_init();
    const char *src = getenv("REFOLD_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "REFOLD_SOURCE_DIR is not set\n");
        return -1;
    }
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/fakes/fake_llm.mjs", src);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fake_pid = fork();
    if (fake_pid < 0)
        return -1;
    if (fake_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execlp("node", "node", script, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[256];
    size_t n = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        if (poll(&pfd, 1, 15000) <= 0)
            break;
        ssize_t r = read(fds[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    line[n] = '\0';
    close(fds[0]);
    json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
    fake_port = (int)json_integer_value(json_object_get(j, "port"));
    json_decref(j);
    if (fake_port <= 0) {
        fprintf(stderr, "fake_llm did not report a port: '%s'\n", line);
        return -1;
    }
    return 0;
}

int fake_stop(void **state)
{
    (void)state;
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    llm_global_cleanup();
    return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    buf_append(ud, data, size * n);
    return size * n;
}

/* A control request to the fake; returns its parsed JSON answer (caller frees). */
static json_t *control(const char *method, const char *path, const char *body)
{
    CURL *e = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fake_port, path);
    struct buf out;
    buf_init(&out, BUF_UNLIMITED);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK || status != 200)
        fail_msg("control %s %s failed: %s %ld %s", method, path, curl_easy_strerror(rc), status,
                 buf_str(&out));
    json_t *j = json_loads(buf_str(&out), 0, NULL);
    buf_release(&out);
    assert_non_null(j);
    return j;
}

void fake_script(const char *entries)
{
    json_decref(control("POST", "/_control/reset", "{}"));
    json_decref(control("POST", "/_control/script", entries));
}

json_t *fake_requests(void)
{
    return control("GET", "/_control/requests", NULL);
}

size_t fake_request_count(void)
{
    json_t *reqs = fake_requests();
    size_t n = json_array_size(reqs);
    json_decref(reqs);
    return n;
}

double fake_arrival(const json_t *reqs, size_t i)
{
    return json_number_value(json_object_get(json_array_get(reqs, i), "time_ms"));
}

const char *fake_req_header(const json_t *reqs, size_t i, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(reqs, i), "headers"), name));
}

/* ---- the client under test ------------------------------------------------ */

static void on_text(void *ud, const char *delta, size_t len, int64_t tokens)
{
    struct fake_call *c = ud;
    buf_append(&c->text, delta, len);
    c->text_calls++;
    assert_true(tokens >= c->last_tokens);
    c->last_tokens = tokens;
}

static int should_cancel(void *ud)
{
    struct fake_call *c = ud;
    int64_t now = clock_mono_ms();
    bool yes = (c->cancel_after_calls && c->text_calls >= c->cancel_after_calls) ||
               (c->cancel_at && now >= c->cancel_at);
    if (yes && !c->cancelled_at)
        c->cancelled_at = now;
    return yes;
}

static void on_retry(void *ud, int attempt, int64_t delay, const struct rf_err *why)
{
    struct fake_call *c = ud;
    assert_int_equal(attempt, c->retries + 1);
    if (c->retries < 8) {
        c->delays[c->retries] = delay;
        c->retry_times[c->retries] = clock_mono_ms();
        snprintf(c->why[c->retries], sizeof c->why[0], "%s", why->message);
    }
    c->retries++;
}

void fake_call_init(struct fake_call *c)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->text, BUF_UNLIMITED);
}

void fake_call_release(struct fake_call *c)
{
    buf_release(&c->text);
}

void fake_config(struct llm_config *cfg, const char *provider)
{
    llm_config_init(cfg);
    snprintf(cfg->provider, sizeof cfg->provider, "%s", provider);
    snprintf(cfg->api_key, sizeof cfg->api_key, "%s", FAKE_KEY);
    snprintf(cfg->base_url, sizeof cfg->base_url, "http://127.0.0.1:%d%s", fake_port,
             strcmp(provider, "openai") == 0 ? "/v1" : "");
    snprintf(cfg->model, sizeof cfg->model, "test-model");
}

/* One call with a fresh client (so no connection is reused across tests). */
enum rf_status fake_run(const struct llm_config *cfg, struct fake_call *c,
                        struct llm_response *resp, struct rf_err *err)
{
    struct llm_client *client = NULL;
    assert_int_equal(llm_client_new(cfg, &client, err), RF_OK);
    struct llm_message msgs[] = {
        {LLM_USER, "Name a colour."},
        {LLM_ASSISTANT, "Blue."},
        {LLM_USER, "Another one, in one word."},
    };
    struct llm_request req = {
        .system = "You answer in one word.",
        .messages = msgs,
        .n_messages = 3,
        .max_tokens = 64,
        .temperature = 0.5,
        .on_text = on_text,
        .should_cancel = should_cancel,
        .on_retry = on_retry,
        .ud = c,
    };
    llm_response_init(resp);
    enum rf_status rc = llm_client_call(client, &req, resp, err);
    llm_client_free(client);
    return rc;
}

void fake_case_init(struct fake_case *t, const char *provider)
{
    fake_config(&t->cfg, provider);
    fake_call_init(&t->c);
    llm_response_init(&t->resp);
    rf_err_clear(&t->err);
}

enum rf_status fake_case_run(struct fake_case *t)
{
    return fake_run(&t->cfg, &t->c, &t->resp, &t->err);
}

void fake_case_release(struct fake_case *t)
{
    llm_response_release(&t->resp);
    fake_call_release(&t->c);
}
