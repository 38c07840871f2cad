/*
 * state.c: RocksDB behind the cf_state API (see state.h): options, column
 * families, reads, prefix scans, write batches, error translation.
 *
 * Options, for a write-heavy workload of small values (tens to hundreds of
 * bytes) written in one batch per commit and read back mostly through the
 * per-task write-back caches (store.c):
 * - LZ4 for every level but the last, ZSTD for the last, which holds most
 *   of the data and is rewritten least (Debian's librocksdb links both);
 * - one LRU block cache for all column families, sized by the caller, that
 *   also holds index and filter blocks, so it bounds them too (L0's are
 *   pinned, being read on every lookup); both are partitioned into 4 KiB
 *   blocks under a pinned top-level index, because a whole filter bigger
 *   than a cache shard is not kept and would be read again by every
 *   lookup;
 * - full-key bloom filters, 10 bits per key (~1% false positives): a cache
 *   miss on an absent key (a new charger, session or party) costs no disk
 *   read; the hash index inside data blocks speeds up the remaining gets;
 *   memtables have a whole-key bloom filter too (2% of their size), so
 *   such a miss skips their skip lists as well;
 * - memtables bounded in total by db_write_buffer_size over all column
 *   families, a quarter of it per column family, and the WAL bounded to
 *   four times that so that rarely written column families cannot pin old
 *   WAL files;
 * - level compaction with dynamic level sizes (bounded space amplification:
 *   "state stays bounded on disk"), two background jobs, 1 MiB
 *   bytes_per_sync to spread writeback, point-in-time WAL recovery (a torn
 *   last record is dropped, earlier batches are kept whole);
 * - RocksDB's own LOG files rotated and capped at four of 8 MiB.
 */
#include "state.h"

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "wire.h"

#define MIB ((size_t)1 << 20)

struct cf_state {
        rocksdb_t *db;
        rocksdb_column_family_handle_t *cf[CF_COL__CNT];
        rocksdb_column_family_handle_t **all; /* every handle we opened */
        size_t nall;
        rocksdb_options_t *opt;
        rocksdb_block_based_table_options_t *bbto;
        rocksdb_cache_t *cache;
        rocksdb_readoptions_t *ro;
        rocksdb_writeoptions_t *wo;      /* WAL on, no fsync */
        rocksdb_writeoptions_t *wo_sync; /* WAL on, fsync */
        char *dir;
        _Atomic uint64_t batches, entries, bytes; /* see cf_state_writes */
};

struct cf_batch {
        cf_state *s;
        rocksdb_writebatch_t *wb;
        cf_buf *tee; /* cf_batch_tee */
};

enum { LOG_PUT = 1, LOG_DELETE = 2, LOG_RANGE = 3, LOG_APPEND = 4 };

static void tee_op(cf_batch *b, int op, cf_col_t col, const void *k,
                   size_t klen, const void *v, size_t vlen)
{
        cf_buf_putc(b->tee, (uint8_t)op);
        cf_buf_putc(b->tee, (uint8_t)col);
        cf_put_bytes(b->tee, k, (uint32_t)klen);
        cf_put_bytes(b->tee, v, (uint32_t)vlen);
}

static const char *const cf_col_names[CF_COL__CNT] = {
        [CF_COL_META] = "meta",
        [CF_COL_DEDUP] = "dedup",
        [CF_COL_SESSION] = "session",
        [CF_COL_PENDING] = "pending",
        [CF_COL_OUTBOX] = "outbox",
        [CF_COL_TABLE] = "table",
        [CF_COL_BILL] = "bill",
        [CF_COL_INDEX] = "index",
        [CF_COL_SESSION_PARTS] = "session_parts",
        [CF_COL_DEDUP_PARTS] = "dedup_parts",
};

const char *cf_state_col_name(cf_col_t col)
{
        if ((unsigned)col >= CF_COL__CNT)
                return NULL;
        return cf_col_names[col];
}

/* Copies RocksDB's message (and what we were doing) into errstr, frees it
 * and returns CF_ERR_STATE. */
static cf_err_t state_err(char *rerr, const char *what, char *errstr,
                          size_t errstr_size)
{
        if (errstr && errstr_size)
                snprintf(errstr, errstr_size, "%s: %s", what,
                         rerr ? rerr : "unknown RocksDB error");
        rocksdb_free(rerr);
        return CF_ERR_STATE;
}

/* ------------------------------------------------------------------ keys */

static void key_append(cf_key *k, const void *p, size_t n)
{
        if (k->overflow || n > CF_KEY_MAX - k->len) {
                k->overflow = true;
                return;
        }
        memcpy(k->b + k->len, p, n);
        k->len += n;
}

void cf_key_init(cf_key *k, uint16_t task)
{
        k->b[0] = (uint8_t)(task >> 8);
        k->b[1] = (uint8_t)task;
        k->len = 2;
        k->overflow = false;
}

void cf_key_u8(cf_key *k, uint8_t v)
{
        key_append(k, &v, 1);
}

void cf_key_u64(cf_key *k, uint64_t v)
{
        uint8_t b[8];
        for (int i = 7; i >= 0; i--) {
                b[i] = (uint8_t)v;
                v >>= 8;
        }
        key_append(k, b, 8);
}

void cf_key_i64(cf_key *k, int64_t v)
{
        cf_key_u64(k, (uint64_t)v ^ ((uint64_t)1 << 63));
}

void cf_key_str(cf_key *k, const char *s)
{
        /* Both parts or neither: a string without its separator would make
         * the key ambiguous. */
        size_t n = strlen(s);
        if (k->overflow || n >= CF_KEY_MAX - k->len) {
                k->overflow = true;
                return;
        }
        key_append(k, s, n + 1);
}

void cf_key_bytes(cf_key *k, const void *p, size_t n)
{
        key_append(k, p, n);
}

uint64_t cf_be64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

uint16_t cf_key_task(const void *key, size_t klen)
{
        const uint8_t *p = key;
        (void)klen;
        return (uint16_t)((p[0] << 8) | p[1]);
}

/* ----------------------------------------------------------- database */

static void state_free(cf_state *s)
{
        for (size_t i = 0; i < s->nall; i++)
                rocksdb_column_family_handle_destroy(s->all[i]);
        free(s->all);
        if (s->db)
                rocksdb_close(s->db);
        if (s->opt)
                rocksdb_options_destroy(s->opt);
        /* The table factory holds its own copy of the table options and a
         * reference to the cache, so the order here does not matter. */
        if (s->bbto)
                rocksdb_block_based_options_destroy(s->bbto);
        if (s->cache)
                rocksdb_cache_destroy(s->cache);
        if (s->ro)
                rocksdb_readoptions_destroy(s->ro);
        if (s->wo)
                rocksdb_writeoptions_destroy(s->wo);
        if (s->wo_sync)
                rocksdb_writeoptions_destroy(s->wo_sync);
        free(s->dir);
        free(s);
}

/* The merge operator of every column family: appends (cf_batch_append).
 * A full merge is the existing value (if any) and the operands one after
 * the other; a partial merge, the operands one after the other. */
static char *concat(const char *first, size_t first_len, const char *const *ops,
                    const size_t *lens, int n, unsigned char *success,
                    size_t *out_len)
{
        size_t total = first_len;
        for (int i = 0; i < n; i++)
                total += lens[i];
        char *out = malloc(total ? total : 1);
        if (!out) {
                *success = 0;
                return NULL;
        }
        size_t at = 0;
        if (first_len) {
                memcpy(out, first, first_len);
                at = first_len;
        }
        for (int i = 0; i < n; i++) {
                memcpy(out + at, ops[i], lens[i]);
                at += lens[i];
        }
        *out_len = total;
        *success = 1;
        return out;
}

static char *append_full(void *state, const char *key, size_t klen,
                         const char *existing, size_t elen,
                         const char *const *ops, const size_t *lens, int n,
                         unsigned char *success, size_t *out_len)
{
        (void)state;
        (void)key;
        (void)klen;
        return concat(existing, existing ? elen : 0, ops, lens, n, success,
                      out_len);
}

static char *append_partial(void *state, const char *key, size_t klen,
                            const char *const *ops, const size_t *lens, int n,
                            unsigned char *success, size_t *out_len)
{
        (void)state;
        (void)key;
        (void)klen;
        return concat(NULL, 0, ops, lens, n, success, out_len);
}

static void append_free(void *state, const char *v, size_t len)
{
        (void)state;
        (void)len;
        free((void *)v);
}

static void append_destroy(void *state)
{
        (void)state;
}

static const char *append_name(void *state)
{
        (void)state;
        return "chargeflow.append";
}

static void state_options(cf_state *s, const cf_state_conf *conf)
{
        size_t cache = conf && conf->block_cache_bytes ? conf->block_cache_bytes
                                                       : 64 * MIB;
        size_t wbuf = conf && conf->write_buffer_bytes
                          ? conf->write_buffer_bytes
                          : 64 * MIB;
        size_t per_cf = wbuf / 4 < MIB ? MIB : wbuf / 4;

        s->cache = rocksdb_cache_create_lru(cache);
        s->bbto = rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_block_cache(s->bbto, s->cache);
        /* The table options take ownership of the filter policy. */
        rocksdb_block_based_options_set_filter_policy(
            s->bbto, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_whole_key_filtering(s->bbto, 1);
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->bbto,
                                                                      1);
        rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
            s->bbto, 1);
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
            s->bbto, 1);
        /* Partitioned index and filters: a file's index and bloom filter
         * are cut into blocks of metadata_block_size, read and cached like
         * data blocks, under a small top-level index that stays pinned.
         * Whole ones grow with the file (a 100 MB file of the users table
         * has a filter of about 2 MB), and a block bigger than a shard of
         * the LRU cache (1/64 of it) is dropped as soon as it is used: a
         * point read then reads and checksums the whole filter again,
         * which made every read of a large column family a disk read. */
        rocksdb_block_based_options_set_index_type(
            s->bbto,
            rocksdb_block_based_table_index_type_two_level_index_search);
        rocksdb_block_based_options_set_partition_filters(s->bbto, 1);
        rocksdb_block_based_options_set_metadata_block_size(s->bbto, 4096);
        rocksdb_block_based_options_set_pin_top_level_index_and_filter(s->bbto,
                                                                       1);
        rocksdb_block_based_options_set_format_version(s->bbto, 5);
        rocksdb_block_based_options_set_data_block_index_type(
            s->bbto,
            rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
        rocksdb_block_based_options_set_data_block_hash_ratio(s->bbto, 0.75);

        s->opt = rocksdb_options_create();
        rocksdb_options_set_create_if_missing(s->opt, 1);
        rocksdb_options_set_create_missing_column_families(s->opt, 1);
        rocksdb_options_set_block_based_table_factory(s->opt, s->bbto);
        rocksdb_options_set_compression(s->opt, rocksdb_lz4_compression);
        rocksdb_options_set_bottommost_compression(s->opt,
                                                   rocksdb_zstd_compression);
        rocksdb_options_set_write_buffer_size(s->opt, per_cf);
        rocksdb_options_set_max_write_buffer_number(s->opt, 3);
        rocksdb_options_set_db_write_buffer_size(s->opt, wbuf);
        rocksdb_options_set_max_total_wal_size(s->opt, 4 * wbuf);
        /* A bloom filter per memtable (2% of its size) over whole keys:
         * a read of an absent key (a cache miss on a new user, badge,
         * charger or session) skips the memtables' skip lists. */
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opt, 0.02);
        rocksdb_options_set_memtable_whole_key_filtering(s->opt, 1);
        rocksdb_options_set_level_compaction_dynamic_level_bytes(s->opt, 1);
        rocksdb_options_set_max_background_jobs(s->opt, 2);
        rocksdb_options_set_bytes_per_sync(s->opt, MIB);
        rocksdb_options_set_wal_recovery_mode(s->opt,
                                              rocksdb_point_in_time_recovery);
        rocksdb_options_set_keep_log_file_num(s->opt, 4);
        rocksdb_options_set_merge_operator(
            s->opt, rocksdb_mergeoperator_create(NULL, append_destroy,
                                                 append_full, append_partial,
                                                 append_free, append_name));
        rocksdb_options_set_max_log_file_size(s->opt, 8 * MIB);

        s->ro = rocksdb_readoptions_create();
        s->wo = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(s->wo, 0);
        s->wo_sync = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(s->wo_sync, 1);
}

cf_err_t cf_state_open(const char *dir, const cf_state_conf *conf,
                       cf_state **sp, char *errstr, size_t errstr_size)
{
        cf_state *s = cf_calloc(1, sizeof(*s));
        char **exist = NULL, *rerr = NULL;
        size_t nexist = 0, n = 0;
        const char **names = NULL;
        const rocksdb_options_t **opts = NULL;
        cf_err_t err = CF_OK;

        *sp = NULL;
        s->dir = cf_strdup(dir);
        state_options(s, conf);

        /* Every column family in the database must be named at open. A
         * database that does not exist yet fails the listing: ignore that,
         * the open below creates it (or reports the real problem). */
        exist = rocksdb_list_column_families(s->opt, dir, &nexist, &rerr);
        if (rerr) {
                /* Even failing, it returns a (zero-length) array. */
                if (exist)
                        rocksdb_list_column_families_destroy(exist, nexist);
                rocksdb_free(rerr);
                rerr = NULL;
                exist = NULL;
                nexist = 0;
        }

        names = cf_calloc(1 + CF_COL__CNT + nexist, sizeof(*names));
        names[n++] = "default";
        for (int c = 0; c < CF_COL__CNT; c++)
                names[n++] = cf_col_names[c];
        for (size_t i = 0; i < nexist; i++) {
                bool known = false;
                for (size_t j = 0; j < n && !known; j++)
                        known = !strcmp(exist[i], names[j]);
                if (!known)
                        names[n++] = exist[i];
        }
        opts = cf_calloc(n, sizeof(*opts));
        for (size_t i = 0; i < n; i++)
                opts[i] = s->opt;
        s->all = cf_calloc(n, sizeof(*s->all));

        s->db = rocksdb_open_column_families(s->opt, dir, (int)n, names, opts,
                                             s->all, &rerr);
        if (rerr) {
                s->db = NULL;
                err = state_err(rerr, dir, errstr, errstr_size);
                goto fail;
        }
        s->nall = n;
        for (int c = 0; c < CF_COL__CNT; c++)
                s->cf[c] = s->all[1 + c];
        goto done;

fail:
        state_free(s);
        s = NULL;
done:
        if (exist)
                rocksdb_list_column_families_destroy(exist, nexist);
        free(names);
        free(opts);
        *sp = s;
        return err;
}

void cf_state_close(cf_state *s)
{
        if (!s)
                return;
        state_free(s);
}

const char *cf_state_dir(const cf_state *s)
{
        return s->dir;
}

cf_err_t cf_state_get(cf_state *s, cf_col_t col, const void *key, size_t klen,
                      cf_buf *val, char *errstr, size_t errstr_size)
{
        char *rerr = NULL;
        rocksdb_pinnableslice_t *ps =
            rocksdb_get_pinned_cf(s->db, s->ro, s->cf[col], key, klen, &rerr);
        val->len = 0;
        if (rerr)
                return state_err(rerr, "get", errstr, errstr_size);
        if (!ps)
                return CF_ERR_NOT_FOUND;
        size_t vlen = 0;
        const char *v = rocksdb_pinnableslice_value(ps, &vlen);
        cf_buf_put(val, v, vlen);
        rocksdb_pinnableslice_destroy(ps);
        return CF_OK;
}

cf_err_t cf_state_scan_range(cf_state *s, cf_col_t col, const void *lo,
                             size_t lolen, const void *hi, size_t hilen,
                             cf_state_scan_cb *cb, void *opaque, char *errstr,
                             size_t errstr_size)
{
        /* The read options keep a pointer to hi, which outlives the
         * iterator. */
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
        if (hi)
                rocksdb_readoptions_set_iterate_upper_bound(ro, hi, hilen);
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(s->db, ro, s->cf[col]);
        if (lo && lolen)
                rocksdb_iter_seek(it, lo, lolen);
        else
                rocksdb_iter_seek_to_first(it);
        for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
                size_t kl = 0, vl = 0;
                const char *k = rocksdb_iter_key(it, &kl);
                const char *v = rocksdb_iter_value(it, &vl);
                if (cb(opaque, (const uint8_t *)k, kl, (const uint8_t *)v, vl))
                        break;
        }
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(ro);
        if (rerr)
                return state_err(rerr, "scan", errstr, errstr_size);
        return CF_OK;
}

cf_err_t cf_state_scan(cf_state *s, cf_col_t col, const void *prefix,
                       size_t plen, cf_state_scan_cb *cb, void *opaque,
                       char *errstr, size_t errstr_size)
{
        /* The smallest key above every key starting with prefix: drop the
         * trailing 0xff bytes and increment the last remaining one. An
         * all-0xff (or empty) prefix needs no bound: every key at or after
         * it starts with it. */
        uint8_t *hi = NULL;
        size_t hilen = plen;
        if (plen) {
                hi = cf_malloc(plen);
                memcpy(hi, prefix, plen);
                while (hilen && hi[hilen - 1] == 0xff)
                        hilen--;
                if (hilen)
                        hi[hilen - 1]++;
        }
        cf_err_t err =
            cf_state_scan_range(s, col, prefix, plen, hilen ? hi : NULL, hilen,
                                cb, opaque, errstr, errstr_size);
        free(hi);
        return err;
}

cf_err_t cf_state_drop_task(cf_state *s, uint16_t task, char *errstr,
                            size_t errstr_size)
{
        if (task > CF_TASK_MAX) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size, "task id %u is reserved",
                                 (unsigned)task);
                return CF_ERR_ARG;
        }
        uint8_t lo[2] = { (uint8_t)(task >> 8), (uint8_t)task };
        uint16_t next = (uint16_t)(task + 1);
        uint8_t hi[2] = { (uint8_t)(next >> 8), (uint8_t)next };
        cf_batch *b = cf_batch_new(s);
        for (int c = 0; c < CF_COL__CNT; c++)
                cf_batch_delete_range(b, (cf_col_t)c, lo, 2, hi, 2);
        cf_err_t err = cf_state_write(s, b, true, errstr, errstr_size);
        cf_batch_destroy(b);
        return err;
}

/* -------------------------------------------------------------- batches */

cf_batch *cf_batch_new(cf_state *s)
{
        cf_batch *b = cf_malloc(sizeof(*b));
        b->s = s;
        b->wb = rocksdb_writebatch_create();
        b->tee = NULL;
        return b;
}

void cf_batch_destroy(cf_batch *b)
{
        if (!b)
                return;
        rocksdb_writebatch_destroy(b->wb);
        free(b);
}

void cf_batch_put(cf_batch *b, cf_col_t col, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
        rocksdb_writebatch_put_cf(b->wb, b->s->cf[col], key, klen, val, vlen);
        if (b->tee)
                tee_op(b, LOG_PUT, col, key, klen, val, vlen);
}

void cf_batch_delete(cf_batch *b, cf_col_t col, const void *key, size_t klen)
{
        rocksdb_writebatch_delete_cf(b->wb, b->s->cf[col], key, klen);
        if (b->tee)
                tee_op(b, LOG_DELETE, col, key, klen, NULL, 0);
}

void cf_batch_delete_range(cf_batch *b, cf_col_t col, const void *lo,
                           size_t lolen, const void *hi, size_t hilen)
{
        rocksdb_writebatch_delete_range_cf(b->wb, b->s->cf[col], lo, lolen, hi,
                                           hilen);
        if (b->tee)
                tee_op(b, LOG_RANGE, col, lo, lolen, hi, hilen);
}

void cf_batch_append(cf_batch *b, cf_col_t col, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
        rocksdb_writebatch_merge_cf(b->wb, b->s->cf[col], key, klen, val, vlen);
        if (b->tee)
                tee_op(b, LOG_APPEND, col, key, klen, val, vlen);
}

void cf_batch_tee(cf_batch *b, cf_buf *log)
{
        b->tee = log;
}

/* Walks a batch-log encoding; with b NULL only checks it. */
static bool walk_log(cf_batch *b, const uint8_t *p, size_t n)
{
        cf_wrd r;
        cf_wrd_init(&r, p, n);
        while (r.ok && r.p < r.end) {
                if (r.end - r.p < 2)
                        return false;
                int op = r.p[0], col = r.p[1];
                r.p += 2;
                uint32_t kl, vl;
                const uint8_t *k = cf_get_bytes(&r, &kl);
                const uint8_t *v = cf_get_bytes(&r, &vl);
                if (!r.ok || col >= CF_COL__CNT || op < LOG_PUT ||
                    op > LOG_APPEND)
                        return false;
                if (!b)
                        continue;
                if (op == LOG_PUT)
                        cf_batch_put(b, (cf_col_t)col, k, kl, v, vl);
                else if (op == LOG_DELETE)
                        cf_batch_delete(b, (cf_col_t)col, k, kl);
                else if (op == LOG_APPEND)
                        cf_batch_append(b, (cf_col_t)col, k, kl, v, vl);
                else
                        cf_batch_delete_range(b, (cf_col_t)col, k, kl, v, vl);
        }
        return r.ok;
}

cf_err_t cf_batch_add_log(cf_batch *b, const uint8_t *p, size_t n, char *errstr,
                          size_t errstr_size)
{
        if (!walk_log(NULL, p, n)) {
                snprintf(errstr, errstr_size,
                         "batch log: not a valid encoding");
                return CF_ERR_STATE;
        }
        walk_log(b, p, n);
        return CF_OK;
}

/* ---------------------------------------------------------- log batches */

/* One operation of a log batch; its key and value at offsets of g->buf
 * (which moves as it grows). */
typedef struct lb_op {
        size_t koff, voff;
        uint32_t klen, vlen;
        uint64_t hash;    /* of the column family and key (not for a range) */
        int64_t prev;     /* the operation before it on the same key that it
                           * keeps (it is an append), else -1 */
        int64_t col_prev; /* the operation before it in the same column
                           * family, else -1 (what a range delete walks) */
        uint8_t op, col;
        bool dead; /* made void by a later operation */
} lb_op;

/* Memory for the encodings that a log batch keeps once emptied. */
#define LB_KEEP_BYTES ((size_t)64 << 20)

struct cf_logbatch {
        cf_buf buf; /* the encodings added */
        lb_op *ops;
        size_t n, cap;
        /* Open addressing over the keys: index + 1 in ops of the last
         * operation on a key, 0 for an empty slot; never more than half
         * full. */
        uint32_t *slot;
        size_t nslot; /* a power of two */
        size_t nkeys;
        /* The last operation in each column family, else -1: a range
         * delete (one per task and commit in the outbox) looks only at
         * the operations of its own column family, not at all before it. */
        int64_t col_last[256];
};

static void lb_reset_cols(cf_logbatch *g)
{
        for (size_t c = 0; c < sizeof(g->col_last) / sizeof(g->col_last[0]);
             c++)
                g->col_last[c] = -1;
}

cf_logbatch *cf_logbatch_new(void)
{
        cf_logbatch *g = cf_calloc(1, sizeof(*g));
        cf_buf_init(&g->buf);
        lb_reset_cols(g);
        return g;
}

void cf_logbatch_destroy(cf_logbatch *g)
{
        if (!g)
                return;
        cf_buf_free(&g->buf);
        free(g->ops);
        free(g->slot);
        free(g);
}

size_t cf_logbatch_bytes(const cf_logbatch *g)
{
        return g->buf.len;
}

static int lb_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
        int c = memcmp(a, b, alen < blen ? alen : blen);
        if (c)
                return c;
        return alen < blen ? -1 : alen > blen;
}

/* The slot of op i's key: the one holding an operation on the same key,
 * else the empty one where it goes. */
static uint32_t *lb_find(cf_logbatch *g, const lb_op *o)
{
        size_t mask = g->nslot - 1;
        for (size_t at = o->hash & mask;; at = (at + 1) & mask) {
                uint32_t s = g->slot[at];
                if (!s)
                        return &g->slot[at];
                const lb_op *e = &g->ops[s - 1];
                if (e->hash == o->hash && e->col == o->col &&
                    e->klen == o->klen &&
                    !memcmp(g->buf.p + e->koff, g->buf.p + o->koff, o->klen))
                        return &g->slot[at];
        }
}

static void lb_grow(cf_logbatch *g)
{
        uint32_t *old = g->slot;
        size_t nold = g->nslot;
        g->nslot = nold ? 2 * nold : 1024;
        g->slot = cf_calloc(g->nslot, sizeof(*g->slot));
        for (size_t i = 0; i < nold; i++)
                if (old[i])
                        *lb_find(g, &g->ops[old[i] - 1]) = old[i];
        free(old);
}

/* Records operation i (g->ops[i], already in place), making void what it
 * replaces. */
static void lb_note(cf_logbatch *g, size_t i)
{
        lb_op *o = &g->ops[i];
        o->prev = -1;
        if (o->op == LOG_RANGE) {
                /* Every earlier operation on a key of [key, value) in the
                 * column family; the range delete itself stays (for what
                 * is in the database already). */
                const uint8_t *lo = g->buf.p + o->koff,
                              *hi = g->buf.p + o->voff;
                for (int64_t j = o->col_prev; j >= 0; j = g->ops[j].col_prev) {
                        lb_op *e = &g->ops[j];
                        const uint8_t *k = g->buf.p + e->koff;
                        if (!e->dead && e->op != LOG_RANGE &&
                            e->col == o->col &&
                            lb_cmp(k, e->klen, lo, o->klen) >= 0 &&
                            lb_cmp(k, e->klen, hi, o->vlen) < 0)
                                e->dead = true;
                }
                return;
        }
        if (2 * (g->nkeys + 1) > g->nslot)
                lb_grow(g);
        uint32_t *s = lb_find(g, o);
        if (*s) {
                int64_t j = (int64_t)*s - 1;
                if (o->op == LOG_APPEND) {
                        o->prev = j;
                } else {
                        for (; j >= 0; j = g->ops[j].prev)
                                g->ops[j].dead = true;
                }
        } else {
                g->nkeys++;
        }
        *s = (uint32_t)(i + 1);
}

cf_err_t cf_logbatch_add(cf_logbatch *g, const uint8_t *p, size_t n,
                         char *errstr, size_t errstr_size)
{
        if (!walk_log(NULL, p, n)) {
                snprintf(errstr, errstr_size,
                         "batch log: not a valid encoding");
                return CF_ERR_STATE;
        }
        size_t base = g->buf.len;
        cf_buf_put(&g->buf, p, n);
        cf_wrd r;
        cf_wrd_init(&r, g->buf.p + base, n);
        while (r.p < r.end) {
                int op = r.p[0], col = r.p[1];
                r.p += 2;
                uint32_t kl, vl;
                const uint8_t *k = cf_get_bytes(&r, &kl);
                const uint8_t *v = cf_get_bytes(&r, &vl);
                if (g->n == g->cap) {
                        g->cap = g->cap ? 2 * g->cap : 256;
                        g->ops = cf_realloc(g->ops, g->cap * sizeof(*g->ops));
                }
                lb_op *o = &g->ops[g->n];
                o->op = (uint8_t)op;
                o->col = (uint8_t)col;
                o->koff = (size_t)(k - g->buf.p);
                o->klen = kl;
                o->voff = (size_t)(v - g->buf.p);
                o->vlen = vl;
                o->dead = false;
                o->col_prev = g->col_last[col];
                g->col_last[col] = (int64_t)g->n;
                o->hash = op == LOG_RANGE
                              ? 0
                              : cf_hash64(k, kl) ^
                                    ((uint64_t)col * 0x9e3779b97f4a7c15ULL);
                lb_note(g, g->n++);
        }
        return CF_OK;
}

void cf_logbatch_move(cf_logbatch *g, cf_batch *b)
{
        for (size_t i = 0; i < g->n; i++) {
                const lb_op *o = &g->ops[i];
                if (o->dead)
                        continue;
                const uint8_t *k = g->buf.p + o->koff, *v = g->buf.p + o->voff;
                cf_col_t col = (cf_col_t)o->col;
                if (o->op == LOG_PUT)
                        cf_batch_put(b, col, k, o->klen, v, o->vlen);
                else if (o->op == LOG_DELETE)
                        cf_batch_delete(b, col, k, o->klen);
                else if (o->op == LOG_APPEND)
                        cf_batch_append(b, col, k, o->klen, v, o->vlen);
                else
                        cf_batch_delete_range(b, col, k, o->klen, v, o->vlen);
        }
        g->buf.len = 0;
        /* A big commit's copy is not kept for the next ones. */
        if (g->buf.cap > LB_KEEP_BYTES) {
                cf_buf_free(&g->buf);
                cf_buf_init(&g->buf);
        }
        g->n = 0;
        g->nkeys = 0;
        lb_reset_cols(g);
        if (g->slot)
                memset(g->slot, 0, g->nslot * sizeof(*g->slot));
}

void cf_batch_clear(cf_batch *b)
{
        rocksdb_writebatch_clear(b->wb);
}

int cf_batch_count(cf_batch *b)
{
        return rocksdb_writebatch_count(b->wb);
}

size_t cf_batch_bytes(cf_batch *b)
{
        size_t n = 0;
        (void)rocksdb_writebatch_data(b->wb, &n);
        return n;
}

cf_err_t cf_state_write(cf_state *s, cf_batch *b, bool sync, char *errstr,
                        size_t errstr_size)
{
        char *rerr = NULL;
        rocksdb_write(s->db, sync ? s->wo_sync : s->wo, b->wb, &rerr);
        if (rerr)
                return state_err(rerr, "write", errstr, errstr_size);
        atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->entries, (uint64_t)cf_batch_count(b),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes, (uint64_t)cf_batch_bytes(b),
                                  memory_order_relaxed);
        return CF_OK;
}

void cf_state_write_stats(const cf_state *s, cf_state_writes *out)
{
        out->batches = atomic_load_explicit(&s->batches, memory_order_relaxed);
        out->entries = atomic_load_explicit(&s->entries, memory_order_relaxed);
        out->bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed);
}

int64_t cf_proc_write_bytes(void)
{
        FILE *f = fopen("/proc/self/io", "r");
        char line[128];
        int64_t v = -1;
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "write_bytes:", 12)) {
                        v = strtoll(line + 12, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

uint64_t cf_state_col_bytes(cf_state *s, cf_col_t col)
{
        uint64_t sst = 0, mem = 0;
        if (rocksdb_property_int_cf(s->db, s->cf[col],
                                    "rocksdb.total-sst-files-size", &sst))
                sst = 0;
        if (rocksdb_property_int_cf(s->db, s->cf[col],
                                    "rocksdb.cur-size-all-mem-tables", &mem))
                mem = 0;
        return sst + mem;
}
