/*
 * test_runtime.c: the runtime (pipeline/runtime/, pipeline/task/): how the
 * process shares its state cache among the tasks, and what drives a
 * rating task's stream time (timestamp.source): backfills, clocks ahead of
 * their Kafka timestamps, commits and restarts.
 * Through the stage-chain rig (rig.h) in the rating tests' world: site-1,
 * its users, waits and time T0 (rating_rig.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"
#include "rating_rig.h"
#include "state.h"
#include "stages.h"

/* state.cache.max.bytes is the process's total: 3/4 shared by the rating
 * tasks, 1/4 by the billing tasks, evenly within each kind. */
static void runtime_splits_state_cache_among_tasks(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new(); /* 1 partition, the default 64 MiB */
        assert_int_equal(cf_task_cache_budget(cf_inproc_task(r->ip, 0)),
                         48 << 20);
        assert_int_equal(cf_task_cache_budget(cf_inproc_task(r->ip, 1)),
                         16 << 20);
        cf_inproc_destroy(r->ip);
        r->ip = NULL;
        cf_rig_set(r, "state.cache.max.bytes", "8388608");
        cf_rig_open(r, 4);
        size_t sum = 0;
        for (int32_t i = 0; i < 8; i++) {
                size_t b = cf_task_cache_budget(cf_inproc_task(r->ip, i));
                assert_int_equal(b, i < 4 ? 1572864 : 524288);
                sum += b;
        }
        assert_int_equal(sum, 8388608);
        cf_rig_done(r);
}

/* state.block.cache.bytes and state.write.buffer.bytes reach RocksDB: the
 * OPTIONS file it writes in the state directory names the memtables' sizes
 * (8 MiB in all, a quarter of it, 2 MiB, per column family), and its LOG
 * the block cache's capacity (2 MiB) in every column family's table
 * options. file: "OPTIONS" (the newest OPTIONS-*) or "LOG". */
static bool state_file_has(const char *dir, const char *file,
                           const char *needle)
{
        char cmd[512], line[4096];
        if (!strcmp(file, "OPTIONS"))
                snprintf(cmd, sizeof(cmd),
                         "cat \"$(ls -1 %s/OPTIONS-* | tail -1)\"", dir);
        else
                snprintf(cmd, sizeof(cmd), "cat %s/%s", dir, file);
        FILE *f = popen(cmd, "r");
        bool found = false;
        while (f && fgets(line, sizeof(line), f))
                if (strstr(line, needle))
                        found = true;
        if (f)
                pclose(f);
        return found;
}

static void runtime_sizes_rocksdb_by_its_keys(void **state)
{
        (void)state;
        cf_rig *r = cf_rig_new("rocksdb-sizes");
        cf_rig_set(r, "state.block.cache.bytes", "2097152");
        cf_rig_set(r, "state.write.buffer.bytes", "8388608");
        cf_rig_open(r, 1);
        assert_true(
            state_file_has(r->dir, "OPTIONS", "db_write_buffer_size=8388608"));
        assert_true(
            state_file_has(r->dir, "OPTIONS", "  write_buffer_size=2097152"));
        assert_true(state_file_has(r->dir, "LOG", "capacity : 2097152"));
        assert_false(state_file_has(r->dir, "LOG", "capacity : 16777216"));
        assert_false(state_file_has(r->dir, "LOG", "capacity : 67108864"));
        cf_rig_done(r);
}

/* ---- timestamp.source ---------------------------------------------------
 *
 * The backfill: a backend publishes two October sessions of u-anna
 * (resident, 2.50 NOK/kWh) a month late, with its own clock as Kafka
 * timestamp, NOW = T0 + 40 d (2026-12-10T22:30Z), then NOW + 1 s, ...:
 *   S-1 CH-1 from T0 - 20 d (2026-10-11T22:30Z, 12 Oct 00:30 in Oslo)
 *   S-2 CH-2 from T0 - 10 d (2026-10-21T22:30Z, 22 Oct 00:30 in Oslo)
 * each the standard session (10000 Wh in an hour: 10000 * 2.50 / 1000 =
 * 25.00 NOK = 2500 øre, VAT 25 % = 625), and then a live STARTED (S-3,
 * CH-3, no user) at T0 + 2 d (2026-11-02T22:30Z) with Kafka timestamp
 * NOW + 2 min. October (Oslo) ends at 2026-10-31T23:00Z; billing.grace.ms
 * is the default 1 d, so October closes once the watermark (stream time
 * minus 1 min) reaches 2026-11-01T23:00Z.
 */
#define DAY (24 * 60 * MIN)
#define NOW (T0 + 40 * DAY)

/* The standard session (rating_rig.h) published at Kafka timestamps ts0,
 * ts0 + 1 s, ...; with commit_each, a commit after every record. */
static void backfill_session(cf_rig *r, const char *sid, const char *ch,
                             int64_t start, int64_t ts0, bool commit_each)
{
        char id[64];
        int64_t ts = ts0;
        snprintf(id, sizeof(id), "%s-start", sid);
        cf_session_event e = ev(id, CF_SESSION_STARTED, sid, start, 100000);
        e.charger_id = (char *)ch;
        e.user_id = "u-anna";
        e.badge_id = "B-ANNA";
        feed_ev_at(r, ts, &e);
        if (commit_each)
                cf_rig_commit(r);
        for (int i = 1; i <= 3; i++) {
                snprintf(id, sizeof(id), "%s-r%d", sid, i);
                cf_meter_reading m =
                    rd(id, sid, i, start + i * 15 * MIN, 100000 + i * 2500);
                m.charger_id = (char *)ch;
                feed_rd_at(r, ts += 1000, &m);
                if (commit_each)
                        cf_rig_commit(r);
        }
        snprintf(id, sizeof(id), "%s-stop", sid);
        e = ev(id, CF_SESSION_STOPPED, sid, start + 60 * MIN, 110000);
        e.charger_id = (char *)ch;
        feed_ev_at(r, ts + 1000, &e);
}

/* The backfill above on a rating rig with timestamp.source = source; with
 * restart_after_s1, a restart (after a commit) between S-1 and S-2; with
 * commit_each, a commit after every record. */
static cf_rig *backfill(const char *source, bool restart_after_s1,
                        bool commit_each)
{
        cf_rig *r = cf_rig_new("ts");
        cf_rig_set(r, "timestamp.source", source);
        cf_rig_set_int(r, "allowed.lateness.ms", LATENESS);
        cf_rig_set_int(r, "session.timeout.ms", TIMEOUT);
        cf_rig_set_int(r, "max.clock.skew.ms", SKEW);
        cf_rig_set_int(r, "watermark.idle.ms", 60 * MIN);
        cf_rig_open(r, 1);
        publish_site(r, "site-1", 1);
        char *badges[] = { "B-ANNA" };
        cf_user u = { .user_id = "u-anna",
                      .tenant_id = "t-coop",
                      .group = "resident",
                      .badges = badges,
                      .n_badges = 1,
                      .updated_ms = V1_FROM };
        cf_rig_table(r, CF_TABLE_USERS, CF_RT_USER, "u-anna", &u);
        backfill_session(r, "S-1", "CH-1", T0 - 20 * DAY, NOW, commit_each);
        if (restart_after_s1) {
                int64_t st = cf_rig_task(r, 0)->stream_time;
                cf_rig_restart(r);
                /* The stream time is in the task's commit. */
                assert_int_equal(cf_rig_task(r, 0)->stream_time, st);
        }
        backfill_session(r, "S-2", "CH-2", T0 - 10 * DAY, NOW + 5000,
                         commit_each);
        if (commit_each)
                cf_rig_commit(r);
        cf_session_event e =
            ev("S-3-start", CF_SESSION_STARTED, "S-3", T0 + 2 * DAY, 100000);
        e.charger_id = "CH-3";
        feed_ev_at(r, NOW + 2 * MIN, &e);
        cf_rig_commit(r);
        cf_rig_commit(r); /* billing's outputs of the first */
        return r;
}

static int count_stmts_of(cf_rig *r, const char *party)
{
        int n = 0;
        for (size_t i = 0; i < r->n_stmts; i++)
                n += !strcmp(r->stmts[i]->billed_party, party);
        return n;
}

static const cf_statement *stmt_of(cf_rig *r, const char *party,
                                   const char *period)
{
        for (size_t i = 0; i < r->n_stmts; i++)
                if (!strcmp(r->stmts[i]->billed_party, party) &&
                    !strcmp(r->stmts[i]->period_id, period))
                        return r->stmts[i];
        fail_msg("no statement of %s for %s", party, period);
        return NULL;
}

static void assert_stmt_totals(const cf_statement *st, int64_t sessions,
                               int64_t wh, int64_t excl, int64_t vat,
                               int64_t incl)
{
        assert_int_equal(st->session_count, sessions);
        assert_int_equal(st->energy_wh, wh);
        assert_int_equal(st->total_excl_vat, excl);
        assert_int_equal(st->total_vat, vat);
        assert_int_equal(st->total_incl_vat, incl);
}

/* timestamp.source=event (the default): the backfilled sessions are billed
 * in October's statement, as if they had been published in October. */
static void event_time_bills_a_backfill_in_its_own_period(void **state)
{
        (void)state;
        cf_config d;
        cf_config_init(&d);
        assert_string_equal(d.timestamp_source, "event");
        cf_config_destroy(&d);
        cf_rig *r = backfill("event", false, false);
        /* Stream time: S-3's own time, not its Kafka timestamp. */
        assert_int_equal(cf_rig_task(r, 0)->stream_time, T0 + 2 * DAY);
        assert_int_equal(r->n_charges, 2);
        assert_string_equal(cf_rig_charge_of(r, "S-1")->period_id, "2026-10");
        assert_string_equal(cf_rig_charge_of(r, "S-2")->period_id, "2026-10");
        /* October: both sessions, 20000 Wh, 2 * 2500 = 5000, VAT 1250,
         * 6250 in all; no adjustment. */
        assert_int_equal(count_stmts_of(r, "u-anna"), 1);
        const cf_statement *oct = stmt_of(r, "u-anna", "2026-10");
        assert_stmt_totals(oct, 2, 20000, 5000, 1250, 6250);
        assert_int_equal(oct->n_adjustments, 0);
        assert_int_equal(oct->n_chargers, 2);
        /* The repartition records carrying them are as new as the
         * backfill's records (Kafka timestamps from NOW), not stamped
         * October, which a 7-day retention would delete at once. */
        assert_int_equal(r->n_rp, 2);
        for (size_t i = 0; i < r->n_rp; i++)
                assert_true(r->rp[i]->ts >= NOW);
        cf_rig_done(r);
}

/* timestamp.source=kafka: the old behaviour. The stream time is the
 * backend's clock: October is long closed when the sessions are priced,
 * so no October statement is issued and both sessions become adjustments
 * in the statement of the period of the watermark, December, which the
 * end of input closes: no session, no energy, the money of both. */
static void kafka_time_turns_a_backfill_into_adjustments(void **state)
{
        (void)state;
        cf_rig *r = backfill("kafka", false, false);
        assert_int_equal(cf_rig_task(r, 0)->stream_time, NOW + 2 * MIN);
        assert_int_equal(r->n_charges, 2);
        assert_string_equal(cf_rig_charge_of(r, "S-1")->period_id, "2026-10");
        assert_int_equal(r->n_stmts, 0);
        cf_inproc_drain(r->ip);
        cf_rig_commit(r);
        cf_rig_commit(r);
        assert_int_equal(count_stmts_of(r, "u-anna"), 1);
        const cf_statement *dec = stmt_of(r, "u-anna", "2026-12");
        assert_stmt_totals(dec, 0, 0, 5000, 1250, 6250);
        assert_int_equal(dec->n_adjustments, 2);
        for (uint32_t i = 0; i < 2; i++) {
                const cf_adjustment *a = &dec->adjustments[i];
                assert_string_equal(a->original_period_id, "2026-10");
                assert_int_equal(a->energy_wh, 10000);
                assert_int_equal(a->total_excl_vat, 2500);
                assert_int_equal(a->total_vat, 625);
                assert_int_equal(a->total_incl_vat, 3125);
        }
        cf_rig_done(r);
}

/* The same records give the same outputs, byte for byte, whether the task
 * commits once, after every record, or restarts in between (stream time
 * comes back from its commit). */
static void event_time_outputs_do_not_depend_on_commits(void **state)
{
        (void)state;
        cf_rig *a = backfill("event", false, false);
        assert_int_equal(a->n_charges, 2);
        assert_int_equal(a->n_stmts, 1);
        cf_rig *o[2] = { backfill("event", true, false),
                         backfill("event", false, true) };
        for (int k = 0; k < 2; k++) {
                cf_rig *b = o[k];
                assert_int_equal(b->n_charges, a->n_charges);
                assert_int_equal(b->n_stmts, a->n_stmts);
                for (size_t i = 0; i < a->n_charges; i++) {
                        assert_int_equal(a->charge_bytes[i].len,
                                         b->charge_bytes[i].len);
                        assert_memory_equal(a->charge_bytes[i].p,
                                            b->charge_bytes[i].p,
                                            a->charge_bytes[i].len);
                }
                for (size_t i = 0; i < a->n_stmts; i++) {
                        assert_int_equal(a->stmt_bytes[i].len,
                                         b->stmt_bytes[i].len);
                        assert_memory_equal(a->stmt_bytes[i].p,
                                            b->stmt_bytes[i].p,
                                            a->stmt_bytes[i].len);
                }
                assert_int_equal(cf_rig_task(b, 0)->stream_time,
                                 cf_rig_task(a, 0)->stream_time);
                cf_rig_done(b);
        }
        cf_rig_done(a);
}

/* A record moves the stream time to its own time, capped at its Kafka
 * timestamp, and only forward; a clock further than max.clock.skew.ms
 * (1 h) ahead of the Kafka timestamp (or, without one, of the stream),
 * and bytes that do not decode, move nothing. */
static void event_time_is_capped_at_the_kafka_timestamp(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new(); /* timestamp.source=event */
        cf_task *t = cf_rig_task(r, 0);
        cf_session_event s =
            ev("e-start", CF_SESSION_STARTED, "S-1", T0, 100000);
        feed_ev(r, &s);
        assert_int_equal(t->stream_time, T0);
        /* 30 min ahead of its Kafka timestamp T0 + 10 min: the stream
         * stops there. The reading is taken (20 min ahead of the stream,
         * within the skew). */
        cf_meter_reading m1 = rd("e-r1", "S-1", 1, T0 + 30 * MIN, 101000);
        feed_rd_at(r, T0 + 10 * MIN, &m1);
        assert_int_equal(t->stream_time, T0 + 10 * MIN);
        /* Older than the stream: no step back. */
        cf_meter_reading m2 = rd("e-r2", "S-1", 2, T0 + 5 * MIN, 100500);
        feed_rd_at(r, T0 + 20 * MIN, &m2);
        assert_int_equal(t->stream_time, T0 + 10 * MIN);
        /* 5 h ahead of its Kafka timestamp T0 + 11 min: a wrong clock,
         * no move; CLOCK (ahead of the stream by more than the skew). */
        cf_meter_reading m3 = rd("e-r3", "S-1", 3, T0 + 5 * 60 * MIN, 102000);
        int64_t off3 = feed_rd_at(r, T0 + 11 * MIN, &m3);
        assert_int_equal(t->stream_time, T0 + 10 * MIN);
        /* No Kafka timestamp: its own time, within the skew of the
         * stream. */
        cf_meter_reading m4 = rd("e-r4", "S-1", 4, T0 + 12 * MIN, 100700);
        feed_rd_at(r, -1, &m4);
        assert_int_equal(t->stream_time, T0 + 12 * MIN);
        /* No Kafka timestamp, 3 h ahead of the stream: no move, CLOCK. */
        cf_meter_reading m5 = rd("e-r5", "S-1", 5, T0 + 3 * 60 * MIN, 103000);
        int64_t off5 = feed_rd_at(r, -1, &m5);
        assert_int_equal(t->stream_time, T0 + 12 * MIN);
        /* Bytes that do not decode, with a Kafka timestamp a day on: no
         * move (SCHEMA). */
        int64_t off6 =
            cf_rig_feed_raw(r, 0, CF_IN_METER, T0 + DAY, "CH-1", "junk", 4);
        assert_int_equal(t->stream_time, T0 + 12 * MIN);
        cf_rig_commit(r);
        assert_counts(r, CF_IN_METER, 6, 3, 0, 3, 0);
        assert_int_equal(r->n_rejects, 3);
        assert_reject(r->rejects[0], CF_REJECT_CLOCK, "validate", CF_IN_METER,
                      off3, NULL);
        assert_reject(r->rejects[1], CF_REJECT_CLOCK, "validate", CF_IN_METER,
                      off5, NULL);
        assert_reject(r->rejects[2], CF_REJECT_SCHEMA, "decode", CF_IN_METER,
                      off6, NULL);
        cf_rig_done(r);
}

/* timestamp.source=kafka: every record moves the stream time to its Kafka
 * timestamp, whatever its own time, even one that does not decode. */
static void kafka_time_follows_the_kafka_timestamp(void **state)
{
        (void)state;
        cf_rig *r = cf_rig_new("ts");
        cf_rig_set(r, "timestamp.source", "kafka");
        cf_rig_set_int(r, "max.clock.skew.ms", SKEW);
        cf_rig_open(r, 1);
        publish_site(r, "site-1", 1);
        cf_task *t = cf_rig_task(r, 0);
        cf_session_event s =
            ev("e-start", CF_SESSION_STARTED, "S-1", T0 - 20 * DAY, 100000);
        feed_ev_at(r, T0, &s);
        assert_int_equal(t->stream_time, T0);
        cf_meter_reading m1 = rd("e-r1", "S-1", 1, T0 - 20 * DAY + MIN, 100100);
        feed_rd_at(r, T0 + 10 * MIN, &m1);
        assert_int_equal(t->stream_time, T0 + 10 * MIN);
        cf_rig_feed_raw(r, 0, CF_IN_METER, T0 + DAY, "CH-1", "junk", 4);
        assert_int_equal(t->stream_time, T0 + DAY);
        cf_rig_done(r);
}

/* What breaks a tie of Kafka timestamps in the merge of the two inputs
 * (event mode): the record's own time capped at its Kafka timestamp; a
 * wrong clock and bytes that do not decode go first. */
static void tie_time_of_a_record(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new();
        cf_task *t = cf_rig_task(r, 0);
        cf_buf b;
        cf_buf_init(&b);
        cf_meter_reading m = rd("e-r1", "S-1", 1, T0 - DAY, 100000);
        cf_encode(cf_inproc_registry(r->ip), CF_RT_METER_READING, &m, &b);
        cf_src src = { .input = CF_IN_METER,
                       .ts = T0,
                       .key = (const uint8_t *)"CH-1",
                       .key_len = 4,
                       .value = b.p,
                       .value_len = (uint32_t)b.len };
        assert_int_equal(cf_task_tie_time_src(t, &src), T0 - DAY);
        src.ts = T0 - DAY - 1000;
        assert_int_equal(cf_task_tie_time_src(t, &src), T0 - DAY - 1000);
        src.ts = T0 - DAY - SKEW - 1; /* over the skew behind it */
        assert_true(cf_task_tie_time_src(t, &src) == CF_NONE);
        src.ts = -1;
        assert_int_equal(cf_task_tie_time_src(t, &src), T0 - DAY);
        src.value = (const uint8_t *)"junk";
        src.value_len = 4;
        assert_true(cf_task_tie_time_src(t, &src) == CF_NONE);
        cf_buf_free(&b);
        cf_rig_done(r);
}

/* ---- the producer contract ---------------------------------------------
 *
 * A charger's records on two partitions (say its session events produced
 * with one partitioner and its readings with another): STARTED on
 * partition 0, its three readings and its STOPPED on partition 1. Each
 * task sees half a session. On partition 1 the readings and the stop wait
 * for a STARTED that never comes there, orphan.wait.ms (5 min) of stream
 * time, then the readings are ORPHAN and the stop SESSION_STATE; on
 * partition 0 the session has no readings and no stop: at the end of
 * input it is closed without energy, flagged STOP_ESTIMATED.
 */
static void contract_charger_split_across_partitions(void **state)
{
        (void)state;
        cf_rig *r = cf_rig_new("ts");
        cf_rig_set_int(r, "allowed.lateness.ms", LATENESS);
        cf_rig_set_int(r, "orphan.wait.ms", ORPHAN_WAIT);
        cf_rig_set_int(r, "max.clock.skew.ms", SKEW);
        cf_rig_open(r, 2);
        publish_site(r, "site-1", 1);
        cf_session_event s =
            ev("e-start", CF_SESSION_STARTED, "S-1", T0, 100000);
        cf_rig_feed(r, 0, CF_IN_SESSIONS, T0, "CH-1", CF_RT_SESSION_EVENT, &s);
        int64_t off[4];
        for (int i = 1; i <= 3; i++) {
                char id[16];
                snprintf(id, sizeof(id), "e-r%d", i);
                cf_meter_reading m =
                    rd(id, "S-1", i, T0 + i * 15 * MIN, 100000 + i * 2500);
                off[i - 1] = cf_rig_feed(r, 1, CF_IN_METER, m.time_ms, "CH-1",
                                         CF_RT_METER_READING, &m);
        }
        cf_session_event e =
            ev("e-stop", CF_SESSION_STOPPED, "S-1", T0 + 60 * MIN, 110000);
        off[3] = cf_rig_feed(r, 1, CF_IN_SESSIONS, e.time_ms, "CH-1",
                             CF_RT_SESSION_EVENT, &e);
        /* Partition 1's stream time past the first reading's wait. */
        cf_rig_tick(r, T0 + 60 * MIN + ORPHAN_WAIT + 1);
        cf_inproc_drain(r->ip);
        cf_rig_commit(r);
        cf_rig_commit(r);
        assert_int_equal(r->n_rejects, 4);
        int orphans = 0, state_ = 0;
        for (size_t i = 0; i < 4; i++) {
                const cf_rejected *rj = r->rejects[i];
                assert_int_equal(rj->partition, 1);
                if (rj->reason == CF_REJECT_ORPHAN) {
                        assert_string_equal(rj->source_topic, "charging.meter");
                        orphans++;
                } else {
                        assert_int_equal(rj->reason, CF_REJECT_SESSION_STATE);
                        assert_string_equal(rj->source_topic,
                                            "charging.sessions");
                        assert_int_equal(rj->offset, off[3]);
                        state_++;
                }
        }
        assert_int_equal(orphans, 3);
        assert_int_equal(state_, 1);
        const cf_charge_record *cr = cf_rig_charge_of(r, "S-1");
        assert_int_equal(cr->energy_wh, 0);
        assert_true(has_flag(cr, CF_FLAG_STOP_ESTIMATED));
        assert_int_equal(r->n_charges, 1);
        cf_rig_done(r);
}

/* ---- the outbox's deletes ------------------------------------------------
 * Outputs as task log records (which the rig's sink ignores), sent and
 * delivered by hand: an entry is in flight once taken out of pending. */

static int collect_seq(void *opaque, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen)
{
        (void)val;
        (void)vlen;
        int64_t *seqs = opaque;        /* [0]: count, then the seqs */
        assert_int_equal(klen, 2 + 8); /* state id + seq (outbox.c) */
        seqs[1 + seqs[0]++] = (int64_t)cf_be64(key + 2);
        return 0;
}

/* The seqs of t's outbox in the state, relative to s0, as "a,b,c". */
static const char *outbox_seqs(cf_task *t, int64_t s0, char *out, size_t n)
{
        int64_t seqs[65] = { 0 };
        char err[256];
        cf_key k;
        cf_key_init(&k, t->state_id);
        assert_int_equal(cf_state_scan(t->rt->st, CF_COL_OUTBOX, k.b, k.len,
                                       collect_seq, seqs, err, sizeof(err)),
                         CF_OK);
        size_t len = 0;
        out[0] = '\0';
        for (int64_t i = 0; i < seqs[0]; i++)
                len +=
                    (size_t)snprintf(out + len, n - len, "%s%lld", i ? "," : "",
                                     (long long)(seqs[1 + i] - s0));
        return out;
}

/* One commit of t's outbox alone, written; returns its entries. */
static int outbox_commit(cf_task *t)
{
        char err[256];
        cf_batch *b = cf_batch_new(t->rt->st);
        cf_outbox_commit(t, b);
        int n = cf_batch_count(b);
        assert_int_equal(cf_state_write(t->rt->st, b, true, err, sizeof(err)),
                         CF_OK);
        cf_batch_destroy(b);
        return n;
}

/* Sends t's pending entries: they are in flight (freed by the caller). */
static size_t outbox_send(cf_task *t, cf_out **sent)
{
        size_t n = t->ob.n_pending;
        memcpy(sent, t->ob.pending, n * sizeof(*sent));
        t->ob.n_pending = t->ob.n_committed = 0;
        return n;
}

/* A commit deletes the delivered entries below the first one not
 * delivered as one range delete, so an output costs one write (its put)
 * and not two; one delivered above a gap stays until the gap is filled,
 * also across a restart. */
static void outbox_deletes_delivered_entries_as_one_range(void **state)
{
        (void)state;
        char got[256];
        cf_out *sent[16];
        cf_rig *r = rating_rig_new();
        cf_task *t = cf_rig_task(r, 0);
        assert_string_equal(outbox_seqs(t, 0, got, sizeof(got)), "");
        int64_t s0 = t->ob.next_seq;
        for (int i = 0; i < 5; i++)
                cf_outbox_emit(t, CF_OUT_RATING_LOG, 0, "k", 1, "v", 1);
        assert_int_equal(outbox_commit(t), 5); /* five puts */
        assert_int_equal(outbox_send(t, sent), 5);
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "0,1,2,3,4");
        /* 1, 0 and 3 delivered; 2 and 4 in flight. */
        cf_outbox_delivered(t, s0 + 1);
        cf_outbox_delivered(t, s0 + 0);
        cf_outbox_delivered(t, s0 + 3);
        assert_int_equal(outbox_commit(t), 1); /* [0, 2) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "2,3,4");
        cf_outbox_delivered(t, s0 + 2);
        assert_int_equal(outbox_commit(t), 1); /* [2, 4) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "4");
        assert_int_equal(outbox_commit(t), 0); /* nothing new */
        cf_outbox_delivered(t, s0 + 4);
        assert_int_equal(outbox_commit(t), 1); /* [4, 5) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "");
        for (int i = 0; i < 5; i++)
                cf_out_free(sent[i]);

        /* 5 in flight, 6 delivered: nothing can go; a restart finds both,
         * and once they are handed over the two commits after leave none. */
        cf_outbox_emit(t, CF_OUT_RATING_LOG, 0, "k", 1, "v", 1);
        cf_outbox_emit(t, CF_OUT_RATING_LOG, 0, "k", 1, "v", 1);
        assert_int_equal(outbox_commit(t), 2);
        assert_int_equal(outbox_send(t, sent), 2);
        cf_outbox_delivered(t, s0 + 6);
        assert_int_equal(outbox_commit(t), 0);
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "5,6");
        cf_out_free(sent[0]);
        cf_out_free(sent[1]);
        cf_rig_restart(r);
        t = cf_rig_task(r, 0);
        assert_int_equal(t->ob.n_pending, 2);
        assert_int_equal(t->ob.pending[0]->seq, s0 + 5);
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "5,6");
        cf_rig_commit(r); /* puts 5 and 6 again, hands them over */
        cf_rig_commit(r); /* deletes [5, 7) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "");

        /* A hole: a state restored from the task log lacks the log
         * records of the earlier owner's last commit (the log does not
         * carry its own records), numbered below the task's next seq.
         * 7, 8, 9 written and handed over, 8 then removed from the state
         * by hand, the process killed before its next commit: after the
         * restart 7 and 9 are pending, 8 is nowhere.
         * Once 7 and 9 are handed over, one range deletes [7, 10): the
         * hole counts as deleted (it once stopped the range for good,
         * and every later output stayed in the state). */
        for (int i = 0; i < 3; i++)
                cf_outbox_emit(t, CF_OUT_RATING_LOG, 0, "k", 1, "v", 1);
        cf_rig_commit(r); /* puts 7, 8, 9, hands them over */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "7,8,9");
        {
                char err[256];
                cf_key k;
                cf_key_init(&k, t->state_id);
                cf_key_u64(&k, (uint64_t)(s0 + 8));
                cf_batch *b = cf_batch_new(t->rt->st);
                cf_batch_delete(b, CF_COL_OUTBOX, k.b, k.len);
                assert_int_equal(
                    cf_state_write(t->rt->st, b, true, err, sizeof(err)),
                    CF_OK);
                cf_batch_destroy(b);
        }
        /* A stop without the commit that would delete them (kill -9). */
        cf_inproc_destroy(r->ip);
        r->ip = NULL;
        cf_rig_open(r, r->parts);
        t = cf_rig_task(r, 0);
        assert_int_equal(t->ob.next_seq, s0 + 10);
        assert_int_equal(t->ob.n_pending, 2);
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "7,9");
        cf_rig_commit(r); /* hands 7 and 9 over */
        cf_rig_commit(r); /* deletes [7, 10) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "");
        cf_outbox_emit(t, CF_OUT_RATING_LOG, 0, "k", 1, "v", 1);
        cf_rig_commit(r); /* puts 10, hands it over */
        cf_rig_commit(r); /* deletes [10, 11) */
        assert_string_equal(outbox_seqs(t, s0, got, sizeof(got)), "");
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(runtime_splits_state_cache_among_tasks),
                T(runtime_sizes_rocksdb_by_its_keys),
                T(event_time_bills_a_backfill_in_its_own_period),
                T(kafka_time_turns_a_backfill_into_adjustments),
                T(event_time_outputs_do_not_depend_on_commits),
                T(event_time_is_capped_at_the_kafka_timestamp),
                T(kafka_time_follows_the_kafka_timestamp),
                T(tie_time_of_a_record),
                T(contract_charger_split_across_partitions),
                T(outbox_deletes_delivered_entries_as_one_range),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
