/*
 * memo - see memo.h. A small table replaced round robin: a handful of resources polled
 * by the same thread is the case it is for.
 */
#include "http/memo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "core/banned.h"

#define MEMO_SLOTS 16
#define MEMO_MAX_BYTES (16 * 1024)
#define MEMO_KEY_MAX 4096

struct memo_entry {
    char ws[ID_MAX];
    char *key; /* NULL: free slot */
    bool has_ver;
    uint64_t ver;
    json_t *value;
    char *text;
    size_t len;
};

struct memo {
    struct memo_entry e[MEMO_SLOTS];
    unsigned next;
};

struct memo *memo_new(void)
{
    return xcalloc(1, sizeof(struct memo));
}

static void clear(struct memo_entry *e)
{
    free(e->key);
    json_decref(e->value);
    free(e->text);
    memset(e, 0, sizeof *e);
}

void memo_free(struct memo *m)
{
    if (!m)
        return;
    for (int i = 0; i < MEMO_SLOTS; i++)
        clear(&m->e[i]);
    free(m);
}

/* A key being built; cut is set when an append did not fit under MEMO_KEY_MAX. */
struct key_buf {
    struct buf b;
    bool cut;
};

static void put(struct key_buf *k, char c)
{
    k->cut = k->cut || buf_putc(&k->b, c) != RF_OK;
}

/* The decoded path and arguments, with the separators the key uses escaped: without it
 * ?name=a%26status%3Dconfirmed (one argument) and ?name=a&status=confirmed (two) made
 * the same key and got each other's answer. */
static void put_escaped(struct key_buf *k, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        if (*s == '%' || *s == '&' || *s == '=' || *s == '?') {
            put(k, '%');
            put(k, hex[(unsigned char)*s >> 4]);
            put(k, hex[(unsigned char)*s & 15]);
        } else {
            put(k, *s);
        }
    }
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *name,
                               const char *value)
{
    (void)kind;
    struct key_buf *k = cls;
    put(k, '&');
    put_escaped(k, name);
    if (value) { /* ?x has no value, ?x= an empty one: handlers tell them apart */
        put(k, '=');
        put_escaped(k, value);
    }
    return k->cut ? MHD_NO : MHD_YES;
}

char *memo_key(struct MHD_Connection *conn, const char *path)
{
    struct key_buf k = {.cut = false};
    buf_init(&k.b, MEMO_KEY_MAX);
    put_escaped(&k, path);
    put(&k, '?');
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &k);
    if (k.cut) { /* keys must be exact */
        buf_release(&k.b);
        return NULL;
    }
    return buf_detach(&k.b, NULL);
}

static struct memo_entry *find(struct memo *m, const char *ws, const char *key)
{
    for (int i = 0; key && i < MEMO_SLOTS; i++)
        if (m->e[i].key && strcmp(m->e[i].key, key) == 0 && strcmp(m->e[i].ws, ws) == 0)
            return &m->e[i];
    return NULL;
}

static struct MHD_Response *respond(const char *text, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, mode);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}

struct MHD_Response *memo_lookup(struct memo *m, const char *ws, const char *key, uint64_t ver)
{
    struct memo_entry *e = find(m, ws, key);
    if (!e || !e->has_ver || e->ver != ver)
        return NULL;
    return respond(e->text, e->len, MHD_RESPMEM_MUST_COPY);
}

struct MHD_Response *memo_respond(struct memo *m, const char *ws, const char *key, bool has_ver,
                                  uint64_t ver, json_t *v)
{
    struct memo_entry *e = find(m, ws, key);
    if (e && json_equal(e->value, v)) {
        e->has_ver = has_ver;
        e->ver = ver;
        return respond(e->text, e->len, MHD_RESPMEM_MUST_COPY);
    }
    char *text = jx_dump(v);
    size_t len = strlen(text);
    if (!key || len > MEMO_MAX_BYTES) {
        if (e)
            clear(e); /* stale now */
        return respond(text, len, MHD_RESPMEM_MUST_FREE);
    }
    if (!e) {
        e = &m->e[m->next++ % MEMO_SLOTS];
        clear(e);
        e->key = xstrdup(key);
        snprintf(e->ws, sizeof e->ws, "%s", ws);
    }
    json_decref(e->value);
    free(e->text);
    e->has_ver = has_ver;
    e->ver = ver;
    e->value = json_incref(v);
    e->text = text;
    e->len = len;
    return respond(text, len, MHD_RESPMEM_MUST_COPY);
}
