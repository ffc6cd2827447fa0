/*
 * hub - pub/sub of job events for SSE subscribers; the DESIGN comment is in hub.h.
 *
 * Invariants (all under hub->lock): a topic caches events base+1 .. seq, contiguous,
 * ev[i].seq == base + 1 + i (so base == seq - nev); a topic exists while it has
 * subscribers or the watcher is loading it (`loading`); it never drops an event a
 * subscriber has not read (trimming stops at the lowest subscriber position).
 */
#include "jobs/hub.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    pthread_mutex_t lock;   /* guards everything below but st */
    pthread_cond_t cond;    /* the watcher sleeps here */
    pthread_cond_t drained; /* the last subscriber left */
    struct topic *topics;
    int ntopics, nsubs;
    bool dirty; /* some topic is dirty */
    bool stopping;
    pthread_t watcher;
    bool watcher_started;
    struct store *st;   /* the watcher's connection; only the watcher uses it */
    int64_t data_token; /* watcher only */
};

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static void wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
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
    bool more; /* stopped at LOAD_MAX_PER_ROUND */
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
                log_warn("cannot load job events", "job=%s error=\"%s\"", p[i].t->job_id,
                         err.message);
                p[i].more = true; /* try again on the next round */
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

static void *watcher_main(void *arg)
{
    struct hub *hub = arg;
    int64_t next_poll = clock_mono_ms() + hub->cfg.poll_ms;
    int64_t next_ping = clock_mono_ms() + hub->cfg.ping_ms;
    pthread_mutex_lock(&hub->lock);
    while (!hub->stopping) {
        int64_t now = clock_mono_ms();
        int64_t until = next_poll < next_ping ? next_poll : next_ping;
        if (!hub->dirty && until > now)
            wait_ms(&hub->cond, &hub->lock, until - now);
        if (hub->stopping)
            break;
        now = clock_mono_ms();
        if (now >= next_ping) {
            next_ping = now + hub->cfg.ping_ms;
            ping_all(hub);
        }
        if (now >= next_poll) {
            next_poll = now + hub->cfg.poll_ms;
            if (hub->ntopics > 0) {
                bool changed = false;
                struct rf_err err;
                pthread_mutex_unlock(&hub->lock);
                enum rf_status rc = store_changes_poll(hub->st, &hub->data_token, &changed, &err);
                pthread_mutex_lock(&hub->lock);
                if (rc == RF_OK && changed) {
                    for (struct topic *t = hub->topics; t; t = t->next)
                        t->dirty = true;
                    hub->dirty = hub->topics != NULL;
                }
            }
        }
        if (hub->dirty)
            load_dirty(hub);
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

/* ---- lifecycle ---- */

enum rf_status hub_start(const struct hub_config *cfg, struct hub **out, struct rf_err *err)
{
    *out = NULL;
    if (cfg->poll_ms < 1 || cfg->ping_ms < 1)
        return rf_fail(err, RF_INVALID, "event hub intervals must be positive");
    struct hub *hub = xcalloc(1, sizeof *hub);
    hub->cfg = *cfg;
    pthread_mutex_init(&hub->lock, NULL);
    cond_init_mono(&hub->cond);
    cond_init_mono(&hub->drained);
    enum rf_status rc = store_open(cfg->db_url, &hub->st, err);
    if (rc == RF_OK && pthread_create(&hub->watcher, NULL, watcher_main, hub) != 0)
        rc = rf_fail(err, RF_INTERNAL, "cannot start the event watcher thread");
    if (rc) {
        store_close(hub->st);
        pthread_cond_destroy(&hub->cond);
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
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    if (hub->watcher_started) {
        pthread_join(hub->watcher, NULL);
        hub->watcher_started = false;
    }
    int64_t deadline = clock_mono_ms() + wait;
    pthread_mutex_lock(&hub->lock);
    while (hub->nsubs > 0 && clock_mono_ms() < deadline)
        wait_ms(&hub->drained, &hub->lock, deadline - clock_mono_ms());
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
    pthread_cond_destroy(&hub->cond);
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
        pthread_cond_signal(&hub->cond);
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
        pthread_cond_signal(&hub->cond);
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
