/*
 * config - settings shared by the commands; see cmd.h. The config file is
 * small JSON: {"url": "...", "api_key": "..."}. Loaded once per process;
 * the strings it yields live until exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/env.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/server.h"
#include "core/banned.h"

void config_path(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(out, n, "%s/refold/config.json", xdg);
    else
        snprintf(out, n, "%s/.config/refold/config.json", home ? home : ".");
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A millisecond setting: at most a week. */
static int64_t env_ms(const char *name, int64_t dflt, int64_t min)
{
    return env_int(name, dflt, min, 7LL * 24 * 3600 * 1000);
}

/* The config file's strings, why it could not be used, and the derived URL: one set per
 * process. */
static char file_url[1024], file_key[512], file_error[4400], derived_url[600];

/* The config file at path as a JSON object; NULL when there is none, or (with file_error
 * set) when it cannot be read or is not a JSON object. */
static json_t *load_file(const char *path)
{
    json_error_t jerr;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno != ENOENT)
            snprintf(file_error, sizeof file_error, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    json_t *file = json_loadf(fp, 0, &jerr);
    fclose(fp);
    if (!file)
        snprintf(file_error, sizeof file_error, "%s is not valid JSON (line %d: %s)", path,
                 jerr.line, jerr.text);
    else if (!json_is_object(file))
        snprintf(file_error, sizeof file_error, "%s is not a JSON object", path);
    if (file_error[0]) {
        json_decref(file);
        return NULL;
    }
    return file;
}

void config_load(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->db = "refold.db";
    cfg->listen = "127.0.0.1:7878";
    cfg->log = "info";

    char path[4096];
    config_path(path, sizeof path);
    json_t *file = load_file(path);
    if (file) {
        const char *url = json_string_value(json_object_get(file, "url"));
        const char *key = json_string_value(json_object_get(file, "api_key"));
        if (url) {
            snprintf(file_url, sizeof file_url, "%s", url);
            cfg->url = file_url;
        }
        if (key) {
            snprintf(file_key, sizeof file_key, "%s", key);
            cfg->api_key = file_key;
            cfg->api_key_from_file = true;
        }
    }
    json_decref(file);
    cfg->file_error = file_error[0] ? file_error : NULL;

    if (env("REFOLD_DB"))
        cfg->db = env("REFOLD_DB");
    if (env("REFOLD_LISTEN"))
        cfg->listen = env("REFOLD_LISTEN");
    if (env("REFOLD_LOG"))
        cfg->log = env("REFOLD_LOG");
    if (env("REFOLD_URL"))
        cfg->url = env("REFOLD_URL");
    if (env("REFOLD_API_KEY")) {
        cfg->api_key = env("REFOLD_API_KEY");
        cfg->api_key_from_file = false;
    }
    if (!cfg->url) {
        snprintf(derived_url, sizeof derived_url, "http://%s", cfg->listen);
        cfg->url = derived_url;
    }
    if (!log_set_level(cfg->log)) {
        log_warn("ignoring invalid setting", "name=REFOLD_LOG value=\"%.40s\" "
                 "allowed=debug,info,warn,error default=info", cfg->log);
        cfg->log = "info";
    }
    /* After the log level, so that their warnings follow it. */
    cfg->workers = (int)env_int("REFOLD_WORKERS", 2, 0, CONFIG_MAX_WORKERS);
    cfg->max_body = env_int("REFOLD_MAX_BODY", HTTP_DEFAULT_MAX_BODY, 1024, 1LL << 30);
    cfg->http_threads = (int)env_int("REFOLD_HTTP_THREADS", HTTP_DEFAULT_THREADS, 1, 64);

    cfg->lease_ms = env_ms("REFOLD_LEASE_MS", 30000, 1);
    cfg->heartbeat_ms = env_ms("REFOLD_HEARTBEAT_MS", 10000, 1);
    cfg->poll_ms = env_ms("REFOLD_POLL_MS", 200, 1);
    cfg->sweep_ms = env_ms("REFOLD_SWEEP_MS", 1000, 1);
    cfg->cancel_poll_ms = env_ms("REFOLD_CANCEL_POLL_MS", 200, 1);
    cfg->backoff_base_ms = env_ms("REFOLD_BACKOFF_BASE_MS", 5000, 0);
    cfg->grace_ms = env_ms("REFOLD_SHUTDOWN_GRACE_MS", 30000, 0);
    cfg->sse_ping_ms = env_ms("REFOLD_SSE_PING_MS", 15000, 1);
    cfg->sse_poll_ms = env_ms("REFOLD_SSE_POLL_MS", 100, 1);
    cfg->sse_resync_ms = env_ms("REFOLD_SSE_RESYNC_MS", 5000, 1);
    cfg->test_jobs = env("REFOLD_TEST_JOBS") && strcmp(env("REFOLD_TEST_JOBS"), "1") == 0;
}

static enum rf_status mkdirs(char *dir, struct rf_err *err)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(dir, 0700);
        *p = '/';
        if (r && errno != EEXIST)
            return rf_fail(err, RF_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    }
    if (mkdir(dir, 0700) && errno != EEXIST)
        return rf_fail(err, RF_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    return RF_OK;
}

enum rf_status config_save(const char *url, const char *api_key, struct rf_err *err)
{
    char path[4096], dir[4096], tmp[4200];
    config_path(path, sizeof path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    enum rf_status rc = mkdirs(dir, err);
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* The file holds the key: 0600 even when a .tmp left behind (or planted) had another
     * mode, which O_CREAT keeps; never through a symbolic link. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        return rf_fail(err, RF_INTERNAL, "cannot write %s: %s", tmp, strerror(e));
    }
    if (fd < 0)
        return rf_fail(err, RF_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
    json_t *doc = json_pack("{s:s, s:s}", "url", url, "api_key", api_key);
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    free(text);
    ok = fsync(fd) == 0 && ok;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return rf_fail(err, RF_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    }
    return RF_OK;
}
