/* log.c: timestamped log lines on stderr, text or JSON (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mem.h"

static int cf_log_level = CF_LOG_INFO;
static bool cf_log_json;
static const char *cf_log_component = "chargeflow";

void cf_log_set_level(const char *name)
{
        static const char *const names[] = { "debug", "info", "warn", "error" };
        for (int i = 0; i < 4; i++)
                if (!strcmp(name, names[i]))
                        cf_log_level = i;
}

void cf_log_set_format(const char *name)
{
        cf_log_json = !strcmp(name, "json");
}

void cf_log_set_component(const char *component)
{
        cf_log_component = component;
}

static void vlog(int level, const char *component, const char *fields,
                 const char *fmt, va_list ap)
{
        static const char *const tags[] = { "DEBUG", "INFO ", "WARN ",
                                            "ERROR" };
        static const char *const names[] = { "debug", "info", "warn", "error" };
        char line[2048], ts[32];
        struct timespec now;
        struct tm tm;
        if (level < cf_log_level)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        vsnprintf(line, sizeof(line), fmt, ap);
        /* One write per line so that lines of threads do not mix. */
        if (!cf_log_json) {
                fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
                        tags[level], line);
                return;
        }
        cf_buf b;
        cf_buf_init(&b);
        cf_buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",", ts,
                      now.tv_nsec / 1000000, names[level]);
        cf_buf_puts(&b, "\"component\":");
        cf_buf_json_str(&b, component, strlen(component));
        cf_buf_puts(&b, ",\"message\":");
        cf_buf_json_str(&b, line, strlen(line));
        cf_buf_printf(&b, ",\"fields\":{%s}}\n", fields ? fields : "");
        fwrite(b.p, 1, b.len, stderr);
        cf_buf_free(&b);
}

void cf_log(int level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog(level, cf_log_component, NULL, fmt, ap);
        va_end(ap);
}

void cf_logf(int level, const char *component, const char *fields,
             const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog(level, component, fields, fmt, ap);
        va_end(ap);
}

long long cf_log_line_ms(const char *line)
{
        struct tm tm;
        int ms;
        memset(&tm, 0, sizeof(tm));
        if (!strncmp(line, "{\"time\":\"", 9))
                line += 9; /* a JSON line starts with its time too */
        if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
                   &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &ms) != 7)
                return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (long long)timegm(&tm) * 1000 + ms;
}
