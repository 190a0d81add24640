/*
 * qtest.h - helpers shared by the queue tests: enqueue/fetch shorthands
 * that assert success, and a fixture that opens a queue per test (a fresh
 * in-process queue, or a fresh key prefix on the suite's redis-server).
 */
#ifndef PGR_QTEST_H
#define PGR_QTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "testenv.h"
#include "util.h"

typedef struct qfx {
    char url[512];    /* "" for memory */
    char prefix[64];
    queue *q;
} qfx;

static inline queue *qt_open(const char *url, const char *prefix)
{
    char err[512] = "";
    queue *q = queue_open(url && url[0] ? url : NULL, prefix, err, sizeof err);
    if (!q)
        fail_msg("queue_open(%s): %s", url, err);
    return q;
}

static inline void qt_enq(queue *q, int64_t id, int prio, const char *payload)
{
    char err[512] = "";
    queue_item it = {id, prio, 1, payload};
    if (queue_enqueue(q, &it, 1, err, sizeof err) != 0)
        fail_msg("enqueue %lld: %s", (long long)id, err);
}

static inline void qt_enq_at(queue *q, int64_t id, int prio, int64_t due_ms)
{
    char err[512] = "";
    queue_item it = {id, prio, 1, NULL};
    if (queue_enqueue_at(q, &it, 1, due_ms, err, sizeof err) != 0)
        fail_msg("enqueue_at %lld: %s", (long long)id, err);
}

static inline int qt_fetch(queue *q, queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms)
{
    char err[512] = "";
    int n = queue_fetch(q, out, max, lease_ms, timeout_ms, err, sizeof err);
    if (n < 0)
        fail_msg("fetch: %s", err);
    return n;
}

static inline int qt_ack(queue *q, const queue_lease *l, size_t n)
{
    char err[512] = "";
    int r = queue_ack(q, l, n, err, sizeof err);
    if (r < 0)
        fail_msg("ack: %s", err);
    return r;
}

static inline queue_stats qt_stats(queue *q)
{
    char err[512] = "";
    queue_stats st;
    if (queue_stats_get(q, &st, err, sizeof err) != 0)
        fail_msg("stats: %s", err);
    return st;
}

static inline int64_t qt_ready_total(const queue_stats *st)
{
    int64_t n = 0;
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        n += st->ready[p];
    return n;
}

#endif
