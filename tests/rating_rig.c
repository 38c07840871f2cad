/* rating_rig.c: the world of the rating stage tests (rating_rig.h). */
#include "rating_rig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "inproc.h"
#include "tables.h"

const cf_counts *counts(cf_rig *r, int input)
{
        return &cf_rig_task(r, 0)->cnt[input];
}

void assert_counts(cf_rig *r, int input, int64_t in, int64_t accepted,
                   int64_t dup, int64_t rejected, int64_t pending)
{
        const cf_counts *c = counts(r, input);
        assert_int_equal(c->in, in);
        assert_int_equal(c->accepted, accepted);
        assert_int_equal(c->dup, dup);
        assert_int_equal(c->rejected, rejected);
        assert_int_equal(c->pending, pending);
}

void publish_site(cf_rig *r, const char *site_id, int versions)
{
        /* Prices in micro-NOK per kWh (ENERGY) or per session (FLAT). */
        cf_price_component res1[] = { { CF_DIM_ENERGY, 2500000, CF_NONE, 1 } };
        cf_price_component res2[] = { { CF_DIM_ENERGY, 3000000, CF_NONE, 1 } };
        cf_price_component guest[] = {
                { CF_DIM_ENERGY, 3000000, CF_NONE, 1 },
                { CF_DIM_FLAT, 10000000, CF_NONE, 1 },
        };
        cf_price_component dflt[] = { { CF_DIM_ENERGY, 4000000, CF_NONE, 1 } };
        cf_price_component unauth[] = { { CF_DIM_ENERGY, 5000000, CF_NONE,
                                          1 } };
        cf_tariff_element e_res1 = { res1, 1, NULL };
        cf_tariff_element e_res2 = { res2, 1, NULL };
        cf_tariff_element e_guest = { guest, 2, NULL };
        cf_tariff_element e_dflt = { dflt, 1, NULL };
        cf_tariff_element e_unauth = { unauth, 1, NULL };
        cf_tariff t_unauth = cf_rig_tariff("unauth-v1", &e_unauth);
        cf_group_plan plans1[] = {
                { "resident", cf_rig_tariff("resident-v1", &e_res1) },
                { "guest", cf_rig_tariff("guest-v1", &e_guest) },
        };
        cf_group_plan plans2[] = {
                { "resident", cf_rig_tariff("resident-v2", &e_res2) },
        };
        cf_price_version pv[] = {
                { V1_FROM, plans1, 2, cf_rig_tariff("default-v1", &e_dflt),
                  &t_unauth, NULL, 0 },
                { V2_FROM, plans2, 1, cf_rig_tariff("default-v2", &e_dflt),
                  &t_unauth, NULL, 0 },
        };
        cf_site s = {
                .site_id = (char *)site_id,
                .tenant_id = "t-coop",
                .name = "Coop",
                .time_zone = "Europe/Oslo",
                .billing_period = CF_PERIOD_MONTH,
                .currency = "NOK",
                .vat_bp = 2500,
                .max_power_w = 22000,
                .access_control = true,
                .versions = pv,
                .n_versions = (uint32_t)versions,
                .updated_ms = V1_FROM,
        };
        cf_rig_table(r, CF_TABLE_SITES, CF_RT_SITE, site_id, &s);
}

static void publish_user(cf_rig *r, const char *id, const char *group,
                         const char *badge)
{
        char *badges[] = { (char *)badge };
        cf_user u = { .user_id = (char *)id,
                      .tenant_id = "t-coop",
                      .name = NULL,
                      .group = (char *)group,
                      .badges = badges,
                      .n_badges = 1,
                      .updated_ms = V1_FROM };
        cf_rig_table(r, CF_TABLE_USERS, CF_RT_USER, id, &u);
}

cf_rig *rating_rig_new(void)
{
        cf_rig *r = cf_rig_new("stages");
        cf_rig_set_int(r, "allowed.lateness.ms", LATENESS);
        cf_rig_set_int(r, "session.timeout.ms", TIMEOUT);
        cf_rig_set_int(r, "orphan.wait.ms", ORPHAN_WAIT);
        cf_rig_set_int(r, "unknown.site.wait.ms", SITE_WAIT);
        cf_rig_set_int(r, "max.clock.skew.ms", SKEW);
        cf_rig_set_int(r, "dedup.window", DEDUP_WINDOW);
        cf_rig_open(r, 1);
        publish_site(r, "site-1", 1);
        publish_user(r, "u-anna", "resident", "B-ANNA");
        publish_user(r, "u-gus", "guest", "B-GUS");
        publish_user(r, "u-emp", "employee", "B-EMP");
        return r;
}

cf_session_event ev(const char *eid, int32_t kind, const char *sid, int64_t t,
                    int64_t wh)
{
        return (cf_session_event){ .event_id = (char *)eid,
                                   .kind = kind,
                                   .session_id = (char *)sid,
                                   .site_id = "site-1",
                                   .charger_id = "CH-1",
                                   .connector_id = 1,
                                   .time_ms = t,
                                   .energy_wh = wh,
                                   .user_id = NULL,
                                   .badge_id = NULL,
                                   .stop_reason = kind == CF_SESSION_STOPPED
                                                      ? CF_STOP_LOCAL
                                                      : -1 };
}

cf_meter_reading rd(const char *eid, const char *sid, int64_t seq, int64_t t,
                    int64_t wh)
{
        return (cf_meter_reading){ .event_id = (char *)eid,
                                   .session_id = (char *)sid,
                                   .site_id = "site-1",
                                   .charger_id = "CH-1",
                                   .connector_id = 1,
                                   .seq_no = seq,
                                   .time_ms = t,
                                   .energy_wh = wh,
                                   .power_w = CF_NONE,
                                   .current_ma = CF_NONE };
}

int64_t feed_ev_at(cf_rig *r, int64_t ts, const cf_session_event *e)
{
        return cf_rig_feed(r, 0, CF_IN_SESSIONS, ts, e->charger_id,
                           CF_RT_SESSION_EVENT, e);
}

int64_t feed_ev(cf_rig *r, const cf_session_event *e)
{
        return feed_ev_at(r, e->time_ms, e);
}

int64_t feed_rd_at(cf_rig *r, int64_t ts, const cf_meter_reading *m)
{
        return cf_rig_feed(r, 0, CF_IN_METER, ts, m->charger_id,
                           CF_RT_METER_READING, m);
}

int64_t feed_rd(cf_rig *r, const cf_meter_reading *m)
{
        return feed_rd_at(r, m->time_ms, m);
}

void feed_std_session(cf_rig *r, const char *sid, const char *ch, int64_t start,
                      int64_t seq0, const char *user, const char *badge)
{
        char id[64];
        snprintf(id, sizeof(id), "%s-start", sid);
        cf_session_event e = ev(id, CF_SESSION_STARTED, sid, start, 100000);
        e.charger_id = (char *)ch;
        e.user_id = (char *)user;
        e.badge_id = (char *)badge;
        feed_ev(r, &e);
        for (int i = 1; i <= 3; i++) {
                snprintf(id, sizeof(id), "%s-r%d", sid, i);
                cf_meter_reading m = rd(id, sid, seq0 + i, start + i * 15 * MIN,
                                        100000 + i * 2500);
                m.charger_id = (char *)ch;
                feed_rd(r, &m);
        }
        snprintf(id, sizeof(id), "%s-stop", sid);
        e = ev(id, CF_SESSION_STOPPED, sid, start + 60 * MIN, 110000);
        e.charger_id = (char *)ch;
        feed_ev(r, &e);
}

bool has_flag(const cf_charge_record *cr, int32_t f)
{
        for (uint32_t i = 0; i < cr->n_flags; i++)
                if (cr->flags[i] == f)
                        return true;
        return false;
}

void assert_energy_only(const cf_charge_record *cr, int64_t wh, int64_t excl,
                        int64_t vat)
{
        assert_int_equal(cr->energy_wh, wh);
        assert_int_equal(cr->n_lines, 1);
        assert_int_equal(cr->lines[0].dimension, CF_DIM_ENERGY);
        assert_int_equal(cr->lines[0].volume, wh);
        assert_int_equal(cr->lines[0].excl_vat, excl);
        assert_int_equal(cr->lines[0].vat_bp, 2500);
        assert_int_equal(cr->lines[0].vat, vat);
        assert_int_equal(cr->total_excl_vat, excl);
        assert_int_equal(cr->total_vat, vat);
        assert_int_equal(cr->total_incl_vat, excl + vat);
}

void assert_reject(const cf_rejected *rj, int32_t reason, const char *stage,
                   int32_t input, int64_t offset, const char *detail)
{
        assert_int_equal(rj->reason, reason);
        assert_string_equal(rj->stage, stage);
        assert_string_equal(rj->source_topic, input == CF_IN_SESSIONS
                                                  ? "charging.sessions"
                                                  : "charging.meter");
        assert_int_equal(rj->partition, 0);
        assert_int_equal(rj->offset, offset);
        if (detail)
                assert_string_equal(rj->detail, detail);
}

parts_seen stored_parts(cf_rig *r, cf_col_t col, const char *key)
{
        cf_key k;
        cf_key_init(&k, cf_task_state_id('A', 0));
        cf_key_bytes(&k, key, strlen(key));
        cf_buf v;
        cf_buf_init(&v);
        char err[256];
        parts_seen ps;
        memset(&ps, 0, sizeof(ps));
        cf_err_t e = cf_state_get(cf_inproc_state(r->ip), col, k.b, k.len, &v,
                                  err, sizeof(err));
        assert_true(e == CF_OK || e == CF_ERR_NOT_FOUND);
        for (size_t at = 0; e == CF_OK && at < v.len;) {
                uint64_t z = 0;
                for (int shift = 0; at < v.len; shift += 7) {
                        z |= (uint64_t)(v.p[at] & 0x7f) << shift;
                        if (!(v.p[at++] & 0x80))
                                break;
                }
                size_t n = (size_t)(z >> 1); /* lengths are never negative */
                assert_true(at + n <= v.len);
                if (ps.n < 16) {
                        ps.len[ps.n] = n;
                        memcpy(ps.head[ps.n], v.p + at, n < 64 ? n : 64);
                }
                ps.n++;
                at += n;
        }
        cf_buf_free(&v);
        return ps;
}
