/*
 * hub - pub/sub of job events for SSE subscribers; the DESIGN comment is in hub.h.
 *
 * Invariants (all under hub->lock): a topic caches events base+1 .. seq, contiguous,
 * ev[i].seq == base + 1 + i (so base == seq - nev); a topic exists while it has
 * subscribers or the watcher is loading it (`loading`); it never drops an event a
 * subscriber has not read (trimming stops at the lowest subscriber position).
 */
#include "jobs/hub.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/ulid.h"
#include "core/xalloc.h"
#include "store/store.h"
#include "core/banned.h"

#define LOAD_PAGE 1000
#define LOAD_MAX_PER_ROUND 20000
#define TRIM_SLACK 32
#define LOAD_RETRY_MS 500  /* after a failed load */
#define RECONNECT_MS 1000  /* between reconnect attempts of the listening connection */
#define LOG_EVERY_MS 10000 /* repeated failures are logged this often */

struct hub_event {
    int64_t seq;
    char *type;
    char *data;
};

struct topic {
    struct topic *next;
    char job_id[ID_MAX];
    int64_t base, seq;
    struct hub_event *ev;
    size_t nev, cap;
    struct hub_sub *subs; /* doubly linked through prev/next */
    int nsubs;
    bool dirty;   /* events may have been committed past seq */
    bool loading; /* the watcher is reading it without the lock */
};

struct hub_sub {
    struct hub *hub;
    struct topic *t;
    struct hub_sub *prev, *next;
    int64_t pos;
    bool ping;
    hub_wake_fn fn;
    void *ud;
};

struct hub {
    struct hub_config cfg;
    pthread_mutex_t lock;   /* guards everything below but st, wake_r and the watcher's */
    pthread_cond_t drained; /* the last subscriber left */
    struct topic *topics;
    int ntopics, nsubs;
    bool dirty;    /* some topic is dirty */
    bool sleeping; /* the watcher is (about to be) in poll(2): a wake-up must write wake_w */
    bool stopping;
    int wake_r, wake_w; /* the watcher's wake-up pipe (non-blocking) */
    pthread_t watcher;
    bool watcher_started;
    /* the watcher's own: */
    struct store *st;   /* its connection; nobody else uses it */
    bool push;          /* st LISTENs (PostgreSQL); else st is polled (SQLite) */
    int64_t data_token; /* store_changes_poll's */
    uint64_t sessions;  /* store_sessions(st) when the topics were last re-read */
    int64_t retry_at;   /* mono ms of the next load after a failed one; 0: none */
    int64_t next_reconnect, last_fail_log;
};

/* Make the watcher look at the hub's state now. Caller holds hub->lock. */
static void wake_watcher(struct hub *hub)
{
    if (!hub->sleeping)
        return;
    hub->sleeping = false;
    char c = 1;
    if (write(hub->wake_w, &c, 1) < 0 && errno != EAGAIN)
        log_warn("cannot wake the event watcher", "errno=%d", errno);
}

static struct topic *find_topic(struct hub *hub, const char *job_id)
{
    for (struct topic *t = hub->topics; t; t = t->next)
        if (strcmp(t->job_id, job_id) == 0)
            return t;
    return NULL;
}

static void free_topic(struct topic *t)
{
    for (size_t i = 0; i < t->nev; i++) {
        free(t->ev[i].type);
        free(t->ev[i].data);
    }
    free(t->ev);
    free(t);
}

/* Unlink and free t if nothing holds it. Caller holds hub->lock. */
static void maybe_drop_topic(struct hub *hub, struct topic *t)
{
    if (t->nsubs > 0 || t->loading)
        return;
    for (struct topic **p = &hub->topics; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    hub->ntopics--;
    free_topic(t);
}

static void wake_all(struct topic *t)
{
    for (struct hub_sub *s = t->subs; s; s = s->next)
        s->fn(s->ud);
}

/* Drop the events every subscriber has read. Caller holds hub->lock. */
static void trim(struct topic *t)
{
    if (t->nev < TRIM_SLACK)
        return;
    int64_t low = t->seq;
    for (struct hub_sub *s = t->subs; s; s = s->next)
        if (s->pos < low)
            low = s->pos;
    int64_t k = low - t->base;
    if (k <= 0)
        return;
    if (k > (int64_t)t->nev)
        k = (int64_t)t->nev;
    for (int64_t i = 0; i < k; i++) {
        free(t->ev[i].type);
        free(t->ev[i].data);
    }
    memmove(t->ev, t->ev + k, (t->nev - (size_t)k) * sizeof *t->ev);
    t->nev -= (size_t)k;
    t->base += k;
}

/* ---- the watcher thread ---- */

struct loaded {
    struct hub_event *ev;
    size_t n, cap;
};

static int collect(void *ud, int64_t seq, const char *type, const char *data, int64_t created_at)
{
    (void)created_at;
    struct loaded *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ev = xrealloc(l->ev, l->cap * sizeof *l->ev);
    }
    l->ev[l->n++] = (struct hub_event){seq, xstrdup(type), xstrdup(data ? data : "{}")};
    return 0;
}

struct pending {
    struct topic *t;
    int64_t after;
    struct loaded got;
    bool more;   /* stopped at LOAD_MAX_PER_ROUND */
    bool failed; /* the read failed (the database is down?) */
};

/* Load every dirty topic. Called and returns with hub->lock held; drops it for the reads. */
static void load_dirty(struct hub *hub)
{
    hub->dirty = false;
    int n = 0;
    for (struct topic *t = hub->topics; t; t = t->next)
        if (t->dirty && !t->loading)
            n++;
    if (n == 0)
        return;
    struct pending *p = xcalloc((size_t)n, sizeof *p);
    int k = 0;
    for (struct topic *t = hub->topics; t && k < n; t = t->next) {
        if (!t->dirty || t->loading)
            continue;
        t->dirty = false;
        t->loading = true;
        p[k].t = t;
        p[k].after = t->seq;
        k++;
    }
    pthread_mutex_unlock(&hub->lock);
    for (int i = 0; i < k; i++) {
        int64_t after = p[i].after, last = after;
        for (;;) {
            struct rf_err err;
            size_t before = p[i].got.n;
            if (store_job_events_each(hub->st, p[i].t->job_id, after, LOAD_PAGE, collect, &p[i].got,
                                      &last, &err) != RF_OK) {
                if (clock_every(&hub->last_fail_log, LOG_EVERY_MS)) {
                    char q[300];
                    log_warn("cannot load job events", "job=%s error=%s", p[i].t->job_id,
                             log_quote(err.message, q, sizeof q));
                }
                p[i].failed = true; /* try again a little later */
                break;
            }
            if (p[i].got.n - before < LOAD_PAGE)
                break;
            after = last;
            if (p[i].got.n >= LOAD_MAX_PER_ROUND) {
                p[i].more = true;
                break;
            }
        }
    }
    pthread_mutex_lock(&hub->lock);
    for (int i = 0; i < k; i++) {
        struct topic *t = p[i].t;
        size_t appended = 0;
        for (size_t j = 0; j < p[i].got.n; j++) {
            struct hub_event *e = &p[i].got.ev[j];
            if (e->seq != t->seq + 1) { /* already cached (or a gap, which reads never make) */
                free(e->type);
                free(e->data);
                continue;
            }
            if (t->nev == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 16;
                t->ev = xrealloc(t->ev, t->cap * sizeof *t->ev);
            }
            t->ev[t->nev++] = *e;
            t->seq = e->seq;
            appended++;
        }
        free(p[i].got.ev);
        t->loading = false;
        if (p[i].more) {
            t->dirty = true;
            hub->dirty = true;
        } else if (p[i].failed) {
            t->dirty = true; /* hub->dirty stays false: no retry before retry_at */
            if (!hub->retry_at)
                hub->retry_at = clock_mono_ms() + LOAD_RETRY_MS;
        }
        if (appended)
            wake_all(t);
        trim(t);
        maybe_drop_topic(hub, t);
    }
    free(p);
}

static void ping_all(struct hub *hub)
{
    for (struct topic *t = hub->topics; t; t = t->next)
        for (struct hub_sub *s = t->subs; s; s = s->next) {
            s->ping = true;
            s->fn(s->ud);
        }
}

static void mark_all_dirty(struct hub *hub)
{
    for (struct topic *t = hub->topics; t; t = t->next)
        t->dirty = true;
    hub->dirty = hub->dirty || hub->topics != NULL;
}

struct ids {
    char (*id)[ID_MAX];
    size_t n, cap;
};

static void collect_id(void *ud, const char *job_id)
{
    struct ids *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->id = xrealloc(l->id, l->cap * sizeof *l->id);
    }
    snprintf(l->id[l->n++], ID_MAX, "%s", job_id);
}

/* PostgreSQL: take the notifications received so far (also those libpq queued while the
 * last load ran) and mark their topics dirty; reconnect a lost connection every
 * RECONNECT_MS, and after any new session re-read every topic, since notifications sent
 * meanwhile are gone. Called and returns with hub->lock held; drops it for the I/O. */
static void absorb_notifications(struct hub *hub)
{
    struct ids got = {0};
    struct rf_err err;
    pthread_mutex_unlock(&hub->lock);
    enum rf_status rc = store_job_events_notified(hub->st, collect_id, &got, &err);
    int64_t now = clock_mono_ms();
    if (rc != RF_OK && now >= hub->next_reconnect) {
        /* Any call reconnects (and LISTENs again); a ping is the cheapest. */
        hub->next_reconnect = now + RECONNECT_MS;
        if (store_ping(hub->st, &err) != RF_OK && clock_every(&hub->last_fail_log, LOG_EVERY_MS)) {
            char q[300];
            log_warn("event listener: database unreachable, retrying", "error=%s",
                     log_quote(err.message, q, sizeof q));
        }
    }
    uint64_t sessions = store_sessions(hub->st);
    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; i < got.n; i++) {
        struct topic *t = find_topic(hub, got.id[i]);
        if (t) {
            t->dirty = true;
            hub->dirty = true;
        }
    }
    free(got.id);
    if (sessions != hub->sessions) {
        hub->sessions = sessions;
        log_info("event listener connected to a new database session: re-reading every "
                 "followed job",
                 "topics=%d", hub->ntopics);
        mark_all_dirty(hub);
    }
}

/* Sleep in poll(2) until the deadline (monotonic ms), a wake-up (hub_notify, a new topic,
 * hub_stop) or, on PostgreSQL, data on the listening connection. Called and returns with
 * hub->lock held. */
static void sleep_until(struct hub *hub, int64_t until)
{
    hub->sleeping = true;
    pthread_mutex_unlock(&hub->lock);
    struct pollfd fds[2] = {{.fd = hub->wake_r, .events = POLLIN},
                            {.fd = hub->push ? store_notify_fd(hub->st) : -1, .events = POLLIN}};
    int64_t ms = until - clock_mono_ms();
    if (ms > 0)
        poll(fds, 2, ms > 60000 ? 60000 : (int)ms);
    char drain[64];
    while (read(hub->wake_r, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&hub->lock);
    hub->sleeping = false;
}

static void *watcher_main(void *arg)
{
    struct hub *hub = arg;
    int64_t poll_every = hub->push ? hub->cfg.resync_ms : hub->cfg.poll_ms;
    int64_t next_poll = clock_mono_ms() + poll_every;
    int64_t next_ping = clock_mono_ms() + hub->cfg.ping_ms;
    pthread_mutex_lock(&hub->lock);
    while (!hub->stopping) {
        if (hub->push)
            absorb_notifications(hub);
        if (hub->stopping)
            break;
        int64_t now = clock_mono_ms();
        if (now >= next_ping) {
            next_ping = now + hub->cfg.ping_ms;
            ping_all(hub);
        }
        if (hub->retry_at && now >= hub->retry_at) {
            hub->retry_at = 0;
            hub->dirty = true; /* the topics that failed are still marked */
        }
        if (now >= next_poll) {
            next_poll = now + poll_every;
            if (hub->push) { /* the slow safety net under LISTEN/NOTIFY */
                mark_all_dirty(hub);
            } else if (hub->ntopics > 0) {
                bool changed = false;
                struct rf_err err;
                pthread_mutex_unlock(&hub->lock);
                enum rf_status rc = store_changes_poll(hub->st, &hub->data_token, &changed, &err);
                pthread_mutex_lock(&hub->lock);
                if (rc == RF_OK && changed)
                    mark_all_dirty(hub);
            }
        }
        if (hub->dirty) {
            load_dirty(hub);
            continue;
        }
        int64_t until = next_poll < next_ping ? next_poll : next_ping;
        if (hub->retry_at && hub->retry_at < until)
            until = hub->retry_at;
        if (hub->push && store_notify_fd(hub->st) < 0 && hub->next_reconnect < until)
            until = hub->next_reconnect;
        if (!hub->stopping)
            sleep_until(hub, until);
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

/* ---- lifecycle ---- */

static void close_pipe(struct hub *hub)
{
    if (hub->wake_r >= 0)
        close(hub->wake_r);
    if (hub->wake_w >= 0)
        close(hub->wake_w);
    hub->wake_r = hub->wake_w = -1;
}

enum rf_status hub_start(const struct hub_config *cfg, struct hub **out, struct rf_err *err)
{
    *out = NULL;
    if (cfg->poll_ms < 1 || cfg->ping_ms < 1 || cfg->resync_ms < 1)
        return rf_fail(err, RF_INVALID, "event hub intervals must be positive");
    struct hub *hub = xcalloc(1, sizeof *hub);
    hub->cfg = *cfg;
    hub->wake_r = hub->wake_w = -1;
    pthread_mutex_init(&hub->lock, NULL);
    clock_cond_init(&hub->drained);
    enum rf_status rc = RF_OK;
    int fds[2];
    if (pipe(fds) != 0) {
        rc = rf_fail(err, RF_INTERNAL, "cannot create the event watcher's pipe");
    } else {
        hub->wake_r = fds[0];
        hub->wake_w = fds[1];
        for (int i = 0; i < 2; i++) {
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
            fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        }
        rc = store_open(cfg->db_url, &hub->st, err);
    }
    if (rc == RF_OK) {
        struct rf_err lerr;
        enum rf_status lrc = store_job_events_listen(hub->st, &lerr);
        hub->push = lrc != RF_UNSUPPORTED;
        if (lrc && lrc != RF_UNSUPPORTED) { /* remembered: LISTENed again on reconnect */
            char q[300];
            log_warn("event listener: LISTEN failed, retrying", "error=%s",
                     log_quote(lerr.message, q, sizeof q));
        }
        hub->sessions = store_sessions(hub->st);
    }
    if (rc == RF_OK && pthread_create(&hub->watcher, NULL, watcher_main, hub) != 0)
        rc = rf_fail(err, RF_INTERNAL, "cannot start the event watcher thread");
    if (rc) {
        store_close(hub->st);
        close_pipe(hub);
        pthread_cond_destroy(&hub->drained);
        pthread_mutex_destroy(&hub->lock);
        free(hub);
        return rc;
    }
    hub->watcher_started = true;
    *out = hub;
    return RF_OK;
}

void hub_stop(struct hub *hub, int64_t wait)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stopping = true;
    for (struct topic *t = hub->topics; t; t = t->next)
        wake_all(t);
    wake_watcher(hub);
    pthread_mutex_unlock(&hub->lock);
    if (hub->watcher_started) {
        pthread_join(hub->watcher, NULL);
        hub->watcher_started = false;
    }
    int64_t deadline = clock_mono_ms() + wait;
    pthread_mutex_lock(&hub->lock);
    while (hub->nsubs > 0 && clock_mono_ms() < deadline)
        clock_cond_wait_ms(&hub->drained, &hub->lock, deadline - clock_mono_ms());
    if (hub->nsubs > 0)
        log_warn("event streams still open at shutdown", "streams=%d", hub->nsubs);
    pthread_mutex_unlock(&hub->lock);
}

void hub_free(struct hub *hub)
{
    if (!hub)
        return;
    if (hub->watcher_started)
        hub_stop(hub, 0);
    while (hub->topics) {
        struct topic *t = hub->topics;
        hub->topics = t->next;
        for (struct hub_sub *s = t->subs; s;) {
            struct hub_sub *next = s->next;
            free(s);
            s = next;
        }
        free_topic(t);
    }
    store_close(hub->st);
    close_pipe(hub);
    pthread_cond_destroy(&hub->drained);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

/* ---- publishing and subscribing ---- */

void hub_notify(struct hub *hub, const char *job_id)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    struct topic *t = find_topic(hub, job_id);
    if (t) {
        t->dirty = true;
        hub->dirty = true;
        wake_watcher(hub);
    }
    pthread_mutex_unlock(&hub->lock);
}

enum rf_status hub_subscribe(struct hub *hub, const char *job_id, int64_t pos, hub_wake_fn fn,
                             void *ud, struct hub_sub **out, bool *behind, struct rf_err *err)
{
    *out = NULL;
    *behind = false;
    pthread_mutex_lock(&hub->lock);
    if (hub->stopping) {
        pthread_mutex_unlock(&hub->lock);
        return rf_fail(err, RF_UNAVAILABLE, "the server is shutting down");
    }
    struct topic *t = find_topic(hub, job_id);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        snprintf(t->job_id, sizeof t->job_id, "%s", job_id);
        t->base = t->seq = pos;
        t->next = hub->topics;
        hub->topics = t;
        hub->ntopics++;
        /* Events committed after the caller's read may have been notified before this
         * topic existed: load past pos once. */
        t->dirty = true;
        hub->dirty = true;
        wake_watcher(hub);
    } else if (pos < t->base) {
        pthread_mutex_unlock(&hub->lock);
        *behind = true;
        return RF_OK;
    }
    struct hub_sub *s = xcalloc(1, sizeof *s);
    s->hub = hub;
    s->t = t;
    s->pos = pos;
    s->fn = fn;
    s->ud = ud;
    s->next = t->subs;
    if (t->subs)
        t->subs->prev = s;
    t->subs = s;
    t->nsubs++;
    hub->nsubs++;
    pthread_mutex_unlock(&hub->lock);
    *out = s;
    return RF_OK;
}

void hub_unsubscribe(struct hub_sub *s)
{
    if (!s)
        return;
    struct hub *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    struct topic *t = s->t;
    if (s->prev)
        s->prev->next = s->next;
    else
        t->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    t->nsubs--;
    hub->nsubs--;
    maybe_drop_topic(hub, t);
    if (hub->nsubs == 0)
        pthread_cond_broadcast(&hub->drained);
    pthread_mutex_unlock(&hub->lock);
    free(s);
}

int hub_read(struct hub_sub *s, hub_event_fn fn, void *ud, int max, struct hub_read_flags *flags)
{
    struct hub *hub = s->hub;
    int n = 0;
    pthread_mutex_lock(&hub->lock);
    struct topic *t = s->t;
    int64_t start = s->pos - t->base;
    if (start < 0) /* cannot happen: trim() and hub_subscribe() keep pos >= base */
        start = 0;
    for (size_t i = (size_t)start; i < t->nev && (max <= 0 || n < max); i++) {
        fn(ud, t->ev[i].seq, t->ev[i].type, t->ev[i].data);
        s->pos = t->ev[i].seq;
        n++;
    }
    flags->ping = s->ping;
    flags->closing = hub->stopping;
    s->ping = false;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

int hub_subscribers(struct hub *hub)
{
    if (!hub)
        return 0;
    pthread_mutex_lock(&hub->lock);
    int n = hub->nsubs;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

void hub_end_streams(void *hub)
{
    hub_stop(hub, 2000);
}
