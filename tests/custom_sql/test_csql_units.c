/*
 * test_csql_units.c - the custom_sql plugin's pure parts, compiled from
 * its sources and tested without a server: PostgreSQL text values to JSON
 * (numeric precision rules, ISO-8601 offsets, bytea, json), threshold
 * conditions (parsing, numeric and text comparison, NULL, errors), and
 * params parsing (durations, versions, defaults, messages).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csql.h"

/* The JSON text of a converted value. */
static void want_json(unsigned int oid, const char *text, const char *want)
{
    json_t *v = csql_value_to_json(oid, text, strlen(text));
    char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (strcmp(got, want) != 0)
        fail_msg("oid %u, \"%s\": got %s, want %s", oid, text, got, want);
    free(got);
    json_decref(v);
}

static void test_numbers(void **state)
{
    (void)state;
    want_json(20, "-9223372036854775808", "-9223372036854775808");
    want_json(1700, "99999999999999999999", "\"99999999999999999999\""); /* > int64 */
    want_json(1700, "42", "42");
    want_json(1700, "-0.00120", "-0.0011999999999999999"); /* 2 significant digits */
    want_json(1700, "0.5", "0.5");
    want_json(1700, "123456789012345", "123456789012345");
    want_json(1700, "1234567890.12345", "1234567890.12345");          /* 15 digits */
    want_json(1700, "1234567890.123456", "\"1234567890.123456\"");    /* 16 digits */
    want_json(1700, "Infinity", "\"Infinity\"");
    want_json(700, "-Infinity", "\"-Infinity\"");
    want_json(701, "1.25e+20", "1.25e20");
    want_json(26, "4294967295", "4294967295"); /* oid */
}

static void test_times_and_others(void **state)
{
    (void)state;
    want_json(1184, "2024-01-02 03:04:05+00", "\"2024-01-02T03:04:05+00:00\"");
    want_json(1184, "2024-01-02 03:04:05.123-03:30", "\"2024-01-02T03:04:05.123-03:30\"");
    want_json(1184, "1850-01-01 00:00:00+00:53:28", "\"1850-01-01T00:00:00+00:53:28\"");
    want_json(1184, "-infinity", "\"-infinity\"");
    want_json(1114, "0044-03-15 12:00:00 BC", "\"0044-03-15 12:00:00 BC\"");
    want_json(1266, "23:59:59.5-08", "\"23:59:59.5-08:00\"");
    want_json(17, "\\x", "\"\"");
    want_json(16, "f", "false");
    want_json(3802, "[1, \"a\", {\"b\": null}]", "[1,\"a\",{\"b\":null}]");
    want_json(3802, "\"just a string\"", "\"just a string\"");
    want_json(114, "not json", "\"not json\"");
    want_json(25, "héllo", "\"héllo\"");
}

static void cond(const char *text, csql_cond *c)
{
    char err[256];
    if (csql_cond_parse(text, c, err, sizeof err) != 0)
        fail_msg("%s: %s", text, err);
}

static int match(const char *text, json_t *value)
{
    csql_cond c;
    char err[256] = "";
    cond(text, &c);
    int m = csql_cond_match(&c, value, err, sizeof err);
    csql_cond_free(&c);
    json_decref(value);
    return m;
}

static void test_conditions(void **state)
{
    (void)state;
    assert_int_equal(match("> 100", json_integer(101)), 1);
    assert_int_equal(match(">100", json_integer(100)), 0);
    assert_int_equal(match(">= 100", json_integer(100)), 1);
    assert_int_equal(match("< 0.9", json_real(0.85)), 1);
    assert_int_equal(match("<= -1", json_integer(-1)), 1);
    assert_int_equal(match("== 5", json_real(5.0)), 1);
    assert_int_equal(match("!= 5", json_integer(5)), 0);
    assert_int_equal(match("> 100", json_string("123456789012345678901234567890")), 1);
    assert_int_equal(match("== idle", json_string("idle")), 1);
    assert_int_equal(match("== 'idle in transaction'", json_string("idle in transaction")), 1);
    assert_int_equal(match("!= \"a\"", json_string("b")), 1);
    assert_int_equal(match("== true", json_true()), 1);
    assert_int_equal(match("== '5'", json_string("5.0")), 0); /* quoted: text */
    assert_int_equal(match("> 1", json_null()), 0);
    assert_int_equal(match("== x", json_null()), 0);
    assert_int_equal(match("!= x", json_null()), 0);

    csql_cond c;
    char err[256];
    cond("> 1", &c);
    json_t *s = json_string("abc");
    assert_int_equal(csql_cond_match(&c, s, err, sizeof err), -1);
    assert_string_equal(err, "value \"abc\" is not a number, so \"> 1\" cannot be checked");
    json_decref(s);
    csql_cond_free(&c);
    assert_int_equal(csql_cond_parse("100", &c, err, sizeof err), -1);
    assert_int_equal(csql_cond_parse(">", &c, err, sizeof err), -1);
    assert_string_equal(err, "\">\" has no value after the operator");
    assert_int_equal(csql_cond_parse("< 'x'", &c, err, sizeof err), -1);
    assert_string_equal(err, "\"< 'x'\": < needs a number");
}

static void test_threshold_levels(void **state)
{
    (void)state;
    csql_threshold t = {.column = "v"};
    char err[256], buf[128];
    cond("> 10", &t.warning);
    cond("> 100", &t.critical);
    json_t *v5 = json_integer(5), *v50 = json_integer(50), *v500 = json_integer(500);
    assert_int_equal(csql_threshold_level(&t, v5, err, sizeof err), CSQL_OK);
    assert_int_equal(csql_threshold_level(&t, v50, err, sizeof err), CSQL_WARNING);
    assert_int_equal(csql_threshold_level(&t, v500, err, sizeof err), CSQL_CRITICAL);
    assert_string_equal(csql_threshold_describe(&t, CSQL_CRITICAL, buf, sizeof buf),
                        "column v > 100");
    t.column = NULL;
    assert_string_equal(csql_threshold_describe(&t, CSQL_WARNING, buf, sizeof buf), "rows > 10");
    json_decref(v5);
    json_decref(v50);
    json_decref(v500);
    csql_cond_free(&t.warning);
    csql_cond_free(&t.critical);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        long long ms;
    } ok[] = {{"250", 250},        {"\"250\"", 250},    {"\"250ms\"", 250},
              {"\"5s\"", 5000},    {"\"2min\"", 120000}, {"\"2m\"", 120000},
              {"\"1h\"", 3600000}, {"\"1d\"", 86400000}, {"0", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *v = json_loads(ok[i].json, JSON_DECODE_ANY, NULL);
        int64_t ms = -1;
        assert_int_equal(csql_parse_duration(v, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
        json_decref(v);
    }
    static const char *const bad[] = {"-1", "\"5 fortnights\"", "\"\"", "\"s\"", "1.5", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        int64_t ms;
        if (csql_parse_duration(v, &ms) == 0)
            fail_msg("%s was accepted", bad[i]);
        json_decref(v);
    }
}

static void test_params(void **state)
{
    (void)state;
    csql_params p;
    char err[512];
    assert_int_equal(
        csql_params_parse("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT $1, $2, $3\", "
                          "\"params\": [1, null, {\"k\": [true]}], \"min_server_version\": "
                          "\"9.6\", \"max_server_version\": \"12\", \"thresholds\": {\"rows\": "
                          "true, \"critical\": \"> 0\"}}, {\"name\": \"b\", \"sql\": \"SELECT 1\", "
                          "\"min_server_version\": \"13.2\", \"max_server_version\": \"9.6\"}]}",
                          &p, err, sizeof err),
        0);
    assert_int_equal(p.statement_timeout_ms, 30000);
    assert_int_equal(p.lock_timeout_ms, 5000);
    assert_int_equal(p.max_rows, 1000);
    assert_true(p.read_only);
    assert_int_equal(p.n_queries, 2);
    const csql_query *a = &p.queries[0];
    assert_int_equal(a->n_values, 3);
    assert_string_equal(a->values[0], "1");
    assert_null(a->values[1]);
    assert_string_equal(a->values[2], "{\"k\":[true]}");
    assert_int_equal(a->min_version, 90600);
    assert_int_equal(a->max_version, 129999);
    assert_int_equal(a->n_thresholds, 1);
    assert_null(a->thresholds[0].column);
    assert_false(a->thresholds[0].warning.set);
    assert_true(a->thresholds[0].critical.set);
    assert_int_equal(p.queries[1].min_version, 130002);
    assert_int_equal(p.queries[1].max_version, 90699);
    csql_params_free(&p);

    assert_int_equal(csql_params_parse("{\"max_rows\": -1, \"queries\": [{\"name\": \"a\", "
                                       "\"sql\": \"x\"}]}",
                                       &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "max_rows: expected an integer of at least 0");
    assert_int_equal(csql_params_parse("{\"queries\": [{\"sql\": \"x\"}]}", &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "queries[0]: name: required, a non-empty string");
    assert_int_equal(csql_params_parse("{\"queries\": [{\"name\": \"a\", \"sql\": \"x\", "
                                       "\"thresholds\": [{\"column\": \"v\", \"rows\": true, "
                                       "\"warning\": \"> 1\"}]}]}",
                                       &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "queries[0] (a): thresholds[0]: set either column: NAME or rows: "
                             "true");
    assert_int_equal(csql_params_parse("{\"queries\": [{\"name\": \"a\", \"sql\": \"x\", "
                                       "\"thresholds\": [{\"column\": \"v\", \"warning\": 5}]}]}",
                                       &p, err, sizeof err),
                     -1);
    assert_string_equal(err, "queries[0] (a): thresholds[0]: warning: expected a condition such "
                             "as \"> 100\" (quote it in YAML), got a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),    cmocka_unit_test(test_times_and_others),
        cmocka_unit_test(test_conditions), cmocka_unit_test(test_threshold_levels),
        cmocka_unit_test(test_durations),  cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
