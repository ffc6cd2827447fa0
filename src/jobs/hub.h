/*
 * hub - this process's publish/subscribe of job events, behind GET /v1/jobs/{id}/events.
 *
 * DESIGN. A subscriber (one per SSE client) attaches to its job's topic at a position:
 * the seq of the last event it already delivered from its own replay. A topic caches the
 * job's events past the lowest position of its subscribers, seq-contiguous, and is filled
 * from the database by ONE watcher thread per process - never by the clients, so 1,000
 * subscribers of a job cost one query per batch of events, not 1,000. job_events is the
 * truth; everything below only decides when the watcher reads it again. It loads a topic
 * when
 *   - hub_notify(job) is called after a commit in this process (workers, API cancel):
 *     the wake-up is immediate;
 *   - PostgreSQL: a notification for the job arrives. Every transaction that writes job
 *     events sends NOTIFY refold_job_events '<job id>' (store_job_events.c); the watcher's
 *     connection LISTENs, so events committed by any node - a `refold worker` on another
 *     machine - wake it within a round trip. Notifications sent while its connection was
 *     down are lost: after every reconnect (store_sessions changes) it re-reads every
 *     topic, and it tries to reconnect every second while the database is unreachable.
 *     A slow safety net re-reads every topic each resync_ms (5 s) anyway;
 *   - SQLite: its poll tick (poll_ms, ~100 ms) finds that the database changed
 *     (store_changes_poll: PRAGMA data_version), which is how events committed by other
 *     processes - a `refold worker` on the same file - arrive;
 *   - a topic is new (its first subscriber may have read the database just before an
 *     event whose notification found no topic yet).
 * After a load it calls the wake function of every subscriber of the topic; the
 * subscriber then pulls what it has not delivered with hub_read(). A load that fails (the
 * database is down) is retried every 500 ms, never in a tight loop.
 * Pings: every ping_ms each subscriber is flagged and woken, so its stream writes a
 * comment; that write is how a client that went away is noticed and freed.
 *
 * The watcher sleeps in poll(2) on a wake-up pipe (written by hub_notify, hub_subscribe
 * and hub_stop only while it sleeps) and, on PostgreSQL, on the listening connection's
 * socket.
 *
 * Locks: hub->lock guards the topic list, every topic (events, subscribers, positions,
 * flags) and the stopping state. Wake functions are called with hub->lock held: they
 * must take only their own lock and never call into the hub. Subscribers must not hold
 * their own lock while calling hub_read (lock order: hub, then subscriber).
 */
#ifndef REFOLD_JOBS_HUB_H
#define REFOLD_JOBS_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

struct hub;
struct hub_sub;

struct hub_config {
    const char *db_url; /* the watcher's own connection */
    int64_t poll_ms;    /* SQLite: database change poll (100 ms) */
    int64_t resync_ms;  /* PostgreSQL: re-read every topic this often, notified or not (5 s) */
    int64_t ping_ms;    /* keep-alive comment interval (15 s) */
};

#define HUB_DEFAULT_POLL_MS 100
#define HUB_DEFAULT_RESYNC_MS 5000
#define HUB_DEFAULT_PING_MS 15000

typedef void (*hub_wake_fn)(void *ud);
/* Called by hub_read once per event past the subscriber's position, in order, with the
 * hub locked; strings borrowed for the call. */
typedef void (*hub_event_fn)(void *ud, int64_t seq, const char *type, const char *data);

/* Start the watcher thread. Caller owns the hub: hub_stop, then hub_free. */
enum rf_status hub_start(const struct hub_config *cfg, struct hub **out, struct rf_err *err);
/* End every subscription (each subscriber is woken and hub_read reports closing), refuse
 * new ones, stop the watcher, and wait up to wait_ms for subscribers to unsubscribe. */
void hub_stop(struct hub *hub, int64_t wait_ms);
/* hub_stop with the 2 s every server gives its streams: the shape of an
 * http_server_on_shutdown hook (hub is a struct hub *). */
void hub_end_streams(void *hub);
/* Free a stopped hub (NULL is ignored). Every subscriber must have unsubscribed. */
void hub_free(struct hub *hub);

/* Events of job_id were committed: load them for its subscribers now (hub may be NULL;
 * cheap when nobody follows the job). Thread-safe. */
void hub_notify(struct hub *hub, const char *job_id);

/* Attach to job_id's topic at pos (every event <= pos was delivered by the caller). fn(ud)
 * is called when there may be something to read. *behind is set (and *out NULL) when the
 * topic no longer holds the events right after pos: read the database past pos and try
 * again. RF_UNAVAILABLE once the hub is stopping. */
enum rf_status hub_subscribe(struct hub *hub, const char *job_id, int64_t pos, hub_wake_fn fn,
                             void *ud, struct hub_sub **out, bool *behind, struct rf_err *err);
/* Detach and free sub (NULL is ignored). Once this returns its wake function is not
 * running and will not run again. */
void hub_unsubscribe(struct hub_sub *sub);

struct hub_read_flags {
    bool ping;    /* a keep-alive comment is due */
    bool closing; /* the hub is stopping: end the stream */
};

/* Hand fn every cached event after sub's position, advancing it; at most max events
 * (0: all). Returns how many were handed over. */
int hub_read(struct hub_sub *sub, hub_event_fn fn, void *ud, int max, struct hub_read_flags *flags);

/* Subscribers attached now (for metrics and tests). */
int hub_subscribers(struct hub *hub);

#endif
