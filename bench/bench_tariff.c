/*
 * bench_tariff.c: pricing speed of pipeline/pricing/tariff.c on one core.
 *
 * A typical session: 60 one-minute readings in Europe/Oslo across the
 * 17:00 peak boundary, then parking; a tariff with a start fee, peak and
 * off-peak energy, charging time after two hours and stepped parking (a
 * few charging periods). A second tariff adds a power restriction, which
 * makes every reading a possible period boundary. Sessions start at 64
 * different times so boundaries fall in different places.
 *
 * usage: bench_tariff [sessions per run (200000)] [runs (7)]
 * Prints the median rate over the runs. Target: >= 200000 sessions/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tariff.h"

#define N_VARIANTS 64
#define N_READINGS 60

static const char *const cf_bench_tariffs[2] = {
        "{\"id\":\"typical\",\"currency\":\"NOK\",\"elements\":["
        "{\"price_components\":[{\"type\":\"FLAT\",\"price\":5,"
        "\"step_size\":1}]},"
        "{\"price_components\":[{\"type\":\"ENERGY\",\"price\":3.25,"
        "\"step_size\":1}],"
        "\"restrictions\":{\"start_time\":\"17:00\",\"end_time\":\"21:00\","
        "\"day_of_week\":[\"MONDAY\",\"TUESDAY\",\"WEDNESDAY\",\"THURSDAY\","
        "\"FRIDAY\"]}},"
        "{\"price_components\":[{\"type\":\"ENERGY\",\"price\":2.10,"
        "\"step_size\":1},{\"type\":\"TIME\",\"price\":0,\"step_size\":60}]},"
        "{\"price_components\":[{\"type\":\"TIME\",\"price\":12,"
        "\"step_size\":60}],\"restrictions\":{\"min_duration\":7200}},"
        "{\"price_components\":[{\"type\":\"PARKING_TIME\",\"price\":30,"
        "\"step_size\":900}]}]}",
        "{\"id\":\"power\",\"currency\":\"NOK\",\"min_price\":{\"excl_vat\":"
        "10},\"elements\":["
        "{\"price_components\":[{\"type\":\"ENERGY\",\"price\":2.50,"
        "\"step_size\":1}],\"restrictions\":{\"max_power\":11}},"
        "{\"price_components\":[{\"type\":\"ENERGY\",\"price\":3.50,"
        "\"step_size\":1}],\"restrictions\":{\"start_time\":\"17:00\","
        "\"end_time\":\"21:00\"}},"
        "{\"price_components\":[{\"type\":\"ENERGY\",\"price\":3.00,"
        "\"step_size\":1}]},"
        "{\"price_components\":[{\"type\":\"PARKING_TIME\",\"price\":30,"
        "\"step_size\":900}]}]}",
};

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        long n = argc > 1 ? atol(argv[1]) : 200000;
        int runs = argc > 2 ? atoi(argv[2]) : 7;
        if (n <= 0 || runs <= 0 || runs > 101) {
                fprintf(stderr, "usage: bench_tariff [sessions] [runs]\n");
                return 2;
        }
        const cf_tz *tz = cf_tz_get("Europe/Oslo");
        if (!tz) {
                fprintf(stderr, "bench_tariff: no Europe/Oslo zone\n");
                return 1;
        }
        /* Session variants: start 15:40 local plus k * 3 min on a Thursday
         * in January (UTC+1), 60 readings a minute apart,
         * charging ends at the last reading, 20 more minutes parked. */
        static cf_meter_point pts[N_VARIANTS][N_READINGS];
        int64_t starts[N_VARIANTS];
        int64_t day = cf_days_from_civil(2026, 1, 15);
        for (int k = 0; k < N_VARIANTS; k++) {
                int64_t t0 = (day * 86400 + 14 * 3600 + 40 * 60) * 1000 +
                             (int64_t)k * 180000;
                starts[k] = t0;
                int64_t reg = 1000000;
                for (int i = 0; i < N_READINGS; i++) {
                        /* ~11.5 kW, tapering to ~6 kW after 40 min: the
                         * power tariff switches element once */
                        int64_t w =
                            (i < 40 ? 11200 : 6000) + (i * 37 + k * 11) % 400;
                        reg += w / 60; /* Wh in a minute */
                        pts[k][i] = (cf_meter_point){ t0 + (i + 1) * 60000LL,
                                                      reg, w, CF_NONE };
                }
        }
        cf_arena tarena, a;
        cf_arena_init(&tarena, 0);
        cf_arena_init(&a, 64 * 1024);
        for (int v = 0; v < 2; v++) {
                cf_tariff t;
                char err[256];
                if (cf_tariff_from_json(cf_bench_tariffs[v],
                                        strlen(cf_bench_tariffs[v]), &tarena,
                                        &t, NULL, err, sizeof(err))) {
                        fprintf(stderr, "bench_tariff: %s\n", err);
                        return 1;
                }
                double rate[101];
                uint64_t periods = 0, total = 0;
                for (int r = 0; r < runs; r++) {
                        double t_start = now_s();
                        for (long i = 0; i < n; i++) {
                                int k = (int)(i % N_VARIANTS);
                                cf_price_input in = {
                                        .tariff = &t,
                                        .tz = tz,
                                        .default_vat_bp = 2500,
                                        .start_ms = starts[k],
                                        .stop_ms = starts[k] +
                                                   (N_READINGS + 20) * 60000LL,
                                        .charging_end_ms =
                                            starts[k] + N_READINGS * 60000LL,
                                        .start_wh = 1000000,
                                        .points = pts[k],
                                        .n_points = N_READINGS,
                                };
                                cf_price_result res;
                                if (cf_price_session(&in, &a, &res, err,
                                                     sizeof(err))) {
                                        fprintf(stderr, "bench_tariff: %s\n",
                                                err);
                                        return 1;
                                }
                                periods += res.n_periods;
                                total += (uint64_t)res.total_incl_vat;
                                cf_arena_reset(&a);
                        }
                        rate[r] = (double)n / (now_s() - t_start);
                }
                qsort(rate, (size_t)runs, sizeof(rate[0]), cmp_d);
                double med = rate[runs / 2];
                printf("bench_tariff %-8s %ld sessions x %d runs: median "
                       "%.0f sessions/s (%.2f us/session), min %.0f, max "
                       "%.0f; %.2f periods/session%s\n",
                       v ? "power" : "typical", n, runs, med, 1e6 / med,
                       rate[0], rate[runs - 1],
                       (double)periods / ((double)n * runs),
                       total ? "" : " (all free?)");
        }
        cf_arena_destroy(&a);
        cf_arena_destroy(&tarena);
        return 0;
}
