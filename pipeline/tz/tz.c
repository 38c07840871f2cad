/*
 * tz.c: IANA time zones from TZif files (RFC 8536), civil dates and billing
 * periods (see tz.h).
 *
 * A zone is loaded once into an immutable table of the instants at which
 * its UTC offset changes: the file's own transitions, then transitions
 * generated from the file's POSIX TZ footer rule up to CF_TZ_EXT_YEAR. Past
 * that year the rule is evaluated directly, so "slim" TZif files (few or no
 * explicit transitions, everything in the footer) and far-future instants
 * both work. Leap-second records are skipped (zoneinfo "right/" zones are
 * not supported: their transition times count leap seconds).
 */
#include "tz.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mem.h"

#define CF_TZ_EXT_YEAR 2200 /* transitions pre-generated up to this year */
#define CF_TZ_MAX_FILE (1 << 20)

/* A date of a POSIX TZ rule: Jn, n or Mm.w.d. */
typedef struct tz_rdate {
        char kind; /* 'J', 'N' or 'M' */
        int32_t n, m, w, d;
        int32_t time; /* seconds after local midnight, may exceed a day */
} tz_rdate;

typedef struct tz_rule {
        int32_t std_off; /* seconds east of UTC */
        int32_t dst_off;
        bool has_dst;
        tz_rdate start, end;
} tz_rule;

struct cf_tz {
        char *name;
        int64_t *at;  /* ms of each offset change, ascending */
        int32_t *off; /* offset in force from at[i] */
        uint32_t n;
        int32_t off0;  /* offset before at[0] (or always, if n == 0) */
        bool has_rule; /* footer rule applies from rule_from_ms */
        tz_rule rule;
        int64_t rule_from_ms; /* instants >= this use the rule directly */
        struct cf_tz *next;
};

static pthread_mutex_t cf_tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cf_tz *cf_tz_loaded;

/* ---- calendar ------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int32_t month_days(int64_t y, int32_t m)
{
        static const int8_t d[12] = { 31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. Counts in 400-year
 * eras (146097 days each) of years starting on 1 March, so that the leap
 * day is the last day of its year. */
int64_t cf_days_from_civil(int32_t y, int32_t m, int32_t d)
{
        int64_t yy = (int64_t)y - (m <= 2);
        int64_t era = floor_div(yy, 400);
        int64_t yoe = yy - era * 400;               /* 0..399 */
        int64_t mp = m > 2 ? m - 3 : m + 9;         /* March = 0 */
        int64_t doy = (153 * mp + 2) / 5 + (d - 1); /* 0..365 */
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468; /* 0000-03-01 to 1970-01-01 */
}

void cf_civil_from_days(int64_t days, int32_t *y, int32_t *m, int32_t *d)
{
        int64_t z = days + 719468;
        int64_t era = floor_div(z, 146097);
        int64_t doe = z - era * 146097; /* 0..146096 */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365 */
        int64_t mp = (5 * doy + 2) / 153;                      /* 0..11 */
        int32_t dd = (int32_t)(doy - (153 * mp + 2) / 5 + 1);
        int32_t mm = (int32_t)(mp < 10 ? mp + 3 : mp - 9);
        *y = (int32_t)(yoe + era * 400 + (mm <= 2));
        *m = mm;
        *d = dd;
}

/* ---- POSIX TZ rule -------------------------------------------------- */

/* Day (since epoch) of a rule date in year y. */
static int64_t rdate_day(const tz_rdate *r, int32_t y)
{
        int64_t jan1 = cf_days_from_civil(y, 1, 1);
        switch (r->kind) {
        case 'J': {
                int64_t doy = r->n - 1; /* Feb 29 is never counted */
                if (is_leap(y) && r->n >= 60)
                        doy++;
                return jan1 + doy;
        }
        case 'N':
                return jan1 + r->n;
        default: {
                int64_t first = cf_days_from_civil(y, r->m, 1);
                /* weekday with 0 = Sunday; 1970-01-01 was a Thursday (4) */
                int32_t wd = (int32_t)((first % 7 + 7 + 4) % 7);
                int64_t day = first + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
                while (day >= first + month_days(y, r->m))
                        day -= 7;
                return day;
        }
        }
}

/* DST start and end (UTC ms) of year y under rule r. */
static void rule_year(const tz_rule *r, int32_t y, int64_t *start, int64_t *end)
{
        *start =
            (rdate_day(&r->start, y) * 86400 + r->start.time - r->std_off) *
            1000;
        *end =
            (rdate_day(&r->end, y) * 86400 + r->end.time - r->dst_off) * 1000;
}

static int32_t year_of(int64_t t_ms, int32_t off)
{
        int32_t y, m, d;
        cf_civil_from_days(floor_div(floor_div(t_ms, 1000) + off, 86400), &y,
                           &m, &d);
        return y;
}

static int32_t rule_offset(const tz_rule *r, int64_t t_ms)
{
        if (!r->has_dst)
                return r->std_off;
        int32_t y = year_of(t_ms, r->std_off);
        int64_t s, e;
        rule_year(r, y, &s, &e);
        bool dst = s < e ? (t_ms >= s && t_ms < e) : !(t_ms >= e && t_ms < s);
        return dst ? r->dst_off : r->std_off;
}

static int64_t rule_next(const tz_rule *r, int64_t t_ms)
{
        if (!r->has_dst || r->std_off == r->dst_off)
                return INT64_MAX;
        int32_t y = year_of(t_ms, r->std_off);
        int64_t c[10];
        int n = 0;
        for (int32_t k = -1; k <= 3; k++) {
                int64_t s, e;
                rule_year(r, y + k, &s, &e);
                c[n++] = s;
                c[n++] = e;
        }
        /* sort the few candidates */
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && c[j - 1] > c[j]; j--) {
                        int64_t x = c[j];
                        c[j] = c[j - 1];
                        c[j - 1] = x;
                }
        for (int i = 0; i < n; i++)
                if (c[i] > t_ms &&
                    rule_offset(r, c[i] - 1) != rule_offset(r, c[i]))
                        return c[i];
        return INT64_MAX; /* e.g. DST all year round */
}

/* Parses [+-]hh[:mm[:ss]]; hours up to max_h. */
static bool parse_hms(const char **pp, int32_t max_h, int32_t *out)
{
        const char *p = *pp;
        int sign = 1;
        if (*p == '+' || *p == '-')
                sign = *p++ == '-' ? -1 : 1;
        int32_t v[3] = { 0, 0, 0 };
        for (int i = 0; i < 3; i++) {
                if (i > 0) {
                        if (*p != ':')
                                break;
                        p++;
                }
                if (*p < '0' || *p > '9')
                        return false;
                int32_t x = 0;
                int nd = 0;
                while (*p >= '0' && *p <= '9' && nd < 3) {
                        x = x * 10 + (*p++ - '0');
                        nd++;
                }
                v[i] = x;
        }
        if (v[0] > max_h || v[1] > 59 || v[2] > 59)
                return false;
        *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
        *pp = p;
        return true;
}

static bool parse_tzname(const char **pp)
{
        const char *p = *pp;
        if (*p == '<') {
                while (*p && *p != '>')
                        p++;
                if (*p != '>')
                        return false;
                p++;
        } else {
                const char *s = p;
                while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
                        p++;
                if (p == s)
                        return false;
        }
        *pp = p;
        return true;
}

static bool parse_num(const char **pp, int32_t lo, int32_t hi, int32_t *out)
{
        const char *p = *pp;
        int32_t x = 0;
        if (*p < '0' || *p > '9')
                return false;
        while (*p >= '0' && *p <= '9') {
                x = x * 10 + (*p++ - '0');
                if (x > hi)
                        return false;
        }
        if (x < lo)
                return false;
        *out = x;
        *pp = p;
        return true;
}

static bool parse_rdate(const char **pp, tz_rdate *r)
{
        const char *p = *pp;
        memset(r, 0, sizeof(*r));
        if (*p == 'J') {
                p++;
                r->kind = 'J';
                if (!parse_num(&p, 1, 365, &r->n))
                        return false;
        } else if (*p == 'M') {
                p++;
                r->kind = 'M';
                if (!parse_num(&p, 1, 12, &r->m) || *p++ != '.' ||
                    !parse_num(&p, 1, 5, &r->w) || *p++ != '.' ||
                    !parse_num(&p, 0, 6, &r->d))
                        return false;
        } else {
                r->kind = 'N';
                if (!parse_num(&p, 0, 365, &r->n))
                        return false;
        }
        r->time = 7200;
        if (*p == '/') {
                p++;
                if (!parse_hms(&p, 167, &r->time))
                        return false;
        }
        *pp = p;
        return true;
}

/* Parses a POSIX TZ string as found in a TZif footer. */
static bool parse_rule(const char *s, tz_rule *r)
{
        const char *p = s;
        int32_t v;
        memset(r, 0, sizeof(*r));
        if (!parse_tzname(&p) || !parse_hms(&p, 24, &v))
                return false;
        r->std_off = -v;
        r->dst_off = r->std_off;
        if (!*p)
                return true;
        if (!parse_tzname(&p))
                return false;
        r->has_dst = true;
        r->dst_off = r->std_off + 3600;
        if (*p && *p != ',') {
                if (!parse_hms(&p, 24, &v))
                        return false;
                r->dst_off = -v;
        }
        if (!*p) { /* POSIX leaves the default open; use the US rule */
                r->start = (tz_rdate){ 'M', 0, 3, 2, 0, 7200 };
                r->end = (tz_rdate){ 'M', 0, 11, 1, 0, 7200 };
                return true;
        }
        if (*p++ != ',' || !parse_rdate(&p, &r->start) || *p++ != ',' ||
            !parse_rdate(&p, &r->end))
                return false;
        return *p == '\0';
}

/* ---- TZif ----------------------------------------------------------- */

static int64_t be(const uint8_t *p, int n)
{
        uint64_t v = 0;
        for (int i = 0; i < n; i++)
                v = (v << 8) | p[i];
        if (n == 4)
                return (int32_t)(uint32_t)v;
        return (int64_t)v;
}

typedef struct tzif_hdr {
        uint32_t isut, isstd, leap, time, type, chr;
} tzif_hdr;

static bool read_hdr(const uint8_t *p, size_t len, tzif_hdr *h)
{
        if (len < 44 || memcmp(p, "TZif", 4) != 0)
                return false;
        uint32_t *f[6] = { &h->isut, &h->isstd, &h->leap,
                           &h->time, &h->type,  &h->chr };
        for (int i = 0; i < 6; i++)
                *f[i] = (uint32_t)be(p + 20 + 4 * i, 4);
        return h->type > 0 && h->time < 100000 && h->type <= 256 &&
               h->chr < 100000 && h->leap < 100000;
}

static size_t block_len(const tzif_hdr *h, int tsz)
{
        return (size_t)h->time * tsz + h->time + (size_t)h->type * 6 + h->chr +
               (size_t)h->leap * (tsz + 4) + h->isstd + h->isut;
}

/* Appends a (time, offset) change when the offset differs. */
static void push(struct cf_tz *z, uint32_t *cap, int64_t at, int32_t off)
{
        int32_t prev = z->n ? z->off[z->n - 1] : z->off0;
        if (off == prev)
                return;
        if (z->n == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                z->at = cf_realloc(z->at, *cap * sizeof(*z->at));
                z->off = cf_realloc(z->off, *cap * sizeof(*z->off));
        }
        z->at[z->n] = at;
        z->off[z->n] = off;
        z->n++;
}

static struct cf_tz *parse_tzif(const uint8_t *buf, size_t len)
{
        tzif_hdr h;
        if (!read_hdr(buf, len, &h))
                return NULL;
        int tsz = 4;
        const uint8_t *p = buf + 44;
        size_t rest = len - 44;
        size_t bl = block_len(&h, 4);
        if (bl > rest)
                return NULL;
        const char *footer = NULL;
        size_t footer_len = 0;
        if (buf[4] >= '2') {
                p += bl;
                rest -= bl;
                if (!read_hdr(p, rest, &h))
                        return NULL;
                p += 44;
                rest -= 44;
                tsz = 8;
                bl = block_len(&h, 8);
                if (bl > rest)
                        return NULL;
                const uint8_t *f = p + bl;
                size_t fl = rest - bl;
                if (fl >= 2 && f[0] == '\n') {
                        const uint8_t *nl = memchr(f + 1, '\n', fl - 1);
                        if (nl) {
                                footer = (const char *)f + 1;
                                footer_len = (size_t)(nl - f - 1);
                        }
                }
        }
        const uint8_t *times = p;
        const uint8_t *idx = times + (size_t)h.time * tsz;
        const uint8_t *types = idx + h.time;

        struct cf_tz *z = cf_calloc(1, sizeof(*z));
        uint32_t cap = 0;
        z->off0 = (int32_t)be(types, 4);
        int64_t last = INT64_MIN;
        for (uint32_t i = 0; i < h.time; i++) {
                int64_t t = be(times + (size_t)i * tsz, tsz);
                if (idx[i] >= h.type || t <= last)
                        goto fail;
                last = t;
                int32_t off = (int32_t)be(types + 6 * (size_t)idx[i], 4);
                push(z, &cap, t * 1000, off);
        }
        z->rule_from_ms = INT64_MAX;
        if (footer && footer_len > 0 && footer_len < 128) {
                char s[128];
                memcpy(s, footer, footer_len);
                s[footer_len] = '\0';
                if (!parse_rule(s, &z->rule))
                        goto fail;
                z->has_rule = true;
                if (z->rule.has_dst) {
                        /* The rule governs after the last transition (or
                         * always, without transitions): generate its
                         * changes up to the extension year, evaluate it
                         * directly past that. */
                        int64_t t = h.time ? last * 1000
                                           : cf_days_from_civil(1900, 1, 1) *
                                                 CF_MS_PER_DAY;
                        if (!h.time)
                                z->off0 = rule_offset(&z->rule, t);
                        int64_t stop =
                            cf_days_from_civil(CF_TZ_EXT_YEAR, 1, 1) *
                            CF_MS_PER_DAY;
                        for (;;) {
                                int64_t nx = rule_next(&z->rule, t);
                                if (nx >= stop)
                                        break;
                                push(z, &cap, nx, rule_offset(&z->rule, nx));
                                t = nx;
                        }
                        z->rule_from_ms = stop;
                } else if (!h.time) {
                        z->off0 = z->rule.std_off;
                }
        }
        return z;
fail:
        free(z->at);
        free(z->off);
        free(z);
        return NULL;
}

static bool name_safe(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > 200 || name[0] == '/' || strstr(name, ".."))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '/' || c == '_' ||
                      c == '-' || c == '+' || c == '.'))
                        return false;
        }
        return true;
}

static struct cf_tz *load_zone(const char *name)
{
        const char *dir = getenv("TZDIR");
        char path[512];
        snprintf(path, sizeof(path), "%s/%s",
                 dir && *dir ? dir : "/usr/share/zoneinfo", name);
        struct cf_tz *z = NULL;
        FILE *f = fopen(path, "rb");
        if (f) {
                uint8_t *buf = cf_malloc(CF_TZ_MAX_FILE);
                size_t len = fread(buf, 1, CF_TZ_MAX_FILE, f);
                fclose(f);
                if (len < CF_TZ_MAX_FILE)
                        z = parse_tzif(buf, len);
                free(buf);
        } else if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
                z = cf_calloc(1, sizeof(*z)); /* no database: UTC still works */
                z->rule_from_ms = INT64_MAX;
        }
        if (z)
                z->name = cf_strdup(name);
        return z;
}

const cf_tz *cf_tz_get(const char *name)
{
        if (!name || !name_safe(name))
                return NULL;
        pthread_mutex_lock(&cf_tz_lock);
        struct cf_tz *z;
        for (z = cf_tz_loaded; z; z = z->next)
                if (!strcmp(z->name, name))
                        break;
        if (!z) {
                z = load_zone(name);
                if (z) {
                        z->next = cf_tz_loaded;
                        cf_tz_loaded = z;
                }
        }
        pthread_mutex_unlock(&cf_tz_lock);
        return z;
}

const char *cf_tz_name(const cf_tz *tz)
{
        return tz->name;
}

/* Index of the last change at or before t, or -1. */
static int64_t find(const cf_tz *tz, int64_t t_ms)
{
        int64_t lo = 0, hi = tz->n; /* first index with at > t */
        while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (tz->at[mid] <= t_ms)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo - 1;
}

int32_t cf_tz_offset(const cf_tz *tz, int64_t t_ms)
{
        if (t_ms >= tz->rule_from_ms)
                return rule_offset(&tz->rule, t_ms);
        int64_t i = find(tz, t_ms);
        return i < 0 ? tz->off0 : tz->off[i];
}

int64_t cf_tz_next_transition(const cf_tz *tz, int64_t t_ms)
{
        if (t_ms < tz->rule_from_ms) {
                int64_t i = find(tz, t_ms) + 1;
                if ((uint64_t)i < tz->n)
                        return tz->at[i];
                if (tz->rule_from_ms == INT64_MAX)
                        return INT64_MAX;
                /* the rule's first change at or after rule_from_ms */
                int64_t nx = rule_next(&tz->rule, tz->rule_from_ms - 1);
                return nx;
        }
        return rule_next(&tz->rule, t_ms);
}

void cf_tz_civil(const cf_tz *tz, int64_t t_ms, cf_civil *out)
{
        int64_t local = t_ms + (int64_t)cf_tz_offset(tz, t_ms) * 1000;
        int64_t days = floor_div(local, CF_MS_PER_DAY);
        int64_t ms = local - days * CF_MS_PER_DAY;
        int32_t sod = (int32_t)(ms / 1000);
        cf_civil_from_days(days, &out->year, &out->month, &out->day);
        out->days = days;
        out->sec_of_day = sod;
        out->hour = sod / 3600;
        out->min = sod / 60 % 60;
        out->sec = sod % 60;
        out->wday = (int32_t)(((days + 3) % 7 + 7) % 7);
}

int64_t cf_tz_local_to_utc(const cf_tz *tz, int64_t days, int32_t sec_of_day)
{
        int64_t local = days * CF_MS_PER_DAY + (int64_t)sec_of_day * 1000;
        /* Walk the constant-offset intervals around the wall time: the
         * first interval holding local - offset is the first occurrence;
         * a change that jumps over it is a gap, which ends at the change. */
        int64_t a = local - 2 * CF_MS_PER_DAY;
        int32_t off = cf_tz_offset(tz, a);
        while (a <= local + 2 * CF_MS_PER_DAY) {
                int64_t b = cf_tz_next_transition(tz, a);
                int64_t t = local - (int64_t)off * 1000;
                if (t >= a && t < b)
                        return t;
                if (b == INT64_MAX)
                        break;
                int32_t noff = cf_tz_offset(tz, b);
                if (t >= b && local - (int64_t)noff * 1000 < b)
                        return b; /* in the gap */
                a = b;
                off = noff;
        }
        return local - (int64_t)off * 1000;
}

void cf_period_of(const cf_tz *tz, int32_t kind, int64_t t_ms,
                  int64_t *start_ms, int64_t *end_ms, char *id)
{
        cf_civil c;
        cf_tz_civil(tz, t_ms, &c);
        int64_t from, to;
        switch (kind) {
        case CF_PERIOD_WEEK: {
                int64_t monday = c.days - c.wday;
                int64_t thursday = monday + 3;
                int32_t ty, tm, td;
                cf_civil_from_days(thursday, &ty, &tm, &td);
                int64_t week =
                    (thursday - cf_days_from_civil(ty, 1, 1)) / 7 + 1;
                from = monday;
                to = monday + 7;
                snprintf(id, CF_PERIOD_ID_MAX, "%04d-W%02d", (int)ty,
                         (int)week);
                break;
        }
        case CF_PERIOD_DAY:
                from = c.days;
                to = c.days + 1;
                snprintf(id, CF_PERIOD_ID_MAX, "%04d-%02d-%02d", (int)c.year,
                         (int)c.month, (int)c.day);
                break;
        default: /* CF_PERIOD_MONTH */
                from = cf_days_from_civil(c.year, c.month, 1);
                to = c.month == 12 ? cf_days_from_civil(c.year + 1, 1, 1)
                                   : cf_days_from_civil(c.year, c.month + 1, 1);
                snprintf(id, CF_PERIOD_ID_MAX, "%04d-%02d", (int)c.year,
                         (int)c.month);
                break;
        }
        *start_ms = cf_tz_local_to_utc(tz, from, 0);
        *end_ms = cf_tz_local_to_utc(tz, to, 0);
}
