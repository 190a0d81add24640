/*
 * la_cli.c - command-line driver of the log analysis engine, for tests and
 * the benchmark (not installed). It takes the same params JSON as the
 * plugin and prints the same document:
 *
 *   la_cli [--state FILE] '{"files":["..."],"format":"stderr"}'
 *   la_cli [--state FILE] --server-dir DIR '{"source":"server",...}'
 *
 * --server-dir runs the server source (la_run_remote) on a local directory
 * standing for the server's log directory: its regular files are listed as
 * pg_ls_logdir() would (name, size, modification time) and read with
 * pread() in place of pg_read_binary_file(). That tests the engine's side
 * of the server source (chunks, state, reused names) without a server.
 *
 * With --state, the previous state is read from FILE (when it exists) and
 * the next state written back to it, as the host does with plugin_state.
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "la_engine.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b != NULL && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *nb = realloc(b, cap *= 2);
            if (nb == NULL) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (b != NULL)
        b[n] = '\0';
    return b;
}

/* The regular files of dir as a listing (malloc'd names and paths). */
static la_remote_file *list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    la_remote_file *v = NULL;
    size_t cap = 0;
    struct dirent *e;
    *n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, cap * sizeof *v);
            if (v == NULL)
                abort();
        }
        v[*n].name = strdup(e->d_name);
        v[*n].path = strdup(path);
        v[*n].size = (uint64_t)sb.st_size;
        v[*n].mtime = (int64_t)sb.st_mtime;
        (*n)++;
    }
    if (d != NULL)
        closedir(d);
    return v;
}

/* la_remote_read on a local file. */
static int64_t read_local(void *arg, const la_remote_file *f, uint64_t off, size_t len, char *buf,
                          int *fatal, char *err, size_t errlen)
{
    (void)arg;
    (void)fatal;
    int fd = open(f->path, O_RDONLY);
    if (fd < 0)
        return 0; /* removed since listed: like missing_ok */
    ssize_t r = pread(fd, buf, len, (off_t)off);
    close(fd);
    if (r < 0) {
        snprintf(err, errlen, "%s: read failed", f->path);
        return -1;
    }
    return r;
}

static int run_server_dir(const char *dir, const char *params, const char *prev, char **result,
                          char **state, int *retryable, char *err, size_t errlen)
{
    size_t n;
    la_remote_file *files = list_dir(dir, &n);
    int rc = la_run_remote(params, prev, files, n, read_local, NULL, NULL, NULL, result, state,
                           retryable, err, errlen);
    for (size_t i = 0; i < n; i++) {
        free((char *)files[i].name);
        free((char *)files[i].path);
    }
    free(files);
    return rc;
}

int main(int argc, char **argv)
{
    const char *state_path = NULL, *params = NULL, *server_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
            state_path = argv[++i];
        else if (strcmp(argv[i], "--server-dir") == 0 && i + 1 < argc)
            server_dir = argv[++i];
        else if (params == NULL && argv[i][0] != '-')
            params = argv[i];
        else {
            fprintf(stderr, "usage: la_cli [--state FILE] [--server-dir DIR] PARAMS_JSON\n");
            return 2;
        }
    }
    if (params == NULL) {
        fprintf(stderr, "usage: la_cli [--state FILE] [--server-dir DIR] PARAMS_JSON\n");
        return 2;
    }
    char *prev = state_path ? slurp(state_path) : NULL;
    char *result = NULL, *state = NULL, err[512];
    int retryable = 0;
    int rc = server_dir ? run_server_dir(server_dir, params, prev, &result, &state, &retryable,
                                         err, sizeof err)
                        : la_run(params, prev, NULL, NULL, &result, &state, &retryable, err,
                                 sizeof err);
    if (rc < 0) {
        fprintf(stderr, "la_cli: %s%s\n", err, retryable ? " (retryable)" : "");
        free(prev);
        return 1;
    }
    fputs(result, stdout);
    fputc('\n', stdout);
    if (state_path != NULL) {
        FILE *f = fopen(state_path, "w");
        if (f == NULL || fputs(state, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "la_cli: cannot write state %s\n", state_path);
            return 1;
        }
    }
    free(prev);
    free(result);
    free(state);
    return 0;
}
