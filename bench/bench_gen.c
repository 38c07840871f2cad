/*
 * bench_gen.c: speed of the load generator (`chargeflow gen`).
 *
 *  1. generation alone: the small preset into a sink that only counts;
 *  2. into a file: `gen --out` (genfile.h), as the command runs it;
 *  3. into a broker: an in-process librdkafka mock cluster (the embedded
 *     broker of `chargeflow broker`), `gen --bootstrap`, compared in the same
 *     run with a plain librdkafka producer loop that produces the very same
 *     records (same topics, keys, values, timestamps: read back from the
 *     file of step 2) with the same producer settings (cf_gen_producer_props,
 *     lz4). Runs alternate between the two; the traffic phase is timed,
 *     each including its final flush. The generator must not be slower.
 *
 * usage: bench_gen [--days D (45)] [--broker-days D (5)] [--runs N (5)]
 *                  [--no-broker]
 * Prints the median of the runs for each. Targets: file >= 1,000,000
 * events/s; broker: gen / plain loop >= 1 (within noise).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "gen_estate.h"
#include "genfile.h"

#define MAX_RUNS 31

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(double), cmp_d);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int count_sink(void *opaque, uint32_t topic, int64_t ts, const void *key,
                      size_t klen, const void *v, size_t vlen)
{
        uint64_t *n = opaque;
        (void)topic;
        (void)ts;
        (void)key;
        (void)v;
        n[0]++;
        n[1] += klen + vlen;
        return 0;
}

/* Generation alone (days of the small preset): events/s of the traffic. */
static double bench_null(int days, uint64_t *events)
{
        cf_gen_conf conf;
        cf_gen *g;
        char err[256];
        uint64_t n[2] = { 0, 0 };
        cf_gen_conf_init(&conf);
        conf.days = days;
        if (cf_gen_new(&g, &conf, err, sizeof(err)) != CF_OK) {
                fprintf(stderr, "bench_gen: %s\n", err);
                exit(1);
        }
        cf_gen_run_tables(g, count_sink, n);
        uint64_t n0 = n[0];
        double t0 = now_s();
        cf_gen_run_traffic(g, count_sink, n);
        double el = now_s() - t0;
        cf_gen_destroy(g);
        *events = n[0] - n0;
        return (double)(n[0] - n0) / el;
}

static int gen_cmd(const char *sink_flag, const char *sink, int days,
                   cf_gen_result *res)
{
        char d[16];
        snprintf(d, sizeof(d), "%d", days);
        char *argv[] = { "gen",        "--preset", "small", "--seed",
                         "1",          "--days",   d,       (char *)sink_flag,
                         (char *)sink, NULL };
        return cf_gen_command(9, argv, res);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        uint64_t *failed = opaque;
        (void)rk;
        if (m->err)
                (*failed)++;
}

/* The plain loop: every traffic record of file, produced as it is. */
static double plain_loop(const char *bootstrap, const char *file,
                         uint64_t *events, uint64_t *failed)
{
        char err[512];
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        if (rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err,
                              sizeof(err)) ||
            rd_kafka_conf_set(kc, "compression.codec", "lz4", err,
                              sizeof(err))) {
                fprintf(stderr, "bench_gen: %s\n", err);
                exit(1);
        }
        for (size_t i = 0; cf_gen_producer_props[i][0]; i++)
                if (rd_kafka_conf_set(kc, cf_gen_producer_props[i][0],
                                      cf_gen_producer_props[i][1], err,
                                      sizeof(err))) {
                        fprintf(stderr, "bench_gen: %s\n", err);
                        exit(1);
                }
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_opaque(kc, failed);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench_gen: %s\n", err);
                exit(1);
        }
        cf_genfile_reader *r;
        cf_genfile_rec rec;
        if (cf_genfile_reader_open(&r, file, err, sizeof(err)) != CF_OK) {
                fprintf(stderr, "bench_gen: %s\n", err);
                exit(1);
        }
        rd_kafka_topic_t *rkt[CF_GEN_T__CNT];
        for (int i = 0; i < CF_GEN_T__CNT; i++)
                rkt[i] = rd_kafka_topic_new(rk, cf_gen_topic_names[i], NULL);
        /* Warm-up like the generator's: metadata known before timing. */
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, rkt[0], &md, 5000) == 0)
                rd_kafka_metadata_destroy(md);

        uint64_t n = 0, polled = 0;
        double t0 = now_s();
        while (cf_genfile_next(r, &rec) == CF_OK) {
                if (rec.topic > CF_GEN_T_METER)
                        continue;
                for (;;) {
                        rd_kafka_resp_err_t e = rd_kafka_producev(
                            rk, RD_KAFKA_V_RKT(rkt[rec.topic]),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY((void *)rec.key, rec.key_len),
                            RD_KAFKA_V_VALUE((void *)rec.value, rec.value_len),
                            RD_KAFKA_V_TIMESTAMP(rec.timestamp_ms),
                            RD_KAFKA_V_END);
                        if (!e)
                                break;
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                (*failed)++;
                                break;
                        }
                        rd_kafka_poll(rk, 10);
                }
                n++;
                if ((++polled & 1023) == 0)
                        rd_kafka_poll(rk, 0);
        }
        while (rd_kafka_outq_len(rk) > 0)
                rd_kafka_flush(rk, 1000);
        double el = now_s() - t0;
        cf_genfile_reader_close(r);
        for (int i = 0; i < CF_GEN_T__CNT; i++)
                rd_kafka_topic_destroy(rkt[i]);
        rd_kafka_destroy(rk);
        *events = n;
        return (double)n / el;
}

int main(int argc, char **argv)
{
        int days = 45, bdays = 5, runs = 5, broker = 1;
        static const struct option opts[] = {
                { "days", required_argument, NULL, 'd' },
                { "broker-days", required_argument, NULL, 'b' },
                { "runs", required_argument, NULL, 'r' },
                { "no-broker", no_argument, NULL, 'n' },
                { NULL, 0, NULL, 0 },
        };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        days = atoi(optarg);
                        break;
                case 'b':
                        bdays = atoi(optarg);
                        break;
                case 'r':
                        runs = atoi(optarg);
                        break;
                case 'n':
                        broker = 0;
                        break;
                default:
                        fprintf(stderr,
                                "usage: bench_gen [--days D] [--broker-days "
                                "D] [--runs N] [--no-broker]\n");
                        return 2;
                }
        }
        if (days < 1 || bdays < 1 || runs < 1 || runs > MAX_RUNS) {
                fprintf(stderr, "bench_gen: bad arguments\n");
                return 2;
        }
        char dir[] = "/tmp/bench_gen.XXXXXX";
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        char file[300], bfile[300];
        snprintf(file, sizeof(file), "%s/small.cfg", dir);
        snprintf(bfile, sizeof(bfile), "%s/broker.cfg", dir);
        double v[MAX_RUNS], w[MAX_RUNS];
        uint64_t events = 0;

        for (int i = 0; i < runs; i++)
                v[i] = bench_null(days, &events);
        printf("gen (no sink)   small %2d days: %9" PRIu64
               " events, median %10.0f events/s\n",
               days, events, median(v, runs));

        cf_gen_result res;
        for (int i = 0; i < runs; i++) {
                if (gen_cmd("--out", file, days, &res) != 0)
                        return 1;
                v[i] = (double)(res.traffic) / res.seconds;
        }
        printf("gen --out FILE  small %2d days: %9" PRIu64
               " events, median %10.0f events/s (target >= 1000000)\n",
               days, res.traffic, median(v, runs));
        unlink(file);
        if (!broker) {
                rmdir(dir);
                return 0;
        }

        /* The broker: a mock cluster with the project's topics. */
        char err[256];
        rd_kafka_conf_t *mc_conf = rd_kafka_conf_new();
        rd_kafka_conf_set(mc_conf, "log_level", "3", err, sizeof(err));
        rd_kafka_t *mrk =
            rd_kafka_new(RD_KAFKA_PRODUCER, mc_conf, err, sizeof(err));
        if (!mrk) {
                fprintf(stderr, "bench_gen: %s\n", err);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
        for (int i = 0; i < CF_GEN_T__CNT; i++)
                rd_kafka_mock_topic_create(mc, cf_gen_topic_names[i], 8, 1);
        const char *bs = rd_kafka_mock_cluster_bootstraps(mc);

        /* The records the plain loop replays. */
        if (gen_cmd("--out", bfile, bdays, &res) != 0)
                return 1;
        uint64_t gev = 0, pev = 0, failed = 0;
        for (int i = 0; i < runs; i++) {
                if (gen_cmd("--bootstrap", bs, bdays, &res) != 0) {
                        fprintf(stderr, "bench_gen: gen into broker failed\n");
                        return 1;
                }
                gev = res.traffic;
                v[i] = (double)res.traffic / res.seconds;
                w[i] = plain_loop(bs, bfile, &pev, &failed);
        }
        double ratios[MAX_RUNS];
        for (int i = 0; i < runs; i++)
                ratios[i] = v[i] / w[i];
        double mg = median(v, runs), mp = median(w, runs);
        printf("gen --bootstrap small %2d days: %9" PRIu64
               " events, median %10.0f events/s\n",
               bdays, gev, mg);
        printf("plain producer  same records: %9" PRIu64
               " events, median %10.0f events/s (%" PRIu64 " failed)\n",
               pev, mp, failed);
        printf("gen / plain: median of per-run ratios %.2f\n",
               median(ratios, runs));

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(mrk);
        unlink(bfile);
        rmdir(dir);
        return failed ? 1 : 0;
}
