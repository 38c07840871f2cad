/*
 * tables.c: the sites and users tables (see tables.h).
 *
 * In the state store (column family TABLE, task CF_TABLES_TASK), under
 * keys built with cf_key_str (so each id ends with a 0 byte):
 * - 's' + site id: the site's framed Avro value, as read from the topic;
 * - 'u' + user id: the user's framed Avro value;
 * - 'b' + badge: the id of the user holding the badge (the badge index).
 * In META: 'o', the next offset of every table partition, so that a restart
 * reads only the new tail of the topics (and does not depend on the broker
 * still holding old data); 'n', the counts of users and badges.
 *
 * Sites (a few thousand, e.g. 5,000 at the country preset) are all in
 * memory: each decoded into an arena of its own, in a hash map by id,
 * loaded whole at start. Users and the badge index are not: they live in
 * RocksDB behind two write-back LRU caches (cf_store, load on miss), which
 * together with the changes not yet written stay within the cache budget
 * given to cf_tables_new (tables.cache.max.bytes): half of it for cached
 * users, a quarter for cached badges, a quarter for pending changes. A
 * miss costs one RocksDB point read (absent keys are mostly answered by the
 * bloom filters) and is remembered, absence included.
 *
 * Changes: cf_tables_apply updates the caches (entries become dirty) and
 * cf_tables_flush adds them to the runtime's commit batch with the offsets
 * and counts. When the changes since the last flush exceed their quarter of
 * the budget (a table load at start, 2,000,000 users at the country preset,
 * comes before the first commit), apply writes them itself, offsets and
 * counts included, in one batch of its own, so memory stays bounded while a
 * topic is read whole. Table records and the tasks' state are independent,
 * so writing table changes ahead of a commit is safe: a restart resumes the
 * table topics from the offsets stored with them.
 *
 * Badges: applying a user first unlinks every badge of its previous value
 * that still points to it, then links every badge of its new value (a badge
 * taken by another user moves to that user; a user dropping a badge frees
 * it). The counts follow the same changes and are persisted, so that
 * cf_tables_counts needs no scan.
 *
 * A database written before the badge index existed has no 'n' key: the
 * load then builds the index and counts from the stored users, in key
 * order (as the in-memory tables did).
 */
#include "tables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#define MAX_PARTITIONS 1024

/* A site in memory. */
typedef struct trec {
        cf_arena a;
        void *rec; /* cf_site in a */
} trec;

/* A user in the users cache: decoded, with the bytes it came from (what is
 * written back to RocksDB). */
typedef struct tuser {
        cf_arena a;
        cf_user *u; /* in a */
        uint8_t *raw;
        uint32_t rawlen;
} tuser;

/* A site change not yet added to a batch. */
typedef struct pending_write {
        char *id;
        uint8_t *value; /* NULL: delete */
        uint32_t vlen;
} pending_write;

struct cf_tables {
        cf_state *st;
        const cf_registry *reg;
        cf_hmap sites;     /* id -> trec */
        cf_store *users;   /* 'u' id -> tuser */
        cf_store *badges;  /* 'b' badge -> user id (char *) */
        size_t n_users;    /* users in the table */
        size_t n_badges;   /* badges in the index */
        bool counts_dirty; /* counts changed since the last flush */
        size_t chunk;      /* pending bytes that make apply write */
        size_t pending;    /* approximate bytes changed since the flush */
        int64_t offsets[2][MAX_PARTITIONS];
        bool offsets_dirty;
        pending_write *pw; /* sites */
        size_t n_pw, cap_pw;
        uint64_t skipped;
        uint64_t site_tombstones; /* ignored (see tables.h) */
        cf_batch *own;            /* apply's own writes */
        cf_err_t err;             /* sticky: a failed write of apply's own */
        char errstr[256];
};

/* ---- keys ---------------------------------------------------------------
 */

/* The caller's part of a TABLE key (kind byte, id, 0) in k->b + 2. False
 * when the id is too long for a key. */
static bool tkey(cf_key *k, char kind, const char *id)
{
        cf_key_init(k, CF_TABLES_TASK);
        cf_key_u8(k, (uint8_t)kind);
        cf_key_str(k, id);
        return cf_key_ok(k);
}

#define TKEY(k) ((k)->b + 2), ((k)->len - 2)

/* ---- cache objects ------------------------------------------------------
 */

static tuser *tuser_decode(const cf_registry *reg, const void *p, size_t n)
{
        tuser *r = cf_calloc(1, sizeof(*r));
        /* The decoded strings take about the encoded size, plus pointers. */
        cf_arena_init(&r->a, sizeof(cf_user) + 2 * n + 64);
        r->u = cf_arena_alloc(&r->a, sizeof(cf_user));
        if (cf_decode(reg, CF_RT_USER, p, n, &r->a, r->u, NULL) ||
            !cf_rec_strings_valid(CF_RT_USER, r->u)) {
                cf_arena_destroy(&r->a);
                free(r);
                return NULL;
        }
        r->raw = cf_malloc(n);
        memcpy(r->raw, p, n);
        r->rawlen = (uint32_t)n;
        return r;
}

static void user_encode(void *opaque, const void *obj, cf_buf *out)
{
        (void)opaque;
        const tuser *r = obj;
        cf_buf_put(out, r->raw, r->rawlen);
}

static void *user_decode(void *opaque, const uint8_t *p, size_t len)
{
        const cf_tables *tb = opaque;
        return tuser_decode(tb->reg, p, len);
}

static void user_free(void *opaque, void *obj)
{
        (void)opaque;
        tuser *r = obj;
        cf_arena_destroy(&r->a);
        free(r->raw);
        free(r);
}

static size_t user_size(void *opaque, const void *obj)
{
        (void)opaque;
        const tuser *r = obj;
        size_t arena =
            r->a.used > r->a.chunk_size ? r->a.used : r->a.chunk_size;
        /* struct, arena chunk header, raw copy, malloc overhead */
        return sizeof(*r) + 32 + arena + r->rawlen + 3 * 16;
}

static const cf_store_ops user_ops = {
        .encode = user_encode,
        .decode = user_decode,
        .free = user_free,
        .size = user_size,
};

static void badge_encode(void *opaque, const void *obj, cf_buf *out)
{
        (void)opaque;
        cf_buf_puts(out, obj);
}

static void *badge_decode(void *opaque, const uint8_t *p, size_t len)
{
        (void)opaque;
        if (!len || memchr(p, 0, len))
                return NULL;
        char *s = cf_malloc(len + 1);
        memcpy(s, p, len);
        s[len] = '\0';
        return s;
}

static void badge_free(void *opaque, void *obj)
{
        (void)opaque;
        free(obj);
}

static size_t badge_size(void *opaque, const void *obj)
{
        (void)opaque;
        return strlen(obj) + 1 + 16;
}

static const cf_store_ops badge_ops = {
        .encode = badge_encode,
        .decode = badge_decode,
        .free = badge_free,
        .size = badge_size,
};

/* ---- life ---------------------------------------------------------------
 */

cf_tables *cf_tables_new(cf_state *st, const cf_registry *reg,
                         size_t cache_bytes)
{
        cf_tables *tb = cf_calloc(1, sizeof(*tb));
        tb->st = st;
        tb->reg = reg;
        cf_hmap_init(&tb->sites);
        /* Without a state store the caches are the table: no budget. */
        size_t ub = st ? cache_bytes / 2 : SIZE_MAX;
        size_t bb = st ? cache_bytes / 4 : SIZE_MAX;
        tb->chunk = cache_bytes / 4;
        tb->users = cf_store_new(st, CF_COL_TABLE, CF_TABLES_TASK, &user_ops,
                                 tb, ub, st != NULL);
        tb->badges = cf_store_new(st, CF_COL_TABLE, CF_TABLES_TASK, &badge_ops,
                                  tb, bb, st != NULL);
        return tb;
}

static void trec_free(trec *r)
{
        if (!r)
                return;
        cf_arena_destroy(&r->a);
        free(r);
}

void cf_tables_destroy(cf_tables *tb)
{
        if (!tb)
                return;
        size_t i = 0;
        cf_hmap_slot *s;
        while (cf_hmap_next(&tb->sites, &i, &s))
                trec_free(s->value);
        cf_hmap_free(&tb->sites);
        cf_store_destroy(tb->users);
        cf_store_destroy(tb->badges);
        for (size_t j = 0; j < tb->n_pw; j++) {
                free(tb->pw[j].id);
                free(tb->pw[j].value);
        }
        free(tb->pw);
        cf_batch_destroy(tb->own);
        free(tb);
}

/* ---- lookups ------------------------------------------------------------
 */

const cf_site *cf_tables_site(const cf_tables *tb, const char *site_id)
{
        const trec *r = cf_hmap_sget(&tb->sites, site_id);
        return r ? r->rec : NULL;
}

const cf_user *cf_tables_user(const cf_tables *tb, const char *user_id)
{
        cf_key k;
        if (!tkey(&k, 'u', user_id))
                return NULL;
        const tuser *r = cf_store_get(tb->users, TKEY(&k));
        return r ? r->u : NULL;
}

const cf_user *cf_tables_user_by_badge(const cf_tables *tb,
                                       const char *badge_id)
{
        cf_key k;
        if (!tkey(&k, 'b', badge_id))
                return NULL;
        /* uid belongs to the badges cache, which the user lookup leaves
         * alone. */
        const char *uid = cf_store_get(tb->badges, TKEY(&k));
        return uid ? cf_tables_user(tb, uid) : NULL;
}

const cf_price_version *cf_site_version_at(const cf_site *s, int64_t t_ms)
{
        const cf_price_version *best = NULL;
        for (uint32_t i = 0; i < s->n_versions; i++) {
                const cf_price_version *v = &s->versions[i];
                if (v->valid_from_ms <= t_ms &&
                    (!best || v->valid_from_ms >= best->valid_from_ms))
                        best = v;
        }
        return best;
}

const cf_tariff *cf_version_tariff(const cf_price_version *v, const char *group)
{
        if (!group)
                return v->unauthenticated_plan ? v->unauthenticated_plan
                                               : &v->default_plan;
        for (uint32_t i = 0; i < v->n_plans; i++)
                if (!strcmp(v->plans[i].group, group))
                        return &v->plans[i].tariff;
        return &v->default_plan;
}

const char *cf_site_charger_group(const cf_site *s, const char *charger_id)
{
        if (!charger_id)
                return NULL;
        for (uint32_t i = 0; i < s->n_charger_groups; i++)
                if (!strcmp(s->charger_groups[i].charger_id, charger_id))
                        return s->charger_groups[i].group;
        return NULL;
}

const cf_tariff *cf_site_tariff(const cf_site *s, const cf_price_version *v,
                                const char *charger_id, const char *group)
{
        const char *cg = cf_site_charger_group(s, charger_id);
        if (cg) {
                const cf_tariff *any = NULL;
                for (uint32_t i = 0; i < v->n_charger_plans; i++) {
                        const cf_charger_plan *cp = &v->charger_plans[i];
                        if (strcmp(cp->charger_group, cg))
                                continue;
                        if (!cp->user_group) {
                                if (!any)
                                        any = &cp->tariff;
                        } else if (group && !strcmp(cp->user_group, group)) {
                                return &cp->tariff;
                        }
                }
                if (any)
                        return any;
        }
        return cf_version_tariff(v, group);
}

/* ---- changes ------------------------------------------------------------
 */

/* Removes the badges of u that still point to u from the index. */
static void unlink_badges(cf_tables *tb, const cf_user *u)
{
        for (uint32_t i = 0; i < u->n_badges; i++) {
                cf_key k;
                if (!tkey(&k, 'b', u->badges[i]))
                        continue; /* never linked */
                const char *cur = cf_store_get(tb->badges, TKEY(&k));
                if (cur && !strcmp(cur, u->user_id)) {
                        cf_store_del(tb->badges, TKEY(&k));
                        tb->n_badges--;
                        tb->counts_dirty = true;
                }
        }
}

/* Points every badge of u to u (taking it from any other holder). */
static void link_badges(cf_tables *tb, const cf_user *u)
{
        for (uint32_t i = 0; i < u->n_badges; i++) {
                cf_key k;
                if (!tkey(&k, 'b', u->badges[i]))
                        continue; /* cannot be looked up either */
                const char *cur = cf_store_get(tb->badges, TKEY(&k));
                if (cur && !strcmp(cur, u->user_id))
                        continue;
                if (!cur) {
                        tb->n_badges++;
                        tb->counts_dirty = true;
                }
                cf_store_put(tb->badges, TKEY(&k), cf_strdup(u->user_id));
                tb->pending += 2 * k.len + 64;
        }
}

/* Sets (value != NULL) or deletes user id. */
static bool put_user(cf_tables *tb, const char *id, const void *value,
                     size_t vlen)
{
        cf_key k;
        if (!tkey(&k, 'u', id))
                return false;
        tuser *nr = NULL;
        if (value) {
                nr = tuser_decode(tb->reg, value, vlen);
                if (!nr)
                        return false;
                if (strcmp(nr->u->user_id, id)) {
                        user_free(tb, nr);
                        return false;
                }
        }
        /* old stays valid until the put below: only the badges cache is
         * used meanwhile. */
        const tuser *old = cf_store_get(tb->users, TKEY(&k));
        if (old)
                unlink_badges(tb, old->u);
        if (nr)
                link_badges(tb, nr->u);
        if (!old != !nr) {
                if (nr)
                        tb->n_users++;
                else
                        tb->n_users--;
                tb->counts_dirty = true;
        }
        if (nr) {
                cf_store_put(tb->users, TKEY(&k), nr);
                tb->pending += user_size(tb, nr) + k.len + 64;
        } else {
                cf_store_del(tb->users, TKEY(&k));
                tb->pending += k.len + 64;
        }
        return true;
}

/* Sets (value != NULL) or deletes site id, in memory. */
static bool put_site(cf_tables *tb, const char *id, const void *value,
                     size_t vlen)
{
        trec *nr = NULL;
        if (value) {
                nr = cf_calloc(1, sizeof(*nr));
                cf_arena_init(&nr->a, 1024);
                nr->rec = cf_arena_alloc(&nr->a, sizeof(cf_site));
                if (cf_decode(tb->reg, CF_RT_SITE, value, vlen, &nr->a, nr->rec,
                              NULL) ||
                    !cf_rec_strings_valid(CF_RT_SITE, nr->rec) ||
                    strcmp(((cf_site *)nr->rec)->site_id, id)) {
                        trec_free(nr);
                        return false;
                }
        }
        trec *old = value ? cf_hmap_sput(&tb->sites, id, nr)
                          : cf_hmap_sdel(&tb->sites, id);
        trec_free(old);
        return true;
}

static void add_site_write(cf_tables *tb, char *id, const void *value,
                           size_t vlen)
{
        if (tb->n_pw == tb->cap_pw) {
                tb->cap_pw = tb->cap_pw ? tb->cap_pw * 2 : 64;
                tb->pw = cf_realloc(tb->pw, tb->cap_pw * sizeof(*tb->pw));
        }
        pending_write *w = &tb->pw[tb->n_pw++];
        w->id = id;
        w->value = NULL;
        w->vlen = 0;
        if (value) {
                w->value = cf_malloc(vlen);
                memcpy(w->value, value, vlen);
                w->vlen = (uint32_t)vlen;
        }
        tb->pending += vlen + strlen(id) + 64;
}

static cf_err_t tables_flush(cf_tables *tb, cf_batch *b);

/* Writes the changes so far in a batch of apply's own (see the header). */
static void write_chunk(cf_tables *tb)
{
        if (tb->err)
                return;
        if (!tb->own)
                tb->own = cf_batch_new(tb->st);
        cf_batch_clear(tb->own);
        cf_err_t err = tables_flush(tb, tb->own);
        if (!err && cf_batch_count(tb->own) > 0)
                err = cf_state_write(tb->st, tb->own, false, tb->errstr,
                                     sizeof(tb->errstr));
        else
                cf_store_error(cf_store_error(tb->users, NULL, 0) ? tb->users
                                                                  : tb->badges,
                               tb->errstr, sizeof(tb->errstr));
        cf_batch_clear(tb->own);
        if (err)
                tb->err = err;
}

bool cf_tables_apply(cf_tables *tb, cf_table_kind k, int32_t partition,
                     int64_t offset, const void *key, size_t klen,
                     const void *value, size_t vlen)
{
        if (partition >= 0 && partition < MAX_PARTITIONS &&
            offset + 1 > tb->offsets[k][partition]) {
                tb->offsets[k][partition] = offset + 1;
                tb->offsets_dirty = true;
        }
        if (!key || !klen || memchr(key, 0, klen)) {
                tb->skipped++;
                return false;
        }
        char *id = cf_malloc(klen + 1);
        memcpy(id, key, klen);
        id[klen] = '\0';
        bool ok;
        if (k == CF_TABLE_USERS) {
                ok = put_user(tb, id, value, vlen);
                free(id);
        } else if (!value && cf_hmap_sget(&tb->sites, id)) {
                /* A site's tombstone (see tables.h): the site is kept. */
                cf_log(CF_LOG_WARN,
                       "site %s: tombstone on the sites topic [%d] offset "
                       "%lld ignored: the site keeps its last config, for "
                       "its open sessions, unbilled periods and late "
                       "records",
                       id, (int)partition, (long long)offset);
                tb->site_tombstones++;
                free(id);
                ok = true;
        } else {
                cf_key sk;
                ok = tkey(&sk, 's', id) && put_site(tb, id, value, vlen);
                if (ok)
                        add_site_write(tb, id, value, vlen);
                else
                        free(id);
        }
        if (!ok)
                tb->skipped++;
        if (tb->st && tb->pending > tb->chunk)
                write_chunk(tb);
        return ok;
}

int64_t cf_tables_offset(const cf_tables *tb, cf_table_kind k,
                         int32_t partition)
{
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return 0;
        return tb->offsets[k][partition];
}

static void meta_key(cf_key *k, char kind)
{
        cf_key_init(k, CF_TABLES_TASK);
        cf_key_u8(k, (uint8_t)kind);
}

static cf_err_t tables_flush(cf_tables *tb, cf_batch *b)
{
        for (size_t i = 0; i < tb->n_pw; i++) {
                pending_write *w = &tb->pw[i];
                cf_key k;
                tkey(&k, 's', w->id); /* checked by apply */
                if (w->value)
                        cf_batch_put(b, CF_COL_TABLE, k.b, k.len, w->value,
                                     w->vlen);
                else
                        cf_batch_delete(b, CF_COL_TABLE, k.b, k.len);
                free(w->id);
                free(w->value);
        }
        tb->n_pw = 0;
        tb->pending = 0;
        cf_err_t err = cf_store_flush(tb->users, b, NULL);
        cf_err_t err2 = cf_store_flush(tb->badges, b, NULL);
        if (err || err2)
                return err ? err : err2;
        if (tb->offsets_dirty) {
                cf_buf v;
                cf_key k;
                cf_buf_init(&v);
                for (int t = 0; t < 2; t++)
                        for (int p = 0; p < MAX_PARTITIONS; p++)
                                cf_put_varint(&v, tb->offsets[t][p]);
                meta_key(&k, 'o');
                cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
                cf_buf_free(&v);
                tb->offsets_dirty = false;
        }
        if (tb->counts_dirty) {
                cf_buf v;
                cf_key k;
                cf_buf_init(&v);
                cf_put_varint(&v, (int64_t)tb->n_users);
                cf_put_varint(&v, (int64_t)tb->n_badges);
                meta_key(&k, 'n');
                cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
                cf_buf_free(&v);
                tb->counts_dirty = false;
        }
        return CF_OK;
}

cf_err_t cf_tables_flush(cf_tables *tb, cf_batch *b, char *errstr,
                         size_t errstr_size)
{
        if (tb->err) {
                snprintf(errstr, errstr_size, "tables: %s", tb->errstr);
                return tb->err;
        }
        cf_err_t err = tables_flush(tb, b);
        if (err) {
                char msg[256];
                cf_store_error(cf_store_error(tb->users, NULL, 0) ? tb->users
                                                                  : tb->badges,
                               msg, sizeof(msg));
                snprintf(errstr, errstr_size, "tables: %s", msg);
        }
        return err;
}

cf_err_t cf_tables_write(cf_tables *tb, char *errstr, size_t errstr_size)
{
        if (tb->st)
                write_chunk(tb);
        if (tb->err) {
                snprintf(errstr, errstr_size, "%s", tb->errstr);
                return tb->err;
        }
        return CF_OK;
}

/* ---- load ---------------------------------------------------------------
 */

static int load_site(void *opaque, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen)
{
        cf_tables *tb = opaque;
        /* key: 2-byte task, kind byte, id, 0 */
        if (klen < 5 || key[klen - 1])
                return 0;
        char *id = cf_malloc(klen - 4 + 1);
        memcpy(id, key + 3, klen - 4);
        id[klen - 4] = '\0';
        if (!put_site(tb, id, val, vlen))
                tb->skipped++;
        free(id);
        return 0;
}

/* Builds the badge index and the counts from the stored users (a database
 * from before the index). */
static int index_user(void *opaque, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen)
{
        cf_tables *tb = opaque;
        (void)key;
        (void)klen;
        tuser *r = tuser_decode(tb->reg, val, vlen);
        if (!r) {
                tb->skipped++;
                return 0;
        }
        tb->n_users++;
        tb->counts_dirty = true;
        link_badges(tb, r->u);
        user_free(tb, r);
        if (tb->pending > tb->chunk)
                write_chunk(tb);
        return tb->err ? 1 : 0;
}

cf_err_t cf_tables_load(cf_tables *tb, char *errstr, size_t errstr_size)
{
        if (!tb->st)
                return CF_OK;
        cf_key k;
        cf_buf v;
        cf_err_t err;
        meta_key(&k, 's');
        err = cf_state_scan(tb->st, CF_COL_TABLE, k.b, k.len, load_site, tb,
                            errstr, errstr_size);
        if (err)
                return err;
        cf_buf_init(&v);
        meta_key(&k, 'o');
        err = cf_state_get(tb->st, CF_COL_META, k.b, k.len, &v, errstr,
                           errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                for (int t = 0; t < 2; t++)
                        for (int p = 0; p < MAX_PARTITIONS; p++)
                                tb->offsets[t][p] = cf_get_varint(&r);
                if (!r.ok) {
                        snprintf(errstr, errstr_size,
                                 "stored table offsets are corrupt");
                        cf_buf_free(&v);
                        return CF_ERR_STATE;
                }
        } else if (err != CF_ERR_NOT_FOUND) {
                cf_buf_free(&v);
                return err;
        }
        meta_key(&k, 'n');
        err = cf_state_get(tb->st, CF_COL_META, k.b, k.len, &v, errstr,
                           errstr_size);
        if (err == CF_OK) {
                cf_wrd r;
                cf_wrd_init(&r, v.p, v.len);
                int64_t nu = cf_get_varint(&r), nb = cf_get_varint(&r);
                if (!r.ok || nu < 0 || nb < 0) {
                        snprintf(errstr, errstr_size,
                                 "stored table counts are corrupt");
                        cf_buf_free(&v);
                        return CF_ERR_STATE;
                }
                tb->n_users = (size_t)nu;
                tb->n_badges = (size_t)nb;
        } else if (err == CF_ERR_NOT_FOUND) {
                meta_key(&k, 'u');
                err = cf_state_scan(tb->st, CF_COL_TABLE, k.b, k.len,
                                    index_user, tb, errstr, errstr_size);
                if (!err && tb->err) {
                        snprintf(errstr, errstr_size, "%s", tb->errstr);
                        err = tb->err;
                }
                if (!err && tb->counts_dirty)
                        write_chunk(tb);
                if (!err && tb->err) {
                        snprintf(errstr, errstr_size, "%s", tb->errstr);
                        err = tb->err;
                }
        }
        cf_buf_free(&v);
        return err;
}

void cf_tables_counts(const cf_tables *tb, size_t *sites, size_t *users,
                      size_t *badges, uint64_t *skipped)
{
        *sites = tb->sites.n;
        *users = tb->n_users;
        *badges = tb->n_badges;
        *skipped = tb->skipped;
}

void cf_tables_cache_stats(const cf_tables *tb, cf_store_stats *users,
                           cf_store_stats *badges)
{
        cf_store_stats_get(tb->users, users);
        cf_store_stats_get(tb->badges, badges);
}
