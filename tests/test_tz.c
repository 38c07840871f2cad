/*
 * test_tz.c: time zones (pipeline/tz/tz.c): offsets and DST nights in
 * Europe/Oslo, local wall time in gaps and overlaps, billing periods
 * (months, ISO weeks across a year end, days), civil-date arithmetic, and a
 * "slim" TZif file whose rules live only in its POSIX TZ footer.
 *
 * Expected instants are worked out by hand from the EU rule (clocks change
 * at 01:00 UTC on the last Sundays of March and October) and written as
 * epoch milliseconds with the UTC date-time next to them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tz.h"

#define H 3600000LL

static const cf_tz *oslo(void)
{
        const cf_tz *z = cf_tz_get("Europe/Oslo");
        assert_non_null(z);
        return z;
}

static void tz_oslo_offsets_winter_and_summer(void **state)
{
        const cf_tz *z = oslo();
        assert_string_equal(cf_tz_name(z), "Europe/Oslo");
        /* 2026-01-15T12:00Z: CET, +1h */
        assert_int_equal(cf_tz_offset(z, 1768478400000LL), 3600);
        /* 2026-07-15T12:00Z: CEST, +2h */
        assert_int_equal(cf_tz_offset(z, 1784116800000LL), 7200);
}

static void tz_spring_night_has_23_hours(void **state)
{
        const cf_tz *z = oslo();
        /* March 2026: the 1st is a Sunday, so the last Sunday is the 29th;
         * clocks go 02:00 CET -> 03:00 CEST at 01:00Z. */
        int64_t t0 = 1774742400000LL; /* 2026-03-29T00:00Z */
        int64_t tr = 1774746000000LL; /* 2026-03-29T01:00Z */
        assert_int_equal(cf_tz_next_transition(z, t0), tr);
        assert_int_equal(cf_tz_offset(z, tr - 1), 3600);
        assert_int_equal(cf_tz_offset(z, tr), 7200);
        /* local day 2026-03-29 = day 20541 since the epoch */
        assert_int_equal(cf_days_from_civil(2026, 3, 29), 20541);
        int64_t d0 = cf_tz_local_to_utc(z, 20541, 0);
        int64_t d1 = cf_tz_local_to_utc(z, 20542, 0);
        assert_int_equal(d0, 1774738800000LL); /* 2026-03-28T23:00Z */
        assert_int_equal(d1, 1774821600000LL); /* 2026-03-29T22:00Z */
        assert_int_equal(d1 - d0, 23 * H);
        cf_civil c;
        cf_tz_civil(z, tr, &c); /* 03:00 local, a Sunday */
        assert_int_equal(c.hour, 3);
        assert_int_equal(c.min, 0);
        assert_int_equal(c.wday, 6);
        assert_int_equal(c.days, 20541);
        assert_int_equal(c.sec_of_day, 3 * 3600);
        cf_tz_civil(z, tr - 1, &c); /* 01:59:59.999 local */
        assert_int_equal(c.hour, 1);
        assert_int_equal(c.min, 59);
        assert_int_equal(c.sec, 59);
}

static void tz_autumn_night_has_25_hours(void **state)
{
        const cf_tz *z = oslo();
        /* October 2026: the 1st is a Thursday, Sundays 4, 11, 18, 25;
         * clocks go 03:00 CEST -> 02:00 CET at 01:00Z on the 25th. */
        int64_t tr = 1792890000000LL; /* 2026-10-25T01:00Z */
        assert_int_equal(cf_tz_next_transition(z, tr - 10 * H), tr);
        assert_int_equal(cf_tz_offset(z, tr - 1), 7200);
        assert_int_equal(cf_tz_offset(z, tr), 3600);
        int64_t day = cf_days_from_civil(2026, 10, 25);
        int64_t d0 = cf_tz_local_to_utc(z, day, 0);
        int64_t d1 = cf_tz_local_to_utc(z, day + 1, 0);
        assert_int_equal(d0, 1792879200000LL); /* 2026-10-24T22:00Z */
        assert_int_equal(d1, 1792969200000LL); /* 2026-10-25T23:00Z */
        assert_int_equal(d1 - d0, 25 * H);
        /* next change after that: last Sunday of March 2027 = 28th */
        assert_int_equal(cf_tz_next_transition(z, tr),
                         (cf_days_from_civil(2027, 3, 28) * 24 + 1) * H);
}

static void tz_local_to_utc_gap_and_overlap(void **state)
{
        const cf_tz *z = oslo();
        /* 2026-03-29 02:30 does not exist: the gap ends at 01:00Z */
        assert_int_equal(cf_tz_local_to_utc(z, 20541, 2 * 3600 + 1800),
                         1774746000000LL);
        /* 01:30 is CET: 00:30Z; 03:30 is CEST: 01:30Z */
        assert_int_equal(cf_tz_local_to_utc(z, 20541, 3600 + 1800),
                         1774746000000LL - 30 * 60000);
        assert_int_equal(cf_tz_local_to_utc(z, 20541, 3 * 3600 + 1800),
                         1774746000000LL + 30 * 60000);
        /* 2026-10-25 02:30 happens twice, 00:30Z (CEST) and 01:30Z (CET):
         * the first one */
        int64_t day = cf_days_from_civil(2026, 10, 25);
        assert_int_equal(cf_tz_local_to_utc(z, day, 2 * 3600 + 1800),
                         1792888200000LL);
        /* 03:00 local only once, CET: 02:00Z */
        assert_int_equal(cf_tz_local_to_utc(z, day, 3 * 3600),
                         1792890000000LL + H);
}

static void tz_period_month_in_oslo(void **state)
{
        const cf_tz *z = oslo();
        int64_t s, e;
        char id[CF_PERIOD_ID_MAX];
        /* 2026-03-15T12:00Z is in March; March starts 00:00 CET
         * (2026-02-28T23:00Z) and ends 00:00 CEST on April 1
         * (2026-03-31T22:00Z): 31 days less the lost hour */
        cf_period_of(z, CF_PERIOD_MONTH, 1773576000000LL, &s, &e, id);
        assert_string_equal(id, "2026-03");
        assert_int_equal(s, 1772319600000LL);
        assert_int_equal(e, 1774994400000LL);
        assert_int_equal(e - s, 31 * 24 * H - H);
        /* 2026-03-31T22:30Z is 00:30 on April 1 in Oslo */
        cf_period_of(z, CF_PERIOD_MONTH, 1774996200000LL, &s, &e, id);
        assert_string_equal(id, "2026-04");
        assert_int_equal(s, 1774994400000LL);
        /* the period's end belongs to the next period */
        cf_period_of(z, CF_PERIOD_MONTH, 1774994400000LL, &s, &e, id);
        assert_string_equal(id, "2026-04");
        cf_period_of(z, CF_PERIOD_MONTH, 1774994400000LL - 1, &s, &e, id);
        assert_string_equal(id, "2026-03");
        /* October 2026: 2026-09-30T22:00Z to 2026-10-31T23:00Z, 31 days
         * and the hour gained */
        cf_period_of(z, CF_PERIOD_MONTH, 1792890000000LL, &s, &e, id);
        assert_string_equal(id, "2026-10");
        assert_int_equal(s, 1790805600000LL);
        assert_int_equal(e, 1793487600000LL);
        assert_int_equal(e - s, 31 * 24 * H + H);
        /* December rolls over to January */
        cf_period_of(z, CF_PERIOD_MONTH, 1799017199000LL, &s, &e, id);
        assert_string_equal(id, "2027-01");
}

static void tz_period_iso_week_across_year_end(void **state)
{
        const cf_tz *z = oslo();
        int64_t s, e;
        char id[CF_PERIOD_ID_MAX];
        /* 2026 starts on a Thursday, so it has 53 ISO weeks; W53 runs
         * Monday 2026-12-28 to Sunday 2027-01-03. 2027-01-03T22:59:59Z is
         * 23:59:59 on that Sunday in Oslo. */
        cf_period_of(z, CF_PERIOD_WEEK, 1799017199000LL, &s, &e, id);
        assert_string_equal(id, "2026-W53");
        assert_int_equal(s, 1798412400000LL); /* 2026-12-27T23:00Z */
        assert_int_equal(e, 1799017200000LL); /* 2027-01-03T23:00Z */
        /* one second later: Monday 2027-01-04 00:00, week 1 of 2027 */
        cf_period_of(z, CF_PERIOD_WEEK, 1799017200000LL, &s, &e, id);
        assert_string_equal(id, "2027-W01");
        assert_int_equal(s, 1799017200000LL);
        assert_int_equal(e, 1799622000000LL); /* 2027-01-10T23:00Z */
        /* Monday 2024-12-30 is in 2025-W01 (its Thursday is 2025-01-02) */
        const cf_tz *utc = cf_tz_get("UTC");
        assert_non_null(utc);
        cf_period_of(utc, CF_PERIOD_WEEK, 1735560000000LL, &s, &e, id);
        assert_string_equal(id, "2025-W01");
        /* Sunday 2021-01-03 is in 2020-W53 */
        cf_period_of(utc, CF_PERIOD_WEEK, 1609675200000LL, &s, &e, id);
        assert_string_equal(id, "2020-W53");
        /* a week with the spring change has 167 hours */
        cf_period_of(z, CF_PERIOD_WEEK, 1774746000000LL, &s, &e, id);
        assert_string_equal(id, "2026-W13");
        assert_int_equal(e - s, 167 * H);
}

static void tz_period_day(void **state)
{
        const cf_tz *z = oslo();
        int64_t s, e;
        char id[CF_PERIOD_ID_MAX];
        cf_period_of(z, CF_PERIOD_DAY, 1774746000000LL, &s, &e, id);
        assert_string_equal(id, "2026-03-29");
        assert_int_equal(s, 1774738800000LL);
        assert_int_equal(e, 1774821600000LL);
        /* 2026-03-28T23:00Z is already the 29th in Oslo */
        cf_period_of(z, CF_PERIOD_DAY, 1774738800000LL, &s, &e, id);
        assert_string_equal(id, "2026-03-29");
        cf_period_of(z, CF_PERIOD_DAY, 1774738800000LL - 1, &s, &e, id);
        assert_string_equal(id, "2026-03-28");
}

static void tz_civil_days_round_trip(void **state)
{
        assert_int_equal(cf_days_from_civil(1970, 1, 1), 0);
        assert_int_equal(cf_days_from_civil(1969, 12, 31), -1);
        assert_int_equal(cf_days_from_civil(2000, 3, 1), 11017);
        assert_int_equal(cf_days_from_civil(1900, 3, 1), -25508);
        assert_int_equal(cf_days_from_civil(2400, 2, 29), 157113);
        int32_t y, m, d;
        cf_civil_from_days(-25508, &y, &m, &d);
        assert_int_equal(y, 1900);
        assert_int_equal(m, 3);
        assert_int_equal(d, 1);
        /* every day from 1800 to 2200 maps back to itself, one apart */
        int64_t prev = cf_days_from_civil(1799, 12, 31);
        for (int64_t day = prev + 1; day < cf_days_from_civil(2200, 1, 1);
             day++) {
                cf_civil_from_days(day, &y, &m, &d);
                assert_int_equal(cf_days_from_civil(y, m, d), day);
                assert_int_equal(day, prev + 1);
                prev = day;
        }
}

static void tz_far_future_uses_footer_rule(void **state)
{
        const cf_tz *z = oslo();
        /* 2300 has the calendar of 1900 (400-year cycle): March 1900 began
         * on a Thursday, so the last Sunday is the 25th. */
        int64_t tr = (cf_days_from_civil(2300, 3, 25) * 24 + 1) * H;
        assert_int_equal(tr, 10420966800000LL);
        assert_int_equal(cf_tz_next_transition(z, tr - 24 * H), tr);
        assert_int_equal(cf_tz_offset(z, tr - 1), 3600);
        assert_int_equal(cf_tz_offset(z, tr), 7200);
        assert_int_equal(cf_tz_offset(z, 10429430400000LL), 7200); /* July */
        /* Sao Paulo has had no DST since 2019: no next change */
        const cf_tz *sp = cf_tz_get("America/Sao_Paulo");
        assert_non_null(sp);
        assert_int_equal(cf_tz_offset(sp, 1784116800000LL), -3 * 3600);
        assert_true(cf_tz_next_transition(sp, 1784116800000LL) == INT64_MAX);
}

static void put32(FILE *f, uint32_t v)
{
        uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                         (uint8_t)(v >> 8), (uint8_t)v };
        fwrite(b, 1, 4, f);
}

/* A TZif v2 file with no transitions at all: one type (CET, +1h) and the
 * footer rule, as zic -b slim may write for a zone whose history is all in
 * the rule. */
static void write_slim(const char *path)
{
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        for (int pass = 0; pass < 2; pass++) {
                fwrite("TZif2", 1, 5, f);
                for (int i = 0; i < 15; i++)
                        fputc(0, f);
                put32(f, 0); /* isutcnt */
                put32(f, 0); /* isstdcnt */
                put32(f, 0); /* leapcnt */
                put32(f, 0); /* timecnt */
                put32(f, 1); /* typecnt */
                put32(f, 4); /* charcnt */
                put32(f, 3600);
                fputc(0, f); /* isdst */
                fputc(0, f); /* abbreviation index */
                fwrite("CET", 1, 4, f);
        }
        fputs("\nCET-1CEST,M3.5.0,M10.5.0/3\n", f);
        fclose(f);
}

static void tz_slim_tzif_footer_only(void **state)
{
        char dir[] = "/tmp/cf_tz_XXXXXX";
        assert_non_null(mkdtemp(dir));
        char sub[64], path[96];
        snprintf(sub, sizeof(sub), "%s/Slim", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        snprintf(path, sizeof(path), "%s/Oslo", sub);
        write_slim(path);
        const char *old = getenv("TZDIR");
        char *saved = old ? strdup(old) : NULL;
        setenv("TZDIR", dir, 1);
        const cf_tz *z = cf_tz_get("Slim/Oslo");
        if (saved) {
                setenv("TZDIR", saved, 1);
                free(saved);
        } else {
                unsetenv("TZDIR");
        }
        unlink(path);
        rmdir(sub);
        rmdir(dir);
        assert_non_null(z);
        /* same answers as the full Europe/Oslo for 2026 */
        assert_int_equal(cf_tz_offset(z, 1768478400000LL), 3600);
        assert_int_equal(cf_tz_offset(z, 1784116800000LL), 7200);
        assert_int_equal(cf_tz_next_transition(z, 1774742400000LL),
                         1774746000000LL);
        assert_int_equal(cf_tz_next_transition(z, 1774746000000LL),
                         1792890000000LL);
        assert_int_equal(cf_tz_local_to_utc(z, 20541, 2 * 3600 + 1800),
                         1774746000000LL);
        assert_int_equal(cf_tz_offset(z, 10420966800000LL), 7200);
        assert_int_equal(cf_tz_offset(z, 10420966800000LL - 1), 3600);
}

static void tz_rejects_unknown_and_unsafe_names(void **state)
{
        assert_null(cf_tz_get("Europe/Atlantis"));
        assert_null(cf_tz_get("../etc/passwd"));
        assert_null(cf_tz_get("/etc/localtime"));
        assert_null(cf_tz_get(""));
        assert_null(cf_tz_get(NULL));
        /* same zone, same object */
        assert_ptr_equal(cf_tz_get("Europe/Oslo"), cf_tz_get("Europe/Oslo"));
        const cf_tz *utc = cf_tz_get("UTC");
        assert_non_null(utc);
        assert_int_equal(cf_tz_offset(utc, 1784116800000LL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(tz_oslo_offsets_winter_and_summer),
                cmocka_unit_test(tz_spring_night_has_23_hours),
                cmocka_unit_test(tz_autumn_night_has_25_hours),
                cmocka_unit_test(tz_local_to_utc_gap_and_overlap),
                cmocka_unit_test(tz_period_month_in_oslo),
                cmocka_unit_test(tz_period_iso_week_across_year_end),
                cmocka_unit_test(tz_period_day),
                cmocka_unit_test(tz_civil_days_round_trip),
                cmocka_unit_test(tz_far_future_uses_footer_rule),
                cmocka_unit_test(tz_slim_tzif_footer_only),
                cmocka_unit_test(tz_rejects_unknown_and_unsafe_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
