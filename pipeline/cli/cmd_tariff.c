/*
 * cmd_tariff.c: `chargeflow tariff`, to check an OCPI 2.2.1 Tariff document
 * and to price a simple session with it from the command line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tariff.h"

static const char *const cf_dim_label[CF_DIM__CNT] = {
        [CF_DIM_ENERGY] = "ENERGY",
        [CF_DIM_FLAT] = "FLAT",
        [CF_DIM_PARKING_TIME] = "PARKING_TIME",
        [CF_DIM_TIME] = "TIME",
};

static const char *const cf_day_label[7] = { "MON", "TUE", "WED", "THU",
                                             "FRI", "SAT", "SUN" };

static void usage(FILE *f)
{
        fprintf(f, "usage: chargeflow tariff check FILE.json\n"
                   "       chargeflow tariff price FILE.json --start TIME "
                   "--stop TIME\n"
                   "                  (--kwh KWH | --profile READINGS.csv)\n"
                   "                  [--charging-end TIME] [--tz ZONE] "
                   "[--vat PERCENT]\n"
                   "                  [--prices-include-vat]\n"
                   "\n"
                   "check  loads an OCPI 2.2.1 Tariff document and prints what "
                   "it understood,\n"
                   "       or which field is wrong and why.\n"
                   "price  prices one session: KWH delivered evenly from "
                   "--start to the end of\n"
                   "       charging (--charging-end, default --stop), parking "
                   "after it; or the\n"
                   "       meter readings of a profile.\n"
                   "\n"
                   "  --start, --stop, --charging-end TIME\n"
                   "                 RFC 3339, 2026-03-28T22:00:00Z or "
                   "2026-03-28T23:00:00+01:00;\n"
                   "                 without a zone designator, local time in "
                   "--tz\n"
                   "  --kwh KWH      energy delivered, at most 3 decimals "
                   "(whole Wh)\n"
                   "  --profile FILE readings, one a line: TIME,ENERGY_WH"
                   "[,POWER_W[,CURRENT_MA]]\n"
                   "                 (the energy register in whole Wh, 0 at "
                   "--start unless a line\n"
                   "                 at --start says otherwise; empty power or "
                   "current: unknown;\n"
                   "                 lines starting with # and a header line "
                   "\"time,...\" are skipped)\n"
                   "  --tz ZONE      the site's IANA time zone for local-time "
                   "restrictions\n"
                   "                 (default UTC)\n"
                   "  --vat PERCENT  VAT of components without one (default 0: "
                   "OCPI's \"no VAT\")\n"
                   "  --prices-include-vat\n"
                   "                 read the tariff's prices as including "
                   "VAT (README, Pricing)\n"
                   "\n"
                   "Exit status: 0 ok, 1 invalid tariff or session, 2 usage "
                   "error.\n");
}

/* "2026-03-28T23:00:00+01:00" in zone tz. */
static void fmt_time(int64_t ms, const cf_tz *tz, char *buf, size_t size)
{
        cf_civil c;
        cf_tz_civil(tz, ms, &c);
        int32_t off = cf_tz_offset(tz, ms);
        int32_t a = off < 0 ? -off : off;
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                 (int)c.year, (int)c.month, (int)c.day, (int)c.hour, (int)c.min,
                 (int)c.sec, off < 0 ? '-' : '+', (int)(a / 3600),
                 (int)(a / 60 % 60));
}

static void fmt_dur(int64_t ms, char *buf, size_t size)
{
        int64_t s = ms / 1000;
        snprintf(buf, size, "%lld:%02lld:%02lld.%03lld", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60),
                 (long long)(ms % 1000));
}

static void fmt_date(int64_t days, char *buf, size_t size)
{
        int32_t y, m, d;
        cf_civil_from_days(days, &y, &m, &d);
        snprintf(buf, size, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}

static void print_restrictions(const cf_tariff_restrictions *r)
{
        char a[32], b[32];
        printf("      when:");
        if (r->start_time_min != CF_NONE || r->end_time_min != CF_NONE) {
                int64_t s =
                    r->start_time_min != CF_NONE ? r->start_time_min : 0;
                int64_t e = r->end_time_min != CF_NONE ? r->end_time_min : 0;
                printf(" %02d:%02d-%s%02d:%02d local", (int)(s / 60),
                       (int)(s % 60), e != 0 && e <= s ? "next day " : "",
                       (int)(e / 60), (int)(e % 60));
        }
        if (r->n_day_of_week) {
                printf(" on");
                for (uint32_t i = 0; i < r->n_day_of_week; i++)
                        printf("%s%s", i ? "," : " ",
                               cf_day_label[r->day_of_week[i]]);
        }
        if (r->start_date != CF_NONE) {
                fmt_date(r->start_date, a, sizeof(a));
                printf(" from %s", a);
        }
        if (r->end_date != CF_NONE) {
                fmt_date(r->end_date, b, sizeof(b));
                printf(" before %s", b);
        }
        static const struct {
                const char *name;
                size_t off;
                int exp;
                const char *unit;
        } lims[] = {
                { "energy >=", offsetof(cf_tariff_restrictions, min_wh), 3,
                  "kWh" },
                { "energy <", offsetof(cf_tariff_restrictions, max_wh), 3,
                  "kWh" },
                { "current >=",
                  offsetof(cf_tariff_restrictions, min_current_ma), 3, "A" },
                { "current <", offsetof(cf_tariff_restrictions, max_current_ma),
                  3, "A" },
                { "power >=", offsetof(cf_tariff_restrictions, min_power_w), 3,
                  "kW" },
                { "power <", offsetof(cf_tariff_restrictions, max_power_w), 3,
                  "kW" },
                { "duration >=",
                  offsetof(cf_tariff_restrictions, min_duration_s), 0, "s" },
                { "duration <",
                  offsetof(cf_tariff_restrictions, max_duration_s), 0, "s" },
        };
        for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
                int64_t v = *(const int64_t *)((const char *)r + lims[i].off);
                if (v == CF_NONE)
                        continue;
                cf_money_format(v, lims[i].exp, a, sizeof(a));
                printf(" %s %s %s", lims[i].name, a, lims[i].unit);
        }
        printf("\n");
}

static void print_tariff(const cf_tariff *t, const cf_tariff_doc *doc)
{
        int32_t exp = cf_money_currency_exp(t->currency);
        char a[64], b[64];
        const cf_tz *utc = cf_tz_get("UTC");
        printf("tariff %s, currency %s (%d decimals)\n", t->tariff_id,
               t->currency, (int)exp);
        if (doc->country_code || doc->party_id || doc->type)
                printf("  owner %s/%s, type %s\n",
                       doc->country_code ? doc->country_code : "?",
                       doc->party_id ? doc->party_id : "?",
                       doc->type ? doc->type : "(any)");
        if (doc->last_updated_ms != CF_NONE && utc) {
                fmt_time(doc->last_updated_ms, utc, a, sizeof(a));
                printf("  last updated %s\n", a);
        }
        if ((t->start_ms != CF_NONE || t->end_ms != CF_NONE) && utc) {
                snprintf(a, sizeof(a), "any time");
                snprintf(b, sizeof(b), "no end");
                if (t->start_ms != CF_NONE)
                        fmt_time(t->start_ms, utc, a, sizeof(a));
                if (t->end_ms != CF_NONE)
                        fmt_time(t->end_ms, utc, b, sizeof(b));
                printf("  for sessions starting from %s, before %s\n", a, b);
        }
        if (t->min_price_minor != CF_NONE) {
                cf_money_format(t->min_price_minor, exp, a, sizeof(a));
                printf("  minimum price %s %s excl. VAT\n", a, t->currency);
        }
        if (t->max_price_minor != CF_NONE) {
                cf_money_format(t->max_price_minor, exp, a, sizeof(a));
                printf("  maximum price %s %s excl. VAT\n", a, t->currency);
        }
        if (t->min_price_incl_minor != CF_NONE) {
                cf_money_format(t->min_price_incl_minor, exp, a, sizeof(a));
                printf("  minimum price %s %s incl. VAT\n", a, t->currency);
        }
        if (t->max_price_incl_minor != CF_NONE) {
                cf_money_format(t->max_price_incl_minor, exp, a, sizeof(a));
                printf("  maximum price %s %s incl. VAT\n", a, t->currency);
        }
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_element *e = &t->elements[i];
                printf("  element %u\n", i);
                for (uint32_t j = 0; j < e->n_price_components; j++) {
                        const cf_price_component *c = &e->price_components[j];
                        static const char *const per[CF_DIM__CNT] = {
                                [CF_DIM_ENERGY] = "/kWh",
                                [CF_DIM_FLAT] = " per session",
                                [CF_DIM_PARKING_TIME] = "/hour parked",
                                [CF_DIM_TIME] = "/hour charging",
                        };
                        cf_money_format(c->price_micros, 6, a, sizeof(a));
                        if (c->vat_bp == CF_NONE)
                                snprintf(b, sizeof(b), "no VAT given");
                        else {
                                char v[32];
                                cf_money_format(c->vat_bp, 2, v, sizeof(v));
                                snprintf(b, sizeof(b), "VAT %s%%", v);
                        }
                        printf("    %-12s %s %s%s, %s", cf_dim_label[c->type],
                               a, t->currency, per[c->type], b);
                        if (c->type == CF_DIM_FLAT && c->step_size != 1)
                                printf(", step_size %lld (no unit for FLAT, "
                                       "ignored)",
                                       (long long)c->step_size);
                        if (c->type == CF_DIM_ENERGY)
                                printf(", billed per %lld Wh",
                                       (long long)c->step_size);
                        else if (c->type != CF_DIM_FLAT)
                                printf(", billed per %lld s",
                                       (long long)c->step_size);
                        printf("\n");
                }
                if (e->restrictions)
                        print_restrictions(e->restrictions);
                else
                        printf("      when: always\n");
        }
        for (uint32_t i = 0; i < doc->n_warnings; i++)
                printf("warning: %s\n", doc->warnings[i]);
}

static int load(const char *path, cf_arena *a, cf_tariff *t, cf_tariff_doc *doc)
{
        char err[512];
        cf_err_t e = cf_tariff_load_file(path, a, t, doc, err, sizeof(err));
        if (e) {
                /* an I/O error already names the file */
                if (e == CF_ERR_IO)
                        fprintf(stderr, "chargeflow tariff: %s\n", err);
                else
                        fprintf(stderr, "chargeflow tariff: %s: %s\n", path,
                                err);
                return 1;
        }
        return 0;
}

static int cmd_check(int argc, char **argv)
{
        if (argc != 1) {
                usage(stderr);
                return 2;
        }
        cf_arena a;
        cf_arena_init(&a, 0);
        cf_tariff t;
        cf_tariff_doc doc;
        int rc = load(argv[0], &a, &t, &doc);
        if (!rc) {
                print_tariff(&t, &doc);
                printf("ok\n");
        }
        cf_arena_destroy(&a);
        return rc;
}

/* Splits line at commas into at most n fields (trimmed); returns the
 * count. */
static int split_csv(char *line, char **f, int n)
{
        int k = 0;
        char *p = line;
        while (k < n) {
                while (*p == ' ' || *p == '\t')
                        p++;
                f[k++] = p;
                char *c = strchr(p, ',');
                char *end = c ? c : p + strlen(p);
                while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
                                   end[-1] == '\r' || end[-1] == '\n'))
                        end--;
                if (!c) {
                        *end = '\0';
                        break;
                }
                *end = '\0';
                p = c + 1;
        }
        return k;
}

/* Reads a readings profile (see usage) into *pts, from the arena. Returns
 * 0, or 2 with the reason on stderr (file:line: what). */
static int read_profile(const char *path, const cf_tz *tz, int64_t start,
                        int64_t stop, cf_arena *a, cf_meter_point **pts,
                        uint32_t *n, int64_t *start_wh)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                fprintf(stderr, "chargeflow tariff price: --profile %s: %s\n",
                        path, strerror(errno));
                return 2;
        }
        uint32_t cap = 64, k = 0;
        cf_meter_point *p = cf_arena_alloc(a, cap * sizeof(*p));
        char line[512];
        int ln = 0, rc = 0;
        *start_wh = 0;
        while (!rc && fgets(line, sizeof(line), f)) {
                ln++;
                char *fld[4] = { NULL, NULL, NULL, NULL };
                if (line[0] == '#' || !strncmp(line, "time", 4))
                        continue;
                int nf = split_csv(line, fld, 4);
                if (nf == 1 && !fld[0][0])
                        continue; /* blank line */
                const char *why = NULL;
                int64_t t, wh, pw = CF_NONE, cu = CF_NONE;
                if (nf < 2)
                        why = "needs TIME,ENERGY_WH";
                else if (!cf_price_parse_time(fld[0], tz, &t))
                        why = "TIME must be RFC 3339";
                else if (!cf_price_parse_decimal(fld[1], 0, &wh) || wh < 0)
                        why = "ENERGY_WH must be a whole, non-negative number "
                              "of Wh (the register's unit)";
                else if (nf > 2 && fld[2][0] &&
                         (!cf_price_parse_decimal(fld[2], 0, &pw) || pw < 0))
                        why = "POWER_W must be a whole, non-negative number";
                else if (nf > 3 && fld[3][0] &&
                         (!cf_price_parse_decimal(fld[3], 0, &cu) || cu < 0))
                        why = "CURRENT_MA must be a whole, non-negative number";
                else if (t < start)
                        why = "reading before --start";
                else if (t > stop)
                        why = "reading after --stop";
                else if (k && t < p[k - 1].t_ms)
                        why = "readings must be in time order";
                else if ((k && wh < p[k - 1].energy_wh) ||
                         (!k && t > start && wh < *start_wh))
                        why = "the energy register must not go down";
                if (why) {
                        fprintf(stderr, "chargeflow tariff price: %s:%d: %s\n",
                                path, ln, why);
                        rc = 2;
                        break;
                }
                if (t == start) {
                        *start_wh = wh; /* the register at the start */
                        continue;
                }
                if (k == cap) {
                        cf_meter_point *q =
                            cf_arena_alloc(a, 2 * cap * sizeof(*q));
                        memcpy(q, p, cap * sizeof(*q));
                        p = q;
                        cap *= 2;
                }
                p[k++] = (cf_meter_point){ t, wh, pw, cu };
        }
        fclose(f);
        *pts = p;
        *n = k;
        return rc;
}

/* Warns about restrictions that need a quantity the input lacks. */
static void warn_missing(const cf_tariff *t, const cf_meter_point *pts,
                         uint32_t n)
{
        bool current = false, power = false;
        for (uint32_t i = 0; i < n; i++) {
                current |= pts[i].current_ma != CF_NONE;
                power |= pts[i].power_w != CF_NONE;
        }
        for (uint32_t i = 0; i < t->n_elements; i++) {
                const cf_tariff_restrictions *r = t->elements[i].restrictions;
                if (!r)
                        continue;
                if (!current && (r->min_current_ma != CF_NONE ||
                                 r->max_current_ma != CF_NONE))
                        fprintf(stderr,
                                "warning: elements[%u] is restricted by "
                                "current and the input gives none: it never "
                                "applies while charging (give CURRENT_MA in "
                                "a --profile)\n",
                                i);
                if (!power &&
                    (r->min_power_w != CF_NONE || r->max_power_w != CF_NONE))
                        fprintf(stderr,
                                "warning: elements[%u] is restricted by "
                                "power and the input gives none: power is "
                                "taken as the average between readings\n",
                                i);
        }
}

static int cmd_price(int argc, char **argv)
{
        const char *file = NULL, *start_s = NULL, *stop_s = NULL,
                   *cend_s = NULL, *kwh_s = NULL, *tz_s = "UTC", *vat_s = "0",
                   *profile_s = NULL;
        bool incl_vat = false;
        for (int i = 0; i < argc; i++) {
                const char **dst = NULL;
                if (!strcmp(argv[i], "--prices-include-vat")) {
                        incl_vat = true;
                        continue;
                }
                if (!strcmp(argv[i], "--start"))
                        dst = &start_s;
                else if (!strcmp(argv[i], "--stop"))
                        dst = &stop_s;
                else if (!strcmp(argv[i], "--charging-end"))
                        dst = &cend_s;
                else if (!strcmp(argv[i], "--kwh"))
                        dst = &kwh_s;
                else if (!strcmp(argv[i], "--profile"))
                        dst = &profile_s;
                else if (!strcmp(argv[i], "--tz"))
                        dst = &tz_s;
                else if (!strcmp(argv[i], "--vat"))
                        dst = &vat_s;
                else if (argv[i][0] == '-' || file) {
                        fprintf(stderr,
                                "chargeflow tariff price: unexpected "
                                "'%s'\n\n",
                                argv[i]);
                        usage(stderr);
                        return 2;
                } else {
                        file = argv[i];
                        continue;
                }
                if (i + 1 >= argc) {
                        fprintf(stderr,
                                "chargeflow tariff price: %s needs a value\n",
                                argv[i]);
                        return 2;
                }
                *dst = argv[++i];
        }
        if (!file || !start_s || !stop_s || (!kwh_s == !profile_s)) {
                fprintf(stderr, "chargeflow tariff price: FILE, --start, "
                                "--stop and one of --kwh and --profile are "
                                "required\n\n");
                usage(stderr);
                return 2;
        }
        const cf_tz *tz = cf_tz_get(tz_s);
        if (!tz) {
                fprintf(stderr,
                        "chargeflow tariff price: --tz: unknown time "
                        "zone '%s'\n",
                        tz_s);
                return 2;
        }
        int64_t start, stop, cend = CF_NONE, wh, vat_bp;
        if (!cf_price_parse_time(start_s, tz, &start) ||
            !cf_price_parse_time(stop_s, tz, &stop) ||
            (cend_s && !cf_price_parse_time(cend_s, tz, &cend))) {
                fprintf(stderr, "chargeflow tariff price: times must be RFC "
                                "3339, like 2026-03-28T22:00:00Z\n");
                return 2;
        }
        if (kwh_s && (!cf_price_parse_decimal(kwh_s, 3, &wh) || wh < 0)) {
                /* Energy is whole Wh throughout (the registers' unit), so
                 * OCPI's 115.2 Wh example cannot be given. */
                fprintf(stderr, "chargeflow tariff price: --kwh: a "
                                "non-negative number with at most 3 "
                                "decimals (whole Wh: energy below 1 Wh is "
                                "not supported)\n");
                return 2;
        }
        if (!cf_price_parse_decimal(vat_s, 2, &vat_bp) || vat_bp < 0 ||
            vat_bp > 10000) {
                fprintf(stderr, "chargeflow tariff price: --vat: a "
                                "percentage 0..100, at most 2 decimals\n");
                return 2;
        }
        char s1[64], s2[64], s3[64];
        if (stop < start) {
                fmt_time(stop, tz, s1, sizeof(s1));
                fmt_time(start, tz, s2, sizeof(s2));
                fprintf(stderr,
                        "chargeflow tariff price: --stop %s is before "
                        "--start %s\n",
                        s1, s2);
                return 2;
        }
        if (cend != CF_NONE && (cend > stop || cend < start)) {
                fmt_time(cend, tz, s1, sizeof(s1));
                fprintf(stderr,
                        "chargeflow tariff price: --charging-end %s is "
                        "outside --start .. --stop\n",
                        s1);
                return 2;
        }
        int64_t charge_to = cend != CF_NONE ? cend : stop;
        if (kwh_s && wh > 0 && charge_to <= start) {
                fprintf(stderr, "chargeflow tariff price: --kwh > 0 needs "
                                "charging time after --start\n");
                return 2;
        }

        cf_arena a;
        cf_arena_init(&a, 0);
        cf_tariff t;
        cf_tariff_doc doc;
        int rc = load(file, &a, &t, &doc);
        if (rc)
                goto out;
        if (incl_vat)
                t.prices_include_vat = true;
        cf_meter_point one = { charge_to, kwh_s ? wh : 0, CF_NONE, CF_NONE };
        cf_meter_point *pts = &one;
        uint32_t n_pts = 1;
        int64_t start_wh = 0;
        if (profile_s) {
                rc = read_profile(profile_s, tz, start, stop, &a, &pts, &n_pts,
                                  &start_wh);
                if (rc)
                        goto out;
                /* energy after charging ended is inconsistent */
                for (uint32_t i = 0; i < n_pts; i++) {
                        int64_t before = i ? pts[i - 1].energy_wh : start_wh;
                        if (pts[i].energy_wh > before &&
                            (i ? pts[i - 1].t_ms : start) >= charge_to) {
                                fmt_time(pts[i].t_ms, tz, s1, sizeof(s1));
                                fmt_time(charge_to, tz, s2, sizeof(s2));
                                fprintf(stderr,
                                        "chargeflow tariff price: energy "
                                        "rises at %s, after charging ended "
                                        "at %s\n",
                                        s1, s2);
                                rc = 2;
                                goto out;
                        }
                }
        }
        warn_missing(&t, pts, n_pts);
        cf_price_input in = {
                .tariff = &t,
                .tz = tz,
                .default_vat_bp = vat_bp,
                .start_ms = start,
                .stop_ms = stop,
                .charging_end_ms = cend,
                .start_wh = start_wh,
                .points = pts,
                .n_points = n_pts,
        };
        cf_price_result r;
        char err[512];
        cf_err_t e = cf_price_session(&in, &a, &r, err, sizeof(err));
        if (e) {
                fprintf(stderr, "chargeflow tariff price: %s\n", err);
                rc = 1;
                goto out;
        }
        fmt_time(start, tz, s1, sizeof(s1));
        fmt_time(stop, tz, s2, sizeof(s2));
        printf("tariff %s, %s, session %s to %s\n", t.tariff_id, cf_tz_name(tz),
               s1, s2);
        cf_money_format(r.energy_wh, 3, s1, sizeof(s1));
        fmt_dur(r.charging_ms, s2, sizeof(s2));
        fmt_dur(r.parking_ms, s3, sizeof(s3));
        printf("energy %s kWh, charging %s, parking %s\n", s1, s2, s3);
        printf("charging periods:\n");
        for (uint32_t i = 0; i < r.n_periods; i++) {
                const cf_charging_period *p = &r.periods[i];
                fmt_time(p->start_ms, tz, s1, sizeof(s1));
                printf("  %s  element ", s1);
                if (p->tariff_element < 0)
                        printf("- ");
                else
                        printf("%d", (int)p->tariff_element);
                for (uint32_t k = 0; k < p->n_dimensions; k++) {
                        const cf_cdr_dimension *d = &p->dimensions[k];
                        switch (d->type) {
                        case CF_CDR_ENERGY:
                                cf_money_format(d->volume, 3, s2, sizeof(s2));
                                printf("  ENERGY %s kWh", s2);
                                break;
                        case CF_CDR_TIME:
                        case CF_CDR_PARKING_TIME:
                                fmt_dur(d->volume, s2, sizeof(s2));
                                printf("  %s %s",
                                       d->type == CF_CDR_TIME ? "TIME"
                                                              : "PARKING_TIME",
                                       s2);
                                break;
                        case CF_CDR_MAX_POWER:
                                cf_money_format(d->volume, 3, s2, sizeof(s2));
                                printf("  MAX_POWER %s kW", s2);
                                break;
                        case CF_CDR_MAX_CURRENT:
                                cf_money_format(d->volume, 3, s2, sizeof(s2));
                                printf("  MAX_CURRENT %s A", s2);
                                break;
                        default:
                                printf("  FLAT");
                        }
                }
                printf("\n");
        }
        printf("price lines (%s):\n", t.currency);
        for (uint32_t i = 0; i < r.n_lines; i++) {
                const cf_price_line *l = &r.lines[i];
                switch (l->dimension) {
                case CF_DIM_ENERGY:
                        cf_money_format(l->volume, 3, s1, sizeof(s1));
                        strcat(s1, " kWh");
                        break;
                case CF_DIM_FLAT:
                        snprintf(s1, sizeof(s1), "1");
                        break;
                default:
                        fmt_dur(l->volume, s1, sizeof(s1));
                }
                cf_money_format(l->excl_vat, r.currency_exp, s2, sizeof(s2));
                cf_money_format(l->vat, r.currency_exp, s3, sizeof(s3));
                char v[32];
                cf_money_format(l->vat_bp, 2, v, sizeof(v));
                printf("  %-12s %16s %12s  VAT %6s%% %10s\n",
                       cf_dim_label[l->dimension], s1, s2, v, s3);
        }
        cf_money_format(r.total_excl_vat, r.currency_exp, s1, sizeof(s1));
        cf_money_format(r.total_vat, r.currency_exp, s2, sizeof(s2));
        cf_money_format(r.total_incl_vat, r.currency_exp, s3, sizeof(s3));
        printf("total excl. VAT %s, VAT %s, incl. VAT %s %s%s\n", s1, s2, s3,
               t.currency, t.prices_include_vat ? " (prices incl. VAT)" : "");
        if (r.flags & CF_PRICE_MIN_APPLIED)
                printf("minimum price applied\n");
        if (r.flags & CF_PRICE_MAX_APPLIED)
                printf("maximum price applied\n");
out:
        cf_arena_destroy(&a);
        return rc;
}

int cf_cmd_tariff(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                }
        if (argc >= 2 && !strcmp(argv[1], "check"))
                return cmd_check(argc - 2, argv + 2);
        if (argc >= 2 && !strcmp(argv[1], "price"))
                return cmd_price(argc - 2, argv + 2);
        usage(stderr);
        return 2;
}
