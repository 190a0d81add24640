/*
 * store_testutil.h - helpers shared by the store's tests: one PostgreSQL
 * per test binary, a fresh database per test case, configurations built by
 * hand (config.c is not used here), and SQL one-liners for assertions.
 *
 * Test-only code: failures abort the test through cmocka's fail().
 */
#ifndef PGR_STORE_TESTUTIL_H
#define PGR_STORE_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "store.h"
#include "testenv.h"

extern testpg g_pg;

/* cmocka group setup/teardown: start and stop the server. */
int tu_group_setup(void **state);
int tu_group_teardown(void **state);

/* A fresh database; returns its conninfo (static buffer, valid until the
 * next call). With `migrated`, cloned from a migrated template. */
const char *tu_fresh_db(bool migrated);
/* Open a store on conninfo; fails the test on error. */
store *tu_open(const char *conninfo);

/* The first column of the first row of `sql` as a long (fails on error). */
long long tu_ll(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same as text, malloc'ed (NULL for SQL NULL). */
char *tu_text(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run a statement; fails on error. */
void tu_exec(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A config task with the defaults config.c would fill; params "{}" unless given. */
void tu_task(cfg_task *t, const char *name, const char *type, const char *schedule,
             const char *params_json);
void tu_task_clear(cfg_task *t);
/* A config with `url` and n tasks (copied by value; the config owns their
 * params afterwards). path is set, so the CLI syncs it. */
void tu_config(pgr_config *cfg, const char *url, cfg_task *tasks, size_t n);
void tu_config_clear(pgr_config *cfg);

#endif
