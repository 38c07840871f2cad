/*
 * gen_estate.c: the estate, the scenario and the fault injection of
 * `chargeflow gen` (see gen_estate.h for the interface and gen.c for the
 * contract the pipeline relies on).
 *
 * Model, in short:
 *  - tenants (housing co-operatives, offices, hotels) own sites; a site has
 *    a time zone, a currency, chargers (AC 11/22 kW, some DC 50..150 kW) with
 *    1 or 2 connectors; users have a home site, a group and 1-2 badges;
 *  - each connector is an independent stream of sessions: arrivals are a
 *    Poisson process per 15-minute slot whose rate depends on the site type,
 *    the local hour and the weekday (arrivals while occupied are lost), the
 *    departure on the site type and arrival time, the energy on the car's
 *    demand and a charging curve (constant power to 80 % of the demand, then
 *    a linear taper to a fifth of it, then idle until the car leaves);
 *  - every connector has its own energy register (an EVSE meter as in OCPP
 *    2.0.1), which only grows, across sessions; seq_no counts per charger;
 *  - the chargers are merged by publish time with a binary heap keyed by
 *    (publish time, charger index), duplicates and delayed stop messages
 *    (late stop, stop in flight) by a second heap;
 *  - the late-data faults draw from the fault stream only: a late stop or
 *    stop in flight when a session is planned, a backfill per site before
 *    the traffic starts; they change when records are published, never
 *    what they are.
 */
#include "gen_estate.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "hmap.h"
#include "mem.h"
#include "records.h"
#include "tz.h"

/* ---- random numbers ---------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* splitmix64: one 64-bit state per stream. */
static uint64_t rnd(uint64_t *s)
{
        *s += 0x9e3779b97f4a7c15ULL;
        return mix64(*s);
}

/* Uniform in [0, n), n < 2^32. */
static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
        return (uint32_t)(((rnd(s) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi] (64-bit, tiny modulo bias is irrelevant here). */
static int64_t rnd_range(uint64_t *s, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

/* True with probability thr / 2^32. */
static bool rnd_hit(uint64_t *s, uint64_t thr)
{
        return (rnd(s) >> 32) < thr;
}

static uint64_t prob_thr(double p)
{
        if (p <= 0)
                return 0;
        if (p >= 1)
                return 1ULL << 32;
        return (uint64_t)(p * 4294967296.0);
}

/* ---- names and tables -------------------------------------------------- */

const char *const cf_gen_topic_names[CF_GEN_T__CNT] = {
        "charging.sessions",
        "charging.meter",
        "billing.sites",
        "billing.users",
};

static const char *const preset_names[CF_GEN_PRESET__CNT] = { "small", "city",
                                                              "country" };

static const struct preset {
        uint32_t tenants, sites, chargers, users;
} presets[CF_GEN_PRESET__CNT] = {
        { 3, 20, 200, 2000 },
        { 40, 200, 5000, 100000 },
        { 1000, 5000, 100000, 2000000 },
};

int cf_gen_preset_find(const char *name)
{
        for (int i = 0; i < CF_GEN_PRESET__CNT; i++)
                if (!strcmp(name, preset_names[i]))
                        return i;
        return -1;
}

static const char *const fault_flags[CF_GEN_F__CNT] = {
        "dup",       "reorder",        "late",     "lost-stop",
        "corrupt",   "invalid",        "orphan",   "unknown-site",
        "late-stop", "stop-in-flight", "backfill",
};
static const char *const fault_units[CF_GEN_F__CNT] = {
        "record",           "record", "session",
        "session",          "record", "periodic reading",
        "periodic reading", "record", "session",
        "session",          "site",
};
const double cf_gen_fault_defaults[CF_GEN_F__CNT] = {
        0.01,  /* duplicate */
        0.005, /* reorder */
        0.005, /* late upload */
        0.01,  /* lost stop */
        0.001, /* corrupt */
        0.002, /* invalid */
        0.001, /* orphan */
        0.001, /* unknown site */
        0.005, /* late stop (--late-data) */
        0.01,  /* stop in flight (--late-data) */
        0.05,  /* backfill (--late-data) */
};

const char *cf_gen_fault_flag(int f)
{
        return f >= 0 && f < CF_GEN_F__CNT ? fault_flags[f] : "?";
}

const char *cf_gen_fault_unit(int f)
{
        return f >= 0 && f < CF_GEN_F__CNT ? fault_units[f] : "?";
}

static const char *const fkind_names[CF_GEN_K__CNT] = {
        "duplicate",       "reorder",          "late_upload", "lost_stop",
        "corrupt",         "meter_regression", "meter_jump",  "future_time",
        "negative_energy", "empty_id",         "orphan",      "unknown_site",
        "late_stop",       "stop_in_flight",   "backfill",
};
/* Reason the pipeline should give (cf_reject_reason), or -1 for none. */
static const int fkind_reason[CF_GEN_K__CNT] = {
        -1,
        -1,
        -1,
        -1,
        CF_REJECT_SCHEMA,
        CF_REJECT_METER_REGRESSION,
        CF_REJECT_METER_JUMP,
        CF_REJECT_CLOCK,
        CF_REJECT_FIELD,
        CF_REJECT_FIELD,
        CF_REJECT_ORPHAN,
        CF_REJECT_UNKNOWN_SITE,
        -1, /* late stop: a correction, not a rejection */
        -1, /* stop in flight: likewise */
        -1, /* backfill */
};

void cf_gen_conf_init(cf_gen_conf *conf)
{
        memset(conf, 0, sizeof(*conf));
        conf->preset = CF_GEN_SMALL;
        conf->seed = 1;
        conf->start_ms = CF_GEN_DEFAULT_START_MS;
        conf->days = CF_GEN_DEFAULT_DAYS;
        conf->meter_interval_s = CF_GEN_DEFAULT_INTERVAL;
}

enum { ST_HOUSING, ST_OFFICE, ST_HOTEL, ST__CNT };
static const char *const site_type_names[ST__CNT] = { "housing", "office",
                                                      "hotel" };

enum { G_RESIDENT, G_EMPLOYEE, G_GUEST, G_BOARD, G__CNT };
static const char *const group_names[G__CNT] = { "resident", "employee",
                                                 "guest", "board" };

/* Group shares of the users of each site type, per mille (documented in
 * gen.c; tests check them). */
static const uint16_t group_share[ST__CNT][G__CNT] = {
        [ST_HOUSING] = { 850, 0, 100, 50 },
        [ST_OFFICE] = { 0, 850, 150, 0 },
        [ST_HOTEL] = { 0, 100, 900, 0 },
};

static const struct zone {
        const char *name;
        const char *currency;
        int64_t vat_bp;
        int64_t scale; /* price per mille of the NOK price */
} zones[] = {
        { "Europe/Oslo", "NOK", 2500, 1000 },
        { "Europe/Stockholm", "SEK", 2500, 1000 },
        { "Europe/Helsinki", "EUR", 2550, 90 },
        { "Europe/Lisbon", "EUR", 2300, 90 },
};
#define N_ZONES (sizeof(zones) / sizeof(zones[0]))

/* Arrival profiles: relative weight per local hour, and sessions per
 * connector per day (per mille) if the connector were always free. */
enum {
        P_HOUSING_WD,
        P_HOUSING_WE,
        P_OFFICE_WD,
        P_OFFICE_WE,
        P_HOTEL,
        P_DC_WD,
        P_DC_WE,
        P__CNT
};
static const struct profile {
        uint32_t per_day_milli;
        uint8_t w[24];
} profiles[P__CNT] = {
        [P_HOUSING_WD] = { 420, { 1, 1, 0, 0, 0,  1,  2,  3,  3,  3, 3, 3,
                                  3, 3, 4, 8, 16, 22, 20, 14, 10, 6, 4, 2 } },
        [P_HOUSING_WE] = { 380, { 1, 0, 0, 0, 0,  0,  1,  2, 3, 5, 7, 8,
                                  8, 8, 8, 9, 10, 11, 10, 8, 6, 4, 2, 1 } },
        [P_OFFICE_WD] = { 850, { 0, 0, 0, 0, 0, 0, 3, 14, 22, 14, 6, 5,
                                 6, 5, 3, 2, 1, 1, 1, 1,  0,  0,  0, 0 } },
        [P_OFFICE_WE] = { 60, { 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3,
                                3, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0 } },
        [P_HOTEL] = { 480, { 0, 0, 0, 0,  0,  0,  1,  1, 2, 2, 2, 3,
                             4, 5, 7, 10, 12, 12, 11, 9, 6, 3, 1, 0 } },
        [P_DC_WD] = { 2500, { 0, 0, 0, 0, 0, 1, 2, 4, 6, 7, 7, 8,
                              8, 7, 7, 8, 9, 9, 8, 6, 4, 3, 2, 1 } },
        [P_DC_WE] = { 1800, { 0, 0, 0, 0, 0, 0, 1, 2, 4, 6, 7, 8,
                              8, 8, 8, 8, 8, 7, 6, 5, 3, 2, 1, 1 } },
};

#define SLOT_MS  (15 * 60 * 1000LL)
#define MIN_GAP  (5 * 60 * 1000LL) /* a connector stays free at least this */
#define NO_USER  UINT32_MAX
#define TABLE_TS (-CF_MS_PER_HOUR) /* tables: one hour before the start */

/* ---- estate ------------------------------------------------------------ */

typedef struct gtenant {
        char id[8];
        uint8_t type, zone, period;
} gtenant;

typedef struct gsite {
        char id[8];
        uint32_t tenant;
        uint8_t type, zone;
        bool access_control;
        bool price_change;
        const cf_tz *tz;
        int64_t max_power_w;
        uint32_t first_charger, n_chargers;
        uint32_t first_user, n_users;
        uint32_t weight;
} gsite;

struct held; /* a record held back by the reordering fault */

typedef struct gcharger {
        char id[8];
        uint8_t n_conn;
        bool dc;
        uint32_t site;
        uint32_t first_conn;
        int32_t power_w; /* nominal */
        int64_t seq;
        int64_t off_from, off_to; /* offline window (late upload), or 0 */
        uint64_t off_records;
        int64_t bf_to; /* backfill: records before it published at it, or 0 */
        uint64_t bf_records;
        struct held *held;
} gcharger;

enum { CS_STARTED, CS_RUN, CS_FINAL, CS_STOPPED, CS_DONE };
/* A session's stop message (final reading and STOPPED) published late. */
enum { SF_NONE, SF_LATE, SF_IN_FLIGHT };

/* A stop message held back: the final reading and the STOPPED, encoded,
 * until they are handed to the delayed heap. */
typedef struct pend_stop {
        bool on;
        cf_buf b;     /* the reading's bytes, then the STOPPED's */
        size_t r_len; /* the reading's share of b */
        int64_t pub;  /* when they would have been published */
        char sid[32]; /* the session */
        char r_eid[32], s_eid[32];
        int64_t stop_ms;
} pend_stop;
enum { AUTH_NONE, AUTH_BOTH, AUTH_BADGE, AUTH_USER, AUTH_UNKNOWN };

typedef struct gconn {
        uint64_t rng;
        int64_t reg_wh; /* register at the last stop (between sessions) */
        int64_t next_ms;
        uint8_t state, mode, stop_reason;
        bool auth_pending, lost_stop, late, backfill;
        uint8_t stop_fault; /* SF_*: this session's stop message */
        uint8_t no;         /* connector number, from 1 */
        uint32_t user;
        uint64_t badge; /* badge index (see badge_str), or UINT64_MAX */
        uint64_t session_no;
        int64_t start_ms, auth_ms, charge0_ms, stop_ms;
        int64_t reg_start;
        int64_t p_w, pmin_w, t1_s, t2_s;
        int64_t k; /* next periodic reading */
        uint32_t n_events, n_readings;
        pend_stop pend; /* the previous or this session's, or off */
} gconn;

typedef struct held {
        uint32_t topic;
        int64_t ts;
        char eid[32];
        cf_buf b;
} held;

typedef struct hent {
        int64_t key;
        uint64_t tie;
        void *p; /* dup heap: struct dup * */
} hent;

typedef struct dup {
        uint32_t topic;
        uint8_t klen;
        char key[15];
        uint32_t len;
        uint8_t v[];
} dup;

typedef struct extra {
        uint32_t topic;
        int64_t ts;
        char key[24];
        size_t off, len;
} extra;

#define MAX_EXTRAS 8

struct cf_gen {
        cf_gen_conf conf;
        cf_registry *reg;
        uint64_t tag; /* 32 bits of the seed, in every id */
        char tagstr[9];
        int64_t start_ms, end_ms, interval_ms, gap_ms;
        uint64_t thr[CF_GEN_F__CNT];
        bool faults_on;
        uint64_t frng; /* fault stream */
        uint64_t slot_thr[P__CNT][24];

        gtenant *tenants;
        uint32_t n_tenants;
        gsite *sites;
        uint32_t n_sites;
        gcharger *chargers;
        uint32_t n_chargers;
        gconn *conns;
        uint32_t n_conns;
        uint32_t n_users;
        uint32_t *user_site;
        uint8_t *user_group;
        uint8_t *user_nbadges;
        uint64_t n_badges;
        uint32_t unknown_pool;

        /* merge */
        hent *heap; /* chargers: key publish time, tie charger index */
        uint32_t n_heap;
        hent *dheap; /* duplicates */
        uint32_t n_dheap, cap_dheap;
        uint64_t dup_seq;

        uint64_t next_event, next_session, next_fake;
        cf_gen_sink sink;
        void *opaque;
        FILE *truth;
        cf_buf tb;  /* truth lines */
        cf_buf enc; /* the main record */
        cf_buf xb;  /* extras */
        extra xs[MAX_EXTRAS];
        uint32_t n_xs;
        char eid[32], sid[32], uid[16], bid[24];
        cf_gen_stats st;
};

static char *put_hex(char *p, uint64_t v)
{
        char tmp[16];
        int n = 0;
        do {
                tmp[n++] = "0123456789abcdef"[v & 15];
                v >>= 4;
        } while (v);
        while (n)
                *p++ = tmp[--n];
        *p = 0;
        return p;
}

static void put_dec(char *p, char prefix, uint32_t v, int width)
{
        *p++ = prefix;
        for (int i = width - 1; i >= 0; i--) {
                p[i] = (char)('0' + v % 10);
                v /= 10;
        }
        p[width] = 0;
}

static void fmt_id(cf_gen *g, char *dst, char kind, uint64_t n)
{
        memcpy(dst, g->tagstr, 8);
        dst[8] = '-';
        dst[9] = kind;
        put_hex(dst + 10, n);
}

static void fmt_user(char *dst, uint32_t u)
{
        put_dec(dst, 'U', u, 7);
}

/* Badge b: known badges are 2*user + k (k = 0, 1), unknown ones start at
 * 2*n_users. mix64 is a bijection, so distinct badges get distinct ids. */
static void fmt_badge(const cf_gen *g, char *dst, uint64_t b)
{
        uint64_t v = mix64(b + (g->tag << 32) + 0xbad9e5ULL);
        for (int i = 15; i >= 0; i--) {
                dst[i] = "0123456789ABCDEF"[v & 15];
                v >>= 4;
        }
        dst[16] = 0;
}

static void build_profiles(cf_gen *g)
{
        for (int p = 0; p < P__CNT; p++) {
                uint32_t sum = 0;
                for (int h = 0; h < 24; h++)
                        sum += profiles[p].w[h];
                for (int h = 0; h < 24; h++) {
                        /* per slot: per_day * w/sum / 4 */
                        double pr = (double)profiles[p].per_day_milli / 1000.0 *
                                    profiles[p].w[h] / sum / 4.0;
                        g->slot_thr[p][h] = prob_thr(pr);
                }
        }
}

/* Splits total into n parts proportional to weights, each at least 1. */
static void apportion(const uint32_t *w, uint32_t n, uint32_t total,
                      uint32_t *out)
{
        uint64_t wsum = 0;
        uint32_t used = 0;
        for (uint32_t i = 0; i < n; i++)
                wsum += w[i];
        for (uint32_t i = 0; i < n; i++) {
                out[i] = 1 + (uint32_t)((uint64_t)(total - n) * w[i] / wsum);
                used += out[i];
        }
        for (uint32_t i = 0; used < total; i = (i + 1) % n, used++)
                out[i]++;
}

static cf_err_t build_estate(cf_gen *g, char *errstr, size_t errstr_size)
{
        const struct preset *pr = &presets[g->conf.preset];
        uint64_t r = mix64(g->conf.seed ^ 0xe57a7e5eedULL);
        bool small = g->conf.preset == CF_GEN_SMALL;

        g->n_tenants = pr->tenants;
        g->tenants = cf_calloc(g->n_tenants, sizeof(*g->tenants));
        for (uint32_t i = 0; i < g->n_tenants; i++) {
                gtenant *t = &g->tenants[i];
                put_dec(t->id, 'T', i, 4);
                if (small) {
                        t->type = (uint8_t)i; /* housing, office, hotel */
                        t->zone = 0;
                        t->period = i == 2 ? CF_PERIOD_WEEK : CF_PERIOD_MONTH;
                        continue;
                }
                uint32_t x = rnd_below(&r, 100);
                t->type = x < 60 ? ST_HOUSING : x < 85 ? ST_OFFICE : ST_HOTEL;
                x = rnd_below(&r, 100);
                t->zone = x < 80 ? 0 : x < 90 ? 1 : x < 95 ? 2 : 3;
                x = rnd_below(&r, 100);
                t->period = x < 85   ? CF_PERIOD_MONTH
                            : x < 95 ? CF_PERIOD_WEEK
                                     : CF_PERIOD_DAY;
        }

        g->n_sites = pr->sites;
        g->sites = cf_calloc(g->n_sites, sizeof(*g->sites));
        for (uint32_t i = 0; i < g->n_sites; i++) {
                gsite *s = &g->sites[i];
                put_dec(s->id, 'S', i, 5);
                if (small) {
                        s->tenant = i < 10 ? 0 : i < 16 ? 1 : 2;
                        s->access_control = !(i == 2 || i == 12);
                        s->price_change = i % 2 == 0;
                } else {
                        s->tenant =
                            i < g->n_tenants ? i : rnd_below(&r, g->n_tenants);
                        s->access_control = rnd_below(&r, 100) >= 10;
                        s->price_change = rnd_below(&r, 2) == 0 || i == 0;
                }
                const gtenant *t = &g->tenants[s->tenant];
                s->type = t->type;
                s->zone = t->zone;
                if (s->type == ST_HOTEL) {
                        /* Hotel chains span the Nordics and beyond. */
                        if (small)
                                s->zone = (uint8_t)((i - 16) % N_ZONES);
                        else if (rnd_below(&r, 2))
                                s->zone = (uint8_t)rnd_below(&r, N_ZONES);
                }
                s->tz = cf_tz_get(zones[s->zone].name);
                if (!s->tz) {
                        snprintf(errstr, errstr_size,
                                 "gen: time zone %s not in the system "
                                 "database (install tzdata)",
                                 zones[s->zone].name);
                        return CF_ERR_TZ;
                }
                s->weight = s->type == ST_HOUSING  ? 1 + rnd_below(&r, 3)
                            : s->type == ST_OFFICE ? 1 + rnd_below(&r, 4)
                                                   : 1 + rnd_below(&r, 2);
        }

        /* Chargers per site, proportional to the site weights. */
        uint32_t *w = cf_calloc(g->n_sites, sizeof(*w));
        uint32_t *cnt = cf_calloc(g->n_sites, sizeof(*cnt));
        for (uint32_t i = 0; i < g->n_sites; i++)
                w[i] = g->sites[i].weight;
        apportion(w, g->n_sites, pr->chargers, cnt);
        g->n_chargers = pr->chargers;
        g->chargers = cf_calloc(g->n_chargers, sizeof(*g->chargers));
        uint32_t ci = 0, n_conns = 0, n_dc = 0;
        for (uint32_t i = 0; i < g->n_sites; i++) {
                gsite *s = &g->sites[i];
                s->first_charger = ci;
                s->n_chargers = cnt[i];
                uint32_t dc_pct = s->type == ST_HOUSING  ? 3
                                  : s->type == ST_OFFICE ? 10
                                                         : 12;
                for (uint32_t j = 0; j < cnt[i]; j++, ci++) {
                        gcharger *c = &g->chargers[ci];
                        put_dec(c->id, 'C', ci, 6);
                        c->site = i;
                        c->dc = rnd_below(&r, 100) < dc_pct;
                        if (c->dc) {
                                static const int32_t dcp[] = { 50000, 75000,
                                                               100000, 150000 };
                                c->power_w = dcp[rnd_below(&r, 4)];
                                c->n_conn = 2;
                                n_dc++;
                        } else {
                                c->power_w =
                                    rnd_below(&r, 10) < 3 ? 22000 : 11000;
                                c->n_conn = rnd_below(&r, 10) < 6 ? 1 : 2;
                        }
                        n_conns += c->n_conn;
                }
        }
        if (n_dc == 0) {
                /* At least one DC charger: the first office charger. */
                gcharger *c =
                    &g->chargers[g->sites[g->n_sites / 2].first_charger];
                n_conns += 2 - c->n_conn;
                c->dc = true;
                c->power_w = 150000;
                c->n_conn = 2;
        }
        g->n_conns = n_conns;
        g->conns = cf_calloc(n_conns, sizeof(*g->conns));
        uint32_t k = 0;
        for (uint32_t i = 0; i < g->n_chargers; i++) {
                gcharger *c = &g->chargers[i];
                gsite *s = &g->sites[c->site];
                c->first_conn = k;
                if (c->power_w > s->max_power_w)
                        s->max_power_w = c->power_w;
                for (uint8_t j = 0; j < c->n_conn; j++, k++) {
                        gconn *cn = &g->conns[k];
                        cn->rng = mix64(g->conf.seed ^ mix64(0xc0ULL + k));
                        cn->no = (uint8_t)(j + 1);
                        cn->reg_wh = rnd_range(&cn->rng, 100000, 20000000);
                }
        }

        /* Users, proportional to the connectors of their home site. */
        for (uint32_t i = 0; i < g->n_sites; i++) {
                gsite *s = &g->sites[i];
                w[i] = 0;
                for (uint32_t j = 0; j < s->n_chargers; j++)
                        w[i] += g->chargers[s->first_charger + j].n_conn;
        }
        apportion(w, g->n_sites, pr->users, cnt);
        g->n_users = pr->users;
        g->user_site = cf_malloc(sizeof(uint32_t) * g->n_users);
        g->user_group = cf_malloc(g->n_users);
        g->user_nbadges = cf_malloc(g->n_users);
        uint32_t u = 0;
        for (uint32_t i = 0; i < g->n_sites; i++) {
                gsite *s = &g->sites[i];
                s->first_user = u;
                s->n_users = cnt[i];
                for (uint32_t j = 0; j < cnt[i]; j++, u++) {
                        uint64_t ur =
                            mix64(g->conf.seed ^ (0x05e7ULL << 40) ^ u);
                        uint32_t x = rnd_below(&ur, 1000), acc = 0;
                        uint8_t grp = 0;
                        for (uint8_t q = 0; q < G__CNT; q++) {
                                acc += group_share[s->type][q];
                                if (x < acc) {
                                        grp = q;
                                        break;
                                }
                        }
                        g->user_site[u] = i;
                        g->user_group[u] = grp;
                        g->user_nbadges[u] = rnd_below(&ur, 10) < 3 ? 2 : 1;
                        g->n_badges += g->user_nbadges[u];
                }
        }
        g->unknown_pool = g->n_users / 50 > 10 ? g->n_users / 50 : 10;
        free(w);
        free(cnt);
        return CF_OK;
}

/* ---- tariffs and tables ------------------------------------------------ */

static int64_t price(const gsite *s, int64_t nok_micros, int version)
{
        int64_t v = nok_micros * zones[s->zone].scale / 1000;
        if (version == 2)
                v = v * 112 / 100;
        return (v + 500) / 1000 * 1000;
}

static cf_tariff_restrictions *restr(cf_arena *a)
{
        cf_tariff_restrictions *r = cf_arena_calloc(a, sizeof(*r));
        r->start_time_min = r->end_time_min = CF_NONE;
        r->start_date = r->end_date = CF_NONE;
        r->min_wh = r->max_wh = CF_NONE;
        r->min_current_ma = r->max_current_ma = CF_NONE;
        r->min_power_w = r->max_power_w = CF_NONE;
        r->min_duration_s = r->max_duration_s = CF_NONE;
        return r;
}

static void weekdays(cf_arena *a, cf_tariff_restrictions *r)
{
        r->day_of_week = cf_arena_alloc(a, 5 * sizeof(int32_t));
        for (int i = 0; i < 5; i++)
                r->day_of_week[i] = CF_MONDAY + i;
        r->n_day_of_week = 5;
}

typedef struct tb {
        cf_arena *a;
        cf_tariff *t;
} tb;

static tb tariff(cf_arena *a, cf_tariff *t, const gsite *s, const char *group,
                 int version)
{
        char id[48];
        snprintf(id, sizeof(id), "%s-%s-v%d", s->id, group, version);
        memset(t, 0, sizeof(*t));
        t->tariff_id = cf_arena_strdup(a, id);
        t->currency = (char *)zones[s->zone].currency;
        t->elements = cf_arena_calloc(a, 4 * sizeof(cf_tariff_element));
        t->min_price_minor = t->max_price_minor = CF_NONE;
        t->min_price_incl_minor = t->max_price_incl_minor = CF_NONE;
        t->start_ms = t->end_ms = CF_NONE;
        return (tb){ a, t };
}

static cf_tariff_element *element(tb b, cf_tariff_restrictions *r)
{
        cf_tariff_element *e = &b.t->elements[b.t->n_elements++];
        e->price_components =
            cf_arena_calloc(b.a, 3 * sizeof(cf_price_component));
        e->restrictions = r;
        return e;
}

static void component(cf_tariff_element *e, int32_t type, int64_t pm,
                      int64_t vat, int64_t step)
{
        cf_price_component *c = &e->price_components[e->n_price_components++];
        c->type = type;
        c->price_micros = pm;
        c->vat_bp = vat;
        c->step_size = step;
}

/* The plan of a group at site s, in the model of an OCPI 2.2.1 tariff. */
static void group_plan(cf_arena *a, cf_tariff *t, const gsite *s, int grp,
                       int v)
{
        tb b = tariff(a, t, s, group_names[grp], v);
        cf_tariff_restrictions *r;
        cf_tariff_element *e;
        switch (grp) {
        case G_RESIDENT:
                /* Weekday evening peak, otherwise the base price. */
                r = restr(a);
                r->start_time_min = 16 * 60;
                r->end_time_min = 21 * 60;
                weekdays(a, r);
                component(element(b, r), CF_DIM_ENERGY, price(s, 2400000, v),
                          CF_NONE, 1);
                component(element(b, NULL), CF_DIM_ENERGY, price(s, 1500000, v),
                          CF_NONE, 1);
                break;
        case G_EMPLOYEE:
                /* Cheap on weekdays 06-18, parking after 10 hours. */
                r = restr(a);
                r->start_time_min = 6 * 60;
                r->end_time_min = 18 * 60;
                weekdays(a, r);
                component(element(b, r), CF_DIM_ENERGY, price(s, 1200000, v),
                          CF_NONE, 1);
                component(element(b, NULL), CF_DIM_ENERGY, price(s, 2000000, v),
                          CF_NONE, 1);
                r = restr(a);
                r->min_duration_s = 10 * 3600;
                component(element(b, r), CF_DIM_PARKING_TIME,
                          price(s, 30000000, v), zones[s->zone].vat_bp, 60);
                break;
        case G_GUEST:
                /* Start fee, per started 100 Wh, parking after 2 hours in
                 * 5-minute steps. */
                e = element(b, NULL);
                component(e, CF_DIM_FLAT, price(s, 10000000, v), CF_NONE, 1);
                component(e, CF_DIM_ENERGY, price(s, 3200000, v), CF_NONE, 100);
                r = restr(a);
                r->min_duration_s = 2 * 3600;
                component(element(b, r), CF_DIM_PARKING_TIME,
                          price(s, 60000000, v), zones[s->zone].vat_bp, 300);
                break;
        case G_BOARD:
                /* The board charges for free. */
                component(element(b, NULL), CF_DIM_ENERGY, 0, CF_NONE, 1);
                break;
        }
}

/* The charger plans of cf_gen_conf.charger_plans, in version pv. */
static void charger_plans(cf_arena *a, cf_price_version *pv, const gsite *s,
                          int ver)
{
        int64_t scale = zones[s->zone].scale;
        pv->charger_plans = cf_arena_calloc(a, 2 * sizeof(cf_charger_plan));
        pv->n_charger_plans = 2;
        /* Residents on their private charger: a consumer price incl. VAT,
         * at most 40 NOK (or the zone's equivalent) incl. VAT a session. */
        cf_charger_plan *cp = &pv->charger_plans[0];
        cp->charger_group = "private";
        cp->user_group = (char *)group_names[G_RESIDENT];
        tb b = tariff(a, &cp->tariff, s, "private-resident", ver);
        component(element(b, NULL), CF_DIM_ENERGY, price(s, 2000000, ver),
                  CF_NONE, 1);
        cp->tariff.prices_include_vat = true;
        cp->tariff.max_price_incl_minor = 4000 * scale / 1000;
        /* Everybody on the shared chargers: a start fee and energy excl.
         * VAT, at least 20 incl. VAT and at most 60 excl. VAT. */
        cp = &pv->charger_plans[1];
        cp->charger_group = "shared";
        cp->user_group = NULL;
        b = tariff(a, &cp->tariff, s, "shared", ver);
        cf_tariff_element *e = element(b, NULL);
        component(e, CF_DIM_FLAT, price(s, 3000000, ver), CF_NONE, 1);
        component(e, CF_DIM_ENERGY, price(s, 2200000, ver), CF_NONE, 1);
        cp->tariff.min_price_incl_minor = 2000 * scale / 1000;
        cp->tariff.max_price_minor = 6000 * scale / 1000;
}

static void encode_site(cf_gen *g, cf_arena *a, const gsite *s, cf_buf *out)
{
        static const uint8_t site_groups[ST__CNT][3] = {
                [ST_HOUSING] = { G_RESIDENT, G_GUEST, G_BOARD },
                [ST_OFFICE] = { G_EMPLOYEE, G_GUEST, 0xff },
                [ST_HOTEL] = { G_GUEST, G_EMPLOYEE, 0xff },
        };
        char name[32];
        cf_site site;
        memset(&site, 0, sizeof(site));
        snprintf(name, sizeof(name), "%s %s", site_type_names[s->type],
                 s->id + 1);
        site.site_id = (char *)s->id;
        site.tenant_id = g->tenants[s->tenant].id;
        site.name = name;
        site.time_zone = (char *)zones[s->zone].name;
        site.billing_period = g->tenants[s->tenant].period;
        site.currency = (char *)zones[s->zone].currency;
        site.vat_bp = zones[s->zone].vat_bp;
        site.max_power_w = s->max_power_w;
        site.access_control = s->access_control;
        if (g->conf.charger_plans && s->type == ST_HOUSING &&
            s->n_chargers >= 2) {
                site.charger_groups = cf_arena_calloc(
                    a, s->n_chargers * sizeof(cf_charger_group));
                for (uint32_t i = 0; i < s->n_chargers; i++) {
                        cf_charger_group *cg = &site.charger_groups[i];
                        cg->charger_id = g->chargers[s->first_charger + i].id;
                        cg->group = i ? "shared" : "private";
                }
                site.n_charger_groups = s->n_chargers;
        }
        site.n_versions = s->price_change ? 2 : 1;
        site.versions = cf_arena_calloc(a, 2 * sizeof(cf_price_version));
        for (uint32_t v = 0; v < site.n_versions; v++) {
                cf_price_version *pv = &site.versions[v];
                int ver = (int)v + 1;
                if (v == 0) {
                        pv->valid_from_ms = g->start_ms - 365 * CF_MS_PER_DAY;
                } else {
                        /* Local midnight in the middle of the scenario. */
                        cf_civil c;
                        cf_tz_civil(
                            s->tz,
                            g->start_ms + g->conf.days / 2 * CF_MS_PER_DAY, &c);
                        pv->valid_from_ms =
                            cf_tz_local_to_utc(s->tz, c.days, 0);
                }
                pv->plans = cf_arena_calloc(a, 3 * sizeof(cf_group_plan));
                for (int j = 0; j < 3; j++) {
                        int grp = site_groups[s->type][j];
                        if (grp == 0xff)
                                continue;
                        cf_group_plan *gp = &pv->plans[pv->n_plans++];
                        gp->group = (char *)group_names[grp];
                        group_plan(a, &gp->tariff, s, grp, ver);
                }
                tb b = tariff(a, &pv->default_plan, s, "default", ver);
                component(element(b, NULL), CF_DIM_ENERGY,
                          price(s, 2500000, ver), CF_NONE, 1);
                pv->unauthenticated_plan =
                    cf_arena_calloc(a, sizeof(cf_tariff));
                b = tariff(a, pv->unauthenticated_plan, s, "unauthenticated",
                           ver);
                cf_tariff_element *e = element(b, NULL);
                component(e, CF_DIM_FLAT, price(s, 5000000, ver), CF_NONE, 1);
                component(e, CF_DIM_ENERGY, price(s, 3500000, ver), CF_NONE,
                          1000);
                pv->unauthenticated_plan->min_price_minor =
                    1500 * zones[s->zone].scale / 1000;
                if (site.n_charger_groups)
                        charger_plans(a, pv, s, ver);
        }
        site.updated_ms = g->start_ms + TABLE_TS;
        cf_encode(g->reg, CF_RT_SITE, &site, out);
}

static int emit(cf_gen *g, uint32_t topic, int64_t ts, const char *key,
                size_t klen, const void *v, size_t vlen)
{
        g->st.records[topic]++;
        g->st.key_bytes += klen;
        g->st.value_bytes += vlen;
        if (ts > g->st.sim_ms)
                g->st.sim_ms = ts;
        return g->sink(g->opaque, topic, ts, key, klen, v, vlen);
}

int cf_gen_run_tables(cf_gen *g, cf_gen_sink sink, void *opaque)
{
        cf_arena a;
        int rc = 0;
        cf_arena_init(&a, 64 * 1024);
        g->sink = sink;
        g->opaque = opaque;
        int64_t ts = g->start_ms + TABLE_TS;
        for (uint32_t i = 0; i < g->n_sites && !rc; i++) {
                g->enc.len = 0;
                encode_site(g, &a, &g->sites[i], &g->enc);
                rc = emit(g, CF_GEN_T_SITES, ts, g->sites[i].id,
                          strlen(g->sites[i].id), g->enc.p, g->enc.len);
                cf_arena_reset(&a);
        }
        char badges[2][24];
        char *bp[2] = { badges[0], badges[1] };
        char uid[16];
        for (uint32_t u = 0; u < g->n_users && !rc; u++) {
                cf_user usr;
                fmt_user(uid, u);
                for (int k = 0; k < g->user_nbadges[u]; k++)
                        fmt_badge(g, badges[k], 2ULL * u + (uint64_t)k);
                usr.user_id = uid;
                usr.tenant_id = g->tenants[g->sites[g->user_site[u]].tenant].id;
                usr.name = NULL;
                usr.group = (char *)group_names[g->user_group[u]];
                usr.badges = bp;
                usr.n_badges = g->user_nbadges[u];
                usr.updated_ms = ts;
                g->enc.len = 0;
                cf_encode(g->reg, CF_RT_USER, &usr, &g->enc);
                rc = emit(g, CF_GEN_T_USERS, ts, uid, 8, g->enc.p, g->enc.len);
        }
        cf_arena_destroy(&a);
        return rc;
}

/* ---- sessions ---------------------------------------------------------- */

/* Energy charged (Wh, floored) by instant t of the session on c. */
static int64_t curve_wh(const gconn *c, int64_t t)
{
        if (t <= c->charge0_ms)
                return 0;
        int64_t tau = (t - c->charge0_ms) / 1000, ws;
        if (tau <= c->t1_s) {
                ws = c->p_w * tau;
        } else {
                int64_t u = tau - c->t1_s;
                if (u > c->t2_s)
                        u = c->t2_s;
                ws = c->p_w * c->t1_s +
                     (2 * c->t2_s * c->p_w * u - (c->p_w - c->pmin_w) * u * u) /
                         (2 * c->t2_s);
        }
        return ws / 3600;
}

static int64_t power_at(const gconn *c, int64_t t)
{
        if (t < c->charge0_ms)
                return 0;
        int64_t tau = (t - c->charge0_ms) / 1000;
        if (tau < c->t1_s)
                return c->p_w;
        int64_t u = tau - c->t1_s;
        if (u >= c->t2_s)
                return 0;
        return c->p_w - (c->p_w - c->pmin_w) * u / c->t2_s;
}

static int64_t full_ms(const gconn *c)
{
        return c->charge0_ms + (c->t1_s + c->t2_s) * 1000;
}

static int local_hour(const gsite *s, int64_t t, int *wday, int32_t *sod)
{
        int64_t l = t + (int64_t)cf_tz_offset(s->tz, t) * 1000;
        int64_t days = l >= 0 ? l / CF_MS_PER_DAY
                              : (l - CF_MS_PER_DAY + 1) / CF_MS_PER_DAY;
        int64_t ms = l - days * CF_MS_PER_DAY;
        *wday = (int)(((days % 7) + 7 + 3) % 7); /* 1970-01-01: Thursday */
        *sod = (int32_t)(ms / 1000);
        return (int)(ms / CF_MS_PER_HOUR);
}

/* Plans the next session of connector c (charger ch) at or after free. */
static void conn_schedule(cf_gen *g, gcharger *ch, gconn *c, int64_t free)
{
        const gsite *s = &g->sites[ch->site];
        int64_t arr = -1;
        int wday;
        int32_t sod;

        for (int64_t slot = free - free % SLOT_MS; slot < g->end_ms;
             slot += SLOT_MS) {
                int h = local_hour(s, slot, &wday, &sod);
                bool we = wday >= CF_SATURDAY;
                int p = ch->dc                ? (we ? P_DC_WE : P_DC_WD)
                        : s->type == ST_HOTEL ? P_HOTEL
                        : s->type == ST_OFFICE
                            ? (we ? P_OFFICE_WE : P_OFFICE_WD)
                            : (we ? P_HOUSING_WE : P_HOUSING_WD);
                if (!rnd_hit(&c->rng, g->slot_thr[p][h]))
                        continue;
                arr = slot + (int64_t)rnd_below(&c->rng, 900) * 1000;
                if (arr < free)
                        arr = free + 1000 - free % 1000;
                break;
        }
        if (arr < 0) {
                c->state = CS_DONE;
                c->next_ms = INT64_MAX;
                return;
        }
        /* Departure. */
        int h = local_hour(s, arr, &wday, &sod);
        bool we = wday >= CF_SATURDAY;
        int64_t dur;
        int64_t to_next_morning = (int64_t)(86400 - sod) * 1000;
        int64_t to_this_morning = -(int64_t)sod * 1000;
        if (ch->dc) {
                dur = rnd_range(&c->rng, 15, 60) * 60000;
        } else if (s->type == ST_HOUSING && (h >= 15 || h < 4)) {
                dur = (h < 4 ? to_this_morning : to_next_morning) +
                      6 * CF_MS_PER_HOUR + rnd_range(&c->rng, 0, 180) * 60000;
        } else if (s->type == ST_HOUSING) {
                dur = rnd_range(&c->rng, 60, 300) * 60000;
        } else if (s->type == ST_OFFICE && !we && h >= 5 && h < 12) {
                dur = to_this_morning + 15 * CF_MS_PER_HOUR +
                      rnd_range(&c->rng, 0, 180) * 60000;
        } else if (s->type == ST_OFFICE) {
                dur = rnd_range(&c->rng, 60, 240) * 60000;
        } else if (h >= 14 || h < 4) {
                dur = (h < 4 ? to_this_morning : to_next_morning) +
                      7 * CF_MS_PER_HOUR + rnd_range(&c->rng, 0, 240) * 60000;
        } else {
                dur = rnd_range(&c->rng, 60, 360) * 60000;
        }
        dur += rnd_range(&c->rng, 0, 59) * 1000;
        if (dur < 10 * 60000)
                dur = 10 * 60000 + rnd_range(&c->rng, 0, 300) * 1000;
        int64_t stop = arr + dur;

        /* The car: demand, power. */
        int64_t demand, car_w;
        if (ch->dc) {
                demand = 10000 + rnd_range(&c->rng, 0, 30000) +
                         rnd_range(&c->rng, 0, 30000);
                car_w = 50000 + 10000 * rnd_range(&c->rng, 0, 10);
        } else {
                static const int64_t ac[] = {
                        3700,  7400,  7400,  11000, 11000,
                        11000, 11000, 11000, 22000, 22000
                };
                demand = 2000 + rnd_range(&c->rng, 0, 18000) +
                         rnd_range(&c->rng, 0, 18000);
                car_w = ac[rnd_below(&c->rng, 10)];
        }
        /* Users and badges (drawn even when not needed: the stream stays
         * the same whatever the site's access control). */
        uint32_t xu = rnd_below(&c->rng, 1000);
        uint32_t xmode = rnd_below(&c->rng, 100);
        uint32_t xpick = rnd_below(&c->rng, 1u << 30);
        uint32_t xbadge = rnd_below(&c->rng, 2);
        int64_t auth_delay = rnd_range(&c->rng, 2, 20) * 1000;
        uint32_t xstop = rnd_below(&c->rng, 100);

        if (stop > g->end_ms) {
                c->state = CS_DONE;
                c->next_ms = INT64_MAX;
                return;
        }
        c->session_no = g->next_session++;
        c->start_ms = arr;
        c->stop_ms = stop;
        c->reg_start = c->reg_wh;
        c->user = NO_USER;
        c->badge = UINT64_MAX;
        c->auth_pending = s->access_control;
        c->auth_ms = arr + auth_delay;
        if (!s->access_control) {
                c->mode = AUTH_NONE;
                c->charge0_ms = arr;
        } else {
                c->charge0_ms = c->auth_ms;
                if (xu < 30 || s->n_users == 0) {
                        c->mode = AUTH_UNKNOWN;
                        c->badge = 2ULL * g->n_users + xpick % g->unknown_pool;
                } else {
                        c->user = s->first_user + xpick % s->n_users;
                        c->badge = 2ULL * c->user +
                                   (xbadge % g->user_nbadges[c->user]);
                        c->mode = xmode < 20   ? AUTH_BADGE
                                  : xmode < 30 ? AUTH_USER
                                               : AUTH_BOTH;
                }
        }
        if (c->auth_ms >= stop)
                c->auth_ms = stop - 1000;
        c->p_w = (int64_t)ch->power_w * 97 / 100;
        if (car_w < c->p_w)
                c->p_w = car_w;
        c->pmin_w = c->p_w / 5;
        int64_t e1 = demand * 8 / 10;
        c->t1_s = e1 * 3600 / c->p_w;
        c->t2_s = (demand - e1) * 3600 * 2 / (c->p_w + c->pmin_w);
        if (c->t2_s < 1)
                c->t2_s = 1;
        bool full = full_ms(c) <= stop;
        if (full)
                c->stop_reason = xstop < 55   ? CF_STOP_EV_DISCONNECTED
                                 : xstop < 80 ? CF_STOP_LOCAL
                                 : xstop < 90 ? CF_STOP_REMOTE
                                 : xstop < 98 ? CF_STOP_EV_FULL
                                              : CF_STOP_OTHER;
        else
                c->stop_reason = xstop < 60   ? CF_STOP_EV_DISCONNECTED
                                 : xstop < 85 ? CF_STOP_LOCAL
                                 : xstop < 98 ? CF_STOP_REMOTE
                                              : CF_STOP_POWER_LOSS;
        c->lost_stop = g->thr[CF_GEN_F_LOST_STOP] &&
                       rnd_hit(&g->frng, g->thr[CF_GEN_F_LOST_STOP]);
        /* A stop message published late: the session's own choice (whether
         * a next session follows in time is seen at the stop). */
        c->stop_fault = SF_NONE;
        if (!c->lost_stop && g->thr[CF_GEN_F_LATE_STOP] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_LATE_STOP]))
                c->stop_fault = SF_LATE;
        else if (!c->lost_stop && g->thr[CF_GEN_F_STOP_IN_FLIGHT] &&
                 rnd_hit(&g->frng, g->thr[CF_GEN_F_STOP_IN_FLIGHT]))
                c->stop_fault = SF_IN_FLIGHT;
        c->late = false;
        c->backfill = false;
        c->k = 1;
        c->n_events = c->n_readings = 0;
        c->state = CS_STARTED;
        c->next_ms = arr;
}

/* The next event of c while its session runs (state CS_RUN or CS_FINAL). */
static void conn_plan_run(cf_gen *g, gconn *c)
{
        int64_t rd = c->start_ms + c->k * g->interval_ms;
        if (rd > c->stop_ms - g->gap_ms) {
                c->state = CS_FINAL;
                rd = c->stop_ms;
        } else {
                c->state = CS_RUN;
        }
        c->next_ms = c->auth_pending && c->auth_ms <= rd ? c->auth_ms : rd;
        if (c->auth_pending && c->auth_ms <= rd)
                c->state = CS_RUN;
}

static gconn *charger_next(cf_gen *g, gcharger *ch)
{
        gconn *best = &g->conns[ch->first_conn];
        for (uint8_t j = 1; j < ch->n_conn; j++) {
                gconn *c = &g->conns[ch->first_conn + j];
                if (c->next_ms < best->next_ms)
                        best = c;
        }
        return best;
}

/* Publish time of a record at t by the offline window (late upload). */
static int64_t pub_off(const gcharger *ch, int64_t t)
{
        if (t == INT64_MAX)
                return t;
        return ch->off_to && t >= ch->off_from && t < ch->off_to ? ch->off_to
                                                                 : t;
}

/* Publish time of a record at t: the offline window's, and no earlier than
 * the backfill's upload for a record before it. */
static int64_t pub_time(const gcharger *ch, int64_t t)
{
        int64_t p = pub_off(ch, t);
        if (ch->bf_to && t < ch->bf_to && p < ch->bf_to)
                p = ch->bf_to;
        return p;
}

/* ---- truth ------------------------------------------------------------- */

static void truth_flush(cf_gen *g, bool force)
{
        if (g->truth && (force || g->tb.len > (1u << 20))) {
                fwrite(g->tb.p, 1, g->tb.len, g->truth);
                g->tb.len = 0;
        }
}

static void truth_str(cf_buf *b, const char *k, const char *v)
{
        cf_buf_printf(b, ",\"%s\":", k);
        if (v)
                cf_buf_json_str(b, v, strlen(v));
        else
                cf_buf_puts(b, "null");
}

static void truth_fault(cf_gen *g, int kind, uint32_t topic, const char *key,
                        const char *eid, int64_t ts)
{
        g->st.faults[kind]++;
        if (!g->truth)
                return;
        cf_buf *b = &g->tb;
        cf_buf_printf(b, "{\"type\":\"fault\",\"fault\":\"%s\"",
                      fkind_names[kind]);
        truth_str(b, "topic", cf_gen_topic_names[topic]);
        truth_str(b, "key", key);
        truth_str(b, "event_id", eid);
        truth_str(b, "reason",
                  fkind_reason[kind] < 0
                      ? NULL
                      : cf_reject_reason_name(fkind_reason[kind]));
        cf_buf_printf(b, ",\"ts_ms\":%" PRId64, ts);
}

static void truth_end(cf_gen *g)
{
        if (!g->truth) {
                g->tb.len = 0;
                return;
        }
        cf_buf_puts(&g->tb, "}\n");
        truth_flush(g, false);
}

static const char *const stop_names[] = {
        "LOCAL",   "REMOTE", "EV_DISCONNECTED", "EV_FULL", "POWER_LOSS",
        "TIMEOUT", "OTHER"
};

static void truth_session(cf_gen *g, const gcharger *ch, const gconn *c,
                          int64_t energy)
{
        g->st.sessions++;
        if (!g->truth)
                return;
        const gsite *s = &g->sites[ch->site];
        cf_buf *b = &g->tb;
        char sid[32], uid[16], bid[24];
        fmt_id(g, sid, 's', c->session_no);
        cf_buf_puts(b, "{\"type\":\"session\"");
        truth_str(b, "session_id", sid);
        truth_str(b, "tenant", g->tenants[s->tenant].id);
        truth_str(b, "site", s->id);
        truth_str(b, "charger", ch->id);
        cf_buf_printf(b, ",\"connector\":%d", c->no);
        if (c->user != NO_USER)
                fmt_user(uid, c->user);
        if (c->badge != UINT64_MAX)
                fmt_badge(g, bid, c->badge);
        truth_str(b, "user", c->user != NO_USER ? uid : NULL);
        /* The badge the traffic carried: a session authorized by user id
         * alone names none, so no pipeline could report one. */
        truth_str(b, "badge",
                  c->badge != UINT64_MAX && c->mode != AUTH_USER ? bid : NULL);
        truth_str(b, "group",
                  c->user != NO_USER ? group_names[g->user_group[c->user]]
                                     : "unauthenticated");
        static const char *const modes[] = { "none", "both", "badge", "user",
                                             "unknown_badge" };
        truth_str(b, "auth", modes[c->mode]);
        int64_t fm = full_ms(c);
        cf_buf_printf(b,
                      ",\"start_ms\":%" PRId64 ",\"stop_ms\":%" PRId64
                      ",\"charge_start_ms\":%" PRId64
                      ",\"charge_end_ms\":%" PRId64 ",\"energy_wh\":%" PRId64
                      ",\"start_wh\":%" PRId64 ",\"stop_wh\":%" PRId64,
                      c->start_ms, c->stop_ms, c->charge0_ms,
                      fm < c->stop_ms ? fm : c->stop_ms, energy, c->reg_start,
                      c->reg_start + energy);
        truth_str(b, "stop_reason", stop_names[c->stop_reason]);
        cf_buf_printf(b,
                      ",\"stop_lost\":%s,\"late\":%s,\"events\":%u,"
                      "\"readings\":%u,\"late_stop\":%s,"
                      "\"stop_in_flight\":%s,\"backfill\":%s}\n",
                      c->lost_stop ? "true" : "false",
                      c->late ? "true" : "false", c->n_events, c->n_readings,
                      c->stop_fault == SF_LATE ? "true" : "false",
                      c->stop_fault == SF_IN_FLIGHT ? "true" : "false",
                      c->backfill ? "true" : "false");
        truth_flush(g, false);
}

static void truth_late(cf_gen *g, gcharger *ch)
{
        g->st.faults[CF_GEN_K_LATE_UPLOAD]++;
        if (g->truth) {
                cf_buf *b = &g->tb;
                cf_buf_puts(b, "{\"type\":\"fault\",\"fault\":\"late_upload\"");
                truth_str(b, "topic", NULL);
                truth_str(b, "key", ch->id);
                truth_str(b, "event_id", NULL);
                truth_str(b, "reason", NULL);
                cf_buf_printf(
                    b,
                    ",\"ts_ms\":%" PRId64 ",\"from_ms\":%" PRId64
                    ",\"to_ms\":%" PRId64 ",\"records\":%" PRIu64 "}\n",
                    ch->off_to, ch->off_from, ch->off_to, ch->off_records);
                truth_flush(g, false);
        }
        ch->off_from = ch->off_to = 0;
        ch->off_records = 0;
}

static void truth_backfill(cf_gen *g, gcharger *ch)
{
        g->st.faults[CF_GEN_K_BACKFILL]++;
        if (g->truth) {
                cf_buf *b = &g->tb;
                cf_buf_puts(b, "{\"type\":\"fault\",\"fault\":\"backfill\"");
                truth_str(b, "topic", NULL);
                truth_str(b, "key", ch->id);
                truth_str(b, "event_id", NULL);
                truth_str(b, "reason", NULL);
                cf_buf_printf(b, ",\"ts_ms\":%" PRId64, ch->bf_to);
                truth_str(b, "site", g->sites[ch->site].id);
                cf_buf_printf(b,
                              ",\"from_ms\":%" PRId64 ",\"to_ms\":%" PRId64
                              ",\"records\":%" PRIu64 "}\n",
                              g->start_ms, ch->bf_to, ch->bf_records);
                truth_flush(g, false);
        }
        ch->bf_to = 0;
        ch->bf_records = 0;
}

/* ---- heaps ------------------------------------------------------------- */

static bool hless(const hent *a, const hent *b)
{
        return a->key < b->key || (a->key == b->key && a->tie < b->tie);
}

static void hdown(hent *h, uint32_t n, uint32_t i)
{
        hent x = h[i];
        for (;;) {
                uint32_t l = 2 * i + 1, m;
                if (l >= n)
                        break;
                m = l + 1 < n && hless(&h[l + 1], &h[l]) ? l + 1 : l;
                if (!hless(&h[m], &x))
                        break;
                h[i] = h[m];
                i = m;
        }
        h[i] = x;
}

static void hup(hent *h, uint32_t i)
{
        hent x = h[i];
        while (i > 0) {
                uint32_t p = (i - 1) / 2;
                if (!hless(&x, &h[p]))
                        break;
                h[i] = h[p];
                i = p;
        }
        h[i] = x;
}

static void dup_push(cf_gen *g, uint32_t topic, int64_t ts, const char *key,
                     const uint8_t *v, size_t len)
{
        if (g->n_dheap == g->cap_dheap) {
                g->cap_dheap = g->cap_dheap ? g->cap_dheap * 2 : 1024;
                g->dheap =
                    cf_realloc(g->dheap, g->cap_dheap * sizeof(*g->dheap));
        }
        dup *d = cf_malloc(sizeof(*d) + len);
        d->topic = topic;
        d->klen = (uint8_t)strlen(key);
        memcpy(d->key, key, d->klen);
        d->len = (uint32_t)len;
        memcpy(d->v, v, len);
        hent *e = &g->dheap[g->n_dheap];
        e->key = ts;
        e->tie = g->dup_seq++;
        e->p = d;
        hup(g->dheap, g->n_dheap++);
}

static int dup_pop(cf_gen *g)
{
        hent e = g->dheap[0];
        g->dheap[0] = g->dheap[--g->n_dheap];
        if (g->n_dheap)
                hdown(g->dheap, g->n_dheap, 0);
        dup *d = e.p;
        int rc = emit(g, d->topic, e.key, d->key, d->klen, d->v, d->len);
        free(d);
        return rc;
}

/* ---- faults ------------------------------------------------------------ */

static extra *extra_begin(cf_gen *g, uint32_t topic, int64_t ts,
                          const char *key)
{
        extra *x = &g->xs[g->n_xs++];
        x->topic = topic;
        x->ts = ts;
        snprintf(x->key, sizeof(x->key), "%s", key);
        x->off = g->xb.len;
        return x;
}

static void extra_end(cf_gen *g, extra *x)
{
        x->len = g->xb.len - x->off;
}

static void fault_corrupt(cf_gen *g, const gcharger *ch, uint32_t topic,
                          const void *rec, int64_t pub)
{
        cf_session_event ev;
        cf_meter_reading mr;
        char eid[32];
        fmt_id(g, eid, 'e', g->next_event++);
        extra *x = extra_begin(g, topic, pub, ch->id);
        if (topic == CF_GEN_T_SESSIONS) {
                ev = *(const cf_session_event *)rec;
                ev.event_id = eid;
                cf_encode(g->reg, CF_RT_SESSION_EVENT, &ev, &g->xb);
        } else {
                mr = *(const cf_meter_reading *)rec;
                mr.event_id = eid;
                cf_encode(g->reg, CF_RT_METER_READING, &mr, &g->xb);
        }
        uint8_t *v = g->xb.p + x->off;
        size_t len = g->xb.len - x->off;
        switch (rnd_below(&g->frng, 4)) {
        case 0: /* not the Confluent magic byte */
                v[0] = (uint8_t)(1 + rnd_below(&g->frng, 255));
                break;
        case 1: /* a schema id no registry has */
                v[1] = 0x7f;
                v[2] = (uint8_t)rnd_below(&g->frng, 256);
                v[3] = (uint8_t)rnd_below(&g->frng, 256);
                v[4] = (uint8_t)rnd_below(&g->frng, 256);
                break;
        case 2: /* cut inside the body: the decoder runs out of bytes */
                g->xb.len =
                    x->off + CF_WIRE_HEADER +
                    rnd_below(&g->frng, (uint32_t)(len - CF_WIRE_HEADER));
                break;
        default: { /* junk after the record */
                uint32_t n = 1 + rnd_below(&g->frng, 8);
                for (uint32_t i = 0; i < n; i++)
                        cf_buf_putc(&g->xb, (uint8_t)rnd(&g->frng));
                break;
        }
        }
        extra_end(g, x);
        g->st.faults[CF_GEN_K_CORRUPT]++;
        if (g->truth) {
                cf_buf *b = &g->tb;
                cf_buf_puts(b, "{\"type\":\"fault\",\"fault\":\"corrupt\"");
                truth_str(b, "topic", cf_gen_topic_names[topic]);
                truth_str(b, "key", ch->id);
                truth_str(b, "event_id", NULL);
                truth_str(b, "reason", "SCHEMA");
                cf_buf_printf(
                    b, ",\"ts_ms\":%" PRId64 ",\"hash\":\"%016" PRIx64 "\"}\n",
                    pub,
                    cf_fnv1a64(CF_FNV1A64_BASIS, g->xb.p + x->off, x->len));
                truth_flush(g, false);
        }
}

static void fault_unknown_site(cf_gen *g, const cf_meter_reading *mr,
                               const cf_session_event *ev, int64_t t,
                               int64_t pub)
{
        char eid[32], sid[32], site[24], chg[24];
        uint64_t n = g->next_fake++;
        fmt_id(g, eid, 'e', g->next_event++);
        fmt_id(g, sid, 's', g->next_session++);
        site[0] = 'S';
        site[1] = 'X';
        put_hex(site + 2, n);
        chg[0] = 'C';
        chg[1] = 'X';
        put_hex(chg + 2, n);
        cf_session_event e = {
                .event_id = eid,
                .kind = CF_SESSION_STARTED,
                .session_id = sid,
                .site_id = site,
                .charger_id = chg,
                .connector_id = 1,
                .time_ms = t,
                .energy_wh = mr ? mr->energy_wh : ev->energy_wh,
                .user_id = NULL,
                .badge_id = NULL,
                .stop_reason = -1,
        };
        extra *x = extra_begin(g, CF_GEN_T_SESSIONS, pub, chg);
        cf_encode(g->reg, CF_RT_SESSION_EVENT, &e, &g->xb);
        extra_end(g, x);
        truth_fault(g, CF_GEN_K_UNKNOWN_SITE, CF_GEN_T_SESSIONS, chg, eid, pub);
        cf_buf_printf(&g->tb, ",\"site\":\"%s\",\"session_id\":\"%s\"", site,
                      sid);
        truth_end(g);
}

/* An invalid or orphan reading derived from the periodic reading mr. */
static void fault_reading(cf_gen *g, gcharger *ch, const cf_meter_reading *mr,
                          int kind, int64_t pub)
{
        cf_meter_reading r = *mr;
        char eid[32], sid[32];
        int64_t half = g->interval_ms / 2 / 1000;
        int64_t dt = (half > 1 ? rnd_range(&g->frng, 1, half - 1) : 0) * 1000;
        const gsite *s = &g->sites[ch->site];

        fmt_id(g, eid, 'e', g->next_event++);
        r.event_id = eid;
        r.seq_no = ++ch->seq;
        r.time_ms = mr->time_ms + dt;
        switch (kind) {
        case CF_GEN_K_METER_REGRESSION:
                r.energy_wh = mr->energy_wh - rnd_range(&g->frng, 1, 500);
                r.power_w = CF_NONE;
                break;
        case CF_GEN_K_METER_JUMP:
                /* Ten times the site's maximum power since mr. */
                r.time_ms = mr->time_ms + half * 1000;
                r.energy_wh =
                    mr->energy_wh +
                    10 * s->max_power_w * (half > 0 ? half : 1) / 3600 + 1;
                r.power_w = 10 * s->max_power_w;
                break;
        case CF_GEN_K_FUTURE_TIME:
                r.time_ms = pub + rnd_range(&g->frng, 2, 30) * CF_MS_PER_DAY;
                break;
        case CF_GEN_K_NEGATIVE_ENERGY:
                r.energy_wh = -rnd_range(&g->frng, 1, 100000);
                break;
        case CF_GEN_K_EMPTY_ID:
                if (rnd_below(&g->frng, 2))
                        r.charger_id = (char *)"";
                else
                        r.session_id = (char *)"";
                break;
        case CF_GEN_K_ORPHAN: {
                /* On an idle connector of the charger if there is one. */
                gconn *c = &g->conns[ch->first_conn + r.connector_id - 1];
                for (uint8_t j = 0; j < ch->n_conn; j++) {
                        gconn *o = &g->conns[ch->first_conn + j];
                        if (o->state == CS_STARTED || o->state == CS_DONE) {
                                c = o;
                                break;
                        }
                }
                fmt_id(g, sid, 's', g->next_session++);
                r.session_id = sid;
                r.connector_id = c->no;
                if (c->state == CS_STARTED || c->state == CS_DONE) {
                        r.energy_wh = c->reg_wh;
                        r.power_w = 0;
                        r.current_ma = 0;
                }
                break;
        }
        }
        extra *x = extra_begin(g, CF_GEN_T_METER, pub, ch->id);
        cf_encode(g->reg, CF_RT_METER_READING, &r, &g->xb);
        extra_end(g, x);
        truth_fault(g, kind, CF_GEN_T_METER, ch->id, eid, pub);
        cf_buf_printf(&g->tb, ",\"time_ms\":%" PRId64, r.time_ms);
        truth_str(&g->tb, "session_id", r.session_id);
        truth_end(g);
}

/* Hands c's held-back stop message (the final reading, then the STOPPED)
 * to the delayed heap, published at ts, with its truth line: late_stop, or
 * stop_in_flight after the next session's STARTED (after_eid, next_sid). */
static void pend_release(cf_gen *g, const gcharger *ch, gconn *c, int kind,
                         int64_t ts, const char *after_eid,
                         const char *next_sid)
{
        pend_stop *p = &c->pend;
        dup_push(g, CF_GEN_T_METER, ts, ch->id, p->b.p, p->r_len);
        dup_push(g, CF_GEN_T_SESSIONS, ts, ch->id, p->b.p + p->r_len,
                 p->b.len - p->r_len);
        truth_fault(g, kind, CF_GEN_T_SESSIONS, ch->id, p->s_eid, ts);
        truth_str(&g->tb, "session_id", p->sid);
        truth_str(&g->tb, "reading_event_id", p->r_eid);
        cf_buf_printf(&g->tb, ",\"time_ms\":%" PRId64 ",\"due_ms\":%" PRId64,
                      p->stop_ms, p->pub);
        if (after_eid) {
                truth_str(&g->tb, "after_event_id", after_eid);
                truth_str(&g->tb, "next_session_id", next_sid);
        }
        truth_end(g);
        p->on = false;
        p->b.len = 0;
}

/* ---- the step ---------------------------------------------------------- */

static int emit_extras(cf_gen *g)
{
        int rc = 0;
        for (uint32_t i = 0; i < g->n_xs && !rc; i++) {
                extra *x = &g->xs[i];
                rc = emit(g, x->topic, x->ts, x->key, strlen(x->key),
                          g->xb.p + x->off, x->len);
        }
        g->n_xs = 0;
        g->xb.len = 0;
        return rc;
}

/* Advances charger ch by one real record and hands it (and its faults) to
 * the sink. Returns the sink's value. */
static int charger_step(cf_gen *g, gcharger *ch)
{
        gconn *c = charger_next(g, ch);
        const gsite *s = &g->sites[ch->site];
        int64_t t = c->next_ms;
        cf_session_event ev;
        cf_meter_reading mr;
        uint32_t topic;
        bool periodic = false, ends = false, final_rd = false, stop_ev = false;
        int64_t energy = 0;

        if (ch->off_to && t >= ch->off_to)
                truth_late(g, ch);
        if (ch->bf_to && t >= ch->bf_to)
                truth_backfill(g, ch);
        if (c->state == CS_STARTED && g->thr[CF_GEN_F_LATE] && !ch->off_to &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_LATE])) {
                /* The charger goes offline for 2 hours to 3 days and then
                 * uploads what it recorded. */
                ch->off_from = t;
                ch->off_to = t + rnd_range(&g->frng, 2 * 60, 72 * 60) * 60000;
                /* Re-keyed to the upload time: nothing is published now. */
                return 0;
        }
        int64_t pub = pub_time(ch, t);
        if (pub_off(ch, t) != t) {
                c->late = true;
                ch->off_records++;
        }
        if (ch->bf_to && t < ch->bf_to) {
                c->backfill = true;
                ch->bf_records++;
        }

        fmt_id(g, g->eid, 'e', g->next_event++);
        fmt_id(g, g->sid, 's', c->session_no);
        /* The previous session's stop, in flight, follows this STARTED
         * 5 minutes to 3 hours after it is published. */
        if (c->state == CS_STARTED && c->pend.on)
                pend_release(g, ch, c, CF_GEN_K_STOP_IN_FLIGHT,
                             pub + rnd_range(&g->frng, 5, 180) * 60000, g->eid,
                             g->sid);
        g->enc.len = 0;
        if (c->state == CS_STARTED || c->state == CS_STOPPED ||
            (c->state == CS_RUN && c->auth_pending &&
             c->next_ms == c->auth_ms)) {
                topic = CF_GEN_T_SESSIONS;
                ev.event_id = g->eid;
                ev.session_id = g->sid;
                ev.site_id = (char *)s->id;
                ev.charger_id = ch->id;
                ev.connector_id = c->no;
                ev.time_ms = t;
                ev.user_id = NULL;
                ev.badge_id = NULL;
                ev.stop_reason = -1;
                if (c->state == CS_STARTED) {
                        ev.kind = CF_SESSION_STARTED;
                        ev.energy_wh = c->reg_start;
                        c->k = 1;
                        conn_plan_run(g, c);
                } else if (c->state == CS_STOPPED) {
                        ev.kind = CF_SESSION_STOPPED;
                        energy = curve_wh(c, c->stop_ms);
                        ev.energy_wh = c->reg_start + energy;
                        ev.stop_reason = c->stop_reason;
                        ends = true;
                        stop_ev = true;
                } else {
                        ev.kind = CF_SESSION_AUTHORIZED;
                        ev.energy_wh = c->reg_start + curve_wh(c, t);
                        if (c->mode == AUTH_BOTH || c->mode == AUTH_USER) {
                                fmt_user(g->uid, c->user);
                                ev.user_id = g->uid;
                        }
                        if (c->mode != AUTH_USER) {
                                fmt_badge(g, g->bid, c->badge);
                                ev.badge_id = g->bid;
                        }
                        c->auth_pending = false;
                        conn_plan_run(g, c);
                }
                c->n_events++;
                cf_encode(g->reg, CF_RT_SESSION_EVENT, &ev, &g->enc);
        } else {
                topic = CF_GEN_T_METER;
                mr.event_id = g->eid;
                mr.session_id = g->sid;
                mr.site_id = (char *)s->id;
                mr.charger_id = ch->id;
                mr.connector_id = c->no;
                mr.seq_no = ++ch->seq;
                mr.time_ms = t;
                energy = curve_wh(c, t);
                mr.energy_wh = c->reg_start + energy;
                mr.power_w = power_at(c, t);
                mr.current_ma =
                    ch->dc ? mr.power_w * 1000 / 400 : mr.power_w * 1000 / 692;
                c->n_readings++;
                if (c->state == CS_FINAL) {
                        mr.power_w = 0;
                        mr.current_ma = 0;
                        if (c->lost_stop) {
                                ends = true;
                                char eid[32];
                                fmt_id(g, eid, 'e', g->next_event++);
                                truth_fault(g, CF_GEN_K_LOST_STOP,
                                            CF_GEN_T_SESSIONS, ch->id, eid,
                                            pub);
                                truth_str(&g->tb, "session_id", g->sid);
                                truth_end(g);
                        } else {
                                c->state = CS_STOPPED;
                                final_rd = true;
                        }
                } else {
                        periodic = true;
                        g->st.periodic_readings++;
                        c->k++;
                        conn_plan_run(g, c);
                }
                cf_encode(g->reg, CF_RT_METER_READING, &mr, &g->enc);
        }
        g->st.real[topic]++;
        if (final_rd && c->stop_fault != SF_NONE) {
                /* The stop message is held back: the final reading now. */
                pend_stop *p = &c->pend;
                p->on = true;
                p->b.len = 0;
                cf_buf_put(&p->b, g->enc.p, g->enc.len);
                p->r_len = g->enc.len;
                memcpy(p->r_eid, g->eid, sizeof(p->r_eid));
                memcpy(p->sid, g->sid, sizeof(p->sid));
                p->stop_ms = c->stop_ms;
                return 0;
        }
        if (ends) {
                gconn done = *c; /* the session, for its truth line */
                c->reg_wh = c->reg_start + energy;
                conn_schedule(g, ch, c, c->stop_ms + MIN_GAP);
                /* In flight only when the connector's next session starts
                 * within a day; else the stop goes out now. */
                if (done.stop_fault == SF_IN_FLIGHT &&
                    !(c->state == CS_STARTED &&
                      c->next_ms - done.stop_ms <= CF_MS_PER_DAY))
                        done.stop_fault = SF_NONE;
                truth_session(g, ch, &done, energy);
                if (stop_ev && c->pend.on) {
                        pend_stop *p = &c->pend;
                        cf_buf_put(&p->b, g->enc.p, g->enc.len);
                        memcpy(p->s_eid, g->eid, sizeof(p->s_eid));
                        p->pub = pub;
                        if (done.stop_fault == SF_LATE) {
                                /* Beyond session.offline.ms (7 days), well
                                 * within correction.window.ms (35). */
                                int64_t d = rnd_range(
                                    &g->frng, 7 * 24 * 60 + 60, 10 * 24 * 60);
                                pend_release(g, ch, c, CF_GEN_K_LATE_STOP,
                                             pub + d * 60000, NULL, NULL);
                                return 0;
                        }
                        if (done.stop_fault == SF_IN_FLIGHT)
                                return 0; /* until the next STARTED */
                        /* Not in flight after all: both go out now. */
                        int rc = emit(g, CF_GEN_T_METER, pub, ch->id, 7, p->b.p,
                                      p->r_len);
                        if (!rc)
                                rc = emit(g, CF_GEN_T_SESSIONS, pub, ch->id, 7,
                                          p->b.p + p->r_len,
                                          p->b.len - p->r_len);
                        p->on = false;
                        p->b.len = 0;
                        return rc;
                }
        }

        /* Faults. */
        gconn *nc = charger_next(g, ch);
        int64_t next_pub = pub_time(ch, nc->next_ms);
        int rc = 0;
        if (!g->faults_on)
                return emit(g, topic, pub, ch->id, 7, g->enc.p, g->enc.len);

        int64_t window =
            2 * g->interval_ms < 180000 ? 2 * g->interval_ms : 180000;
        if (ch->held) {
                held *h = ch->held;
                rc = emit(g, topic, pub, ch->id, 7, g->enc.p, g->enc.len);
                if (!rc)
                        rc = emit(g, h->topic, h->ts, ch->id, 7, h->b.p,
                                  h->b.len);
                truth_fault(g, CF_GEN_K_REORDER, h->topic, ch->id, h->eid,
                            h->ts);
                truth_str(&g->tb, "after_event_id", g->eid);
                truth_end(g);
                cf_buf_free(&h->b);
                free(h);
                ch->held = NULL;
        } else if (g->thr[CF_GEN_F_REORDER] &&
                   rnd_hit(&g->frng, g->thr[CF_GEN_F_REORDER]) &&
                   nc->state != CS_STARTED && nc->state != CS_DONE &&
                   !(nc->stop_fault != SF_NONE &&
                     (nc->state == CS_FINAL || nc->state == CS_STOPPED)) &&
                   next_pub - pub <= window) {
                held *h = cf_calloc(1, sizeof(*h));
                h->topic = topic;
                h->ts = pub;
                memcpy(h->eid, g->eid, sizeof(h->eid));
                cf_buf_init(&h->b);
                cf_buf_put(&h->b, g->enc.p, g->enc.len);
                ch->held = h;
                return 0;
        } else {
                rc = emit(g, topic, pub, ch->id, 7, g->enc.p, g->enc.len);
        }
        if (rc)
                return rc;
        if (g->thr[CF_GEN_F_DUPLICATE] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_DUPLICATE])) {
                int64_t delay = rnd_below(&g->frng, 10) < 7
                                    ? rnd_range(&g->frng, 0, 120) * 1000
                                    : rnd_range(&g->frng, 60, 48 * 60) * 60000;
                dup_push(g, topic, pub + delay, ch->id, g->enc.p, g->enc.len);
                truth_fault(g, CF_GEN_K_DUPLICATE, topic, ch->id, g->eid,
                            pub + delay);
                truth_end(g);
        }
        const void *rec =
            topic == CF_GEN_T_SESSIONS ? (const void *)&ev : (const void *)&mr;
        if (g->thr[CF_GEN_F_CORRUPT] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_CORRUPT]))
                fault_corrupt(g, ch, topic, rec, pub);
        if (g->thr[CF_GEN_F_UNKNOWN_SITE] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_UNKNOWN_SITE]))
                fault_unknown_site(g, topic == CF_GEN_T_METER ? &mr : NULL,
                                   topic == CF_GEN_T_SESSIONS ? &ev : NULL, t,
                                   pub);
        if (periodic && g->thr[CF_GEN_F_INVALID] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_INVALID]))
                fault_reading(g, ch, &mr,
                              CF_GEN_K_METER_REGRESSION +
                                  (int)rnd_below(&g->frng, 5),
                              pub);
        if (periodic && g->thr[CF_GEN_F_ORPHAN] &&
            rnd_hit(&g->frng, g->thr[CF_GEN_F_ORPHAN]))
                fault_reading(g, ch, &mr, CF_GEN_K_ORPHAN, pub);
        return emit_extras(g);
}

int cf_gen_run_traffic(cf_gen *g, cf_gen_sink sink, void *opaque)
{
        int rc = 0;
        g->sink = sink;
        g->opaque = opaque;

        /* Backfilled sites: onboarded 7-28 days into the scenario, their
         * history since the start uploaded then (Kafka timestamp = the
         * upload, event times unchanged). */
        for (uint32_t i = 0; i < g->n_sites && g->thr[CF_GEN_F_BACKFILL]; i++) {
                if (!rnd_hit(&g->frng, g->thr[CF_GEN_F_BACKFILL]))
                        continue;
                int64_t to =
                    g->start_ms +
                    rnd_range(&g->frng, 7 * 24 * 60, 28 * 24 * 60) * 60000;
                if (to > g->end_ms)
                        to = g->end_ms;
                const gsite *s = &g->sites[i];
                for (uint32_t j = 0; j < s->n_chargers; j++)
                        g->chargers[s->first_charger + j].bf_to = to;
        }
        g->heap = cf_malloc(sizeof(*g->heap) * g->n_chargers);
        g->n_heap = 0;
        for (uint32_t i = 0; i < g->n_chargers; i++) {
                gcharger *ch = &g->chargers[i];
                for (uint8_t j = 0; j < ch->n_conn; j++)
                        conn_schedule(g, ch, &g->conns[ch->first_conn + j],
                                      g->start_ms);
                gconn *c = charger_next(g, ch);
                if (c->next_ms == INT64_MAX) {
                        if (ch->bf_to)
                                truth_backfill(g, ch);
                        continue;
                }
                g->heap[g->n_heap] =
                    (hent){ pub_time(ch, c->next_ms), i, NULL };
                hup(g->heap, g->n_heap++);
        }
        while (!rc && (g->n_heap || g->n_dheap)) {
                if (g->n_dheap &&
                    (!g->n_heap || g->dheap[0].key < g->heap[0].key)) {
                        rc = dup_pop(g);
                        continue;
                }
                uint32_t ci = (uint32_t)g->heap[0].tie;
                gcharger *ch = &g->chargers[ci];
                rc = charger_step(g, ch);
                gconn *c = charger_next(g, ch);
                if (c->next_ms == INT64_MAX) {
                        if (ch->off_to)
                                truth_late(g, ch);
                        if (ch->bf_to)
                                truth_backfill(g, ch);
                        g->heap[0] = g->heap[--g->n_heap];
                } else {
                        g->heap[0].key = pub_time(ch, c->next_ms);
                }
                if (g->n_heap)
                        hdown(g->heap, g->n_heap, 0);
        }
        if (!rc && g->truth) {
                cf_buf *b = &g->tb;
                cf_buf_puts(b, "{\"type\":\"summary\",\"records\":{");
                for (int i = 0; i < CF_GEN_T__CNT; i++)
                        cf_buf_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "",
                                      cf_gen_topic_names[i], g->st.records[i]);
                cf_buf_puts(b, "},\"real\":{");
                for (int i = 0; i < CF_GEN_T__CNT; i++)
                        cf_buf_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "",
                                      cf_gen_topic_names[i], g->st.real[i]);
                cf_buf_printf(b,
                              "},\"periodic_readings\":%" PRIu64
                              ",\"sessions\":%" PRIu64 ",\"faults\":{",
                              g->st.periodic_readings, g->st.sessions);
                for (int i = 0; i < CF_GEN_K__CNT; i++)
                        cf_buf_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "",
                                      fkind_names[i], g->st.faults[i]);
                cf_buf_puts(b, "}}\n");
        }
        truth_flush(g, true);
        return rc;
}

/* ---- life cycle -------------------------------------------------------- */

cf_err_t cf_gen_new(cf_gen **gp, const cf_gen_conf *conf, char *errstr,
                    size_t errstr_size)
{
        cf_err_t err;
        if (conf->preset < 0 || conf->preset >= CF_GEN_PRESET__CNT ||
            conf->days < 1 || conf->days > 3660 ||
            conf->meter_interval_s < 10 || conf->meter_interval_s > 3600) {
                snprintf(errstr, errstr_size,
                         "gen: preset, days (1..3660) or meter interval "
                         "(10..3600 s) out of range");
                return CF_ERR_ARG;
        }
        for (int i = 0; i < CF_GEN_F__CNT; i++) {
                if (!(conf->rates[i] >= 0 && conf->rates[i] <= 1)) {
                        snprintf(errstr, errstr_size,
                                 "gen: --%s-rate must be in [0, 1]",
                                 fault_flags[i]);
                        return CF_ERR_ARG;
                }
        }
        cf_gen *g = cf_calloc(1, sizeof(*g));
        g->conf = *conf;
        err = cf_registry_new(&g->reg, errstr, errstr_size);
        if (err)
                goto fail;
        g->tag = mix64(conf->seed ^ 0x7a9ULL) & 0xffffffffULL;
        snprintf(g->tagstr, sizeof(g->tagstr), "%08" PRIx64, g->tag);
        g->start_ms = conf->start_ms;
        g->end_ms = conf->start_ms + (int64_t)conf->days * CF_MS_PER_DAY;
        g->interval_ms = (int64_t)conf->meter_interval_s * 1000;
        g->gap_ms = g->interval_ms / 2 > 1000 ? g->interval_ms / 2 : 1000;
        g->frng = mix64(conf->seed ^ 0xfa017ULL);
        for (int i = 0; i < CF_GEN_F__CNT; i++) {
                g->thr[i] = prob_thr(conf->rates[i]);
                if (g->thr[i])
                        g->faults_on = true;
        }
        build_profiles(g);
        cf_buf_init(&g->tb);
        cf_buf_init(&g->enc);
        cf_buf_init(&g->xb);
        err = build_estate(g, errstr, errstr_size);
        if (err)
                goto fail;
        *gp = g;
        return CF_OK;
fail:
        cf_gen_destroy(g);
        return err;
}

void cf_gen_destroy(cf_gen *g)
{
        if (!g)
                return;
        for (uint32_t i = 0; i < g->n_dheap; i++)
                free(g->dheap[i].p);
        free(g->dheap);
        free(g->heap);
        for (uint32_t i = 0; g->chargers && i < g->n_chargers; i++) {
                if (g->chargers[i].held) {
                        cf_buf_free(&g->chargers[i].held->b);
                        free(g->chargers[i].held);
                }
        }
        for (uint32_t i = 0; g->conns && i < g->n_conns; i++)
                cf_buf_free(&g->conns[i].pend.b);
        free(g->tenants);
        free(g->sites);
        free(g->chargers);
        free(g->conns);
        free(g->user_site);
        free(g->user_group);
        free(g->user_nbadges);
        cf_buf_free(&g->tb);
        cf_buf_free(&g->enc);
        cf_buf_free(&g->xb);
        cf_registry_destroy(g->reg);
        free(g);
}

void cf_gen_set_truth(cf_gen *g, FILE *f)
{
        g->truth = f;
        if (!f)
                return;
        const struct preset *pr = &presets[g->conf.preset];
        cf_buf *b = &g->tb;
        cf_buf_printf(
            b,
            "{\"type\":\"scenario\",\"preset\":\"%s\",\"seed\":%" PRIu64
            ",\"start_ms\":%" PRId64 ",\"end_ms\":%" PRId64
            ",\"days\":%d,\"meter_interval_s\":%d,\"tenants\":%u,"
            "\"sites\":%u,\"chargers\":%u,\"connectors\":%u,"
            "\"users\":%u,\"badges\":%" PRIu64 ",\"rates\":{",
            preset_names[g->conf.preset], g->conf.seed, g->start_ms, g->end_ms,
            g->conf.days, g->conf.meter_interval_s, pr->tenants, g->n_sites,
            g->n_chargers, g->n_conns, g->n_users, g->n_badges);
        for (int i = 0; i < CF_GEN_F__CNT; i++)
                cf_buf_printf(b, "%s\"%s\":%.9g", i ? "," : "", fault_flags[i],
                              g->conf.rates[i]);
        cf_buf_puts(b, "}}\n");
        truth_flush(g, false);
}

const cf_gen_stats *cf_gen_get_stats(const cf_gen *g)
{
        return &g->st;
}
