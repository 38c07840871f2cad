/*
 * placement.c: the range assignor's shares, and what a member gains when
 * another leaves (see placement.h).
 */
#include "placement.h"

void cf_range_share(int32_t n, int m, int i, int32_t *lo, int32_t *hi)
{
        int32_t per = n / m, extra = n % m;
        *lo = per * i + (i < extra ? i : extra);
        *hi = *lo + per + (i < extra ? 1 : 0);
}

void cf_standby_gains(int32_t n, int m, int self, bool *gain)
{
        int32_t lo, hi;
        cf_range_share(n, m, self, &lo, &hi);
        for (int dead = 0; dead < m; dead++) {
                if (dead == self)
                        continue;
                /* Without the dead member, self moves down one place if
                 * the dead one sorted before it. */
                int32_t l2, h2;
                cf_range_share(n, m - 1, dead < self ? self - 1 : self, &l2,
                               &h2);
                for (int32_t p = l2; p < h2; p++)
                        if (p < lo || p >= hi)
                                gain[p] = true;
        }
}
