/* log.c: timestamped log lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int cf_log_level = CF_LOG_INFO;

void cf_log_set_level(const char *name)
{
        static const char *const names[] = { "debug", "info", "warn", "error" };
        for (int i = 0; i < 4; i++)
                if (!strcmp(name, names[i]))
                        cf_log_level = i;
}

void cf_log(int level, const char *fmt, ...)
{
        static const char *const tags[] = { "DEBUG", "INFO ", "WARN ",
                                            "ERROR" };
        char line[2048], ts[32];
        struct timespec now;
        struct tm tm;
        va_list ap;
        if (level < cf_log_level)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* One write per line so that lines of threads do not mix. */
        fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
                tags[level], line);
}

long long cf_log_line_ms(const char *line)
{
        struct tm tm;
        int ms;
        memset(&tm, 0, sizeof(tm));
        if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
                   &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &ms) != 7)
                return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (long long)timegm(&tm) * 1000 + ms;
}
