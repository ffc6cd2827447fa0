/*
 * cmd - the dispatch table and `refold help`. Adding a command is one row
 * here and one file cmd_<name>.c.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "core/banned.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *help;
};

static const struct command commands[] = {
    {"init", cmd_init, "init [--db URL] [--workspace NAME] [--no-config]",
     "Create or migrate the database, with a workspace and an API key.\n"
     "Seeds the built-in best practices, creates the workspace (default \"default\") and\n"
     "an API key, and saves the server URL and the key in\n"
     "$XDG_CONFIG_HOME/refold/config.json (mode 0600). The key is printed once."},
    {"serve", cmd_serve, "serve [--db URL] [--listen HOST:PORT] [--workers N] [--port-file PATH]",
     "Run the HTTP API, the web UI and the job workers. Migrates the database first.\n"
     "SIGTERM, SIGINT or SIGHUP stops gracefully."},
    {"worker", cmd_worker, "worker [--db URL] [--workers N]",
     "Run job workers only, without HTTP.\n"
     "For extra capacity next to `refold serve`, or on other machines sharing a PostgreSQL\n"
     "database. SIGTERM (SIGINT, SIGHUP) stops claiming, lets running jobs finish within\n"
     "REFOLD_SHUTDOWN_GRACE_MS (30 s), then puts the rest back in the queue. Job settings:\n"
     "docs/jobs.md; several nodes: docs/operations.md."},
    {"migrate", cmd_migrate, "migrate [--db URL]",
     "Apply pending database migrations.\n"
     "Safe to run from several processes at once (on PostgreSQL an advisory lock makes each\n"
     "migration run once)."},
    {"workspace", cmd_workspace, "workspace create NAME [--db URL] | workspace list [--db URL]",
     "Administer workspaces directly on the database (--db, else REFOLD_DB)."},
    {"key", cmd_key,
     "key create [--workspace NAME] [--name NAME] [--db URL] | key list [--workspace NAME] "
     "[--db URL] | key revoke ID|PREFIX [--workspace NAME] [--db URL]",
     "Administer API keys directly on the database (--db, else REFOLD_DB).\n"
     "A new key is printed once; only its SHA-256 hash is stored."},
    {"demo", cmd_demo, "demo [--keep] [--offline] [--tty]",
     "Run refold end to end on the bundled sample data, offline, in a few seconds.\n"
     "Creates a temporary database, starts an in-process server on a free port with\n"
     "workers, imports examples/support-agent.jsonl (compiled into the binary), runs an\n"
     "improvement of the acme-support agent, and prints the candidate's diff and how to\n"
     "promote it. The LLM replies are canned (the scripted provider, docs/llm.md) unless\n"
     "ANTHROPIC_API_KEY or OPENAI_API_KEY is set (or REFOLD_LLM_PROVIDER names a provider);\n"
     "--offline uses the canned replies anyway. The database is deleted at the end, or when\n"
     "the demo is interrupted (Ctrl-C), unless --keep is given. --tty forces the terminal\n"
     "display."},
    {"agents", cmd_agents, "agents [--status S] [--json]",
     "List the workspace's agents with their active version and numbers.\n"
     "Client commands talk to the server's API: REFOLD_URL and REFOLD_API_KEY, else the\n"
     "config file written by refold init. --json prints the API's objects (every page)."},
    {"versions", cmd_versions, "versions AGENT [--status S] [--json]",
     "List an agent's prompt versions, newest first.\n"
     "AGENT is the agent's name or id."},
    {"show", cmd_show, "show AGENT [N] [--json]",
     "Show an agent, or one of its versions.\n"
     "Without N: the agent's status, numbers and active prompt. With N: version N's\n"
     "template, its changes and the failure patterns it addresses."},
    {"diff", cmd_diff, "diff AGENT N [M] [--color=always|never|auto] [--json]",
     "Show what a version changed in the prompt template, as a unified diff.\n"
     "Version N against version M, by default against N's parent (else the active\n"
     "version; a version with neither, such as an active version 1, is an error).\n"
     "Coloured on a terminal; --color=always|never decides instead."},
    {"improve", cmd_improve,
     "improve AGENT [--max-contradictions N] [--instructions TEXT] [--model M] [--no-wait] "
     "[--json] [--tty]",
     "Run a Prompt Improvement job on an agent and follow it live.\n"
     "The job finds the contradictions between human ratings and eval predictions (at most\n"
     "--max-contradictions, 1-200, default 20), has the LLM analyse them and rewrite the\n"
     "prompt, and stores the rewrite as a candidate version. Shows a progress bar on a\n"
     "terminal (--tty forces it), one line per event otherwise. Exits 0 when the job\n"
     "completes, 1 when it fails or is cancelled. Ctrl-C stops following, not the job\n"
     "(exit 130). --no-wait only starts it."},
    {"promote", cmd_promote, "promote AGENT N [--note TEXT] [--json]",
     "Make a version the active one: promote a candidate, or roll back.\n"
     "Version N (a candidate, or an archived version) becomes active; the previous active\n"
     "version is archived in the same transaction. --note is kept as its review note."},
    {"reject", cmd_reject, "reject AGENT N [--reason TEXT] [--json]",
     "Reject a candidate version.\n"
     "--reason is kept as its review note."},
    {"import", cmd_import, "import FILE.jsonl|- [--json] [--tty] [--batch N] [--parallel N]",
     "Import agents, versions, evals, traces, ratings and eval results from a JSONL file.\n"
     "One object per line with a \"type\" (README, \"Import\"); - reads stdin.\n"
     "Agents and evals are named, traces identified by (source, external_id); importing a\n"
     "file again changes nothing. A bad line is reported on stderr with its line number\n"
     "and skipped; the rest is imported. Prints a summary per type (created, updated,\n"
     "unchanged, rejected). Exit 0 when every line was imported, 1 when some were\n"
     "rejected or the import stopped (the server could not be reached: one line says\n"
     "from which line on; importing again is safe), 2 on bad usage. Ctrl-C (SIGTERM)\n"
     "stops reading, waits up to 3 s for the answers in flight, prints the summary and\n"
     "the line from which on the file was not imported, and exits 130 (143); a second\n"
     "Ctrl-C exits at once. --batch (1-1000, default 1000) and --parallel (1-16,\n"
     "default 3) set the batch size and the requests in flight."},
    {"jobs", cmd_jobs, "jobs [--status S] [--type T] [--limit N] [--json]",
     "List the workspace's newest jobs, newest first: --limit (1-500, default 50) of them.\n"
     "Talks to the server's API (REFOLD_URL and REFOLD_API_KEY, else the config file\n"
     "written by refold init)."},
    {"job", cmd_job, "job ID [--follow] [--json]",
     "Show a job, or follow its events live.\n"
     "--follow prints its events as they happen, one line each (JSON lines with --json),\n"
     "resuming after a server restart (while it reconnects, a status line on a terminal\n"
     "says so, or a line on stderr), and exits 0 when it completes, 1 when it fails or\n"
     "is cancelled. Ctrl-C stops following, not the job (exit 130)."},
    {"cancel", cmd_cancel, "cancel ID [--json]",
     "Cancel a job.\n"
     "A queued job is cancelled at once; a running one stops at its next check (its LLM\n"
     "call is aborted) and ends cancelled."},
    {"retry", cmd_retry, "retry ID [--json]",
     "Queue a failed or cancelled job again with a fresh attempt budget (same id)."},
    {"version", cmd_version, "version", "Print refold's version."},
    {"help", cmd_help, "help [COMMAND]", "Show the commands, or one command's usage."},
};

#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static const struct command *find(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void cmd_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "refold: %s\n", msg);
}

int cmd_fail(const struct rf_err *err)
{
    cmd_error("%s", err->message[0] ? err->message : rf_status_name(err->code));
    return 1;
}

int cmd_fail_options(const struct rf_err *err)
{
    cmd_fail(err);
    return err->code == RF_INVALID && err->field[0] ? EXIT_USAGE : 1;
}

void cmd_print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    printf("%s\n", text ? text : "null");
    free(text);
}

bool cmd_int_arg(const char *flag, const char *arg, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(arg, &end, 10);
    if (!*arg || *end || errno || n < min || n > max) {
        cmd_error("--%s takes a number from %ld to %ld, not \"%s\"", flag, min, max, arg);
        return false;
    }
    *out = (int)n;
    return true;
}

bool cmd_text_arg(const char *flag, const char *arg)
{
    if (utf8_valid(arg))
        return true;
    cmd_error("--%s must be UTF-8 text", flag);
    return false;
}

bool cmd_version_arg(const char *arg, long long *out)
{
    char *end;
    const char *digits = arg[0] == 'v' ? arg + 1 : arg; /* "v2" reads as 2 */
    long long n = strtoll(digits, &end, 10);
    if (!*digits || *end || n < 1 || n > INT32_MAX || *digits == '+' || *digits == '-') {
        cmd_error("\"%s\" is not a version number (1, 2, ...)", arg);
        return false;
    }
    *out = n;
    return true;
}

const char *cmd_grouped(long long v, char *out, size_t n)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t len = strlen(digits), used = 0;
    if (v < 0 && n > 1)
        out[used++] = '-';
    for (size_t i = 0; i < len && used + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            out[used++] = ',';
        out[used++] = digits[i];
    }
    out[used] = '\0';
    return out;
}

const char *cmd_plural(long long n)
{
    return n == 1 ? "" : "s";
}

const char *cmd_disagreements(long long missed, long long false_alarms, char *out, size_t n)
{
    snprintf(out, n, "%lld missed failure%s, %lld false alarm%s", missed, cmd_plural(missed),
             false_alarms, cmd_plural(false_alarms));
    return out;
}

void cmd_shell_word(const char *s, char *out, size_t n)
{
    bool safe = *s != '\0';
    for (const char *p = s; *p && safe; p++)
        safe = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,",
                      *p) != NULL;
    if (safe) {
        snprintf(out, n, "%s", s);
        return;
    }
    size_t used = 0;
    out[used++] = '\'';
    for (const char *p = s; *p && used + 5 < n; p++) {
        if (*p == '\'') { /* close, escaped quote, reopen */
            memcpy(out + used, "'\\''", 4);
            used += 4;
        } else {
            out[used++] = *p;
        }
    }
    out[used++] = '\'';
    out[used] = '\0';
}

/* What cmd_getopt last refused, for cmd_usage's line; empty when nothing. */
static char opt_problem[160];

int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *opts)
{
    opterr = 0;
    opt_problem[0] = '\0';
    int c = getopt_long(argc, argv, shortopts, opts, NULL);
    if (c != '?')
        return c;
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    /* optopt is a long option's val when that option was misused (--json=yes, --batch
     * without a value), else the unknown short option's letter, which may equal a val. */
    bool long_opt = strncmp(arg, "--", 2) == 0;
    const struct option *o = opts;
    while (optopt && long_opt && o->name && o->val != optopt)
        o++;
    if (optopt && long_opt && o->name)
        snprintf(opt_problem, sizeof opt_problem, "--%s %s", o->name,
                 o->has_arg == required_argument ? "needs a value" : "takes no value");
    else if (optopt)
        snprintf(opt_problem, sizeof opt_problem, "unknown option -%c", optopt);
    else
        snprintf(opt_problem, sizeof opt_problem, "unknown option %.100s", arg);
    return c;
}

int cmd_usage(const char *command)
{
    const struct command *c = find(command);
    const char *usage = c ? c->usage : "COMMAND [options] (see refold help)";
    if (opt_problem[0])
        fprintf(stderr, "refold: %s: %s (usage: refold %s)\n", command, opt_problem, usage);
    else
        fprintf(stderr, "usage: refold %s\n", usage);
    opt_problem[0] = '\0';
    return EXIT_USAGE;
}

int cmd_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(opt_problem, sizeof opt_problem, fmt, ap);
    va_end(ap);
    return cmd_usage(command);
}

int cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return cmd_usage("help");
    if (argc > 1) {
        const struct command *c = find(argv[1]);
        if (!c) {
            cmd_error("unknown command \"%s\" (see refold help)", argv[1]);
            return EXIT_USAGE;
        }
        printf("usage: refold %s\n\n%s\n", c->usage, c->help);
        return 0;
    }
    printf("usage: refold COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) {
        const char *nl = strchr(commands[i].help, '\n');
        int len = nl ? (int)(nl - commands[i].help) : (int)strlen(commands[i].help);
        printf("  %-12s %.*s\n", commands[i].name, len, commands[i].help);
    }
    printf("\nrefold help COMMAND shows a command's options.\n"
           "Settings: REFOLD_DB, REFOLD_LISTEN, REFOLD_WORKERS, REFOLD_LOG, REFOLD_URL, "
           "REFOLD_API_KEY (see README); job settings in docs/jobs.md.\n");
    return 0;
}

int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cmd_usage("version");
    printf("refold %s\n", REFOLD_VERSION);
    return 0;
}

int cmd_main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(1, argv);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0)
        return cmd_version(0, NULL);
    const struct command *c = find(name);
    if (!c) {
        cmd_error("unknown command \"%s\" (see refold help)", name);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char *args[] = {"help", argv[1]};
            return cmd_help(2, args);
        }
    return c->fn(argc - 1, argv + 1);
}
