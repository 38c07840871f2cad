/*
 * runtime.h: the pipeline runtime (consumers, tasks, state, commits).
 */
#ifndef CF_RUNTIME_H
#define CF_RUNTIME_H

#include <stdbool.h>

#include "config.h"

/* Runs the pipeline with cfg until SIGINT/SIGTERM (or, with until_idle,
 * until every input partition is read to its end and nothing is pending).
 * Returns the process exit code: 0 after a clean stop, 1 on a runtime
 * failure, 2 on a configuration error. */
int cf_runtime_run(const cf_config *cfg, bool until_idle);

#endif
