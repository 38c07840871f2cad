/*
 * bench_state.c: throughput of the state layer (pipeline/state/state.c and
 * store.c) on a real RocksDB directory.
 *
 * Scenarios, each run --runs times on a fresh database, reporting the
 * median (and min/max) over runs:
 * - "raw": cf_batch_put of --keys puts per batch (16-byte keys, values of
 *   64..200 bytes), then cf_state_write; --batches batches per run; keys
 *   cycle over a key space of --space keys, so later batches overwrite;
 * - "store": the same puts through cf_store_put (objects allocated and
 *   copied, as a stage would), cf_store_flush into one batch per commit,
 *   cf_state_write;
 * both with sync off and on (fsync of the WAL at every write);
 * - "commit": latency of a small commit (--commit-keys puts), sync off/on:
 *   what one commit.interval costs;
 * - "get": point reads of existing keys, straight from RocksDB
 *   (cf_state_get) vs cf_store_get hits.
 *
 * Usage: bench_state [--runs N] [--batches N] [--keys N] [--space N]
 *                    [--commit-keys N] [--value-bytes N] [--json] [--dir PATH]
 * --value-bytes fixes the value size (default 64..200). --json runs only
 * the raw write loop with sync on and prints one JSON object per run
 * (puts/s, WriteBatch bytes/s): `chargeflow bench` gives it the pipeline's
 * own batch size and value size to show the state layer's overhead.
 * --dir sets where the databases are made (default /tmp); put it on the
 * disk the state will live on to measure that disk's fsync.
 */
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "store.h"

#define TASK 1

static struct {
        int runs;
        int batches;
        int keys;
        int space;
        int commit_keys;
        int value_bytes; /* 0: 64..200 */
        bool json;
        const char *dir;
} opt = { 5, 20, 10000, 100000, 100, 0, false, "/tmp" };

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
        uint64_t x = rng_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return rng_state = x;
}

/* 16-byte key of item i: task prefix, a kind byte, i big-endian, 5 bytes
 * derived from i (a stand-in for the rest of an id). */
static void make_key(cf_key *k, uint64_t i)
{
        cf_key_init(k, TASK);
        cf_key_u8(k, 's');
        cf_key_u64(k, i);
        uint8_t tail[5];
        for (int j = 0; j < 5; j++)
                tail[j] = (uint8_t)(i * 2654435761u >> (8 * j));
        cf_key_bytes(k, tail, 5);
}

/* A value of 64..200 bytes: half counters and ids (compressible), half
 * noise, roughly like an encoded session. */
static size_t make_val(uint8_t *v)
{
        size_t n = opt.value_bytes ? (size_t)opt.value_bytes
                                   : 64 + (size_t)(rng() % 137);
        for (size_t j = 0; j < n; j++)
                v[j] = j < n / 2 ? (uint8_t)('a' + j % 16) : (uint8_t)rng();
        return n;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static cf_state *db_new(char *path, size_t n)
{
        snprintf(path, n, "%s/cf-bench-state-XXXXXX", opt.dir);
        if (!mkdtemp(path)) {
                perror(path);
                exit(1);
        }
        cf_state *s = NULL;
        char err[512];
        if (cf_state_open(path, NULL, &s, err, sizeof(err))) {
                fprintf(stderr, "open: %s\n", err);
                exit(1);
        }
        return s;
}

static void db_free(cf_state *s, char *path)
{
        cf_state_close(s);
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void check(cf_err_t e, const char *err)
{
        if (e) {
                fprintf(stderr, "bench_state: %s\n", err);
                exit(1);
        }
}

/* ---------------------------------------------------- store objects */

typedef struct blob {
        uint32_t len;
        uint8_t p[];
} blob;

static blob *blob_new(const uint8_t *p, size_t n)
{
        blob *b = cf_malloc(sizeof(*b) + n);
        b->len = (uint32_t)n;
        memcpy(b->p, p, n);
        return b;
}

static void b_encode(void *opaque, const void *obj, cf_buf *out)
{
        (void)opaque;
        const blob *b = obj;
        cf_buf_put(out, b->p, b->len);
}

static void *b_decode(void *opaque, const uint8_t *p, size_t len)
{
        (void)opaque;
        return blob_new(p, len);
}

static void b_free(void *opaque, void *obj)
{
        (void)opaque;
        free(obj);
}

static size_t b_size(void *opaque, const void *obj)
{
        (void)opaque;
        return sizeof(blob) + ((const blob *)obj)->len;
}

static const cf_store_ops blob_ops = {
        .encode = b_encode,
        .decode = b_decode,
        .free = b_free,
        .size = b_size,
};

/* ------------------------------------------------------------- runs */

static double last_bytes_per_s; /* of the last run_writes */

/* One run of the write loop; returns puts per second. */
static double run_writes(bool through_store, bool sync)
{
        char path[1024], err[512];
        cf_state *s = db_new(path, sizeof(path));
        cf_batch *b = cf_batch_new(s);
        cf_store *st = through_store
                           ? cf_store_new(s, CF_COL_SESSION, TASK, &blob_ops,
                                          NULL, (size_t)256 << 20, false)
                           : NULL;
        uint8_t val[4096];
        uint64_t next = 0;
        uint64_t bytes = 0;
        double t0 = now_s();
        for (int bi = 0; bi < opt.batches; bi++) {
                for (int i = 0; i < opt.keys; i++) {
                        cf_key k;
                        make_key(&k, next++ % (uint64_t)opt.space);
                        size_t n = make_val(val);
                        if (st)
                                /* The caller's key is the key without the
                                 * task prefix. */
                                cf_store_put(st, k.b + 2, k.len - 2,
                                             blob_new(val, n));
                        else
                                cf_batch_put(b, CF_COL_SESSION, k.b, k.len, val,
                                             n);
                }
                if (st)
                        check(cf_store_flush(st, b, NULL), "flush");
                bytes += cf_batch_bytes(b);
                check(cf_state_write(s, b, sync, err, sizeof(err)), err);
                cf_batch_clear(b);
        }
        double dt = now_s() - t0;
        last_bytes_per_s = (double)bytes / dt;
        cf_store_destroy(st);
        cf_batch_destroy(b);
        db_free(s, path);
        return (double)opt.batches * opt.keys / dt;
}

/* Commits of commit_keys puts each; returns the median latency in us. */
static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double run_commits(bool sync)
{
        enum { N = 200 };
        char path[1024], err[512];
        cf_state *s = db_new(path, sizeof(path));
        cf_batch *b = cf_batch_new(s);
        uint8_t val[256];
        double lat[N];
        uint64_t next = 0;
        for (int c = 0; c < N; c++) {
                for (int i = 0; i < opt.commit_keys; i++) {
                        cf_key k;
                        make_key(&k, next++ % (uint64_t)opt.space);
                        size_t n = make_val(val);
                        cf_batch_put(b, CF_COL_SESSION, k.b, k.len, val, n);
                }
                double t0 = now_s();
                check(cf_state_write(s, b, sync, err, sizeof(err)), err);
                lat[c] = (now_s() - t0) * 1e6;
                cf_batch_clear(b);
        }
        cf_batch_destroy(b);
        db_free(s, path);
        qsort(lat, N, sizeof(lat[0]), cmp_d);
        return lat[N / 2];
}

/* Point reads of random existing keys; returns reads per second. */
static double run_gets(bool through_store)
{
        char path[1024], err[512];
        cf_state *s = db_new(path, sizeof(path));
        cf_batch *b = cf_batch_new(s);
        uint8_t val[256];
        int nkeys = opt.space < 100000 ? opt.space : 100000;
        for (int i = 0; i < nkeys; i++) {
                cf_key k;
                make_key(&k, (uint64_t)i);
                size_t n = make_val(val);
                cf_batch_put(b, CF_COL_SESSION, k.b, k.len, val, n);
        }
        check(cf_state_write(s, b, false, err, sizeof(err)), err);
        cf_batch_destroy(b);
        cf_store *st = NULL;
        if (through_store) {
                st = cf_store_new(s, CF_COL_SESSION, TASK, &blob_ops, NULL,
                                  (size_t)256 << 20, true);
                check(cf_store_load_all(st, err, sizeof(err)), err);
        }
        cf_buf v;
        cf_buf_init(&v);
        int reads = 500000;
        size_t total = 0;
        double t0 = now_s();
        for (int i = 0; i < reads; i++) {
                cf_key k;
                make_key(&k, rng() % (uint64_t)nkeys);
                if (st) {
                        blob *o = cf_store_get(st, k.b + 2, k.len - 2);
                        total += o ? o->len : 0;
                } else {
                        check(cf_state_get(s, CF_COL_SESSION, k.b, k.len, &v,
                                           err, sizeof(err)),
                              err);
                        total += v.len;
                }
        }
        double dt = now_s() - t0;
        if (st) {
                cf_store_stats x;
                cf_store_stats_get(st, &x);
                if (x.reads)
                        fprintf(stderr, "store did %llu RocksDB reads\n",
                                (unsigned long long)x.reads);
        }
        if (!total)
                fprintf(stderr, "no data read\n");
        cf_buf_free(&v);
        cf_store_destroy(st);
        db_free(s, path);
        return reads / dt;
}

/* A scenario: what to run and with which switches. */
typedef struct scen {
        const char *name;
        const char *unit;
        char kind; /* 'w' writes, 'c' commits, 'g' gets */
        bool store;
        bool sync;
} scen;

static double scen_run(const scen *sc)
{
        switch (sc->kind) {
        case 'w':
                return run_writes(sc->store, sc->sync);
        case 'c':
                return run_commits(sc->sync);
        default:
                return run_gets(sc->store);
        }
}

static void report(const scen *sc)
{
        double *v = cf_calloc((size_t)opt.runs, sizeof(double));
        for (int r = 0; r < opt.runs; r++)
                v[r] = scen_run(sc);
        qsort(v, (size_t)opt.runs, sizeof(double), cmp_d);
        printf("%-36s %12.0f %-7s (min %.0f, max %.0f)\n", sc->name,
               v[opt.runs / 2], sc->unit, v[0], v[opt.runs - 1]);
        fflush(stdout);
        free(v);
}

static int usage(void)
{
        fprintf(stderr, "usage: bench_state [--runs N] [--batches N] "
                        "[--keys N] [--space N] [--commit-keys N] "
                        "[--value-bytes N] [--json] [--dir PATH]\n");
        return 2;
}

int main(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                int *iv = NULL;
                if (!strcmp(argv[i], "--runs"))
                        iv = &opt.runs;
                else if (!strcmp(argv[i], "--batches"))
                        iv = &opt.batches;
                else if (!strcmp(argv[i], "--keys"))
                        iv = &opt.keys;
                else if (!strcmp(argv[i], "--space"))
                        iv = &opt.space;
                else if (!strcmp(argv[i], "--commit-keys"))
                        iv = &opt.commit_keys;
                else if (!strcmp(argv[i], "--value-bytes"))
                        iv = &opt.value_bytes;
                else if (!strcmp(argv[i], "--json")) {
                        opt.json = true;
                        continue;
                } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
                        opt.dir = argv[++i];
                        continue;
                } else
                        return usage();
                if (i + 1 >= argc || (*iv = atoi(argv[++i])) <= 0)
                        return usage();
        }
        if (opt.value_bytes > 4000)
                return usage();
        if (opt.json) {
                /* The raw write loop only, synced as the pipeline's
                 * commits are: one JSON object per run. */
                for (int r = 0; r < opt.runs; r++) {
                        double puts = run_writes(false, true);
                        printf("{\"puts_per_s\":%.1f,\"bytes_per_s\":%.1f,"
                               "\"batch_puts\":%d,\"value_bytes\":%d}\n",
                               puts, last_bytes_per_s, opt.keys,
                               opt.value_bytes);
                        fflush(stdout);
                }
                return 0;
        }
        printf("bench_state: %d runs; writes: %d batches x %d puts, 16 B "
               "keys over %d, 64-200 B values; dir %s\n",
               opt.runs, opt.batches, opt.keys, opt.space, opt.dir);
        char commit_off[64], commit_on[64];
        snprintf(commit_off, sizeof(commit_off), "commit of %d puts, sync=off",
                 opt.commit_keys);
        snprintf(commit_on, sizeof(commit_on), "commit of %d puts, sync=on",
                 opt.commit_keys);
        const scen scens[] = {
                { "write raw batch, sync=off", "puts/s", 'w', false, false },
                { "write raw batch, sync=on", "puts/s", 'w', false, true },
                { "write via cf_store flush, sync=off", "puts/s", 'w', true,
                  false },
                { "write via cf_store flush, sync=on", "puts/s", 'w', true,
                  true },
                { commit_off, "us", 'c', false, false },
                { commit_on, "us", 'c', false, true },
                { "get from RocksDB (cf_state_get)", "gets/s", 'g', false,
                  false },
                { "get hit in cf_store", "gets/s", 'g', true, false },
        };
        for (size_t i = 0; i < sizeof(scens) / sizeof(scens[0]); i++)
                report(&scens[i]);
        return 0;
}
