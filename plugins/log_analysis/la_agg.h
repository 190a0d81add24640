/*
 * la_agg.h - the aggregate state of an analysis, shared by la_agg.c (which
 * fills it) and la_output.c (which writes it out). Not part of the engine's
 * interface: other files use the opaque la_agg of la_engine.h.
 */
#ifndef LA_AGG_H
#define LA_AGG_H

#include "la_engine.h"

/* A string-keyed open-addressing map of a few numbers per key (count, sum,
 * max, ...). Keys are copied on first insert. */
#define LA_NV 8
typedef struct la_sent {
    uint64_t h;
    char *key; /* NUL-terminated copy; NULL = empty slot */
    size_t klen;
    double v[LA_NV];
} la_sent;

typedef struct la_smap {
    la_sent *e;
    size_t cap, n;
} la_smap;

/* One normalized statement. */
typedef struct la_stmt {
    uint64_t h;
    char *norm; /* NULL = empty slot */
    size_t nlen;
    const char *type;
    int64_t count;
    double total, min, max;
    float *durs; /* every duration (µs; exact to 16 s), for the p95 */
    size_t ndur, cdur;
    char *example; /* the slowest occurrence, raw */
    char *db, *user, *app; /* of the first occurrence */
    int64_t first_ts, max_ts;
    int p95_done;
    double p95;
} la_stmt;

/* Shape cache: the hash of a raw statement with its numbers masked ->
 * the slot of its normalized statement (see la_agg.c). */
typedef struct la_shape {
    uint64_t h; /* 0 = empty */
    size_t slot;
} la_shape;
#define LA_SHAPES 4096

typedef struct la_slow {
    double ms;
    int64_t ts;
    char *query, *db, *user, *app;
} la_slow;

typedef struct la_pidhost {
    int pid;
    char host[56];
} la_pidhost;

#define LA_PIDHOST 4096

struct la_agg {
    int top;
    uint64_t bytes, lines, unparsed, entries;
    int64_t first_ts, last_ts;

    /* statements */
    la_stmt *st;
    size_t st_cap, st_n;
    int64_t q_total;
    double q_ms;
    int64_t bind_n, parse_n;
    double bind_ms, parse_ms;
    la_smap q_type, q_db, q_user, q_app; /* filled from q_dim at the end */
    la_smap q_dim; /* key "type\x01db\x01user\x01app": one probe per statement */
    la_slow *slow;
    int nslow;
    la_shape shapes[LA_SHAPES];
    uint64_t shape_hits;

    /* errors */
    int64_t by_level[LA_LV_COUNT];
    la_smap err_state, err_class, err_class_state;
    int64_t cancel_timeout, cancel_user, cancel_lock;

    /* locks */
    la_smap lock_acq, lock_wait;
    int64_t deadlocks;

    /* checkpoints */
    int64_t ckpt_n, ckpt_freq, restart_n;
    la_smap ckpt_reason;
    double ckpt_buf, ckpt_write, ckpt_sync, ckpt_total, wal_add, wal_rem, wal_rec;

    /* temporary files */
    int64_t tmp_n;
    double tmp_bytes, tmp_max;
    la_smap tmp_stmt;

    /* stderr writes the STATEMENT of an event (a temp file, an error) as a
     * later line of the same process, after its DETAIL/HINT/CONTEXT lines:
     * the event waits here until that line or another event comes */
    int pend_kind; /* 0 none, 1 temp file, 2 error */
    int pend_pid;
    double pend_size;
    char *pend_key; /* error: its class key (owned) */
    size_t pend_klen;
    la_smap err_stmt; /* "LEVEL\x01class\x02normalized statement" -> count */

    /* autovacuum */
    int64_t vac_n, an_n;
    la_smap vac_tab, an_tab;

    /* connections and sessions */
    int64_t conn_n, sess_n;
    double sess_ms;
    la_smap conn_db, conn_user, conn_host, conn_dbuser;
    la_smap sess_db, sess_user, sess_app, sess_host;
    la_pidhost pidhost[LA_PIDHOST];

    /* per hour: v[0] queries, v[1] query ms, v[2] errors, v[3] connections,
     * v[4] checkpoints, v[5] temp files, v[6] lock waits, v[7] autovacuum */
    la_smap hours;
    int64_t hour_last;
    size_t hour_cap;
    la_sent *hour_e;

    la_scratch norm, tmp;
};

/* The entry of key in m, created (numbers zero, key copied) when absent.
 * Never fails (out of memory aborts the process). The pointer is valid
 * until the next insertion into m; m owns it (la_smap_free). */
la_sent *la_smap_get(la_smap *m, const char *key, size_t klen);
/* Free every key and the table; m is left empty and reusable. */
/* Spread q_dim into q_type, q_db, q_user and q_app (once, before output). */
void la_agg_finish(la_agg *a);
void la_smap_free(la_smap *m);

#endif /* LA_AGG_H */
