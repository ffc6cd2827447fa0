/*
 * term - terminal facts for the CLI; see term.h.
 */
#include "cmd/term.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "core/banned.h"

bool term_is_terminal(int fd)
{
    const char *force = getenv("REFOLD_TTY");
    if (force && *force)
        return strcmp(force, "0") != 0;
    return isatty(fd) == 1;
}

bool term_tty(int fd)
{
    const char *force = getenv("REFOLD_TTY"), *term = getenv("TERM");
    /* A dumb terminal (Emacs' shell) cannot redraw a line: \e[K would show as text. */
    if (!(force && *force) && term && strcmp(term, "dumb") == 0)
        return false;
    return term_is_terminal(fd);
}

bool term_parse_color(const char *arg, enum term_color *out)
{
    if (strcmp(arg, "always") == 0)
        *out = TERM_COLOR_ALWAYS;
    else if (strcmp(arg, "never") == 0)
        *out = TERM_COLOR_NEVER;
    else if (strcmp(arg, "auto") == 0)
        *out = TERM_COLOR_AUTO;
    else
        return false;
    return true;
}

bool term_use_color(enum term_color c, int fd)
{
    if (c != TERM_COLOR_AUTO)
        return c == TERM_COLOR_ALWAYS;
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
    if (no && *no)
        return false;
    if (term && strcmp(term, "dumb") == 0)
        return false;
    return term_tty(fd);
}

int term_width(int fd)
{
    const char *cols = getenv("COLUMNS");
    long n = cols ? strtol(cols, NULL, 10) : 0;
    if (n >= 20 && n <= 1000)
        return (int)n;
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* "UTF-8" or "utf8" anywhere in v, in any case. */
static bool says_utf8(const char *v)
{
    char low[128];
    size_t n = 0;
    for (; v[n] && n < sizeof low - 1; n++)
        low[n] = (char)(v[n] >= 'A' && v[n] <= 'Z' ? v[n] - 'A' + 'a' : v[n]);
    low[n] = '\0';
    return strstr(low, "utf-8") || strstr(low, "utf8");
}

bool term_utf8(void)
{
    const char *names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) /* the first one set decides, as in setlocale */
            return says_utf8(v);
    }
    return false;
}

/* The length of the control sequence at s[i] that term_visible shows as \xNN bytes, or 0. */
static size_t control_at(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    if (c == '\t' || c == '\n')
        return 0;
    if (c == '\r')
        return i + 1 < len && s[i + 1] == '\n' ? 0 : 1;
    if (c < 0x20 || c == 0x7f)
        return 1;
    if (c == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
        return 2;
    return 0;
}

char *term_visible(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t extra = 0;
    for (size_t i = 0; i < len; i++) {
        size_t n = control_at(u, len, i);
        extra += 3 * n;
        i += n ? n - 1 : 0;
    }
    if (!extra)
        return NULL;
    char *out = xmalloc(len + extra + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        size_t n = control_at(u, len, i);
        if (!n) {
            *o++ = s[i];
            continue;
        }
        for (size_t k = 0; k < n; k++, o += 4)
            snprintf(o, 5, "\\x%02x", u[i + k]);
        i += n - 1;
    }
    *o = '\0';
    return out;
}
