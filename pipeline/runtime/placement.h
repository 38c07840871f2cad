/*
 * placement.h: where standby copies go (num.standby.replicas). The group
 * uses librdkafka's range assignor, which is deterministic: the members
 * sorted by id, partition p of a topic with n partitions goes to the
 * member whose range holds it (n / m each, the first n % m one more). A
 * process that knows the group's members can so predict what it would be
 * given if any one other member left: those tasks are its standby set.
 */
#ifndef CF_PLACEMENT_H
#define CF_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

/* The range assignor's share of member i (0-based, in sorted order) of m
 * among n partitions: [*lo, *hi). */
void cf_range_share(int32_t n, int m, int i, int32_t *lo, int32_t *hi);

/* Marks gain[p] (p < n) for each partition that member self of m (sorted)
 * would be given, beyond its own share, if any one other member left. */
void cf_standby_gains(int32_t n, int m, int self, bool *gain);

#endif
