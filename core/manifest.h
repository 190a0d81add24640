/*
 * manifest.h - a plugin's manifest (NAME.yaml beside NAME.so): its name,
 * ABI major, version, task types, and for each task type a schema of its
 * params (types, required, defaults, allowed values, bounds). The schema
 * drives validation of every task's params at `config check` time, the
 * defaults the plugin sees, and `pgreviewer plugin info` (DESIGN.md
 * section 4, STYLE.md habit 7).
 *
 * Manifest format:
 *
 *   name: example
 *   abi: 1
 *   version: "1.0.0"
 *   description: one line
 *   task_types:
 *     example:
 *       description: one line
 *       params:
 *         mode:     {type: string, enum: [succeed, fail], default: succeed, description: ...}
 *         sleep_ms: {type: integer, min: 0, default: 0}
 *         files:    {type: array, items: string, required: true}
 *
 * Param types: string, integer, number, boolean, array, object, any.
 */
#ifndef PGR_MANIFEST_H
#define PGR_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"
#include "yamltree.h"

typedef enum param_type {
    PT_ANY,
    PT_STRING,
    PT_INTEGER,
    PT_NUMBER,
    PT_BOOLEAN,
    PT_ARRAY,
    PT_OBJECT
} param_type;

typedef struct param_spec {
    char *name;
    param_type type;
    param_type items;   /* arrays: the type of each element (PT_ANY: anything) */
    bool required;
    json_t *def;        /* default value or NULL */
    json_t *enum_;      /* array of allowed values or NULL */
    bool has_min, has_max;
    double min, max;    /* bounds for integer / number */
    char *description;
} param_spec;

typedef struct task_type_spec {
    char *name;
    char *description;
    param_spec *params;
    size_t n_params;
} task_type_spec;

typedef struct manifest {
    char *path;
    char *name;
    int abi;
    char *version;
    char *description;
    task_type_spec *types;
    size_t n_types;
} manifest;

/* Read and check a manifest file. Returns a manifest the caller frees with
 * manifest_free(), or NULL with err filled as "file:line:column: message". */
manifest *manifest_load(const char *path, char *err, size_t errlen);
void manifest_free(manifest *m);

const task_type_spec *manifest_find_type(const manifest *m, const char *type);
const char *param_type_name(param_type t);

/*
 * Validate `params` (a JSON object, or NULL for none) against a task
 * type's schema, and return a new object with the defaults filled in.
 * On errors returns NULL and appends one line per problem to *errors:
 *   "<where>: <field>.<key>: message"
 * `node` is the params' YAML node when they came from a file (its marks
 * give "file:line:column"), else NULL and `where` is used (e.g.
 * "--params"). `field` names the params in messages ("tasks[2].params").
 * Unknown keys are errors with a "did you mean" hint.
 */
json_t *manifest_validate_params(const task_type_spec *spec, const json_t *params,
                                 const ynode *node, const char *where, const char *field,
                                 strbuf *errors);

#endif
