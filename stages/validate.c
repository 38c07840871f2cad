/*
 * validate.c: the validate stage. Checks what a record says on its own and
 * against the sites table:
 *  - FIELD: no key (inputs are keyed by charger id: a record without one
 *    cannot be placed with its charger's other records), an empty id, an
 *    id that is not valid UTF-8 (Avro strings are UTF-8, and ids reach the
 *    outputs) or longer than CF_ID_MAX_BYTES, a negative energy register,
 *    sequence number, power or current, a connector below 1, a negative
 *    time;
 *  - CLOCK: a time further ahead of the task's stream time than
 *    max.clock.skew.ms;
 *  - UNKNOWN_SITE: no config for the record's site. Such records are held
 *    (pending) for unknown.site.wait.ms of stream time: if the site's config
 *    arrives by then they go on, in their order; if not, each is rejected.
 * Checks that need the session (regression, jump, stop before start) are
 * sessionize's.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dheap.h"
#include "stages.h"
#include "tables.h"
#include "utf8.h"
#include "wire.h"

/* The longest id accepted (bytes). OCPI ids are at most 36 characters;
 * this leaves room for any CPMS's ids, and keeps outputs keyed by ids far
 * below any message size limit. */
#define CF_ID_MAX_BYTES 255

/* Records held for one unknown site. */
typedef struct site_wait {
        int64_t first_ts;
        cf_src **held;
        uint32_t n_held;
} site_wait;

typedef struct va_ctx {
        cf_store *waits; /* site id -> site_wait */
        cf_dheap timers;
        int64_t skew, wait;
} va_ctx;

static void sw_encode(void *opaque, const void *obj, cf_buf *b)
{
        const site_wait *w = obj;
        (void)opaque;
        cf_put_varint(b, w->first_ts);
        cf_put_varint(b, w->n_held);
        for (uint32_t i = 0; i < w->n_held; i++)
                cf_src_encode(w->held[i], b);
}

static void sw_free(void *opaque, void *obj)
{
        site_wait *w = obj;
        (void)opaque;
        for (uint32_t i = 0; i < w->n_held; i++)
                free(w->held[i]);
        free(w->held);
        free(w);
}

static void *sw_decode(void *opaque, const uint8_t *p, size_t len)
{
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        site_wait *w = cf_calloc(1, sizeof(*w));
        w->first_ts = cf_get_varint(&r);
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                goto fail;
        w->held = cf_calloc((size_t)n + 1, sizeof(cf_src *));
        for (int64_t i = 0; i < n; i++) {
                if (!(w->held[i] = cf_src_decode(&r)))
                        goto fail;
                w->n_held++;
        }
        if (r.ok && r.p == r.end)
                return w;
fail:
        sw_free(opaque, w);
        return NULL;
}

static size_t sw_size(void *opaque, const void *obj)
{
        const site_wait *w = obj;
        size_t n = sizeof(*w);
        (void)opaque;
        for (uint32_t i = 0; i < w->n_held; i++)
                n += sizeof(cf_src) + sizeof(void *) + w->held[i]->key_len +
                     w->held[i]->value_len;
        return n;
}

static const cf_store_ops sw_ops = {
        .encode = sw_encode,
        .decode = sw_decode,
        .free = sw_free,
        .size = sw_size,
};

static bool empty(const char *s)
{
        return !s || !*s;
}

/* A problem of optional string id s (NULL: absent), or NULL. */
static const char *id_problem(const char *s, const char *bad_utf8,
                              const char *too_long)
{
        if (!s)
                return NULL;
        size_t n = strlen(s);
        if (n > CF_ID_MAX_BYTES)
                return too_long;
        return cf_utf8_valid(s, n) ? NULL : bad_utf8;
}

#define ID_CHECK(s, name)                                                      \
        do {                                                                   \
                const char *p_ = id_problem(s, name " is not valid UTF-8",     \
                                            name " longer than 255 bytes");    \
                if (p_)                                                        \
                        return p_;                                             \
        } while (0)

/* The FIELD problem of a record, or NULL. */
static const char *field_problem(const cf_item *it)
{
        if (!it->src->key)
                return "no key (input records are keyed by charger id)";
        if (it->kind == CF_ITEM_EVENT) {
                const cf_session_event *e = it->rec;
                if (empty(e->event_id))
                        return "empty event_id";
                if (empty(e->session_id))
                        return "empty session_id";
                if (empty(e->site_id))
                        return "empty site_id";
                if (empty(e->charger_id))
                        return "empty charger_id";
                ID_CHECK(e->event_id, "event_id");
                ID_CHECK(e->session_id, "session_id");
                ID_CHECK(e->site_id, "site_id");
                ID_CHECK(e->charger_id, "charger_id");
                ID_CHECK(e->user_id, "user_id");
                ID_CHECK(e->badge_id, "badge_id");
                if (e->connector_id < 1)
                        return "connector_id below 1";
                if (e->energy_wh < 0)
                        return "negative energy register";
                if (e->time_ms < 0)
                        return "negative time";
                return NULL;
        }
        const cf_meter_reading *m = it->rec;
        if (empty(m->event_id))
                return "empty event_id";
        if (m->session_id && !*m->session_id)
                return "empty session_id";
        if (empty(m->site_id))
                return "empty site_id";
        if (empty(m->charger_id))
                return "empty charger_id";
        ID_CHECK(m->event_id, "event_id");
        ID_CHECK(m->session_id, "session_id");
        ID_CHECK(m->site_id, "site_id");
        ID_CHECK(m->charger_id, "charger_id");
        if (m->connector_id < 1)
                return "connector_id below 1";
        if (m->seq_no < 0)
                return "negative seq_no";
        if (m->energy_wh < 0)
                return "negative energy register";
        if (m->power_w != CF_NONE && m->power_w < 0)
                return "negative power";
        if (m->current_ma != CF_NONE && m->current_ma < 0)
                return "negative current";
        if (m->time_ms < 0)
                return "negative time";
        return NULL;
}

static const char *site_of(const cf_item *it)
{
        return it->kind == CF_ITEM_EVENT
                   ? ((const cf_session_event *)it->rec)->site_id
                   : ((const cf_meter_reading *)it->rec)->site_id;
}

static cf_stage_rc va_process(cf_task *t, void *ctx, cf_item *it)
{
        va_ctx *c = ctx;
        if (it->kind != CF_ITEM_EVENT && it->kind != CF_ITEM_READING)
                return CF_STAGE_PASS;
        const char *why = field_problem(it);
        int64_t now = cf_task_stream_time(t);
        /* A reading dedup could not place that fails a check is taken for
         * the repeat of one rejected before (sessionize.c, on_reading). */
        if (it->maybe_repeat &&
            (why || (now != CF_NONE && it->event_time > now + c->skew))) {
                cf_task_count(t, &cf_stage_validate,
                              "repeats_beyond_dedup_window", 1);
                return CF_STAGE_DUP;
        }
        if (why) {
                cf_task_reject(t, &cf_stage_validate, it->src, CF_REJECT_FIELD,
                               it->event_time, "%s", why);
                return CF_STAGE_REJECTED;
        }
        /* Before any record with a Kafka timestamp there is no stream time
         * to be ahead of. */
        if (now != CF_NONE && it->event_time > now + c->skew) {
                cf_task_reject(t, &cf_stage_validate, it->src, CF_REJECT_CLOCK,
                               it->event_time,
                               "time %lld is %lld ms ahead of the stream "
                               "(max.clock.skew.ms %lld)",
                               (long long)it->event_time,
                               (long long)(it->event_time - now),
                               (long long)c->skew);
                return CF_STAGE_REJECTED;
        }
        const char *site = site_of(it);
        size_t sl = strlen(site);
        site_wait *w = cf_store_get(c->waits, site, sl);
        if (!w && cf_tables_site(cf_task_tables(t), site))
                return CF_STAGE_PASS;
        /* Unknown site (or earlier records of it still waiting: keep the
         * order). */
        if (!w) {
                w = cf_calloc(1, sizeof(*w));
                w->first_ts = now;
                cf_store_put(c->waits, site, sl, w);
                cf_dheap_push(&c->timers, now + c->wait, site);
        }
        w->held = cf_realloc(w->held, (w->n_held + 1) * sizeof(cf_src *));
        w->held[w->n_held++] = cf_src_dup(it->src);
        cf_store_dirty(c->waits, site, sl);
        return CF_STAGE_HELD;
}

/* The wait for site is over: replay its records if the site is known now,
 * else reject them. */
static void settle(cf_task *t, va_ctx *c, const char *site)
{
        size_t sl = strlen(site);
        site_wait *w = cf_store_get(c->waits, site, sl);
        if (!w)
                return;
        cf_src **held = w->held;
        uint32_t n = w->n_held;
        w->held = NULL;
        w->n_held = 0;
        cf_store_del(c->waits, site, sl);
        bool known = cf_tables_site(cf_task_tables(t), site) != NULL;
        for (uint32_t i = 0; i < n; i++) {
                const cf_src *src = held[i];
                cf_arena *a = cf_task_scratch(t);
                void *rec = cf_arena_alloc(a, cf_rtype_max_size());
                bool ev = src->input == CF_IN_SESSIONS;
                if (cf_decode(cf_task_registry(t),
                              ev ? CF_RT_SESSION_EVENT : CF_RT_METER_READING,
                              src->value, src->value_len, a, rec, NULL))
                        abort(); /* decoded once already */
                if (!known) {
                        cf_task_reject(
                            t, &cf_stage_validate, src, CF_REJECT_UNKNOWN_SITE,
                            ev ? ((cf_session_event *)rec)->time_ms
                               : ((cf_meter_reading *)rec)->time_ms,
                            "no config for site %s after unknown.site.wait.ms "
                            "(%lld)",
                            site, (long long)c->wait);
                        cf_task_resolve(t, src, CF_STAGE_REJECTED);
                } else {
                        cf_item it = {
                                .kind = ev ? CF_ITEM_EVENT : CF_ITEM_READING,
                                .src = src,
                                .rec = rec,
                                .event_time =
                                    ev ? ((cf_session_event *)rec)->time_ms
                                       : ((cf_meter_reading *)rec)->time_ms,
                        };
                        cf_stage_rc rc =
                            cf_task_forward(t, &cf_stage_validate, &it);
                        if (rc != CF_STAGE_HELD)
                                cf_task_resolve(t, src, rc);
                }
                free(held[i]);
        }
        free(held);
}

static void va_advance(cf_task *t, void *ctx, int64_t now)
{
        va_ctx *c = ctx;
        while (cf_dheap_due(&c->timers, now)) {
                cf_dheap_ent e = cf_dheap_pop(&c->timers);
                settle(t, c, e.key);
                free(e.key);
        }
}

static void va_drain(cf_task *t, void *ctx)
{
        va_advance(t, ctx, INT64_MAX / 2);
}

static int load_one(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        va_ctx *c = opaque;
        const site_wait *w = obj;
        char *site = cf_malloc(klen + 1);
        memcpy(site, key, klen);
        site[klen] = '\0';
        cf_dheap_push_owned(&c->timers, w->first_ts + c->wait, site);
        return 0;
}

static cf_err_t va_init(cf_task *t, void **ctxp, char *errstr,
                        size_t errstr_size)
{
        const cf_config *cfg = cf_task_config(t);
        va_ctx *c = cf_calloc(1, sizeof(*c));
        cf_dheap_init(&c->timers);
        c->skew = cfg->max_clock_skew_ms;
        c->wait = cfg->unknown_site_wait_ms;
        /* Its share of the task's budget (cf_task_cache_budget): 1/8. */
        c->waits = cf_task_store(t, CF_COL_PENDING, &sw_ops, c,
                                 cf_task_cache_budget(t) / 8, true);
        cf_err_t err = cf_store_load_all(c->waits, errstr, errstr_size);
        if (!err) /* every wait, also those that did not fit the cache */
                err = cf_store_visit_all(c->waits, load_one, c, errstr,
                                         errstr_size);
        if (err) {
                cf_dheap_free(&c->timers);
                free(c);
                return err;
        }
        *ctxp = c;
        return CF_OK;
}

static void va_destroy(void *ctx)
{
        va_ctx *c = ctx;
        if (!c)
                return;
        cf_dheap_free(&c->timers);
        free(c);
}

const cf_stage cf_stage_validate = {
        .name = "validate",
        .init = va_init,
        .process = va_process,
        .advance = va_advance,
        .drain = va_drain,
        .destroy = va_destroy,
};
