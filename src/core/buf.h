/*
 * buf - the one growable byte buffer, with a mandatory maximum size.
 *
 * Anything read from the network or an LLM goes through a buf whose max caps
 * how far it may grow (curl's dynbuf `toobig`): an append past max fails with
 * RF_TOO_LARGE and leaves the buffer unchanged. Contents are always
 * NUL-terminated (data[len] == '\0') once anything was appended. Not
 * thread-safe; a buf belongs to one owner.
 */
#ifndef REFOLD_BUF_H
#define REFOLD_BUF_H

#include <stddef.h>

#include "core/status.h"

struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* appends that would make len > max fail */
};

#define BUF_UNLIMITED ((size_t)-1 / 2)

/* Caller-owned struct: start empty with the given cap on its length. */
void buf_init(struct buf *b, size_t max);
/* Free the contents; the buf may be reused after buf_init. */
void buf_release(struct buf *b);
/* Forget the contents but keep the allocation. */
void buf_reset(struct buf *b);
enum rf_status buf_append(struct buf *b, const void *data, size_t n);
enum rf_status buf_puts(struct buf *b, const char *s);
enum rf_status buf_putc(struct buf *b, char c);
enum rf_status buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The contents as a string (never NULL: "" when empty), borrowed until the next change. */
const char *buf_str(const struct buf *b);
/* Hand the contents to the caller (free with free(); "" when empty) and reset b. */
char *buf_detach(struct buf *b, size_t *len);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
