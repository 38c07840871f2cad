/*
 * records.h: the C form of every record in schemas/ (*.avsc).
 *
 * One struct per Avro record, fields in schema order. The codec (codec.h)
 * decodes into and encodes from these structs through the binding tables in
 * records.c, which are checked against the .avsc files at start-up, so the
 * structs and the schemas cannot drift apart.
 *
 * Conventions:
 *  - strings are NUL-terminated char *; an optional string is NULL when null;
 *  - optional numbers are int64_t holding CF_NONE when null;
 *  - optional enums are int32_t holding -1 when null;
 *  - an optional record is a pointer, NULL when null;
 *  - an array is a pointer plus a uint32_t count;
 *  - times are int64_t milliseconds since the Unix epoch (timestamp-millis),
 *    dates are days since 1970-01-01 (Avro date), energy is Wh, power W,
 *    current mA, money int64_t minor units, prices int64_t micro-units of the
 *    currency per unit, VAT rates in basis points of a percent (25% = 2500).
 * Decoded records point into the arena passed to the decoder: the caller owns
 * the arena and so every string and array of the record.
 */
#ifndef CF_RECORDS_H
#define CF_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#define CF_NONE INT64_MIN

typedef struct cf_bytes {
        uint8_t *p; /* NULL when null */
        uint32_t n;
} cf_bytes;

/* ---- enums (symbol order is the schema's; never reorder, only append) -- */

typedef enum cf_session_kind {
        CF_SESSION_STARTED,
        CF_SESSION_AUTHORIZED,
        CF_SESSION_STOPPED,
} cf_session_kind;

typedef enum cf_stop_reason {
        CF_STOP_LOCAL,           /* stopped at the charger (badge, button) */
        CF_STOP_REMOTE,          /* stopped by the backend or app */
        CF_STOP_EV_DISCONNECTED, /* cable unplugged */
        CF_STOP_EV_FULL,         /* vehicle ended charging and left */
        CF_STOP_POWER_LOSS,
        CF_STOP_TIMEOUT, /* closed by chargeflow's session timeout */
        CF_STOP_OTHER,
} cf_stop_reason;

typedef enum cf_billing_period {
        CF_PERIOD_MONTH,
        CF_PERIOD_WEEK, /* ISO week, Monday to Monday */
        CF_PERIOD_DAY,
} cf_billing_period;

/* OCPI 2.2.1 TariffDimensionType (the ones a tariff prices). */
typedef enum cf_dim {
        CF_DIM_ENERGY,       /* per kWh */
        CF_DIM_FLAT,         /* per session */
        CF_DIM_PARKING_TIME, /* per hour not charging */
        CF_DIM_TIME,         /* per hour charging */
        CF_DIM__CNT
} cf_dim;

/* OCPI 2.2.1 DayOfWeek. */
typedef enum cf_weekday {
        CF_MONDAY,
        CF_TUESDAY,
        CF_WEDNESDAY,
        CF_THURSDAY,
        CF_FRIDAY,
        CF_SATURDAY,
        CF_SUNDAY,
} cf_weekday;

/* OCPI 2.2.1 CdrDimensionType (volumes of a charging period). */
typedef enum cf_cdr_dim {
        CF_CDR_ENERGY,       /* Wh */
        CF_CDR_FLAT,         /* 1 */
        CF_CDR_MAX_CURRENT,  /* mA */
        CF_CDR_MAX_POWER,    /* W */
        CF_CDR_PARKING_TIME, /* ms */
        CF_CDR_TIME,         /* ms */
} cf_cdr_dim;

typedef enum cf_charge_flag {
        CF_FLAG_STOP_ESTIMATED, /* no stop event: closed by timeout */
        CF_FLAG_METER_GAP,      /* readings missing for a stretch */
        CF_FLAG_NO_READINGS,    /* priced from the session events alone */
        CF_FLAG_MIN_PRICE,      /* tariff min_price applied */
        CF_FLAG_MAX_PRICE,      /* tariff max_price applied */
        CF_FLAG_LATE,           /* arrived after its period closed */
        CF_FLAG_UNKNOWN_BADGE,  /* badge not in the user table */
} cf_charge_flag;

typedef enum cf_party_kind {
        CF_PARTY_USER, /* the authenticated user pays */
        CF_PARTY_SITE, /* no user: the site owner pays (or re-bills) */
} cf_party_kind;

typedef enum cf_reject_reason {
        CF_REJECT_SCHEMA,           /* undecodable bytes */
        CF_REJECT_FIELD,            /* empty id, negative energy, bad enum */
        CF_REJECT_CLOCK,            /* time outside the allowed skew */
        CF_REJECT_METER_REGRESSION, /* register went down in a session */
        CF_REJECT_METER_JUMP,       /* implied power above the site maximum */
        CF_REJECT_SESSION_STATE,    /* stop before start, second start */
        CF_REJECT_ORPHAN,           /* reading for a session never seen */
        CF_REJECT_UNKNOWN_SITE,     /* no site config after the wait */
        CF_REJECT_NO_PLAN,          /* no price plan valid at session start */
        CF_REJECT_TOO_LATE,         /* late data beyond correction.window.ms */
        CF_REJECT__CNT
} cf_reject_reason;

typedef enum cf_billing_kind {
        CF_BILLING_CHARGE,    /* carries a charge record */
        CF_BILLING_WATERMARK, /* carries only the source's watermark */
} cf_billing_kind;

/* ---- inputs ------------------------------------------------------------ */

typedef struct cf_session_event {
        char *event_id;
        int32_t kind; /* cf_session_kind */
        char *session_id;
        char *site_id;
        char *charger_id;
        int32_t connector_id;
        int64_t time_ms;
        int64_t energy_wh;   /* the charger's energy register */
        char *user_id;       /* optional */
        char *badge_id;      /* optional */
        int32_t stop_reason; /* optional cf_stop_reason, -1 when null */
} cf_session_event;

typedef struct cf_meter_reading {
        char *event_id;
        char *session_id; /* optional */
        char *site_id;
        char *charger_id;
        int32_t connector_id;
        int64_t seq_no; /* increasing per charger */
        int64_t time_ms;
        int64_t energy_wh;  /* the charger's energy register */
        int64_t power_w;    /* optional */
        int64_t current_ma; /* optional */
} cf_meter_reading;

/* ---- tables: price plans (OCPI 2.2.1 Tariff), sites and users ----------- */

typedef struct cf_price_component {
        int32_t type;         /* cf_dim */
        int64_t price_micros; /* excl. VAT, micro-units per kWh/hour/session */
        int64_t vat_bp;       /* optional; CF_NONE: the caller's default */
        int64_t step_size;    /* Wh for ENERGY, seconds for times, 1 FLAT */
} cf_price_component;

typedef struct cf_tariff_restrictions {
        int64_t start_time_min; /* optional, minutes after local midnight */
        int64_t end_time_min;   /* optional, exclusive */
        int64_t start_date;     /* optional, local date, days since epoch */
        int64_t end_date;       /* optional, exclusive */
        int64_t min_wh;         /* optional, energy so far */
        int64_t max_wh;         /* optional */
        int64_t min_current_ma; /* optional */
        int64_t max_current_ma; /* optional */
        int64_t min_power_w;    /* optional */
        int64_t max_power_w;    /* optional */
        int64_t min_duration_s; /* optional, session duration so far */
        int64_t max_duration_s; /* optional */
        int32_t *day_of_week;   /* cf_weekday values */
        uint32_t n_day_of_week;
} cf_tariff_restrictions;

typedef struct cf_tariff_element {
        cf_price_component *price_components;
        uint32_t n_price_components;
        cf_tariff_restrictions *restrictions; /* optional */
} cf_tariff_element;

typedef struct cf_tariff {
        char *tariff_id;
        char *currency; /* ISO 4217 */
        cf_tariff_element *elements;
        uint32_t n_elements;
        int64_t min_price_minor;      /* optional, excl. VAT */
        int64_t max_price_minor;      /* optional, excl. VAT */
        int64_t start_ms;             /* optional: not valid before */
        int64_t end_ms;               /* optional: not valid from */
        int64_t min_price_incl_minor; /* optional, incl. VAT */
        int64_t max_price_incl_minor; /* optional, incl. VAT */
        bool prices_include_vat;      /* prices stated incl. VAT (README) */
} cf_tariff;

typedef struct cf_group_plan {
        char *group;
        cf_tariff tariff;
} cf_group_plan;

/* The plan of one charger group, for one user group or (user_group NULL)
 * for every session at a charger of the group. */
typedef struct cf_charger_plan {
        char *charger_group;
        char *user_group; /* optional: any user group, and no user */
        cf_tariff tariff;
} cf_charger_plan;

typedef struct cf_price_version {
        int64_t valid_from_ms;
        cf_group_plan *plans;
        uint32_t n_plans;
        cf_tariff default_plan;          /* authenticated user, no group plan */
        cf_tariff *unauthenticated_plan; /* optional; default_plan if NULL */
        cf_charger_plan *charger_plans;  /* before plans, see tables.h */
        uint32_t n_charger_plans;
} cf_price_version;

/* A charger's group within its site (private, shared, ...). */
typedef struct cf_charger_group {
        char *charger_id;
        char *group;
} cf_charger_group;

typedef struct cf_site {
        char *site_id;
        char *tenant_id;
        char *name;
        char *time_zone;        /* IANA */
        int32_t billing_period; /* cf_billing_period */
        char *currency;
        int64_t vat_bp;             /* default VAT of components without one */
        int64_t max_power_w;        /* for METER_JUMP */
        bool access_control;        /* false: sessions carry no user */
        cf_price_version *versions; /* ascending valid_from_ms */
        uint32_t n_versions;
        int64_t updated_ms;
        cf_charger_group *charger_groups; /* chargers without one: none */
        uint32_t n_charger_groups;
} cf_site;

typedef struct cf_user {
        char *user_id;
        char *tenant_id;
        char *name; /* optional */
        char *group;
        char **badges;
        uint32_t n_badges;
        int64_t updated_ms;
} cf_user;

/* ---- outputs ----------------------------------------------------------- */

typedef struct cf_price_line {
        int32_t dimension; /* cf_dim */
        int64_t volume;    /* Wh, ms, or 1 for FLAT (after step_size) */
        int64_t excl_vat;  /* minor units */
        int64_t vat_bp;
        int64_t vat; /* minor units */
} cf_price_line;

typedef struct cf_cdr_dimension {
        int32_t type; /* cf_cdr_dim */
        int64_t volume;
} cf_cdr_dimension;

typedef struct cf_charging_period {
        int64_t start_ms;
        int32_t tariff_element; /* index of the element, -1 if none */
        cf_cdr_dimension *dimensions;
        uint32_t n_dimensions;
} cf_charging_period;

/* What a revision of a charge record changes: new minus previous. */
typedef struct cf_correction {
        char *reason; /* "late stop", "late readings", both */
        int64_t energy_wh;
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
} cf_correction;

typedef struct cf_charge_record {
        char *record_id;
        char *tenant_id;
        char *site_id;
        char *charger_id;
        int32_t connector_id;
        char *session_id;
        char *user_id;  /* optional */
        char *badge_id; /* optional */
        char *user_group;
        int32_t party_kind; /* cf_party_kind */
        char *billed_party;
        int64_t start_ms;
        int64_t stop_ms;
        int64_t energy_wh;
        int64_t charging_ms;
        int64_t parking_ms;
        char *tariff_id;
        int64_t tariff_version_ms; /* valid_from of the price version */
        char *currency;
        cf_price_line *lines;
        uint32_t n_lines;
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
        char *period_id; /* "2026-11", "2026-W48", "2026-11-26" */
        int32_t *flags;  /* cf_charge_flag values */
        uint32_t n_flags;
        cf_charging_period *charging_periods;
        uint32_t n_charging_periods;
        int32_t revision;          /* 1, then n+1 per correction */
        cf_correction *correction; /* optional: NULL for revision 1 */
} cf_charge_record;

typedef struct cf_statement_line {
        char *key; /* site id, charger id or badge id */
        int64_t sessions;
        int64_t energy_wh;
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
} cf_statement_line;

typedef struct cf_adjustment {
        char *record_id;
        char *session_id;
        char *original_period_id;
        int64_t energy_wh;
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
        int32_t revision; /* of the charge record it bills */
} cf_adjustment;

typedef struct cf_statement {
        char *statement_id;
        char *tenant_id;
        int32_t party_kind; /* cf_party_kind */
        char *billed_party;
        char *period_id;
        int64_t period_start_ms;
        int64_t period_end_ms;
        int32_t revision;
        char *currency;
        int64_t session_count;
        int64_t energy_wh;
        int64_t total_excl_vat;
        int64_t total_vat;
        int64_t total_incl_vat;
        cf_statement_line *sites;
        uint32_t n_sites;
        cf_statement_line *chargers;
        uint32_t n_chargers;
        cf_statement_line *badges;
        uint32_t n_badges;
        cf_adjustment *adjustments;
        uint32_t n_adjustments;
        int64_t issued_ms; /* watermark at which it was closed */
} cf_statement;

typedef struct cf_rejected {
        int32_t reason; /* cf_reject_reason */
        char *detail;
        char *stage;
        char *source_topic;
        int32_t partition;
        int64_t offset;
        cf_bytes key;          /* optional */
        cf_bytes value;        /* optional */
        int64_t event_time_ms; /* optional */
        int64_t key_length;    /* optional: set when key was cut */
        cf_bytes key_sha256;   /* optional: set when key was cut */
        int64_t value_length;  /* optional: set when value was cut */
        cf_bytes value_sha256; /* optional: set when value was cut */
} cf_rejected;

/* How many bytes of the original key and value a rejected record keeps
 * (schemas/rejected.avsc); longer ones are cut, with their length and
 * SHA-256. */
#define CF_REJECTED_KEEP_BYTES 65536

/* Value of the internal repartition topic between rating and billing. */
typedef struct cf_billing_event {
        int32_t kind; /* cf_billing_kind */
        int32_t source_task;
        int64_t seq; /* the source task's output sequence number */
        int64_t watermark_ms;
        cf_bytes record; /* optional: a framed ChargeRecord (CHARGE only) */
} cf_billing_event;

/* ---- record types and their bindings ----------------------------------- */

typedef enum cf_rtype {
        CF_RT_SESSION_EVENT,
        CF_RT_METER_READING,
        CF_RT_SITE,
        CF_RT_USER,
        CF_RT_CHARGE_RECORD,
        CF_RT_STATEMENT,
        CF_RT_REJECTED,
        CF_RT_BILLING_EVENT,
        CF_RT__CNT
} cf_rtype;

/* Field kinds a binding can hold. */
typedef enum cf_kind {
        CF_K_BOOL,
        CF_K_INT,    /* int32_t (or int64_t when optional) */
        CF_K_LONG,   /* int64_t */
        CF_K_STRING, /* char * */
        CF_K_BYTES,  /* cf_bytes */
        CF_K_ENUM,   /* int32_t */
        CF_K_RECORD, /* inline struct, or pointer when optional */
        CF_K_ARRAY,  /* pointer + uint32_t count */
} cf_kind;

struct cf_bind_record;

typedef struct cf_bind_field {
        const char *name;
        uint8_t kind;      /* cf_kind */
        uint8_t optional;  /* union with null */
        uint8_t elem_kind; /* arrays: kind of the items */
        uint32_t offset;
        uint32_t count_offset; /* arrays: offset of the uint32_t count */
        const struct cf_bind_record *rec; /* records and arrays of records */
} cf_bind_field;

typedef struct cf_bind_record {
        const char *name; /* Avro full name, "chargeflow.Site" */
        uint32_t size;    /* sizeof the struct */
        const cf_bind_field *fields;
        uint32_t n_fields;
} cf_bind_record;

/* Binding of each top-level record type. */
extern const cf_bind_record *const cf_bindings[CF_RT__CNT];

/* True when every string of rec, a decoded record of type t (nested
 * records and arrays included), is valid UTF-8 (utf8.h). */
bool cf_rec_strings_valid(cf_rtype t, const void *rec);

/* Short name of a record type ("SessionEvent"). */
const char *cf_rtype_name(cf_rtype t);

/* The name of a reject reason: its symbol in the Avro enum RejectReason
 * (schemas/rejected.avsc), which test_codec checks against the schema. "?"
 * out of range. */
const char *cf_reject_reason_name(int reason);

#endif
