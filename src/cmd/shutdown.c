/*
 * shutdown - the bound on a graceful stop of `refold serve` and `refold worker`.
 *
 * DESIGN. A graceful stop joins threads that may be inside a database call: idle workers
 * claiming or looking for due jobs, the pool's monitor (heartbeats, the sweeper), a worker
 * releasing its job, the SSE hub's event watcher, HTTP handlers. On a node cut off from
 * PostgreSQL by a network that stops delivering packets, such a call gets no answer until
 * TCP gives up (about 15 minutes with Linux's defaults), and the stop waited for it. So
 * once the stop begins, a watchdog thread sleeps for the grace period plus
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
 * Threading: the phase is an atomic pointer to a string constant, set by the stopping
 * thread and read by the watchdog.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/banned.h"

static _Atomic(const char *) phase = "workers";
static int64_t bound_ms;

static void *watchdog(void *arg)
{
    (void)arg;
    clock_sleep_ms(bound_ms);
    log_error("shutdown did not finish in time: exiting without waiting for threads stuck in "
              "database calls",
              "waiting_for=\"%s\" after_ms=%lld", atomic_load(&phase), (long long)bound_ms);
    _exit(1);
}

void cmd_shutdown_start(int64_t grace_ms)
{
    bound_ms = grace_ms + CMD_STOP_BOUND_MS;
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
