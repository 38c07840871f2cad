/*
 * topics.h: the project's topics and the record type of each one's values.
 */
#ifndef CF_TOPICS_H
#define CF_TOPICS_H

#include <stddef.h>

#include "records.h"

typedef struct cf_topic_info {
        const char *name; /* default name */
        cf_rtype type;    /* record type of the values */
        bool compacted;   /* a table topic */
} cf_topic_info;

/* Every topic, inputs first, the internal repartition topic last. */
extern const cf_topic_info cf_topics[];
extern const size_t cf_n_topics;

/* The info of a topic by default name, or NULL. */
const cf_topic_info *cf_topic_find(const char *name);

#endif
