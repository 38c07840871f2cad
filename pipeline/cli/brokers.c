/*
 * brokers.c: start and stop the brokers tests and benchmarks run on (see
 * brokers.h).
 */
#include "brokers.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kafka.h"
#include "topics.h"

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

bool cf_broker_kind_parse(const char *s, cf_broker_kind *kind)
{
        static const char *names[] = { "mock", "peer", "external" };
        for (int i = 0; i < 3; i++)
                if (!strcmp(s, names[i])) {
                        *kind = (cf_broker_kind)i;
                        return true;
                }
        return false;
}

const char *cf_broker_kind_name(cf_broker_kind kind)
{
        return kind == CF_BROKER_MOCK   ? "mock"
               : kind == CF_BROKER_PEER ? "peer"
                                        : "external";
}

bool cf_broker_peer_path(const char *source_dir, char *buf, size_t size)
{
        const char *env = getenv("CF_KAFKA_PEER");
        if (env && *env)
                snprintf(buf, size, "%s", env);
        else
                snprintf(buf, size, "%s/../shared/kafka-peer/kafka-peer",
                         source_dir);
        return access(buf, X_OK) == 0;
}

/* Reads a whole first line (one that ends in a newline: the writer may not
 * be done) from path into buf. */
static bool read_line(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "r");
        bool ok = false;
        if (!f)
                return false;
        if (fgets(buf, (int)size, f) && strchr(buf, '\n')) {
                buf[strcspn(buf, "\r\n")] = '\0';
                ok = *buf != '\0';
        }
        fclose(f);
        return ok;
}

/* Runs argv to completion, output to log_path; its exit status or -1. */
static int run(char *const argv[], const char *log_path)
{
        int st;
        pid_t pid = cf_spawn(argv, log_path, NULL);
        if (waitpid(pid, &st, 0) != pid)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Deletes the project's topics on an external cluster, so that a run starts
 * empty; waits until the cluster no longer lists them. */
static bool delete_topics(const char *bootstrap, char *errstr,
                          size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, errstr_size);
        if (!conf)
                return false;
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!rk)
                return false;
        rd_kafka_DeleteTopic_t *dt[CF_T__CNT];
        for (size_t i = 0; i < cf_n_topics; i++)
                dt[i] = rd_kafka_DeleteTopic_new(cf_topics[i].name);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DeleteTopics(rk, dt, cf_n_topics, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        bool ok = ev != NULL;
        if (ev)
                rd_kafka_event_destroy(ev);
        /* Deletion is asynchronous on Kafka: wait until none is listed. */
        for (int i = 0; ok && i < 300; i++) {
                const struct rd_kafka_metadata *md;
                int left = 0;
                if (rd_kafka_metadata(rk, 1, NULL, &md, 5000))
                        continue;
                for (int t = 0; t < md->topic_cnt; t++)
                        left += cf_topic_find(md->topics[t].topic) != NULL;
                rd_kafka_metadata_destroy(md);
                if (!left)
                        break;
                sleep_ms(100);
        }
        if (!ok)
                snprintf(errstr, errstr_size,
                         "deleting the topics on %s: no answer", bootstrap);
        for (size_t i = 0; i < cf_n_topics; i++)
                rd_kafka_DeleteTopic_destroy(dt[i]);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return ok;
}

cf_err_t cf_broker_start(cf_broker *b, cf_broker_kind kind, const char *self,
                         const char *peer, const char *external, int partitions,
                         const char *log_path, char *errstr, size_t errstr_size)
{
        static int seq;
        char parts[16];
        memset(b, 0, sizeof(*b));
        b->kind = kind;
        snprintf(parts, sizeof(parts), "%d", partitions);
        snprintf(b->addr_file, sizeof(b->addr_file), "/tmp/cf-broker-%d-%d",
                 (int)getpid(), seq++);
        unlink(b->addr_file);
        if (kind == CF_BROKER_EXTERNAL) {
                snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", external);
                if (!delete_topics(external, errstr, errstr_size))
                        return CF_ERR_KAFKA;
        } else if (kind == CF_BROKER_MOCK) {
                char *argv[] = {
                        (char *)self, "broker",           "--partitions",
                        parts,        "--bootstrap-file", b->addr_file,
                        NULL
                };
                b->pid = cf_spawn(argv, "/dev/null", log_path);
        } else {
                /* Short session timeouts allowed (tests use them), and the
                 * log cleaner every second, so compaction really runs. */
                char *argv[] = { (char *)peer,
                                 "-addr-file",
                                 b->addr_file,
                                 "-group-min-session-timeout",
                                 "1s",
                                 "-c",
                                 "log.cleaner.backoff.ms=1000",
                                 NULL };
                b->pid = cf_spawn(argv, "/dev/null", log_path);
        }
        if (kind != CF_BROKER_EXTERNAL) {
                bool up = false;
                for (int i = 0; i < 1000 && !up; i++) {
                        up = read_line(b->addr_file, b->bootstrap,
                                       sizeof(b->bootstrap));
                        if (!up && waitpid(b->pid, NULL, WNOHANG) == b->pid) {
                                b->pid = 0;
                                break;
                        }
                        if (!up)
                                sleep_ms(10);
                }
                if (!up) {
                        snprintf(errstr, errstr_size,
                                 "the %s broker did not start in 10 s (see %s)",
                                 cf_broker_kind_name(kind), log_path);
                        cf_broker_stop(b);
                        return CF_ERR_KAFKA;
                }
        }
        if (kind != CF_BROKER_MOCK) {
                /* Kept forever: generated traffic carries the generator's
                 * simulated event times as record timestamps, which
                 * time-based retention would delete at once. */
                char *argv[] = { (char *)self, "topics",
                                 "create",     "--bootstrap",
                                 b->bootstrap, "--partitions",
                                 parts,        "--retention-ms",
                                 "-1",         NULL };
                int rc = run(argv, log_path);
                if (rc) {
                        snprintf(errstr, errstr_size,
                                 "`chargeflow topics create` on %s exited %d "
                                 "(see %s)",
                                 b->bootstrap, rc, log_path);
                        cf_broker_stop(b);
                        return CF_ERR_KAFKA;
                }
        }
        return CF_OK;
}

int cf_broker_stop(cf_broker *b)
{
        int status;
        if (b->pid <= 0) {
                unlink(b->addr_file);
                return 0;
        }
        kill(b->pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
                        b->pid = 0;
                        unlink(b->addr_file);
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                }
                sleep_ms(10);
        }
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &status, 0);
        b->pid = 0;
        unlink(b->addr_file);
        return -1;
}
