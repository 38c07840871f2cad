/*
 * registry_client.h: a client of the Confluent Schema Registry REST API
 * (also served by Karapace, Redpanda, Apicurio's compatibility API and
 * `chargeflow registry`), over libcurl, with jansson for the bodies.
 *
 * It registers the output schemas under TopicNameStrategy subjects
 * ("<topic>-value") or finds them when present, and resolves input writer
 * schemas by id for the codec's registry (each id fetched once).
 *
 * Thread safety: a client is used by one thread at a time.
 */
#ifndef CF_REGISTRY_CLIENT_H
#define CF_REGISTRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "err.h"

typedef struct cf_registry_client cf_registry_client;

/* Connection settings; strings may be NULL or "" (not set). */
typedef struct cf_registry_client_conf {
        const char *url;       /* base URL, e.g. http://127.0.0.1:8081 */
        const char *user_info; /* "user:password" for basic auth */
        const char *ca;        /* CA file (PEM) */
        const char *cert;      /* client certificate (PEM) */
        const char *key;       /* client key (PEM) */
        long timeout_ms;       /* per request; <= 0: 10 s */
} cf_registry_client_conf;

/* Creates a client (no request is made). Returns CF_OK and sets *cp, or an
 * error with errstr filled. Free with cf_registry_client_destroy(). */
cf_err_t cf_registry_client_new(const cf_registry_client_conf *conf,
                                cf_registry_client **cp, char *errstr,
                                size_t errstr_size);

/* Frees c; NULL is a no-op. */
void cf_registry_client_destroy(cf_registry_client *c);

/*
 * Finds schema under subject (POST /subjects/{subject}) or, when it is not
 * there, registers it (POST /subjects/{subject}/versions); sets *idp to the
 * registry's id. Errors name the URL and the HTTP status; a schema the
 * registry finds incompatible (HTTP 409) gives CF_ERR_INCOMPATIBLE with a
 * message naming the subject and the compatibility rule.
 */
cf_err_t cf_registry_client_register(cf_registry_client *c, const char *subject,
                                     const char *schema, int32_t *idp,
                                     char *errstr, size_t errstr_size);

/* Fetches the schema of id (GET /schemas/ids/{id}) into a malloc'ed string
 * *jsonp (caller frees). CF_ERR_SCHEMA_ID when the registry does not know
 * the id (HTTP 404), CF_ERR_IO on any other failure. */
cf_err_t cf_registry_client_fetch(cf_registry_client *c, int32_t id,
                                  char **jsonp, char *errstr,
                                  size_t errstr_size);

/*
 * Connects reg to the registry of cfg (schema.registry.*): with
 * register_outputs, registers (or finds) the schemas of the output topics
 * (charge records, statements, rejected, repartition) under
 * "<topic>-value" and makes their ids the ones the encoder writes; then
 * every unknown id a decode meets is fetched once. c must outlive reg's
 * use. On failure the message names the URL, status, subject and rule.
 */
cf_err_t cf_registry_client_attach(cf_registry_client *c, cf_registry *reg,
                                   const cf_config *cfg, bool register_outputs,
                                   char *errstr, size_t errstr_size);

/*
 * For the tools that read topics (cat, report): the registry configured by
 * config_file's schema.registry.* keys (NULL: none), with url (NULL: not
 * given) overriding schema.registry.url. When a URL results, attaches a
 * client to reg for fetching ids (nothing is registered) and sets *cp
 * (caller destroys it after reg); otherwise *cp = NULL and reg keeps the
 * built-in ids. CF_ERR_CONFIG names the file or key.
 */
cf_err_t cf_registry_client_for_tool(const char *config_file, const char *url,
                                     cf_registry *reg, cf_registry_client **cp,
                                     char *errstr, size_t errstr_size);

/* Fills conf from cfg's schema.registry.* keys (pointers into cfg). */
void cf_registry_client_conf_from(cf_registry_client_conf *conf,
                                  const cf_config *cfg);

#endif
