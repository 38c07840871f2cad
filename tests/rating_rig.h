/*
 * rating_rig.h: the world of the rating stage tests (test_decode.c,
 * test_dedup.c, test_validate.c, test_sessionize.c, test_price.c; and
 * test_runtime.c), on the stage-chain rig (rig.h): one partition, short
 * waits, a published site and users, and builders that encode and feed
 * session events and meter readings. Every test ends in cf_rig_done(),
 * which commits and checks conservation per task and input (in = accepted
 * + duplicates + rejected + pending) and that each rejection counted was
 * emitted exactly once. Waits: allowed
 * lateness 1 min, session timeout 40 min, orphan wait 5 min, unknown-site
 * wait 2 min, clock skew 1 h, dedup window 64 sequence numbers.
 *
 * Time: T0 is 2026-10-31T22:30:00Z, 23:30 in Oslo (CET, UTC+1 since the end
 * of summer time on 2026-10-25), so a session stopping an hour later stops in
 * October by UTC and in November by the site's clock. Kafka timestamps are
 * the event times unless a test says otherwise; stream time moves only when
 * a record with a later timestamp arrives, so tests move it with
 * cf_rig_tick(): a repeat of the last record fed, which dedup drops (counted
 * as a duplicate, emitted nowhere).
 *
 * Site "site-1" (tenant "t-coop", Europe/Oslo, NOK, VAT 25 %, 22 kW), from
 * V1_FROM, every component per Wh (step_size 1) at the site's VAT:
 *   resident  ENERGY 2.50 NOK/kWh                  (tariff "resident-v1")
 *   guest     ENERGY 3.00 NOK/kWh + FLAT 10.00 NOK (tariff "guest-v1")
 *   default   ENERGY 4.00 NOK/kWh                  (tariff "default-v1")
 *   no user   ENERGY 5.00 NOK/kWh                  (tariff "unauth-v1")
 * and, when published with two versions, from V2_FROM: resident 3.00 NOK/kWh
 * ("resident-v2"), default "default-v2" 4.00, the same unauthenticated plan.
 * Users: u-anna (resident, badge B-ANNA), u-gus (guest, B-GUS), u-emp
 * (employee, a group with no plan, B-EMP).
 *
 * The names are short (the tests' vocabulary); they exist only in these
 * test programs.
 */
#ifndef CF_TEST_RATING_RIG_H
#define CF_TEST_RATING_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include "rig.h"

#define MIN     60000LL
#define T0      1793485800000LL /* 2026-10-31T22:30:00Z */
#define V1_FROM 1767222000000LL /* 2026-01-01T00:00 Oslo */
#define V2_FROM (T0 + 30 * MIN)

/* The waits of every rating rig (see rating_rig_new). */
#define LATENESS     (1 * MIN)
#define TIMEOUT      (40 * MIN)
#define ORPHAN_WAIT  (5 * MIN)
#define SITE_WAIT    (2 * MIN)
#define SKEW         (60 * MIN)
#define DEDUP_WINDOW 64

/* A rig of one partition on a fresh state directory, with the waits above,
 * site-1 (one price version) and the users published. */
cf_rig *rating_rig_new(void);

/* Publishes site_id as site-1 is described above, with its first
 * `versions` (1 or 2) price versions. */
void publish_site(cf_rig *r, const char *site_id, int versions);

/* The counters of input (cf_input) of the rating task. */
const cf_counts *counts(cf_rig *r, int input);

/* Asserts the counters of input of the rating task. */
void assert_counts(cf_rig *r, int input, int64_t in, int64_t accepted,
                   int64_t dup, int64_t rejected, int64_t pending);

/* A session event of site-1, charger CH-1, connector 1, no user or badge;
 * a STOPPED one stops CF_STOP_LOCAL. */
cf_session_event ev(const char *eid, int32_t kind, const char *sid, int64_t t,
                    int64_t wh);

/* A meter reading of site-1, charger CH-1, connector 1, without power or
 * current. */
cf_meter_reading rd(const char *eid, const char *sid, int64_t seq, int64_t t,
                    int64_t wh);

/* Feeds a session event (keyed by its charger) at Kafka timestamp ts, or at
 * its event time; returns its offset. */
int64_t feed_ev_at(cf_rig *r, int64_t ts, const cf_session_event *e);
int64_t feed_ev(cf_rig *r, const cf_session_event *e);

/* Feeds a meter reading (keyed by its charger) at Kafka timestamp ts, or at
 * its event time; returns its offset. */
int64_t feed_rd_at(cf_rig *r, int64_t ts, const cf_meter_reading *m);
int64_t feed_rd(cf_rig *r, const cf_meter_reading *m);

/*
 * The standard session, on charger ch connector 1 of site-1, from start:
 *   STARTED  start        register 100000 Wh (user, badge as given)
 *   reading  start+15min  102500  (seq seq0+1)
 *   reading  start+30min  105000  (seq0+2)
 *   reading  start+45min  107500  (seq0+3)
 *   STOPPED  start+60min  110000
 * 10000 Wh in an hour: 10 kW, well under the 22 kW maximum. It is priced
 * once stream time reaches start+61min (the stop plus the lateness).
 */
void feed_std_session(cf_rig *r, const char *sid, const char *ch, int64_t start,
                      int64_t seq0, const char *user, const char *badge);

/* Whether the charge record carries flag f. */
bool has_flag(const cf_charge_record *cr, int32_t f);

/* One ENERGY line at the site VAT and the totals. */
void assert_energy_only(const cf_charge_record *cr, int64_t wh, int64_t excl,
                        int64_t vat);

/* A rejected record of partition 0 of input at offset, from stage, for
 * reason; its detail too unless detail is NULL. */
void assert_reject(const cf_rejected *rj, int32_t reason, const char *stage,
                   int32_t input, int64_t offset, const char *detail);

/* The parts (pipeline/state/store.h: one RocksDB value, each part its
 * length as a zigzag varint and its bytes) of key (without the task prefix)
 * in column family col of the rating task: their number, each one's size
 * and first 64 bytes. */
typedef struct parts_seen {
        int n;
        size_t len[16];
        uint8_t head[16][64];
} parts_seen;

parts_seen stored_parts(cf_rig *r, cf_col_t col, const char *key);

#endif
