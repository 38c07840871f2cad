/*
 * topics.h: the project's topics, what each holds, and how each must be
 * configured on a cluster: one table (cf_topics) that `chargeflow broker`,
 * `chargeflow topics create|check` and `chargeflow run` all read.
 */
#ifndef CF_TOPICS_H
#define CF_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "records.h"

/* What a topic is to the pipeline; decides its partition count and its
 * cleanup policy. */
typedef enum cf_topic_role {
        CF_TOPIC_INPUT,    /* partitioned by charger; co-partitioned pair */
        CF_TOPIC_TABLE,    /* compacted, read whole by every process */
        CF_TOPIC_OUTPUT,   /* one writer per partition */
        CF_TOPIC_INTERNAL, /* the repartition topic */
        CF_TOPIC_TASKLOG,  /* a task log: kept forever, whatever is asked */
} cf_topic_role;

typedef struct cf_topic_info {
        const char *name;     /* default name */
        const char *key;      /* the configuration key naming it */
        size_t cfg_off;       /* offsetof(cf_config, that key's field) */
        cf_rtype type;        /* record type of the values */
        bool compacted;       /* cleanup.policy=compact (a table) */
        cf_topic_role role;   /* see cf_topic_role */
        int64_t retention_ms; /* retention.ms to create with; -1 forever */
        const char *why;      /* one line: why that configuration */
} cf_topic_info;

/* Every topic, inputs first, then the tables, the outputs and the internal
 * topics: the repartition topic and the task logs. */
extern const cf_topic_info cf_topics[];
extern const size_t cf_n_topics;

/* Indices into cf_topics, in its order. */
enum {
        CF_T_SESSIONS,
        CF_T_METER,
        CF_T_SITES,
        CF_T_USERS,
        CF_T_CHARGE,
        CF_T_STATEMENTS,
        CF_T_REJECTED,
        CF_T_REPARTITION,
        CF_T_RATING_LOG,
        CF_T_BILLING_LOG,
        CF_T__CNT
};

/* The info of a topic by default name, or NULL. */
const cf_topic_info *cf_topic_find(const char *name);

/* The name topic t has under cfg (its topic.* key). */
const char *cf_topic_name(const cf_config *cfg, const cf_topic_info *t);

/* Checks the partition counts parts[i] of cf_topics[i] (names from cfg) for
 * a layout that bills correctly: the two inputs co-partitioned, the
 * repartition topic with the inputs' count, charge-records and rejected with
 * at least the inputs' count, statements with at least the repartition
 * topic's (one writer per output partition). Returns CF_OK, or
 * CF_ERR_CONFIG with errstr naming the topics and the problem. */
cf_err_t cf_topics_check_layout(const cf_config *cfg, const int *parts,
                                char *errstr, size_t errstr_size);

/* Checks that every topic of cfg exists, with one metadata request for all
 * topics (which creates none), before the pipeline touches anything:
 * CF_ERR_CONFIG naming the key and topic when one does not; CF_ERR_KAFKA
 * naming bootstrap.servers when no broker answers within 10 s. */
cf_err_t cf_topics_require(const cf_config *cfg, char *errstr,
                           size_t errstr_size);

/* Options of cf_topics_create and cf_topics_check. */
typedef struct cf_topics_opts {
        int partitions;       /* 0: the inputs' existing count, else 8 */
        int replication;      /* -1: the broker's default.replication.factor */
        int timeout_ms;       /* per admin request */
        bool retention_set;   /* retention_ms overrides the table's */
        int64_t retention_ms; /* for every topic that is not compacted */
        FILE *out;            /* one line per topic and per problem */
} cf_topics_opts;

/* Creates every topic of cfg that does not exist, with its cleanup policy
 * and retention, then checks the whole layout as cf_topics_check does.
 * Idempotent. Returns the number of problems found (0: all well), or -1
 * when the cluster could not be asked (errstr says why, naming the
 * bootstrap servers). Prints what it did and found to o->out. */
int cf_topics_create(const cf_config *cfg, const cf_topics_opts *o,
                     char *errstr, size_t errstr_size);

/* Checks an existing cluster: every topic exists, the layout is one that
 * bills correctly (cf_topics_check_layout), tables are compacted and no
 * other topic is. Returns the number of problems (each printed to o->out,
 * naming the topic), or -1 when the cluster could not be asked. */
int cf_topics_check(const cf_config *cfg, const cf_topics_opts *o, char *errstr,
                    size_t errstr_size);

#endif
