/*
 * diff - see diff.h. Lines are compared as (bytes, ends-with-newline) pairs.
 * Common prefix and suffix are trimmed before Myers runs on the middle; the
 * forward pass keeps the frontier of each edit distance for the backtrack,
 * which is why the distance is capped.
 */
#include "core/diff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "core/banned.h"

/* Line comparisons one diff may make (about a second's work) before the
 * middle is reported as a whole replacement: many equal lines in a different
 * order would otherwise make each of the DIFF_MAX_EDITS steps walk them. */
#define DIFF_MAX_WORK 50000000L

struct line {
    const char *s;
    size_t len;
    bool nl;
};

enum op { OP_EQ, OP_DEL, OP_INS };

struct edit {
    enum op op;
    int ai, bi; /* line index in a (for EQ/DEL) and in b (for EQ/INS) */
};

static struct line *split(const char *t, int *n)
{
    int cap = 16, k = 0;
    struct line *v = xmalloc(sizeof *v * (size_t)cap);
    const char *p = t;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (k == cap) {
            cap *= 2;
            v = xrealloc(v, sizeof *v * (size_t)cap);
        }
        v[k].s = p;
        v[k].len = e ? (size_t)(e - p) : strlen(p);
        v[k].nl = e != NULL;
        k++;
        p = e ? e + 1 : p + strlen(p);
    }
    *n = k;
    return v;
}

static bool same(const struct line *x, const struct line *y)
{
    return x->len == y->len && x->nl == y->nl && memcmp(x->s, y->s, x->len) == 0;
}

struct script {
    struct edit *e;
    int n, cap;
};

static void push(struct script *s, enum op op, int ai, int bi)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->e = xrealloc(s->e, sizeof *s->e * (size_t)s->cap);
    }
    s->e[s->n++] = (struct edit){op, ai, bi};
}

/* The middle of a and b as one replacement: every line of a removed, every
 * line of b added. */
static void replace_all(int a0, int a1, int b0, int b1, struct script *out)
{
    for (int i = a0; i < a1; i++)
        push(out, OP_DEL, i, b0);
    for (int j = b0; j < b1; j++)
        push(out, OP_INS, a1, j);
}

/* Myers on a[a0..a1) vs b[b0..b1); appends edits in order. Step d keeps the
 * frontier of its diagonals -d..d (2d + 1 ints) for the backtrack, so memory
 * grows with the edit distance, not with the length of the texts. Past
 * DIFF_MAX_EDITS steps, or DIFF_MAX_WORK line comparisons, the middle is
 * reported as a whole replacement. */
static void myers(const struct line *a, int a0, int a1, const struct line *b, int b0, int b1,
                  struct script *out)
{
    int n = a1 - a0, m = b1 - b0;
    int dmax = n + m < DIFF_MAX_EDITS ? n + m : DIFF_MAX_EDITS;
    int off = dmax + 1;
    int *v = xcalloc((size_t)(2 * dmax + 3), sizeof *v);
    int **trace = xcalloc((size_t)dmax + 1, sizeof *trace);
    long work = 0;
    int dfinal = -1, dlast = -1;
    for (int d = 0; d <= dmax && dfinal < 0 && work <= DIFF_MAX_WORK; d++) {
        for (int k = -d; k <= d; k += 2) {
            int x;
            if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
                x = v[off + k + 1];
            else
                x = v[off + k - 1] + 1;
            int y = x - k, x0 = x;
            while (x < n && y < m && same(&a[a0 + x], &b[b0 + y])) {
                x++;
                y++;
            }
            work += x - x0 + 1;
            v[off + k] = x;
            if (x >= n && y >= m) {
                dfinal = d;
                break;
            }
        }
        trace[d] = xmalloc(sizeof(int) * (size_t)(2 * d + 1));
        memcpy(trace[d], &v[off - d], sizeof(int) * (size_t)(2 * d + 1));
        dlast = d;
    }
    if (dfinal < 0) {
        replace_all(a0, a1, b0, b1, out);
    } else {
        /* Backtrack from (n, m) to (0, 0), collecting edits in reverse. */
        struct script rev = {0};
        int x = n, y = m;
        for (int d = dfinal; d > 0; d--) {
            int *pv = trace[d - 1] + (d - 1); /* pv[k] for k in -(d-1)..d-1 */
            int k = x - y, pk;
            if (k == -d || (k != d && pv[k - 1] < pv[k + 1]))
                pk = k + 1;
            else
                pk = k - 1;
            int px = pv[pk], py = px - pk;
            while (x > px && y > py) {
                push(&rev, OP_EQ, a0 + x - 1, b0 + y - 1);
                x--;
                y--;
            }
            if (x == px)
                push(&rev, OP_INS, a0 + x, b0 + y - 1);
            else
                push(&rev, OP_DEL, a0 + x - 1, b0 + y);
            x = px;
            y = py;
        }
        while (x > 0 && y > 0) {
            push(&rev, OP_EQ, a0 + x - 1, b0 + y - 1);
            x--;
            y--;
        }
        for (int i = rev.n - 1; i >= 0; i--)
            push(out, rev.e[i].op, rev.e[i].ai, rev.e[i].bi);
        free(rev.e);
    }
    for (int d = 0; d <= dlast; d++)
        free(trace[d]);
    free(trace);
    free(v);
}

static void put_line(struct buf *o, char mark, const struct line *l)
{
    buf_putc(o, mark);
    buf_append(o, l->s, l->len);
    buf_putc(o, '\n');
    if (!l->nl)
        buf_puts(o, "\\ No newline at end of file\n");
}

static void range(struct buf *o, int start, int count)
{
    if (count == 1)
        buf_printf(o, "%d", start + 1);
    else
        buf_printf(o, "%d,%d", count == 0 ? start : start + 1, count);
}

void diff_lines(const char *a_text, const char *b_text, const char *a_label, const char *b_label,
                struct diff_result *out)
{
    int na, nb;
    struct line *a = split(a_text ? a_text : "", &na);
    struct line *b = split(b_text ? b_text : "", &nb);
    int pre = 0;
    while (pre < na && pre < nb && same(&a[pre], &b[pre]))
        pre++;
    int suf = 0;
    while (suf < na - pre && suf < nb - pre && same(&a[na - 1 - suf], &b[nb - 1 - suf]))
        suf++;

    struct script s = {0};
    for (int i = 0; i < pre; i++)
        push(&s, OP_EQ, i, i);
    myers(a, pre, na - suf, b, pre, nb - suf, &s);
    for (int i = 0; i < suf; i++)
        push(&s, OP_EQ, na - suf + i, nb - suf + i);

    struct buf o;
    buf_init(&o, BUF_UNLIMITED);
    out->added = out->removed = 0;
    const int ctx = 3;
    int i = 0;
    bool header = false;
    while (i < s.n) {
        while (i < s.n && s.e[i].op == OP_EQ)
            i++;
        if (i >= s.n)
            break;
        /* A hunk: start ctx lines back, extend while changes are within 2*ctx. */
        int start = i - ctx < 0 ? 0 : i - ctx;
        while (start < i && s.e[start].op != OP_EQ)
            start++;
        int end = i; /* exclusive */
        int last_change = i;
        while (end < s.n) {
            if (s.e[end].op != OP_EQ)
                last_change = end;
            else if (end - last_change > 2 * ctx)
                break;
            end++;
        }
        end = last_change + 1 + ctx < s.n ? last_change + 1 + ctx : s.n;
        int a_start = -1, b_start = -1, a_count = 0, b_count = 0;
        for (int j = start; j < end; j++) {
            struct edit *e = &s.e[j];
            if (e->op != OP_INS) {
                if (a_start < 0)
                    a_start = e->ai;
                a_count++;
            }
            if (e->op != OP_DEL) {
                if (b_start < 0)
                    b_start = e->bi;
                b_count++;
            }
        }
        if (a_start < 0)
            a_start = s.e[start].ai;
        if (b_start < 0)
            b_start = s.e[start].bi;
        if (!header) {
            buf_printf(&o, "--- %s\n+++ %s\n", a_label, b_label);
            header = true;
        }
        buf_puts(&o, "@@ -");
        range(&o, a_start, a_count);
        buf_puts(&o, " +");
        range(&o, b_start, b_count);
        buf_puts(&o, " @@\n");
        for (int j = start; j < end; j++) {
            struct edit *e = &s.e[j];
            if (e->op == OP_EQ) {
                put_line(&o, ' ', &a[e->ai]);
            } else if (e->op == OP_DEL) {
                put_line(&o, '-', &a[e->ai]);
                out->removed++;
            } else {
                put_line(&o, '+', &b[e->bi]);
                out->added++;
            }
        }
        i = end;
    }
    out->unified = buf_detach(&o, NULL);
    free(s.e);
    free(a);
    free(b);
}
