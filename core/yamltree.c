/*
 * yamltree.c - libyaml's event parser folded into a tree of ynodes.
 *
 * We use the event API rather than libyaml's document loader because the
 * document loader keeps marks only as byte offsets into node arrays and
 * resolves aliases by index; building our own small tree is as short and
 * gives every node its line and column directly.
 */
#include "yamltree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

struct anchor {
    char *name;
    ynode *node;
};

struct ydoc {
    char *file;
    ynode *root;
    /* used while loading */
    struct anchor *anchors;
    size_t n_anchors;
};

static void ynode_free(ynode *n)
{
    if (!n)
        return;
    free(n->value);
    for (size_t i = 0; i < n->len; i++) {
        ynode_free(n->items[i]);
        if (n->keys)
            ynode_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n);
}

static ynode *ynode_copy(const ynode *n)
{
    ynode *c = xcalloc(1, sizeof *c);
    *c = *n;
    c->value = xstrdup(n->value);
    if (n->len) {
        c->items = xcalloc(n->len, sizeof *c->items);
        if (n->keys)
            c->keys = xcalloc(n->len, sizeof *c->keys);
        for (size_t i = 0; i < n->len; i++) {
            c->items[i] = ynode_copy(n->items[i]);
            if (n->keys)
                c->keys[i] = ynode_copy(n->keys[i]);
        }
    }
    return c;
}

static ynode *new_node(ydoc *doc, ynode_kind kind, const yaml_mark_t *m)
{
    ynode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->file = doc->file;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static void remember_anchor(ydoc *doc, const yaml_char_t *anchor, ynode *n)
{
    if (!anchor)
        return;
    doc->anchors = xrealloc(doc->anchors, (doc->n_anchors + 1) * sizeof *doc->anchors);
    doc->anchors[doc->n_anchors].name = xstrdup((const char *)anchor);
    doc->anchors[doc->n_anchors].node = n;
    doc->n_anchors++;
}

static void append(ynode *parent, ynode *key, ynode *value)
{
    parent->items = xrealloc(parent->items, (parent->len + 1) * sizeof *parent->items);
    parent->items[parent->len] = value;
    if (parent->kind == YNODE_MAP) {
        parent->keys = xrealloc(parent->keys, (parent->len + 1) * sizeof *parent->keys);
        parent->keys[parent->len] = key;
    }
    parent->len++;
}

/* Parse one node starting with `ev` (already taken from the parser).
 * Returns the node, or NULL with err filled. */
static ynode *parse_node(ydoc *doc, yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen);

static int next_event(ydoc *doc, yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen)
{
    if (!yaml_parser_parse(p, ev)) {
        const yaml_mark_t *m = &p->problem_mark;
        return set_err(err, errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", doc->file,
                       m->line + 1, m->column + 1, p->problem ? p->problem : "unknown problem",
                       p->context ? " " : "", p->context ? p->context : "");
    }
    return 0;
}

static ynode *parse_collection(ydoc *doc, yaml_parser_t *p, ynode *n, yaml_event_type_t end,
                               char *err, size_t errlen)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(doc, p, &ev, err, errlen) < 0)
            goto fail;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return n;
        }
        ynode *key = NULL;
        if (n->kind == YNODE_MAP) {
            key = parse_node(doc, p, &ev, err, errlen);
            if (!key)
                goto fail;
            if (key->kind != YNODE_SCALAR) {
                set_err(err, errlen, "%s:%d:%d: a mapping key must be a plain value", doc->file,
                        key->line, key->col);
                ynode_free(key);
                goto fail;
            }
            for (size_t i = 0; i < n->len; i++) {
                if (strcmp(n->keys[i]->value, key->value) == 0) {
                    set_err(err, errlen, "%s:%d:%d: duplicate key \"%s\" (first at line %d)",
                            doc->file, key->line, key->col, key->value, n->keys[i]->line);
                    ynode_free(key);
                    goto fail;
                }
            }
            if (next_event(doc, p, &ev, err, errlen) < 0) {
                ynode_free(key);
                goto fail;
            }
        }
        ynode *value = parse_node(doc, p, &ev, err, errlen);
        if (!value) {
            ynode_free(key);
            goto fail;
        }
        append(n, key, value);
    }
fail:
    ynode_free(n);
    return NULL;
}

static ynode *parse_node(ydoc *doc, yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen)
{
    ynode *n = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = new_node(doc, YNODE_SCALAR, &ev->start_mark);
        n->value = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        remember_anchor(doc, ev->data.scalar.anchor, n);
        yaml_event_delete(ev);
        return n;
    case YAML_SEQUENCE_START_EVENT:
        n = new_node(doc, YNODE_SEQ, &ev->start_mark);
        remember_anchor(doc, ev->data.sequence_start.anchor, n);
        yaml_event_delete(ev);
        return parse_collection(doc, p, n, YAML_SEQUENCE_END_EVENT, err, errlen);
    case YAML_MAPPING_START_EVENT:
        n = new_node(doc, YNODE_MAP, &ev->start_mark);
        remember_anchor(doc, ev->data.mapping_start.anchor, n);
        yaml_event_delete(ev);
        return parse_collection(doc, p, n, YAML_MAPPING_END_EVENT, err, errlen);
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (size_t i = doc->n_anchors; i-- > 0;) {
            if (strcmp(doc->anchors[i].name, name) == 0) {
                n = ynode_copy(doc->anchors[i].node);
                break;
            }
        }
        if (!n)
            set_err(err, errlen, "%s:%zu:%zu: unknown alias *%s", doc->file,
                    ev->start_mark.line + 1, ev->start_mark.column + 1, name);
        yaml_event_delete(ev);
        return n;
    }
    default:
        set_err(err, errlen, "%s:%zu:%zu: unexpected YAML event", doc->file,
                ev->start_mark.line + 1, ev->start_mark.column + 1);
        yaml_event_delete(ev);
        return NULL;
    }
}

static ydoc *load(ydoc *doc, yaml_parser_t *p, char *err, size_t errlen)
{
    yaml_event_t ev;
    for (;;) {
        if (next_event(doc, p, &ev, err, errlen) < 0)
            goto fail;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break; /* empty stream */
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        doc->root = parse_node(doc, p, &ev, err, errlen);
        if (!doc->root)
            goto fail;
    }
    for (size_t i = 0; i < doc->n_anchors; i++)
        free(doc->anchors[i].name);
    free(doc->anchors);
    doc->anchors = NULL;
    doc->n_anchors = 0;
    return doc;
fail:
    for (size_t i = 0; i < doc->n_anchors; i++)
        free(doc->anchors[i].name);
    free(doc->anchors);
    doc->anchors = NULL;
    doc->n_anchors = 0;
    ydoc_free(doc);
    return NULL;
}

ydoc *ydoc_load_string(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    yaml_parser_t p;
    ydoc *doc = xcalloc(1, sizeof *doc);
    doc->file = xstrdup(name);
    if (!yaml_parser_initialize(&p)) {
        fprintf(stderr, "pgreviewer: out of memory (yaml parser)\n");
        abort();
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    doc = load(doc, &p, err, errlen);
    yaml_parser_delete(&p);
    return doc;
}

ydoc *ydoc_load_file(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return NULL;
    ydoc *doc = ydoc_load_string(path, text, len, err, errlen);
    free(text);
    return doc;
}

ynode *ydoc_root(const ydoc *doc)
{
    return doc ? doc->root : NULL;
}

const char *ydoc_file(const ydoc *doc)
{
    return doc->file;
}

void ydoc_free(ydoc *doc)
{
    if (!doc)
        return;
    ynode_free(doc->root);
    free(doc->file);
    free(doc);
}

ynode *ynode_get(const ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->items[i];
    return NULL;
}

ynode *ynode_key(const ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->keys[i];
    return NULL;
}

bool ynode_is_null(const ynode *n)
{
    return n && n->kind == YNODE_SCALAR && n->plain &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
            strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0);
}

int ynode_int(const ynode *n, long long *out)
{
    if (!n || n->kind != YNODE_SCALAR || !n->plain || !n->value[0])
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(n->value, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int ynode_double(const ynode *n, double *out)
{
    if (!n || n->kind != YNODE_SCALAR || !n->plain || !n->value[0])
        return -1;
    char *end;
    errno = 0;
    double v = strtod(n->value, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int ynode_bool(const ynode *n, bool *out)
{
    if (!n || n->kind != YNODE_SCALAR || !n->plain)
        return -1;
    if (!strcmp(n->value, "true") || !strcmp(n->value, "True") || !strcmp(n->value, "TRUE")) {
        *out = true;
        return 0;
    }
    if (!strcmp(n->value, "false") || !strcmp(n->value, "False") || !strcmp(n->value, "FALSE")) {
        *out = false;
        return 0;
    }
    return -1;
}

const char *ynode_describe(const ynode *n, char *buf, size_t len)
{
    long long i;
    double d;
    bool b;
    if (!n)
        snprintf(buf, len, "nothing");
    else if (n->kind == YNODE_MAP)
        snprintf(buf, len, "a mapping");
    else if (n->kind == YNODE_SEQ)
        snprintf(buf, len, "a list");
    else if (ynode_is_null(n))
        snprintf(buf, len, "null");
    else if (ynode_bool(n, &b) == 0)
        snprintf(buf, len, "%s", b ? "true" : "false");
    else if (ynode_int(n, &i) == 0 || ynode_double(n, &d) == 0)
        snprintf(buf, len, "the number %s", n->value);
    else
        snprintf(buf, len, "the string \"%.60s\"", n->value);
    return buf;
}

json_t *ynode_to_json(const ynode *n)
{
    long long i;
    double d;
    bool b;
    if (!n)
        return json_null();
    switch (n->kind) {
    case YNODE_MAP: {
        json_t *o = json_object();
        for (size_t k = 0; k < n->len; k++)
            json_object_set_new(o, n->keys[k]->value, ynode_to_json(n->items[k]));
        return o;
    }
    case YNODE_SEQ: {
        json_t *a = json_array();
        for (size_t k = 0; k < n->len; k++)
            json_array_append_new(a, ynode_to_json(n->items[k]));
        return a;
    }
    case YNODE_SCALAR:
    default:
        if (ynode_is_null(n))
            return json_null();
        if (ynode_bool(n, &b) == 0)
            return json_boolean(b);
        if (ynode_int(n, &i) == 0)
            return json_integer(i);
        if (ynode_double(n, &d) == 0)
            return json_real(d);
        return json_string(n->value);
    }
}
