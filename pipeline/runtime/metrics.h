/*
 * metrics.h: the ops endpoint of `chargeflow run` (metrics.listen):
 * Prometheus metrics in the text exposition format at /metrics, and the
 * probes /health/live and /health/ready.
 *
 * The runtime's thread owns every counter and renders the whole exposition
 * at each commit (cf_metrics_publish); the HTTP thread serves the last one,
 * copied under a lock. So nothing on the per-record path takes a lock, and
 * a scrape sees the counters as of the last commit (commit.interval.ms).
 * The two histograms are filled on the runtime's thread (commit end and
 * delivery reports, which librdkafka calls from rd_kafka_poll there).
 */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct cf_runtime;
typedef struct cf_metrics cf_metrics;

/* Starts the endpoint on listen ("host:port"). Returns CF_OK and sets *mp,
 * or an error with errstr naming the address. */
cf_err_t cf_metrics_start(const char *listen, cf_metrics **mp, char *errstr,
                          size_t errstr_size);

/* Stops the endpoint and frees m; NULL is a no-op. */
void cf_metrics_stop(cf_metrics *m);

/* Readiness inputs (runtime thread): the tables are loaded; the process
 * has its assignment; tasks being restored (created and recovering their
 * outbox). /health/ready answers 200 once tables are loaded and the
 * assignment is in with nothing restoring. m may be NULL (no endpoint). */
void cf_metrics_set_tables_loaded(cf_metrics *m);
void cf_metrics_set_assigned(cf_metrics *m, bool assigned);
/* The input waiting in the tasks' queues now, the most it has been, and
 * input.buffer.max.bytes (bytes). */
void cf_metrics_set_input_buffer(cf_metrics *m, int64_t bytes, int64_t peak,
                                 int64_t max);
void cf_metrics_set_restoring(cf_metrics *m, int n);

/* Standby copies (cf_standby_stats): kept, failed, offsets not yet read.
 * Runtime thread; shown from the next cf_metrics_publish. */
void cf_metrics_set_standby(cf_metrics *m, int copies, int failed, int64_t lag);

/* Observations (runtime thread; m may be NULL): one commit took ms; one
 * output record with event time event_ms (its Kafka timestamp) was
 * delivered at wall time now_ms. */
void cf_metrics_observe_commit(cf_metrics *m, int64_t ms);
void cf_metrics_observe_delivery(cf_metrics *m, int64_t event_ms,
                                 int64_t now_ms);

/* Renders the metrics of rt (and commits, the number of commits) and makes
 * them what /metrics serves. Runtime thread; m may be NULL. */
void cf_metrics_publish(cf_metrics *m, const struct cf_runtime *rt,
                        int64_t commits);

#endif
