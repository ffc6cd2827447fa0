/*
 * term - terminal facts for the CLI; see term.h.
 */
#include "cmd/term.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/banned.h"

bool term_tty(int fd)
{
    const char *force = getenv("REFOLD_TTY");
    if (force && *force)
        return strcmp(force, "0") != 0;
    return isatty(fd) == 1;
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
