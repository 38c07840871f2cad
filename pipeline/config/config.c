/* config.c: the configuration table and its loader (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mem.h"

enum { CT_STRING, CT_INT, CT_ENUM };

typedef struct cf_config_entry {
        const char *key;
        int type;
        const char *def;
        size_t offset;
        int64_t min, max;    /* CT_INT bounds */
        const char *choices; /* CT_ENUM: '|'-separated */
        const char *help;
} cf_config_entry;

#define S(k, f, d, h)                                                          \
        {                                                                      \
                k, CT_STRING, d, offsetof(cf_config, f), 0, 0, NULL, h         \
        }
#define I(k, f, d, lo, hi, h)                                                  \
        {                                                                      \
                k, CT_INT, d, offsetof(cf_config, f), lo, hi, NULL, h          \
        }
#define E(k, f, d, c, h)                                                       \
        {                                                                      \
                k, CT_ENUM, d, offsetof(cf_config, f), 0, 0, c, h              \
        }

static const cf_config_entry cf_config_table[] = {
        S("bootstrap.servers", bootstrap_servers, "127.0.0.1:9092",
          "Kafka bootstrap servers (host:port,...)."),
        S("group.id", group_id, "chargeflow",
          "Consumer group of the pipeline's processes."),
        S("group.instance.id", group_instance_id, "",
          "Static group membership (KIP-345): a process restarted with the "
          "same id takes its old place in the group at once, without "
          "waiting for kafka.session.timeout.ms; unique per process. Empty: "
          "dynamic membership."),
        S("topic.sessions", topic_sessions, "charging.sessions",
          "Input topic of session events."),
        S("topic.meter", topic_meter, "charging.meter",
          "Input topic of meter readings."),
        S("topic.sites", topic_sites, "billing.sites",
          "Table topic of site configs (compacted)."),
        S("topic.users", topic_users, "billing.users",
          "Table topic of users (compacted)."),
        S("topic.charge-records", topic_charge_records,
          "billing.charge-records", "Output topic of priced charge records."),
        S("topic.statements", topic_statements, "billing.statements",
          "Output topic of statements."),
        S("topic.rejected", topic_rejected, "billing.rejected",
          "Output topic of rejected input records."),
        S("topic.repartition", topic_repartition,
          "chargeflow.billing-repartition",
          "Internal topic from rating to billing, keyed by billed party."),
        S("topic.rating-log", topic_rating_log, "chargeflow.rating-log",
          "Internal task log of the rating tasks: every commit of rating "
          "task p in partition p, so that any process can take it over."),
        S("topic.billing-log", topic_billing_log, "chargeflow.billing-log",
          "Internal task log of the billing tasks (as topic.rating-log)."),
        S("schema.registry", schema_registry, "builtin",
          "Schema registry: 'builtin' (the ids of schemas/), unless "
          "schema.registry.url is set."),
        S("schema.registry.url", schema_registry_url, "",
          "A Confluent Schema Registry REST API (http:// or https://). At "
          "start the output schemas are registered (or found) under the "
          "subjects <topic>-value and written with the registry's ids; "
          "input writer schemas are fetched by id, once each. Empty: the "
          "built-in registry."),
        S("schema.registry.basic.auth.user.info", schema_registry_auth, "",
          "user:password for HTTP basic authentication to the registry."),
        S("schema.registry.ssl.ca.location", schema_registry_ca, "",
          "CA certificate file (PEM) to verify the registry's certificate; "
          "empty: the system's CAs."),
        S("schema.registry.ssl.certificate.location", schema_registry_cert, "",
          "Client certificate file (PEM) for TLS client authentication."),
        S("schema.registry.ssl.key.location", schema_registry_key, "",
          "Client private key file (PEM) for TLS client authentication."),
        I("schema.registry.timeout.ms", schema_registry_timeout_ms, "10000",
          100, CF_MS_PER_HOUR,
          "Timeout of one request to the schema registry."),
        E("processing.guarantee", processing_guarantee, "exactly_once",
          "exactly_once|at_least_once",
          "exactly_once: outbox and single-writer recovery; "
          "at_least_once: produce directly (benchmark baseline)."),
        E("task.log", task_log, "on", "on|off",
          "on: every commit also goes to the task's task log "
          "(topic.rating-log, topic.billing-log), so that any process of "
          "the group can take the task over (exactly_once only). off: a "
          "task continues only from this process's state directory: run "
          "one process per group.id (the benchmarks' baseline)."),
        E("producer.fencing", producer_fencing, "none", "none|transactions",
          "transactions: each task writes through a transactional producer "
          "of its own (transactional.id = group.id.task, e.g. "
          "chargeflow.A-3) and commits one Kafka transaction per commit; "
          "a process that takes the task over first bumps that id's epoch, "
          "which aborts and fences whatever a frozen former owner still "
          "had under way. Needs a broker with transactions and the task "
          "log; readers of the outputs use isolation.level=read_committed "
          "(librdkafka's and Kafka's default). none: no broker-side "
          "fencing (see the README's Zombies)."),
        I("commit.interval.ms", commit_interval_ms, "1000", 1, CF_MS_PER_DAY,
          "How often a task commits its state, offsets and outbox in one "
          "RocksDB WriteBatch."),
        I("max.task.idle.ms", max_task_idle_ms, "500", 0, CF_MS_PER_HOUR,
          "How long a task waits for an empty input before merging by event "
          "time without it."),
        I("input.buffer.max.bytes", input_buffer_max_bytes, "67108864", 1048576,
          INT64_MAX,
          "Input records fetched and waiting in the tasks' queues, in all "
          "(each a copy of its key and value plus 40 bytes). Above it the "
          "process takes no more from librdkafka until the tasks have "
          "worked it down; librdkafka then stops fetching at its own "
          "bounds (kafka.queued.max.messages.kbytes). Input waiting here "
          "costs about a third of what it costs in librdkafka's queue."),
        E("timestamp.source", timestamp_source, "event", "event|kafka",
          "What a rating task's stream time follows (its waits, timeouts, "
          "allowed lateness and the watermark that closes billing "
          "periods). event: each record's own time (time_ms), capped at its "
          "Kafka timestamp, so that history published late with the "
          "producer's clock is billed in its own periods. kafka: the Kafka "
          "record timestamp (the producer's CreateTime, or the broker's "
          "LogAppendTime). README: Stream time."),
        I("stats.interval.ms", stats_interval_ms, "10000", 0, CF_MS_PER_DAY,
          "How often counters are logged; 0 disables."),
        I("idle.exit.ms", idle_exit_ms, "2000", 100, CF_MS_PER_HOUR,
          "With --until-idle: how long every input must stay read to its end "
          "before the run drains and exits."),
        E("log.level", log_level, "info", "debug|info|warn|error",
          "Lowest level of log lines written to stderr."),
        E("log.format", log_format, "text", "text|json",
          "text: 'time LEVEL message' lines; json: one JSON object per line "
          "with level, time, component, message and fields."),
        S("metrics.listen", metrics_listen, "",
          "host:port of the HTTP endpoint serving Prometheus metrics at "
          "/metrics and the probes /health/live and /health/ready. Empty: "
          "none."),
        S("state.dir", state_dir, "./chargeflow-state",
          "Directory of the RocksDB state; keep it across restarts."),
        I("state.cache.max.bytes", state_cache_max_bytes, "67108864", 1048576,
          INT64_MAX,
          "Upper bound of the in-memory write-back caches of all of the "
          "process's tasks together: 3/4 for the rating tasks, 1/4 for the "
          "billing tasks, each part split evenly among the partitions of "
          "its kind. Only clean entries are evicted, so state changed since "
          "the last commit comes on top."),
        I("state.block.cache.bytes", state_block_cache_bytes, "16777216",
          1048576, INT64_MAX,
          "RocksDB's block cache, shared by every task and column family of "
          "the process: what the write-back caches miss (and the users "
          "table's cache misses) is read through it, with the index and "
          "filter blocks of the files."),
        I("state.write.buffer.bytes", state_write_buffer_bytes, "33554432",
          4194304, INT64_MAX,
          "Upper bound of RocksDB's memtables over all column families "
          "together (db_write_buffer_size): what commits wrote and is not "
          "yet flushed to files. Smaller flushes more often and writes "
          "more to disk."),
        I("num.standby.replicas", num_standby_replicas, "0", 0, 1000,
          "Standby copies (Kafka Streams' name; exactly_once with task.log=on "
          "only). 1: the process keeps a copy of each task it would be "
          "given if any one other member of the group left (predicted from "
          "the group's members and the range assignor; every task it does "
          "not own when the members cannot be learned), applying the task "
          "logs' commits as they come, so that a takeover applies only "
          "what the copy lacks instead of the whole log. 2 or more: a copy "
          "of every task the process does not own. 0: none. README: "
          "Scaling out."),
        I("task.log.snapshot.bytes", task_log_snapshot_bytes, "67108864", 4096,
          INT64_MAX,
          "A task writes its whole state to its task log, and has the "
          "records before it deleted (DeleteRecords), once what it wrote "
          "there since its last whole state exceeds this and twice that "
          "state's size: a restore reads at most about three times a "
          "task's state."),
        I("tables.cache.max.bytes", tables_cache_max_bytes, "33554432", 0,
          INT64_MAX,
          "Memory of the users table's cache (users and badge index, changes "
          "not yet written included); the table itself is in RocksDB, so "
          "memory does not grow with users. Sites are all in memory."),
        I("allowed.lateness.ms", allowed_lateness_ms, "60000", 0, CF_MS_PER_DAY,
          "How far past a session's stop the task's event time must be "
          "before the session is priced, so that late readings count."),
        I("session.timeout.ms", session_timeout_ms, "7200000", 60000,
          30 * CF_MS_PER_DAY,
          "A session with no record for this long (stream time) while its "
          "charger goes on sending others is closed from its last reading, "
          "flagged STOP_ESTIMATED (its stop was lost)."),
        I("session.offline.ms", session_offline_ms, "604800000", 60000,
          365 * CF_MS_PER_DAY,
          "A session with no record at all for this long of stream time is "
          "closed the same way (its charger never came back); shorter "
          "silences are a charger offline, whose upload is awaited."),
        I("correction.window.ms", correction_window_ms, "3024000000", 0,
          3660 * CF_MS_PER_DAY,
          "How long (stream time) a closed session stays correctable: a "
          "late stop or late readings within it re-price the session as a "
          "revision of its charge record, billed as a difference; later "
          "ones are rejected as TOO_LATE. 0: no corrections."),
        I("max.clock.skew.ms", max_clock_skew_ms, "86400000", 1000,
          365 * CF_MS_PER_DAY,
          "Records whose time is further than this ahead of the task's event "
          "time are rejected as CLOCK."),
        I("orphan.wait.ms", orphan_wait_ms, "3600000", 0, 30 * CF_MS_PER_DAY,
          "How long readings wait for their session before ORPHAN."),
        I("unknown.site.wait.ms", unknown_site_wait_ms, "600000", 0,
          30 * CF_MS_PER_DAY,
          "How long records wait for their site config before "
          "UNKNOWN_SITE."),
        I("dedup.window", dedup_window, "1024", 64, 1048576,
          "Sequence numbers below a charger's highest one that are still "
          "tracked individually (reordering tolerance)."),
        I("billing.grace.ms", billing_grace_ms, "86400000", 0,
          365 * CF_MS_PER_DAY,
          "A period closes when its end plus this is behind the watermark."),
        I("billing.statements.per.commit", billing_statements_per_commit,
          "1024", 1, 1000000,
          "Statements a billing task emits at most between two commits: "
          "periods that close for many parties at once leave over several "
          "commits (the same statements), so a commit stays small."),
        I("watermark.idle.ms", watermark_idle_ms, "30000", 0, CF_MS_PER_DAY,
          "A rating task silent for this long (wall clock) stops holding "
          "back billing's watermark."),
};

#define N_ENTRIES (sizeof(cf_config_table) / sizeof(cf_config_table[0]))

static const cf_config_entry *find(const char *key)
{
        for (size_t i = 0; i < N_ENTRIES; i++)
                if (!strcmp(cf_config_table[i].key, key))
                        return &cf_config_table[i];
        return NULL;
}

static bool choice_ok(const char *choices, const char *v)
{
        size_t n = strlen(v);
        const char *p = choices;
        while (p) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                if (len == n && !strncmp(p, v, n))
                        return true;
                p = bar ? bar + 1 : NULL;
        }
        return false;
}

static cf_err_t set_entry(cf_config *cfg, const cf_config_entry *e,
                          const char *value, char *errstr, size_t errstr_size)
{
        void *f = (char *)cfg + e->offset;
        switch (e->type) {
        case CT_STRING:
                if (!*value && *e->def && strcmp(e->key, "log.level")) {
                        snprintf(errstr, errstr_size,
                                 "%s: value must not be empty", e->key);
                        return CF_ERR_CONFIG;
                }
                free(*(char **)f);
                *(char **)f = cf_strdup(value);
                return CF_OK;
        case CT_ENUM:
                if (!choice_ok(e->choices, value)) {
                        snprintf(errstr, errstr_size,
                                 "%s: '%s' is not one of %s", e->key, value,
                                 e->choices);
                        return CF_ERR_CONFIG;
                }
                free(*(char **)f);
                *(char **)f = cf_strdup(value);
                return CF_OK;
        case CT_INT: {
                char *end;
                errno = 0;
                long long v = strtoll(value, &end, 10);
                if (!*value || *end || errno) {
                        snprintf(errstr, errstr_size,
                                 "%s: '%s' is not an integer", e->key, value);
                        return CF_ERR_CONFIG;
                }
                if (v < e->min || v > e->max) {
                        snprintf(errstr, errstr_size,
                                 "%s: %lld is out of range [%lld, %lld]",
                                 e->key, v, (long long)e->min,
                                 (long long)e->max);
                        return CF_ERR_CONFIG;
                }
                *(int64_t *)f = v;
                return CF_OK;
        }
        }
        return CF_ERR_CONFIG;
}

void cf_config_init(cf_config *cfg)
{
        char err[256];
        memset(cfg, 0, sizeof(*cfg));
        for (size_t i = 0; i < N_ENTRIES; i++) {
                cf_err_t e =
                    set_entry(cfg, &cf_config_table[i], cf_config_table[i].def,
                              err, sizeof(err));
                if (e) {
                        /* A bad default is a programming error. */
                        fprintf(stderr, "chargeflow: bad default: %s\n", err);
                        abort();
                }
        }
}

void cf_config_destroy(cf_config *cfg)
{
        for (size_t i = 0; i < N_ENTRIES; i++) {
                const cf_config_entry *e = &cf_config_table[i];
                if (e->type == CT_STRING || e->type == CT_ENUM) {
                        char **f = (char **)((char *)cfg + e->offset);
                        free(*f);
                        *f = NULL;
                }
        }
        for (size_t i = 0; i < cfg->n_kafka; i++) {
                free(cfg->kafka[i].key);
                free(cfg->kafka[i].value);
        }
        free(cfg->kafka);
        cfg->kafka = NULL;
        cfg->n_kafka = 0;
}

cf_err_t cf_config_set(cf_config *cfg, const char *key, const char *value,
                       char *errstr, size_t errstr_size)
{
        if (!strncmp(key, "kafka.", 6)) {
                const char *k = key + 6;
                if (!*k) {
                        snprintf(errstr, errstr_size,
                                 "%s: a librdkafka property name must follow "
                                 "'kafka.'",
                                 key);
                        return CF_ERR_CONFIG;
                }
                for (size_t i = 0; i < cfg->n_kafka; i++) {
                        if (!strcmp(cfg->kafka[i].key, k)) {
                                free(cfg->kafka[i].value);
                                cfg->kafka[i].value = cf_strdup(value);
                                return CF_OK;
                        }
                }
                cfg->kafka =
                    cf_realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(cf_kv));
                cfg->kafka[cfg->n_kafka].key = cf_strdup(k);
                cfg->kafka[cfg->n_kafka].value = cf_strdup(value);
                cfg->n_kafka++;
                return CF_OK;
        }
        const cf_config_entry *e = find(key);
        if (!e) {
                snprintf(errstr, errstr_size,
                         "%s: unknown configuration key (see chargeflow run "
                         "--help-config; librdkafka properties take the "
                         "prefix 'kafka.')",
                         key);
                return CF_ERR_CONFIG;
        }
        return set_entry(cfg, e, value, errstr, errstr_size);
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
                s[--n] = '\0';
        return s;
}

cf_err_t cf_config_set_kv(cf_config *cfg, const char *kv, char *errstr,
                          size_t errstr_size)
{
        char *copy = cf_strdup(kv);
        char *eq = strchr(copy, '=');
        cf_err_t err;
        if (!eq) {
                snprintf(errstr, errstr_size, "'%s': expected key=value", kv);
                free(copy);
                return CF_ERR_CONFIG;
        }
        *eq = '\0';
        err = cf_config_set(cfg, trim(copy), trim(eq + 1), errstr, errstr_size);
        free(copy);
        return err;
}

cf_err_t cf_config_load_file(cf_config *cfg, const char *path, char *errstr,
                             size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0;
        cf_err_t err = CF_OK;
        if (!f) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return CF_ERR_CONFIG;
        }
        while (getline(&line, &cap, f) >= 0) {
                char *s = trim(line);
                lineno++;
                if (!*s || *s == '#' || *s == '!')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        snprintf(errstr, errstr_size,
                                 "%s:%d: expected key=value, got '%s'", path,
                                 lineno, s);
                        err = CF_ERR_CONFIG;
                        break;
                }
                *eq = '\0';
                char msg[512];
                err =
                    cf_config_set(cfg, trim(s), trim(eq + 1), msg, sizeof(msg));
                if (err) {
                        snprintf(errstr, errstr_size, "%s:%d: %s", path, lineno,
                                 msg);
                        break;
                }
        }
        free(line);
        fclose(f);
        return err;
}

cf_err_t cf_config_validate(const cf_config *cfg, char *errstr,
                            size_t errstr_size)
{
        if (cf_config_kafka_get(cfg, "bootstrap.servers")) {
                snprintf(errstr, errstr_size,
                         "kafka.bootstrap.servers: set bootstrap.servers "
                         "instead");
                return CF_ERR_CONFIG;
        }
        if (cf_config_kafka_get(cfg, "group.id")) {
                snprintf(errstr, errstr_size,
                         "kafka.group.id: set group.id instead");
                return CF_ERR_CONFIG;
        }
        if (cf_config_kafka_get(cfg, "group.instance.id")) {
                snprintf(errstr, errstr_size,
                         "kafka.group.instance.id: set group.instance.id "
                         "instead");
                return CF_ERR_CONFIG;
        }
        if (*cfg->schema_registry_url &&
            strncmp(cfg->schema_registry_url, "http://", 7) &&
            strncmp(cfg->schema_registry_url, "https://", 8)) {
                snprintf(errstr, errstr_size,
                         "schema.registry.url: '%s' is not an http:// or "
                         "https:// URL",
                         cfg->schema_registry_url);
                return CF_ERR_CONFIG;
        }
        if (*cfg->metrics_listen) {
                const char *colon = strrchr(cfg->metrics_listen, ':');
                char *end = NULL;
                long port = colon ? strtol(colon + 1, &end, 10) : -1;
                if (!colon || colon == cfg->metrics_listen || !colon[1] ||
                    *end || port < 0 || port > 65535) {
                        snprintf(errstr, errstr_size,
                                 "metrics.listen: '%s' is not host:port",
                                 cfg->metrics_listen);
                        return CF_ERR_CONFIG;
                }
        }
        if (cf_config_kafka_get(cfg, "allow.auto.create.topics")) {
                snprintf(errstr, errstr_size,
                         "kafka.allow.auto.create.topics: chargeflow never "
                         "creates topics by using them (a misspelt name "
                         "must fail); create them beforehand");
                return CF_ERR_CONFIG;
        }
        if (strcmp(cfg->schema_registry, "builtin")) {
                snprintf(errstr, errstr_size,
                         "schema.registry: '%s' is not supported; only "
                         "'builtin' is",
                         cfg->schema_registry);
                return CF_ERR_CONFIG;
        }
        return CF_OK;
}

const char *cf_config_kafka_get(const cf_config *cfg, const char *key)
{
        for (size_t i = 0; i < cfg->n_kafka; i++)
                if (!strcmp(cfg->kafka[i].key, key))
                        return cfg->kafka[i].value;
        return NULL;
}

void cf_config_print_help(FILE *f, bool markdown)
{
        if (markdown) {
                fprintf(f, "| key | type | default | description |\n");
                fprintf(f, "| --- | --- | --- | --- |\n");
        }
        for (size_t i = 0; i < N_ENTRIES; i++) {
                const cf_config_entry *e = &cf_config_table[i];
                char type[160];
                if (e->type == CT_INT)
                        snprintf(type, sizeof(type), "integer %lld..%lld",
                                 (long long)e->min, (long long)e->max);
                else if (e->type == CT_ENUM)
                        snprintf(type, sizeof(type), "%s", e->choices);
                else
                        snprintf(type, sizeof(type), "string");
                if (markdown) {
                        char choices[160];
                        snprintf(choices, sizeof(choices), "%s", type);
                        for (char *p = choices; *p; p++)
                                if (*p == '|')
                                        *p = '/';
                        if (*e->def)
                                fprintf(f, "| `%s` | %s | `%s` | %s |\n",
                                        e->key, choices, e->def, e->help);
                        else
                                fprintf(f, "| `%s` | %s | (empty) | %s |\n",
                                        e->key, choices, e->help);
                } else {
                        fprintf(f, "%-24s %s (default %s)\n  %s\n", e->key,
                                type, *e->def ? e->def : "empty", e->help);
                }
        }
        if (markdown)
                fprintf(f, "| `kafka.*` | string | | Passed to librdkafka "
                           "without the prefix, e.g. `kafka.security."
                           "protocol=SSL`. |\n");
        else
                fprintf(f,
                        "%-24s string\n  Passed to librdkafka without the "
                        "prefix.\n",
                        "kafka.*");
}
