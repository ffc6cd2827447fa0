/*
 * test_llm - the LLM clients (src/llm/) against tests/fakes/fake_llm.mjs.
 *
 * The group set-up starts the fake (node) on an ephemeral loopback port; each
 * test resets it, scripts it through its control endpoint, runs the production
 * client, and checks what came back and what the fake received (headers, body,
 * arrival times). Retry gaps are checked twice: the delay the client chose
 * (on_retry) against the documented bounds, and the gap between arrivals at the
 * fake against that delay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "llm/llm.h"
#include "core/banned.h"

#define KEY "sk-test-4f1c9e7a2b8d-SECRET" /* "4f1c9e" alone also counts as a leak */
#define SLACK_MS 400 /* scheduling and ASan overhead allowed on top of a wait */

static pid_t fake_pid;
static int fake_port;

/* ---- the fake server ----------------------------------------------------- */

static int start_fake(void **state)
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

static int stop_fake(void **state)
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

/* Forget everything, then queue these entries (a JSON array). */
static void script(const char *entries)
{
    json_decref(control("POST", "/_control/reset", "{}"));
    json_decref(control("POST", "/_control/script", entries));
}

static json_t *requests(void)
{
    return control("GET", "/_control/requests", NULL);
}

static double arrival(const json_t *reqs, size_t i)
{
    return json_number_value(json_object_get(json_array_get(reqs, i), "time_ms"));
}

static const char *req_header(const json_t *reqs, size_t i, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(reqs, i), "headers"), name));
}

/* ---- the client under test ------------------------------------------------ */

struct ctx {
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

static void on_text(void *ud, const char *delta, size_t len, int64_t tokens)
{
    struct ctx *c = ud;
    buf_append(&c->text, delta, len);
    c->text_calls++;
    assert_true(tokens >= c->last_tokens);
    c->last_tokens = tokens;
}

static int should_cancel(void *ud)
{
    struct ctx *c = ud;
    int64_t now = clock_mono_ms();
    bool yes = (c->cancel_after_calls && c->text_calls >= c->cancel_after_calls) ||
               (c->cancel_at && now >= c->cancel_at);
    if (yes && !c->cancelled_at)
        c->cancelled_at = now;
    return yes;
}

static void on_retry(void *ud, int attempt, int64_t delay, const struct rf_err *why)
{
    struct ctx *c = ud;
    assert_int_equal(attempt, c->retries + 1);
    if (c->retries < 8) {
        c->delays[c->retries] = delay;
        c->retry_times[c->retries] = clock_mono_ms();
        snprintf(c->why[c->retries], sizeof c->why[0], "%s", why->message);
    }
    c->retries++;
}

static void ctx_init(struct ctx *c)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->text, BUF_UNLIMITED);
}

static void config(struct llm_config *cfg, const char *provider)
{
    llm_config_init(cfg);
    snprintf(cfg->provider, sizeof cfg->provider, "%s", provider);
    snprintf(cfg->api_key, sizeof cfg->api_key, "%s", KEY);
    snprintf(cfg->base_url, sizeof cfg->base_url, "http://127.0.0.1:%d%s", fake_port,
             strcmp(provider, "openai") == 0 ? "/v1" : "");
    snprintf(cfg->model, sizeof cfg->model, "test-model");
}

/* One call with a fresh client (so no connection is reused across tests). */
static enum rf_status run(const struct llm_config *cfg, struct ctx *c, struct llm_response *resp,
                          struct rf_err *err)
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

static void ctx_release(struct ctx *c)
{
    buf_release(&c->text);
}

/* ---- replies ------------------------------------------------------------- */

static void test_llm_anthropic_stream(void **state)
{
    (void)state;
    /* CRLF lines, an unknown event type, writes of 3 bytes (cutting lines and UTF-8). */
    script("[{\"text\": \"Grün \xE2\x80\x94 a colour \xF0\x9F\x8C\xBF, said the fake.\", "
           "\"chunk_size\": 5, \"line_ending\": \"\\r\\n\", \"unknown_event\": true, "
           "\"write_size\": 3, \"usage\": {\"input_tokens\": 42, \"output_tokens\": 9}}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
    const char *want = "Grün \xE2\x80\x94 a colour \xF0\x9F\x8C\xBF, said the fake.";
    assert_string_equal(resp.text, want);
    assert_int_equal(resp.text_len, strlen(want));
    assert_string_equal(buf_str(&c.text), want);
    assert_true(c.text_calls >= 5);
    assert_string_equal(resp.stop_reason, "end_turn");
    assert_string_equal(resp.raw_stop_reason, "end_turn");
    assert_int_equal(resp.input_tokens, 42);
    assert_int_equal(resp.output_tokens, 9);
    assert_string_equal(resp.request_id, "req_fake_1");
    assert_int_equal(resp.http_status, 200);
    assert_int_equal(resp.attempts, 1);
    assert_string_equal(resp.provider, "anthropic");
    assert_string_equal(resp.model, "test-model");
    assert_false(resp.scripted);
    assert_true(resp.latency_ms >= 0);

    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *r = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/messages");
    assert_string_equal(req_header(reqs, 0, "x-api-key"), KEY);
    assert_string_equal(req_header(reqs, 0, "anthropic-version"), "2023-06-01");
    assert_string_equal(req_header(reqs, 0, "content-type"), "application/json");
    assert_null(req_header(reqs, 0, "authorization"));
    /* What was stored is exactly what was sent. */
    assert_string_equal(json_string_value(json_object_get(r, "raw_body")), resp.request_json);
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
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_openai_stream(void **state)
{
    (void)state;
    script("[{\"text\": \"Vert, said the OpenAI-shaped fake.\", \"chunk_size\": 4, "
           "\"unknown_event\": true, \"write_size\": 7, "
           "\"usage\": {\"input_tokens\": 31, \"output_tokens\": 8}}]");
    struct llm_config cfg;
    config(&cfg, "openai");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
    assert_string_equal(resp.text, "Vert, said the OpenAI-shaped fake.");
    assert_string_equal(buf_str(&c.text), resp.text);
    assert_true(c.text_calls >= 8);
    assert_string_equal(resp.stop_reason, "end_turn");
    assert_string_equal(resp.raw_stop_reason, "stop");
    assert_int_equal(resp.input_tokens, 31);
    assert_int_equal(resp.output_tokens, 8);
    assert_string_equal(resp.request_id, "req_fake_1");
    assert_int_equal(resp.attempts, 1);

    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 1);
    const json_t *r = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/chat/completions");
    assert_string_equal(req_header(reqs, 0, "authorization"), "Bearer " KEY);
    assert_null(req_header(reqs, 0, "x-api-key"));
    assert_string_equal(json_string_value(json_object_get(r, "raw_body")), resp.request_json);
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
    llm_response_release(&resp);
    ctx_release(&c);
}

/* A server that ignores "stream": true and answers one JSON body. */
static void test_llm_non_streamed_reply(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    for (int i = 0; i < 2; i++) {
        script("[{\"stream\": false, \"text\": \"Plain JSON reply.\", "
               "\"usage\": {\"input_tokens\": 5, \"output_tokens\": 4}}]");
        struct llm_config cfg;
        config(&cfg, providers[i]);
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
        assert_string_equal(resp.text, "Plain JSON reply.");
        assert_string_equal(buf_str(&c.text), "Plain JSON reply.");
        assert_string_equal(resp.stop_reason, "end_turn");
        assert_int_equal(resp.input_tokens, 5);
        assert_int_equal(resp.output_tokens, 4);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

static void test_llm_max_tokens_both_providers(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    const char *raw[] = {"max_tokens", "length"};
    for (int i = 0; i < 2; i++) {
        script("[{\"text\": \"This reply was cut sh\", \"stop_reason\": \"max_tokens\"}]");
        struct llm_config cfg;
        config(&cfg, providers[i]);
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
        assert_string_equal(resp.text, "This reply was cut sh");
        assert_string_equal(resp.stop_reason, "max_tokens");
        assert_string_equal(resp.raw_stop_reason, raw[i]);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

/* ---- retries ------------------------------------------------------------- */

/* After a call that retried twice with the SDKs' backoff: the chosen delays are
 * within [0.75, 1] * 500 and * 1000 ms, and the fake saw the attempts that far apart. */
static void check_backoff_gaps(const struct ctx *c, const json_t *reqs)
{
    assert_int_equal(c->retries, 2);
    const int64_t hi[2] = {500, 1000};
    for (int k = 0; k < 2; k++) {
        if (c->delays[k] < hi[k] * 3 / 4 || c->delays[k] > hi[k])
            fail_msg("retry %d chose %lld ms, outside [%lld, %lld]", k + 1, (long long)c->delays[k],
                     (long long)(hi[k] * 3 / 4), (long long)hi[k]);
        if (reqs) {
            double gap = arrival(reqs, (size_t)k + 1) - arrival(reqs, (size_t)k);
            if (gap < (double)c->delays[k] - 2 || gap > (double)c->delays[k] + SLACK_MS)
                fail_msg("attempts %d and %d arrived %.1f ms apart; the wait was %lld ms", k + 1,
                         k + 2, gap, (long long)c->delays[k]);
        }
    }
}

static void test_llm_retry_statuses_three_attempts(void **state)
{
    (void)state;
    const long statuses[] = {408, 409, 429, 500, 503, 529};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        char entries[200];
        snprintf(entries, sizeof entries, "[{\"status\": %ld, \"times\": 3}]", statuses[i]);
        script(entries);
        struct llm_config cfg;
        config(&cfg, "anthropic");
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        int64_t t0 = clock_mono_ms();
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
        int64_t took = clock_mono_ms() - t0;
        assert_int_equal(err.code, RF_TRANSIENT);
        assert_int_equal(resp.attempts, 3);
        assert_int_equal(resp.http_status, statuses[i]);
        assert_null(resp.text);
        char want[32];
        snprintf(want, sizeof want, "HTTP %ld", statuses[i]);
        if (!strstr(err.message, want) || !strstr(err.message, "after 3 attempts"))
            fail_msg("status %ld: unexpected message '%s'", statuses[i], err.message);
        json_t *reqs = requests();
        assert_int_equal(json_array_size(reqs), 3);
        check_backoff_gaps(&c, reqs);
        assert_true(took >= c.delays[0] + c.delays[1]);
        json_decref(reqs);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

static void test_llm_retry_then_success(void **state)
{
    (void)state;
    script("[{\"status\": 529, \"times\": 2}, {\"text\": \"Third time lucky.\"}]");
    struct llm_config cfg;
    config(&cfg, "openai");
    cfg.retry_base_ms = 40; /* the scaled formula; the real bounds are tested above */
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
    assert_string_equal(resp.text, "Third time lucky.");
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(resp.http_status, 200);
    assert_string_equal(resp.request_id, "req_fake_3");
    assert_int_equal(c.retries, 2);
    assert_true(c.delays[0] >= 30 && c.delays[0] <= 40);
    assert_true(c.delays[1] >= 60 && c.delays[1] <= 80);
    assert_non_null(strstr(c.why[0], "HTTP 529"));
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_retry_connection_reset(void **state)
{
    (void)state;
    script("[{\"reset_after_bytes\": 0, \"times\": 3}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(resp.http_status, 0);
    assert_non_null(strstr(err.message, "connection failed"));
    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 3);
    check_backoff_gaps(&c, reqs);
    json_decref(reqs);
    llm_response_release(&resp);
    ctx_release(&c);
}

/* A loopback listener whose accept queue is full: further SYNs are dropped, so a
 * connect hangs until the client's connect timeout. */
static int full_listener(int *port, int *fillers, int nfill)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    for (int i = 0; i < nfill; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(fillers[i], (struct sockaddr *)&a, sizeof a);
        assert_true(r == 0 || errno == EINPROGRESS);
    }
    clock_sleep_ms(100);
    return fd;
}

static void test_llm_retry_connect_timeout(void **state)
{
    (void)state;
    int fillers[4], port;
    int lfd = full_listener(&port, fillers, 4);
    struct llm_config cfg;
    config(&cfg, "anthropic");
    snprintf(cfg.base_url, sizeof cfg.base_url, "http://127.0.0.1:%d", port);
    cfg.connect_timeout_ms = 250;
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    int64_t t3 = clock_mono_ms();
    assert_int_equal(resp.attempts, 3);
    assert_non_null(strstr(err.message, "connect timeout"));
    check_backoff_gaps(&c, NULL);
    /* Each attempt spent the connect timeout; between them, the chosen waits. */
    int64_t spans[3] = {c.retry_times[0] - t0, c.retry_times[1] - c.retry_times[0],
                        t3 - c.retry_times[1]};
    int64_t waits[3] = {0, c.delays[0], c.delays[1]};
    for (int k = 0; k < 3; k++)
        if (spans[k] < waits[k] + 250 - 5 || spans[k] > waits[k] + 250 + SLACK_MS)
            fail_msg("attempt %d took %lld ms after a %lld ms wait (connect timeout 250 ms)", k + 1,
                     (long long)spans[k], (long long)waits[k]);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_permanent_statuses_one_attempt(void **state)
{
    (void)state;
    const long statuses[] = {400, 401, 403, 404, 413, 422};
    const char *providers[] = {"anthropic", "openai"};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
            char entries[200];
            snprintf(entries, sizeof entries,
                     "[{\"status\": %ld, \"error\": {\"type\": \"some_error\", \"message\": "
                     "\"no good %ld\"}}, {\"text\": \"must not be reached\"}]",
                     statuses[i], statuses[i]);
            script(entries);
            struct llm_config cfg;
            config(&cfg, providers[p]);
            struct ctx c;
            ctx_init(&c);
            struct llm_response resp;
            struct rf_err err;
            assert_int_equal(run(&cfg, &c, &resp, &err), RF_PERMANENT);
            assert_int_equal(resp.attempts, 1);
            assert_int_equal(resp.http_status, statuses[i]);
            assert_int_equal(c.retries, 0);
            char want[100];
            snprintf(want, sizeof want, "%s: HTTP %ld some_error: no good %ld", providers[p],
                     statuses[i], statuses[i]);
            assert_string_equal(err.message, want);
            json_t *reqs = requests();
            assert_int_equal(json_array_size(reqs), 1);
            json_decref(reqs);
            llm_response_release(&resp);
            ctx_release(&c);
        }
}

static void test_llm_retry_after_ms_beats_retry_after(void **state)
{
    (void)state;
    script("[{\"status\": 429, \"headers\": {\"retry-after-ms\": \"150\", \"retry-after\": \"5\"}},"
           " {\"status\": 503, \"headers\": {\"retry-after\": \"0.3\"}}, {\"text\": \"ok\"}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(c.retries, 2);
    assert_int_equal(c.delays[0], 150);
    assert_int_equal(c.delays[1], 300);
    json_t *reqs = requests();
    double gap1 = arrival(reqs, 1) - arrival(reqs, 0);
    double gap2 = arrival(reqs, 2) - arrival(reqs, 1);
    assert_true(gap1 >= 148 && gap1 <= 150 + SLACK_MS);
    assert_true(gap2 >= 298 && gap2 <= 300 + SLACK_MS);
    json_decref(reqs);
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_x_should_retry(void **state)
{
    (void)state;
    /* false: a 529 is not retried (and stays transient for the job layer). */
    script("[{\"status\": 529, \"headers\": {\"x-should-retry\": \"false\"}}, {\"text\": \"no\"}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(c.retries, 0);
    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    llm_response_release(&resp);
    ctx_release(&c);

    /* true: even a 400 is retried. */
    script("[{\"status\": 400, \"headers\": {\"x-should-retry\": \"true\"}}, {\"text\": \"yes\"}]");
    config(&cfg, "openai");
    cfg.retry_base_ms = 20;
    ctx_init(&c);
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
    assert_string_equal(resp.text, "yes");
    assert_int_equal(resp.attempts, 2);
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_retry_after_over_cap(void **state)
{
    (void)state;
    const char *entries[] = {
        "[{\"status\": 429, \"headers\": {\"retry-after\": \"120\"}}, {\"text\": \"no\"}]",
        "[{\"status\": 529, \"headers\": {\"retry-after-ms\": \"90000\"}}, {\"text\": \"no\"}]",
    };
    const int64_t want[] = {120000, 90000};
    for (int i = 0; i < 2; i++) {
        script(entries[i]);
        struct llm_config cfg;
        config(&cfg, "anthropic");
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        int64_t t0 = clock_mono_ms();
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
        assert_true(clock_mono_ms() - t0 < 1000); /* it did not sleep */
        assert_int_equal(resp.attempts, 1);
        assert_int_equal(resp.retry_after_ms, want[i]);
        assert_non_null(strstr(err.message, "over the 60000 ms limit"));
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

/* When retries run out, a retry-after within the cap is still handed up as the hint. */
static void test_llm_retry_after_hint_when_exhausted(void **state)
{
    (void)state;
    script("[{\"status\": 429, \"times\": 3, \"headers\": {\"retry-after-ms\": \"30\"}}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(resp.retry_after_ms, 30);
    llm_response_release(&resp);
    ctx_release(&c);
}

/* ---- failures inside a 200 stream ------------------------------------------ */

static void test_llm_anthropic_overloaded_mid_stream(void **state)
{
    (void)state;
    script("[{\"text\": \"This partial text must never be returned.\", \"chunk_size\": 4, "
           "\"error_after_chunks\": 3}, {\"text\": \"not reached\"}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_null(resp.text);
    assert_int_equal(resp.text_len, 0);
    assert_string_equal(resp.stop_reason, "");
    assert_int_equal(c.text_calls, 3); /* progress saw the deltas before the error */
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(resp.http_status, 200);
    assert_non_null(strstr(err.message, "overloaded_error"));
    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_openai_error_in_stream(void **state)
{
    (void)state;
    script("[{\"text\": \"Partial then an error object.\", \"chunk_size\": 4, "
           "\"error_after_chunks\": 2, \"stream_error\": {\"type\": \"server_error\", "
           "\"message\": \"The model crashed\"}}]");
    struct llm_config cfg;
    config(&cfg, "openai");
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    assert_null(resp.text);
    assert_int_equal(resp.attempts, 1);
    assert_non_null(strstr(err.message, "server_error: The model crashed"));
    llm_response_release(&resp);
    ctx_release(&c);
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
        script(entries[i]);
        struct llm_config cfg;
        config(&cfg, providers[i]);
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
        assert_null(resp.text);
        assert_int_equal(resp.attempts, 1); /* a started stream is not retried in the call */
        if (!strstr(err.message, "cut off"))
            fail_msg("case %d: unexpected message '%s'", i, err.message);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

/* A connection broken after message_stop / [DONE] does not lose a complete reply. */
static void test_llm_reset_after_complete_stream(void **state)
{
    (void)state;
    const char *providers[] = {"anthropic", "openai"};
    for (int i = 0; i < 2; i++) {
        script("[{\"text\": \"complete before the reset\", \"reset_at_end\": true}]");
        struct llm_config cfg;
        config(&cfg, providers[i]);
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        enum rf_status rc = run(&cfg, &c, &resp, &err);
        if (rc != RF_OK)
            fail_msg("%s: %s", providers[i], err.message);
        assert_string_equal(resp.text, "complete before the reset");
        assert_int_equal(resp.attempts, 1);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

/* ---- timeouts and cancellation --------------------------------------------- */

static void test_llm_idle_timeout(void **state)
{
    (void)state;
    /* Stalls mid-stream, then before the response head. */
    const char *entries[] = {
        "[{\"text\": \"one chunk then silence\", \"chunk_size\": 4, \"stall_ms\": 6000}]",
        "[{\"latency_ms\": 6000}]",
    };
    for (int i = 0; i < 2; i++) {
        script(entries[i]);
        struct llm_config cfg;
        config(&cfg, i == 0 ? "anthropic" : "openai");
        cfg.idle_timeout_ms = 1000;
        struct ctx c;
        ctx_init(&c);
        struct llm_response resp;
        struct rf_err err;
        int64_t t0 = clock_mono_ms();
        assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
        int64_t took = clock_mono_ms() - t0;
        if (took < 1000 || took > 1000 + 2000)
            fail_msg("stall case %d ended after %lld ms (idle timeout 1000 ms)", i,
                     (long long)took);
        assert_non_null(strstr(err.message, "idle timeout"));
        assert_null(resp.text);
        assert_int_equal(resp.attempts, 1);
        llm_response_release(&resp);
        ctx_release(&c);
    }
}

static void test_llm_total_timeout(void **state)
{
    (void)state;
    script("[{\"text\": \"a slow but steady stream of many small pieces of text\", "
           "\"chunk_size\": 1, \"chunk_delay_ms\": 200}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    cfg.total_timeout_ms = 1200;
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 1150 && took <= 1200 + 2000);
    assert_non_null(strstr(err.message, "total timeout"));
    assert_null(resp.text);
    llm_response_release(&resp);
    ctx_release(&c);
}

static void test_llm_cancel_in_flight(void **state)
{
    (void)state;
    /* Mid-stream: cancel once two deltas arrived (pieces every 300 ms, ~20 s in all). */
    script("[{\"text\": \"a long reply that would take twenty seconds to stream out\", "
           "\"chunk_size\": 1, \"chunk_delay_ms\": 300}]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
    struct ctx c;
    ctx_init(&c);
    c.cancel_after_calls = 2;
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_CANCELLED);
    int64_t lag = clock_mono_ms() - c.cancelled_at;
    assert_true(c.cancelled_at > 0);
    if (lag > 1000)
        fail_msg("the call returned %lld ms after cancellation", (long long)lag);
    assert_null(resp.text);
    assert_int_equal(err.code, RF_CANCELLED);
    llm_response_release(&resp);
    ctx_release(&c);

    /* Before any byte: the server takes 10 s to answer; cancel after 300 ms. */
    script("[{\"latency_ms\": 10000}]");
    config(&cfg, "openai");
    ctx_init(&c);
    int64_t t0 = clock_mono_ms();
    c.cancel_at = t0 + 300;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_CANCELLED);
    assert_true(clock_mono_ms() - t0 < 300 + 1000);
    llm_response_release(&resp);
    ctx_release(&c);

    /* During the wait before a retry (a 5 s retry-after). */
    script("[{\"status\": 503, \"headers\": {\"retry-after\": \"5\"}}]");
    config(&cfg, "anthropic");
    ctx_init(&c);
    t0 = clock_mono_ms();
    c.cancel_at = t0 + 300;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_CANCELLED);
    assert_true(clock_mono_ms() - t0 < 300 + 1000);
    assert_int_equal(c.retries, 1);
    assert_int_equal(c.delays[0], 5000);
    llm_response_release(&resp);
    ctx_release(&c);
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
        script("[{\"status\": 401, \"echo_auth\": true, \"error\": {\"message\": \""
               "A long message so that the echoed key straddles the point where the client "
               "cuts provider text to fit its error line, which must not let half a key out"
               "\"}}, "
               "{\"status\": 529, \"echo_auth\": true, \"times\": 3}, "
               "{\"text\": \"fine\"}, {\"reset_after_bytes\": 0, \"times\": 3}]");
        for (int i = 0; i < 4; i++) {
            struct llm_config cfg;
            config(&cfg, providers[p]);
            cfg.retry_base_ms = 10;
            struct ctx c;
            ctx_init(&c);
            struct llm_response resp;
            struct rf_err err;
            enum rf_status rc = run(&cfg, &c, &resp, &err);
            assert_int_equal(rc, i == 2 ? RF_OK : i == 0 ? RF_PERMANENT : RF_TRANSIENT);
            if (rc) {
                buf_printf(&errors, "%s\n", err.message);
                for (int k = 0; k < c.retries && k < 8; k++)
                    buf_printf(&errors, "%s\n", c.why[k]);
            }
            buf_printf(&stored, "%s\n", resp.request_json);
            llm_response_release(&resp);
            ctx_release(&c);
        }
        /* The server did receive the key: the test would see a leak. */
        json_t *reqs = requests();
        const char *sent = req_header(reqs, 0, p == 0 ? "x-api-key" : "authorization");
        assert_non_null(sent);
        assert_non_null(strstr(sent, KEY));
        json_decref(reqs);
    }
    /* A transport failure too (nothing listens on port 1). */
    struct llm_config cfg;
    config(&cfg, "anthropic");
    snprintf(cfg.base_url, sizeof cfg.base_url, "http://127.0.0.1:1");
    cfg.max_retries = 0;
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
    buf_printf(&errors, "%s\n", err.message);
    llm_response_release(&resp);
    ctx_release(&c);
    char *logs = capture_end(&cap);
    log_set_level("info");

    assert_non_null(strstr(logs, "llm attempt")); /* the capture did capture the logs */
    assert_non_null(strstr(logs, "outcome=retry"));
    assert_non_null(strstr(buf_str(&errors), "[redacted]")); /* the echo was scrubbed */
    if (strstr(logs, KEY) || strstr(logs, "4f1c9e"))
        fail_msg("the API key appears in the logs:\n%s", logs);
    if (strstr(buf_str(&errors), KEY) || strstr(buf_str(&errors), "4f1c9e"))
        fail_msg("the API key appears in an error message:\n%s", buf_str(&errors));
    if (strstr(buf_str(&stored), KEY) || strstr(buf_str(&stored), "4f1c9e"))
        fail_msg("the API key appears in a stored request:\n%s", buf_str(&stored));
    free(logs);
    buf_release(&errors);
    buf_release(&stored);
}

/* ---- validation, configuration ---------------------------------------------- */

static void test_llm_request_validation(void **state)
{
    (void)state;
    script("[]");
    struct llm_config cfg;
    config(&cfg, "anthropic");
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
    json_t *reqs = requests();
    assert_int_equal(json_array_size(reqs), 1); /* the invalid ones were never sent */
    json_decref(reqs);
    llm_response_release(&resp);
    llm_client_free(client);

    snprintf(cfg.base_url, sizeof cfg.base_url, "ftp://example.com");
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_INVALID);
    config(&cfg, "gemini");
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
    struct ctx c;
    ctx_init(&c);
    struct llm_response resp;
    struct rf_err err;
    struct llm_client *client = NULL;
    assert_int_equal(llm_client_new(&cfg, &client, &err), RF_OK);
    assert_true(llm_client_is_scripted(client));
    assert_string_equal(llm_client_provider(client), "scripted");
    llm_client_free(client);

    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK);
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

    ctx_release(&c);
    ctx_init(&c);
    assert_int_equal(run(&cfg, &c, &resp, &err), RF_OK); /* a new client, same position */
    assert_string_equal(resp.text, "second");
    assert_string_equal(resp.stop_reason, "max_tokens");
    llm_response_release(&resp);

    assert_int_equal(run(&cfg, &c, &resp, &err), RF_TRANSIENT);
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
    ctx_release(&c);

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
        cmocka_unit_test(test_llm_retry_statuses_three_attempts),
        cmocka_unit_test(test_llm_retry_then_success),
        cmocka_unit_test(test_llm_retry_connection_reset),
        cmocka_unit_test(test_llm_retry_connect_timeout),
        cmocka_unit_test(test_llm_permanent_statuses_one_attempt),
        cmocka_unit_test(test_llm_retry_after_ms_beats_retry_after),
        cmocka_unit_test(test_llm_x_should_retry),
        cmocka_unit_test(test_llm_retry_after_over_cap),
        cmocka_unit_test(test_llm_retry_after_hint_when_exhausted),
        cmocka_unit_test(test_llm_anthropic_overloaded_mid_stream),
        cmocka_unit_test(test_llm_openai_error_in_stream),
        cmocka_unit_test(test_llm_stream_cut_off),
        cmocka_unit_test(test_llm_reset_after_complete_stream),
        cmocka_unit_test(test_llm_idle_timeout),
        cmocka_unit_test(test_llm_total_timeout),
        cmocka_unit_test(test_llm_cancel_in_flight),
        cmocka_unit_test_teardown(test_llm_api_key_never_leaks, restore_stderr),
        cmocka_unit_test(test_llm_request_validation),
        cmocka_unit_test(test_llm_config_from_env),
        cmocka_unit_test_teardown(test_llm_scripted_provider, restore_stderr),
    };
    return cmocka_run_group_tests(tests, start_fake, stop_fake);
}
