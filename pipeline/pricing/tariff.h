/*
 * tariff.h: the pricing engine. Prices one charging session by an OCPI 2.2.1
 * tariff (cf_tariff, records.h), with integers only, and loads OCPI Tariff
 * JSON documents into cf_tariff.
 *
 * No Kafka and no state here: the price stage calls cf_price_session() for a
 * closed session; tests, benchmarks and `chargeflow tariff` call it alone.
 * Everything is reentrant; no function keeps state between calls.
 *
 * Units: energy Wh, times ms since the epoch, prices micro-units of the
 * tariff's currency per kWh / per hour / per session, amounts int64 minor
 * units of the currency (its ISO 4217 exponent), VAT in basis points of a
 * percent (25% = 2500). The rounding rule is in the README, "Pricing", and
 * restated at cf_price_session().
 */
#ifndef CF_TARIFF_H
#define CF_TARIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mem.h"
#include "money.h"
#include "records.h"
#include "tz.h"

/* Most elements a tariff may have (restriction matches are a bit mask). */
#define CF_TARIFF_MAX_ELEMENTS 64

/* Largest step_size (1 GWh, or about 31 years in seconds). */
#define CF_TARIFF_MAX_STEP 1000000000LL

/* One meter reading of the session's timeline. */
typedef struct cf_meter_point {
        int64_t t_ms;
        int64_t energy_wh;  /* the charger's energy register */
        int64_t power_w;    /* CF_NONE: derived from the energy delta */
        int64_t current_ma; /* CF_NONE: unknown */
} cf_meter_point;

/* What cf_price_session() prices. The caller owns every pointer; nothing is
 * kept after the call. */
typedef struct cf_price_input {
        const cf_tariff *tariff; /* the plan version valid at start_ms */
        const cf_tz *tz;         /* the site's zone, for local restrictions */
        int64_t default_vat_bp;  /* for components whose vat_bp is CF_NONE */
        int64_t start_ms;
        int64_t stop_ms;         /* >= start_ms */
        int64_t charging_end_ms; /* charging stopped (then parking);
                                    CF_NONE: at stop_ms */
        int64_t start_wh;        /* energy register at start_ms */
        /* Readings in time order (equal times allowed), registers never
         * going down. Readings at or before start_ms or after stop_ms are
         * ignored; put the stop event's register at stop_ms. Energy between
         * readings is interpolated linearly, and stays flat after the last
         * one. A reading's power and current hold for the interval that ends
         * at it (unknown power: the interval's average from the energy
         * delta) and, past the last reading, until stop. */
        const cf_meter_point *points;
        uint32_t n_points;
} cf_price_input;

/* cf_price_result.flags bits. */
#define CF_PRICE_MIN_APPLIED (1u << CF_FLAG_MIN_PRICE)
#define CF_PRICE_MAX_APPLIED (1u << CF_FLAG_MAX_PRICE)

typedef struct cf_price_result {
        /* One line per dimension and VAT rate that some period priced (FLAT
         * at most once), in cf_dim order; volume after step_size (Wh, ms,
         * 1 for FLAT). Usable as cf_charge_record.lines. */
        cf_price_line *lines;
        uint32_t n_lines;
        /* Charging periods as in an OCPI CDR: a new one whenever the active
         * element of ENERGY, or of TIME while charging / PARKING_TIME while
         * parking, changes, and when charging ends. Measured volumes
         * (before step_size): ENERGY Wh, TIME or PARKING_TIME ms,
         * MAX_POWER W and MAX_CURRENT mA when known, FLAT 1 in the period
         * that carried the flat fee. tariff_element is the lowest index of
         * the elements the period used: ENERGY and TIME while charging,
         * PARKING_TIME (and ENERGY only if some flowed) while parking; -1
         * if none (a free period). Usable as cf_charge_record.charging_periods.
         */
        cf_charging_period *periods;
        uint32_t n_periods;
        /* period_elements[i * CF_DIM__CNT + d]: the element active for
         * dimension d (cf_dim) in period i, -1 if none or not applicable. */
        int32_t *period_elements;
        int64_t energy_wh;   /* delivered in the session */
        int64_t charging_ms; /* start to charging end */
        int64_t parking_ms;  /* charging end to stop */
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
        uint32_t flags;       /* CF_PRICE_MIN_APPLIED, CF_PRICE_MAX_APPLIED */
        int32_t currency_exp; /* minor-unit exponent of the currency */
} cf_price_result;

/* Checks that t can be priced: known currency, 1..CF_TARIFF_MAX_ELEMENTS
 * elements each with at least one component, valid dimension types,
 * non-negative prices, step_size 1..CF_TARIFF_MAX_STEP (FLAT: any
 * 0..CF_TARIFF_MAX_STEP, it has no unit), VAT in 0..10000 bp or CF_NONE, times
 * of day in 0..1439, weekdays 0..6, non-negative limits. Returns CF_OK, or
 * CF_ERR_TARIFF with the offending field in errstr
 * ("elements[1].price_components[0].step_size: must be >= 1"). */
cf_err_t cf_tariff_validate(const cf_tariff *t, char *errstr,
                            size_t errstr_size);

/* Prices one session.
 *
 * Splits [start_ms, stop_ms) into charging periods (see cf_price_result),
 * choosing per dimension the first element whose restrictions all hold
 * (OCPI 2.2.1): times of day, dates and weekdays in the zone's local time
 * (end_time before start_time wraps past midnight, end 00:00 is the end of
 * the day), energy and duration so far, the interval's power and current
 * (unknown current: current restrictions do not hold); min_* inclusive,
 * max_* exclusive. FLAT is billed once, by the first element with a FLAT
 * component active in the earliest period where one is.
 *
 * step_size (OCPI 2.2.1, CDRs module, "Step_size"): once for ENERGY and
 * once for TIME and PARKING_TIME together, the total volume of the
 * dimension is rounded up to a multiple of the step of the last element
 * that priced it (the last one with volume), the extra billed at that
 * element's price. Of TIME and PARKING_TIME only the one priced last is
 * rounded: when parking is priced, TIME is billed exactly and the parking
 * total is rounded; TIME is rounded only when no parking is priced.
 *
 * Amounts: a line's exact value (sum of volume times price, in fractions of
 * a micro-unit) is rounded once to minor units, half up: its amount excl.
 * VAT, VAT then excl x rate half up; or, if tf->prices_include_vat, its
 * amount incl. VAT, VAT then incl x rate / (1 + rate) half up and excl =
 * incl - VAT. Then the limits, as OCPI says both hold: if min_price_minor
 * or max_price_minor bounds the sum of the lines' excl. amounts, those are
 * scaled to that total, split by largest remainder (ties to the earlier
 * line), VAT recomputed per line from excl.; then if min_price_incl_minor
 * or max_price_incl_minor bounds the sum of the incl. amounts, those are
 * scaled likewise and each line's VAT split from its incl. amount. If every
 * line is zero a limit goes to the first line, or to a new FLAT line at
 * the default VAT. Totals are sums of lines.
 *
 * Returns CF_OK and fills out, with arrays allocated from a (freed with
 * the arena); CF_ERR_ARG for an inconsistent session (stop before start,
 * readings out of order or going down); CF_ERR_TARIFF for a tariff that
 * cf_tariff_validate() rejects; CF_ERR_NOT_FOUND if the tariff is not
 * valid at start_ms (its start_ms/end_ms). errstr says why. Thread safe. */
cf_err_t cf_price_session(const cf_price_input *in, cf_arena *a,
                          cf_price_result *out, char *errstr,
                          size_t errstr_size);

/* ---- OCPI 2.2.1 Tariff JSON (tariff_json.c) --------------------------- */

/* What an OCPI document says beyond cf_tariff. */
typedef struct cf_tariff_doc {
        char *country_code;           /* NULL if absent */
        char *party_id;               /* NULL if absent */
        char *type;                   /* TariffType, NULL if absent */
        int64_t last_updated_ms;      /* CF_NONE if absent */
        int64_t min_price_incl_minor; /* CF_NONE if absent (also in the
                                         cf_tariff) */
        int64_t max_price_incl_minor; /* CF_NONE if absent */
        char **warnings;              /* things ignored or suspicious */
        uint32_t n_warnings;
} cf_tariff_doc;

/* Parses an OCPI 2.2.1 Tariff object from JSON text into *out (and *doc if
 * not NULL). Numbers are read from their decimal text, never through
 * floating point: prices to micro-units (at most 6 decimals), VAT to basis
 * points (2 decimals), kWh to Wh, kW to W, A to mA (3 decimals), min_price
 * and max_price (excl_vat and incl_vat) to minor units (at most the
 * currency's decimals). A
 * component without vat gets vat_bp CF_NONE, priced at the caller's
 * default_vat_bp (a standalone OCPI document means no VAT: pass 0, as
 * `chargeflow tariff` does; a site plan means the site's VAT).
 * Returns CF_OK; CF_ERR_TARIFF with "path: reason" in errstr
 * ("elements[1].price_components[0].step_size: must be a positive
 * integer") for a malformed document or one using what the engine does not
 * support (reservation restrictions). Strings and arrays live in a. */
cf_err_t cf_tariff_from_json(const char *text, size_t len, cf_arena *a,
                             cf_tariff *out, cf_tariff_doc *doc, char *errstr,
                             size_t errstr_size);

/* Parses an RFC 3339 date-time ("2026-03-29T01:30:00Z", "...+02:00",
 * optional fractional seconds) to ms since the epoch. Without a zone
 * designator the time is local time in zone local (UTC if NULL), resolved as
 * cf_tz_local_to_utc() does. A bare date ("2026-03-29") is its midnight.
 * Returns false on anything else. */
bool cf_price_parse_time(const char *s, const cf_tz *local, int64_t *ms);

/* Parses a decimal number ("12.5", "0.25", "2.5e-1") exactly into units of
 * 10^-scale (scale 3: "12.5" is 12500). False if it is not a number, has
 * more than scale decimals, or does not fit. */
bool cf_price_parse_decimal(const char *s, int scale, int64_t *out);

/* cf_tariff_from_json() on a file's contents; CF_ERR_IO if unreadable. */
cf_err_t cf_tariff_load_file(const char *path, cf_arena *a, cf_tariff *out,
                             cf_tariff_doc *doc, char *errstr,
                             size_t errstr_size);

#endif
