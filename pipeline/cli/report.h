/*
 * report.h: the charge report, the invoice basis a site owner uses: the
 * charge records of one billing period grouped by billed party (user),
 * charger, badge or site, with sessions, energy and totals.
 *
 * Rows are sorted by tenant, currency and key. Amounts are exact sums of
 * the charge records' minor units, printed in major units with the
 * currency's exponent; energy in kWh with three decimals (exact Wh).
 */
#ifndef CF_REPORT_H
#define CF_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "hmap.h"
#include "records.h"

typedef enum cf_report_by {
        CF_REPORT_USER,
        CF_REPORT_CHARGER,
        CF_REPORT_BADGE,
        CF_REPORT_SITE,
} cf_report_by;

typedef enum cf_report_format {
        CF_REPORT_TABLE,
        CF_REPORT_CSV,
        CF_REPORT_JSON,
} cf_report_format;

typedef struct cf_report_row {
        char *tenant;
        char *key;
        char *currency;
        int64_t sessions, energy_wh, excl, vat, incl;
} cf_report_row;

typedef struct cf_report {
        cf_report_by by;
        char *period; /* period id to keep, e.g. "2026-11" */
        char *tenant; /* NULL: every tenant */
        cf_hmap rows; /* tenant|currency|key -> row */
        cf_report_row **sorted;
        size_t n;
} cf_report;

void cf_report_init(cf_report *r, cf_report_by by, const char *period,
                    const char *tenant);
void cf_report_free(cf_report *r);

/* Adds a charge record if it is of the report's period (and tenant). */
void cf_report_add(cf_report *r, const cf_charge_record *cr);

/* Sorts the rows and writes the report. */
void cf_report_write(cf_report *r, cf_report_format format, FILE *f);

/* Parses "user", "charger", "badge", "site" / "table", "csv", "json". */
int cf_report_parse_by(const char *s);
int cf_report_parse_format(const char *s);

#endif
