/*
 * queue_memory.c - the in-process queue backend: the same semantics as the
 * Redis backend (priorities, leases, heartbeats, reclaim, delayed set, dead
 * letter) for `pgreviewer run` without Redis and for `run --once`. Nothing
 * survives the process: the store is the durable record from which
 * unfinished executions are re-enqueued at start-up.
 *
 * One mutex guards everything; a condition variable (on CLOCK_MONOTONIC)
 * wakes fetchers when items arrive. Layout:
 *   - one ring-buffer deque per priority (enqueue at the back, fetch from
 *     the front, released/reclaimed items go back to the front);
 *   - a binary min-heap of delayed items by (due, sequence);
 *   - an open-addressing table of leases keyed by token (tokens are
 *     sequential, so `token & mask` spreads them perfectly), with a lower
 *     bound on the earliest expiry so reclaim scans only when one may be due;
 *   - an array of dead entries (small; searched linearly).
 * Times are wall-clock milliseconds, as the Redis backend uses the server's
 * clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "util.h"

typedef struct mitem {
    int64_t id;
    int prio, attempt;
    int64_t ready_us;
    char *payload; /* owned, may be NULL */
} mitem;

typedef struct deque {
    mitem *a;
    size_t cap, head, len;
} deque;

typedef struct delayed_ent {
    int64_t due_ms;
    uint64_t seq;
    mitem it;
} delayed_ent;

typedef struct lease_ent {
    uint64_t token; /* 0: empty slot */
    int64_t expiry_ms;
    mitem it;
} lease_ent;

typedef struct dead_ent {
    mitem it;
    int64_t died_ms;
    char *error;
} dead_ent;

typedef struct memq {
    queue base;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    deque ready[QUEUE_PRIORITIES];
    delayed_ent *delayed;
    size_t n_delayed, cap_delayed;
    uint64_t delayed_seq;
    lease_ent *leases;
    size_t n_leases, cap_leases; /* cap is a power of two */
    int64_t lease_low_ms;        /* no lease expires before this */
    uint64_t next_token;
    dead_ent *dead;
    size_t n_dead, cap_dead;
} memq;

/* ---- deque ------------------------------------------------------------- */

static void dq_grow(deque *d)
{
    size_t ncap = d->cap ? d->cap * 2 : 64;
    mitem *na = xmalloc(ncap * sizeof *na);
    for (size_t i = 0; i < d->len; i++)
        na[i] = d->a[(d->head + i) % d->cap];
    free(d->a);
    d->a = na;
    d->cap = ncap;
    d->head = 0;
}

static void dq_push_back(deque *d, mitem it)
{
    if (d->len == d->cap)
        dq_grow(d);
    d->a[(d->head + d->len) % d->cap] = it;
    d->len++;
}

static void dq_push_front(deque *d, mitem it)
{
    if (d->len == d->cap)
        dq_grow(d);
    d->head = (d->head + d->cap - 1) % d->cap;
    d->a[d->head] = it;
    d->len++;
}

static mitem dq_pop_front(deque *d)
{
    mitem it = d->a[d->head];
    d->head = (d->head + 1) % d->cap;
    d->len--;
    return it;
}

/* ---- delayed heap ------------------------------------------------------ */

static bool dl_less(const delayed_ent *a, const delayed_ent *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void dl_push(memq *m, int64_t due_ms, mitem it)
{
    if (m->n_delayed == m->cap_delayed) {
        m->cap_delayed = m->cap_delayed ? m->cap_delayed * 2 : 64;
        m->delayed = xrealloc(m->delayed, m->cap_delayed * sizeof *m->delayed);
    }
    size_t i = m->n_delayed++;
    delayed_ent e = {due_ms, m->delayed_seq++, it};
    while (i > 0 && dl_less(&e, &m->delayed[(i - 1) / 2])) {
        m->delayed[i] = m->delayed[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->delayed[i] = e;
}

static delayed_ent dl_pop(memq *m)
{
    delayed_ent top = m->delayed[0];
    delayed_ent last = m->delayed[--m->n_delayed];
    size_t i = 0, n = m->n_delayed;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && dl_less(&m->delayed[c + 1], &m->delayed[c]))
            c++;
        if (!dl_less(&m->delayed[c], &last))
            break;
        m->delayed[i] = m->delayed[c];
        i = c;
    }
    if (n > 0)
        m->delayed[i] = last;
    return top;
}

/* ---- lease table ------------------------------------------------------- */

static size_t lt_find(const memq *m, uint64_t token)
{
    size_t mask = m->cap_leases - 1;
    for (size_t i = token & mask;; i = (i + 1) & mask) {
        if (m->leases[i].token == token)
            return i;
        if (m->leases[i].token == 0)
            return SIZE_MAX;
    }
}

static void lt_insert_raw(lease_ent *tab, size_t cap, lease_ent e)
{
    size_t mask = cap - 1, i = e.token & mask;
    while (tab[i].token != 0)
        i = (i + 1) & mask;
    tab[i] = e;
}

static void lt_insert(memq *m, lease_ent e)
{
    if ((m->n_leases + 1) * 2 > m->cap_leases) {
        size_t ncap = m->cap_leases ? m->cap_leases * 2 : 256;
        lease_ent *nt = xcalloc(ncap, sizeof *nt);
        for (size_t i = 0; i < m->cap_leases; i++)
            if (m->leases[i].token)
                lt_insert_raw(nt, ncap, m->leases[i]);
        free(m->leases);
        m->leases = nt;
        m->cap_leases = ncap;
    }
    lt_insert_raw(m->leases, m->cap_leases, e);
    m->n_leases++;
    if (e.expiry_ms < m->lease_low_ms)
        m->lease_low_ms = e.expiry_ms;
}

/* Remove slot i, shifting later entries of its cluster back so lookups
 * never meet a hole inside a cluster (no tombstones). */
static lease_ent lt_remove_at(memq *m, size_t i)
{
    size_t mask = m->cap_leases - 1;
    lease_ent out = m->leases[i];
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->leases[j].token; j = (j + 1) & mask) {
        size_t home = m->leases[j].token & mask;
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->leases[hole] = m->leases[j];
            hole = j;
        }
    }
    m->leases[hole].token = 0;
    m->n_leases--;
    return out;
}

/* Take the lease `l` out of the table. Returns false when it is not held. */
static bool lt_take(memq *m, const queue_lease *l, mitem *it)
{
    if (!m->cap_leases || l->token == 0)
        return false;
    size_t i = lt_find(m, l->token);
    if (i == SIZE_MAX)
        return false;
    *it = lt_remove_at(m, i).it;
    return true;
}

/* ---- helpers ----------------------------------------------------------- */

static void item_free(mitem *it)
{
    free(it->payload);
    it->payload = NULL;
}

static int promote_locked(memq *m, int64_t now)
{
    int n = 0;
    while (m->n_delayed && m->delayed[0].due_ms <= now) {
        delayed_ent e = dl_pop(m);
        dq_push_back(&m->ready[e.it.prio], e.it);
        n++;
    }
    return n;
}

static int reclaim_locked(memq *m, int64_t now)
{
    if (!m->n_leases || now < m->lease_low_ms)
        return 0;
    int n = 0;
    int64_t low = INT64_MAX;
    for (size_t i = 0; i < m->cap_leases;) {
        lease_ent *e = &m->leases[i];
        if (e->token && e->expiry_ms <= now) {
            mitem it = lt_remove_at(m, i).it;
            dq_push_front(&m->ready[it.prio], it);
            n++;
            continue; /* slot i now holds a shifted entry (or is empty) */
        }
        if (e->token && e->expiry_ms < low)
            low = e->expiry_ms;
        i++;
    }
    /* Backward shifts only move entries to slots not yet passed (or, when
     * wrapping, visit an entry twice), so `low` covers every survivor. */
    m->lease_low_ms = low;
    return n;
}

static size_t ready_total(const memq *m)
{
    size_t n = 0;
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        n += m->ready[p].len;
    return n;
}

static void fill_lease(queue_lease *out, const mitem *it, uint64_t token)
{
    memset(out, 0, sizeof *out);
    out->id = it->id;
    out->priority = it->prio;
    out->attempt = it->attempt;
    out->ready_us = it->ready_us;
    out->token = token;
    if (it->payload) {
        out->buf = xstrdup(it->payload);
        out->buf_len = strlen(out->buf);
        out->payload = out->buf;
    }
}

static int pop_locked(memq *m, queue_lease *out, int max, int64_t lease_ms, int64_t now)
{
    int got = 0;
    for (int p = QUEUE_PRIORITIES - 1; p >= 0 && got < max; p--) {
        while (m->ready[p].len && got < max) {
            lease_ent e = {++m->next_token, now + lease_ms, dq_pop_front(&m->ready[p])};
            fill_lease(&out[got++], &e.it, e.token);
            lt_insert(m, e);
        }
    }
    return got;
}

/* Milliseconds until the next delayed item is due or lease may expire. */
static int64_t next_event_in(const memq *m, int64_t now)
{
    int64_t next = INT64_MAX;
    if (m->n_delayed)
        next = m->delayed[0].due_ms;
    if (m->n_leases && m->lease_low_ms < next)
        next = m->lease_low_ms;
    return next == INT64_MAX ? INT64_MAX : (next > now ? next - now : 0);
}

static void cond_wait_ms(memq *m, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&m->cond, &m->mu, &ts);
}

/* ---- operations -------------------------------------------------------- */

static int mq_enqueue(queue *q, const queue_item *items, size_t n, int64_t due_ms, char *err,
                      size_t errlen)
{
    memq *m = (memq *)q;
    int64_t now_us = queue_wall_us();
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        mitem it = {items[i].id, items[i].priority, items[i].attempt > 0 ? items[i].attempt : 1,
                    due_ms ? due_ms * 1000 : now_us, xstrdup(items[i].payload)};
        if (due_ms)
            dl_push(m, due_ms, it);
        else
            dq_push_back(&m->ready[it.prio], it);
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mq_fetch(queue *q, queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                    char *err, size_t errlen)
{
    memq *m = (memq *)q;
    int64_t deadline = mono_ms() + timeout_ms;
    int got;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        int64_t now = wall_ms();
        promote_locked(m, now);
        reclaim_locked(m, now);
        got = pop_locked(m, out, max, lease_ms, now);
        int64_t left = deadline - mono_ms();
        if (got > 0 || left <= 0)
            break;
        int64_t ev = next_event_in(m, now);
        cond_wait_ms(m, ev < left ? (ev > 0 ? ev : 1) : left);
    }
    if (ready_total(m))
        pthread_cond_signal(&m->cond); /* more work: pass the wake-up on */
    pthread_mutex_unlock(&m->mu);
    return got;
}

static int mq_heartbeat(queue *q, const queue_lease *leases, size_t n, int64_t lease_ms,
                        bool *held, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    int count = 0;
    pthread_mutex_lock(&m->mu);
    int64_t exp = wall_ms() + lease_ms;
    for (size_t i = 0; i < n; i++) {
        size_t slot = m->cap_leases && leases[i].token ? lt_find(m, leases[i].token) : SIZE_MAX;
        if (slot != SIZE_MAX)
            m->leases[slot].expiry_ms = exp; /* only grows: lease_low_ms stays a bound */
        if (held)
            held[i] = slot != SIZE_MAX;
        count += slot != SIZE_MAX;
    }
    pthread_mutex_unlock(&m->mu);
    return count;
}

/* The ways a lease can end, applied to each held lease under the lock. */
typedef enum { END_ACK, END_NACK, END_DEAD, END_RELEASE } end_kind;

static void end_one(memq *m, end_kind kind, mitem it, int64_t delay_ms, const char *error,
                    int64_t now)
{
    switch (kind) {
    case END_ACK:
        item_free(&it);
        break;
    case END_NACK:
        it.attempt++;
        it.ready_us = (now + delay_ms) * 1000;
        dl_push(m, now + delay_ms, it);
        break;
    case END_RELEASE:
        dq_push_front(&m->ready[it.prio], it);
        break;
    case END_DEAD:
        for (size_t i = 0; i < m->n_dead; i++) {
            if (m->dead[i].it.id == it.id) { /* replace: one dead entry per id */
                item_free(&m->dead[i].it);
                free(m->dead[i].error);
                m->dead[i] = m->dead[--m->n_dead];
                break;
            }
        }
        if (m->n_dead == m->cap_dead) {
            m->cap_dead = m->cap_dead ? m->cap_dead * 2 : 16;
            m->dead = xrealloc(m->dead, m->cap_dead * sizeof *m->dead);
        }
        m->dead[m->n_dead++] = (dead_ent){it, now, xstrdup(error ? error : "unknown error")};
        break;
    }
}

static int end_leases(queue *q, end_kind kind, const queue_lease *leases, size_t n,
                      const int64_t *delays, const char *const *errors)
{
    memq *m = (memq *)q;
    int count = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = wall_ms();
    for (size_t k = 0; k < n; k++) {
        /* released items go to the front one by one: last first keeps order */
        size_t i = kind == END_RELEASE ? n - 1 - k : k;
        mitem it;
        if (!lt_take(m, &leases[i], &it))
            continue;
        end_one(m, kind, it, delays ? (delays[i] > 0 ? delays[i] : 0) : 0,
                errors ? errors[i] : NULL, now);
        count++;
    }
    if (kind == END_RELEASE && count)
        pthread_cond_broadcast(&m->cond);
    if (kind == END_NACK && count)
        pthread_cond_broadcast(&m->cond); /* a waiter may need an earlier wake-up */
    pthread_mutex_unlock(&m->mu);
    return count;
}

static int mq_ack(queue *q, const queue_lease *l, size_t n, char *err, size_t errlen)
{
    return end_leases(q, END_ACK, l, n, NULL, NULL);
}

static int mq_nack(queue *q, const queue_lease *l, size_t n, const int64_t *delay_ms, char *err,
                   size_t errlen)
{
    return end_leases(q, END_NACK, l, n, delay_ms, NULL);
}

static int mq_dead(queue *q, const queue_lease *l, size_t n, const char *const *errors, char *err,
                   size_t errlen)
{
    return end_leases(q, END_DEAD, l, n, NULL, errors);
}

static int mq_release(queue *q, const queue_lease *l, size_t n, char *err, size_t errlen)
{
    return end_leases(q, END_RELEASE, l, n, NULL, NULL);
}

static int mq_promote_due(queue *q, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    pthread_mutex_lock(&m->mu);
    int n = promote_locked(m, wall_ms());
    if (n)
        pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    return n;
}

static int mq_requeue_expired(queue *q, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    pthread_mutex_lock(&m->mu);
    int n = reclaim_locked(m, wall_ms());
    if (n)
        pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    return n;
}

static int mq_stats(queue *q, queue_stats *st, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    pthread_mutex_lock(&m->mu);
    int64_t now_us = queue_wall_us();
    for (int p = 0; p < QUEUE_PRIORITIES; p++) {
        deque *d = &m->ready[p];
        st->ready[p] = (int64_t)d->len;
        if (d->len && now_us > d->a[d->head].ready_us)
            st->lag_ms[p] = (now_us - d->a[d->head].ready_us) / 1000;
    }
    st->delayed = (int64_t)m->n_delayed;
    st->leased = (int64_t)m->n_leases;
    st->dead = (int64_t)m->n_dead;
    st->next_due_ms = m->n_delayed ? m->delayed[0].due_ms : 0;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int dead_cmp(const void *a, const void *b)
{
    const queue_dead_entry *x = a, *y = b;
    return x->died_ms < y->died_ms ? -1 : x->died_ms > y->died_ms ? 1
         : x->id < y->id ? -1 : x->id > y->id;
}

static int mq_dead_list(queue *q, queue_dead_entry **out, size_t *n, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    pthread_mutex_lock(&m->mu);
    queue_dead_entry *list = xcalloc(m->n_dead + 1, sizeof *list);
    for (size_t i = 0; i < m->n_dead; i++) {
        const dead_ent *d = &m->dead[i];
        list[i] = (queue_dead_entry){d->it.id, d->it.prio, d->it.attempt, d->died_ms,
                                     xstrdup(d->error), xstrdup(d->it.payload)};
    }
    *n = m->n_dead;
    pthread_mutex_unlock(&m->mu);
    qsort(list, *n, sizeof *list, dead_cmp);
    *out = list;
    return 0;
}

static int mq_dead_retry(queue *q, int64_t id, bool all, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    int count = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now_us = queue_wall_us();
    for (size_t i = 0; i < m->n_dead;) {
        dead_ent *d = &m->dead[i];
        if (!all && d->it.id != id) {
            i++;
            continue;
        }
        mitem it = d->it;
        it.attempt++;
        it.ready_us = now_us;
        dq_push_back(&m->ready[it.prio], it);
        free(d->error);
        m->dead[i] = m->dead[--m->n_dead];
        count++;
    }
    if (count)
        pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    return count;
}

static int mq_dead_purge(queue *q, char *err, size_t errlen)
{
    memq *m = (memq *)q;
    pthread_mutex_lock(&m->mu);
    int n = (int)m->n_dead;
    for (size_t i = 0; i < m->n_dead; i++) {
        item_free(&m->dead[i].it);
        free(m->dead[i].error);
    }
    m->n_dead = 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static bool mq_connected(const queue *q)
{
    return true;
}

static void mq_close(queue *q)
{
    memq *m = (memq *)q;
    for (int p = 0; p < QUEUE_PRIORITIES; p++) {
        while (m->ready[p].len) {
            mitem it = dq_pop_front(&m->ready[p]);
            item_free(&it);
        }
        free(m->ready[p].a);
    }
    for (size_t i = 0; i < m->n_delayed; i++)
        item_free(&m->delayed[i].it);
    for (size_t i = 0; i < m->cap_leases; i++)
        if (m->leases[i].token)
            item_free(&m->leases[i].it);
    mq_dead_purge(q, NULL, 0);
    free(m->delayed);
    free(m->leases);
    free(m->dead);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static const queue_ops memory_ops = {
    mq_enqueue, mq_fetch, mq_heartbeat, mq_ack, mq_nack, mq_dead, mq_release,
    mq_promote_due, mq_requeue_expired, mq_stats, mq_dead_list, mq_dead_retry,
    mq_dead_purge, mq_connected, mq_close, NULL,
};

queue *queue_memory_open(const char *prefix, char *err, size_t errlen)
{
    memq *m = xcalloc(1, sizeof *m);
    m->base.ops = &memory_ops;
    m->base.kind = QUEUE_MEMORY;
    m->lease_low_ms = INT64_MAX;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    return &m->base;
}
