/* harness.c: child-process helpers for whole-process tests (harness.h). */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "genfile.h"

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static cf_broker_kind test_kind = CF_BROKER_MOCK;
static char peer_path[1024];

void cf_test_broker_require(void)
{
        const char *k = getenv("CF_TEST_BROKER");
        if (k && *k && !cf_broker_kind_parse(k, &test_kind)) {
                fprintf(stderr,
                        "CF_TEST_BROKER=%s: expected mock, peer or external\n",
                        k);
                exit(1);
        }
        if (test_kind == CF_BROKER_PEER &&
            !cf_broker_peer_path(CF_SOURCE_DIR, peer_path, sizeof(peer_path))) {
                printf("SKIPPED: CF_TEST_BROKER=peer, but no peer broker "
                       "at %s (set CF_KAFKA_PEER to its path)\n",
                       peer_path);
                fflush(stdout);
                exit(CF_TEST_SKIP);
        }
        const char *ext = getenv("CF_TEST_BOOTSTRAP");
        if (test_kind == CF_BROKER_EXTERNAL && !(ext && *ext)) {
                fprintf(stderr, "CF_TEST_BROKER=external needs "
                                "CF_TEST_BOOTSTRAP=host:port\n");
                exit(1);
        }
        printf("broker: %s%s%s\n", cf_broker_kind_name(test_kind),
               test_kind == CF_BROKER_PEER       ? " at "
               : test_kind == CF_BROKER_EXTERNAL ? " at "
                                                 : "",
               test_kind == CF_BROKER_PEER       ? peer_path
               : test_kind == CF_BROKER_EXTERNAL ? ext
                                                 : "");
        fflush(stdout);
}

cf_broker_kind cf_test_broker_kind(void)
{
        return test_kind;
}

bool cf_test_broker_start(cf_test_broker *b, int partitions)
{
        static int n;
        char errstr[512], log[160];
        memset(b, 0, sizeof(*b));
        snprintf(b->bsfile, sizeof(b->bsfile), "/tmp/cf-test-bs-%d-%d",
                 (int)getpid(), n);
        snprintf(log, sizeof(log), "/tmp/cf-test-broker-%d-%d.log",
                 (int)getpid(), n++);
        if (cf_broker_start(&b->br, test_kind, CF_BINARY, peer_path,
                            getenv("CF_TEST_BOOTSTRAP"), partitions, log,
                            errstr, sizeof(errstr))) {
                fprintf(stderr, "harness: %s\n", errstr);
                return false;
        }
        snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", b->br.bootstrap);
        FILE *f = fopen(b->bsfile, "w");
        bool ok = f && fprintf(f, "%s\n", b->bootstrap) > 0;
        if (f)
                ok = fclose(f) == 0 && ok;
        if (!ok)
                cf_broker_stop(&b->br);
        return ok;
}

int cf_test_broker_stop(cf_test_broker *b)
{
        unlink(b->bsfile);
        return cf_broker_stop(&b->br);
}

int cf_test_run(char *const argv[], char **out, size_t *outlen)
{
        int fds[2], status;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        if (!buf || pipe(fds))
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                execv(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                if (len + 1 >= cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        if (!buf)
                                abort();
                }
                ssize_t n = read(fds[0], buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fds[0]);
        buf[len] = '\0';
        *out = buf;
        if (outlen)
                *outlen = len;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static pid_t spawn(char *const argv[], const char *out_path, long fsize)
{
        /* Emptied before the child exists, so that a caller reading the
         * files right after the spawn never sees an earlier run's output. */
        char err_path[512];
        snprintf(err_path, sizeof(err_path), "%s.err", out_path);
        int tf = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int te = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (tf >= 0)
                close(tf);
        if (te >= 0)
                close(te);
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        if (fsize > 0) {
                struct rlimit rl = { (rlim_t)fsize, (rlim_t)fsize };
                signal(SIGXFSZ, SIG_IGN);
                setrlimit(RLIMIT_FSIZE, &rl);
        }
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || fe < 0)
                _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fe, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
}

pid_t cf_test_spawn(char *const argv[], const char *out_path)
{
        return spawn(argv, out_path, 0);
}

pid_t cf_test_spawn_fsize(char *const argv[], const char *out_path, long fsize)
{
        return spawn(argv, out_path, fsize);
}

int cf_test_wait(pid_t pid, int timeout_s)
{
        int status;
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

int cf_test_signal_wait(pid_t pid, int sig, int timeout_s)
{
        int status;
        kill(pid, sig);
        for (int i = 0; i < timeout_s * 100; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

pid_t cf_test_spawn_until(char *const argv[], const char *out_path,
                          bool (*up)(void *opaque), void *opaque, int timeout_s)
{
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid = cf_test_spawn(argv, out_path);
        if (pid < 0)
                return -1;
        for (;;) {
                if (up(opaque))
                        return pid;
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return -1; /* exited: reaped */
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec >= timeout_s)
                        break;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
}

/* The timeout of one metadata request in cf_test_broker_spawn. */
#define ANSWER_MS 1000

static bool broker_up(void *opaque)
{
        return cf_test_broker_answers(opaque, ANSWER_MS);
}

bool cf_test_broker_answers(const char *bootstrap, int timeout_ms)
{
        char ms[16], *out;
        snprintf(ms, sizeof(ms), "%d", timeout_ms);
        char *argv[] = {
                CF_BINARY,         "topics",       "check", "--bootstrap",
                (char *)bootstrap, "--timeout-ms", ms,      NULL
        };
        int rc = cf_test_run(argv, &out, NULL);
        free(out);
        return rc == 0 || rc == 1;
}

pid_t cf_test_broker_spawn(char *const argv[], const char *log,
                           const char *bootstrap, int timeout_s)
{
        pid_t pid = cf_test_spawn_until(argv, log, broker_up, (void *)bootstrap,
                                        timeout_s);
        if (pid < 0)
                fail_msg("the broker %s did not answer at %s within %d s",
                         argv[0], bootstrap, timeout_s);
        return pid;
}

int64_t cf_test_read_topic(const char *bootstrap, const char *topic,
                           cf_test_record_fn *fn, void *opaque)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", "cf-test-reader", err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                          sizeof(err));
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        assert_non_null(rk);
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0);
        assert_int_equal(md->topic_cnt, 1);
        assert_int_equal(md->topics[0].err, 0);
        int np = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        assert_true(np > 0);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(np);
        int64_t remaining = 0, n = 0;
        int64_t *hi = calloc((size_t)np, sizeof(int64_t));
        assert_non_null(hi);
        for (int p = 0; p < np; p++) {
                int64_t lo;
                assert_int_equal(rd_kafka_query_watermark_offsets(
                                     rk, topic, p, &lo, &hi[p], 10000),
                                 0);
                assert_int_equal(lo, 0); /* nothing was dropped */
                remaining += hi[p] > 0;
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        }
        assert_int_equal(rd_kafka_assign(rk, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        /* Gives up after 30 s without a record. */
        for (int idle = 0; remaining > 0 && idle < 300;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                /* A partition is read when its end (as asked above) is
                 * reached: by its last record, or by the end of the
                 * partition when the last offsets are not records (the
                 * markers that end transactions: read_committed). */
                int32_t p = m->partition;
                bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
                if (m->err && !eof)
                        fail_msg("reading %s: %s", topic,
                                 rd_kafka_message_errstr(m));
                if (!eof && m->offset < hi[p]) {
                        fn(m, opaque);
                        n++;
                }
                if (hi[p] > 0 &&
                    (eof ? m->offset >= hi[p] : m->offset + 1 >= hi[p])) {
                        hi[p] = 0; /* done */
                        remaining--;
                }
                rd_kafka_message_destroy(m);
        }
        if (remaining)
                fail_msg("reading %s: %lld partitions not read to their "
                         "end after 30 s without a record",
                         topic, (long long)remaining);
        free(hi);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

int cf_test_run_genfile(const char *genfile, const char *state_dir,
                        int32_t partitions, cf_inproc_sink *sink,
                        cf_test_pipeline_fn *fn, void *opaque)
{
        char err[512];
        cf_genfile_reader *r;
        if (cf_genfile_reader_open(&r, genfile, err, sizeof(err))) {
                print_error("%s\n", err);
                return -1;
        }
        int t_sessions = cf_genfile_reader_topic_index(r, "charging.sessions");
        int t_meter = cf_genfile_reader_topic_index(r, "charging.meter");
        int t_sites = cf_genfile_reader_topic_index(r, "billing.sites");
        int t_users = cf_genfile_reader_topic_index(r, "billing.users");
        cf_config cfg;
        cf_config_init(&cfg);
        cf_inproc *ip = NULL;
        int rc = 0;
        if (cf_config_set(&cfg, "state.dir", state_dir, err, sizeof(err)) ||
            cf_config_set(&cfg, "watermark.idle.ms", "86400000", err,
                          sizeof(err)) ||
            cf_inproc_new(&cfg, partitions, sink, opaque, &ip, err,
                          sizeof(err))) {
                print_error("%s\n", err);
                rc = -1;
        }
        if (!rc && fn)
                fn(opaque, ip, false);
        int64_t(*offsets)[2] = calloc((size_t)partitions, sizeof(*offsets));
        cf_genfile_rec rec;
        uint64_t n = 0;
        while (!rc && cf_genfile_next(r, &rec) == CF_OK) {
                int t = (int)rec.topic;
                if (t == t_sites || t == t_users) {
                        cf_inproc_table(
                            ip, t == t_sites ? CF_TABLE_SITES : CF_TABLE_USERS,
                            rec.key, rec.key_len, rec.value, rec.value_len);
                        continue;
                }
                if (t != t_sessions && t != t_meter)
                        continue;
                int in = t == t_sessions ? CF_IN_SESSIONS : CF_IN_METER;
                cf_src src = {
                        .input = in,
                        .partition = rec.partition,
                        .offset = offsets[rec.partition][in]++,
                        .ts = rec.timestamp_ms,
                        .key = rec.key,
                        .key_len = rec.key_len,
                        .value = rec.value,
                        .value_len = rec.value_len,
                };
                cf_inproc_feed(ip, &src);
                if ((++n & 4095) == 0 &&
                    cf_inproc_commit(ip, err, sizeof(err))) {
                        print_error("commit: %s\n", err);
                        rc = -1;
                }
        }
        if (!rc)
                cf_inproc_drain(ip);
        /* Until billing has sent every statement due: a period that many
         * parties share leaves over several commits. */
        for (int i = 0;
             !rc && (i < 3 || (!cf_inproc_finished(ip) && i < 100000)); i++)
                if (cf_inproc_commit(ip, err, sizeof(err))) {
                        print_error("commit: %s\n", err);
                        rc = -1;
                }
        if (ip && fn)
                fn(opaque, ip, true);
        free(offsets);
        cf_inproc_destroy(ip);
        cf_config_destroy(&cfg);
        cf_genfile_reader_close(r);
        return rc;
}
