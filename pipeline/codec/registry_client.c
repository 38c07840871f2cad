/*
 * registry_client.c: the Confluent Schema Registry REST client (see
 * registry_client.h). Requests and answers are JSON
 * (application/vnd.schemaregistry.v1+json); errors come as
 * {"error_code":N,"message":"..."}.
 */
#include "registry_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "mem.h"

struct cf_registry_client {
        CURL *curl;
        char *url; /* without a trailing '/' */
        struct curl_slist *headers;
        int64_t failed_at; /* monotonic ms of the last transport failure */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool set(const char *s)
{
        return s && *s;
}

cf_err_t cf_registry_client_new(const cf_registry_client_conf *conf,
                                cf_registry_client **cp, char *errstr,
                                size_t errstr_size)
{
        pthread_once(&curl_once, curl_init_once);
        if (!set(conf->url)) {
                snprintf(errstr, errstr_size, "schema.registry.url is empty");
                return CF_ERR_CONFIG;
        }
        cf_registry_client *c = cf_calloc(1, sizeof(*c));
        c->url = cf_strdup(conf->url);
        size_t n = strlen(c->url);
        while (n && c->url[n - 1] == '/')
                c->url[--n] = '\0';
        c->curl = curl_easy_init();
        if (!c->curl) {
                snprintf(errstr, errstr_size, "%s: curl_easy_init failed",
                         c->url);
                cf_registry_client_destroy(c);
                return CF_ERR_IO;
        }
        c->headers = curl_slist_append(
            NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
        c->headers = curl_slist_append(
            c->headers, "Accept: application/vnd.schemaregistry.v1+json, "
                        "application/json");
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS,
                         conf->timeout_ms > 0 ? conf->timeout_ms : 10000L);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        if (set(conf->user_info)) {
                curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(c->curl, CURLOPT_USERPWD, conf->user_info);
        }
        if (set(conf->ca))
                curl_easy_setopt(c->curl, CURLOPT_CAINFO, conf->ca);
        if (set(conf->cert))
                curl_easy_setopt(c->curl, CURLOPT_SSLCERT, conf->cert);
        if (set(conf->key))
                curl_easy_setopt(c->curl, CURLOPT_SSLKEY, conf->key);
        *cp = c;
        return CF_OK;
}

void cf_registry_client_destroy(cf_registry_client *c)
{
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        curl_slist_free_all(c->headers);
        free(c->url);
        free(c);
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
        cf_buf_put(opaque, p, size * n);
        return size * n;
}

/*
 * One request: method and path (appended to the URL), body (JSON text or
 * NULL). Returns CF_OK with *statusp and *respp (the parsed answer, NULL
 * when it is not JSON; caller decrefs), or CF_ERR_IO when no HTTP answer
 * came, errstr naming the URL.
 */
static cf_err_t request(cf_registry_client *c, const char *method,
                        const char *path, const char *body, long *statusp,
                        json_t **respp, char *errstr, size_t errstr_size)
{
        char url[2048];
        cf_buf b;
        snprintf(url, sizeof(url), "%s%s", c->url, path);
        cf_buf_init(&b);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE,
                                 (long)strlen(body));
        } else {
                curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
                curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
        }
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
        CURLcode rc = curl_easy_perform(c->curl);
        if (rc != CURLE_OK) {
                snprintf(errstr, errstr_size, "schema registry %s %s: %s",
                         method, url, curl_easy_strerror(rc));
                cf_buf_free(&b);
                c->failed_at = cf_mono_ms();
                return CF_ERR_IO;
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, statusp);
        *respp = b.len ? json_loadb((const char *)b.p, b.len, 0, NULL) : NULL;
        cf_buf_free(&b);
        return CF_OK;
}

/* errstr = "schema registry METHOD URL: HTTP status: message". */
static void http_error(cf_registry_client *c, const char *method,
                       const char *path, long status, json_t *resp,
                       char *errstr, size_t errstr_size)
{
        const char *msg = json_string_value(json_object_get(resp, "message"));
        snprintf(errstr, errstr_size, "schema registry %s %s%s: HTTP %ld%s%s",
                 method, c->url, path, status, msg ? ": " : "", msg ? msg : "");
}

static int32_t id_of(json_t *resp)
{
        json_t *id = json_object_get(resp, "id");
        return json_is_integer(id) ? (int32_t)json_integer_value(id) : -1;
}

cf_err_t cf_registry_client_register(cf_registry_client *c, const char *subject,
                                     const char *schema, int32_t *idp,
                                     char *errstr, size_t errstr_size)
{
        char path[1024];
        long status = 0;
        json_t *resp = NULL;
        char *esc = curl_easy_escape(c->curl, subject, 0);
        json_t *req = json_pack("{s:s}", "schema", schema);
        char *body = json_dumps(req, JSON_COMPACT);
        cf_err_t err;
        json_decref(req);
        /* Found when present. */
        snprintf(path, sizeof(path), "/subjects/%s", esc);
        err =
            request(c, "POST", path, body, &status, &resp, errstr, errstr_size);
        if (err)
                goto done;
        if (status == 200 && id_of(resp) >= 0) {
                *idp = id_of(resp);
                goto done;
        }
        if (status != 404) {
                http_error(c, "POST", path, status, resp, errstr, errstr_size);
                err = CF_ERR_IO;
                goto done;
        }
        json_decref(resp);
        resp = NULL;
        /* Registered otherwise. */
        snprintf(path, sizeof(path), "/subjects/%s/versions", esc);
        err =
            request(c, "POST", path, body, &status, &resp, errstr, errstr_size);
        if (err)
                goto done;
        if (status == 200 && id_of(resp) >= 0) {
                *idp = id_of(resp);
                goto done;
        }
        if (status == 409) {
                /* Incompatible: name the rule the registry applies. */
                char cpath[1024];
                long cs = 0;
                json_t *conf = NULL;
                char why[1024];
                const char *rule = "unknown";
                snprintf(why, sizeof(why), "%s",
                         json_string_value(json_object_get(resp, "message"))
                             ?: "");
                snprintf(cpath, sizeof(cpath),
                         "/config/%s?defaultToGlobal=true", esc);
                if (!request(c, "GET", cpath, NULL, &cs, &conf, errstr,
                             errstr_size) &&
                    cs == 200 &&
                    json_string_value(
                        json_object_get(conf, "compatibilityLevel")))
                        rule = json_string_value(
                            json_object_get(conf, "compatibilityLevel"));
                snprintf(errstr, errstr_size,
                         "schema registry %s: subject %s: the schema is "
                         "incompatible with the registered versions under "
                         "compatibility rule %s (POST %s%s: HTTP 409%s%s)",
                         c->url, subject, rule, c->url, path, *why ? ": " : "",
                         why);
                json_decref(conf);
                err = CF_ERR_INCOMPATIBLE;
                goto done;
        }
        http_error(c, "POST", path, status, resp, errstr, errstr_size);
        err = CF_ERR_IO;
done:
        json_decref(resp);
        free(body);
        curl_free(esc);
        return err;
}

cf_err_t cf_registry_client_fetch(cf_registry_client *c, int32_t id,
                                  char **jsonp, char *errstr,
                                  size_t errstr_size)
{
        char path[64];
        long status = 0;
        json_t *resp = NULL;
        snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
        cf_err_t err =
            request(c, "GET", path, NULL, &status, &resp, errstr, errstr_size);
        if (err)
                return err;
        const char *s = json_string_value(json_object_get(resp, "schema"));
        if (status == 200 && s) {
                *jsonp = cf_strdup(s);
                json_decref(resp);
                return CF_OK;
        }
        http_error(c, "GET", path, status, resp, errstr, errstr_size);
        json_decref(resp);
        return status == 404 ? CF_ERR_SCHEMA_ID : CF_ERR_IO;
}

/* The codec's resolver: fetches an unknown id once. After a transport
 * failure, ids are not asked about for 5 s (the records meanwhile fail to
 * decode, rejected as SCHEMA with their bytes), so that an unreachable
 * registry does not cost a timeout per record. */
static cf_err_t resolve(cf_registry *reg, int32_t id, void *opaque)
{
        cf_registry_client *c = opaque;
        char errstr[1024], fields[64];
        char *json = NULL;
        if (c->failed_at && cf_mono_ms() - c->failed_at < 5000)
                return CF_ERR_IO;
        snprintf(fields, sizeof(fields), "\"schema_id\":%d", (int)id);
        cf_err_t err =
            cf_registry_client_fetch(c, id, &json, errstr, sizeof(errstr));
        if (err) {
                cf_logf(err == CF_ERR_SCHEMA_ID ? CF_LOG_WARN : CF_LOG_ERROR,
                        "registry", fields, "schema id %d: %s", (int)id,
                        errstr);
                return err;
        }
        err = cf_registry_add(reg, id, json, strlen(json), errstr,
                              sizeof(errstr));
        free(json);
        if (err) {
                cf_logf(CF_LOG_WARN, "registry", fields,
                        "schema id %d from %s is not usable: %s", (int)id,
                        c->url, errstr);
                return CF_ERR_SCHEMA_ID;
        }
        cf_logf(CF_LOG_INFO, "registry", fields, "schema id %d fetched from %s",
                (int)id, c->url);
        return CF_OK;
}

cf_err_t cf_registry_client_attach(cf_registry_client *c, cf_registry *reg,
                                   const cf_config *cfg, bool register_outputs,
                                   char *errstr, size_t errstr_size)
{
        const struct {
                const char *topic;
                cf_rtype t;
        } outs[] = {
                { cfg->topic_charge_records, CF_RT_CHARGE_RECORD },
                { cfg->topic_statements, CF_RT_STATEMENT },
                { cfg->topic_rejected, CF_RT_REJECTED },
                { cfg->topic_repartition, CF_RT_BILLING_EVENT },
        };
        int32_t ids[4];
        for (size_t i = 0; register_outputs && i < 4; i++) {
                char subject[512];
                snprintf(subject, sizeof(subject), "%s-value", outs[i].topic);
                cf_err_t err = cf_registry_client_register(
                    c, subject, cf_registry_schema_json(reg, outs[i].t),
                    &ids[i], errstr, errstr_size);
                if (err)
                        return err;
        }
        cf_registry_set_resolver(reg, resolve, c);
        for (size_t i = 0; register_outputs && i < 4; i++) {
                char fields[600], subject[512];
                snprintf(subject, sizeof(subject), "%s-value", outs[i].topic);
                cf_err_t err = cf_registry_set_id(reg, outs[i].t, ids[i],
                                                  errstr, errstr_size);
                if (err)
                        return err;
                snprintf(fields, sizeof(fields),
                         "\"subject\":\"%s\",\"schema_id\":%d", subject,
                         (int)ids[i]);
                cf_logf(CF_LOG_INFO, "registry", fields,
                        "output schema %s: id %d at %s", subject, (int)ids[i],
                        c->url);
        }
        return CF_OK;
}

void cf_registry_client_conf_from(cf_registry_client_conf *conf,
                                  const cf_config *cfg)
{
        conf->url = cfg->schema_registry_url;
        conf->user_info = cfg->schema_registry_auth;
        conf->ca = cfg->schema_registry_ca;
        conf->cert = cfg->schema_registry_cert;
        conf->key = cfg->schema_registry_key;
        conf->timeout_ms = (long)cfg->schema_registry_timeout_ms;
}

cf_err_t cf_registry_client_for_tool(const char *config_file, const char *url,
                                     cf_registry *reg, cf_registry_client **cp,
                                     char *errstr, size_t errstr_size)
{
        cf_config cfg;
        cf_registry_client_conf rcc;
        cf_err_t err = CF_OK;
        *cp = NULL;
        cf_config_init(&cfg);
        if (config_file)
                err =
                    cf_config_load_file(&cfg, config_file, errstr, errstr_size);
        if (!err && url)
                err = cf_config_set(&cfg, "schema.registry.url", url, errstr,
                                    errstr_size);
        if (!err)
                err = cf_config_validate(&cfg, errstr, errstr_size);
        if (!err && *cfg.schema_registry_url) {
                cf_registry_client_conf_from(&rcc, &cfg);
                err = cf_registry_client_new(&rcc, cp, errstr, errstr_size);
                if (!err)
                        err = cf_registry_client_attach(*cp, reg, &cfg, false,
                                                        errstr, errstr_size);
        }
        cf_config_destroy(&cfg);
        return err;
}
