/*
 * bench_scheduler.c - what the scheduler's cron side costs with 100,000
 * tasks: random expressions (a realistic mix plus rare ones) in random
 * zones from the system's zone1970.tab.
 *
 * Prints: parse rate; zone loading (shared by all tasks); scheduler memory
 * per task measured with mallinfo2 deltas (expression + zone pointer + heap
 * entry); next-fire cost (median and p99 of single calls, and throughput);
 * a pop / compute / push cycle through the fire heap; and, as reference,
 * what the libc way costs (switch TZ with setenv + tzset, then localtime_r)
 * in the same run. Then (bench_live.c) the scheduler itself against a real
 * store and Redis: load, memory, bursts of `tasks` fires due at one
 * second, and the fire lag of a `* * * * * *` task. Never passes or fails
 * on time.
 *
 *   bench_scheduler [tasks] [seed] [durable (default) | fast | 0]
 *
 * durable: the store with fsync and synchronous_commit on; fast: off, as
 * the tests run it; 0: no run against the store.
 */
#include "bench.h"
#include "cron.h"
#include "tz.h"
#include "util.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct task {
    cron_expr expr;
    const tz_zone *zone;
} task;

static uint64_t rng;

uint64_t bench_rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int rn(int lo, int hi)
{
    return lo + (int)(bench_rnd() % (uint64_t)(hi - lo + 1));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_random_expr(char *buf, size_t len)
{
    static const char *const rare[] = {"0 0 29 2 *", "0 0 * 2 1#5", "30 4 L * *",
                                       "0 18 * * 5L", "0 0 13 * 5", "0 9 15W * *",
                                       "0 0 1 1 *", "0 12 LW * *"};
    static const char *const macros[] = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly"};
    int k = rn(0, 99);
    if (k < 25)
        snprintf(buf, len, "%d %d * * *", rn(0, 59), rn(0, 23));
    else if (k < 40)
        snprintf(buf, len, "*/%d * * * *", rn(1, 30));
    else if (k < 50)
        snprintf(buf, len, "%d */%d * * *", rn(0, 59), rn(1, 12));
    else if (k < 60)
        snprintf(buf, len, "%d %d * * %d-%d", rn(0, 59), rn(0, 23), rn(0, 2), rn(3, 6));
    else if (k < 70)
        snprintf(buf, len, "%d %d %d * *", rn(0, 59), rn(0, 23), rn(1, 28));
    else if (k < 75)
        snprintf(buf, len, "%d %d %d * * *", rn(0, 59), rn(0, 59), rn(0, 23));
    else if (k < 80)
        snprintf(buf, len, "*/%d * * * * *", rn(1, 30));
    else if (k < 85)
        snprintf(buf, len, "%s", macros[rn(0, 4)]);
    else if (k < 90)
        snprintf(buf, len, "%s", rare[rn(0, 7)]);
    else
        snprintf(buf, len, "%d,%d %d-%d * %d-%d MON-FRI", rn(0, 29), rn(30, 59), rn(0, 11),
                 rn(12, 23), rn(1, 6), rn(7, 12));
}

/* Zone names from zone1970.tab (third column). Returns the count. */
static size_t read_zones(char ***out)
{
    char err[256];
    size_t len;
    char *text = read_file("/usr/share/zoneinfo/zone1970.tab", &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    char **names = NULL;
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (*line == '#')
            continue;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2)
            continue;
        char *end = strchr(tab2 + 1, '\t');
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = end ? xstrndup(tab2 + 1, (size_t)(end - tab2 - 1)) : xstrdup(tab2 + 1);
    }
    free(text);
    *out = names;
    return n;
}

/* Bytes in use: small blocks plus mmap()ed large ones. */
static size_t heap_bytes(const struct mallinfo2 *m)
{
    return m->uordblks + m->hblkhd;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The cost of reading a clock, to subtract from single-call timings. */
static int64_t timer_overhead(void)
{
    int64_t s[1001];
    for (int i = 0; i < 1001; i++) {
        int64_t a = now_ns();
        s[i] = now_ns() - a;
    }
    qsort(s, 1001, sizeof s[0], cmp_i64);
    return s[500];
}

/* libc's way, for reference: switch TZ per task, then localtime_r. */
static double libc_reference_ns(char **zones, size_t nz, int64_t t0)
{
    int n = 20000;
    int64_t a = now_ns();
    for (int i = 0; i < n; i++) {
        char buf[160];
        snprintf(buf, sizeof buf, ":%s", zones[(size_t)i % nz]);
        setenv("TZ", buf, 1);
        tzset();
        time_t t = (time_t)(t0 + i);
        struct tm tm;
        localtime_r(&t, &tm);
    }
    return (double)(now_ns() - a) / n;
}

int main(int argc, char **argv)
{
    size_t ntasks = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 20261122;
    int64_t t0 = 1795305600; /* 2026-11-22T00:00:00Z: a fixed "now" */
    char **zones;
    size_t nz = read_zones(&zones);
    char err[1024];

    /* expressions as text first, so that parsing is timed alone */
    char (*texts)[64] = xmalloc(ntasks * sizeof *texts);
    const char **tz_of = xmalloc(ntasks * sizeof *tz_of);
    for (size_t i = 0; i < ntasks; i++) {
        bench_random_expr(texts[i], sizeof texts[i]);
        tz_of[i] = zones[bench_rnd() % nz];
    }

    /* zones: loaded once, shared */
    struct mallinfo2 m0 = mallinfo2();
    int64_t a = now_ns();
    for (size_t i = 0; i < nz; i++)
        if (!tz_load(zones[i], err, sizeof err))
            fprintf(stderr, "skipping: %s\n", err);
    double zone_ms = (double)(now_ns() - a) / 1e6;
    struct mallinfo2 m1 = mallinfo2();
    size_t zone_bytes = heap_bytes(&m1) - heap_bytes(&m0);

    /* tasks: parse into the table; the table and the heap are the
     * scheduler's per-task memory */
    task *tasks = xmalloc(ntasks * sizeof *tasks);
    a = now_ns();
    for (size_t i = 0; i < ntasks; i++) {
        if (cron_parse(texts[i], &tasks[i].expr, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    double parse_cold_ns = (double)(now_ns() - a) / (double)ntasks;
    a = now_ns(); /* again, with the table's pages already touched */
    for (size_t i = 0; i < ntasks; i++)
        cron_parse(texts[i], &tasks[i].expr, err, sizeof err);
    double parse_ns = (double)(now_ns() - a) / (double)ntasks;
    for (size_t i = 0; i < ntasks; i++)
        tasks[i].zone = tz_load(tz_of[i], err, sizeof err);
    cron_heap heap;
    cron_heap_init(&heap);
    for (size_t i = 0; i < ntasks; i++)
        cron_heap_set(&heap, (uint32_t)i, cron_next(&tasks[i].expr, tasks[i].zone, t0));
    struct mallinfo2 m2 = mallinfo2();
    size_t task_bytes = heap_bytes(&m2) - heap_bytes(&m1);

    /* next fire: single calls, timed one by one */
    int64_t over = timer_overhead();
    size_t ncalls = ntasks * 5;
    int64_t *ns = xmalloc(ncalls * sizeof *ns);
    int64_t sink = 0;
    for (size_t c = 0; c < ncalls; c++) {
        task *tk = &tasks[bench_rnd() % ntasks];
        int64_t from = t0 + (int64_t)(bench_rnd() % (366LL * 86400));
        int64_t b = now_ns();
        sink += cron_next(&tk->expr, tk->zone, from);
        ns[c] = now_ns() - b - over;
    }
    qsort(ns, ncalls, sizeof *ns, cmp_i64);
    /* throughput: successive fires of every task, no timer in the loop */
    a = now_ns();
    size_t nthr = 0;
    for (int round = 0; round < 5; round++)
        for (size_t i = 0; i < ntasks; i++, nthr++)
            sink += cron_next(&tasks[i].expr, tasks[i].zone, t0 + round * 86400 * 7);
    double thr = (double)nthr / ((double)(now_ns() - a) / 1e9);

    /* the scheduler's cycle: pop the earliest, compute its next, push */
    size_t cycles = 1000000;
    a = now_ns();
    for (size_t c = 0; c < cycles; c++) {
        cron_heap_entry top;
        cron_heap_pop(&heap, &top);
        int64_t next = cron_next(&tasks[top.id].expr, tasks[top.id].zone, top.due);
        if (next >= 0)
            cron_heap_set(&heap, top.id, next);
    }
    double cycle_ns = (double)(now_ns() - a) / (double)cycles;

    /* a burst: every task due at the same second (the heap and cron part of
     * "100,000 tasks due at once enqueued within 2 s") */
    for (size_t i = 0; i < ntasks; i++)
        cron_heap_set(&heap, (uint32_t)i, t0 + 3600);
    a = now_ns();
    for (size_t i = 0; i < ntasks; i++) {
        cron_heap_entry top;
        cron_heap_pop(&heap, &top);
        int64_t next = cron_next(&tasks[top.id].expr, tasks[top.id].zone, top.due);
        if (next >= 0)
            cron_heap_set(&heap, top.id, next);
    }
    double burst_ms = (double)(now_ns() - a) / 1e6;
    double libc_ns = libc_reference_ns(zones, nz, t0);

    printf("bench/scheduler: %zu tasks, %zu zones (zone1970.tab), seed %llu\n", ntasks, nz,
           (unsigned long long)(argc > 2 ? strtoull(argv[2], NULL, 10) : 20261122));
    printf("parse            %.0f ns per expression, %.2f M expressions/s (first pass, "
           "faulting the table in: %.0f ns)\n",
           parse_ns, 1e3 / parse_ns, parse_cold_ns);
    printf("zones            %zu loaded in %.1f ms, %zu KiB shared = %.1f B per task amortised\n",
           nz, zone_ms, zone_bytes / 1024, (double)zone_bytes / (double)ntasks);
    printf("memory per task  %.1f B (mallinfo2: table of expr %zu B + zone pointer, heap entry "
           "and slot); with zones %.1f B; target <= 300 B\n",
           (double)task_bytes / (double)ntasks, sizeof(cron_expr),
           (double)(task_bytes + zone_bytes) / (double)ntasks);
    printf("next fire        median %lld ns, p90 %lld ns, p99 %lld ns, p99.9 %lld ns (%zu single "
           "calls from random instants, clock overhead %lld ns removed); "
           "target median <= 1000 ns\n",
           (long long)ns[ncalls / 2], (long long)ns[ncalls * 9 / 10],
           (long long)ns[ncalls * 99 / 100], (long long)ns[ncalls * 999 / 1000], ncalls,
           (long long)over);
    printf("next fire        %.2f M computations/s (successive fires of every task)\n",
           thr / 1e6);
    printf("heap cycle       %.0f ns per fire (pop + cron_next + push), %.2f M fires/s\n",
           cycle_ns, 1e3 / cycle_ns);
    printf("burst            %zu tasks due at the same second: popped, next fire computed and "
           "pushed back in %.1f ms (the enqueue itself is the scheduler's)\n",
           ntasks, burst_ms);
    printf("reference (libc) %.0f ns per conversion switching TZ per task (setenv + tzset + "
           "localtime_r), vs one cron_next above\n",
           libc_ns);
    fflush(stdout);
    if (sink == 42)
        fprintf(stderr, "%lld\n", (long long)sink); /* keeps the computations */
    const char *live = argc > 3 ? argv[3] : "durable";
    if (strcmp(live, "0") != 0)
        bench_live(ntasks, zones, nz, strcmp(live, "fast") != 0);
    cron_heap_free(&heap);
    free(ns);
    free(tasks);
    free(texts);
    free(tz_of);
    for (size_t i = 0; i < nz; i++)
        free(zones[i]);
    free(zones);
    tz_unload_all();
    return 0;
}
