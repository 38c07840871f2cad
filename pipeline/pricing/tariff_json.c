/*
 * tariff_json.c: OCPI 2.2.1 Tariff JSON documents to cf_tariff (see
 * tariff.h), with an error that names the field and the reason.
 *
 * Numbers never go through floating point. Before jansson parses the text,
 * a small scanner rewrites it so that every number becomes a string holding
 * its literal, prefixed "n", and every string value gets the prefix "s"
 * (object keys are left alone); jansson still checks the syntax and builds
 * the tree, and the loader converts the literals to scaled integers exactly
 * ("0.25" at 6 decimals is 250000) or says how many decimals are allowed.
 */
#include "tariff.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WARNINGS 32

typedef struct ld {
        cf_arena *a;
        char path[256];
        size_t plen;
        char *errstr;
        size_t errstr_size;
        cf_tariff_doc *doc;
        int32_t exp; /* currency exponent, once known */
        char *warn[MAX_WARNINGS];
        uint32_t n_warn;
} ld;

/* ---- paths and messages ------------------------------------------------- */

static size_t path_push(ld *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends to the path; returns the old length for path_pop(). */
static size_t path_push(ld *l, const char *fmt, ...)
{
        size_t old = l->plen;
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(l->path + l->plen, sizeof(l->path) - l->plen, fmt, ap);
        va_end(ap);
        if (n > 0)
                l->plen += (size_t)n;
        if (l->plen >= sizeof(l->path))
                l->plen = sizeof(l->path) - 1;
        return old;
}

static void path_pop(ld *l, size_t old)
{
        l->plen = old;
        l->path[old] = '\0';
}

static cf_err_t bad(ld *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fails with "path: reason". */
static cf_err_t bad(ld *l, const char *fmt, ...)
{
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (l->errstr && l->errstr_size)
                snprintf(l->errstr, l->errstr_size, "%s%s%s", l->path,
                         l->plen ? ": " : "", msg);
        return CF_ERR_TARIFF;
}

static void warn(ld *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn(ld *l, const char *fmt, ...)
{
        if (l->n_warn == MAX_WARNINGS)
                return;
        char msg[256], full[sizeof(msg) + sizeof(((ld *)0)->path) + 4];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(full, sizeof(full), "%s%s%s", l->path, l->plen ? ": " : "",
                 msg);
        l->warn[l->n_warn++] = cf_arena_strdup(l->a, full);
}

/* ---- rewriting numbers into strings ------------------------------------- */

/* Rewrites text as described at the top. On malformed input the output is
 * malformed too, and jansson reports it. */
static void rewrite(const char *s, size_t n, cf_buf *b)
{
        size_t i = 0;
        cf_buf_reserve(b, n + n / 4 + 16);
        while (i < n) {
                char c = s[i];
                if (c == '"') {
                        size_t j = i + 1;
                        while (j < n && s[j] != '"')
                                j += s[j] == '\\' ? 2 : 1;
                        size_t end = j < n ? j + 1 : n; /* past the quote */
                        size_t k = end;
                        while (k < n && (s[k] == ' ' || s[k] == '\t' ||
                                         s[k] == '\n' || s[k] == '\r'))
                                k++;
                        bool key = k < n && s[k] == ':';
                        cf_buf_putc(b, '"');
                        if (!key)
                                cf_buf_putc(b, 's');
                        cf_buf_put(b, s + i + 1, end - i - 1);
                        i = end;
                } else if (c == '-' || (c >= '0' && c <= '9')) {
                        size_t j = i;
                        while (j < n &&
                               (s[j] == '-' || s[j] == '+' || s[j] == '.' ||
                                s[j] == 'e' || s[j] == 'E' ||
                                (s[j] >= '0' && s[j] <= '9')))
                                j++;
                        cf_buf_put(b, "\"n", 2);
                        cf_buf_put(b, s + i, j - i);
                        cf_buf_putc(b, '"');
                        i = j;
                } else {
                        cf_buf_putc(b, (uint8_t)c);
                        i++;
                }
        }
}

/* ---- decimal literals --------------------------------------------------- */

typedef enum dec_err {
        DEC_OK,
        DEC_SYNTAX,
        DEC_DECIMALS, /* more decimals than the scale */
        DEC_RANGE,
} dec_err;

/* Parses a JSON number literal as an integer count of 10^-scale units. */
static dec_err parse_dec(const char *s, int scale, int64_t *out)
{
        bool neg = false;
        if (*s == '-') {
                neg = true;
                s++;
        }
        char dig[64];
        int nd = 0, frac = 0;
        bool seen = false, dot = false;
        for (; *s && *s != 'e' && *s != 'E'; s++) {
                if (*s == '.') {
                        if (dot)
                                return DEC_SYNTAX;
                        dot = true;
                        continue;
                }
                if (*s < '0' || *s > '9')
                        return DEC_SYNTAX;
                seen = true;
                if (dot)
                        frac++;
                if (nd == 0 && *s == '0')
                        continue; /* leading zero */
                if (nd == (int)sizeof(dig))
                        return DEC_RANGE;
                dig[nd++] = *s;
        }
        if (!seen)
                return DEC_SYNTAX;
        long e = 0;
        if (*s == 'e' || *s == 'E') {
                s++;
                char *end;
                errno = 0;
                e = strtol(s, &end, 10);
                if (end == s || *end || errno)
                        return DEC_SYNTAX;
                if (e > 1000 || e < -1000)
                        return nd ? DEC_RANGE : DEC_OK;
        }
        /* value = dig * 10^(e - frac); we want dig * 10^(e - frac + scale) */
        long k = e - frac + scale;
        while (k < 0 && nd > 0) {
                if (dig[nd - 1] != '0')
                        return DEC_DECIMALS;
                nd--;
                k++;
        }
        int64_t v = 0;
        for (int i = 0; i < nd; i++) {
                if (v > (INT64_MAX - 9) / 10)
                        return DEC_RANGE;
                v = v * 10 + (dig[i] - '0');
        }
        for (; nd > 0 && k > 0; k--) {
                if (v > INT64_MAX / 10)
                        return DEC_RANGE;
                v *= 10;
        }
        *out = neg ? -v : v;
        return DEC_OK;
}

bool cf_price_parse_decimal(const char *s, int scale, int64_t *out)
{
        /* JSON's number grammar, which parse_dec() assumes */
        const char *p = s;
        if (*p == '-')
                p++;
        if (*p < '0' || *p > '9')
                return false;
        while (*p >= '0' && *p <= '9')
                p++;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        return *p == '\0' && parse_dec(s, scale, out) == DEC_OK;
}

/* ---- typed getters ------------------------------------------------------ */

enum { OPT = 0, REQ = 1 };

/* The rewritten string value of j if it has prefix kind ('s' or 'n'). */
static const char *tagged(const json_t *j, char kind)
{
        const char *v = json_is_string(j) ? json_string_value(j) : NULL;
        return v && v[0] == kind ? v + 1 : NULL;
}

static const char *type_name(const json_t *j)
{
        if (tagged(j, 's'))
                return "a string";
        if (tagged(j, 'n'))
                return "a number";
        if (json_is_object(j))
                return "an object";
        if (json_is_array(j))
                return "an array";
        if (json_is_boolean(j))
                return "a boolean";
        return "null";
}

/* Finds key in obj. Absent or null: *v = NULL, error only if required. */
static cf_err_t field(ld *l, const json_t *obj, const char *key, int req,
                      json_t **v)
{
        *v = json_object_get(obj, key);
        if (*v && json_is_null(*v))
                *v = NULL;
        if (!*v && req) {
                size_t o = path_push(l, "%s%s", l->plen ? "." : "", key);
                cf_err_t err = bad(l, "is required");
                path_pop(l, o);
                return err;
        }
        return CF_OK;
}

static size_t enter(ld *l, const char *key)
{
        return path_push(l, "%s%s", l->plen ? "." : "", key);
}

/* A string field of at most maxlen bytes (0: any), copied to the arena. */
static cf_err_t get_str(ld *l, const json_t *obj, const char *key, int req,
                        size_t maxlen, char **out)
{
        json_t *v;
        *out = NULL;
        cf_err_t err = field(l, obj, key, req, &v);
        if (err || !v)
                return err;
        size_t o = enter(l, key);
        const char *s = tagged(v, 's');
        if (!s)
                err = bad(l, "must be a string, not %s", type_name(v));
        else if (maxlen && strlen(s) > maxlen)
                err = bad(l, "must be at most %zu characters", maxlen);
        else
                *out = cf_arena_strdup(l->a, s);
        path_pop(l, o);
        return err;
}

/* A non-negative number field scaled to 10^-scale units; unit names the
 * scaled unit in the error. Absent: *out = CF_NONE. */
static cf_err_t get_num(ld *l, const json_t *obj, const char *key, int req,
                        int scale, const char *unit, int64_t *out)
{
        json_t *v;
        *out = CF_NONE;
        cf_err_t err = field(l, obj, key, req, &v);
        if (err || !v)
                return err;
        size_t o = enter(l, key);
        const char *s = tagged(v, 'n');
        int64_t x = 0;
        dec_err de = s ? parse_dec(s, scale, &x) : DEC_SYNTAX;
        if (!s)
                err = bad(l, "must be a number, not %s", type_name(v));
        else if (de == DEC_DECIMALS && scale == 0)
                err = bad(l, "must be an integer, not %s", s);
        else if (de == DEC_DECIMALS)
                err = bad(l,
                          "%s has more than %d decimals (the precision is "
                          "1 %s)",
                          s, scale, unit);
        else if (de != DEC_OK)
                err = bad(l, "%s is out of range", s);
        else if (x < 0)
                err = bad(l, "must not be negative");
        else
                *out = x;
        path_pop(l, o);
        return err;
}

/* A JSON integer field >= min. */
static cf_err_t get_int(ld *l, const json_t *obj, const char *key, int req,
                        int64_t min, int64_t max, const char *what,
                        int64_t *out)
{
        json_t *v;
        *out = CF_NONE;
        cf_err_t err = field(l, obj, key, req, &v);
        if (err || !v)
                return err;
        size_t o = enter(l, key);
        const char *s = tagged(v, 'n');
        int64_t x = 0;
        dec_err de = s ? parse_dec(s, 0, &x) : DEC_SYNTAX;
        if (!s || de == DEC_SYNTAX || de == DEC_DECIMALS)
                err = bad(l, "must be %s", what);
        else if (de == DEC_RANGE || (x > max && s[0] != '-'))
                err =
                    bad(l, "%s is too large (at most %lld)", s, (long long)max);
        else if (x < min)
                err = bad(l, "must be %s", what);
        else
                *out = x;
        path_pop(l, o);
        return err;
}

/* Warns about keys not in known[]. */
static void unknown_keys(ld *l, const json_t *obj, const char *const *known)
{
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
                (void)v;
                int i = 0;
                while (known[i] && strcmp(known[i], key))
                        i++;
                if (!known[i]) {
                        size_t o = enter(l, key);
                        warn(l, "unknown field, ignored");
                        path_pop(l, o);
                }
        }
}

/* ---- dates and times ---------------------------------------------------- */

static bool digits(const char *s, int n, int32_t *out)
{
        int32_t v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return true;
}

/* "YYYY-MM-DD" to days since the epoch. */
static bool parse_date(const char *s, int64_t *days)
{
        int32_t y, m, d;
        if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' ||
            !digits(s + 5, 2, &m) || s[7] != '-' || !digits(s + 8, 2, &d))
                return false;
        if (m < 1 || m > 12 || d < 1)
                return false;
        int64_t first = cf_days_from_civil(y, m, 1);
        int64_t next = m == 12 ? cf_days_from_civil(y + 1, 1, 1)
                               : cf_days_from_civil(y, m + 1, 1);
        if (d > next - first)
                return false;
        *days = first + d - 1;
        return true;
}

bool cf_price_parse_time(const char *s, const cf_tz *local, int64_t *ms)
{
        int64_t days;
        if (!parse_date(s, &days))
                return false;
        const char *p = s + 10;
        int32_t h = 0, mi = 0, sec = 0, frac = 0;
        if (*p == 'T' || *p == 't' || *p == ' ') {
                if (!digits(p + 1, 2, &h) || p[3] != ':' ||
                    !digits(p + 4, 2, &mi))
                        return false;
                p += 6;
                if (*p == ':') {
                        if (!digits(p + 1, 2, &sec))
                                return false;
                        p += 3;
                        if (*p == '.') {
                                int n = 0;
                                p++;
                                while (*p >= '0' && *p <= '9') {
                                        if (n < 3)
                                                frac = frac * 10 + (*p - '0');
                                        n++;
                                        p++;
                                }
                                if (n == 0)
                                        return false;
                                for (; n < 3; n++)
                                        frac *= 10;
                        }
                }
                if (h > 23 || mi > 59 || sec > 60)
                        return false;
        }
        int32_t sod = h * 3600 + mi * 60 + (sec == 60 ? 59 : sec);
        if (*p == '\0') {
                *ms = local ? cf_tz_local_to_utc(local, days, sod) + frac
                            : (days * 86400 + sod) * 1000 + frac;
                return true;
        }
        int32_t off = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int32_t oh, om;
                if (!digits(p + 1, 2, &oh) || p[3] != ':' ||
                    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
                        return false;
                off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
                p += 6;
        } else {
                return false;
        }
        if (*p)
                return false;
        *ms = (days * 86400 + sod - off) * 1000 + frac;
        return true;
}

static cf_err_t get_datetime(ld *l, const json_t *obj, const char *key,
                             int64_t *out)
{
        char *s;
        *out = CF_NONE;
        cf_err_t err = get_str(l, obj, key, OPT, 0, &s);
        if (err || !s)
                return err;
        size_t o = enter(l, key);
        /* OCPI: UTC; no designator means UTC. */
        if (!cf_price_parse_time(s, NULL, out) || strlen(s) < 19)
                err = bad(l,
                          "must be an RFC 3339 date-time like "
                          "2026-01-31T23:00:00Z, not '%s'",
                          s);
        path_pop(l, o);
        return err;
}

/* "HH:MM" to minutes after midnight. */
static cf_err_t get_tod(ld *l, const json_t *obj, const char *key, int64_t *out)
{
        char *s;
        *out = CF_NONE;
        cf_err_t err = get_str(l, obj, key, OPT, 0, &s);
        if (err || !s)
                return err;
        int32_t h, m;
        size_t o = enter(l, key);
        if (strlen(s) != 5 || !digits(s, 2, &h) || s[2] != ':' ||
            !digits(s + 3, 2, &m) || h > 23 || m > 59)
                err = bad(l,
                          "must be a time of day HH:MM (00:00 to 23:59), "
                          "not '%s'",
                          s);
        else
                *out = h * 60 + m;
        path_pop(l, o);
        return err;
}

static cf_err_t get_date(ld *l, const json_t *obj, const char *key,
                         int64_t *out)
{
        char *s;
        *out = CF_NONE;
        cf_err_t err = get_str(l, obj, key, OPT, 0, &s);
        if (err || !s)
                return err;
        size_t o = enter(l, key);
        if (strlen(s) != 10 || !parse_date(s, out))
                err = bad(l, "must be a date YYYY-MM-DD, not '%s'", s);
        path_pop(l, o);
        return err;
}

/* ---- the objects -------------------------------------------------------- */

static const char *const cf_dim_names[CF_DIM__CNT] = {
        [CF_DIM_ENERGY] = "ENERGY",
        [CF_DIM_FLAT] = "FLAT",
        [CF_DIM_PARKING_TIME] = "PARKING_TIME",
        [CF_DIM_TIME] = "TIME",
};

static const char *const cf_day_names[7] = {
        "MONDAY", "TUESDAY",  "WEDNESDAY", "THURSDAY",
        "FRIDAY", "SATURDAY", "SUNDAY",
};

static cf_err_t load_component(ld *l, const json_t *j, cf_price_component *c)
{
        static const char *const known[] = { "type", "price", "vat",
                                             "step_size", NULL };
        if (!json_is_object(j))
                return bad(l, "must be an object, not %s", type_name(j));
        char *type;
        cf_err_t err = get_str(l, j, "type", REQ, 0, &type);
        if (err)
                return err;
        c->type = -1;
        for (int d = 0; d < CF_DIM__CNT; d++)
                if (!strcmp(type, cf_dim_names[d]))
                        c->type = d;
        if (c->type < 0) {
                size_t o = enter(l, "type");
                err = bad(l,
                          "'%s' is not one of ENERGY, FLAT, PARKING_TIME, "
                          "TIME",
                          type);
                path_pop(l, o);
                return err;
        }
        if ((err = get_num(l, j, "price", REQ, 6, "micro-unit",
                           &c->price_micros)))
                return err;
        if ((err = get_num(l, j, "vat", OPT, 2, "basis point", &c->vat_bp)))
                return err;
        if (c->vat_bp != CF_NONE && c->vat_bp > 10000) {
                size_t o = enter(l, "vat");
                err = bad(l, "must be a percentage from 0 to 100");
                path_pop(l, o);
                return err;
        }
        /* FLAT has no unit for step_size (OCPI TariffDimensionType), so
         * any non-negative value, 0 in OCPI's free-of-charge example. */
        if ((err = get_int(l, j, "step_size", REQ,
                           c->type == CF_DIM_FLAT ? 0 : 1, CF_TARIFF_MAX_STEP,
                           c->type == CF_DIM_FLAT ? "a non-negative integer"
                                                  : "a positive integer",
                           &c->step_size)))
                return err;
        unknown_keys(l, j, known);
        return CF_OK;
}

static cf_err_t load_restrictions(ld *l, const json_t *j,
                                  cf_tariff_restrictions *r)
{
        static const char *const known[] = {
                "start_time",  "end_time",     "start_date",
                "end_date",    "min_kwh",      "max_kwh",
                "min_current", "max_current",  "min_power",
                "max_power",   "min_duration", "max_duration",
                "day_of_week", "reservation",  NULL
        };
        cf_err_t err;
        if (!json_is_object(j))
                return bad(l, "must be an object, not %s", type_name(j));
        json_t *v;
        if ((err = field(l, j, "reservation", OPT, &v)))
                return err;
        if (v) {
                size_t o = enter(l, "reservation");
                err = bad(l, "reservation tariffs are not supported");
                path_pop(l, o);
                return err;
        }
        if ((err = get_tod(l, j, "start_time", &r->start_time_min)) ||
            (err = get_tod(l, j, "end_time", &r->end_time_min)) ||
            (err = get_date(l, j, "start_date", &r->start_date)) ||
            (err = get_date(l, j, "end_date", &r->end_date)) ||
            (err = get_num(l, j, "min_kwh", OPT, 3, "Wh", &r->min_wh)) ||
            (err = get_num(l, j, "max_kwh", OPT, 3, "Wh", &r->max_wh)) ||
            (err = get_num(l, j, "min_current", OPT, 3, "mA",
                           &r->min_current_ma)) ||
            (err = get_num(l, j, "max_current", OPT, 3, "mA",
                           &r->max_current_ma)) ||
            (err = get_num(l, j, "min_power", OPT, 3, "W", &r->min_power_w)) ||
            (err = get_num(l, j, "max_power", OPT, 3, "W", &r->max_power_w)) ||
            (err = get_int(l, j, "min_duration", OPT, 0, INT32_MAX,
                           "a non-negative integer (seconds)",
                           &r->min_duration_s)) ||
            (err = get_int(l, j, "max_duration", OPT, 0, INT32_MAX,
                           "a non-negative integer (seconds)",
                           &r->max_duration_s)))
                return err;
        if ((err = field(l, j, "day_of_week", OPT, &v)))
                return err;
        if (v) {
                size_t o = enter(l, "day_of_week");
                if (!json_is_array(v)) {
                        err = bad(l, "must be an array of days, not %s",
                                  type_name(v));
                        path_pop(l, o);
                        return err;
                }
                size_t n = json_array_size(v);
                r->day_of_week =
                    cf_arena_alloc(l->a, (n ? n : 1) * sizeof(int32_t));
                uint32_t seen = 0;
                for (size_t i = 0; i < n; i++) {
                        const char *s = tagged(json_array_get(v, i), 's');
                        int d = -1;
                        for (int k = 0; s && k < 7; k++)
                                if (!strcmp(s, cf_day_names[k]))
                                        d = k;
                        size_t o2 = path_push(l, "[%zu]", i);
                        if (d < 0) {
                                err = bad(l, "must be one of MONDAY, TUESDAY, "
                                             "WEDNESDAY, THURSDAY, FRIDAY, "
                                             "SATURDAY, SUNDAY");
                                path_pop(l, o2);
                                path_pop(l, o);
                                return err;
                        }
                        if (seen & (1u << d))
                                warn(l, "%s repeated", s);
                        seen |= 1u << d;
                        path_pop(l, o2);
                        r->day_of_week[r->n_day_of_week++] = d;
                }
                if (n == 0)
                        warn(l, "empty: the element applies on every day");
                path_pop(l, o);
        }
        static const struct {
                const char *lo, *hi;
                size_t olo, ohi;
        } pairs[] = {
                { "min_kwh", "max_kwh",
                  offsetof(cf_tariff_restrictions, min_wh),
                  offsetof(cf_tariff_restrictions, max_wh) },
                { "min_current", "max_current",
                  offsetof(cf_tariff_restrictions, min_current_ma),
                  offsetof(cf_tariff_restrictions, max_current_ma) },
                { "min_power", "max_power",
                  offsetof(cf_tariff_restrictions, min_power_w),
                  offsetof(cf_tariff_restrictions, max_power_w) },
                { "min_duration", "max_duration",
                  offsetof(cf_tariff_restrictions, min_duration_s),
                  offsetof(cf_tariff_restrictions, max_duration_s) },
                { "start_date", "end_date",
                  offsetof(cf_tariff_restrictions, start_date),
                  offsetof(cf_tariff_restrictions, end_date) },
        };
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
                int64_t lo = *(const int64_t *)((const char *)r + pairs[i].olo);
                int64_t hi = *(const int64_t *)((const char *)r + pairs[i].ohi);
                if (lo != CF_NONE && hi != CF_NONE && lo >= hi)
                        warn(l, "%s is not below %s: the element never applies",
                             pairs[i].lo, pairs[i].hi);
        }
        unknown_keys(l, j, known);
        return CF_OK;
}

static cf_err_t load_element(ld *l, const json_t *j, cf_tariff_element *e)
{
        static const char *const known[] = { "price_components", "restrictions",
                                             NULL };
        if (!json_is_object(j))
                return bad(l, "must be an object, not %s", type_name(j));
        json_t *pcs, *rs;
        cf_err_t err = field(l, j, "price_components", REQ, &pcs);
        if (err)
                return err;
        size_t o = enter(l, "price_components");
        if (!json_is_array(pcs) || json_array_size(pcs) == 0) {
                err = bad(l, "must be a non-empty array");
                path_pop(l, o);
                return err;
        }
        size_t n = json_array_size(pcs);
        e->price_components =
            cf_arena_calloc(l->a, n * sizeof(cf_price_component));
        e->n_price_components = (uint32_t)n;
        uint32_t seen = 0;
        for (size_t i = 0; i < n; i++) {
                size_t o2 = path_push(l, "[%zu]", i);
                err = load_component(l, json_array_get(pcs, i),
                                     &e->price_components[i]);
                if (!err) {
                        int32_t t = e->price_components[i].type;
                        if (seen & (1u << t))
                                warn(l,
                                     "second %s component in the element, "
                                     "ignored",
                                     cf_dim_names[t]);
                        seen |= 1u << t;
                }
                path_pop(l, o2);
                if (err) {
                        path_pop(l, o);
                        return err;
                }
        }
        path_pop(l, o);
        if ((err = field(l, j, "restrictions", OPT, &rs)))
                return err;
        if (rs) {
                e->restrictions =
                    cf_arena_alloc(l->a, sizeof(*e->restrictions));
                cf_tariff_restrictions *r = e->restrictions;
                r->start_time_min = r->end_time_min = CF_NONE;
                r->start_date = r->end_date = CF_NONE;
                r->day_of_week = NULL;
                r->n_day_of_week = 0;
                o = enter(l, "restrictions");
                err = load_restrictions(l, rs, r);
                path_pop(l, o);
                if (err)
                        return err;
        }
        unknown_keys(l, j, known);
        return CF_OK;
}

/* A Price object to minor units (excl_vat required, incl_vat optional). */
static cf_err_t load_price(ld *l, const json_t *obj, const char *key,
                           int64_t *excl, int64_t *incl)
{
        json_t *v;
        *excl = *incl = CF_NONE;
        cf_err_t err = field(l, obj, key, OPT, &v);
        if (err || !v)
                return err;
        size_t o = enter(l, key);
        if (!json_is_object(v))
                err = bad(l, "must be a Price object, not %s", type_name(v));
        else if (!(err = get_num(l, v, "excl_vat", REQ, l->exp,
                                 "minor unit of the currency", excl)))
                err = get_num(l, v, "incl_vat", OPT, l->exp,
                              "minor unit of the currency", incl);
        path_pop(l, o);
        return err;
}

static cf_err_t load_tariff(ld *l, const json_t *root, cf_tariff *t)
{
        static const char *const known[] = { "country_code",
                                             "party_id",
                                             "id",
                                             "currency",
                                             "type",
                                             "tariff_alt_text",
                                             "tariff_alt_url",
                                             "min_price",
                                             "max_price",
                                             "elements",
                                             "start_date_time",
                                             "end_date_time",
                                             "energy_mix",
                                             "last_updated",
                                             NULL };
        static const char *const types[] = { "AD_HOC_PAYMENT", "PROFILE_CHEAP",
                                             "PROFILE_FAST",   "PROFILE_GREEN",
                                             "REGULAR",        NULL };
        cf_tariff_doc *doc = l->doc;
        cf_err_t err;
        if (!json_is_object(root))
                return bad(l, "the document must be a Tariff object, not %s",
                           type_name(root));
        if ((err = get_str(l, root, "id", REQ, 36, &t->tariff_id)) ||
            (err = get_str(l, root, "currency", REQ, 0, &t->currency)))
                return err;
        l->exp = cf_money_currency_exp(t->currency);
        if (l->exp < 0) {
                size_t o = enter(l, "currency");
                err = bad(l, "'%s' is not an ISO 4217 code this build knows",
                          t->currency);
                path_pop(l, o);
                return err;
        }
        if ((err = get_str(l, root, "country_code", OPT, 2,
                           &doc->country_code)) ||
            (err = get_str(l, root, "party_id", OPT, 3, &doc->party_id)) ||
            (err = get_str(l, root, "type", OPT, 0, &doc->type)) ||
            (err = get_datetime(l, root, "last_updated",
                                &doc->last_updated_ms)) ||
            (err = get_datetime(l, root, "start_date_time", &t->start_ms)) ||
            (err = get_datetime(l, root, "end_date_time", &t->end_ms)) ||
            (err = load_price(l, root, "min_price", &t->min_price_minor,
                              &doc->min_price_incl_minor)) ||
            (err = load_price(l, root, "max_price", &t->max_price_minor,
                              &doc->max_price_incl_minor)))
                return err;
        if (!doc->country_code)
                warn(l, "country_code missing (OCPI requires it; pricing does "
                        "not)");
        if (!doc->party_id)
                warn(l,
                     "party_id missing (OCPI requires it; pricing does not)");
        if (doc->last_updated_ms == CF_NONE)
                warn(l, "last_updated missing (OCPI requires it; pricing does "
                        "not)");
        if (doc->type) {
                int i = 0;
                while (types[i] && strcmp(types[i], doc->type))
                        i++;
                if (!types[i]) {
                        size_t o = enter(l, "type");
                        err = bad(l,
                                  "'%s' is not one of AD_HOC_PAYMENT, "
                                  "PROFILE_CHEAP, PROFILE_FAST, "
                                  "PROFILE_GREEN, REGULAR",
                                  doc->type);
                        path_pop(l, o);
                        return err;
                }
        }
        if (t->start_ms != CF_NONE && t->end_ms != CF_NONE &&
            t->end_ms <= t->start_ms) {
                size_t o = enter(l, "end_date_time");
                err = bad(l, "must be after start_date_time");
                path_pop(l, o);
                return err;
        }
        if (t->min_price_minor != CF_NONE && t->max_price_minor != CF_NONE &&
            t->min_price_minor > t->max_price_minor) {
                size_t o = enter(l, "max_price");
                err = bad(l, "must not be below min_price");
                path_pop(l, o);
                return err;
        }
        t->min_price_incl_minor = doc->min_price_incl_minor;
        t->max_price_incl_minor = doc->max_price_incl_minor;
        if (t->min_price_incl_minor != CF_NONE &&
            t->max_price_incl_minor != CF_NONE &&
            t->min_price_incl_minor > t->max_price_incl_minor) {
                size_t o = enter(l, "max_price");
                err = bad(l, "incl_vat must not be below min_price incl_vat");
                path_pop(l, o);
                return err;
        }
        json_t *els;
        if ((err = field(l, root, "elements", REQ, &els)))
                return err;
        size_t o = enter(l, "elements");
        if (!json_is_array(els) || json_array_size(els) == 0) {
                err = bad(l, "must be a non-empty array");
                path_pop(l, o);
                return err;
        }
        size_t n = json_array_size(els);
        if (n > CF_TARIFF_MAX_ELEMENTS) {
                err = bad(l, "more than %d elements are not supported",
                          CF_TARIFF_MAX_ELEMENTS);
                path_pop(l, o);
                return err;
        }
        t->elements = cf_arena_calloc(l->a, n * sizeof(cf_tariff_element));
        t->n_elements = (uint32_t)n;
        for (size_t i = 0; i < n; i++) {
                size_t o2 = path_push(l, "[%zu]", i);
                err = load_element(l, json_array_get(els, i), &t->elements[i]);
                path_pop(l, o2);
                if (err) {
                        path_pop(l, o);
                        return err;
                }
        }
        path_pop(l, o);
        /* An element after an unrestricted one with the same dimension can
         * never be chosen for it. */
        uint32_t open = 0; /* dimensions with an unrestricted element */
        for (size_t i = 0; i < n; i++) {
                const cf_tariff_element *e = &t->elements[i];
                uint32_t dims = 0;
                for (uint32_t k = 0; k < e->n_price_components; k++)
                        dims |= 1u << e->price_components[k].type;
                if (dims && (dims & open) == dims) {
                        size_t o2 = path_push(l, "elements[%zu]", i);
                        warn(l, "never used: an earlier element without "
                                "restrictions covers all its dimensions");
                        path_pop(l, o2);
                }
                if (!e->restrictions)
                        open |= dims;
        }
        unknown_keys(l, root, known);
        return CF_OK;
}

cf_err_t cf_tariff_from_json(const char *text, size_t len, cf_arena *a,
                             cf_tariff *out, cf_tariff_doc *doc, char *errstr,
                             size_t errstr_size)
{
        cf_tariff_doc scratch;
        ld l = { .a = a, .errstr = errstr, .errstr_size = errstr_size };
        l.doc = doc ? doc : &scratch;
        memset(l.doc, 0, sizeof(*l.doc));
        l.doc->last_updated_ms = CF_NONE;
        l.doc->min_price_incl_minor = CF_NONE;
        l.doc->max_price_incl_minor = CF_NONE;
        memset(out, 0, sizeof(*out));
        out->min_price_minor = out->max_price_minor = CF_NONE;
        out->min_price_incl_minor = out->max_price_incl_minor = CF_NONE;
        out->start_ms = out->end_ms = CF_NONE;

        cf_buf b;
        cf_buf_init(&b);
        rewrite(text, len, &b);
        json_error_t je;
        json_t *root =
            json_loadb((const char *)b.p, b.len, JSON_REJECT_DUPLICATES, &je);
        cf_buf_free(&b);
        if (!root) {
                /* Report the syntax error against the original text. */
                json_t *orig =
                    json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
                json_decref(orig);
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size,
                                 "not valid JSON: line %d column %d: %s",
                                 je.line, je.column, je.text);
                return CF_ERR_TARIFF;
        }
        cf_err_t err = load_tariff(&l, root, out);
        json_decref(root);
        if (!err)
                err = cf_tariff_validate(out, errstr, errstr_size);
        l.doc->warnings =
            cf_arena_alloc(a, (l.n_warn ? l.n_warn : 1) * sizeof(char *));
        memcpy(l.doc->warnings, l.warn, l.n_warn * sizeof(char *));
        l.doc->n_warnings = l.n_warn;
        return err;
}

cf_err_t cf_tariff_load_file(const char *path, cf_arena *a, cf_tariff *out,
                             cf_tariff_doc *doc, char *errstr,
                             size_t errstr_size)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return CF_ERR_IO;
        }
        cf_buf b;
        cf_buf_init(&b);
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
                cf_buf_put(&b, chunk, n);
                if (b.len > (64u << 20))
                        break;
        }
        bool rerr = ferror(f) || b.len > (64u << 20);
        fclose(f);
        cf_err_t err;
        if (rerr) {
                snprintf(errstr, errstr_size, "%s: read error or too large",
                         path);
                err = CF_ERR_IO;
        } else {
                err = cf_tariff_from_json(b.p ? (const char *)b.p : "", b.len,
                                          a, out, doc, errstr, errstr_size);
        }
        cf_buf_free(&b);
        return err;
}
