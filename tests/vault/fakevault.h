/*
 * fakevault.h - start and drive tests/vault/fake_vault.py from C tests:
 * a throw-away Vault-compatible server (optionally over TLS with a
 * self-signed certificate made by openssl) and its control API.
 *
 * Test-only code: failures are reported on stderr and returned as -1.
 */
#ifndef PGR_FAKEVAULT_H
#define PGR_FAKEVAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct fakevault {
    pid_t pid;
    int port, control_port;
    bool tls;
    char dir[256];      /* temporary directory: port file, certificate, secret files */
    char address[128];  /* http(s)://127.0.0.1:PORT */
    char cert[320];     /* the self-signed certificate (TLS only): use as vault.ca_file */
} fakevault;

/* Generate a self-signed certificate for 127.0.0.1 into dir (cert.pem,
 * key.pem). Returns 0 or -1. */
int fakevault_make_cert(const char *dir);

/* Start the server (over TLS with `cert_dir`/cert.pem and key.pem when
 * cert_dir is not NULL). Returns 0 or -1. */
int fakevault_start(fakevault *fv, const char *cert_dir);
void fakevault_stop(fakevault *fv);

/* POST the JSON text to the control endpoint (e.g. "/secret"). 0 or -1. */
int fakevault_ctl(const fakevault *fv, const char *endpoint, const char *json_text);

/* GET /stats: the object {"requests": {...}, "total": n, "namespaces": [...]};
 * caller json_decref()s. NULL on failure. */
json_t *fakevault_stats(const fakevault *fv);

/* How many requests "METHOD /v1/path" the server saw; -1 on failure. */
int fakevault_count(const fakevault *fv, const char *method_path);

/* Write `content` (no newline added) to dir/name, mode 0600; returns the
 * path in a static buffer rotated among 8 slots. */
const char *fakevault_file(const fakevault *fv, const char *name, const char *content);

#endif
