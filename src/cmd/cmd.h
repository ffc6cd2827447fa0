/*
 * cmd - the CLI: one file per command, each `int cmd_X(int argc, char **argv)`
 * returning the process exit status (0 success, 1 failure, 2 bad usage).
 * cmd.c holds the dispatch table and `refold help`; config.c the settings
 * every command shares (SPEC §10: flags override environment variables,
 * which override the config file written by `refold init`).
 *
 * argv as seen by a command starts at the command name (argv[0] = "serve").
 * Errors go to stderr as one line: "refold: <message>".
 */
#ifndef REFOLD_CMD_H
#define REFOLD_CMD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define EXIT_USAGE 2

/* Dispatch argv[1] to its command. */
int cmd_main(int argc, char **argv);

/* Print "refold: <message>" on stderr. */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the error and return the exit status for it (1, or 2 for RF_INVALID usage). */
int cmd_fail(const struct rf_err *err);
/* Print a usage line for the command and return EXIT_USAGE. */
int cmd_usage(const char *command);

struct config {
    const char *db;      /* REFOLD_DB, default "refold.db" */
    const char *listen;  /* REFOLD_LISTEN, default "127.0.0.1:7878" */
    int workers;         /* REFOLD_WORKERS, default 2 */
    const char *log;     /* REFOLD_LOG, default "info" */
    const char *url;     /* REFOLD_URL, else config file, else http://<listen> */
    const char *api_key; /* REFOLD_API_KEY, else config file */
    bool api_key_from_file;
};

/* Defaults, then the config file (client settings), then the environment. Strings are
 * borrowed from the environment or from storage that lives until exit. Also applies
 * REFOLD_LOG to the logger. */
void config_load(struct config *cfg);
/* $XDG_CONFIG_HOME/refold/config.json (or ~/.config/...), into out. */
void config_path(char *out, size_t n);
/* Write url and api_key to the config file with mode 0600 (directories 0700). */
enum rf_status config_save(const char *url, const char *api_key, struct rf_err *err);

/* Open the database named by db and (when migrate) apply pending migrations. Prints the
 * error and returns NULL on failure. */
struct store *cmd_open_store(const char *db, bool migrate);

/* Block SIGTERM/SIGINT (for sigwait) in this and every later thread; ignore SIGPIPE. */
void cmd_block_signals(sigset_t *set);

/* Commands. */
int cmd_help(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_workspace(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
