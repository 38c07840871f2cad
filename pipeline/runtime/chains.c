/*
 * chains.c: the stage chains the runtime runs, one per sub-topology, and
 * cf_runtime_init, which hands them to the tasks (see runtime.h). This is
 * the one place that names the stages: the task layer below runs whatever
 * chain it is given.
 *
 * Rating ('A' tasks, input topics sessions and meter): decode, dedup,
 * validate, sessionize, price. Billing (the repartition topic, keyed by
 * billed party): decode, dedup, bill.
 */
#include <string.h>

#include "runtime.h"
#include "stages.h"

static const cf_stage *const chain_rate[] = {
        &cf_stage_decode,     &cf_stage_dedup, &cf_stage_validate,
        &cf_stage_sessionize, &cf_stage_price,
};

static const cf_stage *const chain_bill[] = {
        &cf_stage_decode,
        &cf_stage_dedup,
        &cf_stage_bill,
};

void cf_runtime_init(cf_runtime *rt, const cf_config *cfg)
{
        rt->cfg = cfg;
        rt->exactly_once = !strcmp(cfg->processing_guarantee, "exactly_once");
        rt->ts_event = !strcmp(cfg->timestamp_source, "event");
        rt->in_topic[CF_IN_SESSIONS] = cfg->topic_sessions;
        rt->in_topic[CF_IN_METER] = cfg->topic_meter;
        rt->in_topic[CF_IN_REPARTITION] = cfg->topic_repartition;
        rt->out_topic[CF_OUT_CHARGE] = cfg->topic_charge_records;
        rt->out_topic[CF_OUT_REJECTED] = cfg->topic_rejected;
        rt->out_topic[CF_OUT_REPARTITION] = cfg->topic_repartition;
        rt->out_topic[CF_OUT_STATEMENT] = cfg->topic_statements;
        rt->out_topic[CF_OUT_RATING_LOG] = cfg->topic_rating_log;
        rt->out_topic[CF_OUT_BILLING_LOG] = cfg->topic_billing_log;
        rt->chain_rate = chain_rate;
        rt->n_chain_rate = sizeof(chain_rate) / sizeof(chain_rate[0]);
        rt->chain_bill = chain_bill;
        rt->n_chain_bill = sizeof(chain_bill) / sizeof(chain_bill[0]);
}
