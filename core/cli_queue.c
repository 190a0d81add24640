/*
 * cli_queue.c - `pgreviewer queue ...`: inspect and repair the shared
 * (Redis) queue from any host: depth per priority, delayed, leased and dead
 * counts, and the dead-letter set (list, re-drive, purge).
 *
 * The in-process queue lives inside a running pgreviewer process, so there
 * is nothing another process could inspect; the command says so.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "util.h"

static const char usage[] =
    "usage: pgreviewer queue stats [--json]\n"
    "       pgreviewer queue dead list [--json]\n"
    "       pgreviewer queue dead retry ID|--all\n"
    "       pgreviewer queue dead purge\n";

static int usage_error(const char *fmt, const char *word)
{
    fprintf(stderr, "pgreviewer queue: ");
    fprintf(stderr, fmt, word);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* Parse an optional single "--json" after the sub-command's words. */
static int want_json(int argc, char **argv, int first, bool *json)
{
    *json = false;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return usage_error("unexpected argument \"%s\"", argv[i]);
        *json = true;
    }
    return 0;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int do_stats(queue *q, bool json)
{
    queue_stats st;
    char err[512];
    if (queue_stats_get(q, &st, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer queue stats: %s\n", err);
        return 1;
    }
    if (json) {
        json_t *ready = json_object(), *lag = json_object();
        for (int p = 0; p < QUEUE_PRIORITIES; p++) {
            char k[4];
            snprintf(k, sizeof k, "%d", p);
            json_object_set_new(ready, k, json_integer(st.ready[p]));
            json_object_set_new(lag, k, json_integer(st.lag_ms[p]));
        }
        print_json(json_pack("{s:o, s:o, s:I, s:I, s:I, s:I}", "ready", ready, "lag_ms", lag,
                             "delayed", (json_int_t)st.delayed, "leased", (json_int_t)st.leased,
                             "dead", (json_int_t)st.dead, "next_due_ms", (json_int_t)st.next_due_ms));
        return 0;
    }
    int64_t total = 0;
    printf("priority  ready  lag\n");
    for (int p = QUEUE_PRIORITIES - 1; p >= 0; p--) {
        char lag[32];
        printf("%-8d  %5lld  %s\n", p, (long long)st.ready[p],
               st.ready[p] ? format_duration_ms(st.lag_ms[p], lag, sizeof lag) : "-");
        total += st.ready[p];
    }
    printf("ready     %lld\ndelayed   %lld\nleased    %lld\ndead      %lld\n", (long long)total,
           (long long)st.delayed, (long long)st.leased, (long long)st.dead);
    return 0;
}

static int do_dead_list(queue *q, bool json)
{
    queue_dead_entry *list;
    size_t n;
    char err[512];
    if (queue_dead_list(q, &list, &n, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer queue dead list: %s\n", err);
        return 1;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-12s %-8s %-7s %-20s %s\n", "ID", "PRIORITY", "ATTEMPT", "DIED", "ERROR");
    for (size_t i = 0; i < n; i++) {
        const queue_dead_entry *e = &list[i];
        char when[32];
        iso_time(e->died_ms, when, sizeof when);
        if (json)
            json_array_append_new(arr, json_pack("{s:I, s:i, s:i, s:s, s:I, s:s, s:s?}",
                                                 "id", (json_int_t)e->id, "priority", e->priority,
                                                 "attempt", e->attempt, "died", when,
                                                 "died_ms", (json_int_t)e->died_ms,
                                                 "error", e->error, "payload", e->payload));
        else
            printf("%-12lld %-8d %-7d %-20s %s\n", (long long)e->id, e->priority, e->attempt,
                   when, e->error);
    }
    if (json)
        print_json(arr);
    else if (n == 0)
        printf("(no dead items)\n");
    queue_dead_list_free(list, n);
    return 0;
}

static int do_dead_retry(queue *q, const char *what)
{
    char err[512], *end;
    bool all = strcmp(what, "--all") == 0;
    long long id = all ? 0 : strtoll(what, &end, 10);
    if (!all && (!what[0] || *end))
        return usage_error("dead retry: \"%s\" is neither an execution id (a number) nor --all", what);
    int n = queue_dead_retry(q, id, all, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "pgreviewer queue dead retry: %s\n", err);
        return 1;
    }
    if (!all && n == 0) {
        fprintf(stderr, "pgreviewer queue dead retry: no dead item with id %lld "
                        "(see: pgreviewer queue dead list)\n", id);
        return 1;
    }
    printf("re-queued %d dead item%s\n", n, n == 1 ? "" : "s");
    return 0;
}

static int do_dead(queue *q, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("dead: missing sub-command%s (list, retry or purge)", "");
    const char *sub = argv[1];
    bool json;
    if (strcmp(sub, "list") == 0)
        return want_json(argc, argv, 2, &json) ? 2 : do_dead_list(q, json);
    if (strcmp(sub, "retry") == 0) {
        if (argc != 3)
            return usage_error("dead retry: expected one ID or --all%s", "");
        return do_dead_retry(q, argv[2]);
    }
    if (strcmp(sub, "purge") == 0) {
        if (argc != 2)
            return usage_error("dead purge: unexpected argument \"%s\"", argv[2]);
        char err[512];
        int n = queue_dead_purge(q, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "pgreviewer queue dead purge: %s\n", err);
            return 1;
        }
        printf("purged %d dead item%s\n", n, n == 1 ? "" : "s");
        return 0;
    }
    return usage_error("dead: unknown sub-command \"%s\" (expected list, retry or purge)", sub);
}

static bool known_command(int argc, char **argv)
{
    return argc >= 1 && (strcmp(argv[0], "stats") == 0 || strcmp(argv[0], "dead") == 0);
}

int cmd_queue(const pgr_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage_error("missing sub-command%s (stats or dead)", "");
    if (!known_command(argc, argv)) {
        static const char *const words[] = {"stats", "dead", NULL};
        const char *hint = closest_word(argv[0], words);
        fprintf(stderr, "pgreviewer queue: unknown sub-command \"%s\"%s%s%s\n%s", argv[0],
                hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "", usage);
        return 2;
    }
    bool json = false;
    if (strcmp(argv[0], "stats") == 0 && want_json(argc, argv, 1, &json))
        return 2;
    const char *url = cfg ? cfg->queue.url : NULL;
    if (!url || !url[0] || strcmp(url, "memory:") == 0) {
        fprintf(stderr, "pgreviewer queue: no Redis is configured (queue.url is not set), so the "
                        "queue is the in-process one inside each running pgreviewer: there is "
                        "nothing to inspect from another process\n");
        return 1;
    }
    char err[512];
    queue *q = queue_open(url, cfg->queue.prefix, err, sizeof err);
    if (!q) {
        fprintf(stderr, "pgreviewer queue: %s\n", err);
        return 1;
    }
    int rc = strcmp(argv[0], "stats") == 0 ? do_stats(q, json) : do_dead(q, argc, argv);
    queue_close(q);
    return rc;
}
