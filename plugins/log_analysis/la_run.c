/*
 * la_run.c - one analysis run: params, files, reading, threads, state.
 *
 * Files (globs expanded, sorted) are planned into work items: a plain file
 * from its start offset (incremental state) to its current size, split into
 * chunks at entry boundaries when it is large and threads are available; a
 * gzip file is one item read with zlib. Worker threads take items from a
 * shared counter, each with its own aggregate and one reused read buffer
 * (read()/pread(), not mmap: first touches of mapped pages are slow on our
 * machines); aggregates are merged at the end.
 *
 * Incremental state (JSON, kept by the host between runs):
 *   {"schema_version":1,"last_ts":MS,"files":[{"path","dev","ino","size",
 *    "offset","head_len","head_hash","last_ts"}]}
 * A file is recognised by device and inode, so a renamed (rotated) file
 * continues where it stopped; failing that, by the fingerprint of its first
 * 1024 bytes (uncompressed), so the copy made by copytruncate rotation, or
 * a rotated file compressed since, also continues where the original
 * stopped. A changed fingerprint or a size below the offset means the file
 * was truncated or replaced: it is read from the start.
 */
#include "la_agg.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define READ_CHUNK ((size_t)8 << 20)
#define MAX_ENTRY ((size_t)256 << 20)
#define MIN_SPLIT ((uint64_t)32 << 20)
#define HEAD_LEN 1024

typedef struct la_params {
    char **files;
    size_t nfiles;
    int format;
    const char *prefix;
    int full, top, threads;
} la_params;

typedef struct la_file {
    char *path;
    int format, gz, skip;
    uint64_t dev, ino, size, start, head_len, head_hash;
    uint64_t end_consumed; /* offset after the run */
    uint64_t lines, bytes;
    int chunks;
} la_file;

typedef struct la_item {
    la_file *file;
    uint64_t start, end;
    uint64_t consumed, lines;
    int err;
} la_item;

typedef struct la_job {
    la_item *items;
    size_t nitems;
    size_t next;
    pthread_mutex_t mu;
    const la_prefix *px;
    int top;
    int (*poll)(void *, double);
    void *poll_arg;
    uint64_t total;          /* bytes planned (plain files; gzip counts its size) */
    _Atomic uint64_t done;   /* bytes consumed so far, all workers */
    _Atomic int stop; /* set by the main thread on cancellation */
    char err[256];    /* the first error; under mu */
} la_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- params ---- */

static int parse_params(const char *pj, la_params *p, json_t **root, char *err, size_t errlen)
{
    json_error_t je;
    memset(p, 0, sizeof(*p));
    p->prefix = "%m [%p] ";
    p->top = 20;
    *root = json_loads(pj ? pj : "{}", 0, &je);
    if (!json_is_object(*root)) {
        snprintf(err, errlen, "params: not a JSON object (%s)", je.text);
        return -1;
    }
    json_t *files = json_object_get(*root, "files");
    if (files != NULL && !json_is_array(files)) {
        snprintf(err, errlen, "params: files must be an array of file names or globs");
        return -1;
    }
    size_t i;
    json_t *v;
    p->files = calloc(json_array_size(files) + 1, sizeof(char *));
    json_array_foreach(files, i, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "params: files[%zu] must be a string", i);
            return -1;
        }
        p->files[p->nfiles++] = (char *)json_string_value(v);
    }
    const char *fmt = json_string_value(json_object_get(*root, "format"));
    if (fmt == NULL || strcmp(fmt, "auto") == 0)
        p->format = LA_FMT_AUTO;
    else if (strcmp(fmt, "stderr") == 0)
        p->format = LA_FMT_STDERR;
    else if (strcmp(fmt, "csv") == 0 || strcmp(fmt, "csvlog") == 0)
        p->format = LA_FMT_CSV;
    else if (strcmp(fmt, "jsonlog") == 0 || strcmp(fmt, "json") == 0)
        p->format = LA_FMT_JSON;
    else if (strcmp(fmt, "syslog") == 0)
        p->format = LA_FMT_SYSLOG;
    else {
        snprintf(err, errlen, "params: format \"%s\" is not one of auto, stderr, csv, jsonlog, syslog",
                 fmt);
        return -1;
    }
    const char *px = json_string_value(json_object_get(*root, "prefix"));
    if (px != NULL)
        p->prefix = px;
    const char *src = json_string_value(json_object_get(*root, "source"));
    if (src != NULL && strcmp(src, "files") != 0) {
        snprintf(err, errlen,
                 "params: source \"%s\" is not supported by this version (valid: files)", src);
        return -1;
    }
    p->full = json_is_true(json_object_get(*root, "full"));
    json_t *top = json_object_get(*root, "top");
    if (json_is_integer(top))
        p->top = (int)json_integer_value(top);
    if (p->top < 1 || p->top > 1000) {
        snprintf(err, errlen, "params: top %d is out of range (1 to 1000)", p->top);
        return -1;
    }
    json_t *th = json_object_get(*root, "threads");
    if (json_is_integer(th))
        p->threads = (int)json_integer_value(th);
    if (p->threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p->threads = n > 0 ? (int)n : 1;
    }
    if (p->threads > 64)
        p->threads = 64;
    if (p->nfiles == 0) {
        snprintf(err, errlen, "params: files is empty; give at least one file name or glob");
        return -1;
    }
    return 0;
}

/* ---- state ---- */

typedef struct st_file {
    uint64_t dev, ino, size, offset, head_len, head_hash;
} st_file;

static void st_read(json_t *f, st_file *out)
{
    out->dev = (uint64_t)json_integer_value(json_object_get(f, "dev"));
    out->ino = (uint64_t)json_integer_value(json_object_get(f, "ino"));
    out->size = (uint64_t)json_integer_value(json_object_get(f, "size"));
    out->offset = (uint64_t)json_integer_value(json_object_get(f, "offset"));
    out->head_len = (uint64_t)json_integer_value(json_object_get(f, "head_len"));
    const char *hh = json_string_value(json_object_get(f, "head_hash"));
    out->head_hash = hh ? (uint64_t)strtoull(hh, NULL, 16) : 0;
}

/* The state entry of this file: the same device and inode, or else (a copy
 * made by copytruncate rotation, or a rotated file compressed since) a
 * full head with the same fingerprint. Returns 1 and fills out, or 0. */
static int state_find(json_t *state, const la_file *lf, st_file *out)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(state, "files"), i, f)
    {
        st_file e;
        st_read(f, &e);
        if (e.dev == lf->dev && e.ino == lf->ino) {
            *out = e;
            return 1;
        }
    }
    if (lf->head_len < HEAD_LEN)
        return 0;
    json_array_foreach(json_object_get(state, "files"), i, f)
    {
        st_file e;
        st_read(f, &e);
        if (e.head_len == HEAD_LEN && e.head_hash == lf->head_hash) {
            *out = e;
            return 1;
        }
    }
    return 0;
}

/* ---- planning ---- */

static int is_gzip(int fd)
{
    unsigned char m[2];
    return pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

/* The first bytes of a file, uncompressed. Returns how many (0 on error). */
static size_t sniff(const char *path, int gz, char *buf, size_t cap)
{
    if (gz) {
        gzFile g = gzopen(path, "rb");
        if (g == NULL)
            return 0;
        int r = gzread(g, buf, (unsigned)cap);
        gzclose(g);
        return r > 0 ? (size_t)r : 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, cap);
    close(fd);
    return r > 0 ? (size_t)r : 0;
}

/* Decide where a file starts: from the state's offset when the file (or
 * its copy) was read before and its head is unchanged, else from 0. */
static void plan_start(la_file *lf, const la_params *p, json_t *state, const char *head,
                       size_t nhead)
{
    st_file old;
    if (p->full || state == NULL || !state_find(state, lf, &old))
        return;
    if (old.head_len > nhead || la_hash(head, (size_t)old.head_len) != old.head_hash)
        return; /* truncated and rewritten, or another file on a reused inode */
    if (lf->gz) {
        /* a compressed file is read whole: unchanged means nothing new;
         * else skip the uncompressed bytes already counted */
        lf->skip = old.dev == lf->dev && old.ino == lf->ino && old.size == lf->size;
        lf->start = old.offset;
        return;
    }
    if (old.offset <= lf->size)
        lf->start = old.offset;
}

static int plan_file(la_file *lf, const char *path, const la_params *p, json_t *state, char *err,
                     size_t errlen)
{
    memset(lf, 0, sizeof(*lf));
    lf->path = strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    lf->dev = (uint64_t)sb.st_dev;
    lf->ino = (uint64_t)sb.st_ino;
    lf->size = (uint64_t)sb.st_size;
    lf->gz = is_gzip(fd);
    close(fd);
    char *head = malloc(65536);
    size_t nhead = head ? sniff(path, lf->gz, head, 65536) : 0;
    if (head == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    lf->head_len = nhead < HEAD_LEN ? nhead : HEAD_LEN;
    lf->head_hash = la_hash(head, (size_t)lf->head_len);
    plan_start(lf, p, state, head, nhead);
    lf->format = p->format;
    if (lf->format == LA_FMT_AUTO) {
        lf->format = la_detect_format(head, nhead);
        if (lf->format == LA_FMT_AUTO)
            lf->format = LA_FMT_STDERR;
    }
    free(head);
    return 0;
}

/* Whether a syslog line is the first chunk of a message. */
static int syslog_start_line(const char *p, size_t n)
{
    int pid;
    long seq, chunk;
    return la_parse_syslog_header(p, n, &pid, &seq, &chunk) > 0 && chunk == 1;
}

/* The first entry boundary at or after off in a plain file (stderr: a line
 * that parses with the prefix; csv: a line starting with a timestamp;
 * json: a line start). Returns end when none is found within 16 MB. */
static uint64_t find_boundary(int fd, uint64_t off, uint64_t end, int format,
                              const la_prefix *px)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    uint64_t pos = off, result = end;
    la_rec r;
    int first = 1;
    while (buf != NULL && pos < end && pos - off < ((uint64_t)16 << 20)) {
        ssize_t n = pread(fd, buf, cap, (off_t)pos);
        if (n <= 0)
            break;
        size_t i = 0;
        if (first) {
            const char *nl = memchr(buf, '\n', (size_t)n);
            if (nl == NULL) {
                pos += (uint64_t)n;
                continue;
            }
            i = (size_t)(nl - buf) + 1;
            first = 0;
        }
        while (i < (size_t)n) {
            const char *nl = memchr(buf + i, '\n', (size_t)n - i);
            if (nl == NULL)
                break;
            size_t ll = (size_t)(nl - buf) - i;
            int ok;
            if (format == LA_FMT_JSON)
                ok = 1;
            else if (format == LA_FMT_CSV)
                ok = la_parse_ts(buf + i, ll) >= 0;
            else if (format == LA_FMT_SYSLOG)
                ok = syslog_start_line(buf + i, ll);
            else
                ok = ll > 0 && buf[i] != '\t' && la_parse_stderr_line(px, buf + i, ll, &r);
            if (ok) {
                result = pos + i;
                goto done;
            }
            i += ll + 1;
        }
        if (i == 0)
            break;
        pos += i;
    }
done:
    free(buf);
    return result < end ? result : end;
}

/* ---- reading ---- */

/* One worker's read buffer, error message and role: only the thread that
 * called la_run (main) may call the host (progress, cancelled), so it polls
 * and the others watch job->stop. */
typedef struct reader {
    char *buf;
    size_t cap;
    int main;
    char err[256];
} reader;

static int should_stop(la_job *job, reader *rd, uint64_t consumed)
{
    job->done += consumed;
    if (rd->main && job->poll != NULL) {
        double f = job->total ? (double)job->done / (double)job->total : 0;
        if (job->poll(job->poll_arg, f > 1 ? 1 : f))
            job->stop = 1;
    }
    return job->stop;
}

/* Read item through f. Returns 0, or -1 with err filled. */
static int read_plain(la_job *job, la_item *it, la_feeder *f, reader *rd)
{
    int fd = open(it->file->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(rd->err, sizeof rd->err, "%s: cannot open: %s", it->file->path,
                 strerror(errno));
        return -1;
    }
    posix_fadvise(fd, (off_t)it->start, (off_t)(it->end - it->start), POSIX_FADV_SEQUENTIAL);
    uint64_t off = it->start;
    size_t have = 0;
    uint64_t lines0 = f->lines;
    while (off < it->end) {
        size_t want = rd->cap - have;
        if (want > it->end - off)
            want = (size_t)(it->end - off);
        ssize_t n = pread(fd, rd->buf + have, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                snprintf(rd->err, sizeof rd->err, "%s: read: %s", it->file->path,
                         strerror(errno));
            break;
        }
        have += (size_t)n;
        off += (uint64_t)n;
        int eof = off >= it->end;
        size_t c = la_feed_buffer(f, rd->buf, have, eof);
        if (c == 0 && have == rd->cap && !eof) {
            if (rd->cap >= MAX_ENTRY) {
                c = la_feed_buffer(f, rd->buf, have, 1); /* cut an oversized entry */
                if (c == 0) {
                    la_agg_unparsed(f->agg, 1);
                    c = have;
                }
            } else {
                char *nb = realloc(rd->buf, rd->cap * 2);
                if (nb == NULL) {
                    snprintf(rd->err, sizeof rd->err, "%s: out of memory", it->file->path);
                    break;
                }
                rd->buf = nb;
                rd->cap *= 2;
            }
        }
        memmove(rd->buf, rd->buf + c, have - c);
        have -= c;
        it->consumed += c;
        if (should_stop(job, rd, c))
            break;
    }
    close(fd);
    it->lines = f->lines - lines0;
    return rd->err[0] ? -1 : 0;
}

static int read_gz(la_job *job, la_item *it, la_feeder *f, reader *rd)
{
    gzFile g = gzopen(it->file->path, "rb");
    if (g == NULL) {
        snprintf(rd->err, sizeof rd->err, "%s: cannot open: %s", it->file->path,
                 strerror(errno));
        return -1;
    }
    gzbuffer(g, 1 << 17);
    if (it->start > 0 && gzseek(g, (z_off_t)it->start, SEEK_SET) != (z_off_t)it->start) {
        snprintf(rd->err, sizeof rd->err, "%s: shorter than the %llu bytes read before",
                 it->file->path, (unsigned long long)it->start);
        gzclose(g);
        return -1;
    }
    size_t have = 0;
    uint64_t lines0 = f->lines;
    for (;;) {
        if (have == rd->cap) {
            char *nb = rd->cap < MAX_ENTRY ? realloc(rd->buf, rd->cap * 2) : NULL;
            if (nb == NULL) {
                la_agg_unparsed(f->agg, 1);
                have = 0;
            } else {
                rd->buf = nb;
                rd->cap *= 2;
            }
        }
        int n = gzread(g, rd->buf + have, (unsigned)(rd->cap - have));
        if (n < 0) {
            int e;
            snprintf(rd->err, sizeof rd->err, "%s: %s", it->file->path, gzerror(g, &e));
            break;
        }
        have += (size_t)n;
        int eof = n == 0;
        if (eof && have > 0 && rd->buf[have - 1] != '\n') {
            if (have == rd->cap) {
                la_agg_unparsed(f->agg, 1);
                break;
            }
            rd->buf[have++] = '\n'; /* a finished gzip file: its last line is whole */
        }
        size_t c = la_feed_buffer(f, rd->buf, have, eof);
        memmove(rd->buf, rd->buf + c, have - c);
        have -= c;
        it->consumed += c;
        if (eof || should_stop(job, rd, c))
            break;
    }
    gzclose(g);
    it->lines = f->lines - lines0;
    return rd->err[0] ? -1 : 0;
}

typedef struct worker {
    la_job *job;
    la_agg *agg;
    pthread_t th;
    int main;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    la_job *job = w->job;
    reader rd = {malloc(READ_CHUNK), READ_CHUNK, w->main, ""};
    la_feeder f;
    memset(&f, 0, sizeof f);
    f.agg = w->agg;
    f.px = job->px;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        size_t i = job->next++;
        int stop = job->stop || job->err[0];
        pthread_mutex_unlock(&job->mu);
        if (i < job->nitems && rd.buf == NULL) {
            pthread_mutex_lock(&job->mu);
            if (job->err[0] == '\0')
                snprintf(job->err, sizeof job->err, "out of memory for a read buffer");
            pthread_mutex_unlock(&job->mu);
        }
        if (i >= job->nitems || stop || rd.buf == NULL)
            break;
        la_item *it = &job->items[i];
        f.format = it->file->format;
        f.skip_upto_ms = -1;
        int r = it->file->gz ? read_gz(job, it, &f, &rd) : read_plain(job, it, &f, &rd);
        la_agg_flush(w->agg);
        if (r < 0) {
            it->err = 1;
            pthread_mutex_lock(&job->mu);
            if (job->err[0] == '\0')
                snprintf(job->err, sizeof job->err, "%s", rd.err);
            pthread_mutex_unlock(&job->mu);
            rd.err[0] = '\0';
        }
    }
    la_scratch_free(&f.sc);
    free(rd.buf);
    return NULL;
}

/* ---- the run ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expand globs; a name without glob characters must exist. */
static int expand(const la_params *p, char ***out, size_t *nout, char *err, size_t errlen)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    for (size_t i = 0; i < p->nfiles; i++) {
        int has_glob = strpbrk(p->files[i], "*?[") != NULL;
        int r = glob(p->files[i], (i ? GLOB_APPEND : 0) | (has_glob ? 0 : GLOB_NOCHECK), NULL, &g);
        if (r != 0 && r != GLOB_NOMATCH) {
            snprintf(err, errlen, "files: cannot expand \"%s\"", p->files[i]);
            globfree(&g);
            return -1;
        }
    }
    char **v = calloc(g.gl_pathc + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < g.gl_pathc; i++)
        v[n++] = strdup(g.gl_pathv[i]);
    globfree(&g);
    qsort(v, n, sizeof(char *), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(v[k - 1], v[i]) == 0)
            free(v[i]);
        else
            v[k++] = v[i];
    }
    *out = v;
    *nout = k;
    return 0;
}

static void plan_items(la_job *job, la_file *files, size_t nf, int threads, const la_prefix *px)
{
    job->items = calloc(nf * (size_t)(threads > 0 ? threads : 1) + 1, sizeof(la_item));
    for (size_t i = 0; i < nf; i++) {
        la_file *lf = &files[i];
        if (lf->skip)
            continue;
        uint64_t len = lf->gz ? 0 : lf->size - lf->start;
        int parts = (!lf->gz && threads > 1 && len >= MIN_SPLIT) ? threads : 1;
        uint64_t s = lf->start;
        int fd = parts > 1 ? open(lf->path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0)
            parts = 1;
        for (int k = 1; k <= parts; k++) {
            uint64_t e = lf->gz ? UINT64_MAX : lf->size;
            if (k < parts)
                e = find_boundary(fd, lf->start + len * (uint64_t)k / (uint64_t)parts, lf->size,
                                  lf->format, px);
            if (e <= s && k < parts)
                continue;
            job->items[job->nitems++] = (la_item){.file = lf, .start = s, .end = e};
            lf->chunks++;
            s = e;
        }
        if (fd >= 0)
            close(fd);
    }
}

static char *files_report(la_file *files, size_t nf, int64_t last_ts, char **state_out)
{
    static const char *const fmt_names[] = {"auto", "stderr", "csv", "jsonlog", "syslog"};
    json_t *arr = json_array(), *st = json_array();
    for (size_t i = 0; i < nf; i++) {
        la_file *lf = &files[i];
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:i,s:b}", "path", lf->path, "format",
                           fmt_names[lf->format], "gzip", lf->gz, "size", (json_int_t)lf->size,
                           "start_offset", (json_int_t)lf->start, "end_offset",
                           (json_int_t)lf->end_consumed, "lines", (json_int_t)lf->lines,
                           "chunks", lf->chunks, "skipped_unchanged", lf->skip));
        char hh[24];
        snprintf(hh, sizeof hh, "%016llx", (unsigned long long)lf->head_hash);
        json_array_append_new(
            st, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "path", lf->path, "dev",
                          (json_int_t)lf->dev, "ino", (json_int_t)lf->ino, "size",
                          (json_int_t)lf->size, "offset", (json_int_t)lf->end_consumed,
                          "head_len", (json_int_t)lf->head_len, "head_hash", hh));
    }
    json_t *state = json_pack("{s:i,s:I,s:o}", "schema_version", LA_SCHEMA_VERSION, "last_ts",
                              (json_int_t)last_ts, "files", st);
    *state_out = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(state);
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

static int run_job(la_job *job, int threads, la_agg **aggs)
{
    worker *w = calloc((size_t)threads, sizeof(worker));
    int started = 0;
    for (int i = 0; i < threads; i++) {
        w[i].job = job;
        w[i].agg = aggs[i];
        if (i == 0 || pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
            continue;
        started |= 1 << (i < 30 ? i : 30);
    }
    w[0].main = 1;
    worker_main(&w[0]);
    for (int i = 1; i < threads; i++)
        if (started & (1 << (i < 30 ? i : 30)))
            pthread_join(w[i].th, NULL);
    free(w);
    return 0;
}

/* The previous state, or NULL when there is none or it is of another
 * schema version (then everything is read again rather than failing). */
static json_t *load_state(const char *state_json)
{
    if (state_json == NULL)
        return NULL;
    json_t *state = json_loads(state_json, 0, NULL);
    if (!json_is_object(state) ||
        json_integer_value(json_object_get(state, "schema_version")) != LA_SCHEMA_VERSION) {
        json_decref(state);
        return NULL;
    }
    return state;
}

/* After the run: each file's lines and bytes, and the offset the next run
 * starts from. A file's items are contiguous; the offset stops at the
 * first item that did not reach its end (a partial last line). */
static void settle_files(la_job *job, la_file *files, size_t nf, uint64_t *bytes,
                         uint64_t *lines)
{
    for (size_t i = 0; i < nf; i++)
        files[i].end_consumed = files[i].start;
    for (size_t i = 0; i < job->nitems; i++) {
        la_item *it = &job->items[i];
        it->file->lines += it->lines;
        it->file->bytes += it->consumed;
        if (it->file->end_consumed == it->start)
            it->file->end_consumed = it->start + it->consumed;
    }
    *bytes = *lines = 0;
    for (size_t i = 0; i < nf; i++) {
        *bytes += files[i].bytes;
        *lines += files[i].lines;
    }
}

int la_run(const char *params_json, const char *state_json, int (*poll)(void *, double),
           void *poll_arg, char **result, char **new_state, int *retryable, char *err,
           size_t errlen)
{
    double t0 = now_s();
    la_params p;
    json_t *root = NULL, *state = NULL;
    la_prefix *px = NULL;
    char **paths = NULL;
    size_t npaths = 0, nf = 0;
    la_file *files = NULL;
    la_agg **aggs = NULL;
    la_job job;
    int64_t state_last = -1;
    int rc = -1, threads = 0;
    memset(&job, 0, sizeof job);
    pthread_mutex_init(&job.mu, NULL);
    *result = *new_state = NULL;
    *retryable = 0;
    if (parse_params(params_json, &p, &root, err, errlen) < 0)
        goto out;
    if ((px = la_prefix_compile(p.prefix, err, errlen)) == NULL)
        goto out;
    if (!p.full)
        state = load_state(state_json);
    if (expand(&p, &paths, &npaths, err, errlen) < 0)
        goto out;
    if (npaths == 0) {
        snprintf(err, errlen, "files: no file matches %s%s", p.files[0],
                 p.nfiles > 1 ? " (nor the other patterns)" : "");
        *retryable = 1; /* the log may appear later */
        goto out;
    }
    files = calloc(npaths, sizeof(la_file));
    state_last = state ? (int64_t)json_integer_value(json_object_get(state, "last_ts")) : -1;
    for (nf = 0; nf < npaths; nf++) {
        if (plan_file(&files[nf], paths[nf], &p, state, err, errlen) < 0) {
            nf++;
            *retryable = 1;
            goto out;
        }
    }
    threads = p.threads;
    plan_items(&job, files, nf, threads, px);
    if ((size_t)threads > job.nitems)
        threads = job.nitems > 0 ? (int)job.nitems : 1;
    job.px = px;
    job.poll = poll;
    job.poll_arg = poll_arg;
    for (size_t i = 0; i < nf; i++)
        if (!files[i].skip)
            job.total += files[i].gz ? files[i].size * 8 : files[i].size - files[i].start;
    aggs = calloc((size_t)threads, sizeof(la_agg *));
    for (int i = 0; i < threads; i++)
        aggs[i] = la_agg_new(p.top);
    run_job(&job, threads, aggs);
    if (job.err[0]) {
        snprintf(err, errlen, "%s", job.err);
        *retryable = 1;
        goto out;
    }
    if (job.stop) {
        snprintf(err, errlen, "cancelled before the end of the logs");
        *retryable = 1;
        goto out;
    }
    for (int i = 1; i < threads; i++)
        la_agg_merge(aggs[0], aggs[i]);
    uint64_t bytes, lines;
    settle_files(&job, files, nf, &bytes, &lines);
    la_agg_add_input(aggs[0], bytes, lines);
    int64_t last_ts = aggs[0]->last_ts > state_last ? aggs[0]->last_ts : state_last;
    char *fj = files_report(files, nf, last_ts, new_state);
    *result = la_output_json(aggs[0], fj, now_s() - t0, 0);
    free(fj);
    rc = *result ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "out of memory writing the result");
out:
    for (int i = 0; aggs && i < threads; i++)
        la_agg_free(aggs[i]);
    free(aggs);
    for (size_t i = 0; i < nf; i++)
        free(files[i].path);
    free(files);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(job.items);
    pthread_mutex_destroy(&job.mu);
    la_prefix_free(px);
    free(p.files);
    json_decref(state);
    json_decref(root);
    return rc;
}
