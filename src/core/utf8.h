/*
 * utf8 - checking and mending UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF).
 *
 * JSON text must be valid UTF-8, and so must every parameter sent to PostgreSQL.
 * Request bodies are checked by jansson; what reaches refold by other ways - URL
 * paths and query strings, which libmicrohttpd percent-decodes into arbitrary bytes,
 * and error messages that quote them - is checked or mended here. Stateless.
 */
#ifndef REFOLD_UTF8_H
#define REFOLD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s is well-formed UTF-8 throughout. */
bool utf8_valid(const char *s);
/* Make s valid UTF-8 in place: a sequence cut short at its end (a message truncated
 * to a fixed size) is dropped; any other byte outside a well-formed sequence
 * becomes '?'. */
void utf8_scrub(char *s);
/* The first control character of s - C0 (U+0000..U+001F), DEL (U+007F) or C1
 * (U+0080..U+009F), Unicode's category Cc - as its code point, with *at set to the
 * number of characters before it; -1 when s has none. Names are refused with one
 * (jsonx's JX_NAME): shown on a terminal, in the UI or in a log line, a control
 * character can hide, recolour or rewrite what is around it. */
long utf8_control(const char *s, size_t *at);
/* True when s begins or ends with white space (Unicode's White_Space: the ASCII space,
 * tab and line ends, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000) - so also when it is nothing else. "bot" and "bot " look the same in a
 * list; names are refused so (jsonx's JX_TRIMMED). False for "" and for s not UTF-8. */
bool utf8_untrimmed(const char *s);
/* True when s is white space and nothing else (not for ""; false when s is not UTF-8). */
bool utf8_blank(const char *s);

#endif
