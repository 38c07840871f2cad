/*
 * harness.h: helpers for whole-process tests: start the real `chargeflow`
 * binary (CF_BINARY) as a child, start the broker the tests run on, and
 * capture a command's output.
 *
 * The broker is chosen by the environment, for every Kafka-facing test:
 *   CF_TEST_BROKER=mock      the embedded broker (default)
 *   CF_TEST_BROKER=peer      ../shared/kafka-peer/kafka-peer, an independent
 *                            implementation (path: CF_KAFKA_PEER)
 *   CF_TEST_BROKER=external  the cluster at CF_TEST_BOOTSTRAP=host:port,
 *                            whose chargeflow topics each test deletes and
 *                            makes anew: a scratch cluster only
 * ctest runs each Kafka-facing test on the mock and again on the peer
 * (tests named *.peer); those skip, saying so, when the peer is absent.
 *
 * Also: the one whole-topic reader of the tests (cf_test_read_topic) and
 * the one "start a server and wait until it answers" (cf_test_spawn_until,
 * cf_test_broker_spawn). Functions that assert fail the running cmocka
 * test.
 */
#ifndef CF_TEST_HARNESS_H
#define CF_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "brokers.h"
#include "inproc.h"

typedef struct cf_test_broker {
        cf_broker br;        /* the broker process (brokers.h) */
        char bootstrap[512]; /* host:port[,...] */
        char bsfile[128]; /* a file holding bootstrap, for --bootstrap-file */
} cf_test_broker;

/* Exit code of a test program that was skipped (ctest SKIP_RETURN_CODE). */
#define CF_TEST_SKIP 77

/* Call first in main() of every Kafka-facing test. Reads CF_TEST_BROKER;
 * when it names the peer and the peer binary is absent, prints one line
 * saying so and exits CF_TEST_SKIP; on a bad value, or external without
 * CF_TEST_BOOTSTRAP, says what is wrong and exits 1. Prints which broker
 * the tests run on. */
void cf_test_broker_require(void);

/* The kind of broker the tests run on (after cf_test_broker_require). */
cf_broker_kind cf_test_broker_kind(void);

/* Starts a broker of the chosen kind with the project's topics, each with
 * the given partitions, empty; waits up to 10 s. Returns false on failure
 * (printing why). */
bool cf_test_broker_start(cf_test_broker *b, int partitions);

/* Sends SIGTERM and waits; returns the exit status (-1 if it did not exit
 * normally within 10 s). */
int cf_test_broker_stop(cf_test_broker *b);

/* Runs argv (argv[0] a path) to completion with stdout captured into a
 * malloc'ed NUL-terminated buffer (*out, caller frees). Returns the exit
 * status, or -1 if it did not exit normally. */
int cf_test_run(char *const argv[], char **out, size_t *outlen);

/* Starts argv (argv[0] a path) with stdout to out_path and stderr to
 * out_path.err; returns its pid. */
pid_t cf_test_spawn(char *const argv[], const char *out_path);

/* Like cf_test_spawn, with files limited to fsize bytes (RLIMIT_FSIZE)
 * and SIGXFSZ ignored, so that writes past it fail (EFBIG): a disk that
 * fills up. */
pid_t cf_test_spawn_fsize(char *const argv[], const char *out_path, long fsize);

/* Waits up to timeout_s for pid to exit; its exit status, or -1 (killed
 * when it did not exit in time, or did not exit normally). */
int cf_test_wait(pid_t pid, int timeout_s);

/* Sends sig to pid and waits up to timeout_s; returns the exit status, or
 * -1 if it did not exit normally in time (it is then killed). */
int cf_test_signal_wait(pid_t pid, int sig, int timeout_s);

/* Like cf_test_spawn, then waits until up(opaque) is true, asking it every
 * 10 ms (and after each answer it takes to give) for up to timeout_s. Returns
 * the pid once up; -1 when it was not up in time or exited first (it is
 * then killed and reaped). */
pid_t cf_test_spawn_until(char *const argv[], const char *out_path,
                          bool (*up)(void *opaque), void *opaque,
                          int timeout_s);

/* Whether a broker at bootstrap (host:port[,...]) answers a metadata
 * request within timeout_ms (`chargeflow topics check` gets an answer: it
 * exits 0 or 1, whatever the topics). */
bool cf_test_broker_answers(const char *bootstrap, int timeout_ms);

/* Starts a broker process (argv; stdout to log, stderr to log.err) that
 * will listen at bootstrap, and waits up to timeout_s until it answers
 * (cf_test_broker_answers). Returns its pid; fails the test when it did not
 * answer in time (the process is then killed). */
pid_t cf_test_broker_spawn(char *const argv[], const char *log,
                           const char *bootstrap, int timeout_s);

/* The record callback of cf_test_read_topic: m is a record (never an
 * error), valid during the call. */
typedef void cf_test_record_fn(const rd_kafka_message_t *m, void *opaque);

/* Reads the whole topic at bootstrap: every partition (from the topic's
 * metadata) from offset 0 to its end as of the call (its high watermark),
 * calling fn on each record in the order they arrive (per partition in
 * offset order). Asserts that every partition starts at offset 0 (nothing
 * was dropped by retention or deletion), that no consume error occurs, and
 * that every record up to the ends arrives (giving up after 30 s without a
 * record). Returns the number of records read. */
int64_t cf_test_read_topic(const char *bootstrap, const char *topic,
                           cf_test_record_fn *fn, void *opaque);

/* Called with the pipeline of cf_test_run_genfile: once it is made
 * (done false: e.g. take its registry for the sink) and once before it is
 * destroyed (done true: read its tasks). */
typedef void cf_test_pipeline_fn(void *opaque, cf_inproc *ip, bool done);

/* Feeds a genfile (`chargeflow gen --out`) through rating and billing in
 * process (cf_inproc over partitions, state in state_dir,
 * watermark.idle.ms one day so that statements follow the data alone):
 * the tables as they come, the inputs with offsets from 0 per partition and
 * input, a commit every 4,096 input records; then drains (the end of input
 * closes every period) and commits three times (rating's last outputs,
 * then billing's). Every output goes to sink. Returns 0, or -1 with the
 * error printed. */
int cf_test_run_genfile(const char *genfile, const char *state_dir,
                        int32_t partitions, cf_inproc_sink *sink,
                        cf_test_pipeline_fn *fn, void *opaque);

#endif
