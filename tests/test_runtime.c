/*
 * test_runtime.c: the runtime (pipeline/runtime/): how the process
 * shares its state cache among the tasks.
 * Through the stage-chain rig (rig.h) in the rating tests' world: site-1,
 * its users, waits and time T0 (rating_rig.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rating_rig.h"

/* state.cache.max.bytes is the process's total: 3/4 shared by the rating
 * tasks, 1/4 by the billing tasks, evenly within each kind. */
static void runtime_splits_state_cache_among_tasks(void **state)
{
        (void)state;
        cf_rig *r = rating_rig_new(); /* 1 partition, the default 64 MiB */
        assert_int_equal(cf_task_cache_budget(cf_inproc_task(r->ip, 0)),
                         48 << 20);
        assert_int_equal(cf_task_cache_budget(cf_inproc_task(r->ip, 1)),
                         16 << 20);
        cf_inproc_destroy(r->ip);
        r->ip = NULL;
        cf_rig_set(r, "state.cache.max.bytes", "8388608");
        cf_rig_open(r, 4);
        size_t sum = 0;
        for (int32_t i = 0; i < 8; i++) {
                size_t b = cf_task_cache_budget(cf_inproc_task(r->ip, i));
                assert_int_equal(b, i < 4 ? 1572864 : 524288);
                sum += b;
        }
        assert_int_equal(sum, 8388608);
        cf_rig_done(r);
}

#define T(f) cmocka_unit_test_teardown(f, cf_rig_cleanup)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(runtime_splits_state_cache_among_tasks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
