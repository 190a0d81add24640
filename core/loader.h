/*
 * loader.h - finding, checking and loading task-type plugins.
 *
 * A plugin is NAME.so with its manifest NAME.yaml beside it in the plugin
 * directory. Before any of its code runs we check the file (a regular,
 * readable ELF file, not writable by group/others, nor its directory), the
 * manifest, and then - after dlopen(RTLD_NOW | RTLD_LOCAL) - the entry
 * symbol and the descriptor's head (magic, ABI major, pointer size,
 * struct_size) and content, and that the manifest agrees with it. Each
 * refusal is one line naming the file and the most useful reason first
 * ("host speaks ABI 1, plugin was built for ABI 2").
 *
 * Plugins are never unloaded from a live process (DESIGN.md section 4):
 * loader_free() forgets them but does not dlclose().
 *
 * Called from the main process before executors are forked; the children
 * inherit the loaded plugins.
 */
#ifndef PGR_LOADER_H
#define PGR_LOADER_H

#include <pgreviewer/plugin.h>
#include <stddef.h>

#include "manifest.h"

typedef struct loaded_plugin {
    char *name;          /* file name without .so */
    char *path;          /* path of the .so */
    const pgr_plugin *desc;
    manifest *manifest;
    void *handle;        /* dlopen handle, never closed */
} loaded_plugin;

typedef struct plugin_registry {
    char *directory;
    loaded_plugin *plugins;
    size_t n_plugins;
    char **refusals;     /* one line per plugin that was refused */
    size_t n_refusals;
} plugin_registry;

/* Load one plugin file (NAME.so; its manifest is NAME.yaml beside it).
 * Returns 0 and fills *out (free its fields with loader_plugin_clear), or
 * -1 with err filled as "PATH: reason". */
int loader_load_file(const char *path, loaded_plugin *out, char *err, size_t errlen);
void loader_plugin_clear(loaded_plugin *p);

/* Scan `dir` for *.so and load each. A plugin that is refused is skipped
 * and its reason kept in refusals. Returns the registry (caller frees with
 * loader_free), or NULL with err filled when the directory itself cannot be
 * used (missing, unreadable, writable by others). */
plugin_registry *loader_load_dir(const char *dir, char *err, size_t errlen);
void loader_free(plugin_registry *reg);

/* The plugin that runs `task_type`, or NULL. */
const loaded_plugin *loader_find_type(const plugin_registry *reg, const char *task_type);
/* A plugin by name, or NULL. */
const loaded_plugin *loader_find_name(const plugin_registry *reg, const char *name);

/* The directory to use when none is configured: the build tree's when the
 * running binary sits in the build tree that has one, else the installed
 * one. Returns a static string. */
const char *loader_default_dir(void);

#endif
