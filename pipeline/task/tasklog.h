/*
 * tasklog.h: a task's state, recoverable from Kafka. Every commit of a task
 * is also written to the task's partition of its task log
 * (chargeflow.rating-log for rating task p, chargeflow.billing-log for
 * billing task q, partition p or q): the commit's RocksDB operations on the
 * task's keys (stores, input offsets, output sequence numbers, counters,
 * outbox), in the batch-log encoding of state.h, cut into records.
 *
 * A record's value: a version byte (1; 2 for a commit that starts from
 * nothing: the removal of all the task's keys, then all of them, then the
 * commit's own changes), then varints epoch, commit number, chunk index,
 * chunk count, then the chunk's bytes. A commit counts only
 * when every chunk of it is there, in order; the log entries of a commit
 * go through the task's outbox (so a restart finishes a commit whose log
 * was cut by a crash) and are delivered before any other output of that
 * commit is produced (cf_outbox_produce_all), so an output is in Kafka only
 * if the whole commit that made it is.
 *
 * A process that is assigned a task compares the commit its state
 * directory holds (META 'l': epoch, number) with the last whole commit of
 * the log. The same, or its own next one still in its outbox: it goes on
 * from its state directory. Anything else (no state, older state, another
 * writer's commits): it drops the task's keys and replays the log's whole
 * commits, then writes with a new epoch (one above any in the log).
 * Except when META 'r' says the directory's copy is the log applied up to
 * a known offset, with nothing written here since (a standby copy; a
 * restore or catch-up the process then wrote nothing after; the task let
 * go with all its commits delivered, cf_tasklog_leave): then only the
 * commits after that offset are applied (the same rules as a replay),
 * and it writes with a new epoch (the same one when nothing follows its
 * own last commit); a replay when that fails.
 */
#ifndef CF_TASKLOG_H
#define CF_TASKLOG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "mem.h"
#include "state.h"

struct cf_task;
struct cf_runtime;
struct cf_out;

/* Bytes of operations per log record at most (under Kafka's default
 * 1,000,000-byte message limit with room for the record's framing). */
#define CF_TASKLOG_CHUNK 900000

/* The epoch and number of a commit. */
typedef struct cf_tasklog_pos {
        int64_t epoch;
        int64_t n; /* 0: no commit */
} cf_tasklog_pos;

/* Called by cf_task_commit around the task's part of the commit batch b:
 * begin starts capturing b's operations; end adds the task's META 'l' and
 * 'q' (the output sequence number, counting the log entries) to b and, when
 * the captured operations differ from the last commit's, queues the log
 * entries in the outbox. Without a task log (at least once, or the
 * in-process runner) begin and end only write 'q'. */
void cf_tasklog_begin(struct cf_task *t, cf_batch *b);
void cf_tasklog_end(struct cf_task *t, cf_batch *b);

/* A task log record o of t was delivered at offset: notes where its
 * commit ends when it is the commit's last record; after the last record
 * of a whole-state commit, the records before its first are deleted
 * (DeleteRecords, answered on rt->trim_q). Delivery callback. */
void cf_tasklog_delivered(struct cf_task *t, const struct cf_out *o,
                          int64_t offset);

/* When t is let go with every commit it wrote in its log (a rebalance, a
 * stop): records with META 'r' that the directory's copy is the log up to
 * its last commit's last record, so that the task, assigned here again,
 * or kept here as a standby copy, goes on from there (reading only what
 * others wrote after it) instead of from the log's start. */
cf_err_t cf_tasklog_leave(struct cf_task *t, char *errstr, size_t errstr_size);

/* Takes the answers to those deletions; logs once (WARN) when a broker
 * refuses one, and asks no more. With wait_ms > 0 (at the end) waits up
 * to that long for the outstanding answers. Runtime thread. */
void cf_tasklog_poll_trims(struct cf_runtime *rt, int wait_ms);

/* Reads the task's META 'l' into t (at task creation). */
cf_err_t cf_tasklog_load(struct cf_task *t, char *errstr, size_t errstr_size);

/* Before task sub-id is created on rt: makes the state directory hold the
 * task's last whole commit (above). *restored says whether the log was
 * replayed; *full that the log is empty while the directory holds the
 * task's state (written without a log): the task's next commit must write
 * all of it (cf_task.log_full); *done_n the number of the last commit
 * that the log holds whole among those the state has (-1: not known): the
 * outbox's log entries of commits up to it were delivered
 * (cf_task.log_done_n). CF_ERR_KAFKA (the log could not be read, or
 * *stop) or CF_ERR_STATE with errstr. */
cf_err_t cf_tasklog_sync(struct cf_runtime *rt, char sub, int32_t id,
                         volatile sig_atomic_t *stop, bool *restored,
                         bool *full, int64_t *done_n, char *errstr,
                         size_t errstr_size);

/* Parses a log record's header: the position, chunk i of k, and the
 * operations' bytes. False when it is not a log record. */
bool cf_tasklog_parse(const uint8_t *p, size_t n, cf_tasklog_pos *pos,
                      bool *full, int64_t *i, int64_t *k, const uint8_t **ops,
                      size_t *ops_len);

/* Standby copies (num.standby.replicas): for tasks the process does not
 * own, a copy of the task's state kept in the state directory by applying
 * the task log's commits as they come (a consumer of its own, no stage
 * run, no output written), each with META 'r' (where in the log the copy
 * stands, and that it was applied, not written). cf_tasklog_sync then
 * applies only the rest of the log when the task is assigned, and goes on
 * with a new epoch. */
typedef struct cf_standby cf_standby;

cf_err_t cf_standby_new(struct cf_runtime *rt, cf_standby **sbp, char *errstr,
                        size_t errstr_size);
void cf_standby_destroy(cf_standby *sb);

/* Keeps copies of the tasks with want[idx] (indexed as rt->tasks) that
 * the process does not hold, and of no other: a copy started where the
 * directory's copy stands (META 'r'), else from the log's start with the
 * task's keys dropped. A copy that stops is kept on disk as it is. */
cf_err_t cf_standby_set(cf_standby *sb, const bool *want, char *errstr,
                        size_t errstr_size);

/* Whether a copy of task idx is kept. */
bool cf_standby_has(const cf_standby *sb, int32_t idx);

/* The copies kept (copies), those of them that stopped applying after a
 * commit that could not be applied (failed), and how many offsets of
 * their logs the copies have not read yet (lag; from the high watermarks
 * librdkafka last saw: no request to the broker). sb may be NULL. */
void cf_standby_stats(const cf_standby *sb, int *copies, int *failed,
                      int64_t *lag);

/* Applies the commits that came, for about budget_ms at most. Runtime
 * thread. */
void cf_standby_poll(cf_standby *sb, int64_t budget_ms);

#endif
