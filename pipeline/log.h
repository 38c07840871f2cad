/*
 * log.h: log lines on stderr: "2026-11-26T21:30:00.123Z INFO  what".
 * The level is process-wide (log.level); any thread may log.
 */
#ifndef CF_LOG_H
#define CF_LOG_H

enum { CF_LOG_DEBUG, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR };

/* Sets the lowest level written, by name (debug, info, warn, error). */
void cf_log_set_level(const char *name);

void cf_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The time of a log line written by cf_log, in ms since the epoch, or -1
 * when the line does not start with one (for tools reading the logs). */
long long cf_log_line_ms(const char *line);

#endif
