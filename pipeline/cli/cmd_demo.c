/*
 * cmd_demo.c: `chargeflow demo`, the whole system on one machine.
 *
 * Starts the embedded broker, the pipeline (`run --until-idle`) and the
 * generator (the small preset with every fault, paced so that the broker's
 * 5 MiB per partition is read before it is dropped), waits until the
 * generator is done and the pipeline has closed every period, then prints a
 * summary (events in, accepted, duplicates, rejected by reason; sessions;
 * statements per tenant; the five largest statements), writes a charge
 * report CSV, stops what it started, and exits 0. Everything it writes is in
 * one directory (printed at the start).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "kafka.h"
#include "money.h"
#include "report.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow demo [--dir D] [--days N] [--seed S] "
                "[--rate R]\n\n"
                "Runs the embedded broker, the load generator (small preset, "
                "every fault) and\nthe pipeline together, then prints a "
                "summary and writes a charge report CSV.\n\n"
                "  --dir D   where to put state, logs and outputs (default: a "
                "new /tmp dir)\n"
                "  --days N  simulated days (default 45: three billing "
                "months)\n"
                "  --seed S  scenario seed (default 42)\n"
                "  --rate R  generator pace, events/s (default 70000)\n");
}

static int wait_exit(pid_t pid)
{
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static double since(const struct timespec *t0)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - t0->tv_sec) +
               (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

typedef struct stmt {
        char *id, *tenant, *party, *period, *currency;
        int64_t sessions, incl, excl, vat, adjustments;
} stmt;

typedef struct collect {
        const cf_registry *reg;
        cf_arena a;
        stmt *v;
        size_t n, cap;
        int64_t records;
        cf_report *rep;
        /* session id -> [latest revision, energy, excl, vat, incl, tenant,
         * party, period, records, revision twice], from charge records */
        json_t *priced;
        json_t *billed;      /* tenant|party -> [excl, vat, incl] billed */
        json_t *corrections; /* record id|revision -> its period */
        json_t *revisions;   /* session id|revision seen */
        json_t *adjustments; /* record id|revision -> original period */
        int64_t corr_lines;  /* adjustment lines of corrections */
} collect;

static int64_t at(json_t *a, size_t i)
{
        return json_integer_value(json_array_get(a, i));
}

static int on_statement(void *opaque, const rd_kafka_message_t *m)
{
        collect *c = opaque;
        cf_statement st;
        cf_arena_reset(&c->a);
        if (!m->payload || cf_decode(c->reg, CF_RT_STATEMENT, m->payload,
                                     m->len, &c->a, &st, NULL))
                return 0;
        if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 256;
                c->v = cf_realloc(c->v, c->cap * sizeof(stmt));
        }
        /* Money billed per party (adjustments included), and the
         * corrections' adjustment lines. */
        char key[256];
        snprintf(key, sizeof(key), "%s|%s", st.tenant_id, st.billed_party);
        json_t *b = json_object_get(c->billed, key);
        if (!b) {
                b = json_pack("[III]", (json_int_t)0, (json_int_t)0,
                              (json_int_t)0);
                json_object_set_new(c->billed, key, b);
        }
        json_array_set_new(b, 0, json_integer(at(b, 0) + st.total_excl_vat));
        json_array_set_new(b, 1, json_integer(at(b, 1) + st.total_vat));
        json_array_set_new(b, 2, json_integer(at(b, 2) + st.total_incl_vat));
        for (uint32_t i = 0; i < st.n_adjustments; i++) {
                const cf_adjustment *j = &st.adjustments[i];
                if (j->revision < 2)
                        continue;
                c->corr_lines++;
                snprintf(key, sizeof(key), "%s|%d", j->record_id,
                         (int)j->revision);
                json_object_set_new(
                    c->adjustments, key,
                    json_string(json_object_get(c->adjustments, key)
                                    ? "" /* twice: matches no period */
                                    : j->original_period_id));
        }
        c->v[c->n++] = (stmt){ cf_strdup(st.statement_id),
                               cf_strdup(st.tenant_id),
                               cf_strdup(st.billed_party),
                               cf_strdup(st.period_id),
                               cf_strdup(st.currency),
                               st.session_count,
                               st.total_incl_vat,
                               st.total_excl_vat,
                               st.total_vat,
                               st.n_adjustments };
        return 0;
}

static int on_charge(void *opaque, const rd_kafka_message_t *m)
{
        collect *c = opaque;
        cf_charge_record cr;
        cf_arena_reset(&c->a);
        if (!m->payload || cf_decode(c->reg, CF_RT_CHARGE_RECORD, m->payload,
                                     m->len, &c->a, &cr, NULL))
                return 0;
        c->records++;
        cf_report_add(c->rep, &cr);
        /* The latest revision is the session as finally known; a revision
         * seen twice marks the session: never expected. */
        char rk[256];
        snprintf(rk, sizeof(rk), "%s|%d", cr.session_id, (int)cr.revision);
        bool again = json_object_get(c->revisions, rk) != NULL;
        json_object_set_new(c->revisions, rk, json_true());
        json_t *prev = json_object_get(c->priced, cr.session_id);
        json_int_t n = prev ? at(prev, 8) + 1 : 1;
        bool twice = again || (prev && json_is_true(json_array_get(prev, 9)));
        if (!prev || cr.revision > at(prev, 0)) {
                json_object_set_new(
                    c->priced, cr.session_id,
                    json_pack(
                        "[IIIIIsssIb]", (json_int_t)cr.revision,
                        (json_int_t)cr.energy_wh, (json_int_t)cr.total_excl_vat,
                        (json_int_t)cr.total_vat, (json_int_t)cr.total_incl_vat,
                        cr.tenant_id, cr.billed_party, cr.period_id, n, twice));
        } else {
                json_array_set_new(prev, 8, json_integer(n));
                json_array_set_new(prev, 9, json_boolean(twice));
        }
        if (cr.revision > 1) {
                /* Remembered to find its adjustment line, if any. */
                char key[256];
                snprintf(key, sizeof(key), "%s|%d", cr.record_id,
                         (int)cr.revision);
                json_object_set_new(c->corrections, key,
                                    json_string(cr.period_id));
        }
        return 0;
}

static int by_incl_desc(const void *a, const void *b)
{
        const stmt *x = a, *y = b;
        if (x->incl != y->incl)
                return x->incl < y->incl ? 1 : -1;
        return strcmp(x->id, y->id);
}

static const char *amount(char *buf, size_t n, int64_t minor, const char *cur)
{
        int32_t exp = cf_money_currency_exp(cur);
        cf_money_format(minor, exp < 0 ? 2 : exp, buf, n);
        return buf;
}

/* Checks the outputs against the generator's truth: every real session
 * billed exactly once with its true energy (its latest revision, each
 * revision once), the statements billing each party revision 1 plus every
 * correction, the corrections of closed periods as adjustment lines naming
 * the record's period, the duplicates and the rejections per reason. */
static void verify(const char *dir, collect *c, json_t *rejected, int64_t dups)
{
        char path[600];
        snprintf(path, sizeof(path), "%s/truth.jsonl", dir);
        FILE *f = fopen(path, "r");
        if (!f)
                return;
        char *line = NULL;
        size_t cap = 0;
        int64_t sessions = 0, exact = 0, revised = 0, want_dups = 0;
        json_t *want = json_object();
        while (getline(&line, &cap, f) > 0) {
                json_t *j = json_loads(line, 0, NULL);
                const char *type =
                    json_string_value(json_object_get(j, "type"));
                if (type && !strcmp(type, "session")) {
                        sessions++;
                        json_t *e = json_object_get(
                            c->priced, json_string_value(
                                           json_object_get(j, "session_id")));
                        exact += e && !json_is_true(json_array_get(e, 9)) &&
                                 at(e, 1) == json_integer_value(json_object_get(
                                                 j, "energy_wh"));
                        revised += e && at(e, 0) > 1;
                } else if (type && !strcmp(type, "summary")) {
                        want_dups = json_integer_value(json_object_get(
                            json_object_get(j, "faults"), "duplicate"));
                } else if (type && !strcmp(type, "fault") &&
                           json_is_string(json_object_get(j, "reason"))) {
                        const char *r =
                            json_string_value(json_object_get(j, "reason"));
                        json_object_set_new(
                            want, r,
                            json_integer(
                                json_integer_value(json_object_get(want, r)) +
                                1));
                }
                json_decref(j);
        }
        free(line);
        fclose(f);
        printf("\nchecked against the generator's truth (%s):\n", path);
        printf("  real sessions billed exactly once with their true energy "
               "(latest revision): %lld of %lld; charge records %lld, %lld "
               "sessions revised\n",
               (long long)exact, (long long)sessions, (long long)c->records,
               (long long)revised);
        /* Per party: the statements bill the latest revisions (revision 1
         * plus the corrections). */
        json_t *owed = json_object();
        const char *sid;
        json_t *p;
        json_object_foreach(c->priced, sid, p)
        {
                char key[256];
                snprintf(key, sizeof(key), "%s|%s",
                         json_string_value(json_array_get(p, 5)),
                         json_string_value(json_array_get(p, 6)));
                json_t *o = json_object_get(owed, key);
                if (!o) {
                        o = json_pack("[III]", (json_int_t)0, (json_int_t)0,
                                      (json_int_t)0);
                        json_object_set_new(owed, key, o);
                }
                for (size_t i = 0; i < 3; i++)
                        json_array_set_new(
                            o, i, json_integer(at(o, i) + at(p, 2 + i)));
        }
        int64_t parties = 0, parties_ok = 0;
        json_object_foreach(owed, sid, p)
        {
                parties++;
                parties_ok += json_equal(p, json_object_get(c->billed, sid));
        }
        printf("  parties whose statements bill revision 1 plus every "
               "correction: %lld of %lld (%zu billed)\n",
               (long long)parties_ok, (long long)parties,
               json_object_size(c->billed));
        int64_t as_lines = 0, named = 0;
        json_object_foreach(c->corrections, sid, p)
        {
                json_t *a = json_object_get(c->adjustments, sid);
                as_lines += a != NULL;
                named +=
                    a && !strcmp(json_string_value(a), json_string_value(p));
        }
        printf("  corrections %zu: %lld as adjustment lines (of %lld), "
               "%lld naming the record's period\n",
               json_object_size(c->corrections), (long long)as_lines,
               (long long)c->corr_lines, (long long)named);
        json_decref(owed);
        printf("  %-18s %8s %8s\n", "", "truth", "pipeline");
        printf("  %-18s %8lld %8lld\n", "duplicates", (long long)want_dups,
               (long long)dups);
        printf("  rejected reason\n");
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
                printf("  %-18s %8lld %8lld\n", k,
                       (long long)json_integer_value(v),
                       (long long)json_integer_value(
                           json_object_get(rejected, k)));
        }
        json_object_foreach(rejected, k, v)
        {
                if (!json_object_get(want, k))
                        printf("  %-18s %8d %8lld\n", k, 0,
                               (long long)json_integer_value(v));
        }
        json_decref(want);
}

/* Prints the summary from the pipeline's counters and the output topics. */
static int summarize(const char *dir, const char *bootstrap, double secs)
{
        char path[600], errstr[512];
        json_error_t jerr;
        snprintf(path, sizeof(path), "%s/summary.json", dir);
        json_t *sum = json_load_file(path, 0, &jerr);
        if (!sum) {
                fprintf(stderr, "demo: no pipeline summary in %s\n", path);
                return 1;
        }
        printf("\n== chargeflow demo: done in %.1f s (all files in %s)\n\n",
               secs, dir);
        printf("%-32s %10s %10s %10s %10s %8s\n", "input topic", "in",
               "accepted", "duplicates", "rejected", "pending");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(sum, "inputs"), k, v)
        {
                printf("%-32s %10lld %10lld %10lld %10lld %8lld\n", k,
                       (long long)json_integer_value(json_object_get(v, "in")),
                       (long long)json_integer_value(
                           json_object_get(v, "accepted")),
                       (long long)json_integer_value(
                           json_object_get(v, "duplicates")),
                       (long long)json_integer_value(
                           json_object_get(v, "rejected")),
                       (long long)json_integer_value(
                           json_object_get(v, "pending")));
        }
        printf("\nrejected by reason:");
        json_object_foreach(json_object_get(sum, "rejected"), k, v)
            printf(" %s %lld", k, (long long)json_integer_value(v));
        printf("\n");
        json_t *rejected = json_incref(json_object_get(sum, "rejected"));
        int64_t dups = 0;
        json_object_foreach(json_object_get(sum, "inputs"), k, v)
        {
                if (!strncmp(k, "charging.", 9))
                        dups += json_integer_value(
                            json_object_get(v, "duplicates"));
        }
        json_decref(sum);

        cf_registry *reg;
        if (cf_registry_new(&reg, errstr, sizeof(errstr)))
                return 1;
        cf_report rep;
        cf_report_init(&rep, CF_REPORT_USER, "2026-11", NULL);
        collect c = { .reg = reg,
                      .rep = &rep,
                      .priced = json_object(),
                      .billed = json_object(),
                      .corrections = json_object(),
                      .revisions = json_object(),
                      .adjustments = json_object() };
        cf_arena_init(&c.a, 0);
        int rc = 1;
        if (cf_kafka_read_all(bootstrap, "billing.charge-records", on_charge,
                              &c, errstr, sizeof(errstr)) ||
            cf_kafka_read_all(bootstrap, "billing.statements", on_statement, &c,
                              errstr, sizeof(errstr))) {
                fprintf(stderr, "demo: %s\n", errstr);
                goto done;
        }
        printf("sessions priced (charge records): %lld\n",
               (long long)c.records);
        printf("\nstatements per tenant:\n%-8s %-4s %10s %10s %12s %14s\n",
               "tenant", "cur", "statements", "sessions", "adjustments",
               "total incl VAT");
        /* Per tenant and currency, in order. */
        for (size_t i = 0; i < c.n; i++) {
                bool first = true;
                for (size_t j = 0; j < i; j++)
                        if (!strcmp(c.v[j].tenant, c.v[i].tenant) &&
                            !strcmp(c.v[j].currency, c.v[i].currency))
                                first = false;
                if (!first)
                        continue;
                int64_t n = 0, s = 0, adj = 0, incl = 0;
                for (size_t j = i; j < c.n; j++) {
                        if (strcmp(c.v[j].tenant, c.v[i].tenant) ||
                            strcmp(c.v[j].currency, c.v[i].currency))
                                continue;
                        n++;
                        s += c.v[j].sessions;
                        adj += c.v[j].adjustments;
                        incl += c.v[j].incl;
                }
                char a[40];
                printf("%-8s %-4s %10lld %10lld %12lld %14s\n", c.v[i].tenant,
                       c.v[i].currency, (long long)n, (long long)s,
                       (long long)adj,
                       amount(a, sizeof(a), incl, c.v[i].currency));
        }
        qsort(c.v, c.n, sizeof(stmt), by_incl_desc);
        printf("\nfive largest statements:\n%-20s %-8s %-10s %-9s %8s %14s\n",
               "statement", "tenant", "party", "period", "sessions",
               "total incl VAT");
        for (size_t i = 0; i < c.n && i < 5; i++) {
                char a[40];
                printf("%-20s %-8s %-10s %-9s %8lld %10s %s\n", c.v[i].id,
                       c.v[i].tenant, c.v[i].party, c.v[i].period,
                       (long long)c.v[i].sessions,
                       amount(a, sizeof(a), c.v[i].incl, c.v[i].currency),
                       c.v[i].currency);
        }
        snprintf(path, sizeof(path), "%s/charge-report-2026-11.csv", dir);
        FILE *f = fopen(path, "w");
        if (f) {
                cf_report_write(&rep, CF_REPORT_CSV, f);
                fclose(f);
                printf("\ncharge report (by user, 2026-11): %s\n", path);
        }
        verify(dir, &c, rejected, dups);
        rc = 0;
done:
        for (size_t i = 0; i < c.n; i++) {
                free(c.v[i].id);
                free(c.v[i].tenant);
                free(c.v[i].party);
                free(c.v[i].period);
                free(c.v[i].currency);
        }
        free(c.v);
        json_decref(c.priced);
        json_decref(c.billed);
        json_decref(c.corrections);
        json_decref(c.revisions);
        json_decref(c.adjustments);
        json_decref(rejected);
        cf_arena_destroy(&c.a);
        cf_report_free(&rep);
        cf_registry_destroy(reg);
        return rc;
}

int cf_cmd_demo(int argc, char **argv)
{
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' },
                { "days", required_argument, NULL, 'n' },
                { "seed", required_argument, NULL, 's' },
                { "rate", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char dir[256] = "", self[512], days[24] = "45", seed[24] = "42",
             rate[24] = "70000";
        int64_t v;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        snprintf(dir, sizeof(dir), "%s", optarg);
                        break;
                case 'n':
                case 's':
                case 'r':
                        if (!cf_parse_i64(optarg, 1, 100000000, &v)) {
                                fprintf(stderr,
                                        "chargeflow demo: '%s' is not a "
                                        "positive integer\n",
                                        optarg);
                                return 2;
                        }
                        snprintf(c == 'n'   ? days
                                 : c == 's' ? seed
                                            : rate,
                                 24, "%lld", (long long)v);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (sl <= 0) {
                fprintf(stderr, "demo: cannot find my own binary\n");
                return 1;
        }
        self[sl] = '\0';
        if (!*dir) {
                snprintf(dir, sizeof(dir), "/tmp/chargeflow-demo-XXXXXX");
                if (!mkdtemp(dir)) {
                        fprintf(stderr, "demo: mkdtemp: %s\n", strerror(errno));
                        return 1;
                }
        } else if (mkdir(dir, 0755) && errno != EEXIST) {
                fprintf(stderr, "demo: --dir %s: %s\n", dir, strerror(errno));
                return 1;
        }
        char bs[300], props[300], truth[300], log[300], out[300], glog[300],
            blog[300], bootstrap[300];
        snprintf(bs, sizeof(bs), "%s/bootstrap", dir);
        snprintf(props, sizeof(props), "%s/demo.properties", dir);
        snprintf(truth, sizeof(truth), "%s/truth.jsonl", dir);
        snprintf(log, sizeof(log), "%s/pipeline.log", dir);
        snprintf(out, sizeof(out), "%s/summary.json", dir);
        snprintf(glog, sizeof(glog), "%s/gen.log", dir);
        snprintf(blog, sizeof(blog), "%s/broker.log", dir);
        printf("chargeflow demo in %s: broker, generator (small preset, "
               "%s days, every fault),\npipeline; logs there.\n",
               dir, days);
        fflush(stdout);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        signal(SIGPIPE, SIG_IGN);

        char *bargv[] = { self, "broker", "--bootstrap-file", bs, NULL };
        pid_t broker = cf_spawn(bargv, blog, NULL);
        bool up = false;
        for (int i = 0; i < 300 && !up; i++) {
                up = cf_read_bootstrap_file_quiet(bs, bootstrap,
                                                  sizeof(bootstrap));
                if (!up)
                        usleep(100000);
        }
        int rc = 1;
        pid_t gen = -1, run = -1;
        if (!up) {
                fprintf(stderr, "demo: the broker did not start (%s)\n", blog);
                goto stop;
        }
        FILE *f = fopen(props, "w");
        if (!f)
                goto stop;
        fprintf(f,
                "# written by chargeflow demo\n"
                "bootstrap.servers=%s\n"
                "state.dir=%s/state\n"
                "commit.interval.ms=500\n"
                "stats.interval.ms=10000\n"
                "idle.exit.ms=5000\n"
                "# The demo runs some 65,000 times faster than real time, so\n"
                "# 50 ms of skew between the two input topics is about an\n"
                "# hour of event time: the waits that absorb skew are longer\n"
                "# than a production system needs.\n"
                "orphan.wait.ms=86400000\n"
                "allowed.lateness.ms=3600000\n"
                "max.task.idle.ms=10000\n",
                bootstrap, dir);
        fclose(f);
        /* Every fault, the late data (issue 17) among them. */
        char *gargv[] = { self,
                          "gen",
                          "--preset",
                          "small",
                          "--seed",
                          seed,
                          "--days",
                          days,
                          "--faults",
                          "--late-data",
                          "--backfill-rate", /* a site at seed 42 */
                          "0.1",
                          "--rate",
                          rate,
                          "--truth",
                          truth,
                          "--bootstrap-file",
                          bs,
                          NULL };
        gen = cf_spawn(gargv, glog, NULL);
        /* The generator publishes the tables first; the pipeline reads them
         * whole before any input, so give them a moment. */
        usleep(1500000);
        char *rargv[] = { self, "run", "-c", props, "--until-idle", NULL };
        run = cf_spawn(rargv, out, log);
        printf("generating and processing...\n");
        fflush(stdout);
        int grc = wait_exit(gen);
        gen = -1;
        printf("generator done after %.1f s (exit %d); waiting for the "
               "pipeline to close every period...\n",
               since(&t0), grc);
        fflush(stdout);
        int rrc = wait_exit(run);
        run = -1;
        if (grc || rrc) {
                fprintf(stderr,
                        "demo: generator exit %d, pipeline exit %d: see %s "
                        "and %s\n",
                        grc, rrc, glog, log);
                goto stop;
        }
        rc = summarize(dir, bootstrap, since(&t0));
stop:
        if (gen > 0) {
                kill(gen, SIGTERM);
                wait_exit(gen);
        }
        if (run > 0) {
                kill(run, SIGTERM);
                wait_exit(run);
        }
        kill(broker, SIGTERM);
        wait_exit(broker);
        return rc;
}
