/*
 * shutdown - the bound on a graceful stop of `refold serve` and `refold worker`, and the
 * operator's second signal that cuts it short.
 *
 * DESIGN. A graceful stop joins threads that may be inside a database call: idle workers
 * claiming or looking for due jobs, the pool's monitor (heartbeats, the sweeper), a worker
 * releasing its job, the SSE hub's event watcher, HTTP handlers. On a node cut off from
 * PostgreSQL by a network that stops delivering packets, such a call gets no answer until
 * TCP gives up (about 15 minutes with Linux's defaults), and the stop waited for it. So
 * once the stop begins, a watchdog thread waits for the grace period plus
 * CMD_STOP_BOUND_MS; if the process is still stopping then, it logs what it was waiting
 * for and ends the process with _exit(1): the stuck threads are abandoned, and no exit
 * handler runs beside them.
 *
 * That is as safe as SIGKILL, which refold survives at any point: every write of a job
 * is fenced by (id, attempt, lease owner) and made in a transaction, so a write the
 * server never received is lost, a transaction left open is rolled back by the server
 * when it notices the connection is gone, and the jobs still claimed by this process are
 * requeued by another node's sweeper when their leases run out (costing them an attempt,
 * as a crash does). A healthy stop never reaches the bound: its steps after the grace
 * period are themselves bounded (see docs/operations.md, "Stopping a node").
 *
 * Second signal. The watchdog also takes the SIGTERMs and SIGINTs that arrive during the
 * stop (the main thread took the first with sigwait; they stay blocked in every thread).
 * The second one means "stop now" (Ctrl-C pressed again): the watchdog logs it, ends the
 * pool's grace period at once (pool_hurry: running jobs are stopped and released to the
 * queue without using an attempt, as when the grace runs out, which takes milliseconds
 * when the database answers) and brings the bound in to CMD_HURRY_BOUND_MS from then. The
 * rest of the stop goes on as usual, and the process exits with 128 + that signal's
 * number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process a signal ended:
 * not 0, since the jobs did not get their grace. A stop still running at the new bound
 * (the database does not answer) is ended with _exit, with the same status; so is the
 * process at a third signal, at once. Releasing is tried first rather than a bare _exit
 * because it is quick and spares the jobs an attempt and the wait for their lease.
 *
 * Threading: the phase and the second signal are atomics, set by the stopping thread and
 * the watchdog; `lock` guards `pool`, so that the watchdog never hurries a freed pool.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/log.h"
#include "jobs/pool.h"
#include "core/banned.h"

static _Atomic(const char *) phase = "workers";
static atomic_int second; /* the second signal's number; 0 before it */
static int64_t bound_ms;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards pool */
static struct worker_pool *pool;

static void on_second_signal(int sig, int64_t *deadline)
{
    if (atomic_load(&second)) {
        log_warn("another signal: exiting now", "signal=%d waiting_for=\"%s\"", sig,
                 atomic_load(&phase));
        _exit(128 + sig);
    }
    atomic_store(&second, sig);
    log_warn("second signal: stopping now: running jobs go back to the queue without using "
             "an attempt; a third signal exits at once",
             "signal=%d bound_ms=%d", sig, CMD_HURRY_BOUND_MS);
    pthread_mutex_lock(&lock);
    pool_hurry(pool); /* never blocks */
    pthread_mutex_unlock(&lock);
    int64_t hurried = clock_mono_ms() + CMD_HURRY_BOUND_MS;
    if (hurried < *deadline)
        *deadline = hurried;
}

static void *watchdog(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int64_t deadline = clock_mono_ms() + bound_ms;
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000),
                              .tv_nsec = (long)(left % 1000) * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0)
            on_second_signal(sig, &deadline);
        /* else EAGAIN (time is up: the loop sees it) or EINTR */
    }
    int sig = atomic_load(&second);
    if (sig) {
        log_error("shutdown did not finish in time after the second signal: exiting without "
                  "waiting for threads stuck in database calls",
                  "waiting_for=\"%s\" after_ms=%d", atomic_load(&phase), CMD_HURRY_BOUND_MS);
        _exit(128 + sig);
    }
    log_error("shutdown did not finish in time: exiting without waiting for threads stuck in "
              "database calls",
              "waiting_for=\"%s\" after_ms=%lld", atomic_load(&phase), (long long)bound_ms);
    _exit(1);
}

void cmd_shutdown_start(int64_t grace_ms, struct worker_pool *p)
{
    bound_ms = grace_ms + CMD_STOP_BOUND_MS;
    pthread_mutex_lock(&lock);
    pool = p;
    pthread_mutex_unlock(&lock);
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0)
        pthread_detach(t);
    else
        log_warn("cannot start the shutdown watchdog: the stop is not bounded", NULL);
}

void cmd_shutdown_phase(const char *what)
{
    atomic_store(&phase, what);
}

void cmd_shutdown_pool_stopped(void)
{
    pthread_mutex_lock(&lock);
    pool = NULL;
    pthread_mutex_unlock(&lock);
}

int cmd_shutdown_status(void)
{
    int sig = atomic_load(&second);
    return sig ? 128 + sig : 0;
}
