/*
 * test_price.c: the price stage (stages/price.c): a closed session
 * becomes a charge record priced by the plan of its billed party, with the
 * price version valid at its start.
 * Through the stage-chain rig (rig.h) in the rating tests' world: site-1,
 * its users, waits and time T0 (rating_rig.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rating_rig.h"

static void price_charge_record_amounts(void **state)
{
        (void)state;
        cf_rig *runs[2];
        for (int i = 0; i < 2; i++) {
                cf_rig *r = runs[i] = rating_rig_new();
                feed_std_session(r, "S-1", "CH-1", T0, 0, "u-gus", "B-GUS");
                cf_rig_tick(r, T0 + 61 * MIN);
                cf_rig_commit(r);
                assert_int_equal(r->n_charges, 1);
                assert_int_equal(r->n_rejects, 0);
        }
        const cf_charge_record *cr = runs[0]->charges[0];
        const cf_charge_record *cr2 = runs[1]->charges[0];
        assert_string_equal(cr->record_id, cr2->record_id);
        assert_int_equal(strlen(cr->record_id), 19); /* "CR-" + 16 hex */
        assert_memory_equal(cr->record_id, "CR-", 3);
        assert_string_equal(cr->tenant_id, "t-coop");
        assert_string_equal(cr->site_id, "site-1");
        assert_string_equal(cr->charger_id, "CH-1");
        assert_int_equal(cr->connector_id, 1);
        assert_string_equal(cr->session_id, "S-1");
        assert_string_equal(cr->user_id, "u-gus");
        assert_string_equal(cr->badge_id, "B-GUS");
        assert_string_equal(cr->user_group, "guest");
        assert_int_equal(cr->party_kind, CF_PARTY_USER);
        assert_string_equal(cr->billed_party, "u-gus");
        assert_int_equal(cr->start_ms, T0);
        assert_int_equal(cr->stop_ms, T0 + 60 * MIN);
        assert_int_equal(cr->energy_wh, 10000);
        assert_int_equal(cr->charging_ms, 60 * MIN);
        assert_int_equal(cr->parking_ms, 0);
        assert_string_equal(cr->tariff_id, "guest-v1");
        assert_int_equal(cr->tariff_version_ms, V1_FROM);
        assert_string_equal(cr->currency, "NOK");
        /* ENERGY 10 kWh * 3.00 = 30.00 NOK = 3000, VAT 25 % = 750;
         * FLAT 10.00 NOK = 1000, VAT 250. Lines in cf_dim order. */
        assert_int_equal(cr->n_lines, 2);
        assert_int_equal(cr->lines[0].dimension, CF_DIM_ENERGY);
        assert_int_equal(cr->lines[0].volume, 10000);
        assert_int_equal(cr->lines[0].excl_vat, 3000);
        assert_int_equal(cr->lines[0].vat_bp, 2500);
        assert_int_equal(cr->lines[0].vat, 750);
        assert_int_equal(cr->lines[1].dimension, CF_DIM_FLAT);
        assert_int_equal(cr->lines[1].volume, 1);
        assert_int_equal(cr->lines[1].excl_vat, 1000);
        assert_int_equal(cr->lines[1].vat_bp, 2500);
        assert_int_equal(cr->lines[1].vat, 250);
        assert_int_equal(cr->total_excl_vat, 4000);
        assert_int_equal(cr->total_vat, 1000);
        assert_int_equal(cr->total_incl_vat, 5000);
        /* Stop 2026-10-31T23:30Z is 2026-11-01 00:30 in Oslo. */
        assert_string_equal(cr->period_id, "2026-11");
        assert_int_equal(cr->n_flags, 0);
        /* One charging period, element 0: ENERGY 10000 Wh, the flat fee,
         * max power 2500 Wh per 15 min = 10000 W, TIME one hour. */
        assert_int_equal(cr->n_charging_periods, 1);
        const cf_charging_period *cp = &cr->charging_periods[0];
        assert_int_equal(cp->start_ms, T0);
        assert_int_equal(cp->tariff_element, 0);
        assert_int_equal(cp->n_dimensions, 4);
        assert_int_equal(cp->dimensions[0].type, CF_CDR_ENERGY);
        assert_int_equal(cp->dimensions[0].volume, 10000);
        assert_int_equal(cp->dimensions[1].type, CF_CDR_FLAT);
        assert_int_equal(cp->dimensions[1].volume, 1);
        assert_int_equal(cp->dimensions[2].type, CF_CDR_MAX_POWER);
        assert_int_equal(cp->dimensions[2].volume, 10000);
        assert_int_equal(cp->dimensions[3].type, CF_CDR_TIME);
        assert_int_equal(cp->dimensions[3].volume, 60 * MIN);
        /* The same input gives the same record, byte for byte. */
        assert_int_equal(runs[0]->charge_bytes[0].len,
                         runs[1]->charge_bytes[0].len);
        assert_memory_equal(runs[0]->charge_bytes[0].p,
                            runs[1]->charge_bytes[0].p,
                            runs[0]->charge_bytes[0].len);
        cf_rig_done(runs[0]);
        cf_rig_done(runs[1]);
}

static void price_bills_user_found_by_badge(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        feed_std_session(r, "S-1", "CH-1", T0, 0, NULL, "B-ANNA");
        cf_rig_tick(r, T0 + 61 * MIN);
        cf_rig_commit(r);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-1");
        assert_string_equal(cr->user_id, "u-anna");
        assert_string_equal(cr->badge_id, "B-ANNA");
        assert_string_equal(cr->user_group, "resident");
        assert_int_equal(cr->party_kind, CF_PARTY_USER);
        assert_string_equal(cr->billed_party, "u-anna");
        assert_string_equal(cr->tariff_id, "resident-v1");
        assert_int_equal(cr->n_flags, 0);
        /* 10 kWh at 2.50 = 2500; VAT 625. */
        assert_energy_only(cr, 10000, 2500, 625);
        cf_rig_done(r);
}

static void price_unknown_badge_billed_to_site_with_flag(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        feed_std_session(r, "S-1", "CH-1", T0, 0, NULL, "B-NOBODY");
        cf_rig_tick(r, T0 + 61 * MIN);
        cf_rig_commit(r);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-1");
        assert_null(cr->user_id);
        assert_string_equal(cr->badge_id, "B-NOBODY");
        assert_string_equal(cr->user_group, "unauthenticated");
        assert_int_equal(cr->party_kind, CF_PARTY_SITE);
        assert_string_equal(cr->billed_party, "site-1");
        assert_string_equal(cr->tariff_id, "unauth-v1");
        assert_int_equal(cr->n_flags, 1);
        assert_int_equal(cr->flags[0], CF_FLAG_UNKNOWN_BADGE);
        /* 10 kWh at 5.00 = 5000; VAT 1250. */
        assert_energy_only(cr, 10000, 5000, 1250);
        cf_rig_done(r);
}

static void price_group_without_plan_uses_default_plan(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        feed_std_session(r, "S-1", "CH-1", T0, 0, "u-emp", NULL);
        cf_rig_tick(r, T0 + 61 * MIN);
        cf_rig_commit(r);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-1");
        assert_string_equal(cr->user_id, "u-emp");
        assert_string_equal(cr->user_group, "employee");
        assert_int_equal(cr->party_kind, CF_PARTY_USER);
        assert_string_equal(cr->billed_party, "u-emp");
        assert_string_equal(cr->tariff_id, "default-v1");
        /* 10 kWh at 4.00 = 4000; VAT 1000. */
        assert_energy_only(cr, 10000, 4000, 1000);
        cf_rig_done(r);
}

static void price_uses_version_valid_at_start(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        publish_site(r, "site-1", 2);
        /* S-A starts at T0, before V2_FROM (T0+30min), and runs past it:
         * the whole session is priced by version 1. S-B, on another
         * charger, starts at T0+40min: version 2. */
        feed_std_session(r, "S-A", "CH-1", T0, 0, "u-anna", NULL);
        feed_std_session(r, "S-B", "CH-2", T0 + 40 * MIN, 0, "u-anna", NULL);
        cf_rig_tick(r, T0 + 101 * MIN);
        cf_rig_commit(r);
        assert_int_equal(r->n_charges, 2);
        const cf_charge_record *a = cf_rig_charge_of(r, "S-A");
        assert_string_equal(a->tariff_id, "resident-v1");
        assert_int_equal(a->tariff_version_ms, V1_FROM);
        /* 10 kWh at 2.50 = 2500; VAT 625. */
        assert_energy_only(a, 10000, 2500, 625);
        const cf_charge_record *b = cf_rig_charge_of(r, "S-B");
        assert_string_equal(b->tariff_id, "resident-v2");
        assert_int_equal(b->tariff_version_ms, V2_FROM);
        /* 10 kWh at 3.00 = 3000; VAT 750. */
        assert_energy_only(b, 10000, 3000, 750);
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(price_charge_record_amounts),
                T(price_bills_user_found_by_badge),
                T(price_unknown_badge_billed_to_site_with_flag),
                T(price_group_without_plan_uses_default_plan),
                T(price_uses_version_valid_at_start),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
