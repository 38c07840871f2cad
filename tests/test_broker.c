/*
 * test_broker.c: `chargeflow broker` and `chargeflow cat`, over TCP.
 *
 * Starts the real binary's embedded broker, checks its topics and partition
 * counts through a separate librdkafka client, produces records encoded with
 * the project's encoder (and one corrupt record), consumes them back with a
 * plain consumer, then reads the topic with `chargeflow cat` and checks its
 * JSON lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "harness.h"

#define PARTITIONS 4

static cf_test_broker broker;

static int setup(void **state)
{
        (void)state;
        return cf_test_broker_start(&broker, PARTITIONS) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        /* A clean stop exits 0. */
        return cf_test_broker_stop(&broker) == 0 ? 0 : -1;
}

static rd_kafka_t *client(rd_kafka_type_t type)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           broker.bootstrap, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        if (type == RD_KAFKA_CONSUMER) {
                rd_kafka_conf_set(conf, "group.id", "test-broker", err,
                                  sizeof(err));
                rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err,
                                  sizeof(err));
        }
        rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
        assert_non_null(rk);
        return rk;
}

static void broker_creates_topics_with_partitions(void **state)
{
        (void)state;
        static const char *const want[] = {
                "charging.sessions",      "charging.meter",
                "billing.sites",          "billing.users",
                "billing.charge-records", "billing.statements",
                "billing.rejected",       "chargeflow.billing-repartition",
        };
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
        const struct rd_kafka_metadata *md;
        assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 10000), 0);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                int found = -1;
                for (int t = 0; t < md->topic_cnt; t++)
                        if (!strcmp(md->topics[t].topic, want[i]))
                                found = md->topics[t].partition_cnt;
                if (found != PARTITIONS)
                        fail_msg("topic %s: %d partitions, want %d", want[i],
                                 found, PARTITIONS);
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
}

static cf_charge_record record_n(int i, char *ids)
{
        cf_charge_record cr;
        memset(&cr, 0, sizeof(cr));
        snprintf(ids, 16, "CR-%d", i);
        cr.record_id = ids;
        cr.tenant_id = "t-1";
        cr.site_id = "site-a";
        cr.charger_id = "CH-1";
        cr.connector_id = 1;
        cr.session_id = ids;
        cr.user_id = NULL;
        cr.badge_id = NULL;
        cr.user_group = "guest";
        cr.party_kind = CF_PARTY_SITE;
        cr.billed_party = "site-a";
        cr.start_ms = 1000;
        cr.stop_ms = 2000;
        cr.energy_wh = 100 * i;
        cr.tariff_id = "T";
        cr.tariff_version_ms = 0;
        cr.currency = "NOK";
        cr.total_excl_vat = 10 * i;
        cr.total_vat = 0;
        cr.total_incl_vat = 10 * i;
        cr.period_id = "2026-11";
        return cr;
}

/* Produces 3 records to partition 1 and a corrupt one to partition 2, reads
 * them back with a plain consumer, then with `chargeflow cat`. */
static void produce_consume_and_cat(void **state)
{
        (void)state;
        char err[512];
        cf_registry *reg;
        assert_int_equal(cf_registry_new(&reg, err, sizeof(err)), CF_OK);
        rd_kafka_t *p = client(RD_KAFKA_PRODUCER);
        for (int i = 1; i <= 3; i++) {
                char ids[16];
                cf_charge_record cr = record_n(i, ids);
                cf_buf b;
                cf_buf_init(&b);
                cf_encode(reg, CF_RT_CHARGE_RECORD, &cr, &b);
                assert_int_equal(rd_kafka_producev(
                                     p,
                                     RD_KAFKA_V_TOPIC("billing.charge-records"),
                                     RD_KAFKA_V_PARTITION(1),
                                     RD_KAFKA_V_KEY(ids, strlen(ids)),
                                     RD_KAFKA_V_VALUE(b.p, b.len),
                                     RD_KAFKA_V_HEADER("cf.task", "A-1", 3),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END),
                                 0);
                cf_buf_free(&b);
        }
        static const uint8_t corrupt[] = { 0, 0, 0, 0, 5, 0x08 };
        assert_int_equal(rd_kafka_producev(
                             p, RD_KAFKA_V_TOPIC("billing.charge-records"),
                             RD_KAFKA_V_PARTITION(2),
                             RD_KAFKA_V_VALUE((void *)corrupt, sizeof(corrupt)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END),
                         0);
        assert_int_equal(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);

        /* A plain consumer sees all four. */
        rd_kafka_t *c = client(RD_KAFKA_CONSUMER);
        rd_kafka_topic_partition_list_t *tl =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tl, "billing.charge-records",
                                          RD_KAFKA_PARTITION_UA);
        assert_int_equal(rd_kafka_subscribe(c, tl), 0);
        rd_kafka_topic_partition_list_destroy(tl);
        int got = 0;
        for (int i = 0; i < 200 && got < 4; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
                if (m && !m->err)
                        got++;
                if (m)
                        rd_kafka_message_destroy(m);
        }
        assert_int_equal(got, 4);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);

        /* chargeflow cat prints them as JSON and exits 0 at the end. */
        char *out;
        char *argv[] = {
                CF_BINARY,          "cat",         "billing.charge-records",
                "--bootstrap-file", broker.bsfile, "--from-beginning",
                "--until-end",      NULL
        };
        assert_int_equal(cf_test_run(argv, &out, NULL), 0);
        int lines = 0;
        for (char *s = out; *s; s++)
                lines += *s == '\n';
        assert_int_equal(lines, 4);
        assert_non_null(
            strstr(out, "{\"topic\":\"billing.charge-records\",\"partition\":1,"
                        "\"offset\":0,"));
        assert_non_null(
            strstr(out, "\"key\":\"CR-2\",\"headers\":{\"cf.task\":\"A-1\"},"
                        "\"type\":\"ChargeRecord\",\"value\":{\"record_id\":"
                        "\"CR-2\",\"tenant_id\":\"t-1\""));
        assert_non_null(strstr(out, "\"energy_wh\":300,"));
        assert_non_null(strstr(out, "\"partition\":2,\"offset\":0,"));
        assert_non_null(strstr(
            out, "\"key\":null,\"headers\":{},\"error\":{\"code\":"
                 "\"TRUNCATED\",\"message\":\"truncated body\",\"at\":6},"
                 "\"value_hex\":\"000000000508\"}"));
        free(out);

        /* --count stops early. */
        char *argv2[] = {
                CF_BINARY,          "cat",         "billing.charge-records",
                "--bootstrap-file", broker.bsfile, "--from-beginning",
                "--count",          "2",           NULL
        };
        assert_int_equal(cf_test_run(argv2, &out, NULL), 0);
        lines = 0;
        for (char *s = out; *s; s++)
                lines += *s == '\n';
        assert_int_equal(lines, 2);
        free(out);
        cf_registry_destroy(reg);
}

static void cat_rejects_bad_arguments(void **state)
{
        (void)state;
        char *out;
        char *argv[] = { CF_BINARY, "cat", NULL };
        assert_int_equal(cf_test_run(argv, &out, NULL), 2);
        free(out);
        char *argv2[] = { CF_BINARY, "cat", "billing.rejected",
                          "--count", "-3",  NULL };
        assert_int_equal(cf_test_run(argv2, &out, NULL), 2);
        free(out);
        char *argv3[] = { CF_BINARY, "broker", "--partitions", "0", NULL };
        assert_int_equal(cf_test_run(argv3, &out, NULL), 2);
        free(out);
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(broker_creates_topics_with_partitions),
                cmocka_unit_test(produce_consume_and_cat),
                cmocka_unit_test(cat_rejects_bad_arguments),
        };
        return cmocka_run_group_tests_name("broker", tests, setup, teardown);
}
