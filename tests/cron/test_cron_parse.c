/*
 * test_cron_parse.c - the cron parser: every syntax rule lands in the right
 * bits, macros equal their expansions, and every error message is exact
 * (field name, reason, expression, carets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cron.h"

static cron_expr parse_ok(const char *text)
{
    cron_expr e;
    char err[512] = "";
    if (cron_parse(text, &e, err, sizeof err) != 0)
        fail_msg("\"%s\" should parse, got: %s", text, err);
    return e;
}

static uint64_t bits(const int *v, int n)
{
    uint64_t b = 0;
    for (int i = 0; i < n; i++)
        b |= 1ULL << v[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define RANGE(lo, hi) ((((hi) == 63 ? ~0ULL : (1ULL << ((hi) + 1)) - 1)) & ~((1ULL << (lo)) - 1))

static void test_five_fields(void **state)
{
    cron_expr e = parse_ok("0 2 * * *");
    assert_int_equal(e.sec, 1);
    assert_int_equal(e.min, 1);
    assert_int_equal(e.hour, 1u << 2);
    assert_int_equal(e.dom, RANGE(1, 31));
    assert_int_equal(e.month, RANGE(1, 12));
    assert_int_equal(e.dow, RANGE(0, 6));
    assert_true(cron_is_fixed_time(&e));
    assert_false(cron_never_fires(&e));
    assert_true(sizeof(cron_expr) <= 40);
}

static void test_six_fields(void **state)
{
    cron_expr e = parse_ok("*/15 30 1 * * *");
    assert_int_equal(e.sec, BITS(0, 15, 30, 45));
    assert_int_equal(e.min, 1ULL << 30);
    assert_int_equal(e.hour, 1u << 1);
    /* seconds do not make a job wildcard: minute and hour decide */
    assert_true(cron_is_fixed_time(&e));
}

static void test_names_any_case(void **state)
{
    cron_expr e = parse_ok("0 0 * JAN-mar mon,Wed,FRI");
    assert_int_equal(e.month, BITS(1, 2, 3));
    assert_int_equal(e.dow, BITS(1, 3, 5));
    e = parse_ok("0 0 * dec SUN-sat");
    assert_int_equal(e.month, BITS(12));
    assert_int_equal(e.dow, RANGE(0, 6));
}

static void test_sunday_is_0_and_7(void **state)
{
    assert_int_equal(parse_ok("0 0 * * 7").dow, BITS(0));
    assert_int_equal(parse_ok("0 0 * * 0").dow, BITS(0));
    assert_int_equal(parse_ok("0 0 * * 5-7").dow, BITS(0, 5, 6));
    assert_int_equal(parse_ok("0 0 * * 0-7").dow, RANGE(0, 6));
}

static void test_ranges_steps_lists(void **state)
{
    assert_int_equal(parse_ok("1-10/3 * * * *").min, BITS(1, 4, 7, 10));
    assert_int_equal(parse_ok("5/20 * * * *").min, BITS(5, 25, 45));
    assert_int_equal(parse_ok("*/20 * * * *").min, BITS(0, 20, 40));
    assert_int_equal(parse_ok("*/60 * * * *").min, BITS(0));
    assert_int_equal(parse_ok("1,2,5-6,59 * * * *").min, BITS(1, 2, 5, 6, 59));
    assert_int_equal(parse_ok("0 */6 * * *").hour, BITS(0, 6, 12, 18));
    assert_int_equal(parse_ok("0 0 */10 * *").dom, BITS(1, 11, 21, 31));
    assert_int_equal(parse_ok("0 0 1 */4 *").month, BITS(1, 5, 9));
    assert_int_equal(parse_ok("0 0 * * */2").dow, BITS(0, 2, 4, 6));
    assert_int_equal(parse_ok("0 0 * * 1/2").dow, BITS(1, 3, 5));
    assert_int_equal(parse_ok("0 0 * * 7/2").dow, BITS(0));
    assert_int_equal(parse_ok("0 0 * * MON-FRI/2").dow, BITS(1, 3, 5));
    assert_int_equal(parse_ok("007 * * * *").min, BITS(7));
}

static void test_whitespace(void **state)
{
    cron_expr a = parse_ok("  0\t2  *   * *  \n");
    cron_expr b = parse_ok("0 2 * * *");
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_macros(void **state)
{
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},    {" @weekly ", "0 0 * * 0"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        cron_expr a = parse_ok(pairs[i][0]), b = parse_ok(pairs[i][1]);
        assert_memory_equal(&a, &b, sizeof a);
    }
    cron_expr h = parse_ok("@hourly"), d = parse_ok("@daily");
    assert_false(cron_is_fixed_time(&h));
    assert_true(cron_is_fixed_time(&d));
}

static void test_fixed_time_definition(void **state)
{
    static const struct {
        const char *expr;
        int fixed;
    } cases[] = {
        {"30 2 * * *", 1},     {"0,30 1-3 * * *", 1}, {"0-59 2 * * *", 1}, {"* 2 * * *", 0},
        {"*/5 2 * * *", 0},    {"30 * * * *", 0},     {"0 */2 * * *", 0},  {"5,*/20 2 * * *", 0},
        {"* 0 2 * * *", 1},    {"0 0 2 * * *", 1},    {"0 * 2 * * *", 0},  {"@midnight", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cron_expr e = parse_ok(cases[i].expr);
        if (cron_is_fixed_time(&e) != cases[i].fixed)
            fail_msg("%s: fixed-time should be %d", cases[i].expr, cases[i].fixed);
    }
}

static void test_specials(void **state)
{
    cron_expr e = parse_ok("0 0 L * *");
    assert_int_equal(e.dom, 0);
    e = parse_ok("0 0 1,15W,LW * *");
    assert_int_equal(e.dom, BITS(1));
    assert_int_equal(e.dom_w, BITS(15));
    e = parse_ok("0 0 * * 5L,MON#2,sun#5,7L");
    assert_int_equal(e.dow, 0);
    assert_int_equal(e.dow_nth, BITS(6 * 5 + 5, 6 * 1 + 1, 6 * 0 + 4, 6 * 0 + 5));
    e = parse_ok("0 0 * * FRIL");
    assert_int_equal(e.dow_nth, BITS(6 * 5 + 5));
}

static void test_never_fires_detected(void **state)
{
    static const char *const never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2,4 *",
                                        "0 0 30,31 2 *", "0 0 */30 2 1#5"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        cron_expr e = parse_ok(never[i]);
        if (!cron_never_fires(&e))
            fail_msg("%s should be detected as never firing", never[i]);
    }
    static const char *const fires[] = {"0 0 29 2 *", "0 0 30 2 1", "0 0 * 2 1#5",
                                        "0 0 */30 2 *", "0 0 30W 4 *", "0 0 L 2 *"};
    for (size_t i = 0; i < sizeof fires / sizeof fires[0]; i++) {
        cron_expr e = parse_ok(fires[i]);
        if (cron_never_fires(&e))
            fail_msg("%s can fire", fires[i]);
    }
}

/* Every error: the exact three-line message. */
static void test_error_messages(void **state)
{
    static const char *const cases[][2] = {
        {"61 0 * * *", "invalid minute field: 61 is out of range 0-59\n"
                       "  61 0 * * *\n"
                       "  ^^"},
        {"0 61 * * *", "invalid hour field: 61 is out of range 0-23\n"
                       "  0 61 * * *\n"
                       "    ^^"},
        {"0 0 32 * *", "invalid day-of-month field: 32 is out of range 1-31\n"
                       "  0 0 32 * *\n"
                       "      ^^"},
        {"0 0 0 * *", "invalid day-of-month field: 0 is out of range 1-31\n"
                      "  0 0 0 * *\n"
                      "      ^"},
        {"0 0 * 13 *", "invalid month field: 13 is out of range 1-12\n"
                       "  0 0 * 13 *\n"
                       "        ^^"},
        {"0 0 * * 8", "invalid day-of-week field: 8 is out of range 0-7\n"
                      "  0 0 * * 8\n"
                      "          ^"},
        {"60 * * * * *", "invalid second field: 60 is out of range 0-59\n"
                         "  60 * * * * *\n"
                         "  ^^"},
        {"99999999999 * * * *", "invalid minute field: 99999999999 is out of range 0-59\n"
                                "  99999999999 * * * *\n"
                                "  ^^^^^^^^^^^"},
        {"0 0 * FOO *", "invalid month field: FOO is not a month name: expected 1-12 or JAN-DEC\n"
                        "  0 0 * FOO *\n"
                        "        ^^^"},
        {"0 0 * * MONDAY", "invalid day-of-week field: MONDAY is not a weekday name (did you "
                           "mean MON?): expected 0-7 or SUN-SAT\n"
                           "  0 0 * * MONDAY\n"
                           "          ^^^^^^"},
        {"x * * * *", "invalid minute field: x is not a number: expected 0-59\n"
                      "  x * * * *\n"
                      "  ^"},
        {"0 JAN * * *", "invalid hour field: JAN is not a number: expected 0-23\n"
                        "  0 JAN * * *\n"
                        "    ^^^"},
        {"*/0 * * * *", "invalid minute field: step 0 is out of range 1-60\n"
                        "  */0 * * * *\n"
                        "    ^"},
        {"*/61 * * * *", "invalid minute field: step 61 is out of range 1-60\n"
                         "  */61 * * * *\n"
                         "    ^^"},
        {"*/ * * * *", "invalid minute field: '/' must be followed by a step, e.g. */5\n"
                       "  */ * * * *\n"
                       "   ^"},
        {"5-3 * * * *", "invalid minute field: range 5-3 is backwards (the start must not "
                        "exceed the end)\n"
                        "  5-3 * * * *\n"
                        "  ^^^"},
        {"0 0 * * 1-", "invalid day-of-week field: '-' must be followed by the end of the range\n"
                       "  0 0 * * 1-\n"
                       "           ^"},
        {"1,,2 * * * *", "invalid minute field: empty list item\n"
                         "  1,,2 * * * *\n"
                         "    ^"},
        {"1-5x * * * *", "invalid minute field: unexpected 'x'\n"
                         "  1-5x * * * *\n"
                         "     ^"},
        {"* * * *", "invalid cron expression: expected 5 fields (minute hour day-of-month "
                    "month day-of-week) or 6 (second minute hour day-of-month month "
                    "day-of-week), found 4\n"
                    "  * * * *\n"
                    "         ^"},
        {"* * * * * * *", "invalid cron expression: expected 5 fields (minute hour day-of-month "
                          "month day-of-week) or 6 (second minute hour day-of-month month "
                          "day-of-week), found 7 or more\n"
                          "  * * * * * * *\n"
                          "              ^"},
        {"", "invalid cron expression: expected 5 fields (minute hour day-of-month "
             "month day-of-week) or 6 (second minute hour day-of-month month "
             "day-of-week), found 0\n"
             "  \n"
             "  ^"},
        {"@reboot", "invalid cron expression: unknown macro @reboot: expected @yearly, "
                    "@annually, @monthly, @weekly, @daily, @midnight or @hourly\n"
                    "  @reboot\n"
                    "  ^^^^^^^"},
        {"@dialy", "invalid cron expression: unknown macro @dialy (did you mean @daily?): "
                   "expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                   "@hourly\n"
                   "  @dialy\n"
                   "  ^^^^^^"},
        {"0 0 1 june *", "invalid month field: june is not a month name (did you mean JUN?): "
                         "expected 1-12 or JAN-DEC\n"
                         "  0 0 1 june *\n"
                         "        ^^^^"},
        {"0 0 1 * Sun,Fry", "invalid day-of-week field: Fry is not a weekday name (did you "
                            "mean FRI?): expected 0-7 or SUN-SAT\n"
                            "  0 0 1 * Sun,Fry\n"
                            "              ^^^"},
        {"@daily 5", "invalid cron expression: @daily takes no fields after it\n"
                     "  @daily 5\n"
                     "         ^"},
        {"0 0 15 * 1W", "invalid day-of-week field: W is only allowed in the day-of-month field\n"
                        "  0 0 15 * 1W\n"
                        "            ^"},
        {"0 0 1#2 * *", "invalid day-of-month field: # is only allowed in the day-of-week field\n"
                        "  0 0 1#2 * *\n"
                        "       ^"},
        {"5L * * * *", "invalid minute field: L is only allowed in the day-of-month and "
                       "day-of-week fields\n"
                       "  5L * * * *\n"
                       "   ^"},
        {"0 0 * L *", "invalid month field: L is only allowed in the day-of-month and "
                      "day-of-week fields\n"
                      "  0 0 * L *\n"
                      "        ^"},
        {"0 0 * * 1#6", "invalid day-of-week field: #6: the occurrence after # must be 1-5\n"
                        "  0 0 * * 1#6\n"
                        "            ^"},
        {"0 0 * * 1#", "invalid day-of-week field: #: the occurrence after # must be 1-5\n"
                       "  0 0 * * 1#\n"
                       "            ^"},
        {"0 0 * * 9#1", "invalid day-of-week field: 9 is out of range 0-7\n"
                        "  0 0 * * 9#1\n"
                        "          ^"},
        {"0 0 1-5W * *", "invalid day-of-month field: W needs one day before it, e.g. 15W\n"
                         "  0 0 1-5W * *\n"
                         "      ^^^^"},
        {"0 0 32W * *", "invalid day-of-month field: 32 is out of range 1-31\n"
                        "  0 0 32W * *\n"
                        "      ^^"},
        {"0 0 * * 1-2L", "invalid day-of-week field: 1-2L: expected a weekday before L, e.g. 5L\n"
                         "  0 0 * * 1-2L\n"
                         "          ^^^^"},
        {"0\t61 * * *", "invalid hour field: 61 is out of range 0-23\n"
                        "  0 61 * * *\n"
                        "    ^^"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cron_expr e;
        char err[1024] = "";
        if (cron_parse(cases[i][0], &e, err, sizeof err) != -1)
            fail_msg("\"%s\" should be rejected", cases[i][0]);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("\"%s\":\n got:\n%s\n want:\n%s", cases[i][0], err, cases[i][1]);
    }
}

static void test_error_buffer_small_or_null(void **state)
{
    cron_expr e;
    char err[8];
    assert_int_equal(cron_parse("bad", &e, err, sizeof err), -1);
    assert_int_equal(strlen(err), 7);
    assert_int_equal(cron_parse("bad", &e, NULL, 0), -1);
}

static void test_describe(void **state)
{
    static const char *const cases[][2] = {
        {"30 2 * * *", "at 02:30 every day"},
        {"15 30 2 * * *", "at 02:30:15 every day"},
        {"0 9 * * MON-FRI", "at 09:00 on Monday-Friday"},
        {"0 0 29 2 1", "at 00:00 on day 29 of the month or on Monday, in February"},
        {"0 0 */10 * 1", "at 00:00 on day 1,11,21,31 of the month if it is a Monday"},
        {"*/15 * * * *", "at minute 0,15,30,45 of every hour"},
        {"* 2 * * *", "every minute of hour 2"},
        {"0 9-17 * * *", "at minute 0 of hour 9-17"},
        {"*/20 30 1 * * *", "at second 0,20,40 of minute 30 of hour 1"},
        {"30 * * * * *", "at second 30 of every minute"},
        {"* * * * *", "every minute"},
        {"* * * * * *", "every second"},
        {"@hourly", "at minute 0 of every hour"},
        {"@yearly", "at 00:00 on day 1 of the month, in January"},
        {"0 0 L * *", "at 00:00 on the last day of the month"},
        {"0 0 1,L 1,7 *", "at 00:00 on day 1, the last day of the month, in January, July"},
        {"0 0 15W,LW * *", "at 00:00 on the last weekday, the weekday nearest day 15 of the "
                           "month"},
        {"0 0 * * 5L", "at 00:00 on the last Friday of the month"},
        {"0 0 * * 1-5,0#1", "at 00:00 on Monday-Friday, the 1st Sunday of the month"},
        {"0 0 * * 0,6", "at 00:00 on Sunday, Saturday"},
        {"0,1 * * * *", "at minute 0,1 of every hour"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cron_expr e = parse_ok(cases[i][0]);
        char buf[256];
        size_t n = cron_describe(&e, buf, sizeof buf);
        if (strcmp(buf, cases[i][1]) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i][0], buf, cases[i][1]);
        assert_int_equal(n, strlen(cases[i][1]));
    }
    /* truncation like snprintf */
    cron_expr e = parse_ok("30 2 * * *");
    char small[6];
    assert_int_equal(cron_describe(&e, small, sizeof small), strlen("at 02:30 every day"));
    assert_string_equal(small, "at 02");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_fields),
        cmocka_unit_test(test_six_fields),
        cmocka_unit_test(test_names_any_case),
        cmocka_unit_test(test_sunday_is_0_and_7),
        cmocka_unit_test(test_ranges_steps_lists),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_fixed_time_definition),
        cmocka_unit_test(test_specials),
        cmocka_unit_test(test_never_fires_detected),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_error_buffer_small_or_null),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
