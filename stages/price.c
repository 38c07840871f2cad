/*
 * price.c: the price stage. Turns a closed session into a charge record: the
 * site's price version valid at the session's start, the plan of the
 * charger's group for the user's group (cf_site_tariff), else the plan of the
 * user's group (or the unauthenticated plan), the pricing engine over the
 * session's meter timeline, and the billing period containing the stop time.
 *
 * Billed party: the user, found by user id or else by badge; a session with
 * no user (access control off, or a badge nobody holds) is billed to its
 * site, flagged UNKNOWN_BADGE when a badge was given.
 *
 * Corrections: a session that comes back after late data (see
 * sessionize.c) is priced again as revision n+1 of the same record id: the
 * session as now known, its period the one revision 1 was billed in, and a
 * Correction with the difference against what was billed before (kept in
 * the session's `billed`). A revision that can no longer be priced (its
 * site or tariff gone meanwhile) leaves the billed revision standing and is
 * counted (revisions_failed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hmap.h"
#include "session.h"
#include "tables.h"
#include "tz.h"

#define UNAUTH_GROUP "unauthenticated"

/* FNV-1a 64 over s and then a 0xff byte, a separator: "a","bc" differs
 * from "ab","c" (0xff never occurs in UTF-8). */
static uint64_t fnv1a64(uint64_t h, const char *s)
{
        static const uint8_t sep = 0xff;
        h = cf_fnv1a64(h, s, strlen(s));
        return cf_fnv1a64(h, &sep, 1);
}

/* Deterministic id of a session's charge record. */
static char *record_id(cf_arena *a, const cf_session *s)
{
        uint64_t h = CF_FNV1A64_BASIS;
        h = fnv1a64(h, s->site_id);
        h = fnv1a64(h, s->charger_id);
        h = fnv1a64(h, s->session_id);
        char *id = cf_arena_alloc_bytes(a, 20);
        snprintf(id, 20, "CR-%016" PRIx64, h);
        return id;
}

static void add_flag(cf_charge_record *cr, int32_t *flags, int32_t f)
{
        flags[cr->n_flags++] = f;
}

static cf_stage_rc price_process(cf_task *t, void *ctx, cf_item *it)
{
        (void)ctx;
        if (it->kind != CF_ITEM_SESSION)
                return CF_STAGE_PASS;
        cf_session *s = it->rec;
        bool revising = s->billed.revision > 0;
        const cf_tables *tb = cf_task_tables(t);
        cf_arena *a = cf_task_scratch(t);
        char err[256];

        const cf_site *site = cf_tables_site(tb, s->site_id);
        if (revising && !site) {
                cf_task_count(t, &cf_stage_price, "revisions_failed", 1);
                return CF_STAGE_ACCEPTED;
        }
        if (!site) {
                cf_task_reject(t, &cf_stage_price, s->start_src,
                               CF_REJECT_UNKNOWN_SITE, s->start_ms,
                               "session %s: site %s has no config",
                               s->session_id, s->site_id);
                return CF_STAGE_REJECTED;
        }
        const cf_tz *tz = cf_tz_get(site->time_zone);
        const cf_price_version *v = cf_site_version_at(site, s->start_ms);
        if (revising && (!tz || !v)) {
                cf_task_count(t, &cf_stage_price, "revisions_failed", 1);
                return CF_STAGE_ACCEPTED;
        }
        if (!tz || !v) {
                cf_task_reject(t, &cf_stage_price, s->start_src,
                               CF_REJECT_NO_PLAN, s->start_ms,
                               "session %s: site %s has %s", s->session_id,
                               s->site_id,
                               !tz ? "an unknown time zone"
                                   : "no price version at the session start");
                return CF_STAGE_REJECTED;
        }

        const cf_user *u = NULL;
        bool unknown_badge = false;
        if (s->user_id)
                u = cf_tables_user(tb, s->user_id);
        if (!u && s->badge_id) {
                u = cf_tables_user_by_badge(tb, s->badge_id);
                unknown_badge = !u && !s->user_id;
        }
        const char *group = u ? u->group : NULL;
        const cf_tariff *tariff = cf_site_tariff(site, v, s->charger_id, group);

        /* The timeline: the readings, then the stop event's register. */
        cf_meter_point *pts =
            cf_arena_alloc(a, (s->n_points + 1) * sizeof(cf_meter_point));
        uint32_t n = s->n_points;
        for (uint32_t i = 0; i < n; i++)
                pts[i] = cf_session_point(s, i); /* compact in the session */
        if (s->flags & CF_SESS_STOPPED)
                pts[n++] = (cf_meter_point){ s->stop_ms, s->stop_wh, CF_NONE,
                                             CF_NONE };
        cf_price_input in = {
                .tariff = tariff,
                .tz = tz,
                .default_vat_bp = site->vat_bp,
                .start_ms = s->start_ms,
                .stop_ms = s->stop_ms,
                .charging_end_ms = s->charging_end_ms,
                .start_wh = s->start_wh,
                .points = pts,
                .n_points = n,
        };
        cf_price_result r;
        cf_err_t e = cf_price_session(&in, a, &r, err, sizeof(err));
        if (e && revising) {
                cf_task_count(t, &cf_stage_price, "revisions_failed", 1);
                return CF_STAGE_ACCEPTED;
        }
        if (e) {
                cf_task_reject(t, &cf_stage_price, s->start_src,
                               CF_REJECT_NO_PLAN, s->start_ms,
                               "session %s: tariff %s: %s", s->session_id,
                               tariff->tariff_id, err);
                return CF_STAGE_REJECTED;
        }

        cf_charge_record cr;
        int32_t flags[8];
        int64_t pstart, pend;
        char period[CF_PERIOD_ID_MAX];
        memset(&cr, 0, sizeof(cr));
        /* The session is billed in revision 1's period, whatever a
         * correction does to its stop. */
        cf_period_of(tz, site->billing_period,
                     revising ? s->billed.stop_ms : s->stop_ms, &pstart, &pend,
                     period);
        cr.record_id = record_id(a, s);
        cr.tenant_id = site->tenant_id;
        cr.site_id = s->site_id;
        cr.charger_id = s->charger_id;
        cr.connector_id = s->connector_id;
        cr.session_id = s->session_id;
        cr.user_id = u ? u->user_id : NULL;
        cr.badge_id = s->badge_id;
        cr.user_group = u ? u->group : UNAUTH_GROUP;
        cr.party_kind = u ? CF_PARTY_USER : CF_PARTY_SITE;
        cr.billed_party = u ? u->user_id : s->site_id;
        cr.start_ms = s->start_ms;
        cr.stop_ms = s->stop_ms;
        cr.energy_wh = r.energy_wh;
        cr.charging_ms = r.charging_ms;
        cr.parking_ms = r.parking_ms;
        cr.tariff_id = tariff->tariff_id;
        cr.tariff_version_ms = v->valid_from_ms;
        cr.currency = tariff->currency;
        cr.lines = r.lines;
        cr.n_lines = r.n_lines;
        cr.total_excl_vat = r.total_excl_vat;
        cr.total_vat = r.total_vat;
        cr.total_incl_vat = r.total_incl_vat;
        cr.period_id = period;
        cr.flags = flags;
        if (s->flags & CF_SESS_ESTIMATED)
                add_flag(&cr, flags, CF_FLAG_STOP_ESTIMATED);
        if (s->flags & CF_SESS_GAP)
                add_flag(&cr, flags, CF_FLAG_METER_GAP);
        if (!s->n_points)
                add_flag(&cr, flags, CF_FLAG_NO_READINGS);
        if (r.flags & CF_PRICE_MIN_APPLIED)
                add_flag(&cr, flags, CF_FLAG_MIN_PRICE);
        if (r.flags & CF_PRICE_MAX_APPLIED)
                add_flag(&cr, flags, CF_FLAG_MAX_PRICE);
        if (unknown_badge)
                add_flag(&cr, flags, CF_FLAG_UNKNOWN_BADGE);
        cr.charging_periods = r.periods;
        cr.n_charging_periods = r.n_periods;
        cf_correction corr;
        if (revising) {
                bool st = s->flags & CF_SESS_LATE_STOP;
                bool rd = s->flags & CF_SESS_LATE_READ;
                corr = (cf_correction){
                        .reason = st && rd ? "late stop and readings"
                                  : st     ? "late stop"
                                           : "late readings",
                        .energy_wh = r.energy_wh - s->billed.energy_wh,
                        .total_excl_vat = r.total_excl_vat - s->billed.excl,
                        .total_vat = r.total_vat - s->billed.vat,
                        .total_incl_vat = r.total_incl_vat - s->billed.incl,
                };
                cr.correction = &corr;
        } else {
                s->billed.stop_ms = s->stop_ms;
        }
        cr.revision = ++s->billed.revision;
        s->billed.energy_wh = r.energy_wh;
        s->billed.excl = r.total_excl_vat;
        s->billed.vat = r.total_vat;
        s->billed.incl = r.total_incl_vat;
        cf_task_emit_charge(t, &cr, s->due_ts);
        cf_task_count(t, &cf_stage_price, "charge_records", 1);
        if (revising)
                cf_task_count(t, &cf_stage_price, "revisions", 1);
        return CF_STAGE_ACCEPTED;
}

const cf_stage cf_stage_price = {
        .name = "price",
        .process = price_process,
};
