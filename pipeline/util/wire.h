/*
 * wire.h: compact binary encoding for state values (RocksDB values of the
 * stages and the runtime): zig-zag varints, length-prefixed strings and
 * bytes. Readers are bounds-checked and report failure instead of reading
 * past the end, so a corrupt state value is an error, never a crash.
 */
#ifndef CF_WIRE_H
#define CF_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

void cf_put_varint(cf_buf *b, int64_t v);
/* A NULL string is written as length -1. */
void cf_put_str(cf_buf *b, const char *s);
void cf_put_bytes(cf_buf *b, const void *p, uint32_t n);

/* A reader over one value. ok turns false at the first error and stays. */
typedef struct cf_wrd {
        const uint8_t *p;
        const uint8_t *end;
        bool ok;
} cf_wrd;

void cf_wrd_init(cf_wrd *r, const void *p, size_t n);
int64_t cf_get_varint(cf_wrd *r);
/* Returns a malloc'ed copy (NULL for a NULL string or on error). */
char *cf_get_str(cf_wrd *r);
/* Returns a pointer into the value and its length (NULL on error). */
const uint8_t *cf_get_bytes(cf_wrd *r, uint32_t *n);

#endif
