/*
 * test_state.c: the state layer (pipeline/state/state.c, store.c) against
 * real RocksDB directories under /tmp, removed after each test.
 *
 * state: key encoding, get/scan/batch, atomicity and durability across a
 * reopen and a SIGKILL, drop_task, and I/O failures (a directory the process
 * cannot write, a file-size limit hit in the middle of a WAL write).
 * store: hits without RocksDB reads, cached absences, dirty entries flushed
 * once, eviction under the budget that never drops dirty data, warm-up,
 * corrupt values, iteration.
 *
 * Expected key bytes, scan orders and counts are worked out by hand in the
 * comments next to them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <rocksdb/c.h>

#include "state.h"
#include "store.h"

/* ------------------------------------------------------------- helpers */

static char *tmpdir_new(void)
{
        char *d = strdup("/tmp/cf-test-state-XXXXXX");
        assert_non_null(d);
        assert_non_null(mkdtemp(d));
        return d;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static void tmpdir_rm(char *d)
{
        if (!d)
                return;
        nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(d);
}

typedef struct fx {
        char *dir;
        cf_state *s;
        char err[512];
} fx;

static int fx_setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        f->dir = tmpdir_new();
        if (cf_state_open(f->dir, NULL, &f->s, f->err, sizeof(f->err))) {
                fprintf(stderr, "open: %s\n", f->err);
                return -1;
        }
        *state = f;
        return 0;
}

static int fx_teardown(void **state)
{
        fx *f = *state;
        cf_state_close(f->s);
        tmpdir_rm(f->dir);
        free(f);
        return 0;
}

static void fx_reopen(fx *f)
{
        cf_state_close(f->s);
        f->s = NULL;
        cf_err_t err =
            cf_state_open(f->dir, NULL, &f->s, f->err, sizeof(f->err));
        if (err)
                fail_msg("reopen: %s", f->err);
}

static cf_key key_id(uint16_t task, const char *id)
{
        cf_key k;
        cf_key_init(&k, task);
        cf_key_str(&k, id);
        return k;
}

static void put1(cf_state *s, cf_col_t col, const cf_key *k, const char *v)
{
        char err[512];
        cf_batch *b = cf_batch_new(s);
        cf_batch_put(b, col, k->b, k->len, v, strlen(v));
        cf_err_t e = cf_state_write(s, b, false, err, sizeof(err));
        if (e)
                fail_msg("write: %s", err);
        cf_batch_destroy(b);
}

/* Returns the value of k as a NUL-terminated string (static buffer), or
 * NULL when absent. */
static const char *get_str(cf_state *s, cf_col_t col, const cf_key *k)
{
        static char out[4096];
        char err[512];
        cf_buf v;
        cf_buf_init(&v);
        cf_err_t e = cf_state_get(s, col, k->b, k->len, &v, err, sizeof(err));
        if (e == CF_ERR_NOT_FOUND) {
                assert_int_equal(v.len, 0);
                cf_buf_free(&v);
                return NULL;
        }
        if (e)
                fail_msg("get: %s", err);
        assert_true(v.len < sizeof(out));
        memcpy(out, v.p, v.len);
        out[v.len] = 0;
        cf_buf_free(&v);
        return out;
}

/* Scan collector: keys as hex strings joined with spaces. */
typedef struct scan_out {
        char text[4096];
        int n;
        int stop_after; /* 0: never */
} scan_out;

static int collect(void *opaque, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
        scan_out *o = opaque;
        (void)val;
        (void)vlen;
        size_t at = strlen(o->text);
        if (o->n)
                at += (size_t)snprintf(o->text + at, sizeof(o->text) - at, " ");
        for (size_t i = 0; i < klen; i++)
                at += (size_t)snprintf(o->text + at, sizeof(o->text) - at,
                                       "%02x", key[i]);
        o->n++;
        return o->stop_after && o->n >= o->stop_after;
}

static int count_cb(void *opaque, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen)
{
        (void)key;
        (void)klen;
        (void)val;
        (void)vlen;
        (*(int *)opaque)++;
        return 0;
}

static int count_all(cf_state *s, cf_col_t col, const void *prefix, size_t plen)
{
        int n = 0;
        char err[512];
        cf_err_t e =
            cf_state_scan(s, col, prefix, plen, count_cb, &n, err, sizeof(err));
        if (e)
                fail_msg("scan: %s", err);
        return n;
}

/* ---------------------------------------------------------------- keys */

static void state_key_encodes_task_and_parts_big_endian(void **state)
{
        (void)state;
        cf_key k;
        cf_key_init(&k, 0x0102);
        cf_key_u8(&k, 's');
        cf_key_u64(&k, 0x0a0b0c0d0e0f1011ULL);
        cf_key_str(&k, "ab");
        cf_key_i64(&k, -1);
        const uint8_t want[] = {
                0x01,
                0x02, /* task */
                0x73, /* 's' */
                0x0a,
                0x0b,
                0x0c,
                0x0d,
                0x0e,
                0x0f,
                0x10,
                0x11, /* u64 */
                0x61,
                0x62,
                0x00, /* "ab" */
                /* -1 = 0xffff...ff, sign bit flipped: 0x7fff...ff */
                0x7f,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
        };
        assert_true(cf_key_ok(&k));
        assert_int_equal(k.len, sizeof(want));
        assert_memory_equal(k.b, want, sizeof(want));
        assert_int_equal(cf_key_task(k.b, k.len), 0x0102);
        assert_true(cf_be64(k.b + 3) == 0x0a0b0c0d0e0f1011ULL);
}

static int keycmp(const cf_key *a, const cf_key *b)
{
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->b, b->b, n);
        return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void state_key_order_follows_values(void **state)
{
        (void)state;
        /* Signed: -2 < -1 < 0 < 1 < INT64_MAX bytewise after the flip. */
        int64_t vals[] = { INT64_MIN, -2, -1, 0, 1, INT64_MAX };
        for (size_t i = 0; i + 1 < sizeof(vals) / sizeof(vals[0]); i++) {
                cf_key a, b;
                cf_key_init(&a, 1);
                cf_key_i64(&a, vals[i]);
                cf_key_init(&b, 1);
                cf_key_i64(&b, vals[i + 1]);
                assert_true(keycmp(&a, &b) < 0);
        }
        /* ("a", 'z') = 61 00 7a sorts before ("ab") = 61 62 00: the
         * separator 00 is below every string byte. */
        cf_key a, b;
        cf_key_init(&a, 1);
        cf_key_str(&a, "a");
        cf_key_u8(&a, 'z');
        cf_key_init(&b, 1);
        cf_key_str(&b, "ab");
        assert_true(keycmp(&a, &b) < 0);
        /* Task 0x00ff sorts before 0x0100 (big-endian). */
        cf_key_init(&a, 0x00ff);
        cf_key_init(&b, 0x0100);
        assert_true(keycmp(&a, &b) < 0);
}

static void state_key_overflow_is_flagged_not_truncated(void **state)
{
        (void)state;
        char big[CF_KEY_MAX];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        cf_key k;
        cf_key_init(&k, 3);
        /* 2 + 511 + 1 separator = 514 > 512: refused whole. */
        cf_key_str(&k, big);
        assert_false(cf_key_ok(&k));
        assert_int_equal(k.len, 2);
        /* 2 + 509 + 1 = 512 fits exactly. */
        big[509] = 0;
        cf_key_init(&k, 3);
        cf_key_str(&k, big);
        assert_true(cf_key_ok(&k));
        assert_int_equal(k.len, CF_KEY_MAX);
        cf_key_u8(&k, 1);
        assert_false(cf_key_ok(&k));
        assert_int_equal(k.len, CF_KEY_MAX);
}

/* ------------------------------------------------------------ database */

static void state_open_creates_every_column_family(void **state)
{
        fx *f = *state;
        cf_state_close(NULL); /* no-op */
        cf_state_close(f->s);
        f->s = NULL;
        rocksdb_options_t *o = rocksdb_options_create();
        size_t n = 0;
        char *err = NULL;
        char **names = rocksdb_list_column_families(o, f->dir, &n, &err);
        assert_null(err);
        /* default + 8 of ours */
        assert_int_equal(n, 1 + CF_COL__CNT);
        for (int c = 0; c < CF_COL__CNT; c++) {
                bool found = false;
                for (size_t i = 0; i < n; i++)
                        found |= !strcmp(names[i], cf_state_col_name(c));
                assert_true(found);
        }
        rocksdb_list_column_families_destroy(names, n);
        rocksdb_options_destroy(o);
        assert_null(cf_state_col_name(CF_COL__CNT));
        assert_string_equal(cf_state_col_name(CF_COL_OUTBOX), "outbox");
        fx_reopen(f);
        assert_string_equal(cf_state_dir(f->s), f->dir);
}

static void state_get_absent_is_not_found(void **state)
{
        fx *f = *state;
        cf_key k = key_id(1, "nobody");
        cf_buf v;
        cf_buf_init(&v);
        cf_buf_puts(&v, "stale");
        assert_int_equal(cf_state_get(f->s, CF_COL_SESSION, k.b, k.len, &v,
                                      f->err, sizeof(f->err)),
                         CF_ERR_NOT_FOUND);
        assert_int_equal(v.len, 0);
        cf_buf_free(&v);
}

static void state_columns_are_separate(void **state)
{
        fx *f = *state;
        cf_key k = key_id(1, "charger-7");
        put1(f->s, CF_COL_SESSION, &k, "session value");
        put1(f->s, CF_COL_DEDUP, &k, "dedup value");
        assert_string_equal(get_str(f->s, CF_COL_SESSION, &k), "session value");
        assert_string_equal(get_str(f->s, CF_COL_DEDUP, &k), "dedup value");
        assert_null(get_str(f->s, CF_COL_BILL, &k));
        /* Empty values are values. */
        cf_key e = key_id(1, "empty");
        put1(f->s, CF_COL_META, &e, "");
        assert_string_equal(get_str(f->s, CF_COL_META, &e), "");
}

static void state_scan_walks_prefix_in_key_order(void **state)
{
        fx *f = *state;
        cf_key k1, k2, k3, k4, k5;
        cf_key_init(&k1, 1); /* 0001 6f 0000000000000000 */
        cf_key_u8(&k1, 'o');
        cf_key_u64(&k1, 0);
        cf_key_init(&k2, 1); /* 0001 6f 0000000000000001 */
        cf_key_u8(&k2, 'o');
        cf_key_u64(&k2, 1);
        cf_key_init(&k3, 1); /* 0001 61 7800 */
        cf_key_u8(&k3, 'a');
        cf_key_str(&k3, "x");
        cf_key_init(&k4, 2); /* 0002 6f 0000000000000000 */
        cf_key_u8(&k4, 'o');
        cf_key_u64(&k4, 0);
        cf_key_init(&k5, 0); /* 0000 7a */
        cf_key_u8(&k5, 'z');
        /* Written out of order, in one batch. */
        cf_batch *b = cf_batch_new(f->s);
        const cf_key *ks[] = { &k4, &k2, &k5, &k1, &k3 };
        for (int i = 0; i < 5; i++)
                cf_batch_put(b, CF_COL_META, ks[i]->b, ks[i]->len, "v", 1);
        assert_int_equal(cf_state_write(f->s, b, true, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);

        /* Task 1: 'a' (61) before 'o' (6f), then 0 before 1. */
        scan_out o = { 0 };
        assert_int_equal(cf_state_scan(f->s, CF_COL_META, k1.b, 2, collect, &o,
                                       f->err, sizeof(f->err)),
                         CF_OK);
        assert_string_equal(o.text, "0001617800 00016f0000000000000000 "
                                    "00016f0000000000000001");
        /* Narrower prefix: task 1, kind 'o'. */
        memset(&o, 0, sizeof(o));
        cf_state_scan(f->s, CF_COL_META, k1.b, 3, collect, &o, f->err,
                      sizeof(f->err));
        assert_string_equal(o.text, "00016f0000000000000000 "
                                    "00016f0000000000000001");
        /* Whole column family, stopping after two. */
        memset(&o, 0, sizeof(o));
        o.stop_after = 2;
        cf_state_scan(f->s, CF_COL_META, NULL, 0, collect, &o, f->err,
                      sizeof(f->err));
        assert_string_equal(o.text, "00007a 0001617800");
        /* Other column families see nothing. */
        assert_int_equal(count_all(f->s, CF_COL_SESSION, NULL, 0), 0);
}

static void state_scan_prefix_ending_in_ff_stays_inside(void **state)
{
        fx *f = *state;
        /* Prefix 01 ff: its bound is 02, so 01ff.. is in, 0200.. is out. */
        cf_key a = key_id(0x01ff, "a"), b = key_id(0x0200, "a"),
               c = key_id(0x01fe, "a");
        put1(f->s, CF_COL_INDEX, &a, "1");
        put1(f->s, CF_COL_INDEX, &b, "2");
        put1(f->s, CF_COL_INDEX, &c, "3");
        scan_out o = { 0 };
        cf_state_scan(f->s, CF_COL_INDEX, a.b, 2, collect, &o, f->err,
                      sizeof(f->err));
        assert_string_equal(o.text, "01ff6100");
        /* All-ff prefix: no bound needed. */
        const uint8_t ff[2] = { 0xff, 0xff };
        cf_key d;
        cf_key_init(&d, 0xffff);
        cf_key_u8(&d, 1);
        put1(f->s, CF_COL_INDEX, &d, "4");
        memset(&o, 0, sizeof(o));
        cf_state_scan(f->s, CF_COL_INDEX, ff, 2, collect, &o, f->err,
                      sizeof(f->err));
        assert_string_equal(o.text, "ffff01");
}

static void state_scan_range_is_half_open(void **state)
{
        fx *f = *state;
        cf_key k[4];
        for (int i = 0; i < 4; i++) {
                cf_key_init(&k[i], 1);
                cf_key_u64(&k[i], (uint64_t)i * 10); /* 0, 10, 20, 30 */
                put1(f->s, CF_COL_INDEX, &k[i], "t");
        }
        /* [10, 30): 10 and 20. */
        int n = 0;
        cf_state_scan_range(f->s, CF_COL_INDEX, k[1].b, k[1].len, k[3].b,
                            k[3].len, count_cb, &n, f->err, sizeof(f->err));
        assert_int_equal(n, 2);
        /* [start, 20): 0 and 10. */
        n = 0;
        cf_state_scan_range(f->s, CF_COL_INDEX, NULL, 0, k[2].b, k[2].len,
                            count_cb, &n, f->err, sizeof(f->err));
        assert_int_equal(n, 2);
        /* [20, end): 20 and 30. */
        n = 0;
        cf_state_scan_range(f->s, CF_COL_INDEX, k[2].b, k[2].len, NULL, 0,
                            count_cb, &n, f->err, sizeof(f->err));
        assert_int_equal(n, 2);
}

static void state_batch_is_invisible_until_written_then_whole(void **state)
{
        fx *f = *state;
        cf_key a = key_id(4, "a"), b = key_id(4, "b"), c = key_id(4, "c");
        put1(f->s, CF_COL_SESSION, &c, "old c");
        cf_batch *wb = cf_batch_new(f->s);
        cf_batch_put(wb, CF_COL_SESSION, a.b, a.len, "A", 1);
        cf_batch_put(wb, CF_COL_OUTBOX, b.b, b.len, "B", 1);
        cf_batch_delete(wb, CF_COL_SESSION, c.b, c.len);
        assert_int_equal(cf_batch_count(wb), 3);
        assert_true(cf_batch_bytes(wb) > 0);
        /* Not written yet: nothing changed. */
        assert_null(get_str(f->s, CF_COL_SESSION, &a));
        assert_null(get_str(f->s, CF_COL_OUTBOX, &b));
        assert_string_equal(get_str(f->s, CF_COL_SESSION, &c), "old c");
        assert_int_equal(cf_state_write(f->s, wb, true, f->err, sizeof(f->err)),
                         CF_OK);
        assert_string_equal(get_str(f->s, CF_COL_SESSION, &a), "A");
        assert_string_equal(get_str(f->s, CF_COL_OUTBOX, &b), "B");
        assert_null(get_str(f->s, CF_COL_SESSION, &c));
        /* The write leaves the batch alone; clear empties it. */
        assert_int_equal(cf_batch_count(wb), 3);
        cf_batch_clear(wb);
        assert_int_equal(cf_batch_count(wb), 0);
        /* delete_range [a, c) removes a, keeps nothing else here. */
        cf_batch_delete_range(wb, CF_COL_SESSION, a.b, a.len, c.b, c.len);
        cf_state_write(f->s, wb, false, f->err, sizeof(f->err));
        assert_null(get_str(f->s, CF_COL_SESSION, &a));
        assert_string_equal(get_str(f->s, CF_COL_OUTBOX, &b), "B");
        cf_batch_destroy(wb);
        cf_batch_destroy(NULL);
}

static void state_survives_close_and_reopen(void **state)
{
        fx *f = *state;
        cf_batch *b = cf_batch_new(f->s);
        for (int i = 0; i < 1000; i++) {
                char id[16], v[32];
                snprintf(id, sizeof(id), "k%04d", i);
                snprintf(v, sizeof(v), "value %d", i);
                cf_key k = key_id(9, id);
                cf_batch_put(b, CF_COL_BILL, k.b, k.len, v, strlen(v));
        }
        assert_int_equal(cf_state_write(f->s, b, true, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        fx_reopen(f);
        cf_key k = key_id(9, "k0777");
        assert_string_equal(get_str(f->s, CF_COL_BILL, &k), "value 777");
        uint8_t p[2] = { 0, 9 };
        assert_int_equal(count_all(f->s, CF_COL_BILL, p, 2), 1000);
}

/* The child writes a synced batch and an unsynced one, then dies by
 * SIGKILL without closing: both batches were in the WAL (the unsynced one
 * in the page cache, which a process crash does not lose). */
static void state_batch_survives_sigkill_after_write(void **state)
{
        fx *f = *state;
        cf_state_close(f->s);
        f->s = NULL;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                cf_state *s = NULL;
                char err[512];
                if (cf_state_open(f->dir, NULL, &s, err, sizeof(err)))
                        _exit(10);
                cf_batch *b = cf_batch_new(s);
                for (int i = 0; i < 200; i++) {
                        char id[16];
                        snprintf(id, sizeof(id), "s%03d", i);
                        cf_key k = key_id(5, id);
                        cf_batch_put(b, CF_COL_SESSION, k.b, k.len, id,
                                     strlen(id));
                        if (i == 99) {
                                if (cf_state_write(s, b, true, err,
                                                   sizeof(err)))
                                        _exit(11);
                                cf_batch_clear(b);
                        }
                }
                cf_key off = key_id(5, "offset");
                cf_batch_put(b, CF_COL_META, off.b, off.len, "4242", 4);
                if (cf_state_write(s, b, false, err, sizeof(err)))
                        _exit(12);
                kill(getpid(), SIGKILL);
                _exit(13);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        fx_reopen(f);
        uint8_t p[2] = { 0, 5 };
        assert_int_equal(count_all(f->s, CF_COL_SESSION, p, 2), 200);
        cf_key k = key_id(5, "s150");
        assert_string_equal(get_str(f->s, CF_COL_SESSION, &k), "s150");
        cf_key off = key_id(5, "offset");
        assert_string_equal(get_str(f->s, CF_COL_META, &off), "4242");
}

static void state_drop_task_removes_only_that_task(void **state)
{
        fx *f = *state;
        /* Tasks 1, 2 and 256 (01 00, whose low byte is task 0's). */
        const uint16_t tasks[] = { 1, 2, 256 };
        const cf_col_t cols[] = { CF_COL_META, CF_COL_SESSION, CF_COL_OUTBOX,
                                  CF_COL_INDEX };
        cf_batch *b = cf_batch_new(f->s);
        for (int t = 0; t < 3; t++)
                for (int c = 0; c < 4; c++)
                        for (int i = 0; i < 5; i++) {
                                cf_key k;
                                cf_key_init(&k, tasks[t]);
                                cf_key_u64(&k, (uint64_t)i);
                                cf_batch_put(b, cols[c], k.b, k.len, "x", 1);
                        }
        cf_state_write(f->s, b, false, f->err, sizeof(f->err));
        cf_batch_destroy(b);
        /* Per column family: 3 tasks x 5 keys = 15. */
        assert_int_equal(count_all(f->s, CF_COL_META, NULL, 0), 15);

        assert_int_equal(cf_state_drop_task(f->s, 1, f->err, sizeof(f->err)),
                         CF_OK);
        uint8_t p1[2] = { 0, 1 }, p2[2] = { 0, 2 }, p256[2] = { 1, 0 };
        for (int c = 0; c < 4; c++) {
                assert_int_equal(count_all(f->s, cols[c], p1, 2), 0);
                assert_int_equal(count_all(f->s, cols[c], p2, 2), 5);
                assert_int_equal(count_all(f->s, cols[c], p256, 2), 5);
                assert_int_equal(count_all(f->s, cols[c], NULL, 0), 10);
        }
        /* Still gone after a reopen. */
        fx_reopen(f);
        assert_int_equal(count_all(f->s, CF_COL_OUTBOX, p1, 2), 0);
        assert_int_equal(count_all(f->s, CF_COL_OUTBOX, NULL, 0), 10);
        /* The last task id is reserved. */
        assert_int_equal(
            cf_state_drop_task(f->s, 0xffff, f->err, sizeof(f->err)),
            CF_ERR_ARG);
        /* The one before it works (its bound is ff ff). */
        assert_int_equal(
            cf_state_drop_task(f->s, CF_TASK_MAX, f->err, sizeof(f->err)),
            CF_OK);
}

/* Runs fn in a child (optionally as an unprivileged user) and returns what
 * it wrote to the pipe, and its exit code in *code (-1: killed). */
typedef int (*child_fn)(const char *dir, char *msg, size_t n);

static int run_child(child_fn fn, const char *dir, bool drop_root, char *msg,
                     size_t n)
{
        int fd[2];
        assert_int_equal(pipe(fd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(fd[0]);
                char m[512] = "";
                int rc;
                if (drop_root && (setgid(65534) || setuid(65534))) {
                        snprintf(m, sizeof(m), "setuid: %s", strerror(errno));
                        rc = 77;
                } else {
                        rc = fn(dir, m, sizeof(m));
                }
                ssize_t w = write(fd[1], m, strlen(m));
                (void)w;
                _exit(rc);
        }
        close(fd[1]);
        size_t got = 0;
        ssize_t r;
        while (got + 1 < n && (r = read(fd[0], msg + got, n - 1 - got)) > 0)
                got += (size_t)r;
        msg[got] = 0;
        close(fd[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Child: open must fail with CF_ERR_STATE and a message (exit 0). */
static int child_open_fails(const char *dir, char *msg, size_t n)
{
        cf_state *s = NULL;
        cf_err_t err = cf_state_open(dir, NULL, &s, msg, n);
        if (err == CF_OK) {
                cf_state_close(s);
                snprintf(msg, n, "open succeeded");
                return 1;
        }
        if (err != CF_ERR_STATE || s != NULL || !msg[0])
                return 2;
        return 0;
}

static void state_open_fails_on_unwritable_dir(void **state)
{
        (void)state;
        /* Root ignores permission bits, so the check runs in a child that
         * drops to uid 65534 ("nobody") when we are root. */
        bool root = geteuid() == 0;
        char *top = tmpdir_new();
        char db[512], existing[512], msg[512];
        snprintf(db, sizeof(db), "%s/new-db", top);
        snprintf(existing, sizeof(existing), "%s/old-db", top);
        /* An existing database, then everything made read-only (and
         * readable by others, for nobody). */
        cf_state *s = NULL;
        assert_int_equal(cf_state_open(existing, NULL, &s, msg, sizeof(msg)),
                         CF_OK);
        cf_state_close(s);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "chmod -R a-w,a+rX %s", top);
        assert_int_equal(system(cmd), 0);

        int rc = run_child(child_open_fails, db, root, msg, sizeof(msg));
        if (rc == 77) {
                snprintf(cmd, sizeof(cmd), "chmod -R u+w %s", top);
                assert_int_equal(system(cmd), 0);
                tmpdir_rm(top);
                skip(); /* cannot drop root here */
        }
        print_message("new database in a read-only dir: %s\n", msg);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(msg, "new-db"));

        rc = run_child(child_open_fails, existing, root, msg, sizeof(msg));
        print_message("existing read-only database: %s\n", msg);
        assert_int_equal(rc, 0);

        snprintf(cmd, sizeof(cmd), "chmod -R u+w %s", top);
        assert_int_equal(system(cmd), 0);
        tmpdir_rm(top);
}

/* Child: a batch that crosses RLIMIT_FSIZE in the WAL must fail with
 * CF_ERR_STATE (not abort), after an earlier batch succeeded. */
static int child_write_hits_fsize(const char *dir, char *msg, size_t n)
{
        cf_state *s = NULL;
        if (cf_state_open(dir, NULL, &s, msg, n))
                return 3;
        cf_batch *b = cf_batch_new(s);
        cf_key k = key_id(7, "before");
        cf_batch_put(b, CF_COL_META, k.b, k.len, "committed", 9);
        if (cf_state_write(s, b, true, msg, n))
                return 4;
        cf_batch_clear(b);
        /* Files may not grow past 256 KiB from now on; writing past it
         * fails with EFBIG (SIGXFSZ ignored). Root is not exempt. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { 256 * 1024, 256 * 1024 };
        if (setrlimit(RLIMIT_FSIZE, &rl))
                return 5;
        static char val[1024];
        memset(val, 'v', sizeof(val));
        for (int i = 0; i < 1024; i++) { /* ~1 MiB */
                char id[16];
                snprintf(id, sizeof(id), "big%04d", i);
                cf_key bk = key_id(7, id);
                cf_batch_put(b, CF_COL_SESSION, bk.b, bk.len, val, sizeof(val));
        }
        cf_err_t err = cf_state_write(s, b, true, msg, n);
        if (err != CF_ERR_STATE || !msg[0])
                return 6;
        /* Die without closing, as a failing process might. */
        return 0;
}

static void state_write_error_is_returned_and_batch_not_applied(void **state)
{
        fx *f = *state;
        cf_state_close(f->s);
        f->s = NULL;
        char msg[512];
        int rc =
            run_child(child_write_hits_fsize, f->dir, false, msg, sizeof(msg));
        print_message("write past RLIMIT_FSIZE: %s\n", msg);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(msg, "write"));
        /* Reopen with no limit: the first batch is there, none of the
         * failed one (its torn WAL record is dropped by recovery). */
        fx_reopen(f);
        cf_key k = key_id(7, "before");
        assert_string_equal(get_str(f->s, CF_COL_META, &k), "committed");
        uint8_t p[2] = { 0, 7 };
        assert_int_equal(count_all(f->s, CF_COL_SESSION, p, 2), 0);
        /* And the database takes writes again. */
        cf_key k2 = key_id(7, "after");
        put1(f->s, CF_COL_META, &k2, "ok");
        assert_string_equal(get_str(f->s, CF_COL_META, &k2), "ok");
}

/* --------------------------------------------------------------- store */

/* Test objects: a counter and a short name; encoded as 8 bytes big-endian
 * v, then the name. Anything shorter than 8 bytes does not decode. */
typedef struct tobj {
        int64_t v;
        char name[40];
} tobj;

typedef struct tctx {
        int live; /* objects allocated and not freed */
} tctx;

static tobj *tobj_new(tctx *c, int64_t v, const char *name)
{
        tobj *o = calloc(1, sizeof(*o));
        o->v = v;
        snprintf(o->name, sizeof(o->name), "%s", name);
        c->live++;
        return o;
}

static void t_encode(void *opaque, const void *obj, cf_buf *out)
{
        (void)opaque;
        const tobj *o = obj;
        uint8_t b[8];
        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)((uint64_t)o->v >> (56 - 8 * i));
        cf_buf_put(out, b, 8);
        cf_buf_puts(out, o->name);
}

static void *t_decode(void *opaque, const uint8_t *p, size_t len)
{
        if (len < 8 || len - 8 >= sizeof(((tobj *)0)->name))
                return NULL;
        char name[40];
        memcpy(name, p + 8, len - 8);
        name[len - 8] = 0;
        return tobj_new(opaque, (int64_t)cf_be64(p), name);
}

static void t_free(void *opaque, void *obj)
{
        ((tctx *)opaque)->live--;
        free(obj);
}

static size_t t_size(void *opaque, const void *obj)
{
        (void)opaque;
        (void)obj;
        return sizeof(tobj);
}

static const cf_store_ops tops = {
        .encode = t_encode,
        .decode = t_decode,
        .free = t_free,
        .size = t_size,
};

/* Writes n objects (v = i, name = "n<i>") for task directly in RocksDB,
 * keys "k<i>" with a 0 separator. */
static void seed(cf_state *s, cf_col_t col, uint16_t task, int n)
{
        cf_batch *b = cf_batch_new(s);
        tctx c = { 0 };
        cf_buf v;
        cf_buf_init(&v);
        for (int i = 0; i < n; i++) {
                char id[16], name[16];
                snprintf(id, sizeof(id), "k%d", i);
                snprintf(name, sizeof(name), "n%d", i);
                cf_key k = key_id(task, id);
                tobj *o = tobj_new(&c, i, name);
                v.len = 0;
                t_encode(NULL, o, &v);
                cf_batch_put(b, col, k.b, k.len, v.p, v.len);
                t_free(&c, o);
        }
        char err[512];
        assert_int_equal(cf_state_write(s, b, false, err, sizeof(err)), CF_OK);
        cf_buf_free(&v);
        cf_batch_destroy(b);
}

/* The caller's key for id: the id and its separator (no task prefix). */
#define UK(id) (id), sizeof(id)

static cf_store_stats st_stats(cf_store *st)
{
        cf_store_stats x;
        cf_store_stats_get(st, &x);
        return x;
}

static void write_flush(fx *f, cf_store *st, size_t want)
{
        cf_batch *b = cf_batch_new(f->s);
        size_t n = 99;
        assert_int_equal(cf_store_flush(st, b, &n), CF_OK);
        assert_int_equal(n, want);
        assert_int_equal(cf_batch_count(b), (int)want);
        assert_int_equal(cf_state_write(f->s, b, true, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
}

static void store_miss_reads_once_then_hits_without_read(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_SESSION, 3, 10);
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 3, &tops, &c, 1 << 20, true);
        tobj *o = cf_store_get(st, UK("k4"));
        assert_non_null(o);
        assert_int_equal(o->v, 4);
        assert_string_equal(o->name, "n4");
        cf_store_stats x = st_stats(st);
        assert_int_equal(x.misses, 1);
        assert_int_equal(x.reads, 1);
        assert_int_equal(x.hits, 0);
        assert_int_equal(x.entries, 1);
        /* Same key again, five times: hits, no more reads, same object. */
        for (int i = 0; i < 5; i++)
                assert_ptr_equal(cf_store_get(st, UK("k4")), o);
        x = st_stats(st);
        assert_int_equal(x.hits, 5);
        assert_int_equal(x.reads, 1);
        assert_int_equal(c.live, 1);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
        cf_store_destroy(NULL);
}

static void store_absent_is_cached(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 3, &tops, &c, 1 << 20, true);
        assert_null(cf_store_get(st, UK("nope")));
        assert_null(cf_store_get(st, UK("nope")));
        assert_null(cf_store_get(st, UK("nope")));
        cf_store_stats x = st_stats(st);
        assert_int_equal(x.reads, 1);
        assert_int_equal(x.misses, 1);
        assert_int_equal(x.hits, 2);
        assert_int_equal(x.entries, 1);
        /* A put over a remembered absence is an ordinary dirty entry. */
        cf_store_put(st, UK("nope"), tobj_new(&c, 1, "now"));
        assert_int_equal(((tobj *)cf_store_get(st, UK("nope")))->v, 1);
        assert_int_equal(st_stats(st).reads, 1);
        assert_int_equal(cf_store_error(st, NULL, 0), CF_OK);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_without_load_on_miss_never_reads(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_DEDUP, 3, 3);
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_DEDUP, 3, &tops, &c, 1 << 20, false);
        assert_null(cf_store_get(st, UK("k1"))); /* on disk, not loaded */
        assert_int_equal(st_stats(st).reads, 0);
        assert_int_equal(st_stats(st).entries, 0);
        cf_store_destroy(st);
}

static void store_flushes_dirty_once_then_clean(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 2, &tops, &c, 1 << 20, true);
        cf_store_put(st, UK("a"), tobj_new(&c, 1, "one"));
        cf_store_put(st, UK("b"), tobj_new(&c, 2, "two"));
        cf_store_put(st, UK("c"), tobj_new(&c, 3, "three"));
        /* Replacing a dirty object frees the old one; still 3 writes. */
        cf_store_put(st, UK("c"), tobj_new(&c, 33, "three'"));
        assert_int_equal(c.live, 3);
        assert_int_equal(st_stats(st).dirty, 3);
        write_flush(f, st, 3);
        assert_int_equal(st_stats(st).dirty, 0);
        /* Nothing changed: nothing to write. */
        write_flush(f, st, 0);
        /* In-place change of one object. */
        tobj *b = cf_store_get(st, UK("b"));
        b->v = 22;
        assert_true(cf_store_dirty(st, UK("b")));
        assert_false(cf_store_dirty(st, UK("zz"))); /* not in memory */
        write_flush(f, st, 1);
        assert_int_equal(st_stats(st).flushed, 4);
        assert_int_equal(st_stats(st).reads, 0);
        cf_store_destroy(st);

        /* RocksDB has the flushed values under task 2's prefix. */
        st = cf_store_new(f->s, CF_COL_SESSION, 2, &tops, &c, 1 << 20, true);
        assert_int_equal(((tobj *)cf_store_get(st, UK("a")))->v, 1);
        assert_int_equal(((tobj *)cf_store_get(st, UK("b")))->v, 22);
        tobj *o = cf_store_get(st, UK("c"));
        assert_int_equal(o->v, 33);
        assert_string_equal(o->name, "three'");
        assert_int_equal(st_stats(st).reads, 3);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_keys_are_task_prefixed_in_rocksdb(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_BILL, 0x0203, &tops, &c, 1 << 20, true);
        cf_store_put(st, "xy", 2, tobj_new(&c, 258, "p"));
        write_flush(f, st, 1);
        cf_store_destroy(st);
        /* Key 02 03 'x' 'y'; value 00..01 02 'p'. */
        scan_out o = { 0 };
        cf_state_scan(f->s, CF_COL_BILL, NULL, 0, collect, &o, f->err,
                      sizeof(f->err));
        assert_string_equal(o.text, "02037879");
        cf_key k;
        cf_key_init(&k, 0x0203);
        cf_key_bytes(&k, "xy", 2);
        cf_buf v;
        cf_buf_init(&v);
        assert_int_equal(cf_state_get(f->s, CF_COL_BILL, k.b, k.len, &v, f->err,
                                      sizeof(f->err)),
                         CF_OK);
        const uint8_t want[] = { 0, 0, 0, 0, 0, 0, 1, 2, 'p' };
        assert_int_equal(v.len, sizeof(want));
        assert_memory_equal(v.p, want, sizeof(want));
        cf_buf_free(&v);
}

static void store_del_writes_delete_only_when_needed(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_PENDING, 1, 2); /* k0, k1 on disk */
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_PENDING, 1, &tops, &c, 1 << 20, true);
        /* k0: loaded, then deleted -> one delete. */
        assert_non_null(cf_store_get(st, UK("k0")));
        cf_store_del(st, UK("k0"));
        assert_null(cf_store_get(st, UK("k0")));
        /* k1: deleted without a read -> one delete (might be on disk);
         * putting NULL is the same as deleting. */
        cf_store_put(st, UK("k1"), NULL);
        /* new: known absent (read), put, deleted before any flush -> no
         * write at all. */
        assert_null(cf_store_get(st, UK("new")));
        cf_store_put(st, UK("new"), tobj_new(&c, 5, "n"));
        cf_store_del(st, UK("new"));
        assert_int_equal(c.live, 0);
        assert_int_equal(st_stats(st).dirty, 2);
        write_flush(f, st, 2);
        /* Deleted keys are now remembered as absent: no read. */
        uint64_t reads = st_stats(st).reads;
        assert_null(cf_store_get(st, UK("k1")));
        assert_int_equal(st_stats(st).reads, reads);
        cf_store_destroy(st);
        uint8_t p[2] = { 0, 1 };
        assert_int_equal(count_all(f->s, CF_COL_PENDING, p, 2), 0);
}

static void store_eviction_keeps_memory_under_budget(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_SESSION, 4, 1000);
        tctx c = { 0 };
        const size_t budget = 32 * 1024;
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 4, &tops, &c, budget, true);
        for (int i = 0; i < 1000; i++) {
                char id[16];
                snprintf(id, sizeof(id), "k%d", i);
                tobj *o = cf_store_get(st, id, strlen(id) + 1);
                assert_non_null(o);
                assert_int_equal(o->v, i);
                assert_true(st_stats(st).bytes <= budget);
        }
        cf_store_stats x = st_stats(st);
        assert_int_equal(x.reads, 1000);
        assert_true(x.evictions > 0);
        assert_int_equal(x.entries + x.evictions, 1000);
        assert_int_equal((size_t)c.live, x.entries);
        /* The most recent is still there, the first was evicted: reading
         * it again goes to RocksDB and gives the same value. */
        assert_non_null(cf_store_get(st, UK("k999")));
        assert_int_equal(st_stats(st).reads, 1000);
        tobj *o = cf_store_get(st, UK("k0"));
        assert_int_equal(o->v, 0);
        assert_int_equal(st_stats(st).reads, 1001);
        print_message("budget %zu: %zu entries, %zu bytes, %llu evictions\n",
                      budget, x.entries, x.bytes,
                      (unsigned long long)x.evictions);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_eviction_never_loses_dirty_data(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        const size_t budget = 16 * 1024;
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 6, &tops, &c, budget, true);
        /* 500 dirty objects need far more than the budget; all stay. */
        for (int i = 0; i < 500; i++) {
                char id[16], name[16];
                snprintf(id, sizeof(id), "d%d", i);
                snprintf(name, sizeof(name), "dirty %d", i);
                cf_store_put(st, id, strlen(id) + 1, tobj_new(&c, i, name));
        }
        /* Misses try to evict: nothing clean to evict. */
        assert_null(cf_store_get(st, UK("missing")));
        cf_store_stats x = st_stats(st);
        assert_true(x.bytes > budget);
        assert_int_equal(x.dirty, 500);
        assert_int_equal(x.entries, 501);
        assert_int_equal(c.live, 500);
        /* Flush: 500 puts, then back under the budget. */
        write_flush(f, st, 500);
        x = st_stats(st);
        assert_true(x.bytes <= budget);
        assert_true(x.evictions > 0);
        assert_int_equal(x.dirty, 0);
        /* Every value survives, from memory or from RocksDB. */
        for (int i = 0; i < 500; i++) {
                char id[16], name[16];
                snprintf(id, sizeof(id), "d%d", i);
                snprintf(name, sizeof(name), "dirty %d", i);
                tobj *o = cf_store_get(st, id, strlen(id) + 1);
                assert_non_null(o);
                assert_int_equal(o->v, i);
                assert_string_equal(o->name, name);
        }
        assert_true(st_stats(st).reads > 1);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_load_all_warms_cache_and_skips_reads(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_DEDUP, 8, 100);
        seed(f->s, CF_COL_DEDUP, 9, 50); /* another task: not loaded */
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_DEDUP, 8, &tops, &c, 1 << 20, true);
        /* A dirty entry already in memory is newer than RocksDB. */
        cf_store_put(st, UK("k5"), tobj_new(&c, 500, "mine"));
        assert_false(cf_store_complete(st));
        assert_int_equal(cf_store_load_all(st, f->err, sizeof(f->err)), CF_OK);
        assert_true(cf_store_complete(st));
        cf_store_stats x = st_stats(st);
        assert_int_equal(x.entries, 100);
        assert_int_equal(x.reads, 0);
        assert_int_equal(((tobj *)cf_store_get(st, UK("k5")))->v, 500);
        assert_int_equal(((tobj *)cf_store_get(st, UK("k42")))->v, 42);
        /* Complete: a miss is absent without a read, and a new key's put
         * followed by a delete writes nothing. */
        assert_null(cf_store_get(st, UK("k100")));
        cf_store_put(st, UK("fresh"), tobj_new(&c, 1, "f"));
        cf_store_del(st, UK("fresh"));
        x = st_stats(st);
        assert_int_equal(x.reads, 0);
        assert_int_equal(x.hits, 2);
        assert_int_equal(x.misses, 1);
        write_flush(f, st, 1); /* only k5 */
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_load_all_stops_at_budget(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_DEDUP, 8, 1000);
        tctx c = { 0 };
        const size_t budget = 16 * 1024;
        cf_store *st =
            cf_store_new(f->s, CF_COL_DEDUP, 8, &tops, &c, budget, true);
        assert_int_equal(cf_store_load_all(st, f->err, sizeof(f->err)), CF_OK);
        assert_false(cf_store_complete(st));
        cf_store_stats x = st_stats(st);
        assert_true(x.entries > 0 && x.entries < 1000);
        assert_true(x.bytes <= budget);
        /* Not complete: a key that was not loaded is read. Scan order is
         * bytewise ("k0", "k1", "k10", "k100", ...), so "k999" is last. */
        tobj *o = cf_store_get(st, UK("k999"));
        assert_non_null(o);
        assert_int_equal(o->v, 999);
        assert_int_equal(st_stats(st).reads, 1);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

static void store_corrupt_value_is_a_sticky_error(void **state)
{
        fx *f = *state;
        cf_key k;
        cf_key_init(&k, 3);
        cf_key_bytes(&k, "bad", 3);
        put1(f->s, CF_COL_SESSION, &k, "xyz"); /* 3 bytes < 8 */
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 3, &tops, &c, 1 << 20, true);
        cf_store_put(st, UK("good"), tobj_new(&c, 1, "g"));
        assert_null(cf_store_get(st, "bad", 3));
        char msg[256];
        assert_int_equal(cf_store_error(st, msg, sizeof(msg)), CF_ERR_CORRUPT);
        print_message("corrupt: %s\n", msg);
        assert_non_null(strstr(msg, "session"));
        assert_non_null(strstr(msg, "0003626164")); /* the key, in hex */
        /* No commit can follow. */
        cf_batch *b = cf_batch_new(f->s);
        size_t n = 7;
        assert_int_equal(cf_store_flush(st, b, &n), CF_ERR_CORRUPT);
        assert_int_equal(n, 0);
        assert_int_equal(cf_batch_count(b), 0);
        cf_batch_destroy(b);
        /* load_all reports it too. */
        cf_store *st2 =
            cf_store_new(f->s, CF_COL_SESSION, 3, &tops, &c, 1 << 20, true);
        assert_int_equal(cf_store_load_all(st2, msg, sizeof(msg)),
                         CF_ERR_CORRUPT);
        cf_store_destroy(st2);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

typedef struct visit {
        char text[256];
        cf_store *st;
} visit;

static int visit_cb(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        visit *v = opaque;
        tobj *o = obj;
        size_t at = strlen(v->text);
        snprintf(v->text + at, sizeof(v->text) - at, "%s%.*s=%lld",
                 at ? " " : "", (int)klen, (const char *)key, (long long)o->v);
        /* Closing sessions while iterating: delete odd values. */
        if (v->st && (o->v & 1))
                cf_store_del(v->st, key, klen);
        return 0;
}

static void store_foreach_sorted_visits_in_key_order(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 1, &tops, &c, 1 << 20, true);
        const char *ids[] = { "m", "b", "zz", "a", "z", "ba" };
        for (int i = 0; i < 6; i++)
                cf_store_put(st, ids[i], strlen(ids[i]),
                             tobj_new(&c, i, ids[i]));
        cf_store_del(st, "m", 1);              /* deleted: not visited */
        assert_null(cf_store_get(st, "q", 1)); /* absent: not visited */
        visit v = { .st = st };
        cf_store_foreach(st, CF_STORE_SORTED, visit_cb, &v);
        /* bytewise: a < b < ba < z < zz */
        assert_string_equal(v.text, "a=3 b=1 ba=5 z=4 zz=2");
        /* Odd ones were deleted during the first pass. */
        memset(v.text, 0, sizeof(v.text));
        v.st = NULL;
        cf_store_foreach(st, CF_STORE_SORTED, visit_cb, &v);
        assert_string_equal(v.text, "z=4 zz=2");
        /* Hash order visits the same set. */
        memset(v.text, 0, sizeof(v.text));
        cf_store_foreach(st, 0, visit_cb, &v);
        assert_int_equal(strlen(v.text), strlen("z=4 zz=2"));
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

typedef struct sumv {
        int64_t n, sum;
        char first[16], last[16];
} sumv;

static int sum_cb(void *opaque, const uint8_t *key, size_t klen, void *obj)
{
        sumv *v = opaque;
        const tobj *o = obj;
        if (!v->n)
                snprintf(v->first, sizeof(v->first), "%.*s", (int)klen,
                         (const char *)key);
        snprintf(v->last, sizeof(v->last), "%.*s", (int)klen,
                 (const char *)key);
        v->n++;
        v->sum += o->v;
        return 0;
}

/* cf_store_visit_all sees every stored object, also those load_all left
 * out for the budget, memory first where both have the key, and caches
 * nothing (a restarted task rebuilds its timers from it). */
static void store_visit_all_covers_what_did_not_fit(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_DEDUP, 8, 1000);
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_DEDUP, 8, &tops, &c, 16 * 1024, true);
        assert_int_equal(cf_store_load_all(st, f->err, sizeof(f->err)), CF_OK);
        assert_false(cf_store_complete(st));
        /* k1 changed in memory: -1 instead of 1. */
        cf_store_put(st, UK("k1"), tobj_new(&c, -1, "n1"));
        cf_store_stats before = st_stats(st);
        int64_t live = c.live;
        sumv v = { 0 };
        assert_int_equal(
            cf_store_visit_all(st, sum_cb, &v, f->err, sizeof(f->err)), CF_OK);
        /* 0 + 1 + ... + 999 = 499500, with k1 at -1: 499498. */
        assert_int_equal(v.n, 1000);
        assert_int_equal(v.sum, 499498);
        /* Bytewise key order: k0, k1, k10, k100, ..., k999 last. */
        assert_string_equal(v.first, "k0");
        assert_string_equal(v.last, "k999");
        cf_store_stats after = st_stats(st);
        assert_int_equal(after.entries, before.entries);
        assert_int_equal(after.reads, before.reads);
        assert_int_equal(c.live, live);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

/* A cooled entry goes to the LRU tail at the flush: the first evicted,
 * though it was written last (without the cool it would be the most
 * recent). */
static void store_cooled_entry_is_evicted_first(void **state)
{
        fx *f = *state;
        seed(f->s, CF_COL_SESSION, 9, 1000);
        tctx c = { 0 };
        cf_store *st =
            cf_store_new(f->s, CF_COL_SESSION, 9, &tops, &c, 16 * 1024, true);
        /* A full cache, the table at its size for it. */
        for (int i = 0; i < 300; i++) {
                char id[16];
                snprintf(id, sizeof(id), "k%d", i);
                assert_non_null(cf_store_get(st, id, strlen(id) + 1));
        }
        assert_true(st_stats(st).evictions > 0);
        cf_store_put(st, UK("x1"), tobj_new(&c, 1, "x1"));
        cf_store_put(st, UK("x2"), tobj_new(&c, 2, "x2"));
        cf_store_put(st, UK("x3"), tobj_new(&c, 3, "x3"));
        cf_store_cool(st, UK("x3"));
        uint64_t ev = st_stats(st).evictions;
        write_flush(f, st, 3); /* over budget: evicts from the tail */
        assert_true(st_stats(st).evictions > ev);
        uint64_t reads = st_stats(st).reads;
        tobj *o = cf_store_get(st, UK("x1")); /* still in memory */
        assert_int_equal(o->v, 1);
        assert_int_equal(st_stats(st).reads, reads);
        o = cf_store_get(st, UK("x3")); /* evicted: read back */
        assert_int_equal(o->v, 3);
        assert_int_equal(st_stats(st).reads, reads + 1);
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

/* ---- stores with parts ------------------------------------------------- *
 * A test object for stores that keep changes as parts: a list of small
 * values. Whole: 'W', the count, one byte per value. A change: 'D', one
 * byte per value added since stored (only appends make a change). */
typedef struct plog {
        uint8_t v[64];
        uint32_t n, stored_n;
        bool stored;
} plog;

static plog *plog_new(tctx *c, const char *vals)
{
        plog *o = calloc(1, sizeof(*o));
        assert_non_null(o);
        o->n = (uint32_t)strlen(vals);
        memcpy(o->v, vals, o->n);
        c->live++;
        return o;
}

static void pl_encode(void *opaque, const void *obj, cf_buf *out)
{
        const plog *o = obj;
        (void)opaque;
        cf_buf_putc(out, 'W');
        cf_buf_putc(out, (uint8_t)o->n);
        cf_buf_put(out, o->v, o->n);
}

static void *pl_decode(void *opaque, const uint8_t *p, size_t len)
{
        if (len < 2 || p[0] != 'W' || p[1] != len - 2 || len - 2 > 64)
                return NULL;
        plog *o = calloc(1, sizeof(*o));
        o->n = (uint32_t)(len - 2);
        memcpy(o->v, p + 2, o->n);
        ((tctx *)opaque)->live++;
        return o;
}

static bool pl_delta(void *opaque, const void *obj, cf_buf *out)
{
        const plog *o = obj;
        (void)opaque;
        if (!o->stored || o->n < o->stored_n)
                return false;
        cf_buf_putc(out, 'D');
        cf_buf_put(out, o->v + o->stored_n, o->n - o->stored_n);
        return true;
}

static bool pl_apply(void *opaque, void *obj, const uint8_t *p, size_t len)
{
        plog *o = obj;
        (void)opaque;
        if (len < 1 || p[0] != 'D' || o->n + len - 1 > 64)
                return false;
        memcpy(o->v + o->n, p + 1, len - 1);
        o->n += (uint32_t)(len - 1);
        return true;
}

static void pl_stored(void *opaque, void *obj)
{
        plog *o = obj;
        (void)opaque;
        o->stored = true;
        o->stored_n = o->n;
}

static const cf_store_ops plops = {
        .encode = pl_encode,
        .decode = pl_decode,
        .free = t_free,
        .size = t_size,
        .encode_delta = pl_delta,
        .apply_delta = pl_apply,
        .stored = pl_stored,
};

static void plog_add(cf_store *st, const char *key, const char *vals)
{
        plog *o = cf_store_get(st, key, strlen(key));
        assert_non_null(o);
        size_t n = strlen(vals);
        memcpy(o->v + o->n, vals, n);
        o->n += (uint32_t)n;
        assert_true(cf_store_dirty(st, key, strlen(key)));
}

/* The value of key k of task 5 in CF_COL_SESSION_PARTS, as hex ("" when
 * absent). */
static const char *value_hex(fx *f, const char *k, char *out, size_t size)
{
        cf_key key;
        cf_key_init(&key, 5);
        cf_key_bytes(&key, k, strlen(k));
        cf_buf v;
        cf_buf_init(&v);
        out[0] = 0;
        cf_err_t err = cf_state_get(f->s, CF_COL_SESSION_PARTS, key.b, key.len,
                                    &v, f->err, sizeof(f->err));
        assert_true(err == CF_OK || err == CF_ERR_NOT_FOUND);
        size_t at = 0;
        for (size_t i = 0; err == CF_OK && i < v.len; i++)
                at += (size_t)snprintf(out + at, size - at, "%02x", v.p[i]);
        cf_buf_free(&v);
        return out;
}

/* A flush appends a change as a part of the value; a read joins the parts;
 * once the changes would outgrow CF_STORE_PART_RATIO (4) times the whole,
 * the object is put whole again. Values by hand from store.h: each part
 * its length as a zigzag varint (4 -> 08), then its bytes ('W' 57, 'D'
 * 44). */
static void store_parts_store_changes_and_read_back_whole(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        char h[512];
        cf_store *st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5, &plops, &c,
                                    1 << 20, true);
        assert_null(cf_store_get(st, "k", 1));
        cf_store_put(st, "k", 1, plog_new(&c, "\x01\x02"));
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)), "0857020102");
        plog_add(st, "k", "\x03");
        write_flush(f, st, 1);
        plog_add(st, "k", "\x04\x05");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)), "0857020102"
                                                             "044403"
                                                             "06440405");
        write_flush(f, st, 0); /* nothing changed */
        cf_store_destroy(st);

        /* Read back: the three parts in one object. */
        st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5, &plops, &c, 1 << 20,
                          true);
        plog *p = cf_store_get(st, "k", 1);
        assert_non_null(p);
        assert_int_equal(p->n, 5);
        assert_memory_equal(p->v, "\x01\x02\x03\x04\x05", 5);
        assert_int_equal(st_stats(st).reads, 1);
        /* Whole part: 5 bytes; changes so far 3 + 4. Ten values more (12
         * bytes with the length) make 19 <= 4 x 5: still a part. */
        plog_add(st, "k", "\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)),
                            "0857020102"
                            "044403"
                            "06440405"
                            "1644060708090a0b0c0d0e0f");
        /* One more (3 bytes: 22 > 20): whole again, one put. */
        plog_add(st, "k", "\x10");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)),
                            "245710"
                            "0102030405060708090a0b0c0d0e0f10");
        /* From the new whole: a change is a part after it. */
        plog_add(st, "k", "\x11");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)),
                            "245710"
                            "0102030405060708090a0b0c0d0e0f10"
                            "044411");
        cf_store_del(st, "k", 1);
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "k", h, sizeof(h)), "");
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

typedef struct seen {
        char keys[64];
        char vals[64];
} seen;

/* visit callback: keys and values in hex, space-separated. */
static int collect_plog(void *opaque, const uint8_t *key, size_t klen,
                        void *obj)
{
        seen *sn = opaque;
        const plog *o = obj;
        size_t at = strlen(sn->keys);
        if (at)
                sn->keys[at++] = ' ';
        for (size_t i = 0; i < klen; i++)
                at += (size_t)snprintf(sn->keys + at, sizeof(sn->keys) - at,
                                       "%02x", key[i]);
        at = strlen(sn->vals);
        if (at)
                sn->vals[at++] = ' ';
        for (uint32_t i = 0; i < o->n; i++)
                at += (size_t)snprintf(sn->vals + at, sizeof(sn->vals) - at,
                                       "%02x", o->v[i]);
        return 0;
}

/* visit_all and load_all read objects with parts whole; a change after
 * load_all appends to what was loaded. A put the store cannot tell is new
 * (no read before) is a put all the same. */
static void store_parts_visit_and_load_read_them_whole(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        char h[512];
        cf_store *st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5, &plops, &c,
                                    1 << 20, true);
        cf_store_put(st, "ab", 2, plog_new(&c, "\x03"));
        cf_store_put(st, "a", 1, plog_new(&c, "\x01"));
        write_flush(f, st, 2);
        plog_add(st, "a", "\x07");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "a", h, sizeof(h)), "065701010444"
                                                             "07");
        cf_store_destroy(st);

        /* A store that holds nothing in memory visits both whole. */
        st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5, &plops, &c, 0, true);
        seen sn = { { 0 }, { 0 } };
        assert_int_equal(
            cf_store_visit_all(st, collect_plog, &sn, f->err, sizeof(f->err)),
            CF_OK);
        assert_string_equal(sn.keys, "61 6162");
        assert_string_equal(sn.vals, "0107 03");
        assert_int_equal(c.live, 0); /* nothing cached */
        cf_store_destroy(st);
        st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5, &plops, &c, 1 << 20,
                          true);
        assert_int_equal(cf_store_load_all(st, f->err, sizeof(f->err)), CF_OK);
        assert_true(cf_store_complete(st));
        plog *p = cf_store_get(st, "a", 1);
        assert_int_equal(p->n, 2);
        assert_memory_equal(p->v, "\x01\x07", 2);
        assert_int_equal(st_stats(st).reads, 0);
        plog_add(st, "a", "\x08");
        write_flush(f, st, 1);
        assert_string_equal(value_hex(f, "a", h, sizeof(h)), "065701010444"
                                                             "07"
                                                             "044408");
        cf_store_destroy(st);
        assert_int_equal(c.live, 0);
}

/* A value whose parts do not decode (a first part that is not whole, a
 * change that does not apply, a length past the end) is a sticky
 * CF_ERR_CORRUPT, never a wrong object. */
static void store_parts_bad_value_is_corrupt(void **state)
{
        fx *f = *state;
        tctx c = { 0 };
        const char *bad[] = {
                "\x04"
                "D\x02", /* no whole part */
                "\x06"
                "W\x01\x01\x04X\x02", /* not a change */
                "\x06"
                "W\x01\x01\x08"
                "D", /* length past the end */
        };
        const size_t len[] = { 3, 7, 6 };
        for (int i = 0; i < 3; i++) {
                cf_key k;
                cf_key_init(&k, 5);
                cf_key_bytes(&k, "y", 1);
                cf_batch *b = cf_batch_new(f->s);
                cf_batch_put(b, CF_COL_SESSION_PARTS, k.b, k.len, bad[i],
                             len[i]);
                assert_int_equal(
                    cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                    CF_OK);
                cf_batch_destroy(b);
                cf_store *st = cf_store_new(f->s, CF_COL_SESSION_PARTS, 5,
                                            &plops, &c, 1 << 20, true);
                assert_null(cf_store_get(st, "y", 1));
                assert_int_equal(cf_store_error(st, NULL, 0), CF_ERR_CORRUPT);
                cf_store_destroy(st);
        }
        assert_int_equal(c.live, 0);
}

/* An append goes through the batch log (the task log's form) like a put:
 * replayed, it gives the same value. */
static void state_append_concatenates_and_replays_from_the_log(void **state)
{
        fx *f = *state;
        cf_key k;
        cf_key_init(&k, 6);
        cf_key_bytes(&k, "s", 1);
        cf_buf log;
        cf_buf_init(&log);
        cf_batch *b = cf_batch_new(f->s);
        cf_batch_tee(b, &log);
        cf_batch_append(b, CF_COL_SESSION_PARTS, k.b, k.len, "ab", 2);
        cf_batch_append(b, CF_COL_SESSION_PARTS, k.b, k.len, "c", 1);
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        b = cf_batch_new(f->s);
        cf_batch_append(b, CF_COL_SESSION_PARTS, k.b, k.len, "d", 1);
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        assert_string_equal(get_str(f->s, CF_COL_SESSION_PARTS, &k), "abcd");
        /* A put replaces the parts; appends go on from it. */
        b = cf_batch_new(f->s);
        cf_batch_put(b, CF_COL_SESSION_PARTS, k.b, k.len, "X", 1);
        cf_batch_append(b, CF_COL_SESSION_PARTS, k.b, k.len, "y", 1);
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        assert_string_equal(get_str(f->s, CF_COL_SESSION_PARTS, &k), "Xy");
        /* The log of the first batch, replayed on another task's key
         * space after a delete: "abc" again. */
        b = cf_batch_new(f->s);
        cf_batch_delete(b, CF_COL_SESSION_PARTS, k.b, k.len);
        assert_int_equal(
            cf_batch_add_log(b, log.p, log.len, f->err, sizeof(f->err)), CF_OK);
        assert_int_equal(cf_batch_count(b), 3);
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        assert_string_equal(get_str(f->s, CF_COL_SESSION_PARTS, &k), "abc");
        cf_buf_free(&log);
}

/* Puts key s of task 7 in col into b. */
static void put7(cf_batch *b, cf_col_t col, const char *s, const char *v)
{
        cf_key k;
        cf_key_init(&k, 7);
        cf_key_bytes(&k, s, strlen(s));
        cf_batch_put(b, col, k.b, k.len, v, strlen(v));
}

static void append7(cf_batch *b, cf_col_t col, const char *s, const char *v)
{
        cf_key k;
        cf_key_init(&k, 7);
        cf_key_bytes(&k, s, strlen(s));
        cf_batch_append(b, col, k.b, k.len, v, strlen(v));
}

static void delete7(cf_batch *b, cf_col_t col, const char *s)
{
        cf_key k;
        cf_key_init(&k, 7);
        cf_key_bytes(&k, s, strlen(s));
        cf_batch_delete(b, col, k.b, k.len);
}

static const char *get7(cf_state *s, cf_col_t col, const char *key)
{
        cf_key k;
        cf_key_init(&k, 7);
        cf_key_bytes(&k, key, strlen(key));
        return get_str(s, col, &k);
}

/* Three commits in the batch-log encoding, gathered in a log batch: what a
 * later put, delete or range delete of the batch replaces is left out, an
 * append before another append is not, and the batch written gives what
 * the three in order give (values worked out by hand below). */
static void state_logbatch_leaves_out_what_later_ops_replace(void **state)
{
        fx *f = *state;
        cf_key lo, hi;
        cf_batch *b = cf_batch_new(f->s);
        put7(b, CF_COL_SESSION, "a", "old");
        put7(b, CF_COL_SESSION, "b", "old");
        put7(b, CF_COL_SESSION, "c", "old");
        put7(b, CF_COL_SESSION, "r1", "old");
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        cf_buf log[3];
        cf_batch *c[3];
        for (int i = 0; i < 3; i++) {
                cf_buf_init(&log[i]);
                c[i] = cf_batch_new(f->s);
                cf_batch_tee(c[i], &log[i]);
        }
        /* Commit 1. */
        put7(c[0], CF_COL_SESSION, "a", "1");
        put7(c[0], CF_COL_META, "a", "m");
        put7(c[0], CF_COL_SESSION, "b", "1");
        append7(c[0], CF_COL_SESSION, "c", "x");
        put7(c[0], CF_COL_SESSION, "d", "1");
        put7(c[0], CF_COL_SESSION, "f", "1");
        /* Commit 2. */
        put7(c[1], CF_COL_SESSION, "a", "2");
        delete7(c[1], CF_COL_SESSION, "b");
        append7(c[1], CF_COL_SESSION, "c", "y");
        append7(c[1], CF_COL_SESSION, "e", "p");
        append7(c[1], CF_COL_SESSION, "f", "z");
        put7(c[1], CF_COL_SESSION, "r4", "1");
        put7(c[1], CF_COL_META, "r5", "1"); /* in [r, s), another family */
        /* Commit 3: r3 before the range delete of [r, s), r2 and an
         * append to r4 after it. */
        put7(c[2], CF_COL_SESSION, "r3", "1");
        cf_key_init(&lo, 7);
        cf_key_bytes(&lo, "r", 1);
        cf_key_init(&hi, 7);
        cf_key_bytes(&hi, "s", 1);
        cf_batch_delete_range(c[2], CF_COL_SESSION, lo.b, lo.len, hi.b, hi.len);
        put7(c[2], CF_COL_SESSION, "d", "3");
        put7(c[2], CF_COL_SESSION, "r2", "new");
        append7(c[2], CF_COL_SESSION, "r4", "q");
        put7(c[2], CF_COL_SESSION, "f", "3");

        cf_logbatch *g = cf_logbatch_new();
        for (int i = 0; i < 3; i++)
                assert_int_equal(cf_logbatch_add(g, log[i].p, log[i].len,
                                                 f->err, sizeof(f->err)),
                                 CF_OK);
        /* Not an encoding: refused, nothing added. */
        size_t n = cf_logbatch_bytes(g);
        assert_int_equal(cf_logbatch_add(g, (const uint8_t *)"\x09\x02", 2,
                                         f->err, sizeof(f->err)),
                         CF_ERR_STATE);
        assert_int_equal(cf_logbatch_bytes(g), n);
        b = cf_batch_new(f->s);
        cf_logbatch_move(g, b);
        assert_int_equal(cf_logbatch_bytes(g), 0);
        /* Kept: META a and r5; a=2, delete b, appends x y to c, append p
         * to e, the range delete, d=3, r2, append q to r4, f=3. */
        assert_int_equal(cf_batch_count(b), 12);
        assert_int_equal(cf_state_write(f->s, b, false, f->err, sizeof(f->err)),
                         CF_OK);
        cf_batch_destroy(b);
        assert_string_equal(get7(f->s, CF_COL_META, "a"), "m");
        assert_string_equal(get7(f->s, CF_COL_META, "r5"), "1");
        assert_string_equal(get7(f->s, CF_COL_SESSION, "a"), "2");
        assert_null(get7(f->s, CF_COL_SESSION, "b"));
        assert_string_equal(get7(f->s, CF_COL_SESSION, "c"), "oldxy");
        assert_string_equal(get7(f->s, CF_COL_SESSION, "d"), "3");
        assert_string_equal(get7(f->s, CF_COL_SESSION, "e"), "p");
        assert_string_equal(get7(f->s, CF_COL_SESSION, "f"), "3");
        assert_null(get7(f->s, CF_COL_SESSION, "r1"));
        assert_string_equal(get7(f->s, CF_COL_SESSION, "r2"), "new");
        assert_null(get7(f->s, CF_COL_SESSION, "r3"));
        assert_string_equal(get7(f->s, CF_COL_SESSION, "r4"), "q");
        /* Emptied, it gathers again from nothing: the same commit 1 alone
         * keeps all of its six operations. */
        assert_int_equal(
            cf_logbatch_add(g, log[0].p, log[0].len, f->err, sizeof(f->err)),
            CF_OK);
        b = cf_batch_new(f->s);
        cf_logbatch_move(g, b);
        assert_int_equal(cf_batch_count(b), 6);
        cf_batch_destroy(b);
        cf_logbatch_destroy(g);
        for (int i = 0; i < 3; i++) {
                cf_batch_destroy(c[i]);
                cf_buf_free(&log[i]);
        }
}

/* Scan callback: appends each key (less its task prefix) and value to a
 * cf_buf, so that two tasks' states compare as bytes. */
static int dump_kv(void *opaque, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
        cf_buf *b = opaque;
        cf_buf_printf(b, "%zu:", klen - 2);
        cf_buf_put(b, key + 2, klen - 2);
        cf_buf_printf(b, "=%zu:", vlen);
        cf_buf_put(b, val, vlen);
        cf_buf_putc(b, '\n');
        return 0;
}

/* Random commits of puts, deletes, appends and range deletes over a few
 * keys of two column families, applied to task 8 one write per commit
 * (cf_batch_add_log) and to task 9 through a log batch written every few
 * commits: the two tasks' states are the same, key for key. */
static void state_logbatch_gives_the_state_of_every_op_in_order(void **state)
{
        fx *f = *state;
        static const char *const keys[] = { "a", "b", "c", "d", "e", "f" };
        static const cf_col_t cols[] = { CF_COL_SESSION, CF_COL_BILL };
        uint32_t rnd = 12345;
#define RND(n) ((rnd = rnd * 1103515245u + 12345u), (rnd >> 16) % (n))
        for (int round = 0; round < 40; round++) {
                cf_logbatch *g = cf_logbatch_new();
                assert_int_equal(
                    cf_state_drop_task(f->s, 8, f->err, sizeof(f->err)), CF_OK);
                assert_int_equal(
                    cf_state_drop_task(f->s, 9, f->err, sizeof(f->err)), CF_OK);
                for (int commit = 0; commit < 30; commit++) {
                        cf_buf la, lb;
                        cf_buf_init(&la);
                        cf_buf_init(&lb);
                        cf_batch *ba = cf_batch_new(f->s);
                        cf_batch *bb = cf_batch_new(f->s);
                        cf_batch_tee(ba, &la);
                        cf_batch_tee(bb, &lb);
                        int nops = 1 + (int)RND(6);
                        for (int i = 0; i < nops; i++) {
                                cf_col_t col = cols[RND(2)];
                                const char *k1 = keys[RND(6)];
                                char v[16];
                                snprintf(v, sizeof(v), "v%u", RND(1000));
                                int op = (int)RND(4);
                                /* The range's end: keys[5] with a 0
                                 * after it, or alone (excluded). */
                                size_t hl = RND(2) ? 4 : 3;
                                for (uint16_t t = 8; t <= 9; t++) {
                                        cf_batch *b = t == 8 ? ba : bb;
                                        cf_key k, hi;
                                        cf_key_init(&k, t);
                                        cf_key_bytes(&k, k1, 1);
                                        if (op == 0)
                                                cf_batch_put(b, col, k.b, k.len,
                                                             v, strlen(v));
                                        else if (op == 1)
                                                cf_batch_delete(b, col, k.b,
                                                                k.len);
                                        else if (op == 2)
                                                cf_batch_append(b, col, k.b,
                                                                k.len, v,
                                                                strlen(v));
                                        else {
                                                cf_key_init(&hi, t);
                                                cf_key_bytes(&hi, keys[5], 1);
                                                cf_key_u8(&hi, 0);
                                                cf_batch_delete_range(
                                                    b, col, k.b, k.len, hi.b,
                                                    hl);
                                        }
                                }
                        }
                        cf_batch_destroy(ba);
                        cf_batch_destroy(bb);
                        cf_batch *w = cf_batch_new(f->s);
                        assert_int_equal(cf_batch_add_log(w, la.p, la.len,
                                                          f->err,
                                                          sizeof(f->err)),
                                         CF_OK);
                        assert_int_equal(cf_state_write(f->s, w, false, f->err,
                                                        sizeof(f->err)),
                                         CF_OK);
                        cf_batch_destroy(w);
                        assert_int_equal(cf_logbatch_add(g, lb.p, lb.len,
                                                         f->err,
                                                         sizeof(f->err)),
                                         CF_OK);
                        if (RND(8) == 0 || commit == 29) {
                                w = cf_batch_new(f->s);
                                cf_logbatch_move(g, w);
                                assert_int_equal(cf_state_write(f->s, w, false,
                                                                f->err,
                                                                sizeof(f->err)),
                                                 CF_OK);
                                cf_batch_destroy(w);
                        }
                        cf_buf_free(&la);
                        cf_buf_free(&lb);
                }
                for (int c = 0; c < 2; c++) {
                        cf_buf da, db;
                        cf_buf_init(&da);
                        cf_buf_init(&db);
                        uint8_t p8[2] = { 0, 8 }, p9[2] = { 0, 9 };
                        assert_int_equal(cf_state_scan(f->s, cols[c], p8, 2,
                                                       dump_kv, &da, f->err,
                                                       sizeof(f->err)),
                                         CF_OK);
                        assert_int_equal(cf_state_scan(f->s, cols[c], p9, 2,
                                                       dump_kv, &db, f->err,
                                                       sizeof(f->err)),
                                         CF_OK);
                        assert_int_equal(da.len, db.len);
                        assert_memory_equal(da.p, db.p, da.len);
                        cf_buf_free(&da);
                        cf_buf_free(&db);
                }
                cf_logbatch_destroy(g);
        }
#undef RND
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(state_key_encodes_task_and_parts_big_endian),
                cmocka_unit_test(state_key_order_follows_values),
                cmocka_unit_test(state_key_overflow_is_flagged_not_truncated),
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
                T(state_open_creates_every_column_family),
                T(state_get_absent_is_not_found),
                T(state_columns_are_separate),
                T(state_scan_walks_prefix_in_key_order),
                T(state_scan_prefix_ending_in_ff_stays_inside),
                T(state_scan_range_is_half_open),
                T(state_batch_is_invisible_until_written_then_whole),
                T(state_survives_close_and_reopen),
                T(state_batch_survives_sigkill_after_write),
                T(state_drop_task_removes_only_that_task),
                cmocka_unit_test(state_open_fails_on_unwritable_dir),
                T(state_write_error_is_returned_and_batch_not_applied),
                T(store_miss_reads_once_then_hits_without_read),
                T(store_absent_is_cached),
                T(store_without_load_on_miss_never_reads),
                T(store_flushes_dirty_once_then_clean),
                T(store_keys_are_task_prefixed_in_rocksdb),
                T(store_del_writes_delete_only_when_needed),
                T(store_eviction_keeps_memory_under_budget),
                T(store_eviction_never_loses_dirty_data),
                T(store_load_all_warms_cache_and_skips_reads),
                T(store_visit_all_covers_what_did_not_fit),
                T(store_cooled_entry_is_evicted_first),
                T(store_load_all_stops_at_budget),
                T(store_corrupt_value_is_a_sticky_error),
                T(store_foreach_sorted_visits_in_key_order),
                T(store_parts_store_changes_and_read_back_whole),
                T(store_parts_visit_and_load_read_them_whole),
                T(store_parts_bad_value_is_corrupt),
                T(state_append_concatenates_and_replays_from_the_log),
                T(state_logbatch_leaves_out_what_later_ops_replace),
                T(state_logbatch_gives_the_state_of_every_op_in_order),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
