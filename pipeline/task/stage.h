/*
 * stage.h: the stage interface between the tasks (pipeline/task/) and the
 * processing stages (stages/).
 *
 * A stage is one file in stages/ exporting one immutable ops table,
 * `const cf_stage cf_stage_<name>`. Per-task state is a context the stage
 * creates in init() and the runtime hands back on every call. Stages see
 * decoded records, the task's services (stream time, tables, stores, emit)
 * and nothing of librdkafka or RocksDB.
 *
 * Flow inside a task: the runtime hands each input record, in merge order
 * (timestamp.source), to the first stage as an item; each stage returns
 * what it did with it. A stage that turns an item into something new
 * (sessionize turning readings into a closed session) passes the new item
 * on with cf_task_forward(). When a record moves the task's stream time
 * forward (with timestamp.source=event once it is decoded, else before the
 * first stage), each stage's advance() runs before the record goes on, so
 * that time-driven work (session timeouts, bounded waits, pricing after
 * the allowed lateness) happens at the same point of the input on every
 * run, whatever the fetch timing.
 * Billing tasks also run it at each commit (cf_task_tick): their time
 * also moves with the sources' idleness, which no record marks.
 *
 * Accounting: every input record ends in exactly one of accepted,
 * duplicates, rejected; a record a stage holds (waiting for its session or
 * its site) counts as pending until the stage resolves it with
 * cf_task_resolve(). Per input topic, in = accepted + duplicates + rejected
 * + pending at every commit.
 *
 * Threading: a task and its stages run on one thread at a time.
 */
#ifndef CF_STAGE_H
#define CF_STAGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "err.h"
#include "mem.h"
#include "records.h"
#include "store.h"

typedef struct cf_task cf_task;
typedef struct cf_tables cf_tables;

/* Input topics of the tasks. */
typedef enum cf_input {
        CF_IN_SESSIONS,
        CF_IN_METER,
        CF_IN_REPARTITION,
        CF_IN__CNT
} cf_input;

/* Where an input record came from, with its bytes: enough to reject it
 * later. The runtime owns it for the duration of process(); a stage that
 * holds the record copies it (cf_src_dup). */
typedef struct cf_src {
        int32_t input; /* cf_input */
        int32_t partition;
        int64_t offset;
        int64_t ts; /* Kafka message timestamp (publish time), -1: none */
        const uint8_t *key;
        uint32_t key_len;
        const uint8_t *value;
        uint32_t value_len;
} cf_src;

typedef enum cf_item_kind {
        CF_ITEM_RAW,     /* undecoded input: rec is NULL */
        CF_ITEM_EVENT,   /* rec: cf_session_event */
        CF_ITEM_READING, /* rec: cf_meter_reading */
        CF_ITEM_SESSION, /* rec: a closed session (stages/session.h) */
        CF_ITEM_BILLING, /* rec: cf_billing_event */
} cf_item_kind;

typedef struct cf_item {
        int32_t kind;       /* cf_item_kind */
        const cf_src *src;  /* the input record; NULL for derived items */
        void *rec;          /* decoded record, per kind */
        int64_t event_time; /* the record's own time (time_ms), or CF_NONE */
        /* dedup could not tell whether it is a repeat (a sequence number
         * beyond its window): later stages keep it only as new data. */
        bool maybe_repeat;
} cf_item;

/* What a stage did with an item. */
typedef enum cf_stage_rc {
        CF_STAGE_PASS,     /* hand the item on to the next stage */
        CF_STAGE_ACCEPTED, /* taken into state (or forwarded as new items) */
        CF_STAGE_HELD,     /* kept to decide later: pending until resolved */
        CF_STAGE_DUP,      /* a repeat: counted, emitted nowhere */
        CF_STAGE_REJECTED, /* cf_task_reject() was called for it */
} cf_stage_rc;

/* The watermark a drained rating task sends: its input is over. */
#define CF_WATERMARK_END (INT64_MAX / 4)

typedef struct cf_stage {
        const char *name;
        /* Creates the per-task context in *ctxp. */
        cf_err_t (*init)(cf_task *t, void **ctxp, char *errstr,
                         size_t errstr_size);
        /* Handles one item. */
        cf_stage_rc (*process)(cf_task *t, void *ctx, cf_item *it);
        /* The task's stream time moved to stream_time (ms); in billing
         * tasks also called at every commit (with the same time), for the
         * work that the sources' idleness drives. Optional. */
        void (*advance)(cf_task *t, void *ctx, int64_t stream_time);
        /* The input is exhausted for now (--until-idle): finish what can be
         * finished without more input. Optional. */
        void (*drain)(cf_task *t, void *ctx);
        /* After drain (--until-idle): whether the stage has everything it
         * waits for, or needs input that other processes still send (a
         * billing task waits for the end of input from every rating task).
         * Optional: NULL means finished. */
        bool (*finished)(cf_task *t, void *ctx);
        /* Frees the context; NULL is a no-op. */
        void (*destroy)(void *ctx);
} cf_stage;

/* ---- task services for stages ------------------------------------------ */

/* Task id (the input partition) and its sub-topology ('A' rate, 'B' bill). */
int32_t cf_task_id(const cf_task *t);

/* The task's stream time (ms), CF_NONE before the first record that has
 * one: the highest record time it has processed, by timestamp.source
 * (rating tasks: each record's own time capped at its Kafka timestamp, or
 * its Kafka timestamp; billing tasks: the Kafka timestamp, which rating
 * sets to its stream time). */
int64_t cf_task_stream_time(const cf_task *t);

/* Wall-clock milliseconds (monotonic), for what is inherently about
 * wall-clock time: whether a source has gone idle. Never for deciding what
 * a record means. */
int64_t cf_task_wall_ms(const cf_task *t);

/* Number of rating tasks (input partitions): the sources of billing. */
int32_t cf_task_sources(const cf_task *t);

/* The pipeline's configuration and schema registry. */
const struct cf_config *cf_task_config(const cf_task *t);
const cf_registry *cf_task_registry(const cf_task *t);

/* Scratch memory freed after the current record (and its advance). */
cf_arena *cf_task_scratch(cf_task *t);

/* A write-back store of this task over column family col, created for the
 * calling stage (at init). The runtime owns it: it flushes it in every
 * commit's batch and destroys it with the task. budget_bytes bounds its
 * clean entries in memory. */
cf_store *cf_task_store(cf_task *t, cf_col_t col, const cf_store_ops *ops,
                        void *opaque, size_t budget_bytes, bool load_on_miss);

/* Moves what an earlier version of the stage stored in column family
 * `from` (whole objects, decoded with from_ops) into store st (which keeps
 * the same objects, e.g. in parts): each object is put into st, its old key
 * deleted, both in the task's next commit; moved (may be NULL) is called
 * with each new object. For a stage's init, after its other loading.
 * CF_OK, or the read error with errstr. */
cf_err_t cf_task_store_move(cf_task *t, cf_store *st, cf_col_t from,
                            const cf_store_ops *from_ops,
                            cf_store_foreach_cb *moved, void *opaque,
                            char *errstr, size_t errstr_size);

/* The memory budget of this task's write-back stores (its share of
 * state.cache.max.bytes, which bounds all of the process's tasks together).
 * Each stage gives its stores a fixed share of it; the shares of the stages
 * of one chain sum to 1: rating dedup 1/4, validate 1/8, sessionize 5/8
 * (sessions 1/2, chargers 1/8); billing dedup 1/4, bill 3/4 (ledgers 5/8,
 * sources 1/8). */
size_t cf_task_cache_budget(const cf_task *t);

/* The sites and users tables. */
const cf_tables *cf_task_tables(const cf_task *t);

/* Runs the stages after `from` (the calling stage) on a new item. Returns
 * what the last stage that handled it returned. */
cf_stage_rc cf_task_forward(cf_task *t, const cf_stage *from, cf_item *it);

/* Sends src to billing.rejected with reason (cf_reject_reason), the stage's
 * name and a printf-style detail; counts it as rejected. */
void cf_task_reject(cf_task *t, const cf_stage *stage, const cf_src *src,
                    int32_t reason, int64_t event_time, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Ends a held record's pending state with what the stages did with it:
 * CF_STAGE_DUP a repeat, CF_STAGE_REJECTED rejected (pass it only after
 * cf_task_reject()), anything else accepted. */
void cf_task_resolve(cf_task *t, const cf_src *src, cf_stage_rc rc);

/* Emits a priced charge record: to billing.charge-records (this task's
 * partition) and, keyed by billed party, to the repartition topic, carrying
 * the task's watermark as of stream time due_ts (when its session became
 * due; the current stream time if later or CF_NONE). */
void cf_task_emit_charge(cf_task *t, const cf_charge_record *cr,
                         int64_t due_ts);

/* Emits a statement to billing.statements (this task's partition). */
void cf_task_emit_statement(cf_task *t, const cf_statement *st);

/* Outputs the task emitted since its last commit: what its next commit
 * will hold (a stage that can choose when to emit bounds it with this). */
size_t cf_task_outputs_uncommitted(const cf_task *t);

/* Counts a stage-specific event (e.g. "sessions_closed") for the stats. */
void cf_task_count(cf_task *t, const cf_stage *stage, const char *counter,
                   int64_t delta);

/* A copy of src with its key and value bytes in the same allocation:
 * release it with free(). */
cf_src *cf_src_dup(const cf_src *src);

/* Encodes src into b / decodes one from r (a cf_src_dup'ed copy, or NULL
 * on a corrupt value): for stages that keep held records in their state. */
struct cf_wrd;
void cf_src_encode(const cf_src *src, cf_buf *b);
cf_src *cf_src_decode(struct cf_wrd *r);

#endif
