/*
 * test_sse_parser - the incremental SSE parser (src/llm/sse.c).
 *
 * The same stream must give the same events however it is cut: fed whole,
 * split at every byte position, split at every pair of positions, and byte by
 * byte; with LF, CRLF and CR line ends; with multi-line data, comments, a BOM,
 * ids and multi-byte UTF-8 cut in the middle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "llm/sse.h"
#include "core/banned.h"

/* Events are recorded as "type|id|data" lines in one buffer, easy to compare. */
struct recorder {
    struct buf out;
    int count;
    int fail_at; /* return RF_PERMANENT on this event number (1-based), 0 never */
};

static enum rf_status record(void *ud, const struct sse_event *ev)
{
    struct recorder *r = ud;
    r->count++;
    assert_int_equal(strlen(ev->data), ev->data_len);
    buf_printf(&r->out, "%s|%s|", ev->type, ev->id);
    buf_append(&r->out, ev->data, ev->data_len);
    buf_puts(&r->out, "\n--\n");
    return r->fail_at == r->count ? RF_PERMANENT : RF_OK;
}

/* Feed stream cut at the given positions (sorted, may be empty); returns events. */
static char *parse_cuts(const char *stream, size_t len, const size_t *cuts, size_t ncuts,
                        bool *pending, int64_t *retry_ms)
{
    struct recorder r = {.count = 0};
    buf_init(&r.out, BUF_UNLIMITED);
    struct sse_parser p;
    sse_parser_init(&p, 4096, record, &r);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(sse_parser_feed(&p, stream + at, end - at), RF_OK);
        at = end;
    }
    if (pending)
        *pending = sse_parser_pending(&p);
    if (retry_ms)
        *retry_ms = p.retry_ms;
    sse_parser_release(&p);
    return buf_detach(&r.out, NULL);
}

static const char lf_stream[] = "\xEF\xBB\xBFretry: 3000\n"
                                ": a comment\n"
                                "\n"
                                "event: message_start\n"
                                "data: {\"a\":1}\n"
                                "\n"
                                ": ping comment\n"
                                "id: 7\n"
                                "data: line one\n"
                                "data: line two\n"
                                "data:\n"
                                "\n"
                                "event: only_type\n"
                                "\n"
                                "data:no-space\n"
                                "data:  two spaces\n"
                                "data: has: colon\n"
                                "foo: ignored field\n"
                                "data\n"
                                "\n"
                                "event: utf8\n"
                                "data: caf\xC3\xA9 \xF0\x9F\x98\x80 \xC3\xB1\n"
                                "\n"
                                "data: trailing event without its blank line";

static const char expected[] = "message_start||{\"a\":1}\n--\n"
                               "message|7|line one\nline two\n\n--\n"
                               "message|7|no-space\n two spaces\nhas: colon\n\n--\n"
                               "utf8|7|caf\xC3\xA9 \xF0\x9F\x98\x80 \xC3\xB1\n--\n";

/* lf_stream with every LF replaced by `eol`. */
static char *with_eol(const char *eol)
{
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    for (const char *s = lf_stream; *s; s++) {
        if (*s == '\n')
            buf_puts(&b, eol);
        else
            buf_putc(&b, *s);
    }
    return buf_detach(&b, NULL);
}

static void check_all_splits(const char *stream)
{
    size_t len = strlen(stream);
    bool pending = false;
    int64_t retry = 0;
    char *whole = parse_cuts(stream, len, NULL, 0, &pending, &retry);
    assert_string_equal(whole, expected);
    assert_true(pending); /* the last event never got its blank line */
    assert_int_equal(retry, 3000);

    for (size_t i = 0; i <= len; i++) {
        char *got = parse_cuts(stream, len, &i, 1, NULL, NULL);
        if (strcmp(got, whole) != 0)
            fail_msg("split at byte %zu changed the events:\n%s", i, got);
        free(got);
    }
    /* Every pair of cut points, on a stride to keep it quick but cover CRLF pairs. */
    for (size_t i = 0; i <= len; i++)
        for (size_t j = i; j <= len; j += (j % 7) + 1) {
            size_t cuts[2] = {i, j};
            char *got = parse_cuts(stream, len, cuts, 2, NULL, NULL);
            if (strcmp(got, whole) != 0)
                fail_msg("splits at %zu and %zu changed the events:\n%s", i, j, got);
            free(got);
        }
    /* Byte by byte. */
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char *got = parse_cuts(stream, len, cuts, len, NULL, NULL);
    assert_string_equal(got, whole);
    free(got);
    free(cuts);
    free(whole);
}

static void test_sse_parser_lf_every_split(void **state)
{
    (void)state;
    check_all_splits(lf_stream);
}

static void test_sse_parser_crlf_every_split(void **state)
{
    (void)state;
    char *s = with_eol("\r\n");
    check_all_splits(s);
    free(s);
}

static void test_sse_parser_cr_every_split(void **state)
{
    (void)state;
    char *s = with_eol("\r");
    check_all_splits(s);
    free(s);
}

/* A 4-byte UTF-8 character cut at each of its bytes arrives whole. */
static void test_sse_parser_partial_utf8(void **state)
{
    (void)state;
    const char s[] = "data: \xF0\x9F\x98\x80\xE2\x82\xAC\n\n";
    size_t len = strlen(s);
    for (size_t i = 6; i <= 13; i++) {
        char *got = parse_cuts(s, len, &i, 1, NULL, NULL);
        assert_string_equal(got, "message||\xF0\x9F\x98\x80\xE2\x82\xAC\n--\n");
        free(got);
    }
}

/* A CRLF split between two feeds is one line end, not two (which would dispatch early). */
static void test_sse_parser_crlf_split_is_one_line_end(void **state)
{
    (void)state;
    const char s[] = "data: a\r\ndata: b\r\n\r\n";
    size_t cuts[] = {8, 17, 19}; /* each right after a CR */
    char *got = parse_cuts(s, strlen(s), cuts, 3, NULL, NULL);
    assert_string_equal(got, "message||a\nb\n--\n");
    free(got);
}

static void test_sse_parser_comments_and_empty_events(void **state)
{
    (void)state;
    const char s[] = ":\n: hello\n\n\nevent: x\n\n:tail\n";
    bool pending = true;
    char *got = parse_cuts(s, strlen(s), NULL, 0, &pending, NULL);
    assert_string_equal(got, "");
    assert_false(pending);
    free(got);
}

static void test_sse_parser_line_too_long(void **state)
{
    (void)state;
    struct recorder r = {.count = 0};
    buf_init(&r.out, BUF_UNLIMITED);
    struct sse_parser p;
    sse_parser_init(&p, 16, record, &r);
    assert_int_equal(sse_parser_feed(&p, "data: 0123456789", 16), RF_OK);
    assert_int_equal(sse_parser_feed(&p, "x", 1), RF_TOO_LARGE);
    sse_parser_release(&p);

    /* Data accumulated over many short lines is capped too. */
    sse_parser_init(&p, 16, record, &r);
    enum rf_status rc = RF_OK;
    for (int i = 0; i < 10 && rc == RF_OK; i++)
        rc = sse_parser_feed(&p, "data: abcd\n", 11);
    assert_int_equal(rc, RF_TOO_LARGE);
    assert_int_equal(r.count, 0);
    sse_parser_release(&p);
    buf_release(&r.out);
}

static void test_sse_parser_callback_error_stops(void **state)
{
    (void)state;
    struct recorder r = {.count = 0, .fail_at = 2};
    buf_init(&r.out, BUF_UNLIMITED);
    struct sse_parser p;
    sse_parser_init(&p, 1024, record, &r);
    const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), RF_PERMANENT);
    assert_int_equal(r.count, 2);
    sse_parser_release(&p);
    buf_release(&r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_parser_lf_every_split),
        cmocka_unit_test(test_sse_parser_crlf_every_split),
        cmocka_unit_test(test_sse_parser_cr_every_split),
        cmocka_unit_test(test_sse_parser_partial_utf8),
        cmocka_unit_test(test_sse_parser_crlf_split_is_one_line_end),
        cmocka_unit_test(test_sse_parser_comments_and_empty_events),
        cmocka_unit_test(test_sse_parser_line_too_long),
        cmocka_unit_test(test_sse_parser_callback_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
