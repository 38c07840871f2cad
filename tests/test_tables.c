/*
 * test_tables.c: the sites and users tables (pipeline/task/tables.c) over a
 * real RocksDB directory under /tmp, removed after each test.
 *
 * Users and the badge index live in RocksDB behind a bounded cache. Every
 * scenario runs twice: with the default cache (32 MiB: everything stays
 * cached) and with a cache of 0 bytes, where every change is written at
 * once by apply itself and every lookup of a key other than the last one
 * reads RocksDB, so that correctness cannot depend on the cache. Lookups
 * by id and by badge are checked after inserts, a badge moving to another
 * user, a user dropping badges, deletes (tombstones), skipped records, a
 * commit, and a close and reopen of the directory; counts and offsets
 * too. Expected values are worked out by hand next to each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec.h"
#include "state.h"
#include "tables.h"

#define BIG_CACHE ((size_t)32 << 20)

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

typedef struct fx {
        char dir[64];
        size_t cache;
        cf_registry *reg;
        cf_state *s;
        cf_tables *tb;
        int64_t next_offset; /* of billing.users partition 0 */
        char err[512];
} fx;

static void fx_open(fx *f)
{
        if (cf_state_open(f->dir, NULL, &f->s, f->err, sizeof(f->err)))
                fail_msg("open: %s", f->err);
        f->tb = cf_tables_new(f->s, f->reg, f->cache);
        if (cf_tables_load(f->tb, f->err, sizeof(f->err)))
                fail_msg("load: %s", f->err);
}

static void fx_close(fx *f)
{
        cf_tables_destroy(f->tb);
        f->tb = NULL;
        cf_state_close(f->s);
        f->s = NULL;
}

static int setup_cache(void **state, size_t cache)
{
        fx *f = calloc(1, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-tables-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->cache = cache;
        if (cf_registry_new(&f->reg, f->err, sizeof(f->err)))
                return -1;
        fx_open(f);
        *state = f;
        return 0;
}

static int setup_big(void **state)
{
        return setup_cache(state, BIG_CACHE);
}

static int setup_zero(void **state)
{
        return setup_cache(state, 0);
}

static int teardown(void **state)
{
        fx *f = *state;
        fx_close(f);
        cf_registry_destroy(f->reg);
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* Reopens the directory: what the next process would see. */
static void fx_reopen(fx *f)
{
        fx_close(f);
        fx_open(f);
}

/* Adds the pending changes to a batch and writes it (a commit). */
static void commit(fx *f)
{
        cf_batch *b = cf_batch_new(f->s);
        if (cf_tables_flush(f->tb, b, f->err, sizeof(f->err)))
                fail_msg("flush: %s", f->err);
        if (cf_state_write(f->s, b, true, f->err, sizeof(f->err)))
                fail_msg("write: %s", f->err);
        cf_batch_destroy(b);
}

/* Applies a user record under key (value encoded from the arguments;
 * group NULL: a tombstone). Returns what apply returned. */
static bool apply_user_as(fx *f, const char *key, const char *id,
                          const char *group, const char *b1, const char *b2)
{
        char *badges[2];
        uint32_t n = 0;
        if (b1)
                badges[n++] = (char *)b1;
        if (b2)
                badges[n++] = (char *)b2;
        cf_user u = { .user_id = (char *)id,
                      .tenant_id = "t-1",
                      .name = NULL,
                      .group = (char *)group,
                      .badges = badges,
                      .n_badges = n,
                      .updated_ms = 1 };
        cf_buf b;
        cf_buf_init(&b);
        if (group)
                cf_encode(f->reg, CF_RT_USER, &u, &b);
        bool ok =
            cf_tables_apply(f->tb, CF_TABLE_USERS, 0, f->next_offset++, key,
                            strlen(key), group ? b.p : NULL, group ? b.len : 0);
        cf_buf_free(&b);
        return ok;
}

static void put_user(fx *f, const char *id, const char *group, const char *b1,
                     const char *b2)
{
        assert_true(apply_user_as(f, id, id, group, b1, b2));
}

static void del_user(fx *f, const char *id)
{
        assert_true(apply_user_as(f, id, id, NULL, NULL, NULL));
}

/* The user id holds group (NULL: absent), with exactly the badges given. */
static void expect_user(fx *f, const char *id, const char *group,
                        const char *b1, const char *b2)
{
        const cf_user *u = cf_tables_user(f->tb, id);
        if (!group) {
                assert_null(u);
                return;
        }
        assert_non_null(u);
        assert_string_equal(u->user_id, id);
        assert_string_equal(u->group, group);
        assert_int_equal(u->n_badges, (b1 != NULL) + (b2 != NULL));
        if (b1)
                assert_string_equal(u->badges[0], b1);
        if (b2)
                assert_string_equal(u->badges[1], b2);
}

/* The badge belongs to user id (NULL: nobody). */
static void expect_badge(fx *f, const char *badge, const char *id)
{
        const cf_user *u = cf_tables_user_by_badge(f->tb, badge);
        if (!id) {
                assert_null(u);
                return;
        }
        assert_non_null(u);
        assert_string_equal(u->user_id, id);
}

static void expect_counts(fx *f, size_t users, size_t badges, uint64_t skipped)
{
        size_t ns, nu, nb;
        uint64_t sk;
        cf_tables_counts(f->tb, &ns, &nu, &nb, &sk);
        assert_int_equal(ns, 0);
        assert_int_equal(nu, users);
        assert_int_equal(nb, badges);
        assert_int_equal(sk, skipped);
}

/* Step 1: u1 {b1, b2} group g1, u2 {b3} g2, u3 {} g1. */
static void state_1(fx *f)
{
        expect_user(f, "u1", "g1", "b1", "b2");
        expect_user(f, "u2", "g2", "b3", NULL);
        expect_user(f, "u3", "g1", NULL, NULL);
        expect_user(f, "u4", NULL, NULL, NULL);
        expect_badge(f, "b1", "u1");
        expect_badge(f, "b2", "u1");
        expect_badge(f, "b3", "u2");
        expect_badge(f, "b4", NULL);
        /* a user id is not a badge, nor the other way round */
        expect_badge(f, "u1", NULL);
        expect_user(f, "b1", NULL, NULL, NULL);
}

/* After steps 2 to 5 (see the test): u1 {b5} g1, u2 deleted, u3 {} g1;
 * only b5 is linked (to u1). */
static void state_5(fx *f)
{
        expect_user(f, "u1", "g1", "b5", NULL);
        expect_user(f, "u2", NULL, NULL, NULL);
        expect_user(f, "u3", "g1", NULL, NULL);
        expect_badge(f, "b1", NULL);
        expect_badge(f, "b2", NULL);
        expect_badge(f, "b3", NULL);
        expect_badge(f, "b5", "u1");
}

static void users_and_badges_through_updates_deletes_and_restart(void **state)
{
        fx *f = *state;
        /* 1. inserts: 3 users, 3 badges (b1, b2, b3) */
        put_user(f, "u1", "g1", "b1", "b2");
        put_user(f, "u2", "g2", "b3", NULL);
        put_user(f, "u3", "g1", NULL, NULL);
        state_1(f);
        expect_counts(f, 3, 3, 0);
        commit(f);
        state_1(f);
        expect_counts(f, 3, 3, 0);

        /* 2. u2 takes b1: u2's old b3 is unlinked and linked again, b1
         * moves from u1 to u2. u1's record still lists b1, but the index
         * says u2. Badges: still b1, b2, b3 = 3. */
        put_user(f, "u2", "g2", "b3", "b1");
        expect_user(f, "u1", "g1", "b1", "b2");
        expect_user(f, "u2", "g2", "b3", "b1");
        expect_badge(f, "b1", "u2");
        expect_badge(f, "b2", "u1");
        expect_badge(f, "b3", "u2");
        expect_counts(f, 3, 3, 0);

        /* 3. u1 is updated to {b2}: of its old badges, b1 points to u2
         * (left alone) and b2 to u1 (unlinked, then linked again). */
        put_user(f, "u1", "g1", "b2", NULL);
        expect_badge(f, "b1", "u2");
        expect_badge(f, "b2", "u1");
        expect_counts(f, 3, 3, 0);

        /* 4. u1 drops b2 for b5: b2 is nobody's, b5 is u1's. Badges: b1,
         * b3, b5 = 3. */
        put_user(f, "u1", "g1", "b5", NULL);
        expect_badge(f, "b2", NULL);
        expect_badge(f, "b5", "u1");
        expect_counts(f, 3, 3, 0);
        commit(f);
        expect_badge(f, "b1", "u2");
        expect_badge(f, "b2", NULL);
        expect_badge(f, "b3", "u2");
        expect_badge(f, "b5", "u1");

        /* 5. tombstone of u2: u2 and its badges b3 and b1 go. Users: u1,
         * u3 = 2; badges: b5 = 1. */
        del_user(f, "u2");
        state_5(f);
        expect_counts(f, 2, 1, 0);

        /* Skipped: an id that is not its key, bytes that do not decode,
         * an empty key, a tombstone of a key that never existed is not
         * skipped (it deletes nothing). Nothing changes but the count. */
        assert_false(apply_user_as(f, "u3", "u9", "g9", "b5", NULL));
        uint8_t junk[3] = { 0, 1, 2 };
        assert_false(cf_tables_apply(f->tb, CF_TABLE_USERS, 0, f->next_offset++,
                                     "u3", 2, junk, 3));
        assert_false(cf_tables_apply(f->tb, CF_TABLE_USERS, 0, f->next_offset++,
                                     "", 0, junk, 3));
        del_user(f, "u-never");
        state_5(f);
        expect_counts(f, 2, 1, 3);
        /* 11 records applied (3 + 1 + 1 + 1 + 1 + 4): offsets 0..10, the
         * next is 11, skipped records included */
        assert_int_equal(f->next_offset, 11);
        assert_int_equal(cf_tables_offset(f->tb, CF_TABLE_USERS, 0), 11);

        /* A restart: what was committed is back, counts without a scan
         * (skipped counts this process only), the offset where it was. */
        commit(f);
        fx_reopen(f);
        state_5(f);
        expect_counts(f, 2, 1, 0);
        assert_int_equal(cf_tables_offset(f->tb, CF_TABLE_USERS, 0), 11);
        assert_int_equal(cf_tables_offset(f->tb, CF_TABLE_USERS, 1), 0);

        /* After the restart: u2 is back with b3 only; b1 stays free. */
        put_user(f, "u2", "g3", "b3", NULL);
        commit(f);
        fx_reopen(f);
        expect_user(f, "u2", "g3", "b3", NULL);
        expect_badge(f, "b3", "u2");
        expect_badge(f, "b1", NULL);
        expect_badge(f, "b5", "u1");
        expect_counts(f, 3, 2, 0);
}

/* A change applied but not flushed: with the big cache it is only in
 * memory (lost by a process that stops without a commit); with the zero
 * cache apply wrote it at once, offsets included. */
static void unflushed_changes_are_written_in_chunks(void **state)
{
        fx *f = *state;
        char id[16], badge[16];
        for (int i = 0; i < 100; i++) {
                snprintf(id, sizeof(id), "u%03d", i);
                snprintf(badge, sizeof(badge), "b%03d", i);
                put_user(f, id, "g", badge, NULL);
        }
        /* each lookup before the restart answers the same either way */
        expect_badge(f, "b042", "u042");
        expect_counts(f, 100, 100, 0);
        fx_reopen(f); /* no commit */
        if (f->cache == 0) {
                expect_user(f, "u000", "g", "b000", NULL);
                expect_user(f, "u099", "g", "b099", NULL);
                expect_badge(f, "b042", "u042");
                expect_counts(f, 100, 100, 0);
                assert_int_equal(cf_tables_offset(f->tb, CF_TABLE_USERS, 0),
                                 100);
        } else {
                expect_user(f, "u000", NULL, NULL, NULL);
                expect_badge(f, "b042", NULL);
                expect_counts(f, 0, 0, 0);
                assert_int_equal(cf_tables_offset(f->tb, CF_TABLE_USERS, 0), 0);
        }
}

/* The zero cache holds at most the entry last returned: lookups of other
 * keys read RocksDB every time. */
static void zero_cache_reads_rocksdb_for_every_other_key(void **state)
{
        fx *f = *state;
        if (f->cache != 0)
                skip();
        put_user(f, "u1", "g1", "b1", NULL);
        put_user(f, "u2", "g2", "b2", NULL);
        commit(f);
        cf_store_stats us0, bs0, us, bs;
        cf_tables_cache_stats(f->tb, &us0, &bs0);
        for (int i = 0; i < 5; i++) {
                expect_user(f, "u1", "g1", "b1", NULL);
                expect_user(f, "u2", "g2", "b2", NULL);
                expect_badge(f, "b1", "u1"); /* badge read, then u1 read */
        }
        cf_tables_cache_stats(f->tb, &us, &bs);
        /* The commit left both caches empty (budget 0). Users: round 1
         * reads u1, u2, then u1 again (after the badge): 3 reads. Each
         * later round starts with u1, the entry kept from the round before
         * (a hit), then reads u2 and u1: 2 reads, 1 hit. 3 + 4 * 2 = 11
         * reads, 4 hits. */
        assert_int_equal(us.reads - us0.reads, 11);
        assert_int_equal(us.hits - us0.hits, 4);
        /* badges: only b1, 5 times: the first reads, the rest hit (it is
         * the entry kept). */
        assert_int_equal(bs.reads - bs0.reads, 1);
        assert_int_equal(bs.hits - bs0.hits, 4);
        assert_true(us.entries <= 1);
        assert_true(bs.entries <= 1);
}

/* A database from before the badge index (users under 'u', no counts):
 * the load builds the index in key order and the counts. */
static void load_builds_missing_badge_index(void **state)
{
        fx *f = *state;
        fx_close(f);
        cf_state *s;
        if (cf_state_open(f->dir, NULL, &s, f->err, sizeof(f->err)))
                fail_msg("open: %s", f->err);
        cf_batch *b = cf_batch_new(s);
        const char *ids[2] = { "u1", "u2" };
        char *b_u1[1] = { "b1" };
        char *b_u2[2] = { "b1", "b2" };
        for (int i = 0; i < 2; i++) {
                cf_user u = { .user_id = (char *)ids[i],
                              .tenant_id = "t-1",
                              .group = "g",
                              .badges = i ? b_u2 : b_u1,
                              .n_badges = i ? 2 : 1,
                              .updated_ms = 1 };
                cf_buf v;
                cf_buf_init(&v);
                cf_encode(f->reg, CF_RT_USER, &u, &v);
                cf_key k;
                cf_key_init(&k, CF_TABLES_TASK);
                cf_key_u8(&k, 'u');
                cf_key_str(&k, ids[i]);
                cf_batch_put(b, CF_COL_TABLE, k.b, k.len, v.p, v.len);
                cf_buf_free(&v);
        }
        assert_int_equal(cf_state_write(s, b, true, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        cf_state_close(s);
        fx_open(f);
        /* u1 < u2: b1 goes to u1, then to u2. 2 users, 2 badges. */
        expect_badge(f, "b1", "u2");
        expect_badge(f, "b2", "u2");
        expect_counts(f, 2, 2, 0);
        /* the index and counts were written: a second load keeps them */
        fx_reopen(f);
        expect_badge(f, "b1", "u2");
        expect_counts(f, 2, 2, 0);
}

/* Without a state store the tables are memory only, every user kept. */
static void memory_only_tables_keep_every_user(void **state)
{
        (void)state;
        fx f;
        memset(&f, 0, sizeof(f));
        assert_int_equal(cf_registry_new(&f.reg, f.err, sizeof(f.err)), CF_OK);
        f.tb = cf_tables_new(NULL, f.reg, 0);
        assert_int_equal(cf_tables_load(f.tb, f.err, sizeof(f.err)), CF_OK);
        put_user(&f, "u1", "g1", "b1", "b2");
        put_user(&f, "u2", "g2", "b1", NULL);
        expect_badge(&f, "b1", "u2");
        expect_badge(&f, "b2", "u1");
        expect_user(&f, "u1", "g1", "b1", "b2");
        del_user(&f, "u2");
        expect_badge(&f, "b1", NULL);
        expect_counts(&f, 1, 1, 0);
        cf_tables_destroy(f.tb);
        cf_registry_destroy(f.reg);
}

/* A site's plan by charger group (schemas/site.avsc): the charger
 * group's plan for the user group, else its plan for any user, else the
 * user group's plan (and the default or unauthenticated plan). */
static void site_tariff_by_charger_group_then_user_group(void **state)
{
        (void)state;
        cf_tariff t[6];
        memset(t, 0, sizeof(t));
        const char *ids[6] = {
                "resident",         "default",    "unauth",
                "private-resident", "shared-any", "private-guest"
        };
        for (int i = 0; i < 6; i++)
                t[i].tariff_id = (char *)ids[i];
        cf_group_plan gp[] = { { "resident", t[0] } };
        cf_charger_plan cp[] = { { "shared", NULL, t[4] },
                                 { "private", "resident", t[3] },
                                 { "private", "guest", t[5] } };
        cf_price_version v = { 0, gp, 1, t[1], &t[2], cp, 3 };
        cf_charger_group cg[] = { { "CH-1", "private" }, { "CH-2", "shared" } };
        cf_site s = { .versions = &v,
                      .n_versions = 1,
                      .charger_groups = cg,
                      .n_charger_groups = 2 };
        static const struct {
                const char *charger, *group, *want;
        } cases[] = {
                { "CH-1", "resident", "private-resident" }, /* exact pair */
                { "CH-1", "guest", "private-guest" },
                { "CH-1", "board", "default" }, /* no plan for any user */
                { "CH-1", NULL, "unauth" },
                { "CH-2", "resident", "shared-any" }, /* any user */
                { "CH-2", NULL, "shared-any" },
                { "CH-3", "resident", "resident" }, /* no group */
                { "CH-3", "guest", "default" },
                { "CH-3", NULL, "unauth" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const cf_tariff *got =
                    cf_site_tariff(&s, &v, cases[i].charger, cases[i].group);
                if (strcmp(got->tariff_id, cases[i].want))
                        fail_msg("%s/%s: %s, want %s", cases[i].charger,
                                 cases[i].group ? cases[i].group : "-",
                                 got->tariff_id, cases[i].want);
        }
        assert_string_equal(cf_site_charger_group(&s, "CH-2"), "shared");
        assert_null(cf_site_charger_group(&s, "CH-3"));
}

/* Applies a site record under key (no price versions; value NULL: a
 * tombstone). Returns what apply returned. */
static bool apply_site(fx *f, const char *key, const char *tenant)
{
        cf_site st = { .site_id = (char *)key,
                       .tenant_id = (char *)tenant,
                       .name = "Site",
                       .time_zone = "Europe/Oslo",
                       .billing_period = CF_PERIOD_MONTH,
                       .currency = "NOK",
                       .vat_bp = 2500,
                       .max_power_w = 22000,
                       .access_control = false,
                       .versions = NULL,
                       .n_versions = 0,
                       .updated_ms = 1 };
        cf_buf b;
        cf_buf_init(&b);
        if (tenant)
                cf_encode(f->reg, CF_RT_SITE, &st, &b);
        bool ok = cf_tables_apply(f->tb, CF_TABLE_SITES, 0, f->next_offset++,
                                  key, strlen(key), tenant ? b.p : NULL,
                                  tenant ? b.len : 0);
        cf_buf_free(&b);
        return ok;
}

/* Issue 15: a site's tombstone keeps the site (its open sessions and
 * unbilled periods are still billed), across a restart too; a site or
 * user whose strings are not UTF-8 is skipped. */
static void site_tombstone_keeps_site_and_bad_utf8_is_skipped(void **state)
{
        fx *f = *state;
        assert_true(apply_site(f, "s1", "t-1"));
        assert_true(apply_site(f, "s1", NULL)); /* the tombstone */
        assert_non_null(cf_tables_site(f->tb, "s1"));
        assert_string_equal(cf_tables_site(f->tb, "s1")->tenant_id, "t-1");
        commit(f);
        fx_reopen(f);
        assert_non_null(cf_tables_site(f->tb, "s1"));
        /* A tenant id cut inside a character; a group that is Latin-1. */
        assert_false(apply_site(f, "s2", "t-\xe2\x82"));
        assert_null(cf_tables_site(f->tb, "s2"));
        assert_false(apply_user_as(f, "u9", "u9", "gr\xfcn", "b9", NULL));
        assert_null(cf_tables_user(f->tb, "u9"));
        expect_badge(f, "b9", NULL);
        size_t ns, nu, nb;
        uint64_t sk;
        cf_tables_counts(f->tb, &ns, &nu, &nb, &sk);
        assert_int_equal(ns, 1);
        assert_int_equal(sk, 2);
}

int main(void)
{
#define STR(x) #x
#define BIG(fn)                                                                \
        {                                                                      \
                STR(fn) " (32 MiB cache)", fn, setup_big, teardown, NULL       \
        }
#define ZERO(fn)                                                               \
        {                                                                      \
                STR(fn) " (0-byte cache)", fn, setup_zero, teardown, NULL      \
        }
#define BOTH(fn) BIG(fn), ZERO(fn)
        const struct CMUnitTest tests[] = {
                BOTH(users_and_badges_through_updates_deletes_and_restart),
                BOTH(unflushed_changes_are_written_in_chunks),
                cmocka_unit_test_setup_teardown(
                    zero_cache_reads_rocksdb_for_every_other_key, setup_zero,
                    teardown),
                BOTH(load_builds_missing_badge_index),
                cmocka_unit_test(memory_only_tables_keep_every_user),
                cmocka_unit_test(site_tariff_by_charger_group_then_user_group),
                BOTH(site_tombstone_keeps_site_and_bad_utf8_is_skipped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
