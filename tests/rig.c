/* rig.c: the stage-chain test rig shared by the stage tests (rig.h). */
#include "rig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tables.h"

/* Rigs not yet freed: removed by cf_rig_cleanup() when a test fails. */
static cf_rig *live[4];

static bool key_is(const cf_out *o, const char *s)
{
        return o->klen == strlen(s) && !memcmp(o->key, s, o->klen);
}

/* Decodes the outputs of a commit into r's arrays. It runs inside
 * cf_inproc_commit(), so it does not fail there: problems are counted and
 * cf_rig_commit() asserts there were none. */
static void sink(void *opaque, const cf_out *o)
{
        cf_rig *r = opaque;
        const cf_registry *reg = cf_inproc_registry(r->ip);
        if (o->topic == CF_OUT_CHARGE) {
                cf_charge_record *cr = cf_arena_alloc(&r->a, sizeof(*cr));
                if (r->n_charges == CF_RIG_MAX_OUT ||
                    cf_decode(reg, CF_RT_CHARGE_RECORD, o->value, o->vlen,
                              &r->a, cr, NULL) ||
                    !key_is(o, cr->session_id)) {
                        r->sink_errors++; /* undecodable, or not keyed by
                                             session id */
                        return;
                }
                cf_buf_init(&r->charge_bytes[r->n_charges]);
                cf_buf_put(&r->charge_bytes[r->n_charges], o->value, o->vlen);
                r->charges[r->n_charges++] = cr;
        } else if (o->topic == CF_OUT_STATEMENT) {
                cf_statement *st = cf_arena_alloc(&r->a, sizeof(*st));
                if (r->n_stmts == CF_RIG_MAX_OUT ||
                    cf_decode(reg, CF_RT_STATEMENT, o->value, o->vlen, &r->a,
                              st, NULL) ||
                    !key_is(o, st->statement_id)) {
                        r->sink_errors++;
                        return;
                }
                cf_buf_init(&r->stmt_bytes[r->n_stmts]);
                cf_buf_put(&r->stmt_bytes[r->n_stmts], o->value, o->vlen);
                r->stmts[r->n_stmts++] = st;
        } else if (o->topic == CF_OUT_REJECTED) {
                cf_rejected *rj = cf_arena_alloc(&r->a, sizeof(*rj));
                if (r->n_rejects == CF_RIG_MAX_OUT ||
                    cf_decode(reg, CF_RT_REJECTED, o->value, o->vlen, &r->a, rj,
                              NULL)) {
                        r->sink_errors++;
                        return;
                }
                r->rejects[r->n_rejects++] = rj;
        } else if (o->topic == CF_OUT_REPARTITION) {
                cf_billing_event ev;
                cf_arena tmp;
                cf_arena_init(&tmp, 0);
                if (cf_decode(reg, CF_RT_BILLING_EVENT, o->value, o->vlen, &tmp,
                              &ev, NULL)) {
                        r->sink_errors++;
                } else if (ev.kind == CF_BILLING_CHARGE &&
                           r->n_rp < CF_RIG_MAX_OUT) {
                        cf_out *c = calloc(1, sizeof(*c));
                        *c = *o;
                        c->task = NULL;
                        c->key = malloc(o->klen + 1);
                        memcpy(c->key, o->key, o->klen);
                        c->value = malloc(o->vlen + 1);
                        memcpy(c->value, o->value, o->vlen);
                        r->rp[r->n_rp++] = c;
                }
                cf_arena_destroy(&tmp);
        }
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

cf_rig *cf_rig_new(const char *tag)
{
        cf_rig *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        char dir[128];
        snprintf(dir, sizeof(dir), "/tmp/cf-test-%s-XXXXXX", tag);
        r->dir = strdup(dir);
        assert_non_null(mkdtemp(r->dir));
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
                if (!live[i]) {
                        live[i] = r;
                        break;
                }
        }
        cf_arena_init(&r->a, 0);
        cf_buf_init(&r->last_key);
        cf_buf_init(&r->last_value);
        r->last_input = -1;
        cf_config_init(&r->cfg);
        cf_rig_set(r, "state.dir", r->dir);
        return r;
}

void cf_rig_set(cf_rig *r, const char *key, const char *value)
{
        char err[256];
        if (cf_config_set(&r->cfg, key, value, err, sizeof(err)))
                fail_msg("%s", err);
}

void cf_rig_set_int(cf_rig *r, const char *key, int64_t v)
{
        char s[32];
        snprintf(s, sizeof(s), "%lld", (long long)v);
        cf_rig_set(r, key, s);
}

void cf_rig_open(cf_rig *r, int32_t parts)
{
        char err[512];
        assert_true(parts >= 1 && parts <= CF_RIG_MAX_PARTS);
        if (cf_inproc_new(&r->cfg, parts, sink, r, &r->ip, err, sizeof(err)))
                fail_msg("cf_inproc_new: %s", err);
        r->parts = parts;
        r->rejects_at_open = r->n_rejects;
}

void cf_rig_commit(cf_rig *r)
{
        char err[512];
        if (cf_inproc_commit(r->ip, err, sizeof(err)))
                fail_msg("commit: %s", err);
        assert_int_equal(r->sink_errors, 0);
}

void cf_rig_check(cf_rig *r)
{
        int64_t rejected = 0;
        for (int32_t i = 0; i < 2 * r->parts; i++) {
                const cf_task *t = cf_inproc_task(r->ip, i);
                assert_non_null(t);
                for (int in = 0; in < CF_IN__CNT; in++) {
                        const cf_counts *c = &t->cnt[in];
                        assert_int_equal(c->in, c->accepted + c->dup +
                                                    c->rejected + c->pending);
                        rejected += c->rejected;
                }
        }
        assert_int_equal((int64_t)(r->n_rejects - r->rejects_at_open),
                         rejected);
}

void cf_rig_restart(cf_rig *r)
{
        cf_rig_commit(r);
        cf_rig_check(r);
        cf_inproc_destroy(r->ip);
        r->ip = NULL;
        cf_rig_open(r, r->parts);
}

void cf_rig_free(cf_rig *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i] == r)
                        live[i] = NULL;
        cf_inproc_destroy(r->ip);
        cf_config_destroy(&r->cfg);
        for (size_t i = 0; i < r->n_charges; i++)
                cf_buf_free(&r->charge_bytes[i]);
        for (size_t i = 0; i < r->n_stmts; i++)
                cf_buf_free(&r->stmt_bytes[i]);
        for (size_t i = 0; i < r->n_rp; i++)
                cf_out_free(r->rp[i]);
        cf_arena_destroy(&r->a);
        cf_buf_free(&r->last_key);
        cf_buf_free(&r->last_value);
        nftw(r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(r->dir);
        free(r);
}

void cf_rig_done(cf_rig *r)
{
        cf_rig_commit(r);
        cf_rig_check(r);
        cf_rig_free(r);
}

int cf_rig_cleanup(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i])
                        cf_rig_free(live[i]);
        return 0;
}

cf_task *cf_rig_task(cf_rig *r, int32_t p)
{
        return cf_inproc_task(r->ip, p);
}

void cf_rig_table(cf_rig *r, cf_table_kind k, cf_rtype rt, const char *key,
                  const void *rec)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(r->ip), rt, rec, &b);
        assert_true(cf_inproc_table(r->ip, k, key, strlen(key), b.p, b.len));
        cf_buf_free(&b);
}

int64_t cf_rig_feed_raw(cf_rig *r, int32_t part, int32_t input, int64_t ts,
                        const char *key, const void *value, size_t vlen)
{
        assert_true(part >= 0 && part < CF_RIG_MAX_PARTS);
        cf_src src = { .input = input,
                       .partition = part,
                       .offset = r->next_offset[part][input]++,
                       .ts = ts,
                       .key = (const uint8_t *)key,
                       .key_len = (uint32_t)strlen(key),
                       .value = value,
                       .value_len = (uint32_t)vlen };
        cf_inproc_feed(r->ip, &src);
        if (r->last_value.p != value) {
                r->last_input = input;
                r->last_part = part;
                r->last_key.len = 0;
                cf_buf_put(&r->last_key, key, strlen(key) + 1);
                r->last_value.len = 0;
                cf_buf_put(&r->last_value, value, vlen);
        }
        return src.offset;
}

int64_t cf_rig_feed(cf_rig *r, int32_t part, int32_t input, int64_t ts,
                    const char *key, cf_rtype rt, const void *rec)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(cf_inproc_registry(r->ip), rt, rec, &b);
        int64_t off = cf_rig_feed_raw(r, part, input, ts, key, b.p, b.len);
        cf_buf_free(&b);
        return off;
}

void cf_rig_tick(cf_rig *r, int64_t ts)
{
        assert_true(r->last_input >= 0);
        assert_true(ts > cf_rig_task(r, r->last_part)->stream_time);
        /* With timestamp.source=event the repeat's own time must move too:
         * the same record (the same identity for dedup) at time ts. */
        const cf_registry *reg = cf_inproc_registry(r->ip);
        bool ev = r->last_input == CF_IN_SESSIONS;
        cf_rtype rt = ev ? CF_RT_SESSION_EVENT : CF_RT_METER_READING;
        cf_arena a;
        cf_arena_init(&a, 0);
        void *rec = cf_arena_alloc(&a, cf_rtype_max_size());
        cf_buf b;
        cf_buf_init(&b);
        if (r->last_input != CF_IN_REPARTITION &&
            !cf_decode(reg, rt, r->last_value.p, r->last_value.len, &a, rec,
                       NULL)) {
                if (ev)
                        ((cf_session_event *)rec)->time_ms = ts;
                else
                        ((cf_meter_reading *)rec)->time_ms = ts;
                cf_encode(reg, rt, rec, &b);
        } else {
                cf_buf_put(&b, r->last_value.p, r->last_value.len);
        }
        cf_src src = { .input = r->last_input,
                       .partition = r->last_part,
                       .offset = r->next_offset[r->last_part][r->last_input]++,
                       .ts = ts,
                       .key = r->last_key.p,
                       .key_len = (uint32_t)strlen((const char *)r->last_key.p),
                       .value = b.p,
                       .value_len = (uint32_t)b.len };
        cf_inproc_feed(r->ip, &src);
        cf_buf_free(&b);
        cf_arena_destroy(&a);
}

const cf_charge_record *cf_rig_charge_of(cf_rig *r, const char *sid)
{
        const cf_charge_record *found = NULL;
        for (size_t i = 0; i < r->n_charges; i++) {
                if (!strcmp(r->charges[i]->session_id, sid)) {
                        assert_null(found); /* exactly once */
                        found = r->charges[i];
                }
        }
        assert_non_null(found);
        return found;
}

cf_tariff cf_rig_tariff(const char *id, cf_tariff_element *el)
{
        return (cf_tariff){ .tariff_id = (char *)id,
                            .currency = "NOK",
                            .elements = el,
                            .n_elements = 1,
                            .min_price_minor = CF_NONE,
                            .max_price_minor = CF_NONE,
                            .min_price_incl_minor = CF_NONE,
                            .max_price_incl_minor = CF_NONE,
                            .start_ms = CF_NONE,
                            .end_ms = CF_NONE };
}
