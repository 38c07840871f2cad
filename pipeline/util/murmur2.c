/*
 * murmur2.c: Kafka's murmur2 key hash and the partition it picks (see
 * murmur2.h). The generator's file sink and the runtime's repartition
 * output both use it, so that a key lands where a Kafka producer would put it.
 */
#include "murmur2.h"

uint32_t cf_murmur2(const void *key, size_t len)
{
        const uint8_t *d = key;
        const uint32_t m = 0x5bd1e995u;
        uint32_t h = 0x9747b28cu ^ (uint32_t)len;
        size_t n4 = len / 4;

        for (size_t i = 0; i < n4; i++) {
                const uint8_t *p = d + i * 4;
                uint32_t k = (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                             ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
                k *= m;
                k ^= k >> 24;
                k *= m;
                h *= m;
                h ^= k;
        }
        const uint8_t *t = d + (len & ~(size_t)3);
        switch (len & 3) {
        case 3:
                h ^= (uint32_t)t[2] << 16;
                /* fall through */
        case 2:
                h ^= (uint32_t)t[1] << 8;
                /* fall through */
        case 1:
                h ^= t[0];
                h *= m;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return h;
}

int32_t cf_murmur2_partition(const void *key, size_t len, int32_t partition_cnt)
{
        if (partition_cnt <= 0)
                return -1;
        return (int32_t)((cf_murmur2(key, len) & 0x7fffffffu) %
                         (uint32_t)partition_cnt);
}
