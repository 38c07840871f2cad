/*
 * hmap.h: an open-addressing hash map from byte-string keys to pointers.
 *
 * Keys are copied into the map; values are the caller's (the map never frees
 * them). Linear probing with tombstones, grown at 70% load. Not thread safe.
 */
#ifndef CF_HMAP_H
#define CF_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_hmap_slot {
        uint64_t hash; /* 0: empty, 1: tombstone */
        char *key;     /* NUL-terminated copy (keys may hold NULs: klen) */
        uint32_t klen;
        void *value;
} cf_hmap_slot;

typedef struct cf_hmap {
        cf_hmap_slot *slots;
        size_t cap;  /* power of two */
        size_t n;    /* live entries */
        size_t used; /* live + tombstones */
} cf_hmap;

void cf_hmap_init(cf_hmap *m);
/* Frees the map's slots and key copies, not the values. */
void cf_hmap_free(cf_hmap *m);

/* FNV-1a 64 (offset basis and prime from its definition): continues hash
 * h over n bytes; start with CF_FNV1A64_BASIS. */
#define CF_FNV1A64_BASIS 0xcbf29ce484222325ULL
uint64_t cf_fnv1a64(uint64_t h, const void *p, size_t n);

/* 64-bit hash of bytes for hash tables: FNV-1a 64 with a final avalanche
 * (so that probing spreads on the low bits), never 0 or 1. */
uint64_t cf_hash64(const void *p, size_t n);

void *cf_hmap_get(const cf_hmap *m, const void *key, size_t klen);
/* Sets key to value; returns the previous value or NULL. */
void *cf_hmap_put(cf_hmap *m, const void *key, size_t klen, void *value);
/* Removes key; returns its value or NULL. */
void *cf_hmap_del(cf_hmap *m, const void *key, size_t klen);

/* Iteration: for (size_t i = 0; cf_hmap_next(m, &i, &slot);) ... Removing
 * the current entry during iteration is allowed. */
int cf_hmap_next(const cf_hmap *m, size_t *i, cf_hmap_slot **slot);

/* String-key conveniences. */
void *cf_hmap_sget(const cf_hmap *m, const char *key);
void *cf_hmap_sput(cf_hmap *m, const char *key, void *value);
void *cf_hmap_sdel(cf_hmap *m, const char *key);

#endif
