/* wire.c: compact state encodings (see wire.h). */
#include "wire.h"

#include <string.h>

void cf_put_varint(cf_buf *b, int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        cf_buf_reserve(b, 10);
        while (z >= 0x80) {
                b->p[b->len++] = (uint8_t)(z | 0x80);
                z >>= 7;
        }
        b->p[b->len++] = (uint8_t)z;
}

void cf_put_str(cf_buf *b, const char *s)
{
        if (!s) {
                cf_put_varint(b, -1);
                return;
        }
        size_t n = strlen(s);
        cf_put_varint(b, (int64_t)n);
        cf_buf_put(b, s, n);
}

void cf_put_bytes(cf_buf *b, const void *p, uint32_t n)
{
        cf_put_varint(b, n);
        cf_buf_put(b, p, n);
}

void cf_wrd_init(cf_wrd *r, const void *p, size_t n)
{
        r->p = p;
        r->end = r->p + n;
        r->ok = true;
}

int64_t cf_get_varint(cf_wrd *r)
{
        uint64_t v = 0;
        for (int shift = 0; r->ok && shift < 64; shift += 7) {
                if (r->p >= r->end)
                        break;
                uint8_t c = *r->p++;
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80))
                        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        }
        r->ok = false;
        return 0;
}

char *cf_get_str(cf_wrd *r)
{
        int64_t n = cf_get_varint(r);
        if (!r->ok || n < 0 || n > r->end - r->p) {
                if (n != -1)
                        r->ok = false;
                return NULL;
        }
        char *s = cf_malloc((size_t)n + 1);
        memcpy(s, r->p, (size_t)n);
        s[n] = '\0';
        r->p += n;
        return s;
}

const uint8_t *cf_get_bytes(cf_wrd *r, uint32_t *n)
{
        int64_t len = cf_get_varint(r);
        if (!r->ok || len < 0 || len > r->end - r->p) {
                r->ok = false;
                *n = 0;
                return NULL;
        }
        const uint8_t *p = r->p;
        r->p += len;
        *n = (uint32_t)len;
        return p;
}
