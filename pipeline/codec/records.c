/*
 * records.c: binding tables from the Avro schemas to the structs of
 * records.h. codec.c checks each table against its .avsc at start-up.
 */
#include "records.h"

#include <stddef.h>
#include <string.h>

#include "utf8.h"

#define F(st, f, k)                                                            \
        {                                                                      \
#f, k, 0, 0, offsetof(st, f), 0, NULL                          \
        }
#define FO(st, f, k)                                                           \
        {                                                                      \
#f, k, 1, 0, offsetof(st, f), 0, NULL                          \
        }
#define FR(st, f, r)                                                           \
        {                                                                      \
#f, CF_K_RECORD, 0, 0, offsetof(st, f), 0, &r                  \
        }
#define FRO(st, f, r)                                                          \
        {                                                                      \
#f, CF_K_RECORD, 1, 0, offsetof(st, f), 0, &r                  \
        }
#define FA(st, f, ek, r)                                                       \
        {                                                                      \
#f, CF_K_ARRAY, 0, ek, offsetof(st, f), offsetof(st, n_##f), r \
        }
#define REC(var, st, fullname, fields)                                         \
        static const cf_bind_record var = { fullname, sizeof(st), fields,      \
                                            sizeof(fields) /                   \
                                                sizeof(fields[0]) }

static const cf_bind_field session_event_f[] = {
        F(cf_session_event, event_id, CF_K_STRING),
        F(cf_session_event, kind, CF_K_ENUM),
        F(cf_session_event, session_id, CF_K_STRING),
        F(cf_session_event, site_id, CF_K_STRING),
        F(cf_session_event, charger_id, CF_K_STRING),
        F(cf_session_event, connector_id, CF_K_INT),
        F(cf_session_event, time_ms, CF_K_LONG),
        F(cf_session_event, energy_wh, CF_K_LONG),
        FO(cf_session_event, user_id, CF_K_STRING),
        FO(cf_session_event, badge_id, CF_K_STRING),
        FO(cf_session_event, stop_reason, CF_K_ENUM),
};
REC(session_event_b, cf_session_event, "chargeflow.SessionEvent",
    session_event_f);

static const cf_bind_field meter_reading_f[] = {
        F(cf_meter_reading, event_id, CF_K_STRING),
        FO(cf_meter_reading, session_id, CF_K_STRING),
        F(cf_meter_reading, site_id, CF_K_STRING),
        F(cf_meter_reading, charger_id, CF_K_STRING),
        F(cf_meter_reading, connector_id, CF_K_INT),
        F(cf_meter_reading, seq_no, CF_K_LONG),
        F(cf_meter_reading, time_ms, CF_K_LONG),
        F(cf_meter_reading, energy_wh, CF_K_LONG),
        FO(cf_meter_reading, power_w, CF_K_LONG),
        FO(cf_meter_reading, current_ma, CF_K_LONG),
};
REC(meter_reading_b, cf_meter_reading, "chargeflow.MeterReading",
    meter_reading_f);

static const cf_bind_field price_component_f[] = {
        F(cf_price_component, type, CF_K_ENUM),
        F(cf_price_component, price_micros, CF_K_LONG),
        FO(cf_price_component, vat_bp, CF_K_LONG),
        F(cf_price_component, step_size, CF_K_LONG),
};
REC(price_component_b, cf_price_component, "chargeflow.PriceComponent",
    price_component_f);

static const cf_bind_field restrictions_f[] = {
        FO(cf_tariff_restrictions, start_time_min, CF_K_LONG),
        FO(cf_tariff_restrictions, end_time_min, CF_K_LONG),
        FO(cf_tariff_restrictions, start_date, CF_K_INT),
        FO(cf_tariff_restrictions, end_date, CF_K_INT),
        FO(cf_tariff_restrictions, min_wh, CF_K_LONG),
        FO(cf_tariff_restrictions, max_wh, CF_K_LONG),
        FO(cf_tariff_restrictions, min_current_ma, CF_K_LONG),
        FO(cf_tariff_restrictions, max_current_ma, CF_K_LONG),
        FO(cf_tariff_restrictions, min_power_w, CF_K_LONG),
        FO(cf_tariff_restrictions, max_power_w, CF_K_LONG),
        FO(cf_tariff_restrictions, min_duration_s, CF_K_LONG),
        FO(cf_tariff_restrictions, max_duration_s, CF_K_LONG),
        FA(cf_tariff_restrictions, day_of_week, CF_K_ENUM, NULL),
};
REC(restrictions_b, cf_tariff_restrictions, "chargeflow.TariffRestrictions",
    restrictions_f);

static const cf_bind_field element_f[] = {
        FA(cf_tariff_element, price_components, CF_K_RECORD,
           &price_component_b),
        FRO(cf_tariff_element, restrictions, restrictions_b),
};
REC(element_b, cf_tariff_element, "chargeflow.TariffElement", element_f);

static const cf_bind_field tariff_f[] = {
        F(cf_tariff, tariff_id, CF_K_STRING),
        F(cf_tariff, currency, CF_K_STRING),
        FA(cf_tariff, elements, CF_K_RECORD, &element_b),
        FO(cf_tariff, min_price_minor, CF_K_LONG),
        FO(cf_tariff, max_price_minor, CF_K_LONG),
        FO(cf_tariff, start_ms, CF_K_LONG),
        FO(cf_tariff, end_ms, CF_K_LONG),
        FO(cf_tariff, min_price_incl_minor, CF_K_LONG),
        FO(cf_tariff, max_price_incl_minor, CF_K_LONG),
        F(cf_tariff, prices_include_vat, CF_K_BOOL),
};
REC(tariff_b, cf_tariff, "chargeflow.Tariff", tariff_f);

static const cf_bind_field group_plan_f[] = {
        F(cf_group_plan, group, CF_K_STRING),
        FR(cf_group_plan, tariff, tariff_b),
};
REC(group_plan_b, cf_group_plan, "chargeflow.GroupPlan", group_plan_f);

static const cf_bind_field charger_plan_f[] = {
        F(cf_charger_plan, charger_group, CF_K_STRING),
        FO(cf_charger_plan, user_group, CF_K_STRING),
        FR(cf_charger_plan, tariff, tariff_b),
};
REC(charger_plan_b, cf_charger_plan, "chargeflow.ChargerPlan", charger_plan_f);

static const cf_bind_field charger_group_f[] = {
        F(cf_charger_group, charger_id, CF_K_STRING),
        F(cf_charger_group, group, CF_K_STRING),
};
REC(charger_group_b, cf_charger_group, "chargeflow.ChargerGroup",
    charger_group_f);

static const cf_bind_field price_version_f[] = {
        F(cf_price_version, valid_from_ms, CF_K_LONG),
        FA(cf_price_version, plans, CF_K_RECORD, &group_plan_b),
        FR(cf_price_version, default_plan, tariff_b),
        FRO(cf_price_version, unauthenticated_plan, tariff_b),
        FA(cf_price_version, charger_plans, CF_K_RECORD, &charger_plan_b),
};
REC(price_version_b, cf_price_version, "chargeflow.PriceVersion",
    price_version_f);

static const cf_bind_field site_f[] = {
        F(cf_site, site_id, CF_K_STRING),
        F(cf_site, tenant_id, CF_K_STRING),
        F(cf_site, name, CF_K_STRING),
        F(cf_site, time_zone, CF_K_STRING),
        F(cf_site, billing_period, CF_K_ENUM),
        F(cf_site, currency, CF_K_STRING),
        F(cf_site, vat_bp, CF_K_LONG),
        F(cf_site, max_power_w, CF_K_LONG),
        F(cf_site, access_control, CF_K_BOOL),
        FA(cf_site, versions, CF_K_RECORD, &price_version_b),
        F(cf_site, updated_ms, CF_K_LONG),
        FA(cf_site, charger_groups, CF_K_RECORD, &charger_group_b),
};
REC(site_b, cf_site, "chargeflow.Site", site_f);

static const cf_bind_field user_f[] = {
        F(cf_user, user_id, CF_K_STRING),
        F(cf_user, tenant_id, CF_K_STRING),
        FO(cf_user, name, CF_K_STRING),
        F(cf_user, group, CF_K_STRING),
        FA(cf_user, badges, CF_K_STRING, NULL),
        F(cf_user, updated_ms, CF_K_LONG),
};
REC(user_b, cf_user, "chargeflow.User", user_f);

static const cf_bind_field price_line_f[] = {
        F(cf_price_line, dimension, CF_K_ENUM),
        F(cf_price_line, volume, CF_K_LONG),
        F(cf_price_line, excl_vat, CF_K_LONG),
        F(cf_price_line, vat_bp, CF_K_LONG),
        F(cf_price_line, vat, CF_K_LONG),
};
REC(price_line_b, cf_price_line, "chargeflow.PriceLine", price_line_f);

static const cf_bind_field cdr_dimension_f[] = {
        F(cf_cdr_dimension, type, CF_K_ENUM),
        F(cf_cdr_dimension, volume, CF_K_LONG),
};
REC(cdr_dimension_b, cf_cdr_dimension, "chargeflow.CdrDimension",
    cdr_dimension_f);

static const cf_bind_field charging_period_f[] = {
        F(cf_charging_period, start_ms, CF_K_LONG),
        F(cf_charging_period, tariff_element, CF_K_INT),
        FA(cf_charging_period, dimensions, CF_K_RECORD, &cdr_dimension_b),
};
REC(charging_period_b, cf_charging_period, "chargeflow.ChargingPeriod",
    charging_period_f);

static const cf_bind_field correction_f[] = {
        F(cf_correction, reason, CF_K_STRING),
        F(cf_correction, energy_wh, CF_K_LONG),
        F(cf_correction, total_excl_vat, CF_K_LONG),
        F(cf_correction, total_vat, CF_K_LONG),
        F(cf_correction, total_incl_vat, CF_K_LONG),
};
REC(correction_b, cf_correction, "chargeflow.Correction", correction_f);

static const cf_bind_field charge_record_f[] = {
        F(cf_charge_record, record_id, CF_K_STRING),
        F(cf_charge_record, tenant_id, CF_K_STRING),
        F(cf_charge_record, site_id, CF_K_STRING),
        F(cf_charge_record, charger_id, CF_K_STRING),
        F(cf_charge_record, connector_id, CF_K_INT),
        F(cf_charge_record, session_id, CF_K_STRING),
        FO(cf_charge_record, user_id, CF_K_STRING),
        FO(cf_charge_record, badge_id, CF_K_STRING),
        F(cf_charge_record, user_group, CF_K_STRING),
        F(cf_charge_record, party_kind, CF_K_ENUM),
        F(cf_charge_record, billed_party, CF_K_STRING),
        F(cf_charge_record, start_ms, CF_K_LONG),
        F(cf_charge_record, stop_ms, CF_K_LONG),
        F(cf_charge_record, energy_wh, CF_K_LONG),
        F(cf_charge_record, charging_ms, CF_K_LONG),
        F(cf_charge_record, parking_ms, CF_K_LONG),
        F(cf_charge_record, tariff_id, CF_K_STRING),
        F(cf_charge_record, tariff_version_ms, CF_K_LONG),
        F(cf_charge_record, currency, CF_K_STRING),
        FA(cf_charge_record, lines, CF_K_RECORD, &price_line_b),
        F(cf_charge_record, total_excl_vat, CF_K_LONG),
        F(cf_charge_record, total_vat, CF_K_LONG),
        F(cf_charge_record, total_incl_vat, CF_K_LONG),
        F(cf_charge_record, period_id, CF_K_STRING),
        FA(cf_charge_record, flags, CF_K_ENUM, NULL),
        FA(cf_charge_record, charging_periods, CF_K_RECORD, &charging_period_b),
        F(cf_charge_record, revision, CF_K_INT),
        FRO(cf_charge_record, correction, correction_b),
};
REC(charge_record_b, cf_charge_record, "chargeflow.ChargeRecord",
    charge_record_f);

static const cf_bind_field statement_line_f[] = {
        F(cf_statement_line, key, CF_K_STRING),
        F(cf_statement_line, sessions, CF_K_LONG),
        F(cf_statement_line, energy_wh, CF_K_LONG),
        F(cf_statement_line, total_excl_vat, CF_K_LONG),
        F(cf_statement_line, total_vat, CF_K_LONG),
        F(cf_statement_line, total_incl_vat, CF_K_LONG),
};
REC(statement_line_b, cf_statement_line, "chargeflow.StatementLine",
    statement_line_f);

static const cf_bind_field adjustment_f[] = {
        F(cf_adjustment, record_id, CF_K_STRING),
        F(cf_adjustment, session_id, CF_K_STRING),
        F(cf_adjustment, original_period_id, CF_K_STRING),
        F(cf_adjustment, energy_wh, CF_K_LONG),
        F(cf_adjustment, total_excl_vat, CF_K_LONG),
        F(cf_adjustment, total_vat, CF_K_LONG),
        F(cf_adjustment, total_incl_vat, CF_K_LONG),
        F(cf_adjustment, revision, CF_K_INT),
};
REC(adjustment_b, cf_adjustment, "chargeflow.Adjustment", adjustment_f);

static const cf_bind_field statement_f[] = {
        F(cf_statement, statement_id, CF_K_STRING),
        F(cf_statement, tenant_id, CF_K_STRING),
        F(cf_statement, party_kind, CF_K_ENUM),
        F(cf_statement, billed_party, CF_K_STRING),
        F(cf_statement, period_id, CF_K_STRING),
        F(cf_statement, period_start_ms, CF_K_LONG),
        F(cf_statement, period_end_ms, CF_K_LONG),
        F(cf_statement, revision, CF_K_INT),
        F(cf_statement, currency, CF_K_STRING),
        F(cf_statement, session_count, CF_K_LONG),
        F(cf_statement, energy_wh, CF_K_LONG),
        F(cf_statement, total_excl_vat, CF_K_LONG),
        F(cf_statement, total_vat, CF_K_LONG),
        F(cf_statement, total_incl_vat, CF_K_LONG),
        FA(cf_statement, sites, CF_K_RECORD, &statement_line_b),
        FA(cf_statement, chargers, CF_K_RECORD, &statement_line_b),
        FA(cf_statement, badges, CF_K_RECORD, &statement_line_b),
        FA(cf_statement, adjustments, CF_K_RECORD, &adjustment_b),
        F(cf_statement, issued_ms, CF_K_LONG),
};
REC(statement_b, cf_statement, "chargeflow.Statement", statement_f);

static const cf_bind_field rejected_f[] = {
        F(cf_rejected, reason, CF_K_ENUM),
        F(cf_rejected, detail, CF_K_STRING),
        F(cf_rejected, stage, CF_K_STRING),
        F(cf_rejected, source_topic, CF_K_STRING),
        F(cf_rejected, partition, CF_K_INT),
        F(cf_rejected, offset, CF_K_LONG),
        FO(cf_rejected, key, CF_K_BYTES),
        FO(cf_rejected, value, CF_K_BYTES),
        FO(cf_rejected, event_time_ms, CF_K_LONG),
        FO(cf_rejected, key_length, CF_K_LONG),
        FO(cf_rejected, key_sha256, CF_K_BYTES),
        FO(cf_rejected, value_length, CF_K_LONG),
        FO(cf_rejected, value_sha256, CF_K_BYTES),
};
REC(rejected_b, cf_rejected, "chargeflow.Rejected", rejected_f);

static const cf_bind_field billing_event_f[] = {
        F(cf_billing_event, kind, CF_K_ENUM),
        F(cf_billing_event, source_task, CF_K_INT),
        F(cf_billing_event, seq, CF_K_LONG),
        F(cf_billing_event, watermark_ms, CF_K_LONG),
        FO(cf_billing_event, record, CF_K_BYTES),
};
REC(billing_event_b, cf_billing_event, "chargeflow.BillingEvent",
    billing_event_f);

const cf_bind_record *const cf_bindings[CF_RT__CNT] = {
        [CF_RT_SESSION_EVENT] = &session_event_b,
        [CF_RT_METER_READING] = &meter_reading_b,
        [CF_RT_SITE] = &site_b,
        [CF_RT_USER] = &user_b,
        [CF_RT_CHARGE_RECORD] = &charge_record_b,
        [CF_RT_STATEMENT] = &statement_b,
        [CF_RT_REJECTED] = &rejected_b,
        [CF_RT_BILLING_EVENT] = &billing_event_b,
};

const char *cf_rtype_name(cf_rtype t)
{
        static const char *const names[CF_RT__CNT] = {
                "SessionEvent", "MeterReading", "Site",     "User",
                "ChargeRecord", "Statement",    "Rejected", "BillingEvent",
        };
        return (unsigned)t < CF_RT__CNT ? names[t] : "?";
}

const char *cf_reject_reason_name(int reason)
{
        static const char *const names[CF_REJECT__CNT] = {
                [CF_REJECT_SCHEMA] = "SCHEMA",
                [CF_REJECT_FIELD] = "FIELD",
                [CF_REJECT_CLOCK] = "CLOCK",
                [CF_REJECT_METER_REGRESSION] = "METER_REGRESSION",
                [CF_REJECT_METER_JUMP] = "METER_JUMP",
                [CF_REJECT_SESSION_STATE] = "SESSION_STATE",
                [CF_REJECT_ORPHAN] = "ORPHAN",
                [CF_REJECT_UNKNOWN_SITE] = "UNKNOWN_SITE",
                [CF_REJECT_NO_PLAN] = "NO_PLAN",
                [CF_REJECT_TOO_LATE] = "TOO_LATE",
        };
        return reason >= 0 && reason < CF_REJECT__CNT ? names[reason] : "?";
}

static bool strings_valid(const cf_bind_record *rb, const uint8_t *p)
{
        for (uint32_t i = 0; i < rb->n_fields; i++) {
                const cf_bind_field *f = &rb->fields[i];
                const uint8_t *fp = p + f->offset;
                if (f->kind == CF_K_STRING) {
                        const char *s = *(char *const *)fp;
                        if (s && !cf_utf8_valid(s, strlen(s)))
                                return false;
                } else if (f->kind == CF_K_RECORD) {
                        const uint8_t *r =
                            f->optional ? *(const uint8_t *const *)fp : fp;
                        if (r && !strings_valid(f->rec, r))
                                return false;
                } else if (f->kind == CF_K_ARRAY) {
                        const uint8_t *a = *(const uint8_t *const *)fp;
                        uint32_t n = *(const uint32_t *)(p + f->count_offset);
                        for (uint32_t k = 0; a && k < n; k++) {
                                if (f->elem_kind == CF_K_STRING) {
                                        const char *s =
                                            ((char *const *)(const void *)a)[k];
                                        if (s && !cf_utf8_valid(s, strlen(s)))
                                                return false;
                                } else if (f->elem_kind == CF_K_RECORD &&
                                           !strings_valid(
                                               f->rec, a + k * f->rec->size)) {
                                        return false;
                                }
                        }
                }
        }
        return true;
}

bool cf_rec_strings_valid(cf_rtype t, const void *rec)
{
        return strings_valid(cf_bindings[t], rec);
}
