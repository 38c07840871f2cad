/* kafka.c: librdkafka set-up helpers (see kafka.h). */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cf_err_t cf_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                           const char *value, char *errstr, size_t errstr_size)
{
        char msg[256];
        if (rd_kafka_conf_set(conf, key, value, msg, sizeof(msg)) !=
            RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "kafka.%s: %s", key, msg);
                return CF_ERR_CONFIG;
        }
        return CF_OK;
}

rd_kafka_conf_t *cf_kafka_conf_new(const char *bootstrap, const cf_kv *extra,
                                   size_t n_extra, char *errstr,
                                   size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (cf_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "log_level", "4", errstr, errstr_size))
                goto fail;
        for (size_t i = 0; i < n_extra; i++)
                if (cf_kafka_conf_set(conf, extra[i].key, extra[i].value,
                                      errstr, errstr_size))
                        goto fail;
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

int cf_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        int n = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size, "metadata of %s: %s", topic,
                         rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err) {
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                       : "not found");
        } else {
                n = md->topics[0].partition_cnt;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return n;
}

cf_err_t cf_kafka_read_all(const char *bootstrap, const char *topic,
                           cf_kafka_record_fn *fn, void *opaque, char *errstr,
                           size_t errstr_size)
{
        cf_err_t err = CF_ERR_KAFKA;
        int64_t *ends = NULL;
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, errstr_size);
        if (!conf)
                return CF_ERR_CONFIG;
        if (cf_kafka_conf_set(conf, "group.id", "chargeflow-reader", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return CF_ERR_CONFIG;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                return CF_ERR_KAFKA;
        int np =
            cf_kafka_partition_count(rk, topic, 10000, errstr, errstr_size);
        if (np < 0)
                goto done;
        ends = calloc((size_t)np + 1, sizeof(int64_t));
        l = rd_kafka_topic_partition_list_new(np);
        int64_t remaining = 0;
        for (int p = 0; p < np; p++) {
                int64_t lo, hi;
                rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                    rk, topic, p, &lo, &hi, 10000);
                if (e) {
                        snprintf(errstr, errstr_size, "offsets of %s [%d]: %s",
                                 topic, p, rd_kafka_err2str(e));
                        goto done;
                }
                ends[p] = hi;
                remaining += hi - lo;
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        }
        if (rd_kafka_assign(rk, l)) {
                snprintf(errstr, errstr_size, "assign %s failed", topic);
                goto done;
        }
        int idle = 0;
        while (remaining > 0 && idle < 300) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (!m->err && m->offset < ends[m->partition]) {
                        remaining--;
                        if (fn(opaque, m)) {
                                rd_kafka_message_destroy(m);
                                break;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        if (remaining > 0) {
                snprintf(errstr, errstr_size,
                         "%s: %lld records not read within 30 s", topic,
                         (long long)remaining);
                goto done;
        }
        err = CF_OK;
done:
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        free(ends);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return err;
}

/* librdkafka (2.0) compares queued.min.messages with the one consumer queue
 * every partition is forwarded to, and once it is exceeded stops fetching
 * for a second (fetch.queue.backoff.ms, settable only from 2.1). At the
 * default 100000 a backlog is read in bursts with idle seconds between them
 * (about 230k events/s end to end on the embedded broker); a million keeps
 * the fetcher ahead of the tasks, and the prefetched records are bounded by
 * bytes instead: 32 MiB (librdkafka's default is 64; measured on the small
 * preset: 64 MiB adds about 100 MiB of RSS for 10 % more speed, 16 MiB
 * halves the speed). */
cf_err_t cf_kafka_consumer_defaults(rd_kafka_conf_t *conf, const cf_config *cfg,
                                    char *errstr, size_t errstr_size)
{
        static const char *const defaults[][2] = {
                { "queued.min.messages", "1000000" },
                { "queued.max.messages.kbytes", "32768" },
        };
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
                if (cfg && cf_config_kafka_get(cfg, defaults[i][0]))
                        continue;
                cf_err_t err = cf_kafka_conf_set(
                    conf, defaults[i][0], defaults[i][1], errstr, errstr_size);
                if (err)
                        return err;
        }
        return CF_OK;
}
