/*
 * tables.h: the sites and users tables (billing.sites, billing.users), as
 * the stages see them. The runtime reads both topics whole before any input
 * is processed and keeps them current while running.
 *
 * Sites are all in memory; users and the badge index are in the state
 * store behind a bounded cache (see tables.c), so a user lookup may read
 * RocksDB, never Kafka.
 *
 * Lifetimes: a returned site stays valid until the next cf_tables_apply()
 * (the runtime applies table records between input records, so: until the
 * calling task handles its next input record). A returned user stays valid
 * only until the next user lookup (cf_tables_user or
 * cf_tables_user_by_badge, which may evict it from the cache), or the next
 * cf_tables_apply, cf_tables_flush or cf_tables_load: copy what is needed
 * before looking up another user.
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

/* The group of charger_id at site s (Site.charger_groups), or NULL. */
const char *cf_site_charger_group(const cf_site *s, const char *charger_id);

/* The tariff of a session at charger_id, for user group group (NULL: no
 * user), in version v of site s: the charger plan of the charger's group
 * and the session's user group; else the charger plan of the charger's
 * group for any user (user_group NULL); else cf_version_tariff(v, group).
 * The first matching charger plan in v's order wins. */
const cf_tariff *cf_site_tariff(const cf_site *s, const cf_price_version *v,
                                const char *charger_id, const char *group);

/* ---- runtime side (pipeline/runtime/runtime.c) -------------------------- */

#include "state.h"

/* The state task id under which the tables and their offsets are kept. */
#define CF_TABLES_TASK CF_TASK_MAX

typedef enum cf_table_kind { CF_TABLE_SITES, CF_TABLE_USERS } cf_table_kind;

/* Tables backed by the state store. cache_bytes (tables.cache.max.bytes)
 * bounds the memory of the users and badges caches, changes not yet
 * written included; sites are not counted. st may be NULL: memory only,
 * every user kept (for tests; cache_bytes is then ignored). */
cf_tables *cf_tables_new(cf_state *st, const cf_registry *reg,
                         size_t cache_bytes);
void cf_tables_destroy(cf_tables *tb);

/* Loads what a previous run stored: the records and the offsets up to which
 * the topics were read. */
cf_err_t cf_tables_load(cf_tables *tb, char *errstr, size_t errstr_size);

/* Next offset to read of a table topic's partition (0 if never read). */
int64_t cf_tables_offset(const cf_tables *tb, cf_table_kind k,
                         int32_t partition);

/* Applies one record of a table topic (value NULL: a tombstone). A user's
 * tombstone deletes the user. A site's tombstone is logged at WARN, naming
 * the site, and otherwise ignored: the site keeps its last config, so that
 * its open sessions, its unbilled periods and late records are still
 * billed (a site removed by its operator sends nothing more; one deleted
 * by a producer's bug loses nothing). A value that does not decode, whose
 * strings are not valid UTF-8, or whose id differs from its key, or a key
 * too long for the state store, is skipped and counted (returns false);
 * the offset still advances. When the changes not yet flushed
 * exceed their share of the cache budget, they are written to the state
 * store at once, with the offsets (a table read whole at start must not be
 * held in memory); a failed write is kept and returned by the next
 * cf_tables_flush. */
bool cf_tables_apply(cf_tables *tb, cf_table_kind k, int32_t partition,
                     int64_t offset, const void *key, size_t klen,
                     const void *value, size_t vlen);

/* Adds the changes since the last call to b (records, badge index,
 * offsets, counts). Returns CF_OK, or the error of a failed state read or
 * write since the last flush (CF_ERR_STATE, CF_ERR_CORRUPT; errstr filled):
 * a lookup may then have answered "absent" wrongly, so the commit must not
 * be written and the tables no longer match the state store (destroy them;
 * a restart reloads). */
cf_err_t cf_tables_flush(cf_tables *tb, cf_batch *b, char *errstr,
                         size_t errstr_size);

/* Writes the changes since the last flush to the state store in a batch
 * of their own (not synced), as apply does when they outgrow their share:
 * the runtime calls it once the tables are read to their end at start, so
 * that the whole load is written before any input is consumed. Returns
 * what cf_tables_flush would. */
cf_err_t cf_tables_write(cf_tables *tb, char *errstr, size_t errstr_size);

/* Counts: sites, users, badges (kept as numbers and persisted: no scan),
 * records skipped by this process. */
void cf_tables_counts(const cf_tables *tb, size_t *sites, size_t *users,
                      size_t *badges, uint64_t *skipped);

/* The users and badges caches' counters (store.h): hits, misses, RocksDB
 * reads, memory. */
#include "store.h"
void cf_tables_cache_stats(const cf_tables *tb, cf_store_stats *users,
                           cf_store_stats *badges);

#endif
