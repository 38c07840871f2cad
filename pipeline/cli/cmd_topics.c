/*
 * cmd_topics.c: `chargeflow topics create|check`, the project's topics on a
 * real cluster.
 *
 * create makes every missing topic with its cleanup policy and retention
 * (topics.c's table), the internal topic with the inputs' partition count,
 * then checks the whole layout; check only checks. Both take the pipeline's
 * own configuration file, so that renamed topics (topic.*) and client
 * settings (kafka.*: TLS, SASL) are the ones `chargeflow run` will use.
 * Exit 0 when all is well, 1 naming every problem, 2 on usage errors.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "mem.h"
#include "topics.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: chargeflow topics create|check [-c FILE] [--set "
                   "key=value]...\n"
                   "                 [--bootstrap B] [--partitions N] "
                   "[--replication R]\n\n"
                   "create: makes every missing chargeflow topic (tables "
                   "compacted, the rest with\n"
                   "        retention), then checks as below. Idempotent.\n"
                   "check:  verifies an existing cluster: every topic exists, "
                   "the inputs are\n"
                   "        co-partitioned, the internal topic has their "
                   "partition count, the\n"
                   "        outputs have enough partitions, tables are "
                   "compacted and nothing else is.\n\n"
                   "  -c, --config FILE  the pipeline's properties file (topic "
                   "names, kafka.*)\n"
                   "  --set key=value    override one key (repeatable)\n"
                   "  --bootstrap B      bootstrap servers (overrides the "
                   "file's)\n"
                   "  --partitions N     partitions for new topics (default: "
                   "the inputs' if they\n"
                   "                     exist, else 8)\n"
                   "  --replication R    replication factor of new topics "
                   "(default: the broker's\n"
                   "                     default.replication.factor)\n"
                   "  --retention-ms MS  retention.ms of every new topic that "
                   "is not a table\n"
                   "                     (default: per topic, below; -1 "
                   "keeps forever). Retention\n"
                   "                     follows record timestamps: "
                   "replayed history older than\n"
                   "                     it is deleted at once\n"
                   "  --timeout-ms T     per admin request (default 15000)\n\n"
                   "Exit 0: all well; 1: problems, each named; 2: usage.\n");
        fprintf(f, "\nThe topics:\n");
        for (size_t i = 0; i < cf_n_topics; i++)
                if (cf_topics[i].compacted)
                        fprintf(f, "  %-31s compact: %s\n", cf_topics[i].name,
                                cf_topics[i].why);
                else
                        fprintf(f, "  %-31s retention.ms=%lld: %s\n",
                                cf_topics[i].name,
                                (long long)cf_topics[i].retention_ms,
                                cf_topics[i].why);
}

int cf_cmd_topics(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "set", required_argument, NULL, 's' },
                { "bootstrap", required_argument, NULL, 'b' },
                { "partitions", required_argument, NULL, 'p' },
                { "replication", required_argument, NULL, 'r' },
                { "timeout-ms", required_argument, NULL, 't' },
                { "retention-ms", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        cf_config cfg;
        char errstr[512];
        int64_t v;
        cf_topics_opts o = { .partitions = 0,
                             .replication = -1,
                             .timeout_ms = 15000,
                             .out = stdout };
        int c, rc = 2;
        cf_config_init(&cfg);
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (cf_config_load_file(&cfg, optarg, errstr,
                                                sizeof(errstr))) {
                                fprintf(stderr, "chargeflow topics: %s\n",
                                        errstr);
                                goto out;
                        }
                        break;
                case 's':
                        if (cf_config_set_kv(&cfg, optarg, errstr,
                                             sizeof(errstr))) {
                                fprintf(stderr, "chargeflow topics: %s\n",
                                        errstr);
                                goto out;
                        }
                        break;
                case 'b':
                        if (cf_config_set(&cfg, "bootstrap.servers", optarg,
                                          errstr, sizeof(errstr))) {
                                fprintf(stderr, "chargeflow topics: %s\n",
                                        errstr);
                                goto out;
                        }
                        break;
                case 'p':
                        if (!cf_parse_i64(optarg, 1, 100000, &v)) {
                                fprintf(stderr,
                                        "chargeflow topics: --partitions: '%s' "
                                        "is not an integer in 1..100000\n",
                                        optarg);
                                goto out;
                        }
                        o.partitions = (int)v;
                        break;
                case 'r':
                        if (!cf_parse_i64(optarg, 1, 32, &v)) {
                                fprintf(stderr,
                                        "chargeflow topics: --replication: "
                                        "'%s' is not an integer in 1..32\n",
                                        optarg);
                                goto out;
                        }
                        o.replication = (int)v;
                        break;
                case 't':
                        if (!cf_parse_i64(optarg, 100, 600000, &v)) {
                                fprintf(stderr,
                                        "chargeflow topics: --timeout-ms: '%s' "
                                        "is not an integer in 100..600000\n",
                                        optarg);
                                goto out;
                        }
                        o.timeout_ms = (int)v;
                        break;
                case 'R':
                        if (!cf_parse_i64(optarg, -1, INT64_MAX, &v) ||
                            v == 0) {
                                fprintf(stderr,
                                        "chargeflow topics: --retention-ms: "
                                        "'%s' is not -1 or a positive "
                                        "integer\n",
                                        optarg);
                                goto out;
                        }
                        o.retention_set = true;
                        o.retention_ms = v;
                        break;
                case 'h':
                        usage(stdout);
                        rc = 0;
                        goto out;
                default:
                        usage(stderr);
                        goto out;
                }
        }
        if (optind + 1 != argc ||
            (strcmp(argv[optind], "create") && strcmp(argv[optind], "check"))) {
                usage(stderr);
                goto out;
        }
        if (cf_config_validate(&cfg, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow topics: %s\n", errstr);
                goto out;
        }
        int problems = !strcmp(argv[optind], "create")
                           ? cf_topics_create(&cfg, &o, errstr, sizeof(errstr))
                           : cf_topics_check(&cfg, &o, errstr, sizeof(errstr));
        if (problems < 0) {
                fprintf(stderr, "chargeflow topics: %s\n", errstr);
                rc = 1;
        } else if (problems) {
                fprintf(stderr,
                        "chargeflow topics: %d problem(s) on %s: this layout "
                        "would not bill correctly\n",
                        problems, cfg.bootstrap_servers);
                rc = 1;
        } else {
                rc = 0;
        }
out:
        cf_config_destroy(&cfg);
        return rc;
}
