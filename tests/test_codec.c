/*
 * test_codec.c: the schema registry and the Avro codec.
 *
 * Expected bytes are written out by hand from the Avro specification
 * (zig-zag varints, length-prefixed strings, union index then value), and
 * bytes for schema resolution are produced by Avro C's own generic writer,
 * an implementation independent of ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>

#include "codec.h"
#include "utf8.h"

static cf_registry *reg;
static cf_arena arena;

static int setup(void **state)
{
        char err[512];
        (void)state;
        cf_arena_init(&arena, 0);
        if (cf_registry_new(&reg, err, sizeof(err))) {
                print_error("registry: %s\n", err);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        cf_registry_destroy(reg);
        cf_arena_destroy(&arena);
        return 0;
}

/* ---- hand encoding helpers (Avro spec, independent of codec.c) -------- */

typedef struct {
        uint8_t b[4096];
        size_t n;
} bytes;

static void hdr(bytes *x, uint32_t id)
{
        x->b[x->n++] = 0;
        x->b[x->n++] = (uint8_t)(id >> 24);
        x->b[x->n++] = (uint8_t)(id >> 16);
        x->b[x->n++] = (uint8_t)(id >> 8);
        x->b[x->n++] = (uint8_t)id;
}

static void raw(bytes *x, const void *p, size_t n)
{
        memcpy(x->b + x->n, p, n);
        x->n += n;
}

static void lng(bytes *x, int64_t v)
{
        uint64_t z = v >= 0 ? (uint64_t)v * 2 : (uint64_t)(-(v + 1)) * 2 + 1;
        do {
                uint8_t c = z & 0x7f;
                z >>= 7;
                x->b[x->n++] = c | (z ? 0x80 : 0);
        } while (z);
}

static void str(bytes *x, const char *s)
{
        lng(x, (int64_t)strlen(s));
        raw(x, s, strlen(s));
}

/* A SessionEvent body, field by field, with a chosen user_id branch. */
static void session_event_body(bytes *x)
{
        str(x, "ev-1");        /* event_id */
        lng(x, 2);             /* kind STOPPED */
        str(x, "S-9");         /* session_id */
        str(x, "site-a");      /* site_id */
        str(x, "CH-7");        /* charger_id */
        lng(x, 2);             /* connector_id */
        lng(x, 1793000000000); /* time_ms */
        lng(x, 123456);        /* energy_wh */
        lng(x, 1);             /* user_id: branch string */
        str(x, "u-42");
        lng(x, 0); /* badge_id: null */
        lng(x, 1); /* stop_reason: branch enum */
        lng(x, 3); /* EV_FULL */
}

static cf_session_event sample_session_event(void)
{
        cf_session_event ev = {
                .event_id = "ev-1",
                .kind = CF_SESSION_STOPPED,
                .session_id = "S-9",
                .site_id = "site-a",
                .charger_id = "CH-7",
                .connector_id = 2,
                .time_ms = 1793000000000,
                .energy_wh = 123456,
                .user_id = "u-42",
                .badge_id = NULL,
                .stop_reason = CF_STOP_EV_FULL,
        };
        return ev;
}

/* ---- encoding matches the specification -------------------------------- */

static void encode_session_event_matches_hand_bytes(void **state)
{
        (void)state;
        bytes want = { .n = 0 };
        cf_buf b;
        cf_session_event ev = sample_session_event();
        hdr(&want, 1);
        session_event_body(&want);
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_SESSION_EVENT, &ev, &b);
        assert_int_equal(b.len, want.n);
        assert_memory_equal(b.p, want.b, want.n);
        cf_buf_free(&b);
}

static void zigzag_edges_match_spec(void **state)
{
        (void)state;
        /* MeterReading with seq_no = -1 and energy = INT64_MAX exercises the
         * zig-zag extremes: -1 -> 0x01; INT64_MAX -> 0xfe ff*8 0x01. */
        cf_meter_reading m = { .event_id = "",
                               .session_id = NULL,
                               .site_id = "",
                               .charger_id = "",
                               .connector_id = INT32_MIN,
                               .seq_no = -1,
                               .time_ms = 0,
                               .energy_wh = INT64_MAX,
                               .power_w = CF_NONE,
                               .current_ma = CF_NONE };
        static const uint8_t want[] = {
                0,    0,    0,    0,    2,    /* header, id 2 */
                0,                            /* event_id "" */
                0,                            /* session_id null */
                0,    0,                      /* site_id, charger_id "" */
                0xff, 0xff, 0xff, 0xff, 0x0f, /* INT32_MIN -> 2^32-1 */
                0x01,                         /* seq_no -1 */
                0x00,                         /* time 0 */
                0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0x01, 0,    0, /* power, current null */
        };
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_METER_READING, &m, &b);
        assert_int_equal(b.len, sizeof(want));
        assert_memory_equal(b.p, want, sizeof(want));
        cf_meter_reading o;
        cf_arena_reset(&arena);
        assert_int_equal(
            cf_decode(reg, CF_RT_METER_READING, b.p, b.len, &arena, &o, NULL),
            CF_OK);
        assert_int_equal(o.connector_id, INT32_MIN);
        assert_true(o.seq_no == -1);
        assert_true(o.energy_wh == INT64_MAX);
        assert_true(o.power_w == CF_NONE);
        assert_null(o.session_id);
        cf_buf_free(&b);
}

/* ---- round trips of every schema --------------------------------------- */

static void *roundtrip(cf_rtype t, const void *rec, void *out)
{
        cf_buf b;
        size_t pos;
        cf_buf_init(&b);
        cf_encode(reg, t, rec, &b);
        assert_int_equal(cf_decode(reg, t, b.p, b.len, &arena, out, &pos),
                         CF_OK);
        assert_int_equal(pos, b.len);
        cf_buf_free(&b);
        return out;
}

static void roundtrip_session_event(void **state)
{
        (void)state;
        cf_session_event ev = sample_session_event(), o;
        roundtrip(CF_RT_SESSION_EVENT, &ev, &o);
        assert_string_equal(o.event_id, "ev-1");
        assert_int_equal(o.kind, CF_SESSION_STOPPED);
        assert_string_equal(o.session_id, "S-9");
        assert_string_equal(o.site_id, "site-a");
        assert_string_equal(o.charger_id, "CH-7");
        assert_int_equal(o.connector_id, 2);
        assert_true(o.time_ms == 1793000000000);
        assert_true(o.energy_wh == 123456);
        assert_string_equal(o.user_id, "u-42");
        assert_null(o.badge_id);
        assert_int_equal(o.stop_reason, CF_STOP_EV_FULL);
        /* And with the optional enum null. */
        ev.stop_reason = -1;
        ev.user_id = NULL;
        ev.badge_id = "B-1";
        roundtrip(CF_RT_SESSION_EVENT, &ev, &o);
        assert_int_equal(o.stop_reason, -1);
        assert_null(o.user_id);
        assert_string_equal(o.badge_id, "B-1");
}

static void roundtrip_meter_reading(void **state)
{
        (void)state;
        cf_meter_reading m = { .event_id = "m-1",
                               .session_id = "S-9",
                               .site_id = "site-a",
                               .charger_id = "CH-7",
                               .connector_id = 1,
                               .seq_no = 77,
                               .time_ms = 1793000060000,
                               .energy_wh = 123500,
                               .power_w = 11000,
                               .current_ma = 16000 },
                         o;
        roundtrip(CF_RT_METER_READING, &m, &o);
        assert_string_equal(o.event_id, "m-1");
        assert_string_equal(o.session_id, "S-9");
        assert_int_equal(o.connector_id, 1);
        assert_true(o.seq_no == 77);
        assert_true(o.time_ms == 1793000060000);
        assert_true(o.energy_wh == 123500);
        assert_true(o.power_w == 11000);
        assert_true(o.current_ma == 16000);
}

static void roundtrip_user(void **state)
{
        (void)state;
        char *badges[] = { "B-1", "B-2" };
        cf_user u = { .user_id = "u-1",
                      .tenant_id = "t-1",
                      .name = NULL,
                      .group = "resident",
                      .badges = badges,
                      .n_badges = 2,
                      .updated_ms = 5 },
                o;
        roundtrip(CF_RT_USER, &u, &o);
        assert_string_equal(o.user_id, "u-1");
        assert_string_equal(o.tenant_id, "t-1");
        assert_null(o.name);
        assert_string_equal(o.group, "resident");
        assert_int_equal(o.n_badges, 2);
        assert_string_equal(o.badges[0], "B-1");
        assert_string_equal(o.badges[1], "B-2");
        assert_true(o.updated_ms == 5);
}

static cf_site sample_site(void)
{
        static cf_price_component pc_day[] = {
                { CF_DIM_ENERGY, 2500000, CF_NONE, 1 },
                { CF_DIM_FLAT, 5000000, 2500, 1 },
        };
        static cf_price_component pc_night[] = {
                { CF_DIM_ENERGY, 1500000, CF_NONE, 100 },
        };
        static int32_t weekend[] = { CF_SATURDAY, CF_SUNDAY };
        static cf_tariff_restrictions night = {
                .start_time_min = 22 * 60,
                .end_time_min = 6 * 60,
                .start_date = CF_NONE,
                .end_date = 20800,
                .min_wh = CF_NONE,
                .max_wh = 50000,
                .min_current_ma = CF_NONE,
                .max_current_ma = CF_NONE,
                .min_power_w = CF_NONE,
                .max_power_w = CF_NONE,
                .min_duration_s = CF_NONE,
                .max_duration_s = CF_NONE,
                .day_of_week = weekend,
                .n_day_of_week = 2,
        };
        static cf_tariff_element els[] = {
                { pc_night, 1, &night },
                { pc_day, 2, NULL },
        };
        static cf_tariff_element free_el[] = { { NULL, 0, NULL } };
        static cf_group_plan plans[] = {
                { "resident",
                  { "T-res", "NOK", els, 2, 1000, 50000, CF_NONE, CF_NONE,
                    CF_NONE, 62500, true } },
                { "guest",
                  { "T-free", "NOK", free_el, 1, CF_NONE, CF_NONE, CF_NONE,
                    1800000000000, CF_NONE, CF_NONE, false } },
        };
        static cf_charger_plan cplans[] = {
                { "private",
                  "resident",
                  { "T-priv", "NOK", els + 1, 1, CF_NONE, CF_NONE, CF_NONE,
                    CF_NONE, 100, CF_NONE, false } },
                { "shared",
                  NULL,
                  { "T-shared", "NOK", els + 1, 1, CF_NONE, CF_NONE, CF_NONE,
                    CF_NONE, CF_NONE, CF_NONE, false } },
        };
        static cf_charger_group cgroups[] = { { "CH-1", "private" },
                                              { "CH-2", "shared" } };
        static cf_price_version versions[] = {
                { 1790000000000,
                  plans,
                  2,
                  { "T-def", "NOK", els + 1, 1, CF_NONE, CF_NONE, CF_NONE,
                    CF_NONE, CF_NONE, CF_NONE, false },
                  NULL,
                  cplans,
                  2 },
        };
        cf_site s = { .site_id = "site-a",
                      .tenant_id = "t-1",
                      .name = "Solsiden borettslag",
                      .time_zone = "Europe/Oslo",
                      .billing_period = CF_PERIOD_MONTH,
                      .currency = "NOK",
                      .vat_bp = 2500,
                      .max_power_w = 22000,
                      .access_control = true,
                      .versions = versions,
                      .n_versions = 1,
                      .updated_ms = 1790000000001,
                      .charger_groups = cgroups,
                      .n_charger_groups = 2 };
        return s;
}

static void roundtrip_site_nested(void **state)
{
        (void)state;
        cf_site s = sample_site(), o;
        roundtrip(CF_RT_SITE, &s, &o);
        assert_string_equal(o.name, "Solsiden borettslag");
        assert_string_equal(o.time_zone, "Europe/Oslo");
        assert_int_equal(o.billing_period, CF_PERIOD_MONTH);
        assert_true(o.access_control);
        assert_true(o.max_power_w == 22000);
        assert_int_equal(o.n_versions, 1);
        const cf_price_version *v = &o.versions[0];
        assert_true(v->valid_from_ms == 1790000000000);
        assert_null(v->unauthenticated_plan);
        assert_int_equal(v->n_plans, 2);
        assert_string_equal(v->plans[0].group, "resident");
        const cf_tariff *t = &v->plans[0].tariff;
        assert_string_equal(t->tariff_id, "T-res");
        assert_true(t->min_price_minor == 1000);
        assert_true(t->max_price_minor == 50000);
        assert_true(t->start_ms == CF_NONE);
        assert_true(t->min_price_incl_minor == CF_NONE);
        assert_true(t->max_price_incl_minor == 62500);
        assert_true(t->prices_include_vat);
        assert_false(v->plans[1].tariff.prices_include_vat);
        assert_int_equal(v->n_charger_plans, 2);
        assert_string_equal(v->charger_plans[0].charger_group, "private");
        assert_string_equal(v->charger_plans[0].user_group, "resident");
        assert_string_equal(v->charger_plans[0].tariff.tariff_id, "T-priv");
        assert_true(v->charger_plans[0].tariff.min_price_incl_minor == 100);
        assert_null(v->charger_plans[1].user_group);
        assert_int_equal(o.n_charger_groups, 2);
        assert_string_equal(o.charger_groups[1].charger_id, "CH-2");
        assert_string_equal(o.charger_groups[1].group, "shared");
        assert_int_equal(t->n_elements, 2);
        const cf_tariff_restrictions *r = t->elements[0].restrictions;
        assert_non_null(r);
        assert_true(r->start_time_min == 1320);
        assert_true(r->end_time_min == 360);
        assert_true(r->start_date == CF_NONE);
        assert_true(r->end_date == 20800);
        assert_true(r->max_wh == 50000);
        assert_true(r->min_wh == CF_NONE);
        assert_int_equal(r->n_day_of_week, 2);
        assert_int_equal(r->day_of_week[0], CF_SATURDAY);
        assert_int_equal(r->day_of_week[1], CF_SUNDAY);
        assert_int_equal(t->elements[0].n_price_components, 1);
        assert_true(t->elements[0].price_components[0].price_micros == 1500000);
        assert_true(t->elements[0].price_components[0].step_size == 100);
        assert_null(t->elements[1].restrictions);
        assert_int_equal(t->elements[1].n_price_components, 2);
        assert_int_equal(t->elements[1].price_components[1].type, CF_DIM_FLAT);
        assert_true(t->elements[1].price_components[1].vat_bp == 2500);
        assert_true(t->elements[1].price_components[0].vat_bp == CF_NONE);
        assert_int_equal(v->plans[1].tariff.n_elements, 1);
        assert_int_equal(v->plans[1].tariff.elements[0].n_price_components, 0);
        assert_true(v->plans[1].tariff.end_ms == 1800000000000);
        assert_string_equal(v->default_plan.tariff_id, "T-def");
        assert_true(o.updated_ms == 1790000000001);
}

static void roundtrip_charge_record_json(void **state)
{
        (void)state;
        cf_price_line lines[] = {
                { CF_DIM_ENERGY, 10000, 2500, 2500, 625 },
        };
        int32_t flags[] = { CF_FLAG_STOP_ESTIMATED };
        cf_cdr_dimension dims[] = { { CF_CDR_ENERGY, 10000 },
                                    { CF_CDR_TIME, 3600000 } };
        cf_charging_period periods[] = { { 1793000000000, 0, dims, 2 } };
        cf_correction corr = { "late stop", 1500, 375, 94, 469 };
        cf_charge_record cr = { .record_id = "CR-1",
                                .tenant_id = "t-1",
                                .site_id = "site-a",
                                .charger_id = "CH-7",
                                .connector_id = 1,
                                .session_id = "S-9",
                                .user_id = "u-42",
                                .badge_id = NULL,
                                .user_group = "resident",
                                .party_kind = CF_PARTY_USER,
                                .billed_party = "u-42",
                                .start_ms = 1793000000000,
                                .stop_ms = 1793003600000,
                                .energy_wh = 10000,
                                .charging_ms = 3600000,
                                .parking_ms = 0,
                                .tariff_id = "T-res",
                                .tariff_version_ms = 1790000000000,
                                .currency = "NOK",
                                .lines = lines,
                                .n_lines = 1,
                                .total_excl_vat = 2500,
                                .total_vat = 625,
                                .total_incl_vat = 3125,
                                .period_id = "2026-10",
                                .flags = flags,
                                .n_flags = 1,
                                .charging_periods = periods,
                                .n_charging_periods = 1,
                                .revision = 2,
                                .correction = &corr },
                         o;
        roundtrip(CF_RT_CHARGE_RECORD, &cr, &o);
        cf_buf j;
        cf_buf_init(&j);
        cf_to_json(reg, CF_RT_CHARGE_RECORD, &o, &j);
        assert_string_equal(
            cf_buf_cstr(&j),
            "{\"record_id\":\"CR-1\",\"tenant_id\":\"t-1\",\"site_id\":"
            "\"site-a\",\"charger_id\":\"CH-7\",\"connector_id\":1,"
            "\"session_id\":\"S-9\",\"user_id\":\"u-42\",\"badge_id\":"
            "null,\"user_group\":\"resident\",\"party_kind\":\"USER\","
            "\"billed_party\":\"u-42\",\"start_ms\":1793000000000,"
            "\"stop_ms\":1793003600000,\"energy_wh\":10000,"
            "\"charging_ms\":3600000,\"parking_ms\":0,\"tariff_id\":"
            "\"T-res\",\"tariff_version_ms\":1790000000000,\"currency\":"
            "\"NOK\",\"lines\":[{\"dimension\":\"ENERGY\",\"volume\":"
            "10000,\"excl_vat\":2500,\"vat_bp\":2500,\"vat\":625}],"
            "\"total_excl_vat\":2500,\"total_vat\":625,"
            "\"total_incl_vat\":3125,\"period_id\":\"2026-10\",\"flags\":"
            "[\"STOP_ESTIMATED\"],\"charging_periods\":[{\"start_ms\":"
            "1793000000000,\"tariff_element\":0,\"dimensions\":[{"
            "\"type\":\"ENERGY\",\"volume\":10000},{\"type\":\"TIME\","
            "\"volume\":3600000}]}],\"revision\":2,\"correction\":{"
            "\"reason\":\"late stop\",\"energy_wh\":1500,"
            "\"total_excl_vat\":375,\"total_vat\":94,"
            "\"total_incl_vat\":469}}");
        cf_buf_free(&j);
        /* Written by version 1 (id 5, before revision and correction):
         * the same body without its last two fields' bytes. Revision 1 of
         * a record is int 1 -> zigzag 0x02, correction null -> union
         * branch 0 -> 0x00 (Avro spec, binary encoding); the header is
         * magic 0 and id 5. It decodes with the defaults: revision 1,
         * correction null. */
        cr.revision = 1;
        cr.correction = NULL;
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_CHARGE_RECORD, &cr, &b);
        assert_true(b.len > 7);
        assert_int_equal(b.p[b.len - 2], 0x02);
        assert_int_equal(b.p[b.len - 1], 0x00);
        b.p[4] = 5;
        cf_arena_reset(&arena);
        assert_int_equal(cf_decode(reg, CF_RT_CHARGE_RECORD, b.p, b.len - 2,
                                   &arena, &o, NULL),
                         CF_OK);
        assert_int_equal(o.revision, 1);
        assert_null(o.correction);
        assert_true(o.energy_wh == 10000);
        assert_string_equal(o.period_id, "2026-10");
        cf_buf_free(&b);
}

static void roundtrip_statement(void **state)
{
        (void)state;
        cf_statement_line sites[] = { { "site-a", 2, 20000, 5000, 1250,
                                        6250 } };
        cf_statement_line chargers[] = {
                { "CH-7", 1, 10000, 2500, 625, 3125 },
                { "CH-8", 1, 10000, 2500, 625, 3125 },
        };
        cf_adjustment adj[] = {
                { "CR-0", "S-0", "2026-09", 500, 125, 31, 156, 1 },
        };
        cf_statement st = { .statement_id = "ST-1",
                            .tenant_id = "t-1",
                            .party_kind = CF_PARTY_SITE,
                            .billed_party = "site-a",
                            .period_id = "2026-10",
                            .period_start_ms = 1790805600000,
                            .period_end_ms = 1793487600000,
                            .revision = 1,
                            .currency = "NOK",
                            .session_count = 2,
                            .energy_wh = 20000,
                            .total_excl_vat = 5125,
                            .total_vat = 1281,
                            .total_incl_vat = 6406,
                            .sites = sites,
                            .n_sites = 1,
                            .chargers = chargers,
                            .n_chargers = 2,
                            .badges = NULL,
                            .n_badges = 0,
                            .adjustments = adj,
                            .n_adjustments = 1,
                            .issued_ms = 1793574000000 },
                     o;
        roundtrip(CF_RT_STATEMENT, &st, &o);
        assert_string_equal(o.statement_id, "ST-1");
        assert_int_equal(o.party_kind, CF_PARTY_SITE);
        assert_int_equal(o.revision, 1);
        assert_true(o.period_start_ms == 1790805600000);
        assert_true(o.total_incl_vat == 6406);
        assert_int_equal(o.n_sites, 1);
        assert_true(o.sites[0].total_vat == 1250);
        assert_int_equal(o.n_chargers, 2);
        assert_string_equal(o.chargers[1].key, "CH-8");
        assert_int_equal(o.n_badges, 0);
        assert_int_equal(o.n_adjustments, 1);
        assert_string_equal(o.adjustments[0].original_period_id, "2026-09");
        assert_true(o.adjustments[0].total_incl_vat == 156);
        assert_true(o.issued_ms == 1793574000000);
}

static void roundtrip_rejected_and_billing_event(void **state)
{
        (void)state;
        uint8_t key[] = { 'C', 'H' };
        uint8_t val[] = { 0xde, 0xad, 0x00 };
        cf_rejected r = { .reason = CF_REJECT_METER_REGRESSION,
                          .detail = "register 100 < 200",
                          .stage = "validate",
                          .source_topic = "charging.meter",
                          .partition = 3,
                          .offset = 99,
                          .key = { key, 2 },
                          .value = { val, 3 },
                          .event_time_ms = CF_NONE },
                    o;
        roundtrip(CF_RT_REJECTED, &r, &o);
        assert_int_equal(o.reason, CF_REJECT_METER_REGRESSION);
        assert_string_equal(o.detail, "register 100 < 200");
        assert_int_equal(o.partition, 3);
        assert_true(o.offset == 99);
        assert_int_equal(o.key.n, 2);
        assert_memory_equal(o.key.p, key, 2);
        assert_int_equal(o.value.n, 3);
        assert_memory_equal(o.value.p, val, 3);
        assert_true(o.event_time_ms == CF_NONE);
        r.key.p = NULL;
        r.key.n = 0;
        roundtrip(CF_RT_REJECTED, &r, &o);
        assert_null(o.key.p);

        cf_billing_event be = { .kind = CF_BILLING_WATERMARK,
                                .source_task = 5,
                                .seq = 77,
                                .watermark_ms = 1793000000000,
                                .record = { NULL, 0 } },
                         bo;
        roundtrip(CF_RT_BILLING_EVENT, &be, &bo);
        assert_int_equal(bo.kind, CF_BILLING_WATERMARK);
        assert_int_equal(bo.source_task, 5);
        assert_true(bo.seq == 77);
        assert_true(bo.watermark_ms == 1793000000000);
        assert_null(bo.record.p);
}

/* ---- schema resolution against bytes written by Avro C ----------------- */

/* SessionEvent as an older producer wrote it: no stop_reason field yet. */
static const char older_session_event[] =
    "{\"type\":\"record\",\"name\":\"SessionEvent\",\"namespace\":"
    "\"chargeflow\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":"
    "\"SessionEventKind\",\"symbols\":[\"STARTED\",\"AUTHORIZED\","
    "\"STOPPED\"]}},"
    "{\"name\":\"session_id\",\"type\":\"string\"},"
    "{\"name\":\"site_id\",\"type\":\"string\"},"
    "{\"name\":\"charger_id\",\"type\":\"string\"},"
    "{\"name\":\"connector_id\",\"type\":\"int\"},"
    "{\"name\":\"time_ms\",\"type\":\"long\"},"
    "{\"name\":\"energy_wh\",\"type\":\"int\"},"
    "{\"name\":\"user_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"badge_id\",\"type\":[\"null\",\"string\"]}]}";

/* SessionEvent as a newer producer writes it: fields reordered, an extra
 * record field, an extra map, and a stop reason the reader does not know. */
static const char newer_session_event[] =
    "{\"type\":\"record\",\"name\":\"SessionEvent\",\"namespace\":"
    "\"chargeflow\",\"fields\":["
    "{\"name\":\"vehicle\",\"type\":{\"type\":\"record\",\"name\":"
    "\"Vehicle\",\"fields\":[{\"name\":\"vin\",\"type\":\"string\"},"
    "{\"name\":\"soc\",\"type\":\"double\"}]},\"default\":{}},"
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":"
    "\"SessionEventKind\",\"symbols\":[\"STARTED\",\"AUTHORIZED\","
    "\"STOPPED\",\"SUSPENDED\"]}},"
    "{\"name\":\"session_id\",\"type\":\"string\"},"
    "{\"name\":\"site_id\",\"type\":\"string\"},"
    "{\"name\":\"charger_id\",\"type\":\"string\"},"
    "{\"name\":\"connector_id\",\"type\":\"int\"},"
    "{\"name\":\"time_ms\",\"type\":\"long\"},"
    "{\"name\":\"energy_wh\",\"type\":\"long\"},"
    "{\"name\":\"labels\",\"type\":{\"type\":\"map\",\"values\":"
    "\"string\"},\"default\":{}},"
    "{\"name\":\"user_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"badge_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"stop_reason\",\"type\":[\"null\",{\"type\":\"enum\","
    "\"name\":\"StopReason\",\"symbols\":[\"LOCAL\",\"REMOTE\","
    "\"EV_DISCONNECTED\",\"EV_FULL\",\"POWER_LOSS\",\"TIMEOUT\","
    "\"OTHER\",\"DEAUTHORIZED\"],\"default\":\"OTHER\"}]}]}";

/* Writes a record with Avro C's generic API into framed bytes. */
static size_t avro_c_write(const char *schema_json, int32_t id,
                           void (*fill)(avro_value_t *), uint8_t *out,
                           size_t size)
{
        avro_schema_t s;
        avro_value_iface_t *iface;
        avro_value_t v;
        assert_int_equal(
            avro_schema_from_json_length(schema_json, strlen(schema_json), &s),
            0);
        iface = avro_generic_class_from_schema(s);
        assert_int_equal(avro_generic_value_new(iface, &v), 0);
        fill(&v);
        out[0] = 0;
        out[1] = (uint8_t)(id >> 24);
        out[2] = (uint8_t)(id >> 16);
        out[3] = (uint8_t)(id >> 8);
        out[4] = (uint8_t)id;
        avro_writer_t w =
            avro_writer_memory((char *)out + 5, (int64_t)size - 5);
        assert_int_equal(avro_value_write(w, &v), 0);
        size_t n = 5 + (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(s);
        return n;
}

static void set_str(avro_value_t *rec, const char *field, const char *s)
{
        avro_value_t f;
        assert_int_equal(avro_value_get_by_name(rec, field, &f, NULL), 0);
        assert_int_equal(avro_value_set_string(&f, s), 0);
}

static void set_common(avro_value_t *v)
{
        avro_value_t f, b;
        set_str(v, "event_id", "ev-old");
        avro_value_get_by_name(v, "kind", &f, NULL);
        avro_value_set_enum(&f, 1); /* AUTHORIZED */
        set_str(v, "session_id", "S-1");
        set_str(v, "site_id", "site-a");
        set_str(v, "charger_id", "CH-1");
        avro_value_get_by_name(v, "connector_id", &f, NULL);
        avro_value_set_int(&f, 2);
        avro_value_get_by_name(v, "time_ms", &f, NULL);
        avro_value_set_long(&f, 1793000000123);
        avro_value_get_by_name(v, "user_id", &f, NULL);
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_string(&b, "u-7");
        avro_value_get_by_name(v, "badge_id", &f, NULL);
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
}

static void fill_older(avro_value_t *v)
{
        avro_value_t f;
        set_common(v);
        avro_value_get_by_name(v, "energy_wh", &f, NULL);
        avro_value_set_int(&f, 4321); /* int, promoted to long */
}

static void fill_newer(avro_value_t *v)
{
        avro_value_t f, veh, x, b;
        set_common(v);
        avro_value_get_by_name(v, "energy_wh", &f, NULL);
        avro_value_set_long(&f, 5000000000);
        avro_value_get_by_name(v, "vehicle", &veh, NULL);
        set_str(&veh, "vin", "WVWZZZ1JZXW000001");
        avro_value_get_by_name(&veh, "soc", &x, NULL);
        avro_value_set_double(&x, 0.55);
        avro_value_get_by_name(v, "labels", &f, NULL);
        avro_value_add(&f, "fleet", &x, NULL, NULL);
        avro_value_set_string(&x, "taxi");
        avro_value_add(&f, "zone", &x, NULL, NULL);
        avro_value_set_string(&x, "north");
        avro_value_get_by_name(v, "stop_reason", &f, NULL);
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_enum(&b, 7); /* DEAUTHORIZED: unknown to us */
}

static void resolves_older_writer_with_field_fewer(void **state)
{
        (void)state;
        char err[512];
        uint8_t buf[512];
        cf_session_event o;
        assert_int_equal(cf_registry_add(reg, 1001, older_session_event,
                                         strlen(older_session_event), err,
                                         sizeof(err)),
                         CF_OK);
        size_t n = avro_c_write(older_session_event, 1001, fill_older, buf,
                                sizeof(buf));
        cf_arena_reset(&arena);
        assert_int_equal(
            cf_decode(reg, CF_RT_SESSION_EVENT, buf, n, &arena, &o, NULL),
            CF_OK);
        assert_string_equal(o.event_id, "ev-old");
        assert_int_equal(o.kind, CF_SESSION_AUTHORIZED);
        assert_string_equal(o.charger_id, "CH-1");
        assert_int_equal(o.connector_id, 2);
        assert_true(o.time_ms == 1793000000123);
        assert_true(o.energy_wh == 4321);
        assert_string_equal(o.user_id, "u-7");
        assert_null(o.badge_id);
        assert_int_equal(o.stop_reason, -1); /* reader default null */
}

/* Site as producers wrote it before charger groups, incl.-VAT limits and
 * prices_include_vat (tests/data/site_v1.avsc, the schema of that time). */
static void set_null(avro_value_t *rec, const char *field)
{
        avro_value_t f, b;
        assert_int_equal(avro_value_get_by_name(rec, field, &f, NULL), 0);
        assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
        avro_value_set_null(&b);
}

static void fill_v1_tariff(avro_value_t *t, const char *id)
{
        set_str(t, "tariff_id", id);
        set_str(t, "currency", "NOK");
        set_null(t, "min_price_minor");
        set_null(t, "max_price_minor");
        set_null(t, "start_ms");
        set_null(t, "end_ms");
}

static void fill_v1_site(avro_value_t *v)
{
        avro_value_t f, ver, x, plan;
        set_str(v, "site_id", "site-old");
        set_str(v, "tenant_id", "t-1");
        set_str(v, "name", "old writer");
        set_str(v, "time_zone", "Europe/Oslo");
        avro_value_get_by_name(v, "billing_period", &f, NULL);
        avro_value_set_enum(&f, 0);
        set_str(v, "currency", "NOK");
        avro_value_get_by_name(v, "vat_bp", &f, NULL);
        avro_value_set_long(&f, 2500);
        avro_value_get_by_name(v, "max_power_w", &f, NULL);
        avro_value_set_long(&f, 22000);
        avro_value_get_by_name(v, "access_control", &f, NULL);
        avro_value_set_boolean(&f, 1);
        avro_value_get_by_name(v, "versions", &f, NULL);
        avro_value_append(&f, &ver, NULL);
        avro_value_get_by_name(&ver, "valid_from_ms", &x, NULL);
        avro_value_set_long(&x, 1790000000000);
        avro_value_get_by_name(&ver, "plans", &x, NULL);
        avro_value_append(&x, &plan, NULL);
        set_str(&plan, "group", "resident");
        avro_value_get_by_name(&plan, "tariff", &x, NULL);
        fill_v1_tariff(&x, "T-res");
        avro_value_get_by_name(&ver, "default_plan", &x, NULL);
        fill_v1_tariff(&x, "T-def");
        set_null(&ver, "unauthenticated_plan");
        avro_value_get_by_name(v, "updated_ms", &f, NULL);
        avro_value_set_long(&f, 1790000000001);
}

static void resolves_site_written_before_charger_groups(void **state)
{
        (void)state;
        char err[512], path[1024];
        static char schema[16384];
        snprintf(path, sizeof(path), "%s/tests/data/site_v1.avsc",
                 CF_SOURCE_DIR);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        size_t len = fread(schema, 1, sizeof(schema) - 1, fp);
        fclose(fp);
        schema[len] = '\0';
        assert_int_equal(
            cf_registry_add(reg, 1010, schema, len, err, sizeof(err)), CF_OK);
        static uint8_t buf[4096];
        size_t n = avro_c_write(schema, 1010, fill_v1_site, buf, sizeof(buf));
        cf_site o;
        cf_arena_reset(&arena);
        assert_int_equal(cf_decode(reg, CF_RT_SITE, buf, n, &arena, &o, NULL),
                         CF_OK);
        assert_string_equal(o.site_id, "site-old");
        /* the new fields take their schema defaults */
        assert_int_equal(o.n_charger_groups, 0);
        assert_int_equal(o.n_versions, 1);
        const cf_price_version *v = &o.versions[0];
        assert_int_equal(v->n_charger_plans, 0);
        assert_string_equal(v->plans[0].tariff.tariff_id, "T-res");
        assert_true(v->plans[0].tariff.min_price_incl_minor == CF_NONE);
        assert_true(v->plans[0].tariff.max_price_incl_minor == CF_NONE);
        assert_false(v->plans[0].tariff.prices_include_vat);
        assert_false(v->default_plan.prices_include_vat);
}

static void resolves_newer_writer_with_field_more(void **state)
{
        (void)state;
        char err[512];
        uint8_t buf[512];
        cf_session_event o;
        assert_int_equal(cf_registry_add(reg, 1002, newer_session_event,
                                         strlen(newer_session_event), err,
                                         sizeof(err)),
                         CF_OK);
        size_t n = avro_c_write(newer_session_event, 1002, fill_newer, buf,
                                sizeof(buf));
        cf_arena_reset(&arena);
        assert_int_equal(
            cf_decode(reg, CF_RT_SESSION_EVENT, buf, n, &arena, &o, NULL),
            CF_OK);
        assert_string_equal(o.event_id, "ev-old");
        assert_string_equal(o.session_id, "S-1");
        assert_true(o.energy_wh == 5000000000);
        assert_string_equal(o.user_id, "u-7");
        /* DEAUTHORIZED is unknown: the reader enum's default OTHER. */
        assert_int_equal(o.stop_reason, CF_STOP_OTHER);
}

static void rejects_incompatible_writer(void **state)
{
        (void)state;
        char err[512];
        /* A required reader field (charger_id) without a default is missing
         * from the writer. */
        static const char missing[] =
            "{\"type\":\"record\",\"name\":\"MeterReading\","
            "\"namespace\":\"chargeflow\",\"fields\":["
            "{\"name\":\"event_id\",\"type\":\"string\"}]}";
        assert_int_equal(cf_registry_add(reg, 1003, missing, strlen(missing),
                                         err, sizeof(err)),
                         CF_ERR_INCOMPATIBLE);
        assert_non_null(strstr(err, "site_id"));
        /* A string written where the reader wants a long. */
        static const char wrong_type[] =
            "{\"type\":\"record\",\"name\":\"User\",\"namespace\":"
            "\"chargeflow\",\"fields\":["
            "{\"name\":\"user_id\",\"type\":\"string\"},"
            "{\"name\":\"tenant_id\",\"type\":\"string\"},"
            "{\"name\":\"group\",\"type\":\"string\"},"
            "{\"name\":\"badges\",\"type\":{\"type\":\"array\","
            "\"items\":\"string\"}},"
            "{\"name\":\"updated_ms\",\"type\":\"string\"}]}";
        assert_int_equal(cf_registry_add(reg, 1004, wrong_type,
                                         strlen(wrong_type), err, sizeof(err)),
                         CF_ERR_INCOMPATIBLE);
        assert_non_null(strstr(err, "updated_ms"));
        /* Not valid Avro at all. */
        assert_int_equal(cf_registry_add(reg, 1005, "{\"type\":\"nope\"}", 15,
                                         err, sizeof(err)),
                         CF_ERR_SCHEMA);
        /* Id already taken. */
        assert_int_equal(cf_registry_add(reg, 1, older_session_event,
                                         strlen(older_session_event), err,
                                         sizeof(err)),
                         CF_ERR_SCHEMA_ID);
}

/* ---- malformed input: every case has its exact error ------------------- */

typedef struct malformed {
        const char *name;
        cf_rtype type;
        void (*build)(bytes *x);
        cf_err_t want;
} malformed;

static void m_empty(bytes *x)
{
        (void)x;
}
static void m_magic1(bytes *x)
{
        hdr(x, 1);
        x->b[0] = 1;
        session_event_body(x);
}
static void m_magic_ff(bytes *x)
{
        hdr(x, 1);
        x->b[0] = 0xff;
}
static void m_short_header(bytes *x)
{
        raw(x, "\0\0\0", 3);
}
static void m_unknown_id(bytes *x)
{
        hdr(x, 999);
        session_event_body(x);
}
static void m_negative_id(bytes *x)
{
        hdr(x, 0xffffffffu);
        session_event_body(x);
}
static void m_other_type(bytes *x)
{
        hdr(x, 2); /* MeterReading's id, read as a SessionEvent */
        session_event_body(x);
}
static void m_header_only(bytes *x)
{
        hdr(x, 1);
}
static void m_trailing1(bytes *x)
{
        hdr(x, 1);
        session_event_body(x);
        x->b[x->n++] = 0;
}
static void m_trailing_many(bytes *x)
{
        hdr(x, 1);
        session_event_body(x);
        for (int i = 0; i < 100; i++)
                x->b[x->n++] = 0x55;
}
static void m_cut_in_string(bytes *x)
{
        hdr(x, 1);
        session_event_body(x);
        x->n = 5 + 1 + 2; /* length 4 then two of "ev-1" */
}
static void m_cut_before_last(bytes *x)
{
        hdr(x, 1);
        session_event_body(x);
        x->n -= 2; /* without stop_reason's branch and symbol */
}
static void m_cut_in_varint(bytes *x)
{
        hdr(x, 1);
        str(x, "e");
        lng(x, 0);
        str(x, "s");
        str(x, "site");
        str(x, "c");
        lng(x, 1);
        x->b[x->n++] = 0x80; /* time_ms: continuation, then the end */
}
static void m_negative_string(bytes *x)
{
        hdr(x, 1);
        lng(x, -1);
}
static void m_huge_string(bytes *x)
{
        hdr(x, 1);
        lng(x, (int64_t)1 << 40);
        raw(x, "abc", 3);
}
static void m_varint_11(bytes *x)
{
        hdr(x, 1);
        for (int i = 0; i < 11; i++)
                x->b[x->n++] = 0xff;
}
static void m_varint_10_overflow(bytes *x)
{
        hdr(x, 1);
        for (int i = 0; i < 9; i++)
                x->b[x->n++] = 0xff;
        x->b[x->n++] = 0x02; /* 10th byte may only carry one bit */
}
static void m_int_overflow(bytes *x)
{
        hdr(x, 1);
        str(x, "e");
        lng(x, 0);
        str(x, "s");
        str(x, "site");
        str(x, "c");
        lng(x, (int64_t)INT32_MAX + 1); /* connector_id beyond int */
}
static void m_enum_high(bytes *x)
{
        hdr(x, 1);
        str(x, "e");
        lng(x, 3); /* kind has 3 symbols */
}
static void m_enum_negative(bytes *x)
{
        hdr(x, 1);
        str(x, "e");
        lng(x, -1);
}
static void event_prefix(bytes *x)
{
        hdr(x, 1);
        str(x, "e");
        lng(x, 0);
        str(x, "s");
        str(x, "site");
        str(x, "c");
        lng(x, 1);
        lng(x, 1000);
        lng(x, 5);
}
static void m_union_high(bytes *x)
{
        event_prefix(x);
        lng(x, 2); /* user_id union has 2 branches */
}
static void m_union_negative(bytes *x)
{
        event_prefix(x);
        lng(x, -1);
}
static void m_optional_enum_high(bytes *x)
{
        event_prefix(x);
        lng(x, 0);
        lng(x, 0);
        lng(x, 1);  /* stop_reason: the enum branch */
        lng(x, 99); /* 7 symbols */
}
static void site_prefix(bytes *x)
{
        hdr(x, 3);
        str(x, "s");
        str(x, "t");
        str(x, "n");
        str(x, "UTC");
        lng(x, 0);
        str(x, "EUR");
        lng(x, 2500);
        lng(x, 22000);
}
static void m_bool_2(bytes *x)
{
        site_prefix(x);
        x->b[x->n++] = 2; /* access_control */
}
static void m_array_min_count(bytes *x)
{
        site_prefix(x);
        x->b[x->n++] = 1;
        /* versions: block count INT64_MIN (zig-zag 2^64-1) */
        for (int i = 0; i < 9; i++)
                x->b[x->n++] = 0xff;
        x->b[x->n++] = 0x01;
}
static void m_array_huge_count(bytes *x)
{
        hdr(x, 4);
        str(x, "u");
        str(x, "t");
        lng(x, 0);
        str(x, "g");
        lng(x, 1000000000000); /* badges */
        str(x, "b");
}
static void m_array_negative_bytes(bytes *x)
{
        hdr(x, 4);
        str(x, "u");
        str(x, "t");
        lng(x, 0);
        str(x, "g");
        lng(x, -1); /* one item, then its byte size */
        lng(x, -5);
}
static void m_array_block_bigger(bytes *x)
{
        hdr(x, 4);
        str(x, "u");
        str(x, "t");
        lng(x, 0);
        str(x, "g");
        lng(x, 3); /* three badges, only one present */
        str(x, "b");
}
static void m_array_unterminated(bytes *x)
{
        hdr(x, 4);
        str(x, "u");
        str(x, "t");
        lng(x, 0);
        str(x, "g");
        lng(x, 1);
        str(x, "b"); /* no closing 0 block, no updated_ms */
}
static void m_bytes_negative(bytes *x)
{
        hdr(x, 7);
        lng(x, 0);
        str(x, "d");
        str(x, "decode");
        str(x, "t");
        lng(x, 0);
        lng(x, 0);
        lng(x, 1); /* key: bytes branch */
        lng(x, -3);
}
static void m_nested_cut(bytes *x)
{
        site_prefix(x);
        x->b[x->n++] = 1;
        lng(x, 1);    /* one version */
        lng(x, 1000); /* valid_from */
        lng(x, 1);    /* one plan */
        str(x, "resident");
        str(x, "T-1"); /* tariff_id, then nothing */
}
static void m_nested_enum(bytes *x)
{
        site_prefix(x);
        x->b[x->n++] = 1;
        lng(x, 1);
        lng(x, 1000);
        lng(x, 1);
        str(x, "resident");
        str(x, "T-1");
        str(x, "NOK");
        lng(x, 1); /* one element */
        lng(x, 1); /* one component */
        lng(x, 4); /* TariffDimension has 4 symbols */
        lng(x, 1); /* price_micros */
        lng(x, 0); /* vat_bp null */
        lng(x, 1); /* step_size */
}

static const malformed cases[] = {
        { "empty", CF_RT_SESSION_EVENT, m_empty, CF_ERR_TRUNCATED },
        { "magic 1", CF_RT_SESSION_EVENT, m_magic1, CF_ERR_MAGIC },
        { "magic ff", CF_RT_SESSION_EVENT, m_magic_ff, CF_ERR_MAGIC },
        { "short header", CF_RT_SESSION_EVENT, m_short_header,
          CF_ERR_TRUNCATED },
        { "unknown id", CF_RT_SESSION_EVENT, m_unknown_id, CF_ERR_SCHEMA_ID },
        { "negative id", CF_RT_SESSION_EVENT, m_negative_id, CF_ERR_SCHEMA_ID },
        { "id of another type", CF_RT_SESSION_EVENT, m_other_type,
          CF_ERR_SCHEMA_TYPE },
        { "header only", CF_RT_SESSION_EVENT, m_header_only, CF_ERR_TRUNCATED },
        { "one trailing byte", CF_RT_SESSION_EVENT, m_trailing1,
          CF_ERR_TRAILING },
        { "many trailing bytes", CF_RT_SESSION_EVENT, m_trailing_many,
          CF_ERR_TRAILING },
        { "cut in a string", CF_RT_SESSION_EVENT, m_cut_in_string,
          CF_ERR_TRUNCATED },
        { "cut before the last field", CF_RT_SESSION_EVENT, m_cut_before_last,
          CF_ERR_TRUNCATED },
        { "cut in a varint", CF_RT_SESSION_EVENT, m_cut_in_varint,
          CF_ERR_TRUNCATED },
        { "negative string length", CF_RT_SESSION_EVENT, m_negative_string,
          CF_ERR_LENGTH },
        { "huge string length", CF_RT_SESSION_EVENT, m_huge_string,
          CF_ERR_TOO_LARGE },
        { "varint of 11 bytes", CF_RT_SESSION_EVENT, m_varint_11,
          CF_ERR_VARINT },
        { "varint over 64 bits", CF_RT_SESSION_EVENT, m_varint_10_overflow,
          CF_ERR_VARINT },
        { "int beyond 32 bits", CF_RT_SESSION_EVENT, m_int_overflow,
          CF_ERR_VARINT },
        { "enum index too high", CF_RT_SESSION_EVENT, m_enum_high,
          CF_ERR_ENUM },
        { "enum index negative", CF_RT_SESSION_EVENT, m_enum_negative,
          CF_ERR_ENUM },
        { "union index too high", CF_RT_SESSION_EVENT, m_union_high,
          CF_ERR_UNION },
        { "union index negative", CF_RT_SESSION_EVENT, m_union_negative,
          CF_ERR_UNION },
        { "optional enum out of range", CF_RT_SESSION_EVENT,
          m_optional_enum_high, CF_ERR_ENUM },
        { "boolean 2", CF_RT_SITE, m_bool_2, CF_ERR_BOOL },
        { "array count INT64_MIN", CF_RT_SITE, m_array_min_count,
          CF_ERR_LENGTH },
        { "array count huge", CF_RT_USER, m_array_huge_count,
          CF_ERR_TOO_LARGE },
        { "array block negative size", CF_RT_USER, m_array_negative_bytes,
          CF_ERR_LENGTH },
        { "array block bigger than input", CF_RT_USER, m_array_block_bigger,
          CF_ERR_TRUNCATED },
        { "array not terminated", CF_RT_USER, m_array_unterminated,
          CF_ERR_TRUNCATED },
        { "negative bytes length", CF_RT_REJECTED, m_bytes_negative,
          CF_ERR_LENGTH },
        { "cut inside a nested record", CF_RT_SITE, m_nested_cut,
          CF_ERR_TRUNCATED },
        { "nested enum out of range", CF_RT_SITE, m_nested_enum, CF_ERR_ENUM },
};

static void malformed_inputs_get_exact_errors(void **state)
{
        (void)state;
        void *out = malloc(cf_rtype_max_size());
        assert_true(sizeof(cases) / sizeof(cases[0]) >= 25);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                bytes x = { .n = 0 };
                cases[i].build(&x);
                cf_arena_reset(&arena);
                cf_err_t err =
                    cf_decode(reg, cases[i].type, x.b, x.n, &arena, out, NULL);
                if (err != cases[i].want)
                        fail_msg("case '%s': got %s, want %s", cases[i].name,
                                 cf_err2name(err), cf_err2name(cases[i].want));
        }
        free(out);
}

static void every_truncation_of_a_site_fails_cleanly(void **state)
{
        (void)state;
        cf_site s = sample_site(), o;
        cf_buf b;
        cf_buf_init(&b);
        cf_encode(reg, CF_RT_SITE, &s, &b);
        /* Every proper prefix fails with TRUNCATED (or MAGIC never: byte 0 is
         * kept), and the arena never holds more than a few times the input. */
        for (size_t n = 0; n < b.len; n++) {
                cf_arena_reset(&arena);
                cf_err_t err =
                    cf_decode(reg, CF_RT_SITE, b.p, n, &arena, &o, NULL);
                if (err != CF_ERR_TRUNCATED)
                        fail_msg("prefix %zu of %zu: %s", n, b.len,
                                 cf_err2name(err));
        }
        cf_buf_free(&b);
}

/* Found by the fuzzer: a block count was checked against the remaining
 * bytes, not against the items' smallest encoding, so 50 claimed price
 * versions (about 100 bytes each in memory) were allocated from a few input
 * bytes. A count is now refused unless every item could fit. */
static void array_count_checked_against_item_size(void **state)
{
        (void)state;
        bytes x = { .n = 0 };
        cf_site o;
        site_prefix(&x);
        x.b[x.n++] = 1;
        lng(&x, 50); /* versions; each needs at least 11 bytes */
        for (int i = 0; i < 100; i++)
                x.b[x.n++] = 0;
        cf_arena_reset(&arena);
        assert_int_equal(cf_decode(reg, CF_RT_SITE, x.b, x.n, &arena, &o, NULL),
                         CF_ERR_TRUNCATED);
        assert_true(arena.used <= x.n * CF_CODEC_ARENA_FACTOR);
        /* The same count with enough bytes is read: 50 versions of
         * valid_from 0, no plans, an empty default tariff (six null
         * options, prices excl. VAT), no unauthenticated plan, no charger
         * plans, 15 bytes each; then updated_ms and no charger groups. */
        x.n -= 100;
        for (int i = 0; i < 50; i++) {
                lng(&x, 0);
                lng(&x, 0);
                str(&x, "");
                str(&x, "");
                lng(&x, 0);
                for (int k = 0; k < 6; k++)
                        lng(&x, 0);
                x.b[x.n++] = 0; /* prices_include_vat false */
                lng(&x, 0);
                lng(&x, 0);
        }
        lng(&x, 0); /* end of versions */
        lng(&x, 7); /* updated_ms */
        lng(&x, 0); /* no charger groups */
        cf_arena_reset(&arena);
        assert_int_equal(cf_decode(reg, CF_RT_SITE, x.b, x.n, &arena, &o, NULL),
                         CF_OK);
        assert_int_equal(o.n_versions, 50);
        assert_true(o.updated_ms == 7);
        assert_true(arena.used <= x.n * CF_CODEC_ARENA_FACTOR);
}

static void registry_ids_are_fixed(void **state)
{
        (void)state;
        /* ChargeRecord and Statement are at version 2 (ids 10, 11),
         * Rejected at version 3 (id 12) (README, Topics and schemas). */
        static const int32_t want[CF_RT__CNT] = { 1, 2, 3, 4, 10, 11, 12, 8 };
        for (int t = 0; t < CF_RT__CNT; t++) {
                cf_rtype back;
                assert_int_equal(cf_registry_id(reg, (cf_rtype)t), want[t]);
                assert_int_equal(cf_registry_type(reg, want[t], &back), CF_OK);
                assert_int_equal(back, t);
        }
        cf_rtype unused;
        assert_int_equal(cf_registry_type(reg, 0, &unused), CF_ERR_SCHEMA_ID);
        /* The earlier versions' ids still name their types. */
        assert_int_equal(cf_registry_type(reg, 5, &unused), CF_OK);
        assert_int_equal(unused, CF_RT_CHARGE_RECORD);
        assert_int_equal(cf_registry_type(reg, 6, &unused), CF_OK);
        assert_int_equal(unused, CF_RT_STATEMENT);
        assert_int_equal(cf_registry_type(reg, 7, &unused), CF_OK);
        assert_int_equal(unused, CF_RT_REJECTED);
        assert_int_equal(cf_registry_type(reg, 9, &unused), CF_OK);
        assert_int_equal(unused, CF_RT_REJECTED);
}

/* Each reject reason's name (logs, metrics, the generator's truth file) is
 * the symbol at the same index of the enum RejectReason in the Rejected
 * schema the registry serves (read here with Avro C's own parser), and
 * the names are the ten of schemas/rejected.avsc, in that order. */
static void reject_reason_names_are_the_schema_symbols(void **state)
{
        (void)state;
        static const char *const want[CF_REJECT__CNT] = {
                "SCHEMA",     "FIELD",         "CLOCK",  "METER_REGRESSION",
                "METER_JUMP", "SESSION_STATE", "ORPHAN", "UNKNOWN_SITE",
                "NO_PLAN",    "TOO_LATE",
        };
        const char *json = cf_registry_schema_json(reg, CF_RT_REJECTED);
        avro_schema_t sc;
        assert_int_equal(avro_schema_from_json_length(json, strlen(json), &sc),
                         0);
        avro_schema_t en = avro_schema_record_field_get(sc, "reason");
        assert_non_null(en);
        for (int r = 0; r < CF_REJECT__CNT; r++) {
                assert_string_equal(cf_reject_reason_name(r),
                                    avro_schema_enum_get(en, r));
                assert_string_equal(cf_reject_reason_name(r), want[r]);
        }
        /* As many symbols as reasons. */
        assert_int_equal(avro_schema_enum_number_of_symbols(en),
                         CF_REJECT__CNT);
        assert_string_equal(cf_reject_reason_name(CF_REJECT__CNT), "?");
        assert_string_equal(cf_reject_reason_name(-1), "?");
        avro_schema_decref(sc);
}

/* A Rejected record written with version 1 (id 7, before key_length and
 * the others existed) decodes, the new fields taking their default, null.
 * The bytes by hand from schemas/rejected_v1.avsc and the Avro spec:
 * reason FIELD = enum index 1 -> zigzag 0x02; detail "d", stage "v",
 * source_topic "t": length 1 -> 0x02, then the byte; partition 3 -> 0x06;
 * offset 99 -> zigzag 198 -> 0xC6 0x01; key: branch 1 -> 0x02, length 2
 * -> 0x04, "CH"; value null: branch 0; event_time_ms null: branch 0. */
static void rejected_v1_still_decodes(void **state)
{
        (void)state;
        static const uint8_t v1[] = { 0x00, 0,    0,    0,    7,   0x02, 0x02,
                                      'd',  0x02, 'v',  0x02, 't', 0x06, 0xC6,
                                      0x01, 0x02, 0x04, 'C',  'H', 0x00, 0x00 };
        cf_rejected o;
        cf_arena_reset(&arena);
        assert_int_equal(
            cf_decode(reg, CF_RT_REJECTED, v1, sizeof(v1), &arena, &o, NULL),
            CF_OK);
        assert_int_equal(o.reason, CF_REJECT_FIELD);
        assert_string_equal(o.detail, "d");
        assert_string_equal(o.source_topic, "t");
        assert_int_equal(o.partition, 3);
        assert_true(o.offset == 99);
        assert_int_equal(o.key.n, 2);
        assert_null(o.value.p);
        assert_true(o.event_time_ms == CF_NONE);
        assert_true(o.key_length == CF_NONE);
        assert_null(o.key_sha256.p);
        assert_true(o.value_length == CF_NONE);
        assert_null(o.value_sha256.p);
}

/* utf8.c against RFC 3629's table of well-formed sequences. */
static void utf8_checks_and_escapes(void **state)
{
        (void)state;
        assert_true(cf_utf8_valid("plain", 5));
        assert_true(cf_utf8_valid("\xe2\x82\xac", 3));      /* U+20AC */
        assert_true(cf_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
        assert_false(cf_utf8_valid("\xc0\x80", 2));         /* overlong */
        assert_false(cf_utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
        assert_false(cf_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(cf_utf8_valid("\xf4\x90\x80\x80", 4)); /* > 10FFFF */
        assert_false(cf_utf8_valid("\xe2\x82", 2));         /* cut short */
        assert_false(cf_utf8_valid("a\0b", 3));             /* NUL */
        assert_false(cf_utf8_valid("probe-\xff\xfe-session", 16));
        char out[512];
        /* Each bad byte becomes \xNN (4 bytes). */
        cf_utf8_escape(out, sizeof(out), "no config for site S\xff\xfe\x80");
        assert_string_equal(out, "no config for site S\\xFF\\xFE\\x80");
        cf_utf8_escape(out, sizeof(out), "a\nb\xc3\xa9");
        assert_string_equal(out, "a\\x0Ab\xc3\xa9");
        /* 510 'a' then a 2-byte character: 512 bytes do not fit in 511,
         * and the character is not cut: 510 bytes. */
        char in[600];
        memset(in, 'a', 510);
        memcpy(in + 510, "\xc3\xa9", 3);
        assert_int_equal(cf_utf8_escape(out, sizeof(out), in), 510);
        assert_int_equal(strlen(out), 510);
        /* 509 'a' then the character: 511 bytes, whole. */
        memcpy(in + 509, "\xc3\xa9", 3);
        assert_int_equal(cf_utf8_escape(out, sizeof(out), in), 511);
        assert_true(cf_utf8_valid(out, 511));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(encode_session_event_matches_hand_bytes),
                cmocka_unit_test(rejected_v1_still_decodes),
                cmocka_unit_test(utf8_checks_and_escapes),
                cmocka_unit_test(zigzag_edges_match_spec),
                cmocka_unit_test(roundtrip_session_event),
                cmocka_unit_test(roundtrip_meter_reading),
                cmocka_unit_test(roundtrip_user),
                cmocka_unit_test(roundtrip_site_nested),
                cmocka_unit_test(roundtrip_charge_record_json),
                cmocka_unit_test(roundtrip_statement),
                cmocka_unit_test(roundtrip_rejected_and_billing_event),
                cmocka_unit_test(resolves_older_writer_with_field_fewer),
                cmocka_unit_test(resolves_site_written_before_charger_groups),
                cmocka_unit_test(resolves_newer_writer_with_field_more),
                cmocka_unit_test(rejects_incompatible_writer),
                cmocka_unit_test(malformed_inputs_get_exact_errors),
                cmocka_unit_test(every_truncation_of_a_site_fails_cleanly),
                cmocka_unit_test(array_count_checked_against_item_size),
                cmocka_unit_test(registry_ids_are_fixed),
                cmocka_unit_test(reject_reason_names_are_the_schema_symbols),
        };
        return cmocka_run_group_tests_name("codec", tests, setup, teardown);
}
