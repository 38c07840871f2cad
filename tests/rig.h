/*
 * rig.h: the stage-chain test rig of the stage tests (test_decode.c,
 * test_dedup.c, test_validate.c, test_sessionize.c, test_price.c,
 * test_bill.c) and test_runtime.c: the real rating and billing tasks, stage
 * chains, RocksDB state and commits through cf_inproc, with no Kafka.
 *
 * A rig is a fresh state directory under /tmp (removed by cf_rig_free), a
 * configuration the test fills before cf_rig_open, and a sink that decodes
 * every output delivered at a commit into arrays the test inspects: charge
 * records (with their bytes), statements (with their bytes), rejected
 * records, and a copy of every repartition record carrying a charge. A
 * record that does not decode, or a charge record or statement not keyed by
 * its session id or statement id, is counted in sink_errors, which
 * cf_rig_commit asserts is zero.
 *
 * Threading: one thread (the test's). Every function fails the running
 * cmocka test on error.
 */
#ifndef CF_TEST_RIG_H
#define CF_TEST_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "inproc.h"
#include "records.h"
#include "task.h"

#define CF_RIG_MAX_OUT   64 /* outputs of each kind a rig keeps */
#define CF_RIG_MAX_PARTS 8  /* partitions a rig can be fed on */

typedef struct cf_rig {
        char *dir; /* the state directory */
        cf_config cfg;
        cf_inproc *ip;
        int32_t parts; /* partitions of ip */
        cf_arena a;    /* decoded outputs */
        cf_charge_record *charges[CF_RIG_MAX_OUT];
        cf_buf charge_bytes[CF_RIG_MAX_OUT];
        size_t n_charges;
        cf_statement *stmts[CF_RIG_MAX_OUT];
        cf_buf stmt_bytes[CF_RIG_MAX_OUT];
        size_t n_stmts;
        cf_rejected *rejects[CF_RIG_MAX_OUT];
        size_t n_rejects;
        size_t rejects_at_open;     /* n_rejects when ip was opened */
        cf_out *rp[CF_RIG_MAX_OUT]; /* repartition records carrying a
                                       charge (copies, owned by the rig) */
        size_t n_rp;
        int sink_errors;
        int64_t next_offset[CF_RIG_MAX_PARTS][CF_IN__CNT];
        int64_t next_seq; /* for a test numbering meter readings per rig */
        /* The last record fed, for cf_rig_tick(). */
        int32_t last_input, last_part;
        cf_buf last_key, last_value;
} cf_rig;

/* A rig on a fresh state directory /tmp/cf-test-<tag>-XXXXXX with a
 * default configuration holding only state.dir; not open yet (set keys
 * with cf_rig_set, then cf_rig_open). Freed by cf_rig_free, or by
 * cf_rig_cleanup when the test fails first. */
cf_rig *cf_rig_new(const char *tag);

/* Sets a configuration key (before cf_rig_open); fails the test on a bad
 * key or value. */
void cf_rig_set(cf_rig *r, const char *key, const char *value);

/* cf_rig_set with an integer value (milliseconds, counts). */
void cf_rig_set_int(cf_rig *r, const char *key, int64_t v);

/* Creates the tasks of `parts` partitions on the state directory
 * (restoring what it holds). Rejections counted from here on are compared
 * with the rejected records emitted from here on (cf_rig_check). */
void cf_rig_open(cf_rig *r, int32_t parts);

/* Commits every task and hands the outputs to the sink; asserts the sink
 * had no errors. */
void cf_rig_commit(cf_rig *r);

/* Conservation per task (rating and billing) and input: in = accepted +
 * duplicates + rejected + pending; and every rejection counted since the
 * rig was (re)opened emitted once as a rejected record. Call after a
 * commit. */
void cf_rig_check(cf_rig *r);

/* A restart after the last commit: commits, checks, closes the state
 * directory and opens it again with the same partitions (the tasks'
 * counters restart from what the state holds). */
void cf_rig_restart(cf_rig *r);

/* Frees r and removes its state directory. NULL is a no-op. */
void cf_rig_free(cf_rig *r);

/* Commits, checks (cf_rig_check) and frees. */
void cf_rig_done(cf_rig *r);

/* cmocka teardown of every rig test: frees the rigs a failed test left. */
int cf_rig_cleanup(void **state);

/* The rating task of partition p (billing task q is cf_rig_task(r,
 * r->parts + q)). */
cf_task *cf_rig_task(cf_rig *r, int32_t p);

/* Encodes rec as record type rt and applies it to table k under key. */
void cf_rig_table(cf_rig *r, cf_table_kind k, cf_rtype rt, const char *key,
                  const void *rec);

/* Feeds value (vlen bytes) on input of partition part at Kafka timestamp
 * ts, keyed by key, at the next offset of that input and partition;
 * returns that offset. Remembers the record for cf_rig_tick. */
int64_t cf_rig_feed_raw(cf_rig *r, int32_t part, int32_t input, int64_t ts,
                        const char *key, const void *value, size_t vlen);

/* cf_rig_feed_raw of rec encoded as record type rt. */
int64_t cf_rig_feed(cf_rig *r, int32_t part, int32_t input, int64_t ts,
                    const char *key, cf_rtype rt, const void *rec);

/* Moves the stream time of the last record's rating task to ts by feeding
 * that record again at Kafka timestamp ts and, when it decodes, with its
 * own time set to ts (timestamp.source=event): a repeat, which dedup drops
 * and counts as a duplicate of its input, emitted nowhere. ts must be past
 * the task's stream time. */
void cf_rig_tick(cf_rig *r, int64_t ts);

/* The charge record of session sid: asserts there is exactly one. */
const cf_charge_record *cf_rig_charge_of(cf_rig *r, const char *sid);

/* A tariff of one element in NOK, without limits or validity bounds. */
cf_tariff cf_rig_tariff(const char *id, cf_tariff_element *el);

#endif
