/*
 * mem.h: allocation that aborts on failure, a bump arena for per-batch
 * scratch memory, and a growable byte buffer.
 *
 * Allocation failure is fatal in the small (as librdkafka's rd_malloc): hot
 * paths carry no untestable NULL branches.
 */
#ifndef CF_MEM_H
#define CF_MEM_H

#include <stddef.h>
#include <stdint.h>

void *cf_malloc(size_t n);
void *cf_calloc(size_t cnt, size_t n);
void *cf_realloc(void *p, size_t n);
char *cf_strdup(const char *s);

/* Arena: allocations live until cf_arena_reset() or cf_arena_destroy(). */
typedef struct cf_arena {
        struct cf_arena_chunk *head;
        size_t chunk_size; /* size of ordinary chunks */
        size_t used;       /* bytes handed out since the last reset */
} cf_arena;

void cf_arena_init(cf_arena *a, size_t chunk_size);
/* Returns 16-byte aligned memory; never NULL. */
void *cf_arena_alloc(cf_arena *a, size_t n);
void *cf_arena_calloc(cf_arena *a, size_t n);
/* Unaligned memory, for strings and bytes; never NULL. */
void *cf_arena_alloc_bytes(cf_arena *a, size_t n);
/* Copies n bytes and appends a NUL (unaligned). */
char *cf_arena_strndup(cf_arena *a, const char *s, size_t n);
char *cf_arena_strdup(cf_arena *a, const char *s);
/* Frees everything but the first chunk, which is kept for reuse. */
void cf_arena_reset(cf_arena *a);
void cf_arena_destroy(cf_arena *a);

/* Growable byte buffer. */
typedef struct cf_buf {
        uint8_t *p;
        size_t len;
        size_t cap;
} cf_buf;

void cf_buf_init(cf_buf *b);
void cf_buf_free(cf_buf *b);
void cf_buf_reserve(cf_buf *b, size_t extra);
void cf_buf_put(cf_buf *b, const void *p, size_t n);
void cf_buf_putc(cf_buf *b, uint8_t c);
void cf_buf_puts(cf_buf *b, const char *s);
/* printf-style append. */
void cf_buf_printf(cf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes and escapes). */
void cf_buf_json_str(cf_buf *b, const char *s, size_t n);
/* Appends bytes as lowercase hex. */
void cf_buf_hex(cf_buf *b, const uint8_t *p, size_t n);
/* Ensures a NUL after len (not counted) and returns the data as a string. */
const char *cf_buf_cstr(cf_buf *b);

#endif
