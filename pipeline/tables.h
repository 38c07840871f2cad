/*
 * tables.h: the sites and users tables (billing.sites, billing.users), as
 * the stages see them. The runtime reads both topics whole before any input
 * is processed and keeps them current while running.
 *
 * A returned record stays valid until the calling task handles its next
 * input record. Lookups may read the state store (users), never Kafka.
 */
#ifndef CF_TABLES_H
#define CF_TABLES_H

#include "records.h"
#include "stage.h"

/* The site with this id, or NULL. */
const cf_site *cf_tables_site(const cf_tables *tb, const char *site_id);

/* The user with this id, or NULL. */
const cf_user *cf_tables_user(const cf_tables *tb, const char *user_id);

/* The user holding this RFID badge, or NULL. */
const cf_user *cf_tables_user_by_badge(const cf_tables *tb,
                                       const char *badge_id);

/* The site's price version valid at t_ms (the latest valid_from_ms <= t),
 * or NULL. */
const cf_price_version *cf_site_version_at(const cf_site *s, int64_t t_ms);

/* The tariff of a group in a version: the group's plan, else the default
 * plan; for group NULL (no user) the unauthenticated plan, else the
 * default plan. */
const cf_tariff *cf_version_tariff(const cf_price_version *v,
                                   const char *group);

/* ---- runtime side (pipeline/runtime.c) ---------------------------------- */

#include "state.h"

/* The state task id under which the tables and their offsets are kept. */
#define CF_TABLES_TASK CF_TASK_MAX

typedef enum cf_table_kind { CF_TABLE_SITES, CF_TABLE_USERS } cf_table_kind;

/* Tables backed by the state store (st may be NULL: memory only). */
cf_tables *cf_tables_new(cf_state *st, const cf_registry *reg);
void cf_tables_destroy(cf_tables *tb);

/* Loads what a previous run stored: the records and the offsets up to which
 * the topics were read. */
cf_err_t cf_tables_load(cf_tables *tb, char *errstr, size_t errstr_size);

/* Next offset to read of a table topic's partition (0 if never read). */
int64_t cf_tables_offset(const cf_tables *tb, cf_table_kind k,
                         int32_t partition);

/* Applies one record of a table topic (value NULL: a tombstone deleting the
 * key). A value that does not decode, or whose id differs from its key, is
 * skipped and counted (returns false); the offset still advances. */
bool cf_tables_apply(cf_tables *tb, cf_table_kind k, int32_t partition,
                     int64_t offset, const void *key, size_t klen,
                     const void *value, size_t vlen);

/* Adds the changes since the last call to b (records and offsets). */
void cf_tables_flush(cf_tables *tb, cf_batch *b);

/* Counts: sites, users, badges, skipped records. */
void cf_tables_counts(const cf_tables *tb, size_t *sites, size_t *users,
                      size_t *badges, uint64_t *skipped);

#endif
