/*
 * test_placement.c: the range assignor's shares and the standby set a
 * member predicts from them (pipeline/runtime/placement.c), against
 * assignments worked out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "placement.h"

/* gain[] as a bit set, partition p at bit p. */
static uint32_t gains(int32_t n, int m, int self)
{
        bool g[32];
        uint32_t bits = 0;
        memset(g, 0, sizeof(g));
        cf_standby_gains(n, m, self, g);
        for (int32_t p = 0; p < n; p++)
                if (g[p])
                        bits |= 1u << p;
        return bits;
}

/* 16 partitions among members a < b < c: 16 = 3 * 5 + 1, so a gets 6
 * (0-5), b 5 (6-10), c 5 (11-15). */
static void three_members_sixteen_partitions(void **state)
{
        (void)state;
        int32_t lo, hi;
        cf_range_share(16, 3, 0, &lo, &hi);
        assert_int_equal(lo, 0);
        assert_int_equal(hi, 6);
        cf_range_share(16, 3, 1, &lo, &hi);
        assert_int_equal(lo, 6);
        assert_int_equal(hi, 11);
        cf_range_share(16, 3, 2, &lo, &hi);
        assert_int_equal(lo, 11);
        assert_int_equal(hi, 16);
        /* b dies: a gets 0-7, c 8-15; c dies: a 0-7, b 8-15. So a gains
         * 6 and 7 either way. */
        assert_int_equal(gains(16, 3, 0), 0x00c0u);
        /* a dies: b 0-7 (gains 0-5); c dies: b 8-15 (gains 11-15). */
        assert_int_equal(gains(16, 3, 1), 0xf83fu);
        /* a or b dies: c 8-15, gains 8, 9, 10. */
        assert_int_equal(gains(16, 3, 2), 0x0700u);
        /* Every partition has a standby among the others. */
        assert_int_equal(gains(16, 3, 0) | gains(16, 3, 1) | gains(16, 3, 2),
                         0xffffu);
}

/* Two members: each gains all of the other's. One member: nothing. */
static void two_members_and_one(void **state)
{
        (void)state;
        assert_int_equal(gains(4, 2, 0), 0xcu);
        assert_int_equal(gains(4, 2, 1), 0x3u);
        assert_int_equal(gains(4, 1, 0), 0u);
}

/* Fewer partitions than members: 2 among a < b < c gives a 0, b 1, c
 * none. a dies: b 0, c 1; b dies: a 0, c 1; c dies: a 0, b 1. So a gains
 * nothing, b gains 0, c gains 1. */
static void fewer_partitions_than_members(void **state)
{
        (void)state;
        int32_t lo, hi;
        cf_range_share(2, 3, 2, &lo, &hi);
        assert_int_equal(hi - lo, 0);
        assert_int_equal(gains(2, 3, 0), 0u);
        assert_int_equal(gains(2, 3, 1), 0x1u);
        assert_int_equal(gains(2, 3, 2), 0x2u);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(three_members_sixteen_partitions),
                cmocka_unit_test(two_members_and_one),
                cmocka_unit_test(fewer_partitions_than_members),
        };
        return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}
