/*
 * runtime.c: the pipeline runtime (`chargeflow run`).
 *
 * One thread runs everything that decides outputs, so the same input gives
 * the same output whatever the fetch timing:
 *
 *  1. Open the state (RocksDB), load the tables from it, then read the
 *     table topics from the stored offsets to their current end.
 *  2. Join the consumer group on the input topics with the range assignor,
 *     so that partition p of both co-partitioned inputs goes to the same
 *     process; each assigned p is a rating task, resumed from the offsets
 *     in its state (the group's own offsets are not used).
 *  3. Loop: fetch messages into the tasks' queues; let every task merge its
 *     two queues by Kafka timestamp, waiting at most max.task.idle.ms for an
 *     empty queue that is not known to be at its end; keep the tables
 *     current; every commit.interval.ms commit.
 *  4. A commit writes one RocksDB batch for all tasks (stores, input
 *     offsets, outbox entries, sequence numbers), synced; only then are the
 *     outputs produced (idempotent producer, headers cf.task and cf.seq).
 *     Delivered outputs leave the outbox in the next commit.
 *  5. SIGINT/SIGTERM: finish the record in hand, commit, wait for
 *     deliveries, commit again, exit 0. --until-idle: once every input
 *     partition is read to its end, nothing is queued and no new record came
 *     for a while, every stage drains (the input is over: waits end, open
 *     sessions close, rating sends the end-of-input watermark); once billing
 *     has read that and is idle again, the same as a signal.
 *
 * Rating tasks (A) read partition p of both inputs; billing tasks (B) read
 * partition q of the repartition topic; both kinds share the loop.
 */
#include "runtime.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crash.h"
#include "fence.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "placement.h"
#include "registry_client.h"
#include "task.h"
#include "topics.h"

#define BATCH 1024 /* messages per fetch call */
#define ROUND 1024 /* records a task processes per turn at most */
/* ms from an assignment to the first commit (rebalance_cb) */
#define FIRST_COMMIT_MS 250

static volatile sig_atomic_t rt_stop;
/* A second signal: also stop waiting for the task log's deliveries (the
 * commit's outputs then wait in the outbox for the next start). */
static volatile sig_atomic_t rt_hard_stop;

static void on_signal(int sig)
{
        (void)sig;
        if (rt_stop)
                rt_hard_stop = 1;
        rt_stop = 1;
}

/* ---- queues -------------------------------------------------------------- */

static void q_push(cf_inq *q, cf_inrec *r)
{
        if (q->n == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 1024;
                cf_inrec **v = cf_malloc(cap * sizeof(*v));
                for (size_t i = 0; i < q->n; i++)
                        v[i] = q->v[(q->head + i) % q->cap];
                free(q->v);
                q->v = v;
                q->head = 0;
                q->cap = cap;
        }
        q->v[(q->head + q->n++) % q->cap] = r;
        q->bytes += cf_inrec_size(r);
        q->at_end = false;
        q->idle_since = -1;
}

static cf_inrec *q_peek(const cf_inq *q)
{
        return q->n ? q->v[q->head] : NULL;
}

static cf_inrec *q_pop(cf_inq *q)
{
        cf_inrec *r = q->v[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->bytes -= cf_inrec_size(r);
        q->head_time_ok = false;
        return r;
}

/* The bytes of the records waiting in the tasks' queues. */
static size_t queued_bytes(const cf_runtime *rt)
{
        size_t b = 0;
        for (int32_t p = 0; p < rt->n_tasks; p++)
                for (int i = 0; rt->tasks[p] && i < CF_IN__CNT; i++)
                        b += rt->tasks[p]->in[i].bytes;
        return b;
}

/* The tie time (cf_task_tie_time) of the head of t's queue of input. */
static int64_t head_time(cf_task *t, int input)
{
        cf_inq *q = &t->in[input];
        if (!q->head_time_ok) {
                q->head_time = cf_task_tie_time(t, input, q_peek(q));
                q->head_time_ok = true;
        }
        return q->head_time;
}

/* ---- the runtime ----------------------------------------------------------
 */

typedef struct rt_state {
        cf_runtime rt;
        rd_kafka_t *tables_rk;
        int32_t table_parts[2];
        /* The table partitions to assign, until tables_poll() has asked
         * for their ends (see there). */
        rd_kafka_topic_partition_list_t *tables_parts;
        int64_t last_commit, last_stats, last_msg;
        /* Wall ms, for the summary's timing: process start, start of
         * consuming, first and last record of rating's inputs routed to a
         * task and last one processed, last record of any input (billing's
         * included) routed. */
        int64_t t_start, t_running, t_first_input, t_last_input,
            t_last_processed, t_last_record;
        bool assigned;
        /* The state's writes when consuming began: the tables' load, not
         * the input's cost (the summary gives both). */
        cf_state_writes w_start;
        int64_t disk_start;
        int64_t commits;
        int64_t commit_ms_last, commit_ms_max;
        /* input.buffer.max.bytes: the most the tasks' queues held, and the
         * turns that took no input because they held that much. */
        size_t inbuf_peak;
        int64_t inbuf_full_turns;
        cf_batch *batch;
        bool state_failed;      /* a commit's write failed: commit no more */
        cf_metrics *metrics;    /* metrics.listen, or NULL */
        cf_registry_client *rc; /* schema.registry.url, or NULL */
        rd_kafka_queue_t *limits_q; /* the topics' size limits, asked */
        /* --until-idle (until_idle_done): some task still to drain; when
         * the wait for other processes' ends was last logged. */
        bool drain_pending;
        int64_t last_wait_log;
        /* num.standby.replicas: the copies, and the question to the group
         * that places them (when to ask next, 0: not now; asked, not
         * answered; tries since the last assignment). */
        cf_standby *sb;
        bool *sb_want;
        int64_t place_at;
        bool place_asked;
        int place_tries;
        pthread_t place_th;
        atomic_int place_done;
        rd_kafka_resp_err_t place_err;
        const struct rd_kafka_group_list *place_list;
} rt_state;

/* Takes the output topics' max.message.bytes once the broker answers
 * (cf_kafka_max_bytes_ask in open_clients); brokers that do not implement
 * DescribeConfigs never answer, and the producer's limit stays. */
static void topic_limits(rt_state *s)
{
        cf_runtime *rt = &s->rt;
        int64_t max[CF_OUT__CNT];
        if (!s->limits_q || !cf_kafka_max_bytes_answer(
                                s->limits_q, rt->out_topic, CF_OUT__CNT, max))
                return;
        rd_kafka_queue_destroy(s->limits_q);
        s->limits_q = NULL;
        for (int o = 0; o < CF_OUT__CNT; o++) {
                if (max[o] > 0 && (size_t)max[o] < rt->max_out_bytes[o])
                        rt->max_out_bytes[o] = (size_t)max[o];
                cf_log(CF_LOG_INFO, "%s: records up to %zu bytes",
                       rt->out_topic[o], rt->max_out_bytes[o]);
        }
}

/* True when the broker is known (from the last fetch) to hold records of
 * the task's input that are not queued yet, or when that is not known yet
 * (no fetch response so far). */
static bool has_lag(rt_state *s, const cf_task *t, int input)
{
        int64_t lo, hi;
        /* Before the partition's first fetch response its end is unknown:
         * that is not "caught up", records may be there. Wait. */
        if (t->in[input].at_end)
                return false;
        if (rd_kafka_get_watermark_offsets(
                s->rt.consumer, s->rt.in_topic[input], t->id, &lo, &hi) ||
            hi < 0 || lo < 0)
                return true;
        int64_t pos =
            t->in[input].next_offset >= 0 ? t->in[input].next_offset : lo;
        return hi > pos;
}

/* Processes what the merge rule allows of one task's queues, at most ROUND
 * records per turn (so that the loop takes input again soon; see
 * take_input), and returns how many: the record
 * with the smaller Kafka timestamp first; on a tie, with
 * timestamp.source=event the one with the smaller own time (both heads
 * decoded once more, cf_task_tie_time: a backlog published within one
 * millisecond then goes in its own order, not all its session events
 * before all its readings), then (and with kafka) sessions. When one queue is
 * empty: if the broker holds records of it not yet fetched, wait for them
 * (they may come first); if it is caught up, wait for new ones at most
 * max.task.idle.ms from when it went idle (as Kafka Streams does). So the
 * order does not depend on fetch timing, within that bound for live
 * input. */
static size_t run_task(rt_state *s, cf_task *t, int64_t now)
{
        if (t->sub == 'B') {
                /* One input: in order. */
                cf_inq *q = &t->in[CF_IN_REPARTITION];
                size_t done = 0;
                for (; q->n && done < ROUND; done++) {
                        cf_inrec *r = q_pop(q);
                        cf_task_process(t, CF_IN_REPARTITION, r);
                        free(r);
                }
                return done;
        }
        cf_inq *qs = &t->in[CF_IN_SESSIONS], *qm = &t->in[CF_IN_METER];
        int64_t idle = s->rt.cfg->max_task_idle_ms;
        size_t done = 0;
        while (done < ROUND) {
                cf_inrec *ms = q_peek(qs), *mm = q_peek(qm);
                int input;
                if (ms && mm) {
                        int64_t tm = mm->ts, ts = ms->ts;
                        if (tm == ts && s->rt.ts_event)
                                input = head_time(t, CF_IN_METER) <
                                                head_time(t, CF_IN_SESSIONS)
                                            ? CF_IN_METER
                                            : CF_IN_SESSIONS;
                        else
                                input = tm < ts ? CF_IN_METER : CF_IN_SESSIONS;
                } else if (ms || mm) {
                        int ei = ms ? CF_IN_METER : CF_IN_SESSIONS;
                        cf_inq *empty = &t->in[ei];
                        /* Records the broker has for it are not fetched
                         * yet: wait for them, however long it takes. */
                        if (has_lag(s, t, ei))
                                break;
                        /* Caught up: new ones may be on their way. Wait for
                         * them at most max.task.idle.ms from when it went
                         * idle; then it no longer holds the other back,
                         * until it gets records again. */
                        if (empty->idle_since < 0)
                                empty->idle_since = now;
                        if (now - empty->idle_since < idle)
                                break;
                        input = ms ? CF_IN_SESSIONS : CF_IN_METER;
                } else {
                        break;
                }
                cf_inrec *r = q_pop(&t->in[input]);
                cf_task_process(t, input, r);
                free(r);
                s->t_last_processed = now;
                done++;
        }
        return done;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        rt_state *s = opaque;
        (void)rk;
        int64_t ts = cf_outbox_on_delivery(&s->rt, m);
        if (ts >= 0)
                cf_metrics_observe_delivery(s->metrics, ts, cf_wall_ms());
}

/* An output delivered in a transaction, once it committed (fence.h). */
static void on_txn_delivered(void *opaque, int64_t ts)
{
        rt_state *s = opaque;
        cf_metrics_observe_delivery(s->metrics, ts, cf_wall_ms());
}

/* Commits every task (one synced batch), then produces their outputs:
 * with wait, at once, once the task log has the commit; without, the
 * outputs leave from the main loop once it has (cf_outbox_produce_ready),
 * while the tasks go on. */
static cf_err_t commit_all_wait(rt_state *s, bool wait)
{
        cf_runtime *rt = &s->rt;
        char errstr[512];
        int64_t t0 = cf_mono_ms();
        /* After a failed write the stores no longer match the disk (their
         * flushed entries count as clean): this process commits nothing
         * more; a restart resumes from the last commit. */
        if (s->state_failed)
                return CF_ERR_STATE;
        cf_batch_clear(s->batch);
        if (cf_tasks_commit(rt, s->batch, errstr, sizeof(errstr))) {
                /* The stores may be half flushed. */
                cf_log(CF_LOG_ERROR, "commit: %s", errstr);
                s->state_failed = true;
                return CF_ERR_STATE;
        }
        cf_crash_point("commit"); /* batch built, not written */
        cf_err_t err =
            cf_state_write(rt->st, s->batch, true, errstr, sizeof(errstr));
        if (err) {
                cf_log(CF_LOG_ERROR,
                       "commit: state write failed, nothing committed: %s",
                       errstr);
                s->state_failed = true;
                return err;
        }
        if (s->assigned) { /* a commit of tasks: written, none produced */
                cf_crash_point("synced");
                /* The same with nothing of earlier commits left in
                 * librdkafka's hands: a process frozen with outputs handed
                 * over sends them when it thaws (README, Zombies), so the
                 * zombie test freezes here. */
                if (rd_kafka_outq_len(rt->producer) == 0)
                        cf_crash_point("synced-idle");
        }
        /* Stopping on a signal: at most as long as the final delivery
         * wait (a broker gone for good must not hold the stop); the
         * outputs then wait in the outbox for the next start. */
        cf_outbox_produce_all(rt, &rt_hard_stop,
                              !wait     ? 0
                              : rt_stop ? 60000
                                        : -1);
        s->commits++;
        s->commit_ms_last = cf_mono_ms() - t0;
        if (s->commit_ms_last > s->commit_ms_max)
                s->commit_ms_max = s->commit_ms_last;
        s->last_commit = cf_mono_ms();
        cf_metrics_observe_commit(s->metrics, s->commit_ms_last);
        {
                int copies, failed;
                int64_t lag;
                cf_standby_stats(s->sb, &copies, &failed, &lag);
                cf_metrics_set_standby(s->metrics, copies, failed, lag);
        }
        cf_metrics_set_input_buffer(s->metrics, (int64_t)queued_bytes(rt),
                                    (int64_t)s->inbuf_peak,
                                    rt->cfg->input_buffer_max_bytes);
        cf_metrics_publish(s->metrics, rt, s->commits);
        return rt->fatal ? CF_ERR_KAFKA : CF_OK;
}

static cf_err_t commit_all(rt_state *s)
{
        return commit_all_wait(s, true);
}

/* The counters of every task of the process, added up. */
static void sum_counts(const cf_runtime *rt, cf_counts tot[CF_IN__CNT],
                       int64_t reasons[CF_REJECT__CNT])
{
        memset(tot, 0, CF_IN__CNT * sizeof(cf_counts));
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                for (int i = 0; i < CF_IN__CNT; i++) {
                        tot[i].in += t->cnt[i].in;
                        tot[i].accepted += t->cnt[i].accepted;
                        tot[i].dup += t->cnt[i].dup;
                        tot[i].rejected += t->cnt[i].rejected;
                        tot[i].pending += t->cnt[i].pending;
                }
                for (int r = 0; r < CF_REJECT__CNT; r++)
                        reasons[r] += t->reasons[r];
        }
}

static void log_stats(rt_state *s)
{
        cf_runtime *rt = &s->rt;
        cf_counts tot[CF_IN__CNT];
        int64_t reasons[CF_REJECT__CNT] = { 0 };
        char line[1024];
        size_t n = 0;
        sum_counts(rt, tot, reasons);
        for (int i = 0; i < CF_IN__CNT; i++) {
                char fields[512];
                snprintf(fields, sizeof(fields),
                         "\"topic\":\"%s\",\"in\":%" PRId64
                         ",\"accepted\":%" PRId64 ",\"duplicates\":%" PRId64
                         ",\"rejected\":%" PRId64 ",\"pending\":%" PRId64,
                         rt->in_topic[i], tot[i].in, tot[i].accepted,
                         tot[i].dup, tot[i].rejected, tot[i].pending);
                cf_logf(CF_LOG_INFO, "stats", fields,
                        "stats %s: in %" PRId64 " = accepted %" PRId64
                        " + duplicates %" PRId64 " + rejected %" PRId64
                        " + pending %" PRId64,
                        rt->in_topic[i], tot[i].in, tot[i].accepted, tot[i].dup,
                        tot[i].rejected, tot[i].pending);
        }
        for (int r = 0; r < CF_REJECT__CNT; r++)
                if (reasons[r])
                        n += (size_t)snprintf(
                            line + n, sizeof(line) - n, " %s=%" PRId64,
                            cf_reject_reason_name(r), reasons[r]);
        cf_log(CF_LOG_INFO,
               "stats rejected by reason:%s; produced %" PRId64
               ", delivered %" PRId64 ", outputs skipped %" PRId64
               "; commits %" PRId64 " (last %" PRId64 " ms, max %" PRId64
               " ms)",
               n ? line : " none", rt->produced, rt->delivered, rt->out_skipped,
               s->commits, s->commit_ms_last, s->commit_ms_max);
        /* Input lag: records on the broker not yet processed (from the
         * last fetch's high watermarks). */
        int64_t lag[CF_IN__CNT] = { 0 };
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                for (int i = 0; i < CF_IN__CNT; i++) {
                        int64_t lo, hi;
                        if ((t->sub == 'A') != (i != CF_IN_REPARTITION))
                                continue;
                        if (rd_kafka_get_watermark_offsets(
                                rt->consumer, rt->in_topic[i], t->id, &lo, &hi))
                                continue;
                        int64_t pos = t->in[i].next_offset >= 0
                                          ? t->in[i].next_offset
                                          : lo;
                        if (hi > pos)
                                lag[i] += hi - pos;
                }
        }
        cf_log(CF_LOG_INFO,
               "stats lag: %s %" PRId64 ", %s %" PRId64 ", %s %" PRId64,
               rt->in_topic[0], lag[0], rt->in_topic[1], lag[1],
               rt->in_topic[2], lag[2]);
        /* Stage counters, summed over the tasks (a few names each). */
        cf_stat sums[64];
        size_t ns = 0;
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                for (size_t k = 0; t && k < t->n_stats; k++) {
                        size_t j = 0;
                        while (j < ns &&
                               !(sums[j].stage == t->stats[k].stage &&
                                 !strcmp(sums[j].name, t->stats[k].name)))
                                j++;
                        if (j == ns) {
                                if (ns == sizeof(sums) / sizeof(sums[0]))
                                        continue;
                                sums[ns++] = (cf_stat){ t->stats[k].stage,
                                                        t->stats[k].name, 0 };
                        }
                        sums[j].value += t->stats[k].value;
                }
        }
        n = 0;
        line[0] = '\0';
        for (size_t j = 0; j < ns && n < sizeof(line); j++)
                n += (size_t)snprintf(line + n, sizeof(line) - n,
                                      " %s.%s=%" PRId64, sums[j].stage,
                                      sums[j].name, sums[j].value);
        cf_log(CF_LOG_INFO, "stats stages:%s", n ? line : " none");
        s->last_stats = cf_mono_ms();
}

/* Prints the run's counters as one JSON line on stdout (at exit). */
static void print_summary(rt_state *s)
{
        cf_runtime *rt = &s->rt;
        cf_counts tot[CF_IN__CNT];
        int64_t reasons[CF_REJECT__CNT] = { 0 };
        sum_counts(rt, tot, reasons);
        printf("{\"inputs\":{");
        for (int i = 0; i < CF_IN__CNT; i++)
                printf("%s\"%s\":{\"in\":%" PRId64 ",\"accepted\":%" PRId64
                       ",\"duplicates\":%" PRId64 ",\"rejected\":%" PRId64
                       ",\"pending\":%" PRId64 "}",
                       i ? "," : "", rt->in_topic[i], tot[i].in,
                       tot[i].accepted, tot[i].dup, tot[i].rejected,
                       tot[i].pending);
        printf("},\"rejected\":{");
        for (int r = 0, n = 0; r < CF_REJECT__CNT; r++)
                if (reasons[r])
                        printf("%s\"%s\":%" PRId64, n++ ? "," : "",
                               cf_reject_reason_name(r), reasons[r]);
        int64_t skipped = 0;
        for (int32_t p = 0; p < rt->n_tasks; p++)
                if (rt->tasks[p])
                        skipped += rt->tasks[p]->ob.skipped;
        printf("},\"produced\":%" PRId64 ",\"delivered\":%" PRId64
               ",\"outputs_skipped\":%" PRId64 ",\"commits\":%" PRId64,
               rt->produced, rt->delivered, skipped, s->commits);
        printf(",\"input_buffer\":{\"max_bytes\":%" PRId64
               ",\"peak_bytes\":%zu,\"full_turns\":%" PRId64 "}",
               rt->cfg->input_buffer_max_bytes, s->inbuf_peak,
               s->inbuf_full_turns);
        /* For benchmarks: when consuming began and when the last input
         * record arrived (ms since start), what went to disk, and the
         * state's writes in all and before consuming began (the tables
         * read to their end at start, written whole before any input:
         * cf_tables_write). */
        cf_state_writes w = { 0, 0, 0 };
        if (rt->st)
                cf_state_write_stats(rt->st, &w);
        int64_t t0 = s->t_start;
        printf(",\"timing\":{\"running_ms\":%" PRId64
               ",\"first_input_ms\":%" PRId64 ",\"last_input_ms\":%" PRId64
               ",\"last_processed_ms\":%" PRId64 ",\"last_record_ms\":%" PRId64
               ",\"total_ms\":%" PRId64 "}"
               ",\"state_writes\":{\"batches\":%" PRIu64 ",\"entries\":%" PRIu64
               ",\"bytes\":%" PRIu64 "}"
               ",\"state_writes_before_input\":{\"batches\":%" PRIu64
               ",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64 "}"
               ",\"disk_write_bytes\":%" PRId64
               ",\"disk_write_bytes_before_input\":%" PRId64 "}\n",
               s->t_running ? s->t_running - t0 : -1,
               s->t_first_input ? s->t_first_input - t0 : -1,
               s->t_last_input ? s->t_last_input - t0 : -1,
               s->t_last_processed ? s->t_last_processed - t0 : -1,
               s->t_last_record ? s->t_last_record - t0 : -1, cf_mono_ms() - t0,
               w.batches, w.entries, w.bytes, s->w_start.batches,
               s->w_start.entries, s->w_start.bytes, cf_proc_write_bytes(),
               s->disk_start);
        fflush(stdout);
}

/* ---- tables ----------------------------------------------------------------
 */

/* Reads the table topics from the stored offsets; with to_end, until the
 * end as of now. A failure is described in errstr. */
static cf_err_t tables_poll(rt_state *s, bool to_end, char *errstr,
                            size_t errstr_size)
{
        cf_runtime *rt = &s->rt;
        int64_t *ends = NULL; /* per partition; -1 once read to it */
        int remaining = 0;
        int np = s->table_parts[0] + s->table_parts[1];
        if (to_end) {
                ends = cf_calloc((size_t)np, sizeof(int64_t));
                for (int k = 0; k < 2; k++) {
                        const char *topic =
                            k ? rt->cfg->topic_users : rt->cfg->topic_sites;
                        for (int p = 0; p < s->table_parts[k]; p++) {
                                int64_t lo, hi;
                                if (cf_kafka_watermarks(s->tables_rk, topic, p,
                                                        &rt_stop, &lo, &hi,
                                                        errstr, errstr_size)) {
                                        free(ends);
                                        return CF_ERR_KAFKA;
                                }
                                int64_t have = cf_tables_offset(
                                    rt->tables, (cf_table_kind)k, p);
                                /* Nothing left to read when the records
                                 * below hi are gone (compaction or
                                 * retention moved the start up to it). */
                                bool left = have < hi && lo < hi;
                                ends[k * s->table_parts[0] + p] =
                                    left ? hi : -1;
                                remaining += left;
                        }
                }
        }
        /* Assigned only now: once the consumer fetches, a broker answers
         * the offset requests above only after a fetch that waits for data
         * (fetch.wait.max.ms, 500 ms) on the same connection, one
         * partition after the other: seconds at start. */
        if (s->tables_parts) {
                rd_kafka_resp_err_t err =
                    rd_kafka_assign(s->tables_rk, s->tables_parts);
                rd_kafka_topic_partition_list_destroy(s->tables_parts);
                s->tables_parts = NULL;
                if (err) {
                        snprintf(errstr, errstr_size, "assign: %s",
                                 rd_kafka_err2str(err));
                        free(ends);
                        return CF_ERR_KAFKA;
                }
        }
        for (;;) {
                if (to_end && remaining == 0)
                        break;
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(s->tables_rk, to_end ? 200 : 0);
                if (!m) {
                        if (!to_end)
                                break;
                        if (rt_stop) {
                                snprintf(errstr, errstr_size,
                                         "stopped before the end");
                                free(ends);
                                return CF_ERR_KAFKA;
                        }
                        continue;
                }
                int k =
                    strcmp(rd_kafka_topic_name(m->rkt), rt->cfg->topic_sites)
                        ? 1
                        : 0;
                int64_t *end =
                    to_end ? &ends[k * s->table_parts[0] + m->partition] : NULL;
                if (m->err) {
                        /* At the end of a partition whose last records
                         * compaction removed, no record reaches end - 1. */
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                if (end && *end >= 0 && m->offset >= *end) {
                                        *end = -1;
                                        remaining--;
                                }
                        } else {
                                cf_log(CF_LOG_WARN, "tables: %s",
                                       rd_kafka_message_errstr(m));
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                cf_crash_point("tables");
                if (!cf_tables_apply(rt->tables, (cf_table_kind)k, m->partition,
                                     m->offset, m->key, m->key_len, m->payload,
                                     m->len))
                        cf_log(CF_LOG_WARN,
                               "table %s [%d] offset %" PRId64
                               ": record skipped (undecodable, or its id "
                               "is not its key)",
                               rd_kafka_topic_name(m->rkt), (int)m->partition,
                               m->offset);
                if (end && *end >= 0 && m->offset + 1 >= *end) {
                        *end = -1;
                        remaining--;
                }
                rd_kafka_message_destroy(m);
        }
        free(ends);
        return CF_OK;
}

static cf_err_t tables_open(rt_state *s, char *errstr, size_t errstr_size)
{
        cf_runtime *rt = &s->rt;
        const cf_config *cfg = rt->cfg;
        rd_kafka_conf_t *conf =
            cf_kafka_client_conf(cfg, CF_KAFKA_CONSUMER, errstr, errstr_size);
        if (!conf)
                return CF_ERR_CONFIG;
        if (cf_kafka_conf_set(conf, "group.id", cfg->group_id, errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            /* A stored offset below a compacted table's new start: what
             * was removed there has a later record above it. */
            cf_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return CF_ERR_CONFIG;
        }
        s->tables_rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!s->tables_rk)
                return CF_ERR_KAFKA;
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(16);
        for (int k = 0; k < 2; k++) {
                const char *topic = k ? cfg->topic_users : cfg->topic_sites;
                int n;
                if (cf_kafka_partition_count(s->tables_rk, topic, 10000, &n,
                                             errstr, errstr_size)) {
                        rd_kafka_topic_partition_list_destroy(l);
                        return CF_ERR_KAFKA;
                }
                s->table_parts[k] = n;
                for (int p = 0; p < n; p++) {
                        int64_t off =
                            cf_tables_offset(rt->tables, (cf_table_kind)k, p);
                        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                            off > 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
                }
        }
        s->tables_parts = l; /* assigned by tables_poll() */
        return CF_OK;
}

/* ---- group membership --------------------------------------------------- */

static int input_of(const cf_runtime *rt, const char *topic)
{
        for (int i = 0; i < CF_IN__CNT; i++)
                if (!strcmp(topic, rt->in_topic[i]))
                        return i;
        return CF_IN_SESSIONS;
}

/* Index in rt->tasks of the task reading partition p of input, or -1. */
static int32_t task_index(const cf_runtime *rt, int input, int32_t p)
{
        if (input == CF_IN_REPARTITION) {
                int32_t nb = rt->n_tasks - rt->in_partitions;
                return p >= 0 && p < nb ? rt->in_partitions + p : -1;
        }
        return p >= 0 && p < rt->in_partitions ? p : -1;
}

/* Until writes may go on after a standstill (cf_outbox_may_write), or
 * the assignment is found lost: before a planned handover or the final
 * commit, which would otherwise leave their outputs to the next start. */
static void await_hold(cf_runtime *rt)
{
        while (cf_mono_ms() < rt->hold_until_ms && !rt->fatal &&
               !rd_kafka_assignment_lost(rt->consumer))
                rd_kafka_poll(rt->producer, 50);
}

static void revoke_all(rt_state *s)
{
        cf_runtime *rt = &s->rt;
        if (rd_kafka_assignment_lost(rt->consumer)) {
                /* The group gave the tasks to others while this process
                 * did not hear from it (session timed out, or
                 * max.poll.interval.ms passed): their new owners restore
                 * from the task log and the output tails, so nothing more
                 * is committed or produced for them here. What librdkafka
                 * holds already goes out (its delivery reports name the
                 * tasks); the local state keeps the last commit, which a
                 * later assignment here replaces from the log. */
                cf_log(CF_LOG_WARN,
                       "assignment lost (no word from the group within the "
                       "session timeout, or max.poll.interval.ms passed): "
                       "the tasks are left as of their last commit, "
                       "nothing more written for them");
                rd_kafka_flush(rt->producer, 30000);
                /* Fencing: their new owners have fenced these already, or
                 * will; no transaction is open between commits. */
                cf_fence_release_all(rt);
        } else {
                await_hold(rt);
                if (commit_all(s) == CF_OK)
                        rd_kafka_flush(rt->producer, 30000);
                /* deletes what was delivered from the outbox */
                if (commit_all(s) == CF_OK && !rt->fatal) {
                        /* Where each task's copy stands in its log. */
                        char errstr[256];
                        for (int32_t p = 0; p < rt->n_tasks; p++)
                                if (rt->tasks[p] &&
                                    cf_tasklog_leave(rt->tasks[p], errstr,
                                                     sizeof(errstr)))
                                        cf_log(CF_LOG_WARN, "%s: %s",
                                               rt->tasks[p]->name, errstr);
                }
                cf_fence_release_all(rt);
        }
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task_destroy(rt->tasks[p]);
                rt->tasks[p] = NULL;
        }
        rt->outputs_wait = false;
        s->assigned = false;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        rt_state *s = opaque;
        cf_runtime *rt = &s->rt;
        char errstr[512];
        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                cf_log(CF_LOG_INFO, "partitions revoked");
                cf_metrics_set_assigned(s->metrics, false);
                revoke_all(s);
                rd_kafka_assign(rk, NULL);
                return;
        }
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                cf_log(CF_LOG_ERROR, "rebalance: %s", rd_kafka_err2str(err));
                rd_kafka_assign(rk, NULL);
                return;
        }
        cf_metrics_set_restoring(s->metrics, parts->cnt);
        /* The copies of the tasks assigned now stop first: the task goes on
         * from where its copy stands (cf_tasklog_sync). */
        if (s->sb) {
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t idx =
                            task_index(rt, input_of(rt, parts->elems[i].topic),
                                       parts->elems[i].partition);
                        if (idx >= 0)
                                s->sb_want[idx] = false;
                }
                if (cf_standby_set(s->sb, s->sb_want, errstr, sizeof(errstr)))
                        cf_log(CF_LOG_WARN, "standby: %s", errstr);
        }
        /* Fencing: the assigned tasks' transactional ids are taken over
         * first, before their logs are read: what an earlier owner left
         * open is aborted, and it can add nothing more (fence.h). */
        if (rt->fencing) {
                bool *want = cf_calloc((size_t)rt->n_tasks, sizeof(*want));
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t idx =
                            task_index(rt, input_of(rt, parts->elems[i].topic),
                                       parts->elems[i].partition);
                        if (idx >= 0 && !rt->tasks[idx])
                                want[idx] = true;
                }
                cf_err_t ferr = cf_fence_acquire(rt, want, &rt_stop, errstr,
                                                 sizeof(errstr));
                free(want);
                if (ferr) {
                        if (rt_stop)
                                return;
                        rt->fatal = 1;
                        snprintf(rt->fatal_msg, sizeof(rt->fatal_msg), "%s",
                                 errstr);
                        return;
                }
        }
        /* A rating task for each assigned partition of the sessions topic;
         * the range assignor gives this process the same partition of the
         * meter topic. */
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int input = input_of(rt, tp->topic);
                int32_t idx = task_index(rt, input, tp->partition);
                if (idx < 0)
                        continue;
                char sub = input == CF_IN_REPARTITION ? 'B' : 'A';
                if (!rt->tasks[idx]) {
                        bool restored = false, full = false;
                        int64_t done_n = -1;
                        if ((rt->task_log &&
                             cf_tasklog_sync(rt, sub, tp->partition, &rt_stop,
                                             &restored, &full, &done_n, errstr,
                                             sizeof(errstr))) ||
                            cf_task_new(rt, sub, tp->partition, &rt->tasks[idx],
                                        errstr, sizeof(errstr))) {
                                if (rt_stop)
                                        return; /* a signal: a clean stop */
                                rt->fatal = 1;
                                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                                         "task %c-%d: %s", sub,
                                         (int)tp->partition, errstr);
                                return;
                        }
                        rt->tasks[idx]->log_full = full;
                        rt->tasks[idx]->log_done_n = done_n;
                        cf_task *nt = rt->tasks[idx];
                        char at[96];
                        if (sub == 'B')
                                snprintf(at, sizeof(at), "input at %" PRId64,
                                         nt->in[CF_IN_REPARTITION].next_offset);
                        else
                                snprintf(at, sizeof(at),
                                         "inputs at %" PRId64 ", %" PRId64,
                                         nt->in[CF_IN_SESSIONS].next_offset,
                                         nt->in[CF_IN_METER].next_offset);
                        cf_log(CF_LOG_INFO,
                               "task %s assigned%s: %s, next output %" PRId64
                               ", %zu outputs pending",
                               nt->name,
                               restored ? " (restored from the task log)" : "",
                               at, nt->ob.next_seq, nt->ob.n_pending);
                }
                int64_t off = rt->tasks[idx]->in[input].next_offset;
                tp->offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
                rt->tasks[idx]->in[input].idle_since = -1;
        }
        rd_kafka_assign(rk, parts);
        s->assigned = true;
        /* Outputs recovered from the outbox: drop what the tails of the
         * tasks' own output partitions show delivered, produce the rest. */
        char why[512];
        if (cf_outbox_recover(rt, &rt_stop, why, sizeof(why)) && !rt_stop) {
                /* Without the tails, producing again would write records
                 * that may be there already: stop instead, with nothing
                 * produced, so that a restart tries again. (Stopped by a
                 * signal meanwhile: the usual clean stop.) */
                rt->fatal = 1;
                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                         "outbox recovery: %s; nothing produced (it could "
                         "repeat delivered records): restart to try again",
                         why);
        }
        /* The first commit comes soon after an assignment (a quarter of a
         * second of processing, at most commit.interval.ms), not at once
         * with nothing processed: the moved tasks' first outputs then
         * leave without waiting a whole interval. */
        {
                int64_t soon = rt->cfg->commit_interval_ms < FIRST_COMMIT_MS
                                   ? rt->cfg->commit_interval_ms
                                   : FIRST_COMMIT_MS;
                s->last_commit =
                    cf_mono_ms() - rt->cfg->commit_interval_ms + soon;
        }
        /* Where the copies go now: asked to the group (placement_poll). */
        if (s->sb) {
                s->place_at = cf_mono_ms();
                s->place_tries = 0;
        }
        cf_metrics_set_restoring(s->metrics, 0);
        cf_metrics_set_assigned(s->metrics, true);
        cf_metrics_publish(s->metrics, rt, s->commits);
}

/* ---- standby placement ----------------------------------------------------
 */

/* Sets the copies: want[] as decided, logged. */
static void standby_apply(rt_state *s, const char *how)
{
        cf_runtime *rt = &s->rt;
        char list[512], errstr[512];
        size_t n = 0;
        int cnt = 0;
        list[0] = 0;
        for (int32_t i = 0; i < rt->n_tasks; i++) {
                if (rt->tasks[i])
                        s->sb_want[i] = false;
                if (!s->sb_want[i])
                        continue;
                cnt++;
                if (n < sizeof(list) - 16)
                        n += (size_t)snprintf(
                            list + n, sizeof(list) - n, "%s%c-%d",
                            n ? ", " : "", i < rt->in_partitions ? 'A' : 'B',
                            (int)(i < rt->in_partitions
                                      ? i
                                      : i - rt->in_partitions));
        }
        cf_log(CF_LOG_INFO, "standby: copies of %d tasks (%s)%s%s", cnt, how,
               cnt ? ": " : "", list);
        if (cf_standby_set(s->sb, s->sb_want, errstr, sizeof(errstr)))
                cf_log(CF_LOG_WARN, "standby: %s", errstr);
}

static int cmp_member(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* From the group's members (ids, sorted as the range assignor sorts them):
 * false when this process's own assignment is not what the range
 * assignor gives it among them (the prediction would not hold). */
static bool standby_predict(rt_state *s, const char **ids, int m,
                            const char *self)
{
        cf_runtime *rt = &s->rt;
        int me = -1;
        qsort(ids, (size_t)m, sizeof(*ids), cmp_member);
        for (int i = 0; i < m; i++)
                if (!strcmp(ids[i], self))
                        me = i;
        if (me < 0)
                return false;
        int32_t nk[2] = { rt->in_partitions, rt->n_tasks - rt->in_partitions };
        for (int k = 0; k < 2; k++) {
                int32_t base = k ? rt->in_partitions : 0, lo, hi;
                cf_range_share(nk[k], m, me, &lo, &hi);
                for (int32_t p = 0; p < nk[k]; p++)
                        if ((rt->tasks[base + p] != NULL) !=
                            (p >= lo && p < hi))
                                return false;
        }
        memset(s->sb_want, 0, (size_t)rt->n_tasks * sizeof(bool));
        for (int k = 0; k < 2; k++)
                cf_standby_gains(nk[k], m, me,
                                 s->sb_want + (k ? rt->in_partitions : 0));
        return true;
}

/* The group's answer (rd_kafka_list_groups: err, list): the members, then
 * the copies. A group not stable yet, or an assignment that does not
 * match: asked again shortly (20 times at most); an error: 3 times at
 * most; then a copy of every task the process does not own. */
static void standby_answer(rt_state *s, rd_kafka_resp_err_t err,
                           const struct rd_kafka_group_list *list)
{
        cf_runtime *rt = &s->rt;
        char why[256] = "";
        const struct rd_kafka_group_info *g =
            !err && list && list->group_cnt == 1 ? &list->groups[0] : NULL;
        if (err)
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(err));
        else if (!g)
                snprintf(why, sizeof(why), "no answer");
        else if (g->err)
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(g->err));
        else if (!g->state || strcmp(g->state, "Stable")) {
                /* A rebalance under way: its assignment asks again. */
                if (s->place_tries < 20) {
                        s->place_at = cf_mono_ms() + 500;
                        return;
                }
                snprintf(why, sizeof(why), "the group is not stable");
        }
        if (!why[0]) {
                int m = g->member_cnt;
                const char **ids = cf_calloc((size_t)m + 1, sizeof(*ids));
                for (int i = 0; i < m; i++)
                        ids[i] = g->members[i].member_id;
                char *self = rd_kafka_memberid(rt->consumer);
                char how[128];
                snprintf(how, sizeof(how),
                         "predicted: what it would be given if one of the "
                         "%d other members left",
                         m - 1);
                if (self && standby_predict(s, ids, m, self))
                        standby_apply(s, how);
                else if (s->place_tries < 20)
                        s->place_at = cf_mono_ms() + 500;
                else
                        snprintf(why, sizeof(why),
                                 "this process's assignment is not the range "
                                 "assignor's among the %d members",
                                 m);
                if (self)
                        rd_kafka_mem_free(rt->consumer, self);
                free(ids);
                if (!why[0])
                        return;
        }
        if (err != RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE &&
            s->place_tries < 3 && !strstr(why, "range")) {
                s->place_at = cf_mono_ms() + 500;
                return;
        }
        for (int32_t i = 0; i < rt->n_tasks; i++)
                s->sb_want[i] = true;
        char how[320];
        snprintf(how, sizeof(how),
                 "every task it does not own: the group's members are not "
                 "known (%s)",
                 why);
        standby_apply(s, how);
}

/* The question to the group, on a thread of its own: rd_kafka_list_groups
 * waits for the answer (at most 3 s). */
static void *place_thread(void *opaque)
{
        rt_state *s = opaque;
        s->place_err = rd_kafka_list_groups(s->rt.producer, s->rt.cfg->group_id,
                                            &s->place_list, 3000);
        atomic_store(&s->place_done, 1);
        return NULL;
}

/* Takes the answer, once there (wait: until it is). */
static bool place_take(rt_state *s, bool wait)
{
        if (!s->place_asked || (!wait && !atomic_load(&s->place_done)))
                return false;
        pthread_join(s->place_th, NULL);
        s->place_asked = false;
        return true;
}

/* Asks the group's members when due; takes the answer. Runtime thread. */
static void placement_poll(rt_state *s)
{
        cf_runtime *rt = &s->rt;
        if (place_take(s, false)) {
                if (s->assigned)
                        standby_answer(s, s->place_err, s->place_list);
                if (s->place_list)
                        rd_kafka_group_list_destroy(s->place_list);
                s->place_list = NULL;
                return;
        }
        if (!s->assigned || s->place_asked || !s->place_at ||
            cf_mono_ms() < s->place_at)
                return;
        s->place_at = 0;
        if (rt->cfg->num_standby_replicas >= 2) {
                for (int32_t i = 0; i < rt->n_tasks; i++)
                        s->sb_want[i] = true;
                standby_apply(s, "num.standby.replicas >= 2: every task it "
                                 "does not own");
                return;
        }
        s->place_tries++;
        s->place_list = NULL;
        atomic_store(&s->place_done, 0);
        if (pthread_create(&s->place_th, NULL, place_thread, s)) {
                standby_answer(s, RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, NULL);
                return;
        }
        s->place_asked = true;
}

cf_state_conf cf_runtime_state_conf(const cf_config *cfg)
{
        return (cf_state_conf){
                .block_cache_bytes = (size_t)cfg->state_block_cache_bytes,
                .write_buffer_bytes = (size_t)cfg->state_write_buffer_bytes,
        };
}

/* ---- main loop ------------------------------------------------------------
 */

static bool idle_now(rt_state *s, int64_t now)
{
        cf_runtime *rt = &s->rt;
        int n = 0;
        if (!s->assigned || now - s->last_msg < rt->cfg->idle_exit_ms)
                return false;
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                n++;
                int lo = t->sub == 'A' ? CF_IN_SESSIONS : CF_IN_REPARTITION;
                int hi = t->sub == 'A' ? CF_IN_METER : CF_IN_REPARTITION;
                for (int i = lo; i <= hi; i++)
                        if (t->in[i].n || !t->in[i].at_end)
                                return false;
                if (t->ob.inflight)
                        return false;
        }
        return n > 0 && !rt->outputs_wait && cf_fence_outq_len(rt) == 0;
}

/* --until-idle, once idle: whether the process may exit. Every task it
 * holds must be drained (tasks assigned after a first drain, moved here
 * from a process that left, drain too: s->drain_pending says some are
 * not) and finished: a billing task waits for the end of input from every
 * rating task, which other processes of the group send when they drain.
 * Without that wait, a process that drained first would leave with its
 * statements open, and nothing would close them once the others are gone
 * too. While it waits, it says every 30 s which tasks it waits for. */
static bool until_idle_done(rt_state *s, int64_t now)
{
        cf_runtime *rt = &s->rt;
        char wait[256];
        size_t n = 0;
        s->drain_pending = false;
        wait[0] = 0;
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                if (!t->drained) {
                        s->drain_pending = true;
                } else if (!cf_task_finished(t) && n < sizeof(wait)) {
                        n += (size_t)snprintf(wait + n, sizeof(wait) - n,
                                              "%s%c-%d", n ? ", " : "", t->sub,
                                              (int)t->id);
                }
        }
        if (s->drain_pending)
                return false;
        if (!wait[0])
                return true;
        if (now - s->last_wait_log >= 30000) {
                cf_log(CF_LOG_INFO,
                       "drained; waiting for the end of input from every "
                       "rating task of the group (tasks %s)",
                       wait);
                s->last_wait_log = now;
        }
        return false;
}

static void route(rt_state *s, rd_kafka_message_t *m)
{
        cf_runtime *rt = &s->rt;
        /* Errors of the client, not of a partition, come without a topic. */
        int input =
            m->rkt ? input_of(rt, rd_kafka_topic_name(m->rkt)) : CF_IN_SESSIONS;
        int32_t idx = m->rkt ? task_index(rt, input, m->partition) : -1;
        cf_task *t = idx >= 0 ? rt->tasks[idx] : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                /* E.g. FENCED_INSTANCE_ID: another process joined with
                 * this group.instance.id. The consumer is unusable. */
                char why[256];
                rd_kafka_fatal_error(rt->consumer, why, sizeof(why));
                rt->fatal = 1;
                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg), "consumer: %s",
                         why);
                rd_kafka_message_destroy(m);
                return;
        }
        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* Every message before it is queued already. */
                        if (t)
                                t->in[input].at_end = true;
                } else {
                        cf_log(CF_LOG_WARN, "consume: %s",
                               rd_kafka_message_errstr(m));
                }
                rd_kafka_message_destroy(m);
                return;
        }
        if (!t) {
                rd_kafka_message_destroy(m);
                return;
        }
        q_push(&t->in[input], cf_inrec_new(m));
        rd_kafka_message_destroy(m);
        s->last_msg = s->t_last_record = cf_mono_ms();
        if (input != CF_IN_REPARTITION) {
                if (!s->t_first_input)
                        s->t_first_input = s->last_msg;
                s->t_last_input = s->last_msg;
        }
}

/* Takes what librdkafka has fetched into the tasks' queues, up to
 * input.buffer.max.bytes waiting there. Past it, takes nothing while the
 * tasks work the queues down; when they could not (stuck is true: each
 * waits for an input whose records are still in librdkafka's queue),
 * takes one batch all the same. When they did nothing in the last turn,
 * waits up to 20 ms for a first record (no busy loop while waiting). */
static void take_input(rt_state *s, rd_kafka_queue_t *cq, bool stuck)
{
        cf_runtime *rt = &s->rt;
        rd_kafka_message_t *msgs[BATCH];
        size_t queued = queued_bytes(rt);
        size_t max = (size_t)rt->cfg->input_buffer_max_bytes;
        if (queued >= max && !stuck) {
                s->inbuf_full_turns++;
                return;
        }
        int timeout = stuck ? 20 : 0;
        for (;;) {
                ssize_t n =
                    rd_kafka_consume_batch_queue(cq, timeout, msgs, BATCH);
                for (ssize_t i = 0; i < n; i++)
                        route(s, msgs[i]);
                queued = queued_bytes(rt);
                if (queued > s->inbuf_peak)
                        s->inbuf_peak = queued;
                if (n < BATCH || queued >= max)
                        break;
                timeout = 0;
        }
}

static cf_err_t open_clients(rt_state *s, char *errstr, size_t errstr_size)
{
        cf_runtime *rt = &s->rt;
        const cf_config *cfg = rt->cfg;
        rd_kafka_conf_t *pc =
            cf_kafka_client_conf(cfg, CF_KAFKA_PRODUCER, errstr, errstr_size);
        if (!pc)
                return CF_ERR_CONFIG;
        /* What reaches an output partition is always a prefix of what
         * this producer sent it, in order: outbox recovery (and billing's
         * sequence numbers on the repartition topic) rely on it. An
         * idempotent producer alone skips past a batch that failed for
         * good and delivers the next ones (a gap that a restart would read
         * as delivered); with the gapless guarantee such a failure stops
         * the producer instead, and without a delivery timeout (not
         * covered by that guarantee) a broker that is away delays outputs
         * instead of failing them. */
        if (cf_kafka_conf_set(pc, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(pc, "linger.ms", "5", errstr, errstr_size) ||
            cf_kafka_conf_set(pc, "compression.codec", "lz4", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(pc);
                return CF_ERR_CONFIG;
        }
        rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
        rd_kafka_conf_set_opaque(pc, s);
        /* The tasks' transactional producers (fence.h) start from the
         * same settings; a transaction is whole or absent, so neither the
         * gapless guarantee nor an unlimited delivery time is theirs. */
        if (rt->fencing) {
                cf_fence_setup(rt, pc);
                rt->on_delivered = on_txn_delivered;
                rt->on_delivered_opaque = s;
        }
        if (cf_kafka_conf_set(pc, "enable.gapless.guarantee", "true", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(pc, "message.timeout.ms", "0", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(pc);
                return CF_ERR_CONFIG;
        }
        rt->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, errstr_size);
        if (!rt->producer)
                return CF_ERR_KAFKA;

        for (int o = 0; o < CF_OUT__CNT; o++) {
                if (cf_kafka_partition_count(rt->producer, rt->out_topic[o],
                                             10000, &rt->out_partitions[o],
                                             errstr, errstr_size))
                        return CF_ERR_KAFKA;
        }
        /* The largest record each output topic takes: the producer's
         * message.max.bytes, lowered to the topic's max.message.bytes if
         * the broker tells it (asked here, answered in the main loop:
         * topic_limits()). */
        {
                char v[32];
                size_t vs = sizeof(v);
                int64_t pmax = 1000000;
                if (rd_kafka_conf_get(rd_kafka_conf(rt->producer),
                                      "message.max.bytes", v,
                                      &vs) == RD_KAFKA_CONF_OK)
                        pmax = strtoll(v, NULL, 10);
                for (int o = 0; o < CF_OUT__CNT; o++)
                        rt->max_out_bytes[o] = (size_t)pmax;
                s->limits_q = cf_kafka_max_bytes_ask(
                    rt->producer, rt->out_topic, CF_OUT__CNT);
        }
        int ns, nm;
        if (cf_kafka_partition_count(rt->producer, rt->in_topic[CF_IN_SESSIONS],
                                     10000, &ns, errstr, errstr_size) ||
            cf_kafka_partition_count(rt->producer, rt->in_topic[CF_IN_METER],
                                     10000, &nm, errstr, errstr_size))
                return CF_ERR_KAFKA;
        int parts[CF_T__CNT] = { 0 };
        parts[CF_T_SESSIONS] = ns;
        parts[CF_T_METER] = nm;
        parts[CF_T_CHARGE] = rt->out_partitions[CF_OUT_CHARGE];
        parts[CF_T_REJECTED] = rt->out_partitions[CF_OUT_REJECTED];
        parts[CF_T_STATEMENTS] = rt->out_partitions[CF_OUT_STATEMENT];
        parts[CF_T_REPARTITION] = rt->out_partitions[CF_OUT_REPARTITION];
        parts[CF_T_RATING_LOG] = rt->out_partitions[CF_OUT_RATING_LOG];
        parts[CF_T_BILLING_LOG] = rt->out_partitions[CF_OUT_BILLING_LOG];
        if (cf_topics_check_layout(cfg, parts, errstr, errstr_size))
                return CF_ERR_CONFIG;
        int nr = rt->out_partitions[CF_OUT_REPARTITION];
        rt->in_partitions = ns;
        rt->n_tasks = ns + nr;
        rt->tasks = cf_calloc((size_t)rt->n_tasks, sizeof(cf_task *));

        rd_kafka_conf_t *cc =
            cf_kafka_client_conf(cfg, CF_KAFKA_CONSUMER, errstr, errstr_size);
        if (!cc)
                return CF_ERR_CONFIG;
        if (cf_kafka_consumer_defaults(cc, cfg, errstr, errstr_size)) {
                rd_kafka_conf_destroy(cc);
                return CF_ERR_CONFIG;
        }
        if (cf_kafka_conf_set(cc, "group.id", cfg->group_id, errstr,
                              errstr_size) ||
            cf_kafka_conf_set(cc, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(cc, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(cc, "partition.assignment.strategy", "range",
                              errstr, errstr_size) ||
            cf_kafka_conf_set(cc, "auto.offset.reset", "earliest", errstr,
                              errstr_size) ||
            (*cfg->group_instance_id &&
             cf_kafka_conf_set(cc, "group.instance.id", cfg->group_instance_id,
                               errstr, errstr_size)) ||
            /* 10 s, not librdkafka's 45 s, unless set: how long the
             * partitions of a process that died wait (heartbeats run on
             * librdkafka's own thread, so a busy loop does not miss
             * them), and on the embedded broker how long any restart
             * waits (README, Operations). */
            (!cf_config_kafka_get(cfg, "session.timeout.ms") &&
             cf_kafka_conf_set(cc, "session.timeout.ms", "10000", errstr,
                               errstr_size))) {
                rd_kafka_conf_destroy(cc);
                return CF_ERR_CONFIG;
        }
        /* Writes wait after the main thread stood still for half a
         * session (cf_outbox_may_write), for two heartbeats (at least
         * 1.5 s): the consumer's time to hear from the group. */
        {
                char v[32];
                size_t vn = sizeof(v);
                int64_t session = 10000, heartbeat = 3000;
                if (rd_kafka_conf_get(cc, "session.timeout.ms", v, &vn) ==
                    RD_KAFKA_CONF_OK)
                        session = strtoll(v, NULL, 10);
                vn = sizeof(v);
                if (rd_kafka_conf_get(cc, "heartbeat.interval.ms", v, &vn) ==
                    RD_KAFKA_CONF_OK)
                        heartbeat = strtoll(v, NULL, 10);
                rt->standstill_ms = session / 2;
                rt->hold_ms = heartbeat * 2 > 1500 ? heartbeat * 2 : 1500;
        }
        rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
        rd_kafka_conf_set_opaque(cc, s);
        rt->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, errstr_size);
        if (!rt->consumer)
                return CF_ERR_KAFKA;
        rd_kafka_poll_set_consumer(rt->consumer);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(CF_IN__CNT);
        for (int i = 0; i < CF_IN__CNT; i++)
                rd_kafka_topic_partition_list_add(l, rt->in_topic[i],
                                                  RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rt->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                snprintf(errstr, errstr_size, "subscribe: %s",
                         rd_kafka_err2str(err));
                return CF_ERR_KAFKA;
        }
        return CF_OK;
}

int cf_runtime_run(const cf_config *cfg, bool until_idle)
{
        rt_state s;
        cf_runtime *rt = &s.rt;
        char errstr[512];
        int rc = 1;
        bool running = false;
        memset(&s, 0, sizeof(s));
        s.t_start = cf_mono_ms();
        cf_runtime_init(rt, cfg);
        /* Over Kafka, exactly once: every commit also goes to the task
         * log, so that any process of the group can take a task over. */
        rt->task_log = rt->exactly_once && !strcmp(cfg->task_log, "on");
        rt->fencing = !strcmp(cfg->producer_fencing, "transactions");
        cf_log_set_level(cfg->log_level);
        cf_log_set_format(cfg->log_format);
        cf_log_set_component("run");

        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        /* Before anything is created: every client setting, then every
         * configured topic (none is ever created by using it). */
        if (cf_kafka_check_config(cfg, errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "config: %s", errstr);
                rc = 2;
                goto done;
        }
        if (rt->fencing && !rt->task_log) {
                cf_log(CF_LOG_ERROR,
                       "config: producer.fencing=transactions needs the task "
                       "log (processing.guarantee=exactly_once and "
                       "task.log=on): it fences a task's writes for the "
                       "process that restores it from that log");
                rc = 2;
                goto done;
        }
        cf_err_t terr = cf_topics_require(cfg, errstr, sizeof(errstr));
        if (terr) {
                cf_log(CF_LOG_ERROR, "%s%s",
                       terr == CF_ERR_CONFIG ? "config: " : "", errstr);
                rc = terr == CF_ERR_CONFIG ? 2 : 1;
                goto done;
        }
        if (cf_registry_new(&rt->reg, errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "schemas: %s", errstr);
                goto done;
        }
        if (*cfg->schema_registry_url) {
                cf_registry_client_conf rcc;
                cf_registry_client_conf_from(&rcc, cfg);
                if (cf_registry_client_new(&rcc, &s.rc, errstr,
                                           sizeof(errstr)) ||
                    cf_registry_client_attach(s.rc, rt->reg, cfg, true, errstr,
                                              sizeof(errstr))) {
                        cf_log(CF_LOG_ERROR, "schema.registry.url: %s", errstr);
                        goto done;
                }
        }
        if (*cfg->metrics_listen &&
            cf_metrics_start(cfg->metrics_listen, &s.metrics, errstr,
                             sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "metrics.listen: %s", errstr);
                rc = 2;
                goto done;
        }
        int64_t t_open = cf_mono_ms();
        cf_state_conf sc = cf_runtime_state_conf(cfg);
        if (cf_state_open(cfg->state_dir, &sc, &rt->st, errstr,
                          sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "state.dir %s: %s", cfg->state_dir,
                       errstr);
                goto done;
        }
        cf_log(CF_LOG_INFO, "state open: %s (%" PRId64 " ms)", cfg->state_dir,
               cf_mono_ms() - t_open);
        t_open = cf_mono_ms();
        s.batch = cf_batch_new(rt->st);
        rt->tables =
            cf_tables_new(rt->st, rt->reg, (size_t)cfg->tables_cache_max_bytes);
        if (cf_tables_load(rt->tables, errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "tables: %s", errstr);
                goto done;
        }
        cf_log(CF_LOG_INFO, "tables read from the state (%" PRId64 " ms)",
               cf_mono_ms() - t_open);
        cf_crash_point("start");
        if (tables_open(&s, errstr, sizeof(errstr)) ||
            tables_poll(&s, true, errstr, sizeof(errstr)) ||
            cf_tables_write(rt->tables, errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "tables: %s", errstr);
                goto done;
        }
        {
                size_t ns, nu, nb;
                uint64_t sk;
                cf_tables_counts(rt->tables, &ns, &nu, &nb, &sk);
                cf_log(CF_LOG_INFO,
                       "tables loaded: %zu sites, %zu users, %zu badges "
                       "(%" PRIu64 " records skipped)",
                       ns, nu, nb, sk);
                cf_metrics_set_tables_loaded(s.metrics);
        }
        cf_err_t err = open_clients(&s, errstr, sizeof(errstr));
        if (err) {
                cf_log(CF_LOG_ERROR, "%s", errstr);
                rc = err == CF_ERR_CONFIG ? 2 : 1;
                goto done;
        }
        if (rt->task_log && cfg->num_standby_replicas > 0) {
                if (cf_standby_new(rt, &s.sb, errstr, sizeof(errstr))) {
                        cf_log(CF_LOG_ERROR, "standby: %s", errstr);
                        goto done;
                }
                s.sb_want = cf_calloc((size_t)rt->n_tasks, sizeof(bool));
        } else if (cfg->num_standby_replicas > 0) {
                cf_log(CF_LOG_WARN, "num.standby.replicas: no standby copies "
                                    "without a task log (exactly_once, "
                                    "task.log=on)");
        }
        cf_log(CF_LOG_INFO, "running: %s (%d partitions), guarantee %s%s%s",
               cfg->group_id, (int)rt->in_partitions, cfg->processing_guarantee,
               *cfg->group_instance_id ? ", static member " : "",
               cfg->group_instance_id);
        cf_state_write_stats(rt->st, &s.w_start);
        s.disk_start = cf_proc_write_bytes();
        s.last_commit = s.last_stats = s.last_msg = s.t_running = cf_mono_ms();
        running = true;

        rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(rt->consumer);
        bool failed = false, stuck = true;
        while (!rt_stop && !rt->fatal) {
                (void)cf_outbox_may_write(rt); /* a sign of life */
                take_input(&s, cq, stuck);
                int64_t now = cf_mono_ms();
                size_t done = 0;
                for (int32_t p = 0; p < rt->n_tasks; p++)
                        if (rt->tasks[p])
                                done += run_task(&s, rt->tasks[p], now);
                stuck = done == 0;
                cf_fence_poll(rt, 0);
                cf_outbox_produce_ready(rt);
                if (s.sb) {
                        placement_poll(&s);
                        cf_standby_poll(s.sb, 20);
                }
                tables_poll(&s, false, errstr, sizeof(errstr));
                topic_limits(&s);
                if (now - s.last_commit >= cfg->commit_interval_ms &&
                    commit_all_wait(&s, false)) {
                        failed = true;
                        break;
                }
                if (cfg->stats_interval_ms &&
                    now - s.last_stats >= cfg->stats_interval_ms)
                        log_stats(&s);
                if (until_idle && idle_now(&s, now)) {
                        if (until_idle_done(&s, now))
                                break;
                        if (!s.drain_pending)
                                continue;
                        /* The input is over: rating closes what waits and
                         * sends the end-of-input watermark; billing then
                         * closes what that allows, and we stop when idle
                         * again. */
                        cf_log(CF_LOG_INFO, "input read to its end: draining");
                        for (int32_t p = 0; p < rt->n_tasks; p++)
                                if (rt->tasks[p] && !rt->tasks[p]->drained)
                                        cf_task_drain(rt->tasks[p]);
                        if (commit_all(&s)) {
                                failed = true;
                                break;
                        }
                        s.last_msg = cf_mono_ms();
                }
        }
        rd_kafka_queue_destroy(cq);
        if (rt->fatal) {
                cf_log(CF_LOG_ERROR, "%s", rt->fatal_msg);
                failed = true;
        }
        if (!failed) {
                /* Final commit, deliveries, then a commit that empties the
                 * outbox of what was delivered. */
                await_hold(rt);
                if (commit_all(&s) == CF_OK) {
                        rd_kafka_flush(rt->producer, 60000);
                        if (commit_all(&s) == CF_OK && !rt->fatal)
                                rc = 0;
                }
        }
        log_stats(&s);
        print_summary(&s);
        rd_kafka_consumer_close(rt->consumer);
done:
        /* SIGINT or SIGTERM while starting interrupts what was under way
         * (a query to the broker, say): a stop as asked, with nothing
         * committed half-way, not a failure. */
        if (rc == 1 && rt_stop && !running) {
                cf_log(CF_LOG_INFO, "stopped by a signal while starting");
                rc = 0;
        }
        if (rt->tasks)
                for (int32_t p = 0; p < rt->n_tasks; p++)
                        cf_task_destroy(rt->tasks[p]);
        free(rt->tasks);
        if (rt->consumer)
                rd_kafka_destroy(rt->consumer);
        cf_standby_destroy(s.sb);
        free(s.sb_want);
        if (place_take(&s, true) && s.place_list)
                rd_kafka_group_list_destroy(s.place_list);
        if (s.tables_parts)
                rd_kafka_topic_partition_list_destroy(s.tables_parts);
        if (s.tables_rk) {
                rd_kafka_consumer_close(s.tables_rk);
                rd_kafka_destroy(s.tables_rk);
        }
        if (s.limits_q)
                rd_kafka_queue_destroy(s.limits_q);
        if (rt->trim_q) {
                /* Answers still coming hold references to the producer. */
                cf_tasklog_poll_trims(rt, 10000);
                rd_kafka_queue_destroy(rt->trim_q);
        }
        cf_fence_destroy(rt);
        if (rt->producer)
                rd_kafka_destroy(rt->producer);
        cf_tables_destroy(rt->tables);
        cf_batch_destroy(s.batch);
        cf_metrics_stop(s.metrics);
        cf_state_close(rt->st);
        cf_registry_destroy(rt->reg);
        cf_registry_client_destroy(s.rc);
        return rc;
}
