/*
 * test_core - unit tests of the core helpers: ULIDs, template variables and tags, the
 * line diff, JSON helpers, key hashing, buffers, timestamps, error messages and
 * log quoting.
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
#include "core/clock.h"
#include "core/crypto.h"
#include "core/diff.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/status.h"
#include "core/template.h"
#include "core/ulid.h"
#include "core/utf8.h"

static void test_ulid_format(void **state)
{
    (void)state;
    char id[ID_MAX];
    id_new("agent_", id);
    assert_int_equal(strlen(id), 6 + ULID_LEN);
    assert_true(id_valid("agent_", id));
    assert_false(id_valid("trace_", id));
    /* Crockford base32 only: no I, L, O, U. */
    for (const char *p = id + 6; *p; p++)
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p));
    assert_false(id_valid("agent_", "agent_01ARZ3NDEKTSV4RRFFQ69G5FAV0")); /* 27 chars */
    assert_false(id_valid("agent_", "agent_01ARZ3NDEKTSV4RRFFQ69G5FAI"));  /* I */
    assert_false(id_valid("agent_", "agent_81ARZ3NDEKTSV4RRFFQ69G5FAV"));  /* > 48 bits */
}

static void test_ulid_order_and_time(void **state)
{
    (void)state;
    char prev[ID_MAX], cur[ID_MAX];
    int64_t before = clock_now_ms();
    ulid_new(prev);
    for (int i = 0; i < 100000; i++) {
        ulid_new(cur);
        assert_true(strcmp(prev, cur) < 0); /* strictly increasing, also within a millisecond */
        memcpy(prev, cur, sizeof cur);
    }
    int64_t t = ulid_time_ms(cur), after = clock_now_ms();
    assert_true(t >= before && t <= after + 1);
}

static void assert_vars(const char *tmpl, const char *expected_json)
{
    json_t *got = template_variables(tmpl);
    char *text = jx_dump(got);
    assert_string_equal(text, expected_json);
    free(text);
    json_decref(got);
}

static void test_template_variables(void **state)
{
    (void)state;
    assert_vars("Hello {{name}}, reply in {{ language }}.", "[\"name\",\"language\"]");
    assert_vars("{{a}} {{a}} {{ a }} {{b.c}} {{_x1}}", "[\"a\",\"b.c\",\"_x1\"]");
    assert_vars("{{\tname\n}}", "[\"name\"]");
    assert_vars("no vars here", "[]");
    assert_vars("{{}} {{ }} {{1x}} {{a b}} {{a-b}} {name} {{unclosed", "[]");
    assert_vars("{{{x}}}", "[\"x\"]");
    assert_vars("{{ {{y}} }}", "[\"y\"]");
    assert_vars("", "[]");
}

static void test_template_sets(void **state)
{
    (void)state;
    json_t *a = json_pack("[s, s]", "x", "y"), *b = json_pack("[s, s, s]", "y", "x", "x");
    json_t *c = json_pack("[s]", "x");
    assert_true(template_same_set(a, b));
    assert_false(template_same_set(a, c));
    json_t *missing = template_missing(a, c);
    char *text = jx_dump(missing);
    assert_string_equal(text, "[\"y\"]");
    free(text);
    json_decref(missing);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void assert_tags(const char *tmpl, const char *expected_json)
{
    json_t *got = template_tags(tmpl);
    char *text = jx_dump(got);
    assert_string_equal(text, expected_json);
    free(text);
    json_decref(got);
}

static void test_template_tags(void **state)
{
    (void)state;
    /* No tags: plain variables (else included, as before), text, prose with braces. */
    assert_tags("Hello {{name}}, reply in {{ language }}. {{else}} {{end}}", "[]");
    assert_tags("a { b {{ c {{}} {{ }} {{1x}} {{ \"q\" }} {{ 'q' }} {{-1}}", "[]");
    assert_tags("JSON {\"a\": {\"b\": 1}} and {{\"a\": 1}} and {x}", "[]");
    /* Unclosed, or a one-line tag broken by a newline or a brace: text. */
    assert_tags("{{#if x {{/if {{#if\nx}} {{#a{b}} {% open {# open {{! open {{!-- open", "[]");
    assert_tags("", "[]");
    assert_tags(NULL, "[]");
    /* Mustache and Handlebars. */
    assert_tags("{{#if premium}}Offer the upgrade.{{/if}}",
                "[\"{{#if premium}}\",\"{{/if}}\"]");
    assert_tags("{{# each  items }}- {{.}}\n{{/each}}",
                "[\"{{#each items}}\",\"{{.}}\",\"{{/each}}\"]");
    assert_tags("{{^x}}none{{/x}} {{> partial}} {{! a  comment }} {{{ raw }}} {{&raw2}} "
                "{{=<% %>=}}",
                "[\"{{^x}}\",\"{{/x}}\",\"{{>partial}}\",\"{{!a comment}}\",\"{{{raw}}}\","
                "\"{{&raw2}}\",\"{{=<% %>=}}\"]");
    assert_tags("{{!-- a {{b}} }}\n c --}} {{! two\nlines }}",
                "[\"{{!-- a {{b}} }} c --}}\",\"{{!two lines}}\"]");
    assert_tags("{{else if y}} {{ x | upper }} {{@index}} {{~#if a ~}}{{~/if~}} {{lookup a b}}",
                "[\"{{else if y}}\",\"{{x | upper}}\",\"{{@index}}\",\"{{~#if a~}}\","
                "\"{{~/if~}}\",\"{{lookup a b}}\"]");
    /* Jinja, whitespace control included; statements and comments may span lines. */
    assert_tags("{{- name }}{%if x%}A{%- else -%}B{% endif %}{# note\n  two #}{%+ for y in\n z %}",
                "[\"{{- name}}\",\"{% if x %}\",\"{%- else -%}\",\"{% endif %}\","
                "\"{# note two #}\",\"{%+ for y in z %}\"]");
    /* A Pandoc attribute {#id} does not pair with a later comment's close. */
    assert_tags("## Intro {#sec}\ntext {# c #}", "[\"{# c #}\"]");
    /* Repeats are kept; a triple-brace tag still holds its variable. */
    assert_tags("{{/if}}{{/if}}", "[\"{{/if}}\",\"{{/if}}\"]");
    assert_vars("{{{raw}}} {{#if a}}", "[\"raw\"]");
}

static void assert_nested(const char *tmpl, const char *problem)
{
    json_t *tags = template_tags(tmpl);
    char why[256] = "";
    bool ok = template_tags_nested(tags, why, sizeof why);
    if (problem)
        assert_string_equal(why, problem);
    assert_true(ok == (problem == NULL));
    json_decref(tags);
}

static void test_template_tags_compare(void **state)
{
    (void)state;
    json_t *a = template_tags("{{#if a}}x{{/if}} {{#if b}}y{{/if}}");
    json_t *b = template_tags("{{# if a }}x y{{/if}}");
    json_t *lost = template_tags_missing(a, b), *added = template_tags_missing(b, a);
    char *text = jx_dump(lost);
    assert_string_equal(text, "[\"{{#if b}}\",\"{{/if}}\"]");
    free(text);
    assert_int_equal(json_array_size(added), 0);
    json_decref(lost);
    json_decref(added);
    json_decref(a);
    json_decref(b);

    assert_nested("{{#if a}}{{#each b}}{{.}}{{/each}}{{^}}{{/if}} {{#> layout}}{{/layout}}", NULL);
    assert_nested("{{#if a}}{{#each b}}{{/if}}{{/each}}", "{{/if}} closes {{#each b}}");
    assert_nested("{{/if}}{{#if a}}", "{{/if}} closes no open block");
    assert_nested("{{#if a}}", "{{#if a}} is never closed");
    assert_nested("{{#if a}}{% endif %}", "{% endif %} closes {{#if a}}");
    /* A Jinja statement opens a block only when the template has its end tag. */
    assert_nested("{% if x %}{% set y = 1 %}{% else %}{% endif %}{% include 'f' %}", NULL);
    assert_nested("{%- for i in l -%}{% if i %}{% endif %}{% endfor %}", NULL);
    assert_nested("{% endif %}{% if x %}", "{% endif %} closes no open block");
    assert_nested("no tags", NULL);
}

static void assert_diff(const char *a, const char *b, const char *expected, int added,
                        int removed)
{
    struct diff_result d;
    diff_lines(a, b, "a", "b", &d);
    assert_string_equal(d.unified, expected);
    assert_int_equal(d.added, added);
    assert_int_equal(d.removed, removed);
    free(d.unified);
}

static void test_diff_basic(void **state)
{
    (void)state;
    assert_diff("same\n", "same\n", "", 0, 0);
    assert_diff("a\nb\nc\n", "a\nB\nc\n", "--- a\n+++ b\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n", 1, 1);
    assert_diff("", "new\n", "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n", 1, 0);
    assert_diff("old\n", "", "--- a\n+++ b\n@@ -1 +0,0 @@\n-old\n", 0, 1);
    assert_diff("x", "x\n", "--- a\n+++ b\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+x\n",
                1, 1);
}

static void test_diff_hunks_and_context(void **state)
{
    (void)state;
    /* Two changes 10 lines apart make two hunks with 3 lines of context each. */
    char a[512] = "", b[512] = "";
    for (int i = 1; i <= 20; i++) {
        char line[16];
        snprintf(line, sizeof line, "l%d\n", i);
        strncat(a, line, sizeof a - strlen(a) - 1);
        if (i == 2)
            strncat(b, "L2\n", sizeof b - strlen(b) - 1);
        else if (i == 15)
            strncat(b, "L15\n", sizeof b - strlen(b) - 1);
        else
            strncat(b, line, sizeof b - strlen(b) - 1);
    }
    assert_diff(a, b,
                "--- a\n+++ b\n@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n"
                "@@ -12,7 +12,7 @@\n l12\n l13\n l14\n-l15\n+L15\n l16\n l17\n l18\n",
                2, 2);
}

/* A long text with two changed lines: the first and the last, so nothing is
 * trimmed as a common prefix or suffix and Myers sees every line. */
static void test_diff_long_text_few_changes(void **state)
{
    (void)state;
    enum { LINES = 3000 };
    struct buf a, b;
    buf_init(&a, BUF_UNLIMITED);
    buf_init(&b, BUF_UNLIMITED);
    for (int i = 1; i <= LINES; i++) {
        buf_printf(&a, "line %d\n", i);
        if (i == 1)
            buf_puts(&b, "first changed\n");
        else if (i == LINES)
            buf_puts(&b, "last changed\n");
        else
            buf_printf(&b, "line %d\n", i);
    }
    struct diff_result d;
    diff_lines(buf_str(&a), buf_str(&b), "a", "b", &d);
    assert_int_equal(d.added, 2);
    assert_int_equal(d.removed, 2);
    assert_non_null(strstr(d.unified, "@@ -1,4 +1,4 @@\n-line 1\n+first changed\n line 2\n"));
    assert_non_null(strstr(d.unified, "\n-line 3000\n+last changed\n"));
    free(d.unified);

    /* Texts that share nothing past DIFF_MAX_EDITS: one replacement, still exact. */
    buf_reset(&b);
    for (int i = 1; i <= LINES; i++)
        buf_printf(&b, "other %d\n", i);
    diff_lines(buf_str(&a), buf_str(&b), "a", "b", &d);
    assert_int_equal(d.added, LINES);
    assert_int_equal(d.removed, LINES);
    free(d.unified);
    buf_release(&a);
    buf_release(&b);
}

static void test_diff_applies(void **state)
{
    (void)state;
    /* Property: replaying the unified diff on a yields b (random edits, 200 trials). */
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        char a[4096] = "", b[4096] = "";
        int n = rand() % 30;
        for (int i = 0; i < n; i++) {
            char line[16];
            snprintf(line, sizeof line, "w%d\n", rand() % 6);
            strncat(a, line, sizeof a - strlen(a) - 1);
            int r = rand() % 4;
            if (r == 0)
                continue; /* deleted */
            if (r == 1) {
                snprintf(line, sizeof line, "n%d\n", rand() % 6);
                strncat(b, line, sizeof b - strlen(b) - 1);
            }
            snprintf(line, sizeof line, "w%d\n", rand() % 6);
            strncat(b, r == 3 ? line : "", sizeof b - strlen(b) - 1);
        }
        struct diff_result d;
        diff_lines(a, b, "a", "b", &d);
        /* Apply: walk a's lines, following hunks. */
        char out[8192] = "";
        const char *ap = a;
        int aline = 1;
        const char *p = strstr(d.unified, "@@");
        while (p) {
            int as, ac = 1, bs, bc = 1;
            if (sscanf(p, "@@ -%d,%d +%d,%d @@", &as, &ac, &bs, &bc) < 2) {
                sscanf(p, "@@ -%d +%d", &as, &bs);
                const char *c1 = strchr(p + 3, ',');
                const char *sp = strchr(p + 3, ' ');
                ac = (c1 && c1 < sp) ? atoi(c1 + 1) : 1;
            }
            int start = ac == 0 ? as + 1 : as;
            while (aline < start) {
                const char *e = strchr(ap, '\n');
                strncat(out, ap, (size_t)(e - ap + 1));
                ap = e + 1;
                aline++;
            }
            const char *l = strchr(p, '\n') + 1;
            while (*l && strncmp(l, "@@", 2) != 0) {
                const char *e = strchr(l, '\n');
                if (*l == ' ' || *l == '-') {
                    if (*l == ' ')
                        strncat(out, l + 1, (size_t)(e - l));
                    ap = strchr(ap, '\n') + 1;
                    aline++;
                } else if (*l == '+') {
                    strncat(out, l + 1, (size_t)(e - l));
                }
                l = e + 1;
            }
            p = *l ? l : NULL;
        }
        strncat(out, ap, sizeof out - strlen(out) - 1);
        assert_string_equal(out, b);
        free(d.unified);
    }
}

static void test_jsonx_fields(void **state)
{
    (void)state;
    json_t *o = NULL;
    struct rf_err err;
    assert_int_equal(jx_parse("{\"a\": 1,", 8, &o, &err), RF_INVALID);
    assert_non_null(strstr(err.message, "malformed JSON"));
    assert_int_equal(jx_parse("{\"a\":1,\"a\":2}", 13, &o, &err), RF_INVALID); /* duplicate */
    const char *doc = "{\"name\":\"héllo\",\"n\":5,\"b\":true,\"z\":null,\"e\":\"\"}";
    assert_int_equal(jx_parse(doc, strlen(doc), &o, &err), RF_OK);
    const char *s;
    assert_int_equal(jx_string(o, "name", JX_REQUIRED, 5, false, &s, &err), RF_OK);
    assert_string_equal(s, "héllo"); /* 5 characters, 6 bytes */
    assert_int_equal(jx_string(o, "name", JX_REQUIRED, 4, false, &s, &err), RF_INVALID);
    assert_string_equal(err.field, "name");
    assert_int_equal(jx_string(o, "missing", JX_REQUIRED, 0, false, &s, &err), RF_INVALID);
    assert_string_equal(err.field, "missing");
    assert_int_equal(jx_string(o, "missing", JX_OPTIONAL, 0, false, &s, &err), RF_OK);
    assert_null(s);
    assert_int_equal(jx_string(o, "z", JX_NULLABLE, 0, false, &s, &err), RF_OK);
    assert_null(s);
    assert_int_equal(jx_string(o, "z", JX_OPTIONAL, 0, false, &s, &err), RF_INVALID);
    assert_int_equal(jx_string(o, "e", JX_OPTIONAL, 0, false, &s, &err), RF_INVALID);
    assert_int_equal(jx_string(o, "n", JX_OPTIONAL, 0, false, &s, &err), RF_INVALID);
    int64_t n;
    bool present;
    assert_int_equal(jx_int(o, "n", JX_REQUIRED, 1, 5, &n, &present, &err), RF_OK);
    assert_true(present);
    assert_int_equal(n, 5);
    assert_int_equal(jx_int(o, "n", JX_REQUIRED, 1, 4, &n, &present, &err), RF_INVALID);
    bool b;
    assert_int_equal(jx_bool(o, "b", JX_REQUIRED, &b, NULL, &err), RF_OK);
    assert_true(b);
    assert_int_equal(jx_bool(o, "n", JX_REQUIRED, &b, NULL, &err), RF_INVALID);
    json_decref(o);
    /* A string with an embedded NUL is rejected at parse time. */
    assert_int_equal(jx_parse("{\"s\":\"a\\u0000b\"}", 16, &o, &err), RF_INVALID);
}

static void test_key_hashing(void **state)
{
    (void)state;
    char hex[SHA256_HEX_LEN + 1];
    crypto_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    crypto_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_buf_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "hello"), RF_OK);
    assert_int_equal(buf_printf(&b, "%s", "world"), RF_OK);
    assert_int_equal(buf_putc(&b, '!'), RF_TOO_LARGE);
    assert_string_equal(buf_str(&b), "helloworld");
    buf_consume(&b, 5);
    assert_string_equal(buf_str(&b), "world");
    char *s = buf_detach(&b, NULL);
    assert_string_equal(s, "world");
    free(s);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static void test_clock_rfc3339(void **state)
{
    (void)state;
    char out[RFC3339_LEN];
    clock_format(1795685853123LL, out);
    assert_string_equal(out, "2026-11-26T09:37:33.123Z");
    int64_t ms;
    assert_true(clock_parse("2026-11-26T09:37:33.123Z", &ms));
    assert_int_equal(ms, 1795685853123LL);
    assert_true(clock_parse("2026-11-26T10:37:33.1+01:00", &ms));
    assert_int_equal(ms, 1795685853100LL);
    assert_true(clock_parse("2026-11-26T09:37:33Z", &ms));
    assert_false(clock_parse("2026-11-26", &ms));
    assert_false(clock_parse("2026-13-26T09:37:33Z", &ms));
    assert_false(clock_parse("2026-11-26T09:37:33", &ms));
}

/* Control characters in names: C0, DEL and C1 are found, with how many characters precede
 * them; other characters, multi-byte ones included, are not controls. */
static void test_utf8_control(void **state)
{
    (void)state;
    size_t at = 99;
    assert_int_equal(utf8_control("plain name", &at), -1);
    assert_int_equal(utf8_control("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0", &at), -1);
    assert_int_equal(at, 99);
    assert_int_equal(utf8_control("a\tb", &at), 0x09);
    assert_int_equal(at, 1);
    assert_int_equal(utf8_control("\x1b[31m", &at), 0x1b);
    assert_int_equal(at, 0);
    assert_int_equal(utf8_control("\xc3\xa9\xc3\xa9\x7f", &at), 0x7f);
    assert_int_equal(at, 2);
    assert_int_equal(utf8_control("\xe2\x82\xac\xc2\x9b" "2J", &at), 0x9b);
    assert_int_equal(at, 1);
    assert_int_equal(utf8_control("x\xc2\x85", NULL), 0x85);

    /* jx_string refuses them with JX_NAME only, naming the field. */
    json_t *o = json_pack("{s:s}", "name", "a\nb");
    const char *out;
    struct rf_err err;
    rf_err_clear(&err);
    assert_int_equal(jx_string(o, "name", JX_REQUIRED, 200, false, &out, &err), RF_OK);
    assert_int_equal(jx_string(o, "name", JX_REQUIRED | JX_NAME, 200, false, &out, &err),
                     RF_INVALID);
    assert_string_equal(err.field, "name");
    assert_string_equal(err.message,
                        "name must not contain control characters (U+000A at character 2)");
    json_decref(o);
}

/* Error messages are valid UTF-8 whatever they quote: JSON error bodies are built from them. */
static void test_error_messages_utf8(void **state)
{
    (void)state;
    char s[64];
    snprintf(s, sizeof s, "%s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok");
    utf8_scrub(s);
    assert_string_equal(s, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok"); /* well-formed: kept */
    snprintf(s, sizeof s, "%s", "a\xff b\xc0\xaf c\xed\xa0\x80 d\xc3");
    utf8_scrub(s);
    assert_string_equal(s, "a? b?? c??? d"); /* stray, overlong, surrogate; cut at the end */
    snprintf(s, sizeof s, "%s", "x\xf0\x9f\x98");
    utf8_scrub(s);
    assert_string_equal(s, "x");

    /* A message cut by its fixed size in the middle of a character loses that character. */
    char id[600] = "";
    for (int i = 0; i < 290; i++)
        strcat(id, "\xc3\xa9");
    struct rf_err err;
    rf_fail(&err, RF_NOT_FOUND, "agent %s not found", id);
    size_t len = strlen(err.message);
    assert_true(len == sizeof err.message - 1 || len == sizeof err.message - 2);
    json_t *j = json_string(err.message); /* NULL for invalid UTF-8 */
    assert_non_null(j);
    json_decref(j);
    rf_fail(&err, RF_NOT_FOUND, "agent %s not found", "\xff\xfe");
    assert_string_equal(err.message, "agent ?? not found");
}

static void test_utf8_untrimmed(void **state)
{
    (void)state;
    assert_false(utf8_untrimmed(""));
    assert_false(utf8_untrimmed("bot"));
    assert_false(utf8_untrimmed("support bot 2"));
    assert_false(utf8_untrimmed("\xe2\x80\x8b"
                                "bot")); /* U+200B is not White_Space */
    assert_true(utf8_untrimmed("bot "));
    assert_true(utf8_untrimmed(" bot"));
    assert_true(utf8_untrimmed("\xc2\xa0"
                               "bot"));             /* U+00A0 */
    assert_true(utf8_untrimmed("bot\xe3\x80\x80")); /* U+3000 */
    assert_true(utf8_untrimmed("bot\xe2\x80\x8a")); /* U+200A */
    assert_true(utf8_untrimmed(" "));
    assert_false(utf8_untrimmed(" \xff")); /* not UTF-8: not judged */
    assert_false(utf8_blank(""));
    assert_false(utf8_blank(" a "));
    assert_true(utf8_blank(" \xc2\xa0\xe2\x80\x83 "));

    json_t *o = json_pack("{s:s, s:s}", "name", "bot ", "blank", "  ");
    const char *out;
    struct rf_err err;
    rf_err_clear(&err);
    assert_int_equal(jx_string(o, "name", JX_NAME, 200, false, &out, &err), RF_OK);
    assert_int_equal(jx_string(o, "name", JX_NAME | JX_TRIMMED, 200, false, &out, &err),
                     RF_INVALID);
    assert_string_equal(err.field, "name");
    assert_string_equal(err.message, "name must not begin or end with white space");
    assert_int_equal(jx_string(o, "blank", JX_NAME | JX_TRIMMED, 200, false, &out, &err),
                     RF_INVALID);
    assert_string_equal(err.message, "blank must not be only white space");
    json_decref(o);
}

static void test_log_quote(void **state)
{
    (void)state;
    char q[64];
    /* Nothing a client sends (a percent-decoded path) can end the line or forge a field. */
    assert_string_equal(log_quote("/v1/x\nts=1 level=error msg=\"forged\"", q, sizeof q),
                        "\"/v1/x\\nts=1 level=error msg=\\\"forged\\\"\"");
    assert_string_equal(log_quote("a\rb\tc\x1b[2Jd\x7f\x01", q, sizeof q),
                        "\"a\\rb\\tc\\x1b[2Jd\\x7f\\x01\"");
    assert_string_equal(log_quote("caf\xc3\xa9 \xff", q, sizeof q), "\"caf\xc3\xa9 \xff\"");
    /* Truncated, never past the buffer, an escape never cut in half, always closed. */
    char small[8];
    assert_string_equal(log_quote("abcdefgh", small, sizeof small), "\"abcd\"");
    assert_string_equal(log_quote("ab\x1b", small, sizeof small), "\"ab\"");
    assert_string_equal(log_quote("a\x1b", small, sizeof small), "\"a\\x1b\"");
    assert_string_equal(log_quote(NULL, small, sizeof small), "\"\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ulid_format),
        cmocka_unit_test(test_ulid_order_and_time),
        cmocka_unit_test(test_template_variables),
        cmocka_unit_test(test_template_sets),
        cmocka_unit_test(test_template_tags),
        cmocka_unit_test(test_template_tags_compare),
        cmocka_unit_test(test_diff_basic),
        cmocka_unit_test(test_diff_hunks_and_context),
        cmocka_unit_test(test_diff_long_text_few_changes),
        cmocka_unit_test(test_diff_applies),
        cmocka_unit_test(test_jsonx_fields),
        cmocka_unit_test(test_key_hashing),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_clock_rfc3339),
        cmocka_unit_test(test_error_messages_utf8),
        cmocka_unit_test(test_utf8_control),
        cmocka_unit_test(test_utf8_untrimmed),
        cmocka_unit_test(test_log_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
