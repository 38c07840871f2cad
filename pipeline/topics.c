/* topics.c: the topic table (see topics.h). */
#include "topics.h"

#include <string.h>

const cf_topic_info cf_topics[] = {
        { "charging.sessions", CF_RT_SESSION_EVENT, false },
        { "charging.meter", CF_RT_METER_READING, false },
        { "billing.sites", CF_RT_SITE, true },
        { "billing.users", CF_RT_USER, true },
        { "billing.charge-records", CF_RT_CHARGE_RECORD, false },
        { "billing.statements", CF_RT_STATEMENT, false },
        { "billing.rejected", CF_RT_REJECTED, false },
        { "chargeflow.billing-repartition", CF_RT_BILLING_EVENT, false },
};
const size_t cf_n_topics = sizeof(cf_topics) / sizeof(cf_topics[0]);

const cf_topic_info *cf_topic_find(const char *name)
{
        for (size_t i = 0; i < cf_n_topics; i++)
                if (!strcmp(cf_topics[i].name, name))
                        return &cf_topics[i];
        return NULL;
}
