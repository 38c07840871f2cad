/*
 * test_bill.c: the billing sub-topology (decode, dedup, aggregate + close)
 * through cf_inproc: rating task A-p and billing task B-p per partition,
 * real RocksDB state in a fresh temp directory, records the tests encode;
 * and the charge report (cf_report) on hand-built records.
 *
 * The rig (the stage tests' rig, rig.h): one partition unless a test says
 * otherwise (so the billing watermark is A-0's watermark: its stream time
 * minus allowed.lateness.ms), a sink that decodes every charge record and
 * statement delivered at a commit, and keeps a copy of every repartition
 * record carrying a charge.
 * What rating writes to the repartition topic at a commit is read by
 * billing during that commit, so billing's outputs come with the next one:
 * tests commit twice. Every test ends in bill_rig_done(): a commit, then per
 * task and input in = accepted + duplicates + rejected + pending, nothing
 * pending in billing and nothing rejected anywhere.
 *
 * Waits: allowed lateness 1 min, billing.grace.ms 1 h, watermark.idle.ms
 * 1 h (wall clock) unless a test sets it.
 *
 * Tenant "t-coop", every site in Europe/Oslo, NOK, VAT 25 %, 22 kW, one
 * price version from 2026-01-01, ENERGY only, per Wh (step_size 1):
 *   resident  2.50 NOK/kWh   (u-anna: badges B-ANNA, B-ANNA2)
 *   default   4.00 NOK/kWh   (u-bo, group "employee" without a plan: B-BO)
 *   no user   5.00 NOK/kWh   (billed to the site)
 * Sites: site-m and site-m2 bill by MONTH, site-w by ISO WEEK, site-d by
 * DAY. Amounts: excl = Wh * price / 1000 in øre rounded half up once; VAT =
 * excl * 25 % rounded half up (README, "Pricing").
 *
 * Time (UTC ms; Oslo is UTC+1 from 2026-10-25 to 2027-03-28):
 *   NOV_START 2026-10-31T23:00Z = 2026-11-01 00:00 Oslo
 *   DEC_START = NOV_START + 30 d = 2026-11-30T23:00Z (2026-12-01 00:00)
 *   JAN_START = DEC_START + 31 d = 2026-12-31T23:00Z (2027-01-01 00:00)
 *   OCT_START = NOV_START - 31 d - 1 h = 2026-09-30T22:00Z: October has 31
 *     days, one of them (Oct 25, the end of summer time) 25 h long.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "codec.h"
#include "config.h"
#include "inproc.h"
#include "records.h"
#include "report.h"
#include "rig.h"
#include "tables.h"
#include "task.h"

#define MIN  60000LL
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

#define NOV_START 1793487600000LL /* 2026-10-31T23:00Z */
#define DEC_START (NOV_START + 30 * DAY)
#define JAN_START (DEC_START + 31 * DAY)
#define OCT_START (NOV_START - 31 * DAY - HOUR)
#define V1_FROM   1767222000000LL /* 2026-01-01 00:00 Oslo */

#define LATENESS   (1 * MIN)
#define GRACE      HOUR
#define IDLE_LARGE HOUR

/* ------------------------------------------------------------------ rig */

/* The rating task of partition p and the billing task of partition q. */
static cf_task *rating(cf_rig *r, int32_t p)
{
        return cf_rig_task(r, p);
}

static cf_task *billing(cf_rig *r, int32_t q)
{
        return cf_rig_task(r, r->parts + q);
}

static void commit2(cf_rig *r)
{
        cf_rig_commit(r);
        cf_rig_commit(r);
}

/* Beyond the rig's conservation check (cf_rig_check): nothing was
 * rejected anywhere and nothing waits in billing. Call after a commit. */
static void check_billing(cf_rig *r)
{
        for (int32_t i = 0; i < 2 * r->parts; i++) {
                const cf_task *t = cf_rig_task(r, i);
                assert_non_null(t);
                for (int in = 0; in < CF_IN__CNT; in++) {
                        const cf_counts *c = &t->cnt[in];
                        assert_int_equal(c->rejected, 0);
                        if (t->sub == 'B')
                                assert_int_equal(c->pending, 0);
                }
        }
        assert_int_equal(r->n_rejects, 0);
}

/* Commits, checks the accounting (cf_rig_check, check_billing), and
 * removes everything. */
static void bill_rig_done(cf_rig *r)
{
        cf_rig_commit(r);
        cf_rig_check(r);
        check_billing(r);
        cf_rig_free(r);
}

/* ------------------------------------------------------------- tables */

static void publish_site(cf_rig *r, const char *site_id, int32_t period)
{
        /* Micro-NOK per kWh. */
        cf_price_component res[] = { { CF_DIM_ENERGY, 2500000, CF_NONE, 1 } };
        cf_price_component dflt[] = { { CF_DIM_ENERGY, 4000000, CF_NONE, 1 } };
        cf_price_component unauth[] = { { CF_DIM_ENERGY, 5000000, CF_NONE,
                                          1 } };
        cf_tariff_element e_res = { res, 1, NULL };
        cf_tariff_element e_dflt = { dflt, 1, NULL };
        cf_tariff_element e_unauth = { unauth, 1, NULL };
        cf_tariff t_unauth = cf_rig_tariff("unauth-v1", &e_unauth);
        cf_group_plan plans[] = {
                { "resident", cf_rig_tariff("resident-v1", &e_res) },
        };
        cf_price_version pv = { V1_FROM,   plans,
                                1,         cf_rig_tariff("default-v1", &e_dflt),
                                &t_unauth, NULL,
                                0 };
        cf_site s = {
                .site_id = (char *)site_id,
                .tenant_id = "t-coop",
                .name = "Coop",
                .time_zone = "Europe/Oslo",
                .billing_period = period,
                .currency = "NOK",
                .vat_bp = 2500,
                .max_power_w = 22000,
                .access_control = true,
                .versions = &pv,
                .n_versions = 1,
                .updated_ms = V1_FROM,
        };
        cf_rig_table(r, CF_TABLE_SITES, CF_RT_SITE, site_id, &s);
}

static void publish_sites(cf_rig *r)
{
        publish_site(r, "site-m", CF_PERIOD_MONTH);
        publish_site(r, "site-m2", CF_PERIOD_MONTH);
        publish_site(r, "site-w", CF_PERIOD_WEEK);
        publish_site(r, "site-d", CF_PERIOD_DAY);
}

static void publish_user(cf_rig *r, const char *id, const char *group,
                         char **badges, uint32_t n_badges)
{
        cf_user u = { .user_id = (char *)id,
                      .tenant_id = "t-coop",
                      .name = NULL,
                      .group = (char *)group,
                      .badges = badges,
                      .n_badges = n_badges,
                      .updated_ms = V1_FROM };
        cf_rig_table(r, CF_TABLE_USERS, CF_RT_USER, id, &u);
}

static void publish_users(cf_rig *r)
{
        char *anna[] = { "B-ANNA", "B-ANNA2" };
        char *bo[] = { "B-BO" };
        publish_user(r, "u-anna", "resident", anna, 2);
        publish_user(r, "u-bo", "employee", bo, 1);
}

/* A rig on a fresh state directory with `parts` partitions, the sites and
 * users published; idle_ms is watermark.idle.ms; per_commit is
 * billing.statements.per.commit (0: the default). */
static cf_rig *bill_rig_with(int32_t parts, int64_t idle_ms, int per_commit)
{
        cf_rig *r = cf_rig_new("bill");
        if (per_commit)
                cf_rig_set_int(r, "billing.statements.per.commit", per_commit);
        cf_rig_set_int(r, "allowed.lateness.ms", LATENESS);
        cf_rig_set_int(r, "billing.grace.ms", GRACE);
        cf_rig_set_int(r, "watermark.idle.ms", idle_ms);
        cf_rig_set_int(r, "session.timeout.ms", 40 * MIN);
        cf_rig_set_int(r, "max.clock.skew.ms", HOUR);
        cf_rig_open(r, parts);
        publish_sites(r);
        publish_users(r);
        return r;
}

static cf_rig *bill_rig_new(int32_t parts, int64_t idle_ms)
{
        return bill_rig_with(parts, idle_ms, 0);
}

/* -------------------------------------------------------------- inputs */

/* Moves the rating watermark (stream time - lateness) to w. */
static void watermark_to(cf_rig *r, int64_t w)
{
        cf_rig_tick(r, w + LATENESS);
        assert_int_equal(cf_task_watermark(rating(r, r->last_part)), w);
}

typedef struct sess {
        const char *sid, *site, *charger, *user, *badge;
        int64_t start, stop, wh;
} sess;

static void feed_ev(cf_rig *r, int32_t part, int64_t ts, const sess *s,
                    const char *what, int32_t kind, int64_t t, int64_t wh)
{
        char id[64];
        snprintf(id, sizeof(id), "%s-%s", s->sid, what);
        cf_session_event e = {
                .event_id = id,
                .kind = kind,
                .session_id = (char *)s->sid,
                .site_id = (char *)s->site,
                .charger_id = (char *)s->charger,
                .connector_id = 1,
                .time_ms = t,
                .energy_wh = wh,
                .user_id = kind == CF_SESSION_STARTED ? (char *)s->user : NULL,
                .badge_id =
                    kind == CF_SESSION_STARTED ? (char *)s->badge : NULL,
                .stop_reason = kind == CF_SESSION_STOPPED ? CF_STOP_LOCAL : -1,
        };
        cf_rig_feed(r, part, CF_IN_SESSIONS, ts, s->charger,
                    CF_RT_SESSION_EVENT, &e);
}

/*
 * A session on partition part: STARTED (register 100000 Wh), three readings
 * at a quarter, half and three quarters of its span (the register a quarter
 * of s->wh further each time), STOPPED (100000 + wh). Kafka timestamps are
 * the event times when upload is CF_NONE; otherwise upload, upload + 1 s,
 * ... (a charger uploading its backlog late). The session is priced once
 * its rating task's stream time is the stop's timestamp + 1 min.
 */
static void feed_session_at(cf_rig *r, int32_t part, const sess *s,
                            int64_t upload)
{
        int64_t span = s->stop - s->start;
        int64_t k = 0;
#define TS(t) (upload == CF_NONE ? (t) : upload + 1000 * k++)
        feed_ev(r, part, TS(s->start), s, "start", CF_SESSION_STARTED, s->start,
                100000);
        for (int i = 1; i <= 3; i++) {
                char id[64];
                snprintf(id, sizeof(id), "%s-r%d", s->sid, i);
                int64_t t = s->start + span * i / 4;
                cf_meter_reading m = { .event_id = id,
                                       .session_id = (char *)s->sid,
                                       .site_id = (char *)s->site,
                                       .charger_id = (char *)s->charger,
                                       .connector_id = 1,
                                       .seq_no = ++r->next_seq,
                                       .time_ms = t,
                                       .energy_wh = 100000 + s->wh * i / 4,
                                       .power_w = CF_NONE,
                                       .current_ma = CF_NONE };
                cf_rig_feed(r, part, CF_IN_METER, TS(t), s->charger,
                            CF_RT_METER_READING, &m);
        }
        feed_ev(r, part, TS(s->stop), s, "stop", CF_SESSION_STOPPED, s->stop,
                100000 + s->wh);
#undef TS
}

/* Feeds a session on partition 0 at its event times and moves the stream
 * time to its stop + 1 min, where it is priced. */
static void feed_session(cf_rig *r, const sess *s)
{
        feed_session_at(r, 0, s, CF_NONE);
        cf_rig_tick(r, s->stop + LATENESS);
}

/* ------------------------------------------------------------- helpers */
/* The statement of (party, period): exactly one. */
static const cf_statement *stmt_of(cf_rig *r, const char *party,
                                   const char *period)
{
        const cf_statement *found = NULL;
        for (size_t i = 0; i < r->n_stmts; i++) {
                const cf_statement *st = r->stmts[i];
                if (!strcmp(st->billed_party, party) &&
                    !strcmp(st->period_id, period)) {
                        assert_null(found);
                        found = st;
                }
        }
        if (!found)
                fail_msg("no statement of %s for %s", party, period);
        return found;
}

/* How many statements carry this id. */
static int stmts_with_id(cf_rig *r, const char *id)
{
        int n = 0;
        for (size_t i = 0; i < r->n_stmts; i++)
                n += !strcmp(r->stmts[i]->statement_id, id);
        return n;
}

static void assert_line(const cf_statement_line *l, const char *key,
                        int64_t sessions, int64_t wh, int64_t excl, int64_t vat,
                        int64_t incl)
{
        assert_string_equal(l->key, key);
        assert_int_equal(l->sessions, sessions);
        assert_int_equal(l->energy_wh, wh);
        assert_int_equal(l->total_excl_vat, excl);
        assert_int_equal(l->total_vat, vat);
        assert_int_equal(l->total_incl_vat, incl);
}

static void assert_totals(const cf_statement *st, int64_t sessions, int64_t wh,
                          int64_t excl, int64_t vat, int64_t incl)
{
        assert_int_equal(st->session_count, sessions);
        assert_int_equal(st->energy_wh, wh);
        assert_int_equal(st->total_excl_vat, excl);
        assert_int_equal(st->total_vat, vat);
        assert_int_equal(st->total_incl_vat, incl);
}

static void assert_sorted(const cf_statement_line *l, uint32_t n)
{
        for (uint32_t i = 1; i < n; i++)
                assert_true(strcmp(l[i - 1].key, l[i].key) < 0);
}

/* The statement's count, energy and totals are the sums of its party's
 * charge records of its period; every line set sums to them too; the
 * fields every statement shares. */
static void assert_is_sum(cf_rig *r, const cf_statement *st)
{
        int64_t n = 0, wh = 0, excl = 0, vat = 0, incl = 0;
        for (size_t i = 0; i < r->n_charges; i++) {
                const cf_charge_record *cr = r->charges[i];
                if (strcmp(cr->billed_party, st->billed_party) ||
                    strcmp(cr->period_id, st->period_id))
                        continue;
                assert_string_equal(cr->tenant_id, st->tenant_id);
                assert_int_equal(cr->party_kind, st->party_kind);
                n++;
                wh += cr->energy_wh;
                excl += cr->total_excl_vat;
                vat += cr->total_vat;
                incl += cr->total_incl_vat;
        }
        assert_totals(st, n, wh, excl, vat, incl);
        const cf_statement_line *sets[] = { st->sites, st->chargers,
                                            st->badges };
        uint32_t ns[] = { st->n_sites, st->n_chargers, st->n_badges };
        for (int k = 0; k < 3; k++) {
                int64_t s[5] = { 0 };
                for (uint32_t i = 0; i < ns[k]; i++) {
                        s[0] += sets[k][i].sessions;
                        s[1] += sets[k][i].energy_wh;
                        s[2] += sets[k][i].total_excl_vat;
                        s[3] += sets[k][i].total_vat;
                        s[4] += sets[k][i].total_incl_vat;
                }
                assert_int_equal(s[0], n);
                assert_int_equal(s[1], wh);
                assert_int_equal(s[2], excl);
                assert_int_equal(s[3], vat);
                assert_int_equal(s[4], incl);
                assert_sorted(sets[k], ns[k]);
        }
        assert_int_equal(st->revision, 1);
        assert_string_equal(st->tenant_id, "t-coop");
        assert_string_equal(st->currency, "NOK");
        assert_int_equal(st->issued_ms, st->period_end_ms + GRACE);
        assert_int_equal(strlen(st->statement_id), 19); /* ST- + 16 hex */
        assert_memory_equal(st->statement_id, "ST-", 3);
}

static int64_t stat_of(cf_task *t, const char *stage, const char *name)
{
        for (size_t i = 0; i < t->n_stats; i++)
                if (!strcmp(t->stats[i].stage, stage) &&
                    !strcmp(t->stats[i].name, name))
                        return t->stats[i].value;
        return 0;
}

/* ------------------------------------------------------ 1. statements */

/*
 * November 2026 (all 08:00-09:00Z, day d = NOV_START + d days):
 *   S-A1 d2  u-anna site-m  CH-2 B-ANNA  10000 Wh *2.50 = 2500, VAT 625
 *   S-B1 d3  u-bo   site-m  CH-1 B-BO     8000 Wh *4.00 = 3200, VAT 800
 *   S-A2 d5  u-anna site-m  CH-1 B-ANNA2  6000 Wh *2.50 = 1500, VAT 375
 *   S-U1 d6  -      site-m  CH-3 -        3000 Wh *5.00 = 1500, VAT 375
 *   S-B2 d7  u-bo   site-m2 CH-9 B-BO     5000 Wh *4.00 = 2000, VAT 500
 *   S-A3 d8  u-anna site-m  CH-2 -        4000 Wh *2.50 = 1000, VAT 250
 *   S-U2 d9  -      site-m  CH-3 -        1234 Wh *5.00 =  617, VAT 154.25
 *                                                               -> 154
 *   S-A4 d10 u-anna site-m2 CH-9 B-ANNA   3333 Wh *2.50 = 833.25 -> 833,
 *                                                    VAT 208.25 -> 208
 * then S-M in December (u-anna, site-m, CH-1, 1000 Wh) and the watermark at
 * its stop, past November's end + 1 h.
 */
static const sess month_sessions[] = {
        { "S-A1", "site-m", "CH-2", "u-anna", "B-ANNA", 0, 0, 10000 },
        { "S-B1", "site-m", "CH-1", "u-bo", "B-BO", 0, 0, 8000 },
        { "S-A2", "site-m", "CH-1", "u-anna", "B-ANNA2", 0, 0, 6000 },
        { "S-U1", "site-m", "CH-3", NULL, NULL, 0, 0, 3000 },
        { "S-B2", "site-m2", "CH-9", "u-bo", "B-BO", 0, 0, 5000 },
        { "S-A3", "site-m", "CH-2", "u-anna", NULL, 0, 0, 4000 },
        { "S-U2", "site-m", "CH-3", NULL, NULL, 0, 0, 1234 },
        { "S-A4", "site-m2", "CH-9", "u-anna", "B-ANNA", 0, 0, 3333 },
};
static const int month_days[] = { 2, 3, 5, 6, 7, 8, 9, 10 };

/* The month's sessions and S-M fed, not yet committed; with u3 also
 * S-U3, unauthenticated at site-m2 on November 12 (4000 Wh). */
static void feed_month(cf_rig *r, bool u3)
{
        for (size_t i = 0; i < 8; i++) {
                sess s = month_sessions[i];
                s.start = NOV_START + month_days[i] * DAY + 9 * HOUR;
                s.stop = s.start + HOUR;
                feed_session(r, &s);
        }
        sess x = { "S-U3",
                   "site-m2",
                   "CH-9",
                   NULL,
                   NULL,
                   NOV_START + 11 * DAY + 9 * HOUR,
                   NOV_START + 11 * DAY + 10 * HOUR,
                   4000 };
        if (u3)
                feed_session(r, &x);
        sess m = { "S-M",
                   "site-m",
                   "CH-1",
                   "u-anna",
                   "B-ANNA",
                   DEC_START + DAY + 9 * HOUR,
                   DEC_START + DAY + 10 * HOUR,
                   1000 };
        feed_session(r, &m);
}

static cf_rig *run_month(void)
{
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        feed_month(r, false);
        commit2(r);
        return r;
}

static void bill_statement_equals_sum_of_its_charge_records(void **state)
{
        (void)state;
        cf_rig *r = run_month();
        assert_int_equal(r->n_charges, 9);
        /* One statement per party of November; December is open. */
        assert_int_equal(r->n_stmts, 3);
        /* Closed in ledger key order: tenant, party, period. */
        assert_string_equal(r->stmts[0]->billed_party, "site-m");
        assert_string_equal(r->stmts[1]->billed_party, "u-anna");
        assert_string_equal(r->stmts[2]->billed_party, "u-bo");
        for (size_t i = 0; i < r->n_stmts; i++) {
                const cf_statement *st = r->stmts[i];
                assert_is_sum(r, st);
                assert_string_equal(st->period_id, "2026-11");
                assert_int_equal(st->period_start_ms, NOV_START);
                assert_int_equal(st->period_end_ms, DEC_START);
                assert_int_equal(st->issued_ms, DEC_START + GRACE);
                assert_int_equal(st->n_adjustments, 0);
                assert_int_equal(stmts_with_id(r, st->statement_id), 1);
        }

        /* u-anna: S-A1, S-A2, S-A3, S-A4: 4 sessions, 23333 Wh, excl
         * 2500 + 1500 + 1000 + 833 = 5833, VAT 625 + 375 + 250 + 208 =
         * 1458, incl 7291. */
        const cf_statement *st = stmt_of(r, "u-anna", "2026-11");
        assert_int_equal(st->party_kind, CF_PARTY_USER);
        assert_totals(st, 4, 23333, 5833, 1458, 7291);
        assert_int_equal(st->n_sites, 2);
        assert_line(&st->sites[0], "site-m", 3, 20000, 5000, 1250, 6250);
        assert_line(&st->sites[1], "site-m2", 1, 3333, 833, 208, 1041);
        assert_int_equal(st->n_chargers, 3);
        assert_line(&st->chargers[0], "CH-1", 1, 6000, 1500, 375, 1875);
        assert_line(&st->chargers[1], "CH-2", 2, 14000, 3500, 875, 4375);
        assert_line(&st->chargers[2], "CH-9", 1, 3333, 833, 208, 1041);
        /* Keys by byte: "B-ANNA" < "B-ANNA2" < "none" (no badge). */
        assert_int_equal(st->n_badges, 3);
        assert_line(&st->badges[0], "B-ANNA", 2, 13333, 3333, 833, 4166);
        assert_line(&st->badges[1], "B-ANNA2", 1, 6000, 1500, 375, 1875);
        assert_line(&st->badges[2], "none", 1, 4000, 1000, 250, 1250);

        /* u-bo: 8000 + 5000 Wh, 3200 + 2000 = 5200, VAT 1300, 6500. */
        st = stmt_of(r, "u-bo", "2026-11");
        assert_int_equal(st->party_kind, CF_PARTY_USER);
        assert_totals(st, 2, 13000, 5200, 1300, 6500);
        assert_int_equal(st->n_sites, 2);
        assert_line(&st->sites[0], "site-m", 1, 8000, 3200, 800, 4000);
        assert_line(&st->sites[1], "site-m2", 1, 5000, 2000, 500, 2500);
        assert_int_equal(st->n_chargers, 2);
        assert_line(&st->chargers[0], "CH-1", 1, 8000, 3200, 800, 4000);
        assert_line(&st->chargers[1], "CH-9", 1, 5000, 2000, 500, 2500);
        assert_int_equal(st->n_badges, 1);
        assert_line(&st->badges[0], "B-BO", 2, 13000, 5200, 1300, 6500);

        /* The site pays its unauthenticated sessions: 3000 + 1234 Wh, 1500
         * + 617 = 2117, VAT 375 + 154 = 529, incl 2646. */
        st = stmt_of(r, "site-m", "2026-11");
        assert_int_equal(st->party_kind, CF_PARTY_SITE);
        assert_totals(st, 2, 4234, 2117, 529, 2646);
        assert_int_equal(st->n_sites, 1);
        assert_line(&st->sites[0], "site-m", 2, 4234, 2117, 529, 2646);
        assert_int_equal(st->n_chargers, 1);
        assert_line(&st->chargers[0], "CH-3", 2, 4234, 2117, 529, 2646);
        assert_int_equal(st->n_badges, 1);
        assert_line(&st->badges[0], "none", 2, 4234, 2117, 529, 2646);

        /* The same input in a fresh state directory: the same statements,
         * byte for byte (ids included). */
        cf_rig *r2 = run_month();
        assert_int_equal(r2->n_stmts, r->n_stmts);
        for (size_t i = 0; i < r->n_stmts; i++) {
                assert_string_equal(r2->stmts[i]->statement_id,
                                    r->stmts[i]->statement_id);
                assert_int_equal(r2->stmt_bytes[i].len, r->stmt_bytes[i].len);
                assert_memory_equal(r2->stmt_bytes[i].p, r->stmt_bytes[i].p,
                                    r->stmt_bytes[i].len);
        }
        /* Distinct parties, distinct ids. */
        assert_string_not_equal(r->stmts[0]->statement_id,
                                r->stmts[1]->statement_id);
        assert_string_not_equal(r->stmts[1]->statement_id,
                                r->stmts[2]->statement_id);
        bill_rig_done(r2);
        bill_rig_done(r);
}

/* ------------------------------------------------------------ 2. grace */

static void bill_period_not_closed_before_grace(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* 2000 Wh * 2.50 = 500, VAT 125. */
        sess s = { "S-1",
                   "site-m",
                   "CH-1",
                   "u-anna",
                   "B-ANNA",
                   NOV_START + 9 * DAY + 8 * HOUR,
                   NOV_START + 9 * DAY + 9 * HOUR,
                   2000 };
        feed_session(r, &s);
        /* November ends at DEC_START; it closes when DEC_START + 1 h is at
         * or behind the watermark. One ms before: nothing, however many
         * commits. */
        watermark_to(r, DEC_START + GRACE - 1);
        commit2(r);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 1);
        assert_int_equal(r->n_stmts, 0);
        watermark_to(r, DEC_START + GRACE);
        /* Rating sends the watermark at this commit; billing reads it
         * then, and its statement comes with the next commit. */
        cf_rig_commit(r);
        assert_int_equal(r->n_stmts, 0);
        cf_rig_commit(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 2000, 500, 125, 625);
        assert_int_equal(st->issued_ms, DEC_START + GRACE);
        cf_rig_commit(r);
        assert_int_equal(r->n_stmts, 1);
        bill_rig_done(r);
}

/* -------------------------------------------------------------- 3. DST */

static void bill_month_boundary_with_dst_in_oslo(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* Stops 2026-10-31T22:30Z = 23:30 Oslo (UTC+1 since Oct 25): in
         * October. 5000 Wh * 2.50 = 1250, VAT 312.5 -> 313. */
        sess oct = { "S-OCT",
                     "site-m",
                     "CH-1",
                     "u-anna",
                     "B-ANNA",
                     NOV_START - 90 * MIN,
                     NOV_START - 30 * MIN,
                     5000 };
        /* Stops 2026-10-31T23:30Z = 2026-11-01 00:30 Oslo: in November.
         * 4000 Wh * 2.50 = 1000, VAT 250. */
        sess nov = { "S-NOV",
                     "site-m",
                     "CH-2",
                     "u-anna",
                     "B-ANNA",
                     NOV_START - 20 * MIN,
                     NOV_START + 30 * MIN,
                     4000 };
        feed_session(r, &oct);
        feed_session(r, &nov);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 2);
        assert_string_equal(cf_rig_charge_of(r, "S-OCT")->period_id, "2026-10");
        assert_string_equal(cf_rig_charge_of(r, "S-NOV")->period_id, "2026-11");

        /* October closes at its end + 1 h; November stays open. */
        watermark_to(r, NOV_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-10");
        assert_is_sum(r, st);
        assert_totals(st, 1, 5000, 1250, 313, 1563);
        /* 2026-10-01 00:00 CEST (UTC+2) = 2026-09-30T22:00Z;
         * 2026-11-01 00:00 CET (UTC+1) = 2026-10-31T23:00Z. */
        assert_int_equal(st->period_start_ms, 1790805600000LL);
        assert_int_equal(st->period_start_ms, OCT_START);
        assert_int_equal(st->period_end_ms, 1793487600000LL);
        assert_int_equal(st->issued_ms, NOV_START + GRACE);

        watermark_to(r, DEC_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 2);
        st = stmt_of(r, "u-anna", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 4000, 1000, 250, 1250);
        assert_int_equal(st->period_start_ms, NOV_START);
        /* 2026-12-01 00:00 CET = 2026-11-30T23:00Z. */
        assert_int_equal(st->period_end_ms, 1796079600000LL);
        assert_string_not_equal(r->stmts[0]->statement_id,
                                r->stmts[1]->statement_id);
        bill_rig_done(r);
}

/* -------------------------------------------------------- 4. ISO weeks */

/*
 * 2026-01-01 is a Thursday and 2026 has 365 days (52 weeks + 1 day), so
 * 2026-12-31 is a Thursday too: the week Monday 2026-12-28 .. Sunday
 * 2027-01-03 has its Thursday in 2026 and is 2026-W53 ((Dec 31 - Jan 1) / 7
 * + 1 = 364 / 7 + 1 = 53). Monday 2027-01-04 starts 2027-W01 (its Thursday,
 * Jan 7, is the first of 2027). In Oslo (UTC+1):
 *   W53 = [2026-12-27T23:00Z, 2027-01-03T23:00Z) = [DEC_START + 27 d, +7 d)
 *   W01 = [2027-01-03T23:00Z, 2027-01-10T23:00Z)
 */
#define W53_START (DEC_START + 27 * DAY)
#define W01_START (W53_START + 7 * DAY)
#define W01_END   (W01_START + 7 * DAY)

static void bill_iso_weeks_across_year_end(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* Thursday 2026-12-31 12:00 Oslo = 11:00Z = JAN_START - 12 h.
         * 2000 Wh * 2.50 = 500, VAT 125. */
        sess w1 = { "S-W1",
                    "site-w",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    JAN_START - 13 * HOUR,
                    JAN_START - 12 * HOUR,
                    2000 };
        /* Sunday 2027-01-03 23:30 Oslo = 22:30Z: still W53.
         * 3000 Wh * 2.50 = 750, VAT 187.5 -> 188. */
        sess w2 = { "S-W2",
                    "site-w",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    W01_START - 90 * MIN,
                    W01_START - 30 * MIN,
                    3000 };
        /* Monday 2027-01-04 00:30 Oslo = 2027-01-03T23:30Z: W01.
         * 4000 Wh * 2.50 = 1000, VAT 250. */
        sess w3 = { "S-W3",
                    "site-w",
                    "CH-2",
                    "u-anna",
                    "B-ANNA",
                    W01_START - 20 * MIN,
                    W01_START + 30 * MIN,
                    4000 };
        feed_session(r, &w1);
        feed_session(r, &w2);
        feed_session(r, &w3);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 3);
        assert_string_equal(cf_rig_charge_of(r, "S-W1")->period_id, "2026-W53");
        assert_string_equal(cf_rig_charge_of(r, "S-W2")->period_id, "2026-W53");
        assert_string_equal(cf_rig_charge_of(r, "S-W3")->period_id, "2027-W01");

        watermark_to(r, W01_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-W53");
        assert_is_sum(r, st);
        /* 2000 + 3000 Wh, 500 + 750 = 1250, VAT 125 + 188 = 313. */
        assert_totals(st, 2, 5000, 1250, 313, 1563);
        assert_int_equal(st->period_start_ms, 1798412400000LL);
        assert_int_equal(st->period_start_ms, W53_START);
        assert_int_equal(st->period_end_ms, 1799017200000LL);

        watermark_to(r, W01_END + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 2);
        st = stmt_of(r, "u-anna", "2027-W01");
        assert_is_sum(r, st);
        assert_totals(st, 1, 4000, 1000, 250, 1250);
        assert_int_equal(st->period_start_ms, 1799017200000LL);
        assert_int_equal(st->period_end_ms, 1799622000000LL);
        assert_int_equal(st->issued_ms, W01_END + GRACE);
        bill_rig_done(r);
}

/* ------------------------------------------------------- 5. adjustment */

/* Found by these tests: a session whose stop was seen in time but that was
 * priced only when the next record jumped the stream past its period's end
 * plus grace carried the watermark after the jump, and became an
 * adjustment in the next period. It carries the watermark of when it
 * became due. */
static void
bill_session_due_before_a_stream_jump_stays_in_its_period(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* November 11: 2000 Wh * 2.50 = 500, VAT 125. */
        sess s1 = { "S-1",
                    "site-m",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    NOV_START + 10 * DAY + 8 * HOUR,
                    NOV_START + 10 * DAY + 9 * HOUR,
                    2000 };
        /* The next record is December 2: the stream jumps past November's
         * end + 1 h before S-1 has been priced. */
        sess s2 = { "S-2",
                    "site-m",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    DEC_START + DAY + 8 * HOUR,
                    DEC_START + DAY + 9 * HOUR,
                    4000 };
        feed_session_at(r, 0, &s1, CF_NONE);
        feed_session_at(r, 0, &s2, CF_NONE);
        commit2(r);
        /* S-1 is in u-anna's November statement, not an adjustment. */
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *nov = stmt_of(r, "u-anna", "2026-11");
        assert_totals(nov, 1, 2000, 500, 125, 625);
        assert_int_equal(nov->n_adjustments, 0);
        cf_inproc_drain(r->ip);
        commit2(r);
        const cf_statement *dec = stmt_of(r, "u-anna", "2026-12");
        /* December: S-2 only, 4000 Wh * 2.50 = 1000, VAT 250. */
        assert_totals(dec, 1, 4000, 1000, 250, 1250);
        assert_int_equal(dec->n_adjustments, 0);
        bill_rig_done(r);
}

static void bill_late_session_becomes_adjustment(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* November: 2000 Wh * 2.50 = 500, VAT 125. */
        sess s1 = { "S-1",
                    "site-m",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    NOV_START + 9 * DAY + 8 * HOUR,
                    NOV_START + 9 * DAY + 9 * HOUR,
                    2000 };
        /* December 3: 4000 Wh * 2.50 = 1000, VAT 250. */
        sess s2 = { "S-2",
                    "site-m",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    DEC_START + 2 * DAY + 8 * HOUR,
                    DEC_START + 2 * DAY + 9 * HOUR,
                    4000 };
        feed_session(r, &s1);
        feed_session(r, &s2);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *nov = stmt_of(r, "u-anna", "2026-11");
        assert_totals(nov, 1, 2000, 500, 125, 625);
        char nov_id[32];
        snprintf(nov_id, sizeof(nov_id), "%s", nov->statement_id);

        /* CH-7 was offline in November and uploads its session now: event
         * times 2026-11-20, Kafka timestamps after s2. 6000 Wh * 2.50 =
         * 1500, VAT 375. It is priced with the watermark past November's
         * end + 1 h: late. */
        sess late = { "S-LATE",
                      "site-m",
                      "CH-7",
                      "u-anna",
                      "B-ANNA",
                      NOV_START + 19 * DAY + 8 * HOUR,
                      NOV_START + 19 * DAY + 9 * HOUR,
                      6000 };
        int64_t up = s2.stop + 10 * MIN;
        feed_session_at(r, 0, &late, up);
        /* CH-8 likewise, for u-bo, who has nothing else in December:
         * 1000 Wh * 4.00 = 400, VAT 100. */
        sess late_bo = { "S-LATE-BO",
                         "site-m",
                         "CH-8",
                         "u-bo",
                         "B-BO",
                         NOV_START + 21 * DAY + 8 * HOUR,
                         NOV_START + 21 * DAY + 9 * HOUR,
                         1000 };
        feed_session_at(r, 0, &late_bo, up + 10 * MIN);
        /* The last stop's timestamp is up + 10 min + 4 s. */
        cf_rig_tick(r, up + 10 * MIN + 4000 + LATENESS);
        commit2(r);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-LATE");
        assert_string_equal(cr->period_id, "2026-11");
        assert_int_equal(cr->total_excl_vat, 1500);
        assert_int_equal(cr->total_vat, 375);
        /* November is not issued again; December is not due yet. */
        assert_int_equal(r->n_stmts, 1);
        assert_int_equal(stat_of(billing(r, 0), "bill", "adjustments"), 2);

        /* December closes at its end (JAN_START) + 1 h. */
        watermark_to(r, JAN_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 3);
        assert_int_equal(stmts_with_id(r, nov_id), 1);
        const cf_statement *dec = stmt_of(r, "u-anna", "2026-12");
        assert_int_equal(dec->period_start_ms, DEC_START);
        assert_int_equal(dec->period_end_ms, JAN_START);
        assert_int_equal(dec->revision, 1);
        /* Count, energy and lines: S-2 only. Totals: S-2 + the adjustment,
         * 1000 + 1500 = 2500, VAT 250 + 375 = 625, incl 3125. */
        assert_totals(dec, 1, 4000, 2500, 625, 3125);
        assert_int_equal(dec->n_sites, 1);
        assert_line(&dec->sites[0], "site-m", 1, 4000, 1000, 250, 1250);
        assert_int_equal(dec->n_chargers, 1);
        assert_line(&dec->chargers[0], "CH-1", 1, 4000, 1000, 250, 1250);
        assert_int_equal(dec->n_badges, 1);
        assert_line(&dec->badges[0], "B-ANNA", 1, 4000, 1000, 250, 1250);
        assert_int_equal(dec->n_adjustments, 1);
        const cf_adjustment *a = &dec->adjustments[0];
        assert_string_equal(a->record_id, cr->record_id);
        assert_string_equal(a->session_id, "S-LATE");
        assert_string_equal(a->original_period_id, "2026-11");
        assert_int_equal(a->energy_wh, 6000);
        assert_int_equal(a->total_excl_vat, 1500);
        assert_int_equal(a->total_vat, 375);
        assert_int_equal(a->total_incl_vat, 1875);

        /* u-bo's December: no session, no line, only the adjustment. */
        const cf_statement *bo = stmt_of(r, "u-bo", "2026-12");
        assert_totals(bo, 0, 0, 400, 100, 500);
        assert_int_equal(bo->n_sites, 0);
        assert_int_equal(bo->n_chargers, 0);
        assert_int_equal(bo->n_badges, 0);
        assert_int_equal(bo->n_adjustments, 1);
        a = &bo->adjustments[0];
        assert_string_equal(a->record_id,
                            cf_rig_charge_of(r, "S-LATE-BO")->record_id);
        assert_string_equal(a->session_id, "S-LATE-BO");
        assert_string_equal(a->original_period_id, "2026-11");
        assert_int_equal(a->energy_wh, 1000);
        assert_int_equal(a->total_excl_vat, 400);
        assert_int_equal(a->total_vat, 100);
        assert_int_equal(a->total_incl_vat, 500);
        assert_int_equal(bo->issued_ms, JAN_START + GRACE);
        bill_rig_done(r);
}

/* ------------------------------------------------------- 5b. corrections */

/* A reading of s's session at t with register wh, on partition 0. */
static void feed_reading(cf_rig *r, int64_t ts, const sess *s, const char *what,
                         int64_t t, int64_t wh)
{
        char id[64];
        snprintf(id, sizeof(id), "%s-%s", s->sid, what);
        cf_meter_reading m = { .event_id = id,
                               .session_id = (char *)s->sid,
                               .site_id = (char *)s->site,
                               .charger_id = (char *)s->charger,
                               .connector_id = 1,
                               .seq_no = ++r->next_seq,
                               .time_ms = t,
                               .energy_wh = wh,
                               .power_w = CF_NONE,
                               .current_ma = CF_NONE };
        cf_rig_feed(r, 0, CF_IN_METER, ts, s->charger, CF_RT_METER_READING, &m);
}

/*
 * Issue 17: late stops correct sessions closed without them. u-anna is a
 * resident (2.50 NOK/kWh, VAT 25 % half up), site-m bills by month.
 *
 * S-A (CH-1, Nov 10): STARTED 08:00 at 100000 Wh, a reading 08:30 at
 * 102000; S-B starts on the connector at 09:00 before S-A's stop came, so
 * S-A is billed from its last reading: 2000 Wh, 500, VAT 125, 625. Its stop
 * (08:45, 103000) comes at 10:10, November still open: revision 2, 3000
 * Wh, 750, VAT 187.5 -> 188, 938; difference 1000 Wh, 250, 63, 313, added
 * to November. S-B: 09:00 103000 -> 10:00 107000: 4000 Wh, 1000, 250, 1250.
 *
 * S-C (CH-2, Nov 20): STARTED 08:00 at 100000, reading 08:30 at 101000; S-D
 * starts at 09:00 (102000) and stops at 10:00 (104000): 2000 Wh, 500, 125,
 * 625. S-C is billed at 1000 Wh: 250, VAT 62.5 -> 63, 313. Its stop
 * (08:50, 102000) comes on Dec 1 after November was issued: revision 2,
 * 2000 Wh, 500, 125, 625; difference 1000 Wh, 250, 62, 312: an adjustment
 * line (revision 2, original period 2026-11) in December's statement.
 *
 * November: 4 sessions, 3000 + 4000 + 1000 + 2000 = 10000 Wh; excl. 750 +
 * 1000 + 250 + 500 = 2500; VAT 188 + 250 + 63 + 125 = 626; incl. 3126.
 * December: no session; the adjustment: 250, 62, 312.
 */
static void bill_late_stop_is_a_correction(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        const int64_t d10 = NOV_START + 9 * DAY, d20 = NOV_START + 19 * DAY;
        sess sa = { "S-A", "site-m", "CH-1", "u-anna", "B-ANNA", 0, 0, 0 };
        sess sb = sa, sc = sa, sd = sa;
        sb.sid = "S-B";
        sc.sid = "S-C";
        sc.charger = "CH-2";
        sd.sid = "S-D";
        sd.charger = "CH-2";
        feed_ev(r, 0, d10 + 8 * HOUR, &sa, "start", CF_SESSION_STARTED,
                d10 + 8 * HOUR, 100000);
        feed_reading(r, d10 + 8 * HOUR + 30 * MIN, &sa, "r1",
                     d10 + 8 * HOUR + 30 * MIN, 102000);
        feed_ev(r, 0, d10 + 9 * HOUR, &sb, "start", CF_SESSION_STARTED,
                d10 + 9 * HOUR, 103000);
        feed_ev(r, 0, d10 + 10 * HOUR, &sb, "stop", CF_SESSION_STOPPED,
                d10 + 10 * HOUR, 107000);
        feed_ev(r, 0, d10 + 10 * HOUR + 10 * MIN, &sa, "stop",
                CF_SESSION_STOPPED, d10 + 8 * HOUR + 45 * MIN, 103000);
        feed_ev(r, 0, d20 + 8 * HOUR, &sc, "start", CF_SESSION_STARTED,
                d20 + 8 * HOUR, 100000);
        feed_reading(r, d20 + 8 * HOUR + 30 * MIN, &sc, "r1",
                     d20 + 8 * HOUR + 30 * MIN, 101000);
        feed_ev(r, 0, d20 + 9 * HOUR, &sd, "start", CF_SESSION_STARTED,
                d20 + 9 * HOUR, 102000);
        feed_ev(r, 0, d20 + 10 * HOUR, &sd, "stop", CF_SESSION_STOPPED,
                d20 + 10 * HOUR, 104000);
        /* November closes at its end + 1 h. */
        watermark_to(r, DEC_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *nov = stmt_of(r, "u-anna", "2026-11");
        assert_totals(nov, 4, 10000, 2500, 626, 3126);
        assert_int_equal(nov->n_adjustments, 0);
        assert_int_equal(nov->n_chargers, 2);
        /* CH-1: S-A corrected in the period and S-B. */
        assert_line(&nov->chargers[0], "CH-1", 2, 7000, 1750, 438, 2188);
        assert_line(&nov->chargers[1], "CH-2", 2, 3000, 750, 188, 938);
        assert_int_equal(
            stat_of(billing(r, 0), "bill", "corrections_in_period"), 1);

        /* S-C's stop, uploaded on December 1. */
        int64_t up = DEC_START + GRACE + 2 * MIN;
        feed_ev(r, 0, up, &sc, "stop", CF_SESSION_STOPPED,
                d20 + 8 * HOUR + 50 * MIN, 102000);
        cf_rig_tick(r, up + LATENESS);
        watermark_to(r, JAN_START + GRACE);
        commit2(r);
        /* S-A and S-C: two records each, revisions 1 and 2. */
        int revs[2] = { 0, 0 };
        for (size_t i = 0; i < r->n_charges; i++) {
                const cf_charge_record *cr = r->charges[i];
                if (!strcmp(cr->session_id, "S-A") ||
                    !strcmp(cr->session_id, "S-C"))
                        revs[cr->revision == 2]++;
                else
                        assert_int_equal(cr->revision, 1);
                assert_string_equal(cr->period_id, "2026-11");
        }
        assert_int_equal(revs[0], 2);
        assert_int_equal(revs[1], 2);
        assert_int_equal(r->n_stmts, 2);
        const cf_statement *dec = stmt_of(r, "u-anna", "2026-12");
        assert_totals(dec, 0, 0, 250, 62, 312);
        assert_int_equal(dec->n_adjustments, 1);
        const cf_adjustment *a = &dec->adjustments[0];
        assert_string_equal(a->session_id, "S-C");
        assert_int_equal(a->revision, 2);
        assert_string_equal(a->original_period_id, "2026-11");
        assert_int_equal(a->energy_wh, 1000);
        assert_int_equal(a->total_excl_vat, 250);
        assert_int_equal(a->total_vat, 62);
        assert_int_equal(a->total_incl_vat, 312);
        bill_rig_done(r);
}

/* ------------------------------------------------------------ 6. dedup */

static void bill_drops_repeated_repartition_records(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* u-anna 2000 Wh * 2.50 = 500, VAT 125; u-bo 8000 Wh * 4.00 =
         * 3200, VAT 800. */
        sess s1 = { "S-1",
                    "site-m",
                    "CH-1",
                    "u-anna",
                    "B-ANNA",
                    NOV_START + 9 * DAY + 8 * HOUR,
                    NOV_START + 9 * DAY + 9 * HOUR,
                    2000 };
        sess s2 = { "S-2",
                    "site-m",
                    "CH-2",
                    "u-bo",
                    "B-BO",
                    NOV_START + 10 * DAY + 8 * HOUR,
                    NOV_START + 10 * DAY + 9 * HOUR,
                    8000 };
        feed_session(r, &s1);
        feed_session(r, &s2);
        commit2(r);
        assert_int_equal(r->n_charges, 2);
        assert_int_equal(r->n_rp, 2);
        cf_task *b = billing(r, 0);
        const cf_counts *c = &b->cnt[CF_IN_REPARTITION];
        int64_t in = c->in, acc = c->accepted;
        assert_int_equal(c->dup, 0);
        /* The topic holds both again (a producer retry): the same source
         * task and sequence numbers, read at the partition's next offset
         * (cf_inproc feeds its next repartition record at that offset
         * again; billing does not rely on offsets for dedup). */
        for (size_t i = 0; i < 2; i++) {
                const cf_out *o = r->rp[i];
                cf_src src = { .input = CF_IN_REPARTITION,
                               .partition = o->partition,
                               .offset = b->in[CF_IN_REPARTITION].next_offset,
                               .ts = o->ts,
                               .key = o->key,
                               .key_len = o->klen,
                               .value = o->value,
                               .value_len = o->vlen };
                cf_task_process_src(b, &src);
        }
        assert_int_equal(c->in, in + 2);
        assert_int_equal(c->dup, 2);
        assert_int_equal(c->accepted, acc);

        watermark_to(r, DEC_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 2);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 2000, 500, 125, 625);
        st = stmt_of(r, "u-bo", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 8000, 3200, 800, 4000);
        bill_rig_done(r);
}

/* ------------------------------------------------------------- 7. idle */

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts))
                ;
}

/* Two partitions; all input on partition 0; A-1 never hears of
 * anything. u-anna's November session; then, after 300 ms of wall clock
 * (past watermark.idle.ms when it is 200 ms), A-0 goes on: its watermark
 * passes the end of November + 1 h (+ 1 h more). */
static cf_rig *run_one_source(int64_t idle_ms)
{
        cf_rig *r = bill_rig_new(2, idle_ms);
        sess s = { "S-1",
                   "site-m",
                   "CH-1",
                   "u-anna",
                   "B-ANNA",
                   NOV_START + 9 * DAY + 8 * HOUR,
                   NOV_START + 9 * DAY + 9 * HOUR,
                   2000 };
        feed_session(r, &s);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 1);
        sleep_ms(300);
        watermark_to(r, DEC_START + 2 * GRACE);
        commit2(r);
        return r;
}

static void bill_idle_source_does_not_block_closing(void **state)
{
        (void)state;
        /* watermark.idle.ms 200: the silent A-1 stops holding the
         * watermark back; November closes. */
        cf_rig *r = run_one_source(200);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 2000, 500, 125, 625);
        bill_rig_done(r);

        /* watermark.idle.ms 1 h: A-1 holds it back. */
        r = run_one_source(IDLE_LARGE);
        commit2(r);
        assert_int_equal(r->n_stmts, 0);
        /* Once A-1 sends a watermark past the end + grace (a record on
         * partition 1: a session starting on December 5), it closes. */
        sess other = { "S-X",
                       "site-m",
                       "CH-5",
                       NULL,
                       NULL,
                       DEC_START + 4 * DAY,
                       DEC_START + 4 * DAY + HOUR,
                       1000 };
        cf_session_event e = { .event_id = "S-X-start",
                               .kind = CF_SESSION_STARTED,
                               .session_id = "S-X",
                               .site_id = "site-m",
                               .charger_id = "CH-5",
                               .connector_id = 1,
                               .time_ms = other.start,
                               .energy_wh = 100,
                               .stop_reason = -1 };
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(r->ip), CF_RT_SESSION_EVENT, &e, &b);
        cf_rig_feed_raw(r, 1, CF_IN_SESSIONS, other.start, "CH-5", b.p, b.len);
        cf_buf_free(&b);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        st = stmt_of(r, "u-anna", "2026-11");
        assert_is_sum(r, st);
        assert_totals(st, 1, 2000, 500, 125, 625);
        bill_rig_done(r);
}

/* ----------------------------------------------------- 8. end of input */

/* billing.statements.per.commit 1: November's four statements leave one
 * per commit, in key order, also across a restart (the rest of a period
 * due is the ledger behind the stored watermark). A late November session
 * for u-bo that billing reads while u-bo's statement has not left yet is
 * an adjustment (the watermark decides it), so every statement is byte
 * for byte what one commit closing all four gives. */
static void bill_period_closes_over_several_commits(void **state)
{
        (void)state;
        cf_rig *one = bill_rig_new(1, IDLE_LARGE);
        feed_month(one, true);
        commit2(one);
        assert_int_equal(one->n_stmts, 4);

        cf_rig *r = bill_rig_with(1, IDLE_LARGE, 1);
        feed_month(r, true);
        /* Billing reads the charges and the watermark at the first commit
         * and emits one statement then; the second commit sends it. */
        commit2(r);
        assert_int_equal(r->n_charges, 10);
        assert_int_equal(r->n_stmts, 1);
        /* The restart's own commit sends site-m2; u-anna and u-bo wait. */
        cf_rig_restart(r);
        assert_int_equal(r->n_stmts, 2);

        /* u-bo's session of November 21 uploaded late, priced now: it
         * reaches billing at the next commit's hand-over, after that
         * commit sent u-anna and before u-bo's statement is emitted. */
        sess late = { "S-LATE-BO",
                      "site-m",
                      "CH-8",
                      "u-bo",
                      "B-BO",
                      NOV_START + 20 * DAY + 8 * HOUR,
                      NOV_START + 20 * DAY + 9 * HOUR,
                      1000 };
        int64_t up = DEC_START + DAY + 10 * HOUR + 10 * MIN;
        feed_session_at(r, 0, &late, up);
        cf_rig_tick(r, up + 4000 + LATENESS);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 11);
        assert_int_equal(stat_of(billing(r, 0), "bill", "adjustments"), 1);
        cf_rig_commit(r);
        cf_rig_commit(r);
        /* The in-process runner has no output tails to read after a
         * restart: it hands the restart's last commit (site-m2) over
         * again (over Kafka, cf_outbox_recover drops it). */
        assert_int_equal(r->n_stmts, 5);
        const int of[5] = { 0, 1, 1, 2, 3 }; /* r's statement i is one's */
        for (size_t i = 0; i < 5; i++) {
                const cf_buf *a = &r->stmt_bytes[i],
                             *b = &one->stmt_bytes[of[i]];
                assert_string_equal(r->stmts[i]->statement_id,
                                    one->stmts[of[i]]->statement_id);
                assert_int_equal(a->len, b->len);
                assert_memory_equal(a->p, b->p, b->len);
        }
        assert_string_equal(one->stmts[3]->billed_party, "u-bo");
        assert_int_equal(one->stmts[3]->n_adjustments, 0);
        bill_rig_done(r);
        bill_rig_done(one);
}

static void bill_end_of_input_closes_every_period(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* December 5 2026 (D5 = 00:00 Oslo = DEC_START + 4 d):
         *   S-1 u-anna site-m CH-1 08-09Z 2000 Wh *2.50 =  500, VAT 125
         *   S-2 u-bo   site-d CH-D 10-11Z 8000 Wh *4.00 = 3200, VAT 800
         *   S-3 -      site-m CH-3 12-13Z 3000 Wh *5.00 = 1500, VAT 375
         *   S-4 u-bo   site-m CH-1 14-15Z 4000 Wh *4.00 = 1600, VAT 400
         * S-4 is not priced before the input ends (stream time is its
         * stop). */
        int64_t d5 = DEC_START + 4 * DAY;
        sess ss[] = {
                { "S-1", "site-m", "CH-1", "u-anna", "B-ANNA", d5 + 9 * HOUR,
                  d5 + 10 * HOUR, 2000 },
                { "S-2", "site-d", "CH-D", "u-bo", "B-BO", d5 + 11 * HOUR,
                  d5 + 12 * HOUR, 8000 },
                { "S-3", "site-m", "CH-3", NULL, NULL, d5 + 13 * HOUR,
                  d5 + 14 * HOUR, 3000 },
                { "S-4", "site-m", "CH-1", "u-bo", "B-BO", d5 + 15 * HOUR,
                  d5 + 16 * HOUR, 4000 },
        };
        for (size_t i = 0; i < 3; i++)
                feed_session(r, &ss[i]);
        feed_session_at(r, 0, &ss[3], CF_NONE);
        commit2(r);
        assert_int_equal(r->n_charges, 3);
        assert_int_equal(r->n_stmts, 0);

        cf_inproc_drain(r->ip);
        cf_rig_commit(r); /* S-4 priced; rating sends the end of input */
        assert_int_equal(r->n_charges, 4);
        cf_rig_commit(r);
        assert_int_equal(r->n_stmts, 4);
        /* Earliest end first: the day, then the month in key order. */
        assert_string_equal(r->stmts[0]->period_id, "2026-12-05");
        assert_string_equal(r->stmts[1]->billed_party, "site-m");
        assert_string_equal(r->stmts[2]->billed_party, "u-anna");
        assert_string_equal(r->stmts[3]->billed_party, "u-bo");
        for (size_t i = 0; i < r->n_stmts; i++)
                assert_is_sum(r, r->stmts[i]);

        const cf_statement *st = stmt_of(r, "u-bo", "2026-12-05");
        assert_totals(st, 1, 8000, 3200, 800, 4000);
        assert_int_equal(st->period_start_ms, d5);
        assert_int_equal(st->period_end_ms, d5 + DAY);
        st = stmt_of(r, "u-anna", "2026-12");
        assert_totals(st, 1, 2000, 500, 125, 625);
        st = stmt_of(r, "site-m", "2026-12");
        assert_totals(st, 1, 3000, 1500, 375, 1875);
        st = stmt_of(r, "u-bo", "2026-12");
        assert_totals(st, 1, 4000, 1600, 400, 2000);
        assert_int_equal(st->period_start_ms, DEC_START);
        assert_int_equal(st->period_end_ms, JAN_START);
        commit2(r);
        assert_int_equal(r->n_stmts, 4);
        bill_rig_done(r);
}

/* -------------------------------------------------------------- 9. ids */

/*
 * The ids data teams join on, pinned: changing how ids are made breaks
 * them. A charge record's id is "CR-" and 16 hex digits of FNV-1a 64 over
 * site id, 0xff, charger id, 0xff, session id, 0xff (README, "Outputs");
 * a statement's "ST-" and 16 hex digits of h = H(tenant); h = H(h as 8
 * bytes, little-endian) ^ H(party); h = H(h as 8 bytes) ^ H(period), where
 * H is FNV-1a 64 followed by h ^= h >> 33; h *= 0xff51afd7ed558ccd;
 * h ^= h >> 33; and h + 2 when h < 2. FNV-1a 64: offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3 (its published vector: "a" gives
 * 0xaf63dc4c8601ec8c, which the snippet reproduces). The literals come
 * from this Python 3, written from those definitions, not from the C:
 *
 *   M = 2**64; P = 0x100000001b3; B = 0xcbf29ce484222325
 *   def fnv(h, b):
 *       for c in b: h = ((h ^ c) * P) % M
 *       return h
 *   def cr(*f):
 *       h = B
 *       for s in f: h = fnv(h, s.encode()); h = ((h ^ 0xff) * P) % M
 *       return "CR-%016x" % h
 *   def H(b):
 *       h = fnv(B, b); h ^= h >> 33; h = (h * 0xff51afd7ed558ccd) % M
 *       h ^= h >> 33
 *       return h + 2 if h < 2 else h
 *   def st(t, p, q):
 *       h = H(t.encode())
 *       h = H(h.to_bytes(8, "little")) ^ H(p.encode())
 *       h = H(h.to_bytes(8, "little")) ^ H(q.encode())
 *       return "ST-%016x" % h
 *   cr("site-m", "CH-1", "S-1")       -> CR-11c15a825084168d
 *   st("t-coop", "u-anna", "2026-11") -> ST-b511fadd4ec1d1e0
 */
static void ids_of_charge_record_and_statement_are_pinned(void **state)
{
        (void)state;
        cf_rig *r = bill_rig_new(1, IDLE_LARGE);
        /* u-anna's session S-1 on site-m (tenant t-coop), charger CH-1, in
         * November: 2000 Wh * 2.50 = 500, VAT 125. */
        sess s = { "S-1",
                   "site-m",
                   "CH-1",
                   "u-anna",
                   "B-ANNA",
                   NOV_START + 9 * DAY + 8 * HOUR,
                   NOV_START + 9 * DAY + 9 * HOUR,
                   2000 };
        feed_session(r, &s);
        commit2(r);
        assert_int_equal(r->n_charges, 1);
        assert_string_equal(cf_rig_charge_of(r, "S-1")->record_id,
                            "CR-11c15a825084168d");
        watermark_to(r, DEC_START + GRACE);
        commit2(r);
        assert_int_equal(r->n_stmts, 1);
        const cf_statement *st = stmt_of(r, "u-anna", "2026-11");
        assert_string_equal(st->tenant_id, "t-coop");
        assert_totals(st, 1, 2000, 500, 125, 625);
        assert_string_equal(st->statement_id, "ST-b511fadd4ec1d1e0");
        bill_rig_done(r);
}

/* ---------------------------------------------------------- 10. report */

static cf_charge_record rec(const char *tenant, const char *cur,
                            const char *site, const char *charger,
                            const char *party, const char *badge,
                            const char *period, int64_t wh, int64_t excl,
                            int64_t vat)
{
        return (cf_charge_record){ .record_id = "CR-x",
                                   .tenant_id = (char *)tenant,
                                   .site_id = (char *)site,
                                   .charger_id = (char *)charger,
                                   .connector_id = 1,
                                   .session_id = "S",
                                   .badge_id = (char *)badge,
                                   .user_group = "g",
                                   .billed_party = (char *)party,
                                   .energy_wh = wh,
                                   .currency = (char *)cur,
                                   .total_excl_vat = excl,
                                   .total_vat = vat,
                                   .total_incl_vat = excl + vat,
                                   .period_id = (char *)period };
}

/*
 * November, unless said:
 *   1 t-coop  NOK site-1 CH-1  u-anna B-ANNA 10000 Wh 2500 + 625
 *   2 t-coop  NOK site-1 CH-2  u-anna -       4000 Wh 1000 + 250
 *   3 t-coop  NOK site-2 CH-1  u-bo   B-BO    8000 Wh 3200 + 800
 *   4 t-hotel EUR site-h CH-H1 site-h -       1234 Wh   37 +   9 (cents)
 *   5 t-hotel EUR site-h CH-H1 g-eva  B-EVA   5000 Wh  150 +  38
 *   6 t-coop  NOK site-1 CH-1  u-anna B-ANNA  7000 Wh, December: left out
 *   7 revision 2 of 3: 9000 Wh 3600 + 900, a correction of 1000 Wh, 400 +
 *     100: counts its difference and no session (issue 17), so 3 and 7
 *     together are one session of 9000 Wh, 3600 + 900
 */
static char *report(cf_report_by by, cf_report_format fmt, const char *tenant)
{
        cf_charge_record rs[] = {
                rec("t-coop", "NOK", "site-1", "CH-1", "u-anna", "B-ANNA",
                    "2026-11", 10000, 2500, 625),
                rec("t-hotel", "EUR", "site-h", "CH-H1", "site-h", NULL,
                    "2026-11", 1234, 37, 9),
                rec("t-coop", "NOK", "site-1", "CH-2", "u-anna", NULL,
                    "2026-11", 4000, 1000, 250),
                rec("t-coop", "NOK", "site-2", "CH-1", "u-bo", "B-BO",
                    "2026-11", 8000, 3200, 800),
                rec("t-coop", "NOK", "site-1", "CH-1", "u-anna", "B-ANNA",
                    "2026-12", 7000, 1750, 438),
                rec("t-hotel", "EUR", "site-h", "CH-H1", "g-eva", "B-EVA",
                    "2026-11", 5000, 150, 38),
                rec("t-coop", "NOK", "site-2", "CH-1", "u-bo", "B-BO",
                    "2026-11", 9000, 3600, 900),
        };
        cf_correction corr = { "late stop", 1000, 400, 100, 500 };
        rs[6].revision = 2;
        rs[6].correction = &corr;
        cf_report r;
        cf_report_init(&r, by, "2026-11", tenant);
        for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++)
                cf_report_add(&r, &rs[i]);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        cf_report_write(&r, fmt, f);
        fclose(f);
        cf_report_free(&r);
        return out;
}

static void assert_report(cf_report_by by, cf_report_format fmt,
                          const char *tenant, const char *want)
{
        char *got = report(by, fmt, tenant);
        assert_string_equal(got, want);
        free(got);
}

static void report_table_for_fixed_records(void **state)
{
        (void)state;
        /* By user, CSV. Rows by tenant, currency, key. u-anna: 1 + 2 =
         * 14000 Wh, 3500, 875, 4375; g-eva before site-h. EUR 37 cents is
         * 0.37, 9 is 0.09. */
        assert_report(
            CF_REPORT_USER, CF_REPORT_CSV, NULL,
            "period,tenant,user,sessions,energy_kwh,excl_vat,vat,incl_vat,"
            "currency\n"
            "2026-11,t-coop,u-anna,2,14.000,35.00,8.75,43.75,NOK\n"
            "2026-11,t-coop,u-bo,1,9.000,36.00,9.00,45.00,NOK\n"
            "2026-11,t-hotel,g-eva,1,5.000,1.50,0.38,1.88,EUR\n"
            "2026-11,t-hotel,site-h,1,1.234,0.37,0.09,0.46,EUR\n");

        /* By charger, table: columns %-8s %-8s %-20s %8s and four %12s.
         * CH-1 (t-coop): 1 + 3 + 7 = 19000 Wh, 6100, 1525, 7625; CH-H1: 4 + 5
         * = 6234 Wh, 187, 47, 234. */
        assert_report(CF_REPORT_CHARGER, CF_REPORT_TABLE, NULL,
                      "period   tenant   charger              sessions   "
                      "energy_kwh     excl_vat          vat     incl_vat "
                      "currency\n"
                      "2026-11  t-coop   CH-1                        2       "
                      "19.000        61.00        15.25        76.25 NOK\n"
                      "2026-11  t-coop   CH-2                        1       "
                      " 4.000        10.00         2.50        12.50 NOK\n"
                      "2026-11  t-hotel  CH-H1                       2       "
                      " 6.234         1.87         0.47         2.34 EUR\n");

        /* By badge, JSON, amounts in minor units; "(none)" sorts before
         * "B-..." ('(' is 0x28). */
        assert_report(
            CF_REPORT_BADGE, CF_REPORT_JSON, NULL,
            "[\n"
            "{\"period\":\"2026-11\",\"tenant\":\"t-coop\",\"badge\":"
            "\"(none)\",\"sessions\":1,\"energy_wh\":4000,\"excl_vat\":1000,"
            "\"vat\":250,\"incl_vat\":1250,\"currency\":\"NOK\"},\n"
            "{\"period\":\"2026-11\",\"tenant\":\"t-coop\",\"badge\":"
            "\"B-ANNA\",\"sessions\":1,\"energy_wh\":10000,\"excl_vat\":2500,"
            "\"vat\":625,\"incl_vat\":3125,\"currency\":\"NOK\"},\n"
            "{\"period\":\"2026-11\",\"tenant\":\"t-coop\",\"badge\":"
            "\"B-BO\",\"sessions\":1,\"energy_wh\":9000,\"excl_vat\":3600,"
            "\"vat\":900,\"incl_vat\":4500,\"currency\":\"NOK\"},\n"
            "{\"period\":\"2026-11\",\"tenant\":\"t-hotel\",\"badge\":"
            "\"(none)\",\"sessions\":1,\"energy_wh\":1234,\"excl_vat\":37,"
            "\"vat\":9,\"incl_vat\":46,\"currency\":\"EUR\"},\n"
            "{\"period\":\"2026-11\",\"tenant\":\"t-hotel\",\"badge\":"
            "\"B-EVA\",\"sessions\":1,\"energy_wh\":5000,\"excl_vat\":150,"
            "\"vat\":38,\"incl_vat\":188,\"currency\":\"EUR\"}\n"
            "]\n");

        /* By site, CSV and table. site-1: 1 + 2 = 14000 Wh, 3500, 875,
         * 4375; site-h: 6234 Wh, 187, 47, 234. */
        assert_report(
            CF_REPORT_SITE, CF_REPORT_CSV, NULL,
            "period,tenant,site,sessions,energy_kwh,excl_vat,vat,incl_vat,"
            "currency\n"
            "2026-11,t-coop,site-1,2,14.000,35.00,8.75,43.75,NOK\n"
            "2026-11,t-coop,site-2,1,9.000,36.00,9.00,45.00,NOK\n"
            "2026-11,t-hotel,site-h,2,6.234,1.87,0.47,2.34,EUR\n");
        assert_report(CF_REPORT_SITE, CF_REPORT_TABLE, "t-hotel",
                      "period   tenant   site                 sessions   "
                      "energy_kwh     excl_vat          vat     incl_vat "
                      "currency\n"
                      "2026-11  t-hotel  site-h                      2       "
                      " 6.234         1.87         0.47         2.34 EUR\n");

        /* A tenant with nothing in the period: an empty JSON array. */
        assert_report(CF_REPORT_USER, CF_REPORT_JSON, "t-none", "[]\n");
}

/*
 * feed_session moves the stream time to each session's due time so that
 * every session is priced before the next one starts. A session left to be
 * priced by a later record's jump carries the watermark of its due time
 * all the same (bill_session_due_before_a_stream_jump_stays_in_its_period).
 */

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(bill_statement_equals_sum_of_its_charge_records),
                T(bill_period_not_closed_before_grace),
                T(bill_month_boundary_with_dst_in_oslo),
                T(bill_iso_weeks_across_year_end),
                T(bill_session_due_before_a_stream_jump_stays_in_its_period),
                T(bill_late_session_becomes_adjustment),
                T(bill_late_stop_is_a_correction),
                T(bill_drops_repeated_repartition_records),
                T(bill_idle_source_does_not_block_closing),
                T(bill_end_of_input_closes_every_period),
                T(bill_period_closes_over_several_commits),
                T(ids_of_charge_record_and_statement_are_pinned),
                T(report_table_for_fixed_records),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
