/*
 * outbox.c: a task's outputs from emit to delivery, and the restart
 * recovery (see outbox.h for the life of an entry).
 *
 * State: column family OUTBOX, key = the task's state id + seq
 * (big-endian), value = cf_out_encode() of the entry.
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crash.h"
#include "fence.h"
#include "kafka.h"
#include "log.h"
#include "task.h"
#include "tasklog.h"
#include "wire.h"

/* ---- entries -------------------------------------------------------------
 */

void cf_out_free(cf_out *o)
{
        if (!o)
                return;
        free(o->key);
        free(o->value);
        free(o);
}

/* Entries with a null key end with one more varint, 1; entries written
 * before null keys existed have none (key present). */
void cf_out_encode(const cf_out *o, cf_buf *b)
{
        cf_put_varint(b, o->topic);
        cf_put_varint(b, o->partition);
        cf_put_varint(b, o->seq);
        cf_put_varint(b, o->ts);
        cf_put_bytes(b, o->key, o->klen);
        cf_put_bytes(b, o->value, o->vlen);
        if (o->null_key)
                cf_put_varint(b, 1);
}

cf_out *cf_out_decode(const uint8_t *p, size_t len)
{
        cf_wrd r;
        uint32_t kl, vl;
        cf_wrd_init(&r, p, len);
        cf_out *o = cf_calloc(1, sizeof(*o));
        o->topic = (int32_t)cf_get_varint(&r);
        o->partition = (int32_t)cf_get_varint(&r);
        o->seq = cf_get_varint(&r);
        o->ts = cf_get_varint(&r);
        const uint8_t *k = cf_get_bytes(&r, &kl);
        const uint8_t *v = cf_get_bytes(&r, &vl);
        if (r.ok && r.p != r.end)
                o->null_key = cf_get_varint(&r) == 1;
        if (!r.ok || r.p != r.end || o->topic < 0 || o->topic >= CF_OUT__CNT) {
                free(o);
                return NULL;
        }
        o->key = cf_malloc(kl + 1);
        memcpy(o->key, k, kl);
        o->klen = kl;
        o->value = cf_malloc(vl + 1);
        memcpy(o->value, v, vl);
        o->vlen = vl;
        return o;
}

/* Bytes a record takes on the wire besides its key and value, at most:
 * the headers cf.task and cf.seq, the record's own framing and the record
 * batch's header (61 bytes), rounded up. */
#define CF_OUT_OVERHEAD 256

size_t cf_out_wire_size(const cf_task *t, size_t klen, size_t vlen)
{
        return klen + vlen + strlen(t->name) + CF_OUT_OVERHEAD;
}

/* ---- emit, skip, delivered -------------------------------------------------
 */

static void push_pending(cf_outbox *ob, cf_out *o)
{
        if (ob->n_pending == ob->cap_pending) {
                ob->cap_pending = ob->cap_pending ? ob->cap_pending * 2 : 256;
                ob->pending =
                    cf_realloc(ob->pending, ob->cap_pending * sizeof(cf_out *));
        }
        ob->pending[ob->n_pending++] = o;
}

void cf_outbox_skip(cf_task *t, int32_t topic, int32_t partition, int64_t seq,
                    size_t bytes, const char *why)
{
        t->ob.skipped++;
        t->rt->out_skipped++;
        cf_log(CF_LOG_ERROR,
               "%s: output seq %" PRId64 " to %s [%d] (%zu bytes) can never "
               "be delivered: %s; skipped (counted as outputs_skipped)",
               t->name, seq, t->rt->out_topic[topic], (int)partition, bytes,
               why);
}

void cf_outbox_emit(cf_task *t, int32_t topic, int32_t partition,
                    const void *key, size_t klen, const void *value,
                    size_t vlen)
{
        size_t limit = t->rt->max_out_bytes[topic];
        if (limit && cf_out_wire_size(t, klen, vlen) > limit) {
                char why[160];
                snprintf(why, sizeof(why),
                         "over the limit of %zu bytes (the producer's "
                         "message.max.bytes and the topic's "
                         "max.message.bytes)",
                         limit);
                cf_outbox_skip(t, topic, partition, t->ob.next_seq, klen + vlen,
                               why);
                return;
        }
        cf_out *o = cf_calloc(1, sizeof(*o));
        o->task = t;
        o->topic = topic;
        o->partition = partition;
        o->seq = t->ob.next_seq++;
        /* The task's stream time, or the latest Kafka timestamp it read
         * when that is later (timestamp.source=event on a backfill: its
         * outputs must not carry old times that the topics' retention
         * would delete before they are read). A function of the input. */
        int64_t ts = t->stream_time;
        if (t->kafka_time != CF_NONE && (ts == CF_NONE || t->kafka_time > ts))
                ts = t->kafka_time;
        o->ts = ts == CF_NONE ? 0 : ts;
        o->null_key = key == NULL;
        o->key = cf_malloc(klen + 1);
        if (klen)
                memcpy(o->key, key, klen);
        o->klen = (uint32_t)klen;
        o->value = cf_malloc(vlen + 1);
        memcpy(o->value, value, vlen);
        o->vlen = (uint32_t)vlen;
        push_pending(&t->ob, o);
}

void cf_outbox_delivered(cf_task *t, int64_t seq)
{
        cf_outbox *ob = &t->ob;
        if (ob->n_delivered == ob->cap_delivered) {
                ob->cap_delivered =
                    ob->cap_delivered ? ob->cap_delivered * 2 : 1024;
                ob->delivered = cf_realloc(ob->delivered,
                                           ob->cap_delivered * sizeof(int64_t));
        }
        ob->delivered[ob->n_delivered++] = seq;
}

/* ---- state ---------------------------------------------------------------
 */

static int load_entry(void *opaque, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen)
{
        cf_task *t = opaque;
        (void)key;
        (void)klen;
        cf_out *o = cf_out_decode(val, vlen);
        if (!o) {
                cf_log(CF_LOG_ERROR, "%s: corrupt outbox entry skipped",
                       t->name);
                return 0;
        }
        o->task = t;
        push_pending(&t->ob, o);
        return 0;
}

cf_err_t cf_outbox_load(cf_task *t, char *errstr, size_t errstr_size)
{
        cf_key k;
        cf_key_init(&k, t->state_id);
        cf_err_t err = cf_state_scan(t->rt->st, CF_COL_OUTBOX, k.b, k.len,
                                     load_entry, t, errstr, errstr_size);
        cf_outbox *ob = &t->ob;
        ob->n_committed = ob->n_pending;
        /* The scan walks seqs in order; below the first there is none. */
        ob->del_lo = ob->n_pending ? ob->pending[0]->seq : ob->next_seq;
        /* A seq above it that the state does not hold counts as deleted,
         * so that the range deletes pass over it: in a state restored
         * from the task log, the log records of the last commit of the
         * task's earlier owner (a log does not carry its own records). */
        size_t held = 0;
        for (int64_t seq = ob->del_lo; seq < ob->next_seq; seq++) {
                if (held < ob->n_pending && ob->pending[held]->seq == seq)
                        held++;
                else
                        cf_outbox_delivered(t, seq);
        }
        return err;
}

static void put_entries(cf_task *t, cf_batch *b, size_t first)
{
        cf_outbox *ob = &t->ob;
        cf_key k;
        cf_buf v;
        cf_buf_init(&v);
        for (size_t i = first; i < ob->n_pending; i++) {
                v.len = 0;
                cf_out_encode(ob->pending[i], &v);
                cf_key_init(&k, t->state_id);
                cf_key_u64(&k, (uint64_t)ob->pending[i]->seq);
                cf_batch_put(b, CF_COL_OUTBOX, k.b, k.len, v.p, v.len);
        }
        cf_buf_free(&v);
}

void cf_outbox_commit_from(cf_task *t, cf_batch *b, size_t first)
{
        if (t->rt->exactly_once)
                put_entries(t, b, first);
        t->ob.n_committed = t->ob.n_pending;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Deletes the delivered entries from del_lo up to the first seq not
 * delivered as one range, and keeps the delivered ones above it for a
 * later commit. A commit's outputs are mostly delivered by the next one,
 * so the range covers nearly all of them. */
static void delete_delivered(cf_task *t, cf_batch *b)
{
        cf_outbox *ob = &t->ob;
        int64_t *d = ob->delivered, lo = ob->del_lo, hi = lo;
        size_t n = ob->n_delivered, i = 0;
        if (!n)
                return; /* (d may be NULL: none delivered yet) */
        qsort(d, n, sizeof(*d), cmp_i64);
        for (; i < n && d[i] <= hi; i++)
                if (d[i] == hi)
                        hi++;
        memmove(d, d + i, (n - i) * sizeof(*d));
        ob->n_delivered = n - i;
        if (hi == lo)
                return;
        cf_key a, z;
        cf_key_init(&a, t->state_id);
        cf_key_u64(&a, (uint64_t)lo);
        cf_key_init(&z, t->state_id);
        cf_key_u64(&z, (uint64_t)hi);
        cf_batch_delete_range(b, CF_COL_OUTBOX, a.b, a.len, z.b, z.len);
        ob->del_lo = hi;
}

void cf_outbox_commit(cf_task *t, cf_batch *b)
{
        cf_outbox *ob = &t->ob;
        if (t->rt->exactly_once) {
                put_entries(t, b, 0);
                delete_delivered(t, b);
        } else {
                ob->n_delivered = 0;
        }
        ob->n_committed = ob->n_pending;
}

void cf_outbox_free(cf_task *t)
{
        cf_outbox *ob = &t->ob;
        for (size_t i = 0; i < ob->n_pending; i++)
                cf_out_free(ob->pending[i]);
        free(ob->pending);
        for (size_t i = 0; i < ob->n_txn; i++)
                cf_out_free(ob->txn[i]);
        free(ob->txn);
        free(ob->delivered);
        memset(ob, 0, sizeof(*ob));
}

/* ---- produce and delivery --------------------------------------------------
 */

/* Errors of one record that no retry can cure: the record is too large
 * for the producer or the broker, or the broker refuses it as invalid. */
static bool never_deliverable(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

/* An output that can never be delivered (too large for the producer: e.g.
 * written to the outbox by an older version, or before message.max.bytes
 * was lowered) is skipped, counted and logged, and leaves the outbox: it
 * must not stop the partition for good. */
/* For the crash tests (CF_CRASH_AT=tornlog:n): at the n-th task log
 * record that is not its commit's last, waits until it is delivered and
 * dies, leaving that commit cut in the log. */
static void torn_log_crash_point(const cf_out *o)
{
        cf_tasklog_pos pos;
        bool full;
        int64_t i, k;
        const uint8_t *ops;
        size_t len;
        if (!getenv("CF_CRASH_AT") ||
            !cf_tasklog_parse(o->value, o->vlen, &pos, &full, &i, &k, &ops,
                              &len) ||
            i + 1 >= k || !cf_crash_due("tornlog"))
                return;
        rd_kafka_flush(cf_fence_producer(o->task), 30000);
        cf_crash_now("tornlog");
}

/* Produces t's committed pending entries that are (logs) or are not task
 * log entries; the others stay pending, in order. */
static void produce(cf_task *t, bool logs)
{
        cf_runtime *rt = t->rt;
        cf_outbox *ob = &t->ob;
        rd_kafka_t *rk = cf_fence_producer(t);
        size_t kept = 0, committed = ob->n_committed;
        for (size_t i = 0; i < ob->n_pending; i++) {
                if (i == ob->n_pending / 2)
                        cf_crash_point(logs ? "log" : "produce"); /* half */
                cf_out *o = ob->pending[i];
                if (i == committed)
                        ob->n_committed = kept; /* the committed ones kept */
                if (i >= committed || cf_outbox_is_log(o->topic) != logs) {
                        ob->pending[kept++] = o;
                        continue;
                }
                char seq[24];
                int sl = snprintf(seq, sizeof(seq), "%" PRId64, o->seq);
                for (;;) {
                        rd_kafka_resp_err_t err = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(rt->out_topic[o->topic]),
                            RD_KAFKA_V_PARTITION(o->partition),
                            RD_KAFKA_V_KEY(o->null_key ? NULL : o->key,
                                           o->null_key ? 0 : o->klen),
                            RD_KAFKA_V_VALUE(o->value, o->vlen),
                            RD_KAFKA_V_TIMESTAMP(o->ts),
                            RD_KAFKA_V_HEADER("cf.task", t->name,
                                              (ssize_t)strlen(t->name)),
                            RD_KAFKA_V_HEADER("cf.seq", seq, sl),
                            RD_KAFKA_V_OPAQUE(o), RD_KAFKA_V_END);
                        if (!err)
                                break;
                        if (never_deliverable(err)) {
                                cf_outbox_skip(t, o->topic, o->partition,
                                               o->seq,
                                               (size_t)o->klen + o->vlen,
                                               rd_kafka_err2str(err));
                                cf_outbox_delivered(t, o->seq);
                                cf_out_free(o);
                                o = NULL;
                                break;
                        }
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                rt->fatal = 1;
                                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                                         "produce to %s: %s",
                                         rt->out_topic[o->topic],
                                         rd_kafka_err2str(err));
                                return;
                        }
                        rd_kafka_poll(rk, 10);
                }
                if (!o)
                        continue;
                if (logs)
                        torn_log_crash_point(o);
                ob->inflight++;
                if (logs)
                        rt->log_inflight++;
                else
                        rt->produced++;
        }
        if (committed >= ob->n_pending)
                ob->n_committed = kept;
        ob->n_pending = kept;
}

void cf_outbox_produce(cf_task *t)
{
        produce(t, true);
        produce(t, false);
}

bool cf_outbox_may_write(cf_runtime *rt)
{
        int64_t now = cf_mono_ms();
        if (rt->standstill_ms > 0 && rt->alive_ms > 0 &&
            now - rt->alive_ms > rt->standstill_ms) {
                cf_log(CF_LOG_WARN,
                       "the main thread stood still for %" PRId64
                       " ms (the process was paused, or starved): "
                       "nothing is written for %" PRId64
                       " ms, until the group has had the time to say "
                       "whether the tasks are still this process's",
                       now - rt->alive_ms, rt->hold_ms);
                rt->hold_until_ms = now + rt->hold_ms;
        }
        rt->alive_ms = now;
        if (now < rt->hold_until_ms)
                return false;
        return !(rt->consumer && rd_kafka_assignment_lost(rt->consumer));
}

/* ---- transactions (producer.fencing=transactions, fence.h) -------------
 */

static int cmp_seq(const void *a, const void *b)
{
        const cf_out *x = *(cf_out *const *)a, *y = *(cf_out *const *)b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int64_t delivered(cf_runtime *rt, cf_out *o, int64_t offset);

/* The end of t's transaction: committed, each record's delivery takes
 * effect; aborted, they are pending again, in sequence order, for the
 * next commit (but one that can never be delivered is skipped). */
static void txn_settle(cf_task *t, bool committed)
{
        cf_runtime *rt = t->rt;
        cf_outbox *ob = &t->ob;
        size_t back = 0;
        for (size_t i = 0; i < ob->n_txn; i++) {
                cf_out *o = ob->txn[i];
                if (committed) {
                        int64_t ts = delivered(rt, o, o->offset);
                        if (ts >= 0 && rt->on_delivered)
                                rt->on_delivered(rt->on_delivered_opaque, ts);
                } else if (never_deliverable(o->err)) {
                        cf_outbox_skip(t, o->topic, o->partition, o->seq,
                                       (size_t)o->klen + o->vlen,
                                       rd_kafka_err2str(o->err));
                        cf_outbox_delivered(t, o->seq);
                        cf_out_free(o);
                } else {
                        o->err = RD_KAFKA_RESP_ERR_NO_ERROR;
                        ob->txn[back++] = o;
                }
        }
        if (back) {
                qsort(ob->txn, back, sizeof(*ob->txn), cmp_seq);
                size_t n = ob->n_pending + back;
                if (n > ob->cap_pending) {
                        ob->cap_pending = n;
                        ob->pending =
                            cf_realloc(ob->pending, n * sizeof(*ob->pending));
                }
                memmove(ob->pending + back, ob->pending,
                        ob->n_pending * sizeof(*ob->pending));
                memcpy(ob->pending, ob->txn, back * sizeof(*ob->txn));
                ob->n_pending = n;
                ob->n_committed += back;
        }
        ob->n_txn = 0;
}

/* Whether e says that another producer of the same transactional.id took
 * over (its epoch is newer). */
static bool fenced(const rd_kafka_error_t *e)
{
        rd_kafka_resp_err_t c = rd_kafka_error_code(e);
        return c == RD_KAFKA_RESP_ERR__FENCED ||
               c == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               c == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH ||
               c == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

/* Sets rt->fatal for t's transaction that failed with e (what). */
static void txn_fatal(cf_task *t, const char *what, const rd_kafka_error_t *e)
{
        cf_runtime *rt = t->rt;
        char txid[256];
        cf_fence_txn_id(rt, t->sub, t->id, txid, sizeof(txid));
        rt->fatal = 1;
        if (fenced(e))
                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                         "%s: fenced: another process has taken the task "
                         "over (transactional.id %s has a newer epoch): its "
                         "transaction is aborted and nothing more is "
                         "written for it here (%s)",
                         t->name, txid, rd_kafka_error_string(e));
        else
                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                         "%s: %s of the transaction of transactional.id %s "
                         "failed: %s",
                         t->name, what, txid, rd_kafka_error_string(e));
}

/* Waits for the delivery reports of t's records (served by polling its
 * producer). */
static void await_reports(cf_task *t, rd_kafka_t *rk)
{
        for (int i = 0; t->ob.inflight > 0 && i < 6000; i++)
                rd_kafka_poll(rk, 10);
}

/* Commits the transaction t has open; an abortable failure aborts it and
 * leaves its records pending for the next commit. */
static void txn_commit(cf_task *t)
{
        rd_kafka_t *rk = cf_fence_producer(t);
        rd_kafka_error_t *e = rd_kafka_commit_transaction(rk, -1);
        await_reports(t, rk);
        if (!e) {
                txn_settle(t, true);
                return;
        }
        if (rd_kafka_error_txn_requires_abort(e)) {
                cf_log(CF_LOG_WARN,
                       "%s: commit of its transaction failed (%s): aborted, "
                       "its records go again with the next commit",
                       t->name, rd_kafka_error_string(e));
                rd_kafka_error_t *a = rd_kafka_abort_transaction(rk, -1);
                await_reports(t, rk);
                if (a) {
                        txn_fatal(t, "abort", a);
                        rd_kafka_error_destroy(a);
                } else {
                        txn_settle(t, false);
                }
        } else {
                txn_fatal(t, "commit", e);
        }
        rd_kafka_error_destroy(e);
}

/* cf_outbox_produce_all with a transaction per task: the task log records
 * and the outputs of a commit are visible together or not at all, so
 * they go out at once. */
static cf_err_t produce_all_txn(cf_runtime *rt)
{
        bool any = false;
        for (int32_t p = 0; p < rt->n_tasks && !rt->fatal; p++) {
                cf_task *t = rt->tasks[p];
                if (!t || !t->ob.n_pending)
                        continue;
                rd_kafka_error_t *e =
                    rd_kafka_begin_transaction(cf_fence_producer(t));
                if (e) {
                        txn_fatal(t, "begin", e);
                        rd_kafka_error_destroy(e);
                        break;
                }
                t->ob.in_txn = true;
                produce(t, true);
                produce(t, false);
                any = true;
        }
        if (any)
                cf_crash_point("produced"); /* handed over, not committed */
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t || !t->ob.in_txn)
                        continue;
                if (!rt->fatal)
                        txn_commit(t);
                t->ob.in_txn = false;
        }
        return rt->fatal ? CF_ERR_KAFKA : CF_OK;
}

/* Waits until no task log entry is in flight (until *stop, or at most
 * max_wait_ms; -1: no limit): CF_OK once none is. */
static cf_err_t await_logs(cf_runtime *rt, volatile sig_atomic_t *stop,
                           int max_wait_ms)
{
        for (int waited = 0; rt->log_inflight > 0 && !rt->fatal && !*stop &&
                             (max_wait_ms < 0 || waited < max_wait_ms);
             waited += 5) {
                /* A flush sends what waits for linger.ms at once: the
                 * commit's outputs wait for these records. */
                rd_kafka_flush(rt->producer, 5);
                (void)cf_outbox_may_write(rt); /* a pause here holds */
        }
        return rt->fatal || rt->log_inflight > 0 ? CF_ERR_KAFKA : CF_OK;
}

cf_err_t cf_outbox_produce_ready(cf_runtime *rt)
{
        if (!rt->outputs_wait || rt->log_inflight > 0)
                return rt->fatal ? CF_ERR_KAFKA : CF_OK;
        /* Not while a pause holds writes, or the assignment is lost: the
         * outputs wait. */
        if (!cf_outbox_may_write(rt))
                return CF_OK;
        rt->outputs_wait = false;
        int64_t before = rt->produced;
        for (int32_t p = 0; p < rt->n_tasks; p++)
                if (rt->tasks[p])
                        produce(rt->tasks[p], false);
        if (rt->produced > before)
                cf_crash_point("produced"); /* handed over, maybe not sent */
        return rt->fatal ? CF_ERR_KAFKA : CF_OK;
}

cf_err_t cf_outbox_produce_all(cf_runtime *rt, volatile sig_atomic_t *stop,
                               int max_wait_ms)
{
        cf_tasklog_poll_trims(rt, 0);
        if (!cf_outbox_may_write(rt))
                return CF_OK;
        if (rt->fencing)
                return produce_all_txn(rt);
        /* The outputs of the last commit first, if they still wait: an
         * output leaves at the latest with the next commit. */
        if (rt->outputs_wait) {
                if (await_logs(rt, stop, -1))
                        return CF_ERR_KAFKA;
                cf_outbox_produce_ready(rt);
        }
        for (int32_t p = 0; p < rt->n_tasks; p++)
                if (rt->tasks[p])
                        produce(rt->tasks[p], true);
        /* An output may reach Kafka only once the task log holds the
         * whole commit that made it (tasklog.h). */
        rt->outputs_wait = true;
        if (max_wait_ms == 0)
                return cf_outbox_produce_ready(rt); /* the main loop goes on */
        if (await_logs(rt, stop, max_wait_ms))
                return CF_ERR_KAFKA; /* stopped: the outputs wait */
        return cf_outbox_produce_ready(rt);
}

/* What a delivery of o at offset does (o is freed); returns its
 * timestamp for a public output, else -1. */
static int64_t delivered(cf_runtime *rt, cf_out *o, int64_t offset)
{
        int64_t ts = -1;
        if (cf_outbox_is_log(o->topic)) {
                if (o->task)
                        cf_tasklog_delivered(o->task, o, offset);
        } else {
                rt->delivered++;
        }
        if (o->topic != CF_OUT_REPARTITION && !cf_outbox_is_log(o->topic))
                ts = o->ts;
        if (o->task)
                cf_outbox_delivered(o->task, o->seq);
        cf_out_free(o);
        return ts;
}

int64_t cf_outbox_on_delivery(cf_runtime *rt, const rd_kafka_message_t *m)
{
        cf_out *o = m->_private;
        if (!o)
                return -1; /* not an output: fence.c's aborted record */
        if (o && o->task && o->task->ob.in_txn) {
                /* Kept until its transaction ends (txn_settle). */
                cf_outbox *ob = &o->task->ob;
                o->offset = m->offset;
                o->err = m->err;
                if (ob->n_txn == ob->cap_txn) {
                        ob->cap_txn = ob->cap_txn ? 2 * ob->cap_txn : 64;
                        ob->txn =
                            cf_realloc(ob->txn, ob->cap_txn * sizeof(*ob->txn));
                }
                ob->txn[ob->n_txn++] = o;
                ob->inflight--;
                if (cf_outbox_is_log(o->topic))
                        rt->log_inflight--;
                return -1;
        }
        if (m->err && o && o->task && never_deliverable(m->err)) {
                /* It would fail the same way after every restart: count
                 * and log it, and let it leave the outbox. */
                cf_outbox_skip(o->task, o->topic, o->partition, o->seq,
                               (size_t)o->klen + o->vlen,
                               rd_kafka_err2str(m->err));
                cf_outbox_delivered(o->task, o->seq);
                o->task->ob.inflight--;
                if (cf_outbox_is_log(o->topic))
                        rt->log_inflight--;
                cf_out_free(o);
                return -1;
        }
        if (m->err) {
                rt->fatal = 1;
                snprintf(rt->fatal_msg, sizeof(rt->fatal_msg),
                         "delivery to %s [%d] failed: %s",
                         rd_kafka_topic_name(m->rkt), (int)m->partition,
                         rd_kafka_err2str(m->err));
                return -1;
        }
        if (!o)
                return -1;
        if (cf_outbox_is_log(o->topic))
                rt->log_inflight--;
        if (o->task)
                o->task->ob.inflight--;
        return delivered(rt, o, m->offset);
}

void cf_outbox_hand_over(cf_task *t, size_t n,
                         void (*deliver)(void *opaque, const cf_out *o),
                         void *opaque)
{
        cf_outbox *ob = &t->ob;
        if (n > ob->n_pending)
                n = ob->n_pending;
        for (size_t i = 0; i < n; i++) {
                cf_out *o = ob->pending[i];
                deliver(opaque, o);
                cf_outbox_delivered(t, o->seq);
                cf_out_free(o);
        }
        ob->n_pending -= n;
        ob->n_committed = ob->n_committed > n ? ob->n_committed - n : 0;
        if (ob->n_pending)
                memmove(ob->pending, ob->pending + n,
                        ob->n_pending * sizeof(cf_out *));
}

/* ---- recovery --------------------------------------------------------------
 */

/* One output partition whose tail tells how far a task's outbox got. */
typedef struct tail_req {
        cf_task *t;
        int32_t out; /* cf_output */
        int64_t end; /* high watermark when asked */
        int64_t seq; /* highest cf.seq of the task found, or -1 */
        bool done;
} tail_req;

#define TAIL_RECORDS 2000 /* how far back a tail is read */

static bool has_pending_for(const cf_task *t, int32_t out)
{
        for (size_t i = 0; i < t->ob.n_pending; i++)
                if (t->ob.pending[i]->topic == out &&
                    t->ob.pending[i]->partition == t->id)
                        return true;
        return false;
}

/* The cf.seq of m when its cf.task header names t, else -1. */
static int64_t seq_of(const rd_kafka_message_t *m, const cf_task *t)
{
        rd_kafka_headers_t *h;
        const void *tv, *sv;
        size_t tl, sl;
        char num[24];
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, "cf.task", &tv, &tl) ||
            rd_kafka_header_get_last(h, "cf.seq", &sv, &sl) ||
            tl != strlen(t->name) || memcmp(tv, t->name, tl) ||
            sl >= sizeof(num))
                return -1;
        memcpy(num, sv, sl);
        num[sl] = '\0';
        return strtoll(num, NULL, 10);
}

/* Finds, for each request, the highest cf.seq of its task in the tail of
 * its partition (req[i].seq). */
static cf_err_t read_tails(cf_runtime *rt, tail_req *req, size_t n,
                           volatile sig_atomic_t *stop, char *errstr,
                           size_t errstr_size)
{
        size_t waiting = 0;
        cf_err_t err = CF_ERR_KAFKA;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_conf_t *conf = cf_kafka_client_conf(rt->cfg, CF_KAFKA_CONSUMER,
                                                     errstr, errstr_size);
        if (!conf ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-tail", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            /* The end is found by a fetch that finds nothing more, which
             * the broker holds up to this long. */
            cf_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr,
                              errstr_size))
                goto out;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                goto out;
        l = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++) {
                int64_t lo, hi;
                const char *topic = rt->out_topic[req[i].out];
                if (cf_kafka_watermarks(rk, topic, req[i].t->id, stop, &lo, &hi,
                                        errstr, errstr_size))
                        goto out;
                req[i].end = hi;
                if (hi <= lo) {
                        req[i].done = true;
                        continue;
                }
                rd_kafka_topic_partition_list_add(l, topic, req[i].t->id)
                    ->offset = hi - lo > TAIL_RECORDS ? hi - TAIL_RECORDS : lo;
                waiting++;
        }
        if (waiting && rd_kafka_assign(rk, l)) {
                snprintf(errstr, errstr_size, "assign of the tails");
                goto out;
        }
        for (int idle = 0; waiting && idle < 300;) {
                (void)cf_outbox_may_write(rt); /* not a standstill */
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                /* The end: the last record, or the partition's end when
                 * the last offset is not a record (the marker that ends a
                 * transaction). */
                bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
                for (size_t i = 0; (!m->err || eof) && i < n; i++) {
                        tail_req *q = &req[i];
                        if (q->done || m->partition != q->t->id ||
                            strcmp(rd_kafka_topic_name(m->rkt),
                                   rt->out_topic[q->out]))
                                continue;
                        int64_t seq = eof ? -1 : seq_of(m, q->t);
                        if (seq > q->seq)
                                q->seq = seq;
                        if (eof || m->offset + 1 >= q->end) {
                                q->done = true;
                                waiting--;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        if (waiting) {
                snprintf(errstr, errstr_size,
                         "output tails not read within 30 s");
                goto out;
        }
        err = CF_OK;
out:
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        return err;
}

/*
 * Single-writer recovery. A task's outbox may hold entries that were
 * delivered before a crash, after the commit that wrote them but before the
 * commit that would have removed them. Each public output partition has one
 * writer, its task (rating task p: billing.charge-records p and
 * billing.rejected p; billing task q: billing.statements q), and records
 * reach a partition in sequence order (the producer is idempotent with the
 * gapless guarantee and no delivery timeout, so a partition holds a prefix
 * of what was sent to it), so the highest cf.seq of the task in the
 * partition's tail says which of its entries are there already.
 */
cf_err_t cf_outbox_recover(cf_runtime *rt, volatile sig_atomic_t *stop,
                           char *errstr, size_t errstr_size)
{
        tail_req *req = cf_calloc((size_t)rt->n_tasks * 3 + 1, sizeof(*req));
        size_t n = 0;
        /* Task log entries of commits the log holds whole (the task was
         * synced with its log: cf_task.log_done_n) were delivered: no tail
         * of a task log is read for them. */
        for (int32_t i = 0; rt->exactly_once && i < rt->n_tasks; i++) {
                cf_task *t = rt->tasks[i];
                if (!t || t->log_done_n < 0)
                        continue;
                cf_outbox *ob = &t->ob;
                size_t kept = 0;
                for (size_t k = 0; k < ob->n_pending; k++) {
                        cf_out *o = ob->pending[k];
                        cf_tasklog_pos pos;
                        bool full;
                        int64_t ci, ck;
                        const uint8_t *ops;
                        size_t len;
                        if (cf_outbox_is_log(o->topic) &&
                            cf_tasklog_parse(o->value, o->vlen, &pos, &full,
                                             &ci, &ck, &ops, &len) &&
                            pos.n <= t->log_done_n) {
                                cf_outbox_delivered(t, o->seq);
                                cf_out_free(o);
                        } else {
                                ob->pending[kept++] = o;
                        }
                }
                ob->n_pending = kept;
        }
        for (int32_t i = 0; rt->exactly_once && i < rt->n_tasks; i++) {
                cf_task *t = rt->tasks[i];
                if (!t || !t->ob.n_pending)
                        continue;
                int32_t outs[3] = { CF_OUT_CHARGE, CF_OUT_REJECTED,
                                    CF_OUT_RATING_LOG };
                int no = 3;
                if (t->sub == 'B') {
                        outs[0] = CF_OUT_STATEMENT;
                        outs[1] = CF_OUT_BILLING_LOG;
                        no = 2;
                }
                for (int k = 0; k < no; k++)
                        if (has_pending_for(t, outs[k]))
                                req[n++] =
                                    (tail_req){ t, outs[k], 0, -1, false };
        }
        if (n && read_tails(rt, req, n, stop, errstr, errstr_size)) {
                /* Whether they were delivered is unknown: none is produced
                 * by this process (they stay in the state's outbox for the
                 * next start). */
                for (int32_t p = 0; p < rt->n_tasks; p++) {
                        cf_task *t = rt->tasks[p];
                        for (size_t k = 0; t && k < t->ob.n_pending; k++)
                                cf_out_free(t->ob.pending[k]);
                        if (t)
                                t->ob.n_pending = 0;
                }
                free(req);
                return CF_ERR_KAFKA;
        }
        /* Drop what is delivered already. */
        for (size_t i = 0; i < n; i++) {
                cf_task *t = req[i].t;
                cf_outbox *ob = &t->ob;
                size_t kept = 0, dropped = 0;
                for (size_t k = 0; k < ob->n_pending; k++) {
                        cf_out *o = ob->pending[k];
                        if (o->topic == req[i].out && o->partition == t->id &&
                            o->seq <= req[i].seq) {
                                cf_outbox_delivered(t, o->seq);
                                cf_out_free(o);
                                dropped++;
                        } else {
                                ob->pending[kept++] = o;
                        }
                }
                ob->n_pending = kept;
                if (dropped)
                        cf_log(CF_LOG_INFO,
                               "%s: %zu outbox entries for %s were "
                               "delivered before the restart",
                               t->name, dropped, rt->out_topic[req[i].out]);
                size_t again = 0;
                for (size_t k = 0; k < ob->n_pending; k++)
                        again += ob->pending[k]->topic == req[i].out;
                if (again)
                        cf_log(CF_LOG_INFO,
                               "%s: %zu outbox entries for %s [%d] not in "
                               "its tail (last seq of the task there %" PRId64
                               ", end offset %" PRId64 "): produced now",
                               t->name, again, rt->out_topic[req[i].out],
                               (int)t->id, req[i].seq, req[i].end);
        }
        free(req);
        for (int32_t p = 0; p < rt->n_tasks; p++)
                if (rt->tasks[p])
                        rt->tasks[p]->ob.n_committed =
                            rt->tasks[p]->ob.n_pending;
        if (cf_outbox_produce_all(rt, stop, -1)) {
                snprintf(errstr, errstr_size, "%s",
                         rt->fatal ? rt->fatal_msg : "stopped");
                return CF_ERR_KAFKA;
        }
        return CF_OK;
}
