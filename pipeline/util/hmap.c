/* hmap.c: open-addressing hash map (see hmap.h). */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define EMPTY 0
#define TOMB  1

uint64_t cf_fnv1a64(uint64_t h, const void *p, size_t n)
{
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

uint64_t cf_hash64(const void *p, size_t n)
{
        uint64_t h = cf_fnv1a64(CF_FNV1A64_BASIS, p, n);
        /* Final avalanche so that probing spreads on the low bits. */
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h < 2 ? h + 2 : h;
}

void cf_hmap_init(cf_hmap *m)
{
        m->slots = NULL;
        m->cap = 0;
        m->n = 0;
        m->used = 0;
}

void cf_hmap_free(cf_hmap *m)
{
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].hash > TOMB)
                        free(m->slots[i].key);
        free(m->slots);
        cf_hmap_init(m);
}

static cf_hmap_slot *find(const cf_hmap *m, uint64_t h, const void *key,
                          size_t klen)
{
        if (!m->cap)
                return NULL;
        for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                cf_hmap_slot *s = &m->slots[i];
                if (s->hash == EMPTY)
                        return NULL;
                if (s->hash == h && s->klen == klen &&
                    !memcmp(s->key, key, klen))
                        return s;
        }
}

static void grow(cf_hmap *m)
{
        cf_hmap_slot *old = m->slots;
        size_t oldcap = m->cap;
        size_t cap = oldcap ? oldcap : 16;
        while (m->n * 10 >= cap * 5)
                cap *= 2;
        m->slots = cf_calloc(cap, sizeof(*m->slots));
        m->cap = cap;
        m->used = m->n;
        for (size_t i = 0; i < oldcap; i++) {
                if (old[i].hash <= TOMB)
                        continue;
                size_t j = old[i].hash & (cap - 1);
                while (m->slots[j].hash != EMPTY)
                        j = (j + 1) & (cap - 1);
                m->slots[j] = old[i];
        }
        free(old);
}

void *cf_hmap_get(const cf_hmap *m, const void *key, size_t klen)
{
        cf_hmap_slot *s = find(m, cf_hash64(key, klen), key, klen);
        return s ? s->value : NULL;
}

void *cf_hmap_put(cf_hmap *m, const void *key, size_t klen, void *value)
{
        uint64_t h = cf_hash64(key, klen);
        cf_hmap_slot *s = find(m, h, key, klen);
        if (s) {
                void *prev = s->value;
                s->value = value;
                return prev;
        }
        if ((m->used + 1) * 10 > m->cap * 7)
                grow(m);
        size_t i = h & (m->cap - 1);
        while (m->slots[i].hash > TOMB)
                i = (i + 1) & (m->cap - 1);
        s = &m->slots[i];
        if (s->hash == EMPTY)
                m->used++;
        s->hash = h;
        s->key = cf_malloc(klen + 1);
        memcpy(s->key, key, klen);
        s->key[klen] = '\0';
        s->klen = (uint32_t)klen;
        s->value = value;
        m->n++;
        return NULL;
}

void *cf_hmap_del(cf_hmap *m, const void *key, size_t klen)
{
        cf_hmap_slot *s = find(m, cf_hash64(key, klen), key, klen);
        if (!s)
                return NULL;
        void *v = s->value;
        free(s->key);
        s->key = NULL;
        s->hash = TOMB;
        s->value = NULL;
        m->n--;
        return v;
}

int cf_hmap_next(const cf_hmap *m, size_t *i, cf_hmap_slot **slot)
{
        while (*i < m->cap) {
                cf_hmap_slot *s = &m->slots[(*i)++];
                if (s->hash > TOMB) {
                        *slot = s;
                        return 1;
                }
        }
        return 0;
}

void *cf_hmap_sget(const cf_hmap *m, const char *key)
{
        return cf_hmap_get(m, key, strlen(key));
}

void *cf_hmap_sput(cf_hmap *m, const char *key, void *value)
{
        return cf_hmap_put(m, key, strlen(key), value);
}

void *cf_hmap_sdel(cf_hmap *m, const char *key)
{
        return cf_hmap_del(m, key, strlen(key));
}
