/*
 * yamltree.h - a YAML document read with libyaml into a small tree whose
 * every node remembers where it was written (file, line, column), so that
 * configuration and manifest errors can say `file:line:column: message`.
 *
 * Aliases (*name) are expanded into copies of the anchored node. Only the
 * first document of a stream is read.
 */
#ifndef PGR_YAMLTREE_H
#define PGR_YAMLTREE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP } ynode_kind;

typedef struct ynode ynode;
struct ynode {
    ynode_kind kind;
    const char *file; /* owned by the ydoc; the file name given to the loader */
    int line, col;    /* 1-based position of the node's first character */
    char *value;      /* scalar: its text (never NULL) */
    bool plain;       /* scalar: written without quotes (so `5` is a number, "5" text) */
    size_t len;       /* seq / map: number of entries */
    ynode **items;    /* seq: the values; map: the values, parallel to keys */
    ynode **keys;     /* map: the keys (scalars; a non-scalar key is refused) */
};

typedef struct ydoc ydoc;

/* Parse a file. Returns a document the caller frees with ydoc_free(), or
 * NULL with err filled as "file:line:column: message". An empty file gives
 * a document whose root is NULL. */
ydoc *ydoc_load_file(const char *path, char *err, size_t errlen);
/* The same from memory; `name` is used as the file name in marks. */
ydoc *ydoc_load_string(const char *name, const char *text, size_t len, char *err, size_t errlen);
ynode *ydoc_root(const ydoc *doc);
const char *ydoc_file(const ydoc *doc);
void ydoc_free(ydoc *doc);

/* The value under `key` in a map, or NULL (also when `map` is not a map). */
ynode *ynode_get(const ynode *map, const char *key);
/* The key node of `key` in a map (for its mark), or NULL. */
ynode *ynode_key(const ynode *map, const char *key);

/* A plain scalar that YAML 1.2's core schema reads as null (`~`, `null`,
 * empty). */
bool ynode_is_null(const ynode *n);
/* Typed reads of a scalar. Return 0, or -1 when the node is not a scalar of
 * that type (a quoted "5" is not an integer; `yes` is not a boolean). */
int ynode_int(const ynode *n, long long *out);
int ynode_double(const ynode *n, double *out);
int ynode_bool(const ynode *n, bool *out);
/* Human name of what the node is, for messages: "a mapping", "a list",
 * "the string \"x\"", "the number 5", "true". Writes into buf. */
const char *ynode_describe(const ynode *n, char *buf, size_t len);

/* Convert to JSON: plain scalars become null / booleans / integers / reals
 * when they read as such, everything else a string. New reference. */
json_t *ynode_to_json(const ynode *n);

#endif
