/*
 * fuzz_la_parse.c - libFuzzer target for the log_analysis parsers.
 *
 * Input layout: byte 0 picks the format (stderr, csv, jsonlog, syslog); for
 * stderr and syslog
 * the first line is taken as the log_line_prefix (an invalid one falls back
 * to the default). The rest is fed through the same feeder the reader uses,
 * in two pieces split at a point given by byte 1 (so entries straddle two
 * reads), then every record goes through aggregation and the JSON output
 * (which must cope with invalid UTF-8). The statement and error normalizers
 * are also run on the raw bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "la_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int format = LA_FMT_STDERR + data[0] % 4; /* stderr, csv, jsonlog, syslog */
    size_t split = data[1];
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    char prefix[128] = "%m [%p] %q%u@%d/%a ";
    if (format == LA_FMT_STDERR || format == LA_FMT_SYSLOG) {
        const char *nl = memchr(p, '\n', n);
        if (nl != NULL && (size_t)(nl - p) < sizeof prefix) {
            memcpy(prefix, p, (size_t)(nl - p));
            prefix[nl - p] = '\0';
            n -= (size_t)(nl - p) + 1;
            p = nl + 1;
        }
    }
    char err[256];
    la_prefix *px = la_prefix_compile(prefix, err, sizeof err);
    if (px == NULL)
        px = la_prefix_compile("%m [%p] ", err, sizeof err);
    la_agg *agg = la_agg_new(5);
    la_feeder f;
    memset(&f, 0, sizeof f);
    f.agg = agg;
    f.format = format;
    f.px = px;
    f.skip_upto_ms = -1;
    /* the reader's contract: keep what was not consumed, add more, feed again */
    char *buf = malloc(n + 1);
    size_t have = 0, fed = 0;
    size_t first = split < n ? split : n;
    memcpy(buf, p, first);
    have = first;
    fed = first;
    size_t c = la_feed_buffer(&f, buf, have, 0);
    memmove(buf, buf + c, have - c);
    have -= c;
    memcpy(buf + have, p + fed, n - fed);
    have += n - fed;
    la_feed_buffer(&f, buf, have, 1);
    la_agg_flush(agg);
    la_scratch s = {0};
    la_norm_query(p, n, &s);
    la_norm_error(p, n, &s);
    la_scratch_free(&s);
    char *doc = la_output_json(agg, NULL, 0, 0);
    if (doc == NULL)
        abort(); /* the document must always be produced */
    free(doc);
    free(buf);
    la_scratch_free(&f.sc);
    la_agg_free(agg);
    la_prefix_free(px);
    return 0;
}
