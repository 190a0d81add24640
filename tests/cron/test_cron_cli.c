/*
 * test_cron_cli.c - "pgreviewer cron next": exact output, exit codes and
 * messages. Calls cmd_cron directly with stdout and stderr redirected into
 * temporary files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cron.h"
#include "tz.h"

static char out_buf[65536], err_buf[65536];

static void slurp(FILE *f, char *buf, size_t len)
{
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run cmd_cron with the given arguments; capture stdout and stderr. */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *o = tmpfile(), *e = tmpfile();
    assert_non_null(o);
    assert_non_null(e);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    int rc = cmd_cron(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(o, out_buf, sizeof out_buf);
    slurp(e, err_buf, sizeof err_buf);
    return rc;
}

static void test_next_gap_example(void **state)
{
    assert_int_equal(run("next", "30 2 * * *", "--tz", "America/New_York", "--from",
                         "2026-03-07T01:59:00-05:00", "--count", "3", NULL),
                     0);
    assert_string_equal(out_buf, "2026-03-07T02:30:00-05:00\n"
                                 "2026-03-08T03:00:00-04:00\n"
                                 "2026-03-09T02:30:00-04:00\n");
    assert_string_equal(err_buf, "");
}

static void test_next_default_count_and_z(void **state)
{
    assert_int_equal(run("next", "@hourly", "--from", "2026-01-01T00:00:00Z", NULL), 0);
    assert_string_equal(out_buf, "2026-01-01T01:00:00+00:00\n"
                                 "2026-01-01T02:00:00+00:00\n"
                                 "2026-01-01T03:00:00+00:00\n"
                                 "2026-01-01T04:00:00+00:00\n"
                                 "2026-01-01T05:00:00+00:00\n");
}

static void test_next_equals_syntax_and_offsets(void **state)
{
    assert_int_equal(run("next", "0 0 * * *", "--tz=Asia/Kolkata", "--count=2",
                         "--from=2026-01-01T00:00:00+0530", NULL),
                     0);
    assert_string_equal(out_buf, "2026-01-02T00:00:00+05:30\n2026-01-03T00:00:00+05:30\n");
    assert_int_equal(run("next", "0 0 * * *", "--tz", "Pacific/Chatham", "--count", "1",
                         "--from", "2026-07-01T00:00:00Z", NULL),
                     0);
    assert_string_equal(out_buf, "2026-07-02T00:00:00+12:45\n");
}

static void test_next_local_from(void **state)
{
    /* a local --from: wall-clock time in --tz */
    assert_int_equal(run("next", "*/30 * * * *", "--tz", "Europe/Berlin", "--count", "2",
                         "--from", "2026-07-01T10:00:00", NULL),
                     0);
    assert_string_equal(out_buf, "2026-07-01T10:30:00+02:00\n2026-07-01T11:00:00+02:00\n");
    /* in an overlap: the first occurrence */
    assert_int_equal(run("next", "*/30 * * * *", "--tz", "America/New_York", "--count", "3",
                         "--from", "2026-11-01T01:30:00", NULL),
                     0);
    assert_string_equal(out_buf, "2026-11-01T01:00:00-05:00\n2026-11-01T01:30:00-05:00\n"
                                 "2026-11-01T02:00:00-05:00\n");
    /* in a gap: when the gap ends, which counts as after --from */
    assert_int_equal(run("next", "0 * * * *", "--tz", "America/New_York", "--count", "1",
                         "--from", "2026-03-08T02:30:00", NULL),
                     0);
    assert_string_equal(out_buf, "2026-03-08T03:00:00-04:00\n");
    /* a fraction of a second: strictly after it */
    assert_int_equal(run("next", "* * * * * *", "--count", "2", "--from",
                         "2026-01-01T00:00:00.250Z", NULL),
                     0);
    assert_string_equal(out_buf, "2026-01-01T00:00:01+00:00\n2026-01-01T00:00:02+00:00\n");
    /* a date alone is local midnight */
    assert_int_equal(run("next", "0 12 * * *", "--tz", "UTC", "--count", "1", "--from",
                         "2026-05-05", NULL),
                     0);
    assert_string_equal(out_buf, "2026-05-05T12:00:00+00:00\n");
}

static void test_next_never(void **state)
{
    assert_int_equal(run("next", "0 0 30 2 *", NULL), 1);
    assert_string_equal(out_buf, "");
    assert_string_equal(err_buf, "cron expression \"0 0 30 2 *\" never fires: no date matches "
                                 "its day-of-month, month and day-of-week fields\n");
}

static void test_next_bad_expression_and_zone(void **state)
{
    assert_int_equal(run("next", "0 61 * * *", NULL), 1);
    assert_string_equal(out_buf, "");
    assert_string_equal(err_buf, "invalid hour field: 61 is out of range 0-23\n"
                                 "  0 61 * * *\n"
                                 "    ^^\n");
    assert_int_equal(run("next", "@daily", "--tz", "Europe/Berln", NULL), 1);
    assert_string_equal(err_buf, "unknown time zone \"Europe/Berln\" (/usr/share/zoneinfo/"
                                 "Europe/Berln: cannot open: No such file or directory): use an "
                                 "IANA name such as Europe/Berlin, America/New_York or UTC\n");
}

static void test_usage_errors(void **state)
{
    assert_int_equal(run("next", NULL), 2);
    assert_non_null(strstr(err_buf, "missing the cron expression"));
    assert_non_null(strstr(err_buf, "usage: pgreviewer cron next"));
    assert_int_equal(run("next", "@daily", "--count", "0", NULL), 2);
    assert_non_null(strstr(err_buf, "--count 0: expected a number 1-100000"));
    assert_int_equal(run("next", "@daily", "--count", NULL), 2);
    assert_non_null(strstr(err_buf, "--count needs a value"));
    assert_int_equal(run("next", "@daily", "--bogus", NULL), 2);
    assert_non_null(strstr(err_buf, "unknown option --bogus"));
    assert_int_equal(run("next", "0", "2", "*", "*", "*", NULL), 2);
    assert_non_null(strstr(err_buf, "one quoted argument"));
    assert_int_equal(run("next", "@daily", "--from", "yesterday", NULL), 2);
    assert_non_null(strstr(err_buf, "--from yesterday: expected an ISO-8601 time"));
    assert_int_equal(run("next", "@daily", "--from", "2026-02-30T00:00:00Z", NULL), 2);
    assert_int_equal(run("next", "@daily", "--from", "2026-01-01T00:00:00+25:00", NULL), 2);
    assert_int_equal(run("prev", NULL), 2);
    assert_non_null(strstr(err_buf, "unknown sub-command \"prev\": expected next or describe"));
    assert_string_equal(out_buf, "");
}

static void test_describe(void **state)
{
    assert_int_equal(run("describe", "0 9 * * MON-FRI", NULL), 0);
    assert_string_equal(out_buf, "at 09:00 on Monday-Friday\n");
    assert_int_equal(run("describe", "0 0 30 2 *", NULL), 0);
    assert_string_equal(out_buf,
                        "at 00:00 on day 30 of the month, in February (never: no date matches)\n");
    assert_int_equal(run("describe", "0 0 31 13 *", NULL), 1);
    assert_string_equal(err_buf, "invalid month field: 13 is out of range 1-12\n"
                                 "  0 0 31 13 *\n"
                                 "         ^^\n");
    assert_int_equal(run("describe", NULL), 2);
    assert_int_equal(run("describe", "0", "9", NULL), 2);
}

static void test_default_from_is_now(void **state)
{
    assert_int_equal(run("next", "* * * * * *", "--count", "1", NULL), 0);
    assert_int_equal(strlen(out_buf), strlen("2026-01-01T00:00:00+00:00\n"));
}

static int teardown(void **state)
{
    tz_unload_all();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_gap_example),
        cmocka_unit_test(test_next_default_count_and_z),
        cmocka_unit_test(test_next_equals_syntax_and_offsets),
        cmocka_unit_test(test_next_local_from),
        cmocka_unit_test(test_next_never),
        cmocka_unit_test(test_next_bad_expression_and_zone),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_default_from_is_now),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
