/*
 * clock.h: units of time in milliseconds, and the two clocks the process
 * reads. Event time (what billing runs on) never comes from these clocks:
 * they time commits, waits and logs.
 */
#ifndef CF_CLOCK_H
#define CF_CLOCK_H

#include <stdint.h>

#define CF_MS_PER_HOUR 3600000LL
#define CF_MS_PER_DAY  86400000LL

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t cf_wall_ms(void);

/* Milliseconds of a monotonic clock, for durations (CLOCK_MONOTONIC). */
int64_t cf_mono_ms(void);

#endif
