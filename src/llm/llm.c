/*
 * llm - configuration, the client, dispatch to a provider, and the helpers
 * the providers share. See llm.h for the design; llm_internal.h for the seams.
 */
#include "llm/llm.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "llm/llm_internal.h"
#include "core/banned.h"

/* ---- configuration ---------------------------------------------------- */

void llm_config_init(struct llm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->provider, sizeof cfg->provider, "anthropic");
    snprintf(cfg->base_url, sizeof cfg->base_url, "%s", LLM_DEFAULT_ANTHROPIC_BASE_URL);
    snprintf(cfg->model, sizeof cfg->model, "%s", LLM_DEFAULT_MODEL);
    cfg->connect_timeout_ms = 5000;
    cfg->idle_timeout_ms = 120000;
    cfg->total_timeout_ms = 600000;
    cfg->max_retries = 2;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Copy an environment value into a fixed field, refusing to truncate. */
static enum rf_status env_copy(const char *name, char *dst, size_t n, struct rf_err *err)
{
    const char *v = env(name);
    if (!v)
        return RF_OK;
    if (strlen(v) >= n)
        return rf_fail_field(err, RF_INVALID, name, "%s is longer than %zu characters", name,
                             n - 1);
    snprintf(dst, n, "%s", v);
    return RF_OK;
}

static enum rf_status env_ms(const char *name, int64_t *out, struct rf_err *err)
{
    const char *v = env(name);
    if (!v)
        return RF_OK;
    char *end;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (errno || *end || end == v || ms <= 0 || ms > 24LL * 3600 * 1000)
        return rf_fail_field(err, RF_INVALID, name,
                             "%s must be a number of milliseconds between 1 and 86400000", name);
    *out = ms;
    return RF_OK;
}

/* An API key travels in an HTTP header: printable ASCII without spaces. A stray byte
 * (the newline or carriage return of a key file) would break the header and the provider
 * would answer with a confusing connection error or 400. The key is never quoted. */
static enum rf_status check_key(const char *name, const char *key, struct rf_err *err)
{
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return rf_fail_field(err, RF_INVALID, name,
                                 "%s holds a space, a control character or a non-ASCII byte "
                                 "(a trailing newline or carriage return from a file?)",
                                 name);
    return RF_OK;
}

static enum rf_status check_url(const char *name, const char *url, struct rf_err *err)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return rf_fail_field(err, RF_INVALID, name,
                             "%s must start with http:// or https:// (e.g. "
                             "https://api.anthropic.com, http://localhost:11434/v1)",
                             name);
    return RF_OK;
}

static void strip_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

enum rf_status llm_config_from_env(struct llm_config *cfg, struct rf_err *err)
{
    enum rf_status rc;
    llm_config_init(cfg);
    if ((rc = env_copy("REFOLD_LLM_PROVIDER", cfg->provider, sizeof cfg->provider, err)) ||
        (rc = env_copy("REFOLD_MODEL", cfg->model, sizeof cfg->model, err)) ||
        (rc = env_copy("REFOLD_SCRIPTED_REPLIES", cfg->scripted_path, sizeof cfg->scripted_path,
                       err)) ||
        (rc = env_ms("REFOLD_LLM_CONNECT_TIMEOUT_MS", &cfg->connect_timeout_ms, err)) ||
        (rc = env_ms("REFOLD_LLM_IDLE_TIMEOUT_MS", &cfg->idle_timeout_ms, err)) ||
        (rc = env_ms("REFOLD_LLM_TIMEOUT_MS", &cfg->total_timeout_ms, err)))
        return rc;

    if (strcmp(cfg->provider, "anthropic") == 0) {
        if ((rc = env_copy("ANTHROPIC_API_KEY", cfg->api_key, sizeof cfg->api_key, err)) ||
            (rc = env_copy("ANTHROPIC_BASE_URL", cfg->base_url, sizeof cfg->base_url, err)))
            return rc;
        if (!cfg->api_key[0])
            return rf_fail_field(err, RF_INVALID, "ANTHROPIC_API_KEY",
                                 "ANTHROPIC_API_KEY is not set (REFOLD_LLM_PROVIDER=anthropic)");
        if ((rc = check_key("ANTHROPIC_API_KEY", cfg->api_key, err)) ||
            (rc = check_url("ANTHROPIC_BASE_URL", cfg->base_url, err)))
            return rc;
    } else if (strcmp(cfg->provider, "openai") == 0) {
        snprintf(cfg->base_url, sizeof cfg->base_url, "%s", LLM_DEFAULT_OPENAI_BASE_URL);
        if ((rc = env_copy("OPENAI_API_KEY", cfg->api_key, sizeof cfg->api_key, err)) ||
            (rc = env_copy("OPENAI_BASE_URL", cfg->base_url, sizeof cfg->base_url, err)))
            return rc;
        if ((rc = check_key("OPENAI_API_KEY", cfg->api_key, err)) ||
            (rc = check_url("OPENAI_BASE_URL", cfg->base_url, err)))
            return rc;
        /* The default model is an Anthropic one: an OpenAI-compatible server needs its own. */
        const char *model = getenv("REFOLD_MODEL");
        if (!model || !*model)
            return rf_fail_field(err, RF_INVALID, "REFOLD_MODEL",
                                 "REFOLD_MODEL is not set: the openai provider needs a model name "
                                 "(e.g. gpt-4o, or the name your local server serves)");
    } else if (strcmp(cfg->provider, "scripted") == 0) {
        cfg->base_url[0] = '\0';
        if (!cfg->scripted_path[0])
            return rf_fail_field(err, RF_INVALID, "REFOLD_SCRIPTED_REPLIES",
                                 "REFOLD_SCRIPTED_REPLIES must name a replies file "
                                 "(REFOLD_LLM_PROVIDER=scripted)");
    } else {
        return rf_fail_field(err, RF_INVALID, "REFOLD_LLM_PROVIDER",
                             "REFOLD_LLM_PROVIDER must be anthropic, openai or scripted");
    }
    strip_slashes(cfg->base_url);
    return RF_OK;
}

/* ---- client ------------------------------------------------------------ */

void llm_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void llm_global_cleanup(void)
{
    scripted_cleanup();
    curl_global_cleanup();
}

enum rf_status llm_client_new(const struct llm_config *cfg, struct llm_client **out,
                              struct rf_err *err)
{
    *out = NULL;
    if (cfg->connect_timeout_ms <= 0 || cfg->idle_timeout_ms <= 0 || cfg->total_timeout_ms <= 0)
        return rf_fail(err, RF_INVALID, "LLM timeouts must be positive");
    if (cfg->max_retries < 0 || cfg->max_retries > 10)
        return rf_fail(err, RF_INVALID, "LLM max_retries must be between 0 and 10");
    if (!cfg->model[0])
        return rf_fail(err, RF_INVALID, "LLM model must not be empty");

    struct llm_client *c = xcalloc(1, sizeof *c);
    c->cfg = *cfg;
    strip_slashes(c->cfg.base_url);
    if (strcmp(cfg->provider, "scripted") == 0) {
        enum rf_status rc = scripted_open(cfg->scripted_path, &c->script, err);
        if (rc) {
            free(c);
            return rc;
        }
    } else {
        if (strcmp(cfg->provider, "anthropic") == 0)
            c->provider = &llm_anthropic;
        else if (strcmp(cfg->provider, "openai") == 0)
            c->provider = &llm_openai;
        else {
            free(c);
            return rf_fail(err, RF_INVALID, "unknown LLM provider (anthropic, openai, scripted)");
        }
        if (strncmp(c->cfg.base_url, "http://", 7) != 0 &&
            strncmp(c->cfg.base_url, "https://", 8) != 0) {
            free(c);
            return rf_fail(err, RF_INVALID, "%s base URL must start with http:// or https://",
                           cfg->provider);
        }
        c->multi = curl_multi_init();
        c->easy = curl_easy_init();
        if (!c->multi || !c->easy) {
            llm_client_free(c);
            return rf_fail(err, RF_INTERNAL, "libcurl could not create a handle");
        }
    }
    *out = c;
    return RF_OK;
}

void llm_client_free(struct llm_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    /* Wipe the key from the heap before handing the memory back. */
    explicit_bzero(&c->cfg, sizeof c->cfg);
    free(c);
}

const char *llm_client_provider(const struct llm_client *c)
{
    return c->cfg.provider;
}

bool llm_client_is_scripted(const struct llm_client *c)
{
    return c->script != NULL;
}

void llm_response_init(struct llm_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->input_tokens = -1;
    resp->output_tokens = -1;
}

void llm_response_release(struct llm_response *resp)
{
    free(resp->text);
    free(resp->request_json);
    llm_response_init(resp);
}

/* jansson refuses to build a string from invalid UTF-8: use it as the check. */
static bool utf8_ok(const char *s)
{
    json_t *probe = json_string(s);
    bool ok = probe != NULL;
    json_decref(probe);
    return ok;
}

enum rf_status llm_request_check(const struct llm_request *req, struct rf_err *err)
{
    if (req->n_messages == 0 || !req->messages)
        return rf_fail(err, RF_INVALID, "an LLM request needs at least one message");
    for (size_t i = 0; i < req->n_messages; i++) {
        if (!req->messages[i].content)
            return rf_fail(err, RF_INVALID, "LLM message %zu has no content", i);
        if (req->messages[i].role != LLM_USER && req->messages[i].role != LLM_ASSISTANT)
            return rf_fail(err, RF_INVALID, "LLM message %zu has an unknown role", i);
        if (!utf8_ok(req->messages[i].content))
            return rf_fail(err, RF_INVALID, "LLM message %zu is not valid UTF-8", i);
    }
    if (req->system && !utf8_ok(req->system))
        return rf_fail(err, RF_INVALID, "the LLM system prompt is not valid UTF-8");
    if (req->model && (!*req->model || !utf8_ok(req->model)))
        return rf_fail(err, RF_INVALID, "LLM model must be a non-empty UTF-8 string");
    if (req->model && strlen(req->model) > LLM_MODEL_MAX)
        return rf_fail(err, RF_INVALID, "LLM model is longer than %d bytes", LLM_MODEL_MAX);
    if (req->max_tokens <= 0)
        return rf_fail(err, RF_INVALID, "LLM max_tokens must be positive");
    return RF_OK;
}

enum rf_status llm_client_call(struct llm_client *c, const struct llm_request *req,
                               struct llm_response *resp, struct rf_err *err)
{
    llm_response_release(resp);
    rf_err_clear(err);
    const char *model = req->model ? req->model : c->cfg.model;
    snprintf(resp->provider, sizeof resp->provider, "%s", c->cfg.provider);
    snprintf(resp->model, sizeof resp->model, "%s", model);
    resp->scripted = c->script != NULL;
    enum rf_status rc = llm_request_check(req, err);
    if (rc)
        return rc;
    if (c->script)
        rc = scripted_call(c, req, model, resp, err);
    else
        rc = transport_call(c, req, model, resp, err);
    if (rc && err)
        llm_scrub(err->message, sizeof err->message, c->cfg.api_key);
    if (rc) {
        /* Never partial text as success, nor as failure. */
        free(resp->text);
        resp->text = NULL;
        resp->text_len = 0;
        resp->stop_reason[0] = '\0';
    }
    return rc;
}

/* ---- helpers shared by the providers ------------------------------------ */

void llm_stream_init(struct llm_stream *st, const struct llm_request *req, const char *secret)
{
    memset(st, 0, sizeof *st);
    st->req = req;
    st->secret = secret;
    buf_init(&st->text, LLM_MAX_TEXT);
    st->input_tokens = -1;
    st->output_tokens = -1;
}

void llm_stream_release(struct llm_stream *st)
{
    buf_release(&st->text);
}

enum rf_status llm_stream_text(struct llm_stream *st, const char *s, size_t n, struct rf_err *err)
{
    if (n == 0)
        return RF_OK;
    if (buf_append(&st->text, s, n))
        return rf_fail(err, RF_PERMANENT, "the reply is longer than %u bytes", LLM_MAX_TEXT);
    st->deltas++;
    if (st->req && st->req->on_text) {
        int64_t so_far = st->output_tokens > st->deltas ? st->output_tokens : st->deltas;
        st->req->on_text(st->req->ud, s, n, so_far);
    }
    return RF_OK;
}

void llm_stream_stop(struct llm_stream *st, const json_t *reason)
{
    if (!json_is_string(reason))
        return;
    snprintf(st->raw_stop, sizeof st->raw_stop, "%s", json_string_value(reason));
    st->have_stop = true;
}

void llm_json_tokens(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *out = json_integer_value(v);
}

/* Printable ASCII and UTF-8 kept; control characters become spaces. */
static void clean_copy(const char *s, size_t len, char *out, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    /* Do not end inside a UTF-8 sequence cut by the limit. */
    if (o > 0 && o + 1 >= n) {
        size_t k = o;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && ((unsigned char)out[k - 1] & 0x80))
            o = k - 1;
    }
    out[o] = '\0';
}

void llm_error_object_text(const json_t *error, const char *secret, char *out, size_t n)
{
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *message = json_string_value(json_object_get(error, "message"));
    if (json_is_string(error))
        message = json_string_value(error);
    if (!type)
        type = code;
    char *full;
    if (type && message)
        full = xasprintf("%s: %s", type, message);
    else
        full = xstrdup(message ? message : type ? type : "unknown error");
    char *clean = llm_redact(full, strlen(full), secret);
    clean_copy(clean, strlen(clean), out, n);
    free(clean);
    free(full);
}

void llm_error_text(const char *body, size_t len, const char *secret, char *out, size_t n)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *error = json_object_get(root, "error");
    if (error && (json_is_object(error) || json_is_string(error))) {
        llm_error_object_text(error, secret, out, n);
    } else if (json_is_string(json_object_get(root, "message"))) {
        llm_error_object_text(root, secret, out, n);
    } else if (len == 0) {
        snprintf(out, n, "empty body");
    } else {
        char *clean = llm_redact(body, len, secret);
        size_t clen = strlen(clean);
        clean_copy(clean, clen < 200 ? clen : 200, out, n);
        free(clean);
    }
    json_decref(root);
}

char *llm_redact(const char *s, size_t len, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    buf_append(&b, "", 0);
    for (size_t i = 0; i < len;) {
        if (slen >= 4 && len - i >= slen && memcmp(s + i, secret, slen) == 0) {
            buf_puts(&b, "[redacted]");
            i += slen;
        } else {
            buf_putc(&b, s[i] ? s[i] : ' ');
            i++;
        }
    }
    return buf_detach(&b, NULL);
}

void llm_scrub(char *s, size_t n, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (slen < 4)
        return;
    static const char mark[] = "[redacted]";
    char *p, *from = s;
    while ((p = strstr(from, secret)) != NULL) {
        size_t tail = strlen(p + slen);
        size_t room = n - (size_t)(p - s) - 1; /* bytes available from p, NUL excluded */
        size_t m = sizeof mark - 1 < room ? sizeof mark - 1 : room;
        if (m + tail > room)
            tail = room - m;
        memmove(p + m, p + slen, tail);
        memcpy(p, mark, m);
        p[m + tail] = '\0';
        from = p + m; /* never rescan the mark itself */
    }
}

enum rf_status llm_wait(const struct llm_request *req, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    for (;;) {
        if (llm_cancelled(req))
            return RF_CANCELLED;
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return RF_OK;
        clock_sleep_ms(left < 50 ? left : 50);
    }
}
