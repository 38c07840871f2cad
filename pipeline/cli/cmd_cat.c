/*
 * cmd_cat.c: `chargeflow cat TOPIC`, a topic as JSON lines.
 *
 * One JSON object per record: topic, partition, offset, timestamp, key,
 * headers and the decoded value. A record that does not decode prints as an
 * object with "error" (code, message, byte position) and "value_hex"; cat
 * goes on. Reads every partition by assignment (no group offsets are
 * committed), so it never disturbs the pipeline's consumer group.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "kafka.h"
#include "registry_client.h"
#include "topics.h"

static volatile sig_atomic_t cat_stop;

static void on_signal(int sig)
{
        (void)sig;
        cat_stop = 1;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow cat TOPIC [--bootstrap B | "
                "--bootstrap-file F]\n"
                "                      [--from-beginning] [--until-end] "
                "[--count N]\n\n"
                "Prints the records of a chargeflow topic as JSON lines.\n\n"
                "  --bootstrap B       bootstrap servers (default "
                "127.0.0.1:9092)\n"
                "  --bootstrap-file F  read the bootstrap servers from F's "
                "first line\n"
                "  --from-beginning    start at the oldest record (default: "
                "only new ones)\n"
                "  --until-end         exit 0 once every partition's end (as "
                "of start) is reached\n"
                "  --count N           exit 0 after N records\n"
                "  --config F          use the schema registry of F's "
                "schema.registry.* keys\n"
                "  --schema-registry URL  resolve schema ids with the "
                "registry at URL\n"
                "                      (default: the built-in ids)\n");
}

/* True when p[0..n) is valid UTF-8 without control characters. */
static bool printable_utf8(const unsigned char *p, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = p[i];
                size_t len = c < 0x80         ? 1
                             : (c >> 5) == 6  ? 2
                             : (c >> 4) == 14 ? 3
                             : (c >> 3) == 30 ? 4
                                              : 0;
                if (!len || i + len > n || (len == 1 && c < 0x20))
                        return false;
                for (size_t k = 1; k < len; k++)
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                i += len;
        }
        return true;
}

static void put_bytes(cf_buf *b, const void *p, size_t n)
{
        if (!p) {
                cf_buf_puts(b, "null");
        } else if (printable_utf8(p, n)) {
                cf_buf_json_str(b, p, n);
        } else {
                cf_buf_puts(b, "{\"hex\":\"");
                cf_buf_hex(b, p, n);
                cf_buf_puts(b, "\"}");
        }
}

static void print_record(const cf_registry *reg, const cf_topic_info *ti,
                         const rd_kafka_message_t *m, cf_arena *a,
                         void *scratch, cf_buf *b)
{
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(m, &tst);
        rd_kafka_headers_t *hdrs = NULL;
        b->len = 0;
        cf_buf_puts(b, "{\"topic\":");
        const char *tname = rd_kafka_topic_name(m->rkt);
        cf_buf_json_str(b, tname, strlen(tname));
        cf_buf_printf(b, ",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld",
                      (int)m->partition, (long long)m->offset, (long long)ts);
        cf_buf_puts(b, ",\"key\":");
        put_bytes(b, m->key, m->key_len);
        cf_buf_puts(b, ",\"headers\":{");
        if (!rd_kafka_message_headers(m, &hdrs)) {
                const char *name;
                const void *val;
                size_t vlen;
                for (size_t i = 0;
                     !rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen);
                     i++) {
                        if (i)
                                cf_buf_putc(b, ',');
                        cf_buf_json_str(b, name, strlen(name));
                        cf_buf_putc(b, ':');
                        put_bytes(b, val, vlen);
                }
        }
        cf_buf_putc(b, '}');
        if (!m->payload) {
                cf_buf_puts(b, ",\"value\":null}");
                return;
        }
        cf_rtype t;
        size_t pos = 0;
        cf_err_t err;
        cf_arena_reset(a);
        if (ti) {
                t = ti->type;
                err = cf_decode(reg, t, m->payload, m->len, a, scratch, &pos);
        } else {
                err = cf_decode_any(reg, m->payload, m->len, a, scratch, &t,
                                    &pos);
        }
        if (err) {
                cf_buf_printf(b,
                              ",\"error\":{\"code\":\"%s\",\"message\":\"%s\","
                              "\"at\":%zu},\"value_hex\":\"",
                              cf_err2name(err), cf_err2str(err), pos);
                cf_buf_hex(b, m->payload, m->len);
                cf_buf_puts(b, "\"}");
                return;
        }
        cf_buf_printf(b, ",\"type\":\"%s\",\"value\":", cf_rtype_name(t));
        cf_to_json(reg, t, scratch, b);
        cf_buf_putc(b, '}');
}

int cf_cmd_cat(int argc, char **argv)
{
        static const struct option opts[] = {
                { "bootstrap", required_argument, NULL, 'b' },
                { "bootstrap-file", required_argument, NULL, 'f' },
                { "from-beginning", no_argument, NULL, 'B' },
                { "until-end", no_argument, NULL, 'e' },
                { "count", required_argument, NULL, 'n' },
                { "config", required_argument, NULL, 'c' },
                { "schema-registry", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char bootstrap[1024] = "127.0.0.1:9092";
        const char *config_file = NULL, *sr_url = NULL;
        cf_registry_client *rc_client = NULL;
        bool from_beginning = false, until_end = false;
        int64_t count = -1;
        char errstr[512];
        int c, rc = 1;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        snprintf(bootstrap, sizeof(bootstrap), "%s", optarg);
                        break;
                case 'f':
                        if (!cf_read_bootstrap_file(optarg, bootstrap,
                                                    sizeof(bootstrap)))
                                return 2;
                        break;
                case 'B':
                        from_beginning = true;
                        break;
                case 'c':
                        config_file = optarg;
                        break;
                case 'r':
                        sr_url = optarg;
                        break;
                case 'e':
                        until_end = true;
                        break;
                case 'n':
                        if (!cf_parse_i64(optarg, 0, INT64_MAX, &count)) {
                                fprintf(stderr,
                                        "chargeflow cat: --count: '%s' is "
                                        "not a non-negative integer\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "chargeflow cat: expected one TOPIC\n");
                usage(stderr);
                return 2;
        }
        const char *topic = argv[optind];
        const cf_topic_info *ti = cf_topic_find(topic);
        if (count == 0)
                return 0;

        cf_registry *reg = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        int64_t *ends = NULL;
        bool *done = NULL;
        cf_arena a;
        cf_buf b;
        void *scratch = cf_malloc(cf_rtype_max_size());
        cf_arena_init(&a, 64 * 1024);
        cf_buf_init(&b);

        if (cf_registry_new(&reg, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow cat: schemas: %s\n", errstr);
                goto done;
        }
        if (cf_registry_client_for_tool(config_file, sr_url, reg, &rc_client,
                                        errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow cat: %s\n", errstr);
                rc = 2;
                goto done;
        }
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, sizeof(errstr));
        if (!conf ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-cat", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "chargeflow cat: %s\n", errstr);
                if (conf)
                        rd_kafka_conf_destroy(conf);
                goto done;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "chargeflow cat: %s\n", errstr);
                goto done;
        }
        int np;
        if (cf_kafka_partition_count(rk, topic, 10000, &np, errstr,
                                     sizeof(errstr))) {
                fprintf(stderr, "chargeflow cat: %s\n", errstr);
                goto done;
        }
        ends = cf_calloc((size_t)np, sizeof(int64_t));
        done = cf_calloc((size_t)np, sizeof(bool));
        parts = rd_kafka_topic_partition_list_new(np);
        int remaining = np;
        for (int p = 0; p < np; p++) {
                int64_t lo = 0, hi = 0;
                if (until_end) {
                        rd_kafka_resp_err_t err =
                            rd_kafka_query_watermark_offsets(rk, topic, p, &lo,
                                                             &hi, 10000);
                        if (err) {
                                fprintf(stderr,
                                        "chargeflow cat: offsets of %s [%d]: "
                                        "%s\n",
                                        topic, p, rd_kafka_err2str(err));
                                goto done;
                        }
                        ends[p] = hi;
                        if (!from_beginning || hi <= lo) {
                                done[p] = true;
                                remaining--;
                        }
                }
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    from_beginning ? RD_KAFKA_OFFSET_BEGINNING
                                   : RD_KAFKA_OFFSET_END;
        }
        rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, parts);
        if (aerr) {
                fprintf(stderr, "chargeflow cat: assign: %s\n",
                        rd_kafka_err2str(aerr));
                goto done;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        int64_t printed = 0;
        rc = 0;
        while (!cat_stop && !(until_end && remaining == 0) &&
               (count < 0 || printed < count)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m)
                        continue;
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                fprintf(stderr, "chargeflow cat: %s\n",
                                        rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        continue;
                }
                int p = m->partition;
                if (until_end && (p >= np || done[p])) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                print_record(reg, ti, m, &a, scratch, &b);
                cf_buf_putc(&b, '\n');
                if (fwrite(b.p, 1, b.len, stdout) != b.len) {
                        rd_kafka_message_destroy(m);
                        rc = 1;
                        break;
                }
                printed++;
                if (until_end && m->offset + 1 >= ends[p]) {
                        done[p] = true;
                        remaining--;
                }
                rd_kafka_message_destroy(m);
        }
        fflush(stdout);
done:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        free(ends);
        free(done);
        free(scratch);
        cf_buf_free(&b);
        cf_arena_destroy(&a);
        cf_registry_destroy(reg);
        cf_registry_client_destroy(rc_client);
        return rc;
}
