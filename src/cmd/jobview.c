/*
 * jobview - the live view of a job's events; see jobview.h.
 */
#include "cmd/jobview.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/term.h"
#include "core/clock.h"
#include "core/jsonx.h"
#include "core/banned.h"

#define BAR_CELLS 16
#define LABEL_COLS 27

/* "analyzing_failures" -> "analyzing failures". */
static void label_of(const char *stage, char *out, size_t n)
{
    snprintf(out, n, "%s", stage);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = ' ';
}

void job_view_init(struct job_view *v, FILE *out, bool tty, bool color)
{
    memset(v, 0, sizeof *v);
    v->out = out;
    v->tty = tty;
    v->color = color;
    v->utf8 = term_utf8();
    v->width = tty ? term_width(fileno(out)) : 80;
}

static void clear_live(struct job_view *v)
{
    if (v->live) {
        fputs("\r\033[K", v->out);
        v->live = false;
    }
}

/* "rewrite · 245 tokens", or "" outside LLM calls. */
static void tokens_text(const struct job_view *v, char *out, size_t n)
{
    if (v->step[0])
        snprintf(out, n, "%s · %lld tokens", v->step, (long long)v->tokens);
    else
        out[0] = '\0';
}

/* The status line: "  ⠙ generating improved prompt  [██████░░░]  60%  rewrite · 245 tokens". */
static void draw_live(struct job_view *v)
{
    static const char *const spin_utf8[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    static const char *const spin_ascii[] = {"|", "/", "-", "\\"};
    char label[64], tokens[96];
    label_of(v->stage, label, sizeof label);
    tokens_text(v, tokens, sizeof tokens);
    int filled = v->progress * BAR_CELLS / 100;
    /* Columns: indent 2, spinner 2, label, bar 2+cells+1, percent 5, tokens 2+len. */
    int cols = 4 + LABEL_COLS + BAR_CELLS + 3 + 5;
    bool show_tokens = tokens[0] && cols + 2 + (int)strlen(tokens) < v->width;
    bool show_bar = cols < v->width;
    /* The line must stay narrower than the terminal: a line that wraps leaves its first
     * row behind at every redraw, as \r\e[K erases only the last. Labels are ASCII. */
    int label_cols = show_bar ? LABEL_COLS : v->width - 5;
    if (label_cols > LABEL_COLS)
        label_cols = LABEL_COLS;
    if (label_cols < 0)
        label_cols = 0;
    const char *spin = v->utf8 ? spin_utf8[v->spin % 10] : spin_ascii[v->spin % 4];
    v->spin++;
    fprintf(v->out, "\r\033[K  %s%s%s %-*.*s", TERM_SGR(v->color, "36"), spin, TERM_RESET(v->color),
            show_bar ? label_cols : 0, label_cols, label);
    if (show_bar) {
        fputs(" [", v->out);
        fputs(TERM_SGR(v->color, "32"), v->out);
        for (int i = 0; i < BAR_CELLS; i++) {
            if (i == filled)
                fputs(TERM_SGR(v->color, "2"), v->out);
            fputs(i < filled ? (v->utf8 ? "█" : "#") : (v->utf8 ? "░" : "-"), v->out);
        }
        fprintf(v->out, "%s] %3d%%", TERM_RESET(v->color), v->progress);
    }
    if (show_tokens)
        fprintf(v->out, "  %s%s%s", TERM_SGR(v->color, "2"), tokens, TERM_RESET(v->color));
    v->live = true;
    fflush(v->out);
}

/* The notice that takes the status line's place while the stream reconnects. */
static void draw_away(struct job_view *v, int64_t away_ms)
{
    char text[96], cut[128];
    follow_link_text(away_ms, v->utf8, text, sizeof text);
    /* Indent 2, mark 1, space 1: narrower than the terminal, as draw_live's line. */
    term_fit(text, v->width - 5, v->utf8, cut, sizeof cut);
    fprintf(v->out, "\r\033[K  %s!%s %s", TERM_SGR(v->color, "33"), TERM_RESET(v->color), cut);
    v->live = true;
    fflush(v->out);
}

void job_view_link(void *ud, enum follow_link state, int64_t away_ms, const char *why)
{
    struct job_view *v = ud;
    if (!v->tty) {
        follow_link_stderr(NULL, state, away_ms, why);
    } else if (state != FOLLOW_BACK) {
        draw_away(v, away_ms);
    } else if (v->stage[0]) {
        draw_live(v);
    } else {
        clear_live(v);
        fflush(v->out);
    }
}

/* A permanent line above the status line: "  MARK text  detail". */
static void put_line(struct job_view *v, const char *mark, const char *mark_sgr, const char *text,
                     const char *detail)
{
    clear_live(v);
    bool more = detail && *detail;
    fprintf(v->out, "  %s%s%s %-*s", v->color ? mark_sgr : "", mark, TERM_RESET(v->color),
            more ? LABEL_COLS : 0, text);
    if (more)
        fprintf(v->out, " %s%s%s", TERM_SGR(v->color, "2"), detail, TERM_RESET(v->color));
    fputc('\n', v->out);
}

/* The stage in progress is over: write its permanent line (TTY). */
static void finish_stage(struct job_view *v)
{
    if (!v->tty || !v->stage[0])
        return;
    char label[64], tokens[96], detail[400];
    label_of(v->stage, label, sizeof label);
    tokens_text(v, tokens, sizeof tokens);
    snprintf(detail, sizeof detail, "%s%s%s", v->detail, v->detail[0] && tokens[0] ? " · " : "",
             tokens);
    put_line(v, v->utf8 ? "✓" : "ok", "\033[32m", label, detail);
}

static void on_progress(struct job_view *v, const json_t *d)
{
    const char *stage = jx_get_str(d, "stage", "");
    int pct = (int)jx_get_int(d, "progress");
    const json_t *step = json_object_get(d, "step");
    char label[64];
    label_of(stage, label, sizeof label);
    if (strcmp(stage, v->stage) != 0) {
        finish_stage(v);
        snprintf(v->stage, sizeof v->stage, "%s", stage);
        v->progress = pct;
        v->detail[0] = v->step[0] = '\0';
        v->tokens = 0;
        if (json_object_get(d, "contradictions_found")) {
            long long found = jx_get_int(d, "contradictions_found");
            char dis[96];
            snprintf(v->detail, sizeof v->detail, "%lld contradiction%s (%s)", found,
                     cmd_plural(found),
                     cmd_disagreements(jx_get_int(d, "missed_failures"),
                                       jx_get_int(d, "false_alarms"), dis, sizeof dis));
        }
        if (!v->tty) {
            fprintf(v->out, "[%3d%%] %s%s%s\n", pct, label, v->detail[0] ? ": " : "", v->detail);
        } else if (strcmp(stage, "completed") == 0) {
            put_line(v, v->utf8 ? "✓" : "ok", "\033[32m", label, "");
            v->stage[0] = '\0';
        } else {
            draw_live(v);
        }
    } else if (json_is_string(step)) {
        snprintf(v->step, sizeof v->step, "%s", json_string_value(step));
        v->tokens = jx_get_int(d, "output_tokens");
        v->progress = pct;
        if (v->tty)
            draw_live(v);
        else
            fprintf(v->out, "[%3d%%] %s: %s call, %lld tokens received\n", pct, label, v->step,
                    (long long)v->tokens);
    } else {
        v->progress = pct;
        if (v->tty)
            draw_live(v);
        else
            fprintf(v->out, "[%3d%%] %s\n", pct, label);
    }
}

/* "in 5 s" for an RFC 3339 time, or the time itself when it does not parse. */
static void when(const char *rfc3339, char *out, size_t n)
{
    int64_t at;
    if (clock_parse(rfc3339, &at)) {
        int64_t s = (at - clock_now_ms() + 999) / 1000;
        snprintf(out, n, "in %lld s", (long long)(s > 0 ? s : 0));
    } else {
        snprintf(out, n, "at %s", rfc3339);
    }
}

void job_view_event(void *ud, int64_t seq, const char *type, const json_t *data)
{
    struct job_view *v = ud;
    char text[768], label[64];
    (void)seq;
    label_of(v->stage, label, sizeof label);
    if (strcmp(type, "progress") == 0) {
        on_progress(v, data);
    } else if (strcmp(type, "log") == 0) {
        const char *level = jx_get_str(data, "level", "");
        if (v->tty) {
            bool warn = !strcmp(level, "warn") || !strcmp(level, "error");
            put_line(v, warn ? "!" : "·", warn ? "\033[33m" : "\033[2m",
                     jx_get_str(data, "message", ""), "");
            if (v->stage[0])
                draw_live(v);
        } else {
            fprintf(v->out, "log %s: %s\n", level, jx_get_str(data, "message", ""));
        }
    } else if (strcmp(type, "retry") == 0) {
        const json_t *e = json_object_get(data, "error");
        char at[64];
        when(jx_get_str(data, "run_at", ""), at, sizeof at);
        snprintf(text, sizeof text, "attempt %lld failed (%s: %s); retrying %s",
                 jx_get_int(data, "attempt"), jx_get_str(e, "code", ""),
                 jx_get_str(e, "message", ""), at);
        if (v->tty) {
            put_line(v, v->utf8 ? "↻" : "~", "\033[33m", text, "");
            v->stage[0] = '\0'; /* the next attempt starts over from the first stage */
        } else {
            fprintf(v->out, "retry: %s\n", text);
        }
    } else if (strcmp(type, "completed") == 0) {
        finish_stage(v);
        v->stage[0] = '\0';
        json_decref(v->result);
        v->result = json_incref(json_object_get(data, "result"));
        if (!v->tty) {
            const json_t *n = json_object_get(v->result, "new_version_number");
            if (json_is_integer(n))
                fprintf(v->out, "completed: candidate v%lld created\n",
                        (long long)json_integer_value(n));
            else
                fprintf(v->out, "completed: no candidate\n");
        }
    } else if (strcmp(type, "failed") == 0 || strcmp(type, "cancelled") == 0) {
        const json_t *e = json_object_get(data, "error");
        bool failed = strcmp(type, "failed") == 0;
        if (failed) {
            snprintf(text, sizeof text, "%s: %s", jx_get_str(e, "code", ""),
                     jx_get_str(e, "message", ""));
        } else {
            snprintf(text, sizeof text, "cancelled");
        }
        if (v->tty)
            put_line(v, v->utf8 ? "✗" : "x", "\033[31m", v->stage[0] ? label : type, text);
        else
            fprintf(v->out, "%s%s%s\n", type, failed ? ": " : "", failed ? text : "");
        v->stage[0] = '\0';
    }
    fflush(v->out);
}

void job_view_end(struct job_view *v)
{
    clear_live(v);
    fflush(v->out);
    json_decref(v->result);
    v->result = NULL;
}
