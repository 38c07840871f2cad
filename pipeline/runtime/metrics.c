/*
 * metrics.c: Prometheus metrics and health probes (see metrics.h).
 *
 * Names follow Prometheus conventions: prefix chargeflow_, counters end in
 * _total, durations in seconds, sizes in bytes. Histograms use fixed
 * buckets chosen for their scale (commits: 1 ms to 10 s; event time to
 * output: 100 ms to a day, event time being the data's time).
 */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "mem.h"
#include "task.h"

static const double commit_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,  0.1,    0.25,  0.5,  1,
                                    2.5,   5,      10 };
static const double latency_le[] = { 0.1, 0.5, 1,   5,    10,    30,
                                     60,  300, 900, 3600, 21600, 86400 };

#define N_COMMIT_LE  (sizeof(commit_le) / sizeof(commit_le[0]))
#define N_LATENCY_LE (sizeof(latency_le) / sizeof(latency_le[0]))

typedef struct hist {
        uint64_t bucket[16]; /* per bucket (not cumulative); [n] = +Inf */
        uint64_t count;
        double sum;
} hist;

struct cf_metrics {
        cf_httpd *h;
        pthread_mutex_t lock;
        /* Under lock: what the HTTP thread serves. */
        char *text;
        size_t len;
        bool tables_loaded, assigned;
        int restoring;
        /* Runtime thread only. */
        hist commit, latency;
        int sb_copies, sb_failed;
        int64_t sb_lag;
        int64_t inbuf, inbuf_peak, inbuf_max; /* input.buffer.max.bytes */
};

static void observe(hist *h, const double *le, size_t n, double v)
{
        size_t i = 0;
        while (i < n && v > le[i])
                i++;
        h->bucket[i]++;
        h->count++;
        h->sum += v;
}

static bool ready(cf_metrics *m, const char **why)
{
        if (!m->tables_loaded)
                *why = "tables not loaded yet";
        else if (!m->assigned)
                *why = "no partitions assigned yet";
        else if (m->restoring)
                *why = "tasks restoring";
        else
                return true;
        return false;
}

static const char *handle(void *opaque, const char *method, const char *path,
                          struct MHD_Connection *conn, const char *body,
                          size_t body_len, int *status, cf_buf *out)
{
        cf_metrics *m = opaque;
        (void)conn;
        (void)body;
        (void)body_len;
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
                *status = 405;
                cf_buf_puts(out, "method not allowed\n");
                return "text/plain; charset=utf-8";
        }
        pthread_mutex_lock(&m->lock);
        const char *type = "text/plain; charset=utf-8";
        if (!strcmp(path, "/metrics")) {
                *status = 200;
                if (m->text)
                        cf_buf_put(out, m->text, m->len);
                type = "text/plain; version=0.0.4; charset=utf-8";
        } else if (!strcmp(path, "/health/live")) {
                *status = 200;
                cf_buf_puts(out, "live\n");
        } else if (!strcmp(path, "/health/ready")) {
                const char *why = NULL;
                if (ready(m, &why)) {
                        *status = 200;
                        cf_buf_puts(out, "ready\n");
                } else {
                        *status = 503;
                        cf_buf_printf(out, "not ready: %s\n", why);
                }
        } else {
                *status = 404;
                cf_buf_puts(out, "not found: /metrics, /health/live, "
                                 "/health/ready\n");
        }
        pthread_mutex_unlock(&m->lock);
        return type;
}

cf_err_t cf_metrics_start(const char *listen, cf_metrics **mp, char *errstr,
                          size_t errstr_size)
{
        cf_metrics *m = cf_calloc(1, sizeof(*m));
        int port;
        pthread_mutex_init(&m->lock, NULL);
        if (cf_httpd_start(listen, handle, m, NULL, NULL, &port, &m->h, errstr,
                           errstr_size)) {
                pthread_mutex_destroy(&m->lock);
                free(m);
                return CF_ERR_IO;
        }
        cf_log(CF_LOG_INFO, "metrics: serving http://%s/metrics (port %d)",
               listen, port);
        *mp = m;
        return CF_OK;
}

void cf_metrics_stop(cf_metrics *m)
{
        if (!m)
                return;
        cf_httpd_stop(m->h);
        pthread_mutex_destroy(&m->lock);
        free(m->text);
        free(m);
}

void cf_metrics_set_tables_loaded(cf_metrics *m)
{
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        m->tables_loaded = true;
        pthread_mutex_unlock(&m->lock);
}

void cf_metrics_set_assigned(cf_metrics *m, bool assigned)
{
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        m->assigned = assigned;
        pthread_mutex_unlock(&m->lock);
}

void cf_metrics_set_standby(cf_metrics *m, int copies, int failed, int64_t lag)
{
        if (!m)
                return;
        m->sb_copies = copies;
        m->sb_failed = failed;
        m->sb_lag = lag;
}

void cf_metrics_set_input_buffer(cf_metrics *m, int64_t bytes, int64_t peak,
                                 int64_t max)
{
        if (!m)
                return;
        m->inbuf = bytes;
        m->inbuf_peak = peak;
        m->inbuf_max = max;
}

void cf_metrics_set_restoring(cf_metrics *m, int n)
{
        if (!m)
                return;
        pthread_mutex_lock(&m->lock);
        m->restoring = n;
        pthread_mutex_unlock(&m->lock);
}

void cf_metrics_observe_commit(cf_metrics *m, int64_t ms)
{
        if (m)
                observe(&m->commit, commit_le, N_COMMIT_LE, (double)ms / 1e3);
}

void cf_metrics_observe_delivery(cf_metrics *m, int64_t event_ms,
                                 int64_t now_ms)
{
        if (m && event_ms > 0)
                observe(&m->latency, latency_le, N_LATENCY_LE,
                        (double)(now_ms - event_ms) / 1e3);
}

/* ---- rendering ------------------------------------------------------------
 */

static void head(cf_buf *b, const char *name, const char *type,
                 const char *help)
{
        cf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                      type);
}

/* A metric with one unlabelled sample. */
static void single(cf_buf *b, const char *name, const char *type,
                   const char *help, int64_t v)
{
        head(b, name, type, help);
        cf_buf_printf(b, "%s %" PRId64 "\n", name, v);
}

static void render_hist(cf_buf *b, const char *name, const char *help,
                        const hist *h, const double *le, size_t n)
{
        uint64_t cum = 0;
        head(b, name, "histogram", help);
        for (size_t i = 0; i < n; i++) {
                cum += h->bucket[i];
                cf_buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                              le[i], cum);
        }
        cum += h->bucket[n];
        cf_buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
        cf_buf_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, h->sum,
                      name, h->count);
}

void cf_metrics_publish(cf_metrics *m, const cf_runtime *rt, int64_t commits)
{
        if (!m)
                return;
        cf_buf b;
        cf_counts tot[CF_IN__CNT];
        int64_t reasons[CF_REJECT__CNT] = { 0 };
        uint64_t hits[CF_COL__CNT] = { 0 }, misses[CF_COL__CNT] = { 0 };
        bool has_store[CF_COL__CNT] = { false };
        int n_a = 0, n_b = 0;
        cf_buf_init(&b);
        memset(tot, 0, sizeof(tot));
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                const cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                if (t->sub == 'A')
                        n_a++;
                else
                        n_b++;
                for (int i = 0; i < CF_IN__CNT; i++) {
                        tot[i].in += t->cnt[i].in;
                        tot[i].accepted += t->cnt[i].accepted;
                        tot[i].dup += t->cnt[i].dup;
                        tot[i].rejected += t->cnt[i].rejected;
                        tot[i].pending += t->cnt[i].pending;
                }
                for (int r = 0; r < CF_REJECT__CNT; r++)
                        reasons[r] += t->reasons[r];
                for (size_t k = 0; k < t->n_stores; k++) {
                        cf_store_stats ss;
                        cf_col_t col = cf_store_col(t->stores[k]);
                        cf_store_stats_get(t->stores[k], &ss);
                        hits[col] += ss.hits;
                        misses[col] += ss.misses;
                        has_store[col] = true;
                }
        }
        static const struct {
                const char *suffix, *help;
                size_t off;
        } in_metrics[] = {
                { "input_records_total", "Input records read, per topic.",
                  offsetof(cf_counts, in) },
                { "input_accepted_total",
                  "Input records accepted by the stages, per topic.",
                  offsetof(cf_counts, accepted) },
                { "input_duplicates_total",
                  "Input records dropped as exact repeats, per topic.",
                  offsetof(cf_counts, dup) },
                { "input_rejected_total",
                  "Input records sent to the rejected topic, per topic.",
                  offsetof(cf_counts, rejected) },
        };
        for (size_t k = 0; k < sizeof(in_metrics) / sizeof(in_metrics[0]);
             k++) {
                char name[96];
                snprintf(name, sizeof(name), "chargeflow_%s",
                         in_metrics[k].suffix);
                head(&b, name, "counter", in_metrics[k].help);
                for (int i = 0; i < CF_IN__CNT; i++)
                        cf_buf_printf(&b, "%s{topic=\"%s\"} %" PRId64 "\n",
                                      name, rt->in_topic[i],
                                      *(const int64_t *)((const char *)&tot[i] +
                                                         in_metrics[k].off));
        }
        head(&b, "chargeflow_input_pending_records", "gauge",
             "Input records held by the stages (waiting for a session, a "
             "site, or the allowed lateness), per topic.");
        for (int i = 0; i < CF_IN__CNT; i++)
                cf_buf_printf(&b,
                              "chargeflow_input_pending_records{topic=\"%s\"} "
                              "%" PRId64 "\n",
                              rt->in_topic[i], tot[i].pending);
        const struct {
                const char *name, *help;
                int64_t v;
        } inbuf[] = {
                { "chargeflow_input_buffer_bytes",
                  "Input records fetched and waiting in the tasks' queues, in "
                  "bytes (input.buffer.max.bytes).",
                  m->inbuf },
                { "chargeflow_input_buffer_peak_bytes",
                  "The most input the tasks' queues have held since the "
                  "start.",
                  m->inbuf_peak },
                { "chargeflow_input_buffer_max_bytes",
                  "input.buffer.max.bytes.", m->inbuf_max },
        };
        for (size_t k = 0; k < sizeof(inbuf) / sizeof(inbuf[0]); k++)
                single(&b, inbuf[k].name, "gauge", inbuf[k].help, inbuf[k].v);
        head(&b, "chargeflow_rejected_total", "counter",
             "Input records rejected, per reason.");
        for (int r = 0; r < CF_REJECT__CNT; r++)
                cf_buf_printf(&b,
                              "chargeflow_rejected_total{reason=\"%s\"} "
                              "%" PRId64 "\n",
                              cf_reject_reason_name(r), reasons[r]);
        head(&b, "chargeflow_consumer_lag_records", "gauge",
             "Records on the broker not yet processed, per input partition "
             "(from the last fetch's high watermark).");
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                const cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                for (int i = 0; i < CF_IN__CNT; i++) {
                        int64_t lo, hi;
                        if ((t->sub == 'A') != (i != CF_IN_REPARTITION))
                                continue;
                        if (rd_kafka_get_watermark_offsets(
                                rt->consumer, rt->in_topic[i], t->id, &lo, &hi))
                                continue;
                        int64_t pos = t->in[i].next_offset >= 0
                                          ? t->in[i].next_offset
                                          : lo;
                        cf_buf_printf(&b,
                                      "chargeflow_consumer_lag_records{topic="
                                      "\"%s\",partition=\"%d\"} %" PRId64 "\n",
                                      rt->in_topic[i], (int)t->id,
                                      hi > pos && hi >= 0 ? hi - pos : 0);
                }
        }
        single(&b, "chargeflow_output_produced_total", "counter",
               "Output records handed to the producer (all output topics).",
               rt->produced);
        single(&b, "chargeflow_output_delivered_total", "counter",
               "Output records the broker acknowledged (all output topics).",
               rt->delivered);
        single(&b, "chargeflow_commits_total", "counter",
               "Commits (one RocksDB batch for all tasks).", commits);
        render_hist(&b, "chargeflow_commit_duration_seconds",
                    "Time of one commit: state batch written and synced, "
                    "outputs handed to the producer.",
                    &m->commit, commit_le, N_COMMIT_LE);
        render_hist(&b, "chargeflow_event_to_output_seconds",
                    "Wall clock at an output's delivery minus its event "
                    "time (the record's timestamp), per delivered output.",
                    &m->latency, latency_le, N_LATENCY_LE);
        head(&b, "chargeflow_state_bytes", "gauge",
             "RocksDB bytes per column family (SST files and memtables).");
        for (int c = 0; c < CF_COL__CNT; c++)
                cf_buf_printf(&b,
                              "chargeflow_state_bytes{column_family=\"%s\"} "
                              "%" PRIu64 "\n",
                              cf_state_col_name((cf_col_t)c),
                              rt->st ? cf_state_col_bytes(rt->st, (cf_col_t)c)
                                     : 0);
        head(&b, "chargeflow_store_cache_hit_ratio", "gauge",
             "Share of store reads answered from the write-back cache, per "
             "store (its column family), since its tasks were created.");
        for (int c = 0; c < CF_COL__CNT; c++)
                if (has_store[c])
                        cf_buf_printf(
                            &b,
                            "chargeflow_store_cache_hit_ratio{store=\"%s\"} "
                            "%.6f\n",
                            cf_state_col_name((cf_col_t)c),
                            hits[c] + misses[c]
                                ? (double)hits[c] /
                                      (double)(hits[c] + misses[c])
                                : 1.0);
        head(&b, "chargeflow_tasks_assigned", "gauge",
             "Tasks this process runs, per sub-topology.");
        cf_buf_printf(&b,
                      "chargeflow_tasks_assigned{subtopology=\"rating\"} %d\n"
                      "chargeflow_tasks_assigned{subtopology=\"billing\"} "
                      "%d\n",
                      n_a, n_b);
        head(&b, "chargeflow_task_watermark_seconds", "gauge",
             "Event-time watermark of each task (seconds since the epoch).");
        for (int32_t p = 0; p < rt->n_tasks; p++) {
                const cf_task *t = rt->tasks[p];
                if (!t)
                        continue;
                int64_t wm = cf_task_watermark(t);
                if (wm == CF_NONE)
                        continue;
                if (wm == CF_WATERMARK_END)
                        continue; /* input over: no time */
                cf_buf_printf(&b,
                              "chargeflow_task_watermark_seconds{task=\"%s\"} "
                              "%.3f\n",
                              t->name, (double)wm / 1e3);
        }
        head(&b, "chargeflow_standby_tasks", "gauge",
             "Standby copies of tasks kept (num.standby.replicas).");
        cf_buf_printf(&b, "chargeflow_standby_tasks %d\n", m->sb_copies);
        head(&b, "chargeflow_standby_failed_tasks", "gauge",
             "Standby copies that stopped at a commit they could not apply "
             "(the task then restores from its log when assigned).");
        cf_buf_printf(&b, "chargeflow_standby_failed_tasks %d\n", m->sb_failed);
        head(&b, "chargeflow_standby_lag_offsets", "gauge",
             "Task log offsets the standby copies have not read yet (from "
             "the high watermarks last seen).");
        cf_buf_printf(&b, "chargeflow_standby_lag_offsets %" PRId64 "\n",
                      m->sb_lag);
        pthread_mutex_lock(&m->lock);
        head(&b, "chargeflow_tasks_restoring", "gauge",
             "Tasks being restored (created, recovering their outbox).");
        cf_buf_printf(&b, "chargeflow_tasks_restoring %d\n", m->restoring);
        head(&b, "chargeflow_ready", "gauge",
             "1 when /health/ready answers 200.");
        const char *why;
        cf_buf_printf(&b, "chargeflow_ready %d\n", ready(m, &why) ? 1 : 0);
        free(m->text);
        m->text = (char *)b.p;
        m->len = b.len;
        pthread_mutex_unlock(&m->lock);
}
