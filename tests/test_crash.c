/*
 * test_crash.c: exactly once under kill -9.
 *
 * The generator writes the same input (same seed) into two embedded
 * brokers. On the first, `chargeflow run --until-idle` runs uninterrupted:
 * the reference. On the second, `chargeflow run` is killed with SIGKILL at
 * random moments while it works, KILLS times, and restarted each time from
 * its state directory; a last run goes to the end. Then every output topic
 * of the second broker must hold exactly what the reference holds: each
 * charge record and each statement once, with identical key and value
 * bytes, and the rejected records identical as a multiset.
 *
 * CF_CRASH_KILLS in the environment sets the number of random kills
 * (default 20; the long run: CF_CRASH_KILLS=200 build/tests/test_crash,
 * run directly because ctest stops a test after 600 s). The kill schedule
 * is printed as CF_CRASH_SEED=N; setting it replays that schedule.
 *
 * The broker faults depend on the broker: on the embedded one, errors
 * injected into its requests through librdkafka's mock API; on the peer,
 * the broker process itself frozen (SIGSTOP), killed with SIGKILL and
 * restarted from its data directory on the same port.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "harness.h"
#include "mem.h"

#define DAYS "8"

static char dir[64];
static cf_test_broker ref, crash, disk;

static void path(char *buf, size_t n, const char *name)
{
        snprintf(buf, n, "%s/%s", dir, name);
}

static void write_config(const char *file, const char *bootstrap,
                         const char *state, bool fast_rejoin)
{
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s\ncommit.interval.ms=200\n"
                "stats.interval.ms=0\n",
                bootstrap, state);
        /* A killed member holds the group until its session times out;
         * the peer broker waits for it to rejoin until its rebalance
         * timeout (max.poll.interval.ms, 300 s by default), where Kafka
         * drops it at its session timeout: 10 s bounds both. */
        if (fast_rejoin)
                fprintf(f, "kafka.session.timeout.ms=6000\n"
                           "kafka.heartbeat.interval.ms=500\n"
                           "kafka.max.poll.interval.ms=10000\n");
        fclose(f);
}

static void generate(const cf_test_broker *b)
{
        char *out;
        char *gen[] = { CF_BINARY,
                        "gen",
                        "--preset",
                        "small",
                        "--seed",
                        "11",
                        "--faults",
                        "--days",
                        DAYS,
                        "--bootstrap-file",
                        (char *)b->bsfile,
                        NULL };
        assert_int_equal(cf_test_run(gen, &out, NULL), 0);
        free(out);
}

/* Every record of a topic as "key\x1fhex(value)" strings, sorted. */
typedef struct recs {
        char **v;
        size_t n, cap;
} recs;

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keeps a record as key, 0x1f, value in hex. */
static void keep_rec(const rd_kafka_message_t *m, void *opaque)
{
        recs *r = opaque;
        cf_buf b2;
        cf_buf_init(&b2);
        cf_buf_put(&b2, m->key, m->key_len);
        cf_buf_putc(&b2, 0x1f);
        cf_buf_hex(&b2, m->payload, m->len);
        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 1024;
                r->v = realloc(r->v, r->cap * sizeof(char *));
        }
        r->v[r->n++] = strdup(cf_buf_cstr(&b2));
        cf_buf_free(&b2);
}

/* The whole topic (cf_test_read_topic), sorted. */
static void read_all(const cf_test_broker *b, const char *topic, recs *r)
{
        cf_test_read_topic(b->bootstrap, topic, keep_rec, r);
        qsort(r->v, r->n, sizeof(char *), cmp_str);
}

static void free_recs(recs *r)
{
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i]);
        free(r->v);
}

/* The crash run's topic equals the reference's: same records, same
 * multiplicity (for keyed outputs that means each exactly once). */
static void assert_same_topic(const cf_test_broker *want,
                              const cf_test_broker *got, const char *topic,
                              bool once)
{
        recs a = { 0 }, b = { 0 };
        read_all(want, topic, &a);
        read_all(got, topic, &b);
        if (once)
                for (size_t i = 1; i < b.n; i++)
                        if (!strcmp(b.v[i], b.v[i - 1]))
                                fail_msg("%s: a record appears twice: %.80s",
                                         topic, b.v[i]);
        if (a.n != b.n)
                fail_msg("%s: %zu records, the reference has %zu", topic, b.n,
                         a.n);
        for (size_t i = 0; i < a.n; i++)
                if (strcmp(a.v[i], b.v[i]))
                        fail_msg("%s: record %zu differs: %.80s vs %.80s",
                                 topic, i, b.v[i], a.v[i]);
        print_message("%s: %zu records, identical\n", topic, a.n);
        free_recs(&a);
        free_recs(&b);
}

/* The brokers live in the group's setup and teardown, so that they are
 * stopped even when the test fails. */
static int setup(void **state)
{
        char *o;
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/cf-test-crash-%d", (int)getpid());
        char *mk[] = { "/bin/mkdir", "-p", dir, NULL };
        if (cf_test_run(mk, &o, NULL) != 0)
                return -1;
        free(o);
        if (!cf_test_broker_start(&ref, 4) ||
            !cf_test_broker_start(&crash, 4) || !cf_test_broker_start(&disk, 4))
                return -1;
        /* The reference: the same input, one uninterrupted run. */
        char cfg[128], st[128];
        path(cfg, sizeof(cfg), "ref.properties");
        path(st, sizeof(st), "state-ref");
        generate(&ref);
        write_config(cfg, ref.bootstrap, st, false);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        if (cf_test_run(run, &o, NULL) != 0)
                return -1;
        free(o);
        return 0;
}

static int teardown(void **state)
{
        char *o;
        (void)state;
        int a = cf_test_broker_stop(&ref), b = cf_test_broker_stop(&crash);
        a |= cf_test_broker_stop(&disk);
        /* CF_TEST_KEEP=1 keeps the directory: configs, states, logs. */
        if (!getenv("CF_TEST_KEEP")) {
                char *rm[] = { "/bin/rm", "-rf", dir, NULL };
                cf_test_run(rm, &o, NULL);
                free(o);
        } else {
                print_message("kept %s\n", dir);
        }
        return a == 0 && b == 0 ? 0 : -1;
}

static void outputs_identical_after_kills(void **state)
{
        (void)state;
        char cfg_crash[128], st_crash[128], out[128];
        const char *env = getenv("CF_CRASH_KILLS");
        int kills = env ? atoi(env) : 20;
        char *o;
        generate(&crash);
        path(cfg_crash, sizeof(cfg_crash), "crash.properties");
        path(st_crash, sizeof(st_crash), "state-crash");
        path(out, sizeof(out), "crash.out");
        write_config(cfg_crash, crash.bootstrap, st_crash, true);

        /* First at given points: at start-up, in the middle of loading the
         * tables, with a commit's batch built but not written, and with
         * half of a commit's outputs sent (CF_CRASH_AT, runtime.c). */
        static const char *const points[] = {
                "start:1",   "tables:700", "commit:3",
                "produce:4", "commit:9",   "produce:12",
        };
        char *run_crash[] = { CF_BINARY, "run", "-c", cfg_crash, NULL };
        for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++) {
                setenv("CF_CRASH_AT", points[k], 1);
                pid_t pid = cf_test_spawn(run_crash, out);
                /* It kills itself there, and says so first. */
                assert_int_equal(cf_test_wait(pid, 60), -1);
                char errp[160], line[512], want[64];
                snprintf(errp, sizeof(errp), "%s.err", out);
                snprintf(want, sizeof(want), "crash point %.*s reached",
                         (int)strcspn(points[k], ":"), points[k]);
                FILE *f = fopen(errp, "r");
                assert_non_null(f);
                bool hit = false;
                while (fgets(line, sizeof(line), f))
                        hit |= strstr(line, want) != NULL;
                fclose(f);
                if (!hit)
                        fail_msg("%s: the run never reached it", points[k]);
        }
        unsetenv("CF_CRASH_AT");
        /* Then at random moments, 0.3 to 7 s after start: during the group
         * join, the table load, processing, commits or producing. */
        /* The schedule replays from its seed: CF_CRASH_SEED=N. */
        const char *seed_env = getenv("CF_CRASH_SEED");
        unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
                                 : (unsigned)getpid() ^ (unsigned)time(NULL);
        print_message("crash schedule: CF_CRASH_SEED=%u, %d kills\n", seed,
                      kills);
        srand(seed);
        for (int k = 0; k < kills; k++) {
                pid_t pid = cf_test_spawn(run_crash, out);
                usleep(300000 + (useconds_t)(rand() % 6700) * 1000);
                assert_int_equal(cf_test_signal_wait(pid, SIGKILL, 10), -1);
        }
        char *run_end[] = { CF_BINARY, "run",          "-c",
                            cfg_crash, "--until-idle", NULL };
        assert_int_equal(cf_test_run(run_end, &o, NULL), 0);
        json_t *sum = json_loads(o, 0, NULL);
        free(o);
        assert_non_null(sum);
        /* Conservation holds over all the runs (counters are persisted). */
        json_t *m =
            json_object_get(json_object_get(sum, "inputs"), "charging.meter");
        assert_int_equal(
            json_integer_value(json_object_get(m, "in")),
            json_integer_value(json_object_get(m, "accepted")) +
                json_integer_value(json_object_get(m, "duplicates")) +
                json_integer_value(json_object_get(m, "rejected")) +
                json_integer_value(json_object_get(m, "pending")));
        json_decref(sum);

        assert_same_topic(&ref, &crash, "billing.charge-records", true);
        assert_same_topic(&ref, &crash, "billing.statements", true);
        assert_same_topic(&ref, &crash, "billing.rejected", false);
}

/* The state directory's disk fills up part-way: the process stops with a
 * clear error, having committed nothing wrong; once the fault is gone, a
 * restart reaches the same end result as the uninterrupted run. */
static void disk_full_stops_then_restart_reaches_reference(void **state)
{
        (void)state;
        char cfg[128], st[128], out[128], errp[160], line[1024];
        char *o;
        generate(&disk);
        path(cfg, sizeof(cfg), "disk.properties");
        path(st, sizeof(st), "state-disk");
        path(out, sizeof(out), "disk.out");
        write_config(cfg, disk.bootstrap, st, true);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        /* 2 MiB per file: the write-ahead log outgrows it mid-run (a run
         * writes about 3 MB of batches in all, fewer as commits get
         * smaller, so 3 MiB was at the edge). */
        pid_t pid = cf_test_spawn_fsize(run, out, 2L << 20);
        assert_int_equal(cf_test_wait(pid, 120), 1);
        snprintf(errp, sizeof(errp), "%s.err", out);
        FILE *f = fopen(errp, "r");
        assert_non_null(f);
        bool clear = false;
        while (fgets(line, sizeof(line), f))
                clear |= strstr(line, "state write failed, nothing "
                                      "committed") != NULL;
        fclose(f);
        assert_true(clear);
        assert_int_equal(cf_test_run(run, &o, NULL), 0);
        free(o);
        assert_same_topic(&ref, &disk, "billing.charge-records", true);
        assert_same_topic(&ref, &disk, "billing.statements", true);
        assert_same_topic(&ref, &disk, "billing.rejected", false);
}

/* Kafka API keys (the protocol's numbers). */
enum {
        API_PRODUCE = 0,
        API_FETCH = 1,
        API_LIST_OFFSETS = 2,
        API_OFFSET_COMMIT = 8
};

/* A broker of the test's own (librdkafka's mock cluster in this process),
 * so that the test can make it fail while the pipeline runs against it. */
static rd_kafka_mock_cluster_t *mock_new(rd_kafka_t **rkp, cf_test_broker *b)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
        *rkp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(*rkp);
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(*rkp, 1);
        assert_non_null(mc);
        static const char *const topics[] = {
                "charging.sessions",      "charging.meter",
                "billing.sites",          "billing.users",
                "billing.charge-records", "billing.statements",
                "billing.rejected",       "chargeflow.billing-repartition",
        };
        for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
                assert_int_equal(
                    rd_kafka_mock_topic_create(mc, topics[i], 4, 1), 0);
        memset(b, 0, sizeof(*b));
        snprintf(b->bootstrap, sizeof(b->bootstrap), "%s",
                 rd_kafka_mock_cluster_bootstraps(mc));
        path(b->bsfile, sizeof(b->bsfile), "mock.bootstrap");
        FILE *f = fopen(b->bsfile, "w");
        fprintf(f, "%s\n", b->bootstrap);
        fclose(f);
        return mc;
}

/* While the pipeline runs: retriable produce, fetch, list-offsets and
 * offset-commit errors, the broker down and up again, latency; then a
 * produce error the idempotent producer cannot retry (the process must stop
 * with an error); a restart without faults must reach the reference. */
static void mock_broker_faults_then_restart_reach_reference(void **state)
{
        (void)state;
        rd_kafka_t *mrk;
        cf_test_broker mb;
        char cfg[128], st[128], out[128], *o;
        rd_kafka_mock_cluster_t *mc = mock_new(&mrk, &mb);
        generate(&mb);
        path(cfg, sizeof(cfg), "mock.properties");
        path(st, sizeof(st), "state-mock");
        path(out, sizeof(out), "mock.out");
        write_config(cfg, mb.bootstrap, st, true);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        pid_t pid = cf_test_spawn(run, out);
        sleep(3);
        rd_kafka_mock_push_request_errors(
            mc, API_PRODUCE, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
        rd_kafka_mock_push_request_errors(
            mc, API_FETCH, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
        rd_kafka_mock_push_request_errors(
            mc, API_LIST_OFFSETS, 2, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
        rd_kafka_mock_push_request_errors(mc, API_OFFSET_COMMIT, 2,
                                          RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                          RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
        rd_kafka_mock_broker_set_rtt(mc, 1, 300);
        sleep(1);
        rd_kafka_mock_broker_set_down(mc, 1);
        sleep(2);
        rd_kafka_mock_broker_set_up(mc, 1);
        sleep(1);
        rd_kafka_mock_broker_set_rtt(mc, 1, 0);
        /* Not retriable for an idempotent producer: delivery fails for
         * good, the process stops (exit 1) without committing it. */
        rd_kafka_mock_push_request_errors(
            mc, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        int rc = cf_test_wait(pid, 180);
        /* It may also have finished before the last fault hit a request. */
        assert_true(rc == 0 || rc == 1);
        rd_kafka_mock_clear_request_errors(mc, API_PRODUCE);
        if (rc != 0) {
                assert_int_equal(cf_test_run(run, &o, NULL), 0);
                free(o);
        }
        print_message("first run exit %d\n", rc);
        assert_same_topic(&ref, &mb, "billing.charge-records", true);
        assert_same_topic(&ref, &mb, "billing.statements", true);
        assert_same_topic(&ref, &mb, "billing.rejected", false);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(mrk);
}

/* True when the file holds the text. */
static bool log_has(const char *file, const char *text)
{
        char line[2048];
        bool hit = false;
        FILE *f = fopen(file, "r");
        while (f && fgets(line, sizeof(line), f))
                hit |= strstr(line, text) != NULL;
        if (f)
                fclose(f);
        return hit;
}

/* The outbox recovery cannot read the output tails (the broker fails every
 * ListOffsets request): the restart must stop with exit 1 having produced
 * nothing, not produce its whole outbox again (it did: every entry
 * delivered before the crash appeared twice). Once the broker answers, a
 * restart reaches the reference. Embedded broker only: the faults are
 * injected through its mock API. */
static void unreadable_tails_stop_without_repeating(void **state)
{
        (void)state;
        if (cf_test_broker_kind() != CF_BROKER_MOCK) {
                print_message("needs the embedded broker's fault injection: "
                              "skipped\n");
                skip();
        }
        rd_kafka_t *mrk;
        cf_test_broker mb;
        char cfg[128], st[128], out[128], errp[160], *o;
        rd_kafka_mock_cluster_t *mc = mock_new(&mrk, &mb);
        generate(&mb);
        path(cfg, sizeof(cfg), "tails.properties");
        path(st, sizeof(st), "state-tails");
        path(out, sizeof(out), "tails.out");
        snprintf(errp, sizeof(errp), "%s.err", out);
        write_config(cfg, mb.bootstrap, st, true);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        /* Killed half-way through producing a commit's outputs: the outbox
         * holds entries, some of them delivered. */
        setenv("CF_CRASH_AT", "produce:6", 1);
        assert_int_equal(cf_test_wait(cf_test_spawn(run, out), 120), -1);
        unsetenv("CF_CRASH_AT");
        assert_true(log_has(errp, "crash point produce reached"));
        /* Once the tables are read (they ask offsets too), fail every
         * ListOffsets: the recovery's tail queries. */
        pid_t pid = cf_test_spawn(run, out);
        for (int i = 0; i < 600 && !log_has(errp, "running:"); i++)
                usleep(50000);
        assert_true(log_has(errp, "running:"));
        /* Far more errors than 30 s of retries can use up (librdkafka
         * retries inside each query too, and every client of the process
         * takes from the same queue): with 400, a slow machine once ran out
         * of them and the recovery went through. */
        enum { N_ERRS = 50000 };
        rd_kafka_resp_err_t *errs = calloc(N_ERRS, sizeof(*errs));
        assert_non_null(errs);
        for (int i = 0; i < N_ERRS; i++)
                errs[i] = RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        rd_kafka_mock_push_request_errors_array(mc, API_LIST_OFFSETS, N_ERRS,
                                                errs);
        free(errs);
        assert_int_equal(cf_test_wait(pid, 180), 1);
        assert_true(log_has(errp, "outbox recovery: offsets of"));
        rd_kafka_mock_clear_request_errors(mc, API_LIST_OFFSETS);
        assert_int_equal(cf_test_run(run, &o, NULL), 0);
        free(o);
        assert_same_topic(&ref, &mb, "billing.charge-records", true);
        assert_same_topic(&ref, &mb, "billing.statements", true);
        assert_same_topic(&ref, &mb, "billing.rejected", false);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(mrk);
}

/* A free loopback TCP port (bound to 0, then released). */
static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

/* The peer broker on port, persisting to data (fsync on every write), so
 * that it can be killed and started again with what it had acknowledged. */
static pid_t peer_start(const char *peer, int port, const char *data)
{
        char ports[16], log[160];
        snprintf(ports, sizeof(ports), "%d", port);
        path(log, sizeof(log), "peer.log");
        char *argv[] = { (char *)peer,
                         "-ports",
                         ports,
                         "-data-dir",
                         (char *)data,
                         "-sync",
                         "-group-min-session-timeout",
                         "1s",
                         NULL };
        char bs[64];
        snprintf(bs, sizeof(bs), "127.0.0.1:%d", port);
        return cf_test_broker_spawn(argv, log, bs, 60);
}

/* While the pipeline runs on the peer broker: the broker frozen for 3 s
 * (every request times out), then killed with SIGKILL and started again
 * 2 s later from its data directory on the same port. The run must finish
 * or stop with an error; a restart must reach the reference. */
static void peer_broker_faults_then_restart_reach_reference(void)
{
        char peer[1024], data[128], cfg[128], st[128], out[128], *o;
        assert_true(cf_broker_peer_path(CF_SOURCE_DIR, peer, sizeof(peer)));
        int port = free_port();
        cf_test_broker pb;
        memset(&pb, 0, sizeof(pb));
        path(data, sizeof(data), "peer-data");
        pid_t bp = peer_start(peer, port, data);
        snprintf(pb.bootstrap, sizeof(pb.bootstrap), "127.0.0.1:%d", port);
        path(pb.bsfile, sizeof(pb.bsfile), "peer.bootstrap");
        FILE *f = fopen(pb.bsfile, "w");
        fprintf(f, "%s\n", pb.bootstrap);
        fclose(f);
        char *mk[] = { CF_BINARY,     "topics",         "create",
                       "--bootstrap", pb.bootstrap,     "--partitions",
                       "4",           "--retention-ms", "-1",
                       NULL };
        assert_int_equal(cf_test_run(mk, &o, NULL), 0);
        free(o);
        generate(&pb);
        path(cfg, sizeof(cfg), "peer.properties");
        path(st, sizeof(st), "state-peer");
        path(out, sizeof(out), "peer.out");
        write_config(cfg, pb.bootstrap, st, true);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        pid_t pid = cf_test_spawn(run, out);
        sleep(3);
        kill(bp, SIGSTOP);
        sleep(3);
        kill(bp, SIGCONT);
        sleep(1);
        kill(bp, SIGKILL);
        waitpid(bp, NULL, 0);
        sleep(2);
        bp = peer_start(peer, port, data);
        int rc = cf_test_wait(pid, 180);
        assert_true(rc == 0 || rc == 1);
        if (rc != 0) {
                assert_int_equal(cf_test_run(run, &o, NULL), 0);
                free(o);
        }
        print_message("first run exit %d\n", rc);
        assert_same_topic(&ref, &pb, "billing.charge-records", true);
        assert_same_topic(&ref, &pb, "billing.statements", true);
        assert_same_topic(&ref, &pb, "billing.rejected", false);
        assert_int_equal(cf_test_signal_wait(bp, SIGTERM, 10), 0);
}

/* The broker faults of the broker the tests run on (see the file's
 * header); none on an external cluster, which the test cannot fail. */
static void broker_faults_then_restart_reach_reference(void **state)
{
        switch (cf_test_broker_kind()) {
        case CF_BROKER_MOCK:
                mock_broker_faults_then_restart_reach_reference(state);
                break;
        case CF_BROKER_PEER:
                peer_broker_faults_then_restart_reach_reference();
                break;
        case CF_BROKER_EXTERNAL:
                print_message("broker faults cannot be injected into an "
                              "external cluster\n");
                skip();
        }
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(outputs_identical_after_kills),
                cmocka_unit_test(
                    disk_full_stops_then_restart_reaches_reference),
                cmocka_unit_test(broker_faults_then_restart_reach_reference),
                cmocka_unit_test(unreadable_tails_stop_without_repeating),
        };
        /* CF_TEST_FILTER=pattern runs only the matching tests. */
        if (getenv("CF_TEST_FILTER"))
                cmocka_set_test_filter(getenv("CF_TEST_FILTER"));
        return cmocka_run_group_tests_name("crash", tests, setup, teardown);
}
