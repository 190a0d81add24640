#!/usr/bin/env python3
"""fake_vault.py - a Vault-compatible server for pgreviewer's tests.

Vault is not packaged for Debian, so the tests talk to this instead. It
implements exactly the endpoints core/vault.c calls, with Vault's documented
response shapes and error bodies ({"errors": [...]}):

  GET  /v1/<mount>/data/<path>        KV v2 read -> {"data": {"data": {...}, "metadata": {...}}, ...}
  POST /v1/auth/<mount>/login         AppRole login -> {"auth": {"client_token", "lease_duration", "renewable", ...}}
  GET  /v1/auth/token/lookup-self     -> {"data": {"id", "ttl", "renewable", "policies", ...}}
  POST /v1/auth/token/renew-self      -> {"auth": {...}}
  403 {"errors": ["permission denied"]} for a missing/unknown/expired token or a path outside its policy,
  404 {"errors": []} for a missing secret, 503 {"errors": ["Vault is sealed"]} when sealed.
  Tokens and secrets live in namespaces chosen by the X-Vault-Namespace header.

A second, plain-HTTP listener is the control API the tests drive (JSON in, JSON out):

  POST /secret        {"namespace", "mount", "path", "data"}       create or update (new version)
  POST /delete_secret {"namespace", "mount", "path"}
  POST /token         {"token", "ttl", "renewable", "paths", "namespace"}   ttl 0: never expires
  POST /approle       {"mount", "role_id", "secret_id", "ttl", "renewable", "paths", "namespace"}
  POST /revoke_all    {}                                            every token stops working
  POST /seal, /unseal {}
  POST /delay         {"ms"}                                        delay every /v1 answer
  POST /fail          {"prefix", "status", "errors", "count", "raw"}  the next `count` requests whose
                      path starts with prefix get that status and {"errors": errors}, or the raw body
  GET  /stats         {"requests": {"GET /v1/...": n}, "total": n, "namespaces": [...],
                       "connections": n, "tls_errors": n}
  POST /reset_stats   {}
  POST /reset         {}                                            forget everything (between tests)

`paths` are fnmatch patterns on "<mount>/data/<path>" the token may read ("*" by default).

Usage: fake_vault.py PORT_FILE [--tls CERT KEY]
Writes "API_PORT CONTROL_PORT\n" to PORT_FILE (atomically) once both listen on 127.0.0.1.
Python 3 standard library only.
"""
import fnmatch
import json
import os
import secrets
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}      # (ns, mount, path) -> {"data":..., "version": n, "created": str}
        self.tokens = {}       # token -> {"ns", "expires" (0: never), "ttl", "renewable", "paths"}
        self.approles = {}     # (ns, mount) -> {"role_id", "secret_id", "ttl", "renewable", "paths"}
        self.sealed = False
        self.delay_ms = 0
        self.faults = []       # {"prefix", "status", "errors", "count", "raw"}
        self.requests = {}
        self.total = 0
        self.namespaces = []   # X-Vault-Namespace header of every /v1 request ("" when absent)
        self.connections = 0   # TCP connections accepted by the API listener
        self.tls_errors = 0    # connections that ended in a TLS error (e.g. a bad record MAC)


STATE = State()


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def token_entry(ns, ttl, renewable, paths):
    return {"ns": ns, "ttl": int(ttl), "renewable": bool(renewable),
            "expires": time.monotonic() + ttl if ttl else 0,
            "paths": list(paths or ["*"]), "accessor": uuid.uuid4().hex[:24]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer (headers and body buffered together, flushed by
    # handle_one_request) and no Nagle: otherwise delayed ACKs add ~40 ms
    # to every keep-alive request.
    wbufsize = 65536
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def send(self, status, obj=None, raw=None):
        data = raw.encode() if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def errors(self, status, *msgs):
        self.send(status, {"errors": list(msgs)})


class VaultHandler(Handler):
    def handle(self):
        with STATE.lock:
            STATE.connections += 1
        try:
            super().handle()
        except ssl.SSLError:
            with STATE.lock:
                STATE.tls_errors += 1

    def do_GET(self):
        self.handle_v1("GET")

    def do_POST(self):
        self.handle_v1("POST")

    def handle_v1(self, method):
        body = self.body_json() if method == "POST" else {}
        path = self.path.split("?", 1)[0]
        ns = (self.headers.get("X-Vault-Namespace") or "").strip("/")
        st = STATE
        with st.lock:
            key = "%s %s" % (method, path)
            st.requests[key] = st.requests.get(key, 0) + 1
            st.total += 1
            st.namespaces.append(ns)
            delay = st.delay_ms
            fault = None
            for f in st.faults:
                if f["count"] > 0 and path.startswith(f["prefix"]):
                    f["count"] -= 1
                    fault = dict(f)
                    break
            sealed = st.sealed
        if delay:
            time.sleep(delay / 1000.0)
        if fault:
            if fault.get("raw") is not None:
                return self.send(fault["status"], raw=fault["raw"])
            return self.errors(fault["status"], *fault.get("errors", []))
        if sealed:
            return self.errors(503, "Vault is sealed")
        if not path.startswith("/v1/"):
            return self.errors(404, "no handler for route")
        rest = path[4:]
        if body is None:
            return self.errors(400, "failed to parse JSON input")
        if method == "POST" and rest.startswith("auth/") and rest.endswith("/login"):
            return self.approle_login(ns, rest[5:-6], body)
        token = self.token(ns)
        if token is None:
            return self.errors(403, "permission denied")
        if method == "GET" and rest == "auth/token/lookup-self":
            return self.lookup_self(token)
        if method == "POST" and rest == "auth/token/renew-self":
            return self.renew_self(token)
        parts = rest.split("/", 2)
        if method == "GET" and len(parts) == 3 and parts[1] == "data":
            return self.kv_read(ns, token, parts[0], parts[2])
        return self.errors(405 if method == "POST" else 404, "unsupported path")

    def token(self, ns):
        """The token's id when it is known, live and of this namespace, else None."""
        tok = self.headers.get("X-Vault-Token")
        with STATE.lock:
            t = STATE.tokens.get(tok)
            if not t or t["ns"] != ns:
                return None
            if t["expires"] and time.monotonic() >= t["expires"]:
                return None
        return tok

    def approle_login(self, ns, mount, body):
        with STATE.lock:
            role = STATE.approles.get((ns, mount))
            if role is None:
                return self.errors(400, "no handler for route 'auth/%s/login'. route entry not found." % mount)
            if body.get("role_id") != role["role_id"] or body.get("secret_id") != role["secret_id"]:
                return self.errors(400, "invalid role or secret ID")
            tok = "hvs." + secrets.token_urlsafe(24)
            STATE.tokens[tok] = token_entry(ns, role["ttl"], role["renewable"], role["paths"])
            t = STATE.tokens[tok]
        self.send(200, {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                        "lease_duration": 0, "data": None, "wrap_info": None, "warnings": None,
                        "auth": {"client_token": tok, "accessor": t["accessor"],
                                 "policies": ["default", "pgreviewer"],
                                 "token_policies": ["default", "pgreviewer"],
                                 "metadata": {"role_name": "pgreviewer"},
                                 "lease_duration": t["ttl"], "renewable": t["renewable"],
                                 "entity_id": "", "token_type": "service", "orphan": True}})

    def lookup_self(self, tok):
        with STATE.lock:
            t = STATE.tokens[tok]
            left = int(max(0, t["expires"] - time.monotonic())) if t["expires"] else 0
            data = {"accessor": t["accessor"], "id": tok, "ttl": left, "creation_ttl": t["ttl"],
                    "renewable": t["renewable"], "policies": ["default", "pgreviewer"],
                    "path": "auth/token/create", "type": "service", "num_uses": 0,
                    "explicit_max_ttl": 0, "expire_time": None, "meta": None}
        self.send(200, {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                        "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None,
                        "auth": None})

    def renew_self(self, tok):
        with STATE.lock:
            t = STATE.tokens[tok]
            if not t["renewable"]:
                return self.errors(400, "lease is not renewable")
            if t["ttl"]:
                t["expires"] = time.monotonic() + t["ttl"]
            auth = {"client_token": tok, "accessor": t["accessor"], "policies": ["default"],
                    "token_policies": ["default"], "metadata": None,
                    "lease_duration": t["ttl"], "renewable": True}
        self.send(200, {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                        "lease_duration": 0, "data": None, "wrap_info": None, "warnings": None,
                        "auth": auth})

    def kv_read(self, ns, tok, mount, path):
        full = "%s/data/%s" % (mount, path)
        with STATE.lock:
            if not any(fnmatch.fnmatchcase(full, p) for p in STATE.tokens[tok]["paths"]):
                return self.errors(403, "1 error occurred:\n\t* permission denied\n\n")
            s = STATE.secrets.get((ns, mount, path))
            if s is None:
                return self.errors(404)
            out = {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                   "lease_duration": 0,
                   "data": {"data": s["data"],
                            "metadata": {"created_time": s["created"], "custom_metadata": None,
                                         "deletion_time": "", "destroyed": False,
                                         "version": s["version"]}},
                   "wrap_info": None, "warnings": None, "auth": None}
        self.send(200, out)


class ControlHandler(Handler):
    def do_GET(self):
        if self.path == "/stats":
            with STATE.lock:
                return self.send(200, {"requests": dict(STATE.requests), "total": STATE.total,
                                       "namespaces": list(STATE.namespaces),
                                       "connections": STATE.connections,
                                       "tls_errors": STATE.tls_errors})
        self.errors(404, "unknown control endpoint")

    def do_POST(self):
        b = self.body_json()
        if b is None:
            return self.errors(400, "bad JSON")
        fn = getattr(self, "c_" + self.path.strip("/"), None)
        if fn is None:
            return self.errors(404, "unknown control endpoint")
        with STATE.lock:
            fn(b)
        self.send(200, {"ok": True})

    def c_secret(self, b):
        k = (b.get("namespace", ""), b.get("mount", "secret"), b["path"])
        old = STATE.secrets.get(k)
        STATE.secrets[k] = {"data": b["data"], "version": (old["version"] + 1) if old else 1,
                            "created": now_iso()}

    def c_delete_secret(self, b):
        STATE.secrets.pop((b.get("namespace", ""), b.get("mount", "secret"), b["path"]), None)

    def c_token(self, b):
        STATE.tokens[b["token"]] = token_entry(b.get("namespace", ""), b.get("ttl", 0),
                                               b.get("renewable", True), b.get("paths"))

    def c_approle(self, b):
        STATE.approles[(b.get("namespace", ""), b.get("mount", "approle"))] = {
            "role_id": b["role_id"], "secret_id": b["secret_id"], "ttl": b.get("ttl", 3600),
            "renewable": b.get("renewable", True), "paths": b.get("paths")}

    def c_revoke_all(self, b):
        STATE.tokens.clear()

    def c_seal(self, b):
        STATE.sealed = True

    def c_unseal(self, b):
        STATE.sealed = False

    def c_delay(self, b):
        STATE.delay_ms = int(b.get("ms", 0))

    def c_fail(self, b):
        STATE.faults.append({"prefix": b.get("prefix", "/v1/"), "status": int(b.get("status", 500)),
                             "errors": b.get("errors", []), "count": int(b.get("count", 1)),
                             "raw": b.get("raw")})

    def c_reset(self, b):
        """Forget everything: a fresh server for the next test."""
        fresh = State()
        for k, v in vars(fresh).items():
            if k != "lock":
                setattr(STATE, k, v)

    def c_reset_stats(self, b):
        STATE.requests.clear()
        STATE.total = 0
        STATE.namespaces.clear()
        STATE.connections = 0
        STATE.tls_errors = 0


def main():
    if len(sys.argv) not in (2, 5) or (len(sys.argv) == 5 and sys.argv[2] != "--tls"):
        sys.stderr.write("usage: fake_vault.py PORT_FILE [--tls CERT KEY]\n")
        return 2
    api = ThreadingHTTPServer(("127.0.0.1", 0), VaultHandler)
    api.daemon_threads = True
    if len(sys.argv) == 5:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        api.socket = ctx.wrap_socket(api.socket, server_side=True)
    control = ThreadingHTTPServer(("127.0.0.1", 0), ControlHandler)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (api.server_address[1], control.server_address[1]))
    os.rename(tmp, sys.argv[1])
    api.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
