/* report.c: the charge report (see report.h): per key, the sessions of a
 * period and their totals, revisions counted by their differences. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "money.h"

static const char *const by_names[] = { "user", "charger", "badge", "site" };

int cf_report_parse_by(const char *s)
{
        for (int i = 0; i < 4; i++)
                if (!strcmp(s, by_names[i]))
                        return i;
        return -1;
}

int cf_report_parse_format(const char *s)
{
        static const char *const names[] = { "table", "csv", "json" };
        for (int i = 0; i < 3; i++)
                if (!strcmp(s, names[i]))
                        return i;
        return -1;
}

void cf_report_init(cf_report *r, cf_report_by by, const char *period,
                    const char *tenant)
{
        memset(r, 0, sizeof(*r));
        r->by = by;
        r->period = cf_strdup(period);
        r->tenant = tenant ? cf_strdup(tenant) : NULL;
        cf_hmap_init(&r->rows);
}

void cf_report_free(cf_report *r)
{
        size_t i = 0;
        cf_hmap_slot *s;
        while (cf_hmap_next(&r->rows, &i, &s)) {
                cf_report_row *row = s->value;
                free(row->tenant);
                free(row->key);
                free(row->currency);
                free(row);
        }
        cf_hmap_free(&r->rows);
        free(r->sorted);
        free(r->period);
        free(r->tenant);
}

void cf_report_add(cf_report *r, const cf_charge_record *cr)
{
        if (strcmp(cr->period_id, r->period) ||
            (r->tenant && strcmp(cr->tenant_id, r->tenant)))
                return;
        const char *key;
        switch (r->by) {
        case CF_REPORT_USER:
                key = cr->billed_party;
                break;
        case CF_REPORT_CHARGER:
                key = cr->charger_id;
                break;
        case CF_REPORT_BADGE:
                key = cr->badge_id ? cr->badge_id : "(none)";
                break;
        default:
                key = cr->site_id;
                break;
        }
        char k[768];
        snprintf(k, sizeof(k), "%s\x1f%s\x1f%s", cr->tenant_id, cr->currency,
                 key);
        cf_report_row *row = cf_hmap_sget(&r->rows, k);
        if (!row) {
                row = cf_calloc(1, sizeof(*row));
                row->tenant = cf_strdup(cr->tenant_id);
                row->key = cf_strdup(key);
                row->currency = cf_strdup(cr->currency);
                cf_hmap_sput(&r->rows, k, row);
        }
        /* A revision adds its difference (the sum over a session's
         * records is then its latest revision), and no session. */
        if (cr->revision > 1 && cr->correction) {
                row->energy_wh += cr->correction->energy_wh;
                row->excl += cr->correction->total_excl_vat;
                row->vat += cr->correction->total_vat;
                row->incl += cr->correction->total_incl_vat;
                return;
        }
        row->sessions++;
        row->energy_wh += cr->energy_wh;
        row->excl += cr->total_excl_vat;
        row->vat += cr->total_vat;
        row->incl += cr->total_incl_vat;
}

static int cmp_row(const void *a, const void *b)
{
        const cf_report_row *x = *(cf_report_row *const *)a,
                            *y = *(cf_report_row *const *)b;
        int c = strcmp(x->tenant, y->tenant);
        if (!c)
                c = strcmp(x->currency, y->currency);
        return c ? c : strcmp(x->key, y->key);
}

static void money(char *buf, size_t n, int64_t minor, const char *cur)
{
        int32_t exp = cf_money_currency_exp(cur);
        cf_money_format(minor, exp < 0 ? 2 : exp, buf, n);
}

static void kwh(char *buf, size_t n, int64_t wh)
{
        snprintf(buf, n, "%s%lld.%03lld", wh < 0 ? "-" : "",
                 (long long)(wh < 0 ? -wh : wh) / 1000,
                 (long long)(wh < 0 ? -wh : wh) % 1000);
}

void cf_report_write(cf_report *r, cf_report_format format, FILE *f)
{
        size_t i = 0;
        cf_hmap_slot *s;
        free(r->sorted);
        r->sorted = cf_malloc((r->rows.n + 1) * sizeof(*r->sorted));
        r->n = 0;
        while (cf_hmap_next(&r->rows, &i, &s))
                r->sorted[r->n++] = s->value;
        qsort(r->sorted, r->n, sizeof(*r->sorted), cmp_row);
        const char *by = by_names[r->by];
        if (format == CF_REPORT_CSV)
                fprintf(f,
                        "period,tenant,%s,sessions,energy_kwh,excl_vat,"
                        "vat,incl_vat,currency\n",
                        by);
        else if (format == CF_REPORT_TABLE)
                fprintf(f, "%-8s %-8s %-20s %8s %12s %12s %12s %12s %s\n",
                        "period", "tenant", by, "sessions", "energy_kwh",
                        "excl_vat", "vat", "incl_vat", "currency");
        else
                fprintf(f, "[");
        for (size_t k = 0; k < r->n; k++) {
                const cf_report_row *row = r->sorted[k];
                char e[32], x[32], v[32], t[32];
                kwh(e, sizeof(e), row->energy_wh);
                money(x, sizeof(x), row->excl, row->currency);
                money(v, sizeof(v), row->vat, row->currency);
                money(t, sizeof(t), row->incl, row->currency);
                if (format == CF_REPORT_CSV)
                        fprintf(f, "%s,%s,%s,%lld,%s,%s,%s,%s,%s\n", r->period,
                                row->tenant, row->key, (long long)row->sessions,
                                e, x, v, t, row->currency);
                else if (format == CF_REPORT_TABLE)
                        fprintf(f,
                                "%-8s %-8s %-20s %8lld %12s %12s %12s %12s "
                                "%s\n",
                                r->period, row->tenant, row->key,
                                (long long)row->sessions, e, x, v, t,
                                row->currency);
                else {
                        /* Ids come from the input: escape them. */
                        cf_buf b;
                        cf_buf_init(&b);
                        cf_buf_puts(&b,
                                    k ? ",\n{\"period\":" : "\n{\"period\":");
                        cf_buf_json_str(&b, r->period, strlen(r->period));
                        cf_buf_puts(&b, ",\"tenant\":");
                        cf_buf_json_str(&b, row->tenant, strlen(row->tenant));
                        cf_buf_printf(&b, ",\"%s\":", by);
                        cf_buf_json_str(&b, row->key, strlen(row->key));
                        cf_buf_printf(&b,
                                      ",\"sessions\":%lld,\"energy_wh\":%lld,"
                                      "\"excl_vat\":%lld,\"vat\":%lld,"
                                      "\"incl_vat\":%lld,\"currency\":",
                                      (long long)row->sessions,
                                      (long long)row->energy_wh,
                                      (long long)row->excl, (long long)row->vat,
                                      (long long)row->incl);
                        cf_buf_json_str(&b, row->currency,
                                        strlen(row->currency));
                        cf_buf_putc(&b, '}');
                        fwrite(b.p, 1, b.len, f);
                        cf_buf_free(&b);
                }
        }
        if (format == CF_REPORT_JSON)
                fprintf(f, "%s]\n", r->n ? "\n" : "");
}
