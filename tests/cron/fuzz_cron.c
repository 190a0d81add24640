/*
 * fuzz_cron.c - libFuzzer target for the cron parser and cron_next.
 *
 * Input: byte 0 picks a zone, bytes 1-8 the "after" instant (clamped to
 * years 1900-2300), the rest is the expression. Checks, beyond memory
 * safety: a rejected expression gets a three-line message with a caret; an
 * accepted one has a description, its next fire is -1 or strictly after
 * "after", and asking again from just before that fire gives the same fire.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "tz.h"

static const char *const zones[] = {"UTC", "America/New_York", "Europe/Berlin",
                                    "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata",
                                    "America/Santiago", "Europe/Dublin"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9 || size > 4096)
        return 0;
    char err[4096]; /* room for the whole message of a 256-byte input */
    const tz_zone *z = tz_load(zones[data[0] % (sizeof zones / sizeof zones[0])], err, sizeof err);
    if (!z)
        abort();
    uint64_t raw;
    memcpy(&raw, data + 1, 8);
    int64_t after = -2208988800LL + (int64_t)(raw % 12623040000ULL);
    char *text = malloc(size - 8);
    memcpy(text, data + 9, size - 9);
    text[size - 9] = '\0';
    cron_expr e;
    if (cron_parse(text, &e, err, sizeof err) < 0) {
        if (!strstr(err, "\n  ") || !strchr(err, '^'))
            abort();
    } else {
        char text_out[512];
        if (cron_describe(&e, text_out, sizeof text_out) == 0)
            abort();
        int64_t t = cron_next(&e, z, after);
        if (t != -1 && t <= after)
            abort();
        if (t > after && cron_next(&e, z, t - 1) != t)
            abort();
    }
    free(text);
    return 0;
}
