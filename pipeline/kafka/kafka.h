/*
 * kafka.h: librdkafka set-up shared by the commands: client configs with
 * the project's defaults, and topic metadata helpers. The only module besides
 * the runtime that includes librdkafka; stages never do.
 */
#ifndef CF_KAFKA_H
#define CF_KAFKA_H

#include <signal.h>

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"

/* A new librdkafka config with bootstrap.servers set, logs at warning level
 * and above through log.h, then the extra properties (config.h's kafka.*
 * list; NULL for none) applied in order. NULL with errstr naming the property
 * on error. */
rd_kafka_conf_t *cf_kafka_conf_new(const char *bootstrap, const cf_kv *extra,
                                   size_t n_extra, char *errstr,
                                   size_t errstr_size);

/* The fetch settings of the pipeline's input consumer, unless cfg (may be
 * NULL) sets them with kafka.*: queued.min.messages 1000000 and
 * queued.max.messages.kbytes 32768 (see kafka.c for why). The benchmarks'
 * plain consumer uses the same. */
cf_err_t cf_kafka_consumer_defaults(rd_kafka_conf_t *conf, const cf_config *cfg,
                                    char *errstr, size_t errstr_size);

/* Sets one property; errstr names the key. */
cf_err_t cf_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                           const char *value, char *errstr, size_t errstr_size);

/* The low and high watermarks of partition p of topic, asking the broker;
 * retriable errors (a leader moving, a request timing out) are retried for
 * about 30 s, or until *stop. CF_ERR_KAFKA with errstr ("offsets of T [p]:
 * why") otherwise. */
cf_err_t cf_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t p,
                             volatile sig_atomic_t *stop, int64_t *lo,
                             int64_t *hi, char *errstr, size_t errstr_size);

/* Sets *np to the number of partitions of topic (metadata request,
 * timeout_ms). CF_ERR_KAFKA with errstr set when the topic does not exist or
 * the broker is unreachable. */
cf_err_t cf_kafka_partition_count(rd_kafka_t *rk, const char *topic,
                                  int timeout_ms, int *np, char *errstr,
                                  size_t errstr_size);

/* Calls fn for every record of every partition of topic, from the oldest
 * to the end as of the call (a plain consumer by assignment; commits
 * nothing). Returns CF_OK, or CF_ERR_KAFKA with errstr set. fn returns 0 to
 * go on. */
typedef int(cf_kafka_record_fn)(void *opaque, const rd_kafka_message_t *m);
cf_err_t cf_kafka_read_all(const char *bootstrap, const char *topic,
                           cf_kafka_record_fn *fn, void *opaque, char *errstr,
                           size_t errstr_size);

/* The clients a kafka.* property goes to. */
typedef enum cf_kafka_role {
        CF_KAFKA_PRODUCER = 1,
        CF_KAFKA_CONSUMER = 2,
} cf_kafka_role;

/* True when librdkafka property key applies to clients of role (its own
 * property table says consumer, producer or both); unknown keys apply to
 * every client (setting them fails, naming them). First call from one
 * thread. */
bool cf_kafka_applies(const char *key, cf_kafka_role role);

/* cf_kafka_conf_new() for a client of role: bootstrap.servers, a producer's
 * allow.auto.create.topics=false (a consumer's default; no client of the
 * pipeline creates a topic by using it), and the kafka.* properties of cfg
 * that apply to it, so that a consumer setting never reaches a producer
 * (no CONFWARN). NULL with errstr naming the key
 * on error. */
rd_kafka_conf_t *cf_kafka_client_conf(const cf_config *cfg, cf_kafka_role role,
                                      char *errstr, size_t errstr_size);

/* Checks every kafka.* property of cfg on the clients it applies to,
 * without connecting: CF_ERR_CONFIG with errstr naming the key. */
cf_err_t cf_kafka_check_config(const cf_config *cfg, char *errstr,
                               size_t errstr_size);

/* Asks the broker for the max.message.bytes of n topics (at most 16;
 * one DescribeConfigs request, answered on the returned queue, which the
 * caller destroys). Does not wait: the embedded broker never answers. */
rd_kafka_queue_t *cf_kafka_max_bytes_ask(rd_kafka_t *rk,
                                         const char *const *topics, int n);

/* False while the answer to cf_kafka_max_bytes_ask() has not come; then
 * true, with max[i] the max.message.bytes of topics[i], or -1 when the
 * broker did not tell it. Does not block. */
bool cf_kafka_max_bytes_answer(rd_kafka_queue_t *q, const char *const *topics,
                               int n, int64_t *max);

#endif
