/*
 * queue.h - the work queue between the scheduler and the worker supervisor
 * (DESIGN.md sections 1-2): execution ids with a priority, at-least-once
 * delivery through leases, a delayed set for retries and runs at a time, and
 * a dead-letter set.
 *
 * One interface, two backends chosen by URL:
 *   redis://[user:pass@]host[:port][/db]     queue_redis.c (hiredis)
 *   unix://[user:pass@]/path/to/sock[?db=N]  queue_redis.c over a unix socket
 *   NULL, "" or "memory:"                    queue_memory.c (in-process)
 *
 * Semantics shared by both backends (docs/queue.md has the details):
 *   - Priorities 0..9, higher first; FIFO within a level.
 *   - queue_fetch() moves up to N ready items to the leased set with an
 *     expiry and returns them as leases. A lease is kept alive with
 *     queue_heartbeat(); a lease that expires (its consumer died) is moved
 *     back to the front of its priority level by queue_requeue_expired(),
 *     which every fetch also runs. Attempt numbers do not change on reclaim.
 *   - A lease ends with exactly one of: queue_ack() (done), queue_nack()
 *     (retry later: into the delayed set with attempt + 1), queue_dead()
 *     (into the dead-letter set with an error), queue_release() (give back
 *     unstarted: front of its level, same attempt). Each returns how many of
 *     the leases were still held; a lease no longer held was reclaimed and
 *     its item redelivered (or will be), so the caller's outcome for it is
 *     dropped - completion is idempotent by execution id upstream.
 *   - Delayed items are promoted to their level when due, atomically, by
 *     queue_promote_due() (also run by every fetch).
 *
 * Threads: a memory queue may be shared by any number of threads. A Redis
 * queue handle is one connection: use it from one thread at a time (open one
 * handle per thread). Neither may be shared across fork().
 *
 * Signals: opening a Redis queue sets SIGPIPE to SIG_IGN if it was SIG_DFL
 * (a write to a connection Redis closed would otherwise kill the process);
 * a lost connection is then an error return, handled as below.
 *
 * Errors: functions returning int return -1 and fill `err` (a message that
 * never contains a password) on failure. A Redis handle that lost its
 * connection reconnects by itself, with back-off, on a later call; see
 * docs/queue.md "When Redis restarts" for what the caller sees.
 */
#ifndef PGR_QUEUE_H
#define PGR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define QUEUE_PRIORITIES 10      /* levels 0..9 */
#define QUEUE_PAYLOAD_MAX 4096   /* bytes of an item's payload */
#define QUEUE_DEFAULT_PREFIX "pgreviewer"

typedef struct queue queue;

/* An item to enqueue. `payload` is borrowed for the duration of the call:
 * NULL or a short text (no NUL, at most QUEUE_PAYLOAD_MAX bytes). */
typedef struct queue_item {
    int64_t id;          /* the execution id */
    int priority;        /* 0..9 */
    int attempt;         /* 1 for a first run; 0 is taken as 1 */
    const char *payload; /* may be NULL */
} queue_item;

/* A leased item, filled by queue_fetch(). Everything in it is owned by the
 * lease: release it with queue_lease_clear(). Pass the lease back unchanged
 * to heartbeat/ack/nack/dead/release. */
typedef struct queue_lease {
    int64_t id;
    int priority;
    int attempt;
    int64_t ready_us;    /* wall clock, µs: when the item became ready to run
                          * (enqueued, or due); now - ready_us is its lag */
    const char *payload; /* NULL or points into buf */
    uint64_t token;      /* unique per delivery */
    char *buf;           /* backend data (Redis: the leased member) */
    size_t buf_len;
} queue_lease;

/* A dead-letter entry (queue_dead_list). Owned by the array it sits in. */
typedef struct queue_dead_entry {
    int64_t id;
    int priority;
    int attempt;         /* the last attempt made */
    int64_t died_ms;     /* wall clock, ms */
    char *error;         /* the last error, never NULL */
    char *payload;       /* may be NULL */
} queue_dead_entry;

typedef struct queue_stats {
    int64_t ready[QUEUE_PRIORITIES];   /* depth per priority */
    int64_t lag_ms[QUEUE_PRIORITIES];  /* age of the oldest ready item, 0 when empty */
    int64_t delayed;
    int64_t leased;
    int64_t dead;
    int64_t next_due_ms;               /* wall ms of the earliest delayed item, 0 if none */
} queue_stats;

/* ---- URLs -------------------------------------------------------------- */

typedef enum queue_kind { QUEUE_MEMORY, QUEUE_REDIS_TCP, QUEUE_REDIS_UNIX } queue_kind;

typedef struct queue_url {
    queue_kind kind;
    char *host;      /* TCP: host name or address (IPv6 without brackets) */
    int port;        /* TCP: default 6379 */
    char *path;      /* unix: socket path */
    char *user;      /* ACL user or NULL */
    char *password;  /* NULL when none */
    int db;          /* default 0 */
} queue_url;

/* Parse `url` (see the top of this file; user and password may be
 * percent-encoded). Returns 0, or -1 with a message naming the URL (its
 * password masked) and what would be valid. The caller frees out with
 * queue_url_free() after success. */
int queue_url_parse(const char *url, queue_url *out, char *err, size_t errlen);
void queue_url_free(queue_url *u);
/* The URL for messages: the password replaced by "***". Writes into buf,
 * returns buf. */
const char *queue_url_redact(const char *url, char *buf, size_t len);

/* ---- Opening ----------------------------------------------------------- */

/* Open the queue at `url` with key prefix `prefix` (NULL: "pgreviewer";
 * Redis keys are "{prefix}:..."). A Redis queue connects, authenticates,
 * selects the db and loads its scripts now: it returns NULL with the reason
 * when Redis cannot be reached (callers that must wait for Redis retry).
 * Returns a handle freed by queue_close(). */
queue *queue_open(const char *url, const char *prefix, char *err, size_t errlen);
void queue_close(queue *q);
queue_kind queue_get_kind(const queue *q);
/* False while a Redis handle is between a lost connection and a successful
 * reconnect; always true for memory. */
bool queue_connected(const queue *q);

/* ---- Producing --------------------------------------------------------- */

/* Enqueue n items ready now. Redis: one round trip however large n (items
 * are grouped by priority into variadic LPUSHes, pipelined). Returns 0 or -1.
 * On -1 after a lost connection some of the items may have been enqueued. */
int queue_enqueue(queue *q, const queue_item *items, size_t n, char *err, size_t errlen);
/* Enqueue n items into the delayed set, due at wall clock due_ms (a time in
 * the past means due now, promoted by the next fetch). Returns 0 or -1. */
int queue_enqueue_at(queue *q, const queue_item *items, size_t n, int64_t due_ms,
                     char *err, size_t errlen);

/* ---- Consuming --------------------------------------------------------- */

/* Lease up to `max` items (highest priority first; Redis takes at most 1000
 * per call) for lease_ms. Waits up to
 * timeout_ms for work when none is ready (0: do not wait), without spinning:
 * Redis blocks on a notify key (BZPOPMIN), memory on a condition variable; a delayed
 * item coming due or a lease expiring ends the wait. Promotes due items and
 * reclaims expired leases first. Returns the number of leases written to
 * out[0..n) (0 on timeout), or -1. The caller clears each lease. */
int queue_fetch(queue *q, queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                char *err, size_t errlen);

/* Extend n leases to now + lease_ms, in one round trip. held[i] (if held is
 * not NULL) says whether lease i is still ours. Returns the number still
 * held, or -1. */
int queue_heartbeat(queue *q, const queue_lease *leases, size_t n, int64_t lease_ms,
                    bool *held, char *err, size_t errlen);
/* Done: forget n leases (one round trip). Returns how many were held, or -1. */
int queue_ack(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen);
/* Retry later: each held lease i moves to the delayed set, due delay_ms[i]
 * from now, with attempt + 1, atomically. Returns how many were held, or -1. */
int queue_nack(queue *q, const queue_lease *leases, size_t n, const int64_t *delay_ms,
               char *err, size_t errlen);
/* Give up: each held lease i moves to the dead-letter set with errors[i]
 * (NULL: "unknown error") and its attempt. An id already dead is replaced.
 * Returns how many were held, or -1. */
int queue_dead(queue *q, const queue_lease *leases, size_t n, const char *const *errors,
               char *err, size_t errlen);
/* Give back unstarted (prefetched) leases: to the front of their level with
 * the same attempt. For graceful shutdown. Returns how many were held, or -1. */
int queue_release(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen);

/* The steady state of a consumer in one round trip: ack n_acks leases, then
 * fetch as queue_fetch() does (Redis: the ZREM and the fetch script go in
 * one write). *acked (may be NULL) gets how many acks were held, or -1 when
 * they failed. Returns the leases fetched (0 on timeout) or -1. After -1,
 * or *acked == -1, ack them again (harmless). The caller still clears the
 * acked leases. */
int queue_ack_fetch(queue *q, const queue_lease *acks, size_t n_acks, int *acked,
                    queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                    char *err, size_t errlen);

void queue_lease_clear(queue_lease *l);
void queue_leases_clear(queue_lease *l, size_t n);

/* ---- Maintenance ------------------------------------------------------- */

/* Move due delayed items to their level. Returns how many moved, or -1. */
int queue_promote_due(queue *q, char *err, size_t errlen);
/* Move items whose lease expired back to the front of their level (a dead
 * consumer's items). Returns how many moved, or -1. */
int queue_requeue_expired(queue *q, char *err, size_t errlen);
/* Fill *st. Returns 0 or -1. */
int queue_stats_get(queue *q, queue_stats *st, char *err, size_t errlen);

/* The dead-letter set, oldest death first, into *out (caller frees with
 * queue_dead_list_free) and *n. Returns 0 or -1. */
int queue_dead_list(queue *q, queue_dead_entry **out, size_t *n, char *err, size_t errlen);
void queue_dead_list_free(queue_dead_entry *list, size_t n);
/* Re-drive dead item `id` (all of them when all is true) to its level, ready
 * now, with attempt + 1. Returns how many moved (0: no such id), or -1. */
int queue_dead_retry(queue *q, int64_t id, bool all, char *err, size_t errlen);
/* Drop every dead item. Returns how many were dropped, or -1. */
int queue_dead_purge(queue *q, char *err, size_t errlen);

/* ---- Back-off ---------------------------------------------------------- */

/* The delay before the retry that follows failed attempt `attempt` (1-based):
 * base = initial_ms * multiplier^(attempt-1), capped at max_delay_ms, then
 * jitter: none -> base; full -> uniform [0, base]; equal -> base/2 + uniform
 * [0, base/2]. rng_state is a caller-kept PRNG state (any seed; 0 is
 * replaced); NULL uses a thread-local one. Never fails; returns >= 0. */
int64_t queue_backoff_ms(const cfg_retry *policy, int attempt, uint64_t *rng_state);

/* ---- CLI --------------------------------------------------------------- */

/* `pgreviewer queue stats [--json] | dead list [--json] | dead retry ID|--all
 * | dead purge`. argv[0] is the word after "queue". Prints to stdout, errors
 * to stderr. Returns 0, 1 (failure) or 2 (usage). */
int cmd_queue(const pgr_config *cfg, int argc, char **argv);

/* ---- Backends (internal to queue*.c) ----------------------------------- */

typedef struct queue_ops {
    int (*enqueue)(queue *, const queue_item *, size_t, int64_t due_ms, char *, size_t);
    int (*fetch)(queue *, queue_lease *, int, int64_t, int64_t, char *, size_t);
    int (*heartbeat)(queue *, const queue_lease *, size_t, int64_t, bool *, char *, size_t);
    int (*ack)(queue *, const queue_lease *, size_t, char *, size_t);
    int (*nack)(queue *, const queue_lease *, size_t, const int64_t *, char *, size_t);
    int (*dead)(queue *, const queue_lease *, size_t, const char *const *, char *, size_t);
    int (*release)(queue *, const queue_lease *, size_t, char *, size_t);
    int (*promote_due)(queue *, char *, size_t);
    int (*requeue_expired)(queue *, char *, size_t);
    int (*stats)(queue *, queue_stats *, char *, size_t);
    int (*dead_list)(queue *, queue_dead_entry **, size_t *, char *, size_t);
    int (*dead_retry)(queue *, int64_t, bool, char *, size_t);
    int (*dead_purge)(queue *, char *, size_t);
    bool (*connected)(const queue *);
    void (*close)(queue *);
    /* optional: NULL means ack, then fetch */
    int (*ack_fetch)(queue *, const queue_lease *, size_t, int *, queue_lease *, int, int64_t,
                     int64_t, char *, size_t);
} queue_ops;

/* Every backend's handle starts with this. */
struct queue {
    const queue_ops *ops;
    queue_kind kind;
};

/* The backends' constructors, called by queue_open() after it checked the
 * prefix and parsed the URL. Each returns a handle freed by queue_close(),
 * or NULL with err filled (Redis: unreachable, authentication, db, scripts).
 * queue_redis_open copies what it needs from url. */
queue *queue_memory_open(const char *prefix, char *err, size_t errlen);
queue *queue_redis_open(const queue_url *url, const char *prefix, char *err, size_t errlen);

/* The wall clock in microseconds (the items' ready times). Never fails. */
int64_t queue_wall_us(void);
/* Check items before enqueueing: priority, id, payload. Returns 0 or -1. */
int queue_check_items(const queue_item *items, size_t n, char *err, size_t errlen);

#endif
