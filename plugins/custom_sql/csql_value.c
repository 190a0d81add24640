/*
 * csql_value.c - one value of a query's result, in PostgreSQL's text
 * output, turned into JSON by its column's type.
 *
 * The run sets DateStyle to ISO and bytea_output to hex inside its
 * transaction, so the texts seen here have one known shape per type:
 *
 *   int2 int4 int8 oid xid xid8   JSON integer (a string if it overflows int64)
 *   float4 float8                 JSON number; NaN and +-Infinity as strings
 *   numeric                       integer when integral and within int64;
 *                                 a number when it has at most 15 significant
 *                                 digits (a double holds it without loss);
 *                                 else the exact text as a string
 *   bool                          true / false
 *   bytea                         lowercase hex string, no "\x" prefix
 *   timestamp timestamptz timetz  ISO-8601: "2026-11-22T09:18:19.5+00:00"
 *   json jsonb                    embedded as JSON
 *   anything else                 the text output, as a string
 */
#include "csql.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_XID = 28,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_DATE = 1082,
    OID_TIME = 1083,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_TIMETZ = 1266,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
    OID_XID8 = 5069
};

static json_t *integer_value(const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return json_string(text);
    return json_integer((json_int_t)v);
}

static bool is_special_number(const char *text)
{
    return strcmp(text, "NaN") == 0 || strcmp(text, "Infinity") == 0 ||
           strcmp(text, "-Infinity") == 0;
}

static json_t *float_value(const char *text)
{
    char *end;
    if (is_special_number(text))
        return json_string(text);
    double d = strtod(text, &end);
    if (end == text || *end != '\0')
        return json_string(text);
    return json_real(d);
}

/* Significant digits of a plain decimal text: "-0.00120" has 2, "1000"
 * has 4 (zeros of the integer part count: they may be significant). */
static int significant_digits(const char *text)
{
    size_t end = strlen(text);
    if (strchr(text, '.'))
        while (end > 0 && text[end - 1] == '0')
            end--;
    int n = 0;
    bool started = false;
    for (size_t i = 0; i < end; i++) {
        if (!isdigit((unsigned char)text[i]))
            continue;
        started = started || text[i] != '0';
        n += started;
    }
    return n;
}

static json_t *numeric_value(const char *text)
{
    if (is_special_number(text))
        return json_string(text);
    if (!strchr(text, '.')) {
        json_t *i = integer_value(text);
        if (json_is_integer(i) || significant_digits(text) > 15)
            return i;
        json_decref(i);
        return json_real(strtod(text, NULL));
    }
    if (significant_digits(text) > 15)
        return json_string(text);
    return json_real(strtod(text, NULL));
}

static json_t *bytea_value(const char *text, size_t len)
{
    if (len >= 2 && text[0] == '\\' && text[1] == 'x')
        return json_stringn(text + 2, len - 2);
    return json_stringn(text, len);
}

/* "2026-11-22 09:18:19.5+05" -> "2026-11-22T09:18:19.5+05:00"; `tz` says
 * whether the text ends with an offset. Infinity and BC dates stay as they
 * are. */
static json_t *timestamp_value(const char *text, size_t len, bool tz, bool has_date)
{
    if (len < 5 || strstr(text, "infinity") || strstr(text, " BC"))
        return json_stringn(text, len);
    char *s = malloc(len + 4);
    if (!s)
        return json_stringn(text, len);
    memcpy(s, text, len + 1);
    char *time_part = s;
    if (has_date) {
        char *space = strchr(s, ' ');
        if (space) {
            *space = 'T';
            time_part = space + 1;
        }
    }
    if (tz) {
        char *sign = strrchr(time_part, '+');
        char *minus = strrchr(time_part, '-');
        if (!sign || (minus && minus > sign))
            sign = minus;
        if (sign && strlen(sign) == 3)
            strcat(s, ":00");
    }
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *json_value(const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    return j ? j : json_stringn(text, len);
}

json_t *csql_value_to_json(unsigned int type_oid, const char *text, size_t len)
{
    switch (type_oid) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
    case OID_XID:
    case OID_XID8:
        return integer_value(text);
    case OID_FLOAT4:
    case OID_FLOAT8:
        return float_value(text);
    case OID_NUMERIC:
        return numeric_value(text);
    case OID_BOOL:
        return json_boolean(text[0] == 't');
    case OID_BYTEA:
        return bytea_value(text, len);
    case OID_TIMESTAMP:
        return timestamp_value(text, len, false, true);
    case OID_TIMESTAMPTZ:
        return timestamp_value(text, len, true, true);
    case OID_TIMETZ:
        return timestamp_value(text, len, true, false);
    case OID_JSON:
    case OID_JSONB:
        return json_value(text, len);
    case OID_DATE:
    case OID_TIME:
    default:
        return json_stringn(text, len);
    }
}
