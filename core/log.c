/*
 * log.c - see log.h. Each line is built in memory and written with one
 * write(2), so lines of several processes sharing stderr never interleave.
 */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static log_level min_level = LOG_INFO;
static bool as_json = false;
/* Per thread: the daemon's scheduler, worker and API threads each tag
 * their own lines, and the task context set by one thread is neither shown
 * on another's lines nor freed under another's log_msg(). */
/* Fixed buffers, not heap strings: a thread that ends without clearing its
 * context leaks nothing. */
static _Thread_local int64_t ctx_exec;
static _Thread_local char ctx_task[128];
static _Thread_local int ctx_attempt;
static _Thread_local char component[32];

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_configure(const char *level, const char *format)
{
    for (int i = 0; level && i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            min_level = (log_level)i;
    if (format && strcmp(format, "json") == 0)
        as_json = true;
    else if (format && strcmp(format, "text") == 0)
        as_json = false;
}

bool log_enabled(log_level level)
{
    return level >= min_level;
}

void log_set_task(int64_t execution_id, const char *task, int attempt)
{
    snprintf(ctx_task, sizeof ctx_task, "%s", task ? task : "");
    ctx_exec = execution_id;
    ctx_attempt = attempt;
}

void log_clear_task(void)
{
    ctx_task[0] = '\0';
    ctx_exec = 0;
    ctx_attempt = 0;
}

void log_set_component(const char *c)
{
    snprintf(component, sizeof component, "%s", c ? c : "");
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    strbuf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    /* Text from plugins and servers may be anything: valid UTF-8 for JSON,
     * and no control characters, so a message can never forge a line. */
    char *text = utf8_fix(sb_steal(&msg));
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    msg.buf = text;
    msg.len = strlen(text);
    char *line;
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "pid", json_integer(getpid()));
        if (component[0])
            json_object_set_new(o, "component", json_string(component));
        if (ctx_task[0]) {
            json_object_set_new(o, "task", json_string(ctx_task));
            if (ctx_exec)
                json_object_set_new(o, "execution_id", json_integer(ctx_exec));
            json_object_set_new(o, "attempt", json_integer(ctx_attempt));
        }
        json_object_set_new(o, "msg", json_stringn_nocheck(msg.buf ? msg.buf : "", msg.len));
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        line = xasprintf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        strbuf sb = {0};
        sb_printf(&sb, "%s %-7s [%d]", ts, level_names[level], (int)getpid());
        if (component[0])
            sb_printf(&sb, " %s:", component);
        if (ctx_task[0]) {
            sb_printf(&sb, " task=%s", ctx_task);
            if (ctx_exec)
                sb_printf(&sb, " execution=%lld", (long long)ctx_exec);
            sb_printf(&sb, " attempt=%d", ctx_attempt);
        }
        sb_printf(&sb, " %s\n", msg.buf ? msg.buf : "");
        line = sb_steal(&sb);
    }
    sb_free(&msg);
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
}
