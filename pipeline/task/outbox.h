/*
 * outbox.h: where outputs leave. A task's outputs from the moment a stage
 * emits them until Kafka has them: the write side of exactly-once.
 *
 *   emit     an output gets the task's next sequence number and waits in
 *            the outbox as pending (one that could never be delivered, too
 *            large for its topic, is counted and logged instead);
 *   commit   the pending entries go into the commit's RocksDB batch (column
 *            family OUTBOX, key task + seq), with the stores and the input
 *            offsets, and the delivered ones are deleted from it by one
 *            range delete, up to the first seq not delivered yet (a
 *            delivered entry above it waits for a later commit);
 *   produce  once that batch is synced, the pending entries are produced
 *            (idempotent producer, headers cf.task and cf.seq) and are in
 *            flight until their delivery report marks them delivered: the
 *            task log entries at once, the outputs once no task log entry
 *            is in flight any more (the main loop sees to it while the
 *            tasks go on, the next commit at the latest); with fencing
 *            (fence.h), all of a task's entries in one transaction;
 *   recover  a task that starts with entries in its outbox finds, in the
 *            tail of each of its own output partitions, the highest cf.seq
 *            it wrote there: entries up to it were delivered before the
 *            restart and are dropped; the rest are produced.
 *
 * In at-least-once mode (exactly_once false) entries are produced after
 * the commit in the same way but never written to the state.
 *
 * The runtime produces to Kafka (cf_outbox_produce, cf_outbox_on_delivery,
 * cf_outbox_recover); the in-process runner hands entries to a callback
 * instead (cf_outbox_hand_over). Runtime thread only, except that
 * cf_outbox_on_delivery runs in the producer's delivery callback, which
 * librdkafka calls from rd_kafka_poll/flush on that same thread.
 */
#ifndef CF_OUTBOX_H
#define CF_OUTBOX_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "mem.h"
#include "state.h"

struct cf_task;
struct cf_runtime;

/* Output topics. */
typedef enum cf_output {
        CF_OUT_CHARGE,
        CF_OUT_REJECTED,
        CF_OUT_REPARTITION,
        CF_OUT_STATEMENT,
        CF_OUT_RATING_LOG,  /* the task log of rating tasks (tasklog.h) */
        CF_OUT_BILLING_LOG, /* ... of billing tasks */
        CF_OUT__CNT
} cf_output;

/* One output record (an outbox entry). */
typedef struct cf_out {
        struct cf_task *task;
        int32_t topic; /* cf_output */
        int32_t partition;
        int64_t seq;
        int64_t ts;
        uint8_t *key;
        uint32_t klen;
        uint8_t *value;
        uint32_t vlen;
        bool null_key; /* key is null (klen 0) */
        /* Task log records of a whole-state commit: its first (its offset
         * is where the log may start) and its last (once delivered, the
         * records before the first are deleted). Not in the state. */
        uint8_t log_mark;
        /* With fencing (fence.h): its delivery report, kept until its
         * transaction ends. */
        int64_t offset;
        rd_kafka_resp_err_t err;
} cf_out;

enum { CF_OUT_LOG_FIRST = 1, CF_OUT_LOG_LAST = 2 };

/* A task's outbox. */
typedef struct cf_outbox {
        int64_t next_seq; /* sequence number of the next output */
        cf_out **pending; /* emitted or recovered, not produced yet */
        size_t n_pending, cap_pending;
        /* Seqs delivered and still in the state: a commit deletes them
         * once every seq below them is delivered too (del_lo). */
        int64_t *delivered;
        size_t n_delivered, cap_delivered;
        /* Every seq below it is deleted from the state (or never was in
         * it): a commit deletes [del_lo, the first seq not delivered) as
         * one range, so that an output costs one write, not two. */
        int64_t del_lo;
        size_t inflight; /* produced, delivery report not yet seen */
        /* The first n_committed pending entries were committed (written
         * to the state); the rest were emitted since the last commit. */
        size_t n_committed;
        /* With fencing: the delivery reports of the open transaction's
         * records, in the order they came. */
        cf_out **txn;
        size_t n_txn, cap_txn;
        bool in_txn;     /* a transaction is open: between begin and its end */
        int64_t skipped; /* outputs that could never be delivered */
} cf_outbox;

/* Queues an output of t (key NULL: a null key) with the next sequence
 * number and the task's stream time as its timestamp. Over the size limit
 * of its topic (cf_runtime.max_out_bytes) it could never be delivered: it
 * is counted and logged (cf_outbox_skip) and never enters the outbox, so
 * that it cannot stall the partition. */
void cf_outbox_emit(struct cf_task *t, int32_t topic, int32_t partition,
                    const void *key, size_t klen, const void *value,
                    size_t vlen);

/* Counts and logs (ERROR) an output of t that can never be delivered
 * (why), instead of producing it. It leaves the outbox only if the caller
 * marks it delivered. */
void cf_outbox_skip(struct cf_task *t, int32_t topic, int32_t partition,
                    int64_t seq, size_t bytes, const char *why);

/* Marks output seq of t delivered: deleted from the state at the next
 * commit at which every seq below it is delivered as well. */
void cf_outbox_delivered(struct cf_task *t, int64_t seq);

/* Queues the entries of t's outbox found in the state (committed, not
 * known to be delivered) as pending, in sequence order. */
cf_err_t cf_outbox_load(struct cf_task *t, char *errstr, size_t errstr_size);

/* Adds t's pending entries to b and deletes its delivered ones below the
 * first seq not delivered, as one range delete (exactly once only;
 * at-least-once forgets the delivered list). */
void cf_outbox_commit(struct cf_task *t, cf_batch *b);

/* Adds t's pending entries from index first on to b (exactly once only):
 * for entries queued after cf_outbox_commit in the same commit. */
void cf_outbox_commit_from(struct cf_task *t, cf_batch *b, size_t first);

/* True for the task log's outputs. */
static inline bool cf_outbox_is_log(int32_t topic)
{
        return topic == CF_OUT_RATING_LOG || topic == CF_OUT_BILLING_LOG;
}

/* Frees what t's outbox holds. */
void cf_outbox_free(struct cf_task *t);

/* Produces t's pending entries with the runtime's producer, after the
 * commit that wrote them is synced, task log entries first. A librdkafka
 * error other than a full queue sets rt->fatal. */
void cf_outbox_produce(struct cf_task *t);

/* Whether rt may write for its tasks now (task log, outputs, task log
 * trims), and a sign of life of the main thread. Not once the consumer's
 * assignment is lost (its session timed out, or max.poll.interval.ms
 * passed): the tasks may be another process's already, which restores
 * from the task log and the output tails and would repeat or contradict
 * what this one writes. Not either, for rt->hold_ms, after the main
 * thread stood still for over rt->standstill_ms (the process was frozen,
 * say): the group may have moved its tasks meanwhile, and the consumer
 * needs a moment to find out; a revoke (lost) then ends the wait. */
bool cf_outbox_may_write(struct cf_runtime *rt);

/* The same for every task of rt, in two phases: the task log entries,
 * waiting for their delivery (until *stop, or at most max_wait_ms; -1: no
 * limit), then the other outputs, so that an output is in Kafka only if
 * the task log holds its whole commit. CF_ERR_KAFKA when rt->fatal or
 * stopped before the second phase (the outputs stay in the outbox for the
 * next start). While cf_outbox_may_write says no, it produces nothing
 * (CF_OK: the entries stay pending, for a later commit or the next
 * owner). */
cf_err_t cf_outbox_produce_all(struct cf_runtime *rt,
                               volatile sig_atomic_t *stop, int max_wait_ms);

/* With max_wait_ms 0, cf_outbox_produce_all produces the task log
 * entries and leaves the outputs to this: called from the main loop, it
 * produces the committed outputs of every task once no task log entry is
 * in flight (so once the task log holds their whole commits), while the
 * tasks go on processing. The next cf_outbox_produce_all first waits for
 * what this has not produced yet. */
cf_err_t cf_outbox_produce_ready(struct cf_runtime *rt);

/* The producer's delivery report of m, whose opaque is the cf_out: marks
 * it delivered (or, when it can never be delivered, skipped) or sets
 * rt->fatal. Returns the output's timestamp when a public output was
 * delivered (for the latency metric), else -1. */
int64_t cf_outbox_on_delivery(struct cf_runtime *rt,
                              const rd_kafka_message_t *m);

/* The restart recovery of every task of rt (above): reads the tails of the
 * tasks' own public output partitions, drops what is there already and
 * produces the rest. Retriable broker errors are retried for about 30 s
 * (or until *stop); then, with nothing produced (producing without the
 * tails could repeat delivered records) and the entries no longer pending
 * in this process (they stay in the state), errstr says why. The repartition
 * topic needs none of this: billing drops repeats by sequence number. */
cf_err_t cf_outbox_recover(struct cf_runtime *rt, volatile sig_atomic_t *stop,
                           char *errstr, size_t errstr_size);

/* Without Kafka: hands t's first n pending entries to deliver (which must
 * not keep them) and marks them delivered. */
void cf_outbox_hand_over(struct cf_task *t, size_t n,
                         void (*deliver)(void *opaque, const cf_out *o),
                         void *opaque);

/* Bytes an output record with klen and vlen bytes of key and value takes
 * at most on the wire (the size compared with max_out_bytes). */
size_t cf_out_wire_size(const struct cf_task *t, size_t klen, size_t vlen);

/* Encodes/decodes an outbox entry. */
void cf_out_encode(const cf_out *o, cf_buf *b);
cf_out *cf_out_decode(const uint8_t *p, size_t len);
void cf_out_free(cf_out *o);

#endif
