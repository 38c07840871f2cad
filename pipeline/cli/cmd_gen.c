/*
 * cmd_gen.c: `chargeflow gen`, the load generator (issue 3). It simulates a
 * payment operator's estate (gen_estate.c) and publishes what the charger
 * backends would publish, to the broker or to a file (genfile.h), with a
 * ground-truth file for tests and benchmarks.
 *
 * CONTRACT (what the pipeline may rely on)
 *
 * Topics and keys:
 *   charging.sessions  SessionEvent  key = charger id
 *   charging.meter     MeterReading  key = charger id
 *   billing.sites      Site          key = site id    (published first)
 *   billing.users      User          key = user id    (published second)
 * Both input topics are produced with librdkafka "partitioner=murmur2_random"
 * (the Java client's murmur2 for keyed records), so with equal partition
 * counts a charger's session events and readings are co-partitioned; the
 * file sink can record the same partition (genfile.h, --partitions). The
 * tables are published with Kafka timestamp start - 1 h and flushed before
 * any traffic.
 * Kafka message timestamp = the simulated instant the backend publishes the
 * record: the event time, or the upload time for a late upload or a
 * backfill, or the late publish time of a late stop or a stop in flight.
 * Records are produced in nondecreasing timestamp order (a heap over
 * per-charger next events, merged with a heap of delayed records), except
 * where the reordering fault swaps two records.
 *
 * Ids: tenants T0000, sites S00000, chargers C000000, users U0000000, badges
 * 16 upper-case hex digits; event ids "<tag>-e<hex counter>" and session ids
 * "<tag>-s<hex counter>", tag = 8 hex digits derived from the seed: unique
 * and the same on every run with the same seed and options.
 *
 * Session life cycle per connector: STARTED (energy_wh = register at start);
 * AUTHORIZED 2-20 s later when the site has access control (user_id and/or
 * badge_id; charging starts there, so its register equals the start's);
 * readings every --meter-interval from the start while plugged in (also while
 * idle after the car is full: the register stops growing, power_w = 0),
 * where a periodic reading closer than half an interval to the stop is left
 * out; a final reading at the stop instant; STOPPED at the same instant
 * (register at stop, stop_reason). Readings carry session_id; seq_no grows
 * per charger across sessions. Each connector (EVSE) has its own register,
 * which only grows, across sessions, so overlapping sessions on a charger's
 * two connectors stay separable: energy = STOPPED.energy_wh -
 * STARTED.energy_wh. Delivered power is at most 97 % of the charger's
 * nominal power and readings are at least half an interval apart, so Wh
 * rounding never makes a real reading look above the site's max_power_w.
 * Authentication: about 20 % of authenticated sessions carry only badge_id
 * (resolve it through billing.users), 10 % only user_id (app start), the rest
 * both; 3 % use a badge unknown to billing.users (user null: billed to the
 * site, truth group "unauthenticated"). Sites with access_control=false have
 * no AUTHORIZED event (truth group "unauthenticated").
 *
 * Faults (extra records; a real session's records are never removed or
 * altered, except the lost STOPPED, the timestamps of the late upload, the
 * late stop, the stop in flight and the backfill, and the reorder's
 * position). Rates: --X-rate R, a probability per unit:
 *   dup          per real record  the same key and bytes again, 70 % within
 *                                 2 min, 30 % 1-48 h later; truth "duplicate",
 *                                 no reason (counted as duplicate)
 *   reorder      per real record  held back and published right after the
 *                                 charger's next record (within 2 intervals,
 *                                 at most 3 min); "reorder", no reason
 *   late         per session      the charger goes offline at the session's
 *                                 start for 2 h - 3 days; everything it
 *                                 records meanwhile is published at the end
 *                                 (event times unchanged); one
 *                                 "late_upload" line per episode, no reason
 *   lost-stop    per session      STOPPED not published (the final reading
 *                                 is): "lost_stop", no reason; the session's
 *                                 truth has stop_lost=true and the true
 *                                 energy, which the last reading gives
 *   corrupt      per real record  an undecodable copy (bad magic byte,
 *                                 unknown schema id, cut body or trailing
 *                                 junk) -> SCHEMA; identified by topic, key
 *                                 and FNV-1a 64 of the value bytes ("hash")
 *   invalid      per periodic     one reading on the same charger and
 *                reading          session, between two real readings:
 *                                 register below the previous ->
 *                                 METER_REGRESSION; 10x the site's
 *                                 max_power_w -> METER_JUMP; time 2-30 days
 *                                 ahead -> CLOCK; negative energy -> FIELD;
 *                                 empty charger_id or session_id -> FIELD
 *   orphan       per periodic     a reading for a session id that never
 *                reading          appears (an idle connector of the charger
 *                                 when there is one) -> ORPHAN
 *   unknown-site per real record  a STARTED event of an unknown site and
 *                                 charger (ids SX<hex>, CX<hex>) ->
 *                                 UNKNOWN_SITE
 * Late data (issue 17: corrections; no extra records, no reason: the
 * pipeline corrects, within correction.window.ms, what it first billed).
 * A session's "stop message" is its final reading and its STOPPED (same
 * instant, same register, the reading first):
 *   late-stop    per session      the stop message is published 7 days
 *                                 1 hour to 10 days (whole minutes) after
 *                                 it was due: beyond session.offline.ms
 *                                 (7 days), within correction.window.ms
 *                                 (35); the charger's other records keep
 *                                 coming. The pipeline first closes the
 *                                 session from its last periodic reading
 *                                 (STOP_ESTIMATED), then corrects it.
 *                                 Truth "late_stop", event_id = the
 *                                 STOPPED's, "session_id",
 *                                 "reading_event_id" (the final reading),
 *                                 "time_ms" (the stop), "due_ms" (when it
 *                                 was due), ts_ms (when published); the
 *                                 session has late_stop=true
 *   stop-in-     per session      the stop message is published 5 minutes
 *   flight       whose connector  to 3 hours after the STARTED of the
 *                has a next one   connector's next session (which starts
 *                within a day     within a day of the stop): the pipeline
 *                                 supersedes the session first. Truth
 *                                 "stop_in_flight", as late_stop plus
 *                                 "after_event_id" (the next STARTED) and
 *                                 "next_session_id"; the session has
 *                                 stop_in_flight=true. (Drawn per session
 *                                 at its start; one without a next session
 *                                 in a day publishes its stop on time.)
 *   backfill     per site         the site is onboarded 7-28 days (whole
 *                                 minutes, at most the scenario's end)
 *                                 after the scenario start: every record
 *                                 of its chargers with an event time
 *                                 before then is published then (the
 *                                 producer's clock as Kafka timestamp,
 *                                 event times unchanged, each charger's in
 *                                 event order). One "backfill" line per
 *                                 charger: key = charger, "site",
 *                                 "from_ms" (the start), "to_ms" = ts_ms
 *                                 (the upload), "records"; sessions
 *                                 starting before it have backfill=true
 * Every session keeps its true energy in the truth (stop_wh - start_wh).
 * --faults sets every rate above (dup to unknown-site) not given explicitly
 * to its default, --late-data the three late-data ones (see --help). They
 * are not part of --faults: its runs (tests, benchmarks) keep the volumes
 * and counts they were measured with, and test_rate's counts would not
 * hold (a late stop's final reading is more than dedup.window readings
 * behind: dedup counts it a repeat). The demo and test_late use both.
 * Each extra record has its own event id and (readings) its own seq_no.
 *
 * TRUTH FILE (--truth F): JSON lines, in generation order:
 *   {"type":"scenario", preset, seed, start_ms, end_ms, days,
 *    meter_interval_s, tenants, sites, chargers, connectors, users, badges,
 *    rates:{dup,...}}                                       first line
 *   {"type":"session", session_id, tenant, site, charger, connector,
 *    user|null, badge|null (the badge the traffic carried: null for auth
 *    "user"), group, auth ("none", "both", "badge", "user",
 *    "unknown_badge"), start_ms, stop_ms, charge_start_ms, charge_end_ms
 *    (the car full or the stop), energy_wh, start_wh, stop_wh, stop_reason,
 *    stop_lost, late, events (session events published), readings,
 *    late_stop, stop_in_flight, backfill}
 *   {"type":"fault", fault, topic|null, key, event_id|null, reason|null,
 *    ts_ms (Kafka timestamp), ...} with per kind: corrupt "hash";
 *    reorder "after_event_id"; late_upload "from_ms", "to_ms", "records";
 *    lost_stop/invalid/orphan "session_id" (and "time_ms" for readings);
 *    unknown_site "site", "session_id"; late_stop and stop_in_flight
 *    "session_id", "reading_event_id", "time_ms", "due_ms" (in flight:
 *    "after_event_id", "next_session_id"); backfill "site", "from_ms",
 *    "to_ms", "records"
 *   {"type":"summary", records:{topic:n}, real:{topic:n},
 *    periodic_readings, sessions, faults:{kind:n}}            last line
 *
 * Volume: the small preset with the defaults (seed 1, 45 days, 60 s
 * readings) is 2,549,373 records (7,304 sessions; 2,587,589 records with
 * --faults): a few seconds of generation; city is about 0.9 million records
 * per simulated day, country about 15 million.
 *
 * Sinks: the broker (librdkafka, lz4 by default, idempotent, delivery
 * reports counted: any failure makes the exit code 1) or a genfile. --rate
 * paces the publishing in publish order. On a terminal, stderr shows a
 * progress line; the final summary always goes to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "clock.h"
#include "gen_estate.h"
#include "genfile.h"
#include "kafka.h"
#include "tz.h"

static volatile sig_atomic_t gen_stop;

static void on_signal(int sig)
{
        (void)sig;
        gen_stop = 1;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *const cf_gen_producer_props[][2] = {
        { "enable.idempotence", "true" },
        /* Java-compatible murmur2 for keyed records: co-partitioning. */
        { "partitioner", "murmur2_random" },
        { "linger.ms", "20" },
        { "batch.size", "1000000" },
        { "batch.num.messages", "20000" },
        { "queue.buffering.max.messages", "1000000" },
        { "queue.buffering.max.kbytes", "262144" },
        { NULL, NULL },
};

/* ---- sinks ------------------------------------------------------------- */

typedef struct gen_out {
        /* broker */
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt[CF_GEN_T__CNT];
        uint64_t failed, produced;
        /* file */
        cf_genfile_writer *w;
        /* common */
        uint64_t events, traffic, bytes;
        double rate, t0, last_progress;
        bool progress;
        int64_t sim_ms;
} gen_out;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        gen_out *o = opaque;
        (void)rk;
        if (m->err) {
                if (o->failed++ == 0)
                        fprintf(stderr, "chargeflow gen: delivery failed: %s\n",
                                rd_kafka_err2str(m->err));
        }
}

static void show_progress(gen_out *o, bool final)
{
        double t = now_s();
        if (!final && t - o->last_progress < 0.5)
                return;
        o->last_progress = t;
        char when[32] = "-";
        if (o->sim_ms > 0) {
                time_t s = (time_t)(o->sim_ms / 1000);
                struct tm tm;
                gmtime_r(&s, &tm);
                strftime(when, sizeof(when), "%Y-%m-%d %H:%MZ", &tm);
        }
        double el = t - o->t0;
        fprintf(stderr, "\rgen: %" PRIu64 " events  %.0f events/s  sim %s   %s",
                o->events, el > 0 ? (double)o->events / el : 0.0, when,
                final ? "\n" : "");
        fflush(stderr);
}

/* Pacing, progress and stop requests, every few records. */
static int out_tick(gen_out *o)
{
        if (gen_stop)
                return 1;
        if (o->rate > 0 && (o->events & 63) == 0) {
                double due = o->t0 + (double)o->events / o->rate;
                double t = now_s();
                if (due > t) {
                        double d = due - t;
                        struct timespec ts = {
                                (time_t)d, (long)((d - (double)(time_t)d) * 1e9)
                        };
                        nanosleep(&ts, NULL);
                }
        }
        if (o->progress && (o->events & 0xfff) == 0)
                show_progress(o, false);
        return 0;
}

/* Produces one record; false on a fatal error. Calling thread only. */
static bool produce_one(gen_out *o, uint32_t topic, int64_t ts, const void *key,
                        size_t klen, const void *v, size_t vlen)
{
        for (;;) {
                rd_kafka_resp_err_t err =
                    rd_kafka_producev(o->rk, RD_KAFKA_V_RKT(o->rkt[topic]),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY((void *)key, klen),
                                      RD_KAFKA_V_VALUE((void *)v, vlen),
                                      RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        fprintf(stderr, "chargeflow gen: produce: %s\n",
                                rd_kafka_err2str(err));
                        o->failed++;
                        return false;
                }
                rd_kafka_poll(o->rk, 10);
                if (gen_stop)
                        return false;
        }
        if ((++o->produced & 1023) == 0)
                rd_kafka_poll(o->rk, 0);
        return true;
}

static int sink_kafka(void *opaque, uint32_t topic, int64_t ts, const void *key,
                      size_t klen, const void *v, size_t vlen)
{
        gen_out *o = opaque;
        o->events++;
        o->bytes += klen + vlen;
        o->sim_ms = ts;
        if (topic <= CF_GEN_T_METER)
                o->traffic++;
        if (!produce_one(o, topic, ts, key, klen, v, vlen))
                return 1;
        return out_tick(o);
}

static int sink_file(void *opaque, uint32_t topic, int64_t ts, const void *key,
                     size_t klen, const void *v, size_t vlen)
{
        gen_out *o = opaque;
        o->events++;
        o->bytes += klen + vlen;
        o->sim_ms = ts;
        if (topic <= CF_GEN_T_METER)
                o->traffic++;
        if (cf_genfile_write(o->w, topic, ts, key, klen, v, vlen) != CF_OK) {
                fprintf(stderr, "chargeflow gen: write error: %s\n",
                        strerror(errno));
                return 1;
        }
        return out_tick(o);
}

/* Waits until everything produced is delivered (or failed). */
static void kafka_drain(gen_out *o)
{
        while (rd_kafka_outq_len(o->rk) > 0 && !gen_stop)
                rd_kafka_flush(o->rk, 1000);
        rd_kafka_poll(o->rk, 0);
}

/* ---- the command ------------------------------------------------------- */

static void usage(FILE *f)
{
        fprintf(
            f,
            "usage: chargeflow gen --preset small|city|country --seed N "
            "[--faults] [--late-data] [--days D]\n"
            "         (--bootstrap B | --bootstrap-file F | --out FILE) "
            "[--truth FILE]\n"
            "         [--rate EVENTS_PER_S] [options]\n\n"
            "Simulates a payment operator's estate and publishes the "
            "charger backends'\ntraffic (charging.sessions, "
            "charging.meter, after billing.sites and\nbilling.users) "
            "to the broker or to a file. Deterministic for a seed.\n\n"
            "  --preset P          small (3 tenants, 20 sites, 200 "
            "chargers, 2,000 users),\n"
            "                      city (200 sites, 5,000 chargers, "
            "100,000 users),\n"
            "                      country (5,000 sites, 100,000 "
            "chargers, 2,000,000 users)\n"
            "  --seed N            scenario seed (default 1)\n"
            "  --days D            simulated days (default %d)\n"
            "  --start YYYY-MM-DD  scenario start, 00:00Z (default "
            "2026-10-20)\n"
            "  --meter-interval S  seconds between meter readings, 10..3600 "
            "(default %d)\n"
            "  --charger-plans     housing sites price a private and shared "
            "chargers by\n"
            "                      charger group (incl. VAT prices, "
            "limits)\n"
            "  --bootstrap B       produce to the broker at B\n"
            "  --bootstrap-file F  read B from the first line of F\n"
            "  --out FILE          write a record file (genfile.h "
            "format) instead\n"
            "  --partitions N      with --out: record the murmur2 "
            "partition for N partitions\n"
            "  --truth FILE        write the ground truth as JSON lines\n"
            "  --rate R            publish at most R events per second\n"
            "  --compression C     lz4 (default), zstd or none\n"
            "  -X key=value        extra librdkafka producer property\n"
            "  --faults            every fault rate below but the late "
            "data's, unless\n"
            "                      given, at its default\n"
            "  --late-data         the late data's (late-stop, "
            "stop-in-flight, backfill),\n"
            "                      unless given, at their default\n",
            CF_GEN_DEFAULT_DAYS, CF_GEN_DEFAULT_INTERVAL);
        for (int i = 0; i < CF_GEN_F__CNT; i++) {
                char flag[40];
                snprintf(flag, sizeof(flag), "--%s-rate R",
                         cf_gen_fault_flag(i));
                fprintf(f, "  %-18s  probability per %s (%s: %g)\n", flag,
                        cf_gen_fault_unit(i),
                        i < CF_GEN_F_LATE_DATA0 ? "--faults" : "--late-data",
                        cf_gen_fault_defaults[i]);
        }
        fprintf(f, "\nThe contract (topics, keys, ordering, faults, truth "
                   "lines) is in pipeline/cli/cmd_gen.c.\n");
}

static bool parse_rate(const char *s, double *out)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (!*s || *end || errno || !(v >= 0 && v <= 1))
                return false;
        *out = v;
        return true;
}

enum {
        O_PRESET = 256,
        O_SEED,
        O_DAYS,
        O_INTERVAL,
        O_BOOTSTRAP,
        O_BOOTSTRAP_FILE,
        O_OUT,
        O_PARTITIONS,
        O_TRUTH,
        O_RATE,
        O_COMPRESSION,
        O_FAULTS,
        O_START,
        O_CHARGER_PLANS,
        O_LATE_DATA,
        O_HELP,
        O_FAULT0, /* O_FAULT0 + cf_gen_fault */
};

int cf_gen_command(int argc, char **argv, cf_gen_result *res)
{
        struct option opts[32 + CF_GEN_F__CNT];
        char fault_opt[CF_GEN_F__CNT][32];
        static const struct option base[] = {
                { "preset", required_argument, NULL, O_PRESET },
                { "seed", required_argument, NULL, O_SEED },
                { "days", required_argument, NULL, O_DAYS },
                { "meter-interval", required_argument, NULL, O_INTERVAL },
                { "bootstrap", required_argument, NULL, O_BOOTSTRAP },
                { "bootstrap-file", required_argument, NULL, O_BOOTSTRAP_FILE },
                { "out", required_argument, NULL, O_OUT },
                { "partitions", required_argument, NULL, O_PARTITIONS },
                { "truth", required_argument, NULL, O_TRUTH },
                { "rate", required_argument, NULL, O_RATE },
                { "compression", required_argument, NULL, O_COMPRESSION },
                { "faults", no_argument, NULL, O_FAULTS },
                { "start", required_argument, NULL, O_START },
                { "charger-plans", no_argument, NULL, O_CHARGER_PLANS },
                { "late-data", no_argument, NULL, O_LATE_DATA },
                { "help", no_argument, NULL, O_HELP },
        };
        size_t nb = sizeof(base) / sizeof(base[0]);
        memcpy(opts, base, sizeof(base));
        for (int i = 0; i < CF_GEN_F__CNT; i++) {
                snprintf(fault_opt[i], sizeof(fault_opt[i]), "%s-rate",
                         cf_gen_fault_flag(i));
                opts[nb + (size_t)i] =
                    (struct option){ fault_opt[i], required_argument, NULL,
                                     O_FAULT0 + i };
        }
        memset(&opts[nb + CF_GEN_F__CNT], 0, sizeof(opts[0]));

        cf_gen_conf conf;
        bool rate_set[CF_GEN_F__CNT] = { false };
        bool faults = false, late_data = false;
        const char *bootstrap = NULL, *bsfile = NULL, *outpath = NULL;
        const char *truthpath = NULL, *compression = "lz4";
        char bsbuf[1024];
        cf_kv xprops[32];
        size_t n_x = 0;
        int64_t v, partitions = 0;
        double rate = 0;
        int c, li = -1, rc = 1;
        char errstr[512];
        cf_gen *g = NULL;
        FILE *truth = NULL;
        gen_out o;
        rd_kafka_conf_t *kc = NULL;

        memset(&o, 0, sizeof(o));
        cf_gen_conf_init(&conf);
        optind = 0; /* glibc: full re-initialisation (in-process reuse) */
        while ((c = getopt_long(argc, argv, "X:", opts, &li)) != -1) {
                switch (c) {
                case O_PRESET:
                        conf.preset = cf_gen_preset_find(optarg);
                        if (conf.preset < 0) {
                                fprintf(stderr,
                                        "chargeflow gen: --preset: small, "
                                        "city or country\n");
                                return 2;
                        }
                        break;
                case O_SEED:
                        if (!cf_parse_i64(optarg, 0, INT64_MAX, &v))
                                goto bad;
                        conf.seed = (uint64_t)v;
                        break;
                case O_DAYS:
                        if (!cf_parse_i64(optarg, 1, 3660, &v))
                                goto bad;
                        conf.days = (int32_t)v;
                        break;
                case O_CHARGER_PLANS:
                        conf.charger_plans = true;
                        break;
                case O_INTERVAL:
                        if (!cf_parse_i64(optarg, 10, 3600, &v))
                                goto bad;
                        conf.meter_interval_s = (int32_t)v;
                        break;
                case O_BOOTSTRAP:
                        bootstrap = optarg;
                        break;
                case O_BOOTSTRAP_FILE:
                        bsfile = optarg;
                        break;
                case O_OUT:
                        outpath = optarg;
                        break;
                case O_PARTITIONS:
                        if (!cf_parse_i64(optarg, 0, 100000, &partitions))
                                goto bad;
                        break;
                case O_TRUTH:
                        truthpath = optarg;
                        break;
                case O_RATE: {
                        char *end;
                        errno = 0;
                        rate = strtod(optarg, &end);
                        if (!*optarg || *end || errno || !(rate > 0))
                                goto bad;
                        break;
                }
                case O_COMPRESSION:
                        compression = optarg;
                        if (strcmp(optarg, "lz4") && strcmp(optarg, "zstd") &&
                            strcmp(optarg, "none"))
                                goto bad;
                        break;
                case O_FAULTS:
                        faults = true;
                        break;
                case O_LATE_DATA:
                        late_data = true;
                        break;
                case O_START: {
                        int y, m, d, n = 0;
                        if (sscanf(optarg, "%4d-%2d-%2d%n", &y, &m, &d, &n) !=
                                3 ||
                            optarg[n] || y < 1971 || y > 9999 || m < 1 ||
                            m > 12 || d < 1 || d > 31)
                                goto bad;
                        conf.start_ms =
                            cf_days_from_civil(y, m, d) * CF_MS_PER_DAY;
                        break;
                }
                case 'X': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg ||
                            n_x == sizeof(xprops) / sizeof(xprops[0]))
                                goto bad;
                        *eq = 0;
                        xprops[n_x++] = (cf_kv){ optarg, eq + 1 };
                        break;
                }
                case O_HELP:
                        usage(stdout);
                        return 0;
                default:
                        if (c >= O_FAULT0 && c < O_FAULT0 + CF_GEN_F__CNT) {
                                if (!parse_rate(optarg,
                                                &conf.rates[c - O_FAULT0]))
                                        goto bad;
                                rate_set[c - O_FAULT0] = true;
                                break;
                        }
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "chargeflow gen: unexpected argument '%s'\n",
                        argv[optind]);
                return 2;
        }
        if (!!bootstrap + !!bsfile + !!outpath != 1) {
                fprintf(stderr, "chargeflow gen: give exactly one of "
                                "--bootstrap, --bootstrap-file, --out\n");
                usage(stderr);
                return 2;
        }
        for (int i = 0; i < CF_GEN_F__CNT; i++)
                if (!rate_set[i] &&
                    (i < CF_GEN_F_LATE_DATA0 ? faults : late_data))
                        conf.rates[i] = cf_gen_fault_defaults[i];
        if (bsfile) {
                if (!cf_read_bootstrap_file(bsfile, bsbuf, sizeof(bsbuf)))
                        return 2;
                bootstrap = bsbuf;
        }

        if (cf_gen_new(&g, &conf, errstr, sizeof(errstr)) != CF_OK) {
                fprintf(stderr, "chargeflow %s\n", errstr);
                return 2;
        }
        if (truthpath) {
                truth = fopen(truthpath, "w");
                if (!truth) {
                        fprintf(stderr, "chargeflow gen: --truth %s: %s\n",
                                truthpath, strerror(errno));
                        goto done;
                }
                setvbuf(truth, NULL, _IOFBF, 1 << 20);
                cf_gen_set_truth(g, truth);
        }

        cf_gen_sink sink;
        if (outpath) {
                if (cf_genfile_writer_open(&o.w, outpath, cf_gen_topic_names,
                                           CF_GEN_T__CNT, (int32_t)partitions,
                                           errstr, sizeof(errstr)) != CF_OK) {
                        fprintf(stderr, "chargeflow %s\n", errstr);
                        goto done;
                }
                sink = sink_file;
        } else {
                kc = cf_kafka_conf_new(bootstrap, NULL, 0, errstr,
                                       sizeof(errstr));
                if (!kc ||
                    cf_kafka_conf_set(kc, "compression.codec", compression,
                                      errstr, sizeof(errstr))) {
                        fprintf(stderr, "chargeflow gen: %s\n", errstr);
                        rc = 2;
                        goto done;
                }
                for (size_t i = 0; cf_gen_producer_props[i][0]; i++)
                        if (cf_kafka_conf_set(kc, cf_gen_producer_props[i][0],
                                              cf_gen_producer_props[i][1],
                                              errstr, sizeof(errstr))) {
                                fprintf(stderr, "chargeflow gen: %s\n", errstr);
                                goto done;
                        }
                for (size_t i = 0; i < n_x; i++)
                        if (cf_kafka_conf_set(kc, xprops[i].key,
                                              xprops[i].value, errstr,
                                              sizeof(errstr))) {
                                fprintf(stderr, "chargeflow gen: %s\n", errstr);
                                rc = 2;
                                goto done;
                        }
                rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
                rd_kafka_conf_set_opaque(kc, &o);
                o.rk =
                    rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
                if (!o.rk) {
                        fprintf(stderr, "chargeflow gen: %s\n", errstr);
                        goto done;
                }
                kc = NULL; /* owned by rk */
                for (int i = 0; i < CF_GEN_T__CNT; i++)
                        o.rkt[i] = rd_kafka_topic_new(
                            o.rk, cf_gen_topic_names[i], NULL);
                sink = sink_kafka;
        }

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        o.progress = isatty(2);
        o.rate = rate;
        double t_start = now_s();
        o.t0 = t_start;
        int src = cf_gen_run_tables(g, sink, &o);
        if (!src && o.rk)
                kafka_drain(&o);
        double t_traffic = now_s();
        uint64_t ev0 = o.events;
        if (!src)
                src = cf_gen_run_traffic(g, sink, &o);
        double t_gen_end = now_s();
        if (o.rk)
                kafka_drain(&o);
        double t_end = now_s();
        if (o.progress)
                show_progress(&o, true);
        if (o.w) {
                cf_err_t e = cf_genfile_writer_close(o.w);
                o.w = NULL;
                if (e != CF_OK) {
                        fprintf(stderr, "chargeflow gen: writing %s failed\n",
                                outpath);
                        src = 1;
                }
        }

        const cf_gen_stats *st = cf_gen_get_stats(g);
        uint64_t nf = 0;
        for (int i = 0; i < CF_GEN_K__CNT; i++)
                nf += st->faults[i];
        double el = (o.rk ? t_end : t_gen_end) - t_traffic;
        fprintf(stderr,
                "gen: %" PRIu64 " records (sessions %" PRIu64 ", meter %" PRIu64
                ", sites %" PRIu64 ", users %" PRIu64 "), %" PRIu64
                " sessions, %" PRIu64
                " faults; traffic %.2f s, %.0f events/s%s\n",
                o.events, st->records[CF_GEN_T_SESSIONS],
                st->records[CF_GEN_T_METER], st->records[CF_GEN_T_SITES],
                st->records[CF_GEN_T_USERS], st->sessions, nf, el,
                el > 0 ? (double)(o.events - ev0) / el : 0.0,
                gen_stop ? " (interrupted)" : "");
        if (o.failed)
                fprintf(stderr,
                        "chargeflow gen: %" PRIu64 " records failed delivery\n",
                        o.failed);
        if (res) {
                res->events = o.events;
                res->traffic = o.traffic;
                res->bytes = o.bytes;
                res->seconds = el;
                res->total_seconds = t_end - t_start;
                res->failed = o.failed;
        }
        rc = src || o.failed || gen_stop ? 1 : 0;
done:
        if (truth && fclose(truth) != 0) {
                fprintf(stderr, "chargeflow gen: writing %s failed\n",
                        truthpath);
                rc = 1;
        }
        if (o.w)
                cf_genfile_writer_close(o.w);
        if (o.rk) {
                for (int i = 0; i < CF_GEN_T__CNT; i++)
                        if (o.rkt[i])
                                rd_kafka_topic_destroy(o.rkt[i]);
                rd_kafka_destroy(o.rk);
        }
        if (kc)
                rd_kafka_conf_destroy(kc);
        cf_gen_destroy(g);
        gen_stop = 0;
        return rc;
bad:
        fprintf(stderr, "chargeflow gen: bad value '%s' for %s%s\n", optarg,
                c == 'X' ? "-" : "--", c == 'X' ? "X" : opts[li].name);
        return 2;
}

int cf_cmd_gen(int argc, char **argv)
{
        return cf_gen_command(argc, argv, NULL);
}
