/*
 * la_engine.h - the log analysis engine shared by the log_analysis plugin
 * and the la_cli driver.
 *
 * The engine has no dependency on the pgreviewer host: it takes the task's
 * params (and previous state) as JSON text and returns the result document
 * (and the next state) as JSON text. Files:
 *
 *   la_parse.c   line/record parsers: stderr with any log_line_prefix,
 *                csvlog, jsonlog -> la_rec
 *   la_norm.c    statement and error message normalization (pgBadger rules)
 *   la_agg.c     aggregation of records: counters, open-addressing hashes
 *   la_output.c  the JSON result document (schema_version 1)
 *   la_run.c     params, files and globs, gzip, chunked reading, threads,
 *                incremental state
 *
 * Nothing here is thread-safe on its own: each worker thread owns one
 * la_agg and one reader; aggregates are merged at the end.
 */
#ifndef LA_ENGINE_H
#define LA_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#define LA_SCHEMA_VERSION 1
#define LA_VERSION "1.0.0"

/* A slice of a buffer; not NUL-terminated. */
typedef struct la_str {
    const char *p;
    size_t n;
} la_str;

enum la_format { LA_FMT_AUTO = 0, LA_FMT_STDERR, LA_FMT_CSV, LA_FMT_JSON, LA_FMT_SYSLOG };

enum la_level {
    LA_LV_NONE = 0,
    LA_LV_DEBUG,
    LA_LV_INFO,
    LA_LV_NOTICE,
    LA_LV_LOG,
    LA_LV_WARNING,
    LA_LV_ERROR,
    LA_LV_FATAL,
    LA_LV_PANIC,
    LA_LV_DETAIL,
    LA_LV_HINT,
    LA_LV_CONTEXT,
    LA_LV_STATEMENT,
    LA_LV_QUERY,
    LA_LV_LOCATION,
    LA_LV_COUNT
};

/* One log entry, whatever the format. Slices point into the reader's buffer
 * or the parser's scratch space and are valid until the next record. */
typedef struct la_rec {
    int64_t ts_ms; /* epoch milliseconds (the zone is ignored), -1 unknown */
    int pid;
    int level; /* enum la_level */
    la_str user, db, app, host, sqlstate;
    la_str msg;       /* the message; stderr continuation lines included */
    la_str statement; /* csvlog/jsonlog query column; empty for stderr */
    la_str detail;
} la_rec;

/* ---- la_parse.c ---- */

/* A compiled log_line_prefix. */
typedef struct la_prefix la_prefix;

/* Compile a log_line_prefix. Returns NULL on an unknown escape, with a
 * message in err. Free with la_prefix_free(). */
la_prefix *la_prefix_compile(const char *prefix, char *err, size_t errlen);
void la_prefix_free(la_prefix *px);

/* Parse one stderr line (without its newline) as "prefix LEVEL:  message".
 * Returns 1 and fills rec when it is the start of an entry, 0 when not. */
int la_parse_stderr_line(const la_prefix *px, const char *line, size_t len, la_rec *rec);

/* Scratch space for parsers that must unescape (csv, json). */
typedef struct la_scratch {
    char *buf;
    size_t cap, len;
} la_scratch;
void la_scratch_free(la_scratch *s);

/* Parse one csvlog record (may span lines). Returns 1 and fills rec, 0 when
 * the text is not a csvlog record. */
int la_parse_csv_record(const char *p, size_t len, la_scratch *sc, la_rec *rec);

/* Parse one jsonlog line. Returns 1 and fills rec, 0 when it is not a
 * jsonlog object. */
int la_parse_json_line(const char *p, size_t len, la_scratch *sc, la_rec *rec);

/* Length of the csvlog record starting at p (through its final newline, or
 * to len when it ends without one), or 0 when the record is not complete
 * within len (an open quote). */
size_t la_csv_record_len(const char *p, size_t len);

/* Parse "YYYY-MM-DD HH:MM:SS[.fff]" at p; returns epoch ms or -1. */
int64_t la_parse_ts(const char *p, size_t len);

/* The syslog header of a line ("Mmm dd hh:mm:ss host ident[pid]: [N-M] "):
 * returns the offset of the text after it and fills pid, N and M, or 0
 * when the line has no such header. */
size_t la_parse_syslog_header(const char *p, size_t n, int *pid, long *seq, long *chunk);

/* Guess the format of a buffer's first lines; LA_FMT_AUTO when unsure. */
int la_detect_format(const char *p, size_t len);

/* ---- la_norm.c ---- */

/* Normalize a statement the way pgBadger does (lower case, literals and
 * numbers to ?, whitespace folded, IN lists collapsed). Writes into out
 * (grown as needed, reused by the caller); returns the length. */
size_t la_norm_query(const char *q, size_t n, la_scratch *out);

/* Normalize an error message to its class (pgBadger's normalize_error). */
size_t la_norm_error(const char *m, size_t n, la_scratch *out);

/* Statement type of a normalized statement: "select", "insert", ... */
const char *la_query_type(const char *norm, size_t n);

/* 64-bit hash of a byte string. */
uint64_t la_hash(const char *p, size_t n);

/* ---- la_agg.c ---- */

typedef struct la_agg la_agg;

/* A new, empty aggregate keeping `top` entries in its top-N lists. Never
 * returns NULL: out of memory in the engine aborts the process (the
 * executor that runs the plugin is recycled by the host). Free it with
 * la_agg_free(), which accepts NULL. */
la_agg *la_agg_new(int top);
void la_agg_free(la_agg *a);
/* Account one record. The record's slices are not kept. */
void la_agg_record(la_agg *a, const la_rec *r);
/* Account an input line that no parser recognized. */
void la_agg_unparsed(la_agg *a, size_t nlines);
/* Close pending attachments (a temp file waiting for its STATEMENT). */
void la_agg_flush(la_agg *a);
/* Merge src into dst (src is left empty but valid). */
void la_agg_merge(la_agg *dst, la_agg *src);
void la_agg_add_input(la_agg *a, uint64_t bytes, uint64_t lines);

/* ---- la_output.c ---- */

/* The result document as JSON text (malloc'd, caller frees), or NULL when
 * jansson runs out of memory. `files_json` is a JSON array describing the
 * inputs (may be NULL). Spreads the aggregate's per-statement dimensions
 * first (la_agg_finish), so call it once per aggregate. */
char *la_output_json(la_agg *a, const char *files_json, double seconds, int full_detail);

/* ---- la_run.c ---- */

/* Run an analysis. params_json: the task params; state_json: the previous
 * state or NULL. On success returns 0 with *result and *new_state set
 * (malloc'd JSON, caller frees). On failure returns -1 (invalid params,
 * unreadable file: *retryable = 0; a transient error: 1) with err filled.
 * poll (may be NULL) is called from the calling thread only, after each
 * read of up to 8 MB, with the fraction done (0..1; gzip files count as 8
 * times their compressed size); a non-zero return cancels the run (a
 * retryable failure). */
int la_run(const char *params_json, const char *state_json, int (*poll)(void *, double),
           void *poll_arg, char **result, char **new_state, int *retryable, char *err,
           size_t errlen);

/* A feeder turns a buffer of log text into records for one la_agg. */
typedef struct la_feeder {
    la_agg *agg;
    int format;           /* LA_FMT_STDERR, _CSV, _JSON or _SYSLOG */
    const la_prefix *px;  /* stderr only */
    int64_t skip_upto_ms; /* records at or before this time are skipped; -1 none */
    uint64_t lines;       /* lines consumed so far */
    uint64_t skipped;     /* records skipped by skip_upto_ms */
    la_scratch sc;
} la_feeder;

/* Feed p[0..n) to f. Returns the bytes consumed: complete entries only.
 * With at_eof the last entry is taken as complete, but a final line
 * without its newline is still left unconsumed (it may be a write in
 * progress). The caller keeps the rest and feeds it again with more data.
 * Never fails: unrecognised lines are counted as unparsed. */
size_t la_feed_buffer(la_feeder *f, const char *p, size_t n, int at_eof);

#endif /* LA_ENGINE_H */
