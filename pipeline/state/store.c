/*
 * store.c: the per-task write-back cache (see store.h).
 *
 * A chained hash table of entries, each holding a copy of its full RocksDB
 * key (task prefix + caller's key) and the caller's object. Every entry is
 * on exactly one of two lists:
 * - the LRU list (head = most recently used): clean entries, whose object
 *   equals what RocksDB holds (or will hold once the last flushed batch is
 *   written), and remembered absences; eviction takes its tail;
 * - the dirty list: entries to put or delete at the next flush; never
 *   evicted.
 *
 * on_disk says whether RocksDB may hold the key after the last flushed
 * batch; a delete of a key known not to be there writes nothing (a pending
 * record created and removed within one commit costs no RocksDB write).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

enum {
        ENT_CLEAN,   /* object, same as in RocksDB */
        ENT_ABSENT,  /* no object, none in RocksDB */
        ENT_DIRTY,   /* object to put at the next flush */
        ENT_DELETED, /* no object, delete at the next flush */
};

typedef struct ent {
        struct ent *next;          /* hash chain */
        struct ent *lprev, *lnext; /* LRU or dirty list */
        void *obj;                 /* NULL when ABSENT or DELETED */
        uint64_t hash;             /* of the caller's key */
        size_t size;               /* bytes accounted for this entry */
        uint32_t klen;             /* caller's key length */
        uint8_t st;                /* ENT_* */
        bool on_disk;              /* RocksDB may hold the key */
        bool cold;                 /* to the LRU tail at the next flush */
        /* Stores with parts: the bytes of the stored value's whole part
         * and of the changes after it; 0, 0 when not known (never read or
         * written by this store: the next flush writes it whole). */
        uint32_t whole_bytes, delta_bytes;
        uint8_t key[]; /* 2-byte task prefix + caller's key */
} ent;

typedef struct ent_list {
        ent *head, *tail;
} ent_list;

struct cf_store {
        cf_state *s;
        cf_col_t col;
        uint16_t task;
        const cf_store_ops *ops;
        void *opaque;
        size_t budget;
        bool load_on_miss;
        bool complete; /* every key of the task on disk is in memory */
        int iterating; /* foreach depth: no eviction, no resize */
        ent **tab;
        size_t nbuckets; /* power of two */
        size_t nent;
        size_t ndirty;
        size_t bytes;
        ent_list lru;
        ent_list dirty;
        /* The entry last found or added: a stage usually gets a key and
         * then marks it dirty, which finds it here without another walk
         * of its bucket (a cache miss at country scale). */
        ent *last;
        cf_buf kbuf; /* prefixed key for reads */
        cf_buf vbuf; /* value read */
        cf_buf enc;  /* encoded object */
        /* Parts: the sizes of the last value decoded (whole part,
         * changes after it). */
        uint32_t dec_whole, dec_delta;
        cf_err_t err;
        char errstr[256];
        uint64_t hits, misses, reads, evictions, flushed;
};

#define STORE_MIN_BUCKETS 64

static bool has_parts(const cf_store *st)
{
        return st->ops->encode_delta != NULL;
}

/* A 64-bit hash of the key bytes: multiply-xorshift over 8-byte words. */
static uint64_t key_hash(const uint8_t *p, size_t n)
{
        uint64_t h =
            0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
        while (n >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
                h ^= h >> 31;
                p += 8;
                n -= 8;
        }
        uint64_t w = 0;
        if (n)
                memcpy(&w, p, n);
        h = (h ^ w) * 0x94d049bb133111ebULL;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        return h;
}

static bool ent_is_dirty(const ent *e)
{
        return e->st == ENT_DIRTY || e->st == ENT_DELETED;
}

static void list_unlink(ent_list *l, ent *e)
{
        if (e->lprev)
                e->lprev->lnext = e->lnext;
        else
                l->head = e->lnext;
        if (e->lnext)
                e->lnext->lprev = e->lprev;
        else
                l->tail = e->lprev;
        e->lprev = e->lnext = NULL;
}

static void list_push(ent_list *l, ent *e)
{
        e->lprev = NULL;
        e->lnext = l->head;
        if (l->head)
                l->head->lprev = e;
        else
                l->tail = e;
        l->head = e;
}

/* Puts e (on no list) at the tail of l: the next to be evicted. */
static void list_push_tail(ent_list *l, ent *e)
{
        e->lnext = NULL;
        e->lprev = l->tail;
        if (l->tail)
                l->tail->lnext = e;
        else
                l->head = e;
        l->tail = e;
}

/* Puts e (not on a list) on the list its state calls for, at the head. */
static void ent_link(cf_store *st, ent *e)
{
        if (ent_is_dirty(e)) {
                st->ndirty++;
                list_push(&st->dirty, e);
        } else {
                list_push(&st->lru, e);
        }
}

static void ent_unlink(cf_store *st, ent *e)
{
        if (ent_is_dirty(e)) {
                st->ndirty--;
                list_unlink(&st->dirty, e);
        } else {
                list_unlink(&st->lru, e);
        }
}

/* Moves e to state to, at the head of its list. */
static void ent_set(cf_store *st, ent *e, uint8_t to)
{
        ent_unlink(st, e);
        e->st = to;
        ent_link(st, e);
}

/* Measures e again after its object changed. */
static void ent_measure(cf_store *st, ent *e)
{
        size_t n = sizeof(*e) + 2 + e->klen;
        if (e->obj)
                n += st->ops->size(st->opaque, e->obj);
        st->bytes = st->bytes - e->size + n;
        e->size = n;
}

static bool ent_is(const ent *e, const void *key, size_t klen, uint64_t h)
{
        return e->hash == h && e->klen == klen &&
               (!klen || !memcmp(e->key + 2, key, klen));
}

static ent *ent_find(cf_store *st, const void *key, size_t klen, uint64_t h)
{
        if (st->last && ent_is(st->last, key, klen, h))
                return st->last;
        for (ent *e = st->tab[h & (st->nbuckets - 1)]; e; e = e->next)
                if (ent_is(e, key, klen, h))
                        return st->last = e;
        return NULL;
}

/* Rehashes into nb buckets (a power of two). */
static void tab_resize(cf_store *st, size_t nb)
{
        ent **tab = cf_calloc(nb, sizeof(*tab));
        for (size_t i = 0; i < st->nbuckets; i++) {
                ent *e = st->tab[i];
                while (e) {
                        ent *next = e->next;
                        size_t j = e->hash & (nb - 1);
                        e->next = tab[j];
                        tab[j] = e;
                        e = next;
                }
        }
        free(st->tab);
        st->bytes = st->bytes - st->nbuckets * sizeof(*tab) + nb * sizeof(*tab);
        st->tab = tab;
        st->nbuckets = nb;
}

/* Adds a new entry for key in state s (measured, linked). */
static ent *ent_insert(cf_store *st, const void *key, size_t klen, uint64_t h,
                       uint8_t s, void *obj, bool on_disk)
{
        if (!st->iterating && st->nent >= st->nbuckets)
                tab_resize(st, st->nbuckets * 2);
        ent *e = cf_malloc(sizeof(*e) + 2 + klen);
        e->hash = h;
        e->klen = (uint32_t)klen;
        e->key[0] = (uint8_t)(st->task >> 8);
        e->key[1] = (uint8_t)st->task;
        if (klen)
                memcpy(e->key + 2, key, klen);
        e->obj = obj;
        e->st = s;
        e->on_disk = on_disk;
        e->cold = false;
        e->whole_bytes = e->delta_bytes = 0;
        e->size = 0;
        size_t i = h & (st->nbuckets - 1);
        e->next = st->tab[i];
        st->tab[i] = e;
        st->nent++;
        st->last = e;
        ent_link(st, e);
        ent_measure(st, e);
        return e;
}

/* Unlinks e from its list and its chain and frees it and its object. */
static void ent_remove(cf_store *st, ent *e)
{
        ent **pp = &st->tab[e->hash & (st->nbuckets - 1)];
        while (*pp != e)
                pp = &(*pp)->next;
        *pp = e->next;
        if (st->last == e)
                st->last = NULL;
        ent_unlink(st, e);
        st->nent--;
        st->bytes -= e->size;
        if (e->obj)
                st->ops->free(st->opaque, e->obj);
        free(e);
}

/* Evicts least recently used clean entries while over budget, sparing
 * keep (the entry about to be returned to the caller). */
static void store_evict(cf_store *st, const ent *keep)
{
        if (st->iterating)
                return;
        while (st->bytes > st->budget && st->lru.tail && st->lru.tail != keep) {
                ent *e = st->lru.tail;
                if (e->st == ENT_CLEAN)
                        st->complete = false;
                ent_remove(st, e);
                st->evictions++;
        }
        /* Give back the table a burst of dirty entries made grow. */
        size_t nb = st->nbuckets;
        while (nb > STORE_MIN_BUCKETS && st->nent * 4 < nb)
                nb /= 2;
        if (nb != st->nbuckets)
                tab_resize(st, nb);
}

static void store_fail(cf_store *st, cf_err_t err, const char *msg)
{
        if (st->err)
                return; /* keep the first */
        st->err = err;
        snprintf(st->errstr, sizeof(st->errstr), "%s", msg);
}

cf_store *cf_store_new(cf_state *s, cf_col_t col, uint16_t task,
                       const cf_store_ops *ops, void *opaque,
                       size_t budget_bytes, bool load_on_miss)
{
        cf_store *st = cf_calloc(1, sizeof(*st));
        st->s = s;
        st->col = col;
        st->task = task;
        st->ops = ops;
        st->opaque = opaque;
        st->budget = budget_bytes;
        st->load_on_miss = load_on_miss;
        st->nbuckets = STORE_MIN_BUCKETS;
        st->tab = cf_calloc(st->nbuckets, sizeof(*st->tab));
        st->bytes = sizeof(*st) + st->nbuckets * sizeof(*st->tab);
        cf_buf_init(&st->kbuf);
        cf_buf_init(&st->vbuf);
        cf_buf_init(&st->enc);
        return st;
}

void cf_store_destroy(cf_store *st)
{
        if (!st)
                return;
        for (size_t i = 0; i < st->nbuckets; i++) {
                ent *e = st->tab[i];
                while (e) {
                        ent *next = e->next;
                        if (e->obj)
                                st->ops->free(st->opaque, e->obj);
                        free(e);
                        e = next;
                }
        }
        free(st->tab);
        cf_buf_free(&st->kbuf);
        cf_buf_free(&st->vbuf);
        cf_buf_free(&st->enc);
        free(st);
}

/* A value of a store with parts: the parts one after the other, each as
 * its length (varint) and bytes. Decodes the first, applies the others;
 * NULL when one does not decode or apply. The sizes go to st->dec_*. */
static void *parts_decode(cf_store *st, const uint8_t *val, size_t vlen)
{
        cf_wrd r;
        cf_wrd_init(&r, val, vlen);
        uint32_t n;
        const uint8_t *p = cf_get_bytes(&r, &n);
        if (!r.ok)
                return NULL;
        void *obj = st->ops->decode(st->opaque, p, n);
        if (!obj)
                return NULL;
        uint32_t whole = (uint32_t)(r.p - val);
        while (r.p < r.end) {
                p = cf_get_bytes(&r, &n);
                if (!r.ok || !st->ops->apply_delta(st->opaque, obj, p, n)) {
                        st->ops->free(st->opaque, obj);
                        return NULL;
                }
        }
        st->ops->stored(st->opaque, obj);
        st->dec_whole = whole;
        st->dec_delta = (uint32_t)(vlen - whole);
        return obj;
}

/* Decodes the value of a stored key, or records CF_ERR_CORRUPT. */
static void *store_decode(cf_store *st, const uint8_t *key, size_t klen,
                          const uint8_t *val, size_t vlen)
{
        void *obj = has_parts(st) ? parts_decode(st, val, vlen)
                                  : st->ops->decode(st->opaque, val, vlen);
        if (!obj) {
                char msg[160];
                cf_buf hex;
                cf_buf_init(&hex);
                cf_buf_hex(&hex, key, klen > 32 ? 32 : klen);
                snprintf(msg, sizeof(msg),
                         "column family %s: value of %zu bytes under key "
                         "%s%s does not decode",
                         cf_state_col_name(st->col), vlen, cf_buf_cstr(&hex),
                         klen > 32 ? "..." : "");
                cf_buf_free(&hex);
                store_fail(st, CF_ERR_CORRUPT, msg);
        }
        return obj;
}

void *cf_store_get(cf_store *st, const void *key, size_t klen)
{
        uint64_t h = key_hash(key, klen);
        ent *e = ent_find(st, key, klen, h);
        if (e) {
                st->hits++;
                if (!ent_is_dirty(e) && st->lru.head != e) {
                        list_unlink(&st->lru, e);
                        list_push(&st->lru, e);
                }
                return e->obj;
        }
        st->misses++;
        if (st->complete || !st->load_on_miss)
                return NULL;

        st->kbuf.len = 0;
        cf_buf_putc(&st->kbuf, (uint8_t)(st->task >> 8));
        cf_buf_putc(&st->kbuf, (uint8_t)st->task);
        cf_buf_put(&st->kbuf, key, klen);
        st->reads++;
        char msg[256];
        cf_err_t err = cf_state_get(st->s, st->col, st->kbuf.p, st->kbuf.len,
                                    &st->vbuf, msg, sizeof(msg));
        if (err == CF_ERR_NOT_FOUND) {
                e = ent_insert(st, key, klen, h, ENT_ABSENT, NULL, false);
                store_evict(st, e);
                return NULL;
        }
        if (err) {
                store_fail(st, err, msg);
                return NULL;
        }
        void *obj = store_decode(st, st->kbuf.p, st->kbuf.len, st->vbuf.p,
                                 st->vbuf.len);
        if (!obj)
                return NULL;
        e = ent_insert(st, key, klen, h, ENT_CLEAN, obj, true);
        e->whole_bytes = st->dec_whole;
        e->delta_bytes = st->dec_delta;
        store_evict(st, e);
        return obj;
}

void *cf_store_read(cf_store *st, const void *key, size_t klen)
{
        if (st->err)
                return NULL;
        st->kbuf.len = 0;
        cf_buf_putc(&st->kbuf, (uint8_t)(st->task >> 8));
        cf_buf_putc(&st->kbuf, (uint8_t)st->task);
        cf_buf_put(&st->kbuf, key, klen);
        st->reads++;
        char msg[256];
        cf_err_t err = cf_state_get(st->s, st->col, st->kbuf.p, st->kbuf.len,
                                    &st->vbuf, msg, sizeof(msg));
        if (err == CF_ERR_NOT_FOUND) {
                snprintf(msg, sizeof(msg),
                         "column family %s: a key the store wrote is absent",
                         cf_state_col_name(st->col));
                store_fail(st, CF_ERR_CORRUPT, msg);
                return NULL;
        }
        if (err) {
                store_fail(st, err, msg);
                return NULL;
        }
        return store_decode(st, st->kbuf.p, st->kbuf.len, st->vbuf.p,
                            st->vbuf.len);
}

void cf_store_put(cf_store *st, const void *key, size_t klen, void *obj)
{
        if (!obj) {
                cf_store_del(st, key, klen);
                return;
        }
        uint64_t h = key_hash(key, klen);
        ent *e = ent_find(st, key, klen, h);
        if (!e) {
                /* In a complete store a key not in memory is not on disk. */
                ent_insert(st, key, klen, h, ENT_DIRTY, obj, !st->complete);
                return;
        }
        if (e->obj && e->obj != obj)
                st->ops->free(st->opaque, e->obj);
        e->obj = obj;
        ent_set(st, e, ENT_DIRTY);
        ent_measure(st, e);
}

bool cf_store_dirty(cf_store *st, const void *key, size_t klen)
{
        ent *e = ent_find(st, key, klen, key_hash(key, klen));
        if (!e || !e->obj)
                return false;
        if (e->st != ENT_DIRTY)
                ent_set(st, e, ENT_DIRTY);
        ent_measure(st, e);
        return true;
}

void cf_store_del(cf_store *st, const void *key, size_t klen)
{
        uint64_t h = key_hash(key, klen);
        ent *e = ent_find(st, key, klen, h);
        if (!e) {
                if (!st->complete)
                        ent_insert(st, key, klen, h, ENT_DELETED, NULL, true);
                return;
        }
        if (e->obj) {
                st->ops->free(st->opaque, e->obj);
                e->obj = NULL;
        }
        ent_set(st, e, e->on_disk ? ENT_DELETED : ENT_ABSENT);
        ent_measure(st, e);
}

/* Adds e's object to b: as a change appended to the stored value when the
 * ops can write one and the changes stay within CF_STORE_PART_RATIO times
 * the whole part, else whole (a put, which replaces every part). */
static void parts_put(cf_store *st, cf_batch *b, ent *e)
{
        cf_buf *x = &st->kbuf; /* the part; kbuf is free during a flush */
        x->len = 0;
        st->enc.len = 0;
        if (e->whole_bytes &&
            st->ops->encode_delta(st->opaque, e->obj, &st->enc)) {
                cf_put_bytes(x, st->enc.p, (uint32_t)st->enc.len);
                if ((uint64_t)e->delta_bytes + x->len <=
                    (uint64_t)CF_STORE_PART_RATIO * e->whole_bytes) {
                        cf_batch_append(b, st->col, e->key, 2 + (size_t)e->klen,
                                        x->p, x->len);
                        e->delta_bytes += (uint32_t)x->len;
                        st->ops->stored(st->opaque, e->obj);
                        return;
                }
        }
        st->enc.len = 0;
        st->ops->encode(st->opaque, e->obj, &st->enc);
        x->len = 0;
        cf_put_bytes(x, st->enc.p, (uint32_t)st->enc.len);
        cf_batch_put(b, st->col, e->key, 2 + (size_t)e->klen, x->p, x->len);
        e->whole_bytes = (uint32_t)x->len;
        e->delta_bytes = 0;
        st->ops->stored(st->opaque, e->obj);
}

cf_err_t cf_store_flush(cf_store *st, cf_batch *b, size_t *nwrites)
{
        size_t n = 0;
        if (nwrites)
                *nwrites = 0;
        if (st->err)
                return st->err;
        /* Oldest change first, so that the newest ends up at the LRU head. */
        ent *e;
        while ((e = st->dirty.tail)) {
                if (e->st == ENT_DIRTY && has_parts(st)) {
                        parts_put(st, b, e);
                } else if (e->st == ENT_DIRTY) {
                        st->enc.len = 0;
                        st->ops->encode(st->opaque, e->obj, &st->enc);
                        cf_batch_put(b, st->col, e->key, 2 + (size_t)e->klen,
                                     st->enc.p, st->enc.len);
                }
                if (e->st == ENT_DIRTY) {
                        e->on_disk = true;
                        ent_set(st, e, ENT_CLEAN);
                        ent_measure(st, e);
                        if (e->cold) {
                                list_unlink(&st->lru, e);
                                list_push_tail(&st->lru, e);
                                e->cold = false;
                        }
                } else {
                        cf_batch_delete(b, st->col, e->key,
                                        2 + (size_t)e->klen);
                        e->whole_bytes = e->delta_bytes = 0;
                        e->on_disk = false;
                        ent_set(st, e, ENT_ABSENT);
                }
                n++;
        }
        st->flushed += n;
        if (nwrites)
                *nwrites = n;
        store_evict(st, NULL);
        /* An encode may read back what memory does not keep
         * (cf_store_read); if that failed, the batch must not be written. */
        return st->err;
}

typedef struct load_ctx {
        cf_store *st;
        bool full;
} load_ctx;

static int load_one(void *opaque, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen)
{
        load_ctx *lc = opaque;
        cf_store *st = lc->st;
        const uint8_t *k = key + 2;
        size_t kl = klen - 2;
        uint64_t h = key_hash(k, kl);
        if (ent_find(st, k, kl, h))
                return 0; /* memory is newer */
        void *obj = store_decode(st, key, klen, val, vlen);
        if (!obj)
                return 1;
        ent *e = ent_insert(st, k, kl, h, ENT_CLEAN, obj, true);
        e->whole_bytes = st->dec_whole;
        e->delta_bytes = st->dec_delta;
        if (st->bytes > st->budget) {
                ent_remove(st, e);
                lc->full = true;
                return 1;
        }
        return 0;
}

cf_err_t cf_store_load_all(cf_store *st, char *errstr, size_t errstr_size)
{
        uint8_t prefix[2] = { (uint8_t)(st->task >> 8), (uint8_t)st->task };
        load_ctx lc = { .st = st, .full = false };
        char msg[256];
        cf_err_t err = cf_state_scan(st->s, st->col, prefix, 2, load_one, &lc,
                                     msg, sizeof(msg));
        if (err)
                store_fail(st, err, msg);
        if (st->err) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size, "%s", st->errstr);
                return st->err;
        }
        /* The last insert may have grown the table past the budget; an
         * eviction then makes the store incomplete again. */
        st->complete = !lc.full;
        store_evict(st, NULL);
        return CF_OK;
}

bool cf_store_complete(const cf_store *st)
{
        return st->complete;
}

typedef struct visit_ctx {
        cf_store *st;
        cf_store_foreach_cb *cb;
        void *opaque;
} visit_ctx;

static int visit_one(void *opaque, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen)
{
        visit_ctx *vc = opaque;
        cf_store *st = vc->st;
        const uint8_t *k = key + 2;
        size_t kl = klen - 2;
        ent *e = ent_find(st, k, kl, key_hash(k, kl));
        if (e) /* memory is newer; a deleted key is skipped */
                return e->obj ? vc->cb(vc->opaque, k, kl, e->obj) : 0;
        void *obj = store_decode(st, key, klen, val, vlen);
        if (!obj)
                return 1;
        int r = vc->cb(vc->opaque, k, kl, obj);
        st->ops->free(st->opaque, obj);
        return r;
}

cf_err_t cf_store_visit_all(cf_store *st, cf_store_foreach_cb *cb, void *opaque,
                            char *errstr, size_t errstr_size)
{
        if (st->complete) {
                cf_store_foreach(st, CF_STORE_SORTED, cb, opaque);
                return CF_OK;
        }
        uint8_t prefix[2] = { (uint8_t)(st->task >> 8), (uint8_t)st->task };
        visit_ctx vc = { st, cb, opaque };
        char msg[256];
        st->iterating++;
        cf_err_t err = cf_state_scan(st->s, st->col, prefix, 2, visit_one, &vc,
                                     msg, sizeof(msg));
        st->iterating--;
        if (err)
                store_fail(st, err, msg);
        if (st->err && errstr && errstr_size)
                snprintf(errstr, errstr_size, "%s", st->errstr);
        return st->err;
}

void cf_store_cool(cf_store *st, const void *key, size_t klen)
{
        ent *e = ent_find(st, key, klen, key_hash(key, klen));
        if (e)
                e->cold = true;
}

static int ent_cmp(const void *a, const void *b)
{
        const ent *x = *(const ent *const *)a, *y = *(const ent *const *)b;
        size_t n = x->klen < y->klen ? x->klen : y->klen;
        int c = n ? memcmp(x->key + 2, y->key + 2, n) : 0;
        if (c)
                return c;
        return (x->klen > y->klen) - (x->klen < y->klen);
}

void cf_store_foreach(cf_store *st, int flags, cf_store_foreach_cb *cb,
                      void *opaque)
{
        st->iterating++;
        if (flags & CF_STORE_SORTED) {
                size_t n = 0;
                ent **v = cf_malloc((st->nent ? st->nent : 1) * sizeof(*v));
                for (size_t i = 0; i < st->nbuckets; i++)
                        for (ent *e = st->tab[i]; e; e = e->next)
                                if (e->obj)
                                        v[n++] = e;
                qsort(v, n, sizeof(*v), ent_cmp);
                /* Entries are not freed while iterating; one deleted by cb
                 * has lost its object and is skipped. */
                for (size_t i = 0; i < n; i++)
                        if (v[i]->obj &&
                            cb(opaque, v[i]->key + 2, v[i]->klen, v[i]->obj))
                                break;
                free(v);
        } else {
                bool stop = false;
                for (size_t i = 0; i < st->nbuckets && !stop; i++)
                        for (ent *e = st->tab[i]; e && !stop; e = e->next)
                                if (e->obj)
                                        stop = cb(opaque, e->key + 2, e->klen,
                                                  e->obj) != 0;
        }
        st->iterating--;
}

void *cf_store_decode(cf_store *st, const uint8_t *p, size_t len)
{
        return st->ops->decode(st->opaque, p, len);
}

cf_err_t cf_store_error(const cf_store *st, char *errstr, size_t errstr_size)
{
        if (errstr && errstr_size)
                snprintf(errstr, errstr_size, "%s", st->err ? st->errstr : "");
        return st->err;
}

void cf_store_stats_get(const cf_store *st, cf_store_stats *out)
{
        out->entries = st->nent;
        out->dirty = st->ndirty;
        out->bytes = st->bytes;
        out->hits = st->hits;
        out->misses = st->misses;
        out->reads = st->reads;
        out->evictions = st->evictions;
        out->flushed = st->flushed;
}

cf_col_t cf_store_col(const cf_store *st)
{
        return st->col;
}
