/*
 * gen_estate.h: the simulated estate and scenario behind `chargeflow gen`
 * (issue 3): tenants, sites, chargers, connectors, users and badges, price
 * plans, charging sessions with their meter readings, and injected faults,
 * turned into Kafka records in publish-time order plus a ground-truth file.
 * cmd_gen.c has the command, its sinks (broker, file) and the full contract.
 *
 * Everything follows from the configuration and the seed: the same
 * cf_gen_conf gives the same records, byte for byte, in the same order, and
 * the same truth file. Randomness comes from splitmix64 streams only: one per
 * connector for the traffic (so that faults never change the real traffic)
 * and one for the faults. Physics and money use integers only.
 *
 * Ownership: a cf_gen owns its estate, its codec registry and its buffers;
 * the sink gets pointers valid only during the call. The truth FILE stays
 * the caller's. A cf_gen is used by one thread.
 */
#ifndef CF_GEN_ESTATE_H
#define CF_GEN_ESTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* 2026-10-20T00:00:00Z: the default scenario start. With the default 45 days
 * the scenario crosses the Europe/Oslo DST change (2026-10-25) and the
 * monthly boundaries of November and December. */
#define CF_GEN_DEFAULT_START_MS 1792454400000LL
#define CF_GEN_DEFAULT_DAYS     45
#define CF_GEN_DEFAULT_INTERVAL 60

typedef enum cf_gen_preset {
        CF_GEN_SMALL,   /* 3 tenants, 20 sites, 200 chargers, 2,000 users */
        CF_GEN_CITY,    /* 40 tenants, 200 sites, 5,000 chargers, 100,000 */
        CF_GEN_COUNTRY, /* 1,000 tenants, 5,000 sites, 100,000, 2,000,000 */
        CF_GEN_PRESET__CNT
} cf_gen_preset;

/* Preset by name ("small"), or -1. */
int cf_gen_preset_find(const char *name);

/* Topics the generator writes, in this order (the genfile topic table). */
typedef enum cf_gen_topic {
        CF_GEN_T_SESSIONS, /* charging.sessions, SessionEvent, key charger */
        CF_GEN_T_METER,    /* charging.meter, MeterReading, key charger */
        CF_GEN_T_SITES,    /* billing.sites, Site, key site id */
        CF_GEN_T_USERS,    /* billing.users, User, key user id */
        CF_GEN_T__CNT
} cf_gen_topic;

extern const char *const cf_gen_topic_names[CF_GEN_T__CNT];

/* Fault knobs: each a probability per unit (see cf_gen_fault_unit). */
typedef enum cf_gen_fault {
        CF_GEN_F_DUPLICATE,    /* per real record: the same bytes again */
        CF_GEN_F_REORDER,      /* per real record: swapped with the next */
        CF_GEN_F_LATE,         /* per session: charger offline from its start */
        CF_GEN_F_LOST_STOP,    /* per session: STOPPED never published */
        CF_GEN_F_CORRUPT,      /* per real record: an undecodable extra */
        CF_GEN_F_INVALID,      /* per periodic reading: an invalid extra */
        CF_GEN_F_ORPHAN,       /* per periodic reading: reading, no session */
        CF_GEN_F_UNKNOWN_SITE, /* per real record: event of an unknown site */
        /* Late data (issue 17), on with --late-data, not --faults: */
        CF_GEN_F_LATE_STOP,      /* per session: stop 7-10 days late */
        CF_GEN_F_STOP_IN_FLIGHT, /* per session: stop after the next start */
        CF_GEN_F_BACKFILL,       /* per site: weeks of history uploaded */
        CF_GEN_F__CNT
} cf_gen_fault;

/* The first late-data knob: --faults sets the rates below it, --late-data
 * the rates from it. */
#define CF_GEN_F_LATE_DATA0 CF_GEN_F_LATE_STOP

/* Flag name without "--" and "-rate" ("dup", "lost-stop"), the unit
 * ("record", "session", "reading", "site"), and the rate --faults (or, from
 * CF_GEN_F_LATE_DATA0, --late-data) sets. */
const char *cf_gen_fault_flag(int f);
const char *cf_gen_fault_unit(int f);
extern const double cf_gen_fault_defaults[CF_GEN_F__CNT];

/* Fault kinds as the truth file names them (one knob may inject several). */
typedef enum cf_gen_fkind {
        CF_GEN_K_DUPLICATE,
        CF_GEN_K_REORDER,
        CF_GEN_K_LATE_UPLOAD,
        CF_GEN_K_LOST_STOP,
        CF_GEN_K_CORRUPT,
        CF_GEN_K_METER_REGRESSION,
        CF_GEN_K_METER_JUMP,
        CF_GEN_K_FUTURE_TIME,
        CF_GEN_K_NEGATIVE_ENERGY,
        CF_GEN_K_EMPTY_ID,
        CF_GEN_K_ORPHAN,
        CF_GEN_K_UNKNOWN_SITE,
        CF_GEN_K_LATE_STOP,
        CF_GEN_K_STOP_IN_FLIGHT,
        CF_GEN_K_BACKFILL,
        CF_GEN_K__CNT
} cf_gen_fkind;

typedef struct cf_gen_conf {
        int32_t preset;              /* cf_gen_preset */
        uint64_t seed;               /* any value */
        int64_t start_ms;            /* scenario start */
        int32_t days;                /* simulated span, 1..3660 */
        int32_t meter_interval_s;    /* 10..3600 */
        double rates[CF_GEN_F__CNT]; /* 0..1 each */
        /* Housing sites with two chargers or more give their first charger
         * the group "private" and the others "shared", each priced by a
         * charger plan: residents on the private one with prices incl.
         * VAT and a maximum incl. VAT, everybody on the shared ones with a
         * minimum incl. and a maximum excl. VAT. Off by default (the
         * scenarios of earlier releases, record for record). */
        bool charger_plans;
} cf_gen_conf;

/* Defaults: small, seed 1, default start, days and interval, no faults. */
void cf_gen_conf_init(cf_gen_conf *conf);

/* A record for the sink. key and value are valid during the call only.
 * Returns 0 to go on; any other value stops the run, which returns it. */
typedef int (*cf_gen_sink)(void *opaque, uint32_t topic, int64_t ts_ms,
                           const void *key, size_t key_len, const void *value,
                           size_t value_len);

typedef struct cf_gen_stats {
        uint64_t records[CF_GEN_T__CNT]; /* everything handed to the sink */
        uint64_t real[CF_GEN_T__CNT];    /* real traffic (no fault extras) */
        uint64_t periodic_readings;      /* units of INVALID and ORPHAN */
        uint64_t sessions;               /* completed real sessions */
        uint64_t faults[CF_GEN_K__CNT];  /* truth fault lines per kind */
        uint64_t value_bytes;            /* sum of value sizes */
        uint64_t key_bytes;
        int64_t sim_ms; /* publish time of the last record */
} cf_gen_stats;

typedef struct cf_gen cf_gen;

/* Builds the estate for conf (checked: CF_ERR_ARG with errstr when a value
 * is out of range or a time zone is missing from the system database). */
cf_err_t cf_gen_new(cf_gen **gp, const cf_gen_conf *conf, char *errstr,
                    size_t errstr_size);

/* Frees everything; NULL is a no-op. Does not close the truth file. */
void cf_gen_destroy(cf_gen *g);

/* Ground truth goes to f as JSON lines (see gen.c's header); NULL: none. */
void cf_gen_set_truth(cf_gen *g, FILE *f);

/* Hands billing.sites then billing.users to the sink, with the Kafka
 * timestamp one hour before the scenario start. Returns 0 or the sink's
 * non-zero value. */
int cf_gen_run_tables(cf_gen *g, cf_gen_sink sink, void *opaque);

/* Hands the traffic (charging.sessions and charging.meter, with the faults)
 * to the sink, in nondecreasing timestamp order except the reordering
 * fault's swaps. Returns 0 at the end or the sink's non-zero value. */
int cf_gen_run_traffic(cf_gen *g, cf_gen_sink sink, void *opaque);

const cf_gen_stats *cf_gen_get_stats(const cf_gen *g);

/* ---- the command (gen.c) ---------------------------------------------- */

/* What a run of the command did, for benchmarks that call it in-process. */
typedef struct cf_gen_result {
        uint64_t events;      /* records handed to the sink (all topics) */
        uint64_t traffic;     /* of which charging.sessions/charging.meter */
        uint64_t bytes;       /* key + value bytes */
        double seconds;       /* wall time of the traffic phase */
        double total_seconds; /* wall time of tables + traffic + flush */
        uint64_t failed;      /* delivery failures (broker sink) */
} cf_gen_result;

/* The producer properties the command sets (after bootstrap.servers and
 * compression.codec, before -X ones), {NULL, NULL}-terminated; benchmarks
 * use the same for their plain producer loop. */
extern const char *const cf_gen_producer_props[][2];

/* `chargeflow gen` with argv[0] = "gen"; fills *res when not NULL.
 * Returns the exit code (0, 1 runtime failure, 2 usage). */
int cf_gen_command(int argc, char **argv, cf_gen_result *res);

#endif
