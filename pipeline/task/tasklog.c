/*
 * tasklog.c: the task log, a task's commits in Kafka, and the restore of a
 * task from it (see tasklog.h).
 */
#include "tasklog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hmap.h"
#include "kafka.h"
#include "log.h"
#include "task.h"
#include "wire.h"

#define VERSION      1    /* a commit's operations */
#define VERSION_FULL 2    /* the same, starting from nothing (whole_state) */
#define TAIL_RECORDS 2000 /* records read back to find the last commit */
/* Bytes of commits a replay gathers before writing them as one batch
 * (cf_logbatch: what a later commit replaces is never written). In the
 * city preset's logs (an outbox entry deleted a commit or two after its
 * put, META 'l' and 'q' and sessions rewritten at every commit) groups of
 * 4 MiB leave out 88% of the bytes read (whole logs would leave out 94%),
 * in memory used again from group to group: with 32 MiB the first touch
 * of new pages made a 25 MB log's replay about twice as slow (perf: page
 * faults under the copy). */
#define RESTORE_GROUP_BYTES ((size_t)4 << 20)
/* An assembled commit bigger than this (a whole state) is given back
 * once gathered, so that it is not held twice. */
#define RESTORE_KEEP_BYTES ((size_t)64 << 20)

static int32_t log_topic(const cf_task *t)
{
        return t->sub == 'A' ? CF_OUT_RATING_LOG : CF_OUT_BILLING_LOG;
}

static void meta_key(cf_key *k, uint16_t state_id, char what)
{
        cf_key_init(k, state_id);
        cf_key_u8(k, (uint8_t)what);
}

void cf_tasklog_begin(cf_task *t, cf_batch *b)
{
        if (!t->rt->task_log)
                return;
        t->log_ops.len = 0;
        cf_batch_tee(b, &t->log_ops);
}

static int put_key(void *opaque, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
        void **a = opaque;
        /* META 'r' says how this directory's copy relates to the log: it
         * is this directory's own, never part of the task's state. */
        if (*(cf_col_t *)a[1] == CF_COL_META && klen == 3 && key[2] == 'r')
                return 0;
        cf_batch_put(a[0], *(cf_col_t *)a[1], key, klen, val, vlen);
        return 0;
}

/* Puts before the commit's captured operations (t->log_ops): the removal
 * of every key of the task, then every key it has in the state directory
 * (as of before this commit): applied in order, they give the state after
 * the commit from nothing. */
static bool whole_state(cf_task *t)
{
        bool ok = true;
        cf_buf all;
        cf_buf_init(&all);
        cf_batch *tmp = cf_batch_new(t->rt->st);
        cf_batch_tee(tmp, &all);
        uint8_t lo[2] = { (uint8_t)(t->state_id >> 8), (uint8_t)t->state_id };
        uint8_t hi[2] = { (uint8_t)((t->state_id + 1) >> 8),
                          (uint8_t)(t->state_id + 1) };
        char errstr[256];
        for (int c = 0; c < CF_COL__CNT; c++) {
                if (c == CF_COL_TABLE)
                        continue; /* the tables are every process's own */
                cf_col_t col = (cf_col_t)c;
                void *a[2] = { tmp, &col };
                cf_batch_delete_range(tmp, col, lo, 2, hi, 2);
                if (ok && cf_state_scan(t->rt->st, col, lo, 2, put_key, a,
                                        errstr, sizeof(errstr))) {
                        cf_log(CF_LOG_ERROR,
                               "%s: whole state for the task log: %s; tried "
                               "again at the next commit",
                               t->name, errstr);
                        ok = false;
                }
        }
        cf_batch_destroy(tmp);
        if (ok) {
                cf_buf_put(&all, t->log_ops.p, t->log_ops.len);
                cf_buf_free(&t->log_ops);
                t->log_ops = all;
        } else {
                cf_buf_free(&all);
        }
        return ok;
}

void cf_tasklog_end(cf_task *t, cf_batch *b)
{
        cf_runtime *rt = t->rt;
        cf_key k;
        cf_buf v;
        size_t nrec = 0, chunk = 0;
        uint64_t h = 0;
        cf_tasklog_pos next = t->log_pos;
        bool full = false;
        cf_buf_init(&v);
        if (rt->task_log) {
                /* Time for a whole state: what a restore would read since
                 * the last one outgrew the configured size and twice that
                 * state (so the log stays within about three states). */
                int64_t snap = rt->cfg->task_log_snapshot_bytes;
                if (snap > 0 && t->log_since_full >= snap &&
                    t->log_since_full >= 2 * t->log_full_bytes)
                        t->log_full = true;
                h = cf_fnv1a64(CF_FNV1A64_BASIS, t->log_ops.p, t->log_ops.len);
                if (t->log_full) {
                        /* Written whatever it holds; not at all when the
                         * state could not be read (the next commit tries
                         * again). */
                        full = whole_state(t);
                        h = full ? ~t->log_hash : t->log_hash;
                }
                if (h != t->log_hash) {
                        next.n++;
                        cf_put_varint(&v, next.epoch);
                        cf_put_varint(&v, next.n);
                        /* When the next whole state is due (as of before
                         * this commit), across restarts. */
                        cf_put_varint(&v, t->log_since_full);
                        cf_put_varint(&v, t->log_full_bytes);
                        meta_key(&k, t->state_id, 'l');
                        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
                        chunk = CF_TASKLOG_CHUNK;
                        size_t limit = rt->max_out_bytes[log_topic(t)];
                        if (limit && limit < chunk + 4096)
                                chunk = limit > 8192 ? limit - 4096 : 4096;
                        /* Room for the 'q' entry added below. */
                        nrec = (t->log_ops.len + 64 + chunk - 1) / chunk;
                }
        }
        /* The next output sequence number counts the log entries queued
         * below: restored from this commit, it must not reuse theirs. */
        v.len = 0;
        cf_put_varint(&v, t->ob.next_seq + (int64_t)nrec);
        cf_put_varint(&v, t->wm_sent);
        meta_key(&k, t->state_id, 'q');
        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
        cf_batch_tee(b, NULL);
        if (nrec) {
                size_t first = t->ob.n_pending, len = t->log_ops.len;
                size_t per = (len + nrec - 1) / nrec;
                for (size_t i = 0; i < nrec; i++) {
                        size_t off = i * per;
                        size_t n = off >= len        ? 0
                                   : len - off < per ? len - off
                                                     : per;
                        v.len = 0;
                        cf_buf_putc(&v, full ? VERSION_FULL : VERSION);
                        cf_put_varint(&v, next.epoch);
                        cf_put_varint(&v, next.n);
                        cf_put_varint(&v, (int64_t)i);
                        cf_put_varint(&v, (int64_t)nrec);
                        cf_buf_put(&v, t->log_ops.p + off, n);
                        size_t at = t->ob.n_pending;
                        cf_outbox_emit(t, log_topic(t), t->id, t->name,
                                       strlen(t->name), v.p, v.len);
                        if (full && t->ob.n_pending > at)
                                t->ob.pending[at]->log_mark =
                                    (uint8_t)((i == 0 ? CF_OUT_LOG_FIRST : 0) |
                                              (i + 1 == nrec ? CF_OUT_LOG_LAST
                                                             : 0));
                }
                if (full) {
                        t->log_full_bytes = (int64_t)len;
                        t->log_since_full = 0;
                } else {
                        t->log_since_full += (int64_t)len;
                }
                cf_outbox_commit_from(t, b, first);
                t->log_pos = next;
                t->log_hash = h;
                t->log_full = false;
        }
        cf_buf_free(&v);
}

void cf_tasklog_delivered(cf_task *t, const cf_out *o, int64_t offset)
{
        cf_runtime *rt = t->rt;
        cf_tasklog_pos pos;
        int64_t i, k;
        bool full;
        const uint8_t *ops;
        size_t len;
        if (cf_tasklog_parse(o->value, o->vlen, &pos, &full, &i, &k, &ops,
                             &len) &&
            i + 1 == k) {
                t->log_end_pos = pos;
                t->log_end_offset = offset + 1;
        }
        if (o->log_mark & CF_OUT_LOG_FIRST)
                t->log_trim_from = offset;
        if (!(o->log_mark & CF_OUT_LOG_LAST) || t->log_trim_from <= 0 ||
            rt->trim_warned)
                return;
        /* Only while the task is surely this process's: a whole state
         * from a writer that lost the task may follow the new owner's
         * commits, and the records before it are then the new owner's. */
        if (!cf_outbox_may_write(rt)) {
                t->log_trim_from = -1;
                return;
        }
        /* The whole state is in the log: what comes before it is never
         * read again. */
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, rt->out_topic[o->topic],
                                          o->partition)
            ->offset = t->log_trim_from;
        rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
        if (!rt->trim_q)
                rt->trim_q = rd_kafka_queue_new(rt->producer);
        rd_kafka_DeleteRecords(rt->producer, &del, 1, NULL, rt->trim_q);
        rt->trims_inflight++;
        rd_kafka_DeleteRecords_destroy(del);
        rd_kafka_topic_partition_list_destroy(l);
        t->log_trim_from = -1;
}

void cf_tasklog_poll_trims(cf_runtime *rt, int wait_ms)
{
        rd_kafka_event_t *ev;
        for (int waited = 0; rt->trim_q;) {
                ev = rd_kafka_queue_poll(rt->trim_q, wait_ms > 0 ? 100 : 0);
                if (!ev) {
                        waited += 100;
                        if (wait_ms <= 0 || rt->trims_inflight <= 0 ||
                            waited >= wait_ms)
                                break;
                        continue;
                }
                rt->trims_inflight--;
                const char *why = NULL;
                char buf[256];
                if (rd_kafka_event_error(ev)) {
                        why = rd_kafka_event_error_string(ev);
                } else {
                        const rd_kafka_DeleteRecords_result_t *res =
                            rd_kafka_event_DeleteRecords_result(ev);
                        const rd_kafka_topic_partition_list_t *l =
                            res ? rd_kafka_DeleteRecords_result_offsets(res)
                                : NULL;
                        for (int i = 0; l && i < l->cnt && !why; i++)
                                if (l->elems[i].err) {
                                        snprintf(
                                            buf, sizeof(buf), "%s [%d]: %s",
                                            l->elems[i].topic,
                                            (int)l->elems[i].partition,
                                            rd_kafka_err2str(l->elems[i].err));
                                        why = buf;
                                }
                }
                if (why && !rt->trim_warned) {
                        cf_log(CF_LOG_WARN,
                               "task log: the broker did not delete the "
                               "records before a whole state (%s): the task "
                               "logs keep growing, and a restore reads them "
                               "whole (said once)",
                               why);
                        rt->trim_warned = true;
                }
                rd_kafka_event_destroy(ev);
        }
}

cf_err_t cf_tasklog_load(cf_task *t, char *errstr, size_t errstr_size)
{
        cf_key k;
        cf_buf v;
        cf_buf_init(&v);
        meta_key(&k, t->state_id, 'l');
        cf_err_t err = cf_state_get(t->rt->st, CF_COL_META, k.b, k.len, &v,
                                    errstr, errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                t->log_pos.epoch = cf_get_varint(&r);
                t->log_pos.n = cf_get_varint(&r);
                if (r.ok && r.p != r.end) {
                        t->log_since_full = cf_get_varint(&r);
                        t->log_full_bytes = cf_get_varint(&r);
                }
                if (!r.ok) {
                        snprintf(errstr, errstr_size,
                                 "task %s: stored log position is corrupt",
                                 t->name);
                        err = CF_ERR_STATE;
                }
        } else if (err == CF_ERR_NOT_FOUND) {
                err = CF_OK;
        }
        cf_buf_free(&v);
        return err;
}

bool cf_tasklog_parse(const uint8_t *p, size_t n, cf_tasklog_pos *pos,
                      bool *full, int64_t *i, int64_t *k, const uint8_t **ops,
                      size_t *ops_len)
{
        cf_wrd r;
        if (!p || n < 1 || (p[0] != VERSION && p[0] != VERSION_FULL))
                return false;
        *full = p[0] == VERSION_FULL;
        cf_wrd_init(&r, p + 1, n - 1);
        pos->epoch = cf_get_varint(&r);
        pos->n = cf_get_varint(&r);
        *i = cf_get_varint(&r);
        *k = cf_get_varint(&r);
        if (!r.ok || *k < 1 || *i < 0 || *i >= *k || pos->n < 1)
                return false;
        *ops = r.p;
        *ops_len = (size_t)(r.end - r.p);
        return true;
}

/* ---- reading the log -------------------------------------------------------
 */

/* Whole commits, from log records in order. */
typedef struct assembler {
        cf_tasklog_pos pos; /* of the commit being assembled */
        bool full;          /* ... which starts from nothing */
        int64_t next_i, k;  /* next chunk expected, of k; k 0: none */
        cf_buf ops;
        int64_t max_epoch; /* over every record seen */
} assembler;

/* Feeds one record; true when it completes a commit (its operations in
 * a->ops, its position in a->pos). */
static bool assemble(assembler *a, const uint8_t *p, size_t n)
{
        cf_tasklog_pos pos;
        int64_t i, k;
        bool full;
        const uint8_t *ops;
        size_t len;
        if (!cf_tasklog_parse(p, n, &pos, &full, &i, &k, &ops, &len))
                return false;
        if (pos.epoch > a->max_epoch)
                a->max_epoch = pos.epoch;
        /* A chunk 0 starts a commit; any other chunk must continue the one
         * being assembled, else what was assembled is a torn commit (its
         * writer stopped half-way) and is dropped. */
        if (i == 0) {
                a->pos = pos;
                a->full = full;
                a->k = k;
                a->ops.len = 0;
        } else if (a->k != k || a->next_i != i || a->pos.epoch != pos.epoch ||
                   a->pos.n != pos.n) {
                a->k = 0;
                return false;
        }
        cf_buf_put(&a->ops, ops, len);
        a->next_i = i + 1;
        if (a->next_i < k)
                return false;
        a->k = 0;
        return true;
}

typedef int(record_fn)(void *opaque, const rd_kafka_message_t *m);

/* Reads partition of topic to its end as of now, calling fn for each
 * record (fn returns non-zero to stop): from offset `from` when it is >= 0
 * (CF_ERR_NOT_FOUND when the log no longer, or not yet, holds it), else
 * the last `back` records (-1: all). */
static cf_err_t read_partition(cf_runtime *rt, const char *topic,
                               int32_t partition, int64_t back, int64_t from,
                               volatile sig_atomic_t *stop, record_fn *fn,
                               void *opaque, char *errstr, size_t errstr_size)
{
        cf_err_t err = CF_ERR_KAFKA;
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_conf_t *conf = cf_kafka_client_conf(rt->cfg, CF_KAFKA_CONSUMER,
                                                     errstr, errstr_size);
        if (!conf ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-tasklog", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            /* The end is found by a fetch that finds nothing more, which
             * the broker holds up to this long. */
            cf_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr,
                              errstr_size))
                return CF_ERR_CONFIG;
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                return CF_ERR_KAFKA;
        int64_t lo = 0, hi = 0;
        if (cf_kafka_watermarks(rk, topic, partition, stop, &lo, &hi, errstr,
                                errstr_size))
                goto out;
        if (from >= 0 && (from < lo || from > hi)) {
                snprintf(errstr, errstr_size,
                         "%s [%d] holds offsets %" PRId64 " to %" PRId64
                         ", not %" PRId64,
                         topic, (int)partition, lo, hi, from);
                err = CF_ERR_NOT_FOUND;
                goto out;
        }
        if (hi <= lo || (from >= 0 && from == hi)) {
                err = CF_OK;
                goto out;
        }
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset =
            from >= 0                     ? from
            : back >= 0 && hi - lo > back ? hi - back
                                          : lo;
        if (rd_kafka_assign(rk, l)) {
                snprintf(errstr, errstr_size, "assign of %s [%d]", topic,
                         (int)partition);
                goto out;
        }
        for (int idle = 0; idle < 300 && !*stop;) {
                /* A long restore is not a standstill (outbox.h). */
                (void)cf_outbox_may_write(rt);
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* The end, where the last offset is not a record
                         * (the marker that ends a transaction). */
                        rd_kafka_message_destroy(m);
                        err = CF_OK;
                        goto out;
                }
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                int stopped = fn(opaque, m);
                bool end = m->offset + 1 >= hi;
                rd_kafka_message_destroy(m);
                if (stopped || end) {
                        err = CF_OK;
                        goto out;
                }
        }
        snprintf(errstr, errstr_size,
                 "%s [%d]: not read to %" PRId64 " within 30 s", topic,
                 (int)partition, hi);
out:
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return err;
}

/* ---- deciding and restoring ------------------------------------------------
 */

typedef struct tail_scan {
        assembler a;
        cf_tasklog_pos last; /* last whole commit */
        int64_t records;
} tail_scan;

static int on_tail(void *opaque, const rd_kafka_message_t *m)
{
        tail_scan *ts = opaque;
        ts->records++;
        /* As a restore would apply them: never a commit of an older
         * epoch after one of a newer (a writer that had lost the task,
         * whose records landed late). */
        if (assemble(&ts->a, m->payload, m->len) &&
            ts->a.pos.epoch >= ts->last.epoch)
                ts->last = ts->a.pos;
        return 0;
}

/* META 'r': how the directory's copy of a task stands to the task's log,
 * valid while META 'l' is still lpos (the task's next commit here changes
 * 'l', and so ends it): the copy is the log's commits applied up to
 * commit `applied`, whose last record is just before `offset`; max_epoch
 * is the highest epoch of a record before that, bytes what was read from
 * the log's start. standby: it was applied by a standby copy (this process
 * wrote none of it). A later catch-up applies only what follows offset. */
typedef struct replica {
        cf_tasklog_pos lpos, applied;
        int64_t offset, max_epoch, bytes;
        bool standby;
} replica;

static void replica_put(cf_batch *b, uint16_t state_id, const replica *rp)
{
        cf_key k;
        cf_buf v;
        cf_buf_init(&v);
        cf_put_varint(&v, rp->lpos.epoch);
        cf_put_varint(&v, rp->lpos.n);
        cf_put_varint(&v, rp->applied.epoch);
        cf_put_varint(&v, rp->applied.n);
        cf_put_varint(&v, rp->offset);
        cf_put_varint(&v, rp->max_epoch);
        cf_put_varint(&v, rp->bytes);
        cf_put_varint(&v, rp->standby ? 1 : 0);
        meta_key(&k, state_id, 'r');
        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
        cf_buf_free(&v);
}

/* META 'l' (*local, {0, 0} when absent) and, when it holds and goes with
 * that 'l', META 'r' (*valid). */
static cf_err_t local_get(cf_runtime *rt, uint16_t state_id,
                          cf_tasklog_pos *local, replica *rp, bool *valid,
                          char *errstr, size_t errstr_size)
{
        cf_key k;
        cf_buf v;
        cf_wrd r;
        *local = (cf_tasklog_pos){ 0, 0 };
        *valid = false;
        cf_buf_init(&v);
        meta_key(&k, state_id, 'l');
        cf_err_t err = cf_state_get(rt->st, CF_COL_META, k.b, k.len, &v, errstr,
                                    errstr_size);
        if (err == CF_OK) {
                cf_wrd_init(&r, v.p, v.len);
                local->epoch = cf_get_varint(&r);
                local->n = cf_get_varint(&r);
        } else if (err != CF_ERR_NOT_FOUND) {
                cf_buf_free(&v);
                return err;
        }
        v.len = 0;
        meta_key(&k, state_id, 'r');
        err = cf_state_get(rt->st, CF_COL_META, k.b, k.len, &v, errstr,
                           errstr_size);
        if (err == CF_OK) {
                cf_wrd_init(&r, v.p, v.len);
                rp->lpos.epoch = cf_get_varint(&r);
                rp->lpos.n = cf_get_varint(&r);
                rp->applied.epoch = cf_get_varint(&r);
                rp->applied.n = cf_get_varint(&r);
                rp->offset = cf_get_varint(&r);
                rp->max_epoch = cf_get_varint(&r);
                rp->bytes = cf_get_varint(&r);
                rp->standby = cf_get_varint(&r) == 1;
                *valid = r.ok && rp->lpos.epoch == local->epoch &&
                         rp->lpos.n == local->n && local->n > 0 &&
                         rp->offset > 0;
        } else if (err != CF_ERR_NOT_FOUND) {
                cf_buf_free(&v);
                return err;
        }
        cf_buf_free(&v);
        return CF_OK;
}

typedef struct restore {
        cf_runtime *rt;
        assembler a;
        cf_batch *b;
        /* The commits applied but not yet written (none for a standby
         * copy, which writes each one with its META 'r'): a restore that
         * is cut short leaves the directory at an earlier commit (META
         * 'l' is in every commit), and is done again from the log. */
        cf_logbatch *g;
        cf_tasklog_pos applied;
        int64_t commits, skipped, repeated, bytes;
        int64_t next_offset; /* just after the last commit applied */
        /* A standby copy: each commit's batch also gets META 'r'. */
        bool standby;
        uint16_t state_id;
        cf_err_t err;
        char *errstr;
        size_t errstr_size;
} restore;

/* A restore of task state_id from nothing applied, its errors to errstr. */
static void restore_init(restore *r, cf_runtime *rt, uint16_t state_id,
                         char *errstr, size_t errstr_size)
{
        memset(r, 0, sizeof(*r));
        r->rt = rt;
        r->b = cf_batch_new(rt->st);
        r->g = cf_logbatch_new();
        r->errstr = errstr;
        r->errstr_size = errstr_size;
        r->state_id = state_id;
        cf_buf_init(&r->a.ops);
}

static void restore_free(restore *r)
{
        cf_batch_destroy(r->b);
        cf_logbatch_destroy(r->g);
        cf_buf_free(&r->a.ops);
}

/* Writes the commits gathered, without sync and without their META 'l'
 * (removed): until the restore's end writes it (write_pos, synced, which
 * also makes these durable), the directory holds no commit of the log, so
 * a process that dies before then replays the log again, never taking a
 * restore cut short, or one that did not get to its new epoch, for the
 * log's last commit. Sets r->err. */
static cf_err_t restore_flush(restore *r)
{
        if (!r->err && cf_logbatch_bytes(r->g)) {
                cf_key k;
                cf_batch_clear(r->b);
                cf_logbatch_move(r->g, r->b);
                meta_key(&k, r->state_id, 'l');
                cf_batch_delete(r->b, CF_COL_META, k.b, k.len);
                r->err = cf_state_write(r->rt->st, r->b, false, r->errstr,
                                        r->errstr_size);
        }
        return r->err;
}

static int on_restore(void *opaque, const rd_kafka_message_t *m)
{
        restore *r = opaque;
        r->bytes += (int64_t)m->len;
        if (!assemble(&r->a, m->payload, m->len))
                return 0;
        /* A commit of an older epoch after one of a newer epoch is a
         * writer that had lost the task: never applied. */
        if (r->a.pos.epoch < r->applied.epoch) {
                r->skipped++;
                return 0;
        }
        /* The same commit again (its writer produced its records a second
         * time: a retry the broker did not recognise, or a restart that
         * did not find them in the log's tail): a writer numbers each of
         * its commits once, so the records are the same; applied once. */
        if (!r->a.full && r->a.pos.epoch == r->applied.epoch &&
            r->a.pos.n <= r->applied.n) {
                r->repeated++;
                return 0;
        }
        /* A commit holds changes to the one before it: without that one
         * (never the case for a log this code wrote) it cannot be applied,
         * and neither can anything after it. A whole-state commit can. */
        if (!r->a.full && r->a.pos.n != r->applied.n + 1) {
                snprintf(r->errstr, r->errstr_size,
                         "task log: commit %" PRId64 " of epoch %" PRId64
                         " (ending at offset %" PRId64
                         ") follows commit %" PRId64 " of epoch %" PRId64
                         ": a gap, not restored",
                         r->a.pos.n, r->a.pos.epoch, m->offset, r->applied.n,
                         r->applied.epoch);
                r->err = CF_ERR_STATE;
                return 1;
        }
        /* Gathered (a failed restore writes none of what it gathered:
         * done again, it replays the log). */
        if ((r->err = cf_logbatch_add(r->g, r->a.ops.p, r->a.ops.len, r->errstr,
                                      r->errstr_size)))
                return 1;
        if (r->a.ops.cap > RESTORE_KEEP_BYTES) {
                cf_buf_free(&r->a.ops);
                cf_buf_init(&r->a.ops);
        }
        if (r->standby) {
                cf_batch_clear(r->b);
                cf_logbatch_move(r->g, r->b);
                replica rp = { r->a.pos,       r->a.pos, m->offset + 1,
                               r->a.max_epoch, r->bytes, true };
                replica_put(r->b, r->state_id, &rp);
                if ((r->err = cf_state_write(r->rt->st, r->b, false, r->errstr,
                                             r->errstr_size)))
                        return 1;
        }
        r->applied = r->a.pos;
        r->next_offset = m->offset + 1;
        r->commits++;
        if (cf_logbatch_bytes(r->g) >= RESTORE_GROUP_BYTES && restore_flush(r))
                return 1;
        return 0;
}

/* Scan callback: sets *(bool *)opaque when the outbox entry is the first
 * record of a task's first commit. */
static int has_first_commit(void *opaque, const uint8_t *key, size_t klen,
                            const uint8_t *val, size_t vlen)
{
        (void)key;
        (void)klen;
        cf_out *o = cf_out_decode(val, vlen);
        cf_tasklog_pos pos;
        bool full;
        int64_t i, k;
        const uint8_t *ops;
        size_t len;
        if (o && cf_outbox_is_log(o->topic) &&
            cf_tasklog_parse(o->value, o->vlen, &pos, &full, &i, &k, &ops,
                             &len) &&
            pos.n == 1 && i == 0)
                *(bool *)opaque = true;
        cf_out_free(o);
        return *(bool *)opaque;
}

/* since_full: bytes of log a restore would read (for when the next whole
 * state is due). */
static cf_err_t write_pos(cf_runtime *rt, uint16_t state_id, cf_tasklog_pos pos,
                          int64_t since_full, const replica *rp, char *errstr,
                          size_t errstr_size)
{
        cf_key k;
        cf_buf v;
        cf_buf_init(&v);
        cf_put_varint(&v, pos.epoch);
        cf_put_varint(&v, pos.n);
        cf_put_varint(&v, since_full);
        cf_put_varint(&v, 0);
        meta_key(&k, state_id, 'l');
        cf_batch *b = cf_batch_new(rt->st);
        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
        if (rp)
                replica_put(b, state_id, rp);
        cf_err_t err = cf_state_write(rt->st, b, true, errstr, errstr_size);
        cf_batch_destroy(b);
        cf_buf_free(&v);
        return err;
}

/* The directory's copy goes with META 'r' (rp): applies the log's commits
 * after rp->offset to it, then goes on with a new epoch. CF_OK when done;
 * any other answer leaves the copy for a full replay (errstr says why). */
static cf_err_t catch_up(cf_runtime *rt, const char *topic, int32_t id,
                         uint16_t state_id, const char *name, const replica *rp,
                         volatile sig_atomic_t *stop, int64_t *done_n,
                         char *errstr, size_t errstr_size)
{
        int64_t t0 = cf_mono_ms();
        restore r;
        restore_init(&r, rt, state_id, errstr, errstr_size);
        r.applied = rp->applied;
        r.a.max_epoch = rp->max_epoch;
        r.bytes = rp->bytes;
        r.next_offset = rp->offset;
        cf_err_t err = read_partition(rt, topic, id, -1, rp->offset, stop,
                                      on_restore, &r, errstr, errstr_size);
        if (!err)
                err = restore_flush(&r);
        restore_free(&r);
        if (err)
                return err;
        *done_n = r.applied.n;
        /* This process's own commits, and nothing after them: it goes on
         * as their writer (as when the log's last commit is the
         * directory's), so that its next commit, if it waits in the outbox
         * after a crash, is still found to be its own. */
        if (!rp->standby && r.bytes == rp->bytes &&
            rp->applied.epoch == rp->lpos.epoch && rp->applied.n == rp->lpos.n)
                return CF_OK;
        cf_tasklog_pos next = { r.a.max_epoch + 1, r.applied.n };
        replica now = { next,          r.applied, r.next_offset,
                        r.a.max_epoch, r.bytes,   false };
        if ((err = write_pos(rt, state_id, next, r.bytes, &now, errstr,
                             errstr_size)))
                return err;
        cf_log(CF_LOG_INFO,
               "%s: %s at commit %" PRId64 " of epoch %" PRId64 " (%" PRId64
               " later commits applied from %s [%d] offset %" PRId64
               ", %" PRId64 " from an earlier writer skipped, %" PRId64
               " repeated; the copy had commit %" PRId64 " of epoch %" PRId64
               ") in %" PRId64 " ms; writes with epoch %" PRId64,
               name,
               rp->standby ? "taken over from the standby copy"
                           : "caught up from this directory's copy",
               r.applied.n, r.applied.epoch, r.commits, topic, (int)id,
               rp->offset, r.skipped, r.repeated, rp->applied.n,
               rp->applied.epoch, cf_mono_ms() - t0, next.epoch);
        return CF_OK;
}

cf_err_t cf_tasklog_sync(cf_runtime *rt, char sub, int32_t id,
                         volatile sig_atomic_t *stop, bool *restored,
                         bool *full, int64_t *done_n, char *errstr,
                         size_t errstr_size)
{
        uint16_t state_id = cf_task_state_id(sub, id);
        const char *topic =
            rt->out_topic[sub == 'A' ? CF_OUT_RATING_LOG : CF_OUT_BILLING_LOG];
        char name[16];
        snprintf(name, sizeof(name), "%c-%d", sub, (int)id);
        *restored = false;
        *full = false;
        *done_n = -1;
        cf_key k;
        /* What the state directory holds. */
        cf_tasklog_pos local;
        replica rp;
        bool valid;
        cf_err_t err =
            local_get(rt, state_id, &local, &rp, &valid, errstr, errstr_size);
        if (err)
                return err;
        /* A copy that is the log applied up to a known offset (a standby
         * copy; this directory's last restore or catch-up with nothing
         * written since; or what it left when it let the task go with all
         * its commits delivered, cf_tasklog_leave): only what follows that
         * offset is applied, and the task goes on with a new epoch (never
         * as the writer of those commits: a standby copy's last commit is
         * never taken for this process's own), unless nothing follows the
         * process's own last commit. When that does not work, a full
         * replay. The log's tail is not read. */
        if (valid) {
                char why[256];
                err = catch_up(rt, topic, id, state_id, name, &rp, stop, done_n,
                               why, sizeof(why));
                if (err == CF_OK)
                        return CF_OK;
                if (*stop) {
                        snprintf(errstr, errstr_size, "%s", why);
                        return CF_ERR_KAFKA;
                }
                cf_log(CF_LOG_INFO,
                       "%s: the copy at commit %" PRId64 " of epoch %" PRId64
                       " cannot be caught up from offset %" PRId64
                       " (%s): the log is replayed whole",
                       name, rp.applied.n, rp.applied.epoch, rp.offset, why);
                goto replay;
        }
        /* What the log holds last. */
        tail_scan ts;
        memset(&ts, 0, sizeof(ts));
        cf_buf_init(&ts.a.ops);
        err = read_partition(rt, topic, id, TAIL_RECORDS, -1, stop, on_tail,
                             &ts, errstr, errstr_size);
        cf_buf_free(&ts.a.ops);
        if (err)
                return err;
        cf_tasklog_pos kafka = ts.last;
        bool same = local.epoch == kafka.epoch && local.n == kafka.n;
        bool ahead = local.epoch == kafka.epoch && local.n == kafka.n + 1;
        if (!ts.records) {
                /* Nothing in the log: a new task, or a state directory
                 * written without a log (an upgrade, the log topic made
                 * anew). Then the next commit writes the whole state. */
                cf_buf probe;
                cf_buf_init(&probe);
                meta_key(&k, state_id, 'o');
                err = cf_state_get(rt->st, CF_COL_META, k.b, k.len, &probe,
                                   errstr, errstr_size);
                cf_buf_free(&probe);
                if (err && err != CF_ERR_NOT_FOUND)
                        return err;
                *full = err == CF_OK;
                /* Unless the log's first commit waits in this directory's
                 * outbox (its first run died before delivering it): then
                 * the log will hold every commit from the first. */
                if (*full) {
                        bool first = false;
                        cf_key pk;
                        cf_key_init(&pk, state_id);
                        if ((err = cf_state_scan(rt->st, CF_COL_OUTBOX, pk.b,
                                                 pk.len, has_first_commit,
                                                 &first, errstr, errstr_size)))
                                return err;
                        *full = !first;
                }
                if (*full)
                        cf_log(CF_LOG_INFO,
                               "%s: %s [%d] is empty: the next commit writes "
                               "the task's whole state to it",
                               name, topic, (int)id);
                if (local.epoch == 0)
                        return write_pos(rt, state_id,
                                         (cf_tasklog_pos){ 1, local.n }, 0,
                                         NULL, errstr, errstr_size);
                return CF_OK;
        }
        if (same || ahead) {
                /* The same commit, or the next one whose log entries wait
                 * in this directory's outbox. */
                *done_n = kafka.n;
                if (local.epoch == 0)
                        return write_pos(
                            rt, state_id,
                            (cf_tasklog_pos){ ts.a.max_epoch + 1, local.n }, 0,
                            NULL, errstr, errstr_size);
                return CF_OK;
        }
replay:;
        /* Replay the log. */
        int64_t t0 = cf_mono_ms();
        if ((err = cf_state_drop_task(rt->st, state_id, errstr, errstr_size)))
                return err;
        restore r;
        restore_init(&r, rt, state_id, errstr, errstr_size);
        err = read_partition(rt, topic, id, -1, -1, stop, on_restore, &r,
                             errstr, errstr_size);
        if (!err)
                err = restore_flush(&r);
        restore_free(&r);
        if (err)
                return err;
        /* Go on from the last whole commit with a new epoch, so that a
         * commit of this writer never passes for one of an earlier one. */
        cf_tasklog_pos next = { r.a.max_epoch + 1, r.applied.n };
        replica now = { next,          r.applied, r.next_offset,
                        r.a.max_epoch, r.bytes,   false };
        if ((err = write_pos(rt, state_id, next, r.bytes,
                             r.next_offset > 0 ? &now : NULL, errstr,
                             errstr_size)))
                return err;
        *restored = true;
        *done_n = r.applied.n;
        cf_log(CF_LOG_INFO,
               "%s: restored from %s [%d]: %" PRId64 " commits (%" PRId64
               " bytes, %" PRId64 " from an earlier writer skipped, %" PRId64
               " repeated) up to commit %" PRId64 " of epoch %" PRId64
               " (this directory had commit %" PRId64 " of epoch %" PRId64
               ") in %" PRId64 " ms",
               name, topic, (int)id, r.commits, r.bytes, r.skipped, r.repeated,
               r.applied.n, r.applied.epoch, local.n, local.epoch,
               cf_mono_ms() - t0);
        return CF_OK;
}

cf_err_t cf_tasklog_leave(cf_task *t, char *errstr, size_t errstr_size)
{
        if (!t->rt->task_log || t->log_end_offset <= 0 ||
            t->log_end_pos.epoch != t->log_pos.epoch ||
            t->log_end_pos.n != t->log_pos.n || t->ob.inflight)
                return CF_OK;
        for (size_t i = 0; i < t->ob.n_pending; i++)
                if (cf_outbox_is_log(t->ob.pending[i]->topic))
                        return CF_OK;
        replica rp = { t->log_pos,       t->log_pos,        t->log_end_offset,
                       t->log_pos.epoch, t->log_since_full, false };
        cf_batch *b = cf_batch_new(t->rt->st);
        replica_put(b, t->state_id, &rp);
        cf_err_t err = cf_state_write(t->rt->st, b, true, errstr, errstr_size);
        cf_batch_destroy(b);
        return err;
}

/* ---- standby copies
 * ----------------------------------------------------------
 */

typedef struct sb_task {
        bool on;       /* a copy is kept */
        bool failed;   /* a commit could not be applied: no more are */
        bool reported; /* "caught up" said (once per start) */
        int64_t pos;   /* next offset to read (just after the last read) */
        restore r;
        char errstr[256];
        char name[16];
} sb_task;

struct cf_standby {
        cf_runtime *rt;
        rd_kafka_t *rk;
        sb_task *t; /* rt->n_tasks, indexed as rt->tasks */
        bool assign_due;
};

cf_err_t cf_standby_new(cf_runtime *rt, cf_standby **sbp, char *errstr,
                        size_t errstr_size)
{
        rd_kafka_conf_t *conf = cf_kafka_client_conf(rt->cfg, CF_KAFKA_CONSUMER,
                                                     errstr, errstr_size);
        if (!conf ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-standby", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            /* An offset the log no longer holds (trimmed before a whole
             * state) is an error here, never a silent jump. */
            cf_kafka_conf_set(conf, "auto.offset.reset", "error", errstr,
                              errstr_size)) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return CF_ERR_CONFIG;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                return CF_ERR_KAFKA;
        cf_standby *sb = cf_calloc(1, sizeof(*sb));
        sb->rt = rt;
        sb->rk = rk;
        sb->t = cf_calloc((size_t)rt->n_tasks, sizeof(*sb->t));
        *sbp = sb;
        return CF_OK;
}

static void sb_off(cf_standby *sb, int32_t idx)
{
        sb_task *e = &sb->t[idx];
        if (!e->on)
                return;
        restore_free(&e->r);
        e->on = false;
        sb->assign_due = true;
}

void cf_standby_destroy(cf_standby *sb)
{
        if (!sb)
                return;
        for (int32_t i = 0; i < sb->rt->n_tasks; i++)
                sb_off(sb, i);
        rd_kafka_consumer_close(sb->rk);
        rd_kafka_destroy(sb->rk);
        free(sb->t);
        free(sb);
}

static void sb_task_of(const cf_standby *sb, int32_t idx, char *sub,
                       int32_t *id)
{
        *sub = idx < sb->rt->in_partitions ? 'A' : 'B';
        *id = *sub == 'A' ? idx : idx - sb->rt->in_partitions;
}

/* Starts a copy of task idx: from where the directory's copy stands in
 * the log (META 'r'), else from nothing (the task's keys dropped) at the
 * log's start. */
static cf_err_t sb_on(cf_standby *sb, int32_t idx, bool fresh, char *errstr,
                      size_t errstr_size)
{
        sb_task *e = &sb->t[idx];
        char sub;
        int32_t id;
        sb_task_of(sb, idx, &sub, &id);
        uint16_t state_id = cf_task_state_id(sub, id);
        cf_tasklog_pos local;
        replica rp;
        bool valid = false;
        cf_err_t err = CF_OK;
        if (!fresh)
                err = local_get(sb->rt, state_id, &local, &rp, &valid, errstr,
                                errstr_size);
        if (!err && !valid)
                err = cf_state_drop_task(sb->rt->st, state_id, errstr,
                                         errstr_size);
        if (err)
                return err;
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%c-%d", sub, (int)id);
        restore_init(&e->r, sb->rt, state_id, e->errstr, sizeof(e->errstr));
        e->r.standby = true;
        if (valid) {
                e->r.applied = rp.applied;
                e->r.a.max_epoch = rp.max_epoch;
                e->r.bytes = rp.bytes;
                e->r.next_offset = rp.offset;
                e->pos = rp.offset;
        } else {
                e->pos = RD_KAFKA_OFFSET_BEGINNING;
        }
        e->on = true;
        sb->assign_due = true;
        return CF_OK;
}

static void sb_assign(cf_standby *sb)
{
        cf_runtime *rt = sb->rt;
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(rt->n_tasks);
        for (int32_t i = 0; i < rt->n_tasks; i++) {
                sb_task *e = &sb->t[i];
                char sub;
                int32_t id;
                if (!e->on || e->failed)
                        continue;
                sb_task_of(sb, i, &sub, &id);
                rd_kafka_topic_partition_list_add(
                    l,
                    rt->out_topic[sub == 'A' ? CF_OUT_RATING_LOG
                                             : CF_OUT_BILLING_LOG],
                    id)
                    ->offset = e->pos;
        }
        rd_kafka_resp_err_t err = rd_kafka_assign(sb->rk, l);
        if (err)
                cf_log(CF_LOG_WARN, "standby: assign: %s",
                       rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
        sb->assign_due = false;
}

cf_err_t cf_standby_set(cf_standby *sb, const bool *want, char *errstr,
                        size_t errstr_size)
{
        for (int32_t i = 0; i < sb->rt->n_tasks; i++) {
                if (sb->t[i].on && (!want[i] || sb->rt->tasks[i]))
                        sb_off(sb, i);
                else if (!sb->t[i].on && want[i] && !sb->rt->tasks[i]) {
                        cf_err_t err = sb_on(sb, i, false, errstr, errstr_size);
                        if (err)
                                return err;
                }
        }
        if (sb->assign_due)
                sb_assign(sb);
        return CF_OK;
}

bool cf_standby_has(const cf_standby *sb, int32_t idx)
{
        return sb && sb->t[idx].on;
}

void cf_standby_stats(const cf_standby *sb, int *copies, int *failed,
                      int64_t *lag)
{
        *copies = *failed = 0;
        *lag = 0;
        for (int32_t i = 0; sb && i < sb->rt->n_tasks; i++) {
                const sb_task *c = &sb->t[i];
                if (!c->on)
                        continue;
                ++*copies;
                *failed += c->failed;
                const cf_runtime *rt = sb->rt;
                bool rating = i < rt->in_partitions;
                int64_t lo, hi;
                if (!rd_kafka_get_watermark_offsets(
                        sb->rk,
                        rt->out_topic[rating ? CF_OUT_RATING_LOG
                                             : CF_OUT_BILLING_LOG],
                        rating ? i : i - rt->in_partitions, &lo, &hi)) {
                        int64_t from = c->pos >= 0 ? c->pos : lo > 0 ? lo : 0;
                        if (hi > from)
                                *lag += hi - from;
                }
        }
}

void cf_standby_poll(cf_standby *sb, int64_t budget_ms)
{
        cf_runtime *rt = sb->rt;
        int64_t until = cf_mono_ms() + budget_ms;
        bool restart = false;
        for (int n = 0;; n++) {
                if ((n & 63) == 63 && cf_mono_ms() >= until)
                        break;
                rd_kafka_message_t *m = rd_kafka_consumer_poll(sb->rk, 0);
                if (!m)
                        break;
                int32_t idx = -1;
                if (m->rkt) {
                        const char *tn = rd_kafka_topic_name(m->rkt);
                        if (!strcmp(tn, rt->out_topic[CF_OUT_RATING_LOG]))
                                idx = m->partition;
                        else if (!strcmp(tn, rt->out_topic[CF_OUT_BILLING_LOG]))
                                idx = rt->in_partitions + m->partition;
                }
                sb_task *e = idx >= 0 && idx < rt->n_tasks ? &sb->t[idx] : NULL;
                if (!e || !e->on || e->failed) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (!e->reported)
                                cf_log(CF_LOG_INFO,
                                       "%s: standby copy caught up at commit "
                                       "%" PRId64 " of epoch %" PRId64,
                                       e->name, e->r.applied.n,
                                       e->r.applied.epoch);
                        e->reported = true;
                } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                           m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
                        /* The log was cut past the copy (a whole state
                         * came since): copied again from its start. */
                        cf_log(CF_LOG_INFO,
                               "%s: standby copy: %s; copied again from the "
                               "log's start",
                               e->name, rd_kafka_message_errstr(m));
                        sb_off(sb, idx);
                        char why[256];
                        if (sb_on(sb, idx, true, why, sizeof(why))) {
                                cf_log(CF_LOG_WARN, "%s: standby copy: %s",
                                       e->name, why);
                                sb_off(sb, idx);
                        }
                        restart = true;
                } else if (m->err) {
                        cf_log(CF_LOG_WARN, "standby: %s",
                               rd_kafka_message_errstr(m));
                } else if (m->offset >= e->pos ||
                           e->pos == RD_KAFKA_OFFSET_BEGINNING) {
                        e->pos = m->offset + 1;
                        on_restore(&e->r, m);
                        if (e->r.err) {
                                /* The copy stays at its last commit; a
                                 * takeover then replays the log. */
                                cf_log(CF_LOG_WARN,
                                       "%s: standby copy stopped at commit "
                                       "%" PRId64 ": %s",
                                       e->name, e->r.applied.n, e->errstr);
                                e->failed = true;
                                restart = true;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        if (restart || sb->assign_due)
                sb_assign(sb);
}
