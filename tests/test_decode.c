/*
 * test_decode.c: the decode stage (stages/decode.c): bytes that are not an
 * input record of the registry are rejected as SCHEMA, with the bytes kept.
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

static void decode_rejects_corrupt_bytes_as_schema(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        /* A session event with a wrong magic byte. */
        const uint8_t bad_magic[] = { 7, 0, 0, 0, 1, 2, 'x' };
        cf_rig_feed_raw(r, 0, CF_IN_SESSIONS, T0, "CH-1", bad_magic,
                        sizeof(bad_magic));
        /* A valid meter reading with one byte too many: the decoder stops
         * at the end of the record, which is the encoding's length n. */
        cf_meter_reading m = rd("r1", "S-1", 1, T0, 100000);
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(r->ip), CF_RT_METER_READING, &m, &b);
        size_t n = b.len;
        cf_buf_putc(&b, 0);
        cf_rig_feed_raw(r, 0, CF_IN_METER, T0, "CH-1", b.p, b.len);
        cf_rig_commit(r);

        assert_int_equal(r->n_rejects, 2);
        assert_int_equal(r->n_charges, 0);
        const cf_rejected *rj = r->rejects[0];
        assert_reject(rj, CF_REJECT_SCHEMA, "decode", CF_IN_SESSIONS, 0,
                      "MAGIC at byte 0: wrong magic byte (expected 0) (as "
                      "SessionEvent)");
        assert_int_equal(rj->event_time_ms, CF_NONE);
        assert_int_equal(rj->key.n, 4);
        assert_memory_equal(rj->key.p, "CH-1", 4);
        assert_int_equal(rj->value.n, sizeof(bad_magic));
        assert_memory_equal(rj->value.p, bad_magic, sizeof(bad_magic));

        rj = r->rejects[1];
        char want[128];
        snprintf(want, sizeof(want),
                 "TRAILING at byte %zu: trailing bytes after the record (as "
                 "MeterReading)",
                 n);
        assert_reject(rj, CF_REJECT_SCHEMA, "decode", CF_IN_METER, 0, want);
        assert_int_equal(rj->value.n, b.len);
        assert_memory_equal(rj->value.p, b.p, b.len);
        cf_buf_free(&b);

        assert_int_equal(cf_inproc_task(r->ip, 0)->reasons[CF_REJECT_SCHEMA],
                         2);
        assert_counts(r, CF_IN_SESSIONS, 1, 0, 0, 1, 0);
        assert_counts(r, CF_IN_METER, 1, 0, 0, 1, 0);
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(decode_rejects_corrupt_bytes_as_schema),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
