/*
 * report_store.h - reports in the analytics store: storing the bodies a
 * `report` task returned (one row per format in `reports`), finding a
 * stored report by date, and the `pgreviewer report` command.
 *
 * The report plugin reads the store through a read-only connection, so it
 * cannot store its own output: it returns the bodies in its result
 * document, and the host calls report_store_from_result() when it stores
 * that result (after a successful finish). Any other result is left alone.
 */
#ifndef PGR_REPORT_STORE_H
#define PGR_REPORT_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

/* If `result` looks like a report plugin's result (an object with
 * "period": {"start", "end"} and a "reports" object), insert one row per
 * format in it (json, markdown, html) into `reports` with its period,
 * scope, body and created_at, replacing rows an earlier call stored for
 * the same execution_id (execution_id 0: none, stored as NULL). Runs in its
 * own transaction unless the store's connection is already in one.
 * Returns the number of rows inserted (0 when `result` is not a report),
 * or -1 with err filled (nothing inserted).
 *
 * Call it after the execution's finish was applied (store_exec_finish or
 * store_finish_batch said STORE_FINISH_OK for a completed execution). It
 * is idempotent per execution, so calling it again after a crash between
 * the two transactions repairs the rows. */
int report_store_from_result(store *s, int64_t execution_id, const json_t *result, char *err,
                             size_t errlen);

/* The same for a result as JSON text (what store_finish.result_json
 * holds): a text without a "reports" key is not parsed at all, so calling
 * this for every completed execution costs nothing for other task types.
 * NULL is not a report. Returns as report_store_from_result(). */
int report_store_from_result_text(store *s, int64_t execution_id, const char *result_json,
                                  char *err, size_t errlen);

/* The latest stored report of day `date` (YYYY-MM-DD, in the time zone the
 * report was made for) in `format` (json, markdown or html) whose scope is
 * `connection` (NULL: all connections). Whole-day reports win over other
 * periods starting that day. Returns 0 with *body (caller frees), 1 when
 * there is none, or -1 with err filled. */
int report_store_find(store *s, const char *date, const char *connection, const char *format,
                      char **body, char *err, size_t errlen);

/* `pgreviewer report show|generate ...` (core/cli_report.c); argv[0] is
 * the word after `report`. Returns the exit code (0, 1, 2 usage). */
int cmd_report(const pgr_config *cfg, int argc, char **argv);

#endif
