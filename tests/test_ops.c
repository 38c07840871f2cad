/*
 * test_ops.c: what data teams and ops see of a running pipeline, end to end
 * on loopback: the embedded broker, `chargeflow registry` (with basic
 * auth), and `chargeflow run` with schema.registry.url, metrics.listen and
 * log.format=json.
 *
 * Input: the generator's small preset (1 day, 2 partitions) written to a
 * record file, re-framed with the ids the registry gave the input schemas
 * (registered by this test) and produced. Expected values come from
 * outside the pipeline:
 *  - ids: the registry numbers schemas 1, 2, 3, ... in the order they are
 *    first registered. This test registers a dummy schema (1), then User
 *    (2), Site (3), MeterReading (4), SessionEvent (5); the pipeline then
 *    registers its outputs in its documented order: ChargeRecord (6),
 *    Statement (7), Rejected (8), BillingEvent (9). None equals its
 *    built-in id (1-8 in codec.h's order), so an output written with a
 *    built-in id would fail the check.
 *  - counts: the records this test produced, per input topic, counted as it
 *    produced them; the outputs as read and decoded by a Python consumer
 *    (confluent-kafka's SchemaRegistryClient plus python3-avro,
 *    tests/sr_decode.py), not by chargeflow.
 *  - Prometheus values: a real `prometheus` scraping the pipeline, queried
 *    through its HTTP API, must report those same counts.
 * Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "genfile.h"
#include "harness.h"
#include "registry_client.h"

#define AUTH "ops:s3cret"

static cf_test_broker broker;
static char dir[64], url[256], cfg_path[128], run_out[128];
static pid_t registry_pid = -1, run_pid = -1, prom_pid = -1;
static int metrics_port, prom_port;
static int64_t n_sessions, n_meter;
static int64_t n_schema_truth; /* the generator's corrupt records */
static cf_registry *reg;
static cf_registry_client *client;
static json_t *decoded; /* sr_decode.py's answer */

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void path(char *buf, size_t n, const char *name)
{
        snprintf(buf, n, "%s/%s", dir, name);
}

static char *read_file(const char *p)
{
        FILE *f = fopen(p, "r");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t)n + 1);
        size_t got = fread(s, 1, (size_t)n, f);
        s[got] = '\0';
        fclose(f);
        return s;
}

/* A server's URL file (--url-file) awaited by cf_test_spawn_until. */
typedef struct url_wait {
        const char *file;
        char *buf;
        size_t n;
} url_wait;

/* Up once the file holds a URL (its first line), copied to w->buf. */
static bool url_written(void *opaque)
{
        url_wait *w = opaque;
        char *u = read_file(w->file);
        if (u) {
                u[strcspn(u, "\n")] = '\0';
                snprintf(w->buf, w->n, "%s", u);
                free(u);
        }
        return *w->buf != '\0';
}

/* Starts `chargeflow registry` (argv, with --url-file urlfile), stdout to
 * out, and waits up to 20 s until it has written its URL, copied into buf
 * (n bytes; empty when it did not). Returns its pid, or -1. */
static pid_t start_registry(char *const argv[], const char *out,
                            const char *urlfile, char *buf, size_t n)
{
        url_wait w = { urlfile, buf, n };
        buf[0] = '\0';
        return cf_test_spawn_until(argv, out, url_written, &w, 20);
}

/* A free TCP port on loopback (bound, read, closed). */
static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof(sa);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
            getsockname(fd, (struct sockaddr *)&sa, &len)) {
                close(fd);
                return -1;
        }
        close(fd);
        return ntohs(sa.sin_port);
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
        cf_buf_put(opaque, p, size * n);
        return size * n;
}

static size_t on_body_discard(char *p, size_t size, size_t n, void *opaque)
{
        (void)p;
        (void)opaque;
        return size * n;
}

/* GET u; returns the HTTP status (0: no answer) and the body in *body
 * (malloc'ed, NUL-terminated; caller frees) when body is not NULL. */
static long http_get(const char *u, char **body)
{
        CURL *c = curl_easy_init();
        cf_buf b;
        long status = 0;
        cf_buf_init(&b);
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        cf_buf_putc(&b, '\0');
        if (body)
                *body = (char *)b.p;
        else
                cf_buf_free(&b);
        return status;
}

/* PUT body (JSON) to the registry's path with its credentials; returns the
 * HTTP status. */
static long registry_put(const char *p, const char *body)
{
        char u[512];
        long status = 0;
        struct curl_slist *h =
            curl_slist_append(NULL, "Content-Type: application/json");
        CURL *c = curl_easy_init();
        snprintf(u, sizeof(u), "%s%s", url, p);
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_USERPWD, AUTH);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_discard);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        return status;
}

/* The value of the sample `name` (with its labels, exactly as exposed) in
 * the pipeline's /metrics, or -1 when absent. */
static double metric(const char *name)
{
        char u[128], *body = NULL;
        double v = -1;
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/metrics", metrics_port);
        if (http_get(u, &body) == 200) {
                size_t n = strlen(name);
                for (char *line = body; line && *line;) {
                        char *nl = strchr(line, '\n');
                        if (!strncmp(line, name, n) && line[n] == ' ')
                                v = strtod(line + n + 1, NULL);
                        line = nl ? nl + 1 : NULL;
                }
        }
        free(body);
        return v;
}

/* Runs argv with stdout to out (stderr to out.err), at most timeout_s. */
static int run_bounded(char *const argv[], const char *out, int timeout_s)
{
        pid_t pid = cf_test_spawn(argv, out);
        return pid > 0 ? cf_test_wait(pid, timeout_s) : -1;
}

/* Registers the schema JSON of t under subject through the client. */
static int32_t register_type(const char *subject, cf_rtype t)
{
        char err[1024];
        int32_t id = -1;
        if (cf_registry_client_register(client, subject,
                                        cf_registry_schema_json(reg, t), &id,
                                        err, sizeof(err))) {
                print_error("register %s: %s\n", subject, err);
                return -1;
        }
        return id;
}

/* Produces the generator's records with their built-in ids swapped for the
 * registry's: the Avro bodies are the same schemas' encodings. Corrupt
 * records (--faults: bad magic byte, an id no registry has, a cut body,
 * junk after it) go as they are, except that a cut or extended body keeps
 * its valid id swapped too: each must still be rejected as SCHEMA. */
static int produce_reframed(const char *gf, const int32_t ids[4])
{
        static const char *const topics[4] = { "billing.users", "billing.sites",
                                               "charging.meter",
                                               "charging.sessions" };
        /* Built-in ids of User, Site, MeterReading, SessionEvent. */
        static const uint8_t builtin[4] = { 4, 3, 2, 1 };
        char err[512];
        cf_genfile_reader *r;
        cf_genfile_rec rec;
        if (cf_genfile_reader_open(&r, gf, err, sizeof(err)))
                return -1;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof(err));
        rd_kafka_conf_set(conf, "compression.codec", "lz4", err, sizeof(err));
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk)
                return -1;
        int rc = 0;
        uint8_t *v = NULL;
        size_t cap = 0;
        while (cf_genfile_next(r, &rec) == CF_OK) {
                const char *topic = cf_genfile_reader_topic(r, rec.topic);
                int k = 0;
                while (k < 4 && strcmp(topics[k], topic))
                        k++;
                if (k == 4 || rec.value_len < 5) {
                        rc = -1;
                        break;
                }
                if (rec.value_len > cap) {
                        cap = rec.value_len;
                        v = realloc(v, cap);
                }
                memcpy(v, rec.value, rec.value_len);
                if (!v[0] && !v[1] && !v[2] && !v[3] && v[4] == builtin[k]) {
                        v[1] = (uint8_t)(ids[k] >> 24);
                        v[2] = (uint8_t)(ids[k] >> 16);
                        v[3] = (uint8_t)(ids[k] >> 8);
                        v[4] = (uint8_t)ids[k];
                }
                for (;;) {
                        rd_kafka_resp_err_t e = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_PARTITION(rec.partition),
                            RD_KAFKA_V_KEY(rec.key, rec.key_len),
                            RD_KAFKA_V_VALUE(v, rec.value_len),
                            RD_KAFKA_V_TIMESTAMP(rec.timestamp_ms),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END);
                        if (!e)
                                break;
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                rc = -1;
                                break;
                        }
                        rd_kafka_poll(rk, 10);
                }
                if (k == 2)
                        n_meter++;
                else if (k == 3)
                        n_sessions++;
        }
        if (rd_kafka_flush(rk, 60000))
                rc = -1;
        rd_kafka_destroy(rk);
        free(v);
        cf_genfile_reader_close(r);
        return rc;
}

static int setup(void **state)
{
        char err[1024], p[160], gf[128];
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/cf-test-ops-%d", (int)getpid());
        char *mk[] = { "/bin/mkdir", "-p", dir, NULL };
        char *out;
        if (cf_test_run(mk, &out, NULL) != 0)
                return -1;
        free(out);
        if (cf_registry_new(&reg, err, sizeof(err)))
                return -1;
        if (!cf_test_broker_start(&broker, 2))
                return -1;
        /* The registry, with basic auth, on a free port. */
        char urlfile[128], regout[128];
        path(urlfile, sizeof(urlfile), "registry.url");
        path(regout, sizeof(regout), "registry.out");
        char *regargv[] = { CF_BINARY,     "registry", "--bootstrap-file",
                            broker.bsfile, "--listen", "127.0.0.1:0",
                            "--url-file",  urlfile,    "--basic-auth",
                            AUTH,          NULL };
        registry_pid =
            start_registry(regargv, regout, urlfile, url, sizeof(url));
        if (!*url)
                return -1;
        cf_registry_client_conf rcc = { .url = url, .user_info = AUTH };
        if (cf_registry_client_new(&rcc, &client, err, sizeof(err)))
                return -1;
        /* Ids: see the header comment. */
        const char *dummy = "{\"type\":\"record\",\"name\":\"Dummy\","
                            "\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}";
        int32_t id0 = -1;
        if (cf_registry_client_register(client, "dummy-value", dummy, &id0, err,
                                        sizeof(err)) ||
            id0 != 1)
                return -1;
        int32_t ids[4] = {
                register_type("billing.users-value", CF_RT_USER),
                register_type("billing.sites-value", CF_RT_SITE),
                register_type("charging.meter-value", CF_RT_METER_READING),
                register_type("charging.sessions-value", CF_RT_SESSION_EVENT),
        };
        if (ids[0] != 2 || ids[1] != 3 || ids[2] != 4 || ids[3] != 5)
                return -1;
        /* Input, with every fault at its default rate. */
        char truth[128];
        path(gf, sizeof(gf), "gen.cfgen");
        path(truth, sizeof(truth), "truth.jsonl");
        char *gen[] = { CF_BINARY,      "gen",     "--preset", "small",
                        "--seed",       "7",       "--days",   "1",
                        "--partitions", "2",       "--out",    gf,
                        "--faults",     "--truth", truth,      NULL };
        path(p, sizeof(p), "gen.out");
        if (run_bounded(gen, p, 60) != 0)
                return -1;
        /* The truth names each corrupt record's reason, SCHEMA. */
        char *t = read_file(truth);
        for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
                json_t *j = json_loads(line, 0, NULL);
                const char *r = json_string_value(json_object_get(j, "reason"));
                if (r && !strcmp(r, "SCHEMA"))
                        n_schema_truth++;
                json_decref(j);
        }
        free(t);
        if (n_schema_truth == 0)
                return -1;
        if (produce_reframed(gf, ids))
                return -1;
        /* The pipeline. */
        metrics_port = free_port();
        path(cfg_path, sizeof(cfg_path), "cf.properties");
        FILE *f = fopen(cfg_path, "w");
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s/state\n"
                "commit.interval.ms=200\nstats.interval.ms=1000\n"
                "schema.registry.url=%s\n"
                "schema.registry.basic.auth.user.info=" AUTH "\n"
                "metrics.listen=127.0.0.1:%d\nlog.format=json\n",
                broker.bootstrap, dir, url, metrics_port);
        fclose(f);
        path(run_out, sizeof(run_out), "run.out");
        char *run[] = { CF_BINARY, "run", "-c", cfg_path, NULL };
        run_pid = cf_test_spawn(run, run_out);
        return run_pid > 0 ? 0 : -1;
}

static void stop(pid_t *pid)
{
        if (*pid > 0)
                cf_test_signal_wait(*pid, SIGTERM, 30);
        *pid = -1;
}

static int teardown(void **state)
{
        (void)state;
        stop(&prom_pid);
        stop(&run_pid);
        stop(&registry_pid);
        json_decref(decoded);
        cf_registry_client_destroy(client);
        cf_registry_destroy(reg);
        char *rm[] = { "/bin/rm", "-rf", dir, NULL };
        char *out;
        cf_test_run(rm, &out, NULL);
        free(out);
        return cf_test_broker_stop(&broker) == 0 ? 0 : -1;
}

/* ---- registry client ----------------------------------------------------- */

static void client_errors_name_url_and_status(void **state)
{
        char err[1024];
        cf_registry_client *bad;
        int32_t id;
        char *json = NULL;
        (void)state;
        cf_registry_client_conf rcc = { .url = url, .user_info = "ops:wrong" };
        assert_int_equal(cf_registry_client_new(&rcc, &bad, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_registry_client_register(bad, "x-value", "\"int\"",
                                                     &id, err, sizeof(err)),
                         CF_ERR_IO);
        assert_non_null(strstr(err, url));
        assert_non_null(strstr(err, "HTTP 401"));
        cf_registry_client_destroy(bad);
        /* An id the registry never gave. */
        assert_int_equal(
            cf_registry_client_fetch(client, 999, &json, err, sizeof(err)),
            CF_ERR_SCHEMA_ID);
        assert_non_null(strstr(err, url));
        assert_non_null(strstr(err, "/schemas/ids/999"));
        assert_non_null(strstr(err, "HTTP 404"));
        /* Nothing listening. */
        rcc = (cf_registry_client_conf){ .url = "http://127.0.0.1:1" };
        assert_int_equal(cf_registry_client_new(&rcc, &bad, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(
            cf_registry_client_fetch(bad, 1, &json, err, sizeof(err)),
            CF_ERR_IO);
        assert_non_null(strstr(err, "http://127.0.0.1:1/schemas/ids/1"));
        cf_registry_client_destroy(bad);
}

/* A ChargeRecord that has only an id: the pipeline's ChargeRecord adds
 * fields without defaults, which BACKWARD (the default rule) forbids. */
/* Makes topic exist, with the partitions of the harness's topics: through
 * the Admin API where the broker serves it, else (the embedded broker) by
 * asking a producer for its metadata, which creates it there. */
static void ensure_topic(const char *topic, int partitions)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, err,
                          sizeof(err));
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(rk);
        if (cf_test_broker_kind() == CF_BROKER_MOCK) {
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
                const struct rd_kafka_metadata *md = NULL;
                assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0);
                rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
        } else {
                rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
                    topic, partitions, -1, err, sizeof(err));
                rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
                rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
                assert_non_null(ev);
                rd_kafka_event_destroy(ev);
                rd_kafka_queue_destroy(q);
                rd_kafka_NewTopic_destroy(nt);
        }
        rd_kafka_destroy(rk);
}

static void incompatible_output_schema_stops_start(void **state)
{
        char err[1024], out[160];
        int32_t id;
        (void)state;
        const char *old = "{\"type\":\"record\",\"name\":\"ChargeRecord\","
                          "\"namespace\":\"chargeflow\",\"fields\":[{"
                          "\"name\":\"record_id\",\"type\":\"string\"}]}";
        assert_int_equal(
            cf_registry_client_register(client, "conflict.charges-value", old,
                                        &id, err, sizeof(err)),
            CF_OK);
        /* The topic exists: only the schema is wrong. */
        ensure_topic("conflict.charges", 2);
        char *run[] = { CF_BINARY, "run",
                        "-c",      cfg_path,
                        "--set",   "topic.charge-records=conflict.charges",
                        "--set",   "metrics.listen=",
                        "--set",   "log.format=text",
                        NULL };
        path(out, sizeof(out), "conflict.out");
        assert_int_equal(run_bounded(run, out, 60), 1);
        char errpath[200];
        snprintf(errpath, sizeof(errpath), "%s.err", out);
        char *text = read_file(errpath);
        assert_non_null(text);
        assert_non_null(strstr(text, "subject conflict.charges-value"));
        assert_non_null(strstr(text, "compatibility rule BACKWARD"));
        assert_non_null(strstr(text, "HTTP 409"));
        free(text);
}

/* ---- the running pipeline ------------------------------------------------ */

static void ready_and_every_input_counted(void **state)
{
        char u[128], name[128];
        double s = -1, m = -1;
        (void)state;
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/health/ready",
                 metrics_port);
        long st = 0;
        for (int i = 0; i < 600 && st != 200; i++) {
                st = http_get(u, NULL);
                if (st != 200)
                        sleep_ms(100);
        }
        assert_int_equal(st, 200);
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/health/live", metrics_port);
        assert_int_equal(http_get(u, NULL), 200);
        for (int i = 0; i < 1200; i++) {
                snprintf(name, sizeof(name),
                         "chargeflow_input_records_total{topic=\"%s\"}",
                         "charging.sessions");
                s = metric(name);
                snprintf(name, sizeof(name),
                         "chargeflow_input_records_total{topic=\"%s\"}",
                         "charging.meter");
                m = metric(name);
                if (s == (double)n_sessions && m == (double)n_meter)
                        break;
                sleep_ms(100);
        }
        print_message("produced: %lld session events, %lld meter readings\n",
                      (long long)n_sessions, (long long)n_meter);
        assert_true(n_sessions > 0 && n_meter > 0);
        assert_int_equal((int64_t)s, n_sessions);
        assert_int_equal((int64_t)m, n_meter);
        assert_int_equal((int64_t)metric("chargeflow_tasks_assigned{"
                                         "subtopology=\"rating\"}"),
                         2);
        assert_int_equal((int64_t)metric("chargeflow_ready"), 1);
}

/* Waits until every output is delivered and the counters stand still. */
static void wait_quiet(void)
{
        double last = -2;
        int same = 0;
        for (int i = 0; i < 600 && same < 10; i++) {
                double p = metric("chargeflow_output_produced_total");
                double d = metric("chargeflow_output_delivered_total");
                if (p == d && d == last)
                        same++;
                else
                        same = 0;
                last = d;
                sleep_ms(200);
        }
        assert_int_equal(same, 10);
}

/* The input buffer's gauges (README, Metrics): its bound is the default
 * input.buffer.max.bytes (64 MiB); input went through it (a peak above
 * 0); once everything is processed and delivered it holds nothing. */
static void input_buffer_gauges(void **state)
{
        (void)state;
        wait_quiet();
        double now = -1;
        for (int i = 0; i < 100 && now != 0; i++) {
                now = metric("chargeflow_input_buffer_bytes");
                if (now != 0)
                        sleep_ms(100);
        }
        assert_int_equal((int64_t)now, 0);
        assert_int_equal((int64_t)metric("chargeflow_input_buffer_max_bytes"),
                         67108864);
        assert_true(metric("chargeflow_input_buffer_peak_bytes") > 0);
}

static void outputs_carry_registry_ids_and_decode_in_python(void **state)
{
        char out[160], errp[200];
        (void)state;
        wait_quiet();
        path(out, sizeof(out), "decode.json");
        char *argv[] = { CF_PYTHON,
                         CF_SOURCE_DIR "/tests/sr_decode.py",
                         url,
                         AUTH,
                         broker.bootstrap,
                         "billing.charge-records",
                         "billing.statements",
                         "billing.rejected",
                         NULL };
        int rc = run_bounded(argv, out, 120);
        snprintf(errp, sizeof(errp), "%s.err", out);
        char *text = read_file(out), *etext = read_file(errp);
        if (rc != 0)
                print_error("sr_decode.py: %s\n%s\n", text, etext);
        assert_int_equal(rc, 0);
        decoded = json_loads(text, 0, NULL);
        free(text);
        free(etext);
        assert_non_null(decoded);
        static const struct {
                const char *topic;
                int id;
        } want[] = { { "billing.charge-records", 6 },
                     { "billing.statements", 7 },
                     { "billing.rejected", 8 } };
        int64_t total = 0;
        for (size_t i = 0; i < 3; i++) {
                json_t *t = json_object_get(decoded, want[i].topic);
                assert_non_null(t);
                int64_t n = json_integer_value(json_object_get(t, "records"));
                assert_int_equal(
                    json_integer_value(json_object_get(t, "decoded")), n);
                assert_int_equal(
                    json_integer_value(json_object_get(t, "latest_id")),
                    want[i].id);
                json_t *ids = json_object_get(t, "ids");
                if (n) {
                        assert_int_equal(json_array_size(ids), 1);
                        assert_int_equal(
                            json_integer_value(json_array_get(ids, 0)),
                            want[i].id);
                }
                print_message("%s: %lld records decoded, schema id %d\n",
                              want[i].topic, (long long)n, want[i].id);
                total += n;
        }
        assert_true(json_integer_value(json_object_get(
                        json_object_get(decoded, "billing.charge-records"),
                        "records")) > 0);
        /* At least the corrupt records (SCHEMA, at once) are there. */
        assert_true(json_integer_value(json_object_get(
                        json_object_get(decoded, "billing.rejected"),
                        "records")) >= n_schema_truth);
        /* Every public output delivered is one latency observation. */
        assert_int_equal(
            (int64_t)metric("chargeflow_event_to_output_seconds_count"), total);
}

/* `chargeflow cat` with the registry reads the same records. */
static void cat_uses_the_configured_registry(void **state)
{
        char out[160];
        (void)state;
        assert_non_null(decoded);
        path(out, sizeof(out), "cat.jsonl");
        char *argv[] = { CF_BINARY,
                         "cat",
                         "billing.charge-records",
                         "--bootstrap",
                         broker.bootstrap,
                         "--from-beginning",
                         "--until-end",
                         "--config",
                         cfg_path,
                         NULL };
        assert_int_equal(run_bounded(argv, out, 60), 0);
        char *text = read_file(out);
        json_t *ids = json_array();
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                json_t *j = json_loads(line, 0, NULL);
                assert_non_null(j);
                assert_null(json_object_get(j, "error"));
                json_t *rid =
                    json_object_get(json_object_get(j, "value"), "record_id");
                assert_true(json_is_string(rid));
                json_array_append(ids, rid);
                json_decref(j);
        }
        free(text);
        /* Sorted as Python sorted its list. */
        size_t n = json_array_size(ids);
        for (size_t i = 1; i < n; i++)
                for (size_t k = i;
                     k > 0 &&
                     strcmp(json_string_value(json_array_get(ids, k - 1)),
                            json_string_value(json_array_get(ids, k))) > 0;
                     k--) {
                        json_t *a = json_incref(json_array_get(ids, k - 1));
                        json_array_set(ids, k - 1, json_array_get(ids, k));
                        json_array_set_new(ids, k, a);
                }
        json_t *py = json_object_get(
            json_object_get(decoded, "billing.charge-records"), "keys");
        assert_true(json_equal(ids, py));
        json_decref(ids);
}

/* `chargeflow report` with the registry counts what Python decoded, per
 * period; with the built-in ids it can decode none of them (id 6 is a
 * Statement there). */
static void report_uses_the_configured_registry(void **state)
{
        char out[160], errp[200];
        const char *period = NULL, *k;
        json_t *v;
        json_int_t most = 0, total = 0;
        (void)state;
        assert_non_null(decoded);
        json_t *cr = json_object_get(decoded, "billing.charge-records");
        json_object_foreach(json_object_get(cr, "periods"), k, v)
        {
                total += json_integer_value(v);
                if (json_integer_value(v) > most) {
                        most = json_integer_value(v);
                        period = k;
                }
        }
        assert_non_null(period);
        path(out, sizeof(out), "report.json");
        char *argv[] = {
                CF_BINARY,     "report",         "--period", (char *)period,
                "--by",        "site",           "--format", "json",
                "--bootstrap", broker.bootstrap, "--config", cfg_path,
                NULL
        };
        assert_int_equal(run_bounded(argv, out, 60), 0);
        char *text = read_file(out);
        json_t *rows = json_loads(text, 0, NULL);
        free(text);
        assert_true(json_is_array(rows));
        json_int_t sessions = 0;
        size_t i;
        json_array_foreach(rows, i, v) sessions +=
            json_integer_value(json_object_get(v, "sessions"));
        json_decref(rows);
        assert_int_equal(sessions, most);
        snprintf(errp, sizeof(errp), "%s.err", out);
        text = read_file(errp);
        assert_null(strstr(text, "did not decode"));
        free(text);
        /* Without the registry. */
        char *plain[] = { CF_BINARY,        "report", "--period",
                          (char *)period,   "--by",   "site",
                          "--format",       "json",   "--bootstrap",
                          broker.bootstrap, NULL };
        assert_int_equal(run_bounded(plain, out, 60), 0);
        text = read_file(errp);
        char want[96];
        snprintf(want, sizeof(want), "%lld records did not decode",
                 (long long)total);
        assert_non_null(strstr(text, want));
        free(text);
}

/* Each input schema id is fetched once; every log line is a JSON object
 * with level, time, component, message and fields, librdkafka's own lines
 * too (its producer always warns that enable.gapless.guarantee is
 * experimental: that line is there, as JSON, naming its client). */
static void input_ids_fetched_once_and_logs_are_json(void **state)
{
        char errp[200];
        int fetched[16] = { 0 };
        (void)state;
        snprintf(errp, sizeof(errp), "%s.err", run_out);
        char *text = read_file(errp);
        assert_non_null(text);
        int lines = 0, kafka_lines = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                json_t *j = json_loads(line, 0, NULL);
                if (!j)
                        print_error("not JSON: %s\n", line);
                assert_non_null(j);
                assert_true(json_is_string(json_object_get(j, "time")));
                assert_true(json_is_string(json_object_get(j, "level")));
                assert_true(json_is_string(json_object_get(j, "component")));
                assert_true(json_is_string(json_object_get(j, "message")));
                assert_true(json_is_object(json_object_get(j, "fields")));
                int id;
                if (sscanf(json_string_value(json_object_get(j, "message")),
                           "schema id %d fetched", &id) == 1 &&
                    id >= 0 && id < 16) {
                        fetched[id]++;
                        assert_int_equal(
                            json_integer_value(json_object_get(
                                json_object_get(j, "fields"), "schema_id")),
                            id);
                }
                const char *comp =
                    json_string_value(json_object_get(j, "component"));
                const char *msg =
                    json_string_value(json_object_get(j, "message"));
                if (!strcmp(comp, "librdkafka") &&
                    strstr(msg, "enable.gapless.guarantee is experimental")) {
                        kafka_lines++;
                        assert_string_equal(
                            json_string_value(json_object_get(j, "level")),
                            "warn");
                        json_t *f = json_object_get(j, "fields");
                        assert_string_equal(
                            json_string_value(json_object_get(f, "facility")),
                            "CONFWARN");
                        assert_non_null(strstr(
                            json_string_value(json_object_get(f, "client")),
                            "producer"));
                }
                lines++;
                json_decref(j);
        }
        free(text);
        assert_true(lines > 5);
        assert_true(kafka_lines >= 1);
        /* The four input schemas (2-5), once each; nothing else. */
        for (int id = 0; id < 16; id++)
                assert_int_equal(fetched[id], id >= 2 && id <= 5 ? 1 : 0);
}

/* ---- Prometheus ------------------------------------------------------------
 */

/* The value of an instant query's single result, or -1. */
static double prom_query(const char *q)
{
        char u[512], *body = NULL;
        double v = -1;
        CURL *c = curl_easy_init();
        char *eq = curl_easy_escape(c, q, 0);
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/api/v1/query?query=%s",
                 prom_port, eq);
        curl_free(eq);
        curl_easy_cleanup(c);
        if (http_get(u, &body) == 200) {
                json_t *j = json_loads(body, 0, NULL);
                json_t *res =
                    json_object_get(json_object_get(j, "data"), "result");
                if (json_array_size(res) == 1) {
                        const char *s = json_string_value(json_array_get(
                            json_object_get(json_array_get(res, 0), "value"),
                            1));
                        if (s)
                                v = strtod(s, NULL);
                }
                json_decref(j);
        }
        free(body);
        return v;
}

/* A server's URL awaited by cf_test_spawn_until: up once a GET of it
 * answers 200 (the last status in status). */
typedef struct http_wait {
        const char *url;
        long status;
} http_wait;

static bool http_ok(void *opaque)
{
        http_wait *w = opaque;
        w->status = http_get(w->url, NULL);
        return w->status == 200;
}

static void prometheus_scrapes_exact_values(void **state)
{
        char yml[128], out[128], data[128], listen[64], u[128];
        (void)state;
        prom_port = free_port();
        path(yml, sizeof(yml), "prometheus.yml");
        path(data, sizeof(data), "prom-data");
        path(out, sizeof(out), "prometheus.out");
        FILE *f = fopen(yml, "w");
        fprintf(f,
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: chargeflow\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
                metrics_port);
        fclose(f);
        snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d",
                 prom_port);
        char cfgarg[160], dataarg[160];
        snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", yml);
        snprintf(dataarg, sizeof(dataarg), "--storage.tsdb.path=%s", data);
        char *argv[] = { CF_PROMETHEUS, cfgarg, dataarg, listen, NULL };
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/-/ready", prom_port);
        http_wait w = { u, 0 };
        prom_pid = cf_test_spawn_until(argv, out, http_ok, &w, 60);
        assert_true(prom_pid > 0);
        assert_int_equal(w.status, 200);
        char q[256];
        snprintf(q, sizeof(q),
                 "chargeflow_input_records_total{topic=\"charging.sessions\"}");
        double v = -1;
        for (int i = 0; i < 300 && v != (double)n_sessions; i++) {
                v = prom_query(q);
                if (v != (double)n_sessions)
                        sleep_ms(100);
        }
        assert_int_equal((int64_t)v, n_sessions);
        assert_int_equal((int64_t)prom_query("chargeflow_input_records_total{"
                                             "topic=\"charging.meter\"}"),
                         n_meter);
        assert_int_equal((int64_t)prom_query("up{job=\"chargeflow\"}"), 1);
        /* Every corrupt record the generator wrote, as SCHEMA. */
        v = -1;
        for (int i = 0; i < 300 && v != (double)n_schema_truth; i++) {
                v = prom_query("chargeflow_rejected_total{reason=\"SCHEMA\"}");
                if (v != (double)n_schema_truth)
                        sleep_ms(100);
        }
        assert_int_equal((int64_t)v, n_schema_truth);
        assert_int_equal((int64_t)prom_query("sum(chargeflow_tasks_assigned)"),
                         4); /* 2 rating + 2 billing partitions */
        /* Conservation, as Prometheus sees it: in = accepted + duplicates +
         * rejected + pending, per input topic. */
        assert_int_equal(
            (int64_t)prom_query(
                "sum(chargeflow_input_records_total{topic=\"charging.meter\"}"
                " - chargeflow_input_accepted_total - "
                "chargeflow_input_duplicates_total - "
                "chargeflow_input_rejected_total - "
                "chargeflow_input_pending_records)"),
            0);
}

static void promtool_accepts_the_exposition(void **state)
{
        char u[128], file[128], out[128], cmd[512];
        char *body = NULL;
        (void)state;
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/metrics", metrics_port);
        assert_int_equal(http_get(u, &body), 200);
        path(file, sizeof(file), "scrape.txt");
        FILE *f = fopen(file, "w");
        fputs(body, f);
        fclose(f);
        free(body);
        path(out, sizeof(out), "promtool.out");
        snprintf(cmd, sizeof(cmd), "%s check metrics < %s", CF_PROMTOOL, file);
        char *argv[] = { "/bin/sh", "-c", cmd, NULL };
        int rc = run_bounded(argv, out, 60);
        if (rc) {
                char errp[160];
                snprintf(errp, sizeof(errp), "%s.err", out);
                char *t = read_file(errp);
                print_error("promtool: %s\n", t ? t : "");
                free(t);
        }
        assert_int_equal(rc, 0);
}

/* Every query of the Grafana dashboard runs in the real Prometheus, and
 * every chargeflow metric it names is exposed. */
static void grafana_dashboard_queries_run_in_prometheus(void **state)
{
        char u[128], *scrape = NULL;
        (void)state;
        json_t *d = json_load_file(
            CF_SOURCE_DIR "/pipeline/runtime/grafana-dashboard.json", 0, NULL);
        assert_non_null(d);
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/metrics", metrics_port);
        assert_int_equal(http_get(u, &scrape), 200);
        size_t i, k, n = 0;
        json_t *panel, *target;
        json_array_foreach(json_object_get(d, "panels"), i, panel)
        {
                json_array_foreach(json_object_get(panel, "targets"), k, target)
                {
                        char expr[1024], *body = NULL;
                        snprintf(
                            expr, sizeof(expr), "%s",
                            json_string_value(json_object_get(target, "expr")));
                        /* Grafana's variable, as a plain range. */
                        char *var;
                        while ((var = strstr(expr, "$__rate_interval"))) {
                                size_t vl = strlen("$__rate_interval");
                                memmove(var + 2, var + vl,
                                        strlen(var + vl) + 1);
                                memcpy(var, "1m", 2);
                        }
                        CURL *c = curl_easy_init();
                        char *eq = curl_easy_escape(c, expr, 0);
                        char *q2 = NULL;
                        if (asprintf(
                                &q2,
                                "http://127.0.0.1:%d/api/v1/query?query=%s",
                                prom_port, eq) < 0)
                                q2 = NULL;
                        assert_non_null(q2);
                        curl_free(eq);
                        curl_easy_cleanup(c);
                        long st = http_get(q2, &body);
                        free(q2);
                        if (st != 200)
                                print_error("%s: %s\n", expr, body);
                        assert_int_equal(st, 200);
                        free(body);
                        /* Its chargeflow metric is in the exposition. */
                        char *m = strstr(expr, "chargeflow_");
                        assert_non_null(m);
                        char name[128], line[160];
                        size_t len = strspn(m, "abcdefghijklmnopqrstuvwxyz_");
                        snprintf(name, sizeof(name), "%.*s", (int)len, m);
                        snprintf(line, sizeof(line), "\n%s", name);
                        assert_non_null(strstr(scrape, line));
                        n++;
                }
        }
        assert_true(n >= 14);
        free(scrape);
        json_decref(d);
}

/* Avro resolution rules decide what the registry accepts (BACKWARD, the
 * default: the new schema must read data of the latest). */
static void registry_checks_compatibility(void **state)
{
        char err[2048];
        int32_t id1, id2, id3;
        (void)state;
        const char *v1 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"a\",\"type\":\"int\"}]}";
        /* A field with a default added, a promoted to long: readable. */
        const char *v2 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"a\",\"type\":\"long\"},"
                         "{\"name\":\"b\",\"type\":\"string\","
                         "\"default\":\"x\"}]}";
        /* A field without a default added: v2's data lacks it. */
        const char *v3 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"a\",\"type\":\"long\"},"
                         "{\"name\":\"c\",\"type\":\"int\"}]}";
        /* long cannot be read as int. (Not v1 itself: a schema the
         * subject already has is found, whatever its version.) */
        const char *v4 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"a\",\"type\":\"int\"},"
                         "{\"name\":\"b\",\"type\":\"string\","
                         "\"default\":\"y\"}]}";
        assert_int_equal(cf_registry_client_register(client, "evo-value", v1,
                                                     &id1, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_registry_client_register(client, "evo-value", v2,
                                                     &id2, err, sizeof(err)),
                         CF_OK);
        assert_true(id2 > id1);
        /* Registering again finds the same id. */
        assert_int_equal(cf_registry_client_register(client, "evo-value", v2,
                                                     &id3, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(id3, id2);
        assert_int_equal(cf_registry_client_register(client, "evo-value", v3,
                                                     &id3, err, sizeof(err)),
                         CF_ERR_INCOMPATIBLE);
        assert_non_null(strstr(err, "subject evo-value"));
        assert_non_null(strstr(err, "rule BACKWARD"));
        assert_non_null(strstr(err, "field c"));
        assert_int_equal(cf_registry_client_register(client, "evo-value", v4,
                                                     &id3, err, sizeof(err)),
                         CF_ERR_INCOMPATIBLE);
        assert_non_null(strstr(err, "long cannot be read as int"));
        /* v1 again: found, version 1's id. */
        assert_int_equal(cf_registry_client_register(client, "evo-value", v1,
                                                     &id3, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(id3, id1);
        /* The same schema under another subject keeps its id. */
        assert_int_equal(cf_registry_client_register(client, "evo2-value", v2,
                                                     &id3, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(id3, id2);
        /* NONE for the subject: v3 goes in. */
        assert_int_equal(
            registry_put("/config/evo-value", "{\"compatibility\":\"NONE\"}"),
            200);
        assert_int_equal(cf_registry_client_register(client, "evo-value", v3,
                                                     &id3, err, sizeof(err)),
                         CF_OK);
        assert_true(id3 > id2);
        /* FORWARD: the latest (v2) must read the new schema's data; v5
         * drops a, which v2 needs and has no default for. */
        const char *v5 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"b\",\"type\":\"string\","
                         "\"default\":\"x\"}]}";
        assert_int_equal(registry_put("/config/evo2-value",
                                      "{\"compatibility\":\"FORWARD\"}"),
                         200);
        assert_int_equal(cf_registry_client_register(client, "evo2-value", v5,
                                                     &id3, err, sizeof(err)),
                         CF_ERR_INCOMPATIBLE);
        assert_non_null(strstr(err, "subject evo2-value"));
        assert_non_null(strstr(err, "rule FORWARD"));
        assert_non_null(strstr(err, "reader field a"));
        /* An unknown level is refused. */
        assert_int_equal(registry_put("/config/evo2-value",
                                      "{\"compatibility\":\"SOMETIMES\"}"),
                         422);
}

/* metrics.listen on a port in use: a configuration error, exit 2. */
/* Issue 17: an operator upgrading a running pipeline: the subjects hold the
 * previous versions of the output schemas (ChargeRecord 1, Statement 1,
 * Rejected 2, from the old files in schemas/), and this version's schemas must
 * register over them under the default rule, BACKWARD (new fields with
 * defaults; an enum symbol added). */
static void new_output_schema_versions_register_over_the_old(void **state)
{
        char err[2048], p[512];
        (void)state;
        static const struct {
                const char *old_file;
                cf_rtype t;
        } up[] = { { "charge_record_v1.avsc", CF_RT_CHARGE_RECORD },
                   { "statement_v1.avsc", CF_RT_STATEMENT },
                   { "rejected_v2.avsc", CF_RT_REJECTED } };
        for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
                char subject[64];
                snprintf(subject, sizeof(subject), "upgrade-%zu-value", i);
                snprintf(p, sizeof(p), "%s/schemas/%s", CF_SOURCE_DIR,
                         up[i].old_file);
                char *old = read_file(p);
                assert_non_null(old);
                int32_t id_old, id_new;
                assert_int_equal(cf_registry_client_register(client, subject,
                                                             old, &id_old, err,
                                                             sizeof(err)),
                                 CF_OK);
                free(old);
                int rc = cf_registry_client_register(
                    client, subject, cf_registry_schema_json(reg, up[i].t),
                    &id_new, err, sizeof(err));
                if (rc != CF_OK)
                        fail_msg("%s: %s", subject, err);
                /* Another schema (the pipeline may have registered it
                 * under its own subject before: one id per schema). */
                assert_true(id_new != id_old);
        }
}

/* `chargeflow run -c cfg_path --set s1 --set log.format=text --set s2`
 * (s2 may be NULL) must stop with exit code 2 and say want on stderr
 * (its output in name.out.err). */
static void run_exits_2(const char *s1, const char *s2, const char *name,
                        const char *want)
{
        char out[160], file[64], errpath[200];
        char *run[] = { CF_BINARY, "run",      "-c",    cfg_path,
                        "--set",   (char *)s1, "--set", "log.format=text",
                        "--set",   (char *)s2, NULL };
        if (!s2)
                run[8] = NULL; /* ends after log.format */
        snprintf(file, sizeof(file), "%s.out", name);
        path(out, sizeof(out), file);
        assert_int_equal(run_bounded(run, out, 60), 2);
        snprintf(errpath, sizeof(errpath), "%s.err", out);
        char *text = read_file(errpath);
        assert_non_null(text);
        if (!strstr(text, want))
                fail_msg("%s: no \"%s\" in %s", name, want, errpath);
        free(text);
}

static void metrics_port_in_use_exits_2(void **state)
{
        char set[64];
        (void)state;
        snprintf(set, sizeof(set), "metrics.listen=127.0.0.1:%d", metrics_port);
        run_exits_2(set, NULL, "inuse", "metrics.listen: 127.0.0.1:");
}

/* producer.fencing=transactions fences for the process that restores a
 * task from its log: without the task log it is a configuration error
 * (exit 2, naming the key), before anything connects. */
static void fencing_without_task_log_exits_2(void **state)
{
        (void)state;
        run_exits_2("producer.fencing=transactions", "task.log=off", "fencing",
                    "config: producer.fencing=transactions needs the task "
                    "log");
}

/* HTTPS: a second registry serving the same _schemas topic with a
 * self-signed certificate; the client verifies it with
 * schema.registry.ssl.ca.location and fails, naming the URL, without. */
static void registry_over_tls_verified_with_the_ca(void **state)
{
        char err[1024], cert[128], key[128], out[128], urlfile[128];
        char tlsurl[256] = "", *json = NULL;
        (void)state;
        path(cert, sizeof(cert), "cert.pem");
        path(key, sizeof(key), "key.pem");
        path(out, sizeof(out), "openssl.out");
        char *gen[] = { CF_OPENSSL, "req",
                        "-x509",    "-newkey",
                        "rsa:2048", "-nodes",
                        "-keyout",  key,
                        "-out",     cert,
                        "-days",    "1",
                        "-subj",    "/CN=127.0.0.1",
                        "-addext",  "subjectAltName=IP:127.0.0.1",
                        NULL };
        assert_int_equal(run_bounded(gen, out, 60), 0);
        path(urlfile, sizeof(urlfile), "tls.url");
        path(out, sizeof(out), "tls-registry.out");
        char *regargv[] = { CF_BINARY,     "registry",  "--bootstrap-file",
                            broker.bsfile, "--listen",  "127.0.0.1:0",
                            "--url-file",  urlfile,     "--tls-cert",
                            cert,          "--tls-key", key,
                            NULL };
        pid_t pid =
            start_registry(regargv, out, urlfile, tlsurl, sizeof(tlsurl));
        assert_true(!strncmp(tlsurl, "https://127.0.0.1:", 18));
        /* Through the pipeline's keys. */
        cf_config c;
        cf_registry_client_conf rcc;
        cf_registry_client *tc;
        cf_config_init(&c);
        assert_int_equal(
            cf_config_set(&c, "schema.registry.url", tlsurl, err, sizeof(err)),
            CF_OK);
        assert_int_equal(cf_config_set(&c, "schema.registry.ssl.ca.location",
                                       cert, err, sizeof(err)),
                         CF_OK);
        cf_registry_client_conf_from(&rcc, &c);
        assert_int_equal(cf_registry_client_new(&rcc, &tc, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(
            cf_registry_client_fetch(tc, 6, &json, err, sizeof(err)), CF_OK);
        assert_non_null(strstr(json, "ChargeRecord"));
        free(json);
        cf_registry_client_destroy(tc);
        /* Without the CA the certificate is not trusted. */
        rcc.ca = NULL;
        assert_int_equal(cf_registry_client_new(&rcc, &tc, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(
            cf_registry_client_fetch(tc, 6, &json, err, sizeof(err)),
            CF_ERR_IO);
        assert_non_null(strstr(err, tlsurl));
        cf_registry_client_destroy(tc);
        cf_config_destroy(&c);
        assert_int_equal(cf_test_signal_wait(pid, SIGTERM, 30), 0);
}

/* The registry keeps its schemas in Kafka: restarted, it gives the same
 * ids (read back from the _schemas topic). */
static void registry_restart_keeps_ids(void **state)
{
        char err[1024], urlfile[128], regout[128], listen[64];
        char *json = NULL;
        int32_t id;
        (void)state;
        stop(&registry_pid);
        const char *port = strrchr(url, ':') + 1;
        snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
        path(urlfile, sizeof(urlfile), "registry2.url");
        path(regout, sizeof(regout), "registry2.out");
        char *regargv[] = { CF_BINARY,     "registry", "--bootstrap-file",
                            broker.bsfile, "--listen", listen,
                            "--url-file",  urlfile,    "--basic-auth",
                            AUTH,          NULL };
        char u[256];
        registry_pid = start_registry(regargv, regout, urlfile, u, sizeof(u));
        assert_true(*u);
        assert_int_equal(cf_registry_client_register(
                             client, "billing.charge-records-value",
                             cf_registry_schema_json(reg, CF_RT_CHARGE_RECORD),
                             &id, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(id, 6);
        assert_int_equal(cf_registry_client_register(
                             client, "charging.sessions-value",
                             cf_registry_schema_json(reg, CF_RT_SESSION_EVENT),
                             &id, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(id, 5);
        assert_int_equal(
            cf_registry_client_fetch(client, 9, &json, err, sizeof(err)),
            CF_OK);
        assert_non_null(strstr(json, "BillingEvent"));
        free(json);
}

/* SIGTERM: the pipeline and the registry stop cleanly (exit 0). */
static void pipeline_and_registry_stop_cleanly(void **state)
{
        (void)state;
        assert_int_equal(cf_test_signal_wait(prom_pid, SIGTERM, 30), 0);
        prom_pid = -1;
        assert_int_equal(cf_test_signal_wait(run_pid, SIGTERM, 60), 0);
        run_pid = -1;
        assert_int_equal(cf_test_signal_wait(registry_pid, SIGTERM, 30), 0);
        registry_pid = -1;
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(client_errors_name_url_and_status),
                cmocka_unit_test(ready_and_every_input_counted),
                cmocka_unit_test(input_buffer_gauges),
                cmocka_unit_test(
                    outputs_carry_registry_ids_and_decode_in_python),
                /* After the pipeline has registered its outputs (ids). */
                cmocka_unit_test(incompatible_output_schema_stops_start),
                cmocka_unit_test(cat_uses_the_configured_registry),
                cmocka_unit_test(report_uses_the_configured_registry),
                cmocka_unit_test(input_ids_fetched_once_and_logs_are_json),
                cmocka_unit_test(prometheus_scrapes_exact_values),
                cmocka_unit_test(promtool_accepts_the_exposition),
                cmocka_unit_test(grafana_dashboard_queries_run_in_prometheus),
                cmocka_unit_test(registry_checks_compatibility),
                cmocka_unit_test(
                    new_output_schema_versions_register_over_the_old),
                cmocka_unit_test(metrics_port_in_use_exits_2),
                cmocka_unit_test(fencing_without_task_log_exits_2),
                cmocka_unit_test(registry_over_tls_verified_with_the_ca),
                cmocka_unit_test(registry_restart_keeps_ids),
                cmocka_unit_test(pipeline_and_registry_stop_cleanly),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
