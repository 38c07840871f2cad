/*
 * cmd_broker.c: `chargeflow broker`, the embedded Kafka-protocol broker.
 *
 * librdkafka's mock cluster on loopback, for development, tests, the demo
 * and benchmarks. It keeps data in memory only (about 5 MiB per partition;
 * older data is dropped), does not compact, and acknowledges but does not
 * apply transaction markers. It creates the project's topics at start (and
 * `chargeflow registry`'s _schemas, one partition), prints
 * the bootstrap servers as the first line on stdout (and writes them to
 * --bootstrap-file), and runs until SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "topics.h"

static volatile sig_atomic_t broker_stop;

static void on_signal(int sig)
{
        (void)sig;
        broker_stop = 1;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow broker [--brokers N] [--partitions N] "
                "[--bootstrap-file F]\n\n"
                "Runs an in-memory Kafka-protocol broker (librdkafka's mock "
                "cluster) on loopback\nuntil SIGINT or SIGTERM, with the "
                "project's topics created.\n\n"
                "  --brokers N         brokers in the cluster (default 1)\n"
                "  --partitions N      partitions of each project topic "
                "(default 8)\n"
                "  --bootstrap-file F  also write the bootstrap servers to F\n"
                "\nThe first line on stdout is the bootstrap servers.\n"
                "Limits: memory only, about 5 MiB kept per partition, no "
                "compaction,\ntransaction markers not applied.\n");
}

/* Writes the bootstrap servers to path atomically (temp file + rename). */
static int write_bootstrap_file(const char *path, const char *bootstraps)
{
        size_t n = strlen(path) + 8;
        char *tmp = malloc(n);
        FILE *f;
        int ok = 0;
        if (!tmp)
                return -1;
        snprintf(tmp, n, "%s.tmp", path);
        f = fopen(tmp, "w");
        if (f) {
                ok = fprintf(f, "%s\n", bootstraps) > 0;
                ok = (fclose(f) == 0) && ok;
                ok = ok && rename(tmp, path) == 0;
        }
        free(tmp);
        return ok ? 0 : -1;
}

int cf_cmd_broker(int argc, char **argv)
{
        static const struct option opts[] = {
                { "brokers", required_argument, NULL, 'b' },
                { "partitions", required_argument, NULL, 'p' },
                { "bootstrap-file", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int64_t brokers = 1, partitions = 8;
        const char *bsfile = NULL;
        char errstr[512];
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (!cf_parse_i64(optarg, 1, 16, &brokers)) {
                                fprintf(stderr,
                                        "chargeflow broker: --brokers: '%s' "
                                        "is not an integer in 1..16\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'p':
                        if (!cf_parse_i64(optarg, 1, 1024, &partitions)) {
                                fprintf(stderr,
                                        "chargeflow broker: --partitions: "
                                        "'%s' is not an integer in 1..1024\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'f':
                        bsfile = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "chargeflow broker: unexpected argument '%s'\n",
                        argv[optind]);
                return 2;
        }

        /* Handlers first: a stop that comes during start-up still exits 0. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        /* The mock cluster hangs off a client handle of its own. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
                fprintf(stderr, "chargeflow broker: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "chargeflow broker: %s\n", errstr);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc =
            rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mc) {
                fprintf(stderr,
                        "chargeflow broker: cannot create the mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        for (size_t i = 0; i < cf_n_topics; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    mc, cf_topics[i].name, (int)partitions, 1);
                if (err) {
                        fprintf(stderr, "chargeflow broker: creating %s: %s\n",
                                cf_topics[i].name, rd_kafka_err2str(err));
                        rd_kafka_mock_cluster_destroy(mc);
                        rd_kafka_destroy(rk);
                        return 1;
                }
        }
        /* The topic `chargeflow registry` keeps schemas in (one partition;
         * the mock cannot create topics through the admin API). */
        if (rd_kafka_mock_topic_create(mc, "_schemas", 1, 1)) {
                fprintf(stderr, "chargeflow broker: creating _schemas\n");
                rd_kafka_mock_cluster_destroy(mc);
                rd_kafka_destroy(rk);
                return 1;
        }
        const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
        if (bsfile && write_bootstrap_file(bsfile, bs)) {
                fprintf(stderr, "chargeflow broker: cannot write %s\n", bsfile);
                rd_kafka_mock_cluster_destroy(mc);
                rd_kafka_destroy(rk);
                return 1;
        }
        printf("%s\n", bs);
        fflush(stdout);
        fprintf(stderr,
                "chargeflow broker: %d broker(s) at %s, %zu topics with %d "
                "partitions\n",
                (int)brokers, bs, cf_n_topics, (int)partitions);

        while (!broker_stop)
                usleep(100 * 1000);

        /* Remove the bootstrap file only if it still names this broker (a
         * newer one may have taken the path). */
        char cur[1024];
        FILE *bf = bsfile ? fopen(bsfile, "r") : NULL;
        if (bf) {
                if (fgets(cur, sizeof(cur), bf) &&
                    !strncmp(cur, bs, strlen(bs)) && cur[strlen(bs)] == '\n')
                        unlink(bsfile);
                fclose(bf);
        }
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        fprintf(stderr, "chargeflow broker: stopped\n");
        return 0;
}
