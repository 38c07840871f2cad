/*
 * tariff.c: the pricing engine (see tariff.h for the contract).
 *
 * A session is cut at every instant where some restriction can change its
 * answer: charging end, start + min/max_duration, the instants the energy
 * register crosses start + min/max_kwh (exact, on the integer
 * interpolation), local midnights and the elements' times of day (walked
 * piece by piece between the zone's offset changes, so DST days have 23 or
 * 25 hours), and, only if some element restricts power or current, the
 * readings. Each piece gets the first matching element per dimension;
 * consecutive pieces with the same elements form one charging period.
 * Amounts are exact rationals (int128) until each line is rounded once.
 */
#include "tariff.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128;

#define MS_PER_DAY  86400000LL
#define MS_PER_HOUR 3600000LL

/* ---- validation --------------------------------------------------------- */

/* "2026-03-29T01:30:00Z" (".250" added when not whole seconds). */
static void fmt_utc(int64_t ms, char *buf, size_t size)
{
        int64_t days = ms / MS_PER_DAY - (ms % MS_PER_DAY < 0);
        int64_t in_day = ms - days * MS_PER_DAY;
        int32_t y, m, d;
        cf_civil_from_days(days, &y, &m, &d);
        int64_t s = in_day / 1000;
        if (in_day % 1000)
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         (int)y, (int)m, (int)d, (int)(s / 3600),
                         (int)(s / 60 % 60), (int)(s % 60),
                         (int)(in_day % 1000));
        else
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y,
                         (int)m, (int)d, (int)(s / 3600), (int)(s / 60 % 60),
                         (int)(s % 60));
}

static cf_err_t fail(char *errstr, size_t size, cf_err_t err, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static cf_err_t fail(char *errstr, size_t size, cf_err_t err, const char *fmt,
                     ...)
{
        if (errstr && size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, size, fmt, ap);
                va_end(ap);
        }
        return err;
}

static bool opt_nonneg(int64_t v)
{
        return v == CF_NONE || v >= 0;
}

cf_err_t cf_tariff_validate(const cf_tariff *t, char *errstr,
                            size_t errstr_size)
{
        if (cf_money_currency_exp(t->currency) < 0)
                return fail(errstr, errstr_size, CF_ERR_TARIFF,
                            "currency: unknown ISO 4217 code '%s'",
                            t->currency ? t->currency : "(null)");
        if (t->n_elements == 0 || !t->elements)
                return fail(errstr, errstr_size, CF_ERR_TARIFF,
                            "elements: at least one element is required");
        if (t->n_elements > CF_TARIFF_MAX_ELEMENTS)
                return fail(errstr, errstr_size, CF_ERR_TARIFF,
                            "elements: more than %d elements are not "
                            "supported",
                            CF_TARIFF_MAX_ELEMENTS);
        if (!opt_nonneg(t->min_price_minor) ||
            !opt_nonneg(t->max_price_minor) ||
            !opt_nonneg(t->min_price_incl_minor) ||
            !opt_nonneg(t->max_price_incl_minor))
                return fail(errstr, errstr_size, CF_ERR_TARIFF,
                            "min_price/max_price: must not be negative");
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_element *e = &t->elements[i];
                if (e->n_price_components == 0 || !e->price_components)
                        return fail(errstr, errstr_size, CF_ERR_TARIFF,
                                    "elements[%u].price_components: at least "
                                    "one component is required",
                                    i);
                for (uint32_t j = 0; j < e->n_price_components; j++) {
                        const cf_price_component *c = &e->price_components[j];
                        const char *bad = NULL;
                        if (c->type < 0 || c->type >= CF_DIM__CNT)
                                bad = "type: unknown dimension";
                        else if (c->price_micros < 0)
                                bad = "price: must not be negative";
                        else if (c->type != CF_DIM_FLAT && c->step_size < 1)
                                bad = "step_size: must be >= 1";
                        else if (c->step_size > CF_TARIFF_MAX_STEP)
                                bad = "step_size: too large (at most "
                                      "1000000000)";
                        else if (c->vat_bp != CF_NONE &&
                                 (c->vat_bp < 0 || c->vat_bp > 10000))
                                bad = "vat: must be 0..100 percent";
                        if (bad)
                                return fail(errstr, errstr_size, CF_ERR_TARIFF,
                                            "elements[%u].price_components[%u]"
                                            ".%s",
                                            i, j, bad);
                }
                const cf_tariff_restrictions *r = e->restrictions;
                if (!r)
                        continue;
                const char *bad = NULL;
                if (r->start_time_min != CF_NONE &&
                    (r->start_time_min < 0 || r->start_time_min > 1439))
                        bad = "start_time: must be 00:00..23:59";
                else if (r->end_time_min != CF_NONE &&
                         (r->end_time_min < 0 || r->end_time_min > 1439))
                        bad = "end_time: must be 00:00..23:59";
                else if (!opt_nonneg(r->min_wh) || !opt_nonneg(r->max_wh) ||
                         !opt_nonneg(r->min_current_ma) ||
                         !opt_nonneg(r->max_current_ma) ||
                         !opt_nonneg(r->min_power_w) ||
                         !opt_nonneg(r->max_power_w) ||
                         !opt_nonneg(r->min_duration_s) ||
                         !opt_nonneg(r->max_duration_s))
                        bad = "min_*/max_*: must not be negative";
                else if (r->n_day_of_week && !r->day_of_week)
                        bad = "day_of_week: missing";
                for (uint32_t k = 0; !bad && k < r->n_day_of_week; k++)
                        if (r->day_of_week[k] < CF_MONDAY ||
                            r->day_of_week[k] > CF_SUNDAY)
                                bad = "day_of_week: unknown day";
                if (bad)
                        return fail(errstr, errstr_size, CF_ERR_TARIFF,
                                    "elements[%u].restrictions.%s", i, bad);
        }
        return CF_OK;
}

/* ---- session timeline --------------------------------------------------- */

/* A compiled element: its first component per dimension and restrictions
 * in the units the matcher compares. */
typedef struct elem {
        const cf_price_component *comp[CF_DIM__CNT];
        const cf_tariff_restrictions *r;
        bool has_tod;
        bool tod_wrap;
        int32_t tod_from, tod_to; /* seconds of the day */
        uint8_t dow_mask;         /* bit per cf_weekday; 0x7f: any */
} elem;

/* The state a piece of the session is matched against. */
typedef struct probe {
        int64_t dur_ms;
        int64_t wh; /* energy so far */
        int64_t power_w;
        int64_t current_ma;
        int64_t days; /* local date */
        int32_t sod;  /* local second of the day */
        int32_t wday;
} probe;

typedef struct timeline {
        const cf_meter_point *pts; /* readings in (start, stop] */
        uint32_t nk;               /* knots: start plus readings */
        int64_t start, start_wh;
} timeline;

/* a * b / c, rounded toward zero, for a, b >= 0 and c > 0; 64-bit when
 * the product fits (the common case), 128-bit otherwise. */
static inline int64_t muldiv(int64_t a, int64_t b, int64_t c)
{
        if (a < (1LL << 31) && b < (1LL << 31))
                return a * b / c;
        return (int64_t)((i128)a * b / c);
}

static inline int64_t kt(const timeline *tl, uint32_t j)
{
        return j ? tl->pts[j - 1].t_ms : tl->start;
}

static inline int64_t ke(const timeline *tl, uint32_t j)
{
        return j ? tl->pts[j - 1].energy_wh : tl->start_wh;
}

/* Largest knot index j with kt(j) <= t (0 if none). */
static uint32_t knot_at(const timeline *tl, int64_t t)
{
        uint32_t lo = 0, hi = tl->nk; /* first with kt > t */
        while (lo < hi) {
                uint32_t mid = (lo + hi) / 2;
                if (kt(tl, mid) <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo ? lo - 1 : 0;
}

/* Energy register at t: linear between knots, rounded down. */
static int64_t energy_at(const timeline *tl, int64_t t)
{
        if (t <= tl->start)
                return tl->start_wh;
        uint32_t j = knot_at(tl, t);
        if (j + 1 >= tl->nk)
                return ke(tl, j);
        int64_t t0 = kt(tl, j), t1 = kt(tl, j + 1);
        int64_t e0 = ke(tl, j), e1 = ke(tl, j + 1);
        return e0 + muldiv(e1 - e0, t - t0, t1 - t0);
}

/* First instant at which the register reaches wh, or INT64_MAX. */
static int64_t energy_reached(const timeline *tl, int64_t wh)
{
        if (wh <= tl->start_wh)
                return tl->start;
        for (uint32_t j = 1; j < tl->nk; j++) {
                if (ke(tl, j) < wh)
                        continue;
                int64_t t0 = kt(tl, j - 1), t1 = kt(tl, j);
                int64_t e0 = ke(tl, j - 1), e1 = ke(tl, j);
                if (t1 == t0)
                        return t1;
                i128 num = (i128)(wh - e0) * (t1 - t0);
                int64_t dt = (int64_t)((num + (e1 - e0) - 1) / (e1 - e0));
                return t0 + dt;
        }
        return INT64_MAX;
}

/* Power and current of interval j, (kt(j - 1), kt(j)]: the reading's own
 * values, or the average power from the energy delta. */
static void interval_vals(const timeline *tl, uint32_t j, int64_t *power_w,
                          int64_t *current_ma)
{
        const cf_meter_point *p = &tl->pts[j - 1];
        *current_ma = p->current_ma;
        if (p->power_w != CF_NONE) {
                *power_w = p->power_w;
                return;
        }
        int64_t t0 = kt(tl, j - 1), t1 = kt(tl, j);
        if (t1 > t0)
                *power_w =
                    muldiv(ke(tl, j) - ke(tl, j - 1), MS_PER_HOUR, t1 - t0);
        else
                *power_w = CF_NONE;
}

/* Power and current at t: of the interval ending at the first reading
 * after t; past the last reading, of the last interval. */
static void interval_at(const timeline *tl, int64_t t, int64_t *power_w,
                        int64_t *current_ma)
{
        *power_w = CF_NONE;
        *current_ma = CF_NONE;
        if (tl->nk < 2)
                return;
        uint32_t j = knot_at(tl, t) + 1;
        if (j >= tl->nk)
                j = tl->nk - 1;
        interval_vals(tl, j, power_w, current_ma);
}

/* ---- matching ----------------------------------------------------------- */

static void compile(const cf_tariff *t, elem *es)
{
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_element *te = &t->elements[i];
                elem *e = &es[i];
                memset(e, 0, sizeof(*e));
                for (uint32_t j = 0; j < te->n_price_components; j++) {
                        const cf_price_component *c = &te->price_components[j];
                        if (!e->comp[c->type])
                                e->comp[c->type] = c;
                }
                e->r = te->restrictions;
                e->dow_mask = 0x7f;
                if (!e->r)
                        continue;
                const cf_tariff_restrictions *r = e->r;
                if (r->start_time_min != CF_NONE ||
                    r->end_time_min != CF_NONE) {
                        int32_t from = r->start_time_min != CF_NONE
                                           ? (int32_t)r->start_time_min * 60
                                           : 0;
                        int32_t to =
                            r->end_time_min != CF_NONE && r->end_time_min != 0
                                ? (int32_t)r->end_time_min * 60
                                : 86400;
                        if (from != to && !(from == 0 && to == 86400)) {
                                e->has_tod = true;
                                e->tod_from = from;
                                e->tod_to = to;
                                e->tod_wrap = to < from;
                        }
                }
                if (r->n_day_of_week) {
                        e->dow_mask = 0;
                        for (uint32_t k = 0; k < r->n_day_of_week; k++)
                                e->dow_mask |=
                                    (uint8_t)(1u << r->day_of_week[k]);
                }
        }
}

static bool matches(const elem *e, const probe *p)
{
        const cf_tariff_restrictions *r = e->r;
        if (!r)
                return true;
        if (e->has_tod) {
                bool in = e->tod_wrap
                              ? (p->sod >= e->tod_from || p->sod < e->tod_to)
                              : (p->sod >= e->tod_from && p->sod < e->tod_to);
                if (!in)
                        return false;
        }
        if (!(e->dow_mask & (1u << p->wday)))
                return false;
        if (r->start_date != CF_NONE && p->days < r->start_date)
                return false;
        if (r->end_date != CF_NONE && p->days >= r->end_date)
                return false;
        if (r->min_wh != CF_NONE && p->wh < r->min_wh)
                return false;
        if (r->max_wh != CF_NONE && p->wh >= r->max_wh)
                return false;
        if (r->min_duration_s != CF_NONE &&
            p->dur_ms < r->min_duration_s * 1000)
                return false;
        if (r->max_duration_s != CF_NONE &&
            p->dur_ms >= r->max_duration_s * 1000)
                return false;
        if (r->min_power_w != CF_NONE &&
            (p->power_w == CF_NONE || p->power_w < r->min_power_w))
                return false;
        if (r->max_power_w != CF_NONE &&
            (p->power_w == CF_NONE || p->power_w >= r->max_power_w))
                return false;
        if (r->min_current_ma != CF_NONE &&
            (p->current_ma == CF_NONE || p->current_ma < r->min_current_ma))
                return false;
        if (r->max_current_ma != CF_NONE &&
            (p->current_ma == CF_NONE || p->current_ma >= r->max_current_ma))
                return false;
        return true;
}

/* ---- candidates --------------------------------------------------------- */

typedef struct cands {
        int64_t *v;
        uint32_t n, cap;
        cf_arena *a;
} cands;

static void cand_add(cands *c, int64_t t)
{
        if (c->n == c->cap) {
                uint32_t cap = c->cap ? c->cap * 2 : 32;
                int64_t *v = cf_arena_alloc(c->a, cap * sizeof(*v));
                if (c->n)
                        memcpy(v, c->v, c->n * sizeof(*v));
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = t;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
                q--;
        return q;
}

/* Local midnights and times of day in (start, stop), and the zone's offset
 * changes in between. */
static void local_cands(cands *c, const cf_tz *tz, int64_t start, int64_t stop,
                        const int32_t *secs, uint32_t n_secs)
{
        int64_t a = start;
        while (a < stop) {
                int32_t off = cf_tz_offset(tz, a);
                int64_t b = cf_tz_next_transition(tz, a);
                if (b > stop)
                        b = stop;
                else
                        cand_add(c, b);
                int64_t offms = (int64_t)off * 1000;
                int64_t d0 = floor_div(a + offms, MS_PER_DAY);
                int64_t d1 = floor_div(b - 1 + offms, MS_PER_DAY);
                for (int64_t d = d0; d <= d1; d++)
                        for (uint32_t k = 0; k < n_secs; k++) {
                                int64_t t = d * MS_PER_DAY +
                                            (int64_t)secs[k] * 1000 - offms;
                                if (t > a && t < b && t > start)
                                        cand_add(c, t);
                        }
                a = b;
        }
}

/* ---- periods ------------------------------------------------------------ */

typedef struct period {
        int64_t start, end;
        bool parking;
        int32_t el[CF_DIM__CNT];
        int64_t wh, ms, max_p, max_c;
        int64_t bill[CF_DIM__CNT]; /* billed volume */
        bool flat;
} period;

typedef struct line_acc {
        int32_t dim;
        int64_t vat_bp;
        int64_t volume;
        i128 exact; /* micro-units times the dimension's unit divisor */
        int64_t excl, vat, incl;
        i128 rem;
} line_acc;

static int64_t div_half_up(i128 x, i128 d)
{
        i128 q = x / d, r = x % d;
        if (2 * r >= d)
                q++;
        return (int64_t)q;
}

static int64_t vat_bp_of(const cf_price_component *c, int64_t dflt)
{
        return c->vat_bp != CF_NONE ? c->vat_bp : dflt;
}

static line_acc *line_get(line_acc *ls, uint32_t *n, int32_t dim,
                          int64_t vat_bp)
{
        for (uint32_t i = 0; i < *n; i++)
                if (ls[i].dim == dim && ls[i].vat_bp == vat_bp)
                        return &ls[i];
        line_acc *l = &ls[(*n)++];
        memset(l, 0, sizeof(*l));
        l->dim = dim;
        l->vat_bp = vat_bp;
        return l;
}

static int cmp_line(const void *a, const void *b)
{
        const line_acc *x = a, *y = b;
        return x->dim - y->dim; /* qsort is not stable: see the caller */
}

/* A line from its amount excl. VAT: VAT = excl x rate, half up. */
static void line_from_excl(line_acc *l, int64_t excl)
{
        l->excl = excl;
        l->vat = div_half_up((i128)excl * l->vat_bp, 10000);
        l->incl = l->excl + l->vat;
}

/* A line from its amount incl. VAT: VAT = incl x rate / (1 + rate), half
 * up; excl = incl - VAT. */
static void line_from_incl(line_acc *l, int64_t incl)
{
        l->incl = incl;
        l->vat = div_half_up((i128)incl * l->vat_bp, 10000 + l->vat_bp);
        l->excl = incl - l->vat;
}

/* Brings the lines' excl. (incl == false) or incl. amounts from sum to
 * total: scaled by total / sum, split by largest remainder (ties to the
 * earlier line), each line's other amounts derived again. With sum 0 the
 * total goes to the first line, or to a new FLAT line at dflt_vat. */
static void limit_lines(line_acc *ls, uint32_t *n, int64_t dflt_vat, bool incl,
                        int64_t sum, int64_t total)
{
        int64_t *amt = cf_malloc((*n + 1) * sizeof(*amt));
        if (sum == 0) {
                if (*n == 0) {
                        line_acc *l = line_get(ls, n, CF_DIM_FLAT, dflt_vat);
                        l->volume = 1;
                }
                for (uint32_t i = 0; i < *n; i++)
                        amt[i] = i ? 0 : total;
        } else {
                int64_t got = 0;
                for (uint32_t i = 0; i < *n; i++) {
                        i128 x = (i128)(incl ? ls[i].incl : ls[i].excl) * total;
                        amt[i] = (int64_t)(x / sum);
                        ls[i].rem = x % sum;
                        got += amt[i];
                }
                while (got < total) { /* fewer than n rounds */
                        uint32_t best = 0;
                        for (uint32_t i = 1; i < *n; i++)
                                if (ls[i].rem > ls[best].rem)
                                        best = i;
                        amt[best]++;
                        ls[best].rem = -1;
                        got++;
                }
        }
        for (uint32_t i = 0; i < *n; i++) {
                if (incl)
                        line_from_incl(&ls[i], amt[i]);
                else
                        line_from_excl(&ls[i], amt[i]);
        }
        free(amt);
}

cf_err_t cf_price_session(const cf_price_input *in, cf_arena *a,
                          cf_price_result *out, char *errstr,
                          size_t errstr_size)
{
        const cf_tariff *tf = in->tariff;
        memset(out, 0, sizeof(*out));
        cf_err_t err = cf_tariff_validate(tf, errstr, errstr_size);
        if (err)
                return err;
        if (!in->tz)
                return fail(errstr, errstr_size, CF_ERR_ARG, "no time zone");
        int64_t start = in->start_ms, stop = in->stop_ms;
        char t1[40], t2[40];
        if (stop < start) {
                fmt_utc(stop, t1, sizeof(t1));
                fmt_utc(start, t2, sizeof(t2));
                return fail(errstr, errstr_size, CF_ERR_ARG,
                            "stop %s is before start %s", t1, t2);
        }
        if (tf->start_ms != CF_NONE && start < tf->start_ms) {
                fmt_utc(start, t1, sizeof(t1));
                fmt_utc(tf->start_ms, t2, sizeof(t2));
                return fail(errstr, errstr_size, CF_ERR_NOT_FOUND,
                            "tariff %s is not valid at the session start %s: "
                            "it starts at %s",
                            tf->tariff_id ? tf->tariff_id : "", t1, t2);
        }
        if (tf->end_ms != CF_NONE && start >= tf->end_ms) {
                fmt_utc(start, t1, sizeof(t1));
                fmt_utc(tf->end_ms, t2, sizeof(t2));
                return fail(errstr, errstr_size, CF_ERR_NOT_FOUND,
                            "tariff %s is not valid at the session start %s: "
                            "it ended at %s",
                            tf->tariff_id ? tf->tariff_id : "", t1, t2);
        }
        int64_t cend =
            in->charging_end_ms == CF_NONE ? stop : in->charging_end_ms;
        if (cend < start)
                cend = start;
        if (cend > stop)
                cend = stop;
        int32_t exp = cf_money_currency_exp(tf->currency);

        /* The readings that count: (start, stop]. */
        timeline tl = { .start = start, .start_wh = in->start_wh };
        uint32_t i0 = 0, i1 = in->n_points;
        while (i0 < i1 && in->points[i0].t_ms <= start)
                i0++;
        while (i1 > i0 && in->points[i1 - 1].t_ms > stop)
                i1--;
        tl.pts = in->points + i0;
        tl.nk = i1 - i0 + 1;
        for (uint32_t j = 1; j < tl.nk; j++)
                if (kt(&tl, j) < kt(&tl, j - 1) || ke(&tl, j) < ke(&tl, j - 1))
                        return fail(errstr, errstr_size, CF_ERR_ARG,
                                    "reading %u: %s", i0 + j - 1,
                                    kt(&tl, j) < kt(&tl, j - 1)
                                        ? "out of time order"
                                        : "energy register went down");

        int64_t total_wh = ke(&tl, tl.nk - 1) - in->start_wh;

        /* Compile the elements and collect the instants where a
         * restriction may change its answer. */
        uint32_t ne = tf->n_elements;
        elem es[CF_TARIFF_MAX_ELEMENTS];
        compile(tf, es);
        cands c = { .a = a };
        bool use_readings = false, use_local = false, use_midnight = false;
        int32_t secs[2 * CF_TARIFF_MAX_ELEMENTS + 1];
        uint32_t n_secs = 0;
        if (cend > start && cend < stop)
                cand_add(&c, cend);
        for (uint32_t i = 0; i < ne; i++) {
                const cf_tariff_restrictions *r = es[i].r;
                if (!r)
                        continue;
                int64_t lim[2] = { r->min_duration_s, r->max_duration_s };
                for (int k = 0; k < 2; k++)
                        if (lim[k] != CF_NONE && lim[k] > 0 &&
                            lim[k] <= (stop - start) / 1000)
                                cand_add(&c, start + lim[k] * 1000);
                int64_t wh[2] = { r->min_wh, r->max_wh };
                for (int k = 0; k < 2; k++) {
                        if (wh[k] == CF_NONE || wh[k] > total_wh)
                                continue;
                        int64_t t = energy_reached(&tl, in->start_wh + wh[k]);
                        if (t > start && t < stop)
                                cand_add(&c, t);
                }
                if (r->min_power_w != CF_NONE || r->max_power_w != CF_NONE ||
                    r->min_current_ma != CF_NONE ||
                    r->max_current_ma != CF_NONE)
                        use_readings = true;
                if (r->start_date != CF_NONE || r->end_date != CF_NONE ||
                    r->n_day_of_week)
                        use_midnight = use_local = true;
                if (es[i].has_tod) {
                        use_local = true;
                        int32_t v[2] = { es[i].tod_from, es[i].tod_to % 86400 };
                        for (int k = 0; k < 2; k++) {
                                uint32_t m = 0;
                                while (m < n_secs && secs[m] != v[k])
                                        m++;
                                if (m == n_secs)
                                        secs[n_secs++] = v[k];
                        }
                }
        }
        if (use_midnight) {
                uint32_t m = 0;
                while (m < n_secs && secs[m] != 0)
                        m++;
                if (m == n_secs)
                        secs[n_secs++] = 0;
        }
        if (use_local)
                local_cands(&c, in->tz, start, stop, secs, n_secs);
        if (c.n > 1)
                qsort(c.v, c.n, sizeof(*c.v), cmp_i64);

        /* Walk the pieces between candidates, group them into periods. */
        uint32_t cap = c.n + (use_readings ? tl.nk : 0) + 2;
        period *ps = cf_arena_alloc(a, cap * sizeof(*ps));
        uint32_t np = 0;
        int32_t flat_el = -1;
        int32_t off = cf_tz_offset(in->tz, start);
        int64_t next_tr = cf_tz_next_transition(in->tz, start);
        uint32_t ci = 0, ri = 1;
        int64_t pos = start;
        while (pos < stop || (np == 0 && pos == stop)) {
                probe pr;
                pr.dur_ms = pos - start;
                pr.wh = energy_at(&tl, pos) - in->start_wh;
                bool parking = pos >= cend && cend < stop;
                if (parking) {
                        pr.power_w = 0;
                        pr.current_ma = 0;
                } else {
                        interval_at(&tl, pos, &pr.power_w, &pr.current_ma);
                }
                while (pos >= next_tr) {
                        off = cf_tz_offset(in->tz, next_tr);
                        next_tr = cf_tz_next_transition(in->tz, next_tr);
                }
                int64_t local = pos + (int64_t)off * 1000;
                pr.days = floor_div(local, MS_PER_DAY);
                pr.sod = (int32_t)((local - pr.days * MS_PER_DAY) / 1000);
                pr.wday = (int32_t)(((pr.days + 3) % 7 + 7) % 7);

                uint64_t mask = 0;
                for (uint32_t i = 0; i < ne; i++)
                        if (matches(&es[i], &pr))
                                mask |= 1ull << i;
                int32_t el[CF_DIM__CNT];
                for (int d = 0; d < CF_DIM__CNT; d++) {
                        el[d] = -1;
                        for (uint32_t i = 0; i < ne; i++)
                                if (es[i].comp[d] && (mask >> i & 1)) {
                                        el[d] = (int32_t)i;
                                        break;
                                }
                }
                if (parking)
                        el[CF_DIM_TIME] = -1;
                else
                        el[CF_DIM_PARKING_TIME] = -1;
                bool same = np > 0 && ps[np - 1].parking == parking &&
                            ps[np - 1].el[CF_DIM_ENERGY] == el[CF_DIM_ENERGY] &&
                            ps[np - 1].el[CF_DIM_TIME] == el[CF_DIM_TIME] &&
                            ps[np - 1].el[CF_DIM_PARKING_TIME] ==
                                el[CF_DIM_PARKING_TIME];
                if (!same) {
                        period *p = &ps[np++];
                        memset(p, 0, sizeof(*p));
                        p->start = pos;
                        p->parking = parking;
                        memcpy(p->el, el, sizeof(el));
                        p->el[CF_DIM_FLAT] = -1;
                }
                if (flat_el < 0 && el[CF_DIM_FLAT] >= 0) {
                        /* FLAT: once, in the first piece where it is on */
                        flat_el = el[CF_DIM_FLAT];
                        ps[np - 1].flat = true;
                        ps[np - 1].el[CF_DIM_FLAT] = flat_el;
                }
                /* next boundary */
                int64_t nx = stop;
                while (ci < c.n && c.v[ci] <= pos)
                        ci++;
                if (ci < c.n && c.v[ci] < nx)
                        nx = c.v[ci];
                if (use_readings) {
                        while (ri < tl.nk && kt(&tl, ri) <= pos)
                                ri++;
                        if (ri < tl.nk && kt(&tl, ri) < nx)
                                nx = kt(&tl, ri);
                }
                if (pos == stop)
                        break; /* empty session: one empty period */
                pos = nx;
        }
        for (uint32_t i = 0; i < np; i++)
                ps[i].end = i + 1 < np ? ps[i + 1].start : stop;

        /* Measured volumes, max power and current per period. */
        uint32_t kj = 1;
        for (uint32_t i = 0; i < np; i++) {
                period *p = &ps[i];
                p->wh = energy_at(&tl, p->end) - energy_at(&tl, p->start);
                p->ms = p->end - p->start;
                p->max_p = CF_NONE;
                p->max_c = CF_NONE;
                if (p->parking || tl.nk < 2)
                        continue;
                /* intervals (kt(j-1), kt(j)] overlapping [start, end),
                 * and the last one again past the last reading */
                while (kj < tl.nk && kt(&tl, kj) <= p->start)
                        kj++;
                for (uint32_t j = kj; j <= tl.nk; j++) {
                        uint32_t jj = j;
                        if (j == tl.nk) {
                                if (kt(&tl, tl.nk - 1) >= p->end)
                                        break;
                                jj = tl.nk - 1;
                        } else if (kt(&tl, j - 1) >= p->end) {
                                break;
                        }
                        int64_t pw, cu;
                        interval_vals(&tl, jj, &pw, &cu);
                        if (pw != CF_NONE &&
                            (p->max_p == CF_NONE || pw > p->max_p))
                                p->max_p = pw;
                        if (cu != CF_NONE &&
                            (p->max_c == CF_NONE || cu > p->max_c))
                                p->max_c = cu;
                }
        }

        /* Billed volumes. step_size (OCPI 2.2.1, CDRs module, "Step_size")
         * counts once per session for ENERGY and once for TIME and
         * PARKING_TIME together, on the total of the dimension, with the
         * step of the last element that priced it, the extra billed in that
         * element's period. Of the two time dimensions only the one priced
         * last is rounded: charging followed by priced parking bills the
         * charging time exactly and rounds the parking total up; TIME is
         * rounded only when no parking is priced. */
        static const int dims[3] = { CF_DIM_ENERGY, CF_DIM_TIME,
                                     CF_DIM_PARKING_TIME };
        bool parking_priced = false;
        for (uint32_t i = 0; i < np; i++)
                if (ps[i].parking && ps[i].el[CF_DIM_PARKING_TIME] >= 0)
                        parking_priced = true;
        for (int k = 0; k < 3; k++) {
                int d = dims[k];
                int64_t total = 0;
                int32_t last = -1, last_used = -1;
                for (uint32_t i = 0; i < np; i++) {
                        period *p = &ps[i];
                        if (p->el[d] < 0)
                                continue;
                        int64_t v = d == CF_DIM_ENERGY ? p->wh : p->ms;
                        p->bill[d] = v;
                        total += v;
                        last = (int32_t)i;
                        if (v > 0)
                                last_used = (int32_t)i;
                }
                if (last < 0 || (d == CF_DIM_TIME && parking_priced))
                        continue;
                if (last_used >= 0)
                        last = last_used;
                int64_t step = es[ps[last].el[d]].comp[d]->step_size;
                if (d != CF_DIM_ENERGY)
                        step *= 1000;
                int64_t billed = (total + step - 1) / step * step;
                ps[last].bill[d] += billed - total;
        }

        /* Lines: exact sums, rounded once. */
        line_acc *ls = cf_arena_alloc(a, (3 * np + 2) * sizeof(*ls));
        uint32_t nl = 0;
        i128 unit = 1;
        for (int32_t i = exp; i < 6; i++)
                unit *= 10; /* micro-units per minor unit */
        if (flat_el >= 0) {
                const cf_price_component *fc = es[flat_el].comp[CF_DIM_FLAT];
                line_acc *l = line_get(ls, &nl, CF_DIM_FLAT,
                                       vat_bp_of(fc, in->default_vat_bp));
                l->volume = 1;
                l->exact = fc->price_micros;
        }
        for (uint32_t i = 0; i < np; i++)
                for (int k = 0; k < 3; k++) {
                        int d = dims[k];
                        if (ps[i].el[d] < 0)
                                continue;
                        const cf_price_component *pc = es[ps[i].el[d]].comp[d];
                        line_acc *l = line_get(
                            ls, &nl, d, vat_bp_of(pc, in->default_vat_bp));
                        l->volume += ps[i].bill[d];
                        l->exact += (i128)ps[i].bill[d] * pc->price_micros;
                }
        /* stable order by dimension (insertion sort; few lines) */
        for (uint32_t i = 1; i < nl; i++)
                for (uint32_t j = i; j > 0 && cmp_line(&ls[j - 1], &ls[j]) > 0;
                     j--) {
                        line_acc x = ls[j];
                        ls[j] = ls[j - 1];
                        ls[j - 1] = x;
                }
        /* Each line rounded once: excl. VAT (then VAT = excl x rate), or,
         * with prices_include_vat, incl. VAT (then VAT split from it). */
        int64_t sum = 0;
        for (uint32_t i = 0; i < nl; i++) {
                i128 div = unit;
                if (ls[i].dim == CF_DIM_ENERGY)
                        div *= 1000;
                else if (ls[i].dim != CF_DIM_FLAT)
                        div *= MS_PER_HOUR;
                i128 q = ls[i].exact / div;
                if (q > ((i128)1 << 60))
                        return fail(errstr, errstr_size, CF_ERR_ARG,
                                    "amount out of range");
                if (tf->prices_include_vat)
                        line_from_incl(&ls[i], div_half_up(ls[i].exact, div));
                else
                        line_from_excl(&ls[i], div_half_up(ls[i].exact, div));
                sum += ls[i].excl;
        }

        /* min_price / max_price (OCPI: both the excl. and the incl. VAT
         * limits hold). First excl.: the lines' excl. amounts are scaled to
         * the limit and VAT is recomputed per line. Then incl.: the lines'
         * incl. amounts are scaled to the limit and each line's VAT is
         * split from its incl. amount. */
        int64_t target = sum;
        if (tf->min_price_minor != CF_NONE && sum < tf->min_price_minor)
                target = tf->min_price_minor;
        if (tf->max_price_minor != CF_NONE && target > tf->max_price_minor)
                target = tf->max_price_minor;
        if (target != sum) {
                out->flags |=
                    target > sum ? CF_PRICE_MIN_APPLIED : CF_PRICE_MAX_APPLIED;
                limit_lines(ls, &nl, in->default_vat_bp, false, sum, target);
        }
        int64_t incl = 0;
        for (uint32_t i = 0; i < nl; i++)
                incl += ls[i].incl;
        target = incl;
        if (tf->min_price_incl_minor != CF_NONE &&
            incl < tf->min_price_incl_minor)
                target = tf->min_price_incl_minor;
        if (tf->max_price_incl_minor != CF_NONE &&
            target > tf->max_price_incl_minor)
                target = tf->max_price_incl_minor;
        if (target != incl) {
                out->flags |=
                    target > incl ? CF_PRICE_MIN_APPLIED : CF_PRICE_MAX_APPLIED;
                limit_lines(ls, &nl, in->default_vat_bp, true, incl, target);
        }

        /* Totals are sums of lines. */
        out->lines = cf_arena_alloc(a, (nl ? nl : 1) * sizeof(*out->lines));
        out->n_lines = nl;
        for (uint32_t i = 0; i < nl; i++) {
                cf_price_line *pl = &out->lines[i];
                pl->dimension = ls[i].dim;
                pl->volume = ls[i].volume;
                pl->excl_vat = ls[i].excl;
                pl->vat_bp = ls[i].vat_bp;
                pl->vat = ls[i].vat;
                out->total_excl_vat += pl->excl_vat;
                out->total_vat += pl->vat;
        }
        out->total_incl_vat = out->total_excl_vat + out->total_vat;

        /* Periods for the record. */
        out->periods = cf_arena_alloc(a, np * sizeof(*out->periods));
        out->period_elements =
            cf_arena_alloc(a, np * CF_DIM__CNT * sizeof(int32_t));
        out->n_periods = np;
        for (uint32_t i = 0; i < np; i++) {
                const period *p = &ps[i];
                cf_charging_period *cp = &out->periods[i];
                cp->start_ms = p->start;
                cf_cdr_dimension *dm = cf_arena_alloc(a, 5 * sizeof(*dm));
                uint32_t nd = 0;
                if (!p->parking || p->wh)
                        dm[nd++] = (cf_cdr_dimension){ CF_CDR_ENERGY, p->wh };
                if (p->flat)
                        dm[nd++] = (cf_cdr_dimension){ CF_CDR_FLAT, 1 };
                if (p->max_c != CF_NONE)
                        dm[nd++] =
                            (cf_cdr_dimension){ CF_CDR_MAX_CURRENT, p->max_c };
                if (p->max_p != CF_NONE)
                        dm[nd++] =
                            (cf_cdr_dimension){ CF_CDR_MAX_POWER, p->max_p };
                dm[nd++] = (cf_cdr_dimension){ p->parking ? CF_CDR_PARKING_TIME
                                                          : CF_CDR_TIME,
                                               p->ms };
                cp->dimensions = dm;
                cp->n_dimensions = nd;
                int32_t lowest = -1;
                for (int d = 0; d < CF_DIM__CNT; d++) {
                        out->period_elements[i * CF_DIM__CNT + d] = p->el[d];
                        bool used =
                            d != CF_DIM_FLAT &&
                            !(d == CF_DIM_ENERGY && p->parking && p->wh == 0);
                        if (used && p->el[d] >= 0 &&
                            (lowest < 0 || p->el[d] < lowest))
                                lowest = p->el[d];
                }
                cp->tariff_element = lowest;
        }
        out->energy_wh = energy_at(&tl, stop) - in->start_wh;
        out->charging_ms = cend - start;
        out->parking_ms = stop - cend;
        out->currency_exp = exp;
        return CF_OK;
}
