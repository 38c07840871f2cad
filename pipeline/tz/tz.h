/*
 * tz.h: IANA time zones from the system's time zone database (TZif files
 * under /usr/share/zoneinfo, or $TZDIR), civil-date arithmetic and billing
 * periods. No libc TZ state: zones are parsed once, cached for the life of
 * the process, and immutable, so every query is thread safe and cheap (a
 * binary search over the transitions, then the TZif footer's POSIX rule for
 * instants past the last transition).
 */
#ifndef CF_TZ_H
#define CF_TZ_H

#include <stdint.h>

#include "records.h"

typedef struct cf_tz cf_tz;

/* Returns the zone for an IANA name ("Europe/Oslo", "UTC"), loading it on
 * first use; NULL if the database has no such zone or the name is unsafe
 * (absolute, "..", empty). Thread safe; the zone lives until exit. */
const cf_tz *cf_tz_get(const char *name);

/* The zone's IANA name. */
const char *cf_tz_name(const cf_tz *tz);

/* UTC offset in seconds in force at instant t_ms. */
int32_t cf_tz_offset(const cf_tz *tz, int64_t t_ms);

/* First instant after t_ms at which the UTC offset changes, or INT64_MAX. */
int64_t cf_tz_next_transition(const cf_tz *tz, int64_t t_ms);

/* Local civil time of an instant. */
typedef struct cf_civil {
        int32_t year, month, day; /* month 1..12, day 1..31 */
        int32_t hour, min, sec;
        int32_t wday;       /* 0 = Monday .. 6 = Sunday (cf_weekday) */
        int64_t days;       /* local date as days since 1970-01-01 */
        int32_t sec_of_day; /* seconds after local midnight */
} cf_civil;

void cf_tz_civil(const cf_tz *tz, int64_t t_ms, cf_civil *out);

/* The instant of local wall time (date as days since epoch, second of day).
 * In a DST gap the wall time does not exist: the result is the instant the
 * gap ends (the clocks' jump). When a wall time occurs twice (the clocks go
 * back), the first occurrence. */
int64_t cf_tz_local_to_utc(const cf_tz *tz, int64_t days, int32_t sec_of_day);

/* Proleptic Gregorian calendar helpers (no time zone). */
int64_t cf_days_from_civil(int32_t y, int32_t m, int32_t d);
void cf_civil_from_days(int64_t days, int32_t *y, int32_t *m, int32_t *d);

/* The billing period of kind (cf_billing_period) containing instant t_ms in
 * zone tz: [*start_ms, *end_ms) and its id, "2026-11" (month), "2026-W48"
 * (ISO week, Monday start) or "2026-11-26" (day), written NUL-terminated to
 * id (at least CF_PERIOD_ID_MAX bytes). */
#define CF_PERIOD_ID_MAX 16
void cf_period_of(const cf_tz *tz, int32_t kind, int64_t t_ms,
                  int64_t *start_ms, int64_t *end_ms, char *id);

#endif
