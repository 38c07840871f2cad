/* dheap.c: deadline min-heap (see dheap.h). */
#include "dheap.h"

#include <stdlib.h>

#include "mem.h"

void cf_dheap_init(cf_dheap *h)
{
        h->v = NULL;
        h->n = h->cap = 0;
}

void cf_dheap_free(cf_dheap *h)
{
        for (size_t i = 0; i < h->n; i++)
                free(h->v[i].key);
        free(h->v);
        cf_dheap_init(h);
}

void cf_dheap_push_owned(cf_dheap *h, int64_t d, char *key)
{
        if (h->n == h->cap) {
                h->cap = h->cap ? h->cap * 2 : 256;
                h->v = cf_realloc(h->v, h->cap * sizeof(*h->v));
        }
        size_t i = h->n++;
        while (i > 0) {
                size_t up = (i - 1) / 2;
                if (h->v[up].deadline <= d)
                        break;
                h->v[i] = h->v[up];
                i = up;
        }
        h->v[i].deadline = d;
        h->v[i].key = key;
}

void cf_dheap_push(cf_dheap *h, int64_t d, const char *key)
{
        cf_dheap_push_owned(h, d, cf_strdup(key));
}

int cf_dheap_due(const cf_dheap *h, int64_t now)
{
        return h->n && h->v[0].deadline <= now;
}

cf_dheap_ent cf_dheap_pop(cf_dheap *h)
{
        cf_dheap_ent top = h->v[0];
        cf_dheap_ent last = h->v[--h->n];
        size_t i = 0;
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                int64_t md = last.deadline;
                if (l < h->n && h->v[l].deadline < md) {
                        m = l;
                        md = h->v[l].deadline;
                }
                if (r < h->n && h->v[r].deadline < md)
                        m = r;
                if (m == i)
                        break;
                h->v[i] = h->v[m];
                i = m;
        }
        if (h->n)
                h->v[i] = last;
        return top;
}
