/* kafka.c: librdkafka set-up helpers (see kafka.h). */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

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

/* librdkafka's own log lines go through log.h like every other line (in
 * log.format=json too), as component "librdkafka" with the client and the
 * facility as fields. Called from librdkafka's threads: log.h is
 * thread-safe. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                      const char *buf)
{
        /* syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug */
        int lv = level <= 3   ? CF_LOG_ERROR
                 : level == 4 ? CF_LOG_WARN
                 : level <= 6 ? CF_LOG_INFO
                              : CF_LOG_DEBUG;
        const char *name = rk ? rd_kafka_name(rk) : "";
        cf_buf f;
        cf_buf_init(&f);
        cf_buf_puts(&f, "\"client\":");
        cf_buf_json_str(&f, name, strlen(name));
        cf_buf_puts(&f, ",\"facility\":");
        cf_buf_json_str(&f, fac, strlen(fac));
        cf_logf(lv, "librdkafka", cf_buf_cstr(&f), "%s %s: %s", name, fac, buf);
        cf_buf_free(&f);
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
        rd_kafka_conf_set_log_cb(conf, kafka_log);
        for (size_t i = 0; i < n_extra; i++)
                if (cf_kafka_conf_set(conf, extra[i].key, extra[i].value,
                                      errstr, errstr_size))
                        goto fail;
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

cf_err_t cf_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t p,
                             volatile sig_atomic_t *stop, int64_t *lo,
                             int64_t *hi, char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__INTR; /* stopped */
        for (int a = 0; a < 30 && !*stop; a++) {
                e = rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi,
                                                     10000);
                if (!e)
                        return CF_OK;
                usleep(1000 * 1000);
        }
        snprintf(errstr, errstr_size, "offsets of %s [%d]: %s", topic, (int)p,
                 rd_kafka_err2str(e));
        return CF_ERR_KAFKA;
}

cf_err_t cf_kafka_partition_count(rd_kafka_t *rk, const char *topic,
                                  int timeout_ms, int *np, char *errstr,
                                  size_t errstr_size)
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
        *np = n;
        return n < 0 ? CF_ERR_KAFKA : CF_OK;
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
        int np;
        if (cf_kafka_partition_count(rk, topic, 10000, &np, errstr,
                                     errstr_size))
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

/* librdkafka (2.0) compares queued.min.messages and
 * queued.max.messages.kbytes with the one consumer queue every partition
 * is forwarded to, and once either is exceeded stops fetching for a second
 * (fetch.queue.backoff.ms, settable only from 2.1). The runtime takes what
 * is fetched into the tasks' queues at every turn (input.buffer.max.bytes,
 * as compact copies), so librdkafka's queue stays short unless those are
 * full: the count bound is kept out of the way (a million; at its default
 * of 100,000 a backlog was read in bursts with idle seconds between them),
 * and the bytes bound, 16 MiB (librdkafka's default is 64), only needs to
 * exceed what one fetch response brings: fetch.max.bytes 4 MiB, 256 KiB
 * per partition. Measured on the peer broker against the former 32 MiB
 * and 1 MiB per partition, with the tasks holding librdkafka's messages:
 * small 1.25x the speed and 55 MiB less peak RSS, city the same speed and
 * 85 MiB less (bench/README, "Input in compact queues"). */
cf_err_t cf_kafka_consumer_defaults(rd_kafka_conf_t *conf, const cf_config *cfg,
                                    char *errstr, size_t errstr_size)
{
        static const char *const defaults[][2] = {
                { "queued.min.messages", "1000000" },
                { "queued.max.messages.kbytes", "16384" },
                { "fetch.max.bytes", "4194304" },
                { "max.partition.fetch.bytes", "262144" },
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

/* ---- which client a property is for ------------------------------------ */

/* The C/P column of librdkafka's own property table
 * (rd_kafka_conf_properties_show(), the source of its CONFIGURATION.md):
 * "C" consumer, "P" producer, "*" both. Parsed once, on first use. */
static char *props_table;

static const char *prop_scope(const char *key)
{
        if (!props_table) {
                size_t n = 0;
                FILE *f = open_memstream(&props_table, &n);
                if (!f)
                        return "*";
                rd_kafka_conf_properties_show(f);
                fclose(f);
        }
        size_t kl = strlen(key);
        for (const char *l = props_table; l && *l;) {
                const char *end = strchr(l, '\n');
                if (!strncmp(l, key, kl) && (l[kl] == ' ' || l[kl] == '|')) {
                        const char *bar = strchr(l, '|');
                        if (bar && (!end || bar < end)) {
                                const char *c = bar + 1;
                                while (*c == ' ')
                                        c++;
                                if (*c == 'C')
                                        return "C";
                                if (*c == 'P')
                                        return "P";
                                return "*";
                        }
                }
                l = end ? end + 1 : NULL;
        }
        return "*"; /* unknown: rd_kafka_conf_set() will name it */
}

bool cf_kafka_applies(const char *key, cf_kafka_role role)
{
        const char *s = prop_scope(key);
        if (*s == 'C')
                return role == CF_KAFKA_CONSUMER;
        if (*s == 'P')
                return role == CF_KAFKA_PRODUCER;
        return true;
}

rd_kafka_conf_t *cf_kafka_client_conf(const cf_config *cfg, cf_kafka_role role,
                                      char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = cf_kafka_conf_new(cfg->bootstrap_servers, NULL,
                                                  0, errstr, errstr_size);
        if (!conf)
                return NULL;
        /* Topics are never created by using them: a misspelt topic name
         * must fail, not make an empty topic. A broker creates one on a
         * metadata request that allows it: librdkafka's producers allow it
         * by default, its consumers do not (setting it on a consumer only
         * makes brokers older than the flag print a warning). config.c
         * refuses kafka.allow.auto.create.topics. */
        if (role == CF_KAFKA_PRODUCER &&
            cf_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        for (size_t i = 0; i < cfg->n_kafka; i++) {
                if (!cf_kafka_applies(cfg->kafka[i].key, role))
                        continue;
                if (cf_kafka_conf_set(conf, cfg->kafka[i].key,
                                      cfg->kafka[i].value, errstr,
                                      errstr_size)) {
                        rd_kafka_conf_destroy(conf);
                        return NULL;
                }
        }
        return conf;
}

cf_err_t cf_kafka_check_config(const cf_config *cfg, char *errstr,
                               size_t errstr_size)
{
        for (int r = CF_KAFKA_PRODUCER; r <= CF_KAFKA_CONSUMER; r++) {
                rd_kafka_conf_t *c = cf_kafka_client_conf(cfg, (cf_kafka_role)r,
                                                          errstr, errstr_size);
                if (!c)
                        return CF_ERR_CONFIG;
                rd_kafka_conf_destroy(c);
        }
        return CF_OK;
}

rd_kafka_queue_t *cf_kafka_max_bytes_ask(rd_kafka_t *rk,
                                         const char *const *topics, int n)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_ConfigResource_t *res[16];
        if (n > 16)
                n = 16;
        for (int i = 0; i < n; i++)
                res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                     topics[i]);
        rd_kafka_DescribeConfigs(rk, res, (size_t)n, NULL, q);
        rd_kafka_ConfigResource_destroy_array(res, (size_t)n);
        return q;
}

bool cf_kafka_max_bytes_answer(rd_kafka_queue_t *q, const char *const *topics,
                               int n, int64_t *max)
{
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 0);
        if (!ev)
                return false;
        for (int i = 0; i < n; i++)
                max[i] = -1;
        const rd_kafka_DescribeConfigs_result_t *r =
            rd_kafka_event_error(ev)
                ? NULL
                : rd_kafka_event_DescribeConfigs_result(ev);
        size_t nr = 0;
        const rd_kafka_ConfigResource_t **rs =
            r ? rd_kafka_DescribeConfigs_result_resources(r, &nr) : NULL;
        for (size_t k = 0; k < nr; k++) {
                size_t nc = 0;
                const char *name = rd_kafka_ConfigResource_name(rs[k]);
                if (rd_kafka_ConfigResource_error(rs[k]))
                        continue;
                const rd_kafka_ConfigEntry_t **ce =
                    rd_kafka_ConfigResource_configs(rs[k], &nc);
                for (size_t c = 0; c < nc; c++) {
                        const char *v = rd_kafka_ConfigEntry_value(ce[c]);
                        if (!v || strcmp(rd_kafka_ConfigEntry_name(ce[c]),
                                         "max.message.bytes"))
                                continue;
                        for (int i = 0; i < n; i++)
                                if (!strcmp(topics[i], name))
                                        max[i] = strtoll(v, NULL, 10);
                }
        }
        rd_kafka_event_destroy(ev);
        return true;
}
