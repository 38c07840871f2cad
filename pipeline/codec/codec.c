/*
 * codec.c: schema registry and Avro codec (see codec.h).
 *
 * Avro C parses and validates every schema. For each (writer schema, reader
 * record type) pair the registry compiles a resolution tree of cf_rd nodes
 * once; decoding walks that tree over the bytes and writes straight into the
 * binding's struct offsets, so the hot path does no schema lookups, no
 * generic values and no allocation outside the caller's arena. Encoding and
 * JSON output walk the identity tree of the reader schema.
 *
 * Field defaults (which Avro C's API does not expose) come from the reader
 * schema's JSON, parsed with jansson.
 */
#include "codec.h"

#include <avro.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writer-side type of a node. */
enum {
        W_NULL,
        W_BOOL,
        W_INT,
        W_LONG,
        W_FLOAT,
        W_DOUBLE,
        W_STRING,
        W_BYTES,
        W_FIXED,
        W_ENUM,
        W_RECORD,
        W_ARRAY,
        W_MAP,
        W_UNION,
        W_ERROR, /* union branch the reader cannot take: fails at run time */
};

#define RK_SKIP      0xff /* reader kind: value is read and dropped */
#define CF_MAX_DEPTH 32

struct cf_plan;

/* How to read one writer value into one reader slot. */
typedef struct cf_rd {
        uint8_t wt;           /* W_* */
        uint8_t rk;           /* cf_kind of the reader slot, or RK_SKIP */
        uint8_t ropt;         /* reader slot is optional (nullable storage) */
        uint8_t err;          /* W_ERROR: the cf_err_t to return */
        uint32_t n;           /* union branches, enum symbols, fixed size */
        struct cf_rd *sub;    /* union: branches[n]; array, map: items[1] */
        struct cf_plan *plan; /* records */
        int32_t *emap;        /* enum: writer index -> reader index or -1 */
        const char **syms;    /* enum: writer symbols (for JSON) */
        uint32_t elem_size;   /* array: reader element size */
        uint32_t min_size;    /* fewest bytes a writer value can take */
} cf_rd;

enum { OP_READ, OP_DEFAULT };

/* A default value for a reader field missing from the writer. */
typedef struct cf_default {
        uint8_t is_null;
        int64_t i; /* bool, int, long, enum index */
        const char *s;
        size_t slen;
} cf_default;

typedef struct cf_op {
        uint8_t act;     /* OP_READ or OP_DEFAULT */
        uint8_t rk;      /* reader kind (OP_DEFAULT) */
        uint8_t ropt;    /* reader optional (OP_DEFAULT) */
        int32_t rfield;  /* reader field index or -1 (skipped) */
        uint32_t offset; /* reader field offset */
        uint32_t count_offset;
        cf_rd rd;         /* OP_READ */
        cf_default def;   /* OP_DEFAULT */
        const char *name; /* field name (JSON) */
} cf_op;

typedef struct cf_plan {
        const cf_bind_record *rb; /* NULL when the whole record is skipped */
        uint32_t n_ops;
        cf_op *ops;
} cf_plan;

typedef struct cf_schema_ent {
        int32_t id;
        cf_rtype t;
        avro_schema_t schema;
        cf_rd root;
} cf_schema_ent;

struct cf_registry {
        struct {
                avro_schema_t schema;
                const char *json;
                int32_t id;
                json_t *defaults;      /* "ns.Rec.field" -> default JSON */
                json_t *enum_defaults; /* "ns.Enum" -> default symbol */
                cf_rd root;            /* identity plan */
        } r[CF_RT__CNT];
        cf_schema_ent *ents; /* sorted by id */
        size_t n_ents;
        cf_arena arena; /* compiled plans */
        /* An external schema registry: asked once per unknown id. */
        cf_registry_resolve_fn *resolve;
        void *resolve_opaque;
};

/* Entry type of an id the resolver said it does not know (cached, so that
 * it is asked once). */
#define CF_RT_UNKNOWN CF_RT__CNT

/* Built-in schemas: file in schemas/, record type, fixed id. */
static const struct {
        const char *file;
        cf_rtype t;
        int32_t id;
} cf_builtin[] = {
        { "session_event.avsc", CF_RT_SESSION_EVENT, 1 },
        { "meter_reading.avsc", CF_RT_METER_READING, 2 },
        { "site.avsc", CF_RT_SITE, 3 },
        { "user.avsc", CF_RT_USER, 4 },
        { "charge_record.avsc", CF_RT_CHARGE_RECORD, 10 },
        { "statement.avsc", CF_RT_STATEMENT, 11 },
        { "rejected.avsc", CF_RT_REJECTED, 12 },
        { "billing_event.avsc", CF_RT_BILLING_EVENT, 8 },
};

/* Earlier versions of built-in schemas: writer schemas only, so that what
 * they wrote still decodes. Their ids are never reused. */
static const struct {
        const char *file;
        int32_t id;
} cf_builtin_old[] = {
        { "charge_record_v1.avsc", 5 },
        { "statement_v1.avsc", 6 },
        { "rejected_v1.avsc", 7 },
        { "rejected_v2.avsc", 9 },
};

struct cf_embedded_schema {
        const char *file;
        const char *json;
        size_t len;
};
extern const struct cf_embedded_schema cf_embedded_schemas[];

/* ---------------------------------------------------------------------- */
/* Schema compilation                                                      */

typedef struct cctx {
        cf_registry *reg;
        cf_rtype t; /* reader type being compiled against */
        char *errstr;
        size_t errstr_size;
        char path[256]; /* field path for messages */
} cctx;

__attribute__((format(printf, 3, 4))) static cf_err_t
cerr(cctx *c, cf_err_t err, const char *fmt, ...)
{
        va_list ap;
        char msg[256];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(c->errstr, c->errstr_size, "%s: %s%s%s", cf_rtype_name(c->t),
                 c->path, c->path[0] ? ": " : "", msg);
        return err;
}

static avro_schema_t deref(avro_schema_t s)
{
        while (s && avro_typeof(s) == AVRO_LINK)
                s = avro_schema_link_target(s);
        return s;
}

static const char *wtype_name(avro_schema_t s)
{
        return avro_schema_type_name(s);
}

/* Full name of a named schema, "ns.Name". */
static void full_name(avro_schema_t s, char *buf, size_t size)
{
        const char *ns = avro_schema_namespace(s);
        const char *n = avro_schema_name(s);
        if (ns && *ns && !strchr(n, '.'))
                snprintf(buf, size, "%s.%s", ns, n);
        else
                snprintf(buf, size, "%s", n);
}

/* Collects record field defaults and enum defaults from schema JSON. */
static void collect_defaults(json_t *j, const char *ns, json_t *fdefs,
                             json_t *edefs)
{
        if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v)
                    collect_defaults(v, ns, fdefs, edefs);
                return;
        }
        if (!json_is_object(j))
                return;
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *jns = json_string_value(json_object_get(j, "namespace"));
        char full[520] = "";
        char myns[256];
        snprintf(myns, sizeof(myns), "%s", ns);
        if (name && type &&
            (!strcmp(type, "record") || !strcmp(type, "enum") ||
             !strcmp(type, "fixed"))) {
                if (strchr(name, '.')) {
                        snprintf(full, sizeof(full), "%s", name);
                        const char *dot = strrchr(name, '.');
                        snprintf(myns, sizeof(myns), "%.*s", (int)(dot - name),
                                 name);
                } else {
                        if (jns)
                                snprintf(myns, sizeof(myns), "%s", jns);
                        if (myns[0])
                                snprintf(full, sizeof(full), "%s.%s", myns,
                                         name);
                        else
                                snprintf(full, sizeof(full), "%s", name);
                }
        }
        if (type && !strcmp(type, "enum") && full[0]) {
                json_t *d = json_object_get(j, "default");
                if (json_is_string(d))
                        json_object_set(edefs, full, d);
        }
        json_t *fields = json_object_get(j, "fields");
        if (type && !strcmp(type, "record") && json_is_array(fields)) {
                size_t i;
                json_t *f;
                json_array_foreach(fields, i, f)
                {
                        const char *fname =
                            json_string_value(json_object_get(f, "name"));
                        json_t *d = json_object_get(f, "default");
                        if (fname && d) {
                                char key[1100];
                                snprintf(key, sizeof(key), "%s.%s", full,
                                         fname);
                                json_object_set(fdefs, key, d);
                        }
                        collect_defaults(json_object_get(f, "type"), myns,
                                         fdefs, edefs);
                }
        }
        json_t *items = json_object_get(j, "items");
        if (items)
                collect_defaults(items, myns, fdefs, edefs);
        json_t *values = json_object_get(j, "values");
        if (values)
                collect_defaults(values, myns, fdefs, edefs);
        if (json_is_array(json_object_get(j, "type")) ||
            json_is_object(json_object_get(j, "type")))
                collect_defaults(json_object_get(j, "type"), myns, fdefs,
                                 edefs);
}

static cf_err_t compile_value(cctx *c, avro_schema_t w, avro_schema_t r,
                              const cf_bind_field *bf, cf_rd *out, int depth);

/* A node that reads and drops any writer value of schema w. */
static cf_err_t compile_skip(cctx *c, avro_schema_t w, cf_rd *out, int depth)
{
        cf_arena *a = &c->reg->arena;
        memset(out, 0, sizeof(*out));
        out->rk = RK_SKIP;
        w = deref(w);
        if (depth > CF_MAX_DEPTH)
                return cerr(c, CF_ERR_DEPTH, "schema nested too deeply");
        switch (avro_typeof(w)) {
        case AVRO_NULL:
                out->wt = W_NULL;
                break;
        case AVRO_BOOLEAN:
                out->wt = W_BOOL;
                break;
        case AVRO_INT32:
                out->wt = W_INT;
                break;
        case AVRO_INT64:
                out->wt = W_LONG;
                break;
        case AVRO_FLOAT:
                out->wt = W_FLOAT;
                break;
        case AVRO_DOUBLE:
                out->wt = W_DOUBLE;
                break;
        case AVRO_STRING:
                out->wt = W_STRING;
                break;
        case AVRO_BYTES:
                out->wt = W_BYTES;
                break;
        case AVRO_FIXED:
                out->wt = W_FIXED;
                out->n = (uint32_t)avro_schema_fixed_size(w);
                break;
        case AVRO_ENUM:
                out->wt = W_ENUM;
                out->n = (uint32_t)avro_schema_enum_number_of_symbols(w);
                break;
        case AVRO_ARRAY:
        case AVRO_MAP:
                out->wt = avro_typeof(w) == AVRO_ARRAY ? W_ARRAY : W_MAP;
                out->sub = cf_arena_calloc(a, sizeof(cf_rd));
                return compile_skip(c,
                                    out->wt == W_ARRAY
                                        ? avro_schema_array_items(w)
                                        : avro_schema_map_values(w),
                                    out->sub, depth + 1);
        case AVRO_UNION: {
                out->wt = W_UNION;
                out->n = (uint32_t)avro_schema_union_size(w);
                out->sub = cf_arena_calloc(a, out->n * sizeof(cf_rd));
                for (uint32_t i = 0; i < out->n; i++) {
                        cf_err_t err =
                            compile_skip(c, avro_schema_union_branch(w, (int)i),
                                         &out->sub[i], depth + 1);
                        if (err)
                                return err;
                }
                break;
        }
        case AVRO_RECORD: {
                out->wt = W_RECORD;
                cf_plan *p = cf_arena_calloc(a, sizeof(*p));
                p->n_ops = (uint32_t)avro_schema_record_size(w);
                p->ops = cf_arena_calloc(a, p->n_ops * sizeof(cf_op));
                for (uint32_t i = 0; i < p->n_ops; i++) {
                        p->ops[i].act = OP_READ;
                        p->ops[i].rfield = -1;
                        cf_err_t err = compile_skip(
                            c, avro_schema_record_field_get_by_index(w, (int)i),
                            &p->ops[i].rd, depth + 1);
                        if (err)
                                return err;
                }
                out->plan = p;
                break;
        }
        default:
                return cerr(c, CF_ERR_SCHEMA, "unsupported writer type %s",
                            wtype_name(w));
        }
        return CF_OK;
}

/* Is reader schema r (already deref'd) the optional form [null, T]? Sets
 * *value to T. */
static bool reader_optional(avro_schema_t r, avro_schema_t *value)
{
        if (avro_typeof(r) != AVRO_UNION || avro_schema_union_size(r) != 2)
                return false;
        avro_schema_t b0 = deref(avro_schema_union_branch(r, 0));
        avro_schema_t b1 = deref(avro_schema_union_branch(r, 1));
        if (avro_typeof(b0) != AVRO_NULL || avro_typeof(b1) == AVRO_NULL)
                return false;
        *value = b1;
        return true;
}

static cf_err_t compile_record(cctx *c, avro_schema_t w, avro_schema_t r,
                               const cf_bind_record *rb, cf_plan **outp,
                               int depth);

/* Builds the default of reader field f of record r from the schema JSON. */
static cf_err_t compile_default(cctx *c, avro_schema_t r,
                                const cf_bind_field *bf, avro_schema_t rfs,
                                cf_default *d)
{
        char full[256], key[512];
        full_name(r, full, sizeof(full));
        snprintf(key, sizeof(key), "%s.%s", full, bf->name);
        json_t *j = json_object_get(c->reg->r[c->t].defaults, key);
        memset(d, 0, sizeof(*d));
        if (!j)
                return cerr(c, CF_ERR_INCOMPATIBLE,
                            "reader field '%s' is missing from the writer "
                            "schema and has no default",
                            bf->name);
        rfs = deref(rfs);
        avro_schema_t v;
        if (reader_optional(rfs, &v)) {
                if (json_is_null(j)) {
                        d->is_null = 1;
                        return CF_OK;
                }
                rfs = v;
        }
        switch (bf->kind) {
        case CF_K_BOOL:
                if (!json_is_boolean(j))
                        break;
                d->i = json_is_true(j);
                return CF_OK;
        case CF_K_INT:
        case CF_K_LONG:
                if (!json_is_integer(j))
                        break;
                d->i = json_integer_value(j);
                return CF_OK;
        case CF_K_STRING:
        case CF_K_BYTES:
                if (!json_is_string(j))
                        break;
                d->s = json_string_value(j);
                d->slen = json_string_length(j);
                return CF_OK;
        case CF_K_ENUM: {
                int idx;
                if (!json_is_string(j))
                        break;
                idx = avro_schema_enum_get_by_name(rfs, json_string_value(j));
                if (idx < 0)
                        break;
                d->i = idx;
                return CF_OK;
        }
        case CF_K_ARRAY:
                if (!json_is_array(j) || json_array_size(j) != 0)
                        break;
                return CF_OK;
        default:
                break;
        }
        return cerr(c, CF_ERR_SCHEMA,
                    "default of field '%s' is not supported (only null, "
                    "numbers, strings, symbols and [])",
                    bf->name);
}

static cf_err_t compile_record(cctx *c, avro_schema_t w, avro_schema_t r,
                               const cf_bind_record *rb, cf_plan **outp,
                               int depth)
{
        cf_arena *a = &c->reg->arena;
        char wn[256], rn[256];
        full_name(w, wn, sizeof(wn));
        full_name(r, rn, sizeof(rn));
        if (strcmp(rn, rb->name))
                return cerr(c, CF_ERR_SCHEMA,
                            "reader record '%s' does not match the code's "
                            "'%s'",
                            rn, rb->name);
        if (strcmp(avro_schema_name(w), avro_schema_name(r)))
                return cerr(c, CF_ERR_INCOMPATIBLE,
                            "writer record '%s' cannot be read as '%s'", wn,
                            rn);
        size_t rn_fields = avro_schema_record_size(r);
        if (rn_fields != rb->n_fields)
                return cerr(c, CF_ERR_SCHEMA,
                            "schema record '%s' and its binding differ in "
                            "field count",
                            rn);
        for (uint32_t j = 0; j < rb->n_fields; j++) {
                if (strcmp(avro_schema_record_field_name(r, (int)j),
                           rb->fields[j].name))
                        return cerr(c, CF_ERR_SCHEMA,
                                    "schema field '%s' is not the binding's "
                                    "'%s' (order differs)",
                                    avro_schema_record_field_name(r, (int)j),
                                    rb->fields[j].name);
        }
        size_t wn_fields = avro_schema_record_size(w);
        bool *seen = cf_calloc(rb->n_fields ? rb->n_fields : 1, sizeof(bool));
        cf_plan *p = cf_arena_calloc(a, sizeof(*p));
        p->rb = rb;
        p->ops = cf_arena_calloc(a, (wn_fields + rb->n_fields) * sizeof(cf_op));
        cf_err_t err = CF_OK;
        size_t plen = strlen(c->path);
        for (size_t i = 0; i < wn_fields && !err; i++) {
                const char *fname = avro_schema_record_field_name(w, (int)i);
                avro_schema_t wf =
                    avro_schema_record_field_get_by_index(w, (int)i);
                cf_op *op = &p->ops[p->n_ops++];
                op->act = OP_READ;
                op->rfield = -1;
                op->name = rb->fields[0].name;
                for (uint32_t j = 0; j < rb->n_fields; j++) {
                        if (!strcmp(rb->fields[j].name, fname)) {
                                op->rfield = (int32_t)j;
                                break;
                        }
                }
                snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s",
                         plen ? "." : "", fname);
                if (op->rfield < 0) {
                        err = compile_skip(c, wf, &op->rd, depth + 1);
                        continue;
                }
                const cf_bind_field *bf = &rb->fields[op->rfield];
                seen[op->rfield] = true;
                op->name = bf->name;
                op->offset = bf->offset;
                op->count_offset = bf->count_offset;
                err = compile_value(
                    c, wf, avro_schema_record_field_get_by_index(r, op->rfield),
                    bf, &op->rd, depth + 1);
        }
        for (uint32_t j = 0; j < rb->n_fields && !err; j++) {
                if (seen[j])
                        continue;
                const cf_bind_field *bf = &rb->fields[j];
                snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s",
                         plen ? "." : "", bf->name);
                cf_op *op = &p->ops[p->n_ops++];
                op->act = OP_DEFAULT;
                op->rfield = (int32_t)j;
                op->rk = bf->kind;
                op->ropt = bf->optional;
                op->offset = bf->offset;
                op->count_offset = bf->count_offset;
                op->name = bf->name;
                err = compile_default(
                    c, r, bf, avro_schema_record_field_get_by_index(r, (int)j),
                    &op->def);
        }
        c->path[plen] = '\0';
        free(seen);
        *outp = p;
        return err;
}

/* Item binding of an array field. */
static cf_bind_field item_binding(const cf_bind_field *bf)
{
        cf_bind_field it = { 0 };
        it.name = bf->name;
        it.kind = bf->elem_kind;
        it.rec = bf->rec;
        return it;
}

static uint32_t elem_size(const cf_bind_field *bf)
{
        switch (bf->elem_kind) {
        case CF_K_BOOL:
                return sizeof(bool);
        case CF_K_INT:
        case CF_K_ENUM:
                return sizeof(int32_t);
        case CF_K_LONG:
                return sizeof(int64_t);
        case CF_K_STRING:
                return sizeof(char *);
        case CF_K_BYTES:
                return sizeof(cf_bytes);
        case CF_K_RECORD:
                return bf->rec->size;
        default:
                return 0;
        }
}

/*
 * Compiles the reading of writer value w into the reader slot described by
 * reader schema r and binding bf.
 */
static cf_err_t compile_value(cctx *c, avro_schema_t w, avro_schema_t r,
                              const cf_bind_field *bf, cf_rd *out, int depth)
{
        cf_arena *a = &c->reg->arena;
        avro_schema_t rv;
        bool ropt;
        memset(out, 0, sizeof(*out));
        if (depth > CF_MAX_DEPTH)
                return cerr(c, CF_ERR_DEPTH, "schema nested too deeply");
        w = deref(w);
        r = deref(r);
        ropt = reader_optional(r, &rv);
        if (!ropt)
                rv = r;
        if (ropt != !!bf->optional)
                return cerr(c, CF_ERR_SCHEMA,
                            "nullability of the schema and the binding "
                            "differ");
        out->rk = bf->kind;
        out->ropt = bf->optional;

        if (avro_typeof(w) == AVRO_UNION) {
                if (bf->kind == CF_K_ARRAY)
                        return cerr(c, CF_ERR_INCOMPATIBLE,
                                    "a union holding an array is not "
                                    "supported");
                out->wt = W_UNION;
                out->n = (uint32_t)avro_schema_union_size(w);
                out->sub = cf_arena_calloc(a, out->n * sizeof(cf_rd));
                uint32_t ok = 0;
                for (uint32_t i = 0; i < out->n; i++) {
                        avro_schema_t b =
                            deref(avro_schema_union_branch(w, (int)i));
                        cf_rd *s = &out->sub[i];
                        if (avro_typeof(b) == AVRO_NULL) {
                                s->wt = ropt ? W_NULL : W_ERROR;
                                s->err = CF_ERR_NULL;
                                s->rk = bf->kind;
                                s->ropt = bf->optional;
                                ok += ropt;
                                continue;
                        }
                        char save[256];
                        memcpy(save, c->path, sizeof(save));
                        cf_err_t err = compile_value(c, b, r, bf, s, depth + 1);
                        if (err == CF_ERR_INCOMPATIBLE) {
                                /* This branch fails only if written. */
                                memcpy(c->path, save, sizeof(save));
                                memset(s, 0, sizeof(*s));
                                s->wt = W_ERROR;
                                s->err = CF_ERR_UNION;
                                continue;
                        }
                        if (err)
                                return err;
                        ok++;
                }
                if (!ok)
                        return cerr(c, CF_ERR_INCOMPATIBLE,
                                    "no branch of the writer's union can be "
                                    "read as the reader's type");
                return CF_OK;
        }
        if (avro_typeof(w) == AVRO_NULL) {
                if (!ropt)
                        return cerr(c, CF_ERR_INCOMPATIBLE,
                                    "writer type null for a required field");
                out->wt = W_NULL;
                return CF_OK;
        }

        avro_type_t wt = avro_typeof(w), rt = avro_typeof(rv);
        switch (bf->kind) {
        case CF_K_BOOL:
                if (rt != AVRO_BOOLEAN)
                        goto binding;
                if (wt != AVRO_BOOLEAN)
                        goto incompatible;
                out->wt = W_BOOL;
                return CF_OK;
        case CF_K_INT:
                if (rt != AVRO_INT32)
                        goto binding;
                if (wt != AVRO_INT32)
                        goto incompatible;
                out->wt = W_INT;
                return CF_OK;
        case CF_K_LONG:
                if (rt != AVRO_INT64)
                        goto binding;
                if (wt != AVRO_INT32 && wt != AVRO_INT64)
                        goto incompatible;
                out->wt = wt == AVRO_INT32 ? W_INT : W_LONG;
                return CF_OK;
        case CF_K_STRING:
        case CF_K_BYTES:
                if (rt != (bf->kind == CF_K_STRING ? AVRO_STRING : AVRO_BYTES))
                        goto binding;
                if (wt != AVRO_STRING && wt != AVRO_BYTES)
                        goto incompatible;
                out->wt = wt == AVRO_STRING ? W_STRING : W_BYTES;
                return CF_OK;
        case CF_K_ENUM: {
                if (rt != AVRO_ENUM)
                        goto binding;
                if (wt != AVRO_ENUM ||
                    strcmp(avro_schema_name(w), avro_schema_name(rv)))
                        goto incompatible;
                char rn[256];
                full_name(rv, rn, sizeof(rn));
                json_t *dj = json_object_get(c->reg->r[c->t].enum_defaults, rn);
                int32_t rdef =
                    dj ? avro_schema_enum_get_by_name(rv, json_string_value(dj))
                       : -1;
                out->wt = W_ENUM;
                out->n = (uint32_t)avro_schema_enum_number_of_symbols(w);
                out->emap = cf_arena_alloc(a, out->n * sizeof(int32_t));
                out->syms = cf_arena_alloc(a, out->n * sizeof(char *));
                for (uint32_t i = 0; i < out->n; i++) {
                        const char *sym = avro_schema_enum_get(w, (int)i);
                        int idx = avro_schema_enum_get_by_name(rv, sym);
                        out->emap[i] = idx >= 0 ? idx : rdef;
                        out->syms[i] = sym;
                }
                return CF_OK;
        }
        case CF_K_RECORD:
                if (rt != AVRO_RECORD)
                        goto binding;
                if (wt != AVRO_RECORD)
                        goto incompatible;
                out->wt = W_RECORD;
                return compile_record(c, w, rv, bf->rec, &out->plan, depth);
        case CF_K_ARRAY: {
                if (rt != AVRO_ARRAY)
                        goto binding;
                if (wt != AVRO_ARRAY)
                        goto incompatible;
                cf_bind_field it = item_binding(bf);
                out->wt = W_ARRAY;
                out->elem_size = elem_size(bf);
                out->sub = cf_arena_calloc(a, sizeof(cf_rd));
                return compile_value(c, avro_schema_array_items(w),
                                     avro_schema_array_items(rv), &it, out->sub,
                                     depth + 1);
        }
        default:
                break;
        }
binding:
        return cerr(c, CF_ERR_SCHEMA,
                    "schema type '%s' does not match the code's binding",
                    avro_schema_type_name(rv));
incompatible:
        return cerr(c, CF_ERR_INCOMPATIBLE,
                    "writer type '%s' cannot be read as '%s'",
                    avro_schema_type_name(w), avro_schema_type_name(rv));
}

/* Sets min_size on rd and every node below it: the fewest bytes a value of
 * the writer's type can be encoded in. Array and map counts are checked
 * against it, so a count the input cannot hold is refused before anything
 * is allocated for it. */
static uint32_t set_min_size(cf_rd *rd)
{
        uint32_t m = 0;
        switch (rd->wt) {
        case W_NULL:
        case W_ERROR:
                m = 0;
                break;
        case W_FLOAT:
                m = 4;
                break;
        case W_DOUBLE:
                m = 8;
                break;
        case W_FIXED:
                m = rd->n;
                break;
        case W_UNION: {
                uint32_t best = UINT32_MAX;
                for (uint32_t i = 0; i < rd->n; i++) {
                        uint32_t b = set_min_size(&rd->sub[i]);
                        if (b < best)
                                best = b;
                }
                m = 1 + (best == UINT32_MAX ? 0 : best);
                break;
        }
        case W_ARRAY:
        case W_MAP:
                set_min_size(rd->sub);
                m = 1;
                break;
        case W_RECORD:
                for (uint32_t i = 0; i < rd->plan->n_ops; i++)
                        if (rd->plan->ops[i].act == OP_READ)
                                m += set_min_size(&rd->plan->ops[i].rd);
                break;
        default: /* bool, int, long, string, bytes, enum */
                m = 1;
                break;
        }
        rd->min_size = m;
        return m;
}

static cf_err_t compile_root(cf_registry *reg, cf_rtype t, avro_schema_t w,
                             cf_rd *root, char *errstr, size_t errstr_size)
{
        cctx c = {
                .reg = reg, .t = t, .errstr = errstr, .errstr_size = errstr_size
        };
        avro_schema_t r = reg->r[t].schema;
        memset(root, 0, sizeof(*root));
        root->wt = W_RECORD;
        root->rk = CF_K_RECORD;
        w = deref(w);
        if (avro_typeof(w) != AVRO_RECORD)
                return cerr(&c, CF_ERR_INCOMPATIBLE,
                            "writer schema is not a record");
        cf_err_t err = compile_record(&c, w, r, cf_bindings[t], &root->plan, 0);
        if (!err)
                set_min_size(root);
        return err;
}

/* ---------------------------------------------------------------------- */
/* Registry                                                                */

static cf_err_t parse_schema(const char *json, size_t len, avro_schema_t *sp,
                             char *errstr, size_t errstr_size)
{
        avro_schema_error_t unused;
        (void)unused;
        if (avro_schema_from_json_length(json, len, sp)) {
                snprintf(errstr, errstr_size, "invalid Avro schema: %s",
                         avro_strerror());
                return CF_ERR_SCHEMA;
        }
        return CF_OK;
}

static cf_schema_ent *find_ent(const cf_registry *reg, int32_t id)
{
        size_t lo = 0, hi = reg->n_ents;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (reg->ents[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < reg->n_ents && reg->ents[lo].id == id)
                return &reg->ents[lo];
        return NULL;
}

static cf_schema_ent *insert_ent(cf_registry *reg, int32_t id);

/* find_ent(), asking the resolver (if any) once about an unknown id: the
 * registry is then changed, hence the cast; see codec.h on threads. */
static const cf_schema_ent *lookup_ent(const cf_registry *creg, int32_t id)
{
        cf_registry *reg = (cf_registry *)creg;
        cf_schema_ent *e = find_ent(reg, id);
        if (e || !reg->resolve)
                return e && e->t != CF_RT_UNKNOWN ? e : NULL;
        cf_err_t err = reg->resolve(reg, id, reg->resolve_opaque);
        e = find_ent(reg, id);
        if (!e && err == CF_ERR_SCHEMA_ID)
                insert_ent(reg, id)->t = CF_RT_UNKNOWN; /* asked once */
        return e && e->t != CF_RT_UNKNOWN ? e : NULL;
}

static cf_schema_ent *insert_ent(cf_registry *reg, int32_t id)
{
        size_t i = 0;
        while (i < reg->n_ents && reg->ents[i].id < id)
                i++;
        reg->ents =
            cf_realloc(reg->ents, (reg->n_ents + 1) * sizeof(*reg->ents));
        memmove(&reg->ents[i + 1], &reg->ents[i],
                (reg->n_ents - i) * sizeof(*reg->ents));
        reg->n_ents++;
        memset(&reg->ents[i], 0, sizeof(reg->ents[i]));
        reg->ents[i].id = id;
        return &reg->ents[i];
}

cf_err_t cf_registry_new(cf_registry **regp, char *errstr, size_t errstr_size)
{
        cf_registry *reg = cf_calloc(1, sizeof(*reg));
        cf_err_t err = CF_OK;
        cf_arena_init(&reg->arena, 16 * 1024);
        for (size_t i = 0; i < sizeof(cf_builtin) / sizeof(cf_builtin[0]);
             i++) {
                const struct cf_embedded_schema *e = cf_embedded_schemas;
                while (e->file && strcmp(e->file, cf_builtin[i].file))
                        e++;
                if (!e->file) {
                        snprintf(errstr, errstr_size,
                                 "schemas/%s is not built in",
                                 cf_builtin[i].file);
                        err = CF_ERR_SCHEMA;
                        goto fail;
                }
                cf_rtype t = cf_builtin[i].t;
                json_error_t jerr;
                json_t *j = json_loadb(e->json, e->len, 0, &jerr);
                if (!j) {
                        snprintf(errstr, errstr_size, "schemas/%s: line %d: %s",
                                 e->file, jerr.line, jerr.text);
                        err = CF_ERR_SCHEMA;
                        goto fail;
                }
                reg->r[t].defaults = json_object();
                reg->r[t].enum_defaults = json_object();
                collect_defaults(j, "", reg->r[t].defaults,
                                 reg->r[t].enum_defaults);
                json_decref(j);
                err = parse_schema(e->json, e->len, &reg->r[t].schema, errstr,
                                   errstr_size);
                if (err)
                        goto fail;
                reg->r[t].json = e->json;
                reg->r[t].id = cf_builtin[i].id;
                err = compile_root(reg, t, reg->r[t].schema, &reg->r[t].root,
                                   errstr, errstr_size);
                if (err)
                        goto fail;
                cf_schema_ent *ent = insert_ent(reg, cf_builtin[i].id);
                ent->t = t;
                ent->schema = avro_schema_incref(reg->r[t].schema);
                ent->root = reg->r[t].root;
        }
        for (size_t i = 0;
             i < sizeof(cf_builtin_old) / sizeof(cf_builtin_old[0]); i++) {
                const struct cf_embedded_schema *e = cf_embedded_schemas;
                while (e->file && strcmp(e->file, cf_builtin_old[i].file))
                        e++;
                if (!e->file) {
                        snprintf(errstr, errstr_size,
                                 "schemas/%s is not built in",
                                 cf_builtin_old[i].file);
                        err = CF_ERR_SCHEMA;
                        goto fail;
                }
                err = cf_registry_add(reg, cf_builtin_old[i].id, e->json,
                                      e->len, errstr, errstr_size);
                if (err)
                        goto fail;
        }
        *regp = reg;
        return CF_OK;
fail:
        cf_registry_destroy(reg);
        return err;
}

void cf_registry_destroy(cf_registry *reg)
{
        if (!reg)
                return;
        for (size_t i = 0; i < reg->n_ents; i++)
                if (reg->ents[i].schema)
                        avro_schema_decref(reg->ents[i].schema);
        for (int t = 0; t < CF_RT__CNT; t++) {
                if (reg->r[t].schema)
                        avro_schema_decref(reg->r[t].schema);
                json_decref(reg->r[t].defaults);
                json_decref(reg->r[t].enum_defaults);
        }
        free(reg->ents);
        cf_arena_destroy(&reg->arena);
        free(reg);
}

cf_err_t cf_registry_add(cf_registry *reg, int32_t id, const char *json,
                         size_t len, char *errstr, size_t errstr_size)
{
        avro_schema_t w;
        cf_err_t err;
        if (find_ent(reg, id)) {
                snprintf(errstr, errstr_size, "schema id %d is already taken",
                         (int)id);
                return CF_ERR_SCHEMA_ID;
        }
        err = parse_schema(json, len, &w, errstr, errstr_size);
        if (err)
                return err;
        avro_schema_t d = deref(w);
        int t;
        for (t = 0; t < CF_RT__CNT; t++) {
                if (avro_typeof(d) == AVRO_RECORD &&
                    !strcmp(avro_schema_name(d),
                            avro_schema_name(reg->r[t].schema)))
                        break;
        }
        if (t == CF_RT__CNT) {
                snprintf(errstr, errstr_size,
                         "schema %d is not a record of a known type", (int)id);
                avro_schema_decref(w);
                return CF_ERR_INCOMPATIBLE;
        }
        cf_rd root;
        err = compile_root(reg, (cf_rtype)t, w, &root, errstr, errstr_size);
        if (err) {
                avro_schema_decref(w);
                return err;
        }
        cf_schema_ent *ent = insert_ent(reg, id);
        ent->t = (cf_rtype)t;
        ent->schema = w;
        ent->root = root;
        return CF_OK;
}

int32_t cf_registry_id(const cf_registry *reg, cf_rtype t)
{
        return reg->r[t].id;
}

void cf_registry_set_resolver(cf_registry *reg, cf_registry_resolve_fn *fn,
                              void *opaque)
{
        for (size_t i = 0; i < reg->n_ents; i++)
                if (reg->ents[i].schema)
                        avro_schema_decref(reg->ents[i].schema);
        reg->n_ents = 0;
        for (int t = 0; t < CF_RT__CNT; t++)
                reg->r[t].id = -1;
        reg->resolve = fn;
        reg->resolve_opaque = opaque;
}

cf_err_t cf_registry_set_id(cf_registry *reg, cf_rtype t, int32_t id,
                            char *errstr, size_t errstr_size)
{
        cf_schema_ent *e = find_ent(reg, id);
        if (e && e->t != t) {
                snprintf(errstr, errstr_size,
                         "schema id %d is already taken by another type",
                         (int)id);
                return CF_ERR_SCHEMA_ID;
        }
        if (!e) {
                e = insert_ent(reg, id);
                e->t = t;
                e->schema = avro_schema_incref(reg->r[t].schema);
                e->root = reg->r[t].root;
        }
        reg->r[t].id = id;
        return CF_OK;
}

cf_err_t cf_registry_type(const cf_registry *reg, int32_t id, cf_rtype *tp)
{
        const cf_schema_ent *e = lookup_ent(reg, id);
        if (!e)
                return CF_ERR_SCHEMA_ID;
        *tp = e->t;
        return CF_OK;
}

const char *cf_registry_schema_json(const cf_registry *reg, cf_rtype t)
{
        return reg->r[t].json;
}

size_t cf_rtype_max_size(void)
{
        size_t m = 0;
        for (int t = 0; t < CF_RT__CNT; t++)
                if (cf_bindings[t]->size > m)
                        m = cf_bindings[t]->size;
        return m;
}

/* ---------------------------------------------------------------------- */
/* Decoding                                                                */

typedef struct dctx {
        const uint8_t *p;
        const uint8_t *end;
        cf_arena *a;
} dctx;

static inline cf_err_t rd_varint(dctx *d, int64_t *out)
{
        uint64_t v = 0;
        const uint8_t *p = d->p;
        for (int shift = 0; shift < 64; shift += 7) {
                if (p >= d->end)
                        return CF_ERR_TRUNCATED;
                uint8_t b = *p++;
                if (shift == 63 && b > 1)
                        return CF_ERR_VARINT;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        d->p = p;
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return CF_OK;
                }
        }
        return CF_ERR_VARINT;
}

/* A length or count: negative is LENGTH; beyond CF_CODEC_MAX_LEN is
 * TOO_LARGE (no valid value is that big); otherwise more than the remaining
 * input is TRUNCATED. */
static inline cf_err_t rd_len(dctx *d, int64_t *out)
{
        cf_err_t err = rd_varint(d, out);
        if (err)
                return err;
        if (*out < 0)
                return CF_ERR_LENGTH;
        if (*out > CF_CODEC_MAX_LEN)
                return CF_ERR_TOO_LARGE;
        if (*out > d->end - d->p)
                return CF_ERR_TRUNCATED;
        return CF_OK;
}

static void set_null(uint8_t rk, void *dst)
{
        switch (rk) {
        case CF_K_STRING:
        case CF_K_RECORD:
                *(void **)dst = NULL;
                break;
        case CF_K_BYTES:
                ((cf_bytes *)dst)->p = NULL;
                ((cf_bytes *)dst)->n = 0;
                break;
        case CF_K_INT:
        case CF_K_LONG:
                *(int64_t *)dst = CF_NONE;
                break;
        case CF_K_ENUM:
                *(int32_t *)dst = -1;
                break;
        case CF_K_BOOL:
                *(bool *)dst = false;
                break;
        default:
                break;
        }
}

static cf_err_t dec_plan(dctx *d, const cf_plan *p, void *dst);
static cf_err_t dec_value(dctx *d, const cf_rd *rd, void *dst);

/* Reads the block count of an array or map whose items take at least
 * item_min bytes; sets *bc to the items of the block (0 at the end). A
 * negative count is followed by the block's byte size, which lets a dropped
 * block be jumped over (*skipped = true). A count the remaining input cannot
 * hold is refused here, before anything is allocated for it. */
static cf_err_t rd_block(dctx *d, bool skip, uint32_t item_min, int64_t *bc,
                         bool *skipped)
{
        int64_t bytes;
        cf_err_t err = rd_varint(d, bc);
        *skipped = false;
        if (err)
                return err;
        if (*bc < 0) {
                if (*bc == INT64_MIN)
                        return CF_ERR_LENGTH;
                *bc = -*bc;
                err = rd_len(d, &bytes);
                if (err)
                        return err;
                if (skip) {
                        d->p += bytes;
                        *skipped = true;
                        return CF_OK;
                }
        }
        if (*bc > CF_CODEC_MAX_LEN)
                return CF_ERR_TOO_LARGE;
        if (*bc > (d->end - d->p) / (item_min ? item_min : 1))
                return CF_ERR_TRUNCATED;
        return CF_OK;
}

/* Reads an array into a pointer (dst) and count (*cnt), or drops it when
 * dst is NULL. Blocks are appended into one arena array, grown by doubling,
 * so memory stays within twice the items' size. */
static cf_err_t dec_array(dctx *d, const cf_rd *rd, void *dst, uint32_t *cnt)
{
        bool skip = dst == NULL;
        uint8_t *items = NULL;
        uint64_t n = 0, cap = 0;
        for (;;) {
                int64_t bc;
                bool skipped;
                cf_err_t err =
                    rd_block(d, skip, rd->sub->min_size, &bc, &skipped);
                if (err)
                        return err;
                if (bc == 0)
                        break;
                if (skipped)
                        continue;
                if (!skip && n + (uint64_t)bc > cap) {
                        uint64_t ncap = cap ? cap * 2 : (uint64_t)bc;
                        if (ncap < n + (uint64_t)bc)
                                ncap = n + (uint64_t)bc;
                        if (ncap > UINT32_MAX)
                                return CF_ERR_TOO_LARGE;
                        uint8_t *ni =
                            cf_arena_alloc(d->a, ncap * rd->elem_size);
                        if (n)
                                memcpy(ni, items, n * rd->elem_size);
                        items = ni;
                        cap = ncap;
                }
                for (int64_t i = 0; i < bc; i++) {
                        err = dec_value(d, rd->sub,
                                        skip ? NULL
                                             : items + (n + (uint64_t)i) *
                                                           rd->elem_size);
                        if (err)
                                return err;
                }
                n += (uint64_t)bc;
        }
        if (!skip) {
                *(void **)dst = items;
                *cnt = (uint32_t)n;
        }
        return CF_OK;
}

/* Drops a map (maps appear only in writer schemas, never in ours). */
static cf_err_t skip_map(dctx *d, const cf_rd *rd)
{
        for (;;) {
                int64_t bc, kl;
                bool skipped;
                cf_err_t err =
                    rd_block(d, true, 1 + rd->sub->min_size, &bc, &skipped);
                if (err)
                        return err;
                if (bc == 0)
                        return CF_OK;
                if (skipped)
                        continue;
                for (int64_t i = 0; i < bc; i++) {
                        err = rd_len(d, &kl);
                        if (err)
                                return err;
                        d->p += kl;
                        err = dec_value(d, rd->sub, NULL);
                        if (err)
                                return err;
                }
        }
}

/* Reads one value described by rd; dst is the reader slot, or NULL (and
 * rd->rk RK_SKIP) when the value is dropped. */
static cf_err_t dec_value(dctx *d, const cf_rd *rd, void *dst)
{
        cf_err_t err;
        int64_t v;
        switch (rd->wt) {
        case W_NULL:
                if (dst)
                        set_null(rd->rk, dst);
                return CF_OK;
        case W_ERROR:
                return (cf_err_t)rd->err;
        case W_UNION:
                err = rd_varint(d, &v);
                if (err)
                        return err;
                if (v < 0 || (uint64_t)v >= rd->n)
                        return CF_ERR_UNION;
                return dec_value(d, &rd->sub[v], dst);
        case W_BOOL:
                if (d->p >= d->end)
                        return CF_ERR_TRUNCATED;
                if (*d->p > 1)
                        return CF_ERR_BOOL;
                if (dst)
                        *(bool *)dst = *d->p;
                d->p++;
                return CF_OK;
        case W_INT:
        case W_LONG:
                err = rd_varint(d, &v);
                if (err)
                        return err;
                if (rd->wt == W_INT && (v < INT32_MIN || v > INT32_MAX))
                        return CF_ERR_VARINT;
                if (!dst)
                        return CF_OK;
                if (rd->rk == CF_K_INT && !rd->ropt)
                        *(int32_t *)dst = (int32_t)v;
                else
                        *(int64_t *)dst = v;
                return CF_OK;
        case W_FLOAT:
        case W_DOUBLE: {
                ptrdiff_t n = rd->wt == W_FLOAT ? 4 : 8;
                if (d->end - d->p < n)
                        return CF_ERR_TRUNCATED;
                d->p += n;
                return CF_OK;
        }
        case W_FIXED:
                if ((uint64_t)(d->end - d->p) < rd->n)
                        return CF_ERR_TRUNCATED;
                d->p += rd->n;
                return CF_OK;
        case W_STRING:
        case W_BYTES:
                err = rd_len(d, &v);
                if (err)
                        return err;
                if (dst) {
                        if (rd->rk == CF_K_STRING) {
                                *(char **)dst = cf_arena_strndup(
                                    d->a, (const char *)d->p, (size_t)v);
                        } else {
                                cf_bytes *b = dst;
                                b->p =
                                    cf_arena_alloc_bytes(d->a, (size_t)v + 1);
                                memcpy(b->p, d->p, (size_t)v);
                                b->n = (uint32_t)v;
                        }
                }
                d->p += v;
                return CF_OK;
        case W_ENUM:
                err = rd_varint(d, &v);
                if (err)
                        return err;
                if (v < 0 || (uint64_t)v >= rd->n)
                        return CF_ERR_ENUM;
                if (dst) {
                        if (rd->emap[v] < 0)
                                return CF_ERR_ENUM;
                        *(int32_t *)dst = rd->emap[v];
                }
                return CF_OK;
        case W_RECORD:
                if (!dst)
                        return dec_plan(d, rd->plan, NULL);
                if (rd->ropt) {
                        void *rec = cf_arena_alloc(d->a, rd->plan->rb->size);
                        *(void **)dst = rec;
                        dst = rec;
                }
                return dec_plan(d, rd->plan, dst);
        case W_ARRAY:
                /* Arrays are read in place by dec_plan (they need the count
                 * field); here only dropped ones arrive. */
                return dec_array(d, rd, NULL, NULL);
        case W_MAP:
                return skip_map(d, rd);
        default:
                return CF_ERR_SCHEMA;
        }
}

static void apply_default(cf_arena *a, const cf_op *op, uint8_t *dst)
{
        void *f = dst + op->offset;
        if (op->def.is_null) {
                set_null(op->rk, f);
                return;
        }
        switch (op->rk) {
        case CF_K_BOOL:
                *(bool *)f = op->def.i != 0;
                break;
        case CF_K_INT:
                if (op->ropt)
                        *(int64_t *)f = op->def.i;
                else
                        *(int32_t *)f = (int32_t)op->def.i;
                break;
        case CF_K_LONG:
                *(int64_t *)f = op->def.i;
                break;
        case CF_K_ENUM:
                *(int32_t *)f = (int32_t)op->def.i;
                break;
        case CF_K_STRING:
                *(char **)f = cf_arena_strndup(a, op->def.s, op->def.slen);
                break;
        case CF_K_BYTES: {
                cf_bytes *b = f;
                b->p = cf_arena_alloc_bytes(a, op->def.slen + 1);
                memcpy(b->p, op->def.s, op->def.slen);
                b->n = (uint32_t)op->def.slen;
                break;
        }
        case CF_K_ARRAY:
                *(void **)f = NULL;
                *(uint32_t *)(dst + op->count_offset) = 0;
                break;
        default:
                break;
        }
}

static cf_err_t dec_plan(dctx *d, const cf_plan *p, void *dst)
{
        uint8_t *base = dst;
        if (!p)
                return CF_OK;
        for (uint32_t i = 0; i < p->n_ops; i++) {
                const cf_op *op = &p->ops[i];
                cf_err_t err;
                if (op->act == OP_DEFAULT) {
                        apply_default(d->a, op, base);
                        continue;
                }
                if (!base || op->rfield < 0) {
                        err = dec_value(d, &op->rd, NULL);
                } else if (op->rd.wt == W_ARRAY) {
                        err = dec_array(d, &op->rd, base + op->offset,
                                        (uint32_t *)(base + op->count_offset));
                } else {
                        err = dec_value(d, &op->rd, base + op->offset);
                }
                if (err)
                        return err;
        }
        return CF_OK;
}

cf_err_t cf_wire_schema_id(const void *buf, size_t len, int32_t *idp)
{
        const uint8_t *b = buf;
        if (len < 1)
                return CF_ERR_TRUNCATED;
        if (b[0] != 0)
                return CF_ERR_MAGIC;
        if (len < CF_WIRE_HEADER)
                return CF_ERR_TRUNCATED;
        *idp = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 8 | (uint32_t)b[4]);
        return CF_OK;
}

static cf_err_t decode_ent(const cf_schema_ent *e, const uint8_t *b, size_t len,
                           cf_arena *a, void *out, size_t *errpos)
{
        dctx d = { .p = b + CF_WIRE_HEADER, .end = b + len, .a = a };
        cf_err_t err = dec_plan(&d, e->root.plan, out);
        if (!err && d.p != d.end)
                err = CF_ERR_TRAILING;
        if (errpos)
                *errpos = (size_t)(d.p - b);
        return err;
}

cf_err_t cf_decode(const cf_registry *reg, cf_rtype t, const void *buf,
                   size_t len, cf_arena *a, void *out, size_t *errpos)
{
        int32_t id;
        cf_err_t err = cf_wire_schema_id(buf, len, &id);
        if (errpos)
                *errpos = 0;
        if (err)
                return err;
        const cf_schema_ent *e = lookup_ent(reg, id);
        if (!e)
                return CF_ERR_SCHEMA_ID;
        if (e->t != t)
                return CF_ERR_SCHEMA_TYPE;
        return decode_ent(e, buf, len, a, out, errpos);
}

cf_err_t cf_decode_any(const cf_registry *reg, const void *buf, size_t len,
                       cf_arena *a, void *out, cf_rtype *tp, size_t *errpos)
{
        int32_t id;
        cf_err_t err = cf_wire_schema_id(buf, len, &id);
        if (errpos)
                *errpos = 0;
        if (err)
                return err;
        const cf_schema_ent *e = lookup_ent(reg, id);
        if (!e)
                return CF_ERR_SCHEMA_ID;
        *tp = e->t;
        return decode_ent(e, buf, len, a, out, errpos);
}

/* ---------------------------------------------------------------------- */
/* Encoding (walks the identity plan of the reader schema)                 */

static inline void wr_varint(cf_buf *b, int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        cf_buf_reserve(b, 10);
        uint8_t *p = b->p + b->len;
        while (z >= 0x80) {
                *p++ = (uint8_t)(z | 0x80);
                z >>= 7;
        }
        *p++ = (uint8_t)z;
        b->len = (size_t)(p - b->p);
}

static bool slot_is_null(const cf_rd *rd, const void *src)
{
        switch (rd->rk) {
        case CF_K_STRING:
        case CF_K_RECORD:
                return *(void *const *)src == NULL;
        case CF_K_BYTES:
                return ((const cf_bytes *)src)->p == NULL;
        case CF_K_INT:
        case CF_K_LONG:
                return *(const int64_t *)src == CF_NONE;
        case CF_K_ENUM:
                return *(const int32_t *)src < 0;
        default:
                return false;
        }
}

static void enc_plan(cf_buf *b, const cf_plan *p, const void *src);

static void enc_value(cf_buf *b, const cf_rd *rd, const void *src,
                      uint32_t count)
{
        switch (rd->wt) {
        case W_NULL:
                return;
        case W_UNION: {
                /* Identity unions are [null, T]. */
                bool null = slot_is_null(rd, src);
                for (uint32_t i = 0; i < rd->n; i++) {
                        if ((rd->sub[i].wt == W_NULL) == null) {
                                wr_varint(b, (int64_t)i);
                                enc_value(b, &rd->sub[i], src, count);
                                return;
                        }
                }
                return;
        }
        case W_BOOL:
                cf_buf_putc(b, *(const bool *)src ? 1 : 0);
                return;
        case W_INT:
                wr_varint(b, rd->ropt ? *(const int64_t *)src
                                      : *(const int32_t *)src);
                return;
        case W_LONG:
                wr_varint(b, *(const int64_t *)src);
                return;
        case W_STRING: {
                const char *s = *(char *const *)src;
                size_t n = s ? strlen(s) : 0;
                wr_varint(b, (int64_t)n);
                cf_buf_put(b, s, n);
                return;
        }
        case W_BYTES: {
                const cf_bytes *v = src;
                wr_varint(b, v->p ? (int64_t)v->n : 0);
                if (v->p)
                        cf_buf_put(b, v->p, v->n);
                return;
        }
        case W_ENUM: {
                int32_t e = *(const int32_t *)src;
                wr_varint(b, e >= 0 && (uint32_t)e < rd->n ? e : 0);
                return;
        }
        case W_RECORD:
                enc_plan(b, rd->plan,
                         rd->ropt ? *(const void *const *)src : src);
                return;
        case W_ARRAY: {
                const uint8_t *items = *(const uint8_t *const *)src;
                if (count) {
                        wr_varint(b, count);
                        for (uint32_t i = 0; i < count; i++)
                                enc_value(b, rd->sub,
                                          items + (size_t)i * rd->elem_size, 0);
                }
                wr_varint(b, 0);
                return;
        }
        default:
                return;
        }
}

static void enc_plan(cf_buf *b, const cf_plan *p, const void *src)
{
        const uint8_t *base = src;
        for (uint32_t i = 0; i < p->n_ops; i++) {
                const cf_op *op = &p->ops[i];
                uint32_t count =
                    op->rd.wt == W_ARRAY
                        ? *(const uint32_t *)(base + op->count_offset)
                        : 0;
                enc_value(b, &op->rd, base + op->offset, count);
        }
}

void cf_encode(const cf_registry *reg, cf_rtype t, const void *rec, cf_buf *out)
{
        int32_t id = reg->r[t].id;
        uint8_t hdr[CF_WIRE_HEADER] = { 0, (uint8_t)(id >> 24),
                                        (uint8_t)(id >> 16), (uint8_t)(id >> 8),
                                        (uint8_t)id };
        cf_buf_put(out, hdr, sizeof(hdr));
        enc_plan(out, reg->r[t].root.plan, rec);
}

/* ---------------------------------------------------------------------- */
/* JSON                                                                    */

static void json_plan(cf_buf *b, const cf_plan *p, const void *src);

static void json_value(cf_buf *b, const cf_rd *rd, const void *src,
                       uint32_t count)
{
        switch (rd->wt) {
        case W_NULL:
                cf_buf_puts(b, "null");
                return;
        case W_UNION:
                if (slot_is_null(rd, src)) {
                        cf_buf_puts(b, "null");
                        return;
                }
                for (uint32_t i = 0; i < rd->n; i++) {
                        if (rd->sub[i].wt != W_NULL) {
                                json_value(b, &rd->sub[i], src, count);
                                return;
                        }
                }
                return;
        case W_BOOL:
                cf_buf_puts(b, *(const bool *)src ? "true" : "false");
                return;
        case W_INT:
                cf_buf_printf(b, "%lld",
                              (long long)(rd->ropt ? *(const int64_t *)src
                                                   : *(const int32_t *)src));
                return;
        case W_LONG:
                cf_buf_printf(b, "%lld", (long long)*(const int64_t *)src);
                return;
        case W_STRING: {
                const char *s = *(char *const *)src;
                cf_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
                return;
        }
        case W_BYTES: {
                const cf_bytes *v = src;
                cf_buf_putc(b, '"');
                cf_buf_hex(b, v->p, v->p ? v->n : 0);
                cf_buf_putc(b, '"');
                return;
        }
        case W_ENUM: {
                int32_t e = *(const int32_t *)src;
                if (e >= 0 && (uint32_t)e < rd->n)
                        cf_buf_json_str(b, rd->syms[e], strlen(rd->syms[e]));
                else
                        cf_buf_puts(b, "null");
                return;
        }
        case W_RECORD:
                json_plan(b, rd->plan,
                          rd->ropt ? *(const void *const *)src : src);
                return;
        case W_ARRAY: {
                const uint8_t *items = *(const uint8_t *const *)src;
                cf_buf_putc(b, '[');
                for (uint32_t i = 0; i < count; i++) {
                        if (i)
                                cf_buf_putc(b, ',');
                        json_value(b, rd->sub,
                                   items + (size_t)i * rd->elem_size, 0);
                }
                cf_buf_putc(b, ']');
                return;
        }
        default:
                cf_buf_puts(b, "null");
                return;
        }
}

static void json_plan(cf_buf *b, const cf_plan *p, const void *src)
{
        const uint8_t *base = src;
        cf_buf_putc(b, '{');
        for (uint32_t i = 0; i < p->n_ops; i++) {
                const cf_op *op = &p->ops[i];
                uint32_t count =
                    op->rd.wt == W_ARRAY
                        ? *(const uint32_t *)(base + op->count_offset)
                        : 0;
                if (i)
                        cf_buf_putc(b, ',');
                cf_buf_json_str(b, op->name, strlen(op->name));
                cf_buf_putc(b, ':');
                json_value(b, &op->rd, base + op->offset, count);
        }
        cf_buf_putc(b, '}');
}

void cf_to_json(const cf_registry *reg, cf_rtype t, const void *rec,
                cf_buf *out)
{
        json_plan(out, reg->r[t].root.plan, rec);
}
