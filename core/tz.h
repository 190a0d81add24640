/*
 * tz.h - IANA time zones read from the system tzdata (TZif files under
 * /usr/share/zoneinfo, or $TZDIR), without libc's process-global TZ.
 *
 * Why our own reader: libc converts local time only through the TZ
 * environment variable and one global state, which is neither thread-safe
 * to switch nor cheap when 100,000 tasks live in different zones. A zone
 * here is an immutable object loaded once, cached by name and shared by
 * every task that names it (a task holds one pointer), and it answers in a
 * binary search.
 *
 * A zone is a sequence of *spans*: maximal UTC intervals [start, end) with
 * one UTC offset. Between spans the offset jumps; a jump forward makes a gap
 * in wall-clock time (those local times never happen), a jump backward an
 * overlap (those local times happen twice). Instants past the file's table
 * follow the POSIX TZ rule in the file's footer (TZif v2+); the rule's
 * transitions are precomputed at load up to the year 2100 and computed on
 * the fly beyond. Zones with leap seconds ("right/...") are refused.
 *
 * Thread-safety: tz_load may be called from any thread (the cache is under
 * a mutex); a loaded zone is immutable and may be read from any thread
 * without locking.
 */
#ifndef PGR_TZ_H
#define PGR_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct tz_zone tz_zone;

/* A span: [start, end) in UTC seconds with one offset. start is INT64_MIN
 * for the first span, end INT64_MAX for the last. prev_offset is the
 * offset of the span before (== offset for the first span). */
typedef struct tz_span {
    int64_t start, end;
    int32_t offset, prev_offset; /* seconds east of UTC */
} tz_span;

/* Load a zone by IANA name ("Europe/Berlin"), or return the already loaded
 * one: the same name always yields the same pointer. "UTC" always works,
 * even without tzdata. Returns a zone owned by the cache (never free it;
 * it lives until tz_unload_all), or NULL with err filled in: the message
 * names the zone and says what would be valid. */
const tz_zone *tz_load(const char *name, char *err, size_t errlen);

/* The zone's name as given to tz_load. Owned by the zone. */
const char *tz_name(const tz_zone *zone);

/* The UTC offset in seconds east in effect at the UTC instant. Cannot fail. */
int tz_offset_at(const tz_zone *zone, int64_t utc_sec);

/* Fill *span with the span containing the UTC instant. Cannot fail. */
void tz_span_at(const tz_zone *zone, int64_t utc_sec, tz_span *span);

/* Convert a wall-clock time (seconds since 1970-01-01T00:00 counted as if
 * local time were UTC) to UTC instants. Returns how many instants have that
 * local time and stores them ascending in out[]:
 *   1  the normal case, out[0];
 *   2  an overlap (fall back): out[0] the first, out[1] the second occurrence;
 *   0  a gap (spring forward): the local time never happens; out[0] is the
 *      instant the gap ends (the transition), out[1] is unset.
 * Cannot fail. */
int tz_local_to_utc(const tz_zone *zone, int64_t local_sec, int64_t out[2]);

/* Drop every cached zone. Only for tests and leak checkers: no zone pointer
 * handed out before may be used afterwards, and no other thread may be
 * using the cache. */
void tz_unload_all(void);

/* Calendar helpers (proleptic Gregorian, any year): days since 1970-01-01
 * for a civil date, the reverse, and the weekday (0 = Sunday) of a day. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int tz_weekday(int64_t days);
int tz_days_in_month(int64_t y, int m);

#endif
