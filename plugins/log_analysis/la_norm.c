/*
 * la_norm.c - normalization of statements and error messages.
 *
 * Statements are normalized with pgBadger 12's rules (normalize_query) so
 * that our distinct-statement count can be compared with its count: a
 * semicolon is appended, comments removed, everything but double-quoted
 * identifiers lower-cased, string literals to ?, whitespace folded, a
 * leading "begin;" dropped, "= null" to "= ?", numbers (decimals become
 * ?.?, as in pgBadger) and $n parameters to ?, IN lists to "in (...)".
 * The work is three linear passes over the statement into reused buffers:
 * no allocation once the buffers are big enough.
 *
 * Error messages are reduced to their class with pgBadger's normalize_error
 * rules that matter for PostgreSQL's own messages.
 */
#include "la_engine.h"

#include <stdlib.h>
#include <string.h>

uint64_t la_hash(const char *p, size_t n)
{
    /* FNV-1a over 8-byte words, then a final avalanche (splitmix64). */
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ (unsigned char)*p++) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int grow(la_scratch *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 1024;
    while (cap < need)
        cap *= 2;
    char *b = realloc(s->buf, cap);
    if (b == NULL)
        return -1;
    s->buf = b;
    s->cap = cap;
    return 0;
}

static inline int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Pass 1: drop block comments, lower-case outside "identifiers", append
 * ';' when the statement does not end with one. */
static size_t pass_case(const char *q, size_t n, char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (c == '/' && i + 1 < n && q[i + 1] == '*') {
            const char *e = memmem(q + i + 2, n - i - 2, "*/", 2);
            if (e != NULL) {
                i = (size_t)(e - q) + 1;
                continue;
            }
        } else if (c == '"') {
            const char *e = memchr(q + i + 1, '"', n - i - 1);
            if (e != NULL && e > q + i + 1) {
                size_t len = (size_t)(e - q) - i + 1;
                memcpy(o + k, q + i, len);
                k += len;
                i += len - 1;
                continue;
            }
        }
        o[k++] = lower(c);
    }
    size_t t = k;
    while (t > 0 && is_space(o[t - 1]))
        t--;
    if (t == 0 || o[t - 1] != ';')
        o[k++] = ';';
    return k;
}

/* Pass 2: strings to ?, runs of ? folded, "-- comments\n" dropped,
 * whitespace folded to one space. */
static size_t pass_strings(const char *q, size_t n, char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (c == '\\' && i + 1 < n && q[i + 1] == '\'') {
            i++;
            continue;
        }
        if (c == '\'') {
            size_t j = i + 1;
            while (j < n && q[j] != '\'') {
                if (q[j] == '\\' && j + 1 < n && q[j + 1] == '\'')
                    break;
                j++;
            }
            if (j < n && q[j] == '\'') {
                if (k == 0 || o[k - 1] != '?')
                    o[k++] = '?';
                i = j;
                continue;
            }
        }
        if (c == '?') {
            if (k == 0 || o[k - 1] != '?')
                o[k++] = '?';
            continue;
        }
        if (c == '-' && i + 2 < n && q[i + 1] == '-' && q[i + 2] != '\n') {
            const char *nl = memchr(q + i + 3, '\n', n - i - 3);
            if (nl != NULL) {
                while (k > 0 && o[k - 1] == ' ')
                    k--;
                i = (size_t)(nl - q) - 1; /* the newline folds below */
                continue;
            }
        }
        if (is_space(c)) {
            if (k == 0 || o[k - 1] != ' ')
                o[k++] = ' ';
            continue;
        }
        o[k++] = c;
    }
    return k;
}

static inline int word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '-';
}

static inline int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* At a ')' just written at o[k-1]: when the matching "in (" holds only
 * placeholders, quotes, zeros, x, commas and spaces, rewrite it to
 * "in (...)". Returns the new length. */
static size_t fold_in_list(char *o, size_t k, size_t in_at, size_t paren_at)
{
    for (size_t j = paren_at + 1; j < k - 1; j++) {
        char c = o[j];
        if (c != '?' && c != ',' && c != ' ' && c != '\'' && c != '0' && c != 'x')
            return k;
    }
    memcpy(o + in_at, "in (...)", 8);
    return in_at + 8;
}

/* Pass 3: leading begin; dropped, "= null", numbers, $n, IN lists. */
static size_t pass_values(const char *q, size_t n, char *o)
{
    size_t i = 0, k = 0;
    size_t in_at = (size_t)-1, paren_at = 0;
    while (i < n && q[i] == ' ')
        i++;
    if (n - i >= 6 && memcmp(q + i, "begin", 5) == 0) {
        size_t j = i + 5;
        while (j < n && q[j] == ' ')
            j++;
        if (j < n && q[j] == ';') {
            size_t e = j + 1;
            while (e < n && q[e] == ' ')
                e++;
            if (e < n)
                i = e; /* not the whole statement: drop it */
        }
    }
    for (; i < n; i++) {
        char c = q[i];
        if (c == '"') {
            const char *e = memchr(q + i + 1, '"', n - i - 1);
            if (e != NULL && e > q + i + 1) {
                size_t len = (size_t)(e - q) - i + 1;
                memcpy(o + k, q + i, len);
                k += len;
                i += len - 1;
                continue;
            }
        }
        if (c == '=') {
            size_t j = i + 1;
            while (j < n && q[j] == ' ')
                j++;
            if (n - j >= 4 && memcmp(q + j, "null", 4) == 0) {
                memcpy(o + k, "= ?", 3);
                k += 3;
                i = j + 3;
                continue;
            }
        }
        if (c == '$' && i + 1 < n && is_digit(q[i + 1])) {
            i++;
            while (i + 1 < n && is_digit(q[i + 1]))
                i++;
            o[k++] = '?';
            continue;
        }
        if ((is_digit(c) || (c == '-' && i + 1 < n && is_digit(q[i + 1]))) && i > 0 &&
            !word_char(q[i - 1])) {
            i++;
            while (i < n && is_digit(q[i]))
                i++;
            i--;
            o[k++] = '?';
            continue;
        }
        o[k++] = c;
        if (c == '(') {
            size_t b = k - 1;
            while (b > 0 && o[b - 1] == ' ')
                b--;
            if (b >= 2 && o[b - 2] == 'i' && o[b - 1] == 'n' &&
                (b == 2 || !(word_char(o[b - 3]) && o[b - 3] != '-' && o[b - 3] != '$'))) {
                in_at = b - 2;
                paren_at = k - 1;
            } else {
                in_at = (size_t)-1;
            }
        } else if (c == ')' && in_at != (size_t)-1) {
            k = fold_in_list(o, k, in_at, paren_at);
            in_at = (size_t)-1;
        }
    }
    /* trim, and the first " ;" loses its space */
    size_t s = 0;
    while (s < k && o[s] == ' ')
        s++;
    while (k > s && o[k - 1] == ' ')
        k--;
    if (s > 0) {
        memmove(o, o + s, k - s);
        k -= s;
    }
    for (size_t j = 0; j + 1 < k; j++) {
        if (o[j] == ' ' && o[j + 1] == ';') {
            memmove(o + j, o + j + 1, k - j - 1);
            k--;
            break;
        }
    }
    return k;
}

size_t la_norm_query(const char *q, size_t n, la_scratch *out)
{
    /* Three regions of one buffer: pass1 -> [0], pass2 -> [1], pass3 -> [0].
     * Pass 3 can write "= ?" for "=null" (shorter) and "in (...)" for "in()"
     * (at most 2 more), so 2n+16 per region is ample. */
    size_t region = 2 * n + 16;
    if (grow(out, 2 * region) < 0) {
        out->len = 0;
        return 0;
    }
    char *a = out->buf, *b = out->buf + region;
    size_t k = pass_case(q, n, a);
    k = pass_strings(a, k, b);
    k = pass_values(b, k, a);
    out->len = k;
    return k;
}

const char *la_query_type(const char *s, size_t n)
{
    static const char *const kw[] = {"delete", "insert", "update", "select", "copy",
                                      "with", "create", "drop", "alter", "truncate",
                                      "begin", "commit", "rollback", "start", "end",
                                      "savepoint", "declare", "close", "fetch", "move"};
    size_t i = 0;
    while (i < n && (is_space(s[i]) || s[i] == '('))
        i++;
    for (size_t w = 0; w < sizeof kw / sizeof kw[0]; w++) {
        size_t l = strlen(kw[w]);
        if (n - i < l || memcmp(s + i, kw[w], l) != 0)
            continue;
        if (w <= 3)
            return kw[w];
        if (w == 4) {
            const char *f = memmem(s, n, "from ", 5);
            if (f != NULL && (memmem(f, n - (size_t)(f - s), "from stdin", 10) != NULL ||
                              memmem(f, n - (size_t)(f - s), "from ?", 6) != NULL))
                return "copy from";
            return "copy to";
        }
        if (w == 5)
            return "cte";
        if (w <= 9)
            return "ddl";
        if (w <= 15)
            return "tcl";
        return "cursor";
    }
    return "others";
}

/* ---- error messages ---- */

/* Replace every "x" (non-empty between open and close) with repl. */
static size_t repl_between(const char *s, size_t n, char *o, char open, char close,
                           const char *repl, int keep_delims)
{
    size_t k = 0, rl = strlen(repl);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == open) {
            const char *e = memchr(s + i + 1, close, n - i - 1);
            if (e != NULL && e > s + i + 1) {
                if (keep_delims)
                    o[k++] = open;
                memcpy(o + k, repl, rl);
                k += rl;
                if (keep_delims)
                    o[k++] = close;
                i = (size_t)(e - s);
                continue;
            }
        }
        o[k++] = s[i];
    }
    return k;
}

/* "(transaction|relation|database|process) N" -> "... ..." everywhere. */
static size_t repl_numbered(const char *s, size_t n, char *o)
{
    static const char *const words[] = {"transaction ", "relation ", "database ", "process "};
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int done = 0;
        for (int w = 0; w < 4 && !done; w++) {
            size_t l = strlen(words[w]);
            if (n - i > l && memcmp(s + i, words[w], l) == 0 && is_digit(s[i + l])) {
                memcpy(o + k, words[w], l);
                k += l;
                memcpy(o + k, "...", 3);
                k += 3;
                i += l;
                while (i < n && is_digit(s[i]))
                    i++;
                done = 1;
            }
        }
        if (!done)
            o[k++] = s[i++];
    }
    return k;
}

/* Cut after the first occurrence of `head` and append tail. */
static size_t cut_after(char *s, size_t n, size_t cap, const char *head, int last, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *h = NULL;
    for (char *p = s; (p = memmem(p, n - (size_t)(p - s), head, hl)) != NULL; p++) {
        h = p;
        if (!last)
            break;
    }
    if (h == NULL)
        return n;
    size_t k = (size_t)(h - s) + hl;
    if (k + tl > cap)
        return n;
    memcpy(s + k, tail, tl);
    return k + tl;
}

size_t la_norm_error(const char *m, size_t n, la_scratch *out)
{
    const char *nl = memchr(m, '\n', n);
    if (nl != NULL)
        n = (size_t)(nl - m);
    size_t region = 3 * n + 64;
    if (grow(out, 2 * region) < 0) {
        out->len = 0;
        return 0;
    }
    char *s = out->buf, *t = out->buf + region;
    size_t cap = region;
    memcpy(s, m, n);
    const char *at = memmem(s, n, " at character ", 14);
    if (at != NULL && is_digit(at[14]))
        n = (size_t)(at - s);
    n = repl_between(s, n, t, '"', '"', "...", 1);
    n = repl_between(t, n, s, '(', ')', "...", 1);
    char *col = memmem(s, n, "column ", 7);
    if (col != NULL) {
        char *dne = NULL;
        for (char *p = col; (p = memmem(p, n - (size_t)(p - s), " does not exist", 15)) != NULL;
             p++)
            dne = p;
        if (dne != NULL && dne > col + 6) {
            size_t k = (size_t)(col - s);
            const char *tx = "column \"...\" does not exist";
            size_t tl = strlen(tx);
            size_t rest = n - (size_t)(dne + 15 - s);
            memmove(s + k + tl, dne + 15, rest);
            memcpy(s + k, tx, tl);
            n = k + tl + rest;
        }
    }
    if (memmem(s, n, "database system was", 19) != NULL)
        n = cut_after(s, n, cap, " at ", 1, " ...");
    char *pid = memmem(s, n, " PID ", 5);
    if (pid != NULL && pid + 5 < s + n && is_digit(pid[5])) {
        char *b = pid;
        if (b - s >= 4 && memcmp(b - 4, " for", 4) == 0)
            b -= 4;
        char *e = pid + 5;
        while (e < s + n && is_digit(*e))
            e++;
        memmove(b, e, (size_t)(s + n - e));
        n -= (size_t)(e - b);
    }
    n = repl_numbered(s, n, t);
    n = repl_between(t, n, s, '[', ']', "...", 0);
    char *af = memmem(s, n, "after ", 6);
    if (af != NULL && af + 6 < s + n && is_digit(af[6])) {
        char *e = af + 6;
        while (e < s + n && is_digit(*e))
            e++;
        if (e + 1 < s + n && *e == '.' && is_digit(e[1])) {
            e++;
            while (e < s + n && is_digit(*e))
                e++;
            size_t rest = (size_t)(s + n - e);
            memmove(af + 9, e, rest);
            memcpy(af + 6, "...", 3);
            n = (size_t)(af + 9 - s) + rest;
        }
    }
    if (memmem(s, n, "invalid input syntax for ", 25) != NULL)
        n = cut_after(s, n, cap, ":", 0, " ...");
    char *pd = memmem(s, n, "permission denied for ", 22);
    if (pd != NULL) {
        char *sp = memchr(pd + 22, ' ', (size_t)(s + n - pd - 22));
        if (sp != NULL && (size_t)(sp - s) + 4 <= cap) {
            memcpy(sp, " ...", 4);
            n = (size_t)(sp - s) + 4;
        }
    }
    out->len = n;
    return n;
}
