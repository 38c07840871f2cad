/*
 * config.h: the pipeline's configuration, loaded from one properties file
 * (key=value, '#' comments, the Kafka convention) and --set overrides.
 *
 * One declarative table (cf_config_table in config.c: key, type, default,
 * bounds, offset into struct cf_config, help) drives loading, validation,
 * `chargeflow run --help-config` and the README's configuration section.
 * Keys starting with "kafka." go to librdkafka unchanged (prefix removed).
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct cf_kv {
        char *key;
        char *value;
} cf_kv;

typedef struct cf_config {
        /* Kafka */
        char *bootstrap_servers;
        char *group_id;
        char *group_instance_id; /* "" = dynamic membership */
        char *topic_sessions;
        char *topic_meter;
        char *topic_sites;
        char *topic_users;
        char *topic_charge_records;
        char *topic_statements;
        char *topic_rejected;
        char *topic_repartition;
        char *topic_rating_log;
        char *topic_billing_log;
        char *schema_registry;
        char *schema_registry_url; /* "" = the built-in registry */
        char *schema_registry_auth;
        char *schema_registry_ca;
        char *schema_registry_cert;
        char *schema_registry_key;
        int64_t schema_registry_timeout_ms;
        /* Processing */
        char *processing_guarantee; /* exactly_once | at_least_once */
        char *task_log;             /* on | off */
        char *producer_fencing;     /* none | transactions */
        int64_t commit_interval_ms;
        int64_t max_task_idle_ms;
        int64_t input_buffer_max_bytes;
        char *timestamp_source; /* event | kafka */
        int64_t stats_interval_ms;
        int64_t idle_exit_ms;
        char *log_level;
        char *log_format;     /* text | json */
        char *metrics_listen; /* "" = no metrics endpoint */
        /* State */
        char *state_dir;
        int64_t state_cache_max_bytes;
        int64_t state_block_cache_bytes;
        int64_t state_write_buffer_bytes;
        int64_t task_log_snapshot_bytes;
        int64_t num_standby_replicas;
        int64_t tables_cache_max_bytes;
        /* Rating */
        int64_t allowed_lateness_ms;
        int64_t session_timeout_ms;
        int64_t session_offline_ms;
        int64_t max_clock_skew_ms;
        int64_t orphan_wait_ms;
        int64_t correction_window_ms;
        int64_t unknown_site_wait_ms;
        int64_t dedup_window;
        /* Billing */
        int64_t billing_grace_ms;
        int64_t billing_statements_per_commit;
        int64_t watermark_idle_ms;
        /* kafka.* passthrough, in file order, later keys win */
        cf_kv *kafka;
        size_t n_kafka;
} cf_config;

/* Fills cfg with every key's default. Free with cf_config_destroy(). */
void cf_config_init(cf_config *cfg);

/* Frees what cf_config_init/set allocated; cfg itself is the caller's. */
void cf_config_destroy(cf_config *cfg);

/* Sets one key from its text value. CF_ERR_CONFIG with errstr naming the
 * key and the problem if the key is unknown or the value invalid. */
cf_err_t cf_config_set(cf_config *cfg, const char *key, const char *value,
                       char *errstr, size_t errstr_size);

/* Sets from "key=value" (as given to --set). */
cf_err_t cf_config_set_kv(cf_config *cfg, const char *kv, char *errstr,
                          size_t errstr_size);

/* Loads a properties file: key=value lines, '#' or '!' comments, blank
 * lines; whitespace around keys and values is trimmed. Errors name the file,
 * the line and the key. */
cf_err_t cf_config_load_file(cf_config *cfg, const char *path, char *errstr,
                             size_t errstr_size);

/* Checks rules that span keys (after all sets). */
cf_err_t cf_config_validate(const cf_config *cfg, char *errstr,
                            size_t errstr_size);

/* Returns a kafka.* value (key without the prefix) or NULL. */
const char *cf_config_kafka_get(const cf_config *cfg, const char *key);

/* Prints the table: as aligned text, or as the README's Markdown table. */
void cf_config_print_help(FILE *f, bool markdown);

#endif
