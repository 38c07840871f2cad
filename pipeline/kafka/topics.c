/*
 * topics.c: the topic table, the layout rules that make billing correct, and
 * `chargeflow topics create|check` through librdkafka's Admin API (see
 * topics.h).
 */
#include "topics.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"

/* Said after an admin request timed out. */
#define NO_ADMIN                                                               \
        " (the embedded broker, `chargeflow broker`, serves no admin "         \
        "requests: it makes its topics itself)"

#define T(n, k, f, ty, c, r, ret, w)                                           \
        {                                                                      \
                .name = n, .key = k, .cfg_off = offsetof(cf_config, f),        \
                .type = ty, .compacted = c, .role = r, .retention_ms = ret,    \
                .why = w                                                       \
        }

const cf_topic_info cf_topics[] = {
        T("charging.sessions", "topic.sessions", topic_sessions,
          CF_RT_SESSION_EVENT, false, CF_TOPIC_INPUT, 7 * CF_MS_PER_DAY,
          "input, keyed by charger; co-partitioned with charging.meter"),
        T("charging.meter", "topic.meter", topic_meter, CF_RT_METER_READING,
          false, CF_TOPIC_INPUT, 7 * CF_MS_PER_DAY,
          "input, keyed by charger; co-partitioned with charging.sessions"),
        T("billing.sites", "topic.sites", topic_sites, CF_RT_SITE, true,
          CF_TOPIC_TABLE, -1, "table: the latest config per site, compacted"),
        T("billing.users", "topic.users", topic_users, CF_RT_USER, true,
          CF_TOPIC_TABLE, -1, "table: the latest record per user, compacted"),
        T("billing.charge-records", "topic.charge-records",
          topic_charge_records, CF_RT_CHARGE_RECORD, false, CF_TOPIC_OUTPUT, -1,
          "output, the invoice basis: kept until the operator deletes it"),
        T("billing.statements", "topic.statements", topic_statements,
          CF_RT_STATEMENT, false, CF_TOPIC_OUTPUT, -1,
          "output, the invoice basis: kept until the operator deletes it"),
        T("billing.rejected", "topic.rejected", topic_rejected, CF_RT_REJECTED,
          false, CF_TOPIC_OUTPUT, 30 * CF_MS_PER_DAY,
          "output for operators to inspect and replay: 30 days"),
        T("chargeflow.billing-repartition", "topic.repartition",
          topic_repartition, CF_RT_BILLING_EVENT, false, CF_TOPIC_INTERNAL,
          7 * CF_MS_PER_DAY,
          "internal, keyed by billed party; the inputs' count"),
        T("chargeflow.rating-log", "topic.rating-log", topic_rating_log,
          CF_RT__CNT, false, CF_TOPIC_TASKLOG, -1,
          "internal task log: the rating tasks' commits, kept forever (the "
          "whole log is a task's state)"),
        T("chargeflow.billing-log", "topic.billing-log", topic_billing_log,
          CF_RT__CNT, false, CF_TOPIC_TASKLOG, -1,
          "internal task log: the billing tasks' commits, kept forever"),
};
const size_t cf_n_topics = sizeof(cf_topics) / sizeof(cf_topics[0]);
_Static_assert(sizeof(cf_topics) / sizeof(cf_topics[0]) == CF_T__CNT,
               "cf_topics and its index enum agree");

const cf_topic_info *cf_topic_find(const char *name)
{
        for (size_t i = 0; i < cf_n_topics; i++)
                if (!strcmp(cf_topics[i].name, name))
                        return &cf_topics[i];
        return NULL;
}

const char *cf_topic_name(const cf_config *cfg, const cf_topic_info *t)
{
        return *(char *const *)((const char *)cfg + t->cfg_off);
}

cf_err_t cf_topics_check_layout(const cf_config *cfg, const int *parts,
                                char *errstr, size_t errstr_size)
{
#define NAME(i) cf_topic_name(cfg, &cf_topics[i])
        int ns = parts[CF_T_SESSIONS], nr = parts[CF_T_REPARTITION];
        if (ns != parts[CF_T_METER]) {
                snprintf(errstr, errstr_size,
                         "%s has %d partitions and %s %d: the inputs must be "
                         "co-partitioned (same key, same partition count)",
                         NAME(CF_T_SESSIONS), ns, NAME(CF_T_METER),
                         parts[CF_T_METER]);
                return CF_ERR_CONFIG;
        }
        if (parts[CF_T_CHARGE] < ns || parts[CF_T_REJECTED] < ns) {
                snprintf(errstr, errstr_size,
                         "%s and %s need at least the %d partitions of the "
                         "inputs (one writer per partition)",
                         NAME(CF_T_CHARGE), NAME(CF_T_REJECTED), ns);
                return CF_ERR_CONFIG;
        }
        if (parts[CF_T_STATEMENTS] < nr) {
                snprintf(errstr, errstr_size,
                         "%s needs at least the %d partitions of %s (one "
                         "writer per partition)",
                         NAME(CF_T_STATEMENTS), nr, NAME(CF_T_REPARTITION));
                return CF_ERR_CONFIG;
        }
        if (parts[CF_T_RATING_LOG] < ns || parts[CF_T_BILLING_LOG] < nr) {
                snprintf(errstr, errstr_size,
                         "%s needs at least the %d partitions of the inputs "
                         "and %s the %d of %s (one task per partition)",
                         NAME(CF_T_RATING_LOG), ns, NAME(CF_T_BILLING_LOG), nr,
                         NAME(CF_T_REPARTITION));
                return CF_ERR_CONFIG;
        }
        return CF_OK;
#undef NAME
}

/* An admin client on cfg's cluster (its kafka.* settings that apply to a
 * producer included). */
static rd_kafka_t *admin_new(const cf_config *cfg, char *errstr,
                             size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            cf_kafka_client_conf(cfg, CF_KAFKA_PRODUCER, errstr, errstr_size);
        if (!conf)
                return NULL;
        return rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
}

/* parts[i] := partition count of cf_topics[i], 0 when it does not exist.
 * Asks for every topic's metadata, which never creates one. */
static int partition_counts(rd_kafka_t *rk, const cf_config *cfg, int *parts,
                            int timeout_ms, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size,
                         "bootstrap.servers %s: no broker answered within %d "
                         "ms (%s)",
                         cfg->bootstrap_servers, timeout_ms,
                         rd_kafka_err2str(err));
                return -1;
        }
        for (size_t i = 0; i < cf_n_topics; i++) {
                parts[i] = 0;
                const char *name = cf_topic_name(cfg, &cf_topics[i]);
                for (int t = 0; t < md->topic_cnt; t++)
                        if (!md->topics[t].err &&
                            !strcmp(md->topics[t].topic, name))
                                parts[i] = md->topics[t].partition_cnt;
        }
        rd_kafka_metadata_destroy(md);
        return 0;
}

/* Waits for the one admin result on q (timeout_ms + a margin). */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
        return rd_kafka_queue_poll(q, timeout_ms + 5000);
}

/* Checks every existing topic's cleanup.policy with DescribeConfigs; prints
 * each problem. Returns the number of problems, or -1. A broker that does not
 * serve DescribeConfigs (the embedded one) gets a warning line, since
 * nothing there can be misconfigured: it creates its topics itself. */
static int check_policies(rd_kafka_t *rk, const cf_config *cfg,
                          const int *parts, const cf_topics_opts *o,
                          char *errstr, size_t errstr_size)
{
        rd_kafka_ConfigResource_t *res[CF_T__CNT];
        size_t idx[CF_T__CNT], n = 0;
        for (size_t i = 0; i < cf_n_topics; i++) {
                if (!parts[i])
                        continue;
                res[n] = rd_kafka_ConfigResource_new(
                    RD_KAFKA_RESOURCE_TOPIC, cf_topic_name(cfg, &cf_topics[i]));
                idx[n++] = i;
        }
        if (!n)
                return 0;
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *ao =
            rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        rd_kafka_AdminOptions_set_request_timeout(ao, o->timeout_ms, NULL, 0);
        rd_kafka_DescribeConfigs(rk, res, n, ao, q);
        rd_kafka_event_t *ev = admin_wait(q, o->timeout_ms);
        int problems = -1;
        if (!ev) {
                snprintf(errstr, errstr_size,
                         "DescribeConfigs on %s: no answer in %d ms",
                         cfg->bootstrap_servers, o->timeout_ms);
                goto done;
        }
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        if (err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
            err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION) {
                fprintf(o->out,
                        "warning: %s does not serve DescribeConfigs: cleanup "
                        "policies not checked\n",
                        cfg->bootstrap_servers);
                problems = 0;
                goto done;
        }
        if (err) {
                snprintf(errstr, errstr_size, "DescribeConfigs on %s: %s%s",
                         cfg->bootstrap_servers,
                         rd_kafka_event_error_string(ev),
                         err == RD_KAFKA_RESP_ERR__TIMED_OUT ? NO_ADMIN : "");
                goto done;
        }
        const rd_kafka_DescribeConfigs_result_t *r =
            rd_kafka_event_DescribeConfigs_result(ev);
        size_t rn;
        const rd_kafka_ConfigResource_t **rr =
            rd_kafka_DescribeConfigs_result_resources(r, &rn);
        problems = 0;
        for (size_t k = 0; k < rn; k++) {
                const char *name = rd_kafka_ConfigResource_name(rr[k]);
                const cf_topic_info *t = NULL;
                for (size_t j = 0; j < n; j++)
                        if (!strcmp(name,
                                    cf_topic_name(cfg, &cf_topics[idx[j]])))
                                t = &cf_topics[idx[j]];
                if (!t)
                        continue;
                if (rd_kafka_ConfigResource_error(rr[k])) {
                        fprintf(o->out,
                                "problem: %s: cannot read its "
                                "configuration: %s\n",
                                name,
                                rd_kafka_ConfigResource_error_string(rr[k]));
                        problems++;
                        continue;
                }
                size_t cn;
                const rd_kafka_ConfigEntry_t **ce =
                    rd_kafka_ConfigResource_configs(rr[k], &cn);
                const char *policy = "delete", *retention = NULL;
                for (size_t c = 0; c < cn; c++) {
                        const char *cname = rd_kafka_ConfigEntry_name(ce[c]);
                        const char *cval = rd_kafka_ConfigEntry_value(ce[c]);
                        if (!cval)
                                continue;
                        if (!strcmp(cname, "cleanup.policy"))
                                policy = cval;
                        else if (!strcmp(cname, "retention.ms"))
                                retention = cval;
                }
                if (t->role == CF_TOPIC_TASKLOG && retention &&
                    strcmp(retention, "-1")) {
                        fprintf(o->out,
                                "problem: %s (%s) has retention.ms=%s: a task "
                                "log must be kept forever (retention.ms=-1): "
                                "a restore replays it whole\n",
                                name, t->key, retention);
                        problems++;
                }
                bool compact = strstr(policy, "compact") != NULL;
                bool del = strstr(policy, "delete") != NULL;
                if (t->compacted && (!compact || del)) {
                        fprintf(o->out,
                                "problem: %s (%s) has cleanup.policy=%s: a "
                                "table must be compact only, or its older "
                                "records are deleted and sites or users "
                                "vanish\n",
                                name, t->key, policy);
                        problems++;
                } else if (!t->compacted && compact) {
                        fprintf(o->out,
                                "problem: %s (%s) has cleanup.policy=%s: "
                                "compaction keeps only the last record per "
                                "key and would drop %s\n",
                                name, t->key, policy,
                                t->role == CF_TOPIC_INPUT
                                    ? "events of a charger before they are "
                                      "billed"
                                    : "records that are not a table's");
                        problems++;
                } else {
                        fprintf(o->out, "ok: %s cleanup.policy=%s\n", name,
                                policy);
                }
        }
done:
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_queue_destroy(q);
        for (size_t j = 0; j < n; j++)
                rd_kafka_ConfigResource_destroy(res[j]);
        return problems;
}

cf_err_t cf_topics_require(const cf_config *cfg, char *errstr,
                           size_t errstr_size)
{
        int parts[CF_T__CNT];
        rd_kafka_t *rk = admin_new(cfg, errstr, errstr_size);
        if (!rk)
                return CF_ERR_CONFIG;
        cf_err_t err = CF_OK;
        if (partition_counts(rk, cfg, parts, 10000, errstr, errstr_size))
                err = CF_ERR_KAFKA;
        for (size_t i = 0; i < cf_n_topics && !err; i++)
                if (!parts[i]) {
                        snprintf(errstr, errstr_size,
                                 "%s: topic '%s' does not exist on %s "
                                 "(chargeflow never creates topics: check "
                                 "the name, or create it with `chargeflow "
                                 "topics create`)",
                                 cf_topics[i].key,
                                 cf_topic_name(cfg, &cf_topics[i]),
                                 cfg->bootstrap_servers);
                        err = CF_ERR_CONFIG;
                }
        rd_kafka_destroy(rk);
        return err;
}

static int check(rd_kafka_t *rk, const cf_config *cfg, const cf_topics_opts *o,
                 char *errstr, size_t errstr_size)
{
        int parts[CF_T__CNT];
        if (partition_counts(rk, cfg, parts, o->timeout_ms, errstr,
                             errstr_size))
                return -1;
        int problems = 0;
        for (size_t i = 0; i < cf_n_topics; i++) {
                const char *name = cf_topic_name(cfg, &cf_topics[i]);
                if (!parts[i]) {
                        fprintf(o->out,
                                "problem: %s (%s) does not exist; `chargeflow "
                                "topics create` makes it\n",
                                name, cf_topics[i].key);
                        problems++;
                } else {
                        fprintf(o->out, "ok: %s has %d partitions\n", name,
                                parts[i]);
                }
        }
        if (problems)
                return problems;
        char why[512];
        if (cf_topics_check_layout(cfg, parts, why, sizeof(why))) {
                fprintf(o->out, "problem: %s\n", why);
                problems++;
        }
        if (parts[CF_T_REPARTITION] != parts[CF_T_SESSIONS]) {
                fprintf(o->out,
                        "problem: %s has %d partitions and the inputs %d: the "
                        "internal topic must have the inputs' count\n",
                        cf_topic_name(cfg, &cf_topics[CF_T_REPARTITION]),
                        parts[CF_T_REPARTITION], parts[CF_T_SESSIONS]);
                problems++;
        }
        int pp = check_policies(rk, cfg, parts, o, errstr, errstr_size);
        return pp < 0 ? -1 : problems + pp;
}

int cf_topics_check(const cf_config *cfg, const cf_topics_opts *o, char *errstr,
                    size_t errstr_size)
{
        rd_kafka_t *rk = admin_new(cfg, errstr, errstr_size);
        if (!rk)
                return -1;
        int r = check(rk, cfg, o, errstr, errstr_size);
        rd_kafka_destroy(rk);
        return r;
}

int cf_topics_create(const cf_config *cfg, const cf_topics_opts *o,
                     char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk = admin_new(cfg, errstr, errstr_size);
        if (!rk)
                return -1;
        int parts[CF_T__CNT], r = -1;
        rd_kafka_NewTopic_t *nt[CF_T__CNT];
        size_t n = 0;
        rd_kafka_queue_t *q = NULL;
        rd_kafka_AdminOptions_t *ao = NULL;
        rd_kafka_event_t *ev = NULL;
        if (partition_counts(rk, cfg, parts, o->timeout_ms, errstr,
                             errstr_size))
                goto done;
        /* The inputs may exist already (the charger backend made them):
         * every other topic follows their count. */
        int np = o->partitions;
        if (np <= 0)
                np = parts[CF_T_SESSIONS] ? parts[CF_T_SESSIONS]
                     : parts[CF_T_METER]  ? parts[CF_T_METER]
                                          : 8;
        for (size_t i = 0; i < cf_n_topics; i++) {
                const cf_topic_info *t = &cf_topics[i];
                if (parts[i])
                        continue;
                nt[n] =
                    rd_kafka_NewTopic_new(cf_topic_name(cfg, t), np,
                                          o->replication, errstr, errstr_size);
                if (!nt[n])
                        goto done;
                char ret[32];
                snprintf(
                    ret, sizeof(ret), "%lld",
                    (long long)(o->retention_set && t->role != CF_TOPIC_TASKLOG
                                    ? o->retention_ms
                                    : t->retention_ms));
                /* A table is never deleted by time: retention.ms -1 too,
                 * for brokers that apply it to compacted topics. */
                if (rd_kafka_NewTopic_set_config(nt[n], "cleanup.policy",
                                                 t->compacted ? "compact"
                                                              : "delete") ||
                    rd_kafka_NewTopic_set_config(nt[n], "retention.ms",
                                                 t->compacted ? "-1" : ret)) {
                        snprintf(errstr, errstr_size, "topic config of %s",
                                 t->name);
                        n++;
                        goto done;
                }
                n++;
        }
        if (n) {
                q = rd_kafka_queue_new(rk);
                ao = rd_kafka_AdminOptions_new(rk,
                                               RD_KAFKA_ADMIN_OP_CREATETOPICS);
                rd_kafka_AdminOptions_set_request_timeout(ao, o->timeout_ms,
                                                          NULL, 0);
                rd_kafka_AdminOptions_set_operation_timeout(ao, o->timeout_ms,
                                                            NULL, 0);
                rd_kafka_CreateTopics(rk, nt, n, ao, q);
                ev = admin_wait(q, o->timeout_ms);
                if (!ev) {
                        snprintf(errstr, errstr_size,
                                 "CreateTopics on %s: no answer in %d ms",
                                 cfg->bootstrap_servers, o->timeout_ms);
                        goto done;
                }
                if (rd_kafka_event_error(ev)) {
                        snprintf(errstr, errstr_size,
                                 "CreateTopics on %s: %s%s",
                                 cfg->bootstrap_servers,
                                 rd_kafka_event_error_string(ev),
                                 rd_kafka_event_error(ev) ==
                                         RD_KAFKA_RESP_ERR__TIMED_OUT
                                     ? NO_ADMIN
                                     : "");
                        goto done;
                }
                size_t tn;
                const rd_kafka_topic_result_t **tr =
                    rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &tn);
                for (size_t k = 0; k < tn; k++) {
                        rd_kafka_resp_err_t e =
                            rd_kafka_topic_result_error(tr[k]);
                        const char *name = rd_kafka_topic_result_name(tr[k]);
                        if (!e)
                                fprintf(o->out,
                                        "created: %s with %d partitions\n",
                                        name, np);
                        else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                fprintf(
                                    o->out, "problem: creating %s: %s\n", name,
                                    rd_kafka_topic_result_error_string(tr[k]));
                }
        }
        r = check(rk, cfg, o, errstr, errstr_size);
        if (r >= 0 && o->partitions > 0 && parts[CF_T_SESSIONS] &&
            parts[CF_T_SESSIONS] != o->partitions) {
                fprintf(o->out,
                        "problem: %s exists with %d partitions, not the %d "
                        "asked for; chargeflow never changes a topic's "
                        "partition count (it would move chargers between "
                        "tasks)\n",
                        cf_topic_name(cfg, &cf_topics[CF_T_SESSIONS]),
                        parts[CF_T_SESSIONS], o->partitions);
                r++;
        }
done:
        if (ev)
                rd_kafka_event_destroy(ev);
        if (ao)
                rd_kafka_AdminOptions_destroy(ao);
        if (q)
                rd_kafka_queue_destroy(q);
        for (size_t k = 0; k < n; k++)
                rd_kafka_NewTopic_destroy(nt[k]);
        rd_kafka_destroy(rk);
        return r;
}
