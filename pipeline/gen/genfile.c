/* genfile.c: the generator's record file, writer and mmap reader (see
 * genfile.h for the format). */
#include "genfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

#define WBUF_SIZE (4u << 20)

static void put_u16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
        return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
        return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* ---- writer ------------------------------------------------------------ */

struct cf_genfile_writer {
        int fd;
        int32_t partitions;
        cf_err_t err;
        uint64_t count;
        uint8_t *buf;
        size_t len;
};

static void w_flush(cf_genfile_writer *w)
{
        size_t off = 0;
        while (off < w->len && w->err == CF_OK) {
                ssize_t n = write(w->fd, w->buf + off, w->len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        w->err = CF_ERR_IO;
                        break;
                }
                off += (size_t)n;
        }
        w->len = 0;
}

static void w_put(cf_genfile_writer *w, const void *p, size_t n)
{
        if (w->len + n > WBUF_SIZE) {
                w_flush(w);
                if (n > WBUF_SIZE) {
                        /* Larger than the buffer: write it directly. */
                        const uint8_t *s = p;
                        while (n > 0 && w->err == CF_OK) {
                                ssize_t k = write(w->fd, s, n);
                                if (k < 0) {
                                        if (errno != EINTR)
                                                w->err = CF_ERR_IO;
                                        continue;
                                }
                                s += k;
                                n -= (size_t)k;
                        }
                        return;
                }
        }
        memcpy(w->buf + w->len, p, n);
        w->len += n;
}

cf_err_t cf_genfile_writer_open(cf_genfile_writer **wp, const char *path,
                                const char *const *topics, uint32_t n_topics,
                                int32_t partition_cnt, char *errstr,
                                size_t errstr_size)
{
        if (n_topics == 0 || n_topics > CF_GENFILE_MAX_TOPICS ||
            partition_cnt < 0) {
                snprintf(errstr, errstr_size,
                         "genfile: bad topic count %u or partitions %d",
                         n_topics, partition_cnt);
                return CF_ERR_ARG;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                snprintf(errstr, errstr_size, "genfile: cannot create %s: %s",
                         path, strerror(errno));
                return CF_ERR_IO;
        }
        cf_genfile_writer *w = cf_calloc(1, sizeof(*w));
        w->fd = fd;
        w->partitions = partition_cnt;
        w->buf = cf_malloc(WBUF_SIZE);

        uint8_t hdr[CF_GENFILE_HDR];
        memcpy(hdr, CF_GENFILE_MAGIC, 8);
        put_u32(hdr + 8, (uint32_t)partition_cnt);
        put_u32(hdr + 12, n_topics);
        w_put(w, hdr, sizeof(hdr));
        for (uint32_t i = 0; i < n_topics; i++) {
                size_t n = strlen(topics[i]);
                uint8_t l[2];
                put_u16(l, (uint16_t)(n > 0xffff ? 0xffff : n));
                w_put(w, l, 2);
                w_put(w, topics[i], n > 0xffff ? 0xffff : n);
        }
        *wp = w;
        return CF_OK;
}

static void w_rec_hdr(cf_genfile_writer *w, uint16_t topic, int64_t ts,
                      uint32_t klen, uint32_t vlen, int32_t partition)
{
        uint8_t h[CF_GENFILE_REC_HDR];
        put_u64(h, (uint64_t)ts);
        put_u32(h + 8, klen);
        put_u32(h + 12, vlen);
        put_u16(h + 16, topic);
        put_u16(h + 18, 0);
        put_u32(h + 20, (uint32_t)partition);
        w_put(w, h, sizeof(h));
}

cf_err_t cf_genfile_write(cf_genfile_writer *w, uint32_t topic,
                          int64_t timestamp_ms, const void *key, size_t key_len,
                          const void *value, size_t value_len)
{
        if (w->err != CF_OK)
                return w->err;
        if (topic >= CF_GENFILE_TRAILER || key_len > UINT32_MAX ||
            value_len > UINT32_MAX)
                return CF_ERR_ARG;
        int32_t part = w->partitions > 0
                           ? cf_murmur2_partition(key, key_len, w->partitions)
                           : -1;
        w_rec_hdr(w, (uint16_t)topic, timestamp_ms, (uint32_t)key_len,
                  (uint32_t)value_len, part);
        w_put(w, key, key_len);
        w_put(w, value, value_len);
        w->count++;
        return w->err;
}

uint64_t cf_genfile_writer_count(const cf_genfile_writer *w)
{
        return w->count;
}

cf_err_t cf_genfile_writer_close(cf_genfile_writer *w)
{
        if (!w)
                return CF_OK;
        uint8_t cnt[8];
        put_u64(cnt, w->count);
        w_rec_hdr(w, CF_GENFILE_TRAILER, 0, 0, 8, -1);
        w_put(w, cnt, 8);
        w_flush(w);
        cf_err_t err = w->err;
        if (close(w->fd) != 0)
                err = CF_ERR_IO;
        free(w->buf);
        free(w);
        return err;
}

/* ---- reader ------------------------------------------------------------ */

struct cf_genfile_reader {
        const uint8_t *map;
        size_t size;
        size_t dropped; /* pages before this offset handed back */
        size_t first;   /* offset of the first record */
        size_t pos;
        uint64_t count;
        int32_t partitions;
        uint32_t n_topics;
        char *topics[CF_GENFILE_MAX_TOPICS];
};

cf_err_t cf_genfile_reader_open(cf_genfile_reader **rp, const char *path,
                                char *errstr, size_t errstr_size)
{
        cf_err_t err = CF_ERR_IO;
        cf_genfile_reader *r = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        void *map = MAP_FAILED;

        if (fd < 0 || fstat(fd, &st) != 0) {
                snprintf(errstr, errstr_size, "genfile: cannot open %s: %s",
                         path, strerror(errno));
                goto fail;
        }
        if ((size_t)st.st_size < CF_GENFILE_HDR) {
                snprintf(errstr, errstr_size, "genfile: %s: too short", path);
                err = CF_ERR_TRUNCATED;
                goto fail;
        }
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
                snprintf(errstr, errstr_size, "genfile: cannot map %s: %s",
                         path, strerror(errno));
                goto fail;
        }
        (void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
        r = cf_calloc(1, sizeof(*r));
        r->map = map;
        r->size = (size_t)st.st_size;
        if (memcmp(r->map, CF_GENFILE_MAGIC, 8) != 0) {
                snprintf(errstr, errstr_size, "genfile: %s: bad magic", path);
                err = CF_ERR_MAGIC;
                goto fail;
        }
        r->partitions = (int32_t)get_u32(r->map + 8);
        r->n_topics = get_u32(r->map + 12);
        if (r->n_topics == 0 || r->n_topics > CF_GENFILE_MAX_TOPICS) {
                snprintf(errstr, errstr_size, "genfile: %s: bad topic count",
                         path);
                err = CF_ERR_MAGIC;
                goto fail;
        }
        size_t off = CF_GENFILE_HDR;
        for (uint32_t i = 0; i < r->n_topics; i++) {
                if (r->size - off < 2 ||
                    r->size - off - 2 < get_u16(r->map + off)) {
                        snprintf(errstr, errstr_size,
                                 "genfile: %s: truncated topic table", path);
                        err = CF_ERR_TRUNCATED;
                        goto fail;
                }
                uint16_t n = get_u16(r->map + off);
                r->topics[i] = cf_malloc((size_t)n + 1);
                memcpy(r->topics[i], r->map + off + 2, n);
                r->topics[i][n] = 0;
                off += 2 + (size_t)n;
        }
        r->first = r->pos = off;
        close(fd);
        *rp = r;
        return CF_OK;
fail:
        if (r) {
                r->map = NULL; /* unmapped below */
                cf_genfile_reader_close(r);
        }
        if (map != MAP_FAILED)
                munmap(map, (size_t)st.st_size);
        if (fd >= 0)
                close(fd);
        return err;
}

uint32_t cf_genfile_reader_topics(const cf_genfile_reader *r)
{
        return r->n_topics;
}

const char *cf_genfile_reader_topic(const cf_genfile_reader *r, uint32_t i)
{
        return i < r->n_topics ? r->topics[i] : NULL;
}

int32_t cf_genfile_reader_partitions(const cf_genfile_reader *r)
{
        return r->partitions;
}

int cf_genfile_reader_topic_index(const cf_genfile_reader *r, const char *name)
{
        for (uint32_t i = 0; i < r->n_topics; i++)
                if (!strcmp(r->topics[i], name))
                        return (int)i;
        return -1;
}

cf_err_t cf_genfile_next(cf_genfile_reader *r, cf_genfile_rec *rec)
{
        if (r->size - r->pos < CF_GENFILE_REC_HDR)
                return CF_ERR_TRUNCATED;
        const uint8_t *h = r->map + r->pos;
        uint32_t klen = get_u32(h + 8), vlen = get_u32(h + 12);
        uint16_t topic = get_u16(h + 16);
        size_t rest = r->size - r->pos - CF_GENFILE_REC_HDR;
        if ((uint64_t)klen + vlen > rest)
                return CF_ERR_TRUNCATED;
        if (topic == CF_GENFILE_TRAILER) {
                if (vlen != 8 ||
                    get_u64(h + CF_GENFILE_REC_HDR + klen) != r->count)
                        return CF_ERR_TRUNCATED;
                return CF_ERR_NOT_FOUND;
        }
        if (topic >= r->n_topics)
                return CF_ERR_TRUNCATED;
        rec->timestamp_ms = (int64_t)get_u64(h);
        rec->topic = topic;
        rec->partition = (int32_t)get_u32(h + 20);
        rec->key = h + CF_GENFILE_REC_HDR;
        rec->key_len = klen;
        rec->value = rec->key + klen;
        rec->value_len = vlen;
        r->pos += CF_GENFILE_REC_HDR + (size_t)klen + vlen;
        r->count++;
        /* Hand back the pages read long ago (every 8 MiB, keeping 1 MiB
         * behind), so that reading a large file does not fill the
         * process's RSS with it (the benchmarks' peak RSS should be the
         * pipeline's, not the file's): the mapping is private and never
         * written, so a page touched again is read back from the file and
         * every pointer given out stays valid. */
        if (r->pos - r->dropped > (8u << 20)) {
                size_t page = (size_t)sysconf(_SC_PAGESIZE);
                size_t end = (r->pos - (1u << 20)) / page * page;
                if (end > r->dropped) {
                        (void)madvise((void *)(r->map + r->dropped),
                                      end - r->dropped, MADV_DONTNEED);
                        r->dropped = end;
                }
        }
        return CF_OK;
}

void cf_genfile_rewind(cf_genfile_reader *r)
{
        r->pos = r->first;
        r->count = 0;
        r->dropped = 0;
}

void cf_genfile_reader_close(cf_genfile_reader *r)
{
        if (!r)
                return;
        if (r->map)
                munmap((void *)r->map, r->size);
        for (uint32_t i = 0; i < CF_GENFILE_MAX_TOPICS; i++)
                free(r->topics[i]);
        free(r);
}
