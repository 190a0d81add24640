/*
 * vault.h - a small HashiCorp Vault client: KV v2 reads of connection
 * secrets, token and AppRole authentication, token renewal, and a
 * per-connection cache (DESIGN.md section 8, the `vault:` section of
 * section 5).
 *
 * What it talks to, and nothing else:
 *   GET  /v1/<kv_mount>/data/<path>      the secret; we take `.data.data`
 *   POST /v1/auth/<approle_mount>/login  AppRole login (role_id, secret_id)
 *   GET  /v1/auth/token/lookup-self      TTL and renewability of a given token
 *   POST /v1/auth/token/renew-self       renewal at about 2/3 of the TTL
 * with the token in `X-Vault-Token` and, when configured, the namespace in
 * `X-Vault-Namespace`.
 *
 * Nothing here touches the network until the first read: vault_new() only
 * checks the configuration. Authentication is lazy, renewal is done before
 * a request once it is due (an event loop can also call vault_maintain() at
 * vault_renew_due_ms()), and a 403 on a read leads to one re-login (AppRole)
 * or one re-read of the token file (token auth) and one retry.
 *
 * Secrets: the token, the AppRole secret_id and every secret value are held
 * in memory owned by the client and wiped (explicit_bzero) when dropped.
 * No message this file produces contains any of them; as a last line of
 * defence every message is passed through vault_redact() with the token
 * and secret_id before it reaches the caller.
 *
 * Processes and threads: a vault_client belongs to one process and is used
 * from one thread at a time (it owns one curl easy handle, whose connection
 * cache is not shared). The worker supervisor and each executor have their
 * own. A client inherited across fork() is usable in the child: on its first
 * call there the child notices the pid changed and abandons the inherited
 * curl handle without cleaning it up (a cleanup could send a TLS
 * close_notify on a socket the parent still uses) and opens its own; the
 * token and the cache are kept. curl's global initialisation is done once
 * per process, under pthread_once.
 */
#ifndef PGR_VAULT_H
#define PGR_VAULT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct vault_client vault_client;

/* Check `cfg` (which must stay alive as long as the client) and make a
 * client. Does no I/O besides checking that ca_file and the auth files
 * exist. Returns the client (free with vault_free()) or NULL with err
 * filled: no address, an address that is not http:// or https://, a
 * missing or unreadable file. */
vault_client *vault_new(const cfg_vault *cfg, char *err, size_t errlen);

/* Free the client: wipes the token, the secret_id and the cached secrets.
 * NULL is allowed. */
void vault_free(vault_client *vc);

/* Read the secret of `connection_id`: from the cache while its entry is
 * younger than cache_ttl_ms, otherwise GET /v1/<kv_mount>/data/<path>.
 * Authenticates and renews first when needed. On success returns 0 and
 * stores in *data a new JSON object (the secret's `.data.data`) that the
 * caller frees with vault_secret_free(). On failure returns -1, *data is
 * NULL and err says which of these happened: no secret at the path (404),
 * permission denied (403, after one re-authentication), a server error
 * (5xx), Vault sealed (503), connection refused, timeout, TLS verification
 * failure, a malformed answer, or an authentication failure. */
int vault_read_secret(vault_client *vc, const char *connection_id, json_t **data,
                      char *err, size_t errlen);

/* Drop the cached secret of `connection_id` (wiped); the next read goes to
 * Vault. Used when the target rejects the password (it may have rotated). */
void vault_invalidate(vault_client *vc, const char *connection_id);

/* Wipe every string value inside `secret` and release it. NULL allowed. */
void vault_secret_free(json_t *secret);

/* Where the secret of `connection_id` lives, as "<mount>/data/<path>"
 * (e.g. "secret/data/database/connections/prod-main"): the API path
 * without /v1/. Returns a string the caller frees, or NULL with err filled
 * when the id cannot be used in a path (empty, contains '/', "." or ".."). */
char *vault_secret_location(const vault_client *vc, const char *connection_id,
                            char *err, size_t errlen);

/* Authenticate now if there is no token, renew it if renewal is due
 * (re-login when renewal fails or is not possible). Returns 0, or -1 with
 * err filled. vault_read_secret() calls it; an event loop may call it at
 * vault_renew_due_ms() so that a token never lapses between reads. */
int vault_maintain(vault_client *vc, char *err, size_t errlen);

/* Monotonic time (mono_ms()) at which the token should be renewed, or 0
 * when there is no token yet or it never expires. */
int64_t vault_renew_due_ms(const vault_client *vc);

/* Move VAULT_TOKEN out of the environment into process memory: its value is
 * wiped in place (so /proc/PID/environ and forked executors no longer show
 * it) and the variable is unset. Token auth without token_file then uses
 * the captured value. main() calls it once, first thing; idempotent. */
void vault_capture_env_token(void);

/* Replace every occurrence of `secret` (if non-NULL and non-empty) in the
 * NUL-terminated `msg` by "[redacted]", in place, truncating to `size`. */
void vault_redact(char *msg, size_t size, const char *secret);

#endif
