/*
 * cmd - the CLI: one file per command, each `int cmd_X(int argc, char **argv)`
 * returning the process exit status (0 success, 1 failure, 2 bad usage).
 * cmd.c holds the dispatch table, `refold help`, and the helpers every
 * command shares (configuration, one-line errors).
 */
#ifndef REFOLD_CMD_H
#define REFOLD_CMD_H

#define EXIT_USAGE 2

/* Dispatch argv[1] to its command. */
int cmd_main(int argc, char **argv);

#endif
