/*
 * loader.c - see loader.h. The order of checks matters: the cheapest and
 * most useful reasons come first, and nothing of the plugin runs before the
 * file checks pass. dlopen() runs the plugin's ELF constructors and calling
 * the entry function runs its code, exactly as PostgreSQL's loader calls
 * the magic function; after that we only read the returned descriptor.
 */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

typedef const pgr_plugin *(*entry_fn)(void);

/* Refuse a path writable by group or others, or owned by someone other
 * than us or root: whoever can write it can run code as us. */
static int check_owner_mode(const char *path, const struct stat *st, const char *what, char *err,
                            size_t errlen)
{
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return set_err(err, errlen,
                       "%s: refused: the %s is writable by %s (mode %03o); run chmod go-w %s",
                       path, what, (st->st_mode & S_IWOTH) ? "others" : "its group",
                       (unsigned)(st->st_mode & 0777), path);
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return set_err(err, errlen,
                       "%s: refused: the %s is owned by uid %u, not by root or by us (uid %u)",
                       path, what, (unsigned)st->st_uid, (unsigned)geteuid());
    return 0;
}

static int check_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return set_err(err, errlen, "%s: cannot load: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return set_err(err, errlen, "%s: cannot load: not a regular file", path);
    if (check_owner_mode(path, &st, "plugin file", err, errlen) < 0)
        return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    struct stat dst;
    if (stat(dir, &dst) < 0)
        return set_err(err, errlen, "%s: cannot load: %s", dir, strerror(errno));
    if (check_owner_mode(dir, &dst, "plugin directory", err, errlen) < 0)
        return set_err(err, errlen,
                       "%s: refused: its directory %s is writable by others than its owner "
                       "(mode %03o); run chmod go-w %s",
                       path, dir, (unsigned)(dst.st_mode & 0777), dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(err, errlen, "%s: cannot load: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    if (n != 4 || memcmp(magic, "\177ELF", 4) != 0)
        return set_err(err, errlen, "%s: refused: not an ELF shared object", path);
    return 0;
}

static char *manifest_path_for(const char *so_path)
{
    size_t len = strlen(so_path);
    if (str_has_suffix(so_path, ".so"))
        len -= 3;
    return xasprintf("%.*s.yaml", (int)len, so_path);
}

static char *plugin_name_for(const char *so_path)
{
    const char *base = strrchr(so_path, '/');
    base = base ? base + 1 : so_path;
    size_t len = strlen(base);
    if (str_has_suffix(base, ".so"))
        len -= 3;
    return xstrndup(base, len);
}

/* The descriptor's head, before anything else in it is read. */
static int check_head(const char *path, const pgr_plugin *d, char *err, size_t errlen)
{
    if (!d)
        return set_err(err, errlen, "%s: refused: %s() returned NULL", path, PGR_ENTRY_SYMBOL_V1);
    if (d->head.magic != PGR_PLUGIN_MAGIC)
        return set_err(err, errlen,
                       "%s: refused: bad magic 0x%08x in the plugin descriptor (expected "
                       "0x%08x): was it filled with PGR_PLUGIN_HEAD?",
                       path, d->head.magic, PGR_PLUGIN_MAGIC);
    if (d->head.abi_major != PGR_ABI_MAJOR)
        return set_err(err, errlen,
                       "%s: refused: host speaks ABI %d, plugin descriptor says ABI %u", path,
                       PGR_ABI_MAJOR, d->head.abi_major);
    if (d->head.pointer_size != sizeof(void *))
        return set_err(err, errlen,
                       "%s: refused: plugin was built with %u-byte pointers, host uses %zu", path,
                       d->head.pointer_size, sizeof(void *));
    /* Everything up to `fini` exists in ABI 1.0; a plugin built against a
     * later minor is larger, which is fine: we never read past our size. */
    size_t min_size = offsetof(pgr_plugin, fini) + sizeof d->fini;
    if (d->head.struct_size < min_size)
        return set_err(err, errlen,
                       "%s: refused: plugin descriptor is %u bytes, ABI %d.0 needs at least %zu",
                       path, d->head.struct_size, PGR_ABI_MAJOR, min_size);
    return 0;
}

static int check_body(const char *path, const char *name, const pgr_plugin *d, char *err,
                      size_t errlen)
{
    if (!d->name || strcmp(d->name, name) != 0)
        return set_err(err, errlen,
                       "%s: refused: plugin calls itself \"%s\" but the file is named %s.so", path,
                       d->name ? d->name : "(null)", name);
    if (!d->version)
        return set_err(err, errlen, "%s: refused: the descriptor has no version", path);
    if (!d->run)
        return set_err(err, errlen, "%s: refused: the descriptor has no run callback", path);
    if (!d->task_types || !d->task_types[0])
        return set_err(err, errlen, "%s: refused: the descriptor lists no task types", path);
    return 0;
}

/* The manifest must describe exactly the loaded descriptor. */
static int check_manifest(const char *path, const pgr_plugin *d, const manifest *m, char *err,
                          size_t errlen)
{
    if (strcmp(m->name, d->name) != 0)
        return set_err(err, errlen, "%s: refused: manifest %s names plugin \"%s\", the plugin is "
                                    "\"%s\"",
                       path, m->path, m->name, d->name);
    if (m->abi != d->head.abi_major)
        return set_err(err, errlen, "%s: refused: manifest %s says ABI %d, the plugin was built "
                                    "for ABI %u",
                       path, m->path, m->abi, d->head.abi_major);
    size_t n = 0;
    for (; d->task_types[n]; n++) {
        if (!manifest_find_type(m, d->task_types[n]))
            return set_err(err, errlen,
                           "%s: refused: the plugin runs task type \"%s\", which manifest %s "
                           "does not describe",
                           path, d->task_types[n], m->path);
    }
    if (n != m->n_types) {
        for (size_t i = 0; i < m->n_types; i++) {
            size_t j;
            for (j = 0; d->task_types[j]; j++)
                if (strcmp(d->task_types[j], m->types[i].name) == 0)
                    break;
            if (!d->task_types[j])
                return set_err(err, errlen,
                               "%s: refused: manifest %s describes task type \"%s\", which the "
                               "plugin does not run",
                               path, m->path, m->types[i].name);
        }
    }
    return 0;
}

/* No v1 symbol: say which ABI the plugin was built for when we can. */
static int missing_entry(void *h, const char *path, char *err, size_t errlen)
{
    for (int major = PGR_ABI_MAJOR + 1; major <= 9; major++) {
        char sym[64];
        snprintf(sym, sizeof sym, "pgreviewer_plugin_v%d", major);
        if (dlsym(h, sym))
            return set_err(err, errlen, "%s: refused: host speaks ABI %d, plugin was built for "
                                        "ABI %d",
                           path, PGR_ABI_MAJOR, major);
    }
    return set_err(err, errlen,
                   "%s: refused: missing symbol %s: not a pgreviewer plugin, or built "
                   "without PGR_PLUGIN_EXPORT",
                   path, PGR_ENTRY_SYMBOL_V1);
}

int loader_load_file(const char *path, loaded_plugin *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (check_file(path, err, errlen) < 0)
        return -1;
    char *name = plugin_name_for(path);
    char *mpath = manifest_path_for(path);
    char merr[1024];
    manifest *m = NULL;
    if (access(mpath, F_OK) != 0) {
        set_err(err, errlen, "%s: refused: no manifest %s beside it", path, mpath);
        goto fail;
    }
    m = manifest_load(mpath, merr, sizeof merr);
    if (!m) {
        set_err(err, errlen, "%s: refused: bad manifest: %s", path, merr);
        goto fail;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        set_err(err, errlen, "%s: refused: dlopen failed: %s", path, dlerror());
        goto fail;
    }
    /* Never dlclose() below: see the file comment. */
    entry_fn entry;
    *(void **)&entry = dlsym(h, PGR_ENTRY_SYMBOL_V1);
    if (!entry) {
        missing_entry(h, path, err, errlen);
        goto fail;
    }
    const pgr_plugin *d = entry();
    if (check_head(path, d, err, errlen) < 0 || check_body(path, name, d, err, errlen) < 0 ||
        check_manifest(path, d, m, err, errlen) < 0)
        goto fail;
    out->name = name;
    out->path = xstrdup(path);
    out->desc = d;
    out->manifest = m;
    out->handle = h;
    free(mpath);
    return 0;
fail:
    manifest_free(m);
    free(name);
    free(mpath);
    return -1;
}

void loader_plugin_clear(loaded_plugin *p)
{
    free(p->name);
    free(p->path);
    manifest_free(p->manifest);
    memset(p, 0, sizeof *p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

plugin_registry *loader_load_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return set_err(err, errlen, "plugin directory %s: %s", dir, strerror(errno)), NULL;
    if (!S_ISDIR(st.st_mode))
        return set_err(err, errlen, "plugin directory %s: not a directory", dir), NULL;
    if (check_owner_mode(dir, &st, "plugin directory", err, errlen) < 0)
        return NULL;
    DIR *d = opendir(dir);
    if (!d)
        return set_err(err, errlen, "plugin directory %s: %s", dir, strerror(errno)), NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !str_has_suffix(de->d_name, ".so"))
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n) /* names is NULL when there is none: not for qsort() */
        qsort(names, n, sizeof *names, cmp_str);
    plugin_registry *reg = xcalloc(1, sizeof *reg);
    reg->directory = xstrdup(dir);
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        loaded_plugin p;
        char perr[1024];
        const loaded_plugin *other = NULL;
        const char *clash = NULL;
        if (loader_load_file(path, &p, perr, sizeof perr) == 0) {
            for (const char *const *t = p.desc->task_types; *t && !other; t++)
                if ((other = loader_find_type(reg, *t)))
                    clash = *t;
        }
        if (other) {
            /* Never let the alphabetical order decide which runs a type. */
            snprintf(perr, sizeof perr,
                     "%s: refused: task type \"%s\" is already provided by %s (remove one of "
                     "the two)",
                     path, clash, other->path);
            loader_plugin_clear(&p); /* loaded code stays mapped: never dlclose */
            reg->refusals = xrealloc(reg->refusals, (reg->n_refusals + 1) * sizeof *reg->refusals);
            reg->refusals[reg->n_refusals++] = xstrdup(perr);
        } else if (p.desc) {
            reg->plugins = xrealloc(reg->plugins, (reg->n_plugins + 1) * sizeof *reg->plugins);
            reg->plugins[reg->n_plugins++] = p;
        } else {
            reg->refusals = xrealloc(reg->refusals, (reg->n_refusals + 1) * sizeof *reg->refusals);
            reg->refusals[reg->n_refusals++] = xstrdup(perr);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return reg;
}

void loader_free(plugin_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_plugins; i++)
        loader_plugin_clear(&reg->plugins[i]);
    for (size_t i = 0; i < reg->n_refusals; i++)
        free(reg->refusals[i]);
    free(reg->plugins);
    free(reg->refusals);
    free(reg->directory);
    free(reg);
}

const loaded_plugin *loader_find_type(const plugin_registry *reg, const char *task_type)
{
    for (size_t i = 0; reg && i < reg->n_plugins; i++)
        for (const char *const *t = reg->plugins[i].desc->task_types; *t; t++)
            if (strcmp(*t, task_type) == 0)
                return &reg->plugins[i];
    return NULL;
}

const loaded_plugin *loader_find_name(const plugin_registry *reg, const char *name)
{
    for (size_t i = 0; reg && i < reg->n_plugins; i++)
        if (strcmp(reg->plugins[i].name, name) == 0)
            return &reg->plugins[i];
    return NULL;
}

const char *loader_default_dir(void)
{
    static char buf[PATH_MAX + 16];
    const char *env = getenv("PGREVIEWER_PLUGIN_DIR");
    if (env && *env)
        return env;
    /* A binary run from the build tree finds the build tree's plugins: the
     * binary sits at the top of the build directory, next to plugins/. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, sizeof buf, "%s/plugins", exe);
            if (strcmp(buf, PGR_BUILD_PLUGIN_DIR) == 0 && access(buf, F_OK) == 0)
                return buf;
        }
    }
    return PGR_INSTALL_PLUGIN_DIR;
}
