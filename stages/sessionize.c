/*
 * sessionize.c: the sessionize stage. A state machine per session, keyed by
 * session id, with the open session of each charger connector.
 *
 *  - STARTED opens a session (a second STARTED is SESSION_STATE). If another
 *    session is still open on the same connector, that one lost its stop:
 *    it is closed from its last reading, flagged estimated.
 *  - AUTHORIZED attaches the user and badge; STOPPED records the stop.
 *  - A reading joins its session's timeline (time order; the register must
 *    not go down against its neighbours: METER_REGRESSION; the implied power
 *    must stay within the site's maximum: METER_JUMP; it must lie within the
 *    session: CLOCK).
 *  - Records for a session whose STARTED has not arrived are held, for at
 *    most orphan.wait.ms of stream time; then readings are ORPHAN and events
 *    SESSION_STATE. When STARTED arrives they are replayed in order.
 *  - A stopped session is closed once the stream time passes the moment its
 *    stop was seen by allowed.lateness.ms (so late readings still count); an
 *    open one with nothing new for session.timeout.ms is closed from its last
 *    reading, flagged estimated. Closing hands the session to price.
 *  - A closed session is kept whole for correction.window.ms (at least
 *    session.timeout.ms) of stream time. Late data within it is a
 *    correction: a STOPPED for a session closed without one (estimated), or
 *    a reading that passes the usual checks (after an estimated stop too),
 *    reopens the session; it closes again allowed.lateness.ms after the
 *    last late record and price bills it again, as a revision carrying the
 *    difference (price keeps what it billed in the session). Other records
 *    for a closed session are SESSION_STATE. Past the window the session
 *    shrinks to a tombstone (ids, times, what was billed) for one more
 *    window: late data for it then is TOO_LATE. After that it is
 *    forgotten, and its records wait for a start like any other.
 *
 * All of it lives in the task's session store (persisted at every commit),
 * and the deadlines are rebuilt from it at start, so a restarted task makes
 * the same decisions as one that never stopped. Deadlines are kept in a
 * min-heap with lazy re-checking: an entry that pops early is pushed again
 * at the session's current deadline.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dheap.h"
#include "hmap.h"
#include "session.h"
#include "tables.h"
#include "wire.h"

#define GAP_MS             (15 * 60 * 1000) /* readings further apart: METER_GAP */
#define JUMP_TOLERANCE_PCT 110 /* implied power above max * 1.1: JUMP */

typedef struct sz_ctx {
        cf_store *sessions;
        cf_store *chargers; /* charger id -> charger_st */
        cf_dheap timers;    /* session deadlines */
        int64_t lateness, timeout, offline, orphan_wait, window;
        cf_buf tmp;
        bool reading_back; /* in sess_load: keep what is decoded whole */
} sz_ctx;

/* ---- sessions and their encoding ---------------------------------------- */

void cf_session_free(cf_session *s)
{
        if (!s)
                return;
        free(s->session_id);
        free(s->site_id);
        free(s->charger_id);
        free(s->user_id);
        free(s->badge_id);
        free(s->points);
        free(s->start_src);
        for (uint32_t i = 0; i < s->n_held; i++)
                free(s->held[i]);
        free(s->held);
        free(s);
}

/* ---- readings ---------------------------------------------------------- */

/* p as a compact reading of s, or false when it does not fit. */
static bool cp_make(const cf_session *s, const cf_meter_point *p, cf_cpoint *q)
{
        int64_t dt, de;
        if (__builtin_sub_overflow(p->t_ms, s->start_ms, &dt) ||
            __builtin_sub_overflow(p->energy_wh, s->start_wh, &de))
                return false;
        if (dt < 0 || dt > (int64_t)UINT32_MAX || de < 0 ||
            de > (int64_t)UINT32_MAX)
                return false;
        if (p->power_w != CF_NONE &&
            (p->power_w < 0 || p->power_w >= (int64_t)CF_CP_NONE))
                return false;
        if (p->current_ma != CF_NONE &&
            (p->current_ma < 0 || p->current_ma >= (int64_t)CF_CP_NONE))
                return false;
        q->dt_ms = (uint32_t)dt;
        q->de_wh = (uint32_t)de;
        q->power_w = p->power_w == CF_NONE ? CF_CP_NONE : (uint32_t)p->power_w;
        q->current_ma =
            p->current_ma == CF_NONE ? CF_CP_NONE : (uint32_t)p->current_ma;
        return true;
}

cf_meter_point cf_session_point(const cf_session *s, uint32_t i)
{
        i -= s->base;
        if (s->wide_points)
                return ((const cf_meter_point *)s->points)[i];
        const cf_cpoint *q = &((const cf_cpoint *)s->points)[i];
        return (cf_meter_point){
                s->start_ms + q->dt_ms,
                s->start_wh + q->de_wh,
                q->power_w == CF_CP_NONE ? CF_NONE : (int64_t)q->power_w,
                q->current_ma == CF_CP_NONE ? CF_NONE : (int64_t)q->current_ma,
        };
}

static size_t point_size(const cf_session *s)
{
        return s->wide_points ? sizeof(cf_meter_point) : sizeof(cf_cpoint);
}

size_t cf_session_points_bytes(const cf_session *s)
{
        return (size_t)s->cap_points * point_size(s);
}

/* Turns s's readings into cf_meter_points (same capacity). */
static void widen(cf_session *s)
{
        cf_meter_point *w =
            cf_malloc((size_t)s->cap_points * sizeof(cf_meter_point) + 1);
        for (uint32_t i = s->base; i < s->n_points; i++)
                w[i - s->base] = cf_session_point(s, i);
        free(s->points);
        s->points = w;
        s->wide_points = true;
}

void cf_session_insert(cf_session *s, uint32_t pos, cf_meter_point p)
{
        cf_cpoint q;
        bool fits = !s->wide_points && cp_make(s, &p, &q);
        if (!s->wide_points && !fits)
                widen(s);
        if (pos < s->base)
                abort(); /* a caller did not read the readings back */
        if (s->n_points - s->base == s->cap_points) {
                /* 1.5x from 16: at most half the readings again as slack
                 * (a session decoded from the store is sized exactly). */
                uint32_t cap =
                    s->cap_points < 16 ? 16 : s->cap_points + s->cap_points / 2;
                s->points = cf_realloc(s->points, (size_t)cap * point_size(s));
                s->cap_points = cap;
        }
        size_t sz = point_size(s);
        uint8_t *base = s->points;
        uint32_t at = pos - s->base;
        memmove(base + (at + 1) * sz, base + at * sz,
                (size_t)(s->n_points - pos) * sz);
        if (s->wide_points)
                ((cf_meter_point *)s->points)[at] = p;
        else
                ((cf_cpoint *)s->points)[at] = q;
        s->n_points++;
        if (pos < s->changed_from)
                s->changed_from = pos;
}

static char *dup_or_null(const char *s)
{
        return s ? cf_strdup(s) : NULL;
}

static cf_session *session_new(const char *sid, const char *site,
                               const char *charger, int32_t connector,
                               int64_t ts)
{
        cf_session *s = cf_calloc(1, sizeof(*s));
        s->session_id = cf_strdup(sid);
        s->site_id = cf_strdup(site);
        s->charger_id = cf_strdup(charger);
        s->connector_id = connector;
        s->start_ms = CF_NONE;
        s->stop_ms = CF_NONE;
        s->stop_reason = -1;
        s->charging_end_ms = CF_NONE;
        s->first_ts = ts;
        s->last_ts = ts;
        s->stop_ts = CF_NONE;
        return s;
}

/* The stored form (version 2) is the same whether the session holds its
 * readings compact or full: varint deltas from reading to reading. A
 * decoded session's array is sized exactly, compact unless a reading does
 * not fit. Version 1 (before corrections) lacked what price billed; its
 * closed sessions had dropped their readings, so they stay final. */
static void sess_load(sz_ctx *c, cf_session *s);

static void sess_encode(void *opaque, const void *obj, cf_buf *b)
{
        const cf_session *s = obj;
        if (s->base) /* written whole: every reading, read back first */
                sess_load(opaque, (cf_session *)obj);
        cf_put_varint(b, 2); /* encoding version */
        cf_put_str(b, s->session_id);
        cf_put_str(b, s->site_id);
        cf_put_str(b, s->charger_id);
        cf_put_varint(b, s->connector_id);
        cf_put_str(b, s->user_id);
        cf_put_str(b, s->badge_id);
        cf_put_varint(b, s->flags);
        cf_put_varint(b, s->start_ms);
        cf_put_varint(b, s->start_wh);
        cf_put_varint(b, s->stop_ms);
        cf_put_varint(b, s->stop_wh);
        cf_put_varint(b, s->stop_reason);
        cf_put_varint(b, s->first_ts);
        cf_put_varint(b, s->last_ts);
        cf_put_varint(b, s->stop_ts);
        cf_put_varint(b, s->n_points);
        int64_t pt = 0, pe = 0;
        for (uint32_t i = 0; i < s->n_points; i++) {
                const cf_meter_point p = cf_session_point(s, i);
                cf_put_varint(b, p.t_ms - pt); /* deltas stay small */
                cf_put_varint(b, p.energy_wh - pe);
                cf_put_varint(b, p.power_w);
                cf_put_varint(b, p.current_ma);
                pt = p.t_ms;
                pe = p.energy_wh;
        }
        cf_put_varint(b, s->start_src != NULL);
        if (s->start_src)
                cf_src_encode(s->start_src, b);
        cf_put_varint(b, s->n_held);
        for (uint32_t i = 0; i < s->n_held; i++)
                cf_src_encode(s->held[i], b);
        cf_put_varint(b, s->billed.revision);
        cf_put_varint(b, s->billed.stop_ms);
        cf_put_varint(b, s->billed.energy_wh);
        cf_put_varint(b, s->billed.excl);
        cf_put_varint(b, s->billed.vat);
        cf_put_varint(b, s->billed.incl);
        for (int k = 0; k < 3; k++)
                cf_put_varint(b, (int64_t)s->eid[k]);
}

static void *sess_decode(void *opaque, const uint8_t *p, size_t len)
{
        cf_wrd r;
        (void)opaque;
        cf_wrd_init(&r, p, len);
        int64_t version = cf_get_varint(&r);
        if (version != 1 && version != 2)
                return NULL;
        cf_session *s = cf_calloc(1, sizeof(*s));
        s->session_id = cf_get_str(&r);
        s->site_id = cf_get_str(&r);
        s->charger_id = cf_get_str(&r);
        s->connector_id = (int32_t)cf_get_varint(&r);
        s->user_id = cf_get_str(&r);
        s->badge_id = cf_get_str(&r);
        s->flags = (uint32_t)cf_get_varint(&r);
        s->start_ms = cf_get_varint(&r);
        s->start_wh = cf_get_varint(&r);
        s->stop_ms = cf_get_varint(&r);
        s->stop_wh = cf_get_varint(&r);
        s->stop_reason = (int32_t)cf_get_varint(&r);
        s->first_ts = cf_get_varint(&r);
        s->last_ts = cf_get_varint(&r);
        s->stop_ts = cf_get_varint(&r);
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                goto fail;
        /* Exactly sized: compact, or wide from the first reading that
         * does not fit (cf_session_insert never grows a full array here). */
        s->cap_points = (uint32_t)n;
        s->points = cf_malloc((size_t)n * sizeof(cf_cpoint) + 1);
        int64_t pt = 0, pe = 0;
        for (int64_t i = 0; i < n && r.ok; i++) {
                cf_meter_point q;
                q.t_ms = pt += cf_get_varint(&r);
                q.energy_wh = pe += cf_get_varint(&r);
                q.power_w = cf_get_varint(&r);
                q.current_ma = cf_get_varint(&r);
                cf_session_insert(s, (uint32_t)i, q);
        }
        if (cf_get_varint(&r) == 1)
                s->start_src = cf_src_decode(&r);
        n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                goto fail;
        s->held = cf_calloc((size_t)n + 1, sizeof(cf_src *));
        for (int64_t i = 0; i < n; i++) {
                s->held[i] = cf_src_decode(&r);
                if (!s->held[i])
                        goto fail;
                s->n_held++;
        }
        if (version == 2) {
                s->billed.revision = (int32_t)cf_get_varint(&r);
                s->billed.stop_ms = cf_get_varint(&r);
                s->billed.energy_wh = cf_get_varint(&r);
                s->billed.excl = cf_get_varint(&r);
                s->billed.vat = cf_get_varint(&r);
                s->billed.incl = cf_get_varint(&r);
                for (int k = 0; k < 3; k++)
                        s->eid[k] = (uint64_t)cf_get_varint(&r);
        } else if (s->flags & CF_SESS_CLOSED) {
                s->flags |= CF_SESS_FINAL;
        }
        if (!r.ok || r.p != r.end || !s->session_id || !s->site_id ||
            !s->charger_id)
                goto fail;
        return s;
fail:
        cf_session_free(s);
        return NULL;
}

static void sess_free(void *opaque, void *obj)
{
        (void)opaque;
        cf_session_free(obj);
}

static size_t sess_size(void *opaque, const void *obj)
{
        const cf_session *s = obj;
        size_t n = sizeof(*s) + cf_session_points_bytes(s) + 64;
        (void)opaque;
        if (s->start_src)
                n += sizeof(cf_src) + s->start_src->key_len +
                     s->start_src->value_len;
        for (uint32_t i = 0; i < s->n_held; i++)
                n += sizeof(cf_src) + s->held[i]->key_len +
                     s->held[i]->value_len + sizeof(void *);
        return n;
}

/* ---- storing what changed ---------------------------------------------- *
 * A session is stored in parts (store.h): part 0 the whole session as
 * above, then one part per commit that changed it, as long as that commit
 * only changed its numbers and added readings after those stored (a late
 * reading inserted between them, a new user or held record: whole). A
 * part: version 4, a bit mask of the numbers that changed and each one's
 * difference, then the readings added, each from the one before as in the
 * whole encoding. At country scale a session takes a reading every minute
 * for hours: this stores each reading once, not the session again with
 * every reading. */

/* The numbers of s, in the order of sess_encode. */
static void sess_scalars(const cf_session *s, int64_t v[CF_SESS_NSCALARS])
{
        const int64_t x[CF_SESS_NSCALARS] = {
                s->connector_id,     s->flags,           s->start_ms,
                s->start_wh,         s->stop_ms,         s->stop_wh,
                s->stop_reason,      s->first_ts,        s->last_ts,
                s->stop_ts,          s->billed.revision, s->billed.stop_ms,
                s->billed.energy_wh, s->billed.excl,     s->billed.vat,
                s->billed.incl,      (int64_t)s->eid[0], (int64_t)s->eid[1],
                (int64_t)s->eid[2],
        };
        memcpy(v, x, sizeof(x));
}

static void sess_set_scalars(cf_session *s, const int64_t v[CF_SESS_NSCALARS])
{
        s->connector_id = (int32_t)v[0];
        s->flags = (uint32_t)v[1];
        s->start_ms = v[2];
        s->start_wh = v[3];
        s->stop_ms = v[4];
        s->stop_wh = v[5];
        s->stop_reason = (int32_t)v[6];
        s->first_ts = v[7];
        s->last_ts = v[8];
        s->stop_ts = v[9];
        s->billed.revision = (int32_t)v[10];
        s->billed.stop_ms = v[11];
        s->billed.energy_wh = v[12];
        s->billed.excl = v[13];
        s->billed.vat = v[14];
        s->billed.incl = v[15];
        for (int k = 0; k < 3; k++)
                s->eid[k] = (uint64_t)v[16 + k];
}

/* A hash of what a part never carries: the ids, the STARTED record, the
 * held records (their encodings; a session has one or two of them, small
 * beside its readings). */
static uint64_t sess_fixed(const cf_session *s, cf_buf *tmp)
{
        tmp->len = 0;
        cf_put_str(tmp, s->session_id);
        cf_put_str(tmp, s->site_id);
        cf_put_str(tmp, s->charger_id);
        cf_put_str(tmp, s->user_id);
        cf_put_str(tmp, s->badge_id);
        cf_put_varint(tmp, s->start_src != NULL);
        if (s->start_src)
                cf_src_encode(s->start_src, tmp);
        cf_put_varint(tmp, s->n_held);
        for (uint32_t i = 0; i < s->n_held; i++)
                cf_src_encode(s->held[i], tmp);
        return cf_fnv1a64(CF_FNV1A64_BASIS, tmp->p, tmp->len);
}

static bool sess_encode_delta(void *opaque, const void *obj, cf_buf *b)
{
        const cf_session *s = obj;
        sz_ctx *c = opaque;
        const cf_session_stored *st = &s->stored;
        if (!st->valid || s->n_points < st->n_points ||
            s->changed_from < st->n_points)
                return false;
        int64_t v[CF_SESS_NSCALARS];
        sess_scalars(s, v);
        /* The readings are stored from the start's time and register. */
        if (st->n_points && (v[2] != st->v[2] || v[3] != st->v[3]))
                return false;
        if (sess_fixed(s, &c->tmp) != st->fixed)
                return false;
        int64_t mask = 0;
        for (int i = 0; i < CF_SESS_NSCALARS; i++)
                if (v[i] != st->v[i])
                        mask |= (int64_t)1 << i;
        cf_put_varint(b, 4); /* a part, not a whole session */
        cf_put_varint(b, mask);
        for (int i = 0; i < CF_SESS_NSCALARS; i++)
                if (mask & ((int64_t)1 << i))
                        cf_put_varint(
                            b, (int64_t)((uint64_t)v[i] - (uint64_t)st->v[i]));
        cf_put_varint(b, s->n_points - st->n_points);
        int64_t pt = 0, pe = 0;
        if (st->n_points) {
                cf_meter_point last = cf_session_point(s, st->n_points - 1);
                pt = last.t_ms;
                pe = last.energy_wh;
        }
        for (uint32_t i = st->n_points; i < s->n_points; i++) {
                const cf_meter_point p = cf_session_point(s, i);
                cf_put_varint(b, p.t_ms - pt);
                cf_put_varint(b, p.energy_wh - pe);
                cf_put_varint(b, p.power_w);
                cf_put_varint(b, p.current_ma);
                pt = p.t_ms;
                pe = p.energy_wh;
        }
        return true;
}

static bool sess_apply_delta(void *opaque, void *obj, const uint8_t *p,
                             size_t len)
{
        cf_session *s = obj;
        (void)opaque;
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        if (cf_get_varint(&r) != 4)
                return false;
        int64_t mask = cf_get_varint(&r);
        if (!r.ok || mask < 0 || mask >= ((int64_t)1 << CF_SESS_NSCALARS))
                return false;
        int64_t v[CF_SESS_NSCALARS];
        sess_scalars(s, v);
        for (int i = 0; i < CF_SESS_NSCALARS; i++)
                if (mask & ((int64_t)1 << i))
                        v[i] = (int64_t)((uint64_t)v[i] +
                                         (uint64_t)cf_get_varint(&r));
        if (s->n_points && (v[2] != s->start_ms || v[3] != s->start_wh))
                return false;
        sess_set_scalars(s, v);
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                return false;
        int64_t pt = 0, pe = 0;
        if (s->n_points) {
                cf_meter_point last = cf_session_point(s, s->n_points - 1);
                pt = last.t_ms;
                pe = last.energy_wh;
        }
        for (int64_t i = 0; i < n && r.ok; i++) {
                cf_meter_point q;
                q.t_ms = pt += cf_get_varint(&r);
                q.energy_wh = pe += cf_get_varint(&r);
                q.power_w = cf_get_varint(&r);
                q.current_ma = cf_get_varint(&r);
                if (r.ok)
                        cf_session_insert(s, s->n_points, q);
        }
        return r.ok && r.p == r.end;
}

/* ---- readings out of memory -------------------------------------------- *
 * Once the store holds a session, memory keeps only its last reading (the
 * next one is checked against it and stored after it) and those taken
 * since: at country scale thousands of sessions are open at once, each
 * with hundreds of readings, and only pricing and a reading that arrives
 * out of order need the earlier ones. sess_load reads them back from the
 * store (one point read), which happens about once per session. */

/* Keeps only the last reading in memory (the store holds them all). */
static void sess_drop(cf_session *s)
{
        if (s->n_points - s->base <= 1)
                return;
        size_t sz = point_size(s);
        uint8_t *keep = cf_malloc(4 * sz);
        memcpy(keep, (uint8_t *)s->points + (s->n_points - 1 - s->base) * sz,
               sz);
        free(s->points);
        s->points = keep;
        s->cap_points = 4;
        s->base = s->n_points - 1;
}

/* Writes reading p as element i of the array a of s's width, widening s
 * (and a, through the caller's restart) when p does not fit compact;
 * false then. */
static bool put_point(cf_session *s, void *a, uint32_t i,
                      const cf_meter_point *p)
{
        if (s->wide_points) {
                ((cf_meter_point *)a)[i] = *p;
                return true;
        }
        return cp_make(s, p, &((cf_cpoint *)a)[i]);
}

/* Brings readings 0..base-1 back from the store. On a read error (which
 * the store keeps, so that no commit includes what follows) the missing
 * readings are copies of the first one kept, only so that what runs until
 * the task is rebuilt has readings to look at. */
static void sess_load(sz_ctx *c, cf_session *s)
{
        if (!s->base)
                return;
        c->reading_back = true;
        cf_session *all =
            cf_store_read(c->sessions, s->session_id, strlen(s->session_id));
        c->reading_back = false;
        if (all && (all->n_points < s->base || all->start_ms != s->start_ms ||
                    all->start_wh != s->start_wh)) {
                cf_session_free(all);
                all = NULL;
        }
        for (;;) {
                uint32_t n = s->n_points, b = s->base;
                size_t sz = point_size(s);
                uint32_t cap = n + n / 2 + 4;
                uint8_t *a = cf_malloc((size_t)cap * sz + 1);
                bool ok = true;
                for (uint32_t i = 0; i < b && ok; i++) {
                        cf_meter_point p = all ? cf_session_point(all, i)
                                               : cf_session_point(s, b);
                        ok = put_point(s, a, i, &p);
                }
                if (!ok) {
                        free(a);
                        widen(s);
                        continue;
                }
                memcpy(a + (size_t)b * sz, s->points, (size_t)(n - b) * sz);
                free(s->points);
                s->points = a;
                s->cap_points = cap;
                s->base = 0;
                break;
        }
        cf_session_free(all);
}

static void sess_stored(void *opaque, void *obj)
{
        cf_session *s = obj;
        sz_ctx *c = opaque;
        sess_scalars(s, s->stored.v);
        s->stored.fixed = sess_fixed(s, &c->tmp);
        s->stored.n_points = s->n_points;
        s->stored.valid = true;
        s->changed_from = UINT32_MAX;
        if (!c->reading_back)
                sess_drop(s);
}

static const cf_store_ops sess_ops = {
        .encode = sess_encode,
        .decode = sess_decode,
        .free = sess_free,
        .size = sess_size,
        .encode_delta = sess_encode_delta,
        .apply_delta = sess_apply_delta,
        .stored = sess_stored,
};

/* Sessions as stored before parts (a whole session per key, column
 * family "session"): read once at a task's start and moved over. */
static const cf_store_ops sess_whole_ops = {
        .encode = sess_encode,
        .decode = sess_decode,
        .free = sess_free,
        .size = sess_size,
};

/* ---- deadlines --------------------------------------------------------- */

static int64_t deadline(const sz_ctx *c, const cf_session *s)
{
        if (s->flags & CF_SESS_EXPIRED)
                return s->stop_ts + 2 * c->window;
        if (s->flags & CF_SESS_CLOSED)
                return s->stop_ts +
                       (c->window > c->timeout ? c->window : c->timeout);
        if (!(s->flags & CF_SESS_STARTED))
                return s->first_ts + c->orphan_wait;
        if (s->flags &
            (CF_SESS_STOPPED | CF_SESS_SUPERSEDED | CF_SESS_REOPENED))
                return s->stop_ts + c->lateness;
        return s->last_ts + c->offline;
}

static void schedule(sz_ctx *c, const cf_session *s)
{
        cf_dheap_push(&c->timers, deadline(c, s), s->session_id);
}

/* ---- chargers ---------------------------------------------------------- */

/* The open session of one connector. */
typedef struct conn_open {
        int32_t connector;
        char *sid;
        int64_t last_ts; /* stream time of its latest record */
} conn_open;

/* Per charger: its connectors' open sessions. A session is overdue when
 * its charger sends a record while the session has had none for
 * session.timeout.ms of stream time: the charger is alive, the session's
 * stop was lost. A charger that is offline sends nothing, so its sessions
 * wait (up to session.offline.ms) for the upload; an upload's records keep
 * their session active as they arrive, whatever their (old) event times.
 * A charger silent for longer than the timeout was offline: when it comes
 * back (uploading its backlog, interleaved across its connectors), every
 * session's silence counts from then.
 * (Event-time clocks cannot tell these apart: a backlog upload interleaves
 * old event times with the charger's live ones.) */
typedef struct charger_st {
        int64_t last_ts;    /* stream time of its latest record */
        int64_t resumed_ts; /* when it came back after its last silence */
        uint32_t n;
        conn_open *open;
} charger_st;

static void ch_free(void *opaque, void *obj)
{
        charger_st *ch = obj;
        (void)opaque;
        for (uint32_t i = 0; i < ch->n; i++)
                free(ch->open[i].sid);
        free(ch->open);
        free(ch);
}

static void ch_encode(void *opaque, const void *obj, cf_buf *b)
{
        const charger_st *ch = obj;
        (void)opaque;
        cf_put_varint(b, ch->last_ts);
        cf_put_varint(b, ch->resumed_ts);
        cf_put_varint(b, ch->n);
        for (uint32_t i = 0; i < ch->n; i++) {
                cf_put_varint(b, ch->open[i].connector);
                cf_put_str(b, ch->open[i].sid);
                cf_put_varint(b, ch->open[i].last_ts);
        }
}

static void *ch_decode(void *opaque, const uint8_t *p, size_t len)
{
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        charger_st *ch = cf_calloc(1, sizeof(*ch));
        ch->last_ts = cf_get_varint(&r);
        ch->resumed_ts = cf_get_varint(&r);
        int64_t n = cf_get_varint(&r);
        if (!r.ok || n < 0 || n > (int64_t)len)
                goto fail;
        ch->open = cf_calloc((size_t)n + 1, sizeof(conn_open));
        for (int64_t i = 0; i < n; i++) {
                ch->open[i].connector = (int32_t)cf_get_varint(&r);
                ch->open[i].sid = cf_get_str(&r);
                ch->open[i].last_ts = cf_get_varint(&r);
                ch->n++;
                if (!ch->open[i].sid)
                        goto fail;
        }
        if (r.ok && r.p == r.end)
                return ch;
fail:
        ch_free(opaque, ch);
        return NULL;
}

static size_t ch_size(void *opaque, const void *obj)
{
        const charger_st *ch = obj;
        (void)opaque;
        return sizeof(*ch) + ch->n * (sizeof(conn_open) + 32);
}

static const cf_store_ops ch_ops = {
        .encode = ch_encode,
        .decode = ch_decode,
        .free = ch_free,
        .size = ch_size,
};

/* The charger's state, created if new, marked dirty (so it stays valid). */
static charger_st *charger(sz_ctx *c, const char *id)
{
        size_t n = strlen(id);
        charger_st *ch = cf_store_get(c->chargers, id, n);
        if (!ch) {
                ch = cf_calloc(1, sizeof(*ch));
                ch->last_ts = ch->resumed_ts = CF_NONE;
                cf_store_put(c->chargers, id, n, ch);
        } else {
                cf_store_dirty(c->chargers, id, n);
        }
        return ch;
}

static conn_open *conn_find(charger_st *ch, int32_t connector)
{
        for (uint32_t i = 0; i < ch->n; i++)
                if (ch->open[i].connector == connector)
                        return &ch->open[i];
        return NULL;
}

static void conn_set(sz_ctx *c, const cf_session *s, int64_t now)
{
        charger_st *ch = charger(c, s->charger_id);
        conn_open *o = conn_find(ch, s->connector_id);
        if (!o) {
                ch->open = cf_realloc(ch->open, (ch->n + 1) * sizeof(*o));
                o = &ch->open[ch->n++];
                o->connector = s->connector_id;
                o->sid = NULL;
        }
        free(o->sid);
        o->sid = cf_strdup(s->session_id);
        o->last_ts = now;
}

static void conn_clear(sz_ctx *c, const cf_session *s)
{
        charger_st *ch = charger(c, s->charger_id);
        conn_open *o = conn_find(ch, s->connector_id);
        if (!o || strcmp(o->sid, s->session_id))
                return;
        free(o->sid);
        *o = ch->open[--ch->n];
}

/* The open session on a connector (a copy the caller frees), or NULL. */
static char *conn_get(sz_ctx *c, const char *charger_id, int32_t connector)
{
        charger_st *ch = charger(c, charger_id);
        conn_open *o = conn_find(ch, connector);
        return o ? cf_strdup(o->sid) : NULL;
}

/* ---- closing ----------------------------------------------------------- */

static cf_session *get(sz_ctx *c, const char *sid)
{
        return cf_store_get(c->sessions, sid, strlen(sid));
}

static void touch(sz_ctx *c, const cf_session *s)
{
        cf_store_dirty(c->sessions, s->session_id, strlen(s->session_id));
}

/* Prices s (hands it to price) and marks it closed; it stays whole for the
 * correction window. s must be dirty or freshly put (so that it stays
 * valid). */
static void close_session(cf_task *t, sz_ctx *c, cf_session *s, bool estimated,
                          int64_t now, int64_t due)
{
        /* The stream time at which it became due: a record that jumps the
         * stream past several deadlines must not make the sessions it
         * closes look later than they were. */
        s->due_ts = due < now ? due : now;
        sess_load(c, s); /* price takes every reading */
        uint32_t n = s->n_points;
        s->flags &= ~(CF_SESS_GAP | CF_SESS_ESTIMATED | CF_SESS_REOPENED);
        if (estimated) {
                s->flags |= CF_SESS_ESTIMATED;
                s->stop_ms = n ? cf_session_t(s, n - 1) : s->start_ms;
                s->stop_wh = n ? cf_session_wh(s, n - 1) : s->start_wh;
                s->stop_reason = CF_STOP_TIMEOUT;
        }
        /* Charging ended when the register first reached its final value. */
        int64_t final_wh = s->stop_wh;
        s->charging_end_ms = s->stop_ms;
        if (!(n && cf_session_wh(s, n - 1) < final_wh)) {
                for (uint32_t i = 0; i < n; i++) {
                        if (cf_session_wh(s, i) >= final_wh) {
                                s->charging_end_ms = cf_session_t(s, i);
                                break;
                        }
                }
                if (final_wh <= s->start_wh)
                        s->charging_end_ms = s->start_ms;
        }
        int64_t prev = s->start_ms;
        for (uint32_t i = 0; i <= n; i++) {
                int64_t at = i < n ? cf_session_t(s, i) : s->stop_ms;
                if (at - prev > GAP_MS)
                        s->flags |= CF_SESS_GAP;
                prev = at;
        }
        conn_clear(c, s);
        cf_item it = { .kind = CF_ITEM_SESSION,
                       .src = s->start_src,
                       .rec = s,
                       .event_time = s->stop_ms };
        cf_task_forward(t, &cf_stage_sessionize, &it);
        cf_task_count(t, &cf_stage_sessionize,
                      estimated ? "closed_estimated" : "closed", 1);
        if (s->flags & (CF_SESS_LATE_STOP | CF_SESS_LATE_READ))
                cf_task_count(t, &cf_stage_sessionize, "corrected", 1);
        s->flags &= ~(CF_SESS_LATE_STOP | CF_SESS_LATE_READ);
        s->flags |= CF_SESS_CLOSED;
        /* Kept for corrections, rarely read again: first out of the cache
         * once written. */
        cf_store_cool(c->sessions, s->session_id, strlen(s->session_id));
        s->stop_ts = now;
        touch(c, s);
        schedule(c, s);
}

/* ---- records ----------------------------------------------------------- */

static cf_stage_rc on_event(cf_task *t, sz_ctx *c, const cf_src *src,
                            const cf_session_event *e, int64_t now);
static cf_stage_rc on_reading(cf_task *t, sz_ctx *c, const cf_src *src,
                              const cf_meter_reading *m, int64_t now,
                              bool maybe_repeat);

static void hold(sz_ctx *c, cf_session *s, const cf_src *src)
{
        s->held = cf_realloc(s->held, (s->n_held + 1) * sizeof(cf_src *));
        s->held[s->n_held++] = cf_src_dup(src);
        touch(c, s);
}

/* Replays the records held for s (now started), in arrival order. */
static void replay(cf_task *t, sz_ctx *c, const char *sid, int64_t now)
{
        cf_session *s = get(c, sid);
        if (!s || !s->n_held)
                return;
        cf_src **held = s->held;
        uint32_t n = s->n_held;
        s->held = NULL;
        s->n_held = 0;
        touch(c, s);
        for (uint32_t i = 0; i < n; i++) {
                cf_arena *a = cf_task_scratch(t);
                const cf_registry *reg = cf_task_registry(t);
                cf_stage_rc rc;
                if (held[i]->input == CF_IN_SESSIONS) {
                        cf_session_event e;
                        if (cf_decode(reg, CF_RT_SESSION_EVENT, held[i]->value,
                                      held[i]->value_len, a, &e, NULL))
                                abort(); /* decoded once already */
                        rc = on_event(t, c, held[i], &e, now);
                } else {
                        cf_meter_reading m;
                        if (cf_decode(reg, CF_RT_METER_READING, held[i]->value,
                                      held[i]->value_len, a, &m, NULL))
                                abort();
                        rc = on_reading(t, c, held[i], &m, now, false);
                }
                cf_task_resolve(t, held[i], rc);
                free(held[i]);
        }
        free(held);
}

static const char *event_name(int32_t kind)
{
        switch (kind) {
        case CF_SESSION_STARTED:
                return "start";
        case CF_SESSION_AUTHORIZED:
                return "authorization";
        case CF_SESSION_STOPPED:
                return "stop";
        default:
                return "event";
        }
}

/* Rejects what a session that did not start within orphan.wait.ms held,
 * each with its own event time: ORPHAN (readings) or SESSION_STATE
 * (events). */
static void expire_orphan(cf_task *t, sz_ctx *c, cf_session *s)
{
        for (uint32_t i = 0; i < s->n_held; i++) {
                const cf_src *h = s->held[i];
                cf_arena *a = cf_task_scratch(t);
                const cf_registry *reg = cf_task_registry(t);
                if (h->input == CF_IN_METER) {
                        cf_meter_reading m;
                        if (cf_decode(reg, CF_RT_METER_READING, h->value,
                                      h->value_len, a, &m, NULL))
                                abort(); /* decoded once already */
                        cf_task_reject(t, &cf_stage_sessionize, h,
                                       CF_REJECT_ORPHAN, m.time_ms,
                                       "reading %s of session %s, whose "
                                       "start did not arrive within "
                                       "orphan.wait.ms (%lld)",
                                       m.event_id, s->session_id,
                                       (long long)c->orphan_wait);
                } else {
                        cf_session_event e;
                        if (cf_decode(reg, CF_RT_SESSION_EVENT, h->value,
                                      h->value_len, a, &e, NULL))
                                abort();
                        cf_task_reject(t, &cf_stage_sessionize, h,
                                       CF_REJECT_SESSION_STATE, e.time_ms,
                                       "%s of session %s, whose start did "
                                       "not arrive within orphan.wait.ms "
                                       "(%lld)",
                                       event_name(e.kind), s->session_id,
                                       (long long)c->orphan_wait);
                }
                cf_task_resolve(t, h, CF_STAGE_REJECTED);
        }
}

/* A closed session takes a correction when price billed it and it was kept
 * whole. */
static bool correctable(const sz_ctx *c, const cf_session *s)
{
        return c->window > 0 && s->billed.revision > 0 &&
               !(s->flags & (CF_SESS_FINAL | CF_SESS_EXPIRED));
}

/* Rejects a record (what: "stop", "reading R") for closed session s, saying
 * why it cannot correct it. */
static cf_stage_rc reject_closed(cf_task *t, const sz_ctx *c, const cf_src *src,
                                 const cf_session *s, const char *what,
                                 int64_t et)
{
        if (s->flags & CF_SESS_EXPIRED) {
                cf_task_reject(t, &cf_stage_sessionize, src, CF_REJECT_TOO_LATE,
                               et,
                               "%s of session %s, which was closed more than "
                               "correction.window.ms (%lld) ago: too late to "
                               "correct it",
                               what, s->session_id, (long long)c->window);
                return CF_STAGE_REJECTED;
        }
        const char *why =
            !c->window ? "corrections are off (correction.window.ms 0)"
            : s->flags & CF_SESS_FINAL
                ? "it was closed before sessions were kept for corrections"
            : !s->billed.revision ? "it was not billed (rejected at pricing)"
                                  : "only a stop it lacked or readings "
                                    "correct a billed session";
        cf_task_reject(t, &cf_stage_sessionize, src, CF_REJECT_SESSION_STATE,
                       et, "%s of session %s, which was closed: %s", what,
                       s->session_id, why);
        return CF_STAGE_REJECTED;
}

/* Late data for s: open again (if closed) until allowed.lateness.ms after
 * this record, then closed and billed again as a revision. what is
 * CF_SESS_LATE_STOP or CF_SESS_LATE_READ. */
static void reopen(sz_ctx *c, cf_session *s, uint32_t what, int64_t now)
{
        if (s->flags & CF_SESS_CLOSED) {
                s->flags &= ~(CF_SESS_CLOSED | CF_SESS_ESTIMATED);
                s->flags |= CF_SESS_REOPENED;
                if (!(s->flags & CF_SESS_STOPPED)) {
                        /* The stop was an estimate: it follows the data. */
                        s->stop_ms = CF_NONE;
                        s->stop_wh = CF_NONE;
                        s->stop_reason = -1;
                }
        }
        s->flags |= what;
        s->stop_ts = now;
        touch(c, s);
        schedule(c, s);
}

/* The session of sid, created as not yet started if unknown. */
static cf_session *get_or_new(sz_ctx *c, const char *sid, const char *site,
                              const char *charger, int32_t connector,
                              int64_t now)
{
        cf_session *s = get(c, sid);
        if (s)
                return s;
        s = session_new(sid, site, charger, connector, now);
        cf_store_put(c->sessions, sid, strlen(sid), s);
        schedule(c, s);
        return s;
}

static bool same_str(const char *a, const char *b)
{
        return a == b || (a && b && !strcmp(a, b));
}

static uint64_t eid_hash(const char *id)
{
        uint64_t h = cf_fnv1a64(CF_FNV1A64_BASIS, id, strlen(id));
        return h ? h : 1;
}

/* The event the session took for e's kind again, same id and content (a
 * resend dedup no longer remembers: it keeps a charger's last 32
 * sessions): a repeat. */
static bool same_event(const cf_session *s, const cf_session_event *e)
{
        if (e->kind < 0 || e->kind > 2 ||
            s->eid[e->kind] != eid_hash(e->event_id))
                return false;
        switch (e->kind) {
        case CF_SESSION_STARTED:
                return s->start_ms == e->time_ms && s->start_wh == e->energy_wh;
        case CF_SESSION_STOPPED:
                return s->stop_ms == e->time_ms && s->stop_wh == e->energy_wh;
        default:
                return same_str(s->user_id, e->user_id) &&
                       same_str(s->badge_id, e->badge_id);
        }
}

static cf_stage_rc on_event(cf_task *t, sz_ctx *c, const cf_src *src,
                            const cf_session_event *e, int64_t now)
{
        cf_session *s = get_or_new(c, e->session_id, e->site_id, e->charger_id,
                                   e->connector_id, now);
        if (same_event(s, e)) {
                cf_task_count(t, &cf_stage_sessionize, "repeated_events", 1);
                return CF_STAGE_DUP;
        }
        if ((s->flags & (CF_SESS_CLOSED | CF_SESS_REOPENED)) &&
            (e->kind != CF_SESSION_STOPPED || (s->flags & CF_SESS_STOPPED) ||
             !correctable(c, s)))
                return reject_closed(t, c, src, s, event_name(e->kind),
                                     e->time_ms);
        bool started = s->flags & CF_SESS_STARTED;
        if (e->kind != CF_SESSION_STARTED && !started) {
                hold(c, s, src);
                return CF_STAGE_HELD;
        }
        switch (e->kind) {
        case CF_SESSION_STARTED: {
                if (started) {
                        cf_task_reject(t, &cf_stage_sessionize, src,
                                       CF_REJECT_SESSION_STATE, e->time_ms,
                                       "second start of session %s",
                                       e->session_id);
                        return CF_STAGE_REJECTED;
                }
                char *sid = cf_strdup(e->session_id);
                /* A session still open on this connector lost its stop. */
                char *psid = conn_get(c, e->charger_id, e->connector_id);
                if (psid && strcmp(psid, sid)) {
                        /* Its stop was lost: it is over, as if its stop had
                         * been seen now (time unknown). Its late readings
                         * still count for allowed.lateness.ms; then it is
                         * closed from its last reading. */
                        cf_session *p = get(c, psid);
                        if (p &&
                            !(p->flags & (CF_SESS_CLOSED | CF_SESS_STOPPED |
                                          CF_SESS_SUPERSEDED))) {
                                p->flags |= CF_SESS_SUPERSEDED;
                                p->stop_ts = now;
                                touch(c, p);
                                conn_clear(c, p);
                                schedule(c, p);
                        }
                }
                free(psid);
                s = get(c, sid);
                s->flags |= CF_SESS_STARTED;
                s->start_ms = e->time_ms;
                s->start_wh = e->energy_wh;
                s->last_ts = now;
                if (e->user_id && !s->user_id)
                        s->user_id = cf_strdup(e->user_id);
                if (e->badge_id && !s->badge_id)
                        s->badge_id = cf_strdup(e->badge_id);
                s->start_src = cf_src_dup(src);
                s->eid[CF_SESSION_STARTED] = eid_hash(e->event_id);
                touch(c, s);
                conn_set(c, s, now);
                schedule(c, s);
                replay(t, c, sid, now);
                free(sid);
                return CF_STAGE_ACCEPTED;
        }
        case CF_SESSION_AUTHORIZED:
                if (s->flags & CF_SESS_AUTHED) {
                        cf_task_reject(t, &cf_stage_sessionize, src,
                                       CF_REJECT_SESSION_STATE, e->time_ms,
                                       "second authorization of session %s",
                                       e->session_id);
                        return CF_STAGE_REJECTED;
                }
                s->flags |= CF_SESS_AUTHED;
                free(s->user_id);
                free(s->badge_id);
                s->user_id = dup_or_null(e->user_id);
                s->badge_id = dup_or_null(e->badge_id);
                s->eid[CF_SESSION_AUTHORIZED] = eid_hash(e->event_id);
                s->last_ts = now;
                touch(c, s);
                return CF_STAGE_ACCEPTED;
        case CF_SESSION_STOPPED: {
                const char *why = NULL;
                int32_t reason = CF_REJECT_SESSION_STATE;
                uint32_t n = s->n_points;
                if (s->flags & CF_SESS_STOPPED) {
                        why = "second stop";
                } else if (e->time_ms < s->start_ms) {
                        why = "stop before start";
                } else if (e->energy_wh < s->start_wh ||
                           (n && e->energy_wh < cf_session_wh(s, n - 1))) {
                        why = "stop register below the session's readings";
                        reason = CF_REJECT_METER_REGRESSION;
                }
                if (why) {
                        cf_task_reject(t, &cf_stage_sessionize, src, reason,
                                       e->time_ms, "%s of session %s", why,
                                       e->session_id);
                        return CF_STAGE_REJECTED;
                }
                if (s->flags & (CF_SESS_CLOSED | CF_SESS_REOPENED))
                        reopen(c, s, CF_SESS_LATE_STOP, now);
                s->flags |= CF_SESS_STOPPED;
                s->eid[CF_SESSION_STOPPED] = eid_hash(e->event_id);
                s->stop_ms = e->time_ms;
                s->stop_wh = e->energy_wh;
                s->stop_reason = e->stop_reason;
                s->stop_ts = now;
                s->last_ts = now;
                touch(c, s);
                conn_clear(c, s);
                schedule(c, s);
                return CF_STAGE_ACCEPTED;
        }
        default:
                cf_task_reject(t, &cf_stage_sessionize, src, CF_REJECT_FIELD,
                               e->time_ms, "unknown event kind %d",
                               (int)e->kind);
                return CF_STAGE_REJECTED;
        }
}

/* A reading dedup could not place (beyond its window) that does not fit
 * its session as new data: taken for the repeat it most likely is. */
static cf_stage_rc repeat(cf_task *t)
{
        cf_task_count(t, &cf_stage_sessionize, "repeats_beyond_dedup_window",
                      1);
        return CF_STAGE_DUP;
}

static cf_stage_rc reject_reading(cf_task *t, const cf_src *src,
                                  const cf_meter_reading *m, bool maybe_repeat,
                                  int32_t reason, const char *what, int64_t a,
                                  int64_t b)
{
        if (maybe_repeat)
                return repeat(t);
        cf_task_reject(
            t, &cf_stage_sessionize, src, reason, m->time_ms,
            "reading %s of session %s: %s (%" PRId64 " vs %" PRId64 ")",
            m->event_id, m->session_id ? m->session_id : "-", what, a, b);
        return CF_STAGE_REJECTED;
}

/* Power implied by going from p to q, in W (INT64_MAX for an instant
 * jump). */
static int64_t implied_power(int64_t t0, int64_t e0, int64_t t1, int64_t e1)
{
        int64_t dt = t1 - t0, de = e1 - e0;
        if (de <= 0)
                return 0;
        if (dt <= 0)
                return INT64_MAX;
        return de * 3600000 / dt;
}

/* maybe_repeat: dedup could not tell (a sequence number beyond its
 * window): the reading counts only if it is new data that fits a session
 * this stage has; anything else is taken for a repeat (counted as a
 * duplicate), not rejected or held a second time. */
static cf_stage_rc on_reading(cf_task *t, sz_ctx *c, const cf_src *src,
                              const cf_meter_reading *m, int64_t now,
                              bool maybe_repeat)
{
        char *open =
            m->session_id ? NULL : conn_get(c, m->charger_id, m->connector_id);
        const char *sid = m->session_id ? m->session_id : open;
        if (maybe_repeat && (!sid || !get(c, sid))) {
                free(open);
                return repeat(t);
        }
        if (!sid) {
                cf_task_reject(
                    t, &cf_stage_sessionize, src, CF_REJECT_ORPHAN, m->time_ms,
                    "reading %s without a session, and no session "
                    "open on %s connector %d",
                    m->event_id, m->charger_id, (int)m->connector_id);
                return CF_STAGE_REJECTED;
        }
        char *id = cf_strdup(sid);
        free(open);
        cf_session *s =
            get_or_new(c, id, m->site_id, m->charger_id, m->connector_id, now);
        free(id);
        if (maybe_repeat &&
            (((s->flags & CF_SESS_CLOSED) && !correctable(c, s)) ||
             !(s->flags & CF_SESS_STARTED)))
                return repeat(t);
        if ((s->flags & CF_SESS_CLOSED) && !correctable(c, s)) {
                char what[300];
                snprintf(what, sizeof(what), "reading %s", m->event_id);
                return reject_closed(t, c, src, s, what, m->time_ms);
        }
        if (!(s->flags & CF_SESS_STARTED)) {
                hold(c, s, src);
                return CF_STAGE_HELD;
        }
        if (m->time_ms < s->start_ms)
                return reject_reading(t, src, m, maybe_repeat, CF_REJECT_CLOCK,
                                      "before the session started", m->time_ms,
                                      s->start_ms);
        if ((s->flags & CF_SESS_STOPPED) && m->time_ms > s->stop_ms)
                return reject_reading(t, src, m, maybe_repeat, CF_REJECT_CLOCK,
                                      "after the session stopped", m->time_ms,
                                      s->stop_ms);
        /* Neighbours in time: the start (or the reading before) and the
         * reading after (or the stop). */
        uint32_t n = s->n_points, pos = n;
        while (pos > s->base && cf_session_t(s, pos - 1) > m->time_ms)
                pos--;
        if (pos && pos == s->base) {
                /* Out of order, before the readings kept in memory. */
                sess_load(c, s);
                while (pos > 0 && cf_session_t(s, pos - 1) > m->time_ms)
                        pos--;
        }
        int64_t pt = pos ? cf_session_t(s, pos - 1) : s->start_ms;
        int64_t pe = pos ? cf_session_wh(s, pos - 1) : s->start_wh;
        /* The same time and register as a reading the session has: a
         * repeat (with another event id, or beyond dedup's window), which
         * must neither count twice nor reopen a closed session. */
        if (pos && pt == m->time_ms && pe == m->energy_wh) {
                cf_task_count(t, &cf_stage_sessionize, "repeated_readings", 1);
                return CF_STAGE_DUP;
        }
        /* Against the reading before it first (the reading itself is the
         * anomaly when the one after agrees with the one before), then
         * against the one after. */
        const cf_site *site = cf_tables_site(cf_task_tables(t), s->site_id);
        int64_t lim = site && site->max_power_w > 0
                          ? site->max_power_w * JUMP_TOLERANCE_PCT / 100
                          : INT64_MAX;
        if (m->energy_wh < pe)
                return reject_reading(t, src, m, maybe_repeat,
                                      CF_REJECT_METER_REGRESSION,
                                      "register went down", m->energy_wh, pe);
        int64_t p1 = implied_power(pt, pe, m->time_ms, m->energy_wh);
        if (p1 > lim)
                return reject_reading(t, src, m, maybe_repeat,
                                      CF_REJECT_METER_JUMP,
                                      "implied power above the site's "
                                      "maximum (W)",
                                      p1, lim);
        bool has_next = pos < n || (s->flags & CF_SESS_STOPPED);
        int64_t nt = pos < n ? cf_session_t(s, pos) : s->stop_ms;
        int64_t ne = pos < n ? cf_session_wh(s, pos) : s->stop_wh;
        if (has_next && m->energy_wh > ne)
                return reject_reading(
                    t, src, m, maybe_repeat, CF_REJECT_METER_REGRESSION,
                    "register above a later one", m->energy_wh, ne);
        int64_t p2 =
            has_next ? implied_power(m->time_ms, m->energy_wh, nt, ne) : 0;
        if (p2 > lim)
                return reject_reading(t, src, m, maybe_repeat,
                                      CF_REJECT_METER_JUMP,
                                      "implied power above the site's "
                                      "maximum (W)",
                                      p2, lim);
        if (s->flags & (CF_SESS_CLOSED | CF_SESS_REOPENED))
                reopen(c, s, CF_SESS_LATE_READ, now);
        cf_session_insert(s, pos,
                          (cf_meter_point){ m->time_ms, m->energy_wh,
                                            m->power_w, m->current_ma });
        s->last_ts = now;
        touch(c, s);
        return CF_STAGE_ACCEPTED;
}

/* The charger sent a record (at stream time now): the record's open
 * session, if it took the record, is active; a session of the charger
 * silent for more than session.timeout.ms lost its stop. */
static void tick_charger(cf_task *t, sz_ctx *c, const char *charger_id,
                         int32_t connector, const char *sid, bool accepted,
                         int64_t now)
{
        charger_st *ch = charger(c, charger_id);
        if (ch->last_ts == CF_NONE || now - ch->last_ts > c->timeout)
                ch->resumed_ts = now; /* back after being offline */
        ch->last_ts = now;
        conn_open *o = conn_find(ch, connector);
        if (o && accepted && sid && !strcmp(o->sid, sid))
                o->last_ts = now;
        for (uint32_t i = 0; i < ch->n;) {
                int64_t since = ch->open[i].last_ts > ch->resumed_ts
                                    ? ch->open[i].last_ts
                                    : ch->resumed_ts;
                if (now - since <= c->timeout) {
                        i++;
                        continue;
                }
                char *overdue = cf_strdup(ch->open[i].sid);
                cf_session *s = get(c, overdue);
                if (s && !(s->flags & (CF_SESS_CLOSED | CF_SESS_STOPPED))) {
                        touch(c, s);
                        /* Removes it from ch->open (conn_clear). */
                        close_session(t, c, s, true, now, since + c->timeout);
                } else {
                        free(ch->open[i].sid);
                        ch->open[i] = ch->open[--ch->n];
                }
                free(overdue);
                ch = charger(c, charger_id);
        }
}

/* ---- stage ------------------------------------------------------------- */

static int load_one(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        sz_ctx *c = opaque;
        const cf_session *s = obj;
        (void)key;
        (void)klen;
        schedule(c, s);
        return 0;
}

/* A session moved from the column family an earlier version stored it
 * whole in (cf_task_store_move): its deadline. */
static int moved_one(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        (void)key;
        (void)klen;
        schedule(opaque, obj);
        return 0;
}

static cf_err_t sz_init(cf_task *t, void **ctxp, char *errstr,
                        size_t errstr_size)
{
        const cf_config *cfg = cf_task_config(t);
        sz_ctx *c = cf_calloc(1, sizeof(*c));
        cf_dheap_init(&c->timers);
        c->lateness = cfg->allowed_lateness_ms;
        c->timeout = cfg->session_timeout_ms;
        c->offline = cfg->session_offline_ms;
        c->orphan_wait = cfg->orphan_wait_ms;
        c->window = cfg->correction_window_ms;
        /* Its share of the task's budget (cf_task_cache_budget): 5/8. */
        c->sessions = cf_task_store(t, CF_COL_SESSION_PARTS, &sess_ops, c,
                                    cf_task_cache_budget(t) / 2, true);
        cf_buf_init(&c->tmp);
        c->chargers = cf_task_store(t, CF_COL_INDEX, &ch_ops, c,
                                    cf_task_cache_budget(t) / 8, true);
        /* Deadlines are rebuilt from every stored session, also those
         * that did not fit the cache. */
        cf_err_t err = cf_store_load_all(c->sessions, errstr, errstr_size);
        if (!err)
                err = cf_store_visit_all(c->sessions, load_one, c, errstr,
                                         errstr_size);
        if (!err)
                err = cf_task_store_move(t, c->sessions, CF_COL_SESSION,
                                         &sess_whole_ops, moved_one, c, errstr,
                                         errstr_size);
        if (err) {
                cf_dheap_free(&c->timers);
                cf_buf_free(&c->tmp);
                free(c);
                return err;
        }
        *ctxp = c;
        return CF_OK;
}

static cf_stage_rc sz_process(cf_task *t, void *ctx, cf_item *it)
{
        sz_ctx *c = ctx;
        int64_t now = cf_task_stream_time(t);
        cf_stage_rc rc;
        const char *charger_id, *sid;
        int32_t connector;
        if (it->kind == CF_ITEM_EVENT) {
                const cf_session_event *e = it->rec;
                rc = on_event(t, c, it->src, e, now);
                charger_id = e->charger_id;
                connector = e->connector_id;
                sid = e->session_id;
        } else if (it->kind == CF_ITEM_READING) {
                const cf_meter_reading *m = it->rec;
                rc = on_reading(t, c, it->src, m, now, it->maybe_repeat);
                charger_id = m->charger_id;
                connector = m->connector_id;
                sid = m->session_id;
        } else {
                return CF_STAGE_PASS;
        }
        tick_charger(t, c, charger_id, connector, sid, rc == CF_STAGE_ACCEPTED,
                     now);
        return rc;
}

/* Runs the deadlines due at now. drain: the input is over for now; closed
 * sessions are left as they are (their corrections stay possible in a
 * later run, which rebuilds their timers at start). */
static void run_timers(cf_task *t, sz_ctx *c, int64_t now, bool drain)
{
        while (cf_dheap_due(&c->timers, now)) {
                cf_dheap_ent e = cf_dheap_pop(&c->timers);
                char *sid = e.key;
                cf_session *s = get(c, sid);
                if (!s) {
                        free(sid);
                        continue;
                }
                if (drain && (s->flags & CF_SESS_CLOSED)) {
                        free(sid);
                        continue;
                }
                int64_t d = deadline(c, s);
                if (d > now) {
                        cf_dheap_push_owned(&c->timers, d, sid);
                        continue;
                }
                if ((s->flags & CF_SESS_CLOSED) && c->window > 0 &&
                    !(s->flags & (CF_SESS_EXPIRED | CF_SESS_FINAL))) {
                        /* Past the window: a tombstone for one more. */
                        touch(c, s);
                        free(s->points);
                        s->points = NULL;
                        s->n_points = s->cap_points = s->base = 0;
                        s->changed_from = 0;
                        s->wide_points = false;
                        free(s->start_src);
                        s->start_src = NULL;
                        s->flags |= CF_SESS_EXPIRED;
                        cf_store_cool(c->sessions, sid, strlen(sid));
                        cf_dheap_push_owned(&c->timers, deadline(c, s), sid);
                        continue;
                } else if (s->flags & CF_SESS_CLOSED) {
                        cf_store_del(c->sessions, sid, strlen(sid));
                } else if (!(s->flags & CF_SESS_STARTED)) {
                        expire_orphan(t, c, s);
                        cf_store_del(c->sessions, sid, strlen(sid));
                } else {
                        touch(c, s);
                        close_session(t, c, s, !(s->flags & CF_SESS_STOPPED),
                                      now, d);
                }
                free(sid);
        }
}

static void sz_advance(cf_task *t, void *ctx, int64_t now)
{
        run_timers(t, ctx, now, false);
}

static void sz_drain(cf_task *t, void *ctx)
{
        /* The input is over for now: everything waiting is due. */
        run_timers(t, ctx, INT64_MAX / 2, true);
}

static void sz_destroy(void *ctx)
{
        sz_ctx *c = ctx;
        if (!c)
                return;
        cf_dheap_free(&c->timers);
        cf_buf_free(&c->tmp);
        free(c);
}

const cf_stage cf_stage_sessionize = {
        .name = "sessionize",
        .init = sz_init,
        .process = sz_process,
        .advance = sz_advance,
        .drain = sz_drain,
        .destroy = sz_destroy,
};
