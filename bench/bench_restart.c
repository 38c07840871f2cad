/*
 * bench_restart.c: restart time after kill -9, the real binary over TCP.
 *
 * Starts the embedded broker (`chargeflow broker`), the generator
 * (`chargeflow gen --preset city`, paced) and `chargeflow run -c CFG`
 * consuming it. Once the pipeline has built its state and is producing,
 * it kills the run with SIGKILL (the generator goes on publishing, so there
 * is new input), notes the end offsets of the output topics
 * (billing.charge-records, billing.rejected, the repartition topic) and the
 * size of the state directory, and starts `chargeflow run` again. The
 * restart time is from just before the restart's exec to the first record
 * appended to an output topic after those end offsets, as a plain
 * librdkafka consumer of the bench sees it (fetch.wait.max.ms=10). The
 * phases come from the run's log lines on stderr (wall-clock timestamps,
 * ms): state open, tables read from the state, tables loaded (caught up
 * with the table topics), running (clients open, subscribed), first task
 * assigned. Also printed: the restart less the wait for the group (running
 * to first task assigned), i.e. what it would take if the join were
 * immediate. Repeated KILLS times; prints each and the medians.
 *
 * The embedded broker (librdkafka 2.0.2's mock cluster) ignores
 * group.instance.id, so the group's wait there is about the dead member's
 * kafka.session.timeout.ms whatever the configuration: 45 s by default,
 * 5 to 11 s with --set kafka.session.timeout.ms=6000 --set
 * kafka.heartbeat.interval.ms=500.
 *
 *   build/bench/bench_restart [options] [--set key=value]...
 *
 *   --broker B         mock (the embedded broker, default), peer (the
 *                      independent peer broker: static membership works
 *                      there), or host:port of a scratch cluster
 *   --binary PATH      chargeflow binary (default: ../chargeflow next to
 *                      this program, i.e. build/chargeflow)
 *   --kills N          kills and restarts (default 5)
 *   --preset P         generator preset (default city)
 *   --days D           simulated days (default 10: the generator must
 *                      outlast the run)
 *   --rate R           generator events/s (default 20000)
 *   --partitions N     partitions per topic (default 16: the broker keeps
 *                      about 100k records / 5 MiB per partition)
 *   --warmup S         seconds of running before the first kill (default 40)
 *   --interval S       seconds of running after a restart's first output
 *                      before the next kill (default 10)
 *   --max-wait S       give up on a restart after S seconds (default 120)
 *   --set key=value    extra line of the run's configuration (repeatable),
 *                      e.g. --set kafka.session.timeout.ms=6000
 *   --keep             keep the work directory (/tmp/cf-bench-restart-PID)
 *
 * The timing is wall clock on whatever else the machine does: on a shared
 * 2-core machine the generator, the broker and the run compete for the
 * cores, so single runs are noisy; compare medians.
 */
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "brokers.h"
#include "cli.h"
#include "kafka.h"
#include "log.h"

#define MAX_SETS  32
#define MAX_KILLS 100
#define N_OUT     3

static const char *const out_topics[N_OUT] = {
        "billing.charge-records", "billing.rejected",
        "chargeflow.billing-repartition"
};

enum { PH_STATE, PH_TABLES_READ, PH_TABLES, PH_RUNNING, PH_ASSIGNED, PH__CNT };
static const char *const ph_names[PH__CNT] = { "state", "tbl-read", "tables",
                                               "running", "assigned" };
static const char *const ph_marks[PH__CNT] = { "INFO  state open",
                                               "INFO  tables read from",
                                               "INFO  tables loaded",
                                               "INFO  running:", " assigned" };

typedef struct result {
        double total;        /* s, exec to first new output */
        double ph[PH__CNT];  /* s after exec, or -1 */
        double du_mib;       /* state dir at the kill */
        int64_t out_at_kill; /* output records at the kill */
        char first_topic[64];
} result;

static const char *binary;
static char wd[64];

static double mono_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double real_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
        struct timespec ts = { (time_t)s,
                               (long)((s - (double)(time_t)s) * 1e9) };
        while (nanosleep(&ts, &ts) && errno == EINTR)
                ;
}

/* SIGTERM, then SIGKILL after wait_s. Returns the exit status or -1. */
static int stop(pid_t pid, double wait_s)
{
        int st;
        kill(pid, SIGTERM);
        for (double t0 = mono_s(); mono_s() - t0 < wait_s; sleep_s(0.05))
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        fprintf(stderr,
                "bench_restart: pid %d did not stop in %.0f s; "
                "killing it\n",
                (int)pid, wait_s);
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
}

static uint64_t du_bytes;
static int du_fn(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
        (void)p;
        (void)flag;
        (void)f;
        du_bytes += (uint64_t)sb->st_blocks * 512;
        return 0;
}

static double du_mib(const char *dir)
{
        du_bytes = 0;
        nftw(dir, du_fn, 32, FTW_PHYS);
        return (double)du_bytes / (1024.0 * 1024.0);
}

/* Phases from the run's log: the first line with each mark. */
static void phases(const char *log, double t0_real, result *r)
{
        FILE *f = fopen(log, "r");
        char line[1024];
        for (int i = 0; i < PH__CNT; i++)
                r->ph[i] = -1;
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                long long tm = cf_log_line_ms(line);
                double t = tm < 0 ? -1 : (double)tm / 1000.0;
                if (t < 0)
                        continue;
                for (int i = 0; i < PH__CNT; i++)
                        if (r->ph[i] < 0 && strstr(line, ph_marks[i]) &&
                            (i != PH_ASSIGNED || strstr(line, "INFO  task ")))
                                r->ph[i] = t - t0_real;
        }
        fclose(f);
}

static rd_kafka_t *bench_consumer(const char *bootstrap)
{
        char err[512];
        rd_kafka_conf_t *c =
            cf_kafka_conf_new(bootstrap, NULL, 0, err, sizeof(err));
        if (!c ||
            cf_kafka_conf_set(c, "group.id", "bench-restart", err,
                              sizeof(err)) ||
            cf_kafka_conf_set(c, "enable.auto.commit", "false", err,
                              sizeof(err)) ||
            cf_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof(err))) {
                fprintf(stderr, "bench_restart: %s\n", err);
                exit(1);
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench_restart: %s\n", err);
                exit(1);
        }
        return rk;
}

static int nparts[N_OUT];

/* End offsets of every output partition into l (offsets set); returns the
 * sum of the ends. */
static int64_t output_ends(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l)
{
        int64_t sum = 0;
        for (int o = 0; o < N_OUT; o++)
                for (int p = 0; p < nparts[o]; p++) {
                        int64_t lo, hi;
                        if (rd_kafka_query_watermark_offsets(
                                rk, out_topics[o], p, &lo, &hi, 10000)) {
                                fprintf(stderr,
                                        "bench_restart: offsets of %s [%d] "
                                        "failed\n",
                                        out_topics[o], p);
                                exit(1);
                        }
                        sum += hi;
                        if (l)
                                rd_kafka_topic_partition_list_add(
                                    l, out_topics[o], p)
                                    ->offset = hi;
                }
        return sum;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        double s[MAX_KILLS];
        int m = 0;
        for (int i = 0; i < n; i++)
                if (v[i] >= 0)
                        s[m++] = v[i];
        if (!m)
                return -1;
        qsort(s, (size_t)m, sizeof(double), cmp_d);
        return m % 2 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
}

/* The restart less the wait for the group (running to first task
 * assigned): what it would take if the join were immediate. */
static double nojoin(const result *r)
{
        if (r->total < 0 || r->ph[PH_RUNNING] < 0 || r->ph[PH_ASSIGNED] < 0)
                return -1;
        return r->total - (r->ph[PH_ASSIGNED] - r->ph[PH_RUNNING]);
}

static void usage(void)
{
        fprintf(stderr, "usage: bench_restart [--broker mock|peer|HOST:PORT] "
                        "[--binary PATH] [--kills N] "
                        "[--preset P] [--days D]\n"
                        "         [--rate R] [--partitions N] [--warmup S] "
                        "[--interval S] [--max-wait S]\n"
                        "         [--set key=value]... [--keep]\n");
        exit(2);
}

static pid_t start_run(int k, const char *cfg, double *t0_mono, double *t0_real)
{
        char out[128], err[128];
        snprintf(out, sizeof(out), "%s/run-%d.out", wd, k);
        snprintf(err, sizeof(err), "%s/run-%d.err", wd, k);
        char *argv[] = { (char *)binary, "run", "-c", (char *)cfg, NULL };
        *t0_real = real_s();
        *t0_mono = mono_s();
        return cf_spawn(argv, out, err);
}

/* Waits until the output topics have grown over the last 0.5 s, at most
 * max_s; false if they did not. */
static bool wait_working(rd_kafka_t *rk, double max_s)
{
        int64_t prev = output_ends(rk, NULL);
        for (double t0 = mono_s(); mono_s() - t0 < max_s;) {
                sleep_s(0.5);
                int64_t now = output_ends(rk, NULL);
                if (now > prev)
                        return true;
                prev = now;
        }
        return false;
}

int main(int argc, char **argv)
{
        int kills = 5, partitions = 16;
        cf_broker_kind kind = CF_BROKER_MOCK;
        const char *external = NULL;
        char peer[PATH_MAX] = "";
        const char *preset = "city", *days = "10", *rate = "20000";
        double warmup = 40, interval = 10, max_wait = 120;
        const char *sets[MAX_SETS];
        int n_sets = 0;
        bool keep = false;
        char self_bin[PATH_MAX];

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--keep")) {
                        keep = true;
                        continue;
                }
                if (!v)
                        usage();
                i++;
                if (!strcmp(a, "--binary"))
                        binary = v;
                else if (!strcmp(a, "--kills"))
                        kills = atoi(v);
                else if (!strcmp(a, "--broker")) {
                        if (!cf_broker_kind_parse(v, &kind) ||
                            kind == CF_BROKER_EXTERNAL) {
                                kind = CF_BROKER_EXTERNAL;
                                external = v;
                        }
                } else if (!strcmp(a, "--preset"))
                        preset = v;
                else if (!strcmp(a, "--days"))
                        days = v;
                else if (!strcmp(a, "--rate"))
                        rate = v;
                else if (!strcmp(a, "--partitions"))
                        partitions = atoi(v);
                else if (!strcmp(a, "--warmup"))
                        warmup = atof(v);
                else if (!strcmp(a, "--interval"))
                        interval = atof(v);
                else if (!strcmp(a, "--max-wait"))
                        max_wait = atof(v);
                else if (!strcmp(a, "--set") && n_sets < MAX_SETS)
                        sets[n_sets++] = v;
                else
                        usage();
        }
        if (kills < 1 || kills > MAX_KILLS || partitions < 1)
                usage();
        if (kind == CF_BROKER_PEER &&
            !cf_broker_peer_path(CF_SOURCE_DIR, peer, sizeof(peer))) {
                fprintf(stderr,
                        "bench_restart: --broker peer: no peer broker at %s "
                        "(set CF_KAFKA_PEER)\n",
                        peer);
                return 2;
        }
        if (!binary) {
                char exe[PATH_MAX];
                ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
                if (n <= 0) {
                        perror("bench_restart: /proc/self/exe");
                        return 1;
                }
                exe[n] = '\0';
                snprintf(self_bin, sizeof(self_bin), "%s/../chargeflow",
                         dirname(exe));
                binary = self_bin;
        }
        if (access(binary, X_OK)) {
                fprintf(stderr,
                        "bench_restart: %s: not executable (--binary)\n",
                        binary);
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        snprintf(wd, sizeof(wd), "/tmp/cf-bench-restart-%d", (int)getpid());
        if (mkdir(wd, 0755)) {
                perror(wd);
                return 1;
        }

        /* Broker. */
        char blog[128], errstr[512];
        snprintf(blog, sizeof(blog), "%s/broker.log", wd);
        cf_broker br;
        if (cf_broker_start(&br, kind, binary, peer, external, partitions, blog,
                            errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_restart: %s\n", errstr);
                return 1;
        }
        const char *bootstrap = br.bootstrap;

        /* Configuration. */
        char cfg[128], state[128];
        snprintf(cfg, sizeof(cfg), "%s/run.properties", wd);
        snprintf(state, sizeof(state), "%s/state", wd);
        FILE *f = fopen(cfg, "w");
        if (!f) {
                perror(cfg);
                return 1;
        }
        fprintf(f, "bootstrap.servers=%s\nstate.dir=%s\nstats.interval.ms=0\n",
                bootstrap, state);
        for (int i = 0; i < n_sets; i++)
                fprintf(f, "%s\n", sets[i]);
        fclose(f);

        rd_kafka_t *rk = bench_consumer(bootstrap);
        for (int o = 0; o < N_OUT; o++) {
                char e[256];
                if (cf_kafka_partition_count(rk, out_topics[o], 10000,
                                             &nparts[o], e, sizeof(e))) {
                        fprintf(stderr, "bench_restart: %s\n", e);
                        return 1;
                }
        }

        printf("bench_restart: %s preset, %s days at %s events/s, %d "
               "partitions, %d kills; work dir %s\n",
               preset, days, rate, partitions, kills, wd);
        for (int i = 0; i < n_sets; i++)
                printf("  config: %s\n", sets[i]);
        fflush(stdout);

        /* Generator and the first run. */
        char out[128], err[128];
        snprintf(out, sizeof(out), "%s/gen.out", wd);
        snprintf(err, sizeof(err), "%s/gen.err", wd);
        char *gargv[] = { (char *)binary,
                          "gen",
                          "--preset",
                          (char *)preset,
                          "--seed",
                          "1",
                          "--days",
                          (char *)days,
                          "--rate",
                          (char *)rate,
                          "--bootstrap",
                          (char *)bootstrap,
                          NULL };
        pid_t gen = cf_spawn(gargv, out, err);
        double t0_mono, t0_real;
        pid_t run = start_run(0, cfg, &t0_mono, &t0_real);

        result res[MAX_KILLS];
        int done = 0, rc = 0;
        sleep_s(warmup);
        for (int k = 1; k <= kills; k++) {
                if (waitpid(gen, NULL, WNOHANG) == gen) {
                        fprintf(stderr, "bench_restart: the generator "
                                        "ended; give more --days\n");
                        gen = 0;
                        rc = 1;
                        break;
                }
                if (!wait_working(rk, 30))
                        fprintf(stderr,
                                "bench_restart: kill %d: the "
                                "outputs did not grow in 30 s; "
                                "killing anyway\n",
                                k);
                result *r = &res[done];
                memset(r, 0, sizeof(*r));
                kill(run, SIGKILL);
                waitpid(run, NULL, 0);
                /* Let the broker finish requests the dead process sent. */
                sleep_s(0.2);
                rd_kafka_topic_partition_list_t *l =
                    rd_kafka_topic_partition_list_new(64);
                r->out_at_kill = output_ends(rk, l);
                r->du_mib = du_mib(state);
                if (rd_kafka_assign(rk, l)) {
                        fprintf(stderr, "bench_restart: assign failed\n");
                        return 1;
                }
                rd_kafka_topic_partition_list_destroy(l);

                run = start_run(k, cfg, &t0_mono, &t0_real);
                r->total = -1;
                while (mono_s() - t0_mono < max_wait) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 5);
                        if (!m)
                                continue;
                        if (!m->err) {
                                r->total = mono_s() - t0_mono;
                                snprintf(r->first_topic, sizeof(r->first_topic),
                                         "%s [%d]", rd_kafka_topic_name(m->rkt),
                                         (int)m->partition);
                        }
                        rd_kafka_message_destroy(m);
                        if (r->total >= 0)
                                break;
                }
                rd_kafka_assign(rk, NULL);
                char log[128];
                snprintf(log, sizeof(log), "%s/run-%d.err", wd, k);
                phases(log, t0_real, r);
                printf("kill %d: state %.1f MiB, %lld output records; "
                       "restart: ",
                       k, r->du_mib, (long long)r->out_at_kill);
                for (int i = 0; i < PH__CNT; i++)
                        printf("%s %.3f, ", ph_names[i], r->ph[i]);
                if (r->total >= 0)
                        printf("first output %.3f s (%s); without the "
                               "group's wait %.3f s\n",
                               r->total, r->first_topic, nojoin(r));
                else
                        printf("no new output within %.0f s\n", max_wait);
                fflush(stdout);
                done++;
                if (r->total < 0) {
                        rc = 1;
                        break;
                }
                if (k < kills)
                        sleep_s(interval);
        }

        double tot[MAX_KILLS], ph[MAX_KILLS], du[MAX_KILLS], nj[MAX_KILLS];
        for (int i = 0; i < done; i++) {
                tot[i] = res[i].total;
                du[i] = res[i].du_mib;
                nj[i] = nojoin(&res[i]);
        }
        printf("median of %d: first output %.3f s after exec (without the "
               "group's wait %.3f s); state %.1f MiB; phases (s after "
               "exec):",
               done, median(tot, done), median(nj, done), median(du, done));
        for (int p = 0; p < PH__CNT; p++) {
                for (int i = 0; i < done; i++)
                        ph[i] = res[i].ph[p];
                printf(" %s %.3f", ph_names[p], median(ph, done));
        }
        printf("\n");

        int st = stop(run, 90);
        if (st != 0)
                fprintf(stderr, "bench_restart: the last run exited %d\n", st);
        if (gen)
                stop(gen, 10);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        cf_broker_stop(&br);
        if (!keep) {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", wd);
                if (system(cmd))
                        fprintf(stderr, "bench_restart: could not remove %s\n",
                                wd);
        } else {
                printf("kept %s\n", wd);
        }
        return rc;
}
