/*
 * bench_latency.c: end-to-end latency of the pipeline, from the inputs of a
 * session to its charge record.
 *
 * A plain consumer (assignment, every partition from the start) reads
 * charging.sessions, charging.meter and billing.charge-records of the same
 * broker while a live run goes on, and notes the wall time at which each
 * record arrives. For every charge record: latency = its arrival - the
 * arrival of the last input record of its session, i.e. from the record
 * that let the session close to the record it produced. That record is
 * the session's input (session event or meter reading with its id) with the
 * latest event time within the charged session (at or before its stop), at
 * its first arrival: a repeat of an older record does not count, and
 * neither does a record whose clock is off past the stop (the generator's
 * clock faults put some days ahead; the pipeline rejects them as CLOCK).
 * Arrival stands in for append time: both
 * sides are fetched by this one consumer with fetch.wait.max.ms=5, so the
 * fetch delay is within a few ms on each side and the difference holds.
 * Sessions closed by timeout (STOP_ESTIMATED: their stop was lost) are
 * left out: their delay is the configured timeout, not the pipeline's.
 * So are the tail's: sessions whose last input came in the last second of
 * the traffic. Nothing later moves event time past their stop, so they
 * close when the input ends (max.task.idle.ms, then the run's exit), not
 * by the flow; live traffic does not end. Their count and the p99 with
 * them are printed too.
 *
 *   build/bench/bench_latency --bootstrap HOST:PORT
 *
 * Runs until SIGTERM or SIGINT, then prints one JSON object: samples, p50,
 * p90, p99 and max in ms, and what was left out. With --dump FILE, one line
 * per charge record timed as well: session id, revision, arrival of its
 * last input and latency (s); its last line says where the tail begins.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "hmap.h"
#include "kafka.h"
#include "records.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static int64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* One input record of a session: its event time and when it came. */
typedef struct seen {
        int64_t ev_ms, at_us;
} seen;

/* Per session: every input record, in arrival order. */
typedef struct history {
        seen *v;
        size_t n, cap;
} history;

static int cmp_seen(const void *a, const void *b)
{
        const seen *x = a, *y = b;
        if (x->ev_ms != y->ev_ms)
                return (x->ev_ms > y->ev_ms) - (x->ev_ms < y->ev_ms);
        return (x->at_us > y->at_us) - (x->at_us < y->at_us);
}

/* The arrival of the record that let a session stopped at stop_ms close:
 * of its records at or before the stop, the latest in event time, at its
 * first arrival. -1 if it has none. Sorts h. */
static int64_t closing_arrival(history *h, int64_t stop_ms)
{
        qsort(h->v, h->n, sizeof(*h->v), cmp_seen);
        int64_t at = -1;
        for (size_t i = 0; i < h->n && h->v[i].ev_ms <= stop_ms; i++)
                if (i == 0 || h->v[i].ev_ms != h->v[i - 1].ev_ms)
                        at = h->v[i].at_us;
        return at;
}

static const char *const topics[3] = { "charging.sessions", "charging.meter",
                                       "billing.charge-records" };

int main(int argc, char **argv)
{
        const char *bootstrap = NULL, *dump_path = NULL;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--bootstrap") && i + 1 < argc)
                        bootstrap = argv[++i];
                else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
                        dump_path = argv[++i];
                else {
                        fprintf(stderr, "usage: bench_latency --bootstrap B "
                                        "[--dump FILE]\n");
                        return 2;
                }
        }
        FILE *dump = NULL;
        if (dump_path && !(dump = fopen(dump_path, "w"))) {
                perror(dump_path);
                return 1;
        }
        if (!bootstrap) {
                fprintf(stderr, "usage: bench_latency --bootstrap B\n");
                return 2;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        char errstr[512];
        cf_registry *reg;
        if (cf_registry_new(&reg, errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_latency: %s\n", errstr);
                return 1;
        }
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, sizeof(errstr));
        if (!conf ||
            cf_kafka_consumer_defaults(conf, NULL, errstr, sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-latency", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "bench_latency: %s\n", errstr);
                return 1;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "bench_latency: %s\n", errstr);
                return 1;
        }
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(64);
        for (int i = 0; i < 3; i++) {
                int np = 0;
                if (cf_kafka_partition_count(rk, topics[i], 10000, &np, errstr,
                                             sizeof(errstr))) {
                        fprintf(stderr, "bench_latency: %s\n", errstr);
                        return 1;
                }
                for (int p = 0; p < np; p++)
                        rd_kafka_topic_partition_list_add(l, topics[i], p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        if (rd_kafka_assign(rk, l)) {
                fprintf(stderr, "bench_latency: assign failed\n");
                return 1;
        }
        rd_kafka_topic_partition_list_destroy(l);

        /* session id -> its input records (history) */
        cf_hmap last;
        cf_hmap_init(&last);
        int64_t t0 = now_us();
        int64_t *lat = NULL, *lat_in = NULL, last_in = 0;
        size_t n = 0, cap = 0;
        uint64_t estimated = 0, unmatched = 0, inputs = 0, undecodable = 0;
        cf_arena a;
        cf_arena_init(&a, 0);
        void *rec = cf_malloc(cf_rtype_max_size());
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_message_t *msgs[1024];
        while (!stop) {
                ssize_t got = rd_kafka_consume_batch_queue(q, 50, msgs, 1024);
                int64_t t = now_us() - t0;
                for (ssize_t i = 0; i < got; i++) {
                        rd_kafka_message_t *m = msgs[i];
                        if (m->err || !m->payload) {
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        const char *tn = rd_kafka_topic_name(m->rkt);
                        int k = !strcmp(tn, topics[0])   ? 0
                                : !strcmp(tn, topics[1]) ? 1
                                                         : 2;
                        cf_rtype rt = k == 0   ? CF_RT_SESSION_EVENT
                                      : k == 1 ? CF_RT_METER_READING
                                               : CF_RT_CHARGE_RECORD;
                        cf_arena_reset(&a);
                        if (cf_decode(reg, rt, m->payload, m->len, &a, rec,
                                      NULL)) {
                                undecodable++;
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        const char *sid =
                            k == 0   ? ((cf_session_event *)rec)->session_id
                            : k == 1 ? ((cf_meter_reading *)rec)->session_id
                                     : ((cf_charge_record *)rec)->session_id;
                        if (k < 2) {
                                inputs++;
                                last_in = t;
                                int64_t ev =
                                    k == 0 ? ((cf_session_event *)rec)->time_ms
                                           : ((cf_meter_reading *)rec)->time_ms;
                                history *h =
                                    sid ? cf_hmap_sget(&last, sid) : NULL;
                                if (sid && !h) {
                                        h = cf_calloc(1, sizeof(*h));
                                        cf_hmap_sput(&last, sid, h);
                                }
                                if (h) {
                                        if (h->n == h->cap) {
                                                h->cap =
                                                    h->cap ? h->cap * 2 : 16;
                                                h->v = cf_realloc(
                                                    h->v,
                                                    h->cap * sizeof(*h->v));
                                        }
                                        h->v[h->n++] = (seen){ ev, t };
                                }
                        } else {
                                const cf_charge_record *cr = rec;
                                bool est = false;
                                for (uint32_t f = 0; f < cr->n_flags; f++)
                                        if (cr->flags[f] ==
                                            CF_FLAG_STOP_ESTIMATED)
                                                est = true;
                                history *h =
                                    sid ? cf_hmap_sget(&last, sid) : NULL;
                                int64_t at =
                                    h && !est ? closing_arrival(h, cr->stop_ms)
                                              : -1;
                                if (est)
                                        estimated++;
                                else if (at < 0)
                                        unmatched++;
                                else {
                                        if (n == cap) {
                                                cap = cap ? cap * 2 : 4096;
                                                lat = cf_realloc(
                                                    lat, cap * sizeof(*lat));
                                                lat_in = cf_realloc(
                                                    lat_in,
                                                    cap * sizeof(*lat_in));
                                        }
                                        lat_in[n] = at;
                                        lat[n++] = t - at;
                                        if (dump)
                                                fprintf(dump,
                                                        "%s %d %.3f %.3f\n",
                                                        sid, cr->revision,
                                                        (double)at / 1e6,
                                                        (double)(t - at) / 1e6);
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
        }
        rd_kafka_queue_destroy(q);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        /* The tail: last input within the last second of the traffic. */
        if (dump) {
                fprintf(dump, "# tail: last input after %.3f s\n",
                        (double)(last_in - 1000000) / 1e6);
                fclose(dump);
        }
        size_t all = n, kept = 0;
        int64_t *with_tail = cf_malloc((all ? all : 1) * sizeof(*lat));
        memcpy(with_tail, lat, all * sizeof(*lat));
        for (size_t i = 0; i < all; i++)
                if (lat_in[i] <= last_in - 1000000)
                        lat[kept++] = lat[i];
        n = kept;
        qsort(lat, n, sizeof(*lat), cmp_i64);
        qsort(with_tail, all, sizeof(*lat), cmp_i64);
#define PCT(p) (n ? (double)lat[(size_t)((double)(n - 1) * (p))] / 1000.0 : -1)
        printf("{\"samples\":%zu,\"p50_ms\":%.1f,\"p90_ms\":%.1f,"
               "\"p99_ms\":%.1f,\"max_ms\":%.1f,\"inputs\":%" PRIu64
               ",\"estimated_left_out\":%" PRIu64 ",\"unmatched\":%" PRIu64
               ",\"undecodable\":%" PRIu64 ",\"tail_left_out\":%zu,"
               "\"p99_ms_with_tail\":%.1f}\n",
               n, PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0), inputs, estimated,
               unmatched, undecodable, all - n,
               all ? (double)with_tail[(size_t)((double)(all - 1) * 0.99)] /
                         1000.0
                   : -1.0);
        free(with_tail);
        free(lat_in);
        size_t it = 0;
        cf_hmap_slot *slot;
        while (cf_hmap_next(&last, &it, &slot)) {
                history *h = slot->value;
                free(h->v);
                free(h);
        }
        cf_hmap_free(&last);
        free(lat);
        free(rec);
        cf_arena_destroy(&a);
        cf_registry_destroy(reg);
        return 0;
}
