/*
 * log - see log.h. The threshold is set once at start-up, then only read.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/banned.h"

static enum log_level threshold = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

bool log_set_level(const char *name)
{
    for (int i = 0; name && i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            threshold = (enum log_level)i;
            return true;
        }
    }
    return false;
}

int log_enabled(enum log_level level)
{
    return level >= threshold;
}

const char *log_token(const char *s, char *out, size_t n)
{
    size_t len = strlen(s);
    bool token = len > 0 && len < 32;
    for (size_t i = 0; token && i < len; i++)
        token = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                (s[i] >= '0' && s[i] <= '9') || strchr("!#$%&'*+-.^_`|~", s[i]) != NULL;
    return token ? s : log_quote(s, out, n);
}

const char *log_quote(const char *s, char *out, size_t n)
{
    size_t o = 0;
    if (n < 3) {
        if (n)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (; s && *s && o + 3 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            /* Other control characters (a terminal's ESC sequences) as \xNN. */
            if (o + 5 >= n)
                break;
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

void log_write(enum log_level level, const char *msg, const char *fields, ...)
{
    if (level < threshold)
        return;
    char line[4096], ts[RFC3339_LEN], qmsg[1024];
    clock_format(clock_now_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s msg=%s", ts, names[level],
                     log_quote(msg, qmsg, sizeof qmsg));
    if (n < 0)
        return;
    if (fields && *fields && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fields, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
