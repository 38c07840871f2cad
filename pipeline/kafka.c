/* kafka.c: librdkafka set-up helpers (see kafka.h). */
#include "kafka.h"

#include <stdio.h>
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
