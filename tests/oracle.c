/*
 * oracle.c: the tests' independent pricing oracle (see oracle.h).
 *
 * How it prices a session, by brute force, from README "Pricing":
 *  - The register over the session is a list of knots: (start, start
 *    register), the readings after the start, and the stop's register at
 *    the stop (a lost stop: the session ends at its last reading). Between
 *    knots it is linear, and at an instant between two knots it is the
 *    interpolation rounded down (the detail README leaves open, settled as
 *    the production pricer's comment says: "linear between knots, rounded
 *    down"). Charging ends at the first knot that reaches the final
 *    register (at the start if nothing was charged): parking is the rest.
 *  - The session is cut into slices at every whole UTC minute, at every
 *    knot, at charging end and at start + every min/max_duration. Times of
 *    day, dates and weekdays change only at whole local minutes (every
 *    zone offset is checked to be whole minutes), durations only at the
 *    cuts, so each slice has one answer; the oracle asks at both ends of
 *    every slice and fails if the answers differ.
 *  - Per slice and dimension, the first element having a component of that
 *    dimension whose restrictions all hold prices it: ENERGY the slice's
 *    Wh, TIME its ms while charging, PARKING_TIME its ms while parking.
 *    FLAT once, by the element found in the earliest slice (at the start
 *    for a session of zero length).
 *  - step_size (OCPI 2.2.1, CDRs module "Step_size", not the engine):
 *    once for ENERGY, once for TIME and PARKING_TIME together. The total
 *    volume is rounded up to the step of the element that priced the last
 *    slice with volume, the extra at that element's price; of the time
 *    dimensions only PARKING_TIME is rounded when any parking was priced,
 *    TIME only when none was.
 *  - A line is one dimension at one VAT rate: its exact value (an __int128
 *    numerator over micro-units x Wh or ms) is rounded once, half up, to
 *    minor units: the amount excl. VAT (VAT = excl x rate, half up), or
 *    with prices_include_vat the amount incl. VAT (VAT = incl x rate /
 *    (100% + rate), half up, excl the rest). Limits: if min_price /
 *    max_price (excl.) bound the sum of excl. amounts, those are scaled to
 *    the limit by largest remainder (ties to the earlier line; lines
 *    ordered ENERGY, FLAT, PARKING_TIME, TIME) and VAT follows from excl.;
 *    then if the incl. limits bound the sum of incl. amounts, those are
 *    scaled the same way and VAT is split from incl. An all-zero set gives
 *    the limit to the first line or to a new FLAT line at the site's VAT.
 *    Totals are sums.
 * Readings are the charging.meter records of the genfile that decode, are
 * not named by a fault line of the truth (invalid, orphan readings), and
 * are not repeats (the same event id again); each session's energy must
 * then equal the truth's, or the oracle fails.
 */
#include "oracle.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec.h"
#include "genfile.h"
#include "mem.h"
#include "tables.h"

__extension__ typedef __int128 i128;

#define MINUTE_MS 60000LL
#define HOUR_MS   3600000LL

static void fail(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t n, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
}

/* ---- the pricer ---------------------------------------------------------- */

/* Minor-unit exponents (ISO 4217) of the currencies README names. */
static int minor_exponent(const char *c)
{
        static const char *const two[] = { "NOK", "EUR", "SEK", "DKK",
                                           "GBP", "USD", "CHF" };
        static const char *const zero[] = { "JPY", "ISK" };
        static const char *const three[] = { "KWD", "BHD" };
        for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
                if (!strcmp(c, two[i]))
                        return 2;
        for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
                if (!strcmp(c, zero[i]))
                        return 0;
        for (size_t i = 0; i < sizeof(three) / sizeof(three[0]); i++)
                if (!strcmp(c, three[i]))
                        return 3;
        return -1;
}

/* n / d rounded half up, n >= 0, d > 0. */
static int64_t half_up(i128 n, i128 d)
{
        return (int64_t)((2 * n + d) / (2 * d));
}

/* Fails on whatever the oracle does not price. */
static int check_tariff(const cf_tariff *t, char *err, size_t n)
{
        if (t->start_ms != CF_NONE || t->end_ms != CF_NONE) {
                fail(err, n, "tariff %s: start/end validity not supported",
                     t->tariff_id);
                return -1;
        }
        if (minor_exponent(t->currency) < 0) {
                fail(err, n, "tariff %s: currency %s not supported",
                     t->tariff_id, t->currency);
                return -1;
        }
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_element *e = &t->elements[i];
                for (uint32_t j = 0; j < e->n_price_components; j++) {
                        const cf_price_component *c = &e->price_components[j];
                        if (c->type < 0 || c->type >= CF_DIM__CNT ||
                            (c->type != CF_DIM_FLAT && c->step_size < 1) ||
                            c->price_micros < 0 ||
                            (c->vat_bp != CF_NONE &&
                             (c->vat_bp < 0 || c->vat_bp > 10000))) {
                                fail(err, n,
                                     "tariff %s element %u component %u: "
                                     "invalid",
                                     t->tariff_id, i, j);
                                return -1;
                        }
                }
                const cf_tariff_restrictions *r = e->restrictions;
                if (!r)
                        continue;
                if (r->min_wh != CF_NONE || r->max_wh != CF_NONE ||
                    r->min_current_ma != CF_NONE ||
                    r->max_current_ma != CF_NONE || r->min_power_w != CF_NONE ||
                    r->max_power_w != CF_NONE) {
                        fail(err, n,
                             "tariff %s element %u: kWh, power or current "
                             "restriction not supported",
                             t->tariff_id, i);
                        return -1;
                }
                if (r->start_time_min != CF_NONE &&
                    r->start_time_min == r->end_time_min) {
                        fail(err, n,
                             "tariff %s element %u: start_time == end_time "
                             "not supported",
                             t->tariff_id, i);
                        return -1;
                }
        }
        return 0;
}

typedef struct slice_ctx {
        const cf_tz *tz;
        int64_t start_ms;
} slice_ctx;

/* Do the restrictions hold at instant t? */
static bool holds(const cf_tariff_restrictions *r, const slice_ctx *c,
                  int64_t t)
{
        if (!r)
                return true;
        cf_civil cv;
        cf_tz_civil(c->tz, t, &cv);
        int64_t sec = cv.sec_of_day;
        if (r->start_time_min != CF_NONE || r->end_time_min != CF_NONE) {
                int64_t from =
                    r->start_time_min != CF_NONE ? r->start_time_min * 60 : 0;
                int64_t to = r->end_time_min != CF_NONE && r->end_time_min
                                 ? r->end_time_min * 60
                                 : 86400; /* none, or 00:00: end of day */
                bool in = from < to ? sec >= from && sec < to
                                    : sec >= from || sec < to;
                if (!in)
                        return false;
        }
        if (r->start_date != CF_NONE && cv.days < r->start_date)
                return false;
        if (r->end_date != CF_NONE && cv.days >= r->end_date)
                return false;
        if (r->n_day_of_week) {
                bool any = false;
                for (uint32_t i = 0; i < r->n_day_of_week; i++)
                        any |= r->day_of_week[i] == cv.wday;
                if (!any)
                        return false;
        }
        int64_t dur = t - c->start_ms;
        if (r->min_duration_s != CF_NONE && dur < r->min_duration_s * 1000)
                return false;
        if (r->max_duration_s != CF_NONE && dur >= r->max_duration_s * 1000)
                return false;
        return true;
}

/* The first component of dimension d in element e, or NULL. */
static const cf_price_component *component_of(const cf_tariff_element *e, int d)
{
        for (uint32_t j = 0; j < e->n_price_components; j++)
                if (e->price_components[j].type == d)
                        return &e->price_components[j];
        return NULL;
}

/* Index of the first element pricing dimension d at instant t, or -1. */
static int element_at(const cf_tariff *t, int d, const slice_ctx *c, int64_t at)
{
        for (uint32_t i = 0; i < t->n_elements; i++)
                if (component_of(&t->elements[i], d) &&
                    holds(t->elements[i].restrictions, c, at))
                        return (int)i;
        return -1;
}

/* The register at instant t: knots k[0..n), times nondecreasing. */
static int64_t register_at(const cf_oracle_knot *k, size_t n, int64_t t)
{
        /* last knot with k.t <= t (k[0] is the start, t >= k[0].t) */
        size_t lo = 0, hi = n; /* answer in [lo, hi) */
        while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (k[mid].t_ms <= t)
                        lo = mid;
                else
                        hi = mid;
        }
        if (lo + 1 == n)
                return k[lo].wh;
        const cf_oracle_knot *a = &k[lo], *b = &k[lo + 1];
        return a->wh + (int64_t)((i128)(b->wh - a->wh) * (t - a->t_ms) /
                                 (b->t_ms - a->t_ms));
}

typedef struct pline {
        int dim;
        int64_t vat_bp;
        i128 num; /* micro-units x (Wh | ms | 1) */
        int64_t excl, vat, incl;
} pline;

#define MAX_LINES 16

typedef struct lines {
        pline l[MAX_LINES];
        int n;
} lines;

/* The line of (dim, vat), created in (dim, vat) order. */
static pline *line_of(lines *ls, int dim, int64_t vat)
{
        int i = 0;
        while (i < ls->n && (ls->l[i].dim < dim ||
                             (ls->l[i].dim == dim && ls->l[i].vat_bp < vat)))
                i++;
        if (i < ls->n && ls->l[i].dim == dim && ls->l[i].vat_bp == vat)
                return &ls->l[i];
        if (ls->n == MAX_LINES)
                abort();
        memmove(&ls->l[i + 1], &ls->l[i], (size_t)(ls->n - i) * sizeof(pline));
        ls->n++;
        memset(&ls->l[i], 0, sizeof(pline));
        ls->l[i].dim = dim;
        ls->l[i].vat_bp = vat;
        return &ls->l[i];
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

/* A line's three amounts from its excl. VAT amount (README: VAT is excl
 * times the rate, half up). */
static void set_excl(pline *l, int64_t excl)
{
        l->excl = excl;
        l->vat = half_up((i128)excl * l->vat_bp, 10000);
        l->incl = excl + l->vat;
}

/* ... or from its incl. VAT amount (README: VAT is incl x rate / (100% +
 * rate), half up; excl the rest). */
static void set_incl(pline *l, int64_t incl)
{
        l->incl = incl;
        l->vat = half_up((i128)incl * l->vat_bp, 10000 + l->vat_bp);
        l->excl = incl - l->vat;
}

/* README "Pricing", limits: the lines' excl. (or incl.) amounts are scaled
 * to add up to the limit, largest remainder first (ties to the earlier
 * line), one extra unit per line at most; the other amounts follow from
 * each line's new amount. An all-zero set gives the limit to the first
 * line, or to a new FLAT line at the site's VAT. */
static void apply_limit(lines *ls, bool on_incl, int64_t limit,
                        int64_t site_vat)
{
        int64_t sum = 0, amt[MAX_LINES];
        for (int i = 0; i < ls->n; i++)
                sum += on_incl ? ls->l[i].incl : ls->l[i].excl;
        if (sum == 0) {
                if (ls->n == 0)
                        line_of(ls, CF_DIM_FLAT, site_vat);
                for (int i = 0; i < ls->n; i++)
                        amt[i] = i == 0 ? limit : 0;
        } else {
                int64_t rem[MAX_LINES], given = 0;
                for (int i = 0; i < ls->n; i++) {
                        i128 p = (i128)limit *
                                 (on_incl ? ls->l[i].incl : ls->l[i].excl);
                        rem[i] = (int64_t)(p % sum);
                        amt[i] = (int64_t)(p / sum);
                        given += amt[i];
                }
                for (int64_t left = limit - given; left > 0; left--) {
                        int best = -1;
                        for (int i = 0; i < ls->n; i++)
                                if (rem[i] >= 0 &&
                                    (best < 0 || rem[i] > rem[best]))
                                        best = i;
                        amt[best]++;
                        rem[best] = -1; /* one each */
                }
        }
        for (int i = 0; i < ls->n; i++) {
                if (on_incl)
                        set_incl(&ls->l[i], amt[i]);
                else
                        set_excl(&ls->l[i], amt[i]);
        }
}

/* The limit that bounds total, or total itself: below min, min; above
 * max, max. */
static int64_t bounded(int64_t total, int64_t min, int64_t max)
{
        if (min != CF_NONE && total < min)
                return min;
        if (max != CF_NONE && total > max)
                return max;
        return total;
}

int cf_oracle_price_session(const cf_tariff *t, const cf_tz *tz,
                            int64_t site_vat_bp, int64_t start_ms,
                            int64_t stop_ms, int64_t start_wh,
                            const cf_oracle_knot *knots, size_t n_knots,
                            cf_oracle_price *out, char *err, size_t err_size)
{
        if (check_tariff(t, err, err_size))
                return -1;
        if (stop_ms < start_ms) {
                fail(err, err_size, "stop before start");
                return -1;
        }
        int exp = minor_exponent(t->currency);
        int64_t minor_div = 1; /* micro-units per minor unit */
        for (int i = exp; i < 6; i++)
                minor_div *= 10;

        /* The knots: the start, then the readings after it. */
        cf_oracle_knot *k = cf_malloc((n_knots + 1) * sizeof(*k));
        size_t nk = 0;
        k[nk++] = (cf_oracle_knot){ start_ms, start_wh };
        for (size_t i = 0; i < n_knots; i++) {
                if (knots[i].t_ms <= start_ms)
                        continue;
                if (knots[i].t_ms > stop_ms || knots[i].t_ms < k[nk - 1].t_ms ||
                    knots[i].wh < k[nk - 1].wh) {
                        fail(err, err_size,
                             "knot %zu (%lld ms, %lld Wh) out of order or "
                             "past the stop",
                             i, (long long)knots[i].t_ms,
                             (long long)knots[i].wh);
                        free(k);
                        return -1;
                }
                k[nk++] = knots[i];
        }
        int64_t final_wh = k[nk - 1].wh;
        int64_t charge_end = start_ms;
        if (final_wh > start_wh) {
                for (size_t i = 1; i < nk; i++) {
                        if (k[i].wh >= final_wh) {
                                charge_end = k[i].t_ms;
                                break;
                        }
                }
        }

        /* The cuts. */
        size_t cap = 64, nc = 0;
        int64_t *cut = cf_malloc(cap * sizeof(*cut));
#define CUT(x)                                                                 \
        do {                                                                   \
                int64_t x_ = (x);                                              \
                if (x_ >= start_ms && x_ <= stop_ms) {                         \
                        if (nc == cap)                                         \
                                cut = cf_realloc(cut,                          \
                                                 (cap *= 2) * sizeof(*cut));   \
                        cut[nc++] = x_;                                        \
                }                                                              \
        } while (0)
        CUT(start_ms);
        CUT(stop_ms);
        CUT(charge_end);
        for (size_t i = 0; i < nk; i++)
                CUT(k[i].t_ms);
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_restrictions *r = t->elements[i].restrictions;
                if (r && r->min_duration_s != CF_NONE)
                        CUT(start_ms + r->min_duration_s * 1000);
                if (r && r->max_duration_s != CF_NONE)
                        CUT(start_ms + r->max_duration_s * 1000);
        }
        for (int64_t m = (start_ms / MINUTE_MS + 1) * MINUTE_MS; m < stop_ms;
             m += MINUTE_MS)
                CUT(m);
#undef CUT
        qsort(cut, nc, sizeof(*cut), cmp_i64);

        slice_ctx c = { tz, start_ms };
        lines ls;
        ls.n = 0;
        int64_t vol[CF_DIM__CNT] = { 0 };
        int last_el[CF_DIM__CNT], any_el[CF_DIM__CNT];
        for (int d = 0; d < CF_DIM__CNT; d++)
                last_el[d] = any_el[d] = -1;
        bool flat_done = false;
        int rc = 0;
        for (size_t i = 0; i + 1 < nc && !rc; i++) {
                int64_t a = cut[i], b = cut[i + 1];
                if (a == b)
                        continue;
                if (cf_tz_offset(tz, a) % 60 || cf_tz_offset(tz, b - 1) % 60) {
                        fail(err, err_size, "zone %s: offset not whole minutes",
                             cf_tz_name(tz));
                        rc = -1;
                        break;
                }
                bool charging = a < charge_end;
                for (int d = 0; d < CF_DIM__CNT; d++) {
                        int e = element_at(t, d, &c, a);
                        if (e != element_at(t, d, &c, b - 1)) {
                                fail(err, err_size,
                                     "tariff %s: dimension %d changes inside "
                                     "[%lld, %lld)",
                                     t->tariff_id, d, (long long)a,
                                     (long long)b);
                                rc = -1;
                                break;
                        }
                        if (e < 0)
                                continue;
                        int64_t v;
                        if (d == CF_DIM_FLAT) {
                                if (flat_done)
                                        continue;
                                flat_done = true;
                                v = 1;
                        } else if (d == CF_DIM_ENERGY) {
                                v = register_at(k, nk, b) -
                                    register_at(k, nk, a);
                        } else if (d == CF_DIM_TIME) {
                                if (!charging)
                                        continue;
                                v = b - a;
                        } else {
                                if (charging)
                                        continue;
                                v = b - a;
                        }
                        const cf_price_component *pc =
                            component_of(&t->elements[e], d);
                        int64_t vat =
                            pc->vat_bp != CF_NONE ? pc->vat_bp : site_vat_bp;
                        line_of(&ls, d, vat)->num += (i128)v * pc->price_micros;
                        vol[d] += v;
                        any_el[d] = e;
                        if (v > 0)
                                last_el[d] = e;
                }
        }
        free(cut);
        if (rc) {
                free(k);
                return rc;
        }
        if (start_ms == stop_ms) {
                /* Zero length: the flat fee still applies. */
                int e = element_at(t, CF_DIM_FLAT, &c, start_ms);
                if (e >= 0) {
                        const cf_price_component *pc =
                            component_of(&t->elements[e], CF_DIM_FLAT);
                        int64_t vat =
                            pc->vat_bp != CF_NONE ? pc->vat_bp : site_vat_bp;
                        line_of(&ls, CF_DIM_FLAT, vat)->num += pc->price_micros;
                }
        }

        /* step_size (OCPI 2.2.1, CDRs module, "Step_size"): once for
         * ENERGY, once for TIME and PARKING_TIME together; the total of
         * the dimension is rounded up to the step of the element that
         * priced its last slice with volume, the extra at that element's
         * price. Of TIME and PARKING_TIME only the later one is rounded:
         * parking comes after charging, so PARKING_TIME if any parking
         * slice was priced, TIME otherwise ("step_size is only taken into
         * account for the total parking duration"). */
        for (int d = 0; d < CF_DIM__CNT; d++) {
                int e = last_el[d] >= 0 ? last_el[d] : any_el[d];
                if (d == CF_DIM_FLAT || e < 0)
                        continue;
                if (d == CF_DIM_TIME && any_el[CF_DIM_PARKING_TIME] >= 0)
                        continue;
                const cf_price_component *pc = component_of(&t->elements[e], d);
                int64_t step =
                    d == CF_DIM_ENERGY ? pc->step_size : pc->step_size * 1000;
                int64_t extra = (step - vol[d] % step) % step;
                int64_t vat = pc->vat_bp != CF_NONE ? pc->vat_bp : site_vat_bp;
                line_of(&ls, d, vat)->num += (i128)extra * pc->price_micros;
        }

        /* Round each line once: prices excl. VAT round the excl. amount,
         * prices incl. VAT the incl. amount. */
        for (int i = 0; i < ls.n; i++) {
                pline *l = &ls.l[i];
                i128 per = l->dim == CF_DIM_ENERGY ? 1000
                           : l->dim == CF_DIM_FLAT ? 1
                                                   : HOUR_MS;
                int64_t a = half_up(l->num, per * minor_div);
                if (t->prices_include_vat)
                        set_incl(l, a);
                else
                        set_excl(l, a);
        }
        /* Limits: excl. VAT first, then incl. VAT; both hold. */
        int64_t sum = 0;
        for (int i = 0; i < ls.n; i++)
                sum += ls.l[i].excl;
        int64_t lim = bounded(sum, t->min_price_minor, t->max_price_minor);
        if (lim != sum)
                apply_limit(&ls, false, lim, site_vat_bp);
        bool limited = lim != sum;
        sum = 0;
        for (int i = 0; i < ls.n; i++)
                sum += ls.l[i].incl;
        lim = bounded(sum, t->min_price_incl_minor, t->max_price_incl_minor);
        if (lim != sum)
                apply_limit(&ls, true, lim, site_vat_bp);
        limited |= lim != sum;
        memset(out, 0, sizeof(*out));
        out->limited = limited;
        for (int i = 0; i < ls.n; i++) {
                out->excl_vat += ls.l[i].excl;
                out->vat += ls.l[i].vat;
        }
        out->incl_vat = out->excl_vat + out->vat;
        out->charge_end_ms = charge_end;
        out->energy_wh = final_wh - start_wh;
        free(k);
        return 0;
}

/* The plan by charger group, as schemas/site.avsc says: the charger's
 * group from Site.charger_groups; of the version's charger_plans for that
 * group, the first for the session's user group, else the first for any
 * user (user_group null); NULL if none (the user group's plan then). */
static const cf_tariff *by_charger(const cf_site *site,
                                   const cf_price_version *pv,
                                   const char *charger, const char *group)
{
        const char *cg = NULL;
        for (uint32_t i = 0; charger && i < site->n_charger_groups; i++)
                if (!strcmp(site->charger_groups[i].charger_id, charger)) {
                        cg = site->charger_groups[i].group;
                        break;
                }
        if (!cg)
                return NULL;
        for (int pass = 0; pass < 2; pass++)
                for (uint32_t i = 0; i < pv->n_charger_plans; i++) {
                        const cf_charger_plan *cp = &pv->charger_plans[i];
                        if (strcmp(cp->charger_group, cg))
                                continue;
                        if (pass == 0 && cp->user_group && group &&
                            !strcmp(cp->user_group, group))
                                return &cp->tariff;
                        if (pass == 1 && !cp->user_group)
                                return &cp->tariff;
                }
        return NULL;
}

/* ---- loading the run ------------------------------------------------------
 */

typedef struct reading {
        int64_t t_ms, wh, seq;
        uint64_t eid; /* FNV-1a of the event id */
} reading;

typedef struct rvec {
        reading *p;
        size_t n, cap;
} rvec;

struct cf_oracle {
        cf_oracle_session *s;
        size_t n;
        json_t *by_id; /* session id -> index */
        cf_oracle_total *tot;
        size_t nt, cap_t;
        json_t *by_key; /* total key -> index */
};

static uint64_t fnv1a(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ULL;
        for (; *s; s++) {
                h ^= (uint8_t)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

static int cmp_reading(const void *a, const void *b)
{
        const reading *x = a, *y = b;
        if (x->t_ms != y->t_ms)
                return x->t_ms < y->t_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *jstr(json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static int64_t jint(json_t *o, const char *k)
{
        return json_integer_value(json_object_get(o, k));
}

/* Adds a priced session to its tenant|party|period total. */
static int add_total(cf_oracle *o, const cf_oracle_session *s, char *err,
                     size_t n)
{
        char key[512];
        snprintf(key, sizeof(key), "%s|%s|%s", s->tenant, s->party, s->period);
        json_t *ix = json_object_get(o->by_key, key);
        cf_oracle_total *t;
        if (ix) {
                t = &o->tot[json_integer_value(ix)];
                if (strcmp(t->currency, s->currency)) {
                        fail(err, n, "%s: sessions in %s and %s", key,
                             t->currency, s->currency);
                        return -1;
                }
        } else {
                if (o->nt == o->cap_t) {
                        o->cap_t = o->cap_t ? o->cap_t * 2 : 256;
                        o->tot = cf_realloc(o->tot, o->cap_t * sizeof(*o->tot));
                }
                json_object_set_new(o->by_key, key,
                                    json_integer((json_int_t)o->nt));
                t = &o->tot[o->nt++];
                memset(t, 0, sizeof(*t));
                t->key = cf_strdup(key);
                t->currency = cf_strdup(s->currency);
        }
        t->sessions++;
        t->energy_wh += s->energy_wh;
        t->excl_vat += s->excl_vat;
        t->vat += s->vat;
        t->incl_vat += s->incl_vat;
        return 0;
}

cf_oracle *cf_oracle_load(const char *genfile, const char *truth, char *err,
                          size_t err_size)
{
        cf_oracle *o = cf_calloc(1, sizeof(*o));
        o->by_id = json_object();
        o->by_key = json_object();
        json_t *tlines = json_array(); /* truth session lines, in order */
        json_t *bad = json_object();   /* event ids of faults with a reason */
        cf_registry *reg = NULL;
        cf_genfile_reader *r = NULL;
        cf_arena sites_arena, tmp;
        cf_arena_init(&sites_arena, 0);
        cf_arena_init(&tmp, 0);
        json_t *site_ix = json_object(); /* site id -> index in sites */
        const cf_site **sites = NULL;
        size_t n_sites = 0;
        rvec *rv = NULL;
        int rc = -1;

        /* The truth. */
        FILE *f = fopen(truth, "r");
        if (!f) {
                fail(err, err_size, "cannot open %s", truth);
                goto out;
        }
        char *buf = NULL;
        size_t cap = 0;
        while (getline(&buf, &cap, f) > 0) {
                json_t *j = json_loads(buf, 0, NULL);
                if (!j) {
                        fail(err, err_size, "%s: bad line", truth);
                        fclose(f);
                        free(buf);
                        goto out;
                }
                const char *type = jstr(j, "type");
                if (type && !strcmp(type, "session")) {
                        json_object_set_new(
                            o->by_id, jstr(j, "session_id"),
                            json_integer((json_int_t)json_array_size(tlines)));
                        json_array_append(tlines, j);
                } else if (type && !strcmp(type, "fault") &&
                           json_is_string(json_object_get(j, "reason")) &&
                           jstr(j, "event_id")) {
                        json_object_set_new(bad, jstr(j, "event_id"),
                                            json_true());
                }
                json_decref(j);
        }
        free(buf);
        fclose(f);
        o->n = json_array_size(tlines);
        o->s = cf_calloc(o->n ? o->n : 1, sizeof(*o->s));
        rv = cf_calloc(o->n ? o->n : 1, sizeof(*rv));

        /* The plans and the readings. */
        if (cf_registry_new(&reg, err, err_size))
                goto out;
        if (cf_genfile_reader_open(&r, genfile, err, err_size))
                goto out;
        int t_sites = cf_genfile_reader_topic_index(r, "billing.sites");
        int t_meter = cf_genfile_reader_topic_index(r, "charging.meter");
        cf_genfile_rec rec;
        while (cf_genfile_next(r, &rec) == CF_OK) {
                if ((int)rec.topic == t_sites) {
                        cf_site *s = cf_arena_alloc(&sites_arena, sizeof(*s));
                        if (cf_decode(reg, CF_RT_SITE, rec.value, rec.value_len,
                                      &sites_arena, s, NULL)) {
                                fail(err, err_size, "a site does not decode");
                                goto out;
                        }
                        json_t *ix = json_object_get(site_ix, s->site_id);
                        if (ix) { /* a later value replaces it */
                                sites[json_integer_value(ix)] = s;
                                continue;
                        }
                        json_object_set_new(site_ix, s->site_id,
                                            json_integer((json_int_t)n_sites));
                        sites =
                            cf_realloc(sites, (n_sites + 1) * sizeof(*sites));
                        sites[n_sites++] = s;
                } else if ((int)rec.topic == t_meter) {
                        cf_meter_reading m;
                        cf_arena_reset(&tmp);
                        if (cf_decode(reg, CF_RT_METER_READING, rec.value,
                                      rec.value_len, &tmp, &m, NULL))
                                continue; /* corrupt bytes */
                        if (!m.session_id || json_object_get(bad, m.event_id))
                                continue; /* invalid or orphan */
                        json_t *ix = json_object_get(o->by_id, m.session_id);
                        if (!ix)
                                continue; /* no real session */
                        rvec *v = &rv[json_integer_value(ix)];
                        if (v->n == v->cap) {
                                v->cap = v->cap ? v->cap * 2 : 64;
                                v->p = cf_realloc(v->p, v->cap * sizeof(*v->p));
                        }
                        v->p[v->n++] = (reading){ m.time_ms, m.energy_wh,
                                                  m.seq_no, fnv1a(m.event_id) };
                }
        }

        /* Price every session. */
        for (size_t i = 0; i < o->n; i++) {
                json_t *j = json_array_get(tlines, i);
                cf_oracle_session *s = &o->s[i];
                rvec *v = &rv[i];
                s->session_id = cf_strdup(jstr(j, "session_id"));
                s->tenant = cf_strdup(jstr(j, "tenant"));
                s->site = cf_strdup(jstr(j, "site"));
                s->party = cf_strdup(jstr(j, "user") ? jstr(j, "user")
                                                     : jstr(j, "site"));
                json_t *six = json_object_get(site_ix, s->site);
                if (!six) {
                        fail(err, err_size, "session %s: site %s unpublished",
                             s->session_id, s->site);
                        goto out;
                }
                const cf_site *site = sites[json_integer_value(six)];
                const cf_tz *tz = cf_tz_get(site->time_zone);
                if (!tz) {
                        fail(err, err_size, "zone %s unknown", site->time_zone);
                        goto out;
                }
                /* Readings in time order, repeats dropped. */
                qsort(v->p, v->n, sizeof(*v->p), cmp_reading);
                size_t w = 0;
                for (size_t x = 0; x < v->n; x++) {
                        if (w && v->p[w - 1].seq == v->p[x].seq) {
                                if (v->p[w - 1].eid != v->p[x].eid ||
                                    v->p[w - 1].wh != v->p[x].wh) {
                                        fail(err, err_size,
                                             "session %s: two readings with "
                                             "seq_no %lld",
                                             s->session_id,
                                             (long long)v->p[x].seq);
                                        goto out;
                                }
                                continue;
                        }
                        v->p[w++] = v->p[x];
                }
                v->n = w;
                s->start_ms = jint(j, "start_ms");
                int64_t start_wh = jint(j, "start_wh");
                cf_oracle_knot *k =
                    cf_malloc((v->n + 1) * sizeof(cf_oracle_knot));
                size_t nk = 0;
                for (size_t x = 0; x < v->n; x++)
                        k[nk++] = (cf_oracle_knot){ v->p[x].t_ms, v->p[x].wh };
                if (json_is_true(json_object_get(j, "stop_lost"))) {
                        /* Closed from its last reading. */
                        s->stop_ms = nk ? k[nk - 1].t_ms : s->start_ms;
                } else {
                        s->stop_ms = jint(j, "stop_ms");
                        k[nk++] =
                            (cf_oracle_knot){ s->stop_ms, jint(j, "stop_wh") };
                }
                const cf_price_version *pv =
                    cf_site_version_at(site, s->start_ms);
                if (!pv) {
                        fail(err, err_size, "session %s: no price version",
                             s->session_id);
                        free(k);
                        goto out;
                }
                const char *group = jstr(j, "group");
                if (!strcmp(group, "unauthenticated"))
                        group = NULL;
                const cf_tariff *tf =
                    by_charger(site, pv, jstr(j, "charger"), group);
                s->charger_plan = tf != NULL;
                if (!tf)
                        tf = cf_version_tariff(pv, group);
                s->tariff_id = cf_strdup(tf->tariff_id);
                s->prices_incl_vat = tf->prices_include_vat;
                cf_oracle_price p;
                char perr[256];
                int prc = cf_oracle_price_session(
                    tf, tz, site->vat_bp, s->start_ms, s->stop_ms, start_wh, k,
                    nk, &p, perr, sizeof(perr));
                free(k);
                if (prc) {
                        fail(err, err_size, "session %s: %s", s->session_id,
                             perr);
                        goto out;
                }
                if (p.energy_wh != jint(j, "energy_wh")) {
                        fail(err, err_size,
                             "session %s: readings give %lld Wh, truth %lld",
                             s->session_id, (long long)p.energy_wh,
                             (long long)jint(j, "energy_wh"));
                        goto out;
                }
                s->currency = cf_strdup(tf->currency);
                s->charge_end_ms = p.charge_end_ms;
                s->energy_wh = p.energy_wh;
                s->excl_vat = p.excl_vat;
                s->limited = p.limited;
                s->vat = p.vat;
                s->incl_vat = p.incl_vat;
                int64_t ps, pe;
                cf_period_of(tz, site->billing_period, s->stop_ms, &ps, &pe,
                             s->period);
                if (add_total(o, s, err, err_size))
                        goto out;
        }
        rc = 0;
out:
        if (rv)
                for (size_t i = 0; i < o->n; i++)
                        free(rv[i].p);
        free(rv);
        free(sites);
        json_decref(site_ix);
        json_decref(tlines);
        json_decref(bad);
        cf_genfile_reader_close(r);
        cf_registry_destroy(reg);
        cf_arena_destroy(&sites_arena);
        cf_arena_destroy(&tmp);
        if (rc) {
                cf_oracle_free(o);
                return NULL;
        }
        return o;
}

void cf_oracle_free(cf_oracle *o)
{
        if (!o)
                return;
        for (size_t i = 0; i < o->n; i++) {
                cf_oracle_session *s = &o->s[i];
                free(s->session_id);
                free(s->tenant);
                free(s->site);
                free(s->party);
                free(s->currency);
                free(s->tariff_id);
        }
        for (size_t i = 0; i < o->nt; i++) {
                free(o->tot[i].key);
                free(o->tot[i].currency);
        }
        free(o->s);
        free(o->tot);
        json_decref(o->by_id);
        json_decref(o->by_key);
        free(o);
}

size_t cf_oracle_n_sessions(const cf_oracle *o)
{
        return o->n;
}

const cf_oracle_session *cf_oracle_session_at(const cf_oracle *o, size_t i)
{
        return i < o->n ? &o->s[i] : NULL;
}

const cf_oracle_session *cf_oracle_find(const cf_oracle *o,
                                        const char *session_id)
{
        json_t *ix = json_object_get(o->by_id, session_id);
        return ix ? &o->s[json_integer_value(ix)] : NULL;
}

size_t cf_oracle_n_totals(const cf_oracle *o)
{
        return o->nt;
}

const cf_oracle_total *cf_oracle_total_at(const cf_oracle *o, size_t i)
{
        return i < o->nt ? &o->tot[i] : NULL;
}

const cf_oracle_total *cf_oracle_total_find(const cf_oracle *o, const char *key)
{
        json_t *ix = json_object_get(o->by_key, key);
        return ix ? &o->tot[json_integer_value(ix)] : NULL;
}
