/*
 * csql.h - the internals of the custom_sql plugin, shared by its files:
 *
 *   csql_params.c      the task's params (JSON) checked and parsed into
 *                      csql_params: queries, timeouts, row limit, thresholds
 *   csql_threshold.c   threshold conditions ("> 100") parsed and matched
 *                      against a cell value or a row count
 *   csql_value.c       one PostgreSQL text value turned into JSON by its type
 *   custom_sql.c       the run: transaction, savepoints, timeouts, each
 *                      query, thresholds, the result document
 *
 * Nothing here is exported from custom_sql.so (hidden visibility): the one
 * exported symbol is the ABI entry point in custom_sql.c. The plugin uses
 * libpq and jansson itself; from pgreviewer it includes only
 * <pgreviewer/plugin.h>.
 */
#ifndef CSQL_H
#define CSQL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A query's or the task's status, from best to worst as the task's status
 * ranks them (skipped never raises it). */
typedef enum csql_status {
    CSQL_SKIPPED = 0,
    CSQL_OK = 1,
    CSQL_WARNING = 2,
    CSQL_UNKNOWN = 3,
    CSQL_CRITICAL = 4
} csql_status;

typedef enum csql_op { CSQL_GT, CSQL_GE, CSQL_LT, CSQL_LE, CSQL_EQ, CSQL_NE } csql_op;

/* One condition such as "> 100" or "== 'idle'". */
typedef struct csql_cond {
    bool set;       /* false: this level has no condition */
    csql_op op;
    bool numeric;   /* the operand is a number (num); else text only */
    double num;
    char *text;     /* the operand as text (quotes removed) */
    char *source;   /* the condition as written, for messages: "> 100" */
} csql_cond;

/* One threshold: on a column of every row, or on the row count. */
typedef struct csql_threshold {
    char *column;   /* NULL: on the row count */
    csql_cond warning, critical;
} csql_threshold;

typedef struct csql_query {
    char *name;
    char *sql;
    char **values;              /* bound parameters $1..$n as text; NULL entries are SQL NULL */
    int n_values;
    int min_version;            /* 0: none */
    int max_version;            /* 0: none; inclusive */
    char *requires_extension;   /* NULL: none */
    csql_threshold *thresholds;
    size_t n_thresholds;
} csql_query;

typedef struct csql_params {
    csql_query *queries;
    size_t n_queries;
    int64_t statement_timeout_ms; /* 0: no limit of our own */
    int64_t lock_timeout_ms;      /* 0: no limit */
    int64_t max_rows;
    bool read_only;
} csql_params;

/* Parse and check the task's params (a JSON object, defaults of the
 * manifest filled in). Returns 0 and fills *p (free with
 * csql_params_free), or -1 with a message naming the offending key in err
 * (then *p holds nothing to free). */
int csql_params_parse(const char *json, csql_params *p, char *err, size_t errlen);
void csql_params_free(csql_params *p);

/* Parse a duration param: a JSON integer of milliseconds, or a string
 * "250ms", "5s", "2min"/"2m", "1h", "1d" (a bare number in a string is
 * milliseconds, as in PostgreSQL). Returns 0 and stores *ms, or -1. */
int csql_parse_duration(const json_t *v, int64_t *ms);

/* Parse a condition ("> 100", ">= 0.5", "== idle", "!= 'x'") into *c.
 * Returns 0, or -1 with the reason in err. Free with csql_cond_free. */
int csql_cond_parse(const char *text, csql_cond *c, char *err, size_t errlen);
void csql_cond_free(csql_cond *c);

/* Does `value` (a JSON cell: number, string, boolean or null) meet the
 * condition? Returns 1 yes, 0 no (a NULL never meets one), -1 when an
 * ordering operator meets a value that is not a number (message in err). */
int csql_cond_match(const csql_cond *c, const json_t *value, char *err, size_t errlen);

/* The worst level a value reaches on a threshold: CSQL_CRITICAL,
 * CSQL_WARNING or CSQL_OK; CSQL_UNKNOWN with err filled when it cannot be
 * compared. */
csql_status csql_threshold_level(const csql_threshold *t, const json_t *value, char *err,
                                 size_t errlen);

/* Describe a threshold's condition at `level` as "column x > 100" or
 * "rows > 0", into buf; returns buf. */
const char *csql_threshold_describe(const csql_threshold *t, csql_status level, char *buf,
                                    size_t len);

const char *csql_status_name(csql_status s);

/* Turn one value in PostgreSQL's text output into JSON by its type OID
 * (see README.md, "Values"). `text` is NUL-terminated, `len` its length.
 * Returns a new reference (never NULL). */
json_t *csql_value_to_json(unsigned int type_oid, const char *text, size_t len);

#endif
