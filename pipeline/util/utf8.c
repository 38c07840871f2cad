/* utf8.c: UTF-8 checks and escaping (see utf8.h). */
#include "utf8.h"

#include <stdio.h>
#include <string.h>

size_t cf_utf8_char_len(const unsigned char *p, size_t n)
{
        if (!n)
                return 0;
        unsigned c = p[0];
        if (c < 0x80)
                return 1;
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0)
                        lo = 0x90; /* overlong */
                else if (c == 0xF4)
                        hi = 0x8F; /* above U+10FFFF */
        } else {
                return 0; /* continuation byte, C0, C1, F5..FF */
        }
        if (n < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return len;
}

bool cf_utf8_valid(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;
        while (i < n) {
                if (p[i] && p[i] < 0x80) { /* the common case */
                        i++;
                        continue;
                }
                size_t l = p[i] ? cf_utf8_char_len(p + i, n - i) : 0;
                if (!l)
                        return false;
                i += l;
        }
        return true;
}

size_t cf_utf8_escape(char *dst, size_t dst_size, const char *src)
{
        const unsigned char *p = (const unsigned char *)src;
        size_t n = strlen(src), i = 0, o = 0;
        while (i < n) {
                size_t l = p[i] >= 0x20 && p[i] != 0x7F
                               ? cf_utf8_char_len(p + i, n - i)
                               : 0;
                if (l) {
                        if (o + l > dst_size - 1)
                                break;
                        memcpy(dst + o, p + i, l);
                        o += l;
                        i += l;
                } else {
                        if (o + 4 > dst_size - 1)
                                break;
                        snprintf(dst + o, 5, "\\x%02X", p[i]);
                        o += 4;
                        i++;
                }
        }
        dst[o] = '\0';
        return o;
}
