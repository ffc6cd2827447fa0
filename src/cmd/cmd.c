/*
 * cmd - the dispatch table and `refold help`. Adding a command is one row
 * here and one file cmd_<name>.c.
 */
#include "cmd/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/banned.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *help;
};

static const struct command commands[] = {
    {"init", cmd_init, "init [--db URL] [--workspace NAME] [--no-config]",
     "Create or migrate the database, seed the built-in best practices, create the workspace\n"
     "(default \"default\") and an API key, and save the server URL and the key in\n"
     "$XDG_CONFIG_HOME/refold/config.json (mode 0600). The key is printed once."},
    {"serve", cmd_serve, "serve [--db URL] [--listen HOST:PORT] [--workers N] [--port-file PATH]",
     "Run the HTTP API, the web UI and the job workers. Migrates the database first.\n"
     "SIGTERM or SIGINT stops gracefully."},
    {"worker", cmd_worker, "worker [--db URL] [--workers N]",
     "Run job workers only, without HTTP.\n"
     "For extra capacity next to `refold serve`, or on other machines sharing a PostgreSQL\n"
     "database. SIGTERM stops claiming, lets running jobs finish within\n"
     "REFOLD_SHUTDOWN_GRACE_MS (30 s), then puts the rest back in the queue. Job settings:\n"
     "docs/jobs.md; several nodes: docs/operations.md."},
    {"migrate", cmd_migrate, "migrate [--db URL]",
     "Apply pending database migrations. Safe to run from several processes at once (on\n"
     "PostgreSQL an advisory lock makes each migration run once)."},
    {"workspace", cmd_workspace, "workspace create NAME | workspace list [--db URL]",
     "Administer workspaces directly on the database."},
    {"key", cmd_key,
     "key create [--workspace NAME] [--name NAME] | key list [--workspace NAME] | "
     "key revoke ID|PREFIX [--workspace NAME]",
     "Administer API keys directly on the database. A new key is printed once; only its\n"
     "SHA-256 hash is stored."},
    {"jobs", cmd_jobs, "jobs [--status S] [--type T] [--limit N] [--json]",
     "List the workspace's jobs, newest first.\n"
     "Talks to the server's API (REFOLD_URL and REFOLD_API_KEY, else the config file\n"
     "written by refold init)."},
    {"job", cmd_job, "job ID [--follow] [--json]",
     "Show a job, or follow its events live.\n"
     "--follow prints its events as they happen, one line each (JSON lines with --json),\n"
     "resuming after a server restart, and exits 0 when it completes, 1 when it fails or\n"
     "is cancelled."},
    {"cancel", cmd_cancel, "cancel ID",
     "Cancel a job.\n"
     "A queued job is cancelled at once; a running one stops at its next check (its LLM\n"
     "call is aborted) and ends cancelled."},
    {"retry", cmd_retry, "retry ID",
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

int cmd_usage(const char *command)
{
    const struct command *c = find(command);
    if (c)
        fprintf(stderr, "usage: refold %s\n", c->usage);
    else
        fprintf(stderr, "usage: refold COMMAND [options] (see refold help)\n");
    return EXIT_USAGE;
}

int cmd_help(int argc, char **argv)
{
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
    (void)argc;
    (void)argv;
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
