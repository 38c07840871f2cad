/*
 * test_oracle.c: money against an independent oracle (issue #6: statements
 * equal totals computed from the truth file and the published plans, to the
 * minor unit, for every party and period).
 *
 * The oracle (oracle.c) prices every real session from the generator's
 * truth file, its published plans and its published meter readings,
 * without the production pricer. First it is pinned to hand-derived
 * prices (README's example and one case per plan feature the estate
 * uses). Then the generator's small preset with every fault, 10 days from
 * 2026-10-24 (the end of summer time on Oct 25, month tenants cross from
 * October to November, the weekly tenant crosses two ISO weeks, the
 * mid-scenario price change on Oct 29), is written to a record file and
 * run through rating and billing in process (cf_inproc: the real tasks,
 * stages and RocksDB state, 4 partitions), and
 *  - every session's latest charge record (its highest revision, issue 17)
 *    has the totals excluding VAT, VAT and including VAT, currency, billed
 *    party and period the oracle gives the session, each session priced
 *    exactly once (one revision 1, no revision twice);
 *  - every statement's session count, energy and totals (adjustments
 *    counted in their original period, a correction's adding no
 *    session), per tenant, billed party and
 *    period, equal the oracle's sums, to the minor unit; each statement is
 *    issued once and no party or period is billed that the oracle has not.
 * Mismatches print both values (the first ten).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ftw.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "codec.h"
#include "config.h"
#include "genfile.h"
#include "harness.h"
#include "inproc.h"
#include "oracle.h"

#define SEED       "7"
#define DAYS       "10"
#define START      "2026-10-24"
#define PARTITIONS 4

static char dir[64];
static cf_oracle *oracle;
static json_t *charges;   /* session id -> [excl, vat, incl, cur, period,
                             party, tenant, revision 1 seen, tariff, latest
                             revision]: the latest revision's values */
static json_t *revisions; /* "session|revision" seen */
static int dup_revisions;
static json_t *billed; /* tenant|party|period -> [sessions, energy, excl,
                          vat, incl, currency] */
static json_t *stmt_ids;
static int sink_errors, bad_statements, dup_statements, n_adjustments;
static const cf_registry *reg;

/* ---- the oracle alone, on hand-derived cases ------------------------- */

static cf_tariff one_element(cf_tariff_element *e, uint32_t n)
{
        return (cf_tariff){ .tariff_id = "hand",
                            .currency = "NOK",
                            .elements = e,
                            .n_elements = n,
                            .min_price_minor = CF_NONE,
                            .max_price_minor = CF_NONE,
                            .min_price_incl_minor = CF_NONE,
                            .max_price_incl_minor = CF_NONE,
                            .start_ms = CF_NONE,
                            .end_ms = CF_NONE };
}

static cf_tariff_restrictions no_restrictions(void)
{
        return (cf_tariff_restrictions){
                .start_time_min = CF_NONE,
                .end_time_min = CF_NONE,
                .start_date = CF_NONE,
                .end_date = CF_NONE,
                .min_wh = CF_NONE,
                .max_wh = CF_NONE,
                .min_current_ma = CF_NONE,
                .max_current_ma = CF_NONE,
                .min_power_w = CF_NONE,
                .max_power_w = CF_NONE,
                .min_duration_s = CF_NONE,
                .max_duration_s = CF_NONE,
        };
}

static void expect_price(const cf_tariff *t, const char *zone, int64_t vat,
                         int64_t start, int64_t stop, const cf_oracle_knot *k,
                         size_t nk, int64_t excl, int64_t vat_minor,
                         int64_t incl)
{
        char err[256];
        cf_oracle_price p;
        const cf_tz *tz = cf_tz_get(zone);
        assert_non_null(tz);
        int rc = cf_oracle_price_session(t, tz, vat, start, stop, k[0].wh,
                                         k + 1, nk - 1, &p, err, sizeof(err));
        if (rc)
                fail_msg("oracle: %s", err);
        assert_int_equal(p.excl_vat, excl);
        assert_int_equal(p.vat, vat_minor);
        assert_int_equal(p.incl_vat, incl);
}

#define H 3600000LL
/* Monday 2026-11-02 00:00 in Oslo (UTC+1). */
#define MON_OSLO 1793574000000LL

/* README "Pricing": 0.25 EUR/kWh, VAT 10 %, step 100 Wh, 20.45 kWh:
 * billed 20.5 kWh = 5.125 EUR -> 5.13; VAT 0.513 -> 0.51; 5.64. */
static void oracle_prices_readme_example(void **state)
{
        (void)state;
        cf_price_component c = { CF_DIM_ENERGY, 250000, 1000, 100 };
        cf_tariff_element e = { &c, 1, NULL };
        cf_tariff t = one_element(&e, 1);
        t.currency = "EUR";
        cf_oracle_knot k[] = { { MON_OSLO, 1000 }, { MON_OSLO + H, 21450 } };
        expect_price(&t, "Europe/Oslo", 2500, MON_OSLO, MON_OSLO + H, k, 2, 513,
                     51, 564);
}

/* Resident plan: 2.40 NOK/kWh weekdays 16-21, else 1.50. 15:30 to 16:30 on
 * a Monday, 1,001 Wh linearly: 500 Wh (the register at 16:00 rounded
 * down) at 1.50 and 501 Wh at 2.40 = 0.75 + 1.2024 = 1.9524 NOK -> 195
 * øre; VAT 48.75 -> 49; 244. On the Saturday all at 1.50: 1.5015 -> 150,
 * VAT 37.5 -> 38, 188. */
static void oracle_splits_at_time_of_day(void **state)
{
        (void)state;
        cf_price_component peak = { CF_DIM_ENERGY, 2400000, CF_NONE, 1 };
        cf_price_component base = { CF_DIM_ENERGY, 1500000, CF_NONE, 1 };
        int32_t wd[] = { 0, 1, 2, 3, 4 };
        cf_tariff_restrictions r = no_restrictions();
        r.start_time_min = 16 * 60;
        r.end_time_min = 21 * 60;
        r.day_of_week = wd;
        r.n_day_of_week = 5;
        cf_tariff_element e[] = { { &peak, 1, &r }, { &base, 1, NULL } };
        cf_tariff t = one_element(e, 2);
        int64_t s = MON_OSLO + 15 * H + H / 2;
        cf_oracle_knot k[] = { { s, 5000 }, { s + H, 6001 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s + H, k, 2, 195, 49, 244);
        int64_t sat = s + 5 * 24 * H;
        cf_oracle_knot k2[] = { { sat, 5000 }, { sat + H, 6001 } };
        expect_price(&t, "Europe/Oslo", 2500, sat, sat + H, k2, 2, 150, 38,
                     188);
}

/* Guest plan: FLAT 10 NOK and 3.20 NOK/kWh per started 100 Wh; parking
 * 6 NOK/h after 2 h in 5-minute steps. 3 h 1 min 1 s, charged 7,050 Wh in
 * the first hour: energy 7,100 Wh = 22.72; parking priced from 2 h:
 * 3,661 s -> 3,900 s = 6.50; flat 10.00. Excl 39.22; VAT 250 + 568 +
 * 162.5 -> 163 = 981; incl 4,903. */
static void oracle_prices_flat_steps_and_parking(void **state)
{
        (void)state;
        cf_price_component c0[] = { { CF_DIM_FLAT, 10000000, CF_NONE, 1 },
                                    { CF_DIM_ENERGY, 3200000, CF_NONE, 100 } };
        cf_price_component c1 = { CF_DIM_PARKING_TIME, 6000000, 2500, 300 };
        cf_tariff_restrictions r = no_restrictions();
        r.min_duration_s = 2 * 3600;
        cf_tariff_element e[] = { { c0, 2, NULL }, { &c1, 1, &r } };
        cf_tariff t = one_element(e, 2);
        int64_t s = MON_OSLO + 8 * H, stop = s + 3 * H + 61000;
        cf_oracle_knot k[] = { { s, 0 }, { s + H, 7050 }, { stop, 7050 } };
        expect_price(&t, "Europe/Oslo", 2500, s, stop, k, 3, 3922, 981, 4903);
}

/* Unauthenticated plan: FLAT 5 NOK, 3.50 NOK/kWh per started kWh,
 * min_price 15 NOK. 1,200 Wh: energy 2 kWh = 7.00, flat 5.00, 12.00 <
 * 15.00: scaled, ENERGY 1500 * 700 / 1200 = 875, FLAT 625; VAT 218.75 ->
 * 219 and 156.25 -> 156 = 375; 1,875. A session of zero length pays the
 * minimum too (5.00 flat scaled to 15.00). */
static void oracle_applies_min_price_by_line(void **state)
{
        (void)state;
        cf_price_component c[] = { { CF_DIM_FLAT, 5000000, CF_NONE, 1 },
                                   { CF_DIM_ENERGY, 3500000, CF_NONE, 1000 } };
        cf_tariff_element e = { c, 2, NULL };
        cf_tariff t = one_element(&e, 1);
        t.min_price_minor = 1500;
        int64_t s = MON_OSLO + 8 * H;
        cf_oracle_knot k[] = { { s, 0 }, { s + H, 1200 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s + H, k, 2, 1500, 375, 1875);
        cf_oracle_knot k0[] = { { s, 0 }, { s, 0 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s, k0, 2, 1500, 375, 1875);
}

/* OCPI 2.2.1, CDRs module, "Step_size": TIME 1.00/h and PARKING_TIME
 * 2.00/h, both step 10 min. "If a driver charges 21 minutes, and keeps his
 * EV connected ... for another 16 minutes, then the step_size rounds the
 * parking duration up to 20 minutes": 21 min x 1.00/h = 0.35, 20 min x
 * 2.00/h = 0.6667 -> 0.67; 1.02, no VAT. Without parking TIME takes the
 * step: 21 -> 30 min = 0.50. Steps of 5 min, 21 min charging and 7
 * parked: 0.35 + 10 min x 2.00/h = 0.333 -> 0.33; 0.68. */
static void oracle_step_size_only_on_parking_after_charging(void **state)
{
        (void)state;
        cf_price_component c[] = { { CF_DIM_TIME, 1000000, CF_NONE, 600 },
                                   { CF_DIM_PARKING_TIME, 2000000, CF_NONE,
                                     600 } };
        cf_tariff_element e = { c, 2, NULL };
        cf_tariff t = one_element(&e, 1);
        t.currency = "EUR";
        int64_t s = MON_OSLO + 10 * H, m = 60000;
        cf_oracle_knot k[] = { { s, 0 },
                               { s + 21 * m, 5000 },
                               { s + 37 * m, 5000 } };
        expect_price(&t, "Europe/Oslo", 0, s, s + 37 * m, k, 3, 102, 0, 102);
        expect_price(&t, "Europe/Oslo", 0, s, s + 21 * m, k, 2, 50, 0, 50);
        c[0].step_size = c[1].step_size = 300;
        cf_oracle_knot k2[] = { { s, 0 },
                                { s + 21 * m, 5000 },
                                { s + 28 * m, 5000 } };
        expect_price(&t, "Europe/Oslo", 0, s, s + 28 * m, k2, 3, 68, 0, 68);
}

/* OCPI tariff 6: FLAT 0.50 (20 %), ENERGY 0.25 (10 %), max_price 10.00
 * excl. and 11.00 incl. 50 kWh: 13.00 excl. scaled to 10.00: 1250 x 10/13
 * = 961.5, 50 x 10/13 = 38.5, the spare cent to ENERGY (larger
 * remainder): 962 + 38; VAT 96 + 8; incl. 1058 + 46 = 1104 > 1100, scaled:
 * 1054.2 and 45.8, the spare cent to FLAT: 1054 + 46; VAT split 1054 x
 * 10/110 = 95.8 -> 96, 46 x 20/120 = 7.7 -> 8: 958 + 38 = 996 excl., 104
 * VAT, 1100 incl. 30 kWh stays under both: 800, 85, 885. */
static void oracle_applies_max_price_incl_vat(void **state)
{
        (void)state;
        cf_price_component c[] = { { CF_DIM_FLAT, 500000, 2000, 1 },
                                   { CF_DIM_ENERGY, 250000, 1000, 1 } };
        cf_tariff_element e = { c, 2, NULL };
        cf_tariff t = one_element(&e, 1);
        t.currency = "EUR";
        t.max_price_minor = 1000;
        t.max_price_incl_minor = 1100;
        int64_t s = MON_OSLO + 8 * H;
        cf_oracle_knot k[] = { { s, 0 }, { s + 5 * H, 50000 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s + 5 * H, k, 2, 996, 104,
                     1100);
        cf_oracle_knot k3[] = { { s, 0 }, { s + 3 * H, 30000 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s + 3 * H, k3, 2, 800, 85,
                     885);
}

/* Prices incl. VAT: 0.275 EUR/kWh incl. 10 %, 10.333 kWh: 2.841575 ->
 * 2.84 incl.; VAT 284 x 10/110 = 25.8 -> 26; excl. 2.58. The same 0.25
 * read as incl.: 2.58325 -> 2.58; VAT 23.45 -> 23; excl. 2.35. */
static void oracle_prices_incl_vat(void **state)
{
        (void)state;
        cf_price_component c = { CF_DIM_ENERGY, 275000, 1000, 1 };
        cf_tariff_element e = { &c, 1, NULL };
        cf_tariff t = one_element(&e, 1);
        t.currency = "EUR";
        t.prices_include_vat = true;
        int64_t s = MON_OSLO + 8 * H;
        cf_oracle_knot k[] = { { s, 0 }, { s + H, 10333 } };
        expect_price(&t, "Europe/Oslo", 2500, s, s + H, k, 2, 258, 26, 284);
        c.price_micros = 250000;
        expect_price(&t, "Europe/Oslo", 2500, s, s + H, k, 2, 235, 23, 258);
}

/* What the oracle does not price, it refuses. */
static void oracle_refuses_what_it_does_not_support(void **state)
{
        (void)state;
        cf_price_component c = { CF_DIM_ENERGY, 1000000, CF_NONE, 1 };
        cf_tariff_restrictions r = no_restrictions();
        r.max_power_w = 11000;
        cf_tariff_element e = { &c, 1, &r };
        cf_tariff t = one_element(&e, 1);
        cf_oracle_knot k[] = { { MON_OSLO + H, 100 } };
        cf_oracle_price p;
        char err[256];
        assert_int_equal(cf_oracle_price_session(&t, cf_tz_get("Europe/Oslo"),
                                                 2500, MON_OSLO, MON_OSLO + H,
                                                 0, k, 1, &p, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "not supported"));
}

/* ---- the generated run ---------------------------------------------- */

static void path(char *buf, size_t n, const char *name)
{
        snprintf(buf, n, "%s/%s", dir, name);
}

static void add_billed(const char *tenant, const char *party,
                       const char *period, const char *cur, int64_t sessions,
                       int64_t energy, int64_t excl, int64_t vat, int64_t incl)
{
        char key[512];
        snprintf(key, sizeof(key), "%s|%s|%s", tenant, party, period);
        json_t *v = json_object_get(billed, key);
        if (!v) {
                v = json_pack("[IIIIIs]", (json_int_t)0, (json_int_t)0,
                              (json_int_t)0, (json_int_t)0, (json_int_t)0, cur);
                json_object_set_new(billed, key, v);
        } else if (strcmp(json_string_value(json_array_get(v, 5)), cur)) {
                json_array_set_new(v, 5, json_string("MIXED"));
        }
        int64_t add[] = { sessions, energy, excl, vat, incl };
        for (size_t i = 0; i < 5; i++)
                json_array_set_new(
                    v, i,
                    json_integer(json_integer_value(json_array_get(v, i)) +
                                 (json_int_t)add[i]));
}

static void on_charge(const cf_out *o)
{
        cf_arena a;
        cf_charge_record cr;
        cf_arena_init(&a, 0);
        if (cf_decode(reg, CF_RT_CHARGE_RECORD, o->value, o->vlen, &a, &cr,
                      NULL)) {
                sink_errors++;
                cf_arena_destroy(&a);
                return;
        }
        /* A session's revisions (issue 17): each once; the latest is the
         * session as finally known; revision 1 is its pricing. */
        char rk[256];
        snprintf(rk, sizeof(rk), "%s|%d", cr.session_id, (int)cr.revision);
        if (json_object_get(revisions, rk))
                dup_revisions++;
        json_object_set_new(revisions, rk, json_true());
        json_t *v = json_object_get(charges, cr.session_id);
        int64_t first = cr.revision == 1;
        if (v)
                first += json_integer_value(json_array_get(v, 7));
        if (!v || cr.revision > json_integer_value(json_array_get(v, 9)))
                json_object_set_new(
                    charges, cr.session_id,
                    json_pack("[IIIssssIsi]", (json_int_t)cr.total_excl_vat,
                              (json_int_t)cr.total_vat,
                              (json_int_t)cr.total_incl_vat, cr.currency,
                              cr.period_id, cr.billed_party, cr.tenant_id,
                              (json_int_t)first, cr.tariff_id,
                              (int)cr.revision));
        else
                json_array_set_new(v, 7, json_integer(first));
        cf_arena_destroy(&a);
}

static void on_statement(const cf_out *o)
{
        cf_arena a;
        cf_statement st;
        cf_arena_init(&a, 0);
        if (cf_decode(reg, CF_RT_STATEMENT, o->value, o->vlen, &a, &st, NULL)) {
                sink_errors++;
                cf_arena_destroy(&a);
                return;
        }
        if (json_object_get(stmt_ids, st.statement_id))
                dup_statements++;
        json_object_set_new(stmt_ids, st.statement_id, json_true());
        /* Adjustments count in their original period. */
        int64_t ax = 0, av = 0, ai = 0;
        for (uint32_t i = 0; i < st.n_adjustments; i++) {
                const cf_adjustment *j = &st.adjustments[i];
                /* A correction's line (revision > 1) adds no session. */
                add_billed(st.tenant_id, st.billed_party, j->original_period_id,
                           st.currency, j->revision == 1, j->energy_wh,
                           j->total_excl_vat, j->total_vat, j->total_incl_vat);
                ax += j->total_excl_vat;
                av += j->total_vat;
                ai += j->total_incl_vat;
        }
        n_adjustments += st.n_adjustments;
        /* (A statement may carry adjustments alone.) */
        if (st.session_count || st.total_excl_vat != ax || st.total_vat != av ||
            st.total_incl_vat != ai)
                add_billed(st.tenant_id, st.billed_party, st.period_id,
                           st.currency, st.session_count, st.energy_wh,
                           st.total_excl_vat - ax, st.total_vat - av,
                           st.total_incl_vat - ai);
        /* The site lines add up to the statement's own sessions. */
        int64_t ls = 0, lx = 0, lv = 0, li = 0;
        for (uint32_t i = 0; i < st.n_sites; i++) {
                ls += st.sites[i].sessions;
                lx += st.sites[i].total_excl_vat;
                lv += st.sites[i].total_vat;
                li += st.sites[i].total_incl_vat;
        }
        if (st.revision != 1 || ls != st.session_count ||
            lx + ax != st.total_excl_vat || lv + av != st.total_vat ||
            li + ai != st.total_incl_vat ||
            st.total_excl_vat + st.total_vat != st.total_incl_vat)
                bad_statements++;
        cf_arena_destroy(&a);
}

static void sink(void *opaque, const cf_out *o)
{
        (void)opaque;
        if (o->topic == CF_OUT_CHARGE)
                on_charge(o);
        else if (o->topic == CF_OUT_STATEMENT)
                on_statement(o);
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

/* The pipeline's registry for the sink while it runs. */
static void pipeline(void *opaque, cf_inproc *ip, bool done)
{
        (void)opaque;
        reg = done ? NULL : cf_inproc_registry(ip);
}

/* Feeds the record file through rating and billing in process
 * (cf_test_run_genfile). */
static int run_pipeline(const char *genfile)
{
        char sd[128];
        path(sd, sizeof(sd), "state");
        return cf_test_run_genfile(genfile, sd, PARTITIONS, sink, pipeline,
                                   NULL);
}

static int setup(void **state)
{
        (void)state;
        char gf[128], truth[128], err[512];
        snprintf(dir, sizeof(dir), "/tmp/cf-test-oracle-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        path(gf, sizeof(gf), "gen.cfgen");
        path(truth, sizeof(truth), "truth.jsonl");
        char *gen[] = { CF_BINARY,  "gen",          "--preset",
                        "small",    "--seed",       SEED,
                        "--faults", "--days",       DAYS,
                        "--start",  START,          "--out",
                        gf,         "--partitions", "4",
                        "--truth",  truth,          "--charger-plans",
                        NULL };
        char *out;
        if (cf_test_run(gen, &out, NULL) != 0)
                return -1;
        free(out);
        oracle = cf_oracle_load(gf, truth, err, sizeof(err));
        if (!oracle) {
                print_error("oracle: %s\n", err);
                return -1;
        }
        charges = json_object();
        revisions = json_object();
        billed = json_object();
        stmt_ids = json_object();
        return run_pipeline(gf);
}

static int teardown(void **state)
{
        (void)state;
        cf_oracle_free(oracle);
        json_decref(charges);
        json_decref(revisions);
        json_decref(billed);
        json_decref(stmt_ids);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static const char *jstr_at(json_t *a, size_t i)
{
        return json_string_value(json_array_get(a, i));
}

static int64_t jint_at(json_t *a, size_t i)
{
        return json_integer_value(json_array_get(a, i));
}

/* ---- hand-made sessions at the limits, through the pipeline --------- */

/*
 * The generator's sessions all charge more than 2 kWh, so its min_price
 * never binds and no plan has a max_price. These sessions, fed through
 * rating and billing in process on one charger, do: an unauthenticated
 * plan (FLAT 5 NOK, 3.50 NOK/kWh per started kWh, min_price 15 NOK) and a
 * default plan (2.50 NOK/kWh, TIME 1.20 NOK/h, PARKING_TIME 3.00 NOK/h per
 * started minute, max_price 30 NOK) for user u-h (group "visitor", which
 * has no plan). Each charge record must equal the oracle's price of the
 * same readings.
 */
typedef struct hsess {
        const char *sid;
        bool user;
        int64_t wh, charge_min, total_min;
        int32_t flag; /* the limit it must hit, or -1 */
} hsess;

static const hsess hand[] = {
        { "h-zero", false, 0, 0, 10, CF_FLAG_MIN_PRICE },
        { "h-500", false, 500, 20, 30, CF_FLAG_MIN_PRICE },
        { "h-1200", false, 1200, 30, 40, CF_FLAG_MIN_PRICE },
        { "h-1999", false, 1999, 30, 30, CF_FLAG_MIN_PRICE },
        { "h-2001", false, 2001, 30, 30, -1 },
        { "h-instant", false, 0, 0, 0, CF_FLAG_MIN_PRICE },
        { "h-big", true, 15000, 120, 150, CF_FLAG_MAX_PRICE },
        { "h-small", true, 3000, 60, 83, -1 },
        { "h-odd", true, 11111, 97, 131, CF_FLAG_MAX_PRICE },
};
#define N_HAND  (sizeof(hand) / sizeof(hand[0]))
#define HAND_T0 (MON_OSLO + 8 * H) /* Monday 08:00 Oslo */

static json_t *hand_got; /* session id -> [excl, vat, incl, flags bits] */

static void hand_sink(void *opaque, const cf_out *o)
{
        (void)opaque;
        if (o->topic != CF_OUT_CHARGE)
                return;
        cf_arena a;
        cf_charge_record cr;
        cf_arena_init(&a, 0);
        if (cf_decode(reg, CF_RT_CHARGE_RECORD, o->value, o->vlen, &a, &cr,
                      NULL)) {
                sink_errors++;
        } else {
                json_int_t bits = 0;
                for (uint32_t i = 0; i < cr.n_flags; i++)
                        bits |= (json_int_t)1 << cr.flags[i];
                json_object_set_new(
                    hand_got, cr.session_id,
                    json_pack("[IIII]", (json_int_t)cr.total_excl_vat,
                              (json_int_t)cr.total_vat,
                              (json_int_t)cr.total_incl_vat, bits));
        }
        cf_arena_destroy(&a);
}

static cf_tariff hand_tariff(const char *id, cf_tariff_element *e)
{
        cf_tariff t = one_element(e, 1);
        t.tariff_id = (char *)id;
        return t;
}

static void hand_table(cf_inproc *ip, cf_rtype rt, int kind, const char *key,
                       const void *rec)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(ip), rt, rec, &b);
        assert_true(cf_inproc_table(ip, kind, key, strlen(key), b.p, b.len));
        cf_buf_free(&b);
}

static int64_t hand_offset[2], hand_seq;

static void hand_feed(cf_inproc *ip, int input, cf_rtype rt, int64_t ts,
                      const void *rec)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(ip), rt, rec, &b);
        cf_src src = { .input = input,
                       .partition = 0,
                       .offset = hand_offset[input]++,
                       .ts = ts,
                       .key = (const uint8_t *)"C-H",
                       .key_len = 3,
                       .value = b.p,
                       .value_len = (uint32_t)b.len };
        cf_inproc_feed(ip, &src);
        cf_buf_free(&b);
}

static void hand_event(cf_inproc *ip, const hsess *h, const char *what,
                       int32_t kind, int64_t t, int64_t wh)
{
        char id[64];
        snprintf(id, sizeof(id), "%s-%s", h->sid, what);
        cf_session_event e = {
                .event_id = id,
                .kind = kind,
                .session_id = (char *)h->sid,
                .site_id = "S-H",
                .charger_id = "C-H",
                .connector_id = 1,
                .time_ms = t,
                .energy_wh = wh,
                .user_id = h->user && kind == CF_SESSION_STARTED ? "u-h" : NULL,
                .stop_reason = kind == CF_SESSION_STOPPED ? CF_STOP_LOCAL : -1,
        };
        hand_feed(ip, CF_IN_SESSIONS, CF_RT_SESSION_EVENT, t, &e);
}

/* The register of session i at t (from 100,000 Wh, linear while
 * charging, rounded down). */
static int64_t hand_register(const hsess *h, int64_t start, int64_t t)
{
        int64_t span = h->charge_min * 60000;
        if (t - start >= span)
                return 100000 + h->wh;
        return 100000 + h->wh * (t - start) / span;
}

static void limits_priced_as_the_oracle_says(void **state)
{
        (void)state;
        char err[512], dir_h[] = "/tmp/cf-test-oracle-h-XXXXXX";
        assert_non_null(mkdtemp(dir_h));
        cf_config cfg;
        cf_config_init(&cfg);
        assert_int_equal(
            cf_config_set(&cfg, "state.dir", dir_h, err, sizeof(err)), 0);
        cf_inproc *ip;
        if (cf_inproc_new(&cfg, 1, hand_sink, NULL, &ip, err, sizeof(err)))
                fail_msg("%s", err);
        reg = cf_inproc_registry(ip);
        hand_got = json_object();
        sink_errors = 0;

        cf_price_component cu[] = { { CF_DIM_FLAT, 5000000, CF_NONE, 1 },
                                    { CF_DIM_ENERGY, 3500000, CF_NONE, 1000 } };
        cf_price_component cd[] = {
                { CF_DIM_ENERGY, 2500000, CF_NONE, 1 },
                { CF_DIM_TIME, 1200000, CF_NONE, 1 },
                { CF_DIM_PARKING_TIME, 3000000, CF_NONE, 60 },
        };
        cf_tariff_element eu = { cu, 2, NULL }, ed = { cd, 3, NULL };
        cf_tariff unauth = hand_tariff("h-unauth", &eu);
        unauth.min_price_minor = 1500;
        cf_tariff dflt = hand_tariff("h-default", &ed);
        dflt.max_price_minor = 3000;
        cf_price_version pv = {
                MON_OSLO - 300 * 24 * H, NULL, 0, dflt, &unauth, NULL, 0
        };
        cf_site site = { .site_id = "S-H",
                         .tenant_id = "T-H",
                         .name = "limits",
                         .time_zone = "Europe/Oslo",
                         .billing_period = CF_PERIOD_MONTH,
                         .currency = "NOK",
                         .vat_bp = 2500,
                         .max_power_w = 50000,
                         .access_control = true,
                         .versions = &pv,
                         .n_versions = 1,
                         .updated_ms = pv.valid_from_ms };
        hand_table(ip, CF_RT_SITE, CF_TABLE_SITES, "S-H", &site);
        cf_user u = { .user_id = "u-h",
                      .tenant_id = "T-H",
                      .group = "visitor",
                      .updated_ms = pv.valid_from_ms };
        hand_table(ip, CF_RT_USER, CF_TABLE_USERS, "u-h", &u);

        /* One session every 3 hours; readings every 5 minutes. */
        cf_oracle_knot knots[N_HAND][64];
        size_t nk[N_HAND];
        for (size_t i = 0; i < N_HAND; i++) {
                const hsess *h = &hand[i];
                int64_t start = HAND_T0 + (int64_t)i * 3 * H;
                int64_t stop = start + h->total_min * 60000;
                nk[i] = 0;
                hand_event(ip, h, "start", CF_SESSION_STARTED, start, 100000);
                for (int64_t t = start + 5 * 60000; t < stop; t += 5 * 60000) {
                        char id[64];
                        snprintf(id, sizeof(id), "%s-r%lld", h->sid,
                                 (long long)(t - start) / 60000);
                        cf_meter_reading m = {
                                .event_id = id,
                                .session_id = (char *)h->sid,
                                .site_id = "S-H",
                                .charger_id = "C-H",
                                .connector_id = 1,
                                .seq_no = ++hand_seq,
                                .time_ms = t,
                                .energy_wh = hand_register(h, start, t),
                                .power_w = CF_NONE,
                                .current_ma = CF_NONE,
                        };
                        hand_feed(ip, CF_IN_METER, CF_RT_METER_READING, t, &m);
                        knots[i][nk[i]++] = (cf_oracle_knot){ t, m.energy_wh };
                }
                hand_event(ip, h, "stop", CF_SESSION_STOPPED, stop,
                           100000 + h->wh);
                knots[i][nk[i]++] = (cf_oracle_knot){ stop, 100000 + h->wh };
        }
        cf_inproc_drain(ip);
        for (int i = 0; i < 3; i++)
                if (cf_inproc_commit(ip, err, sizeof(err)))
                        fail_msg("commit: %s", err);
        reg = NULL;
        cf_inproc_destroy(ip);
        cf_config_destroy(&cfg);
        nftw(dir_h, rm_one, 16, FTW_DEPTH | FTW_PHYS);

        assert_int_equal(sink_errors, 0);
        int bad = 0;
        const cf_tz *tz = cf_tz_get("Europe/Oslo");
        for (size_t i = 0; i < N_HAND; i++) {
                const hsess *h = &hand[i];
                int64_t start = HAND_T0 + (int64_t)i * 3 * H;
                cf_oracle_price p;
                if (cf_oracle_price_session(h->user ? &dflt : &unauth, tz, 2500,
                                            start, start + h->total_min * 60000,
                                            100000, knots[i], nk[i], &p, err,
                                            sizeof(err)))
                        fail_msg("oracle: %s", err);
                json_t *g = json_object_get(hand_got, h->sid);
                bool hit = h->flag < 0 || (g && (jint_at(g, 3) >> h->flag) & 1);
                if (!g || jint_at(g, 0) != p.excl_vat ||
                    jint_at(g, 1) != p.vat || jint_at(g, 2) != p.incl_vat ||
                    !hit) {
                        bad++;
                        print_error("%s: record %lld + %lld = %lld (limit "
                                    "flag %s), oracle %lld + %lld = %lld\n",
                                    h->sid, (long long)jint_at(g, 0),
                                    (long long)jint_at(g, 1),
                                    (long long)jint_at(g, 2),
                                    hit ? "as expected" : "missing",
                                    (long long)p.excl_vat, (long long)p.vat,
                                    (long long)p.incl_vat);
                }
        }
        assert_int_equal(json_object_size(hand_got), N_HAND);
        json_decref(hand_got);
        assert_int_equal(bad, 0);
}

/* Every session's latest charge record revision: its money, currency,
 * party and period equal the oracle's for its session; every session
 * priced exactly once (one revision 1, no revision twice). */
static void every_charge_record_priced_as_the_oracle_says(void **state)
{
        (void)state;
        assert_int_equal(sink_errors, 0);
        assert_int_equal(dup_revisions, 0);
        int bad = 0, once = 0;
        size_t n = cf_oracle_n_sessions(oracle);
        assert_true(n > 1000);
        for (size_t i = 0; i < n; i++) {
                const cf_oracle_session *s = cf_oracle_session_at(oracle, i);
                json_t *g = json_object_get(charges, s->session_id);
                if (!g) {
                        if (bad++ < 10)
                                print_error("session %s: no charge record\n",
                                            s->session_id);
                        continue;
                }
                if (jint_at(g, 7) != 1 && once++ < 10)
                        print_error(
                            "session %s: %lld charge records of revision 1\n",
                            s->session_id, (long long)jint_at(g, 7));
                if (jint_at(g, 0) != s->excl_vat || jint_at(g, 1) != s->vat ||
                    jint_at(g, 2) != s->incl_vat ||
                    strcmp(jstr_at(g, 3), s->currency) ||
                    strcmp(jstr_at(g, 4), s->period) ||
                    strcmp(jstr_at(g, 5), s->party) ||
                    strcmp(jstr_at(g, 6), s->tenant) ||
                    strcmp(jstr_at(g, 8), s->tariff_id)) {
                        if (bad++ < 10)
                                print_error(
                                    "session %s (site %s, %lld Wh, %s / "
                                    "%s): record %lld + %lld = %lld %s %s "
                                    "%s, oracle %lld + %lld = %lld %s %s "
                                    "%s\n",
                                    s->session_id, s->site,
                                    (long long)s->energy_wh, jstr_at(g, 8),
                                    s->tariff_id, (long long)jint_at(g, 0),
                                    (long long)jint_at(g, 1),
                                    (long long)jint_at(g, 2), jstr_at(g, 3),
                                    jstr_at(g, 4), jstr_at(g, 5),
                                    (long long)s->excl_vat, (long long)s->vat,
                                    (long long)s->incl_vat, s->currency,
                                    s->period, s->party);
                }
        }
        if (bad)
                print_error("%d of %zu sessions differ\n", bad, n);
        assert_int_equal(bad, 0);
        assert_int_equal(once, 0);
        /* The run covers the plans by charger group (gen --charger-plans),
         * prices stated incl. VAT and sessions whose total a min or max
         * price moved, the incl. VAT maximum among them. */
        size_t by_charger = 0, incl_prices = 0, limited = 0, capped_incl = 0;
        for (size_t i = 0; i < n; i++) {
                const cf_oracle_session *s = cf_oracle_session_at(oracle, i);
                by_charger += s->charger_plan;
                incl_prices += s->prices_incl_vat;
                limited += s->limited;
                capped_incl += s->limited && s->prices_incl_vat;
        }
        print_message("%zu sessions: %zu by charger plan, %zu with prices "
                      "incl. VAT, %zu limited (%zu at the incl. VAT "
                      "maximum)\n",
                      n, by_charger, incl_prices, limited, capped_incl);
        assert_true(by_charger > 20);
        assert_true(incl_prices > 5);
        assert_true(capped_incl > 0);
        assert_true(limited > capped_incl);
        /* Nothing priced that is not a real session. */
        assert_int_equal(json_object_size(charges), n);
}

/* Per tenant, billed party and period: the statements' session count,
 * energy and totals (adjustments in their original period) equal the
 * oracle's sums, to the minor unit. */
static void statements_equal_oracle_per_party_and_period(void **state)
{
        (void)state;
        assert_int_equal(sink_errors, 0);
        assert_int_equal(dup_statements, 0);
        assert_int_equal(bad_statements, 0);
        int bad = 0;
        json_t *periods = json_object(); /* tenant -> {period: true} */
        for (size_t i = 0; i < cf_oracle_n_totals(oracle); i++) {
                const cf_oracle_total *t = cf_oracle_total_at(oracle, i);
                char tenant[64];
                snprintf(tenant, sizeof(tenant), "%.*s",
                         (int)strcspn(t->key, "|"), t->key);
                json_t *tp = json_object_get(periods, tenant);
                if (!tp) {
                        tp = json_object();
                        json_object_set_new(periods, tenant, tp);
                }
                json_object_set_new(tp, strrchr(t->key, '|') + 1, json_true());
                json_t *g = json_object_get(billed, t->key);
                if (!g || jint_at(g, 0) != t->sessions ||
                    jint_at(g, 1) != t->energy_wh ||
                    jint_at(g, 2) != t->excl_vat || jint_at(g, 3) != t->vat ||
                    jint_at(g, 4) != t->incl_vat ||
                    strcmp(jstr_at(g, 5), t->currency)) {
                        if (bad++ < 10)
                                print_error(
                                    "%s: statements %lld sessions %lld Wh "
                                    "%lld + %lld = %lld %s, oracle %lld "
                                    "sessions %lld Wh %lld + %lld = %lld %s\n",
                                    t->key, (long long)jint_at(g, 0),
                                    (long long)jint_at(g, 1),
                                    (long long)jint_at(g, 2),
                                    (long long)jint_at(g, 3),
                                    (long long)jint_at(g, 4),
                                    g ? jstr_at(g, 5) : "none",
                                    (long long)t->sessions,
                                    (long long)t->energy_wh,
                                    (long long)t->excl_vat, (long long)t->vat,
                                    (long long)t->incl_vat, t->currency);
                }
        }
        if (bad)
                print_error("%d of %zu totals differ\n", bad,
                            cf_oracle_n_totals(oracle));
        assert_int_equal(bad, 0);
        /* Nothing billed to a party or period the oracle does not have. */
        const char *k;
        json_t *v;
        json_object_foreach(billed, k, v)
        {
                if (!cf_oracle_total_find(oracle, k) && bad++ < 10)
                        print_error("%s: billed %s, not by the oracle\n", k,
                                    json_dumps(v, JSON_COMPACT));
        }
        assert_int_equal(bad, 0);
        assert_int_equal(json_object_size(billed), cf_oracle_n_totals(oracle));
        /* The run crosses billing periods for every tenant. */
        assert_int_equal(json_object_size(periods), 3);
        /* and has late records, billed as adjustments. */
        assert_true(n_adjustments > 0);
        json_object_foreach(periods, k, v)
            assert_true(json_object_size(v) >= 2);
        json_decref(periods);
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest unit[] = {
                cmocka_unit_test(oracle_prices_readme_example),
                cmocka_unit_test(oracle_splits_at_time_of_day),
                cmocka_unit_test(oracle_prices_flat_steps_and_parking),
                cmocka_unit_test(oracle_applies_min_price_by_line),
                cmocka_unit_test(
                    oracle_step_size_only_on_parking_after_charging),
                cmocka_unit_test(oracle_applies_max_price_incl_vat),
                cmocka_unit_test(oracle_prices_incl_vat),
                cmocka_unit_test(oracle_refuses_what_it_does_not_support),
                cmocka_unit_test(limits_priced_as_the_oracle_says),
        };
        const struct CMUnitTest run[] = {
                cmocka_unit_test(every_charge_record_priced_as_the_oracle_says),
                cmocka_unit_test(statements_equal_oracle_per_party_and_period),
        };
        int failed = cmocka_run_group_tests_name("oracle", unit, NULL, NULL);
        failed +=
            cmocka_run_group_tests_name("oracle-run", run, setup, teardown);
        return failed;
}
