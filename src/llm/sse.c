/*
 * sse - see sse.h. Bytes are cut into lines first; each complete line is then
 * interpreted on its own, so nothing depends on where the feeds were split.
 */
#include "llm/sse.h"

#include <string.h>

#include "core/banned.h"

void sse_parser_init(struct sse_parser *p, size_t max, sse_event_fn on_event, void *ud)
{
    memset(p, 0, sizeof *p);
    p->on_event = on_event;
    p->ud = ud;
    buf_init(&p->line, max);
    buf_init(&p->data, max);
    buf_init(&p->type, max);
    buf_init(&p->id, max);
    p->retry_ms = -1;
}

void sse_parser_release(struct sse_parser *p)
{
    buf_release(&p->line);
    buf_release(&p->data);
    buf_release(&p->type);
    buf_release(&p->id);
}

bool sse_parser_pending(const struct sse_parser *p)
{
    return p->line.len > 0 || p->data.len > 0;
}

static enum rf_status dispatch(struct sse_parser *p)
{
    enum rf_status rc = RF_OK;
    if (p->data.len == 0) {
        /* WHATWG: an empty data buffer dispatches nothing and resets the type. */
        buf_reset(&p->type);
        return RF_OK;
    }
    /* Every data line appended a LF; the last one is not part of the payload. */
    p->data.len--;
    p->data.data[p->data.len] = '\0';
    struct sse_event ev = {
        .type = p->type.len ? buf_str(&p->type) : "message",
        .data = buf_str(&p->data),
        .data_len = p->data.len,
        .id = buf_str(&p->id),
    };
    rc = p->on_event(p->ud, &ev);
    buf_reset(&p->data);
    buf_reset(&p->type);
    return rc;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static enum rf_status process_line(struct sse_parser *p)
{
    const char *line = buf_str(&p->line);
    size_t len = p->line.len;
    if (!p->started) {
        p->started = true;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return RF_OK; /* comment */

    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t vlen = colon ? len - flen - 1 : 0;
    if (vlen && value[0] == ' ') {
        value++;
        vlen--;
    }

    enum rf_status rc = RF_OK;
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        rc = buf_append(&p->data, value, vlen);
        if (rc == RF_OK)
            rc = buf_putc(&p->data, '\n');
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        buf_reset(&p->type);
        rc = buf_append(&p->type, value, vlen);
    } else if (flen == 2 && memcmp(line, "id", 2) == 0) {
        if (!memchr(value, '\0', vlen)) {
            buf_reset(&p->id);
            rc = buf_append(&p->id, value, vlen);
        }
    } else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
        if (all_digits(value, vlen)) {
            int64_t ms = 0;
            for (size_t i = 0; i < vlen; i++)
                ms = ms * 10 + (value[i] - '0');
            p->retry_ms = ms;
        }
    }
    /* Any other field is ignored, as the standard says. */
    return rc;
}

enum rf_status sse_parser_feed(struct sse_parser *p, const char *bytes, size_t n)
{
    size_t i = 0;
    if (p->after_cr && n > 0) {
        p->after_cr = false;
        if (bytes[0] == '\n')
            i = 1; /* the LF of a CRLF split between two feeds */
    }
    while (i < n) {
        size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n')
            j++;
        enum rf_status rc = buf_append(&p->line, bytes + i, j - i);
        if (rc)
            return rc;
        if (j == n)
            break; /* partial line: wait for the rest */
        rc = process_line(p);
        buf_reset(&p->line);
        if (rc)
            return rc;
        if (bytes[j] == '\r') {
            if (j + 1 < n && bytes[j + 1] == '\n')
                j++;
            else if (j + 1 == n)
                p->after_cr = true;
        }
        i = j + 1;
    }
    return RF_OK;
}
