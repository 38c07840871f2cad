/*
 * cmd_registry.c: `chargeflow registry`, a schema registry for the demo and
 * the tests: the subset of the Confluent Schema Registry REST API that
 * chargeflow's client and common consumers (confluent-kafka's
 * SchemaRegistryClient) use, on libmicrohttpd.
 *
 * Like the reference implementation it keeps its state in a compacted
 * Kafka topic (`_schemas`, created compacted at start if missing) and
 * rebuilds it at start by reading that topic from the beginning. Records:
 *   key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}
 *       value {"subject":S,"version":V,"id":ID,"schema":TEXT,"deleted":false}
 *   key {"keytype":"CONFIG","subject":S or null,"magic":0}
 *       value {"compatibilityLevel":LEVEL}
 * A write is acknowledged to the HTTP client only once the broker has it.
 * One process writes the topic (no leader election).
 *
 * Compatibility (BACKWARD by default; NONE, FORWARD, FULL and the
 * _TRANSITIVE variants) follows Avro schema resolution: see compat().
 */
#include <avro.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "httpd.h"
#include "kafka.h"
#include "log.h"

static volatile sig_atomic_t reg_stop;

static void on_signal(int sig)
{
        (void)sig;
        reg_stop = 1;
}

typedef struct sr_schema {
        int32_t id;
        char *text;  /* as registered */
        char *canon; /* compact JSON, sorted keys: identity */
} sr_schema;

typedef struct sr_subject {
        char *name;
        int32_t *ids; /* version v at [v - 1] */
        int n;
        char *compat; /* NULL: the global level */
} sr_subject;

typedef struct sr {
        sr_schema *schemas;
        size_t n_schemas;
        sr_subject *subs;
        size_t n_subs;
        char *compat;
        int32_t next_id;
        rd_kafka_t *producer;
        const char *topic;
        const char *auth; /* "user:password" or NULL */
        volatile int dr_err;
        volatile int dr_done;
} sr;

static const char *const levels[] = { "NONE",
                                      "BACKWARD",
                                      "BACKWARD_TRANSITIVE",
                                      "FORWARD",
                                      "FORWARD_TRANSITIVE",
                                      "FULL",
                                      "FULL_TRANSITIVE",
                                      NULL };

static bool level_ok(const char *l)
{
        for (int i = 0; levels[i]; i++)
                if (!strcmp(l, levels[i]))
                        return true;
        return false;
}

/* ---- compatibility ------------------------------------------------------ */

/* Collects the named types of j into names (full name and short name). */
static void collect_names(json_t *j, const char *ns, json_t *names)
{
        if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v) collect_names(v, ns, names);
                return;
        }
        if (!json_is_object(j))
                return;
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *nns = json_string_value(json_object_get(j, "namespace"));
        char nsbuf[512];
        if (!nns)
                nns = ns;
        if (name && type &&
            (!strcmp(type, "record") || !strcmp(type, "enum") ||
             !strcmp(type, "fixed"))) {
                const char *dot = strrchr(name, '.');
                char full[1100];
                if (dot)
                        snprintf(full, sizeof(full), "%s", name);
                else if (nns && *nns)
                        snprintf(full, sizeof(full), "%s.%s", nns, name);
                else
                        snprintf(full, sizeof(full), "%s", name);
                json_object_set(names, full, j);
                json_object_set(names, dot ? dot + 1 : name, j);
                if (dot) {
                        snprintf(nsbuf, sizeof(nsbuf), "%.*s",
                                 (int)(dot - name), name);
                        nns = nsbuf;
                }
        }
        json_t *fields = json_object_get(j, "fields");
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f)
            collect_names(json_object_get(f, "type"), nns, names);
        collect_names(json_object_get(j, "items"), nns, names);
        collect_names(json_object_get(j, "values"), nns, names);
        if (json_is_array(json_object_get(j, "type")) ||
            json_is_object(json_object_get(j, "type")))
                collect_names(json_object_get(j, "type"), nns, names);
}

/* The schema a type reference names, or j itself. */
static json_t *deref(json_t *j, json_t *names)
{
        if (json_is_string(j)) {
                json_t *d = json_object_get(names, json_string_value(j));
                if (!d) {
                        const char *dot = strrchr(json_string_value(j), '.');
                        if (dot)
                                d = json_object_get(names, dot + 1);
                }
                if (d)
                        return d;
        }
        return j;
}

/* Primitive or complex type name of j. */
static const char *kind(json_t *j)
{
        if (json_is_string(j))
                return json_string_value(j);
        if (json_is_array(j))
                return "union";
        return json_string_value(json_object_get(j, "type"));
}

static const char *short_name(json_t *j)
{
        const char *n = json_string_value(json_object_get(j, "name"));
        const char *dot = n ? strrchr(n, '.') : NULL;
        return dot ? dot + 1 : n ? n : "";
}

/*
 * Avro schema resolution: can data written with w be read with r? Sets why
 * on failure. Rules: equal primitives, the promotions int->long/float/
 * double, long->float/double, float->double, string<->bytes; records by
 * name, each reader field read from the writer's field of that name or, if
 * absent, given a default; enums by name, each writer symbol known to the
 * reader or a reader default; arrays and maps by items/values; fixed by
 * name and size; a writer union when every branch resolves; a reader union
 * when some branch does.
 */
static bool compat(json_t *w, json_t *r, json_t *wn, json_t *rn, int depth,
                   char *why, size_t why_size)
{
        if (depth > 64)
                return true; /* recursive types: assumed to hold */
        w = deref(w, wn);
        r = deref(r, rn);
        const char *wk = kind(w), *rk = kind(r);
        if (!wk || !rk) {
                snprintf(why, why_size, "unknown type");
                return false;
        }
        if (!strcmp(wk, "union")) {
                size_t i;
                json_t *b;
                json_array_foreach(w, i,
                                   b) if (!compat(b, r, wn, rn, depth + 1, why,
                                                  why_size)) return false;
                return true;
        }
        if (!strcmp(rk, "union")) {
                size_t i;
                json_t *b;
                json_array_foreach(r, i,
                                   b) if (compat(w, b, wn, rn, depth + 1, why,
                                                 why_size)) return true;
                snprintf(why, why_size,
                         "no branch of the reader's union "
                         "takes the writer's %s",
                         wk);
                return false;
        }
        static const char *const promo[][2] = {
                { "int", "long" },     { "int", "float" },
                { "int", "double" },   { "long", "float" },
                { "long", "double" },  { "float", "double" },
                { "string", "bytes" }, { "bytes", "string" },
        };
        if (strcmp(wk, rk)) {
                for (size_t i = 0; i < sizeof(promo) / sizeof(promo[0]); i++)
                        if (!strcmp(wk, promo[i][0]) &&
                            !strcmp(rk, promo[i][1]))
                                return true;
                snprintf(why, why_size, "writer type %s cannot be read as %s",
                         wk, rk);
                return false;
        }
        if (!strcmp(wk, "array"))
                return compat(json_object_get(w, "items"),
                              json_object_get(r, "items"), wn, rn, depth + 1,
                              why, why_size);
        if (!strcmp(wk, "map"))
                return compat(json_object_get(w, "values"),
                              json_object_get(r, "values"), wn, rn, depth + 1,
                              why, why_size);
        if (!strcmp(wk, "fixed")) {
                if (strcmp(short_name(w), short_name(r)) ||
                    !json_equal(json_object_get(w, "size"),
                                json_object_get(r, "size"))) {
                        snprintf(why, why_size, "fixed %s differs",
                                 short_name(r));
                        return false;
                }
                return true;
        }
        if (!strcmp(wk, "enum")) {
                json_t *rs = json_object_get(r, "symbols");
                size_t i, k;
                json_t *s, *t;
                if (strcmp(short_name(w), short_name(r))) {
                        snprintf(why, why_size, "enum %s is not %s",
                                 short_name(w), short_name(r));
                        return false;
                }
                if (json_object_get(r, "default"))
                        return true;
                json_array_foreach(json_object_get(w, "symbols"), i, s)
                {
                        bool found = false;
                        json_array_foreach(rs, k, t) if (json_equal(s, t))
                            found = true;
                        if (!found) {
                                snprintf(why, why_size,
                                         "enum %s: the reader lacks symbol %s "
                                         "and has no default",
                                         short_name(r), json_string_value(s));
                                return false;
                        }
                }
                return true;
        }
        if (!strcmp(wk, "record")) {
                size_t i, k;
                json_t *rf, *wf;
                if (strcmp(short_name(w), short_name(r))) {
                        snprintf(why, why_size, "record %s is not %s",
                                 short_name(w), short_name(r));
                        return false;
                }
                json_array_foreach(json_object_get(r, "fields"), i, rf)
                {
                        json_t *match = NULL;
                        json_array_foreach(
                            json_object_get(w, "fields"), k,
                            wf) if (json_equal(json_object_get(wf, "name"),
                                               json_object_get(rf, "name")))
                            match = wf;
                        if (match) {
                                if (!compat(json_object_get(match, "type"),
                                            json_object_get(rf, "type"), wn, rn,
                                            depth + 1, why, why_size))
                                        return false;
                        } else if (!json_object_get(rf, "default")) {
                                snprintf(why, why_size,
                                         "record %s: reader field %s is not "
                                         "in the writer and has no default",
                                         short_name(r),
                                         json_string_value(
                                             json_object_get(rf, "name")));
                                return false;
                        }
                }
                return true;
        }
        return true; /* equal primitives */
}

/* Can data of schema text w be read with schema text r? */
static bool compat_text(const char *w, const char *r, char *why,
                        size_t why_size)
{
        json_t *wj = json_loads(w, JSON_DECODE_ANY, NULL);
        json_t *rj = json_loads(r, JSON_DECODE_ANY, NULL);
        json_t *wn = json_object(), *rn = json_object();
        collect_names(wj, "", wn);
        collect_names(rj, "", rn);
        bool ok = wj && rj && compat(wj, rj, wn, rn, 0, why, why_size);
        json_decref(wj);
        json_decref(rj);
        json_decref(wn);
        json_decref(rn);
        return ok;
}

/* ---- state ---------------------------------------------------------------
 */

static sr_subject *find_subject(sr *r, const char *name, bool create)
{
        for (size_t i = 0; i < r->n_subs; i++)
                if (!strcmp(r->subs[i].name, name))
                        return &r->subs[i];
        if (!create)
                return NULL;
        r->subs = cf_realloc(r->subs, (r->n_subs + 1) * sizeof(*r->subs));
        sr_subject *s = &r->subs[r->n_subs++];
        memset(s, 0, sizeof(*s));
        s->name = cf_strdup(name);
        return s;
}

static sr_schema *schema_by_id(sr *r, int32_t id)
{
        for (size_t i = 0; i < r->n_schemas; i++)
                if (r->schemas[i].id == id)
                        return &r->schemas[i];
        return NULL;
}

static sr_schema *schema_by_canon(sr *r, const char *canon)
{
        for (size_t i = 0; i < r->n_schemas; i++)
                if (!strcmp(r->schemas[i].canon, canon))
                        return &r->schemas[i];
        return NULL;
}

/* Compact JSON with sorted keys, or NULL when text is not JSON. */
static char *canon_of(const char *text)
{
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!j)
                return NULL;
        char *c =
            json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        json_decref(j);
        return c;
}

static void add_schema(sr *r, int32_t id, const char *text)
{
        if (schema_by_id(r, id))
                return;
        char *canon = canon_of(text);
        if (!canon)
                return;
        r->schemas =
            cf_realloc(r->schemas, (r->n_schemas + 1) * sizeof(*r->schemas));
        r->schemas[r->n_schemas++] =
            (sr_schema){ id, cf_strdup(text), cf_strdup(canon) };
        free(canon);
        if (id >= r->next_id)
                r->next_id = id + 1;
}

static void set_version(sr *r, const char *subject, int version, int32_t id)
{
        sr_subject *s = find_subject(r, subject, true);
        if (version > s->n) {
                s->ids = cf_realloc(s->ids, (size_t)version * sizeof(int32_t));
                for (int v = s->n; v < version; v++)
                        s->ids[v] = -1;
                s->n = version;
        }
        s->ids[version - 1] = id;
}

static void set_compat(sr *r, const char *subject, const char *level)
{
        char **f =
            subject ? &find_subject(r, subject, true)->compat : &r->compat;
        free(*f);
        *f = cf_strdup(level);
}

/* Applies one record of the _schemas topic (replay and writes alike). */
static void apply(sr *r, json_t *k, json_t *v)
{
        const char *kt = json_string_value(json_object_get(k, "keytype"));
        if (!kt || !v)
                return;
        if (!strcmp(kt, "SCHEMA")) {
                const char *subject =
                    json_string_value(json_object_get(v, "subject"));
                const char *text =
                    json_string_value(json_object_get(v, "schema"));
                json_int_t version =
                    json_integer_value(json_object_get(v, "version"));
                json_int_t id = json_integer_value(json_object_get(v, "id"));
                if (!subject || !text || version < 1 || id < 1)
                        return;
                add_schema(r, (int32_t)id, text);
                set_version(r, subject, (int)version, (int32_t)id);
        } else if (!strcmp(kt, "CONFIG")) {
                const char *level =
                    json_string_value(json_object_get(v, "compatibilityLevel"));
                if (level && level_ok(level))
                        set_compat(
                            r, json_string_value(json_object_get(k, "subject")),
                            level);
        }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        sr *r = opaque;
        (void)rk;
        r->dr_err = m->err;
        r->dr_done = 1;
}

/* Writes one record to the topic and applies it once the broker has it. */
static bool persist(sr *r, json_t *k, json_t *v, char *why, size_t why_size)
{
        char *ks = json_dumps(k, JSON_COMPACT);
        char *vs = json_dumps(v, JSON_COMPACT);
        r->dr_done = 0;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_KEY(ks, strlen(ks)), RD_KAFKA_V_VALUE(vs, strlen(vs)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        free(ks);
        free(vs);
        if (!err) {
                rd_kafka_flush(r->producer, 10000);
                err = r->dr_done ? r->dr_err : RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        if (err) {
                snprintf(why, why_size, "store: %s: %s", r->topic,
                         rd_kafka_err2str(err));
                return false;
        }
        apply(r, k, v);
        return true;
}

/* ---- HTTP ----------------------------------------------------------------
 */

static const char *reply(cf_buf *out, int *status, int code, json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        cf_buf_puts(out, s);
        free(s);
        json_decref(j);
        *status = code;
        return "application/vnd.schemaregistry.v1+json";
}

static const char *error(cf_buf *out, int *status, int code, int error_code,
                         const char *msg)
{
        return reply(
            out, status, code,
            json_pack("{s:i,s:s}", "error_code", error_code, "message", msg));
}

static json_t *version_json(const sr_subject *s, int v, sr *r)
{
        sr_schema *sc = schema_by_id(r, s->ids[v - 1]);
        return json_pack("{s:s,s:i,s:i,s:s}", "subject", s->name, "version", v,
                         "id", (int)sc->id, "schema", sc->text);
}

static const char *level_of(sr *r, const sr_subject *s)
{
        return s && s->compat ? s->compat : r->compat;
}

/* May text be registered under s? why says which version fails. */
static bool compatible(sr *r, const sr_subject *s, const char *text, char *why,
                       size_t why_size)
{
        const char *level = level_of(r, s);
        if (!s || !s->n || !strcmp(level, "NONE"))
                return true;
        bool back = strncmp(level, "FORWARD", 7) != 0;
        bool fwd = strncmp(level, "BACKWARD", 8) != 0;
        bool all = strstr(level, "TRANSITIVE") != NULL;
        for (int v = s->n; v >= 1; v--) {
                sr_schema *old = schema_by_id(r, s->ids[v - 1]);
                char w[400];
                if (!old)
                        continue;
                if (back && !compat_text(old->text, text, w, sizeof(w))) {
                        snprintf(why, why_size,
                                 "%s: the new schema cannot read version %d: "
                                 "%s",
                                 level, v, w);
                        return false;
                }
                if (fwd && !compat_text(text, old->text, w, sizeof(w))) {
                        snprintf(why, why_size,
                                 "%s: version %d cannot read the new schema: "
                                 "%s",
                                 level, v, w);
                        return false;
                }
                if (!all)
                        break;
        }
        return true;
}

/* Parses the "schema" of a request body; NULL with an error reply made. */
static const char *body_schema(json_t *body, cf_buf *out, int *status,
                               const char **type)
{
        const char *text = json_string_value(json_object_get(body, "schema"));
        const char *st = json_string_value(json_object_get(body, "schemaType"));
        avro_schema_t s;
        if (!text) {
                *type = error(out, status, 422, 42201,
                              "request body needs a \"schema\" string");
                return NULL;
        }
        if (st && strcmp(st, "AVRO")) {
                *type = error(out, status, 422, 42201,
                              "only AVRO schemas are supported");
                return NULL;
        }
        if (avro_schema_from_json_length(text, strlen(text), &s)) {
                char msg[600];
                snprintf(msg, sizeof(msg), "Invalid schema: %s",
                         avro_strerror());
                *type = error(out, status, 422, 42201, msg);
                return NULL;
        }
        avro_schema_decref(s);
        return text;
}

static const char *handle(void *opaque, const char *method, const char *path,
                          struct MHD_Connection *conn, const char *body_text,
                          size_t body_len, int *status, cf_buf *out)
{
        sr *r = opaque;
        char subject[512], rest[512];
        const char *type = NULL;
        json_t *body = body_len ? json_loads(body_text, 0, NULL) : NULL;
        bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"),
             put = !strcmp(method, "PUT");
        subject[0] = rest[0] = '\0';
        if (r->auth && !cf_httpd_basic_auth_ok(conn, r->auth)) {
                type = error(out, status, 401, 40101, "Unauthorized");
                goto done;
        }
        if (body_len && !body) {
                type = error(out, status, 400, 400, "body is not JSON");
                goto done;
        }
        int id;
        if (get && (!strcmp(path, "/") || !*path)) {
                type = reply(out, status, 200, json_object());
        } else if (get && !strcmp(path, "/subjects")) {
                json_t *a = json_array();
                for (size_t i = 0; i < r->n_subs; i++)
                        if (r->subs[i].n)
                                json_array_append_new(
                                    a, json_string(r->subs[i].name));
                type = reply(out, status, 200, a);
        } else if (get && sscanf(path, "/schemas/ids/%d", &id) == 1) {
                sr_schema *sc = schema_by_id(r, id);
                type = sc ? reply(out, status, 200,
                                  json_pack("{s:s}", "schema", sc->text))
                          : error(out, status, 404, 40403, "Schema not found");
        } else if ((get || put) && !strcmp(path, "/config")) {
                const char *l =
                    json_string_value(json_object_get(body, "compatibility"));
                char why[256];
                if (put && (!l || !level_ok(l))) {
                        type = error(out, status, 422, 42203,
                                     "Invalid compatibility level");
                } else if (put &&
                           !persist(r,
                                    json_pack("{s:s,s:n,s:i}", "keytype",
                                              "CONFIG", "subject", "magic", 0),
                                    json_pack("{s:s}", "compatibilityLevel", l),
                                    why, sizeof(why))) {
                        type = error(out, status, 500, 50001, why);
                } else {
                        type =
                            reply(out, status, 200,
                                  put ? json_pack("{s:s}", "compatibility", l)
                                      : json_pack("{s:s}", "compatibilityLevel",
                                                  r->compat));
                }
        } else if ((get || put) &&
                   sscanf(path, "/config/%511[^/]", subject) == 1) {
                sr_subject *s = find_subject(r, subject, false);
                const char *l =
                    json_string_value(json_object_get(body, "compatibility"));
                const char *dg = cf_httpd_arg(conn, "defaultToGlobal");
                char why[256];
                if (put && (!l || !level_ok(l))) {
                        type = error(out, status, 422, 42203,
                                     "Invalid compatibility level");
                } else if (put) {
                        if (!persist(
                                r,
                                json_pack("{s:s,s:s,s:i}", "keytype", "CONFIG",
                                          "subject", subject, "magic", 0),
                                json_pack("{s:s}", "compatibilityLevel", l),
                                why, sizeof(why)))
                                type = error(out, status, 500, 50001, why);
                        else
                                type = reply(
                                    out, status, 200,
                                    json_pack("{s:s}", "compatibility", l));
                } else if (s && s->compat) {
                        type = reply(out, status, 200,
                                     json_pack("{s:s}", "compatibilityLevel",
                                               s->compat));
                } else if (dg && !strcmp(dg, "true")) {
                        type = reply(out, status, 200,
                                     json_pack("{s:s}", "compatibilityLevel",
                                               r->compat));
                } else {
                        type = error(out, status, 404, 40408,
                                     "Subject does not have subject-level "
                                     "compatibility configured");
                }
        } else if (sscanf(path,
                          "/compatibility/subjects/%511[^/]/versions/%511s",
                          subject, rest) == 2 &&
                   post) {
                sr_subject *s = find_subject(r, subject, false);
                const char *text = body_schema(body, out, status, &type);
                char why[600];
                if (text)
                        type = reply(out, status, 200,
                                     json_pack("{s:b}", "is_compatible",
                                               compatible(r, s, text, why,
                                                          sizeof(why))));
        } else if (sscanf(path, "/subjects/%511[^/]/versions/%511s", subject,
                          rest) == 2 &&
                   get) {
                sr_subject *s = find_subject(r, subject, false);
                int v = -1;
                if (s && s->n && !strcmp(rest, "latest"))
                        v = s->n;
                else if (s)
                        v = atoi(rest);
                if (!s || !s->n)
                        type =
                            error(out, status, 404, 40401, "Subject not found");
                else if (v < 1 || v > s->n || s->ids[v - 1] < 0)
                        type =
                            error(out, status, 404, 40402, "Version not found");
                else
                        type = reply(out, status, 200, version_json(s, v, r));
        } else if (sscanf(path, "/subjects/%511[^/]/version%511s", subject,
                          rest) == 2 &&
                   !strcmp(rest, "s")) {
                sr_subject *s = find_subject(r, subject, false);
                if (get) {
                        json_t *a = json_array();
                        for (int v = 1; s && v <= s->n; v++)
                                json_array_append_new(a, json_integer(v));
                        type = s && s->n ? reply(out, status, 200, a)
                                         : (json_decref(a),
                                            error(out, status, 404, 40401,
                                                  "Subject not found"));
                } else if (post) {
                        const char *text =
                            body_schema(body, out, status, &type);
                        char why[600], *canon = text ? canon_of(text) : NULL;
                        if (!text)
                                goto done;
                        sr_schema *same = schema_by_canon(r, canon);
                        free(canon);
                        for (int v = 1; same && s && v <= s->n; v++)
                                if (s->ids[v - 1] == same->id) {
                                        type = reply(out, status, 200,
                                                     json_pack("{s:i}", "id",
                                                               (int)same->id));
                                        goto done;
                                }
                        if (!compatible(r, s, text, why, sizeof(why))) {
                                char msg[1400];
                                snprintf(msg, sizeof(msg),
                                         "Schema being registered is "
                                         "incompatible with an earlier schema "
                                         "for subject \"%s\"; %s",
                                         subject, why);
                                type = error(out, status, 409, 409, msg);
                                goto done;
                        }
                        int32_t nid = same ? same->id : r->next_id;
                        int version = (s ? s->n : 0) + 1;
                        if (!persist(r,
                                     json_pack("{s:s,s:s,s:i,s:i}", "keytype",
                                               "SCHEMA", "subject", subject,
                                               "version", version, "magic", 1),
                                     json_pack("{s:s,s:i,s:i,s:s,s:b}",
                                               "subject", subject, "version",
                                               version, "id", (int)nid,
                                               "schema", text, "deleted", 0),
                                     why, sizeof(why)))
                                type = error(out, status, 500, 50001, why);
                        else
                                type =
                                    reply(out, status, 200,
                                          json_pack("{s:i}", "id", (int)nid));
                } else {
                        type =
                            error(out, status, 405, 405, "Method not allowed");
                }
        } else if (post && sscanf(path, "/subjects/%511[^/]%511s", subject,
                                  rest) == 1) {
                sr_subject *s = find_subject(r, subject, false);
                const char *text = body_schema(body, out, status, &type);
                if (!text)
                        goto done;
                if (!s || !s->n) {
                        type =
                            error(out, status, 404, 40401, "Subject not found");
                        goto done;
                }
                char *canon = canon_of(text);
                sr_schema *same = schema_by_canon(r, canon);
                free(canon);
                for (int v = s->n; same && v >= 1; v--)
                        if (s->ids[v - 1] == same->id) {
                                type = reply(out, status, 200,
                                             version_json(s, v, r));
                                goto done;
                        }
                type = error(out, status, 404, 40403, "Schema not found");
        } else {
                type = error(out, status, 404, 404, "Not found");
        }
done:
        json_decref(body);
        if (!type)
                type = error(out, status, 500, 500, "internal error");
        return type;
}

/* ---- start ---------------------------------------------------------------
 */

/* Whether the cluster has topic (a full metadata request: asking for the
 * topic alone could auto-create it, uncompacted). */
static int topic_exists(rd_kafka_t *rk, const char *topic, char *errstr,
                        size_t errstr_size)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (e) {
                snprintf(errstr, errstr_size, "metadata: %s",
                         rd_kafka_err2str(e));
                return -1;
        }
        int found = 0;
        for (int i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, topic))
                        found = 1;
        rd_kafka_metadata_destroy(md);
        return found;
}

/* Creates the topic compacted (1 partition) unless it exists. */
static bool create_topic(rd_kafka_t *rk, const char *topic, int rf,
                         char *errstr, size_t errstr_size)
{
        int exists = topic_exists(rk, topic, errstr, errstr_size);
        if (exists)
                return exists > 0;
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(topic, 1, rf, errstr, errstr_size);
        if (!nt)
                return false;
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
        bool ok = false;
        if (!ev) {
                snprintf(errstr, errstr_size, "create %s: timed out", topic);
        } else if (rd_kafka_event_error(ev)) {
                snprintf(errstr, errstr_size, "create %s: %s", topic,
                         rd_kafka_event_error_string(ev));
        } else {
                size_t n;
                const rd_kafka_topic_result_t **res =
                    rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &n);
                rd_kafka_resp_err_t e = n ? rd_kafka_topic_result_error(res[0])
                                          : RD_KAFKA_RESP_ERR_NO_ERROR;
                ok = !e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
                if (!ok)
                        snprintf(errstr, errstr_size, "create %s: %s", topic,
                                 rd_kafka_err2str(e));
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return ok;
}

/* Reads the topic from the beginning to its end, applying each record. */
static bool replay(sr *r, const char *bootstrap, char *errstr,
                   size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, errstr_size);
        if (!conf ||
            cf_kafka_conf_set(conf, "group.id", "chargeflow-registry", errstr,
                              errstr_size) ||
            cf_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size))
                return false;
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                return false;
        int64_t lo = 0, hi = 0;
        bool ok = false;
        size_t n = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, r->topic, 0, &lo, &hi, 10000);
        if (e) {
                snprintf(errstr, errstr_size, "%s: %s", r->topic,
                         rd_kafka_err2str(e));
                goto out;
        }
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, r->topic, 0)->offset = lo;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        int idle = 0;
        int64_t next = lo;
        while (next < hi && idle < 300 && !reg_stop) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (!m->err) {
                        json_t *k = json_loadb(m->key, m->key_len, 0, NULL);
                        json_t *v =
                            m->payload ? json_loadb(m->payload, m->len, 0, NULL)
                                       : NULL;
                        apply(r, k, v);
                        json_decref(k);
                        json_decref(v);
                        next = m->offset + 1;
                        n++;
                }
                rd_kafka_message_destroy(m);
        }
        ok = next >= hi;
        if (!ok)
                snprintf(errstr, errstr_size,
                         "%s: not read to its end within 30 s", r->topic);
        else
                cf_logf(CF_LOG_INFO, "registry", NULL,
                        "%zu records of %s read: %zu schemas, %zu subjects", n,
                        r->topic, r->n_schemas, r->n_subs);
out:
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return ok;
}

/* The whole file as a string, or NULL. */
static char *slurp(const char *path)
{
        FILE *f = fopen(path, "r");
        cf_buf b;
        char buf[4096];
        size_t n;
        if (!f)
                return NULL;
        cf_buf_init(&b);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                cf_buf_put(&b, buf, n);
        fclose(f);
        cf_buf_putc(&b, '\0');
        return (char *)b.p;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: chargeflow registry [--bootstrap B | "
                "--bootstrap-file F] [--listen HOST:PORT]\n"
                "                           [--url-file F] [--topic T] "
                "[--basic-auth USER:PASS]\n"
                "                           [--tls-cert F --tls-key F]\n\n"
                "Serves the Confluent Schema Registry REST API subset "
                "chargeflow uses, keeping\nschemas in a compacted Kafka "
                "topic, until SIGINT or SIGTERM. Prints its URL as\nthe "
                "first line on stdout.\n\n"
                "  --bootstrap B       bootstrap servers (default "
                "127.0.0.1:9092)\n"
                "  --bootstrap-file F  read the bootstrap servers from F's "
                "first line\n"
                "  --listen HOST:PORT  address to serve (default "
                "127.0.0.1:8081; port 0: any free)\n"
                "  --url-file F        also write the URL to F\n"
                "  --topic T           the schemas topic (default _schemas)\n"
                "  --replication-factor N  of the schemas topic when created "
                "(default 1)\n"
                "  --compatibility L   global compatibility level when none "
                "is stored (BACKWARD)\n"
                "  --basic-auth U:P    require HTTP basic authentication\n"
                "  --tls-cert F, --tls-key F  serve HTTPS with this "
                "certificate and key (PEM)\n");
}

int cf_cmd_registry(int argc, char **argv)
{
        static const struct option opts[] = {
                { "bootstrap", required_argument, NULL, 'b' },
                { "bootstrap-file", required_argument, NULL, 'B' },
                { "listen", required_argument, NULL, 'l' },
                { "url-file", required_argument, NULL, 'u' },
                { "topic", required_argument, NULL, 't' },
                { "replication-factor", required_argument, NULL, 'r' },
                { "compatibility", required_argument, NULL, 'c' },
                { "basic-auth", required_argument, NULL, 'a' },
                { "tls-cert", required_argument, NULL, 'C' },
                { "tls-key", required_argument, NULL, 'K' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char bootstrap[1024] = "127.0.0.1:9092", errstr[512];
        const char *listen = "127.0.0.1:8081", *url_file = NULL;
        const char *cert_file = NULL, *key_file = NULL;
        char *cert = NULL, *key = NULL;
        int64_t rf = 1;
        int c, rc = 1;
        sr r;
        memset(&r, 0, sizeof(r));
        r.topic = "_schemas";
        r.next_id = 1;
        r.compat = cf_strdup("BACKWARD");
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        snprintf(bootstrap, sizeof(bootstrap), "%s", optarg);
                        break;
                case 'B':
                        if (!cf_read_bootstrap_file(optarg, bootstrap,
                                                    sizeof(bootstrap)))
                                return 2;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 'u':
                        url_file = optarg;
                        break;
                case 't':
                        r.topic = optarg;
                        break;
                case 'r':
                        if (!cf_parse_i64(optarg, 1, 32, &rf)) {
                                fprintf(stderr, "chargeflow registry: "
                                                "--replication-factor: "
                                                "expected 1..32\n");
                                return 2;
                        }
                        break;
                case 'c':
                        if (!level_ok(optarg)) {
                                fprintf(stderr,
                                        "chargeflow registry: --compatibility:"
                                        " '%s' is not a level\n",
                                        optarg);
                                return 2;
                        }
                        free(r.compat);
                        r.compat = cf_strdup(optarg);
                        break;
                case 'a':
                        if (!strchr(optarg, ':')) {
                                fprintf(stderr, "chargeflow registry: "
                                                "--basic-auth: expected "
                                                "USER:PASS\n");
                                return 2;
                        }
                        r.auth = optarg;
                        break;
                case 'C':
                        cert_file = optarg;
                        break;
                case 'K':
                        key_file = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!cert_file != !key_file) {
                fprintf(stderr, "chargeflow registry: --tls-cert and "
                                "--tls-key go together\n");
                return 2;
        }
        if (cert_file &&
            (!(cert = slurp(cert_file)) || !(key = slurp(key_file)))) {
                fprintf(stderr, "chargeflow registry: cannot read %s\n",
                        cert ? key_file : cert_file);
                free(cert);
                return 2;
        }
        cf_log_set_component("registry");
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        cf_httpd *h = NULL;
        rd_kafka_conf_t *pc =
            cf_kafka_conf_new(bootstrap, NULL, 0, errstr, sizeof(errstr));
        if (!pc ||
            cf_kafka_conf_set(pc, "enable.idempotence", "true", errstr,
                              sizeof(errstr)) ||
            cf_kafka_conf_set(pc, "linger.ms", "0", errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "%s", errstr);
                goto done;
        }
        rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
        rd_kafka_conf_set_opaque(pc, &r);
        r.producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
        if (!r.producer) {
                cf_log(CF_LOG_ERROR, "%s", errstr);
                goto done;
        }
        if (!create_topic(r.producer, r.topic, (int)rf, errstr,
                          sizeof(errstr)) ||
            !replay(&r, bootstrap, errstr, sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "%s", errstr);
                goto done;
        }
        int port;
        if (cf_httpd_start(listen, handle, &r, cert, key, &port, &h, errstr,
                           sizeof(errstr))) {
                cf_log(CF_LOG_ERROR, "--listen %s", errstr);
                rc = 2;
                goto done;
        }
        char url[300];
        {
                char host[256];
                const char *colon = strrchr(listen, ':');
                snprintf(host, sizeof(host), "%.*s", (int)(colon - listen),
                         listen);
                snprintf(url, sizeof(url), "%s://%s:%d",
                         cert ? "https" : "http", host, port);
        }
        printf("%s\n", url);
        fflush(stdout);
        if (url_file) {
                char tmp[1024];
                snprintf(tmp, sizeof(tmp), "%s.tmp", url_file);
                FILE *f = fopen(tmp, "w");
                if (!f || fprintf(f, "%s\n", url) < 0 || fclose(f) ||
                    rename(tmp, url_file)) {
                        cf_log(CF_LOG_ERROR, "--url-file %s: cannot write",
                               url_file);
                        goto done;
                }
        }
        cf_log(CF_LOG_INFO, "serving %s (schemas in %s at %s)", url, r.topic,
               bootstrap);
        while (!reg_stop)
                pause();
        rc = 0;
done:
        cf_httpd_stop(h);
        if (r.producer) {
                rd_kafka_flush(r.producer, 5000);
                rd_kafka_destroy(r.producer);
        }
        for (size_t i = 0; i < r.n_schemas; i++) {
                free(r.schemas[i].text);
                free(r.schemas[i].canon);
        }
        for (size_t i = 0; i < r.n_subs; i++) {
                free(r.subs[i].name);
                free(r.subs[i].ids);
                free(r.subs[i].compat);
        }
        free(r.schemas);
        free(r.subs);
        free(r.compat);
        free(cert);
        free(key);
        return rc;
}
