/* inproc.c: rating tasks without Kafka (see inproc.h). */
#include "inproc.h"

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

struct cf_inproc {
        cf_runtime rt;
        int32_t nb;       /* billing tasks (repartition partitions) */
        int64_t *next_rp; /* next offset per repartition partition */
        cf_batch *batch;
        cf_inproc_sink *sink;
        void *opaque;
        uint64_t writes; /* RocksDB writes (batch entries) committed */
};

cf_err_t cf_inproc_new(const cf_config *cfg, int32_t partitions,
                       cf_inproc_sink *sink, void *opaque, cf_inproc **ipp,
                       char *errstr, size_t errstr_size)
{
        cf_inproc *ip = cf_calloc(1, sizeof(*ip));
        cf_runtime *rt = &ip->rt;
        cf_err_t err;
        ip->sink = sink;
        ip->opaque = opaque;
        cf_runtime_init(rt, cfg);
        for (int o = 0; o < CF_OUT__CNT; o++)
                rt->out_partitions[o] = partitions;
        rt->in_partitions = partitions;
        ip->nb = partitions;
        rt->n_tasks = partitions + ip->nb;
        ip->next_rp = cf_calloc((size_t)ip->nb, sizeof(int64_t));
        if ((err = cf_registry_new(&rt->reg, errstr, errstr_size)))
                goto fail;
        cf_state_conf sc = cf_runtime_state_conf(cfg);
        if ((err = cf_state_open(cfg->state_dir, &sc, &rt->st, errstr,
                                 errstr_size)))
                goto fail;
        ip->batch = cf_batch_new(rt->st);
        rt->tables =
            cf_tables_new(rt->st, rt->reg, (size_t)cfg->tables_cache_max_bytes);
        if ((err = cf_tables_load(rt->tables, errstr, errstr_size)))
                goto fail;
        rt->tasks = cf_calloc((size_t)rt->n_tasks, sizeof(cf_task *));
        for (int32_t i = 0; i < rt->n_tasks; i++) {
                char sub = i < partitions ? 'A' : 'B';
                int32_t p = i < partitions ? i : i - partitions;
                if ((err = cf_task_new(rt, sub, p, &rt->tasks[i], errstr,
                                       errstr_size)))
                        goto fail;
                /* Resume the repartition offsets where billing stands. */
                if (sub == 'B')
                        ip->next_rp[p] =
                            rt->tasks[i]->in[CF_IN_REPARTITION].next_offset < 0
                                ? 0
                                : rt->tasks[i]
                                      ->in[CF_IN_REPARTITION]
                                      .next_offset;
        }
        *ipp = ip;
        return CF_OK;
fail:
        cf_inproc_destroy(ip);
        return err;
}

void cf_inproc_destroy(cf_inproc *ip)
{
        if (!ip)
                return;
        cf_runtime *rt = &ip->rt;
        if (rt->tasks)
                for (int32_t p = 0; p < rt->n_tasks; p++)
                        cf_task_destroy(rt->tasks[p]);
        free(rt->tasks);
        free(ip->next_rp);
        cf_tables_destroy(rt->tables);
        cf_batch_destroy(ip->batch);
        cf_state_close(rt->st);
        cf_registry_destroy(rt->reg);
        free(ip);
}

bool cf_inproc_table(cf_inproc *ip, cf_table_kind k, const void *key,
                     size_t klen, const void *value, size_t vlen)
{
        return cf_tables_apply(ip->rt.tables, k, -1, 0, key, klen, value, vlen);
}

void cf_inproc_feed(cf_inproc *ip, const cf_src *src)
{
        cf_task_process_src(ip->rt.tasks[src->partition], src);
}

void cf_inproc_drain(cf_inproc *ip)
{
        for (int32_t p = 0; p < ip->rt.n_tasks; p++)
                cf_task_drain(ip->rt.tasks[p]);
}

bool cf_inproc_finished(cf_inproc *ip)
{
        for (int32_t p = 0; p < ip->rt.n_tasks; p++)
                if (!cf_task_finished(ip->rt.tasks[p]))
                        return false;
        return true;
}

/* Billing tasks read what rating wrote to the repartition topic, as if
 * consumed from it. */
static void feed_billing(cf_inproc *ip, const cf_out *o)
{
        cf_runtime *rt = &ip->rt;
        int32_t q = o->partition;
        if (q < 0 || q >= ip->nb)
                return;
        cf_src src = {
                .input = CF_IN_REPARTITION,
                .partition = q,
                .offset = ip->next_rp[q]++,
                .ts = o->ts,
                .key = o->key,
                .key_len = o->klen,
                .value = o->value,
                .value_len = o->vlen,
        };
        cf_task_process_src(rt->tasks[rt->in_partitions + q], &src);
}

/* An output "delivered" at once: to the sink, and a repartition record to
 * billing. */
static void deliver(void *opaque, const cf_out *o)
{
        cf_inproc *ip = opaque;
        if (ip->sink)
                ip->sink(ip->opaque, o);
        if (o->topic == CF_OUT_REPARTITION)
                feed_billing(ip, o);
}

cf_err_t cf_inproc_commit(cf_inproc *ip, char *errstr, size_t errstr_size)
{
        cf_runtime *rt = &ip->rt;
        cf_err_t err;
        cf_batch_clear(ip->batch);
        if ((err = cf_tasks_commit(rt, ip->batch, errstr, errstr_size)))
                return err;
        ip->writes += (uint64_t)cf_batch_count(ip->batch);
        if ((err =
                 cf_state_write(rt->st, ip->batch, true, errstr, errstr_size)))
                return err;
        /* Only what this commit wrote to the outbox: what billing emits
         * while it reads the repartition records delivered here waits for
         * the next commit (it is in no batch yet). */
        size_t *n_out = cf_calloc((size_t)rt->n_tasks, sizeof(size_t));
        for (int32_t p = 0; p < rt->n_tasks; p++)
                n_out[p] = rt->tasks[p]->ob.n_pending;
        for (int32_t p = 0; p < rt->n_tasks; p++)
                cf_outbox_hand_over(rt->tasks[p], n_out[p], deliver, ip);
        free(n_out);
        return CF_OK;
}

cf_task *cf_inproc_task(cf_inproc *ip, int32_t partition)
{
        return partition >= 0 && partition < ip->rt.n_tasks
                   ? ip->rt.tasks[partition]
                   : NULL;
}

const cf_registry *cf_inproc_registry(const cf_inproc *ip)
{
        return ip->rt.reg;
}

uint64_t cf_inproc_writes(const cf_inproc *ip)
{
        return ip->writes;
}

cf_state *cf_inproc_state(cf_inproc *ip)
{
        return ip->rt.st;
}
