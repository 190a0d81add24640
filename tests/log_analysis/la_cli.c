/*
 * la_cli.c - command-line driver of the log analysis engine, for tests and
 * the benchmark (not installed). It takes the same params JSON as the
 * plugin and prints the same document:
 *
 *   la_cli [--state FILE] '{"files":["..."],"format":"stderr"}'
 *
 * With --state, the previous state is read from FILE (when it exists) and
 * the next state written back to it, as the host does with plugin_state.
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    const char *state_path = NULL, *params = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
            state_path = argv[++i];
        else if (params == NULL && argv[i][0] != '-')
            params = argv[i];
        else {
            fprintf(stderr, "usage: la_cli [--state FILE] PARAMS_JSON\n");
            return 2;
        }
    }
    if (params == NULL) {
        fprintf(stderr, "usage: la_cli [--state FILE] PARAMS_JSON\n");
        return 2;
    }
    char *prev = state_path ? slurp(state_path) : NULL;
    char *result = NULL, *state = NULL, err[512];
    int retryable = 0;
    if (la_run(params, prev, NULL, NULL, &result, &state, &retryable, err, sizeof err) < 0) {
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
