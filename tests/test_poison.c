/*
 * test_poison.c: poison pills on the live topics (issue 15), against the
 * real `chargeflow run` and the embedded broker.
 *
 * The generator publishes a small estate (sites, users, one day of
 * traffic); a first run reads it. Then, one case at a time, the test
 * produces bad records to the input topics with its own producer and
 * restarts the pipeline (`run --until-idle`), asserting for each case:
 *  - the run exits 0 (nothing stopped it) and its counters balance: per
 *    input topic in = accepted + duplicates + rejected + pending, nothing
 *    pending, and `in` grew by what the case fed (the restart made
 *    progress past the record);
 *  - the record lands in billing.rejected with the expected reason and
 *    detail, or, for an output that can never be delivered, is counted in
 *    outputs_skipped and logged;
 *  - every record of billing.rejected, billing.charge-records and
 *    billing.statements decodes with an independent Avro reader
 *    (tests/avro_read.py: python3-avro and python3-confluent-kafka, the
 *    Debian packages). Without /usr/bin/python3 the test skips, loudly.
 * The expected reasons and details come from the issue and the README
 * (Topics and schemas: the decoder's error codes; Operations), never from
 * a run of the code.
 *
 * Helpers of its own (not in harness.c): a producer, the Python reader,
 * and a run that captures stdout and stderr (cf_test_spawn).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "harness.h"
#include "stage.h"

#define PYTHON "/usr/bin/python3"
#define KEY    "CH-POISON"
/* 2026-10-22T00:00Z (calendar.timegm), after the generator's one day from
 * 2026-10-20: ahead of everything already read. */
#define T0  1792627200000LL
#define MIN 60000LL

static cf_test_broker broker;
static char dir[64], cfg_path[128];
static cf_registry *reg;
static rd_kafka_t *producer;
static bool have_python;
static char site_id[64]; /* a site of the estate */
static json_t *last;     /* the last run's summary */
/* Per partition, the offset after the last record seen so far: the reader
 * prints partitions in the order their records arrive, which differs from
 * run to run (and from one broker to the other). */
#define MAX_PARTS 16
static json_int_t rejected_seen[MAX_PARTS]; /* billing.rejected */
static json_int_t charges_seen[MAX_PARTS];  /* billing.charge-records */
static int64_t t_next = T0;                 /* event time of the next case */
static int64_t fed[CF_IN__CNT];             /* records fed per input so far */
static int64_t base_in[CF_IN__CNT]; /* `in` after the generator's data */

static const char *const in_topics[] = { "charging.sessions",
                                         "charging.meter" };

/* ---- helpers -------------------------------------------------------- */

static void produce(const char *topic, const char *key, size_t klen,
                    const void *value, size_t vlen, int64_t ts)
{
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (err)
                fail_msg("produce to %s: %s", topic, rd_kafka_err2str(err));
        assert_int_equal(rd_kafka_flush(producer, 10000), 0);
        if (!strcmp(topic, in_topics[0]))
                fed[CF_IN_SESSIONS]++;
        else if (!strcmp(topic, in_topics[1]))
                fed[CF_IN_METER]++;
}

static cf_session_event event(const char *eid, int32_t kind, const char *sid,
                              const char *site, int64_t t, int64_t wh)
{
        return (cf_session_event){ .event_id = (char *)eid,
                                   .kind = kind,
                                   .session_id = (char *)sid,
                                   .site_id = (char *)site,
                                   .charger_id = KEY,
                                   .connector_id = 1,
                                   .time_ms = t,
                                   .energy_wh = wh,
                                   .user_id = NULL,
                                   .badge_id = NULL,
                                   .stop_reason = kind == CF_SESSION_STOPPED
                                                      ? CF_STOP_LOCAL
                                                      : -1 };
}

/* Produces a session event keyed KEY (key NULL: a null key). */
static void produce_event(const cf_session_event *e, const char *key)
{
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_SESSION_EVENT, e, &b);
        produce(in_topics[0], key, key ? strlen(key) : 0, b.p, b.len,
                e->time_ms);
        cf_buf_free(&b);
}

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return strdup("");
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t)n + 1);
        size_t got = fread(s, 1, (size_t)n, f);
        s[got] = '\0';
        fclose(f);
        return s;
}

/* Runs `chargeflow run -c cfg --until-idle [--set s]...` (sets ends with
 * NULL); returns its exit status; *err gets its stderr (caller frees);
 * the summary goes to `last` when it printed one. */
static int run(const char *const *sets, char **err)
{
        char *argv[32] = { CF_BINARY, "run", "-c", cfg_path, "--until-idle" };
        int n = 5;
        for (; sets && *sets; sets++) {
                argv[n++] = "--set";
                argv[n++] = (char *)*sets;
        }
        argv[n] = NULL;
        char out[128], errp[140];
        snprintf(out, sizeof(out), "%s/run.out", dir);
        snprintf(errp, sizeof(errp), "%s.err", out);
        pid_t pid = cf_test_spawn(argv, out);
        int rc = cf_test_wait(pid, 240);
        char *o = slurp(out);
        json_t *j = json_loads(o, 0, NULL);
        free(o);
        if (j) {
                json_decref(last);
                last = j;
        }
        if (err)
                *err = slurp(errp);
        return rc;
}

static int64_t jint(json_t *o, const char *a, const char *b, const char *c)
{
        json_t *j = json_object_get(o, a);
        if (b)
                j = json_object_get(j, b);
        if (c)
                j = json_object_get(j, c);
        return json_integer_value(j);
}

/* The last run's counters balance and hold nothing, and each input's `in`
 * is what the generator published plus what the cases fed. */
static void assert_balanced(void)
{
        assert_non_null(last);
        for (int i = 0; i < 2; i++) {
                const char *t = in_topics[i];
                int64_t in = jint(last, "inputs", t, "in");
                int64_t sum = jint(last, "inputs", t, "accepted") +
                              jint(last, "inputs", t, "duplicates") +
                              jint(last, "inputs", t, "rejected") +
                              jint(last, "inputs", t, "pending");
                if (in != sum)
                        fail_msg("%s: in %lld != %lld", t, (long long)in,
                                 (long long)sum);
                assert_int_equal(jint(last, "inputs", t, "pending"), 0);
                assert_int_equal(in, base_in[i] + fed[i]);
        }
}

/* Reads topics with the independent reader; every record must decode.
 * Returns the JSON lines as an array. */
static json_t *read_topics(const char *topics)
{
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 PYTHON " %s/tests/avro_read.py %s %s/schemas %s 2>&1",
                 CF_SOURCE_DIR, broker.bootstrap, CF_SOURCE_DIR, topics);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        json_t *all = json_array();
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, p) > 0) {
                json_t *j = json_loads(line, 0, NULL);
                if (!j)
                        fail_msg("avro_read.py: %s", line);
                if (json_object_get(j, "error"))
                        fail_msg("an output record does not decode: %s", line);
                json_array_append_new(all, j);
        }
        free(line);
        assert_int_equal(pclose(p), 0);
        return all;
}

static json_t *records_of(json_t *all, const char *topic)
{
        json_t *r = json_array(), *j;
        size_t i;
        json_array_foreach(all, i, j)
        {
                if (!strcmp(json_string_value(json_object_get(j, "topic")),
                            topic))
                        json_array_append(r, j);
        }
        return r;
}

/* The records of all that were not seen yet by the seen offsets, which
 * move past them. */
static json_t *new_records(json_t *all, json_int_t *seen)
{
        json_t *r = json_array(), *j;
        json_int_t next[MAX_PARTS];
        memcpy(next, seen, sizeof(next));
        size_t i;
        json_array_foreach(all, i, j)
        {
                json_int_t p =
                    json_integer_value(json_object_get(j, "partition"));
                json_int_t off =
                    json_integer_value(json_object_get(j, "offset"));
                assert_true(p >= 0 && p < MAX_PARTS);
                if (off < seen[p])
                        continue;
                json_array_append(r, j);
                if (off + 1 > next[p])
                        next[p] = off + 1;
        }
        memcpy(seen, next, sizeof(next));
        return r;
}

/* The records of billing.rejected new since the last call (every
 * rejected record of the cases is in partition 0: task A-0's). */
static json_t *new_rejected(void)
{
        json_t *all = read_topics("billing.rejected");
        json_t *r = new_records(all, rejected_seen);
        json_decref(all);
        return r;
}

static size_t new_charges(json_t **out)
{
        json_t *all = read_topics("billing.charge-records");
        json_t *r = new_records(all, charges_seen);
        json_decref(all);
        size_t n = json_array_size(r);
        if (out)
                *out = r;
        else
                json_decref(r);
        return n;
}

static const char *vstr(json_t *rec, const char *field)
{
        return json_string_value(
            json_object_get(json_object_get(rec, "value"), field));
}

/* One rejected record: its reason, its detail starting with detail, from
 * charging.sessions. */
static void assert_one_rejected(json_t *recs, const char *reason,
                                const char *detail)
{
        if (json_array_size(recs) != 1)
                fail_msg("%zu new rejected records, want 1 (%s)",
                         json_array_size(recs), reason);
        json_t *r = json_array_get(recs, 0);
        assert_int_equal(json_integer_value(json_object_get(r, "schema_id")),
                         12);
        assert_string_equal(vstr(r, "reason"), reason);
        assert_string_equal(vstr(r, "source_topic"), "charging.sessions");
        const char *d = vstr(r, "detail");
        if (strncmp(d, detail, strlen(detail)))
                fail_msg("detail '%s', want it to start with '%s'", d, detail);
}

/* Feeds nothing more and runs: the case's run must exit 0, balanced. */
static void run_ok(const char *const *sets, char **err)
{
        int rc = run(sets, err);
        if (rc != 0)
                fail_msg("run exited %d: %s", rc, err ? *err : "");
        assert_balanced();
}

/* ---- setup ---------------------------------------------------------- */

static int setup(void **state)
{
        (void)state;
        char err[512];
        have_python = access(PYTHON, X_OK) == 0;
        if (!have_python)
                return 0;
        snprintf(dir, sizeof(dir), "/tmp/cf-test-poison-%d", (int)getpid());
        mkdir(dir, 0755);
        if (cf_registry_new(&reg, err, sizeof(err)))
                return -1;
        if (!cf_test_broker_start(&broker, 2))
                return -1;
        char bs[160];
        snprintf(bs, sizeof(bs), "%s", broker.bsfile);
        char *gen[] = { CF_BINARY,          "gen", "--preset", "small",
                        "--seed",           "3",   "--days",   "1",
                        "--bootstrap-file", bs,    NULL };
        char *out;
        if (cf_test_run(gen, &out, NULL) != 0)
                return -1;
        free(out);
        snprintf(cfg_path, sizeof(cfg_path), "%s/cf.properties", dir);
        FILE *f = fopen(cfg_path, "w");
        /* A short session timeout: each restart waits for the group
         * (README, Operations). */
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s/state\n"
                "commit.interval.ms=200\nstats.interval.ms=0\n"
                "kafka.session.timeout.ms=3000\n"
                "kafka.heartbeat.interval.ms=500\n",
                broker.bootstrap, dir);
        fclose(f);
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        rd_kafka_conf_set(pc, "bootstrap.servers", broker.bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(pc, "message.max.bytes", "2000000", err, sizeof(err));
        producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
        if (!producer)
                return -1;
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        if (!have_python)
                return 0;
        json_decref(last);
        if (producer)
                rd_kafka_destroy(producer);
        cf_registry_destroy(reg);
        char *rm[] = { "/bin/rm", "-rf", dir, NULL };
        char *out;
        cf_test_run(rm, &out, NULL);
        free(out);
        return cf_test_broker_stop(&broker) == 0 ? 0 : -1;
}

/* ---- the cases ------------------------------------------------------ */

static void poison_pills_never_stop_billing(void **state)
{
        (void)state;
        if (!have_python) {
                fprintf(stderr, "\n*** SKIPPED: " PYTHON " is absent: the "
                                "poison-pill suite needs it (python3-avro, "
                                "python3-confluent-kafka) ***\n\n");
                skip();
        }
        char *err = NULL;

        /* 0. The generator's estate, clean: nothing rejected. */
        assert_int_equal(run(NULL, &err), 0);
        free(err);
        for (int i = 0; i < 2; i++)
                base_in[i] = jint(last, "inputs", in_topics[i], "in");
        assert_balanced();
        assert_true(base_in[0] > 0);
        json_t *rej = new_rejected();
        assert_int_equal(json_array_size(rej), 0);
        json_decref(rej);
        assert_true(new_charges(NULL) > 0);
        /* A site of the estate, from billing.sites. */
        json_t *sites = read_topics("billing.sites");
        assert_true(json_array_size(sites) > 0);
        snprintf(site_id, sizeof(site_id), "%s",
                 vstr(json_array_get(sites, 0), "site_id"));
        json_decref(sites);

        /* Bytes that do not decode: SCHEMA, with the decoder's code first
         * in the detail (README, Malformed bytes). */
        static const struct {
                const char *name;
                const char *bytes;
                size_t n;
                const char *detail;
        } schema_cases[] = {
                { "garbage", "not avro at all", 15, "MAGIC" },
                { "wrong magic byte", "\x01\x00\x00\x00\x01\x02x", 7, "MAGIC" },
                { "unknown schema id", "\x00\x00\x00\x00\x63\x02x", 7,
                  "SCHEMA_ID" },
                { "empty value", "", 0, "" },
        };
        for (size_t c = 0; c < sizeof(schema_cases) / sizeof(schema_cases[0]);
             c++) {
                print_message("case: %s\n", schema_cases[c].name);
                produce(in_topics[0], KEY, strlen(KEY), schema_cases[c].bytes,
                        schema_cases[c].n, t_next);
                run_ok(NULL, &err);
                free(err);
                rej = new_rejected();
                assert_one_rejected(rej, "SCHEMA", schema_cases[c].detail);
                json_decref(rej);
        }

        /* A null value. */
        print_message("case: null value\n");
        produce(in_topics[0], KEY, strlen(KEY), NULL, 0, t_next);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "SCHEMA", "");
        assert_true(json_is_null(json_object_get(
            json_object_get(json_array_get(rej, 0), "value"), "value")));
        json_decref(rej);

        /* A valid event cut in half: TRUNCATED. */
        print_message("case: truncated\n");
        cf_session_event e =
            event("E-TR", CF_SESSION_STARTED, "S-TR", site_id, t_next, 100);
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_SESSION_EVENT, &e, &b);
        produce(in_topics[0], KEY, strlen(KEY), b.p, b.len / 2, t_next);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "SCHEMA", "TRUNCATED");
        json_decref(rej);

        /* A meter reading on the sessions topic: SCHEMA_TYPE. */
        print_message("case: wrong record type\n");
        cf_meter_reading m = { .event_id = "R-WT",
                               .session_id = NULL,
                               .site_id = site_id,
                               .charger_id = KEY,
                               .connector_id = 1,
                               .seq_no = 1,
                               .time_ms = t_next,
                               .energy_wh = 100,
                               .power_w = CF_NONE,
                               .current_ma = CF_NONE };
        b.len = 0;
        cf_encode(reg, CF_RT_METER_READING, &m, &b);
        produce(in_topics[0], KEY, strlen(KEY), b.p, b.len, t_next);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "SCHEMA", "SCHEMA_TYPE");
        json_decref(rej);

        /* Absurd values: FIELD. */
        print_message("case: negative energy\n");
        e = event("E-NEG", CF_SESSION_STARTED, "S-NEG", site_id, t_next, -5);
        produce_event(&e, KEY);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "FIELD", "negative energy register");
        json_decref(rej);

        /* A site nobody configured: UNKNOWN_SITE after the wait (the
         * drain of --until-idle ends it). */
        print_message("case: unknown site\n");
        e = event("E-US", CF_SESSION_STARTED, "S-US", "NOPE-SITE", t_next, 100);
        produce_event(&e, KEY);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "UNKNOWN_SITE",
                            "no config for site NOPE-SITE");
        json_decref(rej);

        /* Issue 15.2: a session id that is not UTF-8, started and stopped
         * at a known site, is not priced: FIELD, twice, and no charge
         * record (it used to make one no Avro reader could decode). */
        print_message("case: invalid UTF-8 session id\n");
        t_next += 10 * MIN;
        e = event("E-U1", CF_SESSION_STARTED, "probe-\xff\xfe-session", site_id,
                  t_next, 1000);
        produce_event(&e, KEY);
        e = event("E-U2", CF_SESSION_STOPPED, "probe-\xff\xfe-session", site_id,
                  t_next + 30 * MIN, 5000);
        produce_event(&e, KEY);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_int_equal(json_array_size(rej), 2);
        for (size_t i = 0; i < 2; i++) {
                json_t *r = json_array_get(rej, i);
                assert_string_equal(vstr(r, "reason"), "FIELD");
                assert_string_equal(vstr(r, "detail"),
                                    "session_id is not valid UTF-8");
        }
        json_decref(rej);
        assert_int_equal(new_charges(NULL), 0);
        t_next += 60 * MIN;

        /* Issue 15.6: a null key: FIELD; the rejected record's key is
         * null too. */
        print_message("case: null key\n");
        e = event("E-NK", CF_SESSION_STARTED, "S-NK", site_id, t_next, 100);
        produce_event(&e, NULL);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "FIELD",
                            "no key (input records are keyed by charger id)");
        assert_true(
            json_is_null(json_object_get(json_array_get(rej, 0), "key")));
        json_decref(rej);

        /* Issue 15.1: a 999,892-byte value. Its rejected record keeps the
         * first 65,536 bytes, the length and the SHA-256 (computed here by
         * coreutils' sha256sum from a copy of the bytes). */
        print_message("case: 1 MB value\n");
        size_t big_n = 999892;
        uint8_t *big = malloc(big_n);
        uint32_t x = 12345;
        for (size_t i = 0; i < big_n; i++) {
                x = x * 1103515245u + 12345u;
                big[i] = (uint8_t)(x >> 16);
        }
        big[0] = 0x7f; /* not the magic byte */
        char bigp[128], cmd[300], want_sha[65] = "";
        snprintf(bigp, sizeof(bigp), "%s/big.bin", dir);
        FILE *f = fopen(bigp, "w");
        assert_int_equal(fwrite(big, 1, big_n, f), big_n);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "sha256sum %s", bigp);
        FILE *p = popen(cmd, "r");
        assert_non_null(fgets(want_sha, sizeof(want_sha), p));
        pclose(p);
        produce(in_topics[0], KEY, strlen(KEY), big, big_n, t_next);
        run_ok(NULL, &err);
        free(err);
        rej = new_rejected();
        assert_one_rejected(rej, "SCHEMA", "MAGIC");
        json_t *v = json_object_get(json_array_get(rej, 0), "value");
        const char *hex = json_string_value(json_object_get(v, "value"));
        assert_int_equal(strlen(hex), 2 * 65536);
        char first[7];
        snprintf(first, sizeof(first), "%02x%02x%02x", big[0], big[1], big[2]);
        assert_memory_equal(hex, first, 6);
        assert_int_equal(json_integer_value(json_object_get(v, "value_length")),
                         (json_int_t)big_n);
        assert_string_equal(
            json_string_value(json_object_get(v, "value_sha256")), want_sha);
        assert_true(json_is_null(json_object_get(v, "key_length")));
        json_decref(rej);

        /* Issue 15.1: an output over the producer's limit never enters the
         * outbox: with message.max.bytes 50,000, the rejected record of a
         * 60,000-byte value (60,000 bytes and more) is counted in
         * outputs_skipped and logged; the input counts as rejected. */
        print_message("case: output over the limit\n");
        int64_t schema_before = jint(last, "rejected", "SCHEMA", NULL);
        produce(in_topics[0], KEY, strlen(KEY), big, 60000, t_next);
        const char *small_limit[] = { "kafka.message.max.bytes=50000", NULL };
        run_ok(small_limit, &err);
        assert_non_null(strstr(err, "can never be delivered"));
        free(err);
        assert_int_equal(jint(last, "outputs_skipped", NULL, NULL), 1);
        assert_int_equal(jint(last, "rejected", "SCHEMA", NULL),
                         schema_before + 1);
        rej = new_rejected();
        assert_int_equal(json_array_size(rej), 0);
        json_decref(rej);

        /* Issue 15.1: an entry already in the outbox that the producer can
         * never deliver (as one written by an older version): a run dies
         * right after committing a 65,536-byte-value rejected record to
         * the outbox; the restart, with a 50,000-byte limit, skips and
         * counts it instead of failing at every restart. */
        print_message("case: undeliverable entry in the outbox\n");
        produce(in_topics[0], KEY, strlen(KEY), big, 70000, t_next);
        setenv("CF_CRASH_AT", "produce:1", 1);
        int rc = run(NULL, &err);
        unsetenv("CF_CRASH_AT");
        free(err);
        assert_int_equal(rc, -1); /* SIGKILL at the crash point */
        run_ok(small_limit, &err);
        assert_non_null(strstr(err, "can never be delivered"));
        assert_non_null(strstr(err, "Message size too large"));
        free(err);
        assert_int_equal(jint(last, "outputs_skipped", NULL, NULL), 2);
        rej = new_rejected();
        assert_int_equal(json_array_size(rej), 0);
        json_decref(rej);
        free(big);

        /* Issue 15.5: a site's tombstone keeps the site (logged at WARN
         * with its id): a session there afterwards is priced, not
         * UNKNOWN_SITE. */
        print_message("case: site tombstone\n");
        produce("billing.sites", site_id, strlen(site_id), NULL, 0, t_next);
        t_next += 10 * MIN;
        e = event("E-T1", CF_SESSION_STARTED, "S-POISON-TOMB", site_id, t_next,
                  10000);
        produce_event(&e, KEY);
        e = event("E-T2", CF_SESSION_STOPPED, "S-POISON-TOMB", site_id,
                  t_next + 60 * MIN, 20000);
        produce_event(&e, KEY);
        run_ok(NULL, &err);
        char warn[128];
        snprintf(warn, sizeof(warn), "WARN  site %s: tombstone", site_id);
        if (!strstr(err, warn))
                fail_msg("no '%s' in the log:\n%s", warn, err);
        free(err);
        rej = new_rejected();
        assert_int_equal(json_array_size(rej), 0);
        json_decref(rej);
        json_t *ch;
        assert_int_equal(new_charges(&ch), 1);
        json_t *cr = json_array_get(ch, 0);
        assert_string_equal(vstr(cr, "session_id"), "S-POISON-TOMB");
        assert_string_equal(vstr(cr, "site_id"), site_id);
        /* 20,000 - 10,000 Wh between start and stop. */
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(cr, "value"), "energy_wh")),
                         10000);
        json_decref(ch);

        /* Every output record, from the start: an independent reader
         * decodes all of them (read_topics fails on any that does not). */
        json_t *all = read_topics(
            "billing.rejected billing.charge-records billing.statements");
        json_t *st = records_of(all, "billing.statements");
        assert_true(json_array_size(st) > 0);
        json_decref(st);
        json_decref(all);
        cf_buf_free(&b);
}

/* The run's summary gives apart the state's writes made before consuming
 * began: the tables read to their end at start, written in a batch of
 * their own (tables.c). A new user holding two badges is, by the layout
 * tables.c documents, five entries: the user ('u' + id), one badge index
 * entry per badge ('b' + badge), and in META the table offsets ('o') and
 * the counts ('n'). A restart with nothing new on the tables writes
 * nothing before input. */
static void table_load_is_written_before_input(void **state)
{
        (void)state;
        if (!have_python)
                skip();
        char *err = NULL;
        run_ok(NULL, &err); /* whatever is new so far, read */
        free(err);

        char *badges[] = { "BADGE-WBI-1", "BADGE-WBI-2" };
        cf_user u = { .user_id = "U-WRITES-BEFORE-INPUT",
                      .tenant_id = "t-writes",
                      .name = NULL,
                      .group = "resident",
                      .badges = badges,
                      .n_badges = 2,
                      .updated_ms = T0 };
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_USER, &u, &b);
        produce("billing.users", u.user_id, strlen(u.user_id), b.p, b.len, T0);
        cf_buf_free(&b);

        run_ok(NULL, &err);
        free(err);
        assert_int_equal(
            jint(last, "state_writes_before_input", "entries", NULL), 5);
        assert_int_equal(
            jint(last, "state_writes_before_input", "batches", NULL), 1);
        assert_true(jint(last, "state_writes", "entries", NULL) >= 5);

        run_ok(NULL, &err);
        free(err);
        assert_int_equal(
            jint(last, "state_writes_before_input", "entries", NULL), 0);
        assert_int_equal(
            jint(last, "state_writes_before_input", "batches", NULL), 0);
}

/* Issue 15.3 and 15.4: configuration errors exit 2 naming the key, before
 * the state directory exists; an unreachable broker is named. */
static void misconfiguration_is_refused_by_name(void **state)
{
        (void)state;
        if (!have_python)
                skip();
        char *err = NULL;
        char sd[128], set_sd[160];
        snprintf(sd, sizeof(sd), "%s/fresh-state", dir);
        snprintf(set_sd, sizeof(set_sd), "state.dir=%s", sd);
        struct stat stt;

        const char *typo[] = { "topic.sites=billing.sitez", set_sd, NULL };
        assert_int_equal(run(typo, &err), 2);
        assert_non_null(strstr(err, "topic.sites: topic 'billing.sitez' does "
                                    "not exist"));
        free(err);
        assert_int_equal(stat(sd, &stt), -1); /* nothing created */

        const char *badprop[] = { "kafka.no.such.property=1", set_sd, NULL };
        assert_int_equal(run(badprop, &err), 2);
        assert_non_null(strstr(err, "kafka.no.such.property"));
        assert_null(strstr(err, "tables:"));
        free(err);
        assert_int_equal(stat(sd, &stt), -1);

        /* A consumer-only setting reaches no producer: librdkafka warns
         * (CONFWARN) about a consumer property on a producer, naming it.
         * (Its one other CONFWARN, that enable.gapless.guarantee is
         * experimental, is chargeflow's own setting and expected.) */
        const char *consumer_only[] = { "kafka.queued.min.messages=5000",
                                        NULL };
        run_ok(consumer_only, &err);
        assert_non_null(strstr(err, "running:"));
        assert_null(strstr(err, "queued.min.messages"));
        free(err);

        const char *nobroker[] = { "bootstrap.servers=127.0.0.1:1", set_sd,
                                   NULL };
        assert_int_equal(run(nobroker, &err), 1);
        assert_non_null(strstr(err, "bootstrap.servers 127.0.0.1:1"));
        free(err);
        assert_int_equal(stat(sd, &stt), -1);
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(poison_pills_never_stop_billing),
                cmocka_unit_test(table_load_is_written_before_input),
                cmocka_unit_test(misconfiguration_is_refused_by_name),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
