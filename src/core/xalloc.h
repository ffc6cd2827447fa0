/*
 * xalloc - allocation that never returns NULL.
 *
 * Out of memory is fatal in refold (as in Redis and git): these wrappers log one
 * line and abort, so call sites carry no OOM branches. All are thread-safe.
 */
#ifndef REFOLD_XALLOC_H
#define REFOLD_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Caller owns the copy; free with free(). xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
