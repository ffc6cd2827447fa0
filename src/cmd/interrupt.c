/*
 * interrupt - what a client command does at Ctrl-C (SIGINT) or SIGTERM: `refold improve` and
 * `refold job --follow` stop following at once (follow.c), `refold import` finishes what
 * it has in flight and prints its summary, then stops (cmd_import.c). Either way the exit
 * status is 128 + the signal's number (130 after Ctrl-C, 143 after SIGTERM), as a shell
 * reports a command a signal ended, and a status line drawn on a terminal is erased before
 * the last words.
 *
 * The handler may only call async-signal-safe functions: what it writes is made before a
 * signal can arrive, and it writes it with write(2). Signals other than the two are left
 * alone; the handlers are installed without SA_RESTART, so a read(2) waiting on a pipe
 * returns EINTR and the command sees the flag. Process-wide state, set once per process.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/banned.h"

static char last_line[400];
static size_t last_len;
static volatile sig_atomic_t status_fd = -1; /* the status line's descriptor, or -1 */
static volatile sig_atomic_t *flag;          /* cmd_interrupt_flag's, or NULL */

static void on_signal(int sig)
{
    static const char erase[] = "\r\033[K";
    if (flag && !*flag) { /* the first one: the command winds down and exits itself */
        *flag = sig;
        return;
    }
    if (status_fd >= 0 && write(status_fd, erase, sizeof erase - 1) < 0) {
        /* nothing more to do about it */
    }
    if (write(STDERR_FILENO, last_line, last_len) < 0) {
        /* likewise */
    }
    _exit(128 + sig);
}

static void install(const char *line, int fd, volatile sig_atomic_t *f)
{
    int n = snprintf(last_line, sizeof last_line, "%s", line);
    last_len = n > 0 ? ((size_t)n < sizeof last_line ? (size_t)n : sizeof last_line - 1) : 0;
    status_fd = fd;
    flag = f;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cmd_exit_on_interrupt(const char *line, int erase_fd)
{
    install(line, erase_fd, NULL);
}

void cmd_interrupt_flag(volatile sig_atomic_t *f, const char *line, int erase_fd)
{
    *f = 0;
    install(line, erase_fd, f);
}
