/*
 * la_remote.c - an analysis of the server's own log files, read through a
 * reader callback (the plugin's la_server.c reads with
 * pg_read_binary_file() on the task's connection; the engine itself has no
 * libpq dependency).
 *
 * The caller lists the log directory (pg_ls_logdir()); this file picks the
 * files of the wanted format by extension, decides where each one starts
 * from the previous state, reads the new bytes in chunks of up to 4 MB into
 * one growing buffer and feeds them to one aggregate, as la_run.c does for a
 * plain file.
 *
 * Incremental state (JSON, kept by the host between runs):
 *   {"schema_version":1,"source":"server","last_ts":MS,"server_files":[
 *    {"name","size","mtime","offset","head_len","head_hash"}]}
 * The server never renames its log files: rotation opens a new name. A
 * name comes back only with a log_filename such as postgresql-%a.log, and
 * then (log_truncate_on_rotation) with other contents: the fingerprint of
 * the first 1024 bytes (or of as many as were there) tells it, and the file
 * is read from 0. So is a file smaller than its offset. A file with the same
 * size and modification time as before is not read at all.
 */
#include "la_agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REMOTE_CHUNK ((size_t)4 << 20)
#define REMOTE_MAX_ENTRY ((size_t)256 << 20)
#define HEAD_LEN 1024

/* One picked file and what the run did with it. */
typedef struct rfile {
    const la_remote_file *src;
    int format, skip;
    uint64_t start, end, head_len, head_hash;
    uint64_t lines;
} rfile;

typedef struct rjob {
    la_remote_read rd;
    void *rd_arg;
    int (*poll)(void *, double);
    void *poll_arg;
    uint64_t total, done;
    char *buf;
    size_t cap;
    int fatal, cancelled;
} rjob;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int la_remote_format(const char *name)
{
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".log") == 0)
        return LA_FMT_STDERR;
    if (n > 4 && strcmp(name + n - 4, ".csv") == 0)
        return LA_FMT_CSV;
    if (n > 5 && strcmp(name + n - 5, ".json") == 0)
        return LA_FMT_JSON;
    return LA_FMT_AUTO;
}

static const char *ext_of(int format)
{
    return format == LA_FMT_CSV ? ".csv" : format == LA_FMT_JSON ? ".json" : ".log";
}

/* The state entry named name, or NULL. */
static json_t *state_entry(json_t *state, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(state, "server_files"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return f;
    }
    return NULL;
}

static uint64_t jget(json_t *o, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(o, k));
}

/* Read exactly the first min(size, 1024) bytes of the file for its
 * fingerprint. Returns 0 or -1 with err filled. */
static int read_head(rjob *job, rfile *rf, char *head, uint64_t *nhead, char *err, size_t errlen)
{
    uint64_t want = rf->src->size < HEAD_LEN ? rf->src->size : HEAD_LEN;
    *nhead = 0;
    while (*nhead < want) {
        int64_t n = job->rd(job->rd_arg, rf->src, *nhead, (size_t)(want - *nhead), head + *nhead,
                            &job->fatal, err, errlen);
        if (n < 0)
            return -1;
        if (n == 0)
            break; /* shrank or removed since the listing */
        *nhead += (uint64_t)n;
    }
    return 0;
}

/* Decide where rf starts and whether it is read at all. */
static int plan_remote(rjob *job, rfile *rf, json_t *state, int full, char *err, size_t errlen)
{
    json_t *old = full ? NULL : state_entry(state, rf->src->name);
    rf->end = rf->src->size;
    if (old != NULL && jget(old, "size") == rf->src->size &&
        (int64_t)jget(old, "mtime") == rf->src->mtime && jget(old, "offset") <= rf->src->size) {
        /* unchanged since the last run: keep its fingerprint, read nothing */
        rf->head_len = jget(old, "head_len");
        const char *hh = json_string_value(json_object_get(old, "head_hash"));
        rf->head_hash = hh ? (uint64_t)strtoull(hh, NULL, 16) : 0;
        rf->start = rf->end = jget(old, "offset");
        rf->skip = 1;
        return 0;
    }
    char head[HEAD_LEN];
    uint64_t nhead;
    if (read_head(job, rf, head, &nhead, err, errlen) < 0)
        return -1;
    rf->head_len = nhead;
    rf->head_hash = la_hash(head, (size_t)nhead);
    if (old == NULL)
        return 0;
    uint64_t olen = jget(old, "head_len"), off = jget(old, "offset");
    const char *hh = json_string_value(json_object_get(old, "head_hash"));
    uint64_t ohash = hh ? (uint64_t)strtoull(hh, NULL, 16) : 0;
    if (olen <= nhead && la_hash(head, (size_t)olen) == ohash && off <= rf->src->size)
        rf->start = off; /* the same file, grown */
    return 0;             /* else a reused name or a truncated file: from 0 */
}

/* Make room in the buffer for an entry longer than it. Returns 0, or -1
 * when it cannot grow (then the entry is cut and counted unparsed). */
static int grow(rjob *job)
{
    if (job->cap >= REMOTE_MAX_ENTRY)
        return -1;
    char *nb = realloc(job->buf, job->cap * 2);
    if (nb == NULL)
        return -1;
    job->buf = nb;
    job->cap *= 2;
    return 0;
}

/* Read rf from start to end through f. Returns 0 or -1 with err filled;
 * rf->end is set to the offset reached (complete entries only). */
static int read_remote(rjob *job, rfile *rf, la_feeder *f, char *err, size_t errlen)
{
    uint64_t off = rf->start, consumed = rf->start, lines0 = f->lines;
    size_t have = 0;
    while (off < rf->end) {
        size_t want = job->cap - have;
        if (want > REMOTE_CHUNK)
            want = REMOTE_CHUNK;
        if (want > rf->end - off)
            want = (size_t)(rf->end - off);
        int64_t n = job->rd(job->rd_arg, rf->src, off, want, job->buf + have, &job->fatal, err,
                            errlen);
        if (n < 0)
            return -1;
        int eof = n == 0;
        have += (size_t)n;
        off += (uint64_t)n;
        eof = eof || off >= rf->end;
        size_t c = la_feed_buffer(f, job->buf, have, eof);
        if (c == 0 && have == job->cap && !eof && grow(job) < 0) {
            c = la_feed_buffer(f, job->buf, have, 1); /* cut an oversized entry */
            if (c == 0) {
                la_agg_unparsed(f->agg, 1);
                c = have;
            }
        }
        memmove(job->buf, job->buf + c, have - c);
        have -= c;
        consumed += c;
        job->done += c;
        if (job->poll != NULL) {
            double fr = job->total ? (double)job->done / (double)job->total : 0;
            if (job->poll(job->poll_arg, fr > 1 ? 1 : fr)) {
                job->cancelled = 1;
                break;
            }
        }
        if (eof)
            break;
    }
    rf->end = consumed;
    rf->lines = f->lines - lines0;
    return 0;
}

/* The input.files array of the result and the next state. */
static char *remote_report(rfile *rf, size_t n, int64_t last_ts, char **state_out)
{
    static const char *const fmt_names[] = {"auto", "stderr", "csv", "jsonlog", "syslog"};
    json_t *arr = json_array(), *st = json_array();
    for (size_t i = 0; i < n; i++) {
        const la_remote_file *s = rf[i].src;
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:i,s:b}", "path", s->path, "format",
                           fmt_names[rf[i].format], "gzip", 0, "size", (json_int_t)s->size,
                           "start_offset", (json_int_t)rf[i].start, "end_offset",
                           (json_int_t)rf[i].end, "lines", (json_int_t)rf[i].lines, "chunks",
                           rf[i].skip ? 0 : 1, "skipped_unchanged", rf[i].skip));
        char hh[24];
        snprintf(hh, sizeof hh, "%016llx", (unsigned long long)rf[i].head_hash);
        json_array_append_new(
            st, json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "name", s->name, "size",
                          (json_int_t)s->size, "mtime", (json_int_t)s->mtime, "offset",
                          (json_int_t)rf[i].end, "head_len", (json_int_t)rf[i].head_len,
                          "head_hash", hh));
    }
    json_t *state = json_pack("{s:i,s:s,s:I,s:o}", "schema_version", LA_SCHEMA_VERSION, "source",
                              "server", "last_ts", (json_int_t)last_ts, "server_files", st);
    *state_out = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(state);
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

static int cmp_rfile(const void *a, const void *b)
{
    return strcmp(((const rfile *)a)->src->name, ((const rfile *)b)->src->name);
}

/* Pick the files of the format, sorted by name (= by time with the
 * default log_filename). Returns how many, or -1 with err filled. */
static int pick_files(const la_params *p, const la_remote_file *files, size_t nfiles, rfile *out,
                      char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < nfiles; i++) {
        int fmt = la_remote_format(files[i].name);
        if (fmt == LA_FMT_AUTO || (p->format != LA_FMT_AUTO && fmt != p->format))
            continue;
        memset(&out[n], 0, sizeof out[n]);
        out[n].src = &files[i];
        out[n++].format = fmt;
    }
    if (n == 0) {
        snprintf(err, errlen,
                 "source server: no %s file among the %zu files of the server's log directory "
                 "(log_destination must include %s)",
                 p->format == LA_FMT_AUTO ? ".log, .csv or .json" : ext_of(p->format), nfiles,
                 p->format == LA_FMT_CSV    ? "csvlog"
                 : p->format == LA_FMT_JSON ? "jsonlog"
                                            : "stderr, csvlog or jsonlog");
        return -1;
    }
    qsort(out, n, sizeof *out, cmp_rfile);
    return (int)n;
}

/* The previous state when it is a server state of this schema, else NULL. */
static json_t *load_remote_state(const char *state_json)
{
    json_t *state = state_json ? json_loads(state_json, 0, NULL) : NULL;
    const char *src = json_string_value(json_object_get(state, "source"));
    if (json_integer_value(json_object_get(state, "schema_version")) != LA_SCHEMA_VERSION ||
        src == NULL || strcmp(src, "server") != 0) {
        json_decref(state);
        return NULL;
    }
    return state;
}

/* Plan and read every file into agg. Returns 0 or -1 with err filled. */
static int read_all(rjob *job, rfile *rf, size_t n, const la_params *p, json_t *state,
                    la_agg *agg, la_prefix *px, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (plan_remote(job, &rf[i], state, p->full, err, errlen) < 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        job->total += rf[i].end - rf[i].start;
    la_feeder f;
    memset(&f, 0, sizeof f);
    f.agg = agg;
    f.px = px;
    f.skip_upto_ms = -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !job->cancelled; i++) {
        if (rf[i].skip || rf[i].start >= rf[i].end) {
            rf[i].end = rf[i].start;
            continue;
        }
        f.format = rf[i].format;
        rc = read_remote(job, &rf[i], &f, err, errlen);
        la_agg_flush(agg);
    }
    la_scratch_free(&f.sc);
    return rc;
}

int la_run_remote(const char *params_json, const char *state_json, const la_remote_file *files,
                  size_t nfiles, la_remote_read rd, void *rd_arg, int (*poll)(void *, double),
                  void *poll_arg, char **result, char **new_state, int *retryable, char *err,
                  size_t errlen)
{
    double t0 = now_s();
    la_params p;
    json_t *root = NULL, *state = NULL;
    la_prefix *px = NULL;
    la_agg *agg = NULL;
    rfile *rf = NULL;
    rjob job = {rd, rd_arg, poll, poll_arg, 0, 0, NULL, REMOTE_CHUNK, 0, 0};
    int rc = -1, n = 0;
    *result = *new_state = NULL;
    *retryable = 0;
    if (la_parse_params(params_json, &p, &root, err, errlen) < 0)
        goto out;
    if (!p.server) {
        snprintf(err, errlen, "params: source must be server to read the server's log");
        goto out;
    }
    if ((px = la_prefix_compile(p.prefix, err, errlen)) == NULL)
        goto out;
    rf = calloc(nfiles + 1, sizeof *rf);
    job.buf = malloc(job.cap);
    if (rf == NULL || job.buf == NULL) {
        snprintf(err, errlen, "source server: out of memory");
        goto out;
    }
    if ((n = pick_files(&p, files, nfiles, rf, err, errlen)) < 0)
        goto out;
    state = load_remote_state(state_json);
    agg = la_agg_new(p.top);
    if (read_all(&job, rf, (size_t)n, &p, state, agg, px, err, errlen) < 0) {
        *retryable = !job.fatal;
        goto out;
    }
    if (job.cancelled) {
        snprintf(err, errlen, "cancelled before the end of the logs");
        *retryable = 1;
        goto out;
    }
    uint64_t bytes = 0, lines = 0;
    for (int i = 0; i < n; i++) {
        bytes += rf[i].end - rf[i].start;
        lines += rf[i].lines;
    }
    la_agg_add_input(agg, bytes, lines);
    int64_t state_last = state ? (int64_t)jget(state, "last_ts") : -1;
    int64_t last_ts = agg->last_ts > state_last ? agg->last_ts : state_last;
    char *fj = remote_report(rf, (size_t)n, last_ts, new_state);
    *result = la_output_json(agg, fj, now_s() - t0, 0);
    free(fj);
    rc = *result ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "out of memory writing the result");
out:
    if (rc < 0) {
        free(*new_state);
        *new_state = NULL;
    }
    la_agg_free(agg);
    free(job.buf);
    free(rf);
    la_prefix_free(px);
    free(p.files);
    json_decref(state);
    json_decref(root);
    return rc;
}
