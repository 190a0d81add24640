/*
 * manifest.c - reading plugin manifests and validating task params against
 * their schema. See manifest.h for the format.
 */
#include "manifest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"any",     "string", "integer", "number",
                                         "boolean", "array",  "object",  NULL};

const char *param_type_name(param_type t)
{
    return type_names[t];
}

static int parse_type(const char *s, param_type *out)
{
    for (int i = 0; type_names[i]; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (param_type)i;
            return 0;
        }
    }
    return -1;
}

static void spec_free(param_spec *p)
{
    free(p->name);
    free(p->description);
    json_decref(p->def);
    json_decref(p->enum_);
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_types; i++) {
        task_type_spec *t = &m->types[i];
        for (size_t j = 0; j < t->n_params; j++)
            spec_free(&t->params[j]);
        free(t->params);
        free(t->name);
        free(t->description);
    }
    free(m->types);
    free(m->path);
    free(m->name);
    free(m->version);
    free(m->description);
    free(m);
}

#define MERR(node, ...) mark_err(err, errlen, (node), __VA_ARGS__)

static int mark_err(char *err, size_t errlen, const ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mark_err(char *err, size_t errlen, const ynode *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return set_err(err, errlen, "%s:%d:%d: %s", n->file, n->line, n->col, msg);
}

static int check_keys(const ynode *map, const char *const *allowed, const char *what, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < map->len; i++) {
        const char *k = map->keys[i]->value;
        const char *const *a;
        for (a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                break;
        if (*a)
            continue;
        const char *hint = closest_word(k, allowed);
        if (hint)
            return MERR(map->keys[i], "unknown key \"%s\" in %s (did you mean \"%s\"?)", k, what,
                        hint);
        return MERR(map->keys[i], "unknown key \"%s\" in %s", k, what);
    }
    return 0;
}

static char *req_string(const ynode *map, const char *key, const char *what, char *err,
                        size_t errlen, bool required)
{
    const ynode *n = ynode_get(map, key);
    if (!n) {
        if (required)
            MERR(map, "%s: missing required key \"%s\"", what, key);
        return NULL;
    }
    if (n->kind != YNODE_SCALAR || ynode_is_null(n)) {
        MERR(n, "%s.%s: expected a string", what, key);
        return NULL;
    }
    return xstrdup(n->value);
}

static int parse_param(const ynode *key, const ynode *def, param_spec *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"type", "items",   "required",    "default", "enum",
                                       "min",  "max",     "description", NULL};
    p->name = xstrdup(key->value);
    if (def->kind != YNODE_MAP)
        return MERR(def, "params.%s: expected a mapping such as {type: string}", key->value);
    if (check_keys(def, keys, "a param", err, errlen) < 0)
        return -1;
    const ynode *t = ynode_get(def, "type");
    if (!t)
        return MERR(def, "params.%s: missing \"type\" (one of: string, integer, number, "
                         "boolean, array, object, any)",
                    key->value);
    if (t->kind != YNODE_SCALAR || parse_type(t->value, &p->type) < 0)
        return MERR(t, "params.%s.type: must be one of: string, integer, number, boolean, "
                       "array, object, any",
                    key->value);
    const ynode *items = ynode_get(def, "items");
    if (items && (items->kind != YNODE_SCALAR || parse_type(items->value, &p->items) < 0))
        return MERR(items, "params.%s.items: must be a type name", key->value);
    const ynode *req = ynode_get(def, "required");
    if (req && ynode_bool(req, &p->required) < 0)
        return MERR(req, "params.%s.required: expected true or false", key->value);
    const ynode *d = ynode_get(def, "default");
    if (d)
        p->def = ynode_to_json(d);
    const ynode *e = ynode_get(def, "enum");
    if (e) {
        if (e->kind != YNODE_SEQ || e->len == 0)
            return MERR(e, "params.%s.enum: expected a non-empty list", key->value);
        p->enum_ = ynode_to_json(e);
    }
    const ynode *mn = ynode_get(def, "min"), *mx = ynode_get(def, "max");
    if (mn && ynode_double(mn, &p->min) < 0)
        return MERR(mn, "params.%s.min: expected a number", key->value);
    if (mx && ynode_double(mx, &p->max) < 0)
        return MERR(mx, "params.%s.max: expected a number", key->value);
    p->has_min = mn != NULL;
    p->has_max = mx != NULL;
    p->description = req_string(def, "description", "param", err, errlen, false);
    return 0;
}

static int parse_task_type(const ynode *key, const ynode *def, task_type_spec *t, char *err,
                           size_t errlen)
{
    static const char *const keys[] = {"description", "params", NULL};
    t->name = xstrdup(key->value);
    if (def->kind != YNODE_MAP)
        return MERR(def, "task_types.%s: expected a mapping with description and params",
                    key->value);
    if (check_keys(def, keys, "a task type", err, errlen) < 0)
        return -1;
    t->description = req_string(def, "description", "task type", err, errlen, false);
    const ynode *params = ynode_get(def, "params");
    if (!params || ynode_is_null(params))
        return 0;
    if (params->kind != YNODE_MAP)
        return MERR(params, "task_types.%s.params: expected a mapping of param name to spec",
                    key->value);
    t->params = xcalloc(params->len, sizeof *t->params);
    for (size_t i = 0; i < params->len; i++) {
        t->n_params++;
        if (parse_param(params->keys[i], params->items[i], &t->params[i], err, errlen) < 0)
            return -1;
    }
    return 0;
}

manifest *manifest_load(const char *path, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "abi", "version", "description", "task_types",
                                       NULL};
    ydoc *doc = ydoc_load_file(path, err, errlen);
    if (!doc)
        return NULL;
    manifest *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(path);
    const ynode *root = ydoc_root(doc);
    if (!root || root->kind != YNODE_MAP) {
        set_err(err, errlen, "%s:1:1: a manifest must be a mapping with name, abi, version and "
                             "task_types",
                path);
        goto fail;
    }
    if (check_keys(root, keys, "the manifest", err, errlen) < 0)
        goto fail;
    if (!(m->name = req_string(root, "name", "manifest", err, errlen, true)))
        goto fail;
    const ynode *abi = ynode_get(root, "abi");
    long long v;
    if (!abi) {
        MERR(root, "manifest: missing required key \"abi\" (the plugin ABI major, e.g. 1)");
        goto fail;
    }
    if (ynode_int(abi, &v) < 0 || v < 1 || v > 1000) {
        MERR(abi, "abi: expected the plugin ABI major as a positive integer");
        goto fail;
    }
    m->abi = (int)v;
    if (!(m->version = req_string(root, "version", "manifest", err, errlen, true)))
        goto fail;
    m->description = req_string(root, "description", "manifest", err, errlen, false);
    const ynode *types = ynode_get(root, "task_types");
    if (!types || types->kind != YNODE_MAP || types->len == 0) {
        MERR(types ? types : root, "task_types: expected a mapping of at least one task type");
        goto fail;
    }
    m->types = xcalloc(types->len, sizeof *m->types);
    for (size_t i = 0; i < types->len; i++) {
        m->n_types++;
        if (parse_task_type(types->keys[i], types->items[i], &m->types[i], err, errlen) < 0)
            goto fail;
    }
    ydoc_free(doc);
    return m;
fail:
    ydoc_free(doc);
    manifest_free(m);
    return NULL;
}

const task_type_spec *manifest_find_type(const manifest *m, const char *type)
{
    for (size_t i = 0; m && i < m->n_types; i++)
        if (strcmp(m->types[i].name, type) == 0)
            return &m->types[i];
    return NULL;
}

/* ---- validation ---- */

static bool type_matches(param_type t, const json_t *v)
{
    switch (t) {
    case PT_ANY:
        return true;
    case PT_STRING:
        return json_is_string(v);
    case PT_INTEGER:
        return json_is_integer(v);
    case PT_NUMBER:
        return json_is_number(v);
    case PT_BOOLEAN:
        return json_is_boolean(v);
    case PT_ARRAY:
        return json_is_array(v);
    case PT_OBJECT:
        return json_is_object(v);
    }
    return false;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Where a problem is: the mark of the key (or of the params node), or the
 * caller's `where`. */
static void locate(strbuf *sb, const ynode *node, const char *key, const char *where)
{
    const ynode *k = key && node ? ynode_key(node, key) : NULL;
    const ynode *at = k ? ynode_get(node, key) : node;
    if (at)
        sb_printf(sb, "%s:%d:%d: ", at->file, at->line, at->col);
    else
        sb_printf(sb, "%s: ", where ? where : "params");
}

static void enum_list(strbuf *sb, const json_t *en)
{
    size_t i;
    json_t *v;
    json_array_foreach(en, i, v)
    {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        if (json_is_string(v))
            sb_printf(sb, "%s%s", i ? ", " : "", json_string_value(v));
        else
            sb_printf(sb, "%s%s", i ? ", " : "", s ? s : "?");
        free(s);
    }
}

static int check_value(const param_spec *p, const json_t *v, const ynode *node, const char *where,
                       const char *field, strbuf *errors)
{
    if (!type_matches(p->type, v)) {
        locate(errors, node, p->name, where);
        sb_printf(errors, "%s.%s: expected %s, got %s\n", field, p->name, param_type_name(p->type),
                  json_kind(v));
        return -1;
    }
    if (p->type == PT_ARRAY && p->items != PT_ANY) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!type_matches(p->items, e)) {
                locate(errors, node, p->name, where);
                sb_printf(errors, "%s.%s[%zu]: expected %s, got %s\n", field, p->name, i,
                          param_type_name(p->items), json_kind(e));
                return -1;
            }
        }
    }
    if (p->enum_) {
        size_t i;
        json_t *e;
        bool ok = false;
        json_array_foreach(p->enum_, i, e) ok = ok || json_equal(e, v);
        if (!ok) {
            char *got = json_dumps(v, JSON_ENCODE_ANY);
            locate(errors, node, p->name, where);
            sb_printf(errors, "%s.%s: must be one of: ", field, p->name);
            enum_list(errors, p->enum_);
            sb_printf(errors, "; got %s\n", got ? got : "?");
            free(got);
            return -1;
        }
    }
    if (json_is_number(v) && (p->has_min || p->has_max)) {
        double d = json_number_value(v);
        if ((p->has_min && d < p->min) || (p->has_max && d > p->max)) {
            locate(errors, node, p->name, where);
            sb_printf(errors, "%s.%s: %g is out of range", field, p->name, d);
            if (p->has_min && p->has_max)
                sb_printf(errors, " %g..%g\n", p->min, p->max);
            else if (p->has_min)
                sb_printf(errors, " (at least %g)\n", p->min);
            else
                sb_printf(errors, " (at most %g)\n", p->max);
            return -1;
        }
    }
    return 0;
}

json_t *manifest_validate_params(const task_type_spec *spec, const json_t *params,
                                 const ynode *node, const char *where, const char *field,
                                 strbuf *errors)
{
    int bad = 0;
    if (params && !json_is_object(params) && !json_is_null(params)) {
        locate(errors, node, NULL, where);
        sb_printf(errors, "%s: expected a mapping of param names to values\n", field);
        return NULL;
    }
    if (node && node->kind != YNODE_MAP)
        node = NULL;
    const char **names = xcalloc(spec->n_params + 1, sizeof *names);
    for (size_t i = 0; i < spec->n_params; i++)
        names[i] = spec->params[i].name;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        size_t i;
        for (i = 0; i < spec->n_params; i++)
            if (strcmp(spec->params[i].name, key) == 0)
                break;
        if (i < spec->n_params)
            continue;
        const ynode *k = node ? ynode_key(node, key) : NULL;
        if (k)
            sb_printf(errors, "%s:%d:%d: ", k->file, k->line, k->col);
        else
            sb_printf(errors, "%s: ", where ? where : "params");
        const char *hint = closest_word(key, names);
        sb_printf(errors, "%s: unknown param \"%s\" for task type %s", field, key, spec->name);
        if (hint)
            sb_printf(errors, " (did you mean \"%s\"?)\n", hint);
        else if (spec->n_params)
            sb_printf(errors, " (known: %s%s)\n", names[0], spec->n_params > 1 ? ", ..." : "");
        else
            sb_printf(errors, " (it takes no params)\n");
        bad = 1;
    }
    free(names);
    json_t *out = json_object();
    for (size_t i = 0; i < spec->n_params; i++) {
        const param_spec *p = &spec->params[i];
        json_t *val = params ? json_object_get(params, p->name) : NULL;
        if (!val || json_is_null(val)) {
            if (p->required) {
                locate(errors, node, NULL, where);
                sb_printf(errors, "%s: missing required param \"%s\" (%s)\n", field, p->name,
                          param_type_name(p->type));
                bad = 1;
            } else if (p->def) {
                json_object_set(out, p->name, p->def);
            }
            continue;
        }
        if (check_value(p, val, node, where, field, errors) < 0)
            bad = 1;
        else
            json_object_set(out, p->name, val);
    }
    if (bad) {
        json_decref(out);
        return NULL;
    }
    return out;
}
