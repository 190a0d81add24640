/*
 * bench_queue.c - raw figures of the queue, without executors or the store:
 *   enqueue one by one /s, bulk enqueue /s, drain /s (queue pre-filled,
 *   fetch + ack in batches), and enqueue->fetch latency p50/p99 of single
 *   items on an idle queue (a consumer blocked in fetch on its own
 *   connection, a producer enqueueing one item at a time).
 * Prints one "name value unit" line per figure. Run by run.sh, which starts
 * its own redis-server and prints redis-benchmark's ceiling beside these.
 *
 *   bench_queue [--url URL] [--n N] [--prefix P] [--latency-samples K]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "util.h"

static const char *url = NULL;
static const char *prefix = "bench";
static int n_items = 20000;
static int n_samples = 2000;

static queue *open_or_die(void)
{
    char err[512];
    queue *q = queue_open(url, prefix, err, sizeof err);
    if (!q) {
        fprintf(stderr, "bench_queue: %s\n", err);
        exit(1);
    }
    return q;
}

static void die_if(int rc, const char *what, const char *err)
{
    if (rc < 0) {
        fprintf(stderr, "bench_queue: %s: %s\n", what, err);
        exit(1);
    }
}

static void report(const char *name, int64_t count, int64_t us)
{
    printf("%-34s %10.0f /s   (%lld in %.1f ms)\n", name, (double)count * 1e6 / (double)us,
           (long long)count, (double)us / 1000.0);
}

static void drain(queue *q, int batch, const char *name)
{
    char err[512];
    queue_lease *l = calloc((size_t)batch, sizeof *l);
    int64_t t0 = mono_us(), got = 0;
    while (got < n_items) {
        int n = queue_fetch(q, l, batch, 30000, 0, err, sizeof err);
        die_if(n, "fetch", err);
        if (n == 0)
            break;
        die_if(queue_ack(q, l, (size_t)n, err, sizeof err), "ack", err);
        queue_leases_clear(l, (size_t)n);
        got += n;
    }
    report(name, got, mono_us() - t0);
    free(l);
}

/* The consumer's steady state: each call acks the previous batch and
 * fetches the next one in the same round trip. */
static void drain_ack_fetch(queue *q, int batch, const char *name)
{
    char err[512];
    queue_lease *a = calloc((size_t)batch, sizeof *a), *b = calloc((size_t)batch, sizeof *b);
    int64_t t0 = mono_us(), got = 0;
    int n = 0;
    for (;;) {
        int acked;
        int m = queue_ack_fetch(q, a, (size_t)n, &acked, b, batch, 30000, 0, err, sizeof err);
        die_if(m, "ack_fetch", err);
        queue_leases_clear(a, (size_t)n);
        got += m;
        queue_lease *t = a;
        a = b;
        b = t;
        n = m;
        if (m == 0)
            break;
    }
    report(name, got, mono_us() - t0);
    free(a);
    free(b);
}

static queue_item *make_items(void)
{
    queue_item *items = calloc((size_t)n_items, sizeof *items);
    for (int i = 0; i < n_items; i++)
        items[i] = (queue_item){i + 1, 5, 1, NULL};
    return items;
}

static void throughput(queue *q)
{
    char err[512];
    queue_item *items = make_items();
    int64_t t0 = mono_us();
    for (int i = 0; i < n_items; i++)
        die_if(queue_enqueue(q, &items[i], 1, err, sizeof err), "enqueue", err);
    report("enqueue one by one", n_items, mono_us() - t0);
    drain(q, 1000, "drain (fetch+ack, batch 1000)");

    t0 = mono_us();
    die_if(queue_enqueue(q, items, (size_t)n_items, err, sizeof err), "bulk enqueue", err);
    report("bulk enqueue (one call)", n_items, mono_us() - t0);
    drain(q, 100, "drain (fetch+ack, batch 100)");

    die_if(queue_enqueue(q, items, (size_t)n_items, err, sizeof err), "bulk enqueue", err);
    drain(q, 8, "drain (fetch+ack, batch 8)");

    die_if(queue_enqueue(q, items, (size_t)n_items, err, sizeof err), "bulk enqueue", err);
    drain_ack_fetch(q, 8, "drain (ack_fetch, batch 8)");

    die_if(queue_enqueue(q, items, (size_t)n_items, err, sizeof err), "bulk enqueue", err);
    drain(q, 1, "drain (fetch+ack, batch 1)");

    die_if(queue_enqueue(q, items, (size_t)n_items, err, sizeof err), "bulk enqueue", err);
    drain_ack_fetch(q, 1, "drain (ack_fetch, batch 1)");
    free(items);
}

/* ---- latency ----------------------------------------------------------- */

typedef struct lat {
    atomic_int received;   /* samples the consumer has seen */
    atomic_int ready;      /* consumer is about to block */
    int64_t *samples_us;
    queue *shared;         /* memory backend: the one queue */
} lat;

static void *consumer(void *arg)
{
    lat *L = arg;
    queue *q = L->shared ? L->shared : open_or_die();
    char err[512];
    atomic_store(&L->ready, 1);
    for (int i = 0; i < n_samples;) {
        queue_lease l;
        int n = queue_fetch(q, &l, 1, 30000, 2000, err, sizeof err);
        die_if(n, "fetch", err);
        if (n == 0)
            continue;
        L->samples_us[i] = queue_wall_us() - l.ready_us;
        queue_ack(q, &l, 1, err, sizeof err);
        queue_lease_clear(&l);
        atomic_store(&L->received, ++i);
    }
    if (!L->shared)
        queue_close(q);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Wait for the consumer without taking a core from it or from Redis (two
 * cores run everything here). The sample is timed by the consumer. */
static void wait_for(atomic_int *v, int want)
{
    while (atomic_load(v) < want)
        nap_us(20);
}

static void latency(queue *producer, bool shared)
{
    lat L = {0, 0, calloc((size_t)n_samples, sizeof(int64_t)), shared ? producer : NULL};
    pthread_t th;
    pthread_create(&th, NULL, consumer, &L);
    wait_for(&L.ready, 1);
    char err[512];
    for (int i = 0; i < n_samples; i++) {
        nap_us(1000); /* let the consumer block again: an idle queue */
        queue_item it = {1000000 + i, 5, 1, NULL};
        die_if(queue_enqueue(producer, &it, 1, err, sizeof err), "enqueue", err);
        wait_for(&L.received, i + 1);
    }
    pthread_join(th, NULL);
    qsort(L.samples_us, (size_t)n_samples, sizeof(int64_t), cmp64);
    printf("%-34s p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   max %.3f ms   (%d samples)\n",
           "enqueue->fetch latency (idle)", (double)L.samples_us[n_samples / 2] / 1000.0,
           (double)L.samples_us[n_samples * 9 / 10] / 1000.0,
           (double)L.samples_us[n_samples * 99 / 100] / 1000.0,
           (double)L.samples_us[n_samples - 1] / 1000.0, n_samples);
    free(L.samples_us);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n_items = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else if (strcmp(argv[i], "--latency-samples") == 0 && i + 1 < argc)
            n_samples = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_queue [--url URL] [--n N] [--prefix P] [--latency-samples K]\n");
            return 2;
        }
    }
    queue *q = open_or_die();
    printf("queue %s, N = %d\n", url ? url : "memory:", n_items);
    throughput(q);
    latency(q, queue_get_kind(q) == QUEUE_MEMORY);
    queue_close(q);
    return 0;
}
