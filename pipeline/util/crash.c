/* crash.c: crash points for the crash tests (see crash.h). */
#include "crash.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the variable env names point, and this hit (counted in *hits)
 * is the one it names. */
static bool due(const char *env, const char *point, int *hits)
{
        const char *at = getenv(env);
        size_t n = strlen(point);
        if (!at || strncmp(at, point, n) || at[n] != ':')
                return false;
        return ++*hits == atoi(at + n + 1);
}

bool cf_crash_due(const char *point)
{
        static int hits;
        return due("CF_CRASH_AT", point, &hits);
}

void cf_crash_now(const char *point)
{
        fprintf(stderr, "crash point %s reached: SIGKILL\n", point);
        raise(SIGKILL);
}

void cf_crash_point(const char *point)
{
        static int pause_hits;
        if (cf_crash_due(point))
                cf_crash_now(point);
        if (due("CF_PAUSE_AT", point, &pause_hits)) {
                fprintf(stderr, "pause point %s reached: SIGSTOP\n", point);
                raise(SIGSTOP);
        }
}
