/*
 * runtime.c: the pipeline runtime.
 *
 * Not built yet: the rating and billing sub-topologies arrive with their
 * issues. Until then `run` validates its configuration and says so.
 */
#include "runtime.h"

#include <stdio.h>

int cf_runtime_run(const cf_config *cfg, bool until_idle)
{
        (void)cfg;
        (void)until_idle;
        fprintf(stderr, "chargeflow run: configuration is valid, but this "
                        "build has no pipeline runtime yet\n");
        return 1;
}
