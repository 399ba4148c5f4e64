"""Scenario auth: scenario 1 (one hot user, wrk -t1 -c50, the limiter off) with credentials.
One server holds an API key file and a JWK Set and lets requests without credentials read
(--anonymous-scopes users:read), so its cached hit is asked for anonymously, with the API key and
with an ES256 JWT, alternated A B C A B C in the same run (bench/bearer.lua sends the bearer).
The contract's bar: an authenticated cached hit costs at most 1.15 x an anonymous one, CPU per
request, ratio of the medians. Tokens are minted with Debian's python3-jwt.
"""
import base64
import json
import os
import subprocess
import sys
import time

import run

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "auth: 1 hot user"
ISSUER = "https://issuer.bench"


def credentials(build, workdir):
    """An API key file with one reader, a JWK Set with one ES256 key; the key and a token."""
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-jwt for a python3 of its own
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    key, entry = subprocess.run([os.path.join(build, "userapi"), "new-api-key", "bench", "users:read"],
                                capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()[:2]
    with open(os.path.join(workdir, "api-keys.json"), "w") as f:
        f.write('{"keys": [%s]}' % entry)
    private = ec.generate_private_key(ec.SECP256R1())
    nums = private.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
    with open(os.path.join(workdir, "jwks.json"), "w") as f:
        json.dump({"keys": [{"kty": "EC", "crv": "P-256", "kid": "bench", "alg": "ES256", "use": "sig",
                             "x": b64(nums.x), "y": b64(nums.y)}]}, f)
    token = jwt.encode({"iss": ISSUER, "aud": "userapi", "sub": "bench", "scope": "users:read",
                        "exp": int(time.time()) + 86400}, private, algorithm="ES256", headers={"kid": "bench"})
    args = ["--api-keys", os.path.join(workdir, "api-keys.json"), "--jwt-jwks", os.path.join(workdir, "jwks.json"),
            "--jwt-issuer", ISSUER, "--jwt-audience", "userapi", "--anonymous-scopes", "users:read"]
    return args, key, token


def run_all(args, workdir, rec):
    creds, key, token = credentials(args.build, workdir)
    base = ["--no-rate-limit", "--seed-users", "10", "--db-latency-ms", "0"]
    script = os.path.join(HERE, "bearer.lua")
    clients = (("anonymous", None), ("API key", key), ("ES256 JWT", token))
    rows, notes = [], []
    for t in (1, 2):
        runs = {name: [] for name, _ in clients}
        api = run.Userapi(args.build, base + creds + ["--threads", str(t)], workdir)
        try:
            run.http_get(api.port, "/users/1")  # the user cached
            for k in range(args.pairs):
                for name, bearer in clients:
                    r = run.wrk(api, "/users/1", args.duration, script=script if bearer else None,
                                script_args=(bearer,) if bearer else ())
                    if r["non2xx"] or r["socket_errors"]:
                        raise RuntimeError("%s, %s: %d answers were not 200" % (NAME, name, r["non2xx"]))
                    runs[name].append(r)
                    rec.wrk(NAME + ", " + name, "userapi", t, k + 1, r)
        finally:
            api.stop()
        for name, rs in runs.items():
            rows.append(run.row(NAME + ", " + name, "userapi", t, rs))
        anon = run.med(runs["anonymous"], "cpu_us")
        notes.append("%s, %d thread(s): CPU per request, authenticated / anonymous (ratio of the medians of %d "
                     "runs, at most 1.15 wanted): API key %.2f, ES256 JWT %.2f"
                     % (NAME, t, args.pairs, run.med(runs["API key"], "cpu_us") / anon,
                        run.med(runs["ES256 JWT"], "cpu_us") / anon))
    return rows, notes
