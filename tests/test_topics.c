/*
 * test_topics.c: `chargeflow topics create|check` and the layout rules of
 * pipeline/kafka/topics.c, over TCP on the broker the tests run on (harness.h).
 *
 * The admin requests (CreateTopics, DescribeConfigs, DeleteRecords) are
 * served by the peer and by a real cluster, not by the embedded broker,
 * which makes its topics itself: there those tests skip, saying so, and the
 * layout test runs on the partition counts alone.
 *
 * Expected messages are the rules written out: the two inputs must have one
 * partition count, tables must be compact only, and so on (README,
 * "Setting up a cluster").
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
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "harness.h"
#include "topics.h"

static cf_test_broker broker;

static int setup(void **state)
{
        (void)state;
        return cf_test_broker_start(&broker, 4) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        return cf_test_broker_stop(&broker) == 0 ? 0 : -1;
}

static void need_admin(void)
{
        if (cf_test_broker_kind() == CF_BROKER_MOCK) {
                print_message("the embedded broker serves no admin "
                              "requests: skipped\n");
                skip();
        }
}

static rd_kafka_t *admin(void)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, err,
                          sizeof(err));
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(rk);
        return rk;
}

/* Creates topic with partitions and one config pair (NULL: none). */
static void create(const char *topic, int partitions, const char *key,
                   const char *value)
{
        char err[256];
        rd_kafka_t *rk = admin();
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof(err));
        assert_non_null(nt);
        if (key)
                assert_int_equal(rd_kafka_NewTopic_set_config(nt, key, value),
                                 0);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
        assert_non_null(ev);
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &n);
        assert_int_equal(n, 1);
        assert_int_equal(rd_kafka_topic_result_error(tr[0]), 0);
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_destroy(rk);
}

/* Runs `chargeflow topics VERB --bootstrap B [--set kv]...`; returns the
 * exit status, *out its stdout (caller frees). */
static int topics(const char *verb, char **out, const char *const *sets)
{
        char *argv[32] = { CF_BINARY,     "topics",         (char *)verb,
                           "--bootstrap", broker.bootstrap, "--timeout-ms",
                           "5000" };
        int k = 7;
        for (int i = 0; sets && sets[i]; i++) {
                argv[k++] = "--set";
                argv[k++] = (char *)sets[i];
        }
        argv[k] = NULL;
        return cf_test_run(argv, out, NULL);
}

static void assert_has(const char *out, const char *line)
{
        if (!strstr(out, line))
                fail_msg("expected the line\n  %s\nin\n%s", line, out);
}

/* The harness made the topics with `topics create`: a second create finds
 * them all and creates nothing, and check passes, with the policies. */
static void create_is_idempotent_and_check_passes(void **state)
{
        (void)state;
        need_admin();
        char *out;
        assert_int_equal(topics("create", &out, NULL), 0);
        assert_null(strstr(out, "created:"));
        assert_null(strstr(out, "problem:"));
        free(out);
        assert_int_equal(topics("check", &out, NULL), 0);
        assert_has(out, "ok: charging.sessions has 4 partitions\n");
        assert_has(out, "ok: chargeflow.billing-repartition has 4 "
                        "partitions\n");
        assert_has(out, "ok: billing.sites cleanup.policy=compact\n");
        assert_has(out, "ok: billing.users cleanup.policy=compact\n");
        assert_has(out, "ok: charging.meter cleanup.policy=delete\n");
        assert_has(out, "ok: billing.charge-records cleanup.policy=delete\n");
        free(out);
}

/* create under other names makes the missing topics, the internal one
 * with the inputs' count although --partitions is not given. */
static void create_follows_the_inputs_partition_count(void **state)
{
        (void)state;
        need_admin();
        create("own.sessions", 3, NULL, NULL);
        create("own.meter", 3, NULL, NULL);
        static const char *const sets[] = {
                "topic.sessions=own.sessions",
                "topic.meter=own.meter",
                "topic.repartition=own.repartition",
                "topic.charge-records=own.charge-records",
                "topic.statements=own.statements",
                "topic.rejected=own.rejected",
                NULL,
        };
        char *out;
        assert_int_equal(topics("create", &out, sets), 0);
        assert_has(out, "created: own.repartition with 3 partitions\n");
        assert_has(out, "created: own.charge-records with 3 partitions\n");
        assert_has(out, "ok: own.statements cleanup.policy=delete\n");
        assert_null(strstr(out, "created: own.sessions"));
        free(out);
}

/* The task logs are kept forever: `create --retention-ms` shortens every
 * other non-table topic but not them, and `check` names a task log that
 * is not kept forever. */
static void task_logs_kept_forever(void **state)
{
        (void)state;
        need_admin();
        char *out;
        char *argv[] = { CF_BINARY,
                         "topics",
                         "create",
                         "--bootstrap",
                         broker.bootstrap,
                         "--timeout-ms",
                         "5000",
                         "--retention-ms",
                         "86400000",
                         "--set",
                         "topic.rating-log=day.rating-log",
                         "--set",
                         "topic.billing-log=day.billing-log",
                         "--set",
                         "topic.rejected=day.rejected",
                         NULL };
        assert_int_equal(cf_test_run(argv, &out, NULL), 0);
        assert_has(out, "created: day.rating-log with 4 partitions\n");
        assert_has(out, "created: day.rejected with 4 partitions\n");
        assert_null(strstr(out, "problem:"));
        free(out);
        /* The same names, checked: the logs pass (created with -1). */
        static const char *const day[] = { "topic.rating-log=day.rating-log",
                                           "topic.billing-log=day.billing-log",
                                           NULL };
        assert_int_equal(topics("check", &out, day), 0);
        free(out);
        create("week.rating-log", 4, "retention.ms", "604800000");
        static const char *const week[] = { "topic.rating-log=week.rating-log",
                                            NULL };
        assert_int_equal(topics("check", &out, week), 1);
        assert_has(out, "problem: week.rating-log (topic.rating-log) has "
                        "retention.ms=604800000: a task log must be kept "
                        "forever (retention.ms=-1): a restore replays it "
                        "whole\n");
        free(out);
}

/* Each thing that would bill wrongly is named, and the exit is 1. */
static void check_names_each_problem(void **state)
{
        (void)state;
        need_admin();
        create("bad.meter", 3, NULL, NULL);
        create("bad.sites", 4, "cleanup.policy", "delete");
        create("bad.users", 4, "cleanup.policy", "compact,delete");
        create("bad.charge-records", 4, "cleanup.policy", "compact");
        static const char *const sets[] = {
                "topic.meter=bad.meter", "topic.sites=bad.sites",
                "topic.users=bad.users",
                "topic.charge-records=bad.charge-records", NULL
        };
        char *out;
        assert_int_equal(topics("check", &out, sets), 1);
        assert_has(out, "problem: charging.sessions has 4 partitions and "
                        "bad.meter 3: the inputs must be co-partitioned (same "
                        "key, same partition count)\n");
        assert_has(out, "problem: bad.sites (topic.sites) has "
                        "cleanup.policy=delete: a table must be compact "
                        "only");
        assert_has(out, "problem: bad.users (topic.users) has "
                        "cleanup.policy=compact,delete: a table must be "
                        "compact only");
        assert_has(out, "problem: bad.charge-records (topic.charge-records) "
                        "has cleanup.policy=compact: compaction keeps only "
                        "the last record per key");
        free(out);
        /* A topic that does not exist is named with its key. */
        static const char *const missing[] = { "topic.users=no.such.users",
                                               NULL };
        assert_int_equal(topics("check", &out, missing), 1);
        assert_has(out, "problem: no.such.users (topic.users) does not "
                        "exist; `chargeflow topics create` makes it\n");
        free(out);
}

/* The rules on partition counts alone (every broker). */
static void layout_rules(void **state)
{
        (void)state;
        cf_config cfg;
        char err[512];
        cf_config_init(&cfg);
        /* sessions meter sites users charge statements rejected repart.
         * rating-log billing-log */
        int good[CF_T__CNT] = { 4, 4, 1, 1, 4, 4, 4, 4, 4, 4 };
        assert_int_equal(cf_topics_check_layout(&cfg, good, err, sizeof(err)),
                         CF_OK);
        /* More output partitions than needed are fine (one writer each). */
        int more[CF_T__CNT] = { 4, 4, 1, 1, 8, 8, 8, 4, 8, 8 };
        assert_int_equal(cf_topics_check_layout(&cfg, more, err, sizeof(err)),
                         CF_OK);
        int skew[CF_T__CNT] = { 4, 8, 1, 1, 8, 8, 8, 8, 8, 8 };
        assert_int_equal(cf_topics_check_layout(&cfg, skew, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "charging.sessions has 4 partitions and "
                                 "charging.meter 8: the inputs must be "
                                 "co-partitioned (same key, same partition "
                                 "count)");
        int few[CF_T__CNT] = { 4, 4, 1, 1, 4, 4, 2, 4, 4, 4 };
        assert_int_equal(cf_topics_check_layout(&cfg, few, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "billing.charge-records and billing.rejected "
                                 "need at least the 4 partitions of the "
                                 "inputs (one writer per partition)");
        int st[CF_T__CNT] = { 4, 4, 1, 1, 4, 2, 4, 4, 4, 4 };
        assert_int_equal(cf_topics_check_layout(&cfg, st, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "billing.statements needs at least the 4 "
                                 "partitions of chargeflow.billing-repartition"
                                 " (one writer per partition)");
        /* A task log with fewer partitions than tasks. */
        int lg[CF_T__CNT] = { 4, 4, 1, 1, 4, 4, 4, 4, 4, 2 };
        assert_int_equal(cf_topics_check_layout(&cfg, lg, err, sizeof(err)),
                         CF_ERR_CONFIG);
        assert_string_equal(err, "chargeflow.rating-log needs at least the 4 "
                                 "partitions of the inputs and "
                                 "chargeflow.billing-log the 4 of "
                                 "chargeflow.billing-repartition (one task "
                                 "per partition)");
        cf_config_destroy(&cfg);
}

/* `chargeflow run` on inputs that are not co-partitioned: exit 2 with the
 * message, before it reads anything. */
static void run_refuses_inputs_not_co_partitioned(void **state)
{
        (void)state;
        need_admin();
        create("skew.meter", 2, NULL, NULL);
        char cfg[128], sd[128], line[1024];
        snprintf(cfg, sizeof(cfg), "/tmp/cf-test-topics-%d.properties",
                 (int)getpid());
        snprintf(sd, sizeof(sd), "/tmp/cf-test-topics-%d-state", (int)getpid());
        FILE *f = fopen(cfg, "w");
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s\ntopic.meter=skew.meter\n",
                broker.bootstrap, sd);
        fclose(f);
        char out[160], errp[170];
        snprintf(out, sizeof(out), "/tmp/cf-test-topics-%d.out", (int)getpid());
        snprintf(errp, sizeof(errp), "%s.err", out);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        assert_int_equal(cf_test_wait(cf_test_spawn(run, out), 60), 2);
        f = fopen(errp, "r");
        assert_non_null(f);
        bool said = false;
        while (fgets(line, sizeof(line), f))
                said |= strstr(line, "charging.sessions has 4 partitions and "
                                     "skew.meter 2: the inputs must be "
                                     "co-partitioned") != NULL;
        fclose(f);
        assert_true(said);
        char *rm[] = { "/bin/rm", "-rf", sd, cfg, out, errp, NULL };
        char *o;
        cf_test_run(rm, &o, NULL);
        free(o);
}

/* A table partition whose records are all gone (DeleteRecords here;
 * retention or compaction on a cluster) holds no record at end - 1: start
 * must not wait for one. It did, for ever, before. */
static void run_starts_when_a_table_partition_was_emptied(void **state)
{
        (void)state;
        need_admin();
        char *o;
        char *gen[] = { CF_BINARY,        "gen",    "--preset",
                        "small",          "--seed", "3",
                        "--days",         "1",      "--bootstrap",
                        broker.bootstrap, NULL };
        assert_int_equal(cf_test_run(gen, &o, NULL), 0);
        free(o);
        /* Delete every record of billing.sites, all partitions. */
        rd_kafka_t *rk = admin();
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(4);
        for (int p = 0; p < 4; p++) {
                int64_t lo, hi;
                assert_int_equal(rd_kafka_query_watermark_offsets(
                                     rk, "billing.sites", p, &lo, &hi, 10000),
                                 0);
                rd_kafka_topic_partition_list_add(l, "billing.sites", p)
                    ->offset = hi;
        }
        rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new(l);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DeleteRecords(rk, &dr, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
        assert_non_null(ev);
        assert_int_equal(rd_kafka_event_error(ev), 0);
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_DeleteRecords_destroy(dr);
        for (int p = 0; p < 4; p++) {
                int64_t lo, hi;
                assert_int_equal(rd_kafka_query_watermark_offsets(
                                     rk, "billing.sites", p, &lo, &hi, 10000),
                                 0);
                assert_int_equal(lo, hi);
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);

        char cfg[128], sd[128];
        snprintf(cfg, sizeof(cfg), "/tmp/cf-test-topics-%d-e.properties",
                 (int)getpid());
        snprintf(sd, sizeof(sd), "/tmp/cf-test-topics-%d-e-state",
                 (int)getpid());
        FILE *f = fopen(cfg, "w");
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s\nstats.interval.ms=0\n"
                "unknown.site.wait.ms=1000\n",
                broker.bootstrap, sd);
        fclose(f);
        char out[160];
        snprintf(out, sizeof(out), "/tmp/cf-test-topics-%d-e.out",
                 (int)getpid());
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        assert_int_equal(cf_test_wait(cf_test_spawn(run, out), 120), 0);
        char *rm[] = { "/bin/rm", "-rf", sd, cfg, out, NULL };
        cf_test_run(rm, &o, NULL);
        free(o);
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(layout_rules),
                cmocka_unit_test(create_is_idempotent_and_check_passes),
                cmocka_unit_test(create_follows_the_inputs_partition_count),
                cmocka_unit_test(check_names_each_problem),
                cmocka_unit_test(task_logs_kept_forever),
                cmocka_unit_test(run_refuses_inputs_not_co_partitioned),
                cmocka_unit_test(run_starts_when_a_table_partition_was_emptied),
        };
        return cmocka_run_group_tests_name("topics", tests, setup, teardown);
}
