/*
 * runtime.h: the pipeline runtime (consumers, tasks, state, commits).
 */
#ifndef CF_RUNTIME_H
#define CF_RUNTIME_H

#include <stdbool.h>

#include "config.h"
#include "task.h"

/* Sets what rt takes from the configuration (topics, guarantee) and the
 * stage chains its tasks run (chains.c). Call it before cf_task_new. */
void cf_runtime_init(cf_runtime *rt, const cf_config *cfg);

/* RocksDB's sizes from cfg (state.block.cache.bytes,
 * state.write.buffer.bytes), for cf_state_open. */
cf_state_conf cf_runtime_state_conf(const cf_config *cfg);

/* Runs the pipeline with cfg until SIGINT/SIGTERM (or, with until_idle,
 * until every input partition is read to its end and nothing is pending).
 * Returns the process exit code: 0 after a clean stop, 1 on a runtime
 * failure, 2 on a configuration error. */
int cf_runtime_run(const cf_config *cfg, bool until_idle);

#endif
