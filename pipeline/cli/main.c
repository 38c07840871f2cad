/*
 * main.c: the chargeflow binary; dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cf_command {
        const char *name;
        int (*main)(int argc, char **argv);
        const char *help;
} cf_commands[] = {
        { "broker", cf_cmd_broker,
          "run the embedded Kafka-protocol broker on loopback" },
        { "topics", cf_cmd_topics,
          "create or check the topics on a real Kafka cluster" },
        { "cat", cf_cmd_cat, "print a chargeflow topic as JSON lines" },
        { "tariff", cf_cmd_tariff,
          "check an OCPI tariff document, price a session with it" },
        { "run", cf_cmd_run, "run the pipeline (see run --help-config)" },
        { "report", cf_cmd_report,
          "the charge report of a billing period (invoice basis)" },
        { "demo", cf_cmd_demo,
          "broker, generated traffic, the pipeline and a summary" },
        { "gen", cf_cmd_gen,
          "generate charger traffic (load generator, ground truth)" },
        { "registry", cf_cmd_registry,
          "a schema registry (Confluent REST API) keeping schemas in Kafka" },
        { "bench", cf_cmd_bench,
          "benchmarks: ceiling, pipeline, stage chain, RocksDB, latency" },
};

static void usage(FILE *f)
{
        fprintf(f, "usage: chargeflow <command> [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(cf_commands) / sizeof(cf_commands[0]);
             i++)
                fprintf(f, "  %-8s %s\n", cf_commands[i].name,
                        cf_commands[i].help);
        fprintf(f, "\n'chargeflow <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < sizeof(cf_commands) / sizeof(cf_commands[0]);
             i++) {
                if (!strcmp(argv[1], cf_commands[i].name))
                        return cf_commands[i].main(argc - 1, argv + 1);
        }
        fprintf(stderr, "chargeflow: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
}
