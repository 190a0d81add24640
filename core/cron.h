/*
 * cron.h - cron expressions: parsing, and the next fire instant in any
 * IANA time zone with Debian cron's daylight-saving rules.
 *
 * The dialect (docs/cron.md has the full story): 5 fields "minute hour
 * day-of-month month day-of-week", or 6 with a leading seconds field;
 * numbers, names (JAN-DEC, SUN-SAT, any case), '*', ranges, steps, lists;
 * day-of-week 0-7 (0 and 7 are Sunday); the macros @yearly @annually
 * @monthly @weekly @daily @midnight @hourly; 'L' (last day of the month),
 * 'LW' and 'nW' (nearest weekday) in day-of-month; 'dL' (last weekday d of
 * the month) and 'd#n' (n-th weekday d) in day-of-week. Days match as in
 * Vixie cron: when day-of-month or day-of-week starts with '*', both must
 * match, otherwise either may.
 *
 * A parsed expression is a plain 40-byte value of bitmasks with no pointers:
 * embed it in a task, copy it with '=', never free it. Every function here
 * is pure and may be called from any thread.
 */
#ifndef PGR_CRON_H
#define PGR_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

/* Fields are private to cron.c; they are in the header only so that the
 * struct can be embedded by value. */
typedef struct cron_expr {
    uint64_t sec;     /* bit s: second s (0-59) */
    uint64_t min;     /* bit m: minute m (0-59) */
    uint64_t dow_nth; /* bit 6*w+n-1: n-th weekday w (n 1-5); bit 6*w+5: last weekday w */
    uint32_t hour;    /* bit h: hour h (0-23) */
    uint32_t dom;     /* bit d: day d (1-31) */
    uint32_t dom_w;   /* bit d: the weekday nearest to day d ("dW") */
    uint16_t month;   /* bit m: month m (1-12) */
    uint8_t dow;      /* bit w: weekday w (0 = Sunday) */
    uint8_t flags;    /* CRON_F_* in cron.c */
} cron_expr;

/* Parse an expression into *out. Returns 0, or -1 with err filled in with
 * a message of three lines: what is wrong and in which field, the
 * expression, and carets under the offending token:
 *     invalid minute field: 61 is out of range 0-59
 *       0 61 * * *
 *         ^^
 * An expression that parses but can never fire (0 0 30 2 *) is accepted:
 * cron_next reports it, and cron_never_fires tells it at once. */
int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen);

/* The first fire instant (UTC seconds) strictly after after_utc, with the
 * expression read as wall-clock time in zone; -1 when the expression never
 * fires again. Daylight-saving changes follow Debian cron(8):
 *  - a fixed-time job (neither its minute nor its hour field contains '*')
 *    whose time falls into a spring-forward gap fires once, at the instant
 *    the gap ends; a wildcard job simply has no fires in the gap;
 *  - in a fall-back overlap a fixed-time job fires once, at the first
 *    occurrence; a wildcard job fires in both.
 * Cannot fail otherwise; does not allocate. */
int64_t cron_next(const cron_expr *expr, const tz_zone *zone, int64_t after_utc);

/* True when the expression's calendar part can never match (e.g. 30 Feb). */
bool cron_never_fires(const cron_expr *expr);

/* True when neither the minute nor the hour field contains '*'. */
bool cron_is_fixed_time(const cron_expr *expr);

/* An English description of the expression for people ("at 02:30 on
 * Monday-Friday", "at minute 0,15,30,45 of every hour", "at 00:00 on the
 * last Friday of the month, in March"), written into buf like snprintf
 * (always NUL-terminated when len > 0, truncated if too small). Returns the
 * length of the whole description. Cannot fail. */
size_t cron_describe(const cron_expr *expr, char *buf, size_t len);

/* ---- the fire heap --------------------------------------------------------
 * A min-heap of (due instant, task id) for the scheduler: the earliest due
 * task at the top, and an index from id to heap slot so that a task's entry
 * can be moved (schedule edited) or removed (paused, deleted) in O(log n)
 * without a second entry ever existing for one task. Ids are small dense
 * integers chosen by the caller (the slot of the task in its table). Ties
 * on the due instant pop in id order, so a burst of tasks due at the same
 * second comes out deterministically. 20 bytes per task. Not thread-safe:
 * one owner (the scheduler thread). */
typedef struct cron_heap_entry {
    int64_t due;
    uint32_t id;
} cron_heap_entry;

typedef struct cron_heap {
    cron_heap_entry *entries; /* entries[0] is the earliest */
    uint32_t *slot;           /* slot[id]: 1 + index in entries, 0 if absent */
    size_t n, cap, ids;       /* ids: length of slot[] */
} cron_heap;

/* Initialise an empty heap (no allocation). */
void cron_heap_init(cron_heap *h);
/* Free the heap's arrays; the heap is empty and reusable afterwards. */
void cron_heap_free(cron_heap *h);
/* Insert id with its due instant, or move it if it is already in the heap.
 * Cannot fail (aborts on out-of-memory like every core allocation). */
void cron_heap_set(cron_heap *h, uint32_t id, int64_t due);
/* Remove id. Returns true if it was in the heap. */
bool cron_heap_remove(cron_heap *h, uint32_t id);
/* The earliest entry without removing it; false when the heap is empty. */
bool cron_heap_peek(const cron_heap *h, cron_heap_entry *top);
/* Remove and return the earliest entry; false when the heap is empty. */
bool cron_heap_pop(cron_heap *h, cron_heap_entry *top);
/* Whether id is in the heap, and its due instant then. */
bool cron_heap_get(const cron_heap *h, uint32_t id, int64_t *due);

/* "pgreviewer cron SUB-COMMAND ...": argv[0] is the sub-command ("next" or
 * "describe").
 * Prints to stdout/stderr; returns the exit code (0 ok, 1 bad expression,
 * zone or never-firing expression, 2 usage). Main thread only (it uses
 * stdio). */
int cmd_cron(int argc, char **argv);

#endif
