/*
 * test_loader.c - the plugin loader against real shared objects: a good
 * fixture, one broken in each way the loader must refuse, and file-system
 * conditions (not ELF, no manifest, writable file or directory). Every
 * refusal is asserted on its message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "testenv.h"
#include "util.h"

static char fixture_path[1024];

static const char *fixture(const char *c, const char *name)
{
    snprintf(fixture_path, sizeof fixture_path, "%s/%s/%s.so", getenv("PGR_FIXTURE_DIR"), c, name);
    return fixture_path;
}

/* Load `path`; expect a refusal whose message is "<path>: <tail>". */
static void expect_refusal(const char *path, const char *tail)
{
    loaded_plugin p;
    char err[1024], want[2048];
    assert_int_equal(loader_load_file(path, &p, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: %s", path, tail);
    assert_string_equal(err, want);
}

static void test_good(void **state)
{
    (void)state;
    loaded_plugin p;
    char err[1024] = "";
    int rc = loader_load_file(fixture("good", "fixture"), &p, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(p.name, "fixture");
    assert_string_equal(p.desc->task_types[0], "fixture_type");
    assert_non_null(manifest_find_type(p.manifest, "fixture_type"));
    loader_plugin_clear(&p);
}

static void test_abi_major(void **state)
{
    (void)state;
    expect_refusal(fixture("abi2", "fixture"),
                   "refused: host speaks ABI 1, plugin descriptor says ABI 2");
}

static void test_only_v2_symbol(void **state)
{
    (void)state;
    expect_refusal(fixture("v2only", "fixture"),
                   "refused: host speaks ABI 1, plugin was built for ABI 2");
}

static void test_missing_symbol(void **state)
{
    (void)state;
    expect_refusal(fixture("nosymbol", "fixture"),
                   "refused: missing symbol pgreviewer_plugin_v1: not a pgreviewer plugin, or "
                   "built without PGR_PLUGIN_EXPORT");
}

static void test_null_descriptor(void **state)
{
    (void)state;
    expect_refusal(fixture("nulldesc", "fixture"), "refused: pgreviewer_plugin_v1() returned NULL");
}

static void test_bad_magic(void **state)
{
    (void)state;
    expect_refusal(fixture("badmagic", "fixture"),
                   "refused: bad magic 0xdeadbeef in the plugin descriptor (expected 0x50475250): "
                   "was it filled with PGR_PLUGIN_HEAD?");
}

static void test_small_descriptor(void **state)
{
    (void)state;
    char want[256];
    snprintf(want, sizeof want,
             "refused: plugin descriptor is 8 bytes, ABI 1.0 needs at least %zu",
             offsetof(pgr_plugin, fini) + sizeof(void *));
    expect_refusal(fixture("small", "fixture"), want);
}

static void test_manifest_mismatch(void **state)
{
    (void)state;
    char want[1024];
    const char *so = fixture("mismatch", "fixture");
    snprintf(want, sizeof want,
             "refused: the plugin runs task type \"fixture_type\", which manifest %s/mismatch/"
             "fixture.yaml does not describe",
             getenv("PGR_FIXTURE_DIR"));
    expect_refusal(so, want);
}

static void test_name_mismatch(void **state)
{
    (void)state;
    expect_refusal(fixture("misnamed", "wrongname"),
                   "refused: plugin calls itself \"fixture\" but the file is named wrongname.so");
}

/* A private temporary directory with a copy of the good fixture. */
static void copy_good(char *dir, size_t len, bool with_manifest)
{
    char cmd[4096];
    snprintf(dir, len, "/tmp/pgr-loader-XXXXXX");
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(cmd, sizeof cmd, "cp %s %s/fixture.so %s", fixture("good", "fixture"), dir,
             with_manifest ? "" : "&& true");
    assert_int_equal(run_capture(cmd, NULL), 0);
    if (with_manifest) {
        snprintf(cmd, sizeof cmd, "cp %s/good/fixture.yaml %s/", getenv("PGR_FIXTURE_DIR"), dir);
        assert_int_equal(run_capture(cmd, NULL), 0);
    }
}

static void rm_dir(const char *dir)
{
    char cmd[1024];
    chmod(dir, 0755);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
}

static void test_no_manifest(void **state)
{
    (void)state;
    char dir[64], so[128], want[256];
    copy_good(dir, sizeof dir, false);
    snprintf(so, sizeof so, "%s/fixture.so", dir);
    snprintf(want, sizeof want, "refused: no manifest %s/fixture.yaml beside it", dir);
    expect_refusal(so, want);
    rm_dir(dir);
}

static void test_bad_manifest(void **state)
{
    (void)state;
    char dir[64], so[128], want[512], yaml[128];
    copy_good(dir, sizeof dir, false);
    snprintf(so, sizeof so, "%s/fixture.so", dir);
    snprintf(yaml, sizeof yaml, "%s/fixture.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fputs("name: fixture\nabi: 1\nversion: \"1\"\ntask_typse:\n  fixture_type: {}\n", f);
    fclose(f);
    snprintf(want, sizeof want,
             "refused: bad manifest: %s:4:1: unknown key \"task_typse\" in the manifest (did you "
             "mean \"task_types\"?)",
             yaml);
    expect_refusal(so, want);
    rm_dir(dir);
}

static void test_not_elf(void **state)
{
    (void)state;
    char dir[64], so[128], cmd[512];
    copy_good(dir, sizeof dir, true);
    snprintf(so, sizeof so, "%s/fixture.so", dir);
    snprintf(cmd, sizeof cmd, "echo 'not a library' > %s", so);
    assert_int_equal(run_capture(cmd, NULL), 0);
    expect_refusal(so, "refused: not an ELF shared object");
    rm_dir(dir);
}

static void test_writable_file(void **state)
{
    (void)state;
    char dir[64], so[128], want[512];
    copy_good(dir, sizeof dir, true);
    snprintf(so, sizeof so, "%s/fixture.so", dir);
    chmod(so, 0666);
    snprintf(want, sizeof want,
             "refused: the plugin file is writable by others (mode 666); run chmod go-w %s", so);
    expect_refusal(so, want);
    rm_dir(dir);
}

static void test_writable_directory(void **state)
{
    (void)state;
    char dir[64], so[128], want[512];
    copy_good(dir, sizeof dir, true);
    snprintf(so, sizeof so, "%s/fixture.so", dir);
    chmod(dir, 0777);
    snprintf(want, sizeof want,
             "refused: its directory %s is writable by others than its owner (mode 777); run "
             "chmod go-w %s",
             dir, dir);
    expect_refusal(so, want);
    /* The directory scan refuses the whole directory. */
    char err[512];
    assert_null(loader_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "the plugin directory is writable by others (mode 777)"));
    rm_dir(dir);
}

static void test_missing_file(void **state)
{
    (void)state;
    expect_refusal("/nonexistent/x.so", "cannot load: No such file or directory");
}

/* A directory with one good and one broken plugin: the good one loads, the
 * broken one is skipped with its reason. */
static void test_scan_skips_refused(void **state)
{
    (void)state;
    char dir[64], cmd[1024], err[512];
    copy_good(dir, sizeof dir, true);
    snprintf(cmd, sizeof cmd, "cp %s/abi2/fixture.so %s/broken.so && sed 's/name: fixture/name: broken/' %s/abi2/fixture.yaml > %s/broken.yaml",
             getenv("PGR_FIXTURE_DIR"), dir, getenv("PGR_FIXTURE_DIR"), dir);
    assert_int_equal(run_capture(cmd, NULL), 0);
    plugin_registry *reg = loader_load_dir(dir, err, sizeof err);
    assert_non_null(reg);
    assert_int_equal(reg->n_plugins, 1);
    assert_string_equal(reg->plugins[0].name, "fixture");
    assert_int_equal(reg->n_refusals, 1);
    assert_non_null(strstr(reg->refusals[0], "broken.so: refused: host speaks ABI 1, plugin "
                                             "descriptor says ABI 2"));
    assert_non_null(loader_find_type(reg, "fixture_type"));
    loader_free(reg);
    rm_dir(dir);
}

/* Two plugins for one task type: the second is refused, naming the first,
 * rather than one of them winning silently. */
static void test_duplicate_task_type(void **state)
{
    (void)state;
    char dir[64], cmd[1024], err[512], want[512];
    copy_good(dir, sizeof dir, true);
    snprintf(cmd, sizeof cmd, "cp %s/twin/twin.so %s/twin/twin.yaml %s/",
             getenv("PGR_FIXTURE_DIR"), getenv("PGR_FIXTURE_DIR"), dir);
    assert_int_equal(run_capture(cmd, NULL), 0);
    plugin_registry *reg = loader_load_dir(dir, err, sizeof err);
    assert_non_null(reg);
    assert_int_equal(reg->n_plugins, 1);
    assert_string_equal(reg->plugins[0].name, "fixture");
    assert_int_equal(reg->n_refusals, 1);
    snprintf(want, sizeof want,
             "%s/twin.so: refused: task type \"fixture_type\" is already provided by "
             "%s/fixture.so (remove one of the two)",
             dir, dir);
    assert_string_equal(reg->refusals[0], want);
    loader_free(reg);
    rm_dir(dir);
}

/* `pgreviewer plugin check` prints exactly the one-line reason, exit 1;
 * and "ok" with exit 0 for a good plugin. */
static void test_cli_plugin_check(void **state)
{
    (void)state;
    char cmd[2048], *out = NULL, want[2048];
    const char *so = fixture("abi2", "fixture");
    snprintf(cmd, sizeof cmd, "%s plugin check %s", getenv("PGR_BIN"), so);
    assert_int_equal(run_capture(cmd, &out), 1);
    snprintf(want, sizeof want, "%s: refused: host speaks ABI 1, plugin descriptor says ABI 2\n",
             so);
    assert_string_equal(out, want);
    free(out);
    snprintf(cmd, sizeof cmd, "%s plugin check %s/example.so", getenv("PGR_BIN"),
             getenv("PGR_PLUGIN_DIR"));
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_non_null(strstr(out, "ok: plugin example 1.0.0 (ABI 1.0)"));
    free(out);
}

/* A plugin directory without any .so: an empty registry, no error (and no
 * qsort() of a NULL array, which the sanitizer build refuses). */
static void test_empty_directory(void **state)
{
    (void)state;
    char dir[64] = "/tmp/pgr-loader-XXXXXX", err[512] = "";
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    plugin_registry *reg = loader_load_dir(dir, err, sizeof err);
    assert_non_null(reg);
    assert_int_equal(reg->n_plugins, 0);
    assert_int_equal(reg->n_refusals, 0);
    loader_free(reg);
    rm_dir(dir);
}

/* A plugin's message that is not UTF-8 (cut inside a character, or
 * Latin-1) still reaches the host with the plugin's outcome: the bad bytes
 * become U+FFFD, and the task is not mistaken for a crashed executor. */
static void test_message_not_utf8(void **state)
{
    (void)state;
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "PGREVIEWER_PLUGIN_DIR=%s/badutf8 %s --config /dev/null plugin exec fixture_type "
             "--envelope 2>/dev/null",
             getenv("PGR_FIXTURE_DIR"), getenv("PGR_BIN"));
    assert_int_equal(run_capture(cmd, &out), 1); /* the task failed */
    assert_non_null(out);
    if (!strstr(out, "\"outcome\": \"fail\""))
        fail_msg("expected outcome fail, got: %s", out);
    assert_non_null(strstr(out, "\"message\": \"caf\xef\xbf\xbd \xef\xbf\xbdt\xef\xbf\xbd\""));
    assert_non_null(strstr(out, "\"fixture\": true"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_message_not_utf8),
        cmocka_unit_test(test_empty_directory),
        cmocka_unit_test(test_abi_major),
        cmocka_unit_test(test_only_v2_symbol),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_null_descriptor),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_small_descriptor),
        cmocka_unit_test(test_manifest_mismatch),
        cmocka_unit_test(test_name_mismatch),
        cmocka_unit_test(test_no_manifest),
        cmocka_unit_test(test_bad_manifest),
        cmocka_unit_test(test_not_elf),
        cmocka_unit_test(test_writable_file),
        cmocka_unit_test(test_writable_directory),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_scan_skips_refused),
        cmocka_unit_test(test_duplicate_task_type),
        cmocka_unit_test(test_cli_plugin_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
