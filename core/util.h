/*
 * util.h - small helpers every core file uses: allocation that aborts on
 * out-of-memory, string building, durations, clocks, "did you mean".
 *
 * Out-of-memory in the core is not recoverable in any useful way for a
 * daemon like ours, so the x* allocators print a message and abort (DESIGN:
 * "Out-of-memory in the core aborts with a message"). The SDK never does
 * this to a plugin's host: plugins allocate with their own malloc.
 */
#ifndef PGR_UTIL_H
#define PGR_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation: never return NULL; abort with a message instead. The caller
 * frees the result with free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);           /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable string. Initialise with {0}; the caller frees `buf` with
 * free() (or keeps it: sb_steal). `buf` is always NUL-terminated once
 * anything was appended. */
typedef struct strbuf {
    char *buf;
    size_t len, cap;
} strbuf;
void sb_append(strbuf *sb, const char *s);
void sb_appendn(strbuf *sb, const char *s, size_t n);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
char *sb_steal(strbuf *sb); /* returns buf (never NULL: "" when empty), resets sb */
void sb_free(strbuf *sb);

/* Copy `fmt` into err[0..errlen) like snprintf; NULL or 0-length err is
 * allowed and ignored. Returns -1 so a caller can `return set_err(...)`. */
int set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parse a duration such as "30s", "5m", "2h", "1d", "250ms", "1h30m", or a
 * bare integer meaning seconds. Returns 0 and stores milliseconds in *ms,
 * or -1 on a malformed text. */
int parse_duration_ms(const char *text, int64_t *ms);
/* Format milliseconds the way parse_duration_ms reads them ("1h30m").
 * Writes into buf (at least 32 bytes); returns buf. */
char *format_duration_ms(int64_t ms, char *buf, size_t len);

/* Clocks, in milliseconds / microseconds. Monotonic for intervals, the
 * wall clock (realtime) only for calendar matters. */
int64_t mono_ms(void);
int64_t mono_us(void);
int64_t wall_ms(void);

/* The candidate closest to `word` by edit distance, or NULL when none is
 * close enough to be a plausible typo (distance > max(2, len/3)).
 * `candidates` is NULL-terminated. Returns one of the candidates. */
const char *closest_word(const char *word, const char *const *candidates);

/* Read a whole file into a NUL-terminated buffer the caller frees. Returns
 * NULL and fills err on failure; *len (if not NULL) gets the byte count. */
char *read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Read a secret from a file: the first line, without the trailing newline.
 * Returns a buffer the caller frees (ideally after explicit_bzero), or NULL
 * with err filled (the message names the file, never the content). */
char *read_secret_file(const char *path, char *err, size_t errlen);

bool str_has_suffix(const char *s, const char *suffix);

/* jansson flag for every JSON document we write out (frames, results,
 * output): 15 significant digits, so that 1.1 prints as 1.1 and not as
 * jansson's default 17-digit 1.1000000000000001. Use where <jansson.h> is
 * included. */
#define PGR_JSON_REAL JSON_REAL_PRECISION(15)

#endif
