/*
 * test_metrics.c: the metrics endpoint on its own (metrics.c): the
 * readiness rule of /health/ready, the histogram exposition and the
 * standby gauges, on a free loopback port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "metrics.h"
#include "runtime.h"
#include "task.h"

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
        cf_buf_put(opaque, p, size * n);
        return size * n;
}

static long get(int port, const char *path, cf_buf *b)
{
        char u[128];
        long status = 0;
        CURL *c = curl_easy_init();
        snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", port, path);
        cf_buf_init(b);
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        cf_buf_putc(b, '\0');
        return status;
}

static int start(cf_metrics **m)
{
        char err[256];
        /* The endpoint does not hand back the port it bound, so port 0 is
         * no use here: the first free one of a range. */
        for (int port = 39100; port < 39200; port++) {
                char listen[64];
                snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
                if (cf_metrics_start(listen, m, err, sizeof(err)) == CF_OK)
                        return port;
        }
        return -1;
}

static void ready_needs_tables_assignment_and_no_restore(void **state)
{
        cf_metrics *m = NULL;
        cf_buf b;
        (void)state;
        int port = start(&m);
        assert_true(port > 0);
        assert_int_equal(get(port, "/health/live", &b), 200);
        cf_buf_free(&b);
        assert_int_equal(get(port, "/health/ready", &b), 503);
        assert_string_equal((char *)b.p, "not ready: tables not loaded yet\n");
        cf_buf_free(&b);
        cf_metrics_set_tables_loaded(m);
        assert_int_equal(get(port, "/health/ready", &b), 503);
        assert_string_equal((char *)b.p,
                            "not ready: no partitions assigned yet\n");
        cf_buf_free(&b);
        cf_metrics_set_restoring(m, 2);
        cf_metrics_set_assigned(m, true);
        assert_int_equal(get(port, "/health/ready", &b), 503);
        assert_string_equal((char *)b.p, "not ready: tasks restoring\n");
        cf_buf_free(&b);
        cf_metrics_set_restoring(m, 0);
        assert_int_equal(get(port, "/health/ready", &b), 200);
        cf_buf_free(&b);
        /* A revoked assignment is not ready again. */
        cf_metrics_set_assigned(m, false);
        assert_int_equal(get(port, "/health/ready", &b), 503);
        cf_buf_free(&b);
        assert_int_equal(get(port, "/nothing", &b), 404);
        cf_buf_free(&b);
        cf_metrics_stop(m);
}

/* Commits of 3 ms and 2 s: 3 ms falls in le="0.005" (above 0.0025), 2 s in
 * le="2.5" (above 1); buckets are cumulative; the sum is 2.003 s.
 * Deliveries: an output whose event time is 90 s before delivery lands in
 * le="300" (above 60). */
static void histograms_are_cumulative_in_seconds(void **state)
{
        cf_metrics *m = NULL;
        cf_buf b;
        cf_config cfg;
        cf_runtime rt;
        (void)state;
        int port = start(&m);
        assert_true(port > 0);
        cf_config_init(&cfg);
        memset(&rt, 0, sizeof(rt)); /* no tasks, no state */
        cf_runtime_init(&rt, &cfg);
        cf_metrics_observe_commit(m, 3);
        cf_metrics_observe_commit(m, 2000);
        cf_metrics_observe_delivery(m, 1000000, 1090000);
        cf_metrics_set_standby(m, 4, 1, 17);
        cf_metrics_publish(m, &rt, 2);
        assert_int_equal(get(port, "/metrics", &b), 200);
        const char *t = (const char *)b.p;
        static const char *const want[] = {
                "chargeflow_commit_duration_seconds_bucket{le=\"0.0025\"} 0\n",
                "chargeflow_commit_duration_seconds_bucket{le=\"0.005\"} 1\n",
                "chargeflow_commit_duration_seconds_bucket{le=\"1\"} 1\n",
                "chargeflow_commit_duration_seconds_bucket{le=\"2.5\"} 2\n",
                "chargeflow_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n",
                "chargeflow_commit_duration_seconds_sum 2.003000\n",
                "chargeflow_commit_duration_seconds_count 2\n",
                "chargeflow_event_to_output_seconds_bucket{le=\"60\"} 0\n",
                "chargeflow_event_to_output_seconds_bucket{le=\"300\"} 1\n",
                "chargeflow_event_to_output_seconds_count 1\n",
                "chargeflow_commits_total 2\n",
                "# TYPE chargeflow_commit_duration_seconds histogram\n",
                "chargeflow_input_records_total{topic=\"charging.sessions\"} "
                "0\n",
                "chargeflow_tasks_assigned{subtopology=\"rating\"} 0\n",
                "chargeflow_ready 0\n",
                "# TYPE chargeflow_standby_tasks gauge\n",
                "chargeflow_standby_tasks 4\n",
                "chargeflow_standby_failed_tasks 1\n",
                "chargeflow_standby_lag_offsets 17\n",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                if (!strstr(t, want[i]))
                        fail_msg("missing: %s", want[i]);
        cf_buf_free(&b);
        cf_metrics_stop(m);
        cf_config_destroy(&cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(ready_needs_tables_assignment_and_no_restore),
                cmocka_unit_test(histograms_are_cumulative_in_seconds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
