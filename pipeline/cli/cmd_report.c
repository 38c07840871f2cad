/*
 * cmd_report.c: `chargeflow report`, the charge report of a billing period
 * from billing.charge-records.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "kafka.h"
#include "registry_client.h"
#include "report.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow report --period P [--by user|charger|badge|"
                "site]\n"
                "                         [--tenant T] [--format table|csv|"
                "json]\n"
                "                         [--bootstrap B | --bootstrap-file "
                "F] [--topic T]\n"
                "                         [--config F | --schema-registry "
                "URL]\n\n"
                "The charge report of a billing period (the invoice basis): "
                "the charge records\nof period P (2026-11, 2026-W48 or "
                "2026-11-26) grouped as asked, with sessions,\nenergy and "
                "totals. The default format is a table on a terminal, CSV "
                "otherwise.\nSchema ids are resolved with the registry at URL "
                "(or of F's schema.registry.*\nkeys) when given, else the "
                "built-in ids.\n");
}

typedef struct rctx {
        const cf_registry *reg;
        cf_report *r;
        cf_arena a;
        int64_t bad;
} rctx;

static int on_record(void *opaque, const rd_kafka_message_t *m)
{
        rctx *c = opaque;
        cf_charge_record cr;
        cf_arena_reset(&c->a);
        if (!m->payload || cf_decode(c->reg, CF_RT_CHARGE_RECORD, m->payload,
                                     m->len, &c->a, &cr, NULL)) {
                c->bad++;
                return 0;
        }
        cf_report_add(c->r, &cr);
        return 0;
}

int cf_cmd_report(int argc, char **argv)
{
        static const struct option opts[] = {
                { "period", required_argument, NULL, 'p' },
                { "by", required_argument, NULL, 'y' },
                { "tenant", required_argument, NULL, 't' },
                { "format", required_argument, NULL, 'f' },
                { "bootstrap", required_argument, NULL, 'b' },
                { "bootstrap-file", required_argument, NULL, 'B' },
                { "topic", required_argument, NULL, 'T' },
                { "config", required_argument, NULL, 'c' },
                { "schema-registry", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char bootstrap[1024] = "127.0.0.1:9092", errstr[512];
        const char *config_file = NULL, *sr_url = NULL;
        const char *period = NULL, *tenant = NULL,
                   *topic = "billing.charge-records";
        int by = CF_REPORT_USER,
            format = isatty(STDOUT_FILENO) ? CF_REPORT_TABLE : CF_REPORT_CSV;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        period = optarg;
                        break;
                case 'y':
                        if ((by = cf_report_parse_by(optarg)) < 0) {
                                fprintf(stderr,
                                        "chargeflow report: --by: '%s' is "
                                        "not user, charger, badge or site\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 't':
                        tenant = optarg;
                        break;
                case 'f':
                        if ((format = cf_report_parse_format(optarg)) < 0) {
                                fprintf(stderr,
                                        "chargeflow report: --format: '%s' "
                                        "is not table, csv or json\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'b':
                        snprintf(bootstrap, sizeof(bootstrap), "%s", optarg);
                        break;
                case 'B':
                        if (!cf_read_bootstrap_file(optarg, bootstrap,
                                                    sizeof(bootstrap)))
                                return 2;
                        break;
                case 'T':
                        topic = optarg;
                        break;
                case 'c':
                        config_file = optarg;
                        break;
                case 'r':
                        sr_url = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!period || optind < argc) {
                fprintf(stderr, "chargeflow report: --period is required\n");
                usage(stderr);
                return 2;
        }
        cf_registry *reg;
        cf_registry_client *rc_client = NULL;
        if (cf_registry_new(&reg, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow report: %s\n", errstr);
                return 1;
        }
        if (cf_registry_client_for_tool(config_file, sr_url, reg, &rc_client,
                                        errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow report: %s\n", errstr);
                cf_registry_destroy(reg);
                cf_registry_client_destroy(rc_client);
                return 2;
        }
        cf_report r;
        rctx ctx = { .reg = reg, .r = &r };
        cf_arena_init(&ctx.a, 0);
        cf_report_init(&r, (cf_report_by)by, period, tenant);
        cf_err_t err = cf_kafka_read_all(bootstrap, topic, on_record, &ctx,
                                         errstr, sizeof(errstr));
        int rc = 0;
        if (err) {
                fprintf(stderr, "chargeflow report: %s\n", errstr);
                rc = 1;
        } else {
                cf_report_write(&r, (cf_report_format)format, stdout);
                if (ctx.bad)
                        fprintf(stderr,
                                "chargeflow report: %lld records did not "
                                "decode and are not in the report\n",
                                (long long)ctx.bad);
        }
        cf_report_free(&r);
        cf_arena_destroy(&ctx.a);
        cf_registry_destroy(reg);
        cf_registry_client_destroy(rc_client);
        return rc;
}
