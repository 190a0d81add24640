/*
 * bench.h - what the two parts of bench_scheduler share: the random
 * expressions (bench_scheduler.c) and the run against a real store and
 * Redis (bench_live.c).
 */
#ifndef PGR_BENCH_SCHEDULER_H
#define PGR_BENCH_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* xorshift64; seeded by main. */
uint64_t bench_rnd(void);
/* A random expression from a mix resembling real schedules, into buf. */
void bench_random_expr(char *buf, size_t len);
/* The scheduler with 2 * ntasks + 1 tasks in a real store and Redis:
 * prints load, memory, bursts and tick lag. `durable`: the store with
 * fsync and synchronous_commit on; else as the tests run it (off). Exits
 * on setup failure; returns 0. */
int bench_live(size_t ntasks, char **zones, size_t nz, bool durable);

#endif
