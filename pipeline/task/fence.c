/*
 * fence.c: a transactional producer per task, initialised before the task
 * restores, so that the broker fences every earlier owner (see fence.h).
 */
#include "fence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "task.h"

void cf_fence_txn_id(const cf_runtime *rt, char sub, int32_t id, char *dst,
                     size_t size)
{
        snprintf(dst, size, "%s.%c-%d", rt->cfg->group_id, sub, (int)id);
}

void cf_fence_setup(cf_runtime *rt, const rd_kafka_conf_t *conf)
{
        rt->txn_conf = rd_kafka_conf_dup(conf);
}

/* Index of task sub-id in rt->tasks (task.h). */
static int32_t index_of(const cf_runtime *rt, char sub, int32_t id)
{
        return sub == 'A' ? id : rt->in_partitions + id;
}

rd_kafka_t *cf_fence_producer(const cf_task *t)
{
        const cf_runtime *rt = t->rt;
        if (rt->txp) {
                rd_kafka_t *p = rt->txp[index_of(rt, t->sub, t->id)];
                if (p)
                        return p;
        }
        return rt->producer;
}

static void task_of(const cf_runtime *rt, int32_t i, char *sub, int32_t *id)
{
        *sub = i < rt->in_partitions ? 'A' : 'B';
        *id = i < rt->in_partitions ? i : i - rt->in_partitions;
}

/* After the inits: in each new producer, a transaction of one record to
 * its task log partition, aborted. Kafka aborts what an earlier owner
 * left open when the id is initialised again; the peer broker (franz-go's
 * kfake) only bumps the epoch and keeps the open transaction's records
 * with the id, so that the new owner's first commit would commit them
 * too. An explicit abort ends them as aborted on both; on Kafka it only
 * adds one aborted record (never read: readers are read_committed). The
 * record (an empty value, no key) is flushed before the abort so that its
 * partition is in the transaction when the abort reaches the broker. */
static cf_err_t abort_left_open(cf_runtime *rt, const bool *want, char *errstr,
                                size_t errstr_size)
{
        char sub;
        int32_t id;
        for (int pass = 0; pass < 2; pass++) {
                for (int32_t i = 0; i < rt->n_tasks; i++) {
                        if (!want[i])
                                continue;
                        rd_kafka_t *rk = rt->txp[i];
                        rd_kafka_error_t *e = NULL;
                        task_of(rt, i, &sub, &id);
                        if (pass == 0) {
                                /* The topics' metadata first: a
                                 * producer's first record to a topic it
                                 * has no metadata for waits up to a
                                 * second for it (measured), here and at
                                 * the task's first commit. */
                                const struct rd_kafka_metadata *md = NULL;
                                if (!rd_kafka_metadata(rk, 1, NULL, &md, 10000))
                                        rd_kafka_metadata_destroy(md);
                                e = rd_kafka_begin_transaction(rk);
                                const char *topic =
                                    rt->out_topic[sub == 'A'
                                                      ? CF_OUT_RATING_LOG
                                                      : CF_OUT_BILLING_LOG];
                                rd_kafka_resp_err_t perr =
                                    e ? RD_KAFKA_RESP_ERR_NO_ERROR
                                      : rd_kafka_producev(
                                            rk, RD_KAFKA_V_TOPIC(topic),
                                            RD_KAFKA_V_PARTITION(id),
                                            RD_KAFKA_V_VALUE("", 0),
                                            RD_KAFKA_V_END);
                                if (perr) {
                                        snprintf(errstr, errstr_size,
                                                 "producer.fencing: task "
                                                 "%c-%d: %s",
                                                 sub, (int)id,
                                                 rd_kafka_err2str(perr));
                                        return CF_ERR_KAFKA;
                                }
                        } else {
                                rd_kafka_flush(rk, 30000);
                                e = rd_kafka_abort_transaction(rk, -1);
                        }
                        if (e) {
                                snprintf(errstr, errstr_size,
                                         "producer.fencing: task %c-%d: %s "
                                         "of the transaction that ends what "
                                         "an earlier owner left open: %s",
                                         sub, (int)id, pass ? "abort" : "begin",
                                         rd_kafka_error_string(e));
                                rd_kafka_error_destroy(e);
                                return CF_ERR_KAFKA;
                        }
                }
        }
        return CF_OK;
}

cf_err_t cf_fence_acquire(cf_runtime *rt, const bool *want,
                          volatile sig_atomic_t *stop, char *errstr,
                          size_t errstr_size)
{
        char txid[256], sub;
        int32_t id;
        int left = 0;
        int64_t t0 = cf_mono_ms();
        if (!rt->txp)
                rt->txp = cf_calloc((size_t)rt->n_tasks, sizeof(*rt->txp));
        for (int32_t i = 0; i < rt->n_tasks; i++) {
                if (!want[i])
                        continue;
                if (rt->txp[i]) {
                        rd_kafka_destroy(rt->txp[i]);
                        rt->txp[i] = NULL;
                }
                task_of(rt, i, &sub, &id);
                cf_fence_txn_id(rt, sub, id, txid, sizeof(txid));
                rd_kafka_conf_t *c = rd_kafka_conf_dup(rt->txn_conf);
                if (cf_kafka_conf_set(c, "transactional.id", txid, errstr,
                                      errstr_size)) {
                        rd_kafka_conf_destroy(c);
                        return CF_ERR_CONFIG;
                }
                rt->txp[i] =
                    rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, errstr_size);
                if (!rt->txp[i]) {
                        rd_kafka_conf_destroy(c);
                        return CF_ERR_KAFKA;
                }
                left++;
        }
        /* Side by side: each call waits a little for its producer's init
         * and is resumed on the next round (librdkafka's inits are
         * resumable after a timeout). */
        bool *done = cf_calloc((size_t)rt->n_tasks, sizeof(*done));
        cf_err_t err = CF_OK;
        int n = left;
        while (left > 0 && !err) {
                if (*stop) {
                        snprintf(errstr, errstr_size, "stopped");
                        err = CF_ERR_KAFKA;
                        break;
                }
                if (cf_mono_ms() - t0 > 120000) {
                        snprintf(errstr, errstr_size,
                                 "producer.fencing: %d transactional "
                                 "producers not initialised within 120 s",
                                 left);
                        err = CF_ERR_KAFKA;
                        break;
                }
                for (int32_t i = 0; i < rt->n_tasks && !err; i++) {
                        if (!want[i] || done[i])
                                continue;
                        rd_kafka_error_t *e =
                            rd_kafka_init_transactions(rt->txp[i], 20);
                        if (!e) {
                                done[i] = true;
                                left--;
                                continue;
                        }
                        if (rd_kafka_error_code(e) !=
                                RD_KAFKA_RESP_ERR__TIMED_OUT &&
                            !rd_kafka_error_is_retriable(e)) {
                                task_of(rt, i, &sub, &id);
                                cf_fence_txn_id(rt, sub, id, txid,
                                                sizeof(txid));
                                snprintf(errstr, errstr_size,
                                         "producer.fencing: init of "
                                         "transactional.id %s: %s",
                                         txid, rd_kafka_error_string(e));
                                err = CF_ERR_KAFKA;
                        }
                        rd_kafka_error_destroy(e);
                }
                (void)cf_outbox_may_write(rt); /* not a standstill */
        }
        free(done);
        if (!err)
                err = abort_left_open(rt, want, errstr, errstr_size);
        if (!err && n)
                cf_log(CF_LOG_INFO,
                       "%d task producers initialised in %lld ms (earlier "
                       "owners fenced)",
                       n, (long long)(cf_mono_ms() - t0));
        return err;
}

void cf_fence_release_all(cf_runtime *rt)
{
        for (int32_t i = 0; rt->txp && i < rt->n_tasks; i++)
                if (rt->txp[i]) {
                        rd_kafka_destroy(rt->txp[i]);
                        rt->txp[i] = NULL;
                }
}

void cf_fence_destroy(cf_runtime *rt)
{
        cf_fence_release_all(rt);
        free(rt->txp);
        rt->txp = NULL;
        if (rt->txn_conf)
                rd_kafka_conf_destroy(rt->txn_conf);
        rt->txn_conf = NULL;
}

void cf_fence_poll(cf_runtime *rt, int timeout_ms)
{
        for (int32_t i = 0; rt->txp && i < rt->n_tasks; i++)
                if (rt->txp[i])
                        rd_kafka_poll(rt->txp[i], 0);
        rd_kafka_poll(rt->producer, timeout_ms);
}

int cf_fence_outq_len(cf_runtime *rt)
{
        int n = rd_kafka_outq_len(rt->producer);
        for (int32_t i = 0; rt->txp && i < rt->n_tasks; i++)
                if (rt->txp[i])
                        n += rd_kafka_outq_len(rt->txp[i]);
        return n;
}
