/*
 * log.h - structured log lines on stderr: one event per line, as JSON
 * (`{"ts":...,"level":"info","msg":...,"task":...}`) or as text for a
 * terminal. The task context (execution id, task name, attempt) is set by
 * the executor around each run so that every line of a task carries it
 * (DESIGN.md section 9).
 *
 * Callers must never pass a secret in a message. Safe to call from any
 * process; not from a signal handler.
 */
#ifndef PGR_LOG_H
#define PGR_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

/* level: "debug"|"info"|"warning"|"error"; format: "json"|"text". Unknown
 * values keep the current setting. Defaults: info, text. */
void log_configure(const char *level, const char *format);
bool log_enabled(log_level level);

/* Set / clear the task context added to every line (strings are copied). */
void log_set_task(int64_t execution_id, const char *task, int attempt);
void log_clear_task(void);
/* A component tag ("executor", "scheduler", ...) for the calling thread's
 * lines, copied. */
void log_set_component(const char *component);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
