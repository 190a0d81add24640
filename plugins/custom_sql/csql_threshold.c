/*
 * csql_threshold.c - threshold conditions: "OP OPERAND" with OP one of
 * > >= < <= == != and OPERAND a number or a text (bare, or in single or
 * double quotes). Ordering operators need a number; == and != compare
 * numbers as numbers and anything else as text (booleans as true/false).
 * A NULL cell never meets a condition.
 */
#include "csql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *text;
    csql_op op;
} OPS[] = {{">=", CSQL_GE}, {"<=", CSQL_LE}, {"==", CSQL_EQ}, {"!=", CSQL_NE},
           {">", CSQL_GT},  {"<", CSQL_LT}};

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        abort(); /* a plugin process out of memory cannot report anything useful */
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Parse a whole text as a number; returns true and sets *out. */
static bool parse_number(const char *s, double *out)
{
    char *end;
    if (!*s)
        return false;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (end == s || *end != '\0')
        return false;
    *out = d;
    return true;
}

int csql_cond_parse(const char *text, csql_cond *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *p = text;
    while (*p == ' ')
        p++;
    size_t i;
    for (i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strncmp(p, OPS[i].text, strlen(OPS[i].text)) == 0)
            break;
    if (i == sizeof OPS / sizeof OPS[0]) {
        snprintf(err, errlen,
                 "\"%s\" does not start with an operator (one of > >= < <= == !=, e.g. \"> 100\")",
                 text);
        return -1;
    }
    c->op = OPS[i].op;
    p += strlen(OPS[i].text);
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0) {
        snprintf(err, errlen, "\"%s\" has no value after the operator", text);
        return -1;
    }
    bool quoted = n >= 2 && (p[0] == '\'' || p[0] == '"') && p[n - 1] == p[0];
    c->text = quoted ? dup_range(p + 1, n - 2) : dup_range(p, n);
    c->numeric = !quoted && parse_number(c->text, &c->num);
    if (!c->numeric && c->op != CSQL_EQ && c->op != CSQL_NE) {
        snprintf(err, errlen, "\"%s\": %s needs a number", text, OPS[i].text);
        free(c->text);
        c->text = NULL;
        return -1;
    }
    c->source = dup_range(text, strlen(text));
    c->set = true;
    return 0;
}

void csql_cond_free(csql_cond *c)
{
    free(c->text);
    free(c->source);
    memset(c, 0, sizeof *c);
}

static bool compare_numbers(csql_op op, double a, double b)
{
    switch (op) {
    case CSQL_GT:
        return a > b;
    case CSQL_GE:
        return a >= b;
    case CSQL_LT:
        return a < b;
    case CSQL_LE:
        return a <= b;
    case CSQL_EQ:
        return a == b;
    case CSQL_NE:
    default:
        return a != b;
    }
}

/* The cell as a number, when it is one or a text that reads as one. */
static bool cell_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    return json_is_string(v) && parse_number(json_string_value(v), out);
}

int csql_cond_match(const csql_cond *c, const json_t *value, char *err, size_t errlen)
{
    double x;
    if (!value || json_is_null(value))
        return 0;
    if (c->numeric && cell_number(value, &x))
        return compare_numbers(c->op, x, c->num);
    if (c->op != CSQL_EQ && c->op != CSQL_NE) {
        char *shown = json_dumps(value, JSON_ENCODE_ANY);
        snprintf(err, errlen, "value %.80s is not a number, so \"%s\" cannot be checked",
                 shown ? shown : "?", c->source);
        free(shown);
        return -1;
    }
    char *owned = NULL;
    const char *s;
    if (json_is_string(value))
        s = json_string_value(value);
    else if (json_is_boolean(value))
        s = json_is_true(value) ? "true" : "false";
    else
        s = owned = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
    bool eq = s && strcmp(s, c->text) == 0;
    free(owned);
    return c->op == CSQL_EQ ? eq : !eq;
}

csql_status csql_threshold_level(const csql_threshold *t, const json_t *value, char *err,
                                 size_t errlen)
{
    const csql_cond *levels[2] = {&t->critical, &t->warning};
    for (int i = 0; i < 2; i++) {
        if (!levels[i]->set)
            continue;
        int m = csql_cond_match(levels[i], value, err, errlen);
        if (m < 0)
            return CSQL_UNKNOWN;
        if (m > 0)
            return i == 0 ? CSQL_CRITICAL : CSQL_WARNING;
    }
    return CSQL_OK;
}

const char *csql_threshold_describe(const csql_threshold *t, csql_status level, char *buf,
                                    size_t len)
{
    const csql_cond *c = level == CSQL_CRITICAL ? &t->critical : &t->warning;
    if (t->column)
        snprintf(buf, len, "column %s %s", t->column, c->source ? c->source : "?");
    else
        snprintf(buf, len, "rows %s", c->source ? c->source : "?");
    return buf;
}

const char *csql_status_name(csql_status s)
{
    switch (s) {
    case CSQL_SKIPPED:
        return "skipped";
    case CSQL_OK:
        return "ok";
    case CSQL_WARNING:
        return "warning";
    case CSQL_CRITICAL:
        return "critical";
    case CSQL_UNKNOWN:
    default:
        return "unknown";
    }
}
