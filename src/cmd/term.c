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

/* The code point at s (*len gets its bytes: 1 for a byte that starts no UTF-8 sequence). */
static unsigned decode(const unsigned char *s, size_t *len)
{
    unsigned c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0) {
        *len = 1;
        return 0xFFFD;
    }
    unsigned cp = n == 1 ? c : c & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) { /* cut short (or the end of the string) */
            *len = 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *len = n;
    return cp;
}

/* Columns of one code point, as wcwidth gives them for the common scripts. */
static int cp_cols(unsigned cp)
{
    static const unsigned zero[][2] = {
        {0x0300, 0x036F}, {0x0483, 0x0489},  {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
        {0x0E31, 0x0E31}, {0x0E34, 0x0E3A},  {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
        {0x200B, 0x200F}, {0x2060, 0x2064},  {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
        {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF}};
    static const unsigned wide[][2] = {
        {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
        {0x25FD, 0x25FE},   {0x2614, 0x2615},   {0x2648, 0x2653},   {0x26AA, 0x26AB},
        {0x26BD, 0x26BE},   {0x26CE, 0x26CE},   {0x26D4, 0x26D4},   {0x26EA, 0x26EA},
        {0x26F2, 0x26F5},   {0x26FA, 0x26FD},   {0x2705, 0x2705},   {0x2728, 0x2728},
        {0x274C, 0x274C},   {0x2753, 0x2755},   {0x2795, 0x2797},   {0x2B1B, 0x2B1C},
        {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},
        {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
        {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},
        {0x16FE0, 0x18AFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
        {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F64F},
        {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
        {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (cp >= zero[i][0] && cp <= zero[i][1])
            return 0;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (cp >= wide[i][0] && cp <= wide[i][1])
            return 2;
    return 1;
}

int term_cols(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    int cols = 0;
    size_t len;
    for (size_t i = 0; u[i]; i += len)
        cols += cp_cols(decode(u + i, &len));
    return cols;
}

void term_fit(const char *s, int cols, bool utf8, char *out, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    const char *dots = utf8 ? "…" : "...";
    int dots_cols = utf8 ? 1 : 3;
    size_t len, i = 0, keep = 0;
    int used = 0;
    if (term_cols(s) <= cols) {
        snprintf(out, n, "%s", s);
        return;
    }
    /* The characters that fit before the ellipsis, and whatever follows them at no width
     * (a combining accent stays with its letter). */
    for (; u[i]; i += len) {
        int w = cp_cols(decode(u + i, &len));
        if (used + w > cols - dots_cols)
            break;
        used += w;
        keep = i + len;
    }
    if (keep >= n)
        keep = n - 1;
    while (keep > 0 && keep < strlen(s) && (u[keep] & 0xC0) == 0x80) /* not inside a character */
        keep--;
    snprintf(out, n, "%.*s%s", (int)keep, s, cols >= dots_cols ? dots : "");
}

void term_pad(FILE *out, const char *s, int cols)
{
    int w = term_cols(s);
    fprintf(out, "%s%*s", s, w < cols ? cols - w : 0, "");
}
