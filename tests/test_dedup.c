/*
 * test_dedup.c: the dedup stage (stages/dedup.c): repeats of meter readings
 * (by charger and sequence number, within dedup.window) and of session
 * events (by event id) are counted as duplicates, also after a restart.
 * Through the stage-chain rig (rig.h) in the rating tests' world: site-1,
 * its users, waits and time T0 (rating_rig.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"
#include "inproc.h"
#include "rating_rig.h"

static void dedup_drops_repeat_reading(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        /* The same reading (charger CH-1, seq 1) twice, the second with
         * another event id and register: seq decides. Had it gone on, the
         * register 102000 below 102500 would have been a regression. */
        cf_meter_reading m = rd("r1", "S-1", 1, T0 + 15 * MIN, 102500);
        feed_rd(r, &m);
        cf_meter_reading again = rd("r1-bis", "S-1", 1, T0 + 16 * MIN, 102000);
        feed_rd(r, &again);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_METER, 2, 1, 1, 0, 0);
        assert_int_equal(r->n_rejects, 0);
        assert_int_equal(r->n_charges, 0);
        cf_rig_done(r);
}

static void dedup_tolerates_reordering_within_window(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        /* Arrival order 5, 3, 4 (Kafka timestamps 16, 17, 18 min), then 4
         * again. Times and registers follow the seq numbers (9.6 kW). */
        cf_meter_reading m5 = rd("r5", "S-1", 5, T0 + 15 * MIN, 102400);
        cf_meter_reading m3 = rd("r3", "S-1", 3, T0 + 5 * MIN, 100800);
        cf_meter_reading m4 = rd("r4", "S-1", 4, T0 + 10 * MIN, 101600);
        feed_rd_at(r, T0 + 16 * MIN, &m5);
        feed_rd_at(r, T0 + 17 * MIN, &m3);
        feed_rd_at(r, T0 + 18 * MIN, &m4);
        assert_counts(r, CF_IN_METER, 3, 3, 0, 0, 0);
        feed_rd_at(r, T0 + 19 * MIN, &m4);
        assert_counts(r, CF_IN_METER, 4, 3, 1, 0, 0);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 0);
        cf_rig_done(r);
}

static void dedup_reading_below_window_is_new_data_or_a_repeat(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        /* dedup.window 64: after seq 100, 100 - 64 = 36 is below the window:
         * dedup cannot tell, sessionize decides. r36 is new data that fits
         * S-1 (between the start and r100): kept, a late reading. */
        cf_meter_reading m100 = rd("r100", "S-1", 100, T0 + 30 * MIN, 105000);
        cf_meter_reading m36 = rd("r36", "S-1", 36, T0 + 10 * MIN, 101000);
        feed_rd(r, &m100);
        feed_rd_at(r, T0 + 31 * MIN, &m36);
        assert_counts(r, CF_IN_METER, 2, 2, 0, 0, 0);
        /* r36 again: the session has that reading: a repeat. */
        feed_rd_at(r, T0 + 31 * MIN + 1000, &m36);
        assert_counts(r, CF_IN_METER, 3, 2, 1, 0, 0);
        /* Below the window and not fitting (its register below the
         * start's): taken for the repeat of one rejected before, not
         * rejected again. */
        cf_meter_reading m35 = rd("r35", "S-1", 35, T0 + 5 * MIN, 99000);
        feed_rd_at(r, T0 + 31 * MIN + 2000, &m35);
        assert_counts(r, CF_IN_METER, 4, 2, 2, 0, 0);
        /* A reading of a session sessionize does not know: a repeat. */
        cf_meter_reading mx = rd("rx", "S-X", 34, T0 + 5 * MIN, 100000);
        feed_rd_at(r, T0 + 31 * MIN + 3000, &mx);
        assert_counts(r, CF_IN_METER, 5, 2, 3, 0, 0);
        /* 37 is the window's lowest number: dedup knows it is new. */
        cf_meter_reading m37 = rd("r37", "S-1", 37, T0 + 20 * MIN, 103000);
        feed_rd_at(r, T0 + 32 * MIN, &m37);
        assert_counts(r, CF_IN_METER, 6, 3, 3, 0, 0);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 0);
        cf_rig_done(r);
}

static void dedup_drops_repeat_session_event(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        /* The same STARTED again: had it reached sessionize, it would be a
         * second start (SESSION_STATE). */
        feed_ev_at(r, T0 + MIN, &s);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_SESSIONS, 2, 1, 1, 0, 0);
        assert_int_equal(r->n_rejects, 0);
        cf_rig_done(r);
}

static void dedup_keeps_second_event_of_same_kind_with_new_id(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_session_event s2 = ev("e2", CF_SESSION_STARTED, "S-1", T0, 100000);
        int64_t off = feed_ev_at(r, T0 + MIN, &s2);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_SESSIONS, 2, 1, 0, 1, 0);
        assert_int_equal(r->n_rejects, 1);
        assert_reject(r->rejects[0], CF_REJECT_SESSION_STATE, "sessionize",
                      CF_IN_SESSIONS, off, "second start of session S-1");
        cf_rig_done(r);
}

/* Found by these tests: the repeat of a second STARTED (a new id, rejected
 * as SESSION_STATE) was rejected again instead of counted as a duplicate. */
static void dedup_drops_repeat_of_second_event_of_same_kind(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_session_event s2 = ev("e2", CF_SESSION_STARTED, "S-1", T0, 100000);
        int64_t off = feed_ev_at(r, T0 + MIN, &s2);
        feed_ev_at(r, T0 + 2 * MIN, &s2);
        cf_rig_commit(r);
        /* e1 accepted, e2 rejected once, its repeat a duplicate: 3 in. */
        assert_counts(r, CF_IN_SESSIONS, 3, 1, 1, 1, 0);
        assert_int_equal(r->n_rejects, 1);
        assert_reject(r->rejects[0], CF_REJECT_SESSION_STATE, "sessionize",
                      CF_IN_SESSIONS, off, "second start of session S-1");
        cf_rig_done(r);
}

static void dedup_drops_repeat_after_restart(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        cf_meter_reading m = rd("r1", "S-1", 1, T0 + 15 * MIN, 102500);
        feed_ev(r, &s);
        feed_rd(r, &m);
        assert_counts(r, CF_IN_SESSIONS, 1, 1, 0, 0, 0);
        assert_counts(r, CF_IN_METER, 1, 1, 0, 0, 0);
        cf_rig_restart(r);
        /* The new process has the old one's dedup state and counters: the
         * repeats are duplicates, and in = 1 + 1 per input. */
        feed_ev_at(r, T0 + 16 * MIN, &s);
        feed_rd_at(r, T0 + 17 * MIN, &m);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_SESSIONS, 2, 1, 1, 0, 0);
        assert_counts(r, CF_IN_METER, 2, 1, 1, 0, 0);
        assert_int_equal(r->n_rejects, 0);
        assert_int_equal(r->n_charges, 0);
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

/* A commit stores what the charger's records changed, appended to its
 * state (store.h, parts), and a restart replays it. By hand from dedup.c:
 * a new reading number is OP_SEQ (1) and the number, zigzag varints (1 ->
 * 02, 3 -> 06); a new event is OP_EVENT (2 -> 04), its session id's hash
 * (8 bytes), its kind (STOPPED: 2 -> 04), its id's hash (8 bytes). */
static void dedup_stores_what_changed_and_replays_it(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_rig_commit(r);
        parts_seen ps = stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1");
        assert_int_equal(ps.n, 1);
        cf_meter_reading m1 = rd("r1", "S-1", 1, T0 + 5 * MIN, 100800);
        feed_rd(r, &m1);
        cf_rig_commit(r);
        cf_meter_reading m2 = rd("r2", "S-1", 2, T0 + 10 * MIN, 101600);
        cf_meter_reading m3 = rd("r3", "S-1", 3, T0 + 15 * MIN, 102400);
        feed_rd(r, &m2);
        feed_rd(r, &m3);
        cf_rig_commit(r);
        cf_session_event stop =
            ev("e2", CF_SESSION_STOPPED, "S-1", T0 + 20 * MIN, 103200);
        feed_ev(r, &stop);
        cf_rig_commit(r);
        ps = stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1");
        assert_int_equal(ps.n, 4);
        assert_int_equal(ps.len[1], 2);
        assert_memory_equal(ps.head[1], "\x02\x02", 2);
        assert_int_equal(ps.len[2], 4);
        assert_memory_equal(ps.head[2], "\x02\x04\x02\x06", 4);
        assert_int_equal(ps.len[3], 18);
        assert_int_equal(ps.head[3][0], 0x04);
        assert_int_equal(ps.head[3][9], 0x04);
        /* After a restart, from the parts: reading 3 and the stop again
         * (other event ids for the reading) are repeats, reading 4 is
         * new. */
        cf_rig_restart(r);
        cf_meter_reading m3b = rd("r3-bis", "S-1", 3, T0 + 15 * MIN, 102400);
        feed_rd(r, &m3b);
        feed_ev(r, &stop);
        cf_meter_reading m4 = rd("r4", "S-1", 4, T0 + 18 * MIN, 102800);
        feed_rd(r, &m4);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_METER, 5, 4, 1, 0, 0);
        assert_counts(r, CF_IN_SESSIONS, 3, 2, 1, 0, 0);
        cf_rig_done(r);
}

/* A state directory of a version before parts holds a charger's dedup
 * state whole, unframed, in column family DEDUP. A task's start moves it:
 * its numbers and event ids still make repeats, and the old key is gone
 * after the next commit. */
static void dedup_moves_state_stored_whole_to_parts(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_meter_reading m1 = rd("r1", "S-1", 1, T0 + 5 * MIN, 100800);
        feed_rd(r, &m1);
        cf_rig_commit(r);
        assert_int_equal(stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1").n, 1);
        /* The old layout: the whole part's bytes, without their length. */
        cf_state *db = cf_inproc_state(r->ip);
        cf_key k;
        cf_key_init(&k, cf_task_state_id('A', 0));
        cf_key_bytes(&k, "CH-1", 4);
        cf_buf v;
        cf_buf_init(&v);
        char err[256];
        assert_int_equal(cf_state_get(db, CF_COL_DEDUP_PARTS, k.b, k.len, &v,
                                      err, sizeof(err)),
                         CF_OK);
        size_t hdr = 0;
        while (v.p[hdr++] & 0x80)
                ;
        cf_batch *b = cf_batch_new(db);
        cf_batch_delete(b, CF_COL_DEDUP_PARTS, k.b, k.len);
        cf_batch_put(b, CF_COL_DEDUP, k.b, k.len, v.p + hdr, v.len - hdr);
        assert_int_equal(cf_state_write(db, b, true, err, sizeof(err)), CF_OK);
        cf_batch_destroy(b);

        cf_rig_restart(r);
        cf_rig_commit(r);
        db = cf_inproc_state(r->ip);
        assert_int_equal(stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1").n, 1);
        assert_int_equal(
            cf_state_get(db, CF_COL_DEDUP, k.b, k.len, &v, err, sizeof(err)),
            CF_ERR_NOT_FOUND);
        cf_buf_free(&v);
        /* Reading 1 (another id) and the start again: repeats. */
        cf_meter_reading m1b = rd("r1-bis", "S-1", 1, T0 + 5 * MIN, 100800);
        feed_rd(r, &m1b);
        feed_ev(r, &s);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_METER, 2, 1, 1, 0, 0);
        assert_counts(r, CF_IN_SESSIONS, 2, 1, 1, 0, 0);
        cf_rig_done(r);
}

/* A charger's state is sized by what it saw (dedup.c, version 2): with
 * one session started and no reading, by hand: hwm -1 (zigzag 01), the
 * window's words (DEDUP_WINDOW 64 bits: 1, zigzag 02), 8 bytes of bits,
 * 64 + 1 session kept (65, zigzag 130: 2 bytes), the ring position 1 (02),
 * that session's 32 bytes, no extra id (00) at position 0 (00): 47 bytes,
 * where version 1's fixed rings took 1 + 1 + 8 + 1 + 1024 + 1 + 128 =
 * 1,164. */
static void dedup_state_is_sized_by_use(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_rig_commit(r);
        parts_seen ps = stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1");
        assert_int_equal(ps.n, 1);
        assert_int_equal(ps.len[0], 47);
        assert_memory_equal(ps.head[0], "\x01\x02", 2);
        cf_rig_done(r);
}

static void put_u64(uint8_t *p, uint64_t v)
{
        memcpy(p, &v, 8);
}

/* A state directory written before dedup was sized by use holds version
 * 1, whole, in column family DEDUP: every ring slot, empty ones zero.
 * Built here by hand: readings 1 to 3 seen (hwm 3, zigzag 06; bits 0-2 of
 * the first word), the ring position 1 after session S-1 (its STARTED
 * e1), next extra position 0, no extra id. After the move, reading 2 and
 * e1 again are repeats, reading 4 and S-1's stop are new. */
static void dedup_reads_state_of_the_fixed_ring_version(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        uint8_t v1[1 + 1 + 8 + 1 + 32 * 32 + 1 + 16 * 8];
        memset(v1, 0, sizeof(v1));
        size_t o = 0;
        v1[o++] = 0x06; /* hwm 3 */
        v1[o++] = 0x02; /* 1 word */
        v1[o] = 0x07;   /* hwm, hwm - 1, hwm - 2 seen */
        o += 8;
        v1[o++] = 0x02; /* ring position 1 */
        put_u64(v1 + o, cf_hash64("S-1", 3));
        put_u64(v1 + o + 8, cf_hash64("e1", 2)); /* kind STARTED (0) */
        o += 32 * 32;
        v1[o++] = 0x00; /* next extra 0 */
        o += 16 * 8;
        assert_int_equal(o, sizeof(v1));
        cf_state *db = cf_inproc_state(r->ip);
        cf_key k;
        cf_key_init(&k, cf_task_state_id('A', 0));
        cf_key_bytes(&k, "CH-1", 4);
        char err[256];
        cf_batch *b = cf_batch_new(db);
        cf_batch_put(b, CF_COL_DEDUP, k.b, k.len, v1, sizeof(v1));
        assert_int_equal(cf_state_write(db, b, true, err, sizeof(err)), CF_OK);
        cf_batch_destroy(b);
        cf_rig_restart(r);
        cf_rig_commit(r);
        /* Moved, and stored as version 2: one session kept, 47 bytes as
         * in dedup_state_is_sized_by_use (hwm 3 is one byte as well). */
        parts_seen ps = stored_parts(r, CF_COL_DEDUP_PARTS, "CH-1");
        assert_int_equal(ps.n, 1);
        assert_int_equal(ps.len[0], 47);
        cf_meter_reading m2 = rd("r2-bis", "S-1", 2, T0 + 5 * MIN, 100800);
        feed_rd(r, &m2);
        cf_session_event s = ev("e1", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        cf_meter_reading m4 = rd("r4", "S-1", 4, T0 + 10 * MIN, 101600);
        feed_rd(r, &m4);
        cf_session_event stop =
            ev("e2", CF_SESSION_STOPPED, "S-1", T0 + 20 * MIN, 103200);
        feed_ev(r, &stop);
        cf_rig_commit(r);
        assert_int_equal(counts(r, CF_IN_METER)->dup, 1);
        assert_int_equal(counts(r, CF_IN_SESSIONS)->dup, 1);
        cf_rig_done(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(dedup_drops_repeat_reading),
                T(dedup_tolerates_reordering_within_window),
                T(dedup_reading_below_window_is_new_data_or_a_repeat),
                T(dedup_drops_repeat_session_event),
                T(dedup_keeps_second_event_of_same_kind_with_new_id),
                T(dedup_drops_repeat_of_second_event_of_same_kind),
                T(dedup_drops_repeat_after_restart),
                T(dedup_stores_what_changed_and_replays_it),
                T(dedup_moves_state_stored_whole_to_parts),
                T(dedup_state_is_sized_by_use),
                T(dedup_reads_state_of_the_fixed_ring_version),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
