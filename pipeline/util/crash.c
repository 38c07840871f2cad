/* crash.c: crash points for the crash tests (see crash.h). */
#include "crash.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cf_crash_due(const char *point)
{
        static int hits;
        const char *at = getenv("CF_CRASH_AT");
        size_t n = strlen(point);
        if (!at || strncmp(at, point, n) || at[n] != ':')
                return false;
        return ++hits == atoi(at + n + 1);
}

void cf_crash_now(const char *point)
{
        fprintf(stderr, "crash point %s reached: SIGKILL\n", point);
        raise(SIGKILL);
}

void cf_crash_point(const char *point)
{
        if (cf_crash_due(point))
                cf_crash_now(point);
}
