/*
 * store.h: a typed write-back cache over one column family for one task
 * (DESIGN section 5: "the hot path works on memory: a write-back cache per
 * task, flushed as one WriteBatch per commit").
 *
 * A cf_store maps keys (bytes, given without the task prefix) to objects of
 * the caller's type, described by a cf_store_ops table: how to encode an
 * object to bytes, decode it back, free it and estimate its size. Reads are
 * served from memory; a miss may read RocksDB once and remembers the answer,
 * also "absent". Writes only touch memory and mark the entry dirty;
 * cf_store_flush() turns the dirty entries into puts and deletes in the
 * commit's cf_batch. In RocksDB each key is stored as
 * cf_key_init(task) + the caller's key bytes.
 *
 * Memory: clean entries (and remembered absences) are evicted least
 * recently used first whenever the accounted bytes exceed the budget; dirty
 * entries are never evicted, so memory is bounded by max(budget, bytes of
 * the dirty set), and the dirty set by what one commit interval changes.
 *
 * Object lifetime: the store owns every object given to cf_store_put() and
 * every object it decoded. A pointer returned by cf_store_get() stays valid
 * until the next cf_store_get(), cf_store_flush(), cf_store_load_all() or
 * cf_store_destroy() on the same store (those may evict it), or until the
 * key is put or deleted. A dirty object is never evicted, so after
 * cf_store_put() or cf_store_dirty() it stays valid until the next flush.
 *
 * Errors: a RocksDB read error or a stored value that the ops cannot decode
 * is sticky: cf_store_get() returns NULL as for an absent key, and the
 * error is kept (cf_store_error()) and returned by every later
 * cf_store_flush(), so that a commit can never include state computed from
 * a read that failed. The runtime then fails the task and rebuilds it from
 * RocksDB.
 *
 * Parts: a store whose ops have encode_delta keeps each object as its
 * whole encoding followed by changes, in one RocksDB value: each part its
 * length (varint) and bytes. A flush appends the commit's change
 * (cf_batch_append, a RocksDB merge: only the change is written); once the
 * changes stored add up to more than CF_STORE_PART_RATIO times the whole
 * part, it puts the object whole again. The bytes written stay within a
 * small multiple of the changes, and a value within a small multiple of
 * the object; a read is one point read, as without parts.
 *
 * Threads: a store belongs to the one thread running its task; it uses the
 * shared cf_state, which is thread-safe.
 */
#ifndef CF_STORE_H
#define CF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mem.h"
#include "state.h"

/* How the store handles the caller's objects. Shared and immutable; opaque
 * is the per-store context given to cf_store_new(). */
typedef struct cf_store_ops {
        /* Appends obj's serialized form to out. */
        void (*encode)(void *opaque, const void *obj, cf_buf *out);
        /* Returns a new object from p[0..len), or NULL when the bytes are
         * not a valid encoding. */
        void *(*decode)(void *opaque, const uint8_t *p, size_t len);
        /* Frees obj (never called with NULL). */
        void (*free)(void *opaque, void *obj);
        /* Approximate bytes of memory obj holds, its own struct included. */
        size_t (*size)(void *opaque, const void *obj);
        /* Optional, all three or none: the object is stored in parts, so
         * that a commit writes what changed, not the whole object (a
         * session that took one more reading). Part 0 is encode()'s whole
         * object; each later part a change to apply to what the parts
         * before it give.
         *
         * encode_delta appends to out the change from what the store holds
         * (as of the last stored() call) to obj, and returns true; or
         * returns false when it cannot (then the store writes the object
         * whole, removing the parts). */
        bool (*encode_delta)(void *opaque, const void *obj, cf_buf *out);
        /* Applies a part after the first to obj; false when the bytes are
         * not a valid change. */
        bool (*apply_delta)(void *opaque, void *obj, const uint8_t *p,
                            size_t len);
        /* obj now equals what the store holds: it was flushed (whole or as
         * a change), or decoded from its parts. */
        void (*stored)(void *opaque, void *obj);
} cf_store_ops;

typedef struct cf_store cf_store;

/* Parts (above): rewrite whole when the changes stored exceed this many
 * times the whole part, or at this many parts. */
#define CF_STORE_PART_RATIO 4
#define CF_STORE_MAX_PARTS  1024

/* Counters; entries and bytes are current values, the rest totals since
 * cf_store_new(). */
typedef struct cf_store_stats {
        size_t entries;     /* in memory, remembered absences included */
        size_t dirty;       /* entries to be written by the next flush */
        size_t bytes;       /* accounted memory: objects, keys, overhead */
        uint64_t hits;      /* cf_store_get() answered from memory */
        uint64_t misses;    /* cf_store_get() not in memory */
        uint64_t reads;     /* RocksDB point reads (misses with load_on_miss
                             * while the store is not complete) */
        uint64_t evictions; /* clean entries dropped for the budget */
        uint64_t flushed;   /* puts and deletes added by cf_store_flush() */
} cf_store_stats;

/* Creates a store of task's keys in column family col of s. ops (not
 * copied, must outlive the store) describes the objects; opaque is passed to
 * every op. budget_bytes bounds the memory of clean entries (see above).
 * With load_on_miss a cf_store_get() miss reads RocksDB; without, the store
 * only knows what was put or loaded (cf_store_load_all()). Never NULL. */
cf_store *cf_store_new(cf_state *s, cf_col_t col, uint16_t task,
                       const cf_store_ops *ops, void *opaque,
                       size_t budget_bytes, bool load_on_miss);

/* Frees every entry and object and the store. Dirty entries are lost:
 * flush and write first. cf_store_destroy(NULL) is a no-op. */
void cf_store_destroy(cf_store *st);

/* Returns the object under key, or NULL when absent (or deleted, or on a
 * sticky error). A hit does not touch RocksDB. A miss with load_on_miss
 * reads RocksDB once, unless the store is complete (see cf_store_load_all)
 * and caches the object or the absence. The object belongs to the store;
 * see the lifetime rules above. */
void *cf_store_get(cf_store *st, const void *key, size_t klen);

/* Stores obj under key, taking ownership of it, and marks the entry dirty.
 * A previous object under key is freed unless it is obj itself. A NULL obj
 * is a cf_store_del(). Never evicts. */
void cf_store_put(cf_store *st, const void *key, size_t klen, void *obj);

/* Marks the object under key as changed in place (its size is measured
 * again). Returns false, doing nothing, when key holds no object in memory.
 * Never evicts. */
bool cf_store_dirty(cf_store *st, const void *key, size_t klen);

/* Deletes key: frees its object and writes a delete at the next flush
 * (none when the key is known not to be in RocksDB). Never evicts. */
void cf_store_del(cf_store *st, const void *key, size_t klen);

/* Adds a put (encoded object) or delete for every dirty entry to b, marks
 * them clean and then evicts down to the budget. *nwrites (may be NULL)
 * receives the number of operations added. Returns the sticky error, adding
 * nothing, if there is one; the error of a read an encode made during the
 * flush (cf_store_read), after adding to b, which must then not be written;
 * CF_OK otherwise.
 *
 * After a flush the store assumes b will be written: if cf_state_write()
 * fails, the store no longer matches RocksDB and must be destroyed. */
cf_err_t cf_store_flush(cf_store *st, cf_batch *b, size_t *nwrites);

/* Loads the task's keys of the column family from RocksDB into memory
 * (keys already in memory are kept as they are) until the budget is
 * reached. When every key fits, the store becomes complete: later misses
 * are answered "absent" without reading RocksDB, until an eviction makes it
 * incomplete again. Meant for a task's start. Returns CF_OK, CF_ERR_STATE
 * or CF_ERR_CORRUPT (both sticky; errstr filled). */
cf_err_t cf_store_load_all(cf_store *st, char *errstr, size_t errstr_size);

/* True when memory holds every key of the task (see cf_store_load_all). */
bool cf_store_complete(const cf_store *st);

/* Marks the entry of key, if in memory, as unlikely to be read soon: at the
 * next flush it goes to the LRU tail, first to be evicted (a closed
 * session kept for corrections). A later get makes it recent again. */
void cf_store_cool(cf_store *st, const void *key, size_t klen);

/* foreach callback: return 0 to go on, anything else to stop. */
typedef int(cf_store_foreach_cb)(void *opaque, const uint8_t *key, size_t klen,
                                 void *obj);

/* Visit in key order (bytewise) rather than hash order: costs a sort, but
 * the order then does not depend on the history of the cache, which keeps
 * outputs derived from the iteration deterministic across restarts. */
#define CF_STORE_SORTED 0x1

/* Calls cb for every object in memory (not for deleted or absent keys;
 * keys not in memory are not visited: use a complete store, or flush and
 * cf_state_scan, for a full view). During the iteration nothing is evicted
 * and the table is not resized, so cb may call cf_store_get, put, dirty and
 * del on this store (keys inserted meanwhile may or may not be visited).
 * cb must not flush, load or destroy the store. */
void cf_store_foreach(cf_store *st, int flags, cf_store_foreach_cb *cb,
                      void *opaque);

/* Calls cb for every object of the task, in bytewise key order: those in
 * memory, and those only in RocksDB decoded for the call (freed after it,
 * not cached). Meant for a task's start, after cf_store_load_all, when not
 * everything fit the budget (complete: the same as a sorted foreach); keys
 * put since and not yet flushed are not visited. The same rules for cb as
 * for cf_store_foreach. Returns the sticky error, with errstr, or CF_OK. */
cf_err_t cf_store_visit_all(cf_store *st, cf_store_foreach_cb *cb, void *opaque,
                            char *errstr, size_t errstr_size);

/* A new object decoded from what RocksDB holds for key (parts applied;
 * the ops' stored() is called on it), owned by the caller and not cached:
 * for an object whose owner keeps only part of it in memory and needs the
 * rest back. Only for keys the store has written and flushed (the commit
 * written): an absent key, like a read error or a value that does not
 * decode, is a sticky error (cf_store_error()) and gives NULL. */
void *cf_store_read(cf_store *st, const void *key, size_t klen);

/* A new object from the whole encoding p[0..len) (the ops' decode; NULL
 * when it does not decode), owned by the caller until put. */
void *cf_store_decode(cf_store *st, const uint8_t *p, size_t len);

/* Returns the sticky error (CF_OK when none) and, if errstr is not NULL,
 * copies its message. */
cf_err_t cf_store_error(const cf_store *st, char *errstr, size_t errstr_size);

void cf_store_stats_get(const cf_store *st, cf_store_stats *out);

/* The column family the store keeps its entries in. */
cf_col_t cf_store_col(const cf_store *st);

#endif
