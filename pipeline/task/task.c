/*
 * task.c: tasks and the services the stages use (see task.h, stage.h).
 *
 * State keys in column family META, each the task's state id + one byte:
 *   'o'  next input offset per input, stream time, ended (1 once drained)
 *   'q'  next output sequence number, last watermark sent to billing
 *   'c'  the conservation counters per input, rejects per reason, outputs
 *        skipped
 * (varints, cf_put_varint). The outbox's keys are outbox.c's; the stores'
 * are the stages'.
 */
#include "task.h"

#include "clock.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "log.h"
#include "outbox.h"
#include "murmur2.h"
#include "stage.h"
#include "utf8.h"
#include "wire.h"

/* Reject reasons the stored counters held before TOO_LATE: the stored form
 * keeps those first, then the outbox's skipped count, then a count and the
 * reasons added since. */
#define REASONS_V1 9

/* ---- services for stages ------------------------------------------------ */

int32_t cf_task_id(const cf_task *t)
{
        return t->id;
}

int64_t cf_task_wall_ms(const cf_task *t)
{
        (void)t;
        return cf_mono_ms();
}

int32_t cf_task_sources(const cf_task *t)
{
        return t->rt->in_partitions;
}

int64_t cf_task_stream_time(const cf_task *t)
{
        return t->stream_time;
}

const struct cf_config *cf_task_config(const cf_task *t)
{
        return t->rt->cfg;
}

const cf_registry *cf_task_registry(const cf_task *t)
{
        return t->rt->reg;
}

cf_arena *cf_task_scratch(cf_task *t)
{
        return &t->scratch;
}

const cf_tables *cf_task_tables(const cf_task *t)
{
        return t->rt->tables;
}

size_t cf_task_cache_budget(const cf_task *t)
{
        return t->cache_budget;
}

/* A task's share of the process's state.cache.max.bytes: 3/4 to the rating
 * tasks (sessions, dedup per charger), 1/4 to the billing tasks (ledgers),
 * each part divided among the tasks of that kind the process may run. */
static size_t task_budget(const cf_runtime *rt, char sub)
{
        uint64_t total = (uint64_t)rt->cfg->state_cache_max_bytes;
        int32_t nr = rt->in_partitions, nb = rt->n_tasks - rt->in_partitions;
        uint64_t part = sub == 'A' ? total / 4 * 3 : total / 4;
        int32_t n = sub == 'A' ? nr : nb;
        return (size_t)(part / (uint64_t)(n > 0 ? n : 1));
}

cf_store *cf_task_store(cf_task *t, cf_col_t col, const cf_store_ops *ops,
                        void *opaque, size_t budget_bytes, bool load_on_miss)
{
        if (t->n_stores == CF_TASK_MAX_STORES)
                abort(); /* a programming error: raise the limit */
        cf_store *st = cf_store_new(t->rt->st, col, t->state_id, ops, opaque,
                                    budget_bytes, load_on_miss);
        t->stores[t->n_stores++] = st;
        return st;
}

typedef struct move_ctx {
        cf_store *to, *from;
        const cf_store_ops *from_ops;
        cf_store_foreach_cb *moved;
        void *opaque;
        cf_buf tmp;
} move_ctx;

static int move_one(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        move_ctx *m = opaque;
        /* A copy (the old store owns obj): its whole encoding, which the
         * new store's decode reads as well. */
        m->tmp.len = 0;
        m->from_ops->encode(m->opaque, obj, &m->tmp);
        void *copy = cf_store_decode(m->to, m->tmp.p, m->tmp.len);
        if (!copy)
                abort(); /* the two encodings disagree: a programming error */
        cf_store_put(m->to, key, klen, copy);
        cf_store_del(m->from, key, klen);
        return m->moved ? m->moved(m->opaque, key, klen, copy) : 0;
}

cf_err_t cf_task_store_move(cf_task *t, cf_store *st, cf_col_t from,
                            const cf_store_ops *from_ops,
                            cf_store_foreach_cb *moved, void *opaque,
                            char *errstr, size_t errstr_size)
{
        move_ctx m = {
                .to = st, .from_ops = from_ops, .moved = moved, .opaque = opaque
        };
        m.from = cf_task_store(t, from, from_ops, opaque, 0, false);
        cf_buf_init(&m.tmp);
        cf_err_t err =
            cf_store_visit_all(m.from, move_one, &m, errstr, errstr_size);
        cf_buf_free(&m.tmp);
        return err;
}

static size_t stage_index(const cf_task *t, const cf_stage *s)
{
        for (size_t i = 0; i < t->n_stages; i++)
                if (t->chain[i] == s)
                        return i;
        abort(); /* not a stage of this chain */
}

static cf_stage_rc run_from(cf_task *t, size_t i, cf_item *it)
{
        for (; i < t->n_stages; i++) {
                cf_stage_rc rc = t->chain[i]->process(t, t->ctx[i], it);
                if (rc != CF_STAGE_PASS)
                        return rc;
        }
        return CF_STAGE_ACCEPTED; /* went through every stage */
}

cf_stage_rc cf_task_forward(cf_task *t, const cf_stage *from, cf_item *it)
{
        return run_from(t, stage_index(t, from) + 1, it);
}

/* SHA-256 of n bytes at p into out (32 bytes). */
static void sha256(const void *p, size_t n, uint8_t out[32])
{
        unsigned int len = 0;
        if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) || len != 32)
                abort(); /* the library cannot compute SHA-256: fatal */
}

void cf_task_reject(cf_task *t, const cf_stage *stage, const cf_src *src,
                    int32_t reason, int64_t event_time, const char *fmt, ...)
{
        /* The detail quotes input bytes: escaped to valid UTF-8 (an Avro
         * string) and cut at 511 bytes on a character boundary. */
        char raw[2048], detail[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        cf_utf8_escape(detail, sizeof(detail), raw);
        cf_rejected r = {
                .reason = reason,
                .detail = detail,
                .stage = (char *)stage->name,
                .source_topic = (char *)t->rt->in_topic[src->input],
                .partition = src->partition,
                .offset = src->offset,
                .key = { (uint8_t *)src->key, src->key_len },
                .value = { (uint8_t *)src->value, src->value_len },
                .event_time_ms = event_time,
                .key_length = CF_NONE,
                .key_sha256 = { NULL, 0 },
                .value_length = CF_NONE,
                .value_sha256 = { NULL, 0 },
        };
        /* The original bytes, up to CF_REJECTED_KEEP_BYTES each: longer
         * ones are cut, with their length and digest, so that a rejected
         * record stays far below any message size limit. */
        uint8_t kd[32], vd[32];
        if (src->key && src->key_len > CF_REJECTED_KEEP_BYTES) {
                sha256(src->key, src->key_len, kd);
                r.key.n = CF_REJECTED_KEEP_BYTES;
                r.key_length = src->key_len;
                r.key_sha256 = (cf_bytes){ kd, 32 };
        }
        if (src->value && src->value_len > CF_REJECTED_KEEP_BYTES) {
                sha256(src->value, src->value_len, vd);
                r.value.n = CF_REJECTED_KEEP_BYTES;
                r.value_length = src->value_len;
                r.value_sha256 = (cf_bytes){ vd, 32 };
        }
        if (!src->key)
                r.key.p = NULL;
        if (!src->value)
                r.value.p = NULL;
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(t->rt->reg, CF_RT_REJECTED, &r, &b);
        /* Keyed by the source key, cut like the key field. */
        cf_outbox_emit(t, CF_OUT_REJECTED,
                       t->id % t->rt->out_partitions[CF_OUT_REJECTED], src->key,
                       src->key ? r.key.n : 0, b.p, b.len);
        cf_buf_free(&b);
        if (reason >= 0 && reason < CF_REJECT__CNT)
                t->reasons[reason]++;
}

void cf_task_resolve(cf_task *t, const cf_src *src, cf_stage_rc rc)
{
        cf_counts *c = &t->cnt[src->input];
        c->pending--;
        if (rc == CF_STAGE_DUP)
                c->dup++;
        else if (rc == CF_STAGE_REJECTED)
                c->rejected++;
        else
                c->accepted++;
}

void cf_task_emit_charge(cf_task *t, const cf_charge_record *cr, int64_t due_ts)
{
        cf_runtime *rt = t->rt;
        cf_buf b, be;
        cf_buf_init(&b);
        cf_buf_init(&be);
        cf_encode(rt->reg, CF_RT_CHARGE_RECORD, cr, &b);
        cf_outbox_emit(t, CF_OUT_CHARGE,
                       t->id % rt->out_partitions[CF_OUT_CHARGE],
                       cr->session_id, strlen(cr->session_id), b.p, b.len);
        cf_billing_event ev = {
                .kind = CF_BILLING_CHARGE,
                .source_task = t->id,
                .seq =
                    t->ob.next_seq, /* the seq cf_outbox_emit gives it below */
                .watermark_ms = due_ts != CF_NONE &&
                                        t->stream_time != CF_NONE &&
                                        due_ts < t->stream_time && !t->ended
                                    ? due_ts - rt->cfg->allowed_lateness_ms
                                    : cf_task_watermark(t),
                .record = { b.p, (uint32_t)b.len },
        };
        cf_encode(rt->reg, CF_RT_BILLING_EVENT, &ev, &be);
        size_t pl = strlen(cr->billed_party);
        cf_outbox_emit(
            t, CF_OUT_REPARTITION,
            cf_murmur2_partition(cr->billed_party, pl,
                                 rt->out_partitions[CF_OUT_REPARTITION]),
            cr->billed_party, pl, be.p, be.len);
        cf_buf_free(&b);
        cf_buf_free(&be);
}

void cf_task_emit_statement(cf_task *t, const cf_statement *st)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(t->rt->reg, CF_RT_STATEMENT, st, &b);
        cf_outbox_emit(t, CF_OUT_STATEMENT,
                       t->id % t->rt->out_partitions[CF_OUT_STATEMENT],
                       st->statement_id, strlen(st->statement_id), b.p, b.len);
        cf_buf_free(&b);
}

size_t cf_task_outputs_uncommitted(const cf_task *t)
{
        return t->ob.n_pending > t->ob.n_committed
                   ? t->ob.n_pending - t->ob.n_committed
                   : 0;
}

void cf_task_count(cf_task *t, const cf_stage *stage, const char *counter,
                   int64_t delta)
{
        for (size_t i = 0; i < t->n_stats; i++) {
                if (t->stats[i].stage == stage->name &&
                    !strcmp(t->stats[i].name, counter)) {
                        t->stats[i].value += delta;
                        return;
                }
        }
        t->stats = cf_realloc(t->stats, (t->n_stats + 1) * sizeof(cf_stat));
        t->stats[t->n_stats++] = (cf_stat){ stage->name, counter, delta };
}

int64_t cf_task_watermark(const cf_task *t)
{
        if (t->ended)
                return CF_WATERMARK_END;
        if (t->stream_time == CF_NONE)
                return CF_NONE;
        return t->stream_time - t->rt->cfg->allowed_lateness_ms;
}

void cf_task_emit_watermark(cf_task *t)
{
        cf_runtime *rt = t->rt;
        int64_t wm = cf_task_watermark(t);
        if (wm == CF_NONE || (t->wm_sent != CF_NONE && wm <= t->wm_sent))
                return;
        char key[16];
        int kl = snprintf(key, sizeof(key), "%c-%d", t->sub, (int)t->id);
        cf_buf b;
        cf_buf_init(&b);
        for (int32_t q = 0; q < rt->out_partitions[CF_OUT_REPARTITION]; q++) {
                cf_billing_event ev = { .kind = CF_BILLING_WATERMARK,
                                        .source_task = t->id,
                                        .seq = t->ob.next_seq,
                                        .watermark_ms = wm,
                                        .record = { NULL, 0 } };
                b.len = 0;
                cf_encode(rt->reg, CF_RT_BILLING_EVENT, &ev, &b);
                cf_outbox_emit(t, CF_OUT_REPARTITION, q, key, (size_t)kl, b.p,
                               b.len);
        }
        cf_buf_free(&b);
        t->wm_sent = wm;
}

/* ---- held records ------------------------------------------------------- */

cf_src *cf_src_dup(const cf_src *src)
{
        cf_src *d = cf_malloc(sizeof(*d) + src->key_len + src->value_len + 2);
        uint8_t *p = (uint8_t *)(d + 1);
        *d = *src;
        if (src->key) {
                memcpy(p, src->key, src->key_len);
                d->key = p;
        }
        p += src->key_len + 1;
        if (src->value) {
                memcpy(p, src->value, src->value_len);
                d->value = p;
        }
        return d;
}

void cf_src_encode(const cf_src *src, cf_buf *b)
{
        cf_put_varint(b, src->input);
        cf_put_varint(b, src->partition);
        cf_put_varint(b, src->offset);
        cf_put_varint(b, src->ts);
        cf_put_varint(b, src->key ? 1 : 0);
        cf_put_bytes(b, src->key, src->key ? src->key_len : 0);
        cf_put_varint(b, src->value ? 1 : 0);
        cf_put_bytes(b, src->value, src->value ? src->value_len : 0);
}

cf_src *cf_src_decode(cf_wrd *r)
{
        cf_src s;
        memset(&s, 0, sizeof(s));
        s.input = (int32_t)cf_get_varint(r);
        s.partition = (int32_t)cf_get_varint(r);
        s.offset = cf_get_varint(r);
        s.ts = cf_get_varint(r);
        bool hk = cf_get_varint(r) == 1;
        s.key = cf_get_bytes(r, &s.key_len);
        bool hv = cf_get_varint(r) == 1;
        s.value = cf_get_bytes(r, &s.value_len);
        if (!r->ok || s.input < 0 || s.input >= CF_IN__CNT)
                return NULL;
        if (!hk)
                s.key = NULL;
        if (!hv)
                s.value = NULL;
        return cf_src_dup(&s);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void meta_key(cf_key *k, const cf_task *t, char what)
{
        cf_key_init(k, t->state_id);
        cf_key_u8(k, (uint8_t)what);
}

static cf_err_t meta_get(cf_task *t, char what, cf_buf *v, char *errstr,
                         size_t errstr_size)
{
        cf_key k;
        meta_key(&k, t, what);
        return cf_state_get(t->rt->st, CF_COL_META, k.b, k.len, v, errstr,
                            errstr_size);
}

uint16_t cf_task_state_id(char sub, int32_t id)
{
        return (uint16_t)(sub == 'A' ? id : 0x4000 | id);
}

cf_err_t cf_task_new(cf_runtime *rt, char sub, int32_t id, cf_task **tp,
                     char *errstr, size_t errstr_size)
{
        cf_task *t = cf_calloc(1, sizeof(*t));
        cf_err_t err;
        cf_buf v;
        cf_buf_init(&v);
        t->rt = rt;
        t->sub = sub;
        t->id = id;
        t->state_id = cf_task_state_id(sub, id);
        snprintf(t->name, sizeof(t->name), "%c-%d", sub, (int)id);
        if (sub == 'A') {
                t->chain = rt->chain_rate;
                t->n_stages = rt->n_chain_rate;
        } else {
                t->chain = rt->chain_bill;
                t->n_stages = rt->n_chain_bill;
        }
        t->ctx = cf_calloc(t->n_stages, sizeof(void *));
        t->stream_time = CF_NONE;
        t->kafka_time = CF_NONE;
        t->wm_sent = CF_NONE;
        t->cache_budget = task_budget(rt, sub);
        cf_arena_init(&t->scratch, 64 * 1024);
        cf_buf_init(&t->log_ops);
        t->log_trim_from = -1;
        t->log_done_n = -1;
        for (int i = 0; i < CF_IN__CNT; i++) {
                t->in[i].next_offset = -1;
                t->in[i].idle_since = -1;
        }

        err = meta_get(t, 'o', &v, errstr, errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                for (int i = 0; i < CF_IN__CNT; i++)
                        t->in[i].next_offset = cf_get_varint(&r);
                t->stream_time = cf_get_varint(&r);
                t->ended = cf_get_varint(&r) == 1;
                /* Added later: absent in state written before. */
                if (r.ok && r.p != r.end)
                        t->kafka_time = cf_get_varint(&r);
                if (!r.ok)
                        goto corrupt;
        } else if (err != CF_ERR_NOT_FOUND) {
                goto fail;
        }
        v.len = 0;
        err = meta_get(t, 'q', &v, errstr, errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                t->ob.next_seq = cf_get_varint(&r);
                t->wm_sent = cf_get_varint(&r);
                if (!r.ok)
                        goto corrupt;
        } else if (err != CF_ERR_NOT_FOUND) {
                goto fail;
        }
        v.len = 0;
        err = meta_get(t, 'c', &v, errstr, errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                for (int i = 0; i < CF_IN__CNT; i++) {
                        cf_counts *c = &t->cnt[i];
                        c->in = cf_get_varint(&r);
                        c->accepted = cf_get_varint(&r);
                        c->dup = cf_get_varint(&r);
                        c->rejected = cf_get_varint(&r);
                        c->pending = cf_get_varint(&r);
                }
                for (int x = 0; x < REASONS_V1; x++)
                        t->reasons[x] = cf_get_varint(&r);
                /* Added later: absent in state written before. */
                if (r.ok && r.p != r.end)
                        t->ob.skipped = cf_get_varint(&r);
                if (r.ok && r.p != r.end) {
                        int64_t more = cf_get_varint(&r);
                        for (int64_t x = 0; x < more && r.ok; x++) {
                                int64_t n = cf_get_varint(&r);
                                if (REASONS_V1 + x < CF_REJECT__CNT)
                                        t->reasons[REASONS_V1 + x] = n;
                        }
                }
                if (!r.ok)
                        goto corrupt;
        } else if (err != CF_ERR_NOT_FOUND) {
                goto fail;
        }
        for (size_t i = 0; i < t->n_stages; i++) {
                if (!t->chain[i]->init)
                        continue;
                err = t->chain[i]->init(t, &t->ctx[i], errstr, errstr_size);
                if (err)
                        goto fail;
        }
        if (rt->exactly_once && (err = cf_outbox_load(t, errstr, errstr_size)))
                goto fail;
        if ((err = cf_tasklog_load(t, errstr, errstr_size)))
                goto fail;
        cf_buf_free(&v);
        *tp = t;
        return CF_OK;
corrupt:
        snprintf(errstr, errstr_size, "task %s: stored metadata is corrupt",
                 t->name);
        err = CF_ERR_STATE;
fail:
        cf_buf_free(&v);
        cf_task_destroy(t);
        return err;
}

void cf_task_destroy(cf_task *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_stages; i++)
                if (t->ctx[i] && t->chain[i]->destroy)
                        t->chain[i]->destroy(t->ctx[i]);
        free(t->ctx);
        for (size_t i = 0; i < t->n_stores; i++)
                cf_store_destroy(t->stores[i]);
        for (int i = 0; i < CF_IN__CNT; i++) {
                cf_inq *q = &t->in[i];
                for (size_t k = 0; k < q->n; k++)
                        free(q->v[(q->head + k) % q->cap]);
                free(q->v);
        }
        cf_outbox_free(t);
        cf_buf_free(&t->log_ops);
        free(t->stats);
        cf_arena_destroy(&t->scratch);
        free(t);
}

/* ---- processing --------------------------------------------------------- */

static void account(cf_task *t, int32_t input, cf_stage_rc rc)
{
        cf_counts *c = &t->cnt[input];
        c->in++;
        switch (rc) {
        case CF_STAGE_HELD:
                c->pending++;
                break;
        case CF_STAGE_DUP:
                c->dup++;
                break;
        case CF_STAGE_REJECTED:
                c->rejected++;
                break;
        default:
                c->accepted++;
                break;
        }
}

static void advance(cf_task *t)
{
        for (size_t i = 0; i < t->n_stages; i++)
                if (t->chain[i]->advance)
                        t->chain[i]->advance(t, t->ctx[i], t->stream_time);
}

/* A record's own time e (ms) as a stream time, with timestamp.source=event:
 * capped at its Kafka timestamp ts (-1: none), so that a charger clock
 * running ahead cannot move the stream past the moment the record was
 * published; CF_NONE (no time) when e is negative or further than
 * max.clock.skew.ms ahead of ref (its Kafka timestamp, or without one the
 * stream time): a wrong clock, which validate rejects as CLOCK when it is
 * that far ahead of the stream. */
static int64_t own_time(const cf_task *t, int64_t e, int64_t ts, int64_t ref)
{
        if (e == CF_NONE || e < 0)
                return CF_NONE;
        if (ref != CF_NONE && ref >= 0 &&
            e - t->rt->cfg->max_clock_skew_ms > ref)
                return CF_NONE;
        return ts >= 0 && ts < e ? ts : e;
}

/* The time a record moves its task's stream time to (only forward), by
 * timestamp.source: with kafka, and in every billing task, its Kafka
 * timestamp; with event (rating tasks), its own time once decoded
 * (event_time), as own_time. CF_NONE: it moves no time (it did not decode,
 * or has no valid time). */
static int64_t record_time(const cf_task *t, const cf_src *src,
                           int64_t event_time)
{
        if (t->sub != 'A' || !t->rt->ts_event)
                return src->ts >= 0 ? src->ts : CF_NONE;
        return own_time(t, event_time, src->ts,
                        src->ts >= 0 ? src->ts : t->stream_time);
}

static void move_time(cf_task *t, int64_t time)
{
        if (time != CF_NONE &&
            (t->stream_time == CF_NONE || time > t->stream_time)) {
                t->stream_time = time;
                advance(t);
        }
}

int64_t cf_task_tie_time_src(cf_task *t, const cf_src *src)
{
        bool ev = src->input == CF_IN_SESSIONS;
        void *rec = cf_arena_alloc(&t->scratch, cf_rtype_max_size());
        if (src->input == CF_IN_REPARTITION ||
            cf_decode(t->rt->reg,
                      ev ? CF_RT_SESSION_EVENT : CF_RT_METER_READING,
                      src->value, src->value_len, &t->scratch, rec, NULL))
                return CF_NONE;
        int64_t e = ev ? ((const cf_session_event *)rec)->time_ms
                       : ((const cf_meter_reading *)rec)->time_ms;
        /* As record_time, but of the record alone (not the stream time): a
         * wrong clock goes first rather than hold its queue back behind a
         * time it does not have. */
        return own_time(t, e, src->ts, src->ts >= 0 ? src->ts : CF_NONE);
}

void cf_task_process_src(cf_task *t, const cf_src *src)
{
        cf_item it = { .kind = CF_ITEM_RAW,
                       .src = src,
                       .rec = NULL,
                       .event_time = CF_NONE };
        cf_stage_rc rc = CF_STAGE_PASS;
        size_t i = 0;
        if (src->ts >= 0 &&
            (t->kafka_time == CF_NONE || src->ts > t->kafka_time))
                t->kafka_time = src->ts;
        /* Time first: what is due before this record is done before it.
         * With timestamp.source=event a rating task knows the record's
         * time once it is decoded: the stream moves right after the stage
         * that decodes it, before the others see it. */
        if (t->sub == 'A' && t->rt->ts_event) {
                while (i < t->n_stages && it.kind == CF_ITEM_RAW &&
                       rc == CF_STAGE_PASS) {
                        rc = t->chain[i]->process(t, t->ctx[i], &it);
                        i++;
                }
                if (rc == CF_STAGE_PASS)
                        move_time(t, record_time(t, src, it.event_time));
        } else {
                move_time(t, record_time(t, src, CF_NONE));
        }
        if (rc == CF_STAGE_PASS)
                rc = run_from(t, i, &it);
        account(t, src->input, rc);
        t->in[src->input].next_offset = src->offset + 1;
        cf_arena_reset(&t->scratch);
}

cf_inrec *cf_inrec_new(const rd_kafka_message_t *m)
{
        size_t kl = m->key ? m->key_len : 0, vl = m->payload ? m->len : 0;
        cf_inrec *r = cf_malloc(sizeof(*r) + kl + vl);
        r->offset = m->offset;
        r->ts = rd_kafka_message_timestamp(m, NULL);
        r->partition = m->partition;
        r->key_len = (uint32_t)kl;
        r->value_len = (uint32_t)vl;
        r->has_key = m->key != NULL;
        r->has_value = m->payload != NULL;
        if (kl)
                memcpy(r->data, m->key, kl);
        if (vl)
                memcpy(r->data + kl, m->payload, vl);
        return r;
}

size_t cf_inrec_size(const cf_inrec *r)
{
        return sizeof(*r) + r->key_len + r->value_len;
}

/* A record as a cf_src (valid while r is). */
static cf_src src_of(int32_t input, const cf_inrec *r)
{
        return (cf_src){
                .input = input,
                .partition = r->partition,
                .offset = r->offset,
                .ts = r->ts,
                .key = r->has_key ? r->data : NULL,
                .key_len = r->key_len,
                .value = r->has_value ? r->data + r->key_len : NULL,
                .value_len = r->value_len,
        };
}

int64_t cf_task_tie_time(cf_task *t, int32_t input, const cf_inrec *r)
{
        cf_src src = src_of(input, r);
        return cf_task_tie_time_src(t, &src);
}

void cf_task_process(cf_task *t, int32_t input, const cf_inrec *r)
{
        cf_src src = src_of(input, r);
        cf_task_process_src(t, &src);
}

void cf_task_drain(cf_task *t)
{
        for (size_t i = 0; i < t->n_stages; i++)
                if (t->chain[i]->drain)
                        t->chain[i]->drain(t, t->ctx[i]);
        cf_arena_reset(&t->scratch);
        if (t->sub == 'A')
                t->ended = true;
        t->drained = true;
}

bool cf_task_finished(cf_task *t)
{
        if (!t->drained)
                return false;
        for (size_t i = 0; i < t->n_stages; i++)
                if (t->chain[i]->finished &&
                    !t->chain[i]->finished(t, t->ctx[i]))
                        return false;
        return true;
}

void cf_task_tick(cf_task *t)
{
        advance(t);
        cf_arena_reset(&t->scratch);
}

cf_err_t cf_task_commit(cf_task *t, cf_batch *b, char *errstr,
                        size_t errstr_size)
{
        cf_key k;
        cf_buf v;
        cf_tasklog_begin(t, b);
        for (size_t i = 0; i < t->n_stores; i++) {
                cf_err_t err = cf_store_flush(t->stores[i], b, NULL);
                if (err) {
                        cf_batch_tee(b, NULL);
                        return cf_store_error(t->stores[i], errstr,
                                              errstr_size);
                }
        }
        cf_buf_init(&v);
        for (int i = 0; i < CF_IN__CNT; i++)
                cf_put_varint(&v, t->in[i].next_offset);
        cf_put_varint(&v, t->stream_time);
        cf_put_varint(&v, t->ended ? 1 : 0);
        cf_put_varint(&v, t->kafka_time);
        meta_key(&k, t, 'o');
        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
        /* 'q' (the output sequence number) is written by cf_tasklog_end. */
        /* The counters, so that conservation holds across restarts. */
        v.len = 0;
        for (int i = 0; i < CF_IN__CNT; i++) {
                const cf_counts *c = &t->cnt[i];
                cf_put_varint(&v, c->in);
                cf_put_varint(&v, c->accepted);
                cf_put_varint(&v, c->dup);
                cf_put_varint(&v, c->rejected);
                cf_put_varint(&v, c->pending);
        }
        for (int r = 0; r < REASONS_V1; r++)
                cf_put_varint(&v, t->reasons[r]);
        cf_put_varint(&v, t->ob.skipped);
        cf_put_varint(&v, CF_REJECT__CNT - REASONS_V1);
        for (int r = REASONS_V1; r < CF_REJECT__CNT; r++)
                cf_put_varint(&v, t->reasons[r]);
        meta_key(&k, t, 'c');
        cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
        cf_outbox_commit(t, b);
        cf_tasklog_end(t, b);
        cf_buf_free(&v);
        return CF_OK;
}

cf_err_t cf_tasks_commit(cf_runtime *rt, cf_batch *b, char *errstr,
                         size_t errstr_size)
{
        char why[512];
        cf_err_t err = cf_tables_flush(rt->tables, b, errstr, errstr_size);
        if (err)
                return err;
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                if (t->sub == 'A')
                        cf_task_emit_watermark(t);
                else
                        cf_task_tick(t); /* idle sources, due periods */
                if ((err = cf_task_commit(t, b, why, sizeof(why)))) {
                        snprintf(errstr, errstr_size, "commit of %s: %s",
                                 t->name, why);
                        return err;
                }
        }
        return CF_OK;
}
