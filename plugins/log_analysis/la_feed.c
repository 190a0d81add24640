/*
 * la_feed.c - from a buffer of log text to records, for each format.
 *
 * The reader hands over whatever it has read; the feeder consumes complete
 * entries and says how far it got, so entries that straddle two reads are
 * fed again whole with the next read. For stderr an entry is a prefixed
 * line plus the continuation lines (starting with a tab) that follow it;
 * the message slice simply grows over them, nothing is copied.
 */
#include "la_engine.h"

#include <stdlib.h>
#include <string.h>

static void emit(la_feeder *f, const la_rec *r)
{
    if (f->skip_upto_ms >= 0 && r->ts_ms >= 0 && r->ts_ms <= f->skip_upto_ms) {
        f->skipped++;
        return;
    }
    la_agg_record(f->agg, r);
}

/* The end of a chunk of line-oriented input (stderr, syslog). An entry
 * still open when the chunk ends may yet get continuation lines, unless
 * this is the end of the input: then it is emitted. Otherwise the chunk is
 * consumed only up to that entry's first line, which is fed again with the
 * next read. Returns how many bytes were consumed. */
static size_t end_chunk(la_feeder *f, const la_rec *cur, int active, int at_eof, size_t pos,
                        uint64_t lines, size_t entry_start, uint64_t lines_at_start,
                        uint64_t unparsed)
{
    if (active && !at_eof) {
        lines = lines_at_start;
        pos = entry_start;
    } else if (active) {
        emit(f, cur);
    }
    f->lines += lines;
    la_agg_unparsed(f->agg, unparsed);
    return pos;
}

static size_t feed_stderr(la_feeder *f, const char *p, size_t n, int at_eof)
{
    size_t pos = 0, entry_start = 0;
    uint64_t lines = 0, lines_at_start = 0, unparsed = 0;
    int active = 0;
    la_rec cur, r;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL)
            break; /* a partial line: never consumed here */
        size_t le = (size_t)(nl - p);
        size_t ll = le - pos;
        if (ll > 0 && p[le - 1] == '\r')
            ll--;
        if (active && ll > 0 && p[pos] == '\t') {
            cur.msg.n = (size_t)(p + pos + ll - cur.msg.p);
        } else if (la_parse_stderr_line(f->px, p + pos, ll, &r)) {
            if (active)
                emit(f, &cur);
            cur = r;
            active = 1;
            entry_start = pos;
            lines_at_start = lines;
        } else {
            if (active)
                emit(f, &cur);
            active = 0;
            if (ll > 0)
                unparsed++;
        }
        lines++;
        pos = le + 1;
    }
    return end_chunk(f, &cur, active, at_eof, pos, lines, entry_start, lines_at_start, unparsed);
}

static size_t count_nl(const char *p, size_t n)
{
    size_t c = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        c++;
    return c;
}

/* Whether a line after the first one of p starts with a timestamp (then a
 * record with an open quote before it is broken, not being written). */
static int record_follows(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    while (nl != NULL && (size_t)(nl + 1 - p) < n) {
        size_t at = (size_t)(nl + 1 - p);
        if (la_parse_ts(p + at, n - at) >= 0)
            return 1;
        nl = memchr(p + at, '\n', n - at);
    }
    return 0;
}

static size_t feed_csv(la_feeder *f, const char *p, size_t n, int at_eof)
{
    size_t pos = 0;
    la_rec r;
    (void)at_eof;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL)
            break;
        size_t rl = 0;
        if (la_parse_ts(p + pos, n - pos) >= 0)
            rl = la_csv_record_len(p + pos, n - pos);
        if (rl == 0 && la_parse_ts(p + pos, n - pos) >= 0 &&
            (at_eof ? !record_follows(p + pos, n - pos) : n - pos < ((size_t)64 << 20)))
            break; /* an open quote: a record still being written, wait */
        if (rl == 0 || !la_parse_csv_record(p + pos, rl, &f->sc, &r)) {
            /* not a record start, or broken: skip one line */
            size_t ll = (size_t)(nl - p) - pos;
            if (ll > 0)
                la_agg_unparsed(f->agg, 1);
            f->lines++;
            pos += ll + 1;
            continue;
        }
        emit(f, &r);
        f->lines += count_nl(p + pos, rl);
        pos += rl;
    }
    return pos;
}

static size_t feed_json(la_feeder *f, const char *p, size_t n)
{
    size_t pos = 0;
    la_rec r;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL)
            break;
        size_t ll = (size_t)(nl - p) - pos;
        if (la_parse_json_line(p + pos, ll, &f->sc, &r))
            emit(f, &r);
        else if (ll > 0)
            la_agg_unparsed(f->agg, 1);
        f->lines++;
        pos += ll + 1;
    }
    return pos;
}

/* syslog: PostgreSQL sends each line of a message (and each 900-byte piece
 * of a long line) as its own syslog line numbered [N-M]; chunk 1 starts an
 * entry and is parsed with the prefix, the others are appended to its
 * message in the scratch buffer. A continuation line starts with a tab
 * (rsyslog writes it "#011") and is joined with "\n\t" as in the stderr
 * log; a piece without one is the rest of a line cut at 900 bytes and is
 * joined as is. */
static void syslog_append(la_feeder *f, la_rec *cur, const char *t, size_t tn, size_t prev_len)
{
    int newline = 1;
    (void)prev_len;
    if (tn >= 4 && memcmp(t, "#011", 4) == 0) {
        t += 4;
        tn -= 4;
    } else if (tn >= 1 && t[0] == '\t') {
        t++;
        tn--;
    } else {
        newline = 0; /* not a line of its own: the rest of a cut line */
    }
    size_t need = f->sc.len + tn + 2;
    if (need > f->sc.cap) {
        size_t cap = f->sc.cap ? f->sc.cap : 1024;
        while (cap < need)
            cap *= 2;
        char *b = realloc(f->sc.buf, cap);
        if (b == NULL)
            return;
        f->sc.buf = b;
        f->sc.cap = cap;
    }
    if (newline) {
        f->sc.buf[f->sc.len++] = '\n';
        f->sc.buf[f->sc.len++] = '\t';
    }
    memcpy(f->sc.buf + f->sc.len, t, tn);
    f->sc.len += tn;
    cur->msg = (la_str){f->sc.buf, f->sc.len};
}

static void syslog_start(la_feeder *f, la_rec *cur)
{
    f->sc.len = 0;
    if (cur->msg.n + 1 > f->sc.cap) {
        char *b = realloc(f->sc.buf, cur->msg.n + 1024);
        if (b == NULL) {
            cur->msg.n = 0;
            return;
        }
        f->sc.buf = b;
        f->sc.cap = cur->msg.n + 1024;
    }
    memcpy(f->sc.buf, cur->msg.p, cur->msg.n);
    f->sc.len = cur->msg.n;
    cur->msg.p = f->sc.buf;
}

static size_t feed_syslog(la_feeder *f, const char *p, size_t n, int at_eof)
{
    size_t pos = 0, entry_start = 0, last_len = 0;
    uint64_t lines = 0, lines_at_start = 0, unparsed = 0;
    int active = 0, pid;
    long seq = 0, chunk, cur_seq = 0;
    la_rec cur, r;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL)
            break;
        size_t le = (size_t)(nl - p), ll = le - pos;
        if (ll > 0 && p[le - 1] == '\r')
            ll--;
        size_t h = la_parse_syslog_header(p + pos, ll, &pid, &seq, &chunk);
        const char *t = p + pos + h;
        size_t tn = ll - h;
        if (h > 0 && chunk > 1 && active && pid == cur.pid && seq == cur_seq) {
            syslog_append(f, &cur, t, tn, last_len);
            last_len = tn;
        } else if (h > 0 && chunk == 1 && la_parse_stderr_line(f->px, t, tn, &r)) {
            if (active)
                emit(f, &cur);
            cur = r;
            cur.pid = pid;
            cur_seq = seq;
            syslog_start(f, &cur);
            last_len = tn;
            active = 1;
            entry_start = pos;
            lines_at_start = lines;
        } else {
            if (active)
                emit(f, &cur);
            active = 0;
            if (ll > 0)
                unparsed++;
        }
        lines++;
        pos = le + 1;
    }
    return end_chunk(f, &cur, active, at_eof, pos, lines, entry_start, lines_at_start, unparsed);
}

size_t la_feed_buffer(la_feeder *f, const char *p, size_t n, int at_eof)
{
    switch (f->format) {
    case LA_FMT_CSV:
        return feed_csv(f, p, n, at_eof);
    case LA_FMT_JSON:
        return feed_json(f, p, n);
    case LA_FMT_SYSLOG:
        return feed_syslog(f, p, n, at_eof);
    default:
        return feed_stderr(f, p, n, at_eof);
    }
}
