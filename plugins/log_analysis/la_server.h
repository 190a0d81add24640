/*
 * la_server.h - `source: server`: the target server's log read through the
 * task's connection with pg_ls_logdir() and pg_read_binary_file() (see
 * la_server.c). Part of the plugin, not of the engine: it links libpq.
 */
#ifndef LA_SERVER_H
#define LA_SERVER_H

#include <libpq-fe.h>

/* Analyse the server's log files through conn (owned by the caller, left
 * open). Same contract as la_run: returns 0 with *result and *new_state
 * (malloc'd JSON, caller frees), or -1 with err filled and *retryable set
 * (0 for a missing privilege, logging_collector off or invalid params; 1
 * for a failed query or a cancellation). */
int la_server_run(PGconn *conn, const char *params_json, const char *state_json,
                  int (*poll)(void *, double), void *poll_arg, char **result, char **new_state,
                  int *retryable, char *err, size_t errlen);

#endif /* LA_SERVER_H */
