/*
 * genfile.h: the record file that `chargeflow gen --out FILE` writes and the
 * stage-chain benchmark reads: Kafka records (topic, partition, timestamp,
 * key, value) in publish order, without a broker.
 *
 * Format (all integers little-endian, no padding, no alignment):
 *
 *   file header, 16 bytes + topic table:
 *     8  magic        "CFGEN\0\0\1" (the last byte is the format version, 1)
 *     4  u32 partitions  partition count the writer used to fill the
 *                        records' partition field, 0 when it left it to the
 *                        reader (the field is then -1)
 *     4  u32 n_topics    entries in the topic table
 *     n_topics times: 2 u16 name length, then the name bytes (no NUL); the
 *                     index in this table is a record's topic
 *
 *   records, each a 24-byte header then the key and value bytes:
 *     8  i64 timestamp_ms  the Kafka message timestamp
 *     4  u32 key_len
 *     4  u32 value_len
 *     2  u16 topic         index into the topic table; 0xFFFF: trailer
 *     2  u16 flags         0 (reserved)
 *     4  i32 partition     the murmur2 partition of the key (Kafka's Java
 *                          partitioner, as librdkafka's "murmur2_random"),
 *                          or -1 when the header's partitions is 0
 *     key_len bytes of key, then value_len bytes of value
 *
 *   trailer: a record header with topic 0xFFFF, key_len 0, value_len 8,
 *   timestamp 0, partition -1, then u64 count of the records before it. A
 *   file without it (the writer died) is reported as truncated.
 *
 * The reader maps the file and hands out pointers into the mapping: reading
 * costs no copy and no allocation per record.
 *
 * Thread safety: a writer or reader is used by one thread at a time.
 */
#ifndef CF_GENFILE_H
#define CF_GENFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "murmur2.h"

#define CF_GENFILE_MAGIC      "CFGEN\0\0\1"
#define CF_GENFILE_HDR        16 /* file header before the topic table */
#define CF_GENFILE_REC_HDR    24 /* record header */
#define CF_GENFILE_TRAILER    0xFFFFu
#define CF_GENFILE_MAX_TOPICS 64

typedef struct cf_genfile_writer cf_genfile_writer;

/* Creates (truncates) path and writes the header with the given topic names.
 * partition_cnt > 0 fills each record's partition with
 * cf_murmur2_partition(key, partition_cnt); 0 writes -1. Returns CF_OK and
 * sets *wp, or CF_ERR_IO / CF_ERR_ARG with errstr filled. */
cf_err_t cf_genfile_writer_open(cf_genfile_writer **wp, const char *path,
                                const char *const *topics, uint32_t n_topics,
                                int32_t partition_cnt, char *errstr,
                                size_t errstr_size);

/* Appends one record (buffered). Returns CF_ERR_IO once a write has failed
 * (the error sticks); CF_OK otherwise. */
cf_err_t cf_genfile_write(cf_genfile_writer *w, uint32_t topic,
                          int64_t timestamp_ms, const void *key, size_t key_len,
                          const void *value, size_t value_len);

/* Records written so far. */
uint64_t cf_genfile_writer_count(const cf_genfile_writer *w);

/* Writes the trailer, flushes and closes; frees w (NULL is a no-op and
 * returns CF_OK). Returns CF_ERR_IO if any write or the close failed. */
cf_err_t cf_genfile_writer_close(cf_genfile_writer *w);

/* One record as the reader hands it out: pointers into the mapping, valid
 * until cf_genfile_reader_close(). */
typedef struct cf_genfile_rec {
        uint32_t topic; /* index into the topic table */
        int32_t partition;
        int64_t timestamp_ms;
        const uint8_t *key;
        uint32_t key_len;
        const uint8_t *value;
        uint32_t value_len;
} cf_genfile_rec;

typedef struct cf_genfile_reader cf_genfile_reader;

/* Maps path and checks its header. Returns CF_OK and sets *rp, or CF_ERR_IO
 * (cannot open or map) / CF_ERR_TRUNCATED / CF_ERR_MAGIC with errstr. */
cf_err_t cf_genfile_reader_open(cf_genfile_reader **rp, const char *path,
                                char *errstr, size_t errstr_size);

/* Number of topics and the name of topic index i (NUL-terminated). */
uint32_t cf_genfile_reader_topics(const cf_genfile_reader *r);
const char *cf_genfile_reader_topic(const cf_genfile_reader *r, uint32_t i);

/* Partition count the writer used (0: none). */
int32_t cf_genfile_reader_partitions(const cf_genfile_reader *r);

/* Index of the topic called name, or -1. */
int cf_genfile_reader_topic_index(const cf_genfile_reader *r, const char *name);

/* Reads the next record into *rec. Returns CF_OK, CF_ERR_NOT_FOUND at the
 * trailer (the end; the count matched), or CF_ERR_TRUNCATED when the file
 * ends early or the trailer's count does not match. */
cf_err_t cf_genfile_next(cf_genfile_reader *r, cf_genfile_rec *rec);

/* Restarts reading at the first record. */
void cf_genfile_rewind(cf_genfile_reader *r);

/* Unmaps and frees; NULL is a no-op. */
void cf_genfile_reader_close(cf_genfile_reader *r);

#endif
