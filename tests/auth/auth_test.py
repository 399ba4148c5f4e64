#!/usr/bin/env python3
"""Credentials over real sockets (contract section 9): every answer of 9.4, every rule of 9.5,
SIGHUP reloads, a JWK Set URL served by a local HTTP server (rotation, a failed refresh, the
refresh's rate), identities' buckets in Redis, and an audit log that names identities and never
a secret. Tokens are minted with Debian's python3-jwt and python3-cryptography.

usage: auth_test.py --binary build/userapi [-k PATTERN]
Every server listens on 127.0.0.1 and is stopped by the test that started it; every wait is
bounded. Exit 77 (CTest's skip) when the token libraries are missing, a failure under CI.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "engines"))
import engines  # noqa: E402

try:
    import jwt
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")  # a python3 of its own does not see Debian's
try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:
    if os.environ.get("CI"):
        sys.exit("FAIL: python3-jwt and python3-cryptography are missing in CI (scripts/deps --test-tools): %s" % e)
    print("SKIP: python3-jwt and python3-cryptography are needed (%s)" % e)
    sys.exit(77)

BINARY = None
ISSUER, AUDIENCE = "https://issuer.test", "userapi"
CHALLENGE = 'Bearer realm="userapi"'


# -- keys and tokens ---------------------------------------------------------------------------
def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    def __init__(self, kind, kid, alg):
        self.kind, self.kid, self.alg = kind, kid, alg
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "EC":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()

    def jwk(self):
        pub = self.private.public_key()
        j = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if self.kind == "RSA":
            n = pub.public_numbers()
            j.update(kty="RSA", n=b64u(n.n.to_bytes(256, "big")), e=b64u(n.e.to_bytes(3, "big")))
        elif self.kind == "EC":
            n = pub.public_numbers()
            j.update(kty="EC", crv="P-256", x=b64u(n.x.to_bytes(32, "big")), y=b64u(n.y.to_bytes(32, "big")))
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            j.update(kty="OKP", crv="Ed25519", x=b64u(raw))
        return j

    def pem(self):
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims, alg=None, kid="", headers=None):
        h = dict(headers or {})
        if kid is not None:
            h["kid"] = self.kid if kid == "" else kid
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=h)


def jwks(*keys):
    return json.dumps({"keys": [k.jwk() for k in keys]})


def claims(sub="alice", scope="users:read", lifetime=600, **over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + lifetime}
    if scope is not None:
        c["scope"] = scope
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def new_key():
    return secrets.token_urlsafe(32)


def key_entry(key_id, key, scopes, rate_limit=None):
    e = {"id": key_id, "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": scopes}
    if rate_limit:
        e["rate_limit"] = rate_limit
    return e


# -- the server and HTTP -----------------------------------------------------------------------
class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def request(port, method, path, token=None, headers=None, body=None):
    h = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    if token is not None:
        h.append(("Authorization", "Bearer " + token))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h:
            conn.putheader(k, v)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


class Server:
    """userapi on 127.0.0.1 with its standard error in a file (the log)."""

    def __init__(self, args, folder):
        self.log_path = os.path.join(folder, "server-%s.log" % secrets.token_hex(4))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BINARY, "--port", "0", "--data", ":memory:", "--db-latency-ms", "5",
                                      "--seed-users", "20", *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("userapi did not start: %r\n%s" % (line, self.text()))
        self.port = int(m.group(1))

    def get(self, path, token=None, **kw):
        return request(self.port, "GET", path, token, **kw)

    def metric(self, name, labels=""):
        body = request(self.port, "GET", "/metrics").body.decode()
        m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), body, re.M)
        return float(m.group(1)) if m else None

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text()):
                return True
            time.sleep(0.05)
        return False

    def hangup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


class JwksServer:
    """A JWK Set at http://127.0.0.1:PORT/jwks.json: its answer settable, its requests counted."""

    def __init__(self, body):
        self.status, self.body, self.requests = 200, body, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                data = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/jwks.json" % self.httpd.server_address[1]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def challenge_params(value):
    scheme, _, rest = value.partition(" ")
    return scheme, dict(_PARAM.findall(rest))


class AuthCase(unittest.TestCase):
    """A temporary folder and the servers a test starts, all stopped at its end."""

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="userapi-auth-test-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def write(self, name, text):
        path = os.path.join(self.folder, name)
        with open(path + ".tmp", "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        os.replace(path + ".tmp", path)  # whole, never half-written, when the server reads it
        return path

    def start(self, *args):
        s = Server(list(args), self.folder)
        self.servers.append(s)
        return s

    def keys_file(self, *entries):
        return self.write("keys.json", {"keys": list(entries)})

    def assertRefused(self, r, status, error=None, scope=None, secret=None, words=None):
        """RFC 6750: `status`, problem+json, exactly one Bearer challenge with realm="userapi"."""
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.header("Content-Type"), "application/problem+json")
        self.assertEqual(r.json()["status"], status)
        challenges = r.all("WWW-Authenticate")
        self.assertEqual(len(challenges), 1, challenges)
        if error is None:
            self.assertEqual(challenges[0], CHALLENGE)
        else:
            scheme, params = challenge_params(challenges[0])
            self.assertEqual(scheme, "Bearer")
            self.assertEqual(params.get("realm"), "userapi")
            self.assertEqual(params.get("error"), error, challenges[0])
            self.assertTrue(params.get("error_description"), challenges[0])
            if scope:
                self.assertEqual(params.get("scope"), scope, challenges[0])
            if words:
                self.assertRegex(params["error_description"], words)
        if secret:
            for k, v in r.headers:
                self.assertNotIn(secret, v, "%s echoes the credential" % k)
            self.assertNotIn(secret.encode(), r.body)


def raw_exchange(port, data, read_for=2.0):
    """Sends `data` on a fresh connection; returns every byte the server sent within `read_for`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(read_for)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            pass
        return out


# -- 9.4 answers -------------------------------------------------------------------------------
class Answers(AuthCase):
    def setUp(self):
        super().setUp()
        self.reader, self.writer = new_key(), new_key()
        self.rsa, self.ec = Key("RSA", "rsa-1", "RS256"), Key("EC", "ec-1", "ES256")
        keys = self.keys_file(key_entry("reader", self.reader, ["users:read"]),
                              key_entry("writer", self.writer, ["users:read", "users:write"]))
        self.s = self.start("--no-rate-limit", "--api-keys", keys, "--jwt-jwks", self.write("jwks.json", jwks(self.rsa, self.ec)),
                            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-leeway-s", "5")

    def test_no_credentials_is_401_with_the_plain_challenge(self):
        before = self.s.metric("userapi_auth_failures_total", '{reason="missing"}')
        for method, path in (("GET", "/users/1"), ("HEAD", "/users/1"), ("GET", "/users"), ("DELETE", "/users/2"),
                             ("GET", "/cache-status"), ("DELETE", "/cache")):
            r = request(self.s.port, method, path)
            self.assertEqual(r.status, 401, (method, path))
            self.assertEqual(r.all("WWW-Authenticate"), [CHALLENGE], (method, path))
        self.assertRefused(self.s.get("/users/1"), 401)
        self.assertEqual(self.s.metric("userapi_auth_failures_total", '{reason="missing"}'), before + 7)

    def test_each_invalid_token_says_which_rule_failed_and_never_echoes_it(self):
        now = int(time.time())
        # RFC 8725 2.1: the RSA public key (its PEM) as an HMAC secret; PyJWT itself refuses to make it.
        hs_input = b64u(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode()) + "." + b64u(json.dumps(claims()).encode())
        hs = hs_input + "." + b64u(hmac.new(self.rsa.pem(), hs_input.encode(), hashlib.sha256).digest())
        header = b64u(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())
        body = b64u(json.dumps(claims()).encode())
        good = self.rsa.sign(claims())
        bad_sig = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        cases = [
            (new_key(), r"API key"),
            ("not.a.jwt", r"JWT"),
            (self.rsa.sign(claims(iat=now - 600, exp=now - 60)), r"expired"),
            (self.rsa.sign(claims(nbf=now + 120)), r"not valid yet"),
            (self.rsa.sign(claims(iat=now + 120)), r"future"),
            (self.rsa.sign(claims(iss="https://evil.test")), r"issuer"),
            (self.rsa.sign(claims(aud="another")), r"audience"),
            (self.rsa.sign(claims(sub=None)), r"sub"),
            (bad_sig, r"signature"),
            (header + "." + body + ".", r"JWT"),
            (self.rsa.sign(claims(), kid="rsa-9"), r"kid"),
            (self.ec.sign(claims(), kid="rsa-1"), r"alg"),
        ]
        cases.append((hs, r"alg"))
        for token, words in cases:
            with self.subTest(words=words):
                self.assertRefused(self.s.get("/users/1", token), 401, "invalid_token", secret=token, words=words)

    def test_malformed_credentials_are_400_invalid_request(self):
        basic = "Basic " + base64.b64encode(b"reader:" + self.reader.encode()).decode()
        for headers in ([("Authorization", basic)], [("Authorization", "Bearer " + self.reader)] * 2,
                        [("Authorization", "Bearer")], [("Authorization", "Bearer a b")]):
            with self.subTest(headers=headers):
                self.assertRefused(self.s.get("/users/1", headers=headers), 400, "invalid_request",
                                   secret=self.reader)
        self.assertEqual(self.s.metric("userapi_auth_failures_total", '{reason="invalid_request"}'), 4)

    def test_a_missing_scope_is_403_naming_it_and_writes_nothing(self):
        writes = self.s.metric("userapi_db_writes_total")
        r = request(self.s.port, "POST", "/users", self.reader, {"Content-Type": "application/json"},
                    '{"name":"N","email":"n@example.org"}')
        self.assertRefused(r, 403, "insufficient_scope", scope="users:write", secret=self.reader)
        r = request(self.s.port, "PATCH", "/users/2", self.reader, {"Content-Type": "application/merge-patch+json"},
                    '{"name":"X"}')
        self.assertRefused(r, 403, "insufficient_scope", scope="users:write")
        self.assertRefused(request(self.s.port, "DELETE", "/users/2", self.reader), 403, "insufficient_scope",
                           scope="users:write")
        self.assertRefused(request(self.s.port, "DELETE", "/cache", self.writer), 403, "insufficient_scope",
                           scope="admin")
        self.assertRefused(self.s.get("/cache-status", self.writer), 403, "insufficient_scope", scope="admin")
        self.assertRefused(self.s.get("/users/1", self.rsa.sign(claims(scope="admin"))), 403, "insufficient_scope",
                           scope="users:read")
        self.assertEqual(self.s.metric("userapi_db_writes_total"), writes)
        self.assertEqual(self.s.metric("userapi_auth_failures_total", '{reason="insufficient_scope"}'), 6)

    def test_credentials_come_before_the_body_and_the_store(self):
        reads, writes = self.s.metric("userapi_db_reads_total"), self.s.metric("userapi_db_writes_total")
        # A body that is not even JSON: 401, not 400; the store is never asked.
        r = request(self.s.port, "POST", "/users", None, {"Content-Type": "application/json"}, "{not json")
        self.assertRefused(r, 401)
        self.assertEqual(r.header("Connection"), "close", "its body was never read: the connection closes")
        r = request(self.s.port, "POST", "/users", new_key(), {"Content-Type": "application/json"}, "{not json")
        self.assertRefused(r, 401, "invalid_token")
        self.assertRefused(self.s.get("/users/17"), 401)  # not cached: would be a read
        self.assertEqual(self.s.metric("userapi_db_reads_total"), reads)
        self.assertEqual(self.s.metric("userapi_db_writes_total"), writes)
        # Expect: 100-continue with no credentials: no 100 Continue, the 401 at once.
        out = raw_exchange(self.s.port, b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        b"Content-Length: 40\r\nExpect: 100-continue\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 401"), out[:200])
        self.assertNotIn(b"100 Continue", out)
        # With a writer's key the same POST goes through.
        r = request(self.s.port, "POST", "/users", self.writer, {"Content-Type": "application/json"},
                    '{"name":"W","email":"w-%s@example.org"}' % secrets.token_hex(3))
        self.assertEqual(r.status, 201, r.body)

    def test_a_cached_user_still_needs_credentials(self):
        self.assertEqual(self.s.get("/users/1", self.reader).status, 200)
        r = self.s.get("/users/1", self.reader)
        self.assertEqual((r.status, r.header("X-Cache")), (200, "HIT"))
        self.assertRefused(self.s.get("/users/1"), 401)
        self.assertRefused(self.s.get("/users/1", new_key()), 401, "invalid_token")
        self.assertRefused(self.s.get("/users/1", self.rsa.sign(claims(scope="admin"))), 403, "insufficient_scope")

    def test_404_and_405_come_before_credentials(self):
        for token in (None, new_key()):
            self.assertEqual(self.s.get("/nowhere", token).status, 404)
            r = request(self.s.port, "PUT", "/users/1", token, body="")
            self.assertEqual(r.status, 405)
            self.assertFalse(r.all("WWW-Authenticate"))
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(self.s.get(path).status, 200, path)
            self.assertEqual(self.s.get(path, new_key()).status, 200, path)

    def test_every_algorithm_and_both_scope_claims(self):
        ed = Key("OKP", "ed-1", "EdDSA")
        ps = Key("RSA", "ps-1", "PS256")
        s = self.start("--no-rate-limit", "--jwt-jwks", self.write("jwks-all.json", jwks(self.rsa, self.ec, ed, ps)),
                       "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE)
        for key in (self.rsa, self.ec, ed, ps):
            self.assertEqual(s.get("/users/3", key.sign(claims())).status, 200, key.alg)
        r = request(s.port, "POST", "/users", ed.sign(claims(scope=None, scp=["users:write"])),
                    {"Content-Type": "application/json"}, '{"name":"S","email":"scp-%s@example.org"}' % secrets.token_hex(3))
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(s.get("/users/3", self.rsa.sign(claims(aud=["x", AUDIENCE]))).status, 200)


# -- 9.5 identities and their limits -----------------------------------------------------------------
class Identities(AuthCase):
    LIMITS = ("--rate-limit-capacity", "3", "--rate-limit-refill-per-minute", "1")

    def test_a_keys_own_rate_limit_and_the_identity_policy(self):
        small, plain = new_key(), new_key()
        s = self.start(*self.LIMITS, "--api-keys", self.keys_file(
            key_entry("small", small, ["users:read"], {"capacity": 2, "refill_per_minute": 1}),
            key_entry("plain", plain, ["users:read"])))
        for _ in range(2):
            r = s.get("/users/1", small)
            self.assertEqual(r.status, 200)
            self.assertRegex(r.header("RateLimit-Policy"), r'^"identity";q=2;w=120$')
            self.assertRegex(r.header("RateLimit"), r'^"identity";r=\d+;t=\d+$')
        r = s.get("/users/1", small)
        self.assertEqual(r.status, 429)
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        # No rate_limit of its own: 10 x the per-client capacity.
        self.assertRegex(s.get("/users/1", plain).header("RateLimit-Policy"), r'^"identity";q=30;')
        for _ in range(10):
            self.assertEqual(s.get("/users/1", plain).status, 200)
        # The address's own bucket was never charged by them.
        self.assertRegex(s.get("/users/1", plain).header("RateLimit-Policy"), r'^"identity"')

    def test_identity_options_override_the_default(self):
        key = new_key()
        s = self.start(*self.LIMITS, "--rate-limit-identity-capacity", "4", "--rate-limit-identity-refill-per-minute",
                       "2", "--api-keys", self.keys_file(key_entry("k", key, ["users:read"])))
        statuses = [s.get("/users/1", key).status for _ in range(5)]
        self.assertEqual(statuses, [200] * 4 + [429])
        self.assertRegex(s.get("/users/1", key).header("RateLimit-Policy"), r'^"identity";q=4;w=120$')

    def test_each_jwt_subject_is_its_own_identity(self):
        k = Key("EC", "ec-1", "ES256")
        s = self.start(*self.LIMITS, "--rate-limit-identity-capacity", "2", "--jwt-jwks", self.write("jwks.json", jwks(k)),
                       "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE)
        alice, bob = k.sign(claims(sub="alice")), k.sign(claims(sub="bob"))
        alice2 = k.sign(claims(sub="alice", lifetime=900))  # another token, the same identity
        self.assertEqual([s.get("/users/1", alice).status, s.get("/users/1", alice2).status,
                          s.get("/users/1", alice).status], [200, 200, 429])
        self.assertEqual([s.get("/users/1", bob).status, s.get("/users/1", bob).status], [200, 200])

    def test_refused_credentials_are_charged_to_the_address(self):
        good = new_key()
        s = self.start(*self.LIMITS, "--api-keys", self.keys_file(key_entry("good", good, ["users:read"])))
        self.assertEqual(s.get("/users/1", new_key()).status, 401)
        self.assertEqual(s.get("/users/1", headers=[("Authorization", "Basic eA==")]).status, 400)
        r = s.get("/users/1")
        self.assertEqual(r.status, 401)
        self.assertRegex(r.header("RateLimit-Policy"), r'^"default";q=3;')
        self.assertEqual(s.get("/users/1", new_key()).status, 429, "guessing keys is rate limited")
        self.assertEqual(s.get("/users/1").status, 429)
        self.assertEqual(s.get("/users/1", good).status, 200, "an identity is not charged to the address")

    def test_insufficient_scope_is_charged_to_the_identity(self):
        reader = new_key()
        s = self.start(*self.LIMITS, "--api-keys", self.keys_file(
            key_entry("reader", reader, ["users:read"], {"capacity": 1, "refill_per_minute": 1})))
        r = request(s.port, "DELETE", "/users/1", reader)
        self.assertEqual(r.status, 403)
        self.assertRegex(r.header("RateLimit-Policy"), r'^"identity";q=1;')
        self.assertEqual(s.get("/users/1", reader).status, 429)
        self.assertEqual(s.get("/users/1").status, 401, "the address still has its tokens")

    def test_an_idempotency_key_belongs_to_its_identity(self):
        one, two = new_key(), new_key()
        s = self.start("--no-rate-limit", "--api-keys", self.keys_file(
            key_entry("one", one, ["users:read", "users:write"]), key_entry("two", two, ["users:read", "users:write"])))

        def post(token, email):
            return request(s.port, "POST", "/users", token, [("Content-Type", "application/json"),
                                                             ("Idempotency-Key", "same-key")],
                           '{"name":"I","email":"%s"}' % email)

        first = post(one, "idem-1@example.org")
        self.assertEqual(first.status, 201, first.body)
        again = post(one, "idem-1@example.org")
        self.assertEqual((again.status, again.header("Idempotent-Replayed")), (201, "true"))
        self.assertEqual(again.json()["id"], first.json()["id"])
        # The same key from another identity is its own: a write of its own, not a replay (nor a 422).
        other = post(two, "idem-2@example.org")
        self.assertEqual(other.status, 201, other.body)
        self.assertIsNone(other.header("Idempotent-Replayed"))
        self.assertNotEqual(other.json()["id"], first.json()["id"])

    def test_identity_buckets_live_in_redis_too(self):
        if not engines.Redis.available():
            if os.environ.get("CI"):
                self.fail("redis-server is missing in CI (scripts/deps --test-tools)")
            self.skipTest("redis-server is missing")
        redis = engines.Redis(os.path.join(self.folder, "redis")).start()
        try:
            key = new_key()
            keys = self.keys_file(key_entry("shared", key, ["users:read"], {"capacity": 3, "refill_per_minute": 1}))
            a = self.start(*self.LIMITS, "--rate-limit-store", redis.uri(), "--api-keys", keys)
            b = self.start(*self.LIMITS, "--rate-limit-store", redis.uri(), "--api-keys", keys)
            self.assertTrue(wait_until(lambda: a.get("/readyz").status == 200 and b.get("/readyz").status == 200))
            statuses = [(a if i % 2 == 0 else b).get("/users/1", key).status for i in range(5)]
            self.assertEqual(statuses, [200, 200, 200, 429, 429], "one bucket for the identity across instances")
            r = b.get("/users/1", key)
            self.assertRegex(r.header("RateLimit-Policy"), r'^"identity";q=3;')
            self.assertEqual(a.metric("userapi_rate_limit_store_errors_total"), 0)
        finally:
            for s in list(self.servers):
                s.stop()
            self.servers = []
            redis.stop()


# -- 9.3 reloads and JWK Set URLs -----------------------------------------------------------------
class Reloads(AuthCase):
    def test_sighup_rereads_the_key_file_and_a_bad_one_keeps_the_old_set(self):
        old, new = new_key(), new_key()
        path = self.keys_file(key_entry("old", old, ["users:read"]))
        s = self.start("--no-rate-limit", "--api-keys", path)
        self.assertEqual(s.get("/users/1", old).status, 200)
        self.assertEqual(s.get("/users/1", new).status, 401)
        self.keys_file(key_entry("new", new, ["users:read"]))
        s.hangup()
        self.assertTrue(wait_until(lambda: s.get("/users/1", new).status == 200), s.text()[-2000:])
        self.assertEqual(s.get("/users/1", old).status, 401, "a removed key is refused, however recently verified")
        self.write("keys.json", '{"keys": [')
        s.hangup()
        self.assertTrue(s.wait_log(r"API keys not reloaded; the old ones stay"), s.text()[-2000:])
        self.assertIn("keys.json", s.text())
        self.assertEqual(s.get("/users/1", new).status, 200)
        self.assertEqual(s.proc.poll(), None, "SIGHUP never ends the process")

    def test_sighup_rereads_a_jwks_file(self):
        k1, k2 = Key("EC", "k1", "ES256"), Key("OKP", "k2", "EdDSA")
        path = self.write("jwks.json", jwks(k1))
        s = self.start("--no-rate-limit", "--jwt-jwks", path, "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE)
        t1, t2 = k1.sign(claims()), k2.sign(claims())
        self.assertEqual(s.get("/users/1", t1).status, 200)
        self.assertEqual(s.get("/users/1", t2).status, 401)
        self.write("jwks.json", jwks(k2))
        s.hangup()
        self.assertTrue(wait_until(lambda: s.get("/users/1", t2).status == 200), s.text()[-2000:])
        self.assertEqual(s.get("/users/1", t1).status, 401, "its key left the set: the memo forgot it")
        self.write("jwks.json", '{"keys": "no"}')
        s.hangup()
        self.assertTrue(s.wait_log(r"JWK Set not reloaded; the old keys stay"), s.text()[-2000:])
        self.assertEqual(s.get("/users/1", t2).status, 200)
        self.assertEqual(s.metric("userapi_auth_jwks_refreshes_total", '{result="error"}'), 1)

    def test_a_jwks_url_rotation_refresh_rate_and_failed_refresh(self):
        k1, k2, k3 = Key("EC", "k1", "ES256"), Key("EC", "k2", "ES256"), Key("EC", "k3", "ES256")
        served = JwksServer(jwks(k1))
        try:
            s = self.start("--no-rate-limit", "--jwt-jwks", served.url, "--jwt-issuer", ISSUER,
                           "--jwt-audience", AUDIENCE)
            self.assertEqual(served.requests, 1, "fetched at start")
            self.assertEqual(s.get("/users/1", k1.sign(claims())).status, 200)
            # Rotation: the issuer publishes k2 and signs with it; the unknown kid fetches again.
            served.body = jwks(k1, k2)
            self.assertEqual(s.get("/users/1", k2.sign(claims())).status, 200)
            self.assertEqual(served.requests, 2)
            self.assertEqual(s.metric("userapi_auth_jwks_refreshes_total", '{result="ok"}'), 1)
            # Another new kid within 30 s: no fetch, refused.
            served.body = jwks(k1, k2, k3)
            r = s.get("/users/1", k3.sign(claims()))
            self.assertEqual(r.status, 401)
            self.assertRegex(r.header("WWW-Authenticate"), r"kid")
            self.assertEqual(served.requests, 2, "at most one fetch per 30 s for unknown kids")
        finally:
            served.stop()
        # The URL fails now: the server keeps the keys it has.
        self.assertEqual(s.get("/users/1", k2.sign(claims(sub="bob"))).status, 200)

    def test_a_failed_periodic_refresh_keeps_the_keys_and_is_counted(self):
        k1 = Key("RSA", "k1", "RS256")
        served = JwksServer(jwks(k1))
        try:
            s = self.start("--no-rate-limit", "--jwt-jwks", served.url, "--jwt-issuer", ISSUER,
                           "--jwt-audience", AUDIENCE, "--jwt-jwks-refresh-s", "1")
            self.assertTrue(wait_until(lambda: s.metric("userapi_auth_jwks_refreshes_total", '{result="ok"}') >= 1))
            served.status, served.body = 503, "down"
            self.assertTrue(wait_until(lambda: s.metric("userapi_auth_jwks_refreshes_total", '{result="error"}') >= 1))
            self.assertEqual(s.get("/users/1", k1.sign(claims())).status, 200, "the old keys stay")
            self.assertTrue(s.wait_log(r"JWK Set refresh failed; the old keys stay.*HTTP status 503"))
        finally:
            served.stop()

    def test_an_unusable_file_at_start_exits_2_with_one_line_naming_it(self):
        bad = self.write("bad.json", '{"keys": [')
        cases = [["--api-keys", bad], ["--api-keys", os.path.join(self.folder, "missing.json")],
                 ["--jwt-jwks", bad, "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE],
                 ["--api-keys", self.keys_file(key_entry("a", new_key(), ["users:read"])), "--jwt-jwks",
                  self.write("private.json", {"keys": [dict(Key("EC", "k", "ES256").jwk(), d="AAAA")]}),
                  "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE]]
        for args in cases:
            r = subprocess.run([BINARY, "--port", "0", "--data", ":memory:", *args], capture_output=True, text=True,
                               timeout=30)
            lines = (r.stdout + r.stderr).strip().splitlines()
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(lines), 1, lines)
            named = [a for a in args if a.endswith(".json")][-1]
            self.assertIn(os.path.basename(named), lines[0])

    def test_an_unusable_jwks_url_at_start_exits_2(self):
        served = JwksServer("{}")
        url = served.url
        try:
            r = subprocess.run([BINARY, "--port", "0", "--data", ":memory:", "--jwt-jwks", url, "--jwt-issuer", ISSUER,
                                "--jwt-audience", AUDIENCE], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--jwt-jwks", r.stderr)
            self.assertNotIn("listening on", r.stdout)
        finally:
            served.stop()
        r = subprocess.run([BINARY, "--port", "0", "--data", ":memory:", "--jwt-jwks", url, "--jwt-issuer", ISSUER,
                            "--jwt-audience", AUDIENCE], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, "nobody answers at that URL now")
        self.assertIn("fetch failed", r.stderr)


# -- 9.6 audit and secrets ---------------------------------------------------------------------
class Audit(AuthCase):
    def test_identities_in_every_line_and_no_secret_anywhere(self):
        key, wrong = new_key(), new_key()
        k = Key("EC", "ec-1", "ES256")
        token = k.sign(claims(scope="users:read users:write"))
        bad_token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        s = self.start("--no-rate-limit", "--log-level", "info", "--anonymous-scopes", "users:read",
                       "--api-keys", self.keys_file(key_entry("billing", key, ["users:read", "users:write"])),
                       "--jwt-jwks", self.write("jwks.json", jwks(k)), "--jwt-issuer", ISSUER,
                       "--jwt-audience", AUDIENCE, "--admin-token", "adm1n-s3cret")
        self.assertEqual(s.get("/users/1", key).status, 200)
        self.assertEqual(s.get("/users/1", key).status, 200)  # the cached hit's own line
        self.assertEqual(s.get("/users/2", token).status, 200)
        self.assertEqual(s.get("/users/3").status, 200)
        self.assertEqual(s.get("/users/1", wrong).status, 401)
        self.assertEqual(s.get("/users/1", bad_token).status, 401)
        self.assertEqual(request(s.port, "DELETE", "/cache", "adm1n-s3cret").status, 200)
        c = request(s.port, "POST", "/users", token, {"Content-Type": "application/json"},
                    '{"name":"Audit","email":"audit-%s@example.org"}' % secrets.token_hex(3))
        self.assertEqual(c.status, 201, c.body)
        uid = c.json()["id"]
        p = request(s.port, "PATCH", "/users/%d" % uid, key, {"Content-Type": "application/merge-patch+json"},
                    '{"name":"Audit Two"}')
        self.assertEqual(p.status, 200, p.body)
        self.assertEqual(request(s.port, "DELETE", "/users/%d" % uid, key).status, 204)
        metrics = request(s.port, "GET", "/metrics").body.decode()
        s.stop()
        log = s.text()
        access = [l for l in log.splitlines() if " access " in l]
        self.assertTrue(access and all("identity=" in l for l in access), "\n".join(access))
        self.assertEqual(len([l for l in access if "identity=key:billing" in l]), 4, "\n".join(access))
        self.assertRegex(log, r'identity="?jwt:https://issuer.test:alice\b')
        self.assertIn("identity=anonymous", log)
        self.assertIn("identity=admin-token", log)
        self.assertRegex(log, r'write .*identity="?jwt:https://issuer.test:alice"? action=create user_id=%d version=1'
                         % uid)
        self.assertRegex(log, r"write .*identity=key:billing action=update user_id=%d version=2" % uid)
        self.assertRegex(log, r"write .*identity=key:billing action=delete user_id=%d" % uid)
        for secret in (key, wrong, token, bad_token, "adm1n-s3cret", token.split(".")[2]):
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, metrics)
        self.assertNotIn("Authorization", log)


def main():
    global BINARY
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", action="append", default=[])
    args = ap.parse_args()
    BINARY = os.path.abspath(args.binary)
    argv = [sys.argv[0], "-v"] + sum((["-k", k] for k in args.k), [])
    unittest.main(module=__name__, argv=argv)


if __name__ == "__main__":
    main()
