/*
 * tables.c: the sites and users tables (see tables.h).
 *
 * In memory: each site and user decoded into an arena of its own, in hash
 * maps by id, and a map from badge to user id. In the state store (column
 * family TABLE, task CF_TABLES_TASK): each record's framed Avro value under
 * 's' or 'u' + id, and in META the next offset of every table partition, so
 * that a restart loads the tables from disk and reads only the new tail of
 * the topics (and does not depend on the broker still holding old data).
 */
#include "tables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "wire.h"

#define MAX_PARTITIONS 1024

typedef struct trec {
        cf_arena a;
        void *rec; /* cf_site or cf_user in a */
} trec;

typedef struct pending_write {
        char kind; /* 's' or 'u' */
        char *id;
        uint8_t *value; /* NULL: delete */
        uint32_t vlen;
} pending_write;

struct cf_tables {
        cf_state *st;
        const cf_registry *reg;
        cf_hmap sites;  /* id -> trec */
        cf_hmap users;  /* id -> trec */
        cf_hmap badges; /* badge -> user id (owned copy) */
        int64_t offsets[2][MAX_PARTITIONS];
        bool offsets_dirty;
        pending_write *pw;
        size_t n_pw, cap_pw;
        uint64_t skipped;
};

cf_tables *cf_tables_new(cf_state *st, const cf_registry *reg)
{
        cf_tables *tb = cf_calloc(1, sizeof(*tb));
        tb->st = st;
        tb->reg = reg;
        cf_hmap_init(&tb->sites);
        cf_hmap_init(&tb->users);
        cf_hmap_init(&tb->badges);
        return tb;
}

static void trec_free(trec *r)
{
        if (!r)
                return;
        cf_arena_destroy(&r->a);
        free(r);
}

static void free_map(cf_hmap *m, bool trecs)
{
        size_t i = 0;
        cf_hmap_slot *s;
        while (cf_hmap_next(m, &i, &s)) {
                if (trecs)
                        trec_free(s->value);
                else
                        free(s->value);
        }
        cf_hmap_free(m);
}

void cf_tables_destroy(cf_tables *tb)
{
        if (!tb)
                return;
        free_map(&tb->sites, true);
        free_map(&tb->users, true);
        free_map(&tb->badges, false);
        for (size_t i = 0; i < tb->n_pw; i++) {
                free(tb->pw[i].id);
                free(tb->pw[i].value);
        }
        free(tb->pw);
        free(tb);
}

const cf_site *cf_tables_site(const cf_tables *tb, const char *site_id)
{
        const trec *r = cf_hmap_sget(&tb->sites, site_id);
        return r ? r->rec : NULL;
}

const cf_user *cf_tables_user(const cf_tables *tb, const char *user_id)
{
        const trec *r = cf_hmap_sget(&tb->users, user_id);
        return r ? r->rec : NULL;
}

const cf_user *cf_tables_user_by_badge(const cf_tables *tb,
                                       const char *badge_id)
{
        const char *uid = cf_hmap_sget(&tb->badges, badge_id);
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

static void unlink_badges(cf_tables *tb, const cf_user *u)
{
        for (uint32_t i = 0; i < u->n_badges; i++) {
                const char *cur = cf_hmap_sget(&tb->badges, u->badges[i]);
                if (cur && !strcmp(cur, u->user_id))
                        free(cf_hmap_sdel(&tb->badges, u->badges[i]));
        }
}

/* Sets (value != NULL) or deletes id in kind's map, in memory. */
static bool put_mem(cf_tables *tb, cf_table_kind k, const char *id,
                    const void *value, size_t vlen)
{
        cf_hmap *m = k == CF_TABLE_SITES ? &tb->sites : &tb->users;
        trec *nr = NULL;
        if (value) {
                nr = cf_calloc(1, sizeof(*nr));
                cf_arena_init(&nr->a, 1024);
                cf_rtype t = k == CF_TABLE_SITES ? CF_RT_SITE : CF_RT_USER;
                nr->rec = cf_arena_alloc(&nr->a, cf_rtype_max_size());
                if (cf_decode(tb->reg, t, value, vlen, &nr->a, nr->rec, NULL)) {
                        trec_free(nr);
                        return false;
                }
                const char *rid = k == CF_TABLE_SITES
                                      ? ((cf_site *)nr->rec)->site_id
                                      : ((cf_user *)nr->rec)->user_id;
                if (strcmp(rid, id)) {
                        trec_free(nr);
                        return false;
                }
        }
        trec *old = value ? cf_hmap_sput(m, id, nr) : cf_hmap_sdel(m, id);
        if (k == CF_TABLE_USERS) {
                if (old)
                        unlink_badges(tb, old->rec);
                if (nr) {
                        const cf_user *u = nr->rec;
                        for (uint32_t i = 0; i < u->n_badges; i++)
                                free(cf_hmap_sput(&tb->badges, u->badges[i],
                                                  cf_strdup(u->user_id)));
                }
        }
        trec_free(old);
        return true;
}

bool cf_tables_apply(cf_tables *tb, cf_table_kind k, int32_t partition,
                     int64_t offset, const void *key, size_t klen,
                     const void *value, size_t vlen)
{
        bool ok = true;
        if (partition >= 0 && partition < MAX_PARTITIONS &&
            offset + 1 > tb->offsets[k][partition]) {
                tb->offsets[k][partition] = offset + 1;
                tb->offsets_dirty = true;
        }
        if (!key || !klen) {
                tb->skipped++;
                return false;
        }
        char *id = cf_malloc(klen + 1);
        memcpy(id, key, klen);
        id[klen] = '\0';
        if (!put_mem(tb, k, id, value, vlen)) {
                tb->skipped++;
                free(id);
                return false;
        }
        if (tb->n_pw == tb->cap_pw) {
                tb->cap_pw = tb->cap_pw ? tb->cap_pw * 2 : 64;
                tb->pw = cf_realloc(tb->pw, tb->cap_pw * sizeof(*tb->pw));
        }
        pending_write *w = &tb->pw[tb->n_pw++];
        w->kind = k == CF_TABLE_SITES ? 's' : 'u';
        w->id = id;
        w->value = NULL;
        w->vlen = 0;
        if (value) {
                w->value = cf_malloc(vlen);
                memcpy(w->value, value, vlen);
                w->vlen = (uint32_t)vlen;
        }
        return ok;
}

int64_t cf_tables_offset(const cf_tables *tb, cf_table_kind k,
                         int32_t partition)
{
        if (partition < 0 || partition >= MAX_PARTITIONS)
                return 0;
        return tb->offsets[k][partition];
}

static void rec_key(cf_key *k, char kind, const char *id)
{
        cf_key_init(k, CF_TABLES_TASK);
        cf_key_u8(k, (uint8_t)kind);
        cf_key_str(k, id);
}

void cf_tables_flush(cf_tables *tb, cf_batch *b)
{
        for (size_t i = 0; i < tb->n_pw; i++) {
                pending_write *w = &tb->pw[i];
                cf_key k;
                rec_key(&k, w->kind, w->id);
                if (w->value)
                        cf_batch_put(b, CF_COL_TABLE, k.b, k.len, w->value,
                                     w->vlen);
                else
                        cf_batch_delete(b, CF_COL_TABLE, k.b, k.len);
                free(w->id);
                free(w->value);
        }
        tb->n_pw = 0;
        if (tb->offsets_dirty) {
                cf_buf v;
                cf_key k;
                cf_buf_init(&v);
                for (int t = 0; t < 2; t++)
                        for (int p = 0; p < MAX_PARTITIONS; p++)
                                cf_put_varint(&v, tb->offsets[t][p]);
                cf_key_init(&k, CF_TABLES_TASK);
                cf_key_u8(&k, 'o');
                cf_batch_put(b, CF_COL_META, k.b, k.len, v.p, v.len);
                cf_buf_free(&v);
                tb->offsets_dirty = false;
        }
}

typedef struct load_ctx {
        cf_tables *tb;
        cf_table_kind k;
} load_ctx;

static int load_one(void *opaque, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen)
{
        load_ctx *lc = opaque;
        /* key: 2-byte task, kind byte, id */
        if (klen < 4)
                return 0;
        char *id = cf_malloc(klen - 3 + 1);
        memcpy(id, key + 3, klen - 3);
        id[klen - 3] = '\0';
        if (!put_mem(lc->tb, lc->k, id, val, vlen))
                lc->tb->skipped++;
        free(id);
        return 0;
}

cf_err_t cf_tables_load(cf_tables *tb, char *errstr, size_t errstr_size)
{
        if (!tb->st)
                return CF_OK;
        cf_key k;
        cf_buf v;
        cf_err_t err;
        for (int t = 0; t < 2; t++) {
                load_ctx lc = { tb, (cf_table_kind)t };
                cf_key_init(&k, CF_TABLES_TASK);
                cf_key_u8(&k, t == CF_TABLE_SITES ? 's' : 'u');
                err = cf_state_scan(tb->st, CF_COL_TABLE, k.b, k.len, load_one,
                                    &lc, errstr, errstr_size);
                if (err)
                        return err;
        }
        cf_buf_init(&v);
        cf_key_init(&k, CF_TABLES_TASK);
        cf_key_u8(&k, 'o');
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
        cf_buf_free(&v);
        return CF_OK;
}

void cf_tables_counts(const cf_tables *tb, size_t *sites, size_t *users,
                      size_t *badges, uint64_t *skipped)
{
        *sites = tb->sites.n;
        *users = tb->users.n;
        *badges = tb->badges.n;
        *skipped = tb->skipped;
}
