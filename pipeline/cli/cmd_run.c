/*
 * cmd_run.c: `chargeflow run -c FILE [--set key=value]...`, the pipeline.
 *
 * Loads and validates the configuration (file, then --set overrides, in
 * order), then runs the pipeline runtime. Configuration errors name the key
 * and exit 2.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "mem.h"
#include "runtime.h"

static void usage(FILE *f)
{
        fprintf(
            f,
            "usage: chargeflow run -c FILE [--set key=value]... "
            "[--until-idle]\n"
            "       chargeflow run --help-config [--markdown]\n\n"
            "Runs the pipeline: rating (charging.sessions + "
            "charging.meter -> charge records)\nand billing (charge "
            "records -> statements), as one member of the consumer group.\n\n"
            "  -c, --config FILE   properties file (key=value, # comments)\n"
            "  --set key=value     override one key (repeatable; after "
            "the file)\n"
            "  --until-idle        exit 0 once every input partition is "
            "read to its end\n"
            "                      and nothing is pending\n"
            "  --help-config       print every configuration key\n");
}

int cf_cmd_run(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "set", required_argument, NULL, 's' },
                { "until-idle", no_argument, NULL, 'u' },
                { "help-config", no_argument, NULL, 'H' },
                { "markdown", no_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        cf_config cfg;
        char errstr[512];
        const char *file = NULL;
        bool help_config = false, markdown = false, until_idle = false;
        char **sets = cf_calloc((size_t)argc, sizeof(char *));
        int n_sets = 0, c, rc = 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        file = optarg;
                        break;
                case 's':
                        sets[n_sets++] = optarg;
                        break;
                case 'u':
                        until_idle = true;
                        break;
                case 'H':
                        help_config = true;
                        break;
                case 'm':
                        markdown = true;
                        break;
                case 'h':
                        usage(stdout);
                        free(sets);
                        return 0;
                default:
                        usage(stderr);
                        free(sets);
                        return 2;
                }
        }
        if (help_config) {
                cf_config_print_help(stdout, markdown);
                free(sets);
                return 0;
        }
        if (optind < argc) {
                fprintf(stderr, "chargeflow run: unexpected argument '%s'\n",
                        argv[optind]);
                free(sets);
                return 2;
        }
        cf_config_init(&cfg);
        if (file && cf_config_load_file(&cfg, file, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow run: config: %s\n", errstr);
                goto done;
        }
        for (int i = 0; i < n_sets; i++) {
                if (cf_config_set_kv(&cfg, sets[i], errstr, sizeof(errstr))) {
                        fprintf(stderr, "chargeflow run: --set: %s\n", errstr);
                        goto done;
                }
        }
        if (cf_config_validate(&cfg, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow run: config: %s\n", errstr);
                goto done;
        }
        rc = cf_runtime_run(&cfg, until_idle);
done:
        cf_config_destroy(&cfg);
        free(sets);
        return rc;
}
