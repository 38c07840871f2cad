/*
 * bill.c: the bill stage of billing (sub-topology B): aggregate and close.
 *
 * Aggregate: each charge record (from the repartition topic, keyed by
 * billed party) adds to the ledger entry of its tenant, billed party and
 * billing period (the period containing its stop time, in its site's time
 * zone and billing period): session count, energy, totals, and lines per
 * site, charger and badge.
 *
 * Watermark: every rating task sends its event-time watermark (in every
 * record it writes here, and in watermark records to every partition). The
 * billing watermark is the minimum over the rating tasks, except those that
 * have sent nothing for watermark.idle.ms of wall-clock time; it never goes
 * back.
 *
 * Close: a period whose end plus billing.grace.ms is at or behind the
 * watermark is closed: its statement is emitted, once, with revision 1 and a
 * deterministic id, and its ledger entry is deleted. A charge record whose
 * period is already behind the watermark by then (a charger that uploaded
 * late) cannot change an issued statement: it becomes an adjustment line,
 * naming its original period, in the party's statement for the period that
 * contains the watermark.
 *
 * Corrections: a revision of a charge record (revision > 1) carries the
 * difference it makes; it is billed like a record of the session's period
 * (its period_id, which revisions keep): added to that period's ledger when
 * still open (energy and money by the difference, no new session), or an
 * adjustment line of the difference, with its revision, when the period
 * was already closed by the same rule as a late record.
 *
 * Aggregate and close are one stage because both decide with the same
 * ledger and the same watermark; split, they would have to share state.
 *
 * State: the ledger (column family BILL) and the sources' watermarks (META
 * of the stage's store), persisted at every commit; the index of open
 * periods by end time is rebuilt from the ledger at start.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hmap.h"
#include "stages.h"
#include "tables.h"
#include "tz.h"
#include "wire.h"

typedef struct line {
        char *key;
        int64_t sessions, energy_wh, excl, vat, incl;
} line;

typedef struct lines {
        line *v;
        uint32_t n;
} lines;

typedef struct adj {
        char *record_id, *session_id, *period_id;
        int64_t energy_wh, excl, vat, incl;
        int32_t revision;
} adj;

/* One open statement. */
typedef struct ledger {
        char *tenant, *party, *period_id, *currency;
        int32_t party_kind;
        int64_t start_ms, end_ms;
        int64_t sessions, energy_wh, excl, vat, incl;
        lines sites, chargers, badges;
        adj *adjs;
        uint32_t n_adjs;
} ledger;

/* What the stage knows of its sources (stored as one value). */
typedef struct sources {
        int32_t n;
        int64_t *wm;       /* CF_NONE: never heard from */
        int64_t watermark; /* the billing watermark, CF_NONE at first */
} sources;

typedef struct bill_ctx {
        cf_store *ledgers;
        cf_store *meta;     /* key "sources" -> sources */
        int64_t *seen_wall; /* per source, wall ms of its last record */
        int64_t start_wall;
        cf_hmap index; /* "end_ms" decimal -> cf_hmap of ledger keys */
        int64_t grace, idle;
        int64_t per_commit; /* billing.statements.per.commit */
} bill_ctx;

/* ---- encodings ---------------------------------------------------------- */

static void put_lines(cf_buf *b, const lines *l)
{
        cf_put_varint(b, l->n);
        for (uint32_t i = 0; i < l->n; i++) {
                cf_put_str(b, l->v[i].key);
                cf_put_varint(b, l->v[i].sessions);
                cf_put_varint(b, l->v[i].energy_wh);
                cf_put_varint(b, l->v[i].excl);
                cf_put_varint(b, l->v[i].vat);
                cf_put_varint(b, l->v[i].incl);
        }
}

static bool get_lines(cf_wrd *r, lines *l, size_t len)
{
        int64_t n = cf_get_varint(r);
        if (!r->ok || n < 0 || n > (int64_t)len)
                return false;
        l->v = cf_calloc((size_t)n + 1, sizeof(line));
        l->n = (uint32_t)n;
        for (int64_t i = 0; i < n; i++) {
                line *x = &l->v[i];
                x->key = cf_get_str(r);
                x->sessions = cf_get_varint(r);
                x->energy_wh = cf_get_varint(r);
                x->excl = cf_get_varint(r);
                x->vat = cf_get_varint(r);
                x->incl = cf_get_varint(r);
        }
        return r->ok;
}

static void free_lines(lines *l)
{
        for (uint32_t i = 0; i < l->n; i++)
                free(l->v[i].key);
        free(l->v);
}

static void ledger_free(void *opaque, void *obj)
{
        ledger *g = obj;
        (void)opaque;
        free(g->tenant);
        free(g->party);
        free(g->period_id);
        free(g->currency);
        free_lines(&g->sites);
        free_lines(&g->chargers);
        free_lines(&g->badges);
        for (uint32_t i = 0; i < g->n_adjs; i++) {
                free(g->adjs[i].record_id);
                free(g->adjs[i].session_id);
                free(g->adjs[i].period_id);
        }
        free(g->adjs);
        free(g);
}

static void ledger_encode(void *opaque, const void *obj, cf_buf *b)
{
        const ledger *g = obj;
        (void)opaque;
        cf_put_str(b, g->tenant);
        cf_put_str(b, g->party);
        cf_put_str(b, g->period_id);
        cf_put_str(b, g->currency);
        cf_put_varint(b, g->party_kind);
        cf_put_varint(b, g->start_ms);
        cf_put_varint(b, g->end_ms);
        cf_put_varint(b, g->sessions);
        cf_put_varint(b, g->energy_wh);
        cf_put_varint(b, g->excl);
        cf_put_varint(b, g->vat);
        cf_put_varint(b, g->incl);
        put_lines(b, &g->sites);
        put_lines(b, &g->chargers);
        put_lines(b, &g->badges);
        cf_put_varint(b, g->n_adjs);
        for (uint32_t i = 0; i < g->n_adjs; i++) {
                const adj *a = &g->adjs[i];
                cf_put_str(b, a->record_id);
                cf_put_str(b, a->session_id);
                cf_put_str(b, a->period_id);
                cf_put_varint(b, a->energy_wh);
                cf_put_varint(b, a->excl);
                cf_put_varint(b, a->vat);
                cf_put_varint(b, a->incl);
        }
        /* Added with corrections: each adjustment's revision. */
        cf_put_varint(b, g->n_adjs);
        for (uint32_t i = 0; i < g->n_adjs; i++)
                cf_put_varint(b, g->adjs[i].revision);
}

static void *ledger_decode(void *opaque, const uint8_t *p, size_t len)
{
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        ledger *g = cf_calloc(1, sizeof(*g));
        g->tenant = cf_get_str(&r);
        g->party = cf_get_str(&r);
        g->period_id = cf_get_str(&r);
        g->currency = cf_get_str(&r);
        g->party_kind = (int32_t)cf_get_varint(&r);
        g->start_ms = cf_get_varint(&r);
        g->end_ms = cf_get_varint(&r);
        g->sessions = cf_get_varint(&r);
        g->energy_wh = cf_get_varint(&r);
        g->excl = cf_get_varint(&r);
        g->vat = cf_get_varint(&r);
        g->incl = cf_get_varint(&r);
        if (!get_lines(&r, &g->sites, len) ||
            !get_lines(&r, &g->chargers, len) ||
            !get_lines(&r, &g->badges, len))
                goto fail;
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                goto fail;
        g->adjs = cf_calloc((size_t)n + 1, sizeof(adj));
        g->n_adjs = (uint32_t)n;
        for (int64_t i = 0; i < n; i++) {
                adj *a = &g->adjs[i];
                a->record_id = cf_get_str(&r);
                a->session_id = cf_get_str(&r);
                a->period_id = cf_get_str(&r);
                a->energy_wh = cf_get_varint(&r);
                a->excl = cf_get_varint(&r);
                a->vat = cf_get_varint(&r);
                a->incl = cf_get_varint(&r);
                a->revision = 1;
        }
        if (r.ok && r.p != r.end && cf_get_varint(&r) == n) {
                for (int64_t i = 0; i < n; i++)
                        g->adjs[i].revision = (int32_t)cf_get_varint(&r);
        }
        if (r.ok && r.p == r.end && g->tenant && g->party && g->period_id)
                return g;
fail:
        ledger_free(opaque, g);
        return NULL;
}

static size_t ledger_size(void *opaque, const void *obj)
{
        const ledger *g = obj;
        (void)opaque;
        return sizeof(*g) + 256 +
               (g->sites.n + g->chargers.n + g->badges.n) *
                   (sizeof(line) + 24) +
               g->n_adjs * (sizeof(adj) + 64);
}

static const cf_store_ops ledger_ops = {
        .encode = ledger_encode,
        .decode = ledger_decode,
        .free = ledger_free,
        .size = ledger_size,
};

static void src_free(void *opaque, void *obj)
{
        sources *s = obj;
        (void)opaque;
        free(s->wm);
        free(s);
}

static void src_encode(void *opaque, const void *obj, cf_buf *b)
{
        const sources *s = obj;
        (void)opaque;
        cf_put_varint(b, s->watermark);
        cf_put_varint(b, s->n);
        for (int32_t i = 0; i < s->n; i++)
                cf_put_varint(b, s->wm[i]);
}

static void *src_decode(void *opaque, const uint8_t *p, size_t len)
{
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        sources *s = cf_calloc(1, sizeof(*s));
        s->watermark = cf_get_varint(&r);
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len) {
                free(s);
                return NULL;
        }
        s->n = (int32_t)n;
        s->wm = cf_calloc((size_t)n + 1, sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
                s->wm[i] = cf_get_varint(&r);
        if (!r.ok || r.p != r.end) {
                src_free(opaque, s);
                return NULL;
        }
        return s;
}

static size_t src_size(void *opaque, const void *obj)
{
        const sources *s = obj;
        (void)opaque;
        return sizeof(*s) + (size_t)s->n * 8;
}

static const cf_store_ops src_ops = {
        .encode = src_encode,
        .decode = src_decode,
        .free = src_free,
        .size = src_size,
};

/* ---- the index of open periods ------------------------------------------- */

static void index_add(bill_ctx *c, int64_t end_ms, const char *key, size_t klen)
{
        char e[24];
        snprintf(e, sizeof(e), "%" PRId64, end_ms);
        cf_hmap *set = cf_hmap_sget(&c->index, e);
        if (!set) {
                set = cf_calloc(1, sizeof(*set));
                cf_hmap_init(set);
                cf_hmap_sput(&c->index, e, set);
        }
        cf_hmap_put(set, key, klen, set);
}

/* ---- aggregate ---------------------------------------------------------- */

static sources *get_sources(bill_ctx *c, int32_t n)
{
        sources *s = cf_store_get(c->meta, "sources", 7);
        if (!s) {
                s = cf_calloc(1, sizeof(*s));
                s->watermark = CF_NONE;
                cf_store_put(c->meta, "sources", 7, s);
        }
        if (s->n < n) {
                s->wm = cf_realloc(s->wm, (size_t)n * sizeof(int64_t));
                for (int32_t i = s->n; i < n; i++)
                        s->wm[i] = CF_NONE;
                s->n = n;
        }
        return s;
}

static line *find_line(lines *l, const char *key)
{
        for (uint32_t i = 0; i < l->n; i++)
                if (!strcmp(l->v[i].key, key))
                        return &l->v[i];
        l->v = cf_realloc(l->v, (l->n + 1) * sizeof(line));
        line *x = &l->v[l->n++];
        memset(x, 0, sizeof(*x));
        x->key = cf_strdup(key);
        return x;
}

/* What a charge record adds to a statement: a session and its totals, or
 * for a revision no session and its difference. */
typedef struct amounts {
        int64_t sessions, energy_wh, excl, vat, incl;
} amounts;

static amounts amounts_of(const cf_charge_record *cr)
{
        if (cr->revision > 1 && cr->correction)
                return (amounts){ 0, cr->correction->energy_wh,
                                  cr->correction->total_excl_vat,
                                  cr->correction->total_vat,
                                  cr->correction->total_incl_vat };
        return (amounts){ 1, cr->energy_wh, cr->total_excl_vat, cr->total_vat,
                          cr->total_incl_vat };
}

static void add_line(lines *l, const char *key, const amounts *m)
{
        line *x = find_line(l, key);
        x->sessions += m->sessions;
        x->energy_wh += m->energy_wh;
        x->excl += m->excl;
        x->vat += m->vat;
        x->incl += m->incl;
}

/* The ledger entry of (tenant, party, period), created if new. */
static ledger *open_ledger(bill_ctx *c, const cf_charge_record *cr,
                           const char *period_id, int64_t ps, int64_t pe)
{
        char key[512];
        int kl = snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", cr->tenant_id,
                          cr->billed_party, period_id);
        if (kl < 0 || (size_t)kl >= sizeof(key))
                kl = (int)sizeof(key) - 1;
        ledger *g = cf_store_get(c->ledgers, key, (size_t)kl);
        if (!g) {
                g = cf_calloc(1, sizeof(*g));
                g->tenant = cf_strdup(cr->tenant_id);
                g->party = cf_strdup(cr->billed_party);
                g->party_kind = cr->party_kind;
                g->period_id = cf_strdup(period_id);
                g->currency = cf_strdup(cr->currency);
                g->start_ms = ps;
                g->end_ms = pe;
                cf_store_put(c->ledgers, key, (size_t)kl, g);
                index_add(c, pe, key, (size_t)kl);
        } else {
                cf_store_dirty(c->ledgers, key, (size_t)kl);
        }
        return g;
}

/*
 * Adds cr to its ledger entry. carried is its source's watermark when the
 * source emitted it; wm is the billing watermark now. A record whose period
 * is behind its own source's watermark is late: an adjustment in the
 * statement of the period containing that watermark. Deciding by the carried
 * watermark (a function of the input alone) rather than by when the record
 * happens to arrive keeps statements identical run after run. Only when a
 * source was skipped as idle can a period close before one of its regular
 * records arrives; such a record also becomes an adjustment, in the period
 * containing the billing watermark.
 */
static void aggregate(cf_task *t, bill_ctx *c, const cf_charge_record *cr,
                      int64_t carried, int64_t wm)
{
        const cf_site *site = cf_tables_site(cf_task_tables(t), cr->site_id);
        const cf_tz *tz = cf_tz_get(site ? site->time_zone : "UTC");
        int32_t kind = site ? site->billing_period : CF_PERIOD_MONTH;
        int64_t ps, pe;
        char pid[CF_PERIOD_ID_MAX];
        if (!tz)
                tz = cf_tz_get("UTC");
        cf_period_of(tz, kind, cr->stop_ms, &ps, &pe, pid);
        /* A revision keeps revision 1's period, which a correction's later
         * stop may have left: step back to it (a correction comes within
         * correction.window.ms: a few periods; bounded, and if it is not
         * found the stop's period stays). */
        if (cr->revision > 1 && strcmp(pid, cr->period_id)) {
                int64_t bs = ps, be = pe;
                char bp[CF_PERIOD_ID_MAX];
                bool found = false;
                for (int i = 0; i < 1000 && !found; i++) {
                        cf_period_of(tz, kind, bs - 1, &bs, &be, bp);
                        found = !strcmp(bp, cr->period_id);
                }
                if (found) {
                        ps = bs;
                        pe = be;
                        memcpy(pid, bp, sizeof(pid));
                }
        }
        amounts m = amounts_of(cr);
        bool late = carried != CF_NONE && pe + c->grace <= carried;
        bool closed = wm != CF_NONE && pe + c->grace <= wm;
        if (late || closed) {
                int64_t at = late ? carried : wm, cs, ce;
                char cid[CF_PERIOD_ID_MAX];
                cf_period_of(tz, kind, at, &cs, &ce, cid);
                if (wm != CF_NONE && ce + c->grace <= wm)
                        cf_period_of(tz, kind, wm, &cs, &ce, cid);
                ledger *g = open_ledger(c, cr, cid, cs, ce);
                g->adjs = cf_realloc(g->adjs, (g->n_adjs + 1) * sizeof(adj));
                adj *a = &g->adjs[g->n_adjs++];
                a->record_id = cf_strdup(cr->record_id);
                a->session_id = cf_strdup(cr->session_id);
                a->period_id = cf_strdup(pid);
                a->energy_wh = m.energy_wh;
                a->excl = m.excl;
                a->vat = m.vat;
                a->incl = m.incl;
                a->revision = cr->revision > 1 ? cr->revision : 1;
                g->excl += m.excl;
                g->vat += m.vat;
                g->incl += m.incl;
                cf_task_count(t, &cf_stage_bill, "adjustments", 1);
                return;
        }
        ledger *g = open_ledger(c, cr, pid, ps, pe);
        g->sessions += m.sessions;
        g->energy_wh += m.energy_wh;
        g->excl += m.excl;
        g->vat += m.vat;
        g->incl += m.incl;
        add_line(&g->sites, cr->site_id, &m);
        add_line(&g->chargers, cr->charger_id, &m);
        add_line(&g->badges, cr->badge_id ? cr->badge_id : "none", &m);
        if (m.sessions == 0)
                cf_task_count(t, &cf_stage_bill, "corrections_in_period", 1);
}

/* ---- close -------------------------------------------------------------- */

static int cmp_line(const void *a, const void *b)
{
        return strcmp(((const line *)a)->key, ((const line *)b)->key);
}

static int cmp_adj(const void *a, const void *b)
{
        const adj *x = a, *y = b;
        int r = strcmp(x->record_id, y->record_id);
        return r ? r
                 : (x->revision > y->revision) - (x->revision < y->revision);
}

static cf_statement_line *stmt_lines(cf_arena *a, lines *l)
{
        if (l->n) /* v is NULL when there are none */
                qsort(l->v, l->n, sizeof(line), cmp_line);
        cf_statement_line *out =
            cf_arena_alloc(a, (l->n + 1) * sizeof(cf_statement_line));
        for (uint32_t i = 0; i < l->n; i++)
                out[i] =
                    (cf_statement_line){ l->v[i].key,       l->v[i].sessions,
                                         l->v[i].energy_wh, l->v[i].excl,
                                         l->v[i].vat,       l->v[i].incl };
        return out;
}

static void emit_statement(cf_task *t, bill_ctx *c, ledger *g)
{
        cf_arena *a = cf_task_scratch(t);
        uint64_t h = cf_hash64(g->tenant, strlen(g->tenant));
        h = cf_hash64(&h, sizeof(h)) ^ cf_hash64(g->party, strlen(g->party));
        h = cf_hash64(&h, sizeof(h)) ^
            cf_hash64(g->period_id, strlen(g->period_id));
        char id[24];
        snprintf(id, sizeof(id), "ST-%016" PRIx64, h);
        if (g->n_adjs) /* adjs is NULL when there are none */
                qsort(g->adjs, g->n_adjs, sizeof(adj), cmp_adj);
        cf_adjustment *adjs =
            cf_arena_alloc(a, (g->n_adjs + 1) * sizeof(cf_adjustment));
        for (uint32_t i = 0; i < g->n_adjs; i++)
                adjs[i] = (cf_adjustment){
                        g->adjs[i].record_id, g->adjs[i].session_id,
                        g->adjs[i].period_id, g->adjs[i].energy_wh,
                        g->adjs[i].excl,      g->adjs[i].vat,
                        g->adjs[i].incl,      g->adjs[i].revision,
                };
        cf_statement st = {
                .statement_id = id,
                .tenant_id = g->tenant,
                .party_kind = g->party_kind,
                .billed_party = g->party,
                .period_id = g->period_id,
                .period_start_ms = g->start_ms,
                .period_end_ms = g->end_ms,
                .revision = 1,
                .currency = g->currency,
                .session_count = g->sessions,
                .energy_wh = g->energy_wh,
                .total_excl_vat = g->excl,
                .total_vat = g->vat,
                .total_incl_vat = g->incl,
                .sites = stmt_lines(a, &g->sites),
                .n_sites = g->sites.n,
                .chargers = stmt_lines(a, &g->chargers),
                .n_chargers = g->chargers.n,
                .badges = stmt_lines(a, &g->badges),
                .n_badges = g->badges.n,
                .adjustments = adjs,
                .n_adjustments = g->n_adjs,
                /* When it was due, not when the watermark happened to
                 * pass: the same on every run. */
                .issued_ms = g->end_ms + c->grace,
        };
        cf_task_emit_statement(t, &st);
        cf_task_count(t, &cf_stage_bill, "statements", 1);
}

static int cmp_key(const void *a, const void *b)
{
        const cf_hmap_slot *x = *(cf_hmap_slot *const *)a,
                           *y = *(cf_hmap_slot *const *)b;
        size_t n = x->klen < y->klen ? x->klen : y->klen;
        int r = memcmp(x->key, y->key, n);
        return r ? r : (int)x->klen - (int)y->klen;
}

/* Closes up to max of the periods in set (one index bucket: they end at
 * the same time), in key order, and takes them out of set. */
static void close_bucket(cf_task *t, bill_ctx *c, cf_hmap *set, size_t max)
{
        cf_hmap_slot **keys = cf_malloc((set->n + 1) * sizeof(*keys));
        size_t n = 0, i = 0;
        cf_hmap_slot *sl;
        while (cf_hmap_next(set, &i, &sl))
                keys[n++] = sl;
        /* Key order, so that the output does not depend on hash order
         * (nor on how many commits the bucket takes). */
        qsort(keys, n, sizeof(*keys), cmp_key);
        if (n > max)
                n = max;
        for (size_t k = 0; k < n; k++) {
                ledger *g =
                    cf_store_get(c->ledgers, keys[k]->key, keys[k]->klen);
                if (g) {
                        emit_statement(t, c, g);
                        cf_store_del(c->ledgers, keys[k]->key, keys[k]->klen);
                        cf_arena_reset(cf_task_scratch(t));
                }
                cf_hmap_del(set, keys[k]->key, keys[k]->klen);
        }
        free(keys);
}

/* The earliest bucket of the index that is due at watermark wm (its end
 * plus the grace behind it): its end, or INT64_MAX. */
static int64_t due_bucket(const bill_ctx *c, int64_t wm)
{
        int64_t best = INT64_MAX;
        size_t i = 0;
        cf_hmap_slot *sl;
        while (cf_hmap_next(&c->index, &i, &sl)) {
                int64_t e = strtoll(sl->key, NULL, 10);
                if (e < best)
                        best = e;
        }
        return wm != CF_NONE && best != INT64_MAX && best + c->grace <= wm
                   ? best
                   : INT64_MAX;
}

/* Recomputes the watermark, then closes the periods due by it, earliest
 * first, up to billing.statements.per.commit statements in the task's
 * next commit: the rest wait for the next commits (the commit's own tick
 * calls this again). A period's statement is the same whenever it leaves:
 * once its end plus grace is behind the watermark, a charge record for it
 * is an adjustment elsewhere (aggregate). */
static void close_due(cf_task *t, bill_ctx *c)
{
        sources *s = get_sources(c, cf_task_sources(t));
        int64_t now = cf_task_wall_ms(t), wm = INT64_MAX;
        bool any = false, known = true;
        for (int32_t i = 0; i < s->n; i++) {
                bool idle =
                    now - (c->seen_wall[i] ? c->seen_wall[i] : c->start_wall) >=
                    c->idle;
                if (idle)
                        continue;
                if (s->wm[i] == CF_NONE) {
                        known = false; /* a live source not heard from */
                        break;
                }
                if (s->wm[i] < wm)
                        wm = s->wm[i];
                any = true;
        }
        if (known && any && (s->watermark == CF_NONE || wm > s->watermark)) {
                s->watermark = wm;
                cf_store_dirty(c->meta, "sources", 7);
        }
        for (;;) {
                size_t out = cf_task_outputs_uncommitted(t);
                if (out >= (size_t)c->per_commit)
                        break;
                int64_t best = due_bucket(c, s->watermark);
                if (best == INT64_MAX)
                        break;
                char e[24];
                snprintf(e, sizeof(e), "%" PRId64, best);
                cf_hmap *set = cf_hmap_sget(&c->index, e);
                close_bucket(t, c, set, (size_t)c->per_commit - out);
                if (!set->n) {
                        cf_hmap_sdel(&c->index, e);
                        cf_hmap_free(set);
                        free(set);
                }
        }
}

/* At the end of input, billing is finished once every rating task has
 * sent its end (until then a statement may still get charges) and every
 * statement due has left (close_due). */
static bool bill_finished(cf_task *t, void *ctx)
{
        bill_ctx *c = ctx;
        sources *s = get_sources(c, cf_task_sources(t));
        for (int32_t i = 0; i < s->n; i++)
                if (s->wm[i] != CF_WATERMARK_END)
                        return false;
        return due_bucket(c, s->watermark) == INT64_MAX;
}

static cf_stage_rc bill_process(cf_task *t, void *ctx, cf_item *it)
{
        bill_ctx *c = ctx;
        if (it->kind != CF_ITEM_BILLING)
                return CF_STAGE_PASS;
        const cf_billing_event *ev = it->rec;
        sources *s = get_sources(c, cf_task_sources(t));
        int32_t src = ev->source_task;
        if (src >= 0 && src < s->n) {
                if (s->wm[src] == CF_NONE || ev->watermark_ms > s->wm[src])
                        s->wm[src] = ev->watermark_ms;
                c->seen_wall[src] = cf_task_wall_ms(t);
                cf_store_dirty(c->meta, "sources", 7);
        }
        int64_t wm = s->watermark;
        if (ev->kind == CF_BILLING_CHARGE) {
                cf_charge_record cr;
                if (!ev->record.p ||
                    cf_decode(cf_task_registry(t), CF_RT_CHARGE_RECORD,
                              ev->record.p, ev->record.n, cf_task_scratch(t),
                              &cr, NULL)) {
                        cf_task_reject(t, &cf_stage_bill, it->src,
                                       CF_REJECT_SCHEMA, CF_NONE,
                                       "billing event without a decodable "
                                       "charge record");
                        return CF_STAGE_REJECTED;
                }
                aggregate(t, c, &cr, ev->watermark_ms, wm);
        }
        close_due(t, c);
        return CF_STAGE_ACCEPTED;
}

static void bill_advance(cf_task *t, void *ctx, int64_t stream_time)
{
        (void)stream_time;
        close_due(t, ctx);
}

static int load_one(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        const ledger *g = obj;
        index_add(opaque, g->end_ms, (const char *)key, klen);
        return 0;
}

static void bill_destroy(void *ctx);

static cf_err_t bill_init(cf_task *t, void **ctxp, char *errstr,
                          size_t errstr_size)
{
        const cf_config *cfg = cf_task_config(t);
        bill_ctx *c = cf_calloc(1, sizeof(*c));
        cf_hmap_init(&c->index);
        c->grace = cfg->billing_grace_ms;
        c->per_commit = cfg->billing_statements_per_commit;
        c->idle = cfg->watermark_idle_ms;
        c->start_wall = cf_task_wall_ms(t);
        c->seen_wall =
            cf_calloc((size_t)cf_task_sources(t) + 1, sizeof(int64_t));
        /* Its share of the task's budget (cf_task_cache_budget): 3/4. */
        c->ledgers = cf_task_store(t, CF_COL_BILL, &ledger_ops, c,
                                   cf_task_cache_budget(t) / 8 * 5, true);
        c->meta = cf_task_store(t, CF_COL_INDEX, &src_ops, c,
                                cf_task_cache_budget(t) / 8, true);
        /* The index covers every stored ledger, also those that did not
         * fit the cache. */
        cf_err_t err = cf_store_load_all(c->ledgers, errstr, errstr_size);
        if (!err)
                err = cf_store_visit_all(c->ledgers, load_one, c, errstr,
                                         errstr_size);
        if (err) {
                bill_destroy(c);
                return err;
        }
        *ctxp = c;
        return CF_OK;
}

static void bill_destroy(void *ctx)
{
        bill_ctx *c = ctx;
        size_t i = 0;
        cf_hmap_slot *sl;
        if (!c)
                return;
        while (cf_hmap_next(&c->index, &i, &sl)) {
                cf_hmap_free(sl->value);
                free(sl->value);
        }
        cf_hmap_free(&c->index);
        free(c->seen_wall);
        free(c);
}

const cf_stage cf_stage_bill = {
        .name = "bill",
        .init = bill_init,
        .process = bill_process,
        .advance = bill_advance,
        .finished = bill_finished,
        .destroy = bill_destroy,
};
