/*
 * fuzz_yaml.c - libFuzzer target for the configuration's front end: the
 * YAML tree builder (libyaml events, marks, aliases), its conversion to
 * JSON, and the validation of params against a manifest schema. Any input
 * must give a document or an error message, never a crash or a leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "yamltree.h"

static task_type_spec *spec(void)
{
    static param_spec params[3];
    static task_type_spec t = {"fuzz", NULL, params, 3, };
    if (!params[0].name) {
        params[0] = (param_spec){.name = "mode", .type = PT_STRING,
                                 .enum_ = json_pack("[s,s]", "a", "b"), .def = json_string("a")};
        params[1] = (param_spec){.name = "n", .type = PT_INTEGER, .has_min = true, .min = 0,
                                 .has_max = true, .max = 10};
        params[2] = (param_spec){.name = "files", .type = PT_ARRAY, .items = PT_STRING};
    }
    return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ydoc *doc = ydoc_load_string("fuzz.yaml", (const char *)data, size, err, sizeof err);
    if (!doc)
        return 0;
    const ynode *root = ydoc_root(doc);
    json_t *j = ynode_to_json(root);
    strbuf errors = {0};
    json_t *v = manifest_validate_params(spec(), json_is_object(j) ? j : NULL, root, "fuzz",
                                         "params", &errors);
    json_decref(v);
    json_decref(j);
    sb_free(&errors);
    char buf[128];
    ynode_describe(root, buf, sizeof buf);
    ydoc_free(doc);
    return 0;
}
