/*
 * log.h: log lines on stderr, one per call, as text
 * ("2026-11-26T21:30:00.123Z INFO  what") or, with log.format=json, as one
 * JSON object per line:
 *   {"time":"2026-11-26T21:30:00.123Z","level":"info","component":"run",
 *    "message":"what","fields":{...}}
 * The level, format and default component are process-wide, set once at
 * start; any thread may log.
 */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdbool.h>

enum { CF_LOG_DEBUG, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR };

/* Sets the lowest level written, by name (debug, info, warn, error). */
void cf_log_set_level(const char *name);

/* Sets the line format by name: "text" (the default) or "json". */
void cf_log_set_format(const char *name);

/* Sets the component named by cf_log() lines (default "chargeflow"); the
 * string must outlive every later log call (a literal). */
void cf_log_set_component(const char *component);

void cf_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Like cf_log, with a component and structured fields: fields is a JSON
 * object text without its braces ("\"topic\":\"t\",\"in\":3") or NULL.
 * JSON lines carry them under "fields"; text lines leave them out (the
 * message says the same in words).
 */
void cf_logf(int level, const char *component, const char *fields,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The time of a log line written by cf_log, in ms since the epoch, or -1
 * when the line does not start with one (for tools reading the logs). */
long long cf_log_line_ms(const char *line);

#endif
