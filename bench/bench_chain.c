/*
 * bench_chain.c: the stage chain in process, without Kafka.
 *
 * Feeds the generator's record file (`chargeflow gen --out FILE
 * --partitions N`) through the same tasks as `chargeflow run`: decode,
 * dedup, validate, sessionize, price, and billing's aggregate and close,
 * with the real RocksDB state (a fresh directory per run) and commits every
 * commit.interval.ms of wall time, synced. One thread feeds every task.
 *
 *   build/chargeflow gen --preset small --seed 1 --faults --days 45 \
 *       --out /tmp/small.cfgen --partitions 8
 *   build/bench/bench_chain /tmp/small.cfgen [runs] [commit_ms] [guarantee]
 *       [--set key=value ...] [--part I/N]
 *
 * With at_least_once the outbox is not written (outputs are handed on at
 * the commit all the same): the difference is the outbox's cost in the
 * state store. With --part I/N it takes only the input partitions p with
 * p % N == I, as one of N processes of a group: N of them started together
 * measure the chain on N cores (`chargeflow bench --cores`). Each loads
 * the tables whole, as each process of a group does.
 *
 * Prints per run and the median: input events/s (wall, from the first
 * event: loading the tables is timed apart), CPU seconds per million events
 * (process CPU, RocksDB's background threads included), RocksDB writes
 * (batch entries) and WriteBatch bytes per input event, outputs. With
 * --json, one JSON object per run instead (`chargeflow bench` reads it),
 * with also the process's disk writes per event (/proc/self/io: WAL,
 * flushes, compactions).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "genfile.h"
#include "inproc.h"
#include "store.h"
#include "task.h"

typedef struct result {
        double eps, cpu_per_m, writes_per_event, secs, table_secs;
        double mono_first, mono_end; /* CLOCK_MONOTONIC, s: one clock for
                                        every process of --part */
        uint64_t events, outputs, state_bytes;
        int64_t disk_bytes; /* -1: unknown */
} result;

static double now_s(clockid_t c)
{
        struct timespec ts;
        clock_gettime(c, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_out(void *opaque, const cf_out *o)
{
        (void)o;
        (*(uint64_t *)opaque)++;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static const char *guarantee = "exactly_once";
/* --part I/N: this process takes the input partitions p with p % N == I,
 * as one of N processes in one group would (tables whole, as every
 * process of a group loads them). */
static int part_i = 0, part_n = 1;
/* --set key=value options, applied to every run's configuration. */
static const char *sets[16];
static int n_sets;

/* The stores of every task, summed per kind of task and store (the k-th
 * store of each rating or billing task), to stderr: hit rate, RocksDB
 * reads and flushed writes per input event, what memory holds at the
 * end. */
static void print_stores(cf_inproc *ip, int32_t parts, uint64_t events)
{
        for (int kind = 0; kind < 2; kind++) {
                cf_store_stats sum[CF_TASK_MAX_STORES];
                memset(sum, 0, sizeof(sum));
                cf_col_t col[CF_TASK_MAX_STORES] = { 0 };
                size_t n = 0;
                for (int32_t p = 0; p < parts; p++) {
                        cf_task *t = cf_inproc_task(ip, kind * parts + p);
                        if (!t)
                                continue;
                        for (size_t k = 0; k < t->n_stores; k++) {
                                cf_store_stats x;
                                cf_store_stats_get(t->stores[k], &x);
                                col[k] = cf_store_col(t->stores[k]);
                                sum[k].hits += x.hits;
                                sum[k].misses += x.misses;
                                sum[k].reads += x.reads;
                                sum[k].flushed += x.flushed;
                                sum[k].entries += x.entries;
                                sum[k].bytes += x.bytes;
                                sum[k].evictions += x.evictions;
                        }
                        if (t->n_stores > n)
                                n = t->n_stores;
                }
                for (size_t k = 0; k < n; k++) {
                        uint64_t gets = sum[k].hits + sum[k].misses;
                        fprintf(
                            stderr,
                            "store %s-%zu %-13s hits %6.2f%% of %llu, "
                            "reads/ev %.4f, writes/ev %.4f, evictions "
                            "%llu, at the end %zu entries, %.1f MiB\n",
                            kind ? "billing" : "rating", k,
                            cf_state_col_name(col[k]),
                            gets ? 100.0 * (double)sum[k].hits / (double)gets
                                 : 100.0,
                            (unsigned long long)gets,
                            (double)sum[k].reads / (double)events,
                            (double)sum[k].flushed / (double)events,
                            (unsigned long long)sum[k].evictions,
                            sum[k].entries, (double)sum[k].bytes / 1048576.0);
                }
        }
}

static int run_once(const char *path, int64_t commit_ms, int run, result *res)
{
        char err[512], dir[64], cmd[128];
        cf_genfile_reader *r;
        if (cf_genfile_reader_open(&r, path, err, sizeof(err))) {
                fprintf(stderr, "bench_chain: %s\n", err);
                return 1;
        }
        int32_t parts = cf_genfile_reader_partitions(r);
        if (parts <= 0) {
                fprintf(stderr,
                        "bench_chain: %s has no partitions: write it "
                        "with gen --partitions N\n",
                        path);
                return 1;
        }
        int ti_sessions = cf_genfile_reader_topic_index(r, "charging.sessions");
        int ti_meter = cf_genfile_reader_topic_index(r, "charging.meter");
        int ti_sites = cf_genfile_reader_topic_index(r, "billing.sites");
        int ti_users = cf_genfile_reader_topic_index(r, "billing.users");
        snprintf(dir, sizeof(dir), "/tmp/cf-bench-chain-%d-%d", (int)getpid(),
                 run);
        cf_config cfg;
        cf_config_init(&cfg);
        cf_config_set(&cfg, "state.dir", dir, err, sizeof(err));
        cf_config_set(&cfg, "processing.guarantee", guarantee, err,
                      sizeof(err));
        for (int i = 0; i < n_sets; i++) {
                char kv[512];
                snprintf(kv, sizeof(kv), "%s", sets[i]);
                char *eq = strchr(kv, '=');
                if (!eq) {
                        fprintf(stderr, "bench_chain: --set %s: no '='\n",
                                sets[i]);
                        return 1;
                }
                *eq = 0;
                if (cf_config_set(&cfg, kv, eq + 1, err, sizeof(err))) {
                        fprintf(stderr, "bench_chain: %s\n", err);
                        return 1;
                }
        }
        uint64_t outputs = 0;
        cf_inproc *ip;
        if (cf_inproc_new(&cfg, parts, count_out, &outputs, &ip, err,
                          sizeof(err))) {
                fprintf(stderr, "bench_chain: %s\n", err);
                return 1;
        }
        int64_t *offsets = calloc((size_t)parts * 2, sizeof(int64_t));
        cf_genfile_rec rec;
        uint64_t events = 0, base_writes = 0;
        cf_state_writes sw0 = { 0, 0, 0 }, sw1;
        /* The clock starts at the first event: loading the tables (all
         * of them come first in the file) is timed on its own. */
        double tw0 = now_s(CLOCK_MONOTONIC), w0 = 0, c0 = 0;
        double last_commit = tw0;
        int64_t d0 = 0;
        while (cf_genfile_next(r, &rec) == CF_OK) {
                int t = (int)rec.topic;
                if (t == ti_sites || t == ti_users) {
                        cf_inproc_table(
                            ip, t == ti_sites ? CF_TABLE_SITES : CF_TABLE_USERS,
                            rec.key, rec.key_len, rec.value, rec.value_len);
                        continue;
                }
                if (t != ti_sessions && t != ti_meter)
                        continue;
                if (rec.partition % part_n != part_i)
                        continue;
                if (!events) {
                        if (cf_inproc_commit(ip, err, sizeof(err))) {
                                fprintf(stderr, "bench_chain: %s\n", err);
                                return 1;
                        }
                        w0 = last_commit = now_s(CLOCK_MONOTONIC);
                        c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
                        d0 = cf_proc_write_bytes();
                        res->table_secs = w0 - tw0;
                        base_writes = cf_inproc_writes(ip);
                        cf_state_write_stats(cf_inproc_state(ip), &sw0);
                }
                int input = t == ti_sessions ? CF_IN_SESSIONS : CF_IN_METER;
                cf_src src = {
                        .input = input,
                        .partition = rec.partition,
                        .offset = offsets[rec.partition * 2 + input]++,
                        .ts = rec.timestamp_ms,
                        .key = rec.key,
                        .key_len = rec.key_len,
                        .value = rec.value,
                        .value_len = rec.value_len,
                };
                cf_inproc_feed(ip, &src);
                events++;
                if ((events & 1023) == 0) {
                        double w = now_s(CLOCK_MONOTONIC);
                        if ((w - last_commit) * 1000 >= (double)commit_ms) {
                                if (cf_inproc_commit(ip, err, sizeof(err))) {
                                        fprintf(stderr, "bench_chain: %s\n",
                                                err);
                                        return 1;
                                }
                                last_commit = w;
                        }
                }
        }
        cf_inproc_drain(ip);
        /* Until billing has sent every statement due (it closes a
         * period over several commits when many parties share it). */
        for (int k = 0; k < 2 || (!cf_inproc_finished(ip) && k < 100000); k++)
                if (cf_inproc_commit(ip, err, sizeof(err))) {
                        fprintf(stderr, "bench_chain: %s\n", err);
                        return 1;
                }
        double w1 = now_s(CLOCK_MONOTONIC),
               c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        res->events = events;
        res->outputs = outputs;
        res->secs = w1 - w0;
        res->mono_first = w0;
        res->mono_end = w1;
        res->eps = (double)events / (w1 - w0);
        res->cpu_per_m = (c1 - c0) / ((double)events / 1e6);
        res->writes_per_event =
            (double)(cf_inproc_writes(ip) - base_writes) / (double)events;
        cf_state_write_stats(cf_inproc_state(ip), &sw1);
        res->state_bytes = sw1.bytes - sw0.bytes;
        print_stores(ip, parts, events);
        int64_t d1 = cf_proc_write_bytes();
        res->disk_bytes = d0 >= 0 && d1 >= 0 ? d1 - d0 : -1;
        cf_inproc_destroy(ip);
        cf_config_destroy(&cfg);
        cf_genfile_reader_close(r);
        free(offsets);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "bench_chain: could not remove %s\n", dir);
        return 0;
}

int main(int argc, char **argv)
{
        /* --json: one JSON object per run on stdout, nothing else (for
         * `chargeflow bench`). The rest is positional. */
        bool json = false;
        char *pos[5];
        int np = 0;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        json = true;
                else if (!strcmp(argv[i], "--part") && i + 1 < argc) {
                        if (sscanf(argv[++i], "%d/%d", &part_i, &part_n) != 2 ||
                            part_n < 1 || part_i < 0 || part_i >= part_n) {
                                fprintf(stderr,
                                        "bench_chain: --part %s: "
                                        "expected I/N with 0 <= I "
                                        "< N\n",
                                        argv[i]);
                                return 2;
                        }
                } else if (!strcmp(argv[i], "--set") && i + 1 < argc &&
                           n_sets < 16)
                        sets[n_sets++] = argv[++i];
                else if (np < 5)
                        pos[np++] = argv[i];
        }
        if (np < 1) {
                fprintf(stderr, "usage: bench_chain [--json] FILE [runs (3)] "
                                "[commit_ms (1000)] "
                                "[exactly_once|at_least_once] "
                                "[--set key=value ...] [--part I/N]\n");
                return 2;
        }
        int runs = np > 1 ? atoi(pos[1]) : 3;
        int64_t commit_ms = np > 2 ? atoll(pos[2]) : 1000;
        if (np > 3)
                guarantee = pos[3];
        if (runs < 1)
                runs = 1;
        if (runs > 64)
                runs = 64;
        double eps[64], cpu[64], wpe[64];
        if (!json)
                printf("%-4s %12s %10s %14s %12s %10s %10s\n", "run", "events",
                       "secs", "events/s", "cpu_s/Mev", "writes/ev",
                       "bytes/ev");
        for (int i = 0; i < runs; i++) {
                result res = { 0 };
                if (run_once(pos[0], commit_ms, i, &res))
                        return 1;
                eps[i] = res.eps;
                cpu[i] = res.cpu_per_m;
                wpe[i] = res.writes_per_event;
                if (json) {
                        printf("{\"events\":%llu,\"secs\":%.4f,\"eps\":%.1f,"
                               "\"cpu_s_per_m\":%.4f,\"writes_per_event\":%.5f,"
                               "\"state_bytes_per_event\":%.2f,"
                               "\"disk_bytes_per_event\":%.2f,"
                               "\"table_secs\":%.4f,\"outputs\":%llu,"
                               "\"mono_first\":%.6f,\"mono_end\":%.6f}\n",
                               (unsigned long long)res.events, res.secs,
                               res.eps, res.cpu_per_m, res.writes_per_event,
                               (double)res.state_bytes / (double)res.events,
                               res.disk_bytes < 0 ? -1.0
                                                  : (double)res.disk_bytes /
                                                        (double)res.events,
                               res.table_secs, (unsigned long long)res.outputs,
                               res.mono_first, res.mono_end);
                } else {
                        printf("%-4d %12llu %10.2f %14.0f %12.3f %10.4f "
                               "%10.1f (tables %.2f s, outputs %llu)\n",
                               i, (unsigned long long)res.events, res.secs,
                               res.eps, res.cpu_per_m, res.writes_per_event,
                               (double)res.state_bytes / (double)res.events,
                               res.table_secs, (unsigned long long)res.outputs);
                }
                fflush(stdout);
        }
        if (json)
                return 0;
        qsort(eps, (size_t)runs, sizeof(double), cmp_d);
        qsort(cpu, (size_t)runs, sizeof(double), cmp_d);
        qsort(wpe, (size_t)runs, sizeof(double), cmp_d);
        printf("median: %.0f events/s (min %.0f, max %.0f), %.3f CPU s per "
               "million events, %.4f RocksDB writes per event\n",
               eps[runs / 2], eps[0], eps[runs - 1], cpu[runs / 2],
               wpe[runs / 2]);
        return 0;
}
