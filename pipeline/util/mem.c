/* mem.c: aborting allocators, arena and byte buffer (see mem.h). */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cf_oom(size_t n)
{
        fprintf(stderr, "chargeflow: out of memory allocating %zu bytes\n", n);
        abort();
}

void *cf_malloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                cf_oom(n);
        return p;
}

void *cf_calloc(size_t cnt, size_t n)
{
        void *p = calloc(cnt ? cnt : 1, n ? n : 1);
        if (!p)
                cf_oom(cnt * n);
        return p;
}

void *cf_realloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);
        if (!q)
                cf_oom(n);
        return q;
}

char *cf_strdup(const char *s)
{
        size_t n = strlen(s) + 1;
        char *d = cf_malloc(n);
        memcpy(d, s, n);
        return d;
}

struct cf_arena_chunk {
        struct cf_arena_chunk *next;
        size_t size;
        size_t off;
        _Alignas(16) unsigned char data[];
};

void cf_arena_init(cf_arena *a, size_t chunk_size)
{
        a->head = NULL;
        a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
        a->used = 0;
}

/* Hands out n bytes aligned to align (a power of two, at most 16). */
static void *arena_take(cf_arena *a, size_t n, size_t align)
{
        struct cf_arena_chunk *c = a->head;
        size_t off = c ? (c->off + align - 1) & ~(align - 1) : 0;
        if (!c || off > c->size || c->size - off < n) {
                size_t sz = n > a->chunk_size ? n : a->chunk_size;
                c = cf_malloc(sizeof(*c) + sz);
                c->size = sz;
                c->off = 0;
                off = 0;
                /* A big one-off chunk goes behind the head so that the head
                 * keeps serving small allocations. */
                if (a->head && sz > a->chunk_size) {
                        c->next = a->head->next;
                        a->head->next = c;
                } else {
                        c->next = a->head;
                        a->head = c;
                }
        }
        void *p = c->data + off;
        c->off = off + n;
        a->used += n;
        return p;
}

void *cf_arena_alloc(cf_arena *a, size_t n)
{
        return arena_take(a, n, 16);
}

void *cf_arena_alloc_bytes(cf_arena *a, size_t n)
{
        return arena_take(a, n, 1);
}

void *cf_arena_calloc(cf_arena *a, size_t n)
{
        void *p = cf_arena_alloc(a, n);
        memset(p, 0, n);
        return p;
}

char *cf_arena_strndup(cf_arena *a, const char *s, size_t n)
{
        char *d = cf_arena_alloc_bytes(a, n + 1);
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

char *cf_arena_strdup(cf_arena *a, const char *s)
{
        return cf_arena_strndup(a, s, strlen(s));
}

void cf_arena_reset(cf_arena *a)
{
        struct cf_arena_chunk *c = a->head, *keep = NULL;
        while (c) {
                struct cf_arena_chunk *next = c->next;
                if (!keep && c->size == a->chunk_size) {
                        keep = c;
                } else {
                        free(c);
                }
                c = next;
        }
        if (keep) {
                keep->next = NULL;
                keep->off = 0;
        }
        a->head = keep;
        a->used = 0;
}

void cf_arena_destroy(cf_arena *a)
{
        struct cf_arena_chunk *c = a->head;
        while (c) {
                struct cf_arena_chunk *next = c->next;
                free(c);
                c = next;
        }
        a->head = NULL;
        a->used = 0;
}

void cf_buf_init(cf_buf *b)
{
        b->p = NULL;
        b->len = 0;
        b->cap = 0;
}

void cf_buf_free(cf_buf *b)
{
        free(b->p);
        cf_buf_init(b);
}

void cf_buf_reserve(cf_buf *b, size_t extra)
{
        if (b->len + extra + 1 <= b->cap)
                return;
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + extra + 1)
                cap *= 2;
        b->p = cf_realloc(b->p, cap);
        b->cap = cap;
}

void cf_buf_put(cf_buf *b, const void *p, size_t n)
{
        cf_buf_reserve(b, n);
        if (n)
                memcpy(b->p + b->len, p, n);
        b->len += n;
}

void cf_buf_putc(cf_buf *b, uint8_t c)
{
        cf_buf_reserve(b, 1);
        b->p[b->len++] = c;
}

void cf_buf_puts(cf_buf *b, const char *s)
{
        cf_buf_put(b, s, strlen(s));
}

void cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        cf_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void cf_buf_json_str(cf_buf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        cf_buf_reserve(b, n + 2);
        cf_buf_putc(b, '"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"':
                        cf_buf_put(b, "\\\"", 2);
                        break;
                case '\\':
                        cf_buf_put(b, "\\\\", 2);
                        break;
                case '\n':
                        cf_buf_put(b, "\\n", 2);
                        break;
                case '\r':
                        cf_buf_put(b, "\\r", 2);
                        break;
                case '\t':
                        cf_buf_put(b, "\\t", 2);
                        break;
                default:
                        if (c < 0x20) {
                                char e[6] = { '\\', 'u',         '0',
                                              '0',  hex[c >> 4], hex[c & 15] };
                                cf_buf_put(b, e, 6);
                        } else {
                                cf_buf_putc(b, c);
                        }
                }
        }
        cf_buf_putc(b, '"');
}

void cf_buf_hex(cf_buf *b, const uint8_t *p, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        cf_buf_reserve(b, n * 2);
        for (size_t i = 0; i < n; i++) {
                b->p[b->len++] = (uint8_t)hex[p[i] >> 4];
                b->p[b->len++] = (uint8_t)hex[p[i] & 15];
        }
}

const char *cf_buf_cstr(cf_buf *b)
{
        cf_buf_reserve(b, 1);
        b->p[b->len] = '\0';
        return (const char *)b->p;
}
