/*
 * crash.h: crash points for the crash tests. CF_CRASH_AT=point:n makes the
 * process SIGKILL itself the n-th time it reaches point (start, tables,
 * commit, synced, synced-idle, produce, produced, log, tornlog);
 * CF_PAUSE_AT=point:n makes it SIGSTOP itself there instead (a frozen
 * process, a zombie once its group moved its tasks; the test resumes it
 * with SIGCONT). Unset in production:
 * the check is a string compare at a handful of places that run once per
 * commit or less.
 */
#ifndef CF_CRASH_H
#define CF_CRASH_H

#include <stdbool.h>

/* Kills the process here when CF_CRASH_AT names this point and count,
 * stops it (SIGSTOP) when CF_PAUSE_AT does. */
void cf_crash_point(const char *point);

/* Counts a hit of point like cf_crash_point, but only says whether this
 * is the hit CF_CRASH_AT names: the caller prepares (e.g. waits for a
 * delivery), then calls cf_crash_now. */
bool cf_crash_due(const char *point);
void cf_crash_now(const char *point);

#endif
