/*
 * client - the CLI's HTTP client (libcurl); see client.h.
 */
#include "cmd/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/term.h"
#include "core/buf.h"
#include "core/jsonx.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "core/banned.h"

#define CONNECT_TIMEOUT_MS 5000L
#define CALL_TIMEOUT_MS 60000L

enum rf_status client_init(struct client *c, const struct config *cfg, struct rf_err *err)
{
    static bool curl_ready;
    memset(c, 0, sizeof *c);
    if ((!cfg->api_key || !*cfg->api_key) && cfg->file_error)
        return rf_fail(err, RF_INVALID, "no API key: %s; set REFOLD_API_KEY, or fix the file",
                       cfg->file_error);
    if (!cfg->api_key || !*cfg->api_key) {
        char path[4096];
        config_path(path, sizeof path);
        return rf_fail(err, RF_INVALID,
                       "no API key: set REFOLD_API_KEY, or run `refold init` to save one in %s",
                       path);
    }
    snprintf(c->key_from, sizeof c->key_from, "REFOLD_API_KEY");
    if (cfg->api_key_from_file) {
        /* The key is a password: say so when others may read it (or rewrite the URL it is
         * sent to), as ssh does for a private key; the command still runs. */
        char path[4096];
        struct stat sb;
        config_path(path, sizeof path);
        snprintf(c->key_from, sizeof c->key_from, "%s", path);
        if (stat(path, &sb) == 0 && (sb.st_mode & 077))
            fprintf(stderr,
                    "refold: warning: %s holds your API key but other users can access it "
                    "(mode %04o): run chmod 600 %s\n",
                    path, (unsigned)(sb.st_mode & 07777), path);
    }
    if (!curl_ready) { /* the CLI is single-threaded here */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    c->base = xstrdup(cfg->url);
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->auth = xasprintf("Authorization: Bearer %s", cfg->api_key);
    c->curl = curl_easy_init();
    c->timeout_ms = CALL_TIMEOUT_MS;
    if (!c->curl) {
        client_release(c);
        return rf_fail(err, RF_INTERNAL, "cannot initialise libcurl");
    }
    return RF_OK;
}

void client_release(struct client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->auth);
    memset(c, 0, sizeof *c);
}

char *client_escape(struct client *c, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    char *copy = xstrdup(e ? e : "");
    curl_free(e);
    return copy;
}

/* The status whose API error code is name (RF_INTERNAL when unknown). */
static enum rf_status status_of(const char *name)
{
    for (int code = RF_INVALID; code <= RF_LEASE_LOST; code++)
        if (name && strcmp(rf_status_name((enum rf_status)code), name) == 0)
            return (enum rf_status)code;
    return RF_INTERNAL;
}

/* Whether the base URL has a path after its host ("http://h:1/v1"). */
static bool has_path(const char *base)
{
    const char *host = strstr(base, "://");
    return host && strchr(host + 3, '/') != NULL;
}

/* err from a non-2xx answer: the server's {"error": {code, message}} when it sent one. */
static enum rf_status http_error(const struct client *c, long status, const struct buf *body,
                                 const char *url, struct rf_err *err)
{
    json_t *doc = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *message = json_string_value(json_object_get(e, "message"));
    enum rf_status rc;
    if (code && message) {
        char *shown = term_visible(message, strlen(message));
        if (status == 401) /* which key: the variable's or the file's */
            rc = rf_fail(err, status_of(code), "%s (the key %s %s)", shown ? shown : message,
                         strcmp(c->key_from, "REFOLD_API_KEY") ? "saved in" : "in", c->key_from);
        else
            rc = rf_fail(err, status_of(code), "%s", shown ? shown : message);
        free(shown);
    } else {
        rc = rf_fail(err, status >= 500 ? RF_UNAVAILABLE : RF_INVALID, "HTTP %ld from %s", status,
                     url);
    }
    const char *reason =
        code && message
            ? json_string_value(json_object_get(json_object_get(e, "details"), "reason"))
            : CLIENT_NOT_REFOLD;
    const char *field = json_string_value(json_object_get(json_object_get(e, "details"), "field"));
    if (reason)
        snprintf(err->reason, sizeof err->reason, "%s", reason);
    if (field)
        snprintf(err->field, sizeof err->field, "%s", field);
    if (status == 404 && message && !strncmp(message, "no such endpoint", 16) &&
        has_path(c->base)) { /* refold's router: the path is REFOLD_URL's own plus ours */
        char what[sizeof err->message];
        snprintf(what, sizeof what, "%s", err->message);
        rf_fail(err, rc, "%s: " CLIENT_NO_PATH_HINT, what, c->base);
        snprintf(err->reason, sizeof err->reason, "%s", CLIENT_NO_ROUTE);
    }
    json_decref(doc);
    return rc;
}

struct transfer {
    CURL *curl;
    struct buf body;     /* the whole body (calls) or an error body (streams) */
    client_chunk_fn fn;  /* streams: 2xx bodies go here */
    client_tick_fn tick; /* streams: about every second */
    void *ud;
    bool stopped; /* fn asked to stop */
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t n = size * nmemb;
    if (t->fn) {
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            if (!t->fn(t->ud, ptr, n)) {
                t->stopped = true;
                return 0;
            }
            return n;
        }
    }
    return buf_append(&t->body, ptr, n) == RF_OK ? n : 0;
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct transfer *t = ud;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    t->tick(t->ud);
    return 0;
}

int client_count_send(void *counter, char *primary_ip, char *local_ip, int primary_port,
                      int local_port)
{
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    (*(int *)counter)++;
    return CURL_PREREQFUNC_OK;
}

static enum rf_status perform(struct client *c, const char *method, const char *path,
                              const json_t *body, const char *const *headers, struct transfer *t,
                              long timeout_ms, long *status, struct rf_err *err)
{
    CURL *curl = c->curl;
    struct curl_slist *h = NULL;
    char *url = xasprintf("%s%s", c->base, path);
    char *text = body ? jx_dump(body) : NULL;
    enum rf_status rc = RF_OK;
    *status = 0;
    curl_easy_reset(curl);
    h = curl_slist_append(h, c->auth);
    h = curl_slist_append(h, t->fn ? "Accept: text/event-stream" : "Accept: application/json");
    if (text)
        h = curl_slist_append(h, "Content-Type: application/json");
    for (const char *const *x = headers; x && *x; x++)
        h = curl_slist_append(h, *x);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (t->fn) { /* a stream: without this a dead peer that sent no reset is waited on forever */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)CLIENT_STREAM_IDLE_S);
    }
    if (t->tick) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, client_count_send);
    curl_easy_setopt(curl, CURLOPT_PREREQDATA, &c->sends);
    c->sends = 0;
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    if (text) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    c->answered = c->answered || *status != 0;
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
        (cc == CURLE_OPERATION_TIMEDOUT && *status == 0)) {
        rc = rf_fail(err, RF_UNAVAILABLE, "cannot reach refold at %s: is `refold serve` running?",
                     c->base);
    } else if (cc == CURLE_WRITE_ERROR && t->stopped) {
        rc = RF_OK;
    } else if (cc == CURLE_OPERATION_TIMEDOUT && t->fn) {
        rc = rf_fail(err, RF_UNAVAILABLE, "nothing heard from refold at %s for %d s", c->base,
                     CLIENT_STREAM_IDLE_S);
        snprintf(err->reason, sizeof err->reason, "%s", CLIENT_STALLED);
    } else if (cc != CURLE_OK) {
        rc = rf_fail(err, RF_UNAVAILABLE, "%s %s failed: %s", method, url, curl_easy_strerror(cc));
    } else if (*status < 200 || *status >= 300) {
        rc = http_error(c, *status, &t->body, url, err);
    }
    curl_slist_free_all(h);
    free(text);
    free(url);
    return rc;
}

enum rf_status client_call(struct client *c, const char *method, const char *path,
                           const json_t *body, const char *const *headers, json_t **out,
                           long *status, struct rf_err *err)
{
    struct transfer t = {.curl = c->curl};
    long code = 0;
    buf_init(&t.body, CLIENT_MAX_RESPONSE);
    if (out)
        *out = NULL;
    enum rf_status rc = perform(c, method, path, body, headers, &t, c->timeout_ms, &code, err);
    if (rc == RF_OK && out && t.body.len > 0)
        rc = jx_parse(t.body.data, t.body.len, out, err);
    if (rc == RF_OK && out && *out && !c->raw)
        client_visible(*out);
    if (status)
        *status = code;
    buf_release(&t.body);
    return rc;
}

void client_visible(json_t *v)
{
    const char *key;
    size_t i;
    json_t *x;
    if (json_is_string(v)) {
        char *shown = term_visible(json_string_value(v), json_string_length(v));
        if (shown)
            json_string_set(v, shown);
        free(shown);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            client_visible(x);
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, x)
        {
            client_visible(x);
        }
    }
}

enum rf_status client_stream(struct client *c, const char *path, const char *const *headers,
                             client_chunk_fn fn, client_tick_fn tick, void *ud, long *status,
                             struct rf_err *err)
{
    struct transfer t = {.curl = c->curl, .fn = fn, .tick = tick, .ud = ud};
    long code = 0;
    buf_init(&t.body, CLIENT_MAX_RESPONSE);
    enum rf_status rc = perform(c, "GET", path, NULL, headers, &t, 0, &code, err);
    if (status)
        *status = code;
    buf_release(&t.body);
    return rc;
}

enum rf_status client_list_all(struct client *c, const char *path, json_t **data,
                               struct rf_err *err)
{
    json_t *all = json_array(), *page = NULL;
    char *cursor = NULL;
    enum rf_status rc;
    *data = NULL;
    for (;;) {
        char *url = cursor ? xasprintf("%s%slimit=500&cursor=%s", path,
                                       strchr(path, '?') ? "&" : "?", cursor)
                           : xasprintf("%s%slimit=500", path, strchr(path, '?') ? "&" : "?");
        rc = client_call(c, "GET", url, NULL, NULL, &page, NULL, err);
        free(url);
        free(cursor);
        cursor = NULL;
        if (rc)
            goto out;
        json_array_extend(all, json_object_get(page, "data"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (next)
            cursor = client_escape(c, next);
        json_decref(page);
        page = NULL;
        if (!cursor)
            break;
    }
    *data = all;
    all = NULL;
out:
    json_decref(all);
    return rc;
}

enum rf_status client_agent(struct client *c, const char *name_or_id, json_t **agent,
                            struct rf_err *err)
{
    json_t *list = NULL;
    char *path = NULL, *name = NULL;
    enum rf_status rc;
    *agent = NULL;
    if (id_valid("agent_", name_or_id)) {
        path = xasprintf("/v1/agents/%s", name_or_id);
        rc = client_call(c, "GET", path, NULL, NULL, agent, NULL, err);
        if (rc == RF_NOT_FOUND && strcmp(err->reason, CLIENT_NO_ROUTE) != 0)
            rf_fail(err, RF_NOT_FOUND, "no agent %s in this workspace (see refold agents)",
                    name_or_id);
        goto out;
    }
    name = client_escape(c, name_or_id);
    path = xasprintf("/v1/agents?name=%s", name);
    rc = client_list_all(c, path, &list, err);
    if (rc)
        goto out;
    /* Newest first: the non-archived holder of the name wins, else the newest. */
    size_t i;
    json_t *a, *pick = json_array_get(list, 0);
    json_array_foreach(list, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "status")), "archived") != 0) {
            pick = a;
            break;
        }
    }
    if (!pick) {
        rc = rf_fail(err, RF_NOT_FOUND,
                     "no agent named \"%s\" in this workspace (see refold agents)", name_or_id);
        goto out;
    }
    *agent = json_incref(pick);
out:
    json_decref(list);
    free(path);
    free(name);
    return rc;
}
