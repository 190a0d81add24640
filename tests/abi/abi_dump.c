/*
 * abi_dump.c - print the layout of every struct of the plugin ABI, one
 * line per member: "struct.member offset size". The baseline of ABI 1
 * (plugin-sdk/abi/v1.baseline) is the same output at the time of release;
 * abi_check.sh asserts that it is still a prefix of each struct's lines:
 * members may be appended, never moved, resized, renamed or removed.
 *
 * Compiled with -std=c99 -pedantic: it also proves the header is
 * self-contained C99.
 */
#include <pgreviewer/plugin.h>
#include <stdio.h>

#define M(type, member)                                                                       \
    printf("%s.%s %zu %zu\n", #type, #member, offsetof(type, member),                         \
           sizeof(((type *)0)->member))

int main(void)
{
    printf("PGR_ABI_MAJOR %d\nPGR_PLUGIN_MAGIC 0x%08x\nPGR_HOST_MAGIC 0x%08x\n", PGR_ABI_MAJOR,
           PGR_PLUGIN_MAGIC, PGR_HOST_MAGIC);
    printf("PGR_SUCCESS %d\nPGR_RETRY %d\nPGR_FAIL %d\n", PGR_SUCCESS, PGR_RETRY, PGR_FAIL);
    M(pgr_abi_head, magic);
    M(pgr_abi_head, abi_major);
    M(pgr_abi_head, abi_minor);
    M(pgr_abi_head, struct_size);
    M(pgr_abi_head, pointer_size);
    M(pgr_abi_head, reserved);
    M(pgr_plugin, head);
    M(pgr_plugin, name);
    M(pgr_plugin, version);
    M(pgr_plugin, description);
    M(pgr_plugin, task_types);
    M(pgr_plugin, init);
    M(pgr_plugin, run);
    M(pgr_plugin, fini);
    M(pgr_host, head);
    M(pgr_host, log);
    M(pgr_host, params_json);
    M(pgr_host, set_result);
    M(pgr_host, set_message);
    M(pgr_host, progress);
    M(pgr_host, cancelled);
    M(pgr_host, remaining_ms);
    M(pgr_host, connection);
    M(pgr_host, state_get);
    M(pgr_host, state_set);
    M(pgr_host, task_name);
    M(pgr_host, task_type);
    M(pgr_host, connection_id);
    M(pgr_host, execution_id);
    M(pgr_host, attempt);
    M(pgr_host, param_string);
    M(pgr_host, param_int);
    M(pgr_host, param_number);
    M(pgr_host, param_bool);
    M(pgr_host, param_json);
    return 0;
}
