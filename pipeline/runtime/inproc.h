/*
 * inproc.h: the rating and billing tasks run in process, without Kafka.
 *
 * The same tasks, stages, state store and commits as `chargeflow run`, fed
 * records directly: the stage-chain benchmark feeds it the generator's file
 * output, and the stage tests feed it records they encode. Outputs go to a
 * sink callback at each commit (in the order a producer would send them),
 * as if delivered at once; what rating writes to the repartition topic is
 * then read by the billing task of its partition, as from the topic (so
 * billing's outputs of a commit come with the next commit).
 *
 * Threading: one thread.
 */
#ifndef CF_INPROC_H
#define CF_INPROC_H

#include "config.h"
#include "tables.h"
#include "task.h"

typedef struct cf_inproc cf_inproc;

/* An output record: topic is a cf_output, key and value are framed bytes,
 * valid during the call. */
typedef void cf_inproc_sink(void *opaque, const cf_out *o);

/* Opens cfg->state_dir and creates a rating and a billing task per
 * partition (restoring what the state holds). Every topic gets
 * `partitions` partitions. */
cf_err_t cf_inproc_new(const cf_config *cfg, int32_t partitions,
                       cf_inproc_sink *sink, void *opaque, cf_inproc **ipp,
                       char *errstr, size_t errstr_size);

/* Commits nothing; closes the state (as a crash after the last commit
 * would leave it). NULL is a no-op. */
void cf_inproc_destroy(cf_inproc *ip);

/* Applies a record of a table topic. */
bool cf_inproc_table(cf_inproc *ip, cf_table_kind k, const void *key,
                     size_t klen, const void *value, size_t vlen);

/* Feeds one input record (input: cf_input) to the task of its partition;
 * offsets must increase per input and partition. */
void cf_inproc_feed(cf_inproc *ip, const cf_src *src);

/* The input is over: every task drains. */
void cf_inproc_drain(cf_inproc *ip);

/* After cf_inproc_drain: whether every task is finished (cf_task_finished:
 * billing has every end and has emitted every statement due, which may
 * take several commits, billing.statements.per.commit). */
bool cf_inproc_finished(cf_inproc *ip);

/* Commits every task (one synced batch), then hands the outputs to the
 * sink. */
cf_err_t cf_inproc_commit(cf_inproc *ip, char *errstr, size_t errstr_size);

/* The rating task of a partition (for its counters), or NULL; billing
 * task q is cf_inproc_task(ip, partitions + q). */
cf_task *cf_inproc_task(cf_inproc *ip, int32_t partition);

/* RocksDB writes (puts and deletes) committed so far. */
uint64_t cf_inproc_writes(const cf_inproc *ip);

/* The state store the tasks commit to (for its write counters). */
cf_state *cf_inproc_state(cf_inproc *ip);

/* The registry the records must be encoded with. */
const cf_registry *cf_inproc_registry(const cf_inproc *ip);

#endif
