/*
 * memo - each pool thread's memory of the GET response bodies it sent last, so that a
 * repeated read of an unchanged resource skips the work of producing it again.
 *
 * An entry is keyed by workspace and request target (path and query) and remembers the
 * body, the JSON value it was rendered from, and the store's data version when it was
 * read (store_data_version). It is reused in two ways:
 *
 *  - same data version: nothing was committed to the database since, and the route's
 *    answer depends on the database and the request alone (routes flagged ROUTE_MEMO), so
 *    the handler does not run at all;
 *  - the handler ran and built a value json_equal to the remembered one (the database
 *    changed, this resource did not): its text is reused, as the text is a function of
 *    the value (jansson keeps keys in insertion order, and a route builds its values in
 *    one order). Comparing an agent takes about 1 µs, json_dumps about 9 µs.
 *
 * Authentication runs before every lookup, and the workspace is part of the key: the memo
 * never answers a request that the key could not have made. Bodies larger than
 * MEMO_MAX_BYTES are not remembered.
 *
 * Threading: one memo per thread, used by that thread only.
 */
#ifndef REFOLD_HTTP_MEMO_H
#define REFOLD_HTTP_MEMO_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct memo;

/* A new, empty memo; free with memo_free (NULL is ignored). */
struct memo *memo_new(void);
void memo_free(struct memo *m);

/* The key of a request: its path and its query arguments. Caller frees. */
char *memo_key(struct MHD_Connection *conn, const char *path);

/* A response with the body remembered for (ws, key) at data version ver, or NULL. */
struct MHD_Response *memo_lookup(struct memo *m, const char *ws, const char *key,
                                 uint64_t ver);

/* A response with the JSON text of v (borrowed): the remembered text when the remembered
 * value equals v, else v rendered. Remembered for (ws, key) with data version ver when
 * has_ver. */
struct MHD_Response *memo_respond(struct memo *m, const char *ws, const char *key, bool has_ver,
                                  uint64_t ver, json_t *v);

#endif
