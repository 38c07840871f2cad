/*
 * test_config.c: the properties loader and the configuration table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "kafka.h"

static char *write_file(const char *text)
{
        static char path[64];
        snprintf(path, sizeof(path), "/tmp/cf-test-config-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void defaults_are_set(void **state)
{
        (void)state;
        cf_config c;
        cf_config_init(&c);
        assert_string_equal(c.bootstrap_servers, "127.0.0.1:9092");
        assert_string_equal(c.group_id, "chargeflow");
        assert_string_equal(c.topic_sessions, "charging.sessions");
        assert_string_equal(c.topic_repartition,
                            "chargeflow.billing-repartition");
        assert_string_equal(c.processing_guarantee, "exactly_once");
        assert_true(c.commit_interval_ms == 1000);
        assert_true(c.session_timeout_ms == 7200000);
        assert_true(c.billing_grace_ms == 86400000);
        assert_int_equal(c.n_kafka, 0);
        cf_config_destroy(&c);
}

static void file_then_overrides(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        const char *path = write_file("# a comment\n"
                                      "! another comment\n"
                                      "\n"
                                      "  bootstrap.servers = 127.0.0.1:1234  \n"
                                      "commit.interval.ms=250\n"
                                      "state.dir=/var/lib/chargeflow\n"
                                      "processing.guarantee=at_least_once\n");
        cf_config_init(&c);
        assert_int_equal(cf_config_load_file(&c, path, err, sizeof(err)),
                         CF_OK);
        assert_string_equal(c.bootstrap_servers, "127.0.0.1:1234");
        assert_true(c.commit_interval_ms == 250);
        assert_string_equal(c.state_dir, "/var/lib/chargeflow");
        assert_string_equal(c.processing_guarantee, "at_least_once");
        /* --set after the file wins. */
        assert_int_equal(
            cf_config_set_kv(&c, "commit.interval.ms=100", err, sizeof(err)),
            CF_OK);
        assert_true(c.commit_interval_ms == 100);
        /* Untouched keys keep their defaults. */
        assert_true(c.max_task_idle_ms == 500);
        cf_config_destroy(&c);
        unlink(path);
}

static void unknown_key_is_named(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        const char *path = write_file("commit.interval.ms=5\n"
                                      "comit.interval.ms=10\n");
        cf_config_init(&c);
        assert_int_equal(cf_config_load_file(&c, path, err, sizeof(err)),
                         CF_ERR_CONFIG);
        /* file, line 2, and the key */
        assert_non_null(strstr(err, ":2: comit.interval.ms: unknown"));
        assert_int_equal(cf_config_set_kv(&c, "nope=1", err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_non_null(strstr(err, "nope: unknown configuration key"));
        cf_config_destroy(&c);
        unlink(path);
}

static void bad_values_are_named(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_int_equal(
            cf_config_set(&c, "commit.interval.ms", "fast", err, sizeof(err)),
            CF_ERR_CONFIG);
        assert_string_equal(err,
                            "commit.interval.ms: 'fast' is not an integer");
        assert_int_equal(
            cf_config_set(&c, "commit.interval.ms", "0", err, sizeof(err)),
            CF_ERR_CONFIG);
        assert_string_equal(
            err, "commit.interval.ms: 0 is out of range [1, 86400000]");
        assert_int_equal(
            cf_config_set(&c, "commit.interval.ms", "12abc", err, sizeof(err)),
            CF_ERR_CONFIG);
        assert_int_equal(cf_config_set(&c, "processing.guarantee", "maybe", err,
                                       sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "processing.guarantee: 'maybe' is not one "
                                 "of exactly_once|at_least_once");
        assert_int_equal(cf_config_set(&c, "state.dir", "", err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "state.dir: value must not be empty");
        /* A failed set leaves the old value. */
        assert_true(c.commit_interval_ms == 1000);
        assert_int_equal(
            cf_config_set_kv(&c, "no-equals-sign", err, sizeof(err)),
            CF_ERR_CONFIG);
        cf_config_destroy(&c);
}

static void kafka_keys_pass_through(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_int_equal(
            cf_config_set_kv(&c, "kafka.fetch.wait.max.ms=5", err, sizeof(err)),
            CF_OK);
        assert_int_equal(cf_config_set_kv(&c,
                                          "kafka.socket.keepalive.enable"
                                          "=true",
                                          err, sizeof(err)),
                         CF_OK);
        assert_int_equal(
            cf_config_set_kv(&c, "kafka.fetch.wait.max.ms=7", err, sizeof(err)),
            CF_OK);
        assert_int_equal(c.n_kafka, 2);
        assert_string_equal(c.kafka[0].key, "fetch.wait.max.ms");
        assert_string_equal(c.kafka[0].value, "7");
        assert_string_equal(cf_config_kafka_get(&c, "socket.keepalive.enable"),
                            "true");
        assert_null(cf_config_kafka_get(&c, "acks"));
        assert_int_equal(cf_config_set_kv(&c, "kafka.=1", err, sizeof(err)),
                         CF_ERR_CONFIG);
        /* A pipeline key smuggled through kafka.* is refused. */
        assert_int_equal(
            cf_config_set_kv(&c, "kafka.group.id=x", err, sizeof(err)), CF_OK);
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "kafka.group.id: set group.id instead");
        cf_config_destroy(&c);
}

/* group.instance.id: empty by default (dynamic membership), may be set and
 * set back to empty; not through kafka.*, where it would reach the
 * pipeline's other consumers too. */
static void group_instance_id_is_optional(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_string_equal(c.group_instance_id, "");
        assert_int_equal(cf_config_set_kv(&c, "group.instance.id=cf-host-1",
                                          err, sizeof(err)),
                         CF_OK);
        assert_string_equal(c.group_instance_id, "cf-host-1");
        assert_int_equal(
            cf_config_set_kv(&c, "group.instance.id=", err, sizeof(err)),
            CF_OK);
        assert_string_equal(c.group_instance_id, "");
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)), CF_OK);
        assert_int_equal(
            cf_config_set_kv(&c, "kafka.group.instance.id=x", err, sizeof(err)),
            CF_OK);
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "kafka.group.instance.id: set "
                                 "group.instance.id instead");
        cf_config_destroy(&c);
}

/* Issue 15: no topic is created by using it, so the setting that would
 * allow it is refused, naming the key. */
static void auto_create_topics_is_refused(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_int_equal(cf_config_set_kv(&c,
                                          "kafka.allow.auto.create.topics=true",
                                          err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_true(!strncmp(err, "kafka.allow.auto.create.topics: ", 32));
        cf_config_destroy(&c);
}

/* Issue 15: kafka.* settings go to the clients they apply to, by the C/P
 * column of librdkafka's CONFIGURATION.md: queued.min.messages and
 * session.timeout.ms are C, linger.ms and enable.idempotence P,
 * client.id and socket.timeout.ms both; a name librdkafka does not know
 * goes to every client (setting it fails, naming it). */
static void kafka_settings_are_routed_by_client(void **state)
{
        (void)state;
        static const struct {
                const char *key;
                bool producer, consumer;
        } want[] = {
                { "queued.min.messages", false, true },
                { "session.timeout.ms", false, true },
                { "linger.ms", true, false },
                { "enable.idempotence", true, false },
                { "client.id", true, true },
                { "socket.timeout.ms", true, true },
                { "no.such.property", true, true },
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                assert_int_equal(
                    cf_kafka_applies(want[i].key, CF_KAFKA_PRODUCER),
                    want[i].producer);
                assert_int_equal(
                    cf_kafka_applies(want[i].key, CF_KAFKA_CONSUMER),
                    want[i].consumer);
        }
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_int_equal(
            cf_config_set_kv(&c, "kafka.no.such.property=1", err, sizeof(err)),
            CF_OK);
        assert_int_equal(cf_kafka_check_config(&c, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_true(!strncmp(err, "kafka.no.such.property: ", 24));
        cf_config_destroy(&c);
}

static void missing_file_is_named(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_int_equal(cf_config_load_file(&c, "/nonexistent/cf.properties",
                                             err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "/nonexistent/cf.properties: No such file "
                                 "or directory");
        cf_config_destroy(&c);
}

/* The README's configuration section is the table's Markdown output. */
/* Defaults keep the old behaviour; bad ops values name their key. */
static void ops_keys_default_off_and_bad_values_named(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_string_equal(c.schema_registry_url, "");
        assert_string_equal(c.metrics_listen, "");
        assert_string_equal(c.log_format, "text");
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)), CF_OK);
        assert_int_equal(
            cf_config_set(&c, "log.format", "xml", err, sizeof(err)),
            CF_ERR_CONFIG);
        assert_string_equal(err, "log.format: 'xml' is not one of text|json");
        assert_int_equal(cf_config_set(&c, "schema.registry.url",
                                       "registry:8081", err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "schema.registry.url: 'registry:8081' is "
                                 "not an http:// or https:// URL");
        assert_int_equal(cf_config_set(&c, "schema.registry.url",
                                       "https://sr.example:8081", err,
                                       sizeof(err)),
                         CF_OK);
        const char *bad[] = { "9100", "host:", ":9100", "host:99999",
                              "host:x" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char want[128];
                assert_int_equal(cf_config_set(&c, "metrics.listen", bad[i],
                                               err, sizeof(err)),
                                 CF_OK);
                assert_int_equal(cf_config_validate(&c, err, sizeof(err)),
                                 CF_ERR_CONFIG);
                snprintf(want, sizeof(want),
                         "metrics.listen: '%s' is not host:port", bad[i]);
                assert_string_equal(err, want);
        }
        assert_int_equal(cf_config_set(&c, "metrics.listen", "0.0.0.0:9100",
                                       err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_config_validate(&c, err, sizeof(err)), CF_OK);
        cf_config_destroy(&c);
}

/* timestamp.source: event by default; kafka; anything else is named. */
static void timestamp_source_default_and_bad_value(void **state)
{
        (void)state;
        char err[512];
        cf_config c;
        cf_config_init(&c);
        assert_string_equal(c.timestamp_source, "event");
        assert_int_equal(
            cf_config_set_kv(&c, "timestamp.source=kafka", err, sizeof(err)),
            CF_OK);
        assert_string_equal(c.timestamp_source, "kafka");
        assert_int_equal(cf_config_set(&c, "timestamp.source", "wallclock", err,
                                       sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(
            err, "timestamp.source: 'wallclock' is not one of event|kafka");
        assert_int_equal(
            cf_config_set(&c, "timestamp.source", "", err, sizeof(err)),
            CF_ERR_CONFIG);
        assert_string_equal(err,
                            "timestamp.source: '' is not one of event|kafka");
        assert_string_equal(c.timestamp_source, "kafka"); /* unchanged */
        cf_config_destroy(&c);
}

static void readme_config_table_is_current(void **state)
{
        (void)state;
        char *md = NULL, *readme = NULL;
        size_t mdlen = 0, rlen = 0;
        FILE *f = open_memstream(&md, &mdlen);
        cf_config_print_help(f, true);
        fclose(f);
        f = fopen(CF_SOURCE_DIR "/README.md", "r");
        assert_non_null(f);
        FILE *m = open_memstream(&readme, &rlen);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, m);
        fclose(f);
        fclose(m);
        const char *begin = strstr(readme, "<!-- config-table:begin -->\n");
        const char *end = strstr(readme, "<!-- config-table:end -->");
        assert_non_null(begin);
        assert_non_null(end);
        begin += strlen("<!-- config-table:begin -->\n");
        if ((size_t)(end - begin) != mdlen || memcmp(begin, md, mdlen))
                fail_msg("README.md's configuration table is stale: "
                         "regenerate it with `make readme-config`");
        free(md);
        free(readme);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(defaults_are_set),
                cmocka_unit_test(file_then_overrides),
                cmocka_unit_test(unknown_key_is_named),
                cmocka_unit_test(bad_values_are_named),
                cmocka_unit_test(kafka_keys_pass_through),
                cmocka_unit_test(group_instance_id_is_optional),
                cmocka_unit_test(auto_create_topics_is_refused),
                cmocka_unit_test(kafka_settings_are_routed_by_client),
                cmocka_unit_test(missing_file_is_named),
                cmocka_unit_test(ops_keys_default_off_and_bad_values_named),
                cmocka_unit_test(timestamp_source_default_and_bad_value),
                cmocka_unit_test(readme_config_table_is_current),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
