/*
 * fakevault.c - see fakevault.h.
 */
#include "fakevault.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testenv.h"

int fakevault_make_cert(const char *dir)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost",
             dir, dir);
    int rc = run_capture(cmd, &out);
    if (rc != 0)
        fprintf(stderr, "fakevault_make_cert: openssl failed (%d): %s\n", rc, out ? out : "");
    free(out);
    return rc == 0 ? 0 : -1;
}

static char g_port_file[300];

static bool port_file_ready(void *arg)
{
    (void)arg;
    return access(g_port_file, R_OK) == 0;
}

int fakevault_start(fakevault *fv, const char *cert_dir)
{
    memset(fv, 0, sizeof *fv);
    snprintf(fv->dir, sizeof fv->dir, "/tmp/pgr-vault-XXXXXX");
    if (!mkdtemp(fv->dir))
        return -1;
    snprintf(g_port_file, sizeof g_port_file, "%s/ports", fv->dir);
    char script[512], cert[320], key[320];
    snprintf(script, sizeof script, "%s/tests/vault/fake_vault.py", test_source_dir());
    if (cert_dir) {
        snprintf(cert, sizeof cert, "%s/cert.pem", cert_dir);
        snprintf(key, sizeof key, "%s/key.pem", cert_dir);
        snprintf(fv->cert, sizeof fv->cert, "%s", cert);
        fv->tls = true;
    }
    fv->pid = fork();
    if (fv->pid < 0)
        return -1;
    if (fv->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        if (cert_dir)
            execlp("python3", "python3", script, g_port_file, "--tls", cert, key, (char *)NULL);
        else
            execlp("python3", "python3", script, g_port_file, (char *)NULL);
        _exit(127);
    }
    if (!wait_until(port_file_ready, NULL, 10000)) {
        fprintf(stderr, "fakevault_start: no port file after 10s\n");
        fakevault_stop(fv);
        return -1;
    }
    FILE *f = fopen(g_port_file, "r");
    int ok = f && fscanf(f, "%d %d", &fv->port, &fv->control_port) == 2;
    if (f)
        fclose(f);
    if (!ok) {
        fakevault_stop(fv);
        return -1;
    }
    snprintf(fv->address, sizeof fv->address, "%s://127.0.0.1:%d", fv->tls ? "https" : "http",
             fv->port);
    return 0;
}

void fakevault_stop(fakevault *fv)
{
    if (fv->pid > 0) {
        kill(fv->pid, SIGKILL);
        waitpid(fv->pid, NULL, 0);
        fv->pid = 0;
    }
    if (fv->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", fv->dir);
        run_capture(cmd, NULL);
        fv->dir[0] = '\0';
    }
}

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    FILE *f = arg;
    return fwrite(data, size, nmemb, f);
}

/* One request to the control listener; the answer body in *out (caller
 * frees) when out is not NULL. Returns the HTTP status or -1. */
static long control(const fakevault *fv, const char *endpoint, const char *body, char **out)
{
    char url[256], *buf = NULL;
    size_t len = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fv->control_port, endpoint);
    CURL *c = curl_easy_init();
    FILE *mem = open_memstream(&buf, &len);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    fclose(mem);
    if (out)
        *out = buf;
    else
        free(buf);
    return status;
}

int fakevault_ctl(const fakevault *fv, const char *endpoint, const char *json_text)
{
    char *out = NULL;
    long st = control(fv, endpoint, json_text ? json_text : "{}", &out);
    if (st != 200)
        fprintf(stderr, "fakevault_ctl %s: HTTP %ld: %s\n", endpoint, st, out ? out : "");
    free(out);
    return st == 200 ? 0 : -1;
}

json_t *fakevault_stats(const fakevault *fv)
{
    char *out = NULL;
    long st = control(fv, "/stats", NULL, &out);
    json_t *j = st == 200 ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return j;
}

int fakevault_count(const fakevault *fv, const char *method_path)
{
    json_t *s = fakevault_stats(fv);
    if (!s)
        return -1;
    json_t *n = json_object_get(json_object_get(s, "requests"), method_path);
    int count = n ? (int)json_integer_value(n) : 0;
    json_decref(s);
    return count;
}

const char *fakevault_file(const fakevault *fv, const char *name, const char *content)
{
    static char slots[8][400];
    static int next;
    char *path = slots[next++ % 8];
    snprintf(path, sizeof slots[0], "%s/%s", fv->dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (write(fd, content, strlen(content)) < 0)
            perror("fakevault_file");
        close(fd);
    }
    return path;
}
