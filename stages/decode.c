/*
 * decode.c: the decode stage. Turns a raw input record into its decoded
 * value (the Confluent wire format, the writer's schema resolved against
 * ours). Bytes that do not decode are rejected as SCHEMA, with the decoder's
 * error code and byte position in the detail; they never stop the task.
 */
#include "stages.h"

static const struct {
        cf_rtype type;
        int32_t kind;
} by_input[CF_IN__CNT] = {
        [CF_IN_SESSIONS] = { CF_RT_SESSION_EVENT, CF_ITEM_EVENT },
        [CF_IN_METER] = { CF_RT_METER_READING, CF_ITEM_READING },
        [CF_IN_REPARTITION] = { CF_RT_BILLING_EVENT, CF_ITEM_BILLING },
};

static cf_stage_rc decode_process(cf_task *t, void *ctx, cf_item *it)
{
        (void)ctx;
        if (it->kind != CF_ITEM_RAW)
                return CF_STAGE_PASS;
        const cf_src *src = it->src;
        cf_rtype type = by_input[src->input].type;
        cf_arena *a = cf_task_scratch(t);
        void *rec = cf_arena_alloc(a, cf_rtype_max_size());
        size_t pos = 0;
        cf_err_t err = cf_decode(cf_task_registry(t), type, src->value,
                                 src->value_len, a, rec, &pos);
        if (err) {
                cf_task_reject(t, &cf_stage_decode, src, CF_REJECT_SCHEMA,
                               CF_NONE, "%s at byte %zu: %s (as %s)",
                               cf_err2name(err), pos, cf_err2str(err),
                               cf_rtype_name(type));
                return CF_STAGE_REJECTED;
        }
        it->kind = by_input[src->input].kind;
        it->rec = rec;
        if (type == CF_RT_SESSION_EVENT)
                it->event_time = ((cf_session_event *)rec)->time_ms;
        else if (type == CF_RT_METER_READING)
                it->event_time = ((cf_meter_reading *)rec)->time_ms;
        else
                it->event_time = ((cf_billing_event *)rec)->watermark_ms;
        return CF_STAGE_PASS;
}

const cf_stage cf_stage_decode = {
        .name = "decode",
        .process = decode_process,
};
