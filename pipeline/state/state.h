/*
 * state.h: the process's one RocksDB database, column families by kind,
 * task-prefixed keys, atomic write batches (DESIGN section 5).
 *
 * One cf_state per process. Every key starts with the owning task's id as
 * two big-endian bytes (see cf_key below), so a task's state can be listed
 * with a prefix scan, dropped with cf_state_drop_task() or moved by copying
 * its prefix. A commit is one cf_batch written with cf_state_write(): the
 * task's state changes, input offsets (CF_COL_META) and outbox entries
 * (CF_COL_OUTBOX) become visible together or not at all, also after a crash
 * (the write-ahead log is always on).
 *
 * Errors: every RocksDB failure is translated into CF_ERR_STATE with
 * RocksDB's message copied into the caller's errstr. Nothing in this module
 * aborts on an I/O error: a disk that becomes full or read-only makes
 * cf_state_write() return CF_ERR_STATE. RocksDB then refuses further writes
 * (it enters its read-only "background error" mode); the caller must treat
 * the task's in-memory state as lost, close the database and reopen it,
 * which recovers every batch whose cf_state_write() returned CF_OK.
 *
 * Threads: a cf_state may be shared by the threads running tasks: get, scan,
 * write and drop_task may be called concurrently (RocksDB is thread-safe).
 * open and close are not: call them with no other call in flight. A cf_batch
 * belongs to one thread at a time (one per task).
 */
#ifndef CF_STATE_H
#define CF_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mem.h"

/* Column families, one per kind of state. The names in the database are
 * those of cf_state_col_name(); CF_COL__CNT is not a column family. */
typedef enum cf_col {
        CF_COL_META = 0,      /* input offsets, output sequence numbers, task
                               * metadata */
        CF_COL_DEDUP,         /* dedup high-water marks and id windows */
        CF_COL_SESSION,       /* open sessions per charger and connector */
        CF_COL_PENDING,       /* records waiting (orphans, unknown sites) */
        CF_COL_OUTBOX,        /* outputs committed but not known as delivered */
        CF_COL_TABLE,         /* sites and users tables */
        CF_COL_BILL,          /* statement aggregates per party and period */
        CF_COL_INDEX,         /* secondary indexes (e.g. time-ordered timers) */
        CF_COL_SESSION_PARTS, /* sessions, stored in parts (store.h) */
        CF_COL_DEDUP_PARTS,   /* dedup windows, stored in parts */
        CF_COL__CNT
} cf_col_t;

/* Returns the column family's name in the database ("meta", "dedup", ...),
 * or NULL when col is out of range. */
const char *cf_state_col_name(cf_col_t col);

/* ------------------------------------------------------------------ keys */

/* Task ids are 0..CF_TASK_MAX. 0xffff is reserved so that every task's key
 * range has a finite exclusive upper bound (the next task's prefix). The
 * runtime maps (sub-topology, partition) to a task id. */
#define CF_TASK_MAX 0xfffeu
/* Largest key cf_key can build. Longer keys set the overflow flag. */
#define CF_KEY_MAX 512

/* A key under construction: task prefix, then kind-specific parts. The
 * encodings keep bytewise order equal to the natural order of the parts
 * (big-endian integers, sign-flipped signed integers, NUL-terminated
 * strings), so prefix and range scans walk keys in a meaningful order.
 *
 * A part that does not fit sets `overflow` and is not written: check
 * cf_key_ok() before using a key built from input data (ids come from
 * producers; an oversized id must become a rejected record, not a crash and
 * not a truncated key that collides with another one). Plain struct on the
 * stack; nothing to free. */
typedef struct cf_key {
        size_t len;
        bool overflow;
        uint8_t b[CF_KEY_MAX];
} cf_key;

/* Starts k with task as two big-endian bytes. */
void cf_key_init(cf_key *k, uint16_t task);
/* Append one byte (e.g. a record-kind tag inside a column family). */
void cf_key_u8(cf_key *k, uint8_t v);
/* Append v as 8 big-endian bytes. */
void cf_key_u64(cf_key *k, uint64_t v);
/* Append v as 8 big-endian bytes with the sign bit flipped, so that
 * negative values sort before positive ones. */
void cf_key_i64(cf_key *k, int64_t v);
/* Append the bytes of NUL-terminated s and then one 0 byte. The separator
 * makes the encoding prefix-free: ("ab","c") and ("a","bc") differ. */
void cf_key_str(cf_key *k, const char *s);
/* Append n raw bytes (fixed-length fields only: no separator). */
void cf_key_bytes(cf_key *k, const void *p, size_t n);
/* True when no part overflowed. */
static inline bool cf_key_ok(const cf_key *k)
{
        return !k->overflow;
}

/* Reads 8 big-endian bytes (the inverse of cf_key_u64). */
uint64_t cf_be64(const uint8_t *p);
/* Returns the task id of a stored key (its first two bytes); klen >= 2. */
uint16_t cf_key_task(const void *key, size_t klen);

/* ----------------------------------------------------------- database */

typedef struct cf_state cf_state;
typedef struct cf_batch cf_batch;

/* Tuning; zero fields take the defaults shown. */
typedef struct cf_state_conf {
        /* LRU block cache shared by all column families, holding data,
         * index and filter blocks (so it bounds all three). 64 MiB. */
        size_t block_cache_bytes;
        /* Total memtable memory over all column families (RocksDB's
         * db_write_buffer_size); a column family's memtable is flushed
         * earlier when the total is reached. 64 MiB. */
        size_t write_buffer_bytes;
} cf_state_conf;

/* Opens (creating when missing) the database in dir and every column family
 * of cf_col_t, creating the missing ones; column families found in the
 * database that this build does not know are opened and left alone. conf
 * may be NULL for the defaults. On success *sp is the handle, to be closed
 * with cf_state_close(). Fails with CF_ERR_STATE (RocksDB's message in
 * errstr: directory not writable, locked by another process, corrupt)
 * leaving *sp NULL. Not thread-safe against other calls on the same dir. */
cf_err_t cf_state_open(const char *dir, const cf_state_conf *conf,
                       cf_state **sp, char *errstr, size_t errstr_size);

/* Closes the database and frees s; cf_state_close(NULL) is a no-op. Closing
 * is not needed for durability: a batch is in the WAL once cf_state_write()
 * returned CF_OK. No other call may be in flight; batches must be
 * destroyed first. */
void cf_state_close(cf_state *s);

/* Returns the directory s was opened on (owned by s). */
const char *cf_state_dir(const cf_state *s);

/* Reads key in col into val (val->len is reset, then the value appended).
 * Returns CF_OK, CF_ERR_NOT_FOUND when the key is absent (val empty) or
 * CF_ERR_STATE with errstr filled. Any thread. */
cf_err_t cf_state_get(cf_state *s, cf_col_t col, const void *key, size_t klen,
                      cf_buf *val, char *errstr, size_t errstr_size);

/* Scan callback: key and value are valid only during the call. Return 0 to
 * go on, anything else to stop the scan (which then returns CF_OK). The
 * callback must not close s; it may call any other function of this
 * module (the scan reads a consistent snapshot taken when it started). */
typedef int(cf_state_scan_cb)(void *opaque, const uint8_t *key, size_t klen,
                              const uint8_t *val, size_t vlen);

/* Calls cb for every key of col that starts with prefix (plen may be 0 for
 * the whole column family), in bytewise key order. Returns CF_OK or
 * CF_ERR_STATE with errstr filled. Any thread. */
cf_err_t cf_state_scan(cf_state *s, cf_col_t col, const void *prefix,
                       size_t plen, cf_state_scan_cb *cb, void *opaque,
                       char *errstr, size_t errstr_size);

/* Like cf_state_scan over the keys k with lo <= k < hi; lo NULL (or lolen 0)
 * starts at the first key, hi NULL means no upper bound. */
cf_err_t cf_state_scan_range(cf_state *s, cf_col_t col, const void *lo,
                             size_t lolen, const void *hi, size_t hilen,
                             cf_state_scan_cb *cb, void *opaque, char *errstr,
                             size_t errstr_size);

/* Deletes every key of task in every column family, in one synced batch.
 * Returns CF_ERR_ARG when task > CF_TASK_MAX, CF_ERR_STATE on a RocksDB
 * error. Uses range tombstones: cheap now, space is reclaimed by later
 * compactions. The caller makes sure no one else writes the task's keys
 * meanwhile (the task is not running). */
cf_err_t cf_state_drop_task(cf_state *s, uint16_t task, char *errstr,
                            size_t errstr_size);

/* -------------------------------------------------------------- batches */

/* A batch of writes to s, applied atomically by cf_state_write(). The batch
 * copies keys and values. It refers to s's column family handles: destroy it
 * before closing s. Never NULL (allocation failure aborts). */
cf_batch *cf_batch_new(cf_state *s);
/* Frees b; cf_batch_destroy(NULL) is a no-op. */
void cf_batch_destroy(cf_batch *b);
void cf_batch_put(cf_batch *b, cf_col_t col, const void *key, size_t klen,
                  const void *val, size_t vlen);
void cf_batch_delete(cf_batch *b, cf_col_t col, const void *key, size_t klen);
/* Appends val to the value of key (a RocksDB merge, with a merge operator
 * that concatenates): a read then returns the value and every appended
 * part after it; on an absent key, the parts appended since. A put or
 * delete replaces them all. Costs a write of val alone. */
void cf_batch_append(cf_batch *b, cf_col_t col, const void *key, size_t klen,
                     const void *val, size_t vlen);
/* Deletes the keys k with lo <= k < hi. */
void cf_batch_delete_range(cf_batch *b, cf_col_t col, const void *lo,
                           size_t lolen, const void *hi, size_t hilen);
/* Empties b for reuse (keeps its memory). */
void cf_batch_clear(cf_batch *b);

/* While log is set (NULL: stop), every put, delete and range delete added
 * to b is also appended to log in the batch-log encoding: per operation
 * one byte (1 put, 2 delete, 3 range delete, 4 append), one byte column
 * family, then
 * the key (or lo) and the value (or hi) as wire.h byte strings (a delete
 * has an empty value). The task log (pipeline/task/tasklog.c) ships a
 * commit to Kafka in this form. */
void cf_batch_tee(cf_batch *b, cf_buf *log);

/* Adds the operations of a batch-log encoding (above) to b. CF_ERR_STATE
 * with errstr when p is not a valid encoding (nothing is then added: the
 * operations are checked first). */
cf_err_t cf_batch_add_log(cf_batch *b, const uint8_t *p, size_t n, char *errstr,
                          size_t errstr_size);
/* A log batch: operations in the batch-log encoding, added one encoding
 * (one task-log commit) after the other, that go into a cf_batch as one,
 * less those that a later operation of the log batch makes void: a put,
 * delete or append of a key is left out when a later put or delete of the
 * same key, or a later range delete over it, follows; appends before a
 * later append are kept. The batch then gives the same key/value state as
 * every operation in order (what a replay of many commits writes, without
 * the values that a later commit replaces). Owns a copy of what is added;
 * one thread at a time. Never NULL (allocation failure aborts). */
typedef struct cf_logbatch cf_logbatch;
cf_logbatch *cf_logbatch_new(void);
/* Frees g; cf_logbatch_destroy(NULL) is a no-op. */
void cf_logbatch_destroy(cf_logbatch *g);
/* Adds the operations of the encoding p. CF_ERR_STATE with errstr when p
 * is not a valid encoding (nothing is then added), as cf_batch_add_log. */
cf_err_t cf_logbatch_add(cf_logbatch *g, const uint8_t *p, size_t n,
                         char *errstr, size_t errstr_size);
/* Bytes added since g was last empty (its memory, roughly). */
size_t cf_logbatch_bytes(const cf_logbatch *g);
/* Adds the operations that count, in their order, to b, and empties g
 * (keeping up to 64 MiB of its memory for what comes next). */
void cf_logbatch_move(cf_logbatch *g, cf_batch *b);

/* Number of operations in b. */
int cf_batch_count(cf_batch *b);
/* Bytes of b's serialized form (what the WAL receives, plus a header). */
size_t cf_batch_bytes(cf_batch *b);

/* Applies b atomically: after CF_OK every operation is visible, and stays
 * so after a crash of this process (the batch is in the WAL, in the OS page
 * cache at least). With sync the WAL is also fsync'ed before returning, so
 * the batch also survives an OS crash or power loss: use it at commits whose
 * outputs are about to be produced. Does not change b (clear it yourself).
 * Returns CF_OK or CF_ERR_STATE with errstr (disk full, unwritable, database
 * in read-only mode after an earlier error). After an error b is not visible
 * in this process; after a reopen it is either wholly there (only the fsync
 * failed but the WAL record was complete) or wholly absent, never in part.
 * Any thread. */
cf_err_t cf_state_write(cf_state *s, cf_batch *b, bool sync, char *errstr,
                        size_t errstr_size);

/* What cf_state_write has applied since open: batches, their entries (puts
 * and deletes) and their bytes (RocksDB's WriteBatch encoding, which is
 * what goes to the WAL). Compaction and flushes are not included (see
 * cf_proc_write_bytes for the process's disk writes). Any thread. */
typedef struct cf_state_writes {
        uint64_t batches, entries, bytes;
} cf_state_writes;
void cf_state_write_stats(const cf_state *s, cf_state_writes *out);

/* Bytes this process has caused to be written to storage so far
 * (/proc/self/io write_bytes: WAL, flushes, compactions, logs), or -1 when
 * the kernel does not say. */
int64_t cf_proc_write_bytes(void);

/* Bytes column family col takes: its SST files plus its memtables
 * (RocksDB's properties; an estimate for the metrics). Any thread. */
uint64_t cf_state_col_bytes(cf_state *s, cf_col_t col);

#endif
