#!/usr/bin/env python3
"""The deploy files: `cmake --install` layout, the systemd unit (systemd-analyze verify and
security), and the Dockerfile (its runtime packages cover every library the binary links; its
build stage copies everything CMake needs). `docker build` runs too where a daemon answers.

usage: deploy_test.py --binary build/userapi --build-dir build
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import ROOT, Failures, Userapi, call, find_tool, missing

BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}  # in debian:12-slim already


def cache_value(build_dir, key):
    text = open(os.path.join(build_dir, "CMakeCache.txt")).read()
    m = re.search(rf"^{key}:[A-Z]+=(.*)$", text, re.M)
    return m.group(1) if m else None


def check_install(f, build_dir, stage):
    env = dict(os.environ, DESTDIR=stage)
    r = subprocess.run(["cmake", "--install", build_dir], env=env, capture_output=True, text=True, timeout=120)
    f.check(r.returncode == 0, f"cmake --install with DESTDIR: exit {r.returncode} {r.stderr.strip()}")
    prefix = cache_value(build_dir, "CMAKE_INSTALL_PREFIX")
    etc = "/etc" if prefix == "/usr" else prefix + "/etc"
    paths = {
        "binary": f"{prefix}/bin/userapi",
        "config": f"{etc}/userapi/userapi.json",
        "unit": f"{prefix}/lib/systemd/system/userapi.service",
        "nginx": f"{prefix}/share/userapi/nginx/userapi.conf",
    }
    for what, p in paths.items():
        f.check(os.path.isfile(stage + p), f"installs the {what} at {p}")
    f.check(os.access(stage + paths["binary"], os.X_OK), "the installed binary is executable")
    f.check(open(stage + paths["config"]).read() == open(os.path.join(ROOT, "config", "userapi.json")).read(),
            "the installed config is config/userapi.json")
    unit = open(stage + paths["unit"]).read()
    f.check(f"ExecStart={paths['binary']} --config {paths['config']} " in unit,
            f"the installed unit starts {paths['binary']} with {paths['config']}")
    # The installed binary starts on the installed config.
    api = Userapi(stage + paths["binary"], "--config", stage + paths["config"], "--log-level", "warn")
    f.check(api.stop() == 0, "the installed binary serves on the installed config and drains on SIGTERM")
    return paths, unit


def check_unit(f, stage, paths, unit):
    analyze = find_tool("systemd-analyze")
    if not analyze:
        missing("systemd-analyze (Debian package systemd)")
    for key in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=userapi"):
        f.check(re.search(rf"^{re.escape(key)}$", unit, re.M) is not None, f"the unit sets {key}")
    f.check(re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M) is not None,
            "ExecReload sends SIGHUP (it rereads the API keys and a JWK Set file)")
    # verify needs the ExecStart binary to exist: point the unit at the staged tree.
    staged = unit.replace(paths["binary"], stage + paths["binary"]).replace(paths["config"], stage + paths["config"])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "userapi.service")
        open(path, "w").write(staged)
        r = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        f.check(r.returncode == 0 and not out, f"systemd-analyze verify: exit {r.returncode} {out}")
        r = subprocess.run([analyze, "security", "--offline=yes", path], capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for userapi\.service: ([0-9.]+)", r.stdout + r.stderr)
        score = float(m.group(1)) if m else 99.0
        f.check(score <= 2.0, f"systemd-analyze security --offline: exposure {score} (at most 2.0)")


def package_of(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    return None


def stages(dockerfile):
    """[(FROM line, [instructions])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def installed_packages(instructions):
    pkgs = set()
    for ins in instructions:
        for m in re.finditer(r"apt-get install ([^&]*)", ins):
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def with_dependencies(pkgs):
    """`pkgs` and everything apt installs with them (their Depends and Pre-Depends, as this
    machine's dpkg database records them)."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p], capture_output=True, text=True)
        for alternative in r.stdout.split(","):
            name = alternative.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    return seen


def check_staging(f, build, runtime, build_dir):
    """The runtime stage copies files the build stage's `cmake --install` (prefix /usr) puts
    there, and the unit made for that prefix names them."""
    text = open(os.path.join(build_dir, "cmake_install.cmake")).read()
    installed = {m.group(1).replace("${CMAKE_INSTALL_PREFIX}", "/usr") + "/" + os.path.basename(m.group(2))
                 for m in re.finditer(r'file\(INSTALL DESTINATION "([^"]+)" TYPE \w+ FILES "([^"]+)"\)', text)}
    destdir = next((m.group(1) for i in build[1] for m in [re.search(r"DESTDIR=(\S+)", i)] if m), None)
    f.check(destdir is not None, f"the build stage installs with DESTDIR ({destdir})")
    for ins in runtime[1]:
        m = re.match(r"COPY --from=build\s+(\S+)\s+(\S+)$", ins)
        if m and destdir:
            src, dst = m.group(1), m.group(2)
            inside = src[len(destdir):] if src.startswith(destdir + "/") else None
            f.check(inside in installed and dst == inside,
                    f"COPY --from=build {src}: installed at {inside} (prefix /usr installs {sorted(installed)})")
    unit = open(os.path.join(build_dir, "userapi.service")).read()
    f.check("ExecStart=/usr/bin/userapi --config /etc/userapi/userapi.json " in unit and
            "/usr/bin/userapi" in installed and "/etc/userapi/userapi.json" in installed,
            "with the prefix /usr: /usr/bin/userapi, /etc/userapi/userapi.json, and the unit names both")


def check_dockerfile(f, binary, sanitized):
    dockerfile = os.path.join(ROOT, "Dockerfile")
    st = stages(dockerfile)
    f.check(len(st) >= 2, f"the Dockerfile has {len(st)} stages (multi-stage)")
    build, runtime = st[0], st[-1]
    f.check("slim" in runtime[0], f"the runtime stage is a slim image: {runtime[0]}")
    f.check(any(i.startswith("USER ") and "root" not in i for i in runtime[1]), "the runtime stage runs as a non-root user")
    f.check(any(i.startswith("COPY --from=") for i in runtime[1]), "the runtime stage copies the binary from the build")

    # Every library the binary links comes from a package the runtime stage installs (a
    # sanitizer build links its runtime too, so only a plain build is compared).
    runtime_pkgs = with_dependencies(installed_packages(runtime[1]) | BASE_PACKAGES)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = [m.group(1) for m in re.finditer(r"=> (/\S+)", ldd)]
    needed = {package_of(lib) for lib in libs}
    if sanitized:
        print("note: a sanitizer build; the linked-library check runs on plain builds")
        needed = set()
    f.check(None not in needed and needed <= runtime_pkgs,
            f"runtime packages cover the linked libraries: missing {sorted(map(str, needed - runtime_pkgs))}")
    f.check(not (installed_packages(runtime[1]) & {"g++", "cmake", "libboost1.81-dev"}),
            "no compiler or -dev package in the runtime stage")

    # The build stage's COPYs bring everything CMake needs: configure a copy made only of them.
    build_pkgs = installed_packages(build[1])
    for p in ("g++", "cmake", "ninja-build", "libboost1.81-dev", "nlohmann-json3-dev", "libspdlog-dev", "libsqlite3-dev"):
        f.check(p in build_pkgs, f"the build stage installs {p}")
    with tempfile.TemporaryDirectory() as ctx:
        for ins in build[1]:
            m = re.match(r"COPY\s+(?!--)(.+)\s+(\S+)$", ins)
            if not m:
                continue
            for src in m.group(1).split():
                s = os.path.join(ROOT, src)
                d = os.path.join(ctx, src)
                if os.path.isdir(s):
                    shutil.copytree(s, d)
                else:
                    shutil.copy(s, d)
        r = subprocess.run(["cmake", "-S", ctx, "-B", os.path.join(ctx, "b"), "-DUSERAPI_BUILD_TESTS=OFF",
                            "-DCMAKE_INSTALL_PREFIX=/usr"], capture_output=True, text=True, timeout=300)
        f.check(r.returncode == 0, "CMake configures from the files the build stage copies" +
                ("" if r.returncode == 0 else ":\n" + r.stderr[-2000:]))
        if r.returncode == 0:
            check_staging(f, build, runtime, os.path.join(ctx, "b"))

    docker = find_tool("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0:
        r = subprocess.run([docker, "build", "-t", "userapi:test", ROOT], capture_output=True, text=True, timeout=3000)
        f.check(r.returncode == 0, "docker build" + ("" if r.returncode == 0 else ":\n" + r.stderr[-2000:]))
    else:
        print("note: no Docker daemon answers here; docker build not run")


def check_compose(f):
    """deploy/compose.yaml edits the nginx deploy file with sed: the lines it edits must exist,
    and every instance must run the image's binary against PostgreSQL and Redis."""
    compose = open(os.path.join(ROOT, "deploy", "compose.yaml")).read()
    conf = open(os.path.join(ROOT, "deploy", "nginx", "userapi.conf")).read()
    f.check("server 127.0.0.1:8080;" in conf and "proxy_bind" in conf and "s|server 127.0.0.1:8080;|" in compose,
            "compose.yaml's sed finds the upstream and proxy_bind lines of deploy/nginx/userapi.conf")
    f.check(all(f"userapi{i}:" in compose and f"server userapi{i}:8080;" in compose for i in (1, 2, 3)),
            "compose.yaml runs three instances and nginx names all three")
    f.check("--data=postgresql://" in compose and "--rate-limit-store=redis://" in compose,
            "compose.yaml's instances share PostgreSQL and Redis")
    # They listen on 0.0.0.0: protected mode refuses them unless they have credentials.
    f.check("--address=0.0.0.0" in compose and re.search(r"--(api-keys|jwt-jwks)=", compose) is not None,
            "compose.yaml's instances listen beyond loopback and are given credentials")


def check_protected_mode(f, binary):
    """The image's entrypoint and arguments start (with a key file at the path they name), and
    refuse to without one; on its own the installed config needs none (it listens on loopback)."""
    st = stages(os.path.join(ROOT, "Dockerfile"))
    runtime = st[-1][1]
    entry = next((json.loads(i[len("ENTRYPOINT"):]) for i in runtime if i.startswith("ENTRYPOINT")), [])
    cmd = next((json.loads(i[len("CMD"):]) for i in runtime if i.startswith("CMD")), [])
    f.check("0.0.0.0" in entry and cmd[:1] == ["--api-keys"],
            f"the image listens on every interface and names an API key file by default: {entry} {cmd}")
    with tempfile.TemporaryDirectory() as d:
        keys = subprocess.run([binary, "new-api-key", "deploy-test", "users:read"], capture_output=True, text=True,
                              timeout=30).stdout.splitlines()
        key_file = os.path.join(d, "api-keys.json")
        open(key_file, "w").write('{"keys": [%s]}' % keys[1])
        # The image's own arguments, its files mapped into this folder, on a loopback port
        # (the harness gives --port and --data itself).
        args = []
        it = iter(entry[1:] + cmd)
        for a in it:
            if a == "--data":
                next(it)
                continue
            args.append(a.replace("/etc/userapi/userapi.json", os.path.join(ROOT, "config", "userapi.json"))
                        .replace("/etc/userapi/api-keys.json", key_file))
        args = [a if a != "0.0.0.0" else "127.0.0.1" for a in args]
        api = Userapi(binary, *args, "--log-level", "warn")
        status, _, _ = call(api.port, "GET", "/users/1")
        status_key, _, _ = call(api.port, "GET", "/users/1", headers={"Authorization": "Bearer " + keys[0]})
        f.check(api.stop() == 0 and status == 401 and status_key == 200,
                f"with the image's arguments: 401 without the key ({status}), 200 with it ({status_key})")
        bare = [a for a in args if a not in ("--api-keys", key_file)]
        bare = [a if a != "127.0.0.1" else "0.0.0.0" for a in bare]
        r = subprocess.run([binary, *bare, "--port", "0", "--data", ":memory:"], capture_output=True, text=True,
                           timeout=30)
        f.check(r.returncode == 2 and "--anonymous-scopes" in r.stderr,
                f"without credentials on 0.0.0.0 it refuses to start: exit {r.returncode} {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    f = Failures()
    with tempfile.TemporaryDirectory() as stage:
        paths, unit = check_install(f, args.build_dir, stage)
        check_unit(f, stage, paths, unit)
    check_dockerfile(f, args.binary, bool(cache_value(args.build_dir, "USERAPI_SANITIZE")))
    check_compose(f)
    check_protected_mode(f, args.binary)
    f.exit()


if __name__ == "__main__":
    main()
