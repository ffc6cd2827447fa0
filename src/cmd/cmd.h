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
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/status.h"

#define EXIT_USAGE 2

/* Dispatch argv[1] to its command. */
int cmd_main(int argc, char **argv);

/* Print "refold: <message>" on stderr. */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the error and return the exit status for it: 1. */
int cmd_fail(const struct rf_err *err);
/* The same for a request built from the user's options (a list's filters): 2, bad usage,
 * when the server refused one of its parameters (RF_INVALID naming a field), else 1. */
int cmd_fail_options(const struct rf_err *err);
/* Print a usage line for the command and return EXIT_USAGE; after cmd_getopt refused an
 * option, one line that names it: "refold: import: --batch needs a value (usage: …)". */
int cmd_usage(const char *command);
/* The same with the problem given: "refold: diff: --color takes ... (usage: …)"; 2. */
int cmd_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* getopt_long without getopt's own message on stderr: an unknown option, or one missing
 * or given a value it does not take, returns '?' and is named by the next cmd_usage. */
struct option;
int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *opts);
/* Print v as indented JSON on stdout (the --json output of the client commands). */
void cmd_print_json(const json_t *v);
/* A whole-number option (--flag N) from min to max: false (after printing why) when arg
 * is not one. */
bool cmd_int_arg(const char *flag, const char *arg, long min, long max, int *out);
/* A text option (--flag TEXT) sent to the API as a JSON string: false (after printing why)
 * when it is not UTF-8, which JSON cannot carry. */
bool cmd_text_arg(const char *flag, const char *arg);
/* A version number argument (1, 2, ...): false (after printing why) when it is not one. */
bool cmd_version_arg(const char *arg, long long *out);

struct config {
    const char *db;      /* REFOLD_DB, default "refold.db" */
    const char *listen;  /* REFOLD_LISTEN, default "127.0.0.1:7878" */
    int workers;         /* REFOLD_WORKERS, default 2, 0..CONFIG_MAX_WORKERS */
    const char *log;     /* REFOLD_LOG, default "info" */
    const char *url;     /* REFOLD_URL, else config file, else http://<listen> */
    const char *api_key; /* REFOLD_API_KEY, else config file */
    bool api_key_from_file;
    const char *file_error; /* why the config file exists but could not be used, else NULL */
    /* Jobs (docs/jobs.md); all in milliseconds. */
    int64_t lease_ms;        /* REFOLD_LEASE_MS, default 30000 */
    int64_t heartbeat_ms;    /* REFOLD_HEARTBEAT_MS, default 10000 */
    int64_t poll_ms;         /* REFOLD_POLL_MS, default 200: idle workers' claim poll */
    int64_t sweep_ms;        /* REFOLD_SWEEP_MS, default 1000: expired-lease sweeper */
    int64_t cancel_poll_ms;  /* REFOLD_CANCEL_POLL_MS, default 200 */
    int64_t backoff_base_ms; /* REFOLD_BACKOFF_BASE_MS, default 5000 */
    int64_t grace_ms;        /* REFOLD_SHUTDOWN_GRACE_MS, default 30000 */
    int64_t sse_ping_ms;     /* REFOLD_SSE_PING_MS, default 15000 */
    int64_t sse_poll_ms;     /* REFOLD_SSE_POLL_MS, default 100: other processes' events */
    int64_t sse_resync_ms;   /* REFOLD_SSE_RESYNC_MS, default 5000: PostgreSQL safety re-read */
    bool test_jobs;          /* REFOLD_TEST_JOBS=1: test_sleep and POST /v1/test/jobs */
    /* HTTP (serve). */
    int64_t max_body;        /* REFOLD_MAX_BODY, default 8 MiB, 1 KiB..1 GiB */
    int http_threads;        /* REFOLD_HTTP_THREADS, default 4, 1..64 */
};

#define CONFIG_MAX_WORKERS 64

/* Defaults, then the config file (client settings), then the environment. Strings are
 * borrowed from the environment or from storage that lives until exit. Also applies
 * REFOLD_LOG to the logger. A malformed or out-of-range setting keeps its default and
 * logs a warning naming it. */
void config_load(struct config *cfg);
/* $XDG_CONFIG_HOME/refold/config.json (or ~/.config/...), into out. */
void config_path(char *out, size_t n);
/* Write url and api_key to the config file with mode 0600 (directories 0700). */
enum rf_status config_save(const char *url, const char *api_key, struct rf_err *err);

/* Open the database named by db and (when migrate) apply pending migrations. Prints the
 * error and returns NULL on failure. */
struct store *cmd_open_store(const char *db, bool migrate);

/* Block SIGTERM/SIGINT and SIGHUP (unless ignored, as under nohup) for sigwait, in this and
 * every later thread; ignore SIGPIPE. */
void cmd_block_signals(sigset_t *set);

/* From now until the process exits, SIGINT (Ctrl-C) or SIGTERM erases the status line on
 * erase_fd ("\r\e[K"; -1: none), writes line (one line, newline included) on stderr and exits
 * with 128 + the signal: 130 after Ctrl-C, 143 after SIGTERM (interrupt.c). */
void cmd_exit_on_interrupt(const char *line, int erase_fd);
/* The same for a command that winds down itself: the first SIGINT or SIGTERM only sets *flag
 * to its number (read(2) on a pipe returns EINTR meanwhile), and a second one does what
 * cmd_exit_on_interrupt does. The command exits with 128 + *flag once it has wound down. */
void cmd_interrupt_flag(volatile sig_atomic_t *flag, const char *line, int erase_fd);

/* How long a stop may last past the grace period (shutdown.c): the steps after the grace
 * take at most 9 s when the database answers. */
#define CMD_STOP_BOUND_MS 15000
/* How long a stop may last after a second SIGTERM/SIGINT (shutdown.c). */
#define CMD_HURRY_BOUND_MS 3000
struct worker_pool;
/* A graceful stop begins: if the process has not exited grace_ms + CMD_STOP_BOUND_MS from
 * now (threads stuck in database calls that get no answer), log it and _exit(1). A second
 * SIGTERM/SIGINT meanwhile ends pool's grace period at once (pool_hurry; pool may be NULL)
 * and the stop must then end within CMD_HURRY_BOUND_MS, else _exit(128 + that signal); a
 * third one _exits at once. The signals must be blocked (cmd_block_signals). */
void cmd_shutdown_start(int64_t grace_ms, struct worker_pool *pool);
/* Name the step the stop is at, for that log line: a string constant. */
void cmd_shutdown_phase(const char *what);
/* pool_stop returned: the second signal has nothing more to hurry (call before pool_free). */
void cmd_shutdown_pool_stopped(void);
/* The exit status of a stop that ended: 0, or 128 + the second signal's number. */
int cmd_shutdown_status(void);

/* Log a warning when the LLM settings (REFOLD_LLM_PROVIDER, a key, the timeouts ...) are
 * unusable: improvement jobs would fail with llm_not_configured (serve and worker). */
void cmd_llm_check(void);
struct pool_config;
/* The worker pool settings of cfg (cmd_worker.c). */
void cmd_pool_config(const struct config *cfg, struct pool_config *pc);

/* Commands. */
int cmd_help(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_workspace(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_agents(int argc, char **argv);
int cmd_versions(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_improve(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_reject(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* v with thousands separators ("1,234,567") in out; returns out. */
const char *cmd_grouped(long long v, char *out, size_t n);
/* "s" unless n is 1: "%lld contradiction%s". */
const char *cmd_plural(long long n);
/* "1 missed failure, 2 false alarms" in out; returns out. */
const char *cmd_disagreements(long long missed, long long false_alarms, char *out, size_t n);
/* s as one shell word for a command line shown to the user: as is when it holds only
 * safe characters, else in single quotes. */
void cmd_shell_word(const char *s, char *out, size_t n);
/* Write a unified diff, coloured when color (+ green, - red, @@ cyan, headers bold). */
void cmd_print_diff(FILE *out, const char *unified, bool color);
/* What an improvement produced, for people: the failure patterns, the candidate and its
 * changes (improve and demo; result is the job's result). */
void cmd_improve_summary(FILE *out, const char *agent_name, const json_t *result, bool color);

#endif
