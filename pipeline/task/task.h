/*
 * task.h: a task, the unit of state, ordering and recovery: one
 * sub-topology on one input partition (runtime-internal; stages see the
 * opaque cf_task of stage.h).
 *
 * A task owns its stage chain and contexts, its stores, its input queues
 * (messages fetched but not yet processed), its counters and its outbox
 * (outbox.h: its outputs from emit to delivery). A commit writes its
 * stores, its input offsets, its counters and its outbox in one batch.
 *
 * Threading: a task runs on the runtime's thread only.
 */
#ifndef CF_TASK_H
#define CF_TASK_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "outbox.h"
#include "tasklog.h"
#include "stage.h"
#include "state.h"
#include "tables.h"

#define CF_TASK_MAX_STORES 8

/* A fetched input record, copied out of librdkafka's message, which is
 * then freed at once: librdkafka's queue stays short, and a record waiting
 * here costs its bytes and this header, not librdkafka's structures per
 * message and the whole fetch response it points into. */
typedef struct cf_inrec {
        int64_t offset, ts; /* ts: the Kafka timestamp */
        int32_t partition;
        uint32_t key_len, value_len;
        bool has_key, has_value; /* false: a null key or value */
        uint8_t data[];          /* the key, then the value */
} cf_inrec;

/* A copy of m's record (malloc'd: free() it). */
cf_inrec *cf_inrec_new(const rd_kafka_message_t *m);

/* The memory a record takes, header included. */
size_t cf_inrec_size(const cf_inrec *r);

/* A FIFO of fetched records of one input partition. */
typedef struct cf_inq {
        cf_inrec **v;
        size_t head, n, cap;
        size_t bytes;        /* cf_inrec_size of the records queued */
        bool at_end;         /* fetched up to the partition's end */
        int64_t idle_since;  /* wall ms it was found empty and caught up */
        int64_t next_offset; /* next offset to process (committed) */
        /* The head's cf_task_tie_time, once asked (the same whenever it is
         * asked). */
        bool head_time_ok;
        int64_t head_time;
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
        int64_t kafka_time; /* the latest Kafka timestamp read, CF_NONE */
        cf_arena scratch;
        cf_inq in[CF_IN__CNT];
        cf_counts cnt[CF_IN__CNT];
        int64_t reasons[CF_REJECT__CNT];
        cf_stat *stats;
        size_t n_stats;
        cf_outbox ob;    /* its outputs (outbox.h) */
        int64_t wm_sent; /* last watermark sent to billing */
        /* This task's part of state.cache.max.bytes (cf_task_cache_budget):
         * the process's total, 3/4 for rating tasks and 1/4 for billing
         * tasks, each divided by the number of tasks of its kind the
         * process may run (all partitions: any may be assigned to it). */
        size_t cache_budget;
        bool ended;   /* drained: its input is over (watermark: end) */
        bool drained; /* cf_task_drain ran in this process */
        /* The task log (tasklog.h): the last commit written to it, the
         * hash of its operations, this commit's operations, and whether
         * the next commit must write the whole state. */
        cf_tasklog_pos log_pos;
        uint64_t log_hash;
        cf_buf log_ops;
        bool log_full;
        /* Bytes written to the task log since its last whole state, that
         * state's size, and the offset of its first record until all of
         * it is delivered (-1: none). */
        int64_t log_since_full, log_full_bytes, log_trim_from;
        /* The last commit whose last record was delivered, and the offset
         * just after that record (0: none yet). */
        cf_tasklog_pos log_end_pos;
        int64_t log_end_offset;
        /* Set by the runtime from cf_tasklog_sync: the task log holds
         * every commit up to this number that the state's outbox has
         * entries of (-1: not known). */
        int64_t log_done_n;
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
        /* producer.fencing=transactions (fence.h): the configuration of
         * the tasks' transactional producers, and the producer of each
         * task held (indexed as tasks[]; NULL: none). */
        bool fencing;
        rd_kafka_conf_t *txn_conf;
        rd_kafka_t **txp;
        /* Told of each public output whose transaction committed (its
         * timestamp): the runtime's latency metric. */
        void (*on_delivered)(void *opaque, int64_t ts);
        void *on_delivered_opaque;
        const char *in_topic[CF_IN__CNT];
        const char *out_topic[CF_OUT__CNT];
        int32_t out_partitions[CF_OUT__CNT];
        /* Largest record (cf_out_wire_size) each output topic takes: the
         * smaller of the producer's message.max.bytes and the topic's
         * max.message.bytes (when the broker tells it); 0: no check. */
        size_t max_out_bytes[CF_OUT__CNT];
        int32_t in_partitions;
        bool exactly_once;
        /* timestamp.source=event: a rating task's stream time follows the
         * records' own times (capped at their Kafka timestamps), and so
         * does the merge of its inputs on a tie (cf_task_tie_time); false:
         * the Kafka timestamps. */
        bool ts_event;
        /* Commits go to the task log too (exactly once over Kafka). */
        bool task_log;
        int64_t log_inflight; /* task log entries produced, not delivered */
        /* Committed outputs wait for the task log entries in flight
         * (cf_outbox_produce_ready). */
        bool outputs_wait;
        /* Results of the task logs' DeleteRecords requests (tasklog.c),
         * created on first use. */
        rd_kafka_queue_t *trim_q;
        int trims_inflight; /* asked, not answered */
        bool trim_warned;   /* one refused: no more are asked */
        /* Rating task p at [p], billing task q at [in_partitions + q]; NULL
         * where not assigned to this process. */
        cf_task **tasks;
        int32_t n_tasks;
        /* Writes only while the group lets this process hold its tasks
         * (cf_outbox_may_write): the main thread's last sign of life (mono
         * ms), how long it may stand still before writes wait (0: no
         * check), how long they then wait, and until when. */
        int64_t alive_ms, standstill_ms, hold_ms, hold_until_ms;
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

/* The state id (key prefix, state.h) of task sub-id. */
uint16_t cf_task_state_id(char sub, int32_t id);

/* With timestamp.source=event, what breaks a tie of Kafka timestamps in
 * the merge of a rating task's two inputs (the smaller first): the
 * record's own time (time_ms, decoded here) capped at its Kafka
 * timestamp, a function of the record alone. CF_NONE (first) for a record
 * that does not decode, or whose time is further than max.clock.skew.ms
 * ahead of its Kafka timestamp (a wrong clock: it moves no time). */
int64_t cf_task_tie_time(cf_task *t, int32_t input, const cf_inrec *r);

/* The same for a record given as a cf_src (tests). */
int64_t cf_task_tie_time_src(cf_task *t, const cf_src *src);

/* Runs one input record through the chain (the runtime frees it). */
void cf_task_process(cf_task *t, int32_t input, const cf_inrec *r);

/* The same for a record given as a cf_src (no Kafka: tests, the in-process
 * stage-chain benchmark). */
void cf_task_process_src(cf_task *t, const cf_src *src);

/* End of input (--until-idle): every stage's drain(); a rating task then
 * sends CF_WATERMARK_END. */
void cf_task_drain(cf_task *t);

/* After cf_task_drain: whether every stage is finished (stage.h
 * finished()); a process with --until-idle exits only when each task it
 * holds is. */
bool cf_task_finished(cf_task *t);

/* Runs every stage's advance() at the current stream time; billing tasks
 * call it at each commit (cf_tasks_commit). */
void cf_task_tick(cf_task *t);

/* Adds the task's commit to b: stores, offsets, outbox. */
cf_err_t cf_task_commit(cf_task *t, cf_batch *b, char *errstr,
                        size_t errstr_size);

/* Adds the commit of every task of rt (and of the tables) to b: each
 * rating task first sends its watermark, each billing task advances its
 * stages (idle sources, due periods), then cf_task_commit. The runtime
 * and the in-process runner write b (synced), then hand the outputs on.
 * errstr names the task that failed. */
cf_err_t cf_tasks_commit(cf_runtime *rt, cf_batch *b, char *errstr,
                         size_t errstr_size);

/* Task's event-time watermark for billing. */
int64_t cf_task_watermark(const cf_task *t);

/* Emits a watermark event to every repartition partition if it moved. */
void cf_task_emit_watermark(cf_task *t);

#endif
