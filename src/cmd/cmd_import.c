/*
 * cmd_import - `refold import FILE.jsonl|-`: bulk import through the API (import.h does
 * the work). This file is the command around it: the arguments, the progress line on a
 * terminal (stderr, redrawn about five times a second: records read, records/s,
 * rejections so far), the summary per type on stdout (or as JSON with --json), a note on
 * stderr when records counted unchanged may have been stored by this import (a lost
 * answer: struct import_stats.uncertain), and the exit status: 0 when every line was
 * imported, 1 when some were rejected or the import stopped, 2 on bad usage. Ctrl-C or
 * SIGTERM (interrupt.c's cmd_interrupt_flag) winds the import down (import.h,
 * "Interruption"): the summary, one line from which line on the file was not imported,
 * and exit status 128 + the signal; a second signal exits at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/import.h"
#include "cmd/term.h"
#include "core/jsonx.h"
#include "core/banned.h"

static double rate(const struct import_stats *st)
{
    return st->elapsed_us > 0 ? (double)st->records * 1e6 / (double)st->elapsed_us : 0.0;
}

struct progress {
    const char *name;
    int width; /* the terminal's columns */
    bool shown;
};

/* The progress line, kept narrower than the terminal: a line that wraps is not erased by
 * the next redraw. A long file name is cut to its end ("…export.jsonl") or left out, then
 * the rate and the rejections are, and what still does not fit is cut off. */
static void on_progress(void *ud, const struct import_stats *st)
{
    struct progress *p = ud;
    char a[32], b[32], c[32], tail[160], line[512];
    int max = p->width - 1;
    cmd_grouped(st->records, a, sizeof a);
    cmd_grouped((long long)rate(st), b, sizeof b);
    cmd_grouped(st->rejected, c, sizeof c);
    for (int form = 0; form < 3; form++) {
        if (form == 0)
            snprintf(tail, sizeof tail, "%s records · %s records/s · %s rejected", a, b, c);
        else if (form == 1)
            snprintf(tail, sizeof tail, "%s records · %s rejected", a, c);
        else
            snprintf(tail, sizeof tail, "%s records", a);
        if ((int)(jx_utf8_len("  importing: ") + jx_utf8_len(tail)) <= max)
            break;
    }
    const char *name = p->name, *cut = "";
    int room = max - (int)(jx_utf8_len("  importing : ") + jx_utf8_len(tail));
    if ((int)jx_utf8_len(name) > room) {
        int keep = room >= 8 ? room - 1 : 0; /* "…" and the name's end, or nothing */
        cut = keep ? "…" : "";
        while (*name && (int)jx_utf8_len(name) > keep) {
            do { /* drop whole characters from the front */
                name++;
            } while (((unsigned char)*name & 0xC0) == 0x80);
        }
    }
    snprintf(line, sizeof line, "  importing%s%s%s: %s", *name ? " " : "", cut, name, tail);
    /* At most max characters (a very narrow terminal), never cut inside one. */
    size_t n = 0;
    for (int cols = 0; line[n] && (cols < max || ((unsigned char)line[n] & 0xC0) == 0x80); n++)
        cols += ((unsigned char)line[n] & 0xC0) != 0x80;
    fprintf(stderr, "\r\033[K%.*s", (int)n, line);
    fflush(stderr);
    p->shown = true;
}

/* Erase the progress line before a rejected line's report (also on stderr), so the report
 * does not run on from it; the next tick draws the progress line again below it. */
static void on_report(void *ud)
{
    struct progress *p = ud;
    if (p->shown) {
        fputs("\r\033[K", stderr);
        p->shown = false;
    }
}

/* The table counts what the server answered for; records are the lines read, which an
 * import that stopped did not all send. */
static void print_summary(const char *name, const struct import_stats *st, bool stopped, int sig)
{
    char a[32], b[32], c[32], d[32];
    struct import_counts total = {0};
    if (sig)
        printf("Interrupted importing %s after reading %s record%s in %.2f s; the server's "
               "answers:\n\n",
               name, cmd_grouped(st->records, a, sizeof a), st->records == 1 ? "" : "s",
               (double)st->elapsed_us / 1e6);
    else if (stopped)
        printf("Stopped importing %s after reading %s record%s in %.2f s; the server's "
               "answers:\n\n",
               name, cmd_grouped(st->records, a, sizeof a), st->records == 1 ? "" : "s",
               (double)st->elapsed_us / 1e6);
    else
        printf("Imported %s: %s record%s in %.2f s (%s records/s)\n\n", name,
               cmd_grouped(st->records, a, sizeof a), st->records == 1 ? "" : "s",
               (double)st->elapsed_us / 1e6, cmd_grouped((long long)rate(st), b, sizeof b));
    printf("%-16s %12s %12s %12s %12s\n", "TYPE", "CREATED", "UPDATED", "UNCHANGED", "REJECTED");
    for (int t = 0; t < IMPORT_NTYPES; t++) {
        const struct import_counts *k = &st->by_type[t];
        total.created += k->created;
        total.updated += k->updated;
        total.unchanged += k->unchanged;
        total.rejected += k->rejected;
        if (!k->created && !k->updated && !k->unchanged && !k->rejected)
            continue;
        printf("%-16s %12s %12s %12s %12s\n", import_type_name((enum import_type)t),
               cmd_grouped(k->created, a, sizeof a), cmd_grouped(k->updated, b, sizeof b),
               cmd_grouped(k->unchanged, c, sizeof c), cmd_grouped(k->rejected, d, sizeof d));
    }
    printf("%-16s %12s %12s %12s %12s\n", "total", cmd_grouped(total.created, a, sizeof a),
           cmd_grouped(total.updated, b, sizeof b), cmd_grouped(total.unchanged, c, sizeof c),
           cmd_grouped(total.rejected, d, sizeof d));
}

static void print_summary_json(const char *name, const struct import_stats *st, bool stopped,
                               int sig)
{
    json_t *types = json_object(),
           *total = json_pack("{s:I, s:I, s:I, s:I}", "created", (json_int_t)0, "updated",
                              (json_int_t)0, "unchanged", (json_int_t)0, "rejected", (json_int_t)0);
    struct import_counts sum = {0};
    for (int t = 0; t < IMPORT_NTYPES; t++) {
        const struct import_counts *k = &st->by_type[t];
        sum.created += k->created;
        sum.updated += k->updated;
        sum.unchanged += k->unchanged;
        sum.rejected += k->rejected;
        json_object_set_new(types, import_type_name((enum import_type)t),
                            json_pack("{s:I, s:I, s:I, s:I}", "created", (json_int_t)k->created,
                                      "updated", (json_int_t)k->updated, "unchanged",
                                      (json_int_t)k->unchanged, "rejected",
                                      (json_int_t)k->rejected));
    }
    json_object_set_new(total, "created", json_integer(sum.created));
    json_object_set_new(total, "updated", json_integer(sum.updated));
    json_object_set_new(total, "unchanged", json_integer(sum.unchanged));
    json_object_set_new(total, "rejected", json_integer(sum.rejected));
    json_t *doc =
        json_pack("{s:s, s:I, s:I, s:f, s:f, s:b, s:o, s:o, s:I}", "file", name, "lines",
                  (json_int_t)st->lines, "records", (json_int_t)st->records, "seconds",
                  (double)st->elapsed_us / 1e6, "records_per_second", rate(st), "stopped", stopped,
                  "types", types, "total", total, "uncertain", (json_int_t)st->uncertain);
    if (sig) {
        json_object_set_new(doc, "interrupted", json_string(sig == SIGINT ? "SIGINT" : "SIGTERM"));
        json_object_set_new(doc, "not_imported_from_line",
                            st->undone_from ? json_integer(st->undone_from) : json_null());
        json_object_set_new(doc, "unanswered", json_integer(st->unanswered));
    }
    cmd_print_json(doc);
    json_decref(doc);
}

/* The one line after an interrupted import's summary: what was not imported, and that
 * importing again is safe (every line is found as stored: README, "Idempotency"). */
static void report_interrupted(const struct import_stats *st, int sig)
{
    char n[32], l[32], u[64] = "";
    const char *what = sig == SIGINT ? "interrupted" : "stopped by SIGTERM";
    if (st->unanswered)
        snprintf(u, sizeof u, " (%s sent may or may not be stored)",
                 cmd_grouped(st->unanswered, n, sizeof n));
    if (!st->undone_from) {
        cmd_error("import %s, after every record was imported", what);
        return;
    }
    cmd_error("import %s: the records from line %s on were not all imported%s; the table "
              "counts what the server answered; importing the file again is safe: what is "
              "stored counts as unchanged",
              what, cmd_grouped(st->undone_from, l, sizeof l), u);
}

int cmd_import(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    bool as_json = false, force_tty = false;
    struct import_opts io = {.errors = stderr};
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"tty", no_argument, NULL, 't'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"parallel", required_argument, NULL, 'p'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 't':
            force_tty = true;
            break;
        case 'b':
            if (!cmd_int_arg("batch", optarg, 1, 1000, &io.batch))
                return EXIT_USAGE;
            break;
        case 'p':
            if (!cmd_int_arg("parallel", optarg, 1, 16, &io.parallel))
                return EXIT_USAGE;
            break;
        default:
            return cmd_usage("import");
        }
    }
    if (argc - optind != 1)
        return cmd_usage("import");
    const char *path = argv[optind];
    bool from_stdin = strcmp(path, "-") == 0;
    struct import_source src = {.fd = STDIN_FILENO, .name = from_stdin ? "stdin" : path};
    if (!from_stdin) {
        src.fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (src.fd < 0 || (fstat(src.fd, &sb) == 0 && S_ISDIR(sb.st_mode))) {
            cmd_error("cannot open %s: %s", path,
                      src.fd < 0 ? strerror(errno) : "it is a directory");
            if (src.fd >= 0)
                close(src.fd);
            return 1;
        }
    }
    struct client cl;
    struct rf_err err;
    struct import_stats st;
    struct progress prog = {.name = src.name, .width = term_width(STDERR_FILENO)};
    int rc;
    if (client_init(&cl, &cfg, &err) != RF_OK) {
        if (!from_stdin)
            close(src.fd);
        return cmd_fail(&err);
    }
    cl.raw = true; /* names and templates are compared with the file's, byte for byte */
    if (force_tty || term_tty(STDERR_FILENO)) {
        io.progress = on_progress;
        io.before_report = on_report;
        io.ud = &prog;
    }
    static volatile sig_atomic_t interrupted;
    io.stop = &interrupted;
    cmd_interrupt_flag(&interrupted,
                       "refold: import stopped at once (second signal): the requests in flight "
                       "may or may not be stored; importing the file again is safe\n",
                       io.progress ? STDERR_FILENO : -1);
    enum rf_status irc = import_run(&cl, &src, &io, &st, &err);
    int sig = irc == RF_CANCELLED ? (int)interrupted : 0;
    if (prog.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    if (as_json)
        print_summary_json(src.name, &st, irc != RF_OK, sig);
    else
        print_summary(src.name, &st, irc != RF_OK, sig);
    fflush(stdout);
    if (st.uncertain) {
        char n[32];
        cmd_error("%s record%s counted unchanged may have been created or updated by this "
                  "import: the connection of %s request broke, and the request sent again "
                  "found %s stored (README, \"Import\")",
                  cmd_grouped(st.uncertain, n, sizeof n), st.uncertain == 1 ? "" : "s",
                  st.uncertain == 1 ? "its" : "their", st.uncertain == 1 ? "it" : "them");
    }
    if (sig) {
        report_interrupted(&st, sig);
        rc = 128 + sig;
    } else if (irc != RF_OK) {
        char n[32];
        cmd_error("import stopped after reading %s record%s: %s",
                  cmd_grouped(st.records, n, sizeof n), st.records == 1 ? "" : "s", err.message);
        rc = interrupted ? 128 + (int)interrupted : 1; /* Ctrl-C met a failure on the way out */
    } else if (st.rejected) {
        char n[32];
        if (st.rejected == st.records)
            cmd_error("%s record%s rejected (reported above): nothing was imported",
                      cmd_grouped(st.rejected, n, sizeof n), st.rejected == 1 ? "" : "s");
        else
            cmd_error("%s record%s rejected (reported above); the rest was imported",
                      cmd_grouped(st.rejected, n, sizeof n), st.rejected == 1 ? "" : "s");
        rc = 1;
    } else {
        rc = 0;
    }
    if (!from_stdin)
        close(src.fd);
    client_release(&cl);
    return rc;
}
