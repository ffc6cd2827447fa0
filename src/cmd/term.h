/*
 * term - what the CLI knows about its terminal: whether an output is a terminal
 * (TTY mode: progress redrawn in place, colours), whether to colour, its width, and
 * whether it can show UTF-8 symbols.
 *
 * REFOLD_TTY=1 forces TTY mode and REFOLD_TTY=0 turns it off, whatever the
 * descriptors are (tests run the CLI on pipes); otherwise a terminal whose TERM is
 * "dumb" is not one for TTY mode (it cannot redraw a line). Colour follows
 * --color=always|never|auto; auto colours a TTY unless NO_COLOR is set or TERM is
 * "dumb". Stateless apart from reading the environment; any thread.
 */
#ifndef REFOLD_CMD_TERM_H
#define REFOLD_CMD_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum term_color { TERM_COLOR_AUTO, TERM_COLOR_ALWAYS, TERM_COLOR_NEVER };

/* TTY mode for descriptor fd (REFOLD_TTY overrides isatty; not on a dumb terminal). */
bool term_tty(int fd);
/* Whether a person reads fd: a terminal, dumb or not (REFOLD_TTY overrides isatty). */
bool term_is_terminal(int fd);
/* Parse the value of --color ("always", "never", "auto"); false when it is none of them. */
bool term_parse_color(const char *arg, enum term_color *out);
/* Whether output on fd is coloured under mode c. */
bool term_use_color(enum term_color c, int fd);
/* Columns of the terminal on fd (COLUMNS, else the window size, else 80). */
int term_width(int fd);
/* Whether the locale says UTF-8 (LC_ALL, LC_CTYPE, LANG), for symbols like ✓ and █. */
bool term_utf8(void);

/* The columns a terminal gives the UTF-8 text s: 2 for the wide characters of East Asian
 * scripts (CJK, Hangul, fullwidth forms) and emoji, 0 for combining marks and zero-width
 * characters, 1 for the rest (a byte that is not UTF-8 counts 1). jx_utf8_len counts
 * characters; tables pad by this instead, so that their columns line up. */
int term_cols(const char *s);
/* s cut to at most cols columns into out (n bytes): as is when it fits, else cut at a
 * character boundary with an ellipsis ("…" when utf8, else "...") in its last column(s). */
void term_fit(const char *s, int cols, bool utf8, char *out, size_t n);
/* Write s and then spaces up to cols columns (nothing more when s is wider). */
void term_pad(FILE *out, const char *s, int cols);

/* s (len bytes, NULs included) with the characters a terminal would act on made visible as
 * \xNN, one per byte: the C0 controls other than tab and newline (a carriage return only
 * when no newline follows it: CRLF line ends stay), DEL, and the C1 controls U+0080 to
 * U+009F. Text from the server (names, templates, LLM replies, error messages) goes through
 * it before the CLI shows it, so that it cannot move the cursor, rewrite or hide lines,
 * retitle the window or plant links. NULL when s has none (caller frees otherwise). */
char *term_visible(const char *s, size_t len);

/* SGR sequences, or "" when colour is off. */
#define TERM_SGR(on, code) ((on) ? "\033[" code "m" : "")
#define TERM_RESET(on) TERM_SGR(on, "0")

#endif
