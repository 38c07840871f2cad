/*
 * codec.h: the schema registry and the Avro codec in the Confluent wire
 * format (byte 0 = 0, 4-byte big-endian schema id, Avro binary body).
 *
 * The registry holds the writer schemas by id (the built-in ones from
 * schemas/ (*.avsc), plus any added) and, for each, a compiled plan that
 * resolves it against the reader schema of its record type (Avro schema
 * resolution: fields matched by name, missing ones filled from the reader's
 * default, extra ones skipped, int promoted to long, enum symbols mapped by
 * name). Decoding runs the plan straight into the structs of records.h.
 *
 * Built-in schema ids (fixed, never reused):
 *   1 SessionEvent  2 MeterReading  3 Site       4 User
 *   8 BillingEvent 10 ChargeRecord 11 Statement 12 Rejected
 * and earlier versions, still read: 5 ChargeRecord v1, 6 Statement v1,
 * 7 Rejected v1, 9 Rejected v2.
 *
 * Bounds: the decoder never reads past its input, rejects any length or
 * count that the remaining input cannot hold (TRUNCATED) or that exceeds
 * CF_CODEC_MAX_LEN (TOO_LARGE), limits nesting depth, and
 * allocates only from the caller's arena: at most CF_CODEC_ARENA_FACTOR
 * bytes per input byte (the worst case is an array of tiny records, e.g. an
 * empty TariffElement: 2 input bytes, a 24-byte struct, and arrays that grow
 * by doubling when written in many blocks).
 *
 * Thread safety: a registry is built by one thread; once built it is
 * read-only and every decode/encode/JSON call may run on any thread. With a
 * resolver (an external schema registry, cf_registry_set_resolver) a decode
 * of an id not seen before adds it: decode calls must then come from one
 * thread at a time.
 */
#ifndef CF_CODEC_H
#define CF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mem.h"
#include "records.h"

#define CF_WIRE_HEADER 5 /* magic byte + schema id */
/* Largest string, bytes or array length the decoder accepts: 64 MiB, far
 * above Kafka's default message size limit of 1 MiB. */
#define CF_CODEC_MAX_LEN      ((int64_t)64 << 20)
#define CF_CODEC_ARENA_FACTOR 32

typedef struct cf_registry cf_registry;

/* Builds the registry of the built-in schemas and checks every schema
 * against its binding in records.c. Returns CF_OK and sets *regp, or an
 * error with errstr filled. The caller frees with cf_registry_destroy(). */
cf_err_t cf_registry_new(cf_registry **regp, char *errstr, size_t errstr_size);

/* Frees the registry; NULL is a no-op. */
void cf_registry_destroy(cf_registry *reg);

/* Adds a writer schema under id (a schema evolved by a producer, or one
 * fetched from a schema registry). Its record name must be one of the
 * record types; it must resolve against that type's reader schema.
 * Not thread safe: call before the registry is shared. */
cf_err_t cf_registry_add(cf_registry *reg, int32_t id, const char *json,
                         size_t len, char *errstr, size_t errstr_size);

/* The id the encoder writes for type t (its built-in schema, or the one
 * set by cf_registry_set_id; -1 after cf_registry_set_resolver until set). */
int32_t cf_registry_id(const cf_registry *reg, cf_rtype t);

/* Asked by a decode about a schema id the registry does not hold: fetches
 * the writer schema and adds it with cf_registry_add(). Returns CF_OK when
 * added, CF_ERR_SCHEMA_ID when the id is unknown or unusable (remembered:
 * the id is not asked about again), anything else for a failure worth
 * asking again later (e.g. the registry is unreachable). */
typedef cf_err_t(cf_registry_resolve_fn)(cf_registry *reg, int32_t id,
                                         void *opaque);

/* Switches to an external schema registry: forgets every id (the built-in
 * ids mean nothing there), keeps the reader schemas, and from now on asks
 * fn about each unknown id, once. Call before the registry is shared. */
void cf_registry_set_resolver(cf_registry *reg, cf_registry_resolve_fn *fn,
                              void *opaque);

/* Makes id the schema id of type t's reader schema (as an external registry
 * assigned it): the encoder writes it and decoders resolve it with the
 * identity plan. CF_ERR_SCHEMA_ID if id already names another type. */
cf_err_t cf_registry_set_id(cf_registry *reg, cf_rtype t, int32_t id,
                            char *errstr, size_t errstr_size);

/* Record type of a registered schema id; CF_ERR_SCHEMA_ID if unknown. */
cf_err_t cf_registry_type(const cf_registry *reg, int32_t id, cf_rtype *tp);

/* Reader schema JSON of type t (for documentation and tests). */
const char *cf_registry_schema_json(const cf_registry *reg, cf_rtype t);

/* Reads the schema id from a framed value: CF_ERR_MAGIC, CF_ERR_TRUNCATED. */
cf_err_t cf_wire_schema_id(const void *buf, size_t len, int32_t *idp);

/*
 * Decodes a framed value of type t into *out (a struct of that type, fully
 * overwritten). Strings and arrays are allocated from arena a. On error the
 * contents of *out are unspecified, but everything it points to is in a.
 * If errpos is not NULL it receives the byte offset at which decoding
 * stopped (for error messages).
 */
cf_err_t cf_decode(const cf_registry *reg, cf_rtype t, const void *buf,
                   size_t len, cf_arena *a, void *out, size_t *errpos);

/* Like cf_decode, but for a value of any type: the type is looked up from the
 * schema id and returned in *tp; out must be at least cf_rtype_size() big. */
cf_err_t cf_decode_any(const cf_registry *reg, const void *buf, size_t len,
                       cf_arena *a, void *out, cf_rtype *tp, size_t *errpos);

/* sizeof the struct of the largest record type. */
size_t cf_rtype_max_size(void);

/* Appends the framed encoding of rec (a struct of type t) to out, with the
 * built-in schema id of t. Never fails for a record that follows records.h's
 * conventions (a NULL required string is written as ""). */
void cf_encode(const cf_registry *reg, cf_rtype t, const void *rec,
               cf_buf *out);

/* Appends rec as one JSON object (no newline): enums as their symbols,
 * optional nulls as null, bytes as lowercase hex strings, times as
 * integers (ms). */
void cf_to_json(const cf_registry *reg, cf_rtype t, const void *rec,
                cf_buf *out);

#endif
