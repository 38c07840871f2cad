/*
 * test_rate.c: the rating sub-topology end to end, against the generator's
 * ground truth.
 *
 * Starts the embedded broker, publishes the generator's small preset with
 * every fault, runs `chargeflow run --until-idle`, then reads the output
 * topics with a plain librdkafka consumer and checks them against the truth
 * file (written by the generator, independently of the pipeline):
 *  - every real session appears exactly once in billing.charge-records,
 *    with the truth's energy, user, badge and group, and a lost stop is
 *    flagged STOP_ESTIMATED; nothing else is there;
 *  - every injected invalid record appears exactly once in billing.rejected
 *    with the reason the truth names (matched by event id, or for corrupt
 *    bytes by the FNV-1a hash of the value); nothing else is there;
 *  - duplicates are counted (the run's summary), not emitted, and per input
 *    topic in = accepted + duplicates + rejected, with nothing pending;
 *  - money: every charge record's totals and every statement's totals per
 *    tenant, billed party and period equal what the pricing oracle
 *    (oracle.c) computes from the truth, the published plans and the
 *    published readings (the same generator run written to a record file
 *    as well), to the minor unit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "harness.h"
#include "hmap.h"
#include "oracle.h"
#include "tz.h"

#define DAYS "3"
/* input.buffer.max.bytes at its least (1 MiB; the README's table). */
#define INBUF_MIN 1048576

static cf_test_broker broker;
static char dir[64];
static json_t *summary;   /* the run's counters */
static json_t *truth_sum; /* the truth's closing summary line */
static json_t *sessions;  /* session id -> truth line */
static json_t *faults;    /* event id or hash -> [truth lines] */
static size_t n_faults;   /* faults that name a reason */
static cf_registry *reg;
static bool high_rates;   /* the second pass: every fault at high rates */
static cf_oracle *oracle; /* prices of the same run */

static void path(char *buf, size_t n, const char *name)
{
        snprintf(buf, n, "%s/%s", dir, name);
}

static void load_truth(void)
{
        char p[128];
        path(p, sizeof(p), "truth.jsonl");
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        sessions = json_object();
        faults = json_object();
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
                json_t *j = json_loads(line, 0, NULL);
                assert_non_null(j);
                const char *type =
                    json_string_value(json_object_get(j, "type"));
                if (!strcmp(type, "session")) {
                        json_object_set(
                            sessions,
                            json_string_value(json_object_get(j, "session_id")),
                            j);
                } else if (!strcmp(type, "fault") &&
                           json_is_string(json_object_get(j, "reason"))) {
                        const char *id =
                            json_string_value(json_object_get(j, "event_id"));
                        if (!id)
                                id = json_string_value(
                                    json_object_get(j, "hash"));
                        assert_non_null(id);
                        /* Two corruptions can give the same bytes. */
                        json_t *list = json_object_get(faults, id);
                        if (!list) {
                                list = json_array();
                                json_object_set_new(faults, id, list);
                        }
                        json_array_append(list, j);
                        n_faults++;
                } else if (!strcmp(type, "summary")) {
                        truth_sum = json_incref(j);
                }
                json_decref(j);
        }
        free(line);
        fclose(f);
        assert_non_null(truth_sum);
}

static int setup(void **state)
{
        char err[512], bs[300], truth[128], cfg[128];
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/cf-test-rate-%d", (int)getpid());
        char *mk[] = { "/bin/mkdir", "-p", dir, NULL };
        char *out;
        if (cf_test_run(mk, &out, NULL) != 0)
                return -1;
        free(out);
        if (cf_registry_new(&reg, err, sizeof(err)))
                return -1;
        if (!cf_test_broker_start(&broker, 4))
                return -1;
        snprintf(bs, sizeof(bs), "%s", broker.bsfile);
        path(truth, sizeof(truth), "truth.jsonl");
        /* Every fault at its default rate, or (the second pass) every
         * fault at once at high rates. */
        char *gen[] = { CF_BINARY, "gen",     "--preset", "small",
                        "--seed",  "7",       "--faults", "--days",
                        DAYS,      "--truth", truth,      "--bootstrap-file",
                        bs,        NULL,      NULL,       NULL,
                        NULL,      NULL,      NULL,       NULL,
                        NULL,      NULL,      NULL,       NULL,
                        NULL,      NULL,      NULL,       NULL,
                        NULL,      NULL };
        if (high_rates) {
                static char *const high[] = {
                        "--dup-rate",     "0.2",  "--reorder-rate",      "0.05",
                        "--late-rate",    "0.05", "--lost-stop-rate",    "0.05",
                        "--corrupt-rate", "0.02", "--invalid-rate",      "0.02",
                        "--orphan-rate",  "0.02", "--unknown-site-rate", "0.01",
                };
                for (size_t i = 0; i < sizeof(high) / sizeof(high[0]); i++)
                        gen[13 + i] = high[i];
        }
        if (cf_test_run(gen, &out, NULL) != 0)
                return -1;
        free(out);
        /* The same run to a record file, for the oracle. */
        char gf[128], truth2[128];
        path(gf, sizeof(gf), "gen.cfgen");
        path(truth2, sizeof(truth2), "truth2.jsonl");
        gen[10] = truth2;
        gen[11] = "--out";
        gen[12] = gf;
        if (cf_test_run(gen, &out, NULL) != 0)
                return -1;
        free(out);
        oracle = cf_oracle_load(gf, truth, err, sizeof(err));
        if (!oracle) {
                print_error("oracle: %s\n", err);
                return -1;
        }
        path(cfg, sizeof(cfg), "cf.properties");
        FILE *f = fopen(cfg, "w");
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s/state\n"
                "commit.interval.ms=200\nstats.interval.ms=0\n",
                broker.bootstrap, dir);
        /* The second pass with the least input buffer there is, so that
         * its bound holds the whole run (input_buffer_bound_held). */
        if (high_rates)
                fprintf(f, "input.buffer.max.bytes=%d\n", INBUF_MIN);
        fclose(f);
        char *run[] = { CF_BINARY, "run", "-c", cfg, "--until-idle", NULL };
        if (cf_test_run(run, &out, NULL) != 0)
                return -1;
        summary = json_loads(out, 0, NULL);
        free(out);
        if (!summary)
                return -1;
        load_truth();
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        json_decref(summary);
        json_decref(truth_sum);
        json_decref(sessions);
        json_decref(faults);
        cf_oracle_free(oracle);
        oracle = NULL;
        cf_registry_destroy(reg);
        char *rm[] = { "/bin/rm", "-rf", dir, NULL };
        char *out;
        cf_test_run(rm, &out, NULL);
        free(out);
        return cf_test_broker_stop(&broker) == 0 ? 0 : -1;
}

/* Reads every record of topic (cf_test_read_topic); calls fn on each. */
static int read_topic(const char *topic, cf_test_record_fn *fn, void *opaque)
{
        return (int)cf_test_read_topic(broker.bootstrap, topic, fn, opaque);
}

static int64_t jint(json_t *o, const char *k)
{
        return json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static bool same(const char *a, const char *b)
{
        return (!a && !b) || (a && b && !strcmp(a, b));
}

typedef struct cr_check {
        json_t *seen;
        int bad;
} cr_check;

static void check_charge(const rd_kafka_message_t *m, void *opaque)
{
        cr_check *c = opaque;
        cf_arena a;
        cf_charge_record cr;
        cf_arena_init(&a, 0);
        assert_int_equal(cf_decode(reg, CF_RT_CHARGE_RECORD, m->payload, m->len,
                                   &a, &cr, NULL),
                         CF_OK);
        json_t *t = json_object_get(sessions, cr.session_id);
        if (!t) {
                print_error("charge record for unknown session %s\n",
                            cr.session_id);
                c->bad++;
                cf_arena_destroy(&a);
                return;
        }
        /* Exactly once. */
        assert_null(json_object_get(c->seen, cr.session_id));
        json_object_set_new(c->seen, cr.session_id, json_true());
        /* The key is the session id. */
        assert_int_equal(m->key_len, strlen(cr.session_id));
        assert_memory_equal(m->key, cr.session_id, m->key_len);
        bool estimated = false;
        for (uint32_t i = 0; i < cr.n_flags; i++)
                estimated |= cr.flags[i] == CF_FLAG_STOP_ESTIMATED;
        const char *badge = jstr(t, "badge");
        const cf_oracle_session *o = cf_oracle_find(oracle, cr.session_id);
        assert_non_null(o);
        if (cr.total_excl_vat != o->excl_vat || cr.total_vat != o->vat ||
            cr.total_incl_vat != o->incl_vat ||
            strcmp(cr.currency, o->currency) ||
            strcmp(cr.period_id, o->period)) {
                if (c->bad++ < 10)
                        print_error("session %s: %lld + %lld = %lld %s %s, "
                                    "oracle %lld + %lld = %lld %s %s\n",
                                    cr.session_id, (long long)cr.total_excl_vat,
                                    (long long)cr.total_vat,
                                    (long long)cr.total_incl_vat, cr.currency,
                                    cr.period_id, (long long)o->excl_vat,
                                    (long long)o->vat, (long long)o->incl_vat,
                                    o->currency, o->period);
        }
        if (cr.energy_wh != jint(t, "energy_wh") ||
            !same(cr.user_id, jstr(t, "user")) || !same(cr.badge_id, badge) ||
            !same(cr.user_group, jstr(t, "group")) ||
            estimated != json_is_true(json_object_get(t, "stop_lost")) ||
            strcmp(cr.site_id, jstr(t, "site")) ||
            strcmp(cr.tenant_id, jstr(t, "tenant"))) {
                if (c->bad++ < 10)
                        print_error("session %s: energy %lld (truth %lld) "
                                    "user %s (%s) badge %s (%s) group %s "
                                    "(%s) estimated %d\n",
                                    cr.session_id, (long long)cr.energy_wh,
                                    (long long)jint(t, "energy_wh"), cr.user_id,
                                    jstr(t, "user"), cr.badge_id, badge,
                                    cr.user_group, jstr(t, "group"), estimated);
        }
        cf_arena_destroy(&a);
}

static void every_session_once_with_true_values(void **state)
{
        (void)state;
        cr_check c = { json_object(), 0 };
        int n = read_topic("billing.charge-records", check_charge, &c);
        assert_int_equal(c.bad, 0);
        assert_int_equal(n, json_object_size(sessions));
        assert_int_equal(json_object_size(c.seen), json_object_size(sessions));
        json_decref(c.seen);
}

/* The truth file names a corrupt record by this hash of its bytes. */
static void fnv1a_hex(const void *p, size_t n, char out[17])
{
        snprintf(out, 17, "%016llx",
                 (unsigned long long)cf_fnv1a64(CF_FNV1A64_BASIS, p, n));
}

static void check_rejected(const rd_kafka_message_t *m, void *opaque)
{
        cr_check *c = opaque;
        cf_arena a;
        cf_rejected r;
        cf_arena_init(&a, 0);
        assert_int_equal(
            cf_decode(reg, CF_RT_REJECTED, m->payload, m->len, &a, &r, NULL),
            CF_OK);
        /* Which input record: its event id, or its bytes' hash. */
        char id[256];
        void *orig = cf_arena_alloc(&a, cf_rtype_max_size());
        cf_rtype t;
        if (r.value.p &&
            !cf_decode_any(reg, r.value.p, r.value.n, &a, orig, &t, NULL)) {
                const char *eid = t == CF_RT_SESSION_EVENT
                                      ? ((cf_session_event *)orig)->event_id
                                      : ((cf_meter_reading *)orig)->event_id;
                snprintf(id, sizeof(id), "%s", eid);
        } else {
                fnv1a_hex(r.value.p, r.value.n, id);
        }
        /* Each fault is matched once: the n-th rejection of an id takes
         * the n-th fault with that id. */
        json_t *list = json_object_get(faults, id);
        size_t used = (size_t)json_integer_value(json_object_get(c->seen, id));
        json_t *f = list ? json_array_get(list, used) : NULL;
        const char *want = f ? jstr(f, "reason") : NULL;
        if (!f || strcmp(want, cf_reject_reason_name(r.reason)) ||
            strcmp(r.source_topic, jstr(f, "topic"))) {
                if (c->bad++ < 10)
                        print_error("rejected %s as %s (%s), truth %s\n", id,
                                    cf_reject_reason_name(r.reason), r.detail,
                                    want ? want : "no (more) fault");
        }
        json_object_set_new(c->seen, id, json_integer((json_int_t)used + 1));
        cf_arena_destroy(&a);
}

static void every_invalid_record_rejected_with_its_reason(void **state)
{
        (void)state;
        cr_check c = { json_object(), 0 };
        int n = read_topic("billing.rejected", check_rejected, &c);
        assert_int_equal(c.bad, 0);
        assert_int_equal(n, n_faults);
        json_decref(c.seen);
}

static void duplicates_counted_and_inputs_conserved(void **state)
{
        (void)state;
        json_t *in = json_object_get(summary, "inputs");
        json_t *records = json_object_get(truth_sum, "records");
        int64_t dups = 0;
        const char *topics[] = { "charging.sessions", "charging.meter" };
        for (int i = 0; i < 2; i++) {
                json_t *c = json_object_get(in, topics[i]);
                assert_non_null(c);
                /* Every record the generator published was read. */
                assert_int_equal(jint(c, "in"), jint(records, topics[i]));
                assert_int_equal(jint(c, "in"), jint(c, "accepted") +
                                                    jint(c, "duplicates") +
                                                    jint(c, "rejected"));
                assert_int_equal(jint(c, "pending"), 0);
                dups += jint(c, "duplicates");
        }
        json_t *tf = json_object_get(truth_sum, "faults");
        assert_int_equal(dups, jint(tf, "duplicate"));
        /* The reasons add up to the faults that name them. */
        int64_t rejected = 0;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(summary, "rejected"), k, v)
            rejected += json_integer_value(v);
        assert_int_equal(rejected, n_faults);
}

/* With input.buffer.max.bytes at 1 MiB (the second pass; three days of
 * small at high fault rates, over 17 MB of input, fetched 4 MiB at a
 * time): the tasks' queues reached the bound, so the pass ran with input
 * held back by it, and the other tests of the pass check that the result
 * is the same exact one. (The bound is passed by one batch, and by more
 * when no task could move without taking input: README, Fetching and
 * memory.) */
static void input_buffer_bound_held(void **state)
{
        (void)state;
        json_t *ib = json_object_get(summary, "input_buffer");
        assert_non_null(ib);
        print_message("input buffer: peak %lld bytes, %lld full turns\n",
                      (long long)jint(ib, "peak_bytes"),
                      (long long)jint(ib, "full_turns"));
        assert_int_equal(jint(ib, "max_bytes"), INBUF_MIN);
        assert_true(jint(ib, "peak_bytes") >= INBUF_MIN);
}

/* ---- statements -------------------------------------------------------- */

typedef struct st_check {
        json_t *got;    /* tenant|party|period -> [sessions, energy, excl,
                           vat, incl] */
        json_t *totals; /* statement id -> [excl, vat, incl, adj sums] */
        json_t *ids;
        int bad;
} st_check;

/* Adds sessions, energy and totals (excl, VAT, incl) to o[key]. */
static void add_to(json_t *o, const char *key, const int64_t add[5])
{
        json_t *v = json_object_get(o, key);
        json_t *n = json_array();
        for (size_t i = 0; i < 5; i++)
                json_array_append_new(
                    n, json_integer(
                           (v ? json_integer_value(json_array_get(v, i)) : 0) +
                           (json_int_t)add[i]));
        json_object_set_new(o, key, n);
}

static void check_statement(const rd_kafka_message_t *m, void *opaque)
{
        st_check *c = opaque;
        cf_arena a;
        cf_statement st;
        char key[512];
        cf_arena_init(&a, 0);
        assert_int_equal(
            cf_decode(reg, CF_RT_STATEMENT, m->payload, m->len, &a, &st, NULL),
            CF_OK);
        /* Each statement once. */
        if (json_object_get(c->ids, st.statement_id))
                c->bad++;
        json_object_set_new(c->ids, st.statement_id, json_true());
        assert_int_equal(st.revision, 1);
        /* Adjustments count in their original period. */
        int64_t ax = 0, av = 0, ai = 0;
        for (uint32_t i = 0; i < st.n_adjustments; i++) {
                const cf_adjustment *j = &st.adjustments[i];
                snprintf(key, sizeof(key), "%s|%s|%s", st.tenant_id,
                         st.billed_party, j->original_period_id);
                add_to(c->got, key,
                       (int64_t[5]){ 1, j->energy_wh, j->total_excl_vat,
                                     j->total_vat, j->total_incl_vat });
                ax += j->total_excl_vat;
                av += j->total_vat;
                ai += j->total_incl_vat;
        }
        /* (A statement may carry adjustments alone.) */
        snprintf(key, sizeof(key), "%s|%s|%s", st.tenant_id, st.billed_party,
                 st.period_id);
        if (st.session_count || st.total_excl_vat != ax || st.total_vat != av ||
            st.total_incl_vat != ai)
                add_to(c->got, key,
                       (int64_t[5]){ st.session_count, st.energy_wh,
                                     st.total_excl_vat - ax, st.total_vat - av,
                                     st.total_incl_vat - ai });
        /* Lines add up to the statement (adjustments aside). */
        int64_t lx = 0, lv = 0, li = 0, ls = 0;
        for (uint32_t i = 0; i < st.n_sites; i++) {
                ls += st.sites[i].sessions;
                lx += st.sites[i].total_excl_vat;
                lv += st.sites[i].total_vat;
                li += st.sites[i].total_incl_vat;
        }
        if (ls != st.session_count || lx + ax != st.total_excl_vat ||
            lv + av != st.total_vat || li + ai != st.total_incl_vat ||
            st.total_excl_vat + st.total_vat != st.total_incl_vat)
                c->bad++;
        cf_arena_destroy(&a);
}

/* Every statement's session count, energy and totals (excl, VAT, incl),
 * per tenant, billed party and period (adjustments counted in their
 * original period), equal the oracle's sums over the real sessions of the
 * truth file; each statement is issued once, and its lines and adjustments
 * add up to its totals. */
static void statements_match_truth_per_party_and_period(void **state)
{
        (void)state;
        json_t *want = json_object();
        for (size_t i = 0; i < cf_oracle_n_totals(oracle); i++) {
                const cf_oracle_total *t = cf_oracle_total_at(oracle, i);
                add_to(want, t->key,
                       (int64_t[5]){ t->sessions, t->energy_wh, t->excl_vat,
                                     t->vat, t->incl_vat });
        }
        st_check c = { json_object(), json_object(), json_object(), 0 };
        read_topic("billing.statements", check_statement, &c);
        assert_int_equal(c.bad, 0);
        const char *k;
        json_t *v;
        int mismatches = 0;
        json_object_foreach(want, k, v)
        {
                json_t *g = json_object_get(c.got, k);
                if (!g || !json_equal(g, v)) {
                        if (mismatches++ < 5)
                                print_error("%s: oracle %s, statements %s\n", k,
                                            json_dumps(v, JSON_COMPACT),
                                            g ? json_dumps(g, JSON_COMPACT)
                                              : "none");
                }
        }
        assert_int_equal(mismatches, 0);
        /* Nothing billed that the truth does not have. */
        assert_int_equal(json_object_size(c.got), json_object_size(want));
        json_decref(want);
        json_decref(c.got);
        json_decref(c.totals);
        json_decref(c.ids);
}

/* SIGTERM: the run finishes what it holds, commits and exits 0, with its
 * counters on stdout. */
static void run_stops_cleanly_on_sigterm(void **state)
{
        (void)state;
        char cfg[128], out[128], sd[128];
        path(cfg, sizeof(cfg), "cf2.properties");
        path(out, sizeof(out), "run2.json");
        path(sd, sizeof(sd), "state2");
        FILE *f = fopen(cfg, "w");
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s\ngroup.id=sigterm\n"
                "stats.interval.ms=0\n",
                broker.bootstrap, sd);
        fclose(f);
        char *run[] = { CF_BINARY, "run", "-c", cfg, NULL };
        pid_t pid = cf_test_spawn(run, out);
        /* Wait until it has tasks, then a moment of work. */
        char errp[200], line[512];
        snprintf(errp, sizeof(errp), "%s.err", out);
        bool assigned = false;
        for (int i = 0; i < 300 && !assigned; i++) {
                usleep(100000);
                FILE *e = fopen(errp, "r");
                while (e && fgets(line, sizeof(line), e))
                        assigned |= strstr(line, "assigned") != NULL;
                if (e)
                        fclose(e);
        }
        assert_true(assigned);
        sleep(2);
        assert_int_equal(cf_test_signal_wait(pid, SIGTERM, 30), 0);
        json_t *sum = json_load_file(out, 0, NULL);
        assert_non_null(sum);
        json_t *in = json_object_get(sum, "inputs");
        json_t *m = json_object_get(in, "charging.meter");
        assert_true(jint(m, "in") > 0);
        assert_int_equal(jint(m, "in"),
                         jint(m, "accepted") + jint(m, "duplicates") +
                             jint(m, "rejected") + jint(m, "pending"));
        json_decref(sum);
}

int main(void)
{
        cf_test_broker_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_session_once_with_true_values),
                cmocka_unit_test(every_invalid_record_rejected_with_its_reason),
                cmocka_unit_test(duplicates_counted_and_inputs_conserved),
                cmocka_unit_test(statements_match_truth_per_party_and_period),
                cmocka_unit_test(run_stops_cleanly_on_sigterm),
        };
        int failed =
            cmocka_run_group_tests_name("rate", tests, setup, teardown);
        /* Bad input under load: every fault at once at high rates (20% of
         * records repeated, 5% reordered, 5% of sessions uploaded late, 5%
         * losing their stop, 2% corrupt, ...), and the input buffer at its
         * least: the same exact end result and conservation. The SIGTERM
         * test is not repeated. */
        high_rates = true;
        n_faults = 0;
        const struct CMUnitTest high[] = {
                cmocka_unit_test(every_session_once_with_true_values),
                cmocka_unit_test(every_invalid_record_rejected_with_its_reason),
                cmocka_unit_test(duplicates_counted_and_inputs_conserved),
                cmocka_unit_test(statements_match_truth_per_party_and_period),
                cmocka_unit_test(input_buffer_bound_held),
        };
        failed += cmocka_run_group_tests_name("rate-high-fault-rates", high,
                                              setup, teardown);
        return failed;
}
