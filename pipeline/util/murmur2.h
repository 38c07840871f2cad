/*
 * murmur2.h: Kafka's default partitioner for keyed records, without
 * librdkafka: the load generator's record file (genfile.h) and the runtime's
 * repartition topic (task.c) partition keys with it.
 */
#ifndef CF_MURMUR2_H
#define CF_MURMUR2_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's murmur2 hash (seed 0x9747b28c), as the Java client computes it. */
uint32_t cf_murmur2(const void *key, size_t len);

/* Kafka's murmur2 partition of a key (Java client's default partitioner,
 * librdkafka "murmur2"/"murmur2_random" for non-NULL keys):
 * (murmur2(key) & 0x7fffffff) % partition_cnt; -1 when partition_cnt <= 0.
 * Pure; any thread. */
int32_t cf_murmur2_partition(const void *key, size_t len,
                             int32_t partition_cnt);

#endif
