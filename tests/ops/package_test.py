#!/usr/bin/env python3
"""The Debian package, as an operator gets it: `cpack -G DEB` builds it, lintian finds no error
in it, and in a fresh Debian 12 root (debootstrap --variant=minbase, no systemd) `apt-get
install ./userapi_*.deb` brings its dependencies, its files, its conffile and the userapi user;
the server starts as userapi on the packaged config and answers; `dpkg -r` keeps the config and
the data, `dpkg -P` removes them and the user.

The root comes from the machine's apt sources (their bookworm entries: the mirror is never
written here) and is cached as a tarball in BUILD/ops-package/cache with the dependency
packages of the last run, so only the first run waits for debootstrap. /proc is mounted in the
root while the test runs and unmounted however it ends.

usage: package_test.py --binary build/userapi --build-dir build [--deb FILE]
Skips (77) when debootstrap, lintian, dpkg-shlibdeps or root is missing, unless CI=true.
"""
import argparse
import glob
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

from harness import Failures, call, find_tool, free_port, missing

SUITE = "bookworm"
WANTS = "/etc/systemd/system/multi-user.target.wants/userapi.service"
DEADLINE = time.monotonic() + 840  # under CTest's TIMEOUT (900 s), debootstrap included


def left(limit):
    """Seconds a step may take: its own limit, cut to what remains of the test's."""
    remaining = DEADLINE - time.monotonic()
    if remaining <= 0:
        sys.exit("FAIL: the package test ran out of time")
    return min(limit, remaining)


def run(cmd, limit=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=left(limit), **kw)


def apt_sources():
    """[(uri, suite)] of this machine's enabled `deb` entries for Debian 12 with `main`."""
    entries = []
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in files:
        if not os.path.isfile(path):
            continue
        for line in open(path):
            words = re.sub(r"\[[^]]*\]", " ", line.split("#")[0]).split()
            if len(words) >= 4 and words[0] == "deb" and "main" in words[3:]:
                entries.append((words[1], words[2]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", open(path).read()):
            fields = {}
            for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*(?:\n[ \t].*)*)", stanza, re.M):
                fields[m.group(1).lower()] = m.group(2).split()
            if ("deb" in fields.get("types", []) and "main" in fields.get("components", [])
                    and fields.get("enabled", ["yes"])[0].lower() != "no"):
                entries += [(u, s) for u in fields.get("uris", []) for s in fields.get("suites", [])]
    return [(u.rstrip("/"), s) for u, s in entries if s == SUITE or s.startswith(SUITE + "-") or
            s.startswith(SUITE + "/")]


class Chroot:
    """A Debian root unpacked from the cached tarball, with /proc mounted while it is in use."""

    def __init__(self, path):
        self.path = path
        self.mounted = False

    def mounts(self):
        with open("/proc/mounts") as m:
            points = [line.split()[1].replace("\\040", " ") for line in m]
        return [p for p in points if p == self.path or p.startswith(self.path + "/")]

    def remove(self):
        """Stops what still runs in the root (only this test starts anything there), unmounts,
        deletes. Never crosses into a mount: rm --one-file-system."""
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and os.readlink(f"/proc/{pid}/root").startswith(self.path):
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for point in sorted(self.mounts(), reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True)
        self.mounted = False
        if self.mounts():
            sys.exit(f"FAIL: could not unmount {self.mounts()}; {self.path} left in place")
        if os.path.exists(self.path):
            subprocess.run(["rm", "-rf", "--one-file-system", self.path], timeout=120)

    def mount_proc(self):
        r = run(["mount", "-t", "proc", "proc", os.path.join(self.path, "proc")])
        if r.returncode:
            sys.exit(f"FAIL: mount /proc in the root: {r.stderr.strip()}")
        self.mounted = True

    def sh(self, script, limit=120):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        for k in ("http_proxy", "https_proxy", "no_proxy"):
            if k in os.environ:
                env[k] = os.environ[k]
        return run(["chroot", self.path, "sh", "-c", script], limit, env=env)

    def file(self, path):
        return os.path.join(self.path, path.lstrip("/"))


def make_root_tarball(tarball, sources):
    """debootstrap once, apt lists included, into a tarball written atomically."""
    mirror = next(u for u, s in sources if s == SUITE)
    work = tarball + ".root"
    root = Chroot(work)
    root.remove()
    start = time.monotonic()
    r = run(["debootstrap", "--variant=minbase", SUITE, work, mirror], limit=600)
    if r.returncode:
        root.remove()
        sys.exit(f"FAIL: debootstrap {SUITE} from the apt sources' mirror: {r.stdout[-1500:]} {r.stderr[-1500:]}")
    with open(root.file("/etc/apt/sources.list"), "w") as out:
        for uri, suite in sources:
            out.write(f"deb {uri} {suite} main\n")
    shutil.copy("/etc/resolv.conf", root.file("/etc/resolv.conf"))
    r = root.sh("apt-get update -qq && apt-get clean", limit=300)
    if r.returncode:
        root.remove()
        sys.exit(f"FAIL: apt-get update in the new root: {r.stderr[-1500:]}")
    r = run(["tar", "-C", work, "-cf", tarball + ".part", "."], limit=300)
    root.remove()
    if r.returncode:
        sys.exit(f"FAIL: tar of the root: {r.stderr}")
    os.replace(tarball + ".part", tarball)
    print(f"made {tarball} (debootstrap --variant=minbase {SUITE}, apt-get update) in "
          f"{time.monotonic() - start:.0f} s")


def build_deb(build_dir, out_dir):
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.monotonic()
    r = run(["cpack", "-G", "DEB", "-B", out_dir], limit=600, cwd=build_dir)
    debs = glob.glob(os.path.join(out_dir, "userapi_*.deb"))
    if r.returncode or len(debs) != 1:
        sys.exit(f"FAIL: cpack -G DEB: exit {r.returncode} {r.stdout[-2000:]} {r.stderr[-2000:]}")
    print(f"cpack -G DEB: {debs[0]} in {time.monotonic() - start:.1f} s")
    return debs[0]


def check_lintian(f, deb):
    r = run(["lintian", "--pedantic", "--display-info", "--no-tag-display-limit", deb], limit=300)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", line)]
    for line in tags:
        print("  lintian " + line)
    errors = [line for line in tags if line.startswith("E: ")]
    f.check(r.returncode in (0, 2) and not errors,
            f"lintian: no error ({len(errors)} errors, {len(tags) - len(errors)} other tags; exit {r.returncode})")


def install(f, root, deb, archives):
    """apt-get install ./userapi_*.deb, the dependencies from the cache of the last run or the
    mirror (once more after apt-get update when the cached lists are out of date)."""
    shutil.copy(deb, root.file("/tmp/"))
    name = os.path.basename(deb)
    for p in glob.glob(os.path.join(archives, "*.deb")):
        shutil.copy(p, root.file("/var/cache/apt/archives/"))
    shutil.copy("/etc/resolv.conf", root.file("/etc/resolv.conf"))
    cmd = f"apt-get install -y -q --no-install-recommends ./tmp/{name}"
    start = time.monotonic()
    r = root.sh(f"cd / && {cmd}", limit=300)
    if r.returncode:
        r = root.sh(f"cd / && apt-get update -qq && {cmd}", limit=300)
    f.check(r.returncode == 0, f"apt-get install ./{name} in a fresh {SUITE} root: exit {r.returncode} in "
                               f"{time.monotonic() - start:.1f} s {r.stderr.strip()[-1500:] if r.returncode else ''}")
    shutil.rmtree(archives, ignore_errors=True)  # only what this run used: no old versions pile up
    os.makedirs(archives)
    for p in glob.glob(root.file("/var/cache/apt/archives/*.deb")):
        shutil.copy(p, archives)
    return r.returncode == 0


def passwd_entry(root, name):
    for line in open(root.file("/etc/passwd")):
        fields = line.rstrip("\n").split(":")
        if fields[0] == name:
            return fields
    return None


def has_group(root, name):
    return any(line.split(":")[0] == name for line in open(root.file("/etc/group")))


def check_unit(f, root, unit):
    """systemd-analyze on the packaged unit, its paths pointed into the root (verify needs the
    binary; --man=no: the manual page it names is in the root, not here)."""
    analyze = find_tool("systemd-analyze")
    if not analyze:
        missing("systemd-analyze (Debian package systemd)")
    staged = unit.replace("/usr/bin/userapi", root.file("/usr/bin/userapi"))
    staged = staged.replace("/etc/userapi/userapi.json", root.file("/etc/userapi/userapi.json"))
    path = root.file("/tmp/userapi.service")
    open(path, "w").write(staged)
    r = run([analyze, "verify", "--man=no", path], limit=60)
    out = (r.stdout + r.stderr).strip()
    f.check(r.returncode == 0 and not out, f"systemd-analyze verify on the packaged unit: exit {r.returncode} {out}")
    r = run([analyze, "security", "--offline=yes", path], limit=60)
    m = re.search(r"Overall exposure level for userapi\.service: ([0-9.]+)", r.stdout + r.stderr)
    score = float(m.group(1)) if m else 99.0
    f.check(score <= 2.0, f"systemd-analyze security --offline on the packaged unit: exposure {score} (at most 2.0)")


def check_installed(f, root, version):
    for path in ("/usr/bin/userapi", "/etc/userapi/userapi.json", "/lib/systemd/system/userapi.service",
                 "/usr/share/doc/userapi/copyright", "/usr/share/doc/userapi/changelog.gz",
                 "/usr/share/man/man1/userapi.1.gz", "/usr/share/userapi/nginx/userapi.conf"):
        f.check(os.path.isfile(root.file(path)), f"installs {path}")
    r = root.sh("dpkg-query -W -f='${Conffiles}' userapi")
    f.check("/etc/userapi/userapi.json " in r.stdout, f"/etc/userapi/userapi.json is a conffile: {r.stdout.strip()}")
    r = root.sh("dpkg-query -W -f='${Depends}' userapi")
    f.check(all(p in r.stdout for p in ("libc6", "libpq5", "libsqlite3-0", "adduser")),
            f"Depends from dpkg-shlibdeps (and adduser): {r.stdout.strip()}")
    cfg = json.load(open(root.file("/etc/userapi/userapi.json")))
    f.check(cfg["db"]["path"] == "/var/lib/userapi/userapi.db" and cfg["listen"]["address"] == "127.0.0.1",
            f"the packaged config keeps its data in /var/lib/userapi and listens on loopback: "
            f"db.path {cfg['db']['path']}, listen.address {cfg['listen']['address']}")
    unit = open(root.file("/lib/systemd/system/userapi.service")).read()
    f.check("ExecStart=/usr/bin/userapi --config /etc/userapi/userapi.json " in unit and "/usr/local" not in unit,
            "the unit starts /usr/bin/userapi with /etc/userapi/userapi.json")
    f.check(re.search(r"^User=userapi$", unit, re.M) and not re.search(r"^DynamicUser=", unit, re.M),
            "the unit runs as the userapi user")
    check_unit(f, root, unit)
    pw = passwd_entry(root, "userapi")
    f.check(pw is not None and int(pw[2]) < 1000 and pw[5] == "/var/lib/userapi" and pw[6].endswith("nologin"),
            f"postinst made userapi a system user (uid, home, shell): {pw and (pw[2], pw[5], pw[6])}")
    f.check(has_group(root, "userapi"), "and its group")
    st = os.stat(root.file("/var/lib/userapi"))
    f.check(pw is not None and st.st_uid == int(pw[2]) and st.st_mode & 0o777 == 0o700,
            f"/var/lib/userapi is userapi's, mode 0700: uid {st.st_uid}, mode {oct(st.st_mode & 0o777)}")
    f.check(os.path.islink(root.file(WANTS)), "postinst enabled the unit (deb-systemd-helper; no systemd to start it)")
    r = root.sh("userapi --version")
    f.check(r.stdout.strip() == f"userapi {version}", f"userapi --version: {r.stdout.strip()!r} (project {version})")
    return pw


def check_serves(f, root, pw):
    """The packaged config, run as userapi (setpriv execs: the pid is the server's), on a free
    port (8080 may be taken on this machine)."""
    port = free_port()
    chroot = shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin")
    proc = subprocess.Popen([chroot, root.path, "setpriv", "--reuid=userapi", "--regid=userapi", "--init-groups",
                             "/usr/bin/userapi", "--config", "/etc/userapi/userapi.json", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"})
    try:
        ready, _, _ = select.select([proc.stdout], [], [], left(20))
        line = proc.stdout.readline() if ready else ""
        f.check(line.strip() == f"listening on http://127.0.0.1:{port}",
                f"the packaged server starts: {line.strip()!r}")
        if not line:
            return
        uid = next(int(l.split()[1]) for l in open(f"/proc/{proc.pid}/status") if l.startswith("Uid:"))
        f.check(uid == int(pw[2]), f"it runs as userapi (uid {uid})")
        status, _, _ = call(port, "GET", "/healthz")
        f.check(status == 200, f"GET /healthz: {status}")
        status, _, body = call(port, "GET", "/users/1")
        f.check(status == 200 and json.loads(body).get("id") == 1,
                f"GET /users/1 (a seeded user): {status} {body[:80]}")
        status, _, body = call(port, "POST", "/users", {"Content-Type": "application/json"},
                               json.dumps({"name": "Packaged Person", "email": "packaged@example.com"}))
        f.check(status == 201, f"POST /users stores a user in /var/lib/userapi/userapi.db: {status}")
        db = root.file("/var/lib/userapi/userapi.db")
        f.check(os.path.isfile(db) and os.stat(db).st_uid == int(pw[2]), "the database file is userapi's")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
    f.check(proc.returncode == 0,
            f"SIGTERM drains and exits 0: {proc.returncode} {err.strip()[-500:] if proc.returncode else ''}")


def check_remove_purge(f, root):
    r = root.sh("dpkg -r userapi")
    f.check(r.returncode == 0, f"dpkg -r userapi: exit {r.returncode} {r.stderr.strip()[-500:]}")
    status = root.sh("dpkg-query -W -f='${Status}' userapi").stdout
    f.check(status == "deinstall ok config-files", f"after dpkg -r: {status!r}")
    f.check(not os.path.exists(root.file("/usr/bin/userapi")), "dpkg -r removes the binary")
    f.check(os.path.isfile(root.file("/etc/userapi/userapi.json")), "dpkg -r keeps /etc/userapi/userapi.json")
    f.check(os.path.isfile(root.file("/var/lib/userapi/userapi.db")), "dpkg -r keeps /var/lib/userapi and its data")
    f.check(passwd_entry(root, "userapi") is not None, "dpkg -r keeps the userapi user")
    mask = root.file("/etc/systemd/system/userapi.service")
    f.check(os.path.islink(mask) and os.readlink(mask) == "/dev/null",
            "dpkg -r masks the unit (as debhelper's postrm does): the removed program is never started")
    r = root.sh("dpkg -P userapi")
    f.check(r.returncode == 0, f"dpkg -P userapi: exit {r.returncode} {r.stderr.strip()[-500:]}")
    status = root.sh("dpkg-query -W -f='${Status}' userapi 2>/dev/null").stdout
    f.check(status in ("", "unknown ok not-installed"), f"after dpkg -P: {status!r}")
    f.check(not os.path.exists(root.file("/etc/userapi")), "dpkg -P removes /etc/userapi")
    f.check(not os.path.exists(root.file("/var/lib/userapi")), "dpkg -P removes /var/lib/userapi")
    f.check(passwd_entry(root, "userapi") is None and not has_group(root, "userapi"),
            "dpkg -P removes the userapi user and group")
    f.check(not os.path.lexists(root.file(WANTS)) and not os.path.lexists(mask),
            "dpkg -P removes the unit's enablement and the mask dpkg -r set")


def project_version(build_dir):
    m = re.search(r"^CMAKE_PROJECT_VERSION:\w+=(.*)$", open(os.path.join(build_dir, "CMakeCache.txt")).read(), re.M)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--deb", help="test this package instead of building one")
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    for tool in ("cpack", "dpkg-shlibdeps", "debootstrap", "lintian", "chroot", "mount", "systemd-analyze"):
        if not find_tool(tool, "/usr/sbin", "/sbin"):
            missing(f"{tool} (scripts/deps --test-tools installs debootstrap, lintian and dpkg-dev)")
    if os.geteuid() != 0:
        missing("root (debootstrap, chroot and mount need it)")
    sources = apt_sources()
    if not any(s == SUITE for _, s in sources):
        missing(f"a '{SUITE}' main entry in /etc/apt/sources.list(.d) to take the mirror from")

    # A SIGTERM (Ctrl-C alike) still runs the cleanup below; after a SIGKILL the next run
    # unmounts and removes what was left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))
    f = Failures()
    work = os.path.join(build_dir, "ops-package")
    cache = os.path.join(work, "cache")
    os.makedirs(cache, exist_ok=True)
    deb = os.path.abspath(args.deb) if args.deb else build_deb(build_dir, os.path.join(work, "deb"))
    check_lintian(f, deb)

    tarball = os.path.join(cache, f"{SUITE}-minbase-{run(['dpkg', '--print-architecture']).stdout.strip()}.tar")
    if not os.path.isfile(tarball):
        make_root_tarball(tarball, sources)
    else:
        print(f"the {SUITE} root from {tarball} (delete it to debootstrap again)")
    root = Chroot(os.path.join(work, "root"))
    root.remove()  # what a killed run left
    try:
        os.makedirs(root.path)
        start = time.monotonic()
        r = run(["tar", "-C", root.path, "-xf", tarball], limit=300)
        if r.returncode:
            sys.exit(f"FAIL: unpacking {tarball}: {r.stderr}")
        print(f"unpacked the root in {time.monotonic() - start:.1f} s")
        root.mount_proc()
        if install(f, root, deb, os.path.join(cache, "archives")):
            pw = check_installed(f, root, project_version(build_dir))
            if pw:
                check_serves(f, root, pw)
            check_remove_purge(f, root)
    finally:
        start = time.monotonic()
        root.remove()
        print(f"unmounted and removed the root in {time.monotonic() - start:.1f} s")
    f.check(not root.mounts() and not os.path.exists(root.path), "the root is unmounted and removed")
    f.exit()


if __name__ == "__main__":
    main()
