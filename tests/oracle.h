/*
 * oracle.h: an independent pricing oracle for the tests (issue #6,
 * "statements equal totals computed from the truth file and the published
 * plans, to the minor unit, for every party and period").
 *
 * It prices every real session of a generator run from the generator's own
 * outputs: the truth file (sessions: user, group, site, start and stop,
 * lost stops; faults), the published plans (billing.sites records of the
 * genfile) and the published meter readings (charging.meter records of the
 * genfile, less every record the truth names as a fault, less repeats).
 * It shares no code with the production pricer (pipeline/pricing/tariff.c,
 * stages/price.c, stages/bill.c): it reads README "Pricing" as its
 * specification and prices by brute force (oracle.c says how). Only the
 * codec, the genfile reader, the time zone functions and two plan
 * lookups of tables.h (cf_site_version_at, cf_version_tariff) come from
 * the pipeline; the choice by charger group is the oracle's own, from
 * the schema's text (schemas/site.avsc, PriceVersion.charger_plans).
 *
 * It supports what the generator's plans use (ENERGY, FLAT, PARKING_TIME,
 * TIME; restrictions on time of day, dates, weekdays and duration;
 * step_size; min_price and max_price excl. and incl. VAT; prices stated
 * incl. VAT; plans per charger group) and fails with an error
 * naming anything else, rather than pricing it wrongly.
 */
#ifndef CF_TEST_ORACLE_H
#define CF_TEST_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records.h"
#include "tz.h"

/* One priced session. */
typedef struct cf_oracle_session {
        char *session_id;
        char *tenant;
        char *site;
        char *party; /* the user, or the site for a session without one */
        char *currency;
        int64_t start_ms;
        int64_t stop_ms; /* the billed stop (a lost stop: the last reading) */
        int64_t charge_end_ms;
        int64_t energy_wh;
        int64_t excl_vat, vat, incl_vat; /* minor units */
        char period[CF_PERIOD_ID_MAX];   /* of the stop, in the site's zone */
        char *tariff_id;                 /* the plan chosen */
        bool charger_plan;               /* chosen by the charger's group */
        bool limited;                    /* a min/max price moved the total */
        bool prices_incl_vat;            /* its prices are incl. VAT */
} cf_oracle_session;

/* Totals of one tenant, billed party and billing period. */
typedef struct cf_oracle_total {
        char *key; /* "tenant|party|period" */
        char *currency;
        int64_t sessions, energy_wh;
        int64_t excl_vat, vat, incl_vat;
} cf_oracle_total;

typedef struct cf_oracle cf_oracle;

/* Reads the genfile and the truth file and prices every session. Returns
 * NULL with the reason in err when an input cannot be read or a plan uses
 * something the oracle does not support. */
cf_oracle *cf_oracle_load(const char *genfile, const char *truth, char *err,
                          size_t err_size);
void cf_oracle_free(cf_oracle *o);

size_t cf_oracle_n_sessions(const cf_oracle *o);
const cf_oracle_session *cf_oracle_session_at(const cf_oracle *o, size_t i);
const cf_oracle_session *cf_oracle_find(const cf_oracle *o,
                                        const char *session_id);

size_t cf_oracle_n_totals(const cf_oracle *o);
const cf_oracle_total *cf_oracle_total_at(const cf_oracle *o, size_t i);
const cf_oracle_total *cf_oracle_total_find(const cf_oracle *o,
                                            const char *key);

/* The pricer alone, for hand-derived cases. knots: the register over the
 * session in time order, the stop's register last (t <= stop_ms); readings
 * at or before start_ms are ignored. Returns 0, or -1 with err filled
 * (inconsistent input, or a plan element the oracle does not support). */
typedef struct cf_oracle_knot {
        int64_t t_ms, wh;
} cf_oracle_knot;

typedef struct cf_oracle_price {
        int64_t excl_vat, vat, incl_vat;
        bool limited; /* a min/max price (excl. or incl.) moved the total */
        int64_t charge_end_ms;
        int64_t energy_wh;
} cf_oracle_price;

int cf_oracle_price_session(const cf_tariff *t, const cf_tz *tz,
                            int64_t site_vat_bp, int64_t start_ms,
                            int64_t stop_ms, int64_t start_wh,
                            const cf_oracle_knot *knots, size_t n_knots,
                            cf_oracle_price *out, char *err, size_t err_size);

#endif
