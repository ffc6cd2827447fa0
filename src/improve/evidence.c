/*
 * evidence - see evidence.h. Lengths are counted in UTF-8 characters; cuts
 * happen on character boundaries.
 */
#include "improve/evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "core/banned.h"

void evidence_fence(char *out)
{
    unsigned char rnd[8];
    crypto_random(rnd, sizeof rnd);
    int n = snprintf(out, FENCE_MAX, "trace-data-");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(out + n, (size_t)(FENCE_MAX - n), "%02x", rnd[i]);
}

/* Byte offset of character index `chars` in s (or its length). */
static size_t byte_offset(const char *s, size_t chars)
{
    size_t i = 0, c = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == chars)
                return i;
            c++;
        }
        i++;
    }
    return i;
}

char *evidence_cut(const char *text, size_t max)
{
    size_t n = jx_utf8_len(text);
    if (n <= max)
        return xstrdup(text);
    char marker[96];
    size_t mlen = 0;
    /* The marker's length depends on the number it carries: settle it in two passes. */
    for (int pass = 0; pass < 2; pass++) {
        size_t keep = max > mlen ? max - mlen : 0;
        snprintf(marker, sizeof marker, "\n[… %zu characters omitted …]\n", n - keep);
        mlen = jx_utf8_len(marker);
    }
    if (max < mlen + 16) /* too small for a marker: a plain head */
        return xstrndup(text, byte_offset(text, max));
    size_t keep = max - mlen;
    snprintf(marker, sizeof marker, "\n[… %zu characters omitted …]\n", n - keep);
    size_t head = keep * 2 / 3, tail = keep - head;
    size_t hb = byte_offset(text, head), tb = byte_offset(text, n - tail);
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    buf_append(&b, text, hb);
    buf_puts(&b, marker);
    buf_puts(&b, text + tb);
    return buf_detach(&b, NULL);
}

char *evidence_defuse(const char *text)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    const char *run = text; /* the bytes from here on are not copied yet */
    for (const char *p = text; (p = strchr(p, '<')) != NULL; p++) {
        const char *q = p + 1;
        if (*q == '/')
            q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, "trace-data", 10) == 0) {
            buf_append(&b, run, (size_t)(p - run));
            buf_puts(&b, "&lt;");
            run = p + 1;
        }
    }
    buf_puts(&b, run);
    return buf_detach(&b, NULL);
}

/* Water-filling: give each of n fields min(its length, a fair share of what is left). */
static void allocate(const size_t *len, size_t *alloc, int n, size_t budget)
{
    int order[4] = {0, 1, 2, 3};
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (len[order[j]] < len[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t left = budget;
    for (int k = 0; k < n; k++) {
        size_t share = left / (size_t)(n - k);
        size_t a = len[order[k]] < share ? len[order[k]] : share;
        alloc[order[k]] = a;
        left -= a;
    }
}

/* text is already defused. */
static void fenced(struct buf *b, const char *fence, const char *text, size_t max, bool block,
                   size_t *used)
{
    char *cut = evidence_cut(text, max);
    *used += jx_utf8_len(cut);
    if (block)
        buf_printf(b, "<%s>\n%s\n</%s>\n", fence, cut, fence);
    else
        buf_printf(b, "<%s>%s</%s>\n", fence, cut, fence);
    free(cut);
}

void evidence_begin(struct evidence *ev, size_t n, size_t budget, const char *fence)
{
    memset(ev, 0, sizeof *ev);
    buf_init(&ev->sec[0], BUF_UNLIMITED);
    buf_init(&ev->sec[1], BUF_UNLIMITED);
    ev->n = n;
    ev->left = budget;
    snprintf(ev->fence, sizeof ev->fence, "%s", fence);
}

void evidence_add(struct evidence *ev, const json_t *c, const char *input, const char *output)
{
    bool missed = strcmp(json_string_value(json_object_get(c, "kind")), "missed_failure") == 0;
    struct buf *b = &ev->sec[missed ? 0 : 1];
    const char *raws[4] = {input, output, json_string_value(json_object_get(c, "note")),
                           json_string_value(json_object_get(c, "predicted_reason"))};
    char *fields[4];
    size_t len[4], alloc[4], left = ev->left;
    for (int k = 0; k < 4; k++) {
        const char *raw = raws[k];
        fields[k] = raw ? evidence_defuse(raw) : NULL;
        len[k] = fields[k] ? jx_utf8_len(fields[k]) : 0;
    }
    allocate(len, alloc, 4, ev->added < ev->n ? left / (ev->n - ev->added) : 0);
    int *count = missed ? &ev->missed_count : &ev->false_alarm_count;
    (*count)++;
    size_t used = 0;
    buf_printf(b, "### Case %d: eval \"%s\" judged the output %s; the human rated it %s\n", *count,
               json_string_value(json_object_get(c, "eval_name")), missed ? "good" : "bad",
               missed ? "negative" : "positive");
    buf_puts(b, "Human note: ");
    if (fields[2])
        fenced(b, ev->fence, fields[2], alloc[2], false, &used);
    else
        buf_puts(b, "(none)\n");
    buf_puts(b, "Eval reason: ");
    if (fields[3])
        fenced(b, ev->fence, fields[3], alloc[3], false, &used);
    else
        buf_puts(b, "(none)\n");
    buf_puts(b, "Input:\n");
    fenced(b, ev->fence, fields[0] ? fields[0] : "", alloc[0], true, &used);
    buf_puts(b, "Output:\n");
    fenced(b, ev->fence, fields[1] ? fields[1] : "", alloc[1], true, &used);
    buf_putc(b, '\n');
    for (int k = 0; k < 4; k++)
        free(fields[k]);
    ev->left -= used < left ? used : left;
    ev->trace_chars += used;
    ev->added++;
}

void evidence_end(struct evidence *ev)
{
    ev->missed_failures = ev->missed_count ? buf_detach(&ev->sec[0], NULL) : xstrdup("(none)\n");
    ev->false_alarms = ev->false_alarm_count ? buf_detach(&ev->sec[1], NULL) : xstrdup("(none)\n");
    buf_release(&ev->sec[0]);
    buf_release(&ev->sec[1]);
}

void evidence_release(struct evidence *ev)
{
    free(ev->missed_failures);
    free(ev->false_alarms);
    ev->missed_failures = ev->false_alarms = NULL;
}
