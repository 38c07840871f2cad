/*
 * bench_restart.c: how long the pipeline takes to get going again when a
 * process goes away, the real binary over TCP. Three modes (--mode), each
 * repeated --kills times, each printing every repeat and the medians.
 *
 * All start a broker (--broker), the generator (`chargeflow gen --preset
 * city`, paced, going on through every repeat, so there is always new
 * input) and runs of `chargeflow run -c CFG` consuming it; the timing
 * starts at an exec or at a kill and ends at the first record appended to
 * an output topic after the end offsets noted then, as a plain librdkafka
 * consumer of the bench sees it (fetch.wait.max.ms=10). Phases come from
 * the runs' log lines on stderr (wall-clock timestamps, ms).
 *
 * --mode restart (default): kill -9 of the one process, which starts again
 * with its state directory. Once the pipeline has built its state and is
 * producing, it kills the run with SIGKILL, notes the end offsets of the
 * output topics (billing.charge-records, billing.rejected, the repartition
 * topic) and the size of the state directory, and starts `chargeflow run`
 * again. The restart time is from just before the restart's exec to the
 * first new output record. The phases: state open, tables read from the
 * state, tables loaded (caught up with the table topics), running (clients
 * open, subscribed), first task assigned. Also printed: the restart less
 * the wait for the group (running to first task assigned), i.e. what it
 * would take if the join were immediate.
 *
 * --mode restore: a process with an EMPTY state directory takes over the
 * whole state from the task logs. Once the run is producing, it is stopped
 * with SIGTERM (it commits, delivers its task-log records and leaves the
 * group, so the next process is assigned at once: the group's wait is not
 * what this mode measures), then a new run starts with the same group and
 * a new empty state directory (state-K): every task is restored from
 * chargeflow.rating-log / chargeflow.billing-log. Printed: exec to the
 * first new output; exec to the last "task X assigned" line; the
 * assignment (from the start of the first replay, i.e. the first
 * "restored from" line's time less its ms, to the last "task X assigned":
 * every replay, every other task's tail scan of its log, every task
 * opened); the replays' own times summed (the "in N ms" of each
 * "X: restored from ..." line: dropping the task's keys, reading its log
 * from the low watermark to the end with a consumer of its own, applying
 * each commit) and their bytes summed. The restore speed is those bytes
 * over that summed time, given as a ratio to a plain librdkafka consumer
 * in the bench reading the same partitions the way a restore reads one:
 * a new consumer per partition with librdkafka's defaults (a restore's
 * consumer has them too, as long as no --set kafka.* changes them), its
 * watermarks, assigned at the low watermark (whole-state commits trim the
 * prefix), consumer_poll(100) to the high watermark, closed, one
 * partition after the other, timed whole and summed. It reads between the
 * stop and the new run's exec, when nothing writes the task logs, so it
 * reads exactly what the restore reads: the two byte counts are printed
 * and a difference is flagged. Also printed: the ratio to the plain
 * consumer's reading alone (assigned to the last record, summed). The
 * state grows from repeat to repeat (the generator goes on): compare the
 * ratios, not the times, across repeats.
 *
 * --mode failover: two processes A and B in one group, each with a state
 * directory of its own (state-a, state-b). Once both hold rating tasks
 * (from their "task X assigned" lines since their last "partitions
 * revoked") and the charge records of each one's rating tasks grow, A is
 * killed with SIGKILL. The bench then waits for the first record in
 * billing.charge-records partition p, past its end offset at the kill,
 * for each rating task A-p that A held: each such partition has one
 * writer, the task A-p, which only B can run now, so that record is B's
 * first output for one of A's former tasks. From B's log: kill to
 * "partitions revoked" (the group noticed A's session expire), kill to
 * the last "task X assigned" (B holds every task, A's restored from their
 * logs). Printed: those, the time from B's last task assigned to that
 * record, and the total less kafka.session.timeout.ms (from --set;
 * 45000, librdkafka's default, without it). Then A starts again with its
 * own directory (it rejoins and is given tasks back, restored from their
 * logs, since its directory is behind) and is killed at the next repeat.
 * Without standby copies B replays A's tasks from their logs; with --set
 * num.standby.replicas=1 B keeps copies of A's tasks and takes them over
 * from those ("taken over from the standby copy" lines, counted and their
 * catch-ups summed). Also counted: tasks B caught up from its own older
 * copy ("caught up from this directory's copy": B held them before A's
 * restart took them back, and let them go cleanly), which need no standby
 * copies: from the second repeat on, B has such copies of A's tasks.
 *
 * The embedded broker (librdkafka 2.0.2's mock cluster) ignores
 * group.instance.id, so the group's wait there is about the dead member's
 * kafka.session.timeout.ms whatever the configuration: 45 s by default,
 * 5 to 11 s with --set kafka.session.timeout.ms=6000 --set
 * kafka.heartbeat.interval.ms=500. Restore and failover need the task
 * logs, which `topics create` makes: use --broker peer (or a scratch
 * cluster).
 *
 *   build/bench/bench_restart [options] [--set key=value]...
 *
 *   --mode M           restart (default), restore or failover (above)
 *   --broker B         mock (the embedded broker, default), peer (the
 *                      independent peer broker: static membership works
 *                      there), or host:port of a scratch cluster
 *   --binary PATH      chargeflow binary (default: ../chargeflow next to
 *                      this program, i.e. build/chargeflow)
 *   --kills N          repeats: kills and restarts, restores, or
 *                      failovers (default 5)
 *   --preset P         generator preset (default city)
 *   --days D           simulated days (default 10: the generator must
 *                      outlast the run)
 *   --rate R           generator events/s (default 20000)
 *   --partitions N     partitions per topic (default 16: the broker keeps
 *                      about 100k records / 5 MiB per partition)
 *   --warmup S         seconds of running before the first kill (default 40)
 *   --interval S       seconds of running after a restart's first output
 *                      before the next kill (default 10; failover: after
 *                      A's start again, before waiting for both to
 *                      produce)
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

/* ---- logs of the runs ----------------------------------------------------
 */

#define MAX_TASKS 256
typedef struct taskset {
        bool a[MAX_TASKS], b[MAX_TASKS]; /* rating, billing task ids */
} taskset;

/* "task A-3 assigned" in line: sets *sub and *id. */
static bool assigned_line(const char *line, char *sub, int *id)
{
        const char *p = strstr(line, "INFO  task ");
        return p && sscanf(p + 11, "%c-%d assigned", sub, id) == 2 &&
               strstr(p, " assigned") && (*sub == 'A' || *sub == 'B') &&
               *id >= 0 && *id < MAX_TASKS;
}

/* The tasks a run holds according to its log: those assigned since its
 * last "partitions revoked" (every rebalance revokes all of them). */
static void owned_tasks(const char *log, taskset *ts)
{
        memset(ts, 0, sizeof(*ts));
        FILE *f = fopen(log, "r");
        char line[1024];
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char sub;
                int id;
                if (strstr(line, "INFO  partitions revoked"))
                        memset(ts, 0, sizeof(*ts));
                else if (assigned_line(line, &sub, &id))
                        (sub == 'A' ? ts->a : ts->b)[id] = true;
        }
        fclose(f);
}

static int n_rating(const taskset *ts)
{
        int n = 0;
        for (int i = 0; i < MAX_TASKS; i++)
                n += ts->a[i];
        return n;
}

/* What a run's log says between two wall-clock times (s since the epoch),
 * times in s after `from`, -1 when there is no such line. */
typedef struct logscan {
        double revoked;        /* first "partitions revoked" */
        double first_assigned; /* first "task X assigned" */
        double last_assigned;  /* last one */
        double first_of;       /* first "task X assigned" for X in `of` */
        double restore_start;  /* earliest start of a replay (line - ms) */
        int restored;          /* "X: restored from" lines */
        int64_t restored_bytes, restored_ms; /* their sums */
        int taken;        /* "X: taken over from the standby copy" lines */
        int64_t taken_ms; /* their times summed */
        int caught;       /* "X: caught up from this directory's copy" lines */
} logscan;

static void scan_log(const char *log, double from, double to, const taskset *of,
                     logscan *ls)
{
        ls->revoked = ls->first_assigned = ls->last_assigned = -1;
        ls->first_of = ls->restore_start = -1;
        ls->restored = 0;
        ls->restored_bytes = ls->restored_ms = 0;
        ls->taken = 0;
        ls->taken_ms = 0;
        ls->caught = 0;
        FILE *f = fopen(log, "r");
        char line[1024];
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                long long tm = cf_log_line_ms(line);
                if (tm < 0)
                        continue;
                double t = (double)tm / 1000.0;
                if (t < from - 0.0005 || t > to)
                        continue;
                t -= from;
                char sub;
                int id;
                const char *p;
                long long bytes, ms;
                if (strstr(line, "INFO  partitions revoked")) {
                        if (ls->revoked < 0)
                                ls->revoked = t;
                } else if (assigned_line(line, &sub, &id)) {
                        if (ls->first_assigned < 0)
                                ls->first_assigned = t;
                        ls->last_assigned = t;
                        if (of && ls->first_of < 0 &&
                            (sub == 'A' ? of->a : of->b)[id])
                                ls->first_of = t;
                } else if ((p = strstr(line, ": restored from ")) &&
                           (p = strstr(p, " commits (")) &&
                           sscanf(p, " commits (%lld bytes", &bytes) == 1 &&
                           (p = strstr(p, ") in ")) &&
                           sscanf(p, ") in %lld ms", &ms) == 1) {
                        ls->restored++;
                        ls->restored_bytes += bytes;
                        ls->restored_ms += ms;
                        double start = t - (double)ms / 1000.0;
                        if (ls->restore_start < 0 || start < ls->restore_start)
                                ls->restore_start = start;
                } else if ((p = strstr(line,
                                       ": taken over from the standby copy")) &&
                           (p = strstr(p, ") in ")) &&
                           sscanf(p, ") in %lld ms", &ms) == 1) {
                        ls->taken++;
                        ls->taken_ms += ms;
                } else if (strstr(line,
                                  ": caught up from this directory's copy")) {
                        ls->caught++;
                }
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
        fprintf(stderr,
                "usage: bench_restart [--mode restart|restore|failover] "
                "[--broker mock|peer|HOST:PORT]\n"
                "         [--binary PATH] [--kills N] "
                "[--preset P] [--days D]\n"
                "         [--rate R] [--partitions N] [--warmup S] "
                "[--interval S] [--max-wait S]\n"
                "         [--set key=value]... [--keep]\n");
        exit(2);
}

/* Starts `chargeflow run -c cfg`, stdout and stderr to wd/NAME.out and
 * wd/NAME.err. */
static pid_t start_run(const char *name, const char *cfg, double *t0_mono,
                       double *t0_real)
{
        char out[128], err[128];
        snprintf(out, sizeof(out), "%s/%s.out", wd, name);
        snprintf(err, sizeof(err), "%s/%s.err", wd, name);
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

/* ---- the options and what every mode shares ------------------------------
 */

enum { MODE_RESTART, MODE_RESTORE, MODE_FAILOVER };
static int mode = MODE_RESTART, kills = 5;
static double warmup = 40, interval = 10, max_wait = 120;
static const char *sets[MAX_SETS];
static int n_sets;
static const char *bootstrap;
static rd_kafka_t *out_rk; /* the bench's consumer of the outputs */
static pid_t gen;          /* the generator, 0 once it ended */

/* Writes wd/NAME.properties, the run's configuration with state directory
 * wd/STATE (and every --set), its path into cfg. Exits 1 on failure. */
static void write_cfg(const char *name, const char *state, char *cfg,
                      size_t size)
{
        snprintf(cfg, size, "%s/%s.properties", wd, name);
        FILE *f = fopen(cfg, "w");
        if (!f) {
                perror(cfg);
                exit(1);
        }
        fprintf(f,
                "bootstrap.servers=%s\nstate.dir=%s/%s\n"
                "stats.interval.ms=0\n",
                bootstrap, wd, state);
        for (int i = 0; i < n_sets; i++)
                fprintf(f, "%s\n", sets[i]);
        fclose(f);
}

/* The value of --set KEY=..., or NULL. */
static const char *set_value(const char *key)
{
        size_t n = strlen(key);
        for (int i = 0; i < n_sets; i++)
                if (!strncmp(sets[i], key, n) && sets[i][n] == '=')
                        return sets[i] + n + 1;
        return NULL;
}

/* Assigns out_rk at l's offsets (first_output then sees what comes
 * after them) and frees l. */
static void watch_from(rd_kafka_topic_partition_list_t *l)
{
        if (rd_kafka_assign(out_rk, l)) {
                fprintf(stderr, "bench_restart: assign failed\n");
                exit(1);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

/* watch_from the end of every output partition; returns the sum of the
 * ends (output_ends). */
static int64_t watch_output_ends(void)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(64);
        int64_t sum = output_ends(out_rk, l);
        watch_from(l);
        return sum;
}

static bool gen_ended(void)
{
        if (gen && waitpid(gen, NULL, WNOHANG) == gen) {
                fprintf(stderr, "bench_restart: the generator ended; give "
                                "more --days\n");
                gen = 0;
        }
        return !gen;
}

/* Polls out_rk (assigned at the end offsets) for the first record, at most
 * max_wait s after t0_mono: its time after t0_mono, or -1; where into
 * where. */
static double first_output(double t0_mono, char *where, size_t size)
{
        double t = -1;
        while (t < 0 && mono_s() - t0_mono < max_wait) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(out_rk, 5);
                if (!m)
                        continue;
                if (!m->err) {
                        t = mono_s() - t0_mono;
                        snprintf(where, size, "%s [%d]",
                                 rd_kafka_topic_name(m->rkt),
                                 (int)m->partition);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(out_rk, NULL);
        return t;
}

/* ---- --mode restart ------------------------------------------------------
 */

static int mode_restart(void)
{
        char cfg[128], state[128], name[32];
        write_cfg("run", "state", cfg, sizeof(cfg));
        snprintf(state, sizeof(state), "%s/state", wd);
        double t0_mono, t0_real;
        pid_t run = start_run("run-0", cfg, &t0_mono, &t0_real);

        result res[MAX_KILLS];
        int done = 0, rc = 0;
        sleep_s(warmup);
        for (int k = 1; k <= kills; k++) {
                if (gen_ended()) {
                        rc = 1;
                        break;
                }
                if (!wait_working(out_rk, 30))
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
                r->out_at_kill = watch_output_ends();
                r->du_mib = du_mib(state);

                snprintf(name, sizeof(name), "run-%d", k);
                run = start_run(name, cfg, &t0_mono, &t0_real);
                r->total = first_output(t0_mono, r->first_topic,
                                        sizeof(r->first_topic));
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
        return rc;
}

/* ---- --mode restore ------------------------------------------------------
 */

/* A plain consumer reading task-log partitions the way a restore reads
 * one (pipeline/task/tasklog.c read_partition): a new consumer per
 * partition with librdkafka's defaults, its watermarks, assigned at the
 * low watermark, consumer_poll(100) to the high one, closed. */
typedef struct baseline {
        int parts;       /* partitions with records */
        int64_t records; /* read */
        int64_t bytes;   /* their values' bytes (what a restore counts) */
        double s_total;  /* s, summed: new consumer to destroyed */
        double s_read;   /* s, summed: assigned to the last record */
} baseline;

static void baseline_part(const char *topic, int p, baseline *b)
{
        char err[512];
        double t0 = mono_s();
        rd_kafka_conf_t *c =
            cf_kafka_conf_new(bootstrap, NULL, 0, err, sizeof(err));
        if (!c ||
            cf_kafka_conf_set(c, "group.id", "bench-restore-baseline", err,
                              sizeof(err)) ||
            cf_kafka_conf_set(c, "enable.auto.commit", "false", err,
                              sizeof(err))) {
                fprintf(stderr, "bench_restart: %s\n", err);
                exit(1);
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench_restart: %s\n", err);
                exit(1);
        }
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) {
                fprintf(stderr, "bench_restart: offsets of %s [%d] failed\n",
                        topic, p);
                exit(1);
        }
        if (hi > lo) {
                rd_kafka_topic_partition_list_t *l =
                    rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo;
                double t1 = mono_s();
                rd_kafka_assign(rk, l);
                rd_kafka_topic_partition_list_destroy(l);
                bool end = false;
                while (!end && mono_s() - t1 < 60) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                        if (!m)
                                continue;
                        if (!m->err) {
                                b->records++;
                                b->bytes += (int64_t)m->len;
                                end = m->offset + 1 >= hi;
                        }
                        rd_kafka_message_destroy(m);
                }
                if (!end) {
                        fprintf(stderr,
                                "bench_restart: baseline: %s [%d] not read "
                                "to %lld in 60 s\n",
                                topic, p, (long long)hi);
                        exit(1);
                }
                b->s_read += mono_s() - t1;
                b->parts++;
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        b->s_total += mono_s() - t0;
}

typedef struct restore_res {
        double total;      /* s, exec to first new output */
        double assigned;   /* s, exec to the last "task X assigned" */
        double wall;       /* s, first replay's start to last assigned */
        int restored;      /* tasks restored */
        int64_t bytes;     /* task-log bytes restored (the log lines) */
        double replay;     /* s, the replays' own times summed */
        double ratio;      /* replay speed / baseline s_total speed */
        double ratio_read; /* replay speed / baseline s_read speed */
        baseline base;
        char first_topic[64];
} restore_res;

static int mode_restore(void)
{
        static const char *const logs[2] = { "chargeflow.rating-log",
                                             "chargeflow.billing-log" };
        int nlog[2];
        for (int i = 0; i < 2; i++) {
                char e[256];
                if (cf_kafka_partition_count(out_rk, logs[i], 10000, &nlog[i],
                                             e, sizeof(e))) {
                        fprintf(stderr, "bench_restart: %s\n", e);
                        return 1;
                }
        }
        char cfg[128], name[32], state[32];
        write_cfg("run-0", "state-0", cfg, sizeof(cfg));
        double t0_mono, t0_real;
        pid_t run = start_run("run-0", cfg, &t0_mono, &t0_real);

        restore_res res[MAX_KILLS];
        int done = 0, rc = 0;
        sleep_s(warmup);
        for (int k = 1; k <= kills; k++) {
                if (gen_ended()) {
                        rc = 1;
                        break;
                }
                if (!wait_working(out_rk, 30))
                        fprintf(stderr,
                                "bench_restart: restore %d: the outputs did "
                                "not grow in 30 s; stopping anyway\n",
                                k);
                restore_res *r = &res[done];
                memset(r, 0, sizeof(*r));
                /* A clean stop: the process commits, delivers and leaves
                 * the group, so the next one is assigned at once and finds
                 * the whole state in the task logs. */
                int st = stop(run, 90);
                if (st != 0)
                        fprintf(stderr,
                                "bench_restart: restore %d: the run exited "
                                "%d\n",
                                k, st);
                sleep_s(0.2);
                /* Nothing writes the task logs now: the plain consumer
                 * reads what the restore will read. */
                for (int i = 0; i < 2; i++)
                        for (int p = 0; p < nlog[i]; p++)
                                baseline_part(logs[i], p, &r->base);
                watch_output_ends();

                snprintf(name, sizeof(name), "run-%d", k);
                snprintf(state, sizeof(state), "state-%d", k);
                write_cfg(name, state, cfg, sizeof(cfg));
                run = start_run(name, cfg, &t0_mono, &t0_real);
                r->total = first_output(t0_mono, r->first_topic,
                                        sizeof(r->first_topic));
                char log[128];
                snprintf(log, sizeof(log), "%s/%s.err", wd, name);
                logscan ls;
                scan_log(log, t0_real, 1e12, NULL, &ls);
                r->assigned = ls.last_assigned;
                r->wall = ls.restore_start >= 0 && ls.last_assigned >= 0
                              ? ls.last_assigned - ls.restore_start
                              : -1;
                r->restored = ls.restored;
                r->bytes = ls.restored_bytes;
                r->replay = (double)ls.restored_ms / 1000.0;
                double speed =
                    r->replay > 0 ? (double)r->bytes / r->replay : -1;
                const baseline *b = &r->base;
                r->ratio = speed > 0 && b->s_total > 0
                               ? speed / ((double)b->bytes / b->s_total)
                               : -1;
                r->ratio_read = speed > 0 && b->s_read > 0
                                    ? speed / ((double)b->bytes / b->s_read)
                                    : -1;
                printf("restore %d: %d tasks restored, %lld bytes (plain "
                       "consumer: %d partitions, %lld records, %lld bytes); "
                       "replays %.3f s summed (%.1f MB/s), plain consumer "
                       "%.3f s (%.1f MB/s; reading alone %.3f s); ratio "
                       "%.2f (to reading alone %.2f); assignment %.3f s "
                       "(first replay to last task assigned); all assigned "
                       "%.3f s after exec; ",
                       k, r->restored, (long long)r->bytes, b->parts,
                       (long long)b->records, (long long)b->bytes, r->replay,
                       speed / 1e6, b->s_total,
                       (double)b->bytes / b->s_total / 1e6, b->s_read, r->ratio,
                       r->ratio_read, r->wall, r->assigned);
                if (r->total >= 0)
                        printf("first output %.3f s (%s)\n", r->total,
                               r->first_topic);
                else
                        printf("no new output within %.0f s\n", max_wait);
                if (r->bytes != b->bytes)
                        printf("  (the restore read %lld bytes, the plain "
                               "consumer %lld: not the same records)\n",
                               (long long)r->bytes, (long long)b->bytes);
                fflush(stdout);
                done++;
                if (r->total < 0) {
                        rc = 1;
                        break;
                }
                if (k < kills)
                        sleep_s(interval);
        }

        double v[6][MAX_KILLS];
        for (int i = 0; i < done; i++) {
                v[0][i] = res[i].total;
                v[1][i] = res[i].assigned;
                v[2][i] = res[i].wall;
                v[3][i] = res[i].replay;
                v[4][i] = (double)res[i].bytes;
                v[5][i] = res[i].ratio;
        }
        printf("median of %d: first output %.3f s after exec; all tasks "
               "assigned %.3f s after exec; assignment %.3f s; replays "
               "%.3f s summed; %.0f bytes restored; ratio to the plain "
               "consumer %.2f\n",
               done, median(v[0], done), median(v[1], done), median(v[2], done),
               median(v[3], done), median(v[4], done), median(v[5], done));
        int st = stop(run, 90);
        if (st != 0)
                fprintf(stderr, "bench_restart: the last run exited %d\n", st);
        return rc;
}

/* ---- --mode failover -----------------------------------------------------
 */

/* Sum of the end offsets of billing.charge-records partitions p for the
 * rating tasks A-p in ts; into l too when l is not NULL. */
static int64_t charge_ends(const taskset *ts,
                           rd_kafka_topic_partition_list_t *l)
{
        int64_t sum = 0;
        for (int p = 0; p < nparts[0] && p < MAX_TASKS; p++) {
                if (!ts->a[p])
                        continue;
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(out_rk, out_topics[0], p,
                                                     &lo, &hi, 10000)) {
                        fprintf(stderr,
                                "bench_restart: offsets of %s [%d] failed\n",
                                out_topics[0], p);
                        exit(1);
                }
                sum += hi;
                if (l)
                        rd_kafka_topic_partition_list_add(l, out_topics[0], p)
                            ->offset = hi;
        }
        return sum;
}

/* Waits, at most max_s, until each log's run holds rating tasks and the
 * charge records of each run's tasks grew over 0.5 s; false if not. */
static bool wait_both(const char *log_a, const char *log_b, double max_s)
{
        for (double t0 = mono_s(); mono_s() - t0 < max_s;) {
                taskset a, b;
                owned_tasks(log_a, &a);
                owned_tasks(log_b, &b);
                if (!n_rating(&a) || !n_rating(&b)) {
                        sleep_s(0.5);
                        continue;
                }
                int64_t ea = charge_ends(&a, NULL), eb = charge_ends(&b, NULL);
                sleep_s(0.5);
                taskset a2, b2;
                owned_tasks(log_a, &a2);
                owned_tasks(log_b, &b2);
                if (!memcmp(&a, &a2, sizeof(a)) &&
                    !memcmp(&b, &b2, sizeof(b)) && charge_ends(&a, NULL) > ea &&
                    charge_ends(&b, NULL) > eb)
                        return true;
        }
        return false;
}

typedef struct failover_res {
        int tasks_a, rating_a; /* tasks A held, of them rating tasks */
        double detect;         /* s, kill to B's "partitions revoked" */
        double first_of; /* s, kill to B's first "task X assigned", X A's */
        double assigned; /* s, kill to B's last "task X assigned" */
        double total;    /* s, kill to B's first charge record of A's */
        int restored;
        int64_t bytes;
        double replay;  /* s, B's replays summed */
        int taken;      /* taken over from B's standby copies */
        int caught;     /* caught up from B's own older copies */
        double taken_s; /* s, their catch-ups summed */
        char first_topic[64];
} failover_res;

static int mode_failover(void)
{
        char cfg_a[128], cfg_b[128], name[32], log_a[128], log_b[128];
        write_cfg("run-a", "state-a", cfg_a, sizeof(cfg_a));
        write_cfg("run-b", "state-b", cfg_b, sizeof(cfg_b));
        double t0_mono, t0_real;
        pid_t a = start_run("run-a-0", cfg_a, &t0_mono, &t0_real);
        pid_t b = start_run("run-b", cfg_b, &t0_mono, &t0_real);
        snprintf(log_a, sizeof(log_a), "%s/run-a-0.err", wd);
        snprintf(log_b, sizeof(log_b), "%s/run-b.err", wd);
        const char *sto = set_value("kafka.session.timeout.ms");
        double session_s = sto ? atof(sto) / 1000.0 : 45.0;

        failover_res res[MAX_KILLS];
        int done = 0, rc = 0;
        sleep_s(warmup);
        for (int k = 1; k <= kills; k++) {
                if (gen_ended()) {
                        rc = 1;
                        break;
                }
                if (!wait_both(log_a, log_b, 120)) {
                        fprintf(stderr,
                                "bench_restart: failover %d: the two runs "
                                "did not both produce within 120 s\n",
                                k);
                        rc = 1;
                        break;
                }
                failover_res *r = &res[done];
                memset(r, 0, sizeof(*r));
                taskset ta;
                owned_tasks(log_a, &ta);
                for (int i = 0; i < MAX_TASKS; i++)
                        r->tasks_a += ta.a[i] + ta.b[i];
                r->rating_a = n_rating(&ta);
                double kill_mono = mono_s(), kill_real = real_s();
                kill(a, SIGKILL);
                waitpid(a, NULL, 0);
                /* Let the broker finish requests the dead process sent;
                 * B cannot have A's tasks before the session times out. */
                sleep_s(0.2);
                rd_kafka_topic_partition_list_t *l =
                    rd_kafka_topic_partition_list_new(MAX_TASKS);
                charge_ends(&ta, l);
                watch_from(l);
                r->total = first_output(kill_mono, r->first_topic,
                                        sizeof(r->first_topic));
                logscan ls;
                scan_log(log_b, kill_real,
                         r->total >= 0 ? kill_real + r->total : 1e12, &ta, &ls);
                r->detect = ls.revoked;
                r->first_of = ls.first_of;
                r->assigned = ls.last_assigned;
                r->restored = ls.restored;
                r->bytes = ls.restored_bytes;
                r->replay = (double)ls.restored_ms / 1000.0;
                r->taken = ls.taken;
                r->caught = ls.caught;
                r->taken_s = (double)ls.taken_ms / 1000.0;
                printf("failover %d: A held %d tasks (%d rating); after the "
                       "kill: B revoked %.3f s, first of A's tasks "
                       "assigned %.3f s, all assigned %.3f s (%d restored, "
                       "%lld bytes, replays %.3f s summed; %d taken over "
                       "from standby copies, %.3f s summed; %d caught up "
                       "from B's own older copies); ",
                       k, r->tasks_a, r->rating_a, r->detect, r->first_of,
                       r->assigned, r->restored, (long long)r->bytes, r->replay,
                       r->taken, r->taken_s, r->caught);
                if (r->total >= 0)
                        printf("first charge record of A's tasks %.3f s "
                               "(%s): %.3f s after all assigned, %.3f s "
                               "beyond the session timeout\n",
                               r->total, r->first_topic,
                               r->assigned >= 0 ? r->total - r->assigned : -1,
                               r->total - session_s);
                else
                        printf("no charge record of A's tasks within "
                               "%.0f s\n",
                               max_wait);
                fflush(stdout);
                done++;
                if (r->total < 0) {
                        rc = 1;
                        break;
                }
                /* A again, with the directory it had: it rejoins, takes
                 * tasks back (restored from their logs) and is killed at
                 * the next round. */
                snprintf(name, sizeof(name), "run-a-%d", k);
                snprintf(log_a, sizeof(log_a), "%s/%s.err", wd, name);
                if (k < kills) {
                        a = start_run(name, cfg_a, &t0_mono, &t0_real);
                        sleep_s(interval);
                } else {
                        a = 0;
                }
        }

        double v[5][MAX_KILLS];
        for (int i = 0; i < done; i++) {
                failover_res *r = &res[i];
                v[0][i] = r->detect;
                v[1][i] = r->assigned;
                v[2][i] = r->total;
                v[3][i] = r->total >= 0 && r->assigned >= 0
                              ? r->total - r->assigned
                              : -1;
                v[4][i] = r->total >= 0 ? r->total - session_s : -1;
        }
        printf("median of %d (kafka.session.timeout.ms %s): kill to B's "
               "revoke %.3f s, to all of B's tasks assigned %.3f s, to B's "
               "first charge record of A's tasks %.3f s; all assigned to "
               "that record %.3f s; beyond the session timeout %.3f s\n",
               done, sto ? sto : "default (45000)", median(v[0], done),
               median(v[1], done), median(v[2], done), median(v[3], done),
               median(v[4], done));
        if (a) {
                kill(a, SIGKILL);
                waitpid(a, NULL, 0);
        }
        int st = stop(b, 90);
        if (st != 0)
                fprintf(stderr, "bench_restart: run B exited %d\n", st);
        return rc;
}

int main(int argc, char **argv)
{
        int partitions = 16;
        cf_broker_kind kind = CF_BROKER_MOCK;
        const char *external = NULL;
        char peer[PATH_MAX] = "";
        const char *preset = "city", *days = "10", *rate = "20000";
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
                else if (!strcmp(a, "--mode")) {
                        if (!strcmp(v, "restart"))
                                mode = MODE_RESTART;
                        else if (!strcmp(v, "restore"))
                                mode = MODE_RESTORE;
                        else if (!strcmp(v, "failover"))
                                mode = MODE_FAILOVER;
                        else
                                usage();
                } else if (!strcmp(a, "--kills"))
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
        bootstrap = br.bootstrap;

        rd_kafka_t *rk = bench_consumer(bootstrap);
        out_rk = rk;
        for (int o = 0; o < N_OUT; o++) {
                char e[256];
                if (cf_kafka_partition_count(rk, out_topics[o], 10000,
                                             &nparts[o], e, sizeof(e))) {
                        fprintf(stderr, "bench_restart: %s\n", e);
                        return 1;
                }
        }

        static const char *const mode_names[] = { "restart", "restore",
                                                  "failover" };
        printf("bench_restart --mode %s: %s preset, %s days at %s "
               "events/s, %d partitions, %d repeats, broker %s; work dir "
               "%s\n",
               mode_names[mode], preset, days, rate, partitions, kills,
               cf_broker_kind_name(kind), wd);
        for (int i = 0; i < n_sets; i++)
                printf("  config: %s\n", sets[i]);
        fflush(stdout);

        /* The generator; each mode starts its runs. */
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
        gen = cf_spawn(gargv, out, err);
        int rc = mode == MODE_RESTORE    ? mode_restore()
                 : mode == MODE_FAILOVER ? mode_failover()
                                         : mode_restart();
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
