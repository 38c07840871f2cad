/*
 * test_validate.c: the validate stage (stages/validate.c): records with
 * missing or bad fields (FIELD), times too far ahead (CLOCK) and unknown
 * sites (held, then UNKNOWN_SITE) are rejected; large values are cut.
 * Through the stage-chain rig (rig.h) in the rating tests' world: site-1,
 * its users, waits and time T0 (rating_rig.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rating_rig.h"

static void validate_rejects_empty_ids_as_field(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event e1 = ev("", CF_SESSION_STARTED, "S-1", T0, 100000);
        cf_session_event e2 = ev("e2", CF_SESSION_STARTED, "", T0, 100000);
        cf_session_event e3 = ev("e3", CF_SESSION_STARTED, "S-3", T0, 100000);
        e3.site_id = "";
        cf_meter_reading m1 = rd("r1", "S-1", 1, T0, 100000);
        m1.charger_id = "";
        cf_meter_reading m2 = rd("r2", "", 2, T0, 100000);
        int64_t o1 = feed_ev(r, &e1);
        int64_t o2 = feed_ev(r, &e2);
        int64_t o3 = feed_ev(r, &e3);
        int64_t o4 = feed_rd(r, &m1);
        int64_t o5 = feed_rd(r, &m2);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 5);
        assert_reject(r->rejects[0], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o1, "empty event_id");
        assert_reject(r->rejects[1], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o2, "empty session_id");
        assert_reject(r->rejects[2], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o3, "empty site_id");
        assert_reject(r->rejects[3], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o4, "empty charger_id");
        assert_reject(r->rejects[4], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o5, "empty session_id");
        assert_int_equal(r->rejects[0]->event_time_ms, T0);
        assert_counts(r, CF_IN_SESSIONS, 3, 0, 0, 3, 0);
        assert_counts(r, CF_IN_METER, 2, 0, 0, 2, 0);
        cf_rig_done(r);
}

/* Issue 15: ids reach Avro strings in the outputs, which must be UTF-8;
 * inputs are keyed by charger id. */
static void
validate_rejects_bad_utf8_long_ids_and_null_key_as_field(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event e1 =
            ev("e1", CF_SESSION_STARTED, "probe-\xff\xfe-session", T0, 100);
        cf_session_event e2 = ev("e2", CF_SESSION_STARTED, "S-2", T0, 100);
        e2.user_id = "u-\xc3"; /* a 2-byte character cut short */
        char long_id[257];
        memset(long_id, 'x', 256);
        long_id[256] = '\0';
        cf_meter_reading m1 = rd("r1", "S-1", 1, T0, 100);
        m1.site_id = long_id;
        int64_t o1 = feed_ev(r, &e1);
        int64_t o2 = feed_ev(r, &e2);
        int64_t o3 = feed_rd(r, &m1);
        /* A valid event without a key. */
        cf_session_event e4 = ev("e4", CF_SESSION_STARTED, "S-4", T0, 100);
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(r->ip), CF_RT_SESSION_EVENT, &e4, &b);
        cf_src src = { .input = CF_IN_SESSIONS,
                       .partition = 0,
                       .offset = r->next_offset[0][CF_IN_SESSIONS]++,
                       .ts = T0,
                       .key = NULL,
                       .key_len = 0,
                       .value = b.p,
                       .value_len = (uint32_t)b.len };
        cf_inproc_feed(r->ip, &src);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 4);
        assert_reject(r->rejects[0], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o1, "session_id is not valid UTF-8");
        assert_reject(r->rejects[1], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o2, "user_id is not valid UTF-8");
        assert_reject(r->rejects[2], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o3, "site_id longer than 255 bytes");
        assert_reject(r->rejects[3], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, src.offset,
                      "no key (input records are keyed by charger id)");
        assert_null(r->rejects[3]->key.p);
        assert_int_equal(r->n_charges, 0);
        assert_counts(r, CF_IN_SESSIONS, 3, 0, 0, 3, 0);
        assert_counts(r, CF_IN_METER, 1, 0, 0, 1, 0);
        cf_buf_free(&b);
        cf_rig_done(r);
}

/* Issue 15: a rejected record keeps at most 65536 bytes of the original
 * value, with the original length and its SHA-256; the detail is valid
 * UTF-8 cut on a character boundary. */
static void reject_cuts_large_value_with_length_and_digest(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        /* 70,000 bytes of 'A': not the magic byte 0. Its SHA-256, from
         * `head -c 70000 /dev/zero | tr '\0' A | sha256sum` (and Python's
         * hashlib): b80935d4...356c69. */
        static const uint8_t want[32] = {
                0xb8, 0x09, 0x35, 0xd4, 0x5c, 0x7f, 0xcb, 0x54,
                0x4a, 0xd1, 0xb8, 0x41, 0x00, 0x5e, 0x50, 0xe4,
                0x52, 0x23, 0x9a, 0xef, 0x65, 0xd3, 0xe0, 0xb6,
                0xc0, 0x79, 0x76, 0xa5, 0x0f, 0x35, 0x6c, 0x69,
        };
        uint8_t *big = malloc(70000);
        memset(big, 'A', 70000);
        cf_rig_feed_raw(r, 0, CF_IN_SESSIONS, T0, "CH-1", big, 70000);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 1);
        const cf_rejected *rj = r->rejects[0];
        assert_int_equal(rj->reason, CF_REJECT_SCHEMA);
        assert_int_equal(rj->value.n, 65536);
        assert_memory_equal(rj->value.p, big, 65536);
        assert_true(rj->value_length == 70000);
        assert_int_equal(rj->value_sha256.n, 32);
        assert_memory_equal(rj->value_sha256.p, want, 32);
        /* The key is short: whole, no length, no digest. */
        assert_int_equal(rj->key.n, 4);
        assert_true(rj->key_length == CF_NONE);
        assert_null(rj->key_sha256.p);
        free(big);
        cf_rig_done(r);
}

static void validate_rejects_negative_energy_as_field(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, -1);
        cf_meter_reading m = rd("r1", "S-1", 1, T0 + MIN, -5);
        int64_t o1 = feed_ev(r, &s);
        int64_t o2 = feed_rd(r, &m);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 2);
        assert_reject(r->rejects[0], CF_REJECT_FIELD, "validate",
                      CF_IN_SESSIONS, o1, "negative energy register");
        assert_reject(r->rejects[1], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o2, "negative energy register");
        assert_counts(r, CF_IN_SESSIONS, 1, 0, 0, 1, 0);
        assert_counts(r, CF_IN_METER, 1, 0, 0, 1, 0);
        cf_rig_done(r);
}

/* Dedup used to take a negative sequence number far below the window for a
 * repeat (counted as a duplicate, never rejected). */
static void validate_rejects_negative_seq_as_field(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        /* -100 is 99 below a fresh charger's "none yet" mark (-1): beyond
         * the 64-number window; -5 is within it. Both are FIELD. */
        cf_meter_reading m1 = rd("r1", "S-1", -100, T0 + MIN, 100100);
        cf_meter_reading m2 = rd("r2", "S-1", -5, T0 + 2 * MIN, 100200);
        int64_t o1 = feed_rd(r, &m1);
        int64_t o2 = feed_rd(r, &m2);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_METER, 2, 0, 0, 2, 0);
        assert_int_equal(r->n_rejects, 2);
        assert_reject(r->rejects[0], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o1, "negative seq_no");
        assert_reject(r->rejects[1], CF_REJECT_FIELD, "validate", CF_IN_METER,
                      o2, "negative seq_no");
        /* The window was not touched: seq 1 and 2 are new. */
        cf_meter_reading m3 = rd("r3", "S-1", 1, T0 + 3 * MIN, 100300);
        cf_meter_reading m4 = rd("r4", "S-1", 2, T0 + 4 * MIN, 100400);
        feed_rd(r, &m3);
        feed_rd(r, &m4);
        assert_counts(r, CF_IN_METER, 4, 2, 0, 2, 0);
        cf_rig_done(r);
}

static void validate_rejects_future_time_as_clock(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        /* Both arrive at Kafka time T0, so stream time is T0 when they are
         * checked; max.clock.skew.ms is 3600000. At exactly T0 + 3600000
         * the first is within the skew; the second, 1 ms later, is not. */
        cf_session_event ok =
            ev("e1", CF_SESSION_STARTED, "S-1", T0 + SKEW, 100000);
        cf_session_event bad =
            ev("e2", CF_SESSION_STARTED, "S-2", T0 + SKEW + 1, 100000);
        bad.connector_id = 2;
        feed_ev_at(r, T0, &ok);
        int64_t off = feed_ev_at(r, T0, &bad);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_SESSIONS, 2, 1, 0, 1, 0);
        assert_int_equal(r->n_rejects, 1);
        char want[160];
        snprintf(want, sizeof(want),
                 "time %lld is 3600001 ms ahead of the stream "
                 "(max.clock.skew.ms 3600000)",
                 T0 + SKEW + 1);
        assert_reject(r->rejects[0], CF_REJECT_CLOCK, "validate",
                      CF_IN_SESSIONS, off, want);
        assert_int_equal(r->rejects[0]->event_time_ms, T0 + SKEW + 1);
        cf_rig_done(r);
}

static void validate_holds_unknown_site_then_rejects(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-X", T0, 100000);
        s.site_id = "site-x";
        cf_meter_reading m = rd("r1", "S-X", 1, T0 + MIN, 101000);
        m.site_id = "site-x";
        int64_t o1 = feed_ev(r, &s);
        int64_t o2 = feed_rd(r, &m);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 0);
        assert_counts(r, CF_IN_SESSIONS, 1, 0, 0, 0, 1);
        assert_counts(r, CF_IN_METER, 1, 0, 0, 0, 1);
        /* The wait (2 min) runs from the stream time of the first record,
         * T0: due at T0 + 120000. Ticks repeat the reading (duplicates). */
        cf_rig_tick(r, T0 + SITE_WAIT - 1);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 0);
        assert_counts(r, CF_IN_METER, 2, 0, 1, 0, 1);
        cf_rig_tick(r, T0 + SITE_WAIT);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 2);
        assert_reject(r->rejects[0], CF_REJECT_UNKNOWN_SITE, "validate",
                      CF_IN_SESSIONS, o1,
                      "no config for site site-x after unknown.site.wait.ms "
                      "(120000)");
        assert_reject(r->rejects[1], CF_REJECT_UNKNOWN_SITE, "validate",
                      CF_IN_METER, o2,
                      "no config for site site-x after unknown.site.wait.ms "
                      "(120000)");
        /* Each with its own event time (issue 17). */
        assert_true(r->rejects[0]->event_time_ms == s.time_ms);
        assert_true(r->rejects[1]->event_time_ms == T0 + MIN);
        assert_counts(r, CF_IN_SESSIONS, 1, 0, 0, 1, 0);
        assert_counts(r, CF_IN_METER, 3, 0, 2, 1, 0);
        assert_int_equal(
            cf_inproc_task(r->ip, 0)->reasons[CF_REJECT_UNKNOWN_SITE], 2);
        cf_rig_done(r);
}

static void validate_releases_held_records_when_site_arrives(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-2", T0, 100000);
        s.site_id = "site-2";
        s.user_id = "u-anna";
        cf_meter_reading m = rd("r1", "S-2", 1, T0 + MIN, 100300);
        m.site_id = "site-2";
        feed_ev(r, &s);
        feed_rd(r, &m);
        publish_site(r, "site-2", 1);
        cf_rig_commit(r);
        /* Still held: the site is looked at again when the wait ends. */
        assert_counts(r, CF_IN_SESSIONS, 1, 0, 0, 0, 1);
        assert_counts(r, CF_IN_METER, 1, 0, 0, 0, 1);
        /* The stop at T0+10min moves stream time past the wait (T0+2min):
         * the held STARTED and reading go on first, then the stop. */
        cf_session_event st =
            ev("e2", CF_SESSION_STOPPED, "S-2", T0 + 10 * MIN, 102000);
        st.site_id = "site-2";
        feed_ev(r, &st);
        assert_counts(r, CF_IN_SESSIONS, 2, 2, 0, 0, 0);
        assert_counts(r, CF_IN_METER, 1, 1, 0, 0, 0);
        cf_rig_tick(r, T0 + 10 * MIN + LATENESS);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 0);
        assert_int_equal(r->n_charges, 1);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-2");
        assert_string_equal(cr->site_id, "site-2");
        assert_string_equal(cr->billed_party, "u-anna");
        /* 102000 - 100000 = 2000 Wh at 2.50 NOK/kWh = 5.00 NOK = 500;
         * VAT 25 % = 125. */
        assert_energy_only(cr, 2000, 500, 125);
        assert_int_equal(cr->n_flags, 0);
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(validate_rejects_empty_ids_as_field),
                T(validate_rejects_negative_energy_as_field),
                T(validate_rejects_bad_utf8_long_ids_and_null_key_as_field),
                T(reject_cuts_large_value_with_length_and_digest),
                T(validate_rejects_negative_seq_as_field),
                T(validate_rejects_future_time_as_clock),
                T(validate_holds_unknown_site_then_rejects),
                T(validate_releases_held_records_when_site_arrives),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
