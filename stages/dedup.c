/*
 * dedup.c: the dedup stage. Drops exact repeats of input records.
 *
 * Per charger (the input key, so all of it is in this task), one state
 * entry holds:
 *  - for meter readings, the highest sequence number seen and a bitmap of
 *    the dedup.window numbers below it: a number in the window is a repeat
 *    if its bit is set; a number below the window is a repeat (the charger's
 *    numbers arrive in order up to reordering within the window);
 *  - for session events, a ring of the charger's last RECENT sessions with
 *    the event id of each kind (STARTED, AUTHORIZED, STOPPED): an event whose
 *    id is already recorded for its session and kind is a repeat. A second
 *    event of the same kind with another id is not a repeat (sessionize
 *    rejects it as SESSION_STATE), but a repeat of that one is: such ids
 *    are kept in a ring of EXTRA per charger.
 * So the state is bounded per charger, exact within those windows, and
 * survives restarts through the task's store; no RocksDB read on a hit.
 * It is stored in parts (store.h): a commit stores what the charger's
 * records changed (each new number, each new event id), not the windows
 * again, and a read replays those changes on the whole state.
 *
 * In billing tasks the input is the repartition topic, written by every
 * rating task: per source task ("src" + its number) the entry keeps the
 * highest sequence number seen, and a record at or below it is a repeat
 * (each source's records reach a partition in order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hmap.h"
#include "stages.h"
#include "wire.h"

#define RECENT 32 /* sessions remembered per charger */

typedef struct recent_session {
        uint64_t sid;    /* hash of the session id, 0: empty slot */
        uint64_t eid[3]; /* hash of the event id per kind, 0: none yet */
} recent_session;

#define EXTRA 16 /* ids of events that were not the first of their kind */

/* Sized by use: a charger at country scale starts a session or two a day,
 * so the rings hold what was seen, up to RECENT and EXTRA, not empty
 * slots (1.3 KB a charger otherwise, 130 MB for 100,000 chargers). */
typedef struct charger_dedup {
        int64_t hwm;    /* highest seq_no seen, -1: none */
        uint64_t *bits; /* bit i: hwm - i seen (i < window) */
        uint32_t next;  /* ring position of the next new session */
        uint32_t n_recent, cap_recent;
        recent_session *recent; /* n_recent used, filled from 0 */
        /* A second STARTED (say) with a new id is not a repeat, but a
         * repeat of it is: those ids are kept here, in a ring. */
        uint32_t next_extra, n_extra;
        uint64_t *extra; /* EXTRA of them once the first is kept */
        /* What changed since the store took it, as operations to replay
         * (OP_*), and whether the store has it at all. */
        cf_buf ops;
        bool stored;
} charger_dedup;

enum { OP_SEQ = 1, OP_EVENT = 2, OP_HWM = 3 };

typedef struct dd_ctx {
        cf_store *chargers;
        uint32_t words; /* window / 64 */
} dd_ctx;

static uint64_t h64(const char *s)
{
        return cf_hash64(s, strlen(s));
}

static charger_dedup *cd_new(const dd_ctx *c)
{
        charger_dedup *d = cf_calloc(1, sizeof(*d));
        d->hwm = -1;
        d->bits = cf_calloc(c->words, sizeof(uint64_t));
        return d;
}

/* The ring slot for a new session, grown while not full. */
static recent_session *recent_slot(charger_dedup *d)
{
        if (d->next == d->n_recent) {
                if (d->n_recent == d->cap_recent) {
                        d->cap_recent = d->cap_recent ? 2 * d->cap_recent : 2;
                        if (d->cap_recent > RECENT)
                                d->cap_recent = RECENT;
                        d->recent = cf_realloc(
                            d->recent, d->cap_recent * sizeof(*d->recent));
                }
                d->n_recent++;
        }
        recent_session *r = &d->recent[d->next];
        d->next = (d->next + 1) % RECENT;
        return r;
}

static void extra_add(charger_dedup *d, uint64_t eid)
{
        if (!d->extra)
                d->extra = cf_calloc(EXTRA, sizeof(uint64_t));
        d->extra[d->next_extra] = eid;
        if (d->next_extra == d->n_extra)
                d->n_extra++;
        d->next_extra = (d->next_extra + 1) % EXTRA;
}

/* Version 2 (sized by use): hwm, words, bits, then 64 + the sessions
 * kept (where version 1 had the ring position, below RECENT), the ring
 * position, the sessions (32 bytes each), the extra ids kept, their ring
 * position, the ids (8 bytes each). */
#define CD_V2_MARK 64

static void cd_encode(void *opaque, const void *obj, cf_buf *b)
{
        const dd_ctx *c = opaque;
        const charger_dedup *d = obj;
        cf_put_varint(b, d->hwm);
        cf_put_varint(b, c->words);
        cf_buf_put(b, d->bits, c->words * sizeof(uint64_t));
        cf_put_varint(b, CD_V2_MARK + d->n_recent);
        cf_put_varint(b, d->next);
        cf_buf_put(b, d->recent, d->n_recent * sizeof(*d->recent));
        cf_put_varint(b, d->n_extra);
        cf_put_varint(b, d->next_extra);
        if (d->n_extra)
                cf_buf_put(b, d->extra, d->n_extra * sizeof(uint64_t));
}

/* Version 1's fixed rings (every slot, empty ones zero) into d: the slots
 * from the ring position on are unused while all of them are empty. */
static bool cd_decode_v1(charger_dedup *d, cf_wrd *r, uint32_t next)
{
        recent_session rs[RECENT];
        uint64_t ex[EXTRA];
        if (next >= RECENT || (size_t)(r->end - r->p) < sizeof(rs))
                return false;
        memcpy(rs, r->p, sizeof(rs));
        r->p += sizeof(rs);
        uint32_t next_extra = (uint32_t)cf_get_varint(r);
        if (!r->ok || next_extra >= EXTRA ||
            (size_t)(r->end - r->p) != sizeof(ex))
                return false;
        memcpy(ex, r->p, sizeof(ex));
        r->p += sizeof(ex);
        uint32_t n = RECENT;
        bool tail_empty = true;
        for (uint32_t i = next; i < RECENT; i++)
                tail_empty &= rs[i].sid == 0;
        if (tail_empty)
                n = next;
        d->recent = cf_malloc((n ? n : 1) * sizeof(*d->recent));
        memcpy(d->recent, rs, n * sizeof(*d->recent));
        d->n_recent = d->cap_recent = n;
        d->next = next;
        uint32_t ne = EXTRA;
        tail_empty = true;
        for (uint32_t i = next_extra; i < EXTRA; i++)
                tail_empty &= ex[i] == 0;
        if (tail_empty)
                ne = next_extra;
        if (ne) {
                d->extra = cf_calloc(EXTRA, sizeof(uint64_t));
                memcpy(d->extra, ex, ne * sizeof(uint64_t));
        }
        d->n_extra = ne;
        d->next_extra = next_extra;
        return true;
}

static void *cd_decode(void *opaque, const uint8_t *p, size_t len)
{
        const dd_ctx *c = opaque;
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        charger_dedup *d = cd_new(c);
        d->hwm = cf_get_varint(&r);
        int64_t words = cf_get_varint(&r);
        size_t wbytes = (size_t)words * sizeof(uint64_t);
        if (!r.ok || words < 0 || (size_t)(r.end - r.p) < wbytes)
                goto fail;
        /* A window resized by configuration keeps what still fits. */
        memcpy(d->bits, r.p,
               (words < c->words ? (size_t)words : c->words) *
                   sizeof(uint64_t));
        r.p += wbytes;
        int64_t mark = cf_get_varint(&r);
        if (!r.ok || mark < 0)
                goto fail;
        if (mark < CD_V2_MARK) {
                if (!cd_decode_v1(d, &r, (uint32_t)mark))
                        goto fail;
                return d;
        }
        int64_t n = mark - CD_V2_MARK;
        int64_t next = cf_get_varint(&r);
        if (!r.ok || n > RECENT || next < 0 || next >= RECENT ||
            (n < RECENT && next != n) ||
            (size_t)(r.end - r.p) < (size_t)n * sizeof(recent_session))
                goto fail;
        d->n_recent = d->cap_recent = (uint32_t)n;
        d->next = (uint32_t)next;
        d->recent = cf_malloc((n ? (size_t)n : 1) * sizeof(recent_session));
        memcpy(d->recent, r.p, (size_t)n * sizeof(recent_session));
        r.p += (size_t)n * sizeof(recent_session);
        int64_t ne = cf_get_varint(&r);
        int64_t next_extra = cf_get_varint(&r);
        if (!r.ok || ne < 0 || ne > EXTRA || next_extra < 0 ||
            next_extra >= EXTRA || (ne < EXTRA && next_extra != ne) ||
            (size_t)(r.end - r.p) != (size_t)ne * sizeof(uint64_t))
                goto fail;
        if (ne) {
                d->extra = cf_calloc(EXTRA, sizeof(uint64_t));
                memcpy(d->extra, r.p, (size_t)ne * sizeof(uint64_t));
        }
        d->n_extra = (uint32_t)ne;
        d->next_extra = (uint32_t)next_extra;
        return d;
fail:
        free(d->bits);
        free(d->recent);
        free(d->extra);
        free(d);
        return NULL;
}

static void cd_free(void *opaque, void *obj)
{
        charger_dedup *d = obj;
        (void)opaque;
        free(d->bits);
        free(d->recent);
        free(d->extra);
        cf_buf_free(&d->ops);
        free(d);
}

static size_t cd_size(void *opaque, const void *obj)
{
        const dd_ctx *c = opaque;
        const charger_dedup *d = obj;
        return sizeof(charger_dedup) + c->words * sizeof(uint64_t) + 32 +
               d->cap_recent * sizeof(recent_session) +
               (d->extra ? EXTRA * sizeof(uint64_t) : 0) + d->ops.cap;
}

static int seen_seq(dd_ctx *c, charger_dedup *d, int64_t seq);
static bool seen_hashed(charger_dedup *d, uint64_t sid, int k, uint64_t eid);

static bool cd_encode_delta(void *opaque, const void *obj, cf_buf *out)
{
        const charger_dedup *d = obj;
        (void)opaque;
        if (!d->stored)
                return false;
        cf_buf_put(out, d->ops.p, d->ops.len);
        return true;
}

static uint64_t get_u64(cf_wrd *r)
{
        uint64_t v = 0;
        if (r->end - r->p < 8) {
                r->ok = false;
                return 0;
        }
        memcpy(&v, r->p, 8);
        r->p += 8;
        return v;
}

/* Replays the operations of a part: the same calls, in the same order, as
 * when the records came, so they give the same state. */
static bool cd_apply_delta(void *opaque, void *obj, const uint8_t *p,
                           size_t len)
{
        dd_ctx *c = opaque;
        charger_dedup *d = obj;
        cf_wrd r;
        cf_wrd_init(&r, p, len);
        while (r.ok && r.p < r.end) {
                int64_t op = cf_get_varint(&r);
                if (op == OP_SEQ || op == OP_HWM) {
                        int64_t seq = cf_get_varint(&r);
                        if (!r.ok || seq < 0)
                                return false;
                        if (op == OP_SEQ)
                                seen_seq(c, d, seq);
                        else
                                d->hwm = seq;
                } else if (op == OP_EVENT) {
                        uint64_t sid = get_u64(&r);
                        int64_t k = cf_get_varint(&r);
                        uint64_t eid = get_u64(&r);
                        if (!r.ok || k < 0 || k > 2)
                                return false;
                        seen_hashed(d, sid, (int)k, eid);
                } else {
                        return false;
                }
        }
        return r.ok;
}

static void cd_stored(void *opaque, void *obj)
{
        charger_dedup *d = obj;
        (void)opaque;
        cf_buf_free(&d->ops);
        d->stored = true;
}

static const cf_store_ops cd_ops = {
        .encode = cd_encode,
        .decode = cd_decode,
        .free = cd_free,
        .size = cd_size,
        .encode_delta = cd_encode_delta,
        .apply_delta = cd_apply_delta,
        .stored = cd_stored,
};

/* As an earlier version stored it (whole, in column family dedup). */
static const cf_store_ops cd_whole_ops = {
        .encode = cd_encode,
        .decode = cd_decode,
        .free = cd_free,
        .size = cd_size,
};

static charger_dedup *charger(dd_ctx *c, const char *id)
{
        size_t n = strlen(id);
        charger_dedup *d = cf_store_get(c->chargers, id, n);
        if (!d) {
                d = cd_new(c);
                cf_store_put(c->chargers, id, n, d);
        }
        return d;
}

/* Shifts the window so that hwm becomes seq (> hwm). */
static void shift(charger_dedup *d, uint32_t words, int64_t by)
{
        if (by >= (int64_t)words * 64) {
                memset(d->bits, 0, words * sizeof(uint64_t));
                return;
        }
        uint32_t w = (uint32_t)(by / 64), b = (uint32_t)(by % 64);
        for (int64_t i = (int64_t)words - 1; i >= 0; i--) {
                uint64_t hi = i - (int64_t)w >= 0 ? d->bits[i - w] : 0;
                uint64_t lo = i - (int64_t)w - 1 >= 0 ? d->bits[i - w - 1] : 0;
                d->bits[i] = b ? (hi << b) | (lo >> (64 - b)) : hi;
        }
}

/* True if seq was seen; marks it seen otherwise. */
/* Seen (1), new (0; recorded), or beyond the window (2: cannot tell). */
static int seen_seq(dd_ctx *c, charger_dedup *d, int64_t seq)
{
        int64_t window = (int64_t)c->words * 64;
        if (seq > d->hwm) {
                if (d->hwm >= 0)
                        shift(d, c->words, seq - d->hwm);
                d->hwm = seq;
                d->bits[0] |= 1;
                return false;
        }
        int64_t off = d->hwm - seq;
        if (off >= window)
                return 2;
        uint64_t bit = 1ULL << (off % 64);
        if (d->bits[off / 64] & bit)
                return true;
        d->bits[off / 64] |= bit;
        return false;
}

/* seen_seq, recording a change for the store. */
static int seen_seq_rec(dd_ctx *c, charger_dedup *d, int64_t seq)
{
        int r = seen_seq(c, d, seq);
        if (r == 0) {
                cf_put_varint(&d->ops, OP_SEQ);
                cf_put_varint(&d->ops, seq);
        }
        return r;
}

/* True if the event (its session's and its own id hashed, its kind k) was
 * seen; records it otherwise. */
static bool seen_hashed(charger_dedup *d, uint64_t sid, int k, uint64_t eid)
{
        for (uint32_t i = 0; i < d->n_recent; i++) {
                recent_session *r = &d->recent[i];
                if (r->sid != sid)
                        continue;
                if (r->eid[k] == eid)
                        return true;
                if (!r->eid[k]) {
                        r->eid[k] = eid;
                        return false;
                }
                /* Not the first of its kind in this session. */
                for (uint32_t x = 0; x < d->n_extra; x++)
                        if (d->extra[x] == eid)
                                return true;
                extra_add(d, eid);
                return false;
        }
        recent_session *r = recent_slot(d);
        memset(r, 0, sizeof(*r));
        r->sid = sid;
        r->eid[k] = eid;
        return false;
}

static bool seen_event(charger_dedup *d, const cf_session_event *e)
{
        uint64_t sid = h64(e->session_id), eid = h64(e->event_id);
        int k = e->kind >= 0 && e->kind < 3 ? e->kind : 0;
        if (seen_hashed(d, sid, k, eid))
                return true;
        cf_put_varint(&d->ops, OP_EVENT);
        cf_buf_put(&d->ops, &sid, 8);
        cf_put_varint(&d->ops, k);
        cf_buf_put(&d->ops, &eid, 8);
        return false;
}

static cf_stage_rc dd_process(cf_task *t, void *ctx, cf_item *it)
{
        dd_ctx *c = ctx;
        const char *charger_id;
        bool dup;
        if (it->kind == CF_ITEM_READING) {
                const cf_meter_reading *m = it->rec;
                /* A record without a valid identity (no charger, a
                 * negative number) is not tracked: validate rejects it
                 * (FIELD); it must not count as a repeat nor move the
                 * window. */
                if (m->seq_no < 0 || !*m->charger_id || !*m->event_id)
                        return CF_STAGE_PASS;
                charger_id = m->charger_id;
                charger_dedup *d = charger(c, charger_id);
                int seen = seen_seq_rec(c, d, m->seq_no);
                if (seen == 2) {
                        /* Too far behind to tell: later stages decide. */
                        it->maybe_repeat = true;
                        return CF_STAGE_PASS;
                }
                dup = seen == 1;
        } else if (it->kind == CF_ITEM_EVENT) {
                const cf_session_event *e = it->rec;
                if (!*e->charger_id || !*e->event_id || !*e->session_id)
                        return CF_STAGE_PASS; /* validate: FIELD */
                charger_id = e->charger_id;
                charger_dedup *d = charger(c, charger_id);
                dup = seen_event(d, e);
        } else if (it->kind == CF_ITEM_BILLING) {
                const cf_billing_event *ev = it->rec;
                char key[24];
                snprintf(key, sizeof(key), "src%d", (int)ev->source_task);
                charger_dedup *d = charger(c, key);
                dup = ev->seq <= d->hwm;
                if (dup)
                        return CF_STAGE_DUP;
                d->hwm = ev->seq;
                cf_put_varint(&d->ops, OP_HWM);
                cf_put_varint(&d->ops, ev->seq);
                cf_store_dirty(c->chargers, key, strlen(key));
                return CF_STAGE_PASS;
        } else {
                return CF_STAGE_PASS;
        }
        if (dup)
                return CF_STAGE_DUP;
        cf_store_dirty(c->chargers, charger_id, strlen(charger_id));
        return CF_STAGE_PASS;
}

static cf_err_t dd_init(cf_task *t, void **ctxp, char *errstr,
                        size_t errstr_size)
{
        const cf_config *cfg = cf_task_config(t);
        dd_ctx *c = cf_calloc(1, sizeof(*c));
        c->words = (uint32_t)((cfg->dedup_window + 63) / 64);
        /* Its share of the task's budget (cf_task_cache_budget): 1/4. */
        c->chargers = cf_task_store(t, CF_COL_DEDUP_PARTS, &cd_ops, c,
                                    cf_task_cache_budget(t) / 4, true);
        cf_err_t err =
            cf_task_store_move(t, c->chargers, CF_COL_DEDUP, &cd_whole_ops,
                               NULL, c, errstr, errstr_size);
        if (err) {
                free(c);
                return err;
        }
        *ctxp = c;
        return CF_OK;
}

static void dd_destroy(void *ctx)
{
        free(ctx);
}

const cf_stage cf_stage_dedup = {
        .name = "dedup",
        .init = dd_init,
        .process = dd_process,
        .destroy = dd_destroy,
};
