/*
 * task.h: a task, the unit of state, ordering and recovery: one
 * sub-topology on one input partition (runtime-internal; stages see the
 * opaque cf_task of stage.h).
 *
 * A task owns its stage chain and contexts, its stores, its input queues
 * (messages fetched but not yet processed), its counters and its outputs:
 * outputs emitted since the last commit wait in `pending`; a commit writes
 * them to the outbox column family in the same batch as the stores and the
 * input offsets, then they are produced and move to `inflight` until their
 * delivery report, after which the next commit deletes them from the outbox.
 *
 * Threading: a task runs on the runtime's thread only.
 */
#ifndef CF_TASK_H
#define CF_TASK_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "stage.h"
#include "state.h"
#include "tables.h"

#define CF_TASK_MAX_STORES 8

/* Output topics. */
typedef enum cf_output {
        CF_OUT_CHARGE,
        CF_OUT_REJECTED,
        CF_OUT_REPARTITION,
        CF_OUT_STATEMENT,
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
} cf_out;

/* A FIFO of fetched messages of one input partition. */
typedef struct cf_inq {
        rd_kafka_message_t **v;
        size_t head, n, cap;
        bool at_end;         /* fetched up to the partition's end */
        int64_t idle_since;  /* wall ms it was found empty and caught up */
        int64_t next_offset; /* next offset to process (committed) */
        bool paused;
} cf_inq;

/* Conservation counters of one input. */
typedef struct cf_counts {
        int64_t in, accepted, dup, rejected, pending;
} cf_counts;

typedef struct cf_stat {
        const char *stage;
        const char *name;
        int64_t value;
} cf_stat;

struct cf_runtime;

struct cf_task {
        struct cf_runtime *rt;
        char sub;   /* 'A' or 'B' */
        int32_t id; /* input partition */
        uint16_t state_id;
        char name[16]; /* "A-3" */
        const cf_stage *const *chain;
        size_t n_stages;
        void **ctx;
        cf_store *stores[CF_TASK_MAX_STORES];
        size_t n_stores;
        int64_t stream_time;
        cf_arena scratch;
        cf_inq in[CF_IN__CNT];
        cf_counts cnt[CF_IN__CNT];
        int64_t reasons[CF_REJECT__CNT];
        int64_t out_skipped; /* outputs that could never be delivered */
        cf_stat *stats;
        size_t n_stats;
        /* Outputs. */
        int64_t next_seq;
        cf_out **pending;
        size_t n_pending, cap_pending;
        int64_t *delivered; /* seqs delivered, to delete from the outbox */
        size_t n_delivered, cap_delivered;
        size_t inflight;
        int64_t wm_sent; /* last watermark sent to billing */
        /* This task's part of state.cache.max.bytes (cf_task_cache_budget):
         * the process's total, 3/4 for rating tasks and 1/4 for billing
         * tasks, each divided by the number of tasks of its kind the
         * process may run (all partitions: any may be assigned to it). */
        size_t cache_budget;
        bool ended; /* drained: its input is over (watermark: end) */
};

typedef struct cf_task cf_task;

/* What the tasks of a process share (owned by runtime.c). */
typedef struct cf_runtime {
        const cf_config *cfg;
        cf_registry *reg;
        cf_state *st;
        cf_tables *tables;
        /* The stage chains of the rating ('A') and billing tasks, set by
         * cf_runtime_init (runtime/chains.c): tasks run the stages through
         * these tables and link none of them. */
        const cf_stage *const *chain_rate;
        size_t n_chain_rate;
        const cf_stage *const *chain_bill;
        size_t n_chain_bill;
        rd_kafka_t *producer;
        rd_kafka_t *consumer;
        const char *in_topic[CF_IN__CNT];
        const char *out_topic[CF_OUT__CNT];
        int32_t out_partitions[CF_OUT__CNT];
        /* Largest record (cf_out_wire_size) each output topic takes: the
         * smaller of the producer's message.max.bytes and the topic's
         * max.message.bytes (when the broker tells it); 0: no check. */
        size_t max_out_bytes[CF_OUT__CNT];
        int32_t in_partitions;
        bool exactly_once;
        /* Rating task p at [p], billing task q at [in_partitions + q]; NULL
         * where not assigned to this process. */
        cf_task **tasks;
        int32_t n_tasks;
        volatile int fatal; /* a delivery failed for good */
        char fatal_msg[1024];
        int64_t produced, delivered;
        int64_t out_skipped; /* outputs skipped since start (all tasks) */
} cf_runtime;

/* Creates task `sub`-`id` with its chain, restores its offsets, sequence
 * number and stores from st, and queues the outbox entries that were
 * committed but not delivered. */
cf_err_t cf_task_new(struct cf_runtime *rt, char sub, int32_t id, cf_task **tp,
                     char *errstr, size_t errstr_size);
void cf_task_destroy(cf_task *t);

/* Runs one input message through the chain (the runtime frees it). */
void cf_task_process(cf_task *t, int32_t input, const rd_kafka_message_t *m);

/* The same for a record given as a cf_src (no Kafka: tests, the in-process
 * stage-chain benchmark). */
void cf_task_process_src(cf_task *t, const cf_src *src);

/* End of input (--until-idle): every stage's drain(); a rating task then
 * sends CF_WATERMARK_END. */
void cf_task_drain(cf_task *t);

/* Runs every stage's advance() at the current stream time (each commit). */
void cf_task_tick(cf_task *t);

/* Adds the task's commit to b: stores, offsets, outbox. */
cf_err_t cf_task_commit(cf_task *t, cf_batch *b, char *errstr,
                        size_t errstr_size);

/* The watermark a drained rating task sends: its input is over. */
#define CF_WATERMARK_END (INT64_MAX / 4)

/* Task's event-time watermark for billing. */
int64_t cf_task_watermark(const cf_task *t);

/* Emits a watermark event to every repartition partition if it moved. */
void cf_task_emit_watermark(cf_task *t);

/* Bytes an output record with klen and vlen bytes of key and value takes
 * at most on the wire (the size compared with max_out_bytes). */
size_t cf_out_wire_size(const cf_task *t, size_t klen, size_t vlen);

/* Counts and logs (ERROR) an output of t that can never be delivered
 * (why), instead of producing it: it is skipped, and removing it from the
 * outbox is the caller's business. Runtime thread. */
void cf_task_skip_output(cf_task *t, int32_t topic, int32_t partition,
                         int64_t seq, size_t bytes, const char *why);

/* Encodes/decodes an outbox entry. */
void cf_out_encode(const cf_out *o, cf_buf *b);
cf_out *cf_out_decode(const uint8_t *p, size_t len);
void cf_out_free(cf_out *o);

#endif
