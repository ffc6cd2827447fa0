/* utf8 - see utf8.h. */
#include "core/utf8.h"

#include <stddef.h>
#include <string.h>

#include "core/banned.h"

/* Length of the well-formed sequence at s, or 0. */
static size_t seq_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF; /* lo..hi: the second byte's range */
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = seq_len(p);
        if (!n)
            return false;
        p += n;
    }
    return true;
}

void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = seq_len(p);
        if (n) {
            p += n;
            continue;
        }
        size_t rest = strlen((char *)p), want = *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        bool cut = *p >= 0xC2 && *p <= 0xF4 && rest < want;
        for (size_t i = 1; cut && i < rest; i++)
            cut = p[i] >= 0x80 && p[i] <= 0xBF;
        if (cut) {
            *p = '\0';
            return;
        }
        *p++ = '?';
    }
}

long utf8_control(const char *s, size_t *at)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    for (; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue; /* a continuation byte: counted with its lead byte */
        if (*p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)) {
            if (at)
                *at = n;
            return *p == 0xC2 ? p[1] : *p;
        }
        n++;
    }
    return -1;
}

/* The code point of the well-formed sequence of n bytes at p. */
static long decode(const unsigned char *p, size_t n)
{
    static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    long cp = p[0] & lead_mask[n];
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (p[i] & 0x3F);
    return cp;
}

/* Unicode's White_Space property (PropList.txt). */
static bool is_space(long cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

bool utf8_untrimmed(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long first = -1, last = -1;
    while (*p) {
        size_t n = seq_len(p);
        if (!n)
            return false;
        last = decode(p, n);
        if (first < 0)
            first = last;
        p += n;
    }
    return first >= 0 && (is_space(first) || is_space(last));
}

bool utf8_blank(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!*p)
        return false;
    while (*p) {
        size_t n = seq_len(p);
        if (!n || !is_space(decode(p, n)))
            return false;
        p += n;
    }
    return true;
}
