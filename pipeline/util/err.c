/* err.c: names and descriptions of cf_err_t values. */
#include "err.h"

static const struct {
        const char *name;
        const char *desc;
} cf_errs[CF_ERR__CNT] = {
        [CF_OK] = { "OK", "success" },
        [CF_ERR_MAGIC] = { "MAGIC", "wrong magic byte (expected 0)" },
        [CF_ERR_SCHEMA_ID] = { "SCHEMA_ID", "unknown schema id" },
        [CF_ERR_SCHEMA_TYPE] = { "SCHEMA_TYPE",
                                 "schema id belongs to another record type" },
        [CF_ERR_TRUNCATED] = { "TRUNCATED", "truncated body" },
        [CF_ERR_TRAILING] = { "TRAILING", "trailing bytes after the record" },
        [CF_ERR_LENGTH] = { "LENGTH", "negative length or count" },
        [CF_ERR_TOO_LARGE] = { "TOO_LARGE",
                               "length or count larger than the input" },
        [CF_ERR_VARINT] = { "VARINT", "malformed or out-of-range varint" },
        [CF_ERR_UNION] = { "UNION", "union branch index out of range" },
        [CF_ERR_NULL] = { "NULL", "null where a value is required" },
        [CF_ERR_ENUM] = { "ENUM", "enum symbol out of range" },
        [CF_ERR_BOOL] = { "BOOL", "boolean byte not 0 or 1" },
        [CF_ERR_DEPTH] = { "DEPTH", "nesting too deep" },
        [CF_ERR_SCHEMA] = { "SCHEMA", "invalid schema" },
        [CF_ERR_INCOMPATIBLE] = { "INCOMPATIBLE",
                                  "writer schema incompatible with reader" },
        [CF_ERR_CONFIG] = { "CONFIG", "configuration error" },
        [CF_ERR_ARG] = { "ARG", "invalid argument" },
        [CF_ERR_IO] = { "IO", "I/O error" },
        [CF_ERR_KAFKA] = { "KAFKA", "Kafka client error" },
        [CF_ERR_STATE] = { "STATE", "state store error" },
        [CF_ERR_TARIFF] = { "TARIFF", "invalid or unsupported tariff" },
        [CF_ERR_TZ] = { "TZ", "unknown time zone" },
        [CF_ERR_NOT_FOUND] = { "NOT_FOUND", "not found" },
        [CF_ERR_CORRUPT] = { "CORRUPT", "stored state cannot be decoded" },
};

const char *cf_err2str(cf_err_t err)
{
        if ((unsigned)err >= CF_ERR__CNT)
                return "unknown error";
        return cf_errs[err].desc;
}

const char *cf_err2name(cf_err_t err)
{
        if ((unsigned)err >= CF_ERR__CNT)
                return "UNKNOWN";
        return cf_errs[err].name;
}
