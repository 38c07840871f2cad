/*
 * test_gen.c: the load generator (pipeline/cli/cmd_gen.c, pipeline/gen/).
 *
 * The generator's output is checked from the outside: the tests run the
 * built binary (CF_BINARY) into record files, read them back with the
 * genfile reader, decode every value with the codec and compare with what
 * the scenario promises (gen.c's contract) and with the truth file. The
 * expected numbers are the documented ones (group shares, arrival profiles,
 * energy ranges, the fault rates asked for on the command line), never
 * values copied from a run. Counts are compared with binomial tolerances
 * (5 standard deviations), so a seed change cannot make a test flaky.
 * Runs are short (a few simulated days of the small preset). One test
 * produces into the embedded broker (`chargeflow broker`) and reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>

#include "codec.h"
#include "gen_estate.h"
#include "genfile.h"
#include "harness.h"
#include "mem.h"
#include "records.h"
#include "tz.h"

static char tmpdir[256];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void path(char *buf, size_t n, const char *name)
{
        snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* Independent of the generator's own hash: FNV-1a 64 over a whole file. */
static uint64_t file_hash(const char *p)
{
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        uint64_t h = 0xcbf29ce484222325ULL;
        uint8_t buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                for (size_t i = 0; i < n; i++) {
                        h ^= buf[i];
                        h *= 0x100000001b3ULL;
                }
        fclose(f);
        return h;
}

static uint64_t fnv(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* ---- a string -> int map (open addressing) ----------------------------- */

typedef struct smap {
        char **k;
        int64_t *v;
        size_t cap, n;
} smap;

static void smap_init(smap *m)
{
        m->cap = 1 << 16;
        m->n = 0;
        m->k = calloc(m->cap, sizeof(char *));
        m->v = calloc(m->cap, sizeof(int64_t));
}

static void smap_free(smap *m)
{
        for (size_t i = 0; i < m->cap; i++)
                free(m->k[i]);
        free(m->k);
        free(m->v);
}

static int64_t *smap_slot(smap *m, const char *k, bool add);

static void smap_grow(smap *m)
{
        smap o = *m;
        m->cap *= 2;
        m->n = 0;
        m->k = calloc(m->cap, sizeof(char *));
        m->v = calloc(m->cap, sizeof(int64_t));
        for (size_t i = 0; i < o.cap; i++)
                if (o.k[i])
                        *smap_slot(m, o.k[i], true) = o.v[i];
        smap_free(&o);
}

/* The value slot of k (added, 0, when add), or NULL. */
static int64_t *smap_slot(smap *m, const char *k, bool add)
{
        if (add && m->n * 2 >= m->cap)
                smap_grow(m);
        size_t i = fnv(k, strlen(k)) & (m->cap - 1);
        while (m->k[i]) {
                if (!strcmp(m->k[i], k))
                        return &m->v[i];
                i = (i + 1) & (m->cap - 1);
        }
        if (!add)
                return NULL;
        m->k[i] = strdup(k);
        m->n++;
        return &m->v[i];
}

static int64_t smap_get(smap *m, const char *k, int64_t dflt)
{
        int64_t *p = smap_slot(m, k, false);
        return p ? *p : dflt;
}

/* ---- a decoded run ----------------------------------------------------- */

typedef struct trec {
        uint32_t topic;
        int64_t ts;
        char key[32];
        bool ok; /* decoded */
        uint64_t hash;
        void *rec; /* cf_session_event / cf_meter_reading / cf_site / ... */
} trec;

typedef struct tsite {
        char id[16];
        char tenant[16];
        int type; /* 0 housing, 1 office, 2 hotel */
        const cf_tz *tz;
        int64_t max_power_w;
        bool access_control;
} tsite;

typedef struct trun {
        cf_registry *reg;
        cf_arena a;
        trec *r;
        size_t n;
        tsite sites[64];
        size_t n_sites;
        json_t **truth;
        size_t n_truth;
} trun;

static const char *const site_types[] = { "housing", "office", "hotel" };

static tsite *find_site(trun *t, const char *id)
{
        for (size_t i = 0; i < t->n_sites; i++)
                if (!strcmp(t->sites[i].id, id))
                        return &t->sites[i];
        return NULL;
}

static void load_run(trun *t, const char *file, const char *truth)
{
        char err[256];
        cf_genfile_reader *rd;
        cf_genfile_rec gr;
        cf_err_t e;
        static const cf_rtype types[] = { CF_RT_SESSION_EVENT,
                                          CF_RT_METER_READING, CF_RT_SITE,
                                          CF_RT_USER };
        memset(t, 0, sizeof(*t));
        assert_int_equal(cf_registry_new(&t->reg, err, sizeof(err)), CF_OK);
        cf_arena_init(&t->a, 1 << 20);
        assert_int_equal(cf_genfile_reader_open(&rd, file, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_genfile_reader_topics(rd), 4);
        assert_string_equal(cf_genfile_reader_topic(rd, 0),
                            "charging.sessions");
        assert_string_equal(cf_genfile_reader_topic(rd, 1), "charging.meter");
        assert_string_equal(cf_genfile_reader_topic(rd, 2), "billing.sites");
        assert_string_equal(cf_genfile_reader_topic(rd, 3), "billing.users");
        size_t cap = 1 << 16;
        t->r = malloc(cap * sizeof(trec));
        while ((e = cf_genfile_next(rd, &gr)) == CF_OK) {
                if (t->n == cap) {
                        cap *= 2;
                        t->r = realloc(t->r, cap * sizeof(trec));
                }
                trec *x = &t->r[t->n++];
                x->topic = gr.topic;
                x->ts = gr.timestamp_ms;
                assert_true(gr.key_len < sizeof(x->key));
                memcpy(x->key, gr.key, gr.key_len);
                x->key[gr.key_len] = 0;
                x->hash = fnv(gr.value, gr.value_len);
                x->rec = cf_arena_alloc(&t->a, cf_rtype_max_size());
                x->ok = cf_decode(t->reg, types[gr.topic], gr.value,
                                  gr.value_len, &t->a, x->rec, NULL) == CF_OK;
                if (x->ok && gr.topic == CF_GEN_T_SITES) {
                        const cf_site *s = x->rec;
                        tsite *ts = &t->sites[t->n_sites++];
                        snprintf(ts->id, sizeof(ts->id), "%s", s->site_id);
                        snprintf(ts->tenant, sizeof(ts->tenant), "%s",
                                 s->tenant_id);
                        ts->type = -1;
                        for (int k = 0; k < 3; k++)
                                if (!strncmp(s->name, site_types[k],
                                             strlen(site_types[k])))
                                        ts->type = k;
                        assert_true(ts->type >= 0);
                        ts->tz = cf_tz_get(s->time_zone);
                        assert_non_null(ts->tz);
                        ts->max_power_w = s->max_power_w;
                        ts->access_control = s->access_control;
                }
        }
        assert_int_equal(e, CF_ERR_NOT_FOUND);
        cf_genfile_reader_close(rd);

        if (!truth)
                return;
        FILE *f = fopen(truth, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t ln = 0;
        size_t tcap = 1024;
        t->truth = malloc(tcap * sizeof(json_t *));
        while (getline(&line, &ln, f) > 0) {
                json_error_t je;
                json_t *j = json_loads(line, 0, &je);
                if (!j)
                        fail_msg("truth line not JSON: %s", line);
                if (t->n_truth == tcap) {
                        tcap *= 2;
                        t->truth = realloc(t->truth, tcap * sizeof(json_t *));
                }
                t->truth[t->n_truth++] = j;
        }
        free(line);
        fclose(f);
}

static void free_run(trun *t)
{
        for (size_t i = 0; i < t->n_truth; i++)
                json_decref(t->truth[i]);
        free(t->truth);
        free(t->r);
        cf_arena_destroy(&t->a);
        cf_registry_destroy(t->reg);
}

static const char *jstr(json_t *j, const char *k)
{
        return json_string_value(json_object_get(j, k));
}

static int64_t jint(json_t *j, const char *k)
{
        return json_integer_value(json_object_get(j, k));
}

static bool is_type(json_t *j, const char *type)
{
        const char *s = jstr(j, "type");
        return s && !strcmp(s, type);
}

/* |measured - n p| within 5 binomial standard deviations (plus 3 for tiny
 * expectations). */
static void assert_rate(const char *what, uint64_t measured, uint64_t n,
                        double p)
{
        double mean = (double)n * p;
        double sd = sqrt((double)n * p * (1 - p));
        double tol = 5 * sd + 3;
        if (fabs((double)measured - mean) > tol)
                fail_msg("%s: measured %llu of %llu, expected %.1f +- %.1f",
                         what, (unsigned long long)measured,
                         (unsigned long long)n, mean, tol);
}

/* ---- genfile ----------------------------------------------------------- */

static void genfile_roundtrip_and_murmur2_partitions(void **state)
{
        char p[512], err[256];
        const char *topics[] = { "a.topic", "b" };
        cf_genfile_writer *w;
        path(p, sizeof(p), "rt.cfg");
        assert_int_equal(
            cf_genfile_writer_open(&w, p, topics, 2, 12, err, sizeof(err)),
            CF_OK);
        char key[64], val[300];
        for (int i = 0; i < 1000; i++) {
                int kl = snprintf(key, sizeof(key), "C%06d", i * 7);
                memset(val, i & 0xff, sizeof(val));
                assert_int_equal(
                    cf_genfile_write(w, (uint32_t)(i & 1), 1000LL * i - 5, key,
                                     (size_t)kl, val, (size_t)(i % 300)),
                    CF_OK);
        }
        assert_int_equal(cf_genfile_writer_count(w), 1000);
        assert_int_equal(cf_genfile_writer_close(w), CF_OK);

        /* librdkafka's murmur2 partitioner is the reference. */
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        rd_kafka_conf_set(kc, "log_level", "3", err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
        assert_non_null(rk);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "x", NULL);

        cf_genfile_reader *r;
        cf_genfile_rec rec;
        assert_int_equal(cf_genfile_reader_open(&r, p, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(cf_genfile_reader_partitions(r), 12);
        assert_string_equal(cf_genfile_reader_topic(r, 0), "a.topic");
        assert_int_equal(cf_genfile_reader_topic_index(r, "b"), 1);
        for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < 1000; i++) {
                        assert_int_equal(cf_genfile_next(r, &rec), CF_OK);
                        int kl = snprintf(key, sizeof(key), "C%06d", i * 7);
                        assert_int_equal(rec.topic, (uint32_t)(i & 1));
                        assert_int_equal(rec.timestamp_ms, 1000LL * i - 5);
                        assert_int_equal(rec.key_len, kl);
                        assert_memory_equal(rec.key, key, (size_t)kl);
                        assert_int_equal(rec.value_len, i % 300);
                        for (uint32_t k = 0; k < rec.value_len; k++)
                                assert_int_equal(rec.value[k], i & 0xff);
                        int32_t ref = rd_kafka_msg_partitioner_murmur2(
                            rkt, key, (size_t)kl, 12, NULL, NULL);
                        assert_int_equal(rec.partition, ref);
                }
                assert_int_equal(cf_genfile_next(r, &rec), CF_ERR_NOT_FOUND);
                cf_genfile_rewind(r);
        }
        cf_genfile_reader_close(r);
        for (int n = 1; n < 40; n++) {
                memset(key, 'a' + n % 26, sizeof(key));
                for (int pc = 1; pc < 50; pc += 7)
                        assert_int_equal(
                            cf_murmur2_partition(key, (size_t)n, pc),
                            rd_kafka_msg_partitioner_murmur2(
                                rkt, key, (size_t)n, pc, NULL, NULL));
        }
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);

        /* Without its trailer the file reads as truncated. */
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(truncate(p, st.st_size - 10), 0);
        assert_int_equal(cf_genfile_reader_open(&r, p, err, sizeof(err)),
                         CF_OK);
        cf_err_t e;
        int n = 0;
        while ((e = cf_genfile_next(r, &rec)) == CF_OK)
                n++;
        assert_int_equal(n, 1000);
        assert_int_equal(e, CF_ERR_TRUNCATED);
        cf_genfile_reader_close(r);
}

/* ---- determinism ------------------------------------------------------- */

static void gen_same_seed_same_bytes(void **state)
{
        char a[512], b[512], c[512], ta[512], tb[512];
        path(a, sizeof(a), "d1.cfg");
        path(b, sizeof(b), "d2.cfg");
        path(c, sizeof(c), "d3.cfg");
        path(ta, sizeof(ta), "d1.truth");
        path(tb, sizeof(tb), "d2.truth");
        const char *opts = "--preset small --days 2 --faults --late-data "
                           "--late-rate 0.05 --partitions 8";
        assert_int_equal(run("%s gen %s --seed 7 --out %s --truth %s "
                             "2>/dev/null",
                             CF_BINARY, opts, a, ta),
                         0);
        assert_int_equal(run("%s gen %s --seed 7 --out %s --truth %s "
                             "2>/dev/null",
                             CF_BINARY, opts, b, tb),
                         0);
        assert_int_equal(
            run("%s gen %s --seed 8 --out %s 2>/dev/null", CF_BINARY, opts, c),
            0);
        assert_true(file_hash(a) == file_hash(b));
        assert_true(file_hash(ta) == file_hash(tb));
        assert_true(file_hash(a) != file_hash(c));
}

/* ---- the scenario's distributions ------------------------------------- */

/* Documented in gen.c / gen_estate.c: shares of user groups per site type
 * (per mille) and the arrival profiles (weights per local hour). */
static const int group_share[3][4] = {
        { 850, 0, 100, 50 }, /* housing: resident, employee, guest, board */
        { 0, 850, 150, 0 },  /* office */
        { 0, 100, 900, 0 },  /* hotel */
};
static const char *const groups[4] = { "resident", "employee", "guest",
                                       "board" };

static void gen_scenario_distributions(void **state)
{
        char f[512], tr[512];
        trun t;
        path(f, sizeof(f), "dist.cfg");
        path(tr, sizeof(tr), "dist.truth");
        assert_int_equal(run("%s gen --preset small --seed 3 --days 14 "
                             "--out %s --truth %s 2>/dev/null",
                             CF_BINARY, f, tr),
                         0);
        load_run(&t, f, tr);

        /* The estate: the small preset's sizes. */
        json_t *sc = t.truth[0];
        assert_true(is_type(sc, "scenario"));
        assert_int_equal(jint(sc, "tenants"), 3);
        assert_int_equal(jint(sc, "sites"), 20);
        assert_int_equal(jint(sc, "chargers"), 200);
        assert_int_equal(jint(sc, "users"), 2000);
        assert_int_equal(t.n_sites, 20);
        int tz_other = 0, ac_off = 0;
        for (size_t i = 0; i < t.n_sites; i++) {
                tz_other +=
                    strcmp(cf_tz_name(t.sites[i].tz), "Europe/Oslo") != 0;
                ac_off += !t.sites[i].access_control;
        }
        assert_true(tz_other >= 1 && tz_other <= 10); /* mostly Oslo */
        assert_true(ac_off >= 1);

        /* Sites and users come first, then only traffic. */
        size_t i = 0;
        while (i < t.n && t.r[i].topic == CF_GEN_T_SITES)
                i++;
        assert_int_equal(i, 20);
        while (i < t.n && t.r[i].topic == CF_GEN_T_USERS)
                i++;
        assert_int_equal(i, 2020);
        for (; i < t.n; i++)
                assert_true(t.r[i].topic <= CF_GEN_T_METER);

        /* Site prices: every site has plans; a price change and a free
         * plan exist somewhere. */
        int changes = 0, free_plans = 0;
        for (i = 0; i < 20; i++) {
                const cf_site *s = t.r[i].rec;
                assert_true(s->n_versions >= 1);
                changes += s->n_versions > 1;
                for (uint32_t v = 0; v < s->n_versions; v++)
                        for (uint32_t p = 0; p < s->versions[v].n_plans; p++) {
                                const cf_tariff *tf =
                                    &s->versions[v].plans[p].tariff;
                                bool zero = true;
                                for (uint32_t e = 0; e < tf->n_elements; e++)
                                        for (uint32_t c = 0;
                                             c <
                                             tf->elements[e].n_price_components;
                                             c++)
                                                zero &= tf->elements[e]
                                                            .price_components[c]
                                                            .price_micros == 0;
                                free_plans += zero;
                        }
        }
        assert_true(changes >= 1);
        assert_true(free_plans >= 1);

        /* Group shares of the users, per site type (users' tenant). */
        int cnt[3][4] = { { 0 } }, tot[3] = { 0 };
        for (i = 20; i < 2020; i++) {
                const cf_user *u = t.r[i].rec;
                assert_true(t.r[i].ok);
                assert_true(u->n_badges == 1 || u->n_badges == 2);
                int type = -1;
                for (size_t s = 0; s < t.n_sites; s++)
                        if (!strcmp(t.sites[s].tenant, u->tenant_id))
                                type = t.sites[s].type;
                assert_true(type >= 0);
                int g = -1;
                for (int k = 0; k < 4; k++)
                        if (!strcmp(u->group, groups[k]))
                                g = k;
                assert_true(g >= 0);
                cnt[type][g]++;
                tot[type]++;
        }
        for (int ty = 0; ty < 3; ty++)
                for (int g = 0; g < 4; g++)
                        assert_rate(groups[g], (uint64_t)cnt[ty][g],
                                    (uint64_t)tot[ty],
                                    group_share[ty][g] / 1000.0);

        /* Arrival peaks (AC chargers: DC ones are the chargers with a
         * reading above 22 kW): housing in the evening, offices on weekday
         * mornings. The profiles put 62 % (housing weekdays, 16-21) and
         * 62 % (office weekdays, 06-10) there; occupied connectors lose
         * some arrivals, so at least 45 % is asked. */
        smap dc;
        smap_init(&dc);
        for (i = 0; i < t.n; i++) {
                if (t.r[i].topic != CF_GEN_T_METER)
                        continue;
                const cf_meter_reading *m = t.r[i].rec;
                if (m->power_w != CF_NONE && m->power_w > 22000)
                        *smap_slot(&dc, m->charger_id, true) = 1;
        }
        int h_eve = 0, h_all = 0, o_morn = 0, o_wd = 0, o_all = 0;
        for (i = 0; i < t.n; i++) {
                if (t.r[i].topic != CF_GEN_T_SESSIONS)
                        continue;
                const cf_session_event *e = t.r[i].rec;
                if (e->kind != CF_SESSION_STARTED ||
                    smap_get(&dc, e->charger_id, 0))
                        continue;
                tsite *s = find_site(&t, e->site_id);
                assert_non_null(s);
                cf_civil c;
                cf_tz_civil(s->tz, e->time_ms, &c);
                if (s->type == 0) {
                        h_all++;
                        h_eve += c.hour >= 16 && c.hour < 21;
                } else if (s->type == 1) {
                        o_all++;
                        if (c.wday < 5) {
                                o_wd++;
                                o_morn += c.hour >= 6 && c.hour < 10;
                        }
                }
        }
        smap_free(&dc);
        assert_true(h_all > 500 && o_all > 200);
        assert_true(h_eve * 100 >= 45 * h_all);
        assert_true(o_morn * 100 >= 45 * o_wd);
        /* 14 days hold 10 weekdays: weekday arrivals dominate offices. */
        assert_true(o_wd * 100 >= 85 * o_all);

        /* Session energy: AC demand is 2-38 kWh, DC 10-70 kWh; the median
         * session lies well inside. Durations are at least 10 minutes. */
        int64_t *en = malloc(t.n_truth * sizeof(int64_t));
        size_t ns = 0;
        for (i = 0; i < t.n_truth; i++) {
                json_t *j = t.truth[i];
                if (!is_type(j, "session"))
                        continue;
                int64_t e = jint(j, "energy_wh");
                assert_true(e >= 0 && e <= 70000);
                assert_true(jint(j, "stop_ms") - jint(j, "start_ms") >= 600000);
                en[ns++] = e;
        }
        assert_true(ns > 1000);
        for (size_t a = 1; a < ns; a++) /* insertion sort is fine here */
                for (size_t b = a; b > 0 && en[b - 1] > en[b]; b--) {
                        int64_t x = en[b];
                        en[b] = en[b - 1];
                        en[b - 1] = x;
                }
        assert_true(en[ns / 2] >= 5000 && en[ns / 2] <= 30000);
        free(en);
        free_run(&t);
}

/* ---- faults and the truth --------------------------------------------- */

/* Rates asked for (high, so that a few days give enough events). */
#define R_DUP     0.02
#define R_REORDER 0.01
#define R_LATE    0.05
#define R_LOST    0.05
#define R_CORRUPT 0.01
#define R_INVALID 0.02
#define R_ORPHAN  0.01
#define R_UNKSITE 0.01

static trun fr;
static bool fr_loaded;

/* Generates and loads the fault run once, for the tests that share it. */
static int setup_faults(void **state)
{
        char f[512], tr[512];
        if (fr_loaded)
                return 0;
        path(f, sizeof(f), "faults.cfg");
        path(tr, sizeof(tr), "faults.truth");
        if (run("%s gen --preset small --seed 11 --days 4 --dup-rate %g "
                "--reorder-rate %g --late-rate %g --lost-stop-rate %g "
                "--corrupt-rate %g --invalid-rate %g --orphan-rate %g "
                "--unknown-site-rate %g --out %s --truth %s 2>/dev/null",
                CF_BINARY, R_DUP, R_REORDER, R_LATE, R_LOST, R_CORRUPT,
                R_INVALID, R_ORPHAN, R_UNKSITE, f, tr) != 0)
                return -1;
        load_run(&fr, f, tr);
        fr_loaded = true;
        return 0;
}

static const char *rec_eid(const trec *r)
{
        return r->topic == CF_GEN_T_SESSIONS
                   ? ((const cf_session_event *)r->rec)->event_id
                   : ((const cf_meter_reading *)r->rec)->event_id;
}

static void gen_fault_rates_match_request(void **state)
{
        trun *t = &fr;
        smap eid, sites, started, listed;
        smap_init(&eid);
        smap_init(&sites);
        smap_init(&started);
        smap_init(&listed);
        for (size_t i = 0; i < t->n_sites; i++)
                *smap_slot(&sites, t->sites[i].id, true) = 1;
        /* Extras named by the truth (their own event ids). */
        for (size_t i = 0; i < t->n_truth; i++) {
                json_t *j = t->truth[i];
                const char *k = jstr(j, "fault"), *e = jstr(j, "event_id");
                if (!is_type(j, "fault") || !e || !strcmp(k, "duplicate") ||
                    !strcmp(k, "reorder") || !strcmp(k, "lost_stop") ||
                    !strcmp(k, "late_stop") || !strcmp(k, "stop_in_flight"))
                        continue;
                *smap_slot(&listed, e, true) = 1;
        }

        uint64_t traffic = 0, undecodable = 0, unknown = 0, extra_occ = 0;
        uint64_t sess_started = 0, sess_stopped = 0;
        for (size_t i = 0; i < t->n; i++) {
                trec *r = &t->r[i];
                if (r->topic > CF_GEN_T_METER)
                        continue;
                traffic++;
                if (!r->ok) {
                        undecodable++;
                        continue;
                }
                const char *e = rec_eid(r);
                int64_t *n = smap_slot(&eid, e, true);
                if ((*n)++ > 0)
                        extra_occ++;
                if (r->topic == CF_GEN_T_SESSIONS) {
                        const cf_session_event *ev = r->rec;
                        if (!smap_get(&sites, ev->site_id, 0)) {
                                unknown++;
                                continue;
                        }
                        if (*n > 1)
                                continue;
                        if (ev->kind == CF_SESSION_STARTED) {
                                sess_started++;
                                *smap_slot(&started, ev->session_id, true) = 1;
                        }
                        sess_stopped += ev->kind == CF_SESSION_STOPPED;
                }
        }
        /* Real records: all traffic less the extras, duplicates and
         * corrupt copies. */
        uint64_t orphans = 0, invalid = 0, readings = 0;
        for (size_t i = 0; i < t->n; i++) {
                trec *r = &t->r[i];
                if (r->topic != CF_GEN_T_METER || !r->ok)
                        continue;
                const cf_meter_reading *m = r->rec;
                if (smap_get(&listed, m->event_id, 0)) {
                        if (m->session_id && *m->session_id &&
                            !smap_get(&started, m->session_id, 0))
                                orphans++;
                        else
                                invalid++;
                } else if (smap_get(&eid, m->event_id, 0) > 0) {
                        readings++;
                        /* count each real reading once */
                        *smap_slot(&eid, m->event_id, true) = 0;
                }
        }
        uint64_t real =
            traffic - undecodable - extra_occ - unknown - orphans - invalid;
        assert_true(real > 100000);
        assert_rate("duplicates", extra_occ, real, R_DUP);
        assert_rate("corrupt", undecodable, real, R_CORRUPT);
        assert_rate("unknown site", unknown, real, R_UNKSITE);
        /* Periodic readings: all real readings but each session's final. */
        uint64_t periodic = readings - sess_started;
        assert_rate("invalid", invalid, periodic, R_INVALID);
        assert_rate("orphan", orphans, periodic, R_ORPHAN);
        /* Lost stops: sessions started but never stopped (sessions end
         * before the scenario does). */
        assert_rate("lost stop", sess_started - sess_stopped, sess_started,
                    R_LOST);

        /* Reordering: a real record whose event time is below the previous
         * real record of its charger (duplicates and extras aside). */
        smap last;
        smap_init(&last);
        uint64_t inversions = 0;
        smap_free(&eid);
        smap_init(&eid);
        for (size_t i = 0; i < t->n; i++) {
                trec *r = &t->r[i];
                if (r->topic > CF_GEN_T_METER || !r->ok)
                        continue;
                const char *e = rec_eid(r);
                int64_t *n = smap_slot(&eid, e, true);
                if ((*n)++ > 0 || smap_get(&listed, e, 0))
                        continue;
                int64_t tm = r->topic == CF_GEN_T_SESSIONS
                                 ? ((cf_session_event *)r->rec)->time_ms
                                 : ((cf_meter_reading *)r->rec)->time_ms;
                int64_t *prev = smap_slot(&last, r->key, true);
                if (*prev > tm)
                        inversions++;
                else
                        *prev = tm;
        }
        smap_free(&last);
        /* A swap within one charger is one inversion, unless both records
         * share the instant (the final reading and STOPPED). */
        assert_true(inversions <= (uint64_t)(real * R_REORDER * 1.3 + 20));
        assert_true(inversions >= (uint64_t)(real * R_REORDER * 0.5));

        /* Late uploads: episodes per session. */
        uint64_t episodes = 0, sessions = 0;
        for (size_t i = 0; i < t->n_truth; i++) {
                json_t *j = t->truth[i];
                if (is_type(j, "session"))
                        sessions++;
                else if (is_type(j, "fault") &&
                         !strcmp(jstr(j, "fault"), "late_upload"))
                        episodes++;
        }
        /* A session starting while its charger is offline cannot start an
         * episode: allow 30 % below the asked rate. */
        assert_true(episodes >= (uint64_t)(sessions * R_LATE * 0.7) - 5);
        assert_true(episodes <= (uint64_t)(sessions * R_LATE * 1.2) + 5);
        smap_free(&eid);
        smap_free(&sites);
        smap_free(&started);
        smap_free(&listed);
}

typedef struct sess_seen {
        int started, authorized, stopped, readings;
        int64_t start_wh, stop_wh, final_wh, last_wh, last_t;
        bool regress;
} sess_seen;

static void gen_truth_consistent_with_traffic(void **state)
{
        trun *t = &fr;
        smap sidx, eid, hashes, listed;
        smap_init(&sidx);
        smap_init(&eid);
        smap_init(&hashes);
        smap_init(&listed);

        /* Index the truth. */
        size_t n_sess = 0;
        for (size_t i = 0; i < t->n_truth; i++)
                if (is_type(t->truth[i], "session"))
                        *smap_slot(&sidx, jstr(t->truth[i], "session_id"),
                                   true) = (int64_t)n_sess++;
        sess_seen *seen = calloc(n_sess, sizeof(*seen));
        smap dups, reorder;
        smap_init(&dups);
        smap_init(&reorder);
        for (size_t i = 0; i < t->n_truth; i++) {
                json_t *j = t->truth[i];
                if (!is_type(j, "fault"))
                        continue;
                const char *k = jstr(j, "fault");
                const char *e = jstr(j, "event_id");
                if (!strcmp(k, "corrupt")) {
                        assert_string_equal(jstr(j, "reason"), "SCHEMA");
                        (*smap_slot(&hashes, jstr(j, "hash"), true))++;
                } else if (!strcmp(k, "duplicate")) {
                        (*smap_slot(&dups, e, true))++;
                } else if (!strcmp(k, "reorder")) {
                        (*smap_slot(&reorder, e, true))++;
                } else if (e && strcmp(k, "lost_stop") &&
                           strcmp(k, "late_stop") &&
                           strcmp(k, "stop_in_flight")) {
                        *smap_slot(&listed, e, true) = 1;
                        assert_non_null(jstr(j, "reason"));
                }
        }

        /* Every traffic record is a real session's, or listed. */
        int64_t prev_ts = INT64_MIN;
        for (size_t i = 0; i < t->n; i++) {
                trec *r = &t->r[i];
                if (r->topic > CF_GEN_T_METER)
                        continue;
                if (!r->ok) {
                        char h[24];
                        snprintf(h, sizeof(h), "%016llx",
                                 (unsigned long long)r->hash);
                        int64_t *c = smap_slot(&hashes, h, false);
                        assert_non_null(c);
                        assert_true((*c)-- > 0);
                        continue;
                }
                const char *e = rec_eid(r);
                /* Publish order: nondecreasing but for reordered records. */
                if (r->ts < prev_ts)
                        assert_true(smap_get(&reorder, e, 0) > 0);
                else
                        prev_ts = r->ts;
                int64_t *occ = smap_slot(&eid, e, true);
                if ((*occ)++ > 0) {
                        int64_t *d = smap_slot(&dups, e, false);
                        assert_non_null(d);
                        assert_true((*d)-- > 0);
                        continue;
                }
                if (smap_get(&listed, e, 0))
                        continue;
                const char *sid =
                    r->topic == CF_GEN_T_SESSIONS
                        ? ((cf_session_event *)r->rec)->session_id
                        : ((cf_meter_reading *)r->rec)->session_id;
                int64_t *si = smap_slot(&sidx, sid, false);
                if (!si)
                        fail_msg("record %s of session %s: not in the truth", e,
                                 sid);
                sess_seen *s = &seen[*si];
                if (r->topic == CF_GEN_T_SESSIONS) {
                        const cf_session_event *ev = r->rec;
                        assert_string_equal(ev->charger_id, r->key);
                        if (ev->kind == CF_SESSION_STARTED) {
                                s->started++;
                                s->start_wh = ev->energy_wh;
                        } else if (ev->kind == CF_SESSION_AUTHORIZED) {
                                s->authorized++;
                        } else {
                                s->stopped++;
                                s->stop_wh = ev->energy_wh;
                        }
                } else {
                        const cf_meter_reading *m = r->rec;
                        assert_string_equal(m->charger_id, r->key);
                        s->readings++;
                        if (m->time_ms > s->last_t) {
                                if (m->energy_wh < s->last_wh)
                                        s->regress = true;
                                s->last_t = m->time_ms;
                                s->last_wh = m->energy_wh;
                        }
                        s->final_wh = s->final_wh > m->energy_wh ? s->final_wh
                                                                 : m->energy_wh;
                }
        }
        /* Every listed duplicate and corrupt record was seen. */
        for (size_t i = 0; i < dups.cap; i++)
                if (dups.k[i])
                        assert_int_equal(dups.v[i], 0);
        for (size_t i = 0; i < hashes.cap; i++)
                if (hashes.k[i])
                        assert_int_equal(hashes.v[i], 0);
        /* Listed extras are all in the traffic. */
        for (size_t i = 0; i < listed.cap; i++)
                if (listed.k[i])
                        assert_true(smap_get(&eid, listed.k[i], 0) >= 1);

        /* Every real session's events are present and add up. */
        size_t k = 0;
        smap conn_last;
        smap_init(&conn_last);
        for (size_t i = 0; i < t->n_truth; i++) {
                json_t *j = t->truth[i];
                if (!is_type(j, "session"))
                        continue;
                sess_seen *s = &seen[k++];
                bool lost = json_is_true(json_object_get(j, "stop_lost"));
                const char *auth = jstr(j, "auth");
                assert_int_equal(s->started, 1);
                assert_int_equal(s->stopped, lost ? 0 : 1);
                assert_int_equal(s->authorized, strcmp(auth, "none") ? 1 : 0);
                assert_int_equal(s->readings, jint(j, "readings"));
                assert_true(s->readings >= 1);
                assert_false(s->regress);
                assert_int_equal(s->start_wh, jint(j, "start_wh"));
                assert_int_equal(s->final_wh, jint(j, "stop_wh"));
                if (!lost)
                        assert_int_equal(s->stop_wh, jint(j, "stop_wh"));
                assert_int_equal(jint(j, "stop_wh") - jint(j, "start_wh"),
                                 jint(j, "energy_wh"));
                const char *user = jstr(j, "user");
                const char *grp = jstr(j, "group");
                if (!user)
                        assert_string_equal(grp, "unauthenticated");
                /* A connector's register never goes down across sessions
                 * (the truth is in generation order: by stop per
                 * connector). */
                char ck[48];
                snprintf(ck, sizeof(ck), "%s/%lld", jstr(j, "charger"),
                         (long long)jint(j, "connector"));
                int64_t *lw = smap_slot(&conn_last, ck, true);
                assert_true(jint(j, "start_wh") >= *lw);
                *lw = jint(j, "stop_wh");
        }
        assert_int_equal(k, n_sess);
        smap_free(&conn_last);
        free(seen);
        smap_free(&sidx);
        smap_free(&eid);
        smap_free(&hashes);
        smap_free(&listed);
        smap_free(&dups);
        smap_free(&reorder);
}

/* Invalid records show the property their reason names. */
static void gen_invalid_records_break_one_rule(void **state)
{
        trun *t = &fr;
        smap kind, last_wh, last_t;
        smap_init(&kind);
        smap_init(&last_wh);
        smap_init(&last_t);
        for (size_t i = 0; i < t->n_truth; i++) {
                json_t *j = t->truth[i];
                const char *e = jstr(j, "event_id");
                if (!is_type(j, "fault") || !e)
                        continue;
                static const char *const kinds[] = {
                        "meter_regression", "meter_jump", "future_time",
                        "negative_energy",  "empty_id",   "orphan",
                        "unknown_site"
                };
                for (int q = 0; q < 7; q++)
                        if (!strcmp(jstr(j, "fault"), kinds[q]))
                                *smap_slot(&kind, e, true) = q + 1;
        }
        int seen[8] = { 0 };
        for (size_t i = 0; i < t->n; i++) {
                trec *r = &t->r[i];
                if (r->topic != CF_GEN_T_METER || !r->ok)
                        continue;
                const cf_meter_reading *m = r->rec;
                int q = (int)smap_get(&kind, m->event_id, 0);
                char sk[64];
                snprintf(sk, sizeof(sk), "%s", m->session_id);
                int64_t *lw = smap_slot(&last_wh, sk, true);
                int64_t lt[1] = { smap_get(&last_t, sk, 0) };
                tsite *s = find_site(t, m->site_id);
                switch (q) {
                case 0: /* real reading: the latest by event time */
                        if (m->time_ms >= lt[0]) {
                                *lw = m->energy_wh;
                                *smap_slot(&last_t, sk, true) = m->time_ms;
                        }
                        break;
                case 1:
                        assert_true(m->energy_wh < *lw);
                        break;
                case 2:
                        assert_non_null(s);
                        assert_true(m->power_w > s->max_power_w);
                        assert_true(m->energy_wh > *lw);
                        break;
                case 3:
                        assert_true(m->time_ms > r->ts + 86400000LL);
                        break;
                case 4:
                        assert_true(m->energy_wh < 0);
                        break;
                case 5:
                        assert_true(!*m->charger_id || !*m->session_id);
                        assert_true(*r->key);
                        break;
                }
                seen[q]++;
        }
        for (int q = 1; q <= 6; q++)
                assert_true(seen[q] > 0);
        smap_free(&kind);
        smap_free(&last_wh);
        smap_free(&last_t);
}

/* ---- late data (issue 17) --------------------------------------------- */

#define R_LATE_STOP 0.02
#define R_IN_FLIGHT 0.05
#define R_BACKFILL  0.2
#define DAY_MS      86400000LL
#define MIN_MS      60000LL

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* A traffic record's content without its ids (event and session ids are
 * counters in generation order, which publishing later may change). */
static uint64_t content_hash(const trec *r)
{
        char b[256];
        if (r->topic == CF_GEN_T_SESSIONS) {
                const cf_session_event *e = r->rec;
                snprintf(b, sizeof(b), "s|%s|%s|%d|%d|%lld|%lld|%s|%s|%d",
                         e->site_id, e->charger_id, e->connector_id, e->kind,
                         (long long)e->time_ms, (long long)e->energy_wh,
                         e->user_id ? e->user_id : "-",
                         e->badge_id ? e->badge_id : "-", e->stop_reason);
        } else {
                const cf_meter_reading *m = r->rec;
                snprintf(b, sizeof(b), "m|%s|%s|%d|%lld|%lld|%lld|%lld|%lld",
                         m->site_id, m->charger_id, m->connector_id,
                         (long long)m->seq_no, (long long)m->time_ms,
                         (long long)m->energy_wh, (long long)m->power_w,
                         (long long)m->current_ma);
        }
        return fnv(b, strlen(b));
}

static int64_t rec_time(const trec *r)
{
        return r->topic == CF_GEN_T_SESSIONS
                   ? ((const cf_session_event *)r->rec)->time_ms
                   : ((const cf_meter_reading *)r->rec)->time_ms;
}

/* A session's identity across runs: charger, connector and start. */
static void sess_key(char *b, size_t n, json_t *j)
{
        snprintf(b, n, "%s/%lld/%lld", jstr(j, "charger"),
                 (long long)jint(j, "connector"),
                 (long long)jint(j, "start_ms"));
}

/*
 * The three late-data faults against the same scenario without them
 * (cmd_gen.c's contract): the same real records and sessions (ids aside),
 * every record published when its fault says, to the millisecond:
 *  - late_stop: the final reading and the STOPPED at ts_ms, 7 days 1 hour
 *    to 10 days after due_ms (when they were due: the stop, or a backfill's
 *    upload);
 *  - stop_in_flight: both at ts_ms, 5 minutes to 3 hours after the next
 *    session's STARTED on the same connector (after_event_id), which
 *    starts within a day of the stop;
 *  - backfill: every record of a backfilled site's chargers before to_ms
 *    at to_ms (7 to 28 days after the start), the others at their event
 *    time; "records" counts them.
 * The truth's sessions keep their true energy and carry the flags.
 */
static void gen_late_data_faults_as_the_truth_says(void **state)
{
        (void)state;
        char fa[512], ta[512], fb[512], tb[512];
        path(fa, sizeof(fa), "ld-a.cfg");
        path(ta, sizeof(ta), "ld-a.truth");
        path(fb, sizeof(fb), "ld-b.cfg");
        path(tb, sizeof(tb), "ld-b.truth");
        const char *opts = "--preset small --seed 11 --days 20 "
                           "--meter-interval 600";
        assert_int_equal(run("%s gen %s --out %s --truth %s 2>/dev/null",
                             CF_BINARY, opts, fa, ta),
                         0);
        assert_int_equal(run("%s gen %s --late-stop-rate %g "
                             "--stop-in-flight-rate %g --backfill-rate %g "
                             "--out %s --truth %s 2>/dev/null",
                             CF_BINARY, opts, R_LATE_STOP, R_IN_FLIGHT,
                             R_BACKFILL, fb, tb),
                         0);
        trun a, b;
        load_run(&a, fa, ta);
        load_run(&b, fb, tb);

        /* The same real records, ids aside. */
        uint64_t *ha = malloc(a.n * sizeof(uint64_t));
        uint64_t *hb = malloc(b.n * sizeof(uint64_t));
        size_t na = 0, nb = 0;
        for (size_t i = 0; i < a.n; i++) {
                assert_true(a.r[i].ok);
                if (a.r[i].topic <= CF_GEN_T_METER) {
                        ha[na++] = content_hash(&a.r[i]);
                        /* Without faults, published at the event time. */
                        assert_int_equal(a.r[i].ts, rec_time(&a.r[i]));
                }
        }
        for (size_t i = 0; i < b.n; i++) {
                assert_true(b.r[i].ok);
                if (b.r[i].topic <= CF_GEN_T_METER)
                        hb[nb++] = content_hash(&b.r[i]);
        }
        assert_int_equal(na, nb);
        qsort(ha, na, sizeof(uint64_t), cmp_u64);
        qsort(hb, nb, sizeof(uint64_t), cmp_u64);
        assert_memory_equal(ha, hb, na * sizeof(uint64_t));
        free(ha);
        free(hb);

        /* The same sessions with the same truth, flags aside. */
        smap sa, sid_b, conn_next;
        smap_init(&sa);
        smap_init(&sid_b);
        smap_init(&conn_next);
        size_t n_sess = 0;
        for (size_t i = 0; i < a.n_truth; i++) {
                json_t *j = a.truth[i];
                if (!is_type(j, "session"))
                        continue;
                char k[96];
                sess_key(k, sizeof(k), j);
                *smap_slot(&sa, k, true) = (int64_t)i;
                n_sess++;
                assert_false(json_is_true(json_object_get(j, "late_stop")));
                assert_false(
                    json_is_true(json_object_get(j, "stop_in_flight")));
                assert_false(json_is_true(json_object_get(j, "backfill")));
        }
        static const char *const same[] = {
                "tenant",    "site",     "charger",         "connector",
                "user",      "badge",    "group",           "auth",
                "start_ms",  "stop_ms",  "charge_start_ms", "charge_end_ms",
                "energy_wh", "start_wh", "stop_wh",         "stop_reason",
                "stop_lost", "late",     "events",          "readings",
        };
        size_t n_sess_b = 0;
        for (size_t i = 0; i < b.n_truth; i++) {
                json_t *j = b.truth[i];
                if (!is_type(j, "session"))
                        continue;
                n_sess_b++;
                char k[96];
                sess_key(k, sizeof(k), j);
                int64_t *ix = smap_slot(&sa, k, false);
                assert_non_null(ix);
                json_t *o = a.truth[*ix];
                for (size_t q = 0; q < sizeof(same) / sizeof(same[0]); q++)
                        if (!json_equal(json_object_get(j, same[q]),
                                        json_object_get(o, same[q])))
                                fail_msg("session %s: %s differs", k, same[q]);
                assert_int_equal(jint(j, "stop_wh") - jint(j, "start_wh"),
                                 jint(j, "energy_wh"));
                *smap_slot(&sid_b, jstr(j, "session_id"), true) = (int64_t)i;
        }
        assert_int_equal(n_sess_b, n_sess);

        /* B's records by event id, and the backfilled chargers. */
        smap eid, bf_to, bf_site;
        smap_init(&eid);
        smap_init(&bf_to);
        smap_init(&bf_site);
        for (size_t i = 0; i < b.n; i++)
                if (b.r[i].topic <= CF_GEN_T_METER)
                        *smap_slot(&eid, rec_eid(&b.r[i]), true) = (int64_t)i;
        size_t n_bf = 0, n_ls = 0, n_if = 0;
        for (size_t i = 0; i < b.n_truth; i++) {
                json_t *j = b.truth[i];
                if (!is_type(j, "fault"))
                        continue;
                const char *f = jstr(j, "fault");
                if (!strcmp(f, "backfill")) {
                        n_bf++;
                        assert_true(json_is_null(json_object_get(j, "reason")));
                        int64_t to = jint(j, "to_ms");
                        assert_int_equal(jint(j, "ts_ms"), to);
                        int64_t span = to - jint(j, "from_ms");
                        assert_true(span >= 7 * DAY_MS);
                        assert_true(span <= 20 * DAY_MS); /* the end */
                        assert_null(smap_slot(&bf_to, jstr(j, "key"), false));
                        *smap_slot(&bf_to, jstr(j, "key"), true) = to;
                        int64_t *st =
                            smap_slot(&bf_site, jstr(j, "site"), true);
                        assert_true(*st == 0 || *st == to); /* one upload */
                        *st = to;
                }
        }
        assert_true(n_bf > 0);
        /* Every charger of a backfilled site has its line. */
        for (size_t i = 0; i < b.n; i++) {
                trec *r = &b.r[i];
                if (r->topic != CF_GEN_T_SESSIONS)
                        continue;
                const cf_session_event *e = r->rec;
                if (smap_get(&bf_site, e->site_id, 0))
                        assert_int_equal(smap_get(&bf_to, e->charger_id, 0),
                                         smap_get(&bf_site, e->site_id, 0));
        }

        /* The delayed stop messages. */
        smap delayed; /* event id -> publish time */
        smap_init(&delayed);
        for (size_t i = 0; i < b.n_truth; i++) {
                json_t *j = b.truth[i];
                const char *f = jstr(j, "fault");
                if (!is_type(j, "fault") ||
                    (strcmp(f, "late_stop") && strcmp(f, "stop_in_flight")))
                        continue;
                bool late = !strcmp(f, "late_stop");
                n_ls += late;
                n_if += !late;
                assert_true(json_is_null(json_object_get(j, "reason")));
                int64_t ts = jint(j, "ts_ms"), due = jint(j, "due_ms");
                int64_t *si = smap_slot(&sid_b, jstr(j, "session_id"), false);
                assert_non_null(si);
                json_t *s = b.truth[*si];
                assert_true(json_is_true(
                    json_object_get(s, late ? "late_stop" : "stop_in_flight")));
                assert_int_equal(jint(j, "time_ms"), jint(s, "stop_ms"));
                /* Due: at the stop, or at the charger's backfill upload. */
                int64_t to = smap_get(&bf_to, jstr(j, "key"), 0);
                assert_int_equal(
                    due, jint(s, "stop_ms") < to ? to : jint(s, "stop_ms"));
                int64_t *ri =
                    smap_slot(&eid, jstr(j, "reading_event_id"), false);
                int64_t *ei = smap_slot(&eid, jstr(j, "event_id"), false);
                assert_non_null(ri);
                assert_non_null(ei);
                const trec *rr = &b.r[*ri], *er = &b.r[*ei];
                assert_int_equal(rr->topic, CF_GEN_T_METER);
                assert_int_equal(er->topic, CF_GEN_T_SESSIONS);
                assert_true(*ri < *ei); /* the reading first */
                const cf_meter_reading *m = rr->rec;
                const cf_session_event *e = er->rec;
                assert_int_equal(rr->ts, ts);
                assert_int_equal(er->ts, ts);
                assert_int_equal(e->kind, CF_SESSION_STOPPED);
                assert_string_equal(e->session_id, jstr(j, "session_id"));
                assert_string_equal(m->session_id, jstr(j, "session_id"));
                assert_int_equal(e->time_ms, jint(s, "stop_ms"));
                assert_int_equal(m->time_ms, jint(s, "stop_ms"));
                assert_int_equal(e->energy_wh, jint(s, "stop_wh"));
                assert_int_equal(m->energy_wh, jint(s, "stop_wh"));
                *smap_slot(&delayed, e->event_id, true) = ts;
                *smap_slot(&delayed, m->event_id, true) = ts;
                if (late) {
                        assert_true(ts - due >= 7 * DAY_MS + 60 * MIN_MS);
                        assert_true(ts - due <= 10 * DAY_MS);
                        continue;
                }
                /* In flight: after the next session's STARTED. */
                int64_t *ni = smap_slot(&eid, jstr(j, "after_event_id"), false);
                assert_non_null(ni);
                const trec *nr = &b.r[*ni];
                const cf_session_event *ne = nr->rec;
                assert_int_equal(nr->topic, CF_GEN_T_SESSIONS);
                assert_int_equal(ne->kind, CF_SESSION_STARTED);
                assert_string_equal(ne->session_id, jstr(j, "next_session_id"));
                assert_string_equal(ne->charger_id, e->charger_id);
                assert_int_equal(ne->connector_id, e->connector_id);
                assert_true(*ni < *ri);
                assert_true(ts >= nr->ts + 5 * MIN_MS);
                assert_true(ts <= nr->ts + 180 * MIN_MS);
                assert_true(ne->time_ms > e->time_ms);
                assert_true(ne->time_ms - e->time_ms <= DAY_MS);
        }
        assert_true(n_ls > 0);
        assert_true(n_if > 0);

        /* Every record published when the faults say; the backfill counts
         * and the sessions' flags. */
        smap bf_count;
        smap_init(&bf_count);
        for (size_t i = 0; i < b.n; i++) {
                trec *r = &b.r[i];
                if (r->topic > CF_GEN_T_METER)
                        continue;
                int64_t t = rec_time(r);
                int64_t to = smap_get(&bf_to, r->key, 0);
                int64_t want = t < to ? to : t;
                if (t < to)
                        (*smap_slot(&bf_count, r->key, true))++;
                int64_t *d = smap_slot(&delayed, rec_eid(r), false);
                if (d)
                        want = *d;
                if (r->ts != want)
                        fail_msg("record %s at %lld published at %lld, not "
                                 "%lld",
                                 rec_eid(r), (long long)t, (long long)r->ts,
                                 (long long)want);
        }
        size_t n_sess_ls = 0, n_sess_if = 0;
        uint64_t eligible = 0;
        for (size_t i = 0; i < b.n_truth; i++) {
                json_t *j = b.truth[i];
                if (is_type(j, "fault") &&
                    !strcmp(jstr(j, "fault"), "backfill"))
                        assert_int_equal(
                            jint(j, "records"),
                            smap_get(&bf_count, jstr(j, "key"), 0));
                if (!is_type(j, "session"))
                        continue;
                int64_t to = smap_get(&bf_to, jstr(j, "charger"), 0);
                assert_true(json_is_true(json_object_get(j, "backfill")) ==
                            (jint(j, "start_ms") < to));
                n_sess_ls += json_is_true(json_object_get(j, "late_stop"));
                n_sess_if += json_is_true(json_object_get(j, "stop_in_flight"));
        }
        assert_int_equal(n_sess_ls, n_ls);
        assert_int_equal(n_sess_if, n_if);
        /* Rates: late stops per session; stops in flight per session not
         * late whose connector's next session starts within a day (the
         * truth lists a connector's sessions in stop order). */
        smap prev_stop;
        smap_init(&prev_stop);
        for (size_t i = 0; i < b.n_truth; i++) {
                json_t *j = b.truth[i];
                if (!is_type(j, "session"))
                        continue;
                char ck[48];
                snprintf(ck, sizeof(ck), "%s/%lld", jstr(j, "charger"),
                         (long long)jint(j, "connector"));
                int64_t *p = smap_slot(&prev_stop, ck, true);
                /* The previous session of the connector is eligible when
                 * this one starts within a day of its stop (late stops
                 * among them: within the tolerance). */
                if (*p && jint(j, "start_ms") - *p <= DAY_MS)
                        eligible++;
                *p = jint(j, "stop_ms");
        }
        assert_rate("late stop", n_ls, n_sess, R_LATE_STOP);
        assert_rate("stop in flight", n_if, eligible, R_IN_FLIGHT);
        json_t *sum = b.truth[b.n_truth - 1];
        json_t *fc = json_object_get(sum, "faults");
        assert_int_equal(jint(fc, "late_stop"), n_ls);
        assert_int_equal(jint(fc, "stop_in_flight"), n_if);
        assert_int_equal(jint(fc, "backfill"), n_bf);
        print_message("late data: %zu late stops, %zu in flight (of %llu "
                      "eligible), %zu backfilled chargers, %zu sessions\n",
                      n_ls, n_if, (unsigned long long)eligible, n_bf, n_sess);
        smap_free(&prev_stop);
        smap_free(&bf_count);
        smap_free(&delayed);
        smap_free(&eid);
        smap_free(&bf_to);
        smap_free(&bf_site);
        smap_free(&sa);
        smap_free(&sid_b);
        smap_free(&conn_next);
        free_run(&a);
        free_run(&b);
}

/* ---- into the broker --------------------------------------------------- */

typedef struct pseq {
        uint64_t *h; /* value hash ^ timestamp, in partition order */
        size_t n, cap;
} pseq;

static void pseq_add(pseq *p, uint64_t v)
{
        if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 1024;
                p->h = realloc(p->h, p->cap * sizeof(uint64_t));
        }
        p->h[p->n++] = v;
}

#define BPARTS 4

/* A topic being read by gen_into_broker_matches_file: its records per
 * partition, and the count of records of every topic. */
typedef struct gen_read {
        int t;     /* index in cf_gen_topic_names */
        pseq *got; /* [BPARTS] */
        uint64_t *seen;
} gen_read;

/* Each record: on the murmur2 partition of its key, stamped with the
 * create time, kept as value hash ^ timestamp ^ key hash << 1. */
static void check_gen_record(const rd_kafka_message_t *m, void *opaque)
{
        gen_read *rd = opaque;
        assert_string_equal(rd_kafka_topic_name(m->rkt),
                            cf_gen_topic_names[rd->t]);
        assert_int_equal(m->partition,
                         cf_murmur2_partition(m->key, m->key_len, BPARTS));
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        assert_int_equal(tt, RD_KAFKA_TIMESTAMP_CREATE_TIME);
        pseq_add(&rd->got[m->partition], fnv(m->payload, m->len) ^
                                             (uint64_t)ts ^
                                             fnv(m->key, m->key_len) << 1);
        (*rd->seen)++;
}

/* gen --bootstrap-file publishes, per partition, exactly the records of a
 * file run with the same options, in the same order, with the keys in the
 * murmur2 partition (both input topics: co-partitioned) and the Kafka
 * timestamps of the file. */
static void gen_into_broker_matches_file(void **state)
{
        cf_test_broker b;
        char f[512], err[512];
        path(f, sizeof(f), "broker.cfg");
        const char *opts = "--preset small --seed 5 --days 1 --faults";
        assert_int_equal(run("%s gen %s --partitions %d --out %s 2>/dev/null",
                             CF_BINARY, opts, BPARTS, f),
                         0);
        if (!cf_test_broker_start(&b, BPARTS))
                fail_msg("cannot start the embedded broker");
        int rc = run("%s gen %s --bootstrap-file %s 2>/dev/null", CF_BINARY,
                     opts, b.bsfile);
        if (rc != 0) {
                cf_test_broker_stop(&b);
                fail_msg("gen into the broker exited %d", rc);
        }

        /* Expected: the file's records per topic and partition. */
        pseq want[CF_GEN_T__CNT][BPARTS], got[CF_GEN_T__CNT][BPARTS];
        memset(want, 0, sizeof(want));
        memset(got, 0, sizeof(got));
        cf_genfile_reader *r;
        cf_genfile_rec gr;
        assert_int_equal(cf_genfile_reader_open(&r, f, err, sizeof(err)),
                         CF_OK);
        uint64_t total = 0;
        while (cf_genfile_next(r, &gr) == CF_OK) {
                assert_true(gr.partition >= 0 && gr.partition < BPARTS);
                pseq_add(&want[gr.topic][gr.partition],
                         fnv(gr.value, gr.value_len) ^
                             (uint64_t)gr.timestamp_ms ^
                             fnv(gr.key, gr.key_len) << 1);
                total++;
        }
        cf_genfile_reader_close(r);

        /* Every topic read whole (cf_test_read_topic: each partition from
         * offset 0 to its end). */
        uint64_t seen = 0;
        int topics_read = 0;
        for (int t = 0; t < CF_GEN_T__CNT; t++) {
                gen_read rd = { t, got[t], &seen };
                cf_test_read_topic(b.bootstrap, cf_gen_topic_names[t],
                                   check_gen_record, &rd);
                topics_read++;
        }
        assert_int_equal(cf_test_broker_stop(&b), 0);

        assert_int_equal(topics_read, CF_GEN_T__CNT);
        assert_true(total > 10000);
        assert_int_equal(seen, total);
        for (int t = 0; t < CF_GEN_T__CNT; t++)
                for (int p = 0; p < BPARTS; p++) {
                        assert_int_equal(got[t][p].n, want[t][p].n);
                        for (size_t i = 0; i < want[t][p].n; i++)
                                assert_true(got[t][p].h[i] == want[t][p].h[i]);
                        free(got[t][p].h);
                        free(want[t][p].h);
                }
}

/* --rate R paces the publishing: N events take at least N / R seconds. */
static void gen_rate_paces_publishing(void **state)
{
        char f[512];
        path(f, sizeof(f), "rate.cfg");
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(run("%s gen --preset small --days 1 --rate 50000 "
                             "--out %s 2>/dev/null",
                             CF_BINARY, f),
                         0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double el = (double)(b.tv_sec - a.tv_sec) +
                    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        cf_genfile_reader *r;
        cf_genfile_rec rec;
        char err[256];
        uint64_t n = 0;
        assert_int_equal(cf_genfile_reader_open(&r, f, err, sizeof(err)),
                         CF_OK);
        while (cf_genfile_next(r, &rec) == CF_OK)
                n++;
        cf_genfile_reader_close(r);
        assert_true(n > 20000);
        assert_true(el >= 0.95 * (double)n / 50000);
}

static void gen_rejects_bad_arguments(void **state)
{
        char f[512];
        path(f, sizeof(f), "bad.cfg");
        assert_int_equal(run("%s gen --help >/dev/null", CF_BINARY), 0);
        assert_int_equal(
            run("%s gen --preset town --out %s 2>/dev/null", CF_BINARY, f), 2);
        assert_int_equal(
            run("%s gen --dup-rate 1.5 --out %s 2>/dev/null", CF_BINARY, f), 2);
        assert_int_equal(
            run("%s gen --days 0 --out %s 2>/dev/null", CF_BINARY, f), 2);
        /* No sink, or two. */
        assert_int_equal(run("%s gen 2>/dev/null", CF_BINARY), 2);
        assert_int_equal(
            run("%s gen --out %s --bootstrap x:1 2>/dev/null", CF_BINARY, f),
            2);
}

int main(void)
{
        cf_test_broker_require();
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/cf_test_gen.XXXXXX");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(genfile_roundtrip_and_murmur2_partitions),
                cmocka_unit_test(gen_same_seed_same_bytes),
                cmocka_unit_test(gen_scenario_distributions),
                cmocka_unit_test(gen_rejects_bad_arguments),
                cmocka_unit_test(gen_into_broker_matches_file),
                cmocka_unit_test(gen_rate_paces_publishing),
                cmocka_unit_test_setup_teardown(gen_fault_rates_match_request,
                                                setup_faults, NULL),
                cmocka_unit_test_setup_teardown(
                    gen_truth_consistent_with_traffic, setup_faults, NULL),
                cmocka_unit_test_setup_teardown(
                    gen_invalid_records_break_one_rule, setup_faults, NULL),
                cmocka_unit_test(gen_late_data_faults_as_the_truth_says),
        };
        int rc = cmocka_run_group_tests_name("gen", tests, NULL, NULL);
        if (fr_loaded)
                free_run(&fr);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
        return rc;
}
