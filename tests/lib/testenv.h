/*
 * testenv.h - helpers for tests that need real servers: a throw-away
 * PostgreSQL (tests/lib/pg_harness.sh) and redis-server
 * (tests/lib/redis_harness.sh), each in its own temporary directory, and
 * waiting for a condition with a deadline instead of sleeping.
 *
 * Test-only code: failures abort the test with a message (no recovery).
 */
#ifndef PGR_TESTENV_H
#define PGR_TESTENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct testpg {
    char dir[256];
    char conninfo[512]; /* key=value conninfo for dbname=postgres */
} testpg;

typedef struct testredis {
    char dir[256];
    int port;
    char socket[300];
} testredis;

/* Start a PostgreSQL cluster; fills *pg. Returns 0, or -1 (message on stderr). */
int testpg_start(testpg *pg);
void testpg_stop(testpg *pg);
/* conninfo for another database on the same server, into buf. */
const char *testpg_conninfo_db(const testpg *pg, const char *dbname, char *buf, size_t len);
/* Run SQL on the server (psql-free, via libpq); returns 0 or -1 with the
 * error on stderr. */
int testpg_exec(const testpg *pg, const char *sql);

/* Start redis-server; `extra_conf` lines (may be NULL-terminated list or NULL). */
int testredis_start(testredis *r, const char *const *extra_conf);
void testredis_stop(testredis *r);

/* Directory of the test sources and of the build (from the environment
 * ctest sets: PGR_SOURCE_DIR, PGR_BUILD_DIR). */
const char *test_source_dir(void);
const char *test_build_dir(void);

/* Poll `cond(arg)` every 5 ms until it returns true or `timeout_ms`
 * passes. Returns true when the condition became true. */
bool wait_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms);

/* Run a shell command, capturing stdout+stderr into a malloc'ed string
 * (*out, caller frees; may be NULL). Returns the exit status (0-255) or
 * 128+signal. */
int run_capture(const char *cmd, char **out);

#endif
