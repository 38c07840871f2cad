/*
 * dheap.h: a min-heap of (deadline, key) for stages' timers, with lazy
 * re-checking: the owner pops entries whose deadline has passed, looks the
 * key up, and pushes it again if its real deadline moved later. Duplicate
 * entries for a key are harmless. Not thread safe.
 */
#ifndef CF_DHEAP_H
#define CF_DHEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_dheap_ent {
        int64_t deadline;
        char *key; /* owned by the heap while in it */
} cf_dheap_ent;

typedef struct cf_dheap {
        cf_dheap_ent *v;
        size_t n, cap;
} cf_dheap;

void cf_dheap_init(cf_dheap *h);
/* Frees the heap and the keys in it. */
void cf_dheap_free(cf_dheap *h);
/* Pushes a copy of key. */
void cf_dheap_push(cf_dheap *h, int64_t deadline, const char *key);
/* Pushes key itself (the heap takes ownership). */
void cf_dheap_push_owned(cf_dheap *h, int64_t deadline, char *key);
/* True if the earliest deadline is <= now. */
int cf_dheap_due(const cf_dheap *h, int64_t now);
/* Removes the earliest entry; the caller owns its key. */
cf_dheap_ent cf_dheap_pop(cf_dheap *h);

#endif
