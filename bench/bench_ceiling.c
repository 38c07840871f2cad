/*
 * bench_ceiling.c: the ceiling: how fast a plain librdkafka consumer reads
 * the pipeline's input topics from the same broker, doing nothing with the
 * records (no decode).
 *
 * Same client settings as `chargeflow run`'s consumer (cf_kafka_conf_new,
 * cf_kafka_consumer_defaults, auto commit off, partition EOF on), except
 * the fetch sizes: librdkafka's own (fetch.max.bytes 50 MiB, 1 MiB per
 * partition) and a 32 MiB queue, as the ceiling had before the pipeline's
 * became smaller (a consumer that discards what it reads needs no bound,
 * and the ceiling must not fall with the pipeline's settings), the
 * same batch call (rd_kafka_consume_batch_queue, 1024 messages), every
 * partition of the topics assigned from its oldest offset and read up to the
 * high watermark as of the start. The clock starts before the assignment,
 * so fetch start-up counts, as it does for the pipeline.
 *
 *   build/bench/bench_ceiling --bootstrap HOST:PORT [--json]
 *                             [TOPIC...]   (charging.sessions charging.meter)
 *
 * Prints events, seconds, events/s and CPU seconds per million events (the
 * process, librdkafka's threads included); with --json one JSON object.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"

#define BATCH 1024

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
        const char *bootstrap = NULL;
        const char *topics[16];
        int nt = 0;
        bool json = false;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        json = true;
                else if (!strcmp(argv[i], "--bootstrap") && i + 1 < argc)
                        bootstrap = argv[++i];
                else if (argv[i][0] != '-' && nt < 16)
                        topics[nt++] = argv[i];
                else {
                        fprintf(stderr, "bench_ceiling: unknown argument %s\n",
                                argv[i]);
                        return 2;
                }
        }
        if (!bootstrap) {
                fprintf(stderr, "usage: bench_ceiling --bootstrap B [--json] "
                                "[TOPIC...]\n");
                return 2;
        }
        if (!nt) {
                topics[nt++] = "charging.sessions";
                topics[nt++] = "charging.meter";
        }
        char errstr[512], group[64];
        snprintf(group, sizeof(group), "chargeflow-ceiling-%d", (int)getpid());
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, sizeof(errstr));
        if (!conf ||
            cf_kafka_consumer_defaults(conf, NULL, errstr, sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "group.id", group, errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "fetch.max.bytes", "52428800", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "max.partition.fetch.bytes", "1048576",
                              errstr, sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "queued.max.messages.kbytes", "32768",
                              errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_ceiling: %s\n", errstr);
                return 1;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "bench_ceiling: %s\n", errstr);
                return 1;
        }
        rd_kafka_poll_set_consumer(rk);
        /* Every partition from its oldest record to its end as of now. */
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(64);
        int64_t expect = 0;
        int remaining = 0;
        for (int i = 0; i < nt; i++) {
                int np = 0;
                if (cf_kafka_partition_count(rk, topics[i], 10000, &np, errstr,
                                             sizeof(errstr))) {
                        fprintf(stderr, "bench_ceiling: %s\n", errstr);
                        return 1;
                }
                for (int p = 0; p < np; p++) {
                        int64_t lo, hi;
                        if (rd_kafka_query_watermark_offsets(rk, topics[i], p,
                                                             &lo, &hi, 10000)) {
                                fprintf(stderr,
                                        "bench_ceiling: offsets of %s [%d]\n",
                                        topics[i], p);
                                return 1;
                        }
                        if (hi <= lo)
                                continue;
                        rd_kafka_topic_partition_list_add(l, topics[i], p)
                            ->offset = lo;
                        expect += hi - lo;
                        remaining++;
                }
        }
        double w0 = now_s(), c0 = cpu_s();
        if (rd_kafka_assign(rk, l)) {
                fprintf(stderr, "bench_ceiling: assign failed\n");
                return 1;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *msgs[BATCH];
        int64_t got = 0;
        uint64_t bytes = 0;
        double last = now_s();
        while (remaining > 0) {
                ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, BATCH);
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *m = msgs[i];
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                remaining--;
                        else if (!m->err) {
                                got++;
                                bytes += m->len;
                        }
                        rd_kafka_message_destroy(m);
                }
                if (n > 0)
                        last = now_s();
                else if (now_s() - last > 30) {
                        fprintf(stderr,
                                "bench_ceiling: no progress for 30 s at "
                                "%" PRId64 " of %" PRId64 " records\n",
                                got, expect);
                        return 1;
                }
        }
        double w1 = now_s(), c1 = cpu_s();
        rd_kafka_queue_destroy(q);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        double secs = w1 - w0, eps = (double)got / secs;
        double cpm = (c1 - c0) / ((double)got / 1e6);
        if (json)
                printf("{\"events\":%" PRId64 ",\"expected\":%" PRId64
                       ",\"secs\":%.4f,\"eps\":%.1f,\"cpu_s_per_m\":%.4f,"
                       "\"value_bytes\":%llu}\n",
                       got, expect, secs, eps, cpm, (unsigned long long)bytes);
        else
                printf("%" PRId64 " records (of %" PRId64 ") in %.2f s: %.0f "
                       "events/s, %.3f CPU s per million\n",
                       got, expect, secs, eps, cpm);
        return got == expect ? 0 : 1;
}
