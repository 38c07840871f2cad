/*
 * err.h: the project's one error enum and its strings.
 *
 * Every fallible function returns cf_err_t; errors from RocksDB, librdkafka,
 * Avro C and jansson are translated at the boundary. Setup functions also
 * fill a caller's errstr buffer with the detail (which key, which field).
 * Two kinds of function answer otherwise, by design: the builders of a
 * librdkafka configuration (kafka.h) return it or NULL, as rd_kafka_new
 * does; the topic commands' checks (topics.h) return the number of problems
 * found, -1 when the cluster could not be asked.
 */
#ifndef CF_ERR_H
#define CF_ERR_H

#include <stddef.h>

typedef enum cf_err {
        CF_OK = 0,
        /* Wire format and Avro body (decoder). */
        CF_ERR_MAGIC,       /* first byte is not the Confluent magic 0 */
        CF_ERR_SCHEMA_ID,   /* schema id not in the registry */
        CF_ERR_SCHEMA_TYPE, /* schema id names another record type */
        CF_ERR_TRUNCATED,   /* body ends inside a value */
        CF_ERR_TRAILING,    /* bytes left after the record */
        CF_ERR_LENGTH,      /* negative string, bytes or block length */
        CF_ERR_TOO_LARGE,   /* length or count larger than the input */
        CF_ERR_VARINT,      /* varint longer than 10 bytes or out of range */
        CF_ERR_UNION,       /* union branch index out of range */
        CF_ERR_NULL,        /* null where the reader needs a value */
        CF_ERR_ENUM,        /* enum index out of range or unknown symbol */
        CF_ERR_BOOL,        /* boolean byte other than 0 or 1 */
        CF_ERR_DEPTH,       /* nesting deeper than the decoder allows */
        /* Schemas. */
        CF_ERR_SCHEMA, /* schema JSON invalid or not what the code expects */
        CF_ERR_INCOMPATIBLE, /* writer schema cannot be resolved to reader */
        /* Setup and runtime. */
        CF_ERR_CONFIG,    /* configuration key unknown or value invalid */
        CF_ERR_ARG,       /* bad command-line argument */
        CF_ERR_IO,        /* file or socket error */
        CF_ERR_KAFKA,     /* librdkafka error */
        CF_ERR_STATE,     /* RocksDB error */
        CF_ERR_TARIFF,    /* tariff document invalid or unsupported */
        CF_ERR_TZ,        /* unknown time zone */
        CF_ERR_NOT_FOUND, /* lookup found nothing */
        CF_ERR_CORRUPT,   /* stored state cannot be decoded */
        CF_ERR__CNT
} cf_err_t;

/* Returns a constant, human-readable string for err; never NULL. */
const char *cf_err2str(cf_err_t err);
/* Returns the enum's identifier without prefix ("TRUNCATED"); never NULL. */
const char *cf_err2name(cf_err_t err);

#endif
