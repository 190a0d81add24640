/*
 * queue_redis.c - the Redis backend of the queue (hiredis, synchronous).
 *
 * Keys, all under one hash tag so a Redis Cluster keeps them in one slot:
 *   {P}:q:0 .. {P}:q:9  lists, one per priority: LPUSH to enqueue, RPOP to
 *                       fetch, RPUSH to put an item back at the front
 *   {P}:delayed         zset: item -> due time (ms, wall clock)
 *   {P}:leased          zset: "token|item" -> lease expiry (ms, server clock)
 *   {P}:notify          zset of at most one member ("there may be work"):
 *                       BZPOPMIN'ed by idle fetchers, ZADD'ed by producers
 *   {P}:seq             counter for lease tokens
 *   {P}:dead            hash: execution id -> "died_ms|errlen|error" item
 * An item is the text "P|A|R|ID|payload": priority digit, attempt, ready
 * time (µs), execution id, payload (possibly empty). docs/queue.md explains
 * the protocol.
 *
 * Speed: every operation is one round trip. Commands are written as RESP
 * into one reused buffer and handed to hiredis in one piece; bulk enqueue
 * groups items by priority into variadic LPUSHes; fetch, heartbeat, nack,
 * dead, release are Lua scripts (EVALSHA, with EVAL as the fallback on
 * NOSCRIPT) that take every key in KEYS so Redis Cluster accepts them. An
 * idle fetch pipelines "BZPOPMIN notify" with the fetch script, so a wake-up
 * costs no extra round trip.
 *
 * Connection loss: the handle drops the context, and reconnects on the next
 * call (at once the first time, then with capped, jittered back-off),
 * re-authenticating, re-selecting the db and reloading the scripts.
 * Idempotent operations (fetch, heartbeat, ack, nack, dead, release,
 * maintenance) are retried once over a fresh connection; enqueue is not (a
 * retry could enqueue twice) and returns -1.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "util.h"

enum { K_DELAYED = QUEUE_PRIORITIES, K_LEASED, K_NOTIFY, K_SEQ, K_DEAD, NKEYS };

enum {
    S_FETCH, S_HEARTBEAT, S_NACK, S_DEAD, S_RELEASE, S_PROMOTE, S_RECLAIM,
    S_DEAD_RETRY, S_DEAD_PURGE, NSCRIPTS
};

#define MOVE_LIMIT "1000" /* items promoted/reclaimed by one script run */
#define FETCH_MAX 1000    /* leases per fetch (keeps Lua's unpack small) */
#define CHUNK 1000        /* arguments per variadic command */
#define CMD_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MAX_MS 5000

/* Every script starts with this: key names, the server clock, helpers. */
#define LUA_PRELUDE \
    "local DELAYED, LEASED, NOTIFY, SEQ, DEAD = KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15]\n" \
    "local function fmt(n) return string.format('%.0f', n) end\n" \
    "local function clock()\n" \
    "  local t = redis.call('TIME')\n" \
    "  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" \
    "  return math.floor(us / 1000), us\n" \
    "end\n" \
    "local function wake() redis.call('ZADD', NOTIFY, 0, '1') end\n" \
    "local function unlease(m) return string.sub(m, string.find(m, '|', 1, true) + 1) end\n" \
    "local function bump(item, ready_us)\n" \
    "  local p, a, rest = string.match(item, '^(%d)|(%d+)|%d+|(.*)$')\n" \
    "  return p .. '|' .. fmt(tonumber(a) + 1) .. '|' .. fmt(ready_us) .. '|' .. rest, tonumber(p)\n" \
    "end\n" \
    "local function promote(now, limit)\n" \
    "  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', fmt(now), 'LIMIT', 0, limit)\n" \
    "  for i = 1, #due do redis.call('LPUSH', KEYS[tonumber(string.sub(due[i], 1, 1)) + 1], due[i]) end\n" \
    "  if #due > 0 then redis.call('ZREMRANGEBYRANK', DELAYED, 0, #due - 1) end\n" \
    "  return #due\n" \
    "end\n" \
    "local function reclaim(now, limit)\n" \
    "  local exp = redis.call('ZRANGEBYSCORE', LEASED, '-inf', fmt(now), 'LIMIT', 0, limit)\n" \
    "  for i = #exp, 1, -1 do\n" \
    "    local item = unlease(exp[i])\n" \
    "    redis.call('RPUSH', KEYS[tonumber(string.sub(item, 1, 1)) + 1], item)\n" \
    "  end\n" \
    "  if #exp > 0 then redis.call('ZREMRANGEBYRANK', LEASED, 0, #exp - 1) end\n" \
    "  return #exp\n" \
    "end\n"

/* ARGV: max, lease_ms. Returns {now_ms, next_event_ms or -1, members...}.
 * Levels above `last` were emptied by this run, so only `last` and below
 * can still hold work. */
static const char lua_fetch[] = LUA_PRELUDE
    "local now = clock()\n"
    "promote(now, " MOVE_LIMIT ")\n"
    "reclaim(now, " MOVE_LIMIT ")\n"
    "local max = tonumber(ARGV[1])\n"
    "local exp = fmt(now + tonumber(ARGV[2]))\n"
    "local out, z, got, last = {now, -1}, {}, 0, 10\n"
    "for p = 10, 1, -1 do\n"
    "  if got >= max then break end\n"
    "  last = p\n"
    "  local items = redis.call('RPOP', KEYS[p], max - got)\n"
    "  if items then\n"
    "    local base = redis.call('INCRBY', SEQ, #items) - #items\n"
    "    for i = 1, #items do\n"
    "      local m = fmt(base + i) .. '|' .. items[i]\n"
    "      out[#out + 1] = m\n"
    "      z[#z + 1] = exp\n"
    "      z[#z + 1] = m\n"
    "    end\n"
    "    got = got + #items\n"
    "  end\n"
    "end\n"
    "if #z > 0 then redis.call('ZADD', LEASED, unpack(z)) end\n"
    "local more = false\n"
    "if got >= max then\n"
    "  for p = last, 1, -1 do if redis.call('LLEN', KEYS[p]) > 0 then more = true; break end end\n"
    "end\n"
    "if more then wake() else redis.call('DEL', NOTIFY) end\n"
    "if got == 0 then\n"
    "  local d = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')\n"
    "  local l = redis.call('ZRANGE', LEASED, 0, 0, 'WITHSCORES')\n"
    "  local nx = -1\n"
    "  if d[2] then nx = tonumber(d[2]) end\n"
    "  if l[2] and (nx < 0 or tonumber(l[2]) < nx) then nx = tonumber(l[2]) end\n"
    "  out[2] = nx\n"
    "end\n"
    "return out\n";

/* ARGV: lease_ms, members... Returns {1|0 per member}. */
static const char lua_heartbeat[] = LUA_PRELUDE
    "local now = clock()\n"
    "local exp = fmt(now + tonumber(ARGV[1]))\n"
    "local r = {}\n"
    "for i = 2, #ARGV do\n"
    "  if redis.call('ZSCORE', LEASED, ARGV[i]) then\n"
    "    redis.call('ZADD', LEASED, exp, ARGV[i]); r[i - 1] = 1\n"
    "  else r[i - 1] = 0 end\n"
    "end\n"
    "return r\n";

/* ARGV: (member, delay_ms)... Returns how many were held. */
static const char lua_nack[] = LUA_PRELUDE
    "local now = clock()\n"
    "local n = 0\n"
    "for i = 1, #ARGV, 2 do\n"
    "  if redis.call('ZREM', LEASED, ARGV[i]) == 1 then\n"
    "    local due = now + tonumber(ARGV[i + 1])\n"
    "    redis.call('ZADD', DELAYED, fmt(due), (bump(unlease(ARGV[i]), due * 1000)))\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if n > 0 then wake() end\n"
    "return n\n";

/* ARGV: (member, id, error)... Returns how many were held. */
static const char lua_dead[] = LUA_PRELUDE
    "local now = clock()\n"
    "local n = 0\n"
    "for i = 1, #ARGV, 3 do\n"
    "  if redis.call('ZREM', LEASED, ARGV[i]) == 1 then\n"
    "    local e = ARGV[i + 2]\n"
    "    redis.call('HSET', DEAD, ARGV[i + 1], fmt(now) .. '|' .. #e .. '|' .. e .. unlease(ARGV[i]))\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/* ARGV: members... Puts the held ones back at the front, first one first. */
static const char lua_release[] = LUA_PRELUDE
    "local n = 0\n"
    "for i = #ARGV, 1, -1 do\n"
    "  if redis.call('ZREM', LEASED, ARGV[i]) == 1 then\n"
    "    local item = unlease(ARGV[i])\n"
    "    redis.call('RPUSH', KEYS[tonumber(string.sub(item, 1, 1)) + 1], item)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if n > 0 then wake() end\n"
    "return n\n";

static const char lua_promote[] = LUA_PRELUDE
    "local n = promote(clock(), tonumber(ARGV[1]))\n"
    "if n > 0 then wake() end\n"
    "return n\n";

static const char lua_reclaim[] = LUA_PRELUDE
    "local n = reclaim(clock(), tonumber(ARGV[1]))\n"
    "if n > 0 then wake() end\n"
    "return n\n";

/* ARGV: id, or "" for all. */
static const char lua_dead_retry[] = LUA_PRELUDE
    "local _, now_us = clock()\n"
    "local function redrive(v)\n"
    "  local l, rest = string.match(v, '^%d+|(%d+)|(.*)$')\n"
    "  local item, p = bump(string.sub(rest, tonumber(l) + 1), now_us)\n"
    "  redis.call('LPUSH', KEYS[p + 1], item)\n"
    "end\n"
    "local n = 0\n"
    "if ARGV[1] ~= '' then\n"
    "  local v = redis.call('HGET', DEAD, ARGV[1])\n"
    "  if v then redrive(v); redis.call('HDEL', DEAD, ARGV[1]); n = 1 end\n"
    "else\n"
    "  local all = redis.call('HGETALL', DEAD)\n"
    "  for i = 2, #all, 2 do redrive(all[i]); n = n + 1 end\n"
    "  redis.call('DEL', DEAD)\n"
    "end\n"
    "if n > 0 then wake() end\n"
    "return n\n";

static const char lua_dead_purge[] = LUA_PRELUDE
    "local n = redis.call('HLEN', DEAD)\n"
    "redis.call('DEL', DEAD)\n"
    "return n\n";

static const char *const scripts[NSCRIPTS] = {
    lua_fetch, lua_heartbeat, lua_nack, lua_dead, lua_release, lua_promote, lua_reclaim,
    lua_dead_retry, lua_dead_purge,
};

typedef struct rq {
    queue base;
    queue_url url;
    char shown[256];         /* the URL for messages, password masked */
    redisContext *ctx;       /* NULL while disconnected */
    char *keys[NKEYS];
    strbuf keys_resp;        /* "$2\r\n15\r\n" + every key, RESP-encoded */
    char sha[NSCRIPTS][41];
    int64_t next_try_ms;     /* mono: no reconnect before this */
    int64_t backoff_ms;
    char last_err[256];
    int64_t sock_timeout_ms; /* the read timeout set on ctx */
    uint64_t rng;
    strbuf out;              /* RESP commands of the current round trip */
    strbuf args;             /* a script's ARGV, RESP-encoded */
    strbuf tmp;
} rq;

/* ---- RESP building ----------------------------------------------------- */

static size_t fmt_u64(char *b, uint64_t v)
{
    char t[24];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        b[i] = t[n - 1 - i];
    return n;
}

static size_t fmt_i64(char *b, int64_t v)
{
    if (v < 0) {
        b[0] = '-';
        return 1 + fmt_u64(b + 1, (uint64_t)0 - (uint64_t)v);
    }
    return fmt_u64(b, (uint64_t)v);
}

static void resp_hdr(strbuf *sb, size_t nargs)
{
    char b[32];
    b[0] = '*';
    size_t n = 1 + fmt_u64(b + 1, nargs);
    b[n++] = '\r';
    b[n++] = '\n';
    sb_appendn(sb, b, n);
}

static void resp_arg(strbuf *sb, const char *p, size_t len)
{
    char b[32];
    b[0] = '$';
    size_t n = 1 + fmt_u64(b + 1, len);
    b[n++] = '\r';
    b[n++] = '\n';
    sb_appendn(sb, b, n);
    sb_appendn(sb, p, len);
    sb_appendn(sb, "\r\n", 2);
}

static void resp_str(strbuf *sb, const char *s)
{
    resp_arg(sb, s, strlen(s));
}

static void resp_i64(strbuf *sb, int64_t v)
{
    char b[24];
    resp_arg(sb, b, fmt_i64(b, v));
}

static void resp_key(rq *r, strbuf *sb, int k)
{
    resp_str(sb, r->keys[k]);
}

/* "P|A|R|ID|payload" into r->tmp (reset first). */
static void item_text(rq *r, const queue_item *it, int64_t ready_us)
{
    char b[96];
    size_t n = 0;
    b[n++] = (char)('0' + it->priority);
    b[n++] = '|';
    n += fmt_i64(b + n, it->attempt > 0 ? it->attempt : 1);
    b[n++] = '|';
    n += fmt_i64(b + n, ready_us);
    b[n++] = '|';
    n += fmt_i64(b + n, it->id);
    b[n++] = '|';
    r->tmp.len = 0;
    sb_appendn(&r->tmp, b, n);
    if (it->payload)
        sb_append(&r->tmp, it->payload);
}

/* ---- connection -------------------------------------------------------- */

static void conn_lost(rq *r, const char *why)
{
    snprintf(r->last_err, sizeof r->last_err, "%s", why && *why ? why : "connection lost");
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
    if (r->backoff_ms == 0)
        r->next_try_ms = 0; /* first reconnect at once */
}

/* Raise the socket's read timeout to at least ms (a blocking fetch needs
 * more than its block time); never lowered, to save the system calls. */
static void set_sock_timeout(rq *r, int64_t ms)
{
    if (!r->ctx || r->sock_timeout_ms >= ms)
        return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisSetTimeout(r->ctx, tv);
    r->sock_timeout_ms = ms;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Send r->out (ncmd commands) and read ncmd replies into rep[]. Returns 0,
 * or -1 after the connection was lost (replies freed, err filled). Redis
 * error replies are returned as replies, not as failures. */
static int roundtrip(rq *r, int ncmd, redisReply **rep, char *err, size_t errlen)
{
    if (redisAppendFormattedCommand(r->ctx, r->out.buf, r->out.len) != REDIS_OK) {
        conn_lost(r, r->ctx->errstr);
        return set_err(err, errlen, "queue %s: %s", r->shown, r->last_err);
    }
    for (int i = 0; i < ncmd; i++) {
        void *p = NULL;
        if (redisGetReply(r->ctx, &p) != REDIS_OK) {
            for (int j = 0; j < i; j++)
                freeReplyObject(rep[j]);
            conn_lost(r, r->ctx->errstr);
            return set_err(err, errlen, "queue %s: connection lost: %s", r->shown, r->last_err);
        }
        rep[i] = p;
    }
    return 0;
}

static bool is_error(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR;
}

/* Authenticate, select the db, load the scripts: one round trip. */
static int conn_setup(rq *r, char *err, size_t errlen)
{
    int ncmd = 0;
    r->out.len = 0;
    if (r->url.password) {
        resp_hdr(&r->out, r->url.user ? 3 : 2);
        resp_str(&r->out, "AUTH");
        if (r->url.user)
            resp_str(&r->out, r->url.user);
        resp_str(&r->out, r->url.password);
        ncmd++;
    }
    if (r->url.db) {
        resp_hdr(&r->out, 2);
        resp_str(&r->out, "SELECT");
        resp_i64(&r->out, r->url.db);
        ncmd++;
    }
    for (int s = 0; s < NSCRIPTS; s++) {
        resp_hdr(&r->out, 3);
        resp_str(&r->out, "SCRIPT");
        resp_str(&r->out, "LOAD");
        resp_str(&r->out, scripts[s]);
        ncmd++;
    }
    redisReply *rep[NSCRIPTS + 2];
    int rc = roundtrip(r, ncmd, rep, err, errlen);
    if (r->url.password)
        explicit_bzero(r->out.buf, r->out.len);
    if (rc < 0)
        return -1;
    int i = 0;
    const char *what = NULL;
    char msg[200] = "";
    if (r->url.password && is_error(rep[i])) {
        what = "authentication";
        snprintf(msg, sizeof msg, "%s", rep[i]->str);
    }
    i += r->url.password != NULL;
    if (!what && r->url.db && is_error(rep[i])) {
        what = "SELECT of the database";
        snprintf(msg, sizeof msg, "%s", rep[i]->str);
    }
    i += r->url.db != 0;
    for (int s = 0; !what && s < NSCRIPTS; s++, i++) {
        if (rep[i]->type != REDIS_REPLY_STRING || rep[i]->len != 40) {
            what = "loading the Lua scripts";
            snprintf(msg, sizeof msg, "%s", is_error(rep[i]) ? rep[i]->str : "bad reply");
            break;
        }
        memcpy(r->sha[s], rep[i]->str, 40);
        r->sha[s][40] = '\0';
    }
    for (int j = 0; j < ncmd; j++)
        freeReplyObject(rep[j]);
    if (what) {
        snprintf(r->last_err, sizeof r->last_err, "%s failed: %s", what, msg);
        redisFree(r->ctx);
        r->ctx = NULL;
        return set_err(err, errlen, "queue %s: %s", r->shown, r->last_err);
    }
    return 0;
}

static int conn_open(rq *r, char *err, size_t errlen)
{
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = r->url.kind == QUEUE_REDIS_UNIX
                          ? redisConnectUnixWithTimeout(r->url.path, tv)
                          : redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!c || c->err) {
        snprintf(r->last_err, sizeof r->last_err, "cannot connect: %s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return set_err(err, errlen, "queue %s: %s", r->shown, r->last_err);
    }
    r->ctx = c;
    r->sock_timeout_ms = 0;
    set_sock_timeout(r, CMD_TIMEOUT_MS);
    return conn_setup(r, err, errlen);
}

/* Make sure there is a connection, waiting at most budget_ms for the
 * back-off to allow the next attempt. Returns 0 or -1. */
static int ensure_conn(rq *r, int64_t budget_ms, char *err, size_t errlen)
{
    if (r->ctx)
        return 0;
    int64_t wait = r->next_try_ms - mono_ms();
    if (wait > 0 && wait > budget_ms) {
        if (budget_ms > 0)
            sleep_ms(budget_ms); /* a waiting caller waits, never spins */
        return set_err(err, errlen, "queue %s: unreachable (%s); next reconnect in %lld ms",
                       r->shown, r->last_err, (long long)wait);
    }
    if (wait > 0)
        sleep_ms(wait);
    if (conn_open(r, err, errlen) == 0) {
        r->backoff_ms = 0;
        return 0;
    }
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 50;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    cfg_retry equal = {0, r->backoff_ms, 1.0, r->backoff_ms, JITTER_EQUAL};
    r->next_try_ms = mono_ms() + queue_backoff_ms(&equal, 1, &r->rng);
    return -1;
}

/* ---- scripts ----------------------------------------------------------- */

/* Append EVALSHA (or EVAL with the body when `body`) of script s with the
 * nargs arguments in r->args to r->out. */
static void append_script(rq *r, int s, size_t nargs, bool body)
{
    resp_hdr(&r->out, 2 + 1 + NKEYS + nargs);
    resp_str(&r->out, body ? "EVAL" : "EVALSHA");
    if (body)
        resp_str(&r->out, scripts[s]);
    else
        resp_arg(&r->out, r->sha[s], 40);
    sb_appendn(&r->out, r->keys_resp.buf, r->keys_resp.len);
    if (r->args.len)
        sb_appendn(&r->out, r->args.buf, r->args.len);
}

static bool is_noscript(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* Run script s with r->args (nargs of them): one round trip, EVAL after a
 * NOSCRIPT, one retry over a fresh connection when the connection was lost.
 * Returns the reply (caller frees) or NULL with err filled; a Redis error
 * reply is turned into NULL with its text. */
static redisReply *run_script(rq *r, int s, size_t nargs, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(r, 0, err, errlen) < 0)
            return NULL;
        redisReply *rep;
        r->out.len = 0;
        append_script(r, s, nargs, false);
        if (roundtrip(r, 1, &rep, err, errlen) < 0)
            continue;
        if (is_noscript(rep)) {
            freeReplyObject(rep);
            r->out.len = 0;
            append_script(r, s, nargs, true);
            if (roundtrip(r, 1, &rep, err, errlen) < 0)
                continue;
        }
        if (is_error(rep)) {
            set_err(err, errlen, "queue %s: %s", r->shown, rep->str);
            freeReplyObject(rep);
            return NULL;
        }
        return rep;
    }
    return NULL;
}

/* Run a script that returns an integer. Returns it, or -1. */
static int run_script_int(rq *r, int s, size_t nargs, char *err, size_t errlen)
{
    redisReply *rep = run_script(r, s, nargs, err, errlen);
    if (!rep)
        return -1;
    int n = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
    if (n < 0)
        set_err(err, errlen, "queue %s: unexpected reply from a script", r->shown);
    freeReplyObject(rep);
    return n;
}

/* ---- leases ------------------------------------------------------------ */

static bool next_field(char **p, char **field)
{
    char *bar = strchr(*p, '|');
    if (!bar)
        return false;
    *bar = '\0';
    *field = *p;
    *p = bar + 1;
    return true;
}

/* Parse the leased member "T|P|A|R|ID|payload" (len bytes) into l. The
 * lease keeps a copy of the member text in l->buf (ack and the scripts need
 * it verbatim); the payload points into that copy. Returns 0 or -1. */
static int parse_member(const char *s, size_t len, queue_lease *l)
{
    memset(l, 0, sizeof *l);
    char *scratch = xmalloc(len + 1);
    memcpy(scratch, s, len);
    scratch[len] = '\0';
    char *p = scratch, *f[5];
    for (int i = 0; i < 5; i++) {
        if (!next_field(&p, &f[i])) {
            free(scratch);
            return -1;
        }
    }
    l->token = strtoull(f[0], NULL, 10);
    l->priority = atoi(f[1]);
    l->attempt = atoi(f[2]);
    l->ready_us = strtoll(f[3], NULL, 10);
    l->id = strtoll(f[4], NULL, 10);
    size_t off = (size_t)(p - scratch);
    memcpy(scratch, s, len); /* restore the member text */
    l->buf = scratch;
    l->buf_len = len;
    l->payload = off < len ? scratch + off : NULL;
    return 0;
}

/* The lease's member text as a script argument. */
static void arg_member(rq *r, const queue_lease *l)
{
    resp_arg(&r->args, l->buf ? l->buf : "", l->buf ? l->buf_len : 0);
}

/* ---- operations -------------------------------------------------------- */

/* "There may be work": a zset of one member, so any number of enqueues
 * leaves one token, and one BZPOPMIN takes it. */
static void append_wake(rq *r, int *ncmd)
{
    resp_hdr(&r->out, 4);
    resp_str(&r->out, "ZADD");
    resp_key(r, &r->out, K_NOTIFY);
    resp_str(&r->out, "0");
    resp_str(&r->out, "1");
    *ncmd += 1;
}

/* Append LPUSH (ready) or ZADD (delayed) commands for items[] of level p
 * (every level when p < 0, for ZADD). */
static void append_push(rq *r, const queue_item *items, size_t n, int p, int64_t due_ms,
                        int64_t now_us, int *ncmd)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += p < 0 || items[i].priority == p;
    size_t per = due_ms ? 2 : 1;
    for (size_t i = 0; count > 0;) {
        size_t chunk = count < CHUNK ? count : CHUNK;
        resp_hdr(&r->out, 2 + chunk * per);
        resp_str(&r->out, due_ms ? "ZADD" : "LPUSH");
        resp_key(r, &r->out, due_ms ? K_DELAYED : p);
        for (size_t done = 0; done < chunk; i++) {
            if (p >= 0 && items[i].priority != p)
                continue;
            item_text(r, &items[i], due_ms ? due_ms * 1000 : now_us);
            if (due_ms)
                resp_i64(&r->out, due_ms);
            resp_arg(&r->out, r->tmp.buf, r->tmp.len);
            done++;
        }
        count -= chunk;
        (*ncmd)++;
    }
}

static int rq_enqueue(queue *q, const queue_item *items, size_t n, int64_t due_ms, char *err,
                      size_t errlen)
{
    rq *r = (rq *)q;
    if (ensure_conn(r, 0, err, errlen) < 0)
        return -1;
    int64_t now_us = queue_wall_us();
    int ncmd = 0;
    r->out.len = 0;
    if (due_ms) {
        append_push(r, items, n, -1, due_ms, now_us, &ncmd);
    } else {
        for (int p = QUEUE_PRIORITIES - 1; p >= 0; p--)
            append_push(r, items, n, p, 0, now_us, &ncmd);
    }
    append_wake(r, &ncmd);
    redisReply *stack[16];
    redisReply **rep = ncmd <= 16 ? stack : xmalloc((size_t)ncmd * sizeof *rep);
    int rc = roundtrip(r, ncmd, rep, err, errlen);
    for (int i = 0; rc == 0 && i < ncmd; i++)
        if (is_error(rep[i]))
            rc = set_err(err, errlen, "queue %s: enqueue: %s", r->shown, rep[i]->str);
    if (r->ctx) /* roundtrip frees the replies when the connection is lost */
        for (int i = 0; i < ncmd; i++)
            freeReplyObject(rep[i]);
    if (rep != stack)
        free(rep);
    return rc;
}

/* Turn a fetch reply into leases. Returns how many, and the server's clock
 * and next event (ms) for the wait. */
static int take_fetch_reply(rq *r, redisReply *rep, queue_lease *out, int64_t *now,
                            int64_t *next, char *err, size_t errlen)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return set_err(err, errlen, "queue %s: unexpected reply to fetch", r->shown);
    *now = rep->element[0]->integer;
    *next = rep->element[1]->integer;
    int got = 0;
    for (size_t i = 2; i < rep->elements; i++) {
        redisReply *m = rep->element[i];
        if (m->type == REDIS_REPLY_STRING && parse_member(m->str, m->len, &out[got]) == 0)
            got++;
    }
    return got;
}

/* One fetch; when block_ms > 0 it is preceded by "BZPOPMIN notify" in the
 * same write, so the script runs as soon as the BZPOPMIN returns. Returns
 * leases taken or -1; r->ctx == NULL afterwards tells a lost connection. */
static int fetch_once(rq *r, queue_lease *out, int max, int64_t lease_ms, int64_t block_ms,
                      int64_t *now, int64_t *next, char *err, size_t errlen)
{
    r->args.len = 0;
    resp_i64(&r->args, max);
    resp_i64(&r->args, lease_ms);
    if (block_ms <= 0) {
        redisReply *rep = run_script(r, S_FETCH, 2, err, errlen);
        if (!rep)
            return -1;
        int got = take_fetch_reply(r, rep, out, now, next, err, errlen);
        freeReplyObject(rep);
        return got;
    }
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", (double)block_ms / 1000.0);
    r->out.len = 0;
    resp_hdr(&r->out, 3);
    resp_str(&r->out, "BZPOPMIN");
    resp_key(r, &r->out, K_NOTIFY);
    resp_str(&r->out, secs);
    append_script(r, S_FETCH, 2, false);
    set_sock_timeout(r, block_ms + CMD_TIMEOUT_MS);
    redisReply *rep[2];
    if (roundtrip(r, 2, rep, err, errlen) < 0)
        return -1;
    freeReplyObject(rep[0]);
    if (is_noscript(rep[1]) || is_error(rep[1])) {
        freeReplyObject(rep[1]);
        return fetch_once(r, out, max, lease_ms, 0, now, next, err, errlen);
    }
    int got = take_fetch_reply(r, rep[1], out, now, next, err, errlen);
    freeReplyObject(rep[1]);
    return got;
}

/* How long an idle fetch blocks: what is left of its timeout, cut short at
 * the next delayed item's due time or lease expiry (server ms). */
static int64_t wait_for_next(int64_t left, int64_t now, int64_t next)
{
    if (next > 0 && next - now < left)
        return next - now > 0 ? next - now : 1;
    return left;
}

/* Fetch until items come, a failure other than a lost connection, or the
 * deadline (mono ms). `block` is the first wait (0: fetch at once), `now`
 * and `next` what a previous fetch said about the next event. */
static int fetch_wait(rq *r, queue_lease *out, int max, int64_t lease_ms, int64_t deadline,
                      int64_t block, int64_t now, int64_t next, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (ensure_conn(r, left > 0 ? left : 0, err, errlen) < 0) {
            if (mono_ms() >= deadline)
                return -1;
            continue;
        }
        int got = fetch_once(r, out, max, lease_ms, block, &now, &next, err, errlen);
        if (got != 0 && (got > 0 || r->ctx))
            return got; /* items, or a failure other than a lost connection */
        left = deadline - mono_ms();
        if (left <= 0)
            return got;
        block = wait_for_next(left, now, next);
        if (got < 0)
            block = 0; /* reconnected: fetch at once */
    }
}

static int rq_fetch(queue *q, queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                    char *err, size_t errlen)
{
    rq *r = (rq *)q;
    if (max > FETCH_MAX)
        max = FETCH_MAX;
    return fetch_wait(r, out, max, lease_ms, mono_ms() + timeout_ms, 0, 0, -1, err, errlen);
}

/* Append ZREM commands for n leases (chunks of CHUNK); returns how many. */
static int append_zrem(rq *r, const queue_lease *leases, size_t n)
{
    int ncmd = 0;
    for (size_t i = 0; i < n; ncmd++) {
        size_t chunk = n - i < CHUNK ? n - i : CHUNK;
        resp_hdr(&r->out, 2 + chunk);
        resp_str(&r->out, "ZREM");
        resp_key(r, &r->out, K_LEASED);
        for (size_t j = 0; j < chunk; j++, i++)
            resp_arg(&r->out, leases[i].buf ? leases[i].buf : "", leases[i].buf_len);
    }
    return ncmd;
}

/* Sum the ZREM replies rep[0..n); frees them. Returns the sum or -1. */
static int sum_zrem(rq *r, redisReply **rep, int n, char *err, size_t errlen)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (rep[i]->type == REDIS_REPLY_INTEGER && count >= 0)
            count += (int)rep[i]->integer;
        else if (count >= 0)
            count = set_err(err, errlen, "queue %s: ack: %s", r->shown,
                            is_error(rep[i]) ? rep[i]->str : "unexpected reply");
        freeReplyObject(rep[i]);
    }
    return count;
}

/* Ack n leases and run the fetch script in the same write. */
static int ack_then_fetch(rq *r, const queue_lease *acks, size_t n, int *acked, queue_lease *out,
                          int max, int64_t lease_ms, int64_t *now, int64_t *next, char *err,
                          size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(r, 0, err, errlen) < 0)
            return -1;
        r->out.len = 0;
        int nz = append_zrem(r, acks, n);
        r->args.len = 0;
        resp_i64(&r->args, max);
        resp_i64(&r->args, lease_ms);
        append_script(r, S_FETCH, 2, false);
        redisReply **rep = xmalloc((size_t)(nz + 1) * sizeof *rep);
        if (roundtrip(r, nz + 1, rep, err, errlen) < 0) {
            free(rep);
            continue;
        }
        *acked = sum_zrem(r, rep, nz, err, errlen);
        redisReply *f = rep[nz];
        free(rep);
        int got;
        if (is_noscript(f))
            got = fetch_once(r, out, max, lease_ms, 0, now, next, err, errlen);
        else if (is_error(f))
            got = set_err(err, errlen, "queue %s: %s", r->shown, f->str);
        else
            got = take_fetch_reply(r, f, out, now, next, err, errlen);
        freeReplyObject(f);
        return got; /* *acked == -1 (err filled) when the acks failed */
    }
    return -1;
}

static int rq_ack_fetch(queue *q, const queue_lease *acks, size_t n_acks, int *acked,
                        queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                        char *err, size_t errlen)
{
    rq *r = (rq *)q;
    if (max > FETCH_MAX)
        max = FETCH_MAX;
    int64_t deadline = mono_ms() + timeout_ms, now = 0, next = -1;
    int got = ack_then_fetch(r, acks, n_acks, acked, out, max, lease_ms, &now, &next, err, errlen);
    if (got != 0 || timeout_ms <= 0)
        return got;
    return fetch_wait(r, out, max, lease_ms, deadline, wait_for_next(timeout_ms, now, next), now,
                      next, err, errlen);
}

static int rq_heartbeat(queue *q, const queue_lease *leases, size_t n, int64_t lease_ms,
                        bool *held, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    resp_i64(&r->args, lease_ms);
    for (size_t i = 0; i < n; i++)
        arg_member(r, &leases[i]);
    redisReply *rep = run_script(r, S_HEARTBEAT, n + 1, err, errlen);
    if (!rep)
        return -1;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        bool h = rep->type == REDIS_REPLY_ARRAY && i < rep->elements &&
                 rep->element[i]->integer == 1;
        if (held)
            held[i] = h;
        count += h;
    }
    freeReplyObject(rep);
    return count;
}

static int rq_ack(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(r, 0, err, errlen) < 0)
            return -1;
        r->out.len = 0;
        int ncmd = append_zrem(r, leases, n);
        redisReply **rep = xmalloc((size_t)ncmd * sizeof *rep);
        if (roundtrip(r, ncmd, rep, err, errlen) < 0) {
            free(rep);
            continue;
        }
        int count = sum_zrem(r, rep, ncmd, err, errlen);
        free(rep);
        return count;
    }
    return -1;
}

static int rq_nack(queue *q, const queue_lease *leases, size_t n, const int64_t *delay_ms,
                   char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    for (size_t i = 0; i < n; i++) {
        arg_member(r, &leases[i]);
        resp_i64(&r->args, delay_ms && delay_ms[i] > 0 ? delay_ms[i] : 0);
    }
    return run_script_int(r, S_NACK, 2 * n, err, errlen);
}

static int rq_dead(queue *q, const queue_lease *leases, size_t n, const char *const *errors,
                   char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    for (size_t i = 0; i < n; i++) {
        arg_member(r, &leases[i]);
        resp_i64(&r->args, leases[i].id);
        resp_str(&r->args, errors && errors[i] ? errors[i] : "unknown error");
    }
    return run_script_int(r, S_DEAD, 3 * n, err, errlen);
}

static int rq_release(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    for (size_t i = 0; i < n; i++)
        arg_member(r, &leases[i]);
    return run_script_int(r, S_RELEASE, n, err, errlen);
}

static int rq_move(rq *r, int script, char *err, size_t errlen)
{
    int total = 0;
    for (;;) {
        r->args.len = 0;
        resp_str(&r->args, MOVE_LIMIT);
        int n = run_script_int(r, script, 1, err, errlen);
        if (n < 0)
            return -1;
        total += n;
        if (n < atoi(MOVE_LIMIT))
            return total;
    }
}

static int rq_promote_due(queue *q, char *err, size_t errlen)
{
    return rq_move((rq *)q, S_PROMOTE, err, errlen);
}

static int rq_requeue_expired(queue *q, char *err, size_t errlen)
{
    return rq_move((rq *)q, S_RECLAIM, err, errlen);
}

/* "P|A|R|ID|payload": the ready time, or 0 when malformed. */
static int64_t item_ready_us(const char *s)
{
    const char *p = s;
    for (int i = 0; i < 2 && p; i++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    return p ? strtoll(p, NULL, 10) : 0;
}

static void append_simple(rq *r, const char *cmd, int key, const char *a1, const char *a2,
                          const char *a3)
{
    resp_hdr(&r->out, 2 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL));
    resp_str(&r->out, cmd);
    resp_key(r, &r->out, key);
    if (a1)
        resp_str(&r->out, a1);
    if (a2)
        resp_str(&r->out, a2);
    if (a3)
        resp_str(&r->out, a3);
}

static int rq_stats(queue *q, queue_stats *st, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    enum { N = 2 * QUEUE_PRIORITIES + 4 };
    redisReply *rep[N];
    for (int attempt = 0;; attempt++) {
        if (ensure_conn(r, 0, err, errlen) < 0)
            return -1;
        r->out.len = 0;
        for (int p = 0; p < QUEUE_PRIORITIES; p++) {
            append_simple(r, "LLEN", p, NULL, NULL, NULL);
            append_simple(r, "LINDEX", p, "-1", NULL, NULL);
        }
        append_simple(r, "ZCARD", K_DELAYED, NULL, NULL, NULL);
        append_simple(r, "ZCARD", K_LEASED, NULL, NULL, NULL);
        append_simple(r, "HLEN", K_DEAD, NULL, NULL, NULL);
        append_simple(r, "ZRANGE", K_DELAYED, "0", "0", "WITHSCORES");
        if (roundtrip(r, N, rep, err, errlen) == 0)
            break;
        if (attempt)
            return -1;
    }
    int64_t now_us = queue_wall_us();
    for (int p = 0; p < QUEUE_PRIORITIES; p++) {
        st->ready[p] = rep[2 * p]->integer;
        redisReply *oldest = rep[2 * p + 1];
        if (oldest->type == REDIS_REPLY_STRING) {
            int64_t ready = item_ready_us(oldest->str);
            st->lag_ms[p] = ready && now_us > ready ? (now_us - ready) / 1000 : 0;
        }
    }
    st->delayed = rep[N - 4]->integer;
    st->leased = rep[N - 3]->integer;
    st->dead = rep[N - 2]->integer;
    redisReply *first = rep[N - 1];
    if (first->type == REDIS_REPLY_ARRAY && first->elements == 2)
        st->next_due_ms = strtoll(first->element[1]->str, NULL, 10);
    int rc = 0;
    for (int i = 0; i < N; i++) {
        if (is_error(rep[i]) && rc == 0)
            rc = set_err(err, errlen, "queue %s: stats: %s", r->shown, rep[i]->str);
        freeReplyObject(rep[i]);
    }
    return rc;
}

/* "died|errlen|error" + item into e. Returns 0 or -1. */
static int parse_dead(const char *id, const char *v, size_t len, queue_dead_entry *e)
{
    char *end;
    memset(e, 0, sizeof *e);
    e->id = strtoll(id, NULL, 10);
    e->died_ms = strtoll(v, &end, 10);
    if (*end != '|')
        return -1;
    size_t elen = strtoull(end + 1, &end, 10);
    if (*end != '|' || (size_t)(end + 1 - v) + elen > len)
        return -1;
    const char *item = end + 1 + elen;
    if (len - (size_t)(item - v) < 4 || item[1] != '|') /* "P|A|..." at least */
        return -1;
    e->error = xstrndup(end + 1, elen);
    e->priority = item[0] - '0';
    e->attempt = atoi(item + 2);
    const char *p = item;
    for (int i = 0; i < 4 && p; i++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    e->payload = p && *p ? xstrdup(p) : NULL;
    return 0;
}

static int dead_cmp(const void *a, const void *b)
{
    const queue_dead_entry *x = a, *y = b;
    return x->died_ms < y->died_ms ? -1 : x->died_ms > y->died_ms ? 1
         : x->id < y->id ? -1 : x->id > y->id;
}

static int rq_dead_list(queue *q, queue_dead_entry **out, size_t *n, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    redisReply *rep = NULL;
    for (int attempt = 0; !rep; attempt++) {
        if (attempt == 2 || ensure_conn(r, 0, err, errlen) < 0)
            return -1;
        r->out.len = 0;
        append_simple(r, "HGETALL", K_DEAD, NULL, NULL, NULL);
        if (roundtrip(r, 1, &rep, err, errlen) < 0)
            rep = NULL;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        set_err(err, errlen, "queue %s: dead list: %s", r->shown,
                is_error(rep) ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        return -1;
    }
    queue_dead_entry *list = xcalloc(rep->elements / 2 + 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        if (parse_dead(rep->element[i]->str, rep->element[i + 1]->str,
                       rep->element[i + 1]->len, &list[k]) == 0)
            k++;
    freeReplyObject(rep);
    qsort(list, k, sizeof *list, dead_cmp);
    *out = list;
    *n = k;
    return 0;
}

static int rq_dead_retry(queue *q, int64_t id, bool all, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    if (all)
        resp_str(&r->args, "");
    else
        resp_i64(&r->args, id);
    return run_script_int(r, S_DEAD_RETRY, 1, err, errlen);
}

static int rq_dead_purge(queue *q, char *err, size_t errlen)
{
    rq *r = (rq *)q;
    r->args.len = 0;
    return run_script_int(r, S_DEAD_PURGE, 0, err, errlen);
}

static bool rq_connected(const queue *q)
{
    return ((const rq *)q)->ctx != NULL;
}

static void rq_close(queue *q)
{
    rq *r = (rq *)q;
    if (r->ctx)
        redisFree(r->ctx);
    for (int k = 0; k < NKEYS; k++)
        free(r->keys[k]);
    queue_url_free(&r->url);
    sb_free(&r->keys_resp);
    sb_free(&r->out);
    sb_free(&r->args);
    sb_free(&r->tmp);
    free(r);
}

static const queue_ops redis_ops = {
    rq_enqueue, rq_fetch, rq_heartbeat, rq_ack, rq_nack, rq_dead, rq_release,
    rq_promote_due, rq_requeue_expired, rq_stats, rq_dead_list, rq_dead_retry,
    rq_dead_purge, rq_connected, rq_close, rq_ack_fetch,
};

static void make_keys(rq *r, const char *prefix)
{
    static const char *const names[] = {"delayed", "leased", "notify", "seq", "dead"};
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        r->keys[p] = xasprintf("{%s}:q:%d", prefix, p);
    for (int k = K_DELAYED; k < NKEYS; k++)
        r->keys[k] = xasprintf("{%s}:%s", prefix, names[k - K_DELAYED]);
    resp_i64(&r->keys_resp, NKEYS);
    for (int k = 0; k < NKEYS; k++)
        resp_str(&r->keys_resp, r->keys[k]);
}

static void copy_url(queue_url *dst, const queue_url *src)
{
    *dst = *src;
    dst->host = xstrdup(src->host);
    dst->path = xstrdup(src->path);
    dst->user = xstrdup(src->user);
    dst->password = xstrdup(src->password);
}

static void describe_url(rq *r)
{
    if (r->url.kind == QUEUE_REDIS_UNIX)
        snprintf(r->shown, sizeof r->shown, "unix://%s%s%s?db=%d", r->url.user ? r->url.user : "",
                 r->url.user ? "@" : "", r->url.path, r->url.db);
    else
        snprintf(r->shown, sizeof r->shown, "redis://%s%s%s:%d/%d", r->url.user ? r->url.user : "",
                 r->url.user ? "@" : "", r->url.host, r->url.port, r->url.db);
}

/* hiredis writes with write(2): a write to a connection Redis has closed
 * (always so on a unix socket) raises SIGPIPE, whose default action kills
 * the process. A daemon ignores it anyway; we make sure, once, unless the
 * program installed its own handler. */
static void ignore_sigpipe_once(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

queue *queue_redis_open(const queue_url *url, const char *prefix, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ignore_sigpipe_once);
    rq *r = xcalloc(1, sizeof *r);
    r->base.ops = &redis_ops;
    r->base.kind = url->kind;
    copy_url(&r->url, url);
    describe_url(r);
    make_keys(r, prefix);
    r->rng = (uint64_t)queue_wall_us() ^ (uint64_t)(uintptr_t)r;
    if (conn_open(r, err, errlen) < 0) {
        rq_close(&r->base);
        return NULL;
    }
    return &r->base;
}
