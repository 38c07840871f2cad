/*
 * utf8.h: UTF-8 checks for what reaches Avro strings. Avro strings are
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), so ids taken from input bytes are checked before they reach an
 * output, and text quoting input bytes (a rejected record's detail) is
 * escaped.
 */
#ifndef CF_UTF8_H
#define CF_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 character at p (n bytes left), or 0
 * when the bytes there are not one. */
size_t cf_utf8_char_len(const unsigned char *p, size_t n);

/* True when the n bytes at p are well-formed UTF-8 and hold no NUL. */
bool cf_utf8_valid(const char *p, size_t n);

/* Copies the NUL-terminated src into dst (dst_size > 0) as valid UTF-8:
 * well-formed characters other than control characters are copied, every
 * other byte becomes "\xNN" (upper-case hex); the copy stops at the last
 * whole character or escape that fits in dst_size - 1 bytes, so it is never
 * cut inside a character. Returns the length written (dst is terminated). */
size_t cf_utf8_escape(char *dst, size_t dst_size, const char *src);

#endif
