/*
 * bench_cmd.c: `chargeflow bench`, the benchmarks ops size the system by,
 * in one command and one run on one machine (see bench/README.md).
 *
 * It starts the embedded broker, loads the same generated input (a preset
 * with every fault) into it and into a record file, and then measures, each
 * --runs times (interleaved, so that drift of the machine touches all
 * alike):
 *   1. the ceiling: bench_ceiling, a plain librdkafka consumer reading the
 *      input topics and discarding them;
 *   2. the pipeline end to end: `chargeflow run --until-idle` from the input
 *      topics to the output topics, with the delivery guarantee on, a fresh
 *      state directory and group each run;
 *   3. the stage chain in process: bench_chain on the record file;
 *   4. RocksDB alone: bench_state's raw write loop with the pipeline's own
 *      batch and value sizes;
 *   5. latency: a live run (a second broker, the generator paced at a
 *      quarter of the pipeline's median speed) with bench_latency timing
 *      each charge record against the last input record of its session.
 * With --cost it also runs the pipeline exactly-once (with its task log and
 * without it, task.log=off) and at-least-once at commit.interval.ms 100 and
 * 1000 (the cost of the guarantee, and of the task log);
 * with --scale the stage chain at the small, city and country presets'
 * state sizes (memory bounded while users grow 1,000-fold); with --cores
 * also, after each of those runs, the chain as one process per core, each
 * taking its share of the partitions as the processes of a group do.
 *
 * Every child is a separate process: its CPU time and peak RSS come from
 * wait4(). Results: a table on stdout, and in --out (bench/results of the
 * source tree by default) a JSON file with the machine and the commit, a
 * Markdown table, and PNG charts drawn by gnuplot when it is installed
 * (the .dat and .gp files are kept either way).
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "brokers.h"
#include "cli.h"
#include "kafka.h"
#include "log.h"

#ifndef CF_SOURCE_DIR
#define CF_SOURCE_DIR "."
#endif

#define MAX_RUNS 32

/* ---- samples ------------------------------------------------------------ */

typedef struct samples {
        double v[MAX_RUNS];
        int n;
} samples;

static void add(samples *s, double x)
{
        if (s->n < MAX_RUNS)
                s->v[s->n++] = x;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* Median (mean of the middle two for an even count), min, max. */
static void stats(const samples *s, double *med, double *mn, double *mx)
{
        double v[MAX_RUNS];
        if (!s->n) {
                *med = *mn = *mx = NAN;
                return;
        }
        memcpy(v, s->v, (size_t)s->n * sizeof(double));
        qsort(v, (size_t)s->n, sizeof(double), cmp_d);
        *med = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
        *mn = v[0];
        *mx = v[s->n - 1];
}

static double median(const samples *s)
{
        double m, a, b;
        stats(s, &m, &a, &b);
        return m;
}

static json_t *jstats(const samples *s)
{
        double m, a, b;
        stats(s, &m, &a, &b);
        json_t *runs = json_array();
        for (int i = 0; i < s->n; i++)
                json_array_append_new(runs, json_real(s->v[i]));
        return json_pack("{s:f,s:f,s:f,s:o}", "median", isnan(m) ? -1 : m,
                         "min", isnan(a) ? -1 : a, "max", isnan(b) ? -1 : b,
                         "runs", runs);
}

/* ---- processes ---------------------------------------------------------- */

static char self[PATH_MAX], bindir[PATH_MAX], work[PATH_MAX];
static struct timespec t_begin;

static double elapsed(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - t_begin.tv_sec) +
               (double)(t.tv_nsec - t_begin.tv_nsec) / 1e9;
}

static void progress(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[%4.0f s] ", elapsed());
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* Waits for pid; its exit code (-1 if killed), CPU seconds and peak RSS in
 * MiB. */
static int wait_child(pid_t pid, double *cpu, double *rss_mib)
{
        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        return -1;
        if (cpu)
                *cpu = (double)ru.ru_utime.tv_sec +
                       (double)ru.ru_utime.tv_usec / 1e6 +
                       (double)ru.ru_stime.tv_sec +
                       (double)ru.ru_stime.tv_usec / 1e6;
        if (rss_mib)
                *rss_mib = (double)ru.ru_maxrss / 1024.0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* snprintf for paths and scripts: a result too long for buf is cut (the
 * buffers are far larger than what is put in them). */
__attribute__((format(printf, 3, 4))) static void sfmt(char *buf, size_t n,
                                                       const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, n, fmt, ap);
        va_end(ap);
}

static void path(char *buf, size_t n, const char *fmt, ...)
{
        va_list ap;
        int k = snprintf(buf, n, "%s/", work);
        va_start(ap, fmt);
        vsnprintf(buf + k, n - (size_t)k, fmt, ap);
        va_end(ap);
}

static void rm_rf(const char *p)
{
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
        if (system(cmd) != 0)
                fprintf(stderr, "chargeflow bench: could not remove %s\n", p);
}

/* The last line of a file that parses as a JSON object, or NULL. */
static json_t *last_json(const char *file)
{
        FILE *f = fopen(file, "r");
        char line[8192];
        json_t *last = NULL;
        if (!f)
                return NULL;
        while (fgets(line, sizeof(line), f)) {
                json_t *j = json_loads(line, 0, NULL);
                if (j && json_is_object(j)) {
                        json_decref(last);
                        last = j;
                } else
                        json_decref(j);
        }
        fclose(f);
        return last;
}

static double jnum(json_t *o, const char *p1, const char *p2)
{
        json_t *v = json_object_get(o, p1);
        if (p2)
                v = json_object_get(v, p2);
        return json_number_value(v);
}

static bool file_has(const char *file, const char *needle)
{
        FILE *f = fopen(file, "r");
        char line[4096];
        bool found = false;
        while (f && !found && fgets(line, sizeof(line), f))
                found = strstr(line, needle) != NULL;
        if (f)
                fclose(f);
        return found;
}

static void show_tail(const char *file)
{
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "tail -n 5 '%s' >&2", file);
        if (system(cmd) != 0)
                return;
}

/* ---- the broker and the input ------------------------------------------- */

typedef struct opts {
        cf_broker_kind broker; /* --broker */
        char peer[PATH_MAX];   /* the peer binary */
        const char *external;  /* bootstrap of an external cluster */
        const char *preset;
        int runs, days, partitions, lat_days;
        double lat_rate;
        bool quick, cost, scale, cores, keep;
        const char *out_dir;
} opts;

/* Starts the broker the bench runs on (--broker), its log named after
 * name; fills b. Returns false, having said why, on failure. */
static bool broker_start(const opts *o, const char *name, cf_broker *b)
{
        char log[PATH_MAX], errstr[512];
        path(log, sizeof(log), "%s.log", name);
        if (cf_broker_start(b, o->broker, self, o->peer, o->external,
                            o->partitions, log, errstr, sizeof(errstr))) {
                fprintf(stderr, "chargeflow bench: %s\n", errstr);
                return false;
        }
        return true;
}

/* Runs `chargeflow gen` with the preset, seed and faults, to the broker or
 * to a file, paced or not. */
static int gen(const char *preset, int seed, int days, const char *bootstrap,
               const char *file, int partitions, double rate, const char *log)
{
        char sd[16], dd[16], pp[16], rr[32];
        snprintf(sd, sizeof(sd), "%d", seed);
        snprintf(dd, sizeof(dd), "%d", days);
        snprintf(pp, sizeof(pp), "%d", partitions);
        snprintf(rr, sizeof(rr), "%.0f", rate);
        char *argv[20];
        int k = 0;
        argv[k++] = self;
        argv[k++] = "gen";
        argv[k++] = "--preset";
        argv[k++] = (char *)preset;
        argv[k++] = "--seed";
        argv[k++] = sd;
        argv[k++] = "--faults";
        argv[k++] = "--days";
        argv[k++] = dd;
        if (file) {
                argv[k++] = "--out";
                argv[k++] = (char *)file;
                argv[k++] = "--partitions";
                argv[k++] = pp;
        } else {
                argv[k++] = "--bootstrap";
                argv[k++] = (char *)bootstrap;
        }
        if (rate > 0) {
                argv[k++] = "--rate";
                argv[k++] = rr;
        }
        argv[k] = NULL;
        int rc = wait_child(cf_spawn(argv, log, NULL), NULL, NULL);
        if (rc != 0) {
                fprintf(stderr, "chargeflow bench: gen failed (%s):\n", log);
                show_tail(log);
        }
        return rc;
}

/* Counts the input records on the broker, and checks that none was
 * dropped (the embedded broker keeps about 5 MiB per partition). */
static int check_input(const char *bootstrap, int64_t *events)
{
        static const char *const topics[] = { "charging.sessions",
                                              "charging.meter", "billing.sites",
                                              "billing.users" };
        char errstr[512];
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, sizeof(errstr));
        rd_kafka_t *rk =
            conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))
                 : NULL;
        if (!rk) {
                fprintf(stderr, "chargeflow bench: %s\n", errstr);
                return 1;
        }
        int rc = 0;
        *events = 0;
        for (int t = 0; t < 4 && !rc; t++) {
                int np = 0;
                if (cf_kafka_partition_count(rk, topics[t], 10000, &np, errstr,
                                             sizeof(errstr))) {
                        fprintf(stderr, "chargeflow bench: %s\n", errstr);
                        rc = 1;
                }
                for (int p = 0; p < np && !rc; p++) {
                        int64_t lo, hi;
                        if (rd_kafka_query_watermark_offsets(rk, topics[t], p,
                                                             &lo, &hi, 10000)) {
                                fprintf(stderr,
                                        "chargeflow bench: offsets of %s "
                                        "[%d]\n",
                                        topics[t], p);
                                rc = 1;
                        } else if (lo > 0) {
                                fprintf(stderr,
                                        "chargeflow bench: the embedded "
                                        "broker dropped the oldest %lld "
                                        "records of %s [%d] (it keeps about "
                                        "5 MiB per partition): use fewer "
                                        "--days or more --partitions\n",
                                        (long long)lo, topics[t], p);
                                rc = 2;
                        } else if (t < 2)
                                *events += hi;
                }
        }
        rd_kafka_destroy(rk);
        return rc;
}

/* ---- the measurements --------------------------------------------------- */

typedef struct pipe_res {
        double eps, cpu_per_m, rss, writes_per_event, state_bytes_per_event,
            disk_bytes_per_event, startup_s, drain_s, batch_entries,
            entry_bytes;
        int64_t events;
        /* stats lines: time (s from the first), records in, lag */
        double *ts, *in, *lag;
        int ns;
} pipe_res;

/* The run's throughput and lag over time, from its stats lines. */
static void parse_series(const char *log, pipe_res *r)
{
        FILE *f = fopen(log, "r");
        char line[4096];
        int64_t t0 = -1, in_s = 0;
        int cap = 0;
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                const char *p;
                long long a, b;
                if ((p = strstr(line, "stats charging.sessions: in ")) &&
                    sscanf(p + 28, "%lld", &a) == 1)
                        in_s = a;
                else if ((p = strstr(line, "stats charging.meter: in ")) &&
                         sscanf(p + 25, "%lld", &a) == 1) {
                        int64_t t = cf_log_line_ms(line);
                        if (t < 0)
                                continue;
                        if (t0 < 0)
                                t0 = t;
                        if (r->ns == cap) {
                                cap = cap ? cap * 2 : 256;
                                r->ts = realloc(r->ts, (size_t)cap * 8);
                                r->in = realloc(r->in, (size_t)cap * 8);
                                r->lag = realloc(r->lag, (size_t)cap * 8);
                        }
                        r->ts[r->ns] = (double)(t - t0) / 1000.0;
                        r->in[r->ns] = (double)(in_s + a);
                        r->lag[r->ns] = 0;
                        r->ns++;
                } else if ((p = strstr(line,
                                       "stats lag: charging.sessions ")) &&
                           r->ns &&
                           sscanf(p + 29, "%lld, charging.meter %lld", &a,
                                  &b) == 2)
                        r->lag[r->ns - 1] = (double)(a + b);
        }
        fclose(f);
}

/* The files of one `chargeflow run` of the work directory, named after
 * tag: its configuration, state directory, stdout (the summary) and log. */
typedef struct run_files {
        char cfg[PATH_MAX], sd[PATH_MAX], out[PATH_MAX], log[PATH_MAX];
} run_files;

/* Writes tag's configuration: the broker, its own state directory and
 * consumer group, then the extra lines. */
static int run_config(const char *tag, const char *bootstrap, const char *extra,
                      run_files *rf)
{
        path(rf->cfg, sizeof(rf->cfg), "%s.properties", tag);
        path(rf->sd, sizeof(rf->sd), "%s.state", tag);
        path(rf->out, sizeof(rf->out), "%s.json", tag);
        path(rf->log, sizeof(rf->log), "%s.log", tag);
        FILE *f = fopen(rf->cfg, "w");
        if (!f)
                return 1;
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s\ngroup.id=bench-%s-%d\n"
                "%s",
                bootstrap, rf->sd, tag, (int)getpid(), extra);
        return fclose(f) != 0;
}

/* settings: configuration lines ("processing.guarantee=..."). Every run
 * starts from nothing: with an empty state directory a process would
 * restore the tasks from the task logs a run before wrote, so each run
 * has task logs of its own (`topics create` makes them; the embedded
 * broker serves no CreateTopics, and runs there write none: task.log=off,
 * the numbers say so). */
static int pipeline_run(const opts *o, const char *bootstrap, const char *tag,
                        const char *settings, int commit_ms, pipe_res *r)
{
        run_files rf;
        char extra[1024], logs[512];
        if (o->broker == CF_BROKER_MOCK) {
                snprintf(logs, sizeof(logs), "task.log=off\n");
        } else {
                char rl[160], bl[160], parts[16], tl[PATH_MAX];
                snprintf(rl, sizeof(rl), "topic.rating-log=bench.%s.rating-log",
                         tag);
                snprintf(bl, sizeof(bl),
                         "topic.billing-log=bench.%s.billing-log", tag);
                snprintf(parts, sizeof(parts), "%d", o->partitions);
                path(tl, sizeof(tl), "%s.topics.log", tag);
                char *mk[] = { self,
                               "topics",
                               "create",
                               "--bootstrap",
                               (char *)bootstrap,
                               "--partitions",
                               parts,
                               "--retention-ms",
                               "-1",
                               "--set",
                               rl,
                               "--set",
                               bl,
                               NULL };
                if (wait_child(cf_spawn(mk, "/dev/null", tl), NULL, NULL)) {
                        fprintf(stderr,
                                "chargeflow bench: task logs of %s not "
                                "made (%s)\n",
                                tag, tl);
                        return 1;
                }
                snprintf(logs, sizeof(logs), "%s\n%s\n", rl, bl);
        }
        snprintf(extra, sizeof(extra),
                 "%s%scommit.interval.ms=%d\nstats.interval.ms=100\n", settings,
                 logs, commit_ms);
        if (run_config(tag, bootstrap, extra, &rf))
                return 1;
        char *cfg = rf.cfg, *sd = rf.sd, *out = rf.out, *log = rf.log;
        char *argv[] = { self, "run", "-c", cfg, "--until-idle", NULL };
        double cpu, rss;
        memset(r, 0, sizeof(*r));
        int rc = wait_child(cf_spawn(argv, out, log), &cpu, &rss);
        json_t *j = last_json(out);
        if (rc != 0 || !j) {
                fprintf(stderr, "chargeflow bench: run %s failed (%s):\n", tag,
                        log);
                show_tail(log);
                json_decref(j);
                return 1;
        }
        json_t *in = json_object_get(j, "inputs");
        r->events = (int64_t)(jnum(in, "charging.sessions", "in") +
                              jnum(in, "charging.meter", "in"));
        double first = jnum(j, "timing", "first_input_ms"),
               last = jnum(j, "timing", "last_processed_ms");
        double ev = (double)r->events;
        r->eps = last > first ? ev / ((last - first) / 1000.0) : NAN;
        r->startup_s = first / 1000.0;
        r->drain_s = (jnum(j, "timing", "total_ms") - last) / 1000.0;
        r->cpu_per_m = cpu / (ev / 1e6);
        r->rss = rss;
        /* The input's cost: the tables' load before it is left out (at
         * city 211,928 entries, more than twice what a day of input
         * writes). */
        double batches = jnum(j, "state_writes", "batches") -
                         jnum(j, "state_writes_before_input", "batches"),
               entries = jnum(j, "state_writes", "entries") -
                         jnum(j, "state_writes_before_input", "entries"),
               bytes = jnum(j, "state_writes", "bytes") -
                       jnum(j, "state_writes_before_input", "bytes");
        r->writes_per_event = entries / ev;
        r->state_bytes_per_event = bytes / ev;
        double disk = jnum(j, "disk_write_bytes", NULL),
               disk0 = jnum(j, "disk_write_bytes_before_input", NULL);
        r->disk_bytes_per_event =
            disk >= 0 && disk0 >= 0 ? (disk - disk0) / ev : -1;
        r->batch_entries = batches > 0 ? entries / batches : 0;
        r->entry_bytes = entries > 0 ? bytes / entries : 0;
        parse_series(log, r);
        json_decref(j);
        if (!o->keep)
                rm_rf(sd);
        return 0;
}

static int child_json(char *const argv[], const char *tag, json_t **out,
                      double *cpu, double *rss)
{
        char o[PATH_MAX], e[PATH_MAX];
        path(o, sizeof(o), "%s.json", tag);
        path(e, sizeof(e), "%s.log", tag);
        int rc = wait_child(cf_spawn(argv, o, e), cpu, rss);
        *out = last_json(o);
        if (rc != 0 || !*out) {
                fprintf(stderr, "chargeflow bench: %s failed (%s):\n", tag, e);
                show_tail(e);
                json_decref(*out);
                *out = NULL;
                return 1;
        }
        return 0;
}

/* The stage chain as n processes started together, the k-th taking the
 * input partitions p with p % n == k (bench_chain --part k/n), as the
 * processes of one group would: events/s over the window from the first
 * one's first event to the last one's end (one monotonic clock), and the
 * sum of their peak RSS. */
static int chain_group(const char *hbin, const char *file, int n,
                       const char *tag, double *eps, double *rss_sum)
{
        pid_t pid[64];
        char o[64][PATH_MAX], e[PATH_MAX], part[64][32];
        double first = 0, end = 0, events = 0;
        int rc = 0;
        *rss_sum = 0;
        for (int k = 0; k < n; k++) {
                snprintf(part[k], sizeof(part[k]), "%d/%d", k, n);
                path(o[k], sizeof(o[k]), "%s-%d.json", tag, k);
                path(e, sizeof(e), "%s-%d.log", tag, k);
                char *argv[] = { (char *)hbin, "--json", (char *)file,
                                 "1",          "1000",   "exactly_once",
                                 "--part",     part[k],  NULL };
                pid[k] = cf_spawn(argv, o[k], e);
        }
        for (int k = 0; k < n; k++) {
                double rss = 0;
                if (wait_child(pid[k], NULL, &rss) != 0)
                        rc = 1;
                *rss_sum += rss;
        }
        for (int k = 0; k < n && !rc; k++) {
                json_t *j = last_json(o[k]);
                if (!j) {
                        rc = 1;
                        break;
                }
                double ev = jnum(j, "events", NULL);
                double f = jnum(j, "mono_first", NULL);
                double t = jnum(j, "mono_end", NULL);
                json_decref(j);
                if (ev <= 0)
                        continue; /* no partition of its own */
                events += ev;
                if (first == 0 || f < first)
                        first = f;
                if (t > end)
                        end = t;
        }
        if (rc || end <= first) {
                fprintf(stderr,
                        "chargeflow bench: %s failed (see %s/%s-*.log)\n", tag,
                        work, tag);
                return 1;
        }
        *eps = events / (end - first);
        return 0;
}

typedef struct lat_res {
        double p50, p99;
        int64_t samples;
} lat_res;

/* A live run on a broker of its own: the latency consumer, the pipeline
 * (committing every commit_ms) and the paced generator together. */
static int latency_run(const opts *o, int i, int commit_ms, double rate,
                       lat_res *r)
{
        char name[48], tag[64], glog[PATH_MAX], extra[128];
        snprintf(name, sizeof(name), "lat%d-%d-broker", i, commit_ms);
        cf_broker b;
        if (!broker_start(o, name, &b))
                return 1;
        char *bootstrap = b.bootstrap;
        char lo[PATH_MAX], le[PATH_MAX];
        snprintf(tag, sizeof(tag), "lat%d-%d-consumer", i, commit_ms);
        path(lo, sizeof(lo), "%s.json", tag);
        path(le, sizeof(le), "%s.log", tag);
        char lbin[PATH_MAX];
        sfmt(lbin, sizeof(lbin), "%s/bench_latency", bindir);
        char *largv[] = { lbin, "--bootstrap", bootstrap, NULL };
        pid_t lc = cf_spawn(largv, lo, le);
        /* The pipeline first (it waits for the topics' data), then the
         * generator. */
        snprintf(tag, sizeof(tag), "lat%d-%d-run", i, commit_ms);
        snprintf(extra, sizeof(extra),
                 "stats.interval.ms=1000\nidle.exit.ms=5000\n"
                 "commit.interval.ms=%d\n",
                 commit_ms);
        run_files rf;
        if (run_config(tag, bootstrap, extra, &rf))
                return 1;
        char *cfg = rf.cfg, *sd = rf.sd, *out = rf.out, *log = rf.log;
        char *rargv[] = { self, "run", "-c", cfg, "--until-idle", NULL };
        pid_t run = cf_spawn(rargv, out, log);
        /* Traffic starts once the pipeline has its partitions: start-up is
         * not latency (it is reported apart). */
        for (int w = 0; w < 600 && !file_has(log, "assigned"); w++)
                usleep(100000);
        path(glog, sizeof(glog), "lat%d-%d-gen.log", i, commit_ms);
        int rc = gen(o->preset, 2, o->lat_days, bootstrap, NULL, 0, rate, glog);
        int rrc = wait_child(run, NULL, NULL);
        sleep(1);
        kill(lc, SIGTERM);
        wait_child(lc, NULL, NULL);
        cf_broker_stop(&b);
        json_t *j = last_json(lo);
        if (rc || rrc || !j) {
                fprintf(stderr,
                        "chargeflow bench: latency run %d failed (%s, "
                        "%s)\n",
                        i, log, le);
                show_tail(log);
                json_decref(j);
                return 1;
        }
        r->p50 = jnum(j, "p50_ms", NULL);
        r->p99 = jnum(j, "p99_ms", NULL);
        r->samples = (int64_t)jnum(j, "samples", NULL);
        json_decref(j);
        if (!o->keep)
                rm_rf(sd);
        return 0;
}

/* ---- output ------------------------------------------------------------- */

static void machine(json_t *res)
{
        char model[256] = "unknown", line[512];
        FILE *f = fopen("/proc/cpuinfo", "r");
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, "model name", 10)) {
                        char *p = strchr(line, ':');
                        if (p) {
                                snprintf(model, sizeof(model), "%s", p + 2);
                                model[strcspn(model, "\n")] = '\0';
                        }
                        break;
                }
        if (f)
                fclose(f);
        struct utsname u;
        uname(&u);
        long mem = sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 20;
        json_object_set_new(res, "machine",
                            json_pack("{s:i,s:s,s:s,s:I}", "cores",
                                      (int)sysconf(_SC_NPROCESSORS_ONLN),
                                      "model", model, "kernel", u.release,
                                      "memory_mib", (json_int_t)mem));
        char commit[64] = "unknown";
        FILE *p = popen("git -C '" CF_SOURCE_DIR "' rev-parse --short HEAD "
                        "2>/dev/null",
                        "r");
        if (p && fgets(commit, sizeof(commit), p))
                commit[strcspn(commit, "\n")] = '\0';
        if (p)
                pclose(p);
        p = popen("git -C '" CF_SOURCE_DIR "' status --porcelain "
                  "--untracked-files=no 2>/dev/null | head -1",
                  "r");
        if (p && fgets(line, sizeof(line), p))
                strncat(commit, "-dirty", sizeof(commit) - strlen(commit) - 1);
        if (p)
                pclose(p);
        json_object_set_new(res, "commit", json_string(commit));
}

static void plot(const char *base, const char *dat, const char *gp_text)
{
        char gp[PATH_MAX], png[PATH_MAX], cmd[PATH_MAX * 2];
        sfmt(gp, sizeof(gp), "%s.gp", base);
        sfmt(png, sizeof(png), "%s.png", base);
        FILE *f = fopen(gp, "w");
        if (!f)
                return;
        fprintf(f,
                "set terminal pngcairo size 960,540 noenhanced\n"
                "set output '%s'\nset grid\nset key top right\n%s",
                png, gp_text);
        fprintf(f, "\n");
        fclose(f);
        (void)dat;
        snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>/dev/null", gp);
        if (system(cmd) == 0)
                progress("chart: %s", png);
        else {
                sfmt(cmd, sizeof(cmd),
                     "sed -i 's/pngcairo/png/' '%s' && "
                     "gnuplot '%s' 2>/dev/null",
                     gp, gp);
                if (system(cmd) == 0)
                        progress("chart: %s", png);
                else
                        progress("no chart (install gnuplot-nox); data and "
                                 "script: %s",
                                 gp);
        }
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow bench [--broker mock|peer|HOST:PORT] "
                "[--preset small|city|country]\n"
                "                        "
                "[--runs N] [--quick]\n"
                "                        [--days D] [--partitions P] [--cost] "
                "[--cores] "
                "[--scale] [--out DIR]\n"
                "                        [--keep]\n\n"
                "Measures, in one run on this machine: the ceiling (a plain "
                "consumer of the\ninput topics), the pipeline end to end "
                "with the delivery guarantee on, the\nstage chain in "
                "process, RocksDB alone, and the end-to-end latency; "
                "each\n--runs times. Prints a table and writes JSON, "
                "Markdown and charts to --out.\n\n"
                "  --broker B      mock (the embedded broker, default), "
                "peer (the independent\n"
                "                  peer broker, ../shared/kafka-peer or "
                "$CF_KAFKA_PEER), or\n"
                "                  host:port of a scratch cluster (its "
                "chargeflow topics are\n"
                "                  deleted and made anew)\n"
                "  --preset P      input preset (default small; country "
                "on the mock measures\n"
                "                  the stage chain only, as --scale "
                "does)\n"
                "  --runs N        runs of each measurement, 1..%d (default "
                "3)\n"
                "  --quick         a check in under 2 minutes: 1 run, 7 "
                "days of small\n"
                "  --days D        simulated days loaded (default: small 20, "
                "city and country 1)\n"
                "  --partitions P  partitions of every topic (default 16)\n"
                "  --cost          also: exactly_once (with and without its "
                "task log) against\n"
                "                  at_least_once at commit intervals of 100 "
                "and 1000 ms, and\n"
                "                  (not on the mock) with "
                "producer.fencing=transactions\n"
                "  --scale         also: the stage chain at the small, city "
                "and country\n"
                "                  presets' state sizes (throughput and peak "
                "RSS)\n"
                "  --cores         also (implies --scale): after each of those "
                "runs, the\n"
                "                  chain as one process per core, each taking "
                "its share of\n"
                "                  the partitions as in a group, started "
                "together\n"
                "  --out DIR       results directory (default %s/bench/"
                "results)\n"
                "  --keep          keep the work directory (state, logs, "
                "input)\n\n"
                "See bench/README.md for what each figure means.\n",
                MAX_RUNS, CF_SOURCE_DIR);
}

static void fmt_eps(char *b, size_t n, const samples *s)
{
        double m, a, x;
        stats(s, &m, &a, &x);
        if (isnan(m))
                snprintf(b, n, "-");
        else
                snprintf(b, n, "%.0fk (%.0fk-%.0fk)", m / 1e3, a / 1e3,
                         x / 1e3);
}

int cf_cmd_bench(int argc, char **argv)
{
        opts o = { .broker = CF_BROKER_MOCK,
                   .preset = "small",
                   .runs = 3,
                   .partitions = 16 };
        char outdir[PATH_MAX];
        snprintf(outdir, sizeof(outdir), "%s/bench/results", CF_SOURCE_DIR);
        o.out_dir = outdir;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                int64_t x;
                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return 0;
                } else if (!strcmp(a, "--quick"))
                        o.quick = true;
                else if (!strcmp(a, "--cost"))
                        o.cost = true;
                else if (!strcmp(a, "--scale"))
                        o.scale = true;
                else if (!strcmp(a, "--cores"))
                        o.scale = o.cores = true;
                else if (!strcmp(a, "--keep"))
                        o.keep = true;
                else if (!strcmp(a, "--broker") && v) {
                        if (!cf_broker_kind_parse(v, &o.broker) ||
                            o.broker == CF_BROKER_EXTERNAL) {
                                o.broker = CF_BROKER_EXTERNAL;
                                o.external = v;
                        }
                        i++;
                } else if (!strcmp(a, "--preset") && v) {
                        o.preset = v;
                        i++;
                } else if (!strcmp(a, "--out") && v) {
                        o.out_dir = v;
                        i++;
                } else if (!strcmp(a, "--runs") && v &&
                           cf_parse_i64(v, 1, MAX_RUNS, &x)) {
                        o.runs = (int)x;
                        i++;
                } else if (!strcmp(a, "--days") && v &&
                           cf_parse_i64(v, 1, 3660, &x)) {
                        o.days = (int)x;
                        i++;
                } else if (!strcmp(a, "--partitions") && v &&
                           cf_parse_i64(v, 1, 1024, &x)) {
                        o.partitions = (int)x;
                        i++;
                } else {
                        fprintf(stderr, "chargeflow bench: bad argument %s\n",
                                a);
                        usage(stderr);
                        return 2;
                }
        }
        bool country = !strcmp(o.preset, "country");
        if (strcmp(o.preset, "small") && strcmp(o.preset, "city") && !country) {
                fprintf(stderr, "chargeflow bench: --preset: small, city or "
                                "country\n");
                return 2;
        }
        if (o.broker == CF_BROKER_EXTERNAL && !strchr(o.external, ':')) {
                fprintf(stderr, "chargeflow bench: --broker: mock, peer or "
                                "host:port of a scratch cluster\n");
                return 2;
        }
        if (o.broker == CF_BROKER_PEER &&
            !cf_broker_peer_path(CF_SOURCE_DIR, o.peer, sizeof(o.peer))) {
                fprintf(stderr,
                        "chargeflow bench: --broker peer: no peer broker at "
                        "%s (set CF_KAFKA_PEER to its path)\n",
                        o.peer);
                return 2;
        }
        /* Only the stage chain at country on the embedded broker. */
        bool chain_only = country && o.broker == CF_BROKER_MOCK;
        if (chain_only && !o.scale) {
                /* A day of country traffic (about 15M records) does not fit
                 * the embedded broker: what can be measured is the stage
                 * chain at its state size, which --scale does. */
                fprintf(stderr,
                        "chargeflow bench: --preset country: a day of country "
                        "traffic (about 15M records) does not fit the "
                        "embedded broker (about 5 MiB per partition), so "
                        "only the stage chain is measured, at the small, "
                        "city and country presets' state sizes (--scale)\n");
                o.scale = true;
        }
        if (o.quick) {
                o.runs = 1;
                if (!o.days)
                        o.days = 7;
        }
        if (!o.days)
                o.days = !strcmp(o.preset, "small") ? 20 : 1;

        clock_gettime(CLOCK_MONOTONIC, &t_begin);
        ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (sl <= 0) {
                fprintf(stderr, "chargeflow bench: /proc/self/exe: %s\n",
                        strerror(errno));
                return 1;
        }
        self[sl] = '\0';
        snprintf(bindir, sizeof(bindir), "%s", self);
        char *slash = strrchr(bindir, '/');
        snprintf(slash, sizeof(bindir) - (size_t)(slash - bindir), "/bench");
        static const char *const progs[] = { "bench_ceiling", "bench_chain",
                                             "bench_state", "bench_latency" };
        for (int i = 0; i < 4; i++) {
                char p[PATH_MAX];
                sfmt(p, sizeof(p), "%s/%s", bindir, progs[i]);
                if (access(p, X_OK)) {
                        fprintf(stderr,
                                "chargeflow bench: %s is missing: build the "
                                "benchmarks (cmake --build build)\n",
                                p);
                        return 1;
                }
        }
        snprintf(work, sizeof(work), "/tmp/chargeflow-bench-XXXXXX");
        if (!mkdtemp(work)) {
                perror("chargeflow bench: mkdtemp");
                return 1;
        }
        if (mkdir(o.out_dir, 0755) && errno != EEXIST) {
                fprintf(stderr, "chargeflow bench: --out %s: %s\n", o.out_dir,
                        strerror(errno));
                return 2;
        }
        progress("work directory %s; preset %s, %d day(s), %d run(s), %d "
                 "partitions",
                 work, o.preset, o.days, o.runs, o.partitions);

        json_t *res = json_object();
        time_t now = time(NULL);
        char stamp[32], iso[32];
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime(&now));
        strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        machine(res);
        json_object_set_new(
            res, "run",
            json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:b}", "date", iso, "broker",
                      cf_broker_kind_name(o.broker), "preset", o.preset, "days",
                      o.days, "runs", o.runs, "partitions", o.partitions,
                      "quick", o.quick));
        int rc = 0;
        samples c_eps = { 0 }, c_cpu = { 0 }, c_rss = { 0 };
        samples p_eps = { 0 }, p_cpu = { 0 }, p_rss = { 0 }, p_wpe = { 0 },
                p_bpe = { 0 }, p_dpe = { 0 }, p_start = { 0 }, p_ratio = { 0 },
                p_be = { 0 }, p_eb = { 0 };
        samples h_eps = { 0 }, h_cpu = { 0 }, h_rss = { 0 }, h_wpe = { 0 },
                h_bpe = { 0 };
        samples r_puts = { 0 }, r_bps = { 0 };
        /* Latency at commit.interval.ms 1000 ([1]) and 100 ([0]). */
        samples l_p50[2], l_p99[2];
        memset(l_p50, 0, sizeof(l_p50));
        memset(l_p99, 0, sizeof(l_p99));
        samples cost[2][4];
        memset(cost, 0, sizeof(cost));
        double lat_rate = 0, scale_eps[3] = { 0 }, scale_rss[3] = { 0 };
        double group_eps[3] = { 0 }, group_ratio[3] = { 0 },
               group_rss[3] = { 0 };
        int ncores = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (ncores > 64)
                ncores = 64;
        int64_t events = 0;
        pipe_res chart = { 0 };
        cf_broker broker;
        memset(&broker, 0, sizeof(broker));
        char *bootstrap = broker.bootstrap;
        char file[PATH_MAX], log[PATH_MAX];

        if (!chain_only) {
                /* The input, on the broker and in a record file. */
                if (!broker_start(&o, "broker", &broker)) {
                        rc = 1;
                        goto out;
                }
                progress("broker at %s; generating %s, %d day(s), every "
                         "fault",
                         bootstrap, o.preset, o.days);
                path(log, sizeof(log), "gen-broker.log");
                path(file, sizeof(file), "input.cfgen");
                char flog[PATH_MAX];
                path(flog, sizeof(flog), "gen-file.log");
                if (gen(o.preset, 1, o.days, bootstrap, NULL, 0, 0, log) ||
                    gen(o.preset, 1, o.days, NULL, file, o.partitions, 0,
                        flog) ||
                    (rc = check_input(bootstrap, &events))) {
                        rc = rc ? rc : 1;
                        goto out;
                }
                progress("%lld input events on the broker", (long long)events);
                json_object_set_new(json_object_get(res, "run"), "events",
                                    json_integer((json_int_t)events));

                char cbin[PATH_MAX], hbin[PATH_MAX];
                sfmt(cbin, sizeof(cbin), "%s/bench_ceiling", bindir);
                sfmt(hbin, sizeof(hbin), "%s/bench_chain", bindir);
                int best = -1;
                double best_d = INFINITY;
                pipe_res pr[MAX_RUNS];
                memset(pr, 0, sizeof(pr));
                for (int i = 0; i < o.runs; i++) {
                        char tag[32];
                        json_t *j;
                        double cpu, rss;
                        /* 1. The ceiling. */
                        snprintf(tag, sizeof(tag), "ceiling%d", i);
                        char *cargv[] = { cbin, "--json", "--bootstrap",
                                          bootstrap, NULL };
                        if (child_json(cargv, tag, &j, &cpu, &rss)) {
                                rc = 1;
                                goto out;
                        }
                        double ce = jnum(j, "eps", NULL);
                        add(&c_eps, ce);
                        add(&c_cpu, jnum(j, "cpu_s_per_m", NULL));
                        add(&c_rss, rss);
                        json_decref(j);
                        progress("run %d/%d: ceiling %.0f events/s", i + 1,
                                 o.runs, ce);
                        /* 2. The pipeline end to end. */
                        snprintf(tag, sizeof(tag), "pipeline%d", i);
                        if (pipeline_run(&o, bootstrap, tag,
                                         "processing.guarantee=exactly_once\n",
                                         1000, &pr[i])) {
                                rc = 1;
                                goto out;
                        }
                        add(&p_eps, pr[i].eps);
                        add(&p_ratio, pr[i].eps / ce);
                        add(&p_cpu, pr[i].cpu_per_m);
                        add(&p_rss, pr[i].rss);
                        add(&p_wpe, pr[i].writes_per_event);
                        add(&p_bpe, pr[i].state_bytes_per_event);
                        add(&p_dpe, pr[i].disk_bytes_per_event);
                        add(&p_start, pr[i].startup_s);
                        add(&p_be, pr[i].batch_entries);
                        add(&p_eb, pr[i].entry_bytes);
                        progress("run %d/%d: pipeline %.0f events/s (%.2f of "
                                 "the ceiling), peak RSS %.0f MiB",
                                 i + 1, o.runs, pr[i].eps, pr[i].eps / ce,
                                 pr[i].rss);
                        /* 3. The stage chain in process. */
                        snprintf(tag, sizeof(tag), "chain%d", i);
                        char *hargv[] = { hbin,   "--json",       file, "1",
                                          "1000", "exactly_once", NULL };
                        if (child_json(hargv, tag, &j, &cpu, &rss)) {
                                rc = 1;
                                goto out;
                        }
                        double he = jnum(j, "eps", NULL);
                        add(&h_eps, he);
                        add(&h_cpu, jnum(j, "cpu_s_per_m", NULL));
                        add(&h_rss, rss);
                        add(&h_wpe, jnum(j, "writes_per_event", NULL));
                        add(&h_bpe, jnum(j, "state_bytes_per_event", NULL));
                        json_decref(j);
                        progress("run %d/%d: stage chain %.0f events/s", i + 1,
                                 o.runs, he);
                }
                /* The chart shows the run closest to the median. */
                double pm = median(&p_eps);
                for (int i = 0; i < o.runs; i++)
                        if (fabs(pr[i].eps - pm) < best_d) {
                                best_d = fabs(pr[i].eps - pm);
                                best = i;
                        }
                for (int i = 0; i < o.runs; i++)
                        if (i != best) {
                                free(pr[i].ts);
                                free(pr[i].in);
                                free(pr[i].lag);
                        }
                if (best >= 0)
                        chart = pr[best];

                /* The guarantee's cost: exactly once (with its task log,
                 * and without it) against at least once, at two commit
                 * intervals, interleaved. */
                if (o.cost) {
                        static const int cis[2] = { 100, 1000 };
                        /* The fenced run needs the task log: not on the
                         * embedded broker. */
                        static const char *const gs[4] = {
                                "exactly_once", "exactly_once-no-task-log",
                                "at_least_once", "exactly_once-fenced"
                        };
                        static const char *const gset[4] = {
                                "processing.guarantee=exactly_once\n",
                                "processing.guarantee=exactly_once\n"
                                "task.log=off\n",
                                "processing.guarantee=at_least_once\n",
                                "processing.guarantee=exactly_once\n"
                                "producer.fencing=transactions\n"
                        };
                        int ng = o.broker == CF_BROKER_MOCK ? 3 : 4;
                        for (int i = 0; i < o.runs; i++)
                                for (int c = 0; c < 2; c++)
                                        for (int g = 0; g < ng; g++) {
                                                char tag[48];
                                                pipe_res r;
                                                snprintf(tag, sizeof(tag),
                                                         "cost-%s-%d-%d", gs[g],
                                                         cis[c], i);
                                                if (pipeline_run(&o, bootstrap,
                                                                 tag, gset[g],
                                                                 cis[c], &r)) {
                                                        rc = 1;
                                                        goto out;
                                                }
                                                free(r.ts);
                                                free(r.in);
                                                free(r.lag);
                                                add(&cost[c][g], r.eps);
                                                progress("cost run %d/%d: %s "
                                                         "at %d ms: %.0f "
                                                         "events/s",
                                                         i + 1, o.runs, gs[g],
                                                         cis[c], r.eps);
                                        }
                        json_t *jc = json_array();
                        for (int c = 0; c < 2; c++) {
                                json_t *jo = json_pack(
                                    "{s:i,s:o,s:o,s:o,s:f,s:f}",
                                    "commit_interval_ms", cis[c],
                                    "exactly_once", jstats(&cost[c][0]),
                                    "exactly_once_no_task_log",
                                    jstats(&cost[c][1]), "at_least_once",
                                    jstats(&cost[c][2]), "ratio",
                                    median(&cost[c][0]) / median(&cost[c][2]),
                                    "task_log_ratio",
                                    median(&cost[c][0]) / median(&cost[c][1]));
                                if (ng == 4) {
                                        json_object_set_new(
                                            jo, "exactly_once_fenced",
                                            jstats(&cost[c][3]));
                                        json_object_set_new(
                                            jo, "fencing_ratio",
                                            json_real(median(&cost[c][3]) /
                                                      median(&cost[c][0])));
                                }
                                json_array_append_new(jc, jo);
                        }
                        json_object_set_new(res, "guarantee_cost", jc);
                }

                /* 4. RocksDB alone, with the pipeline's batch and value
                 * sizes. */
                char sbin[PATH_MAX], keys[32], vb[32], dir[PATH_MAX];
                sfmt(sbin, sizeof(sbin), "%s/bench_state", bindir);
                snprintf(keys, sizeof(keys), "%.0f",
                         fmax(1, round(median(&p_be))));
                snprintf(vb, sizeof(vb), "%.0f",
                         fmin(4000, fmax(16, round(median(&p_eb)) - 24)));
                snprintf(dir, sizeof(dir), "%s", work);
                char rr[16];
                snprintf(rr, sizeof(rr), "%d", o.runs);
                char *sargv[] = { sbin,     "--json",    "--runs",
                                  rr,       "--batches", "20",
                                  "--keys", keys,        "--value-bytes",
                                  vb,       "--dir",     dir,
                                  NULL };
                {
                        char so[PATH_MAX], se[PATH_MAX];
                        path(so, sizeof(so), "rocksdb.json");
                        path(se, sizeof(se), "rocksdb.log");
                        if (wait_child(cf_spawn(sargv, so, se), NULL, NULL)) {
                                fprintf(stderr,
                                        "chargeflow bench: bench_state "
                                        "failed (%s)\n",
                                        se);
                                rc = 1;
                                goto out;
                        }
                        FILE *f = fopen(so, "r");
                        char line[1024];
                        while (f && fgets(line, sizeof(line), f)) {
                                json_t *j = json_loads(line, 0, NULL);
                                if (j) {
                                        add(&r_puts,
                                            jnum(j, "puts_per_s", NULL));
                                        add(&r_bps,
                                            jnum(j, "bytes_per_s", NULL));
                                }
                                json_decref(j);
                        }
                        if (f)
                                fclose(f);
                }
                progress("RocksDB alone: %.0f puts/s of %s entries x %s B "
                         "values, synced",
                         median(&r_puts), keys, vb);

                /* 5. Latency, live, at a quarter of the pipeline's median
                 * speed (at most 50k events/s: the generator and the broker
                 * share the cores). */
                cf_broker_stop(&broker);
                lat_rate = fmax(5000, fmin(50000, round(pm / 4 / 1000) * 1000));
                /* About 20 s of traffic (12 with --quick). */
                double per_day = (double)events / o.days;
                o.lat_days = (int)fmax(
                    1, round((o.quick ? 12 : 20) * lat_rate / per_day));
                /* At commit.interval.ms 1000 and 100 in turn. */
                for (int i = 0; i < o.runs * 2; i++) {
                        lat_res lr;
                        int c = i % 2 ? 0 : 1, cms = c ? 1000 : 100;
                        progress("latency run %d/%d: %d day(s) at %.0f "
                                 "events/s, commit.interval.ms %d",
                                 i / 2 + 1, o.runs, o.lat_days, lat_rate, cms);
                        if (latency_run(&o, i / 2, cms, lat_rate, &lr)) {
                                rc = 1;
                                goto out;
                        }
                        add(&l_p50[c], lr.p50);
                        add(&l_p99[c], lr.p99);
                        progress("latency run %d/%d: p50 %.0f ms, p99 %.0f ms "
                                 "(%lld charge records)",
                                 i / 2 + 1, o.runs, lr.p50, lr.p99,
                                 (long long)lr.samples);
                }
                if (!o.keep)
                        unlink(file);
        }

        /* The stage chain at each preset's state size: throughput and
         * peak RSS while users, chargers and periods grow 1,000-fold. */
        if (o.scale) {
                static const char *const ps[3] = { "small", "city", "country" };
                static const int pdays[3] = { 20, 2, 1 };
                static const int users[3] = { 2000, 100000, 2000000 };
                char hbin[PATH_MAX];
                sfmt(hbin, sizeof(hbin), "%s/bench_chain", bindir);
                json_t *js = json_array();
                FILE *dat = NULL;
                char sdat[PATH_MAX];
                sfmt(sdat, sizeof(sdat), "%s/%s-%s-scale.dat", o.out_dir,
                     o.preset, stamp);
                dat = fopen(sdat, "w");
                if (dat)
                        fprintf(dat, "# users events_per_s peak_rss_mib\n");
                for (int k = 0; k < 3; k++) {
                        char sf[PATH_MAX], sgl[PATH_MAX];
                        path(sf, sizeof(sf), "scale-%s.cfgen", ps[k]);
                        path(sgl, sizeof(sgl), "scale-%s-gen.log", ps[k]);
                        progress("scale: generating %s, %d day(s)", ps[k],
                                 pdays[k]);
                        if (gen(ps[k], 1, pdays[k], NULL, sf, o.partitions, 0,
                                sgl)) {
                                rc = 1;
                                goto out;
                        }
                        samples se = { 0 }, sr = { 0 }, st = { 0 };
                        samples ge = { 0 }, gr = { 0 }, gq = { 0 };
                        double nev = 0;
                        /* Up to 3 runs (country: 12M events at about
                         * 175k events/s, a minute and a half each). */
                        int sruns = o.runs < 3 ? o.runs : 3;
                        for (int i = 0; i < sruns; i++) {
                                char tag[48];
                                json_t *j;
                                double cpu, rss;
                                snprintf(tag, sizeof(tag), "scale-%s-%d", ps[k],
                                         i);
                                char *hargv[] = { hbin,   "--json",
                                                  sf,     "1",
                                                  "1000", "exactly_once",
                                                  NULL };
                                if (child_json(hargv, tag, &j, &cpu, &rss)) {
                                        rc = 1;
                                        goto out;
                                }
                                add(&se, jnum(j, "eps", NULL));
                                add(&sr, rss);
                                add(&st, jnum(j, "table_secs", NULL));
                                nev = jnum(j, "events", NULL);
                                json_decref(j);
                                progress("scale: %s run %d/%d: %.0f events/s, "
                                         "peak RSS %.0f MiB",
                                         ps[k], i + 1, sruns, se.v[i], rss);
                                if (!o.cores || ncores < 2)
                                        continue;
                                /* Right after, in the same round: the
                                 * chain as ncores processes of a group. */
                                double geps, grss;
                                snprintf(tag, sizeof(tag), "cores-%s-%d", ps[k],
                                         i);
                                if (chain_group(hbin, sf, ncores, tag, &geps,
                                                &grss)) {
                                        rc = 1;
                                        goto out;
                                }
                                add(&ge, geps);
                                add(&gr, grss);
                                add(&gq, geps / se.v[i]);
                                progress("cores: %s run %d/%d: %d processes "
                                         "%.0f events/s, %.2f x one, peak "
                                         "RSS %.0f MiB together",
                                         ps[k], i + 1, sruns, ncores, geps,
                                         geps / se.v[i], grss);
                        }
                        if (!o.keep)
                                unlink(sf);
                        json_t *jk = json_pack(
                            "{s:s,s:i,s:i,s:f,s:o,s:o,s:o}", "preset", ps[k],
                            "users", users[k], "days", pdays[k], "events", nev,
                            "events_per_s", jstats(&se), "peak_rss_mib",
                            jstats(&sr), "table_load_s", jstats(&st));
                        if (ge.n)
                                json_object_set_new(
                                    jk, "processes",
                                    json_pack("{s:i,s:o,s:o,s:o}", "n", ncores,
                                              "events_per_s", jstats(&ge),
                                              "ratio_to_one", jstats(&gq),
                                              "peak_rss_mib_sum", jstats(&gr)));
                        json_array_append_new(js, jk);
                        if (dat)
                                fprintf(dat, "%d %.0f %.1f %.0f\n", users[k],
                                        median(&se), median(&sr),
                                        ge.n ? median(&ge) : 0.0);
                        scale_eps[k] = median(&se);
                        scale_rss[k] = median(&sr);
                        if (ge.n) {
                                group_eps[k] = median(&ge);
                                group_ratio[k] = median(&gq);
                                group_rss[k] = median(&gr);
                        }
                }
                json_object_set_new(res, "scale", js);
                if (dat) {
                        fclose(dat);
                        char gp[8192], sbase[PATH_MAX],
                            more[PATH_MAX + 128] = "";
                        if (group_eps[0] > 0)
                                sfmt(more, sizeof(more),
                                     ", '%s' using 1:4 with linespoints lw 2 "
                                     "title 'events/s, %d processes' axes "
                                     "x1y1",
                                     sdat, ncores);
                        sfmt(sbase, sizeof(sbase), "%s/%s-%s-scale", o.out_dir,
                             o.preset, stamp);
                        sfmt(gp, sizeof(gp),
                             "set title 'chargeflow stage chain by state size "
                             "(presets small, city, country)'\n"
                             "set logscale x\nset xlabel 'users'\n"
                             "set ylabel 'events/s'\nset y2label 'peak RSS "
                             "(MiB)'\nset ytics nomirror\nset y2tics\n"
                             "set yrange [0:*]\nset y2range [0:*]\n"
                             "plot '%s' using 1:2 with linespoints lw 2 "
                             "title 'events/s, 1 process' axes x1y1, '%s' "
                             "using 1:3 with linespoints lw 2 title 'peak "
                             "RSS, 1 process' axes x1y2%s\n",
                             sdat, sdat, more);
                        plot(sbase, sdat, gp);
                }
        }

        /* The results. */
        if (!chain_only) {
                json_object_set_new(
                    res, "ceiling",
                    json_pack("{s:o,s:o,s:o}", "events_per_s", jstats(&c_eps),
                              "cpu_s_per_million", jstats(&c_cpu),
                              "peak_rss_mib", jstats(&c_rss)));
                json_object_set_new(
                    res, "pipeline",
                    json_pack("{s:s,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                              "guarantee", "exactly_once", "commit_interval_ms",
                              1000, "events_per_s", jstats(&p_eps),
                              "ratio_to_ceiling", jstats(&p_ratio),
                              "cpu_s_per_million", jstats(&p_cpu),
                              "peak_rss_mib", jstats(&p_rss),
                              "rocksdb_writes_per_event", jstats(&p_wpe),
                              "rocksdb_bytes_per_event", jstats(&p_bpe),
                              "disk_bytes_per_event", jstats(&p_dpe),
                              "startup_s", jstats(&p_start)));
                json_object_set_new(
                    res, "latency",
                    json_pack("{s:f,s:i,s:i,s:o,s:o,s:{s:o,s:o}}",
                              "rate_events_per_s", lat_rate, "days", o.lat_days,
                              "commit_interval_ms", 1000, "p50_ms",
                              jstats(&l_p50[1]), "p99_ms", jstats(&l_p99[1]),
                              "commit_interval_100_ms", "p50_ms",
                              jstats(&l_p50[0]), "p99_ms", jstats(&l_p99[0])));
                json_object_set_new(
                    res, "chain",
                    json_pack("{s:o,s:o,s:o,s:o,s:o}", "events_per_s_per_core",
                              jstats(&h_eps), "cpu_s_per_million",
                              jstats(&h_cpu), "peak_rss_mib", jstats(&h_rss),
                              "rocksdb_writes_per_event", jstats(&h_wpe),
                              "rocksdb_bytes_per_event", jstats(&h_bpe)));
                json_object_set_new(res, "rocksdb",
                                    json_pack("{s:o,s:o,s:f,s:f}", "puts_per_s",
                                              jstats(&r_puts), "bytes_per_s",
                                              jstats(&r_bps), "batch_entries",
                                              median(&p_be), "entry_bytes",
                                              median(&p_eb)));
        }
        (void)h_wpe;
out:
        cf_broker_stop(&broker);
        if (rc == 0) {
                char base[PATH_MAX];
                /* Results on another broker than the embedded one say so
                 * in their name. */
                snprintf(base, sizeof(base), "%s/%s%s%s-%s", o.out_dir,
                         o.preset, o.broker == CF_BROKER_MOCK ? "" : "-",
                         o.broker == CF_BROKER_MOCK
                             ? ""
                             : cf_broker_kind_name(o.broker),
                         stamp);
                char jf[PATH_MAX];
                sfmt(jf, sizeof(jf), "%s.json", base);
                if (json_dump_file(res, jf,
                                   JSON_INDENT(2) | JSON_SORT_KEYS |
                                       JSON_REAL_PRECISION(6)))
                        fprintf(stderr, "chargeflow bench: cannot write %s\n",
                                jf);
                else
                        progress("results: %s", jf);
                if (chart.ns > 1) {
                        char dat[PATH_MAX], gp[4096];
                        sfmt(dat, sizeof(dat), "%s-pipeline.dat", base);
                        FILE *f = fopen(dat, "w");
                        if (f) {
                                fprintf(f, "# s  events_per_s  "
                                           "input_not_yet_processed\n");
                                for (int i = 1; i < chart.ns; i++) {
                                        double dt =
                                            chart.ts[i] - chart.ts[i - 1];
                                        fprintf(
                                            f, "%.3f %.0f %.0f\n", chart.ts[i],
                                            dt > 0 ? (chart.in[i] -
                                                      chart.in[i - 1]) /
                                                         dt
                                                   : 0,
                                            (double)chart.events - chart.in[i]);
                                }
                                fclose(f);
                                char pbase[PATH_MAX];
                                sfmt(pbase, sizeof(pbase), "%s-pipeline", base);
                                sfmt(gp, sizeof(gp),
                                     "set title 'chargeflow pipeline, %s "
                                     "preset, %lld events (median run)'\n"
                                     "set xlabel 'seconds since the first "
                                     "stats line'\n"
                                     "set ylabel 'events/s processed'\n"
                                     "set y2label 'lag: input records not "
                                     "yet processed'\n"
                                     "set ytics nomirror\nset y2tics\n"
                                     "plot '%s' using 1:2 with lines lw 2 "
                                     "title 'events/s' axes x1y1, '%s' using "
                                     "1:3 with lines lw 2 title 'lag' axes "
                                     "x1y2\n",
                                     o.preset, (long long)events, dat, dat);
                                plot(pbase, dat, gp);
                        }
                }
        }
        char mdpath[PATH_MAX];
        /* Named like the JSON: the broker's name after the preset's when
         * it is not the embedded one. */
        sfmt(mdpath, sizeof(mdpath), "%s/%s%s%s-%s.md", o.out_dir, o.preset,
             o.broker == CF_BROKER_MOCK ? "" : "-",
             o.broker == CF_BROKER_MOCK ? "" : cf_broker_kind_name(o.broker),
             stamp);
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
                FILE *out = pass ? fopen(mdpath, "w") : stdout;
                if (!out)
                        break;
                json_t *mj = json_object_get(res, "machine");
                fprintf(out,
                        "\n%s, commit %s, %d cores (%s), `chargeflow bench "
                        "--broker %s --preset %s --days %d --runs "
                        "%d%s%s%s%s`\n",
                        iso, json_string_value(json_object_get(res, "commit")),
                        (int)json_integer_value(json_object_get(mj, "cores")),
                        json_string_value(json_object_get(mj, "model")),
                        cf_broker_kind_name(o.broker), o.preset, o.days, o.runs,
                        o.quick ? " --quick" : "", o.cost ? " --cost" : "",
                        o.scale ? " --scale" : "", o.cores ? " --cores" : "");
                if (rc == 0 && !chain_only) {
                        char e1[64], e2[64], e3[64];
                        fmt_eps(e1, sizeof(e1), &c_eps);
                        fmt_eps(e2, sizeof(e2), &p_eps);
                        fmt_eps(e3, sizeof(e3), &h_eps);
                        fprintf(
                            out,
                            "\nchargeflow bench: %s preset, %lld events, %d "
                            "run(s); medians (min-max)\n\n",
                            o.preset, (long long)events, o.runs);
                        fprintf(
                            out,
                            "| measure | events/s | / ceiling | CPU s per M "
                            "events | peak RSS MiB | RocksDB writes/event | "
                            "RocksDB bytes/event |\n");
                        fprintf(out, "|---|---|---|---|---|---|---|\n");
                        fprintf(out,
                                "| ceiling (plain consumer) | %s | 1 | %.3f | "
                                "%.0f | "
                                "- | - |\n",
                                e1, median(&c_cpu), median(&c_rss));
                        fprintf(
                            out,
                            "| pipeline end to end, exactly once | %s | %.2f | "
                            "%.3f | %.0f | %.4f | %.1f |\n",
                            e2, median(&p_ratio), median(&p_cpu),
                            median(&p_rss), median(&p_wpe), median(&p_bpe));
                        fprintf(out,
                                "| stage chain in process, 1 core | %s | - | "
                                "%.3f | "
                                "%.0f | %.4f | %.1f |\n",
                                e3, median(&h_cpu), median(&h_rss),
                                median(&h_wpe), median(&h_bpe));
                        fprintf(out,
                                "\nlatency, session input to charge record, "
                                "live at %.0f events/s: p50 %.0f ms, p99 "
                                "%.0f ms at commit.interval.ms 1000; p50 "
                                "%.0f ms, p99 %.0f ms at 100\n",
                                lat_rate, median(&l_p50[1]), median(&l_p99[1]),
                                median(&l_p50[0]), median(&l_p99[0]));
                        fprintf(
                            out,
                            "RocksDB alone: %.0f puts/s (%.1f MB/s) in batches "
                            "of "
                            "%.0f entries of %.0f B, synced: the pipeline's "
                            "state writes alone would allow %.0fk events/s\n",
                            median(&r_puts), median(&r_bps) / 1e6,
                            median(&p_be), median(&p_eb),
                            median(&r_bps) / median(&p_bpe) / 1e3);
                        fprintf(
                            out,
                            "pipeline start-up (process start to first input "
                            "record): %.1f s\n",
                            median(&p_start));
                }
                if (rc == 0 && o.cost) {
                        fprintf(
                            out,
                            "\nthe guarantee's cost, pipeline end to end "
                            "(medians, events/s%s):\n\n| commit.interval.ms | "
                            "exactly_once | without task log | "
                            "at_least_once | task log ratio | "
                            "guarantee ratio |\n|---|---|---|---|---|---|\n",
                            o.broker == CF_BROKER_MOCK
                                ? "; on the embedded broker every run has "
                                  "task.log=off: it makes no task logs"
                                : "");
                        for (int c = 0; c < 2; c++)
                                fprintf(
                                    out,
                                    "| %d | %.0f | %.0f | %.0f | %.2f | "
                                    "%.2f |\n",
                                    c ? 1000 : 100, median(&cost[c][0]),
                                    median(&cost[c][1]), median(&cost[c][2]),
                                    median(&cost[c][0]) / median(&cost[c][1]),
                                    median(&cost[c][0]) / median(&cost[c][2]));
                        if (o.broker != CF_BROKER_MOCK) {
                                fprintf(out,
                                        "\nwith producer.fencing=transactions "
                                        "(medians, events/s):\n\n| "
                                        "commit.interval.ms | exactly_once "
                                        "fenced | ÷ exactly_once |\n"
                                        "|---|---|---|\n");
                                for (int c = 0; c < 2; c++)
                                        fprintf(out, "| %d | %.0f | %.2f |\n",
                                                c ? 1000 : 100,
                                                median(&cost[c][3]),
                                                median(&cost[c][3]) /
                                                    median(&cost[c][0]));
                        }
                }
                if (rc == 0 && o.scale) {
                        fprintf(out,
                                "\nthe stage chain by state size (medians):\n\n"
                                "| preset | users | events/s | peak RSS MiB |\n"
                                "|---|---|---|---|\n");
                        static const char *const ps[3] = { "small", "city",
                                                           "country" };
                        static const int users[3] = { 2000, 100000, 2000000 };
                        for (int k = 0; k < 3; k++)
                                fprintf(out, "| %s | %d | %.0f | %.0f |\n",
                                        ps[k], users[k], scale_eps[k],
                                        scale_rss[k]);
                        if (group_eps[0] > 0) {
                                fprintf(out,
                                        "\nthe stage chain as %d processes "
                                        "of a group, each 1/%d of the "
                                        "partitions, right after each run "
                                        "above (medians):\n\n"
                                        "| preset | events/s | ÷ one process "
                                        "| peak RSS MiB, summed |\n"
                                        "|---|---|---|---|\n",
                                        ncores, ncores);
                                for (int k = 0; k < 3; k++)
                                        fprintf(out,
                                                "| %s | %.0f | %.2f | %.0f "
                                                "|\n",
                                                ps[k], group_eps[k],
                                                group_ratio[k], group_rss[k]);
                        }
                }
                if (pass) {
                        fclose(out);
                        progress("table: %s", mdpath);
                }
        }
        json_decref(res);
        free(chart.ts);
        free(chart.in);
        free(chart.lag);
        if (!o.keep)
                rm_rf(work);
        else
                progress("kept %s", work);
        return rc;
}
