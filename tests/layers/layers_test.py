#!/usr/bin/env python3
"""The build's room check (cmake/check_layers.cmake) refuses every forbidden include and passes
the allowed ones: each case is a one-file tree handed to the check, which must fail or pass."""
import argparse
import pathlib
import subprocess
import sys
import tempfile

# (file in the tree, what it includes, whether the check must refuse it)
CASES = [
    ("src/core/x.cpp", "userapi/service/user.hpp", True),
    ("include/userapi/core/x.hpp", "userapi/http/handler.hpp", True),
    ("src/core/x.cpp", "boost/asio/io_context.hpp", True),
    ("src/core/x.cpp", "spdlog/spdlog.h", True),
    ("src/service/x.cpp", "userapi/store/sqlite_user_repository.hpp", True),
    ("src/service/x.cpp", "userapi/limit/local_rate_limiter.hpp", True),
    ("include/userapi/service/x.hpp", "userapi/http/handler.hpp", True),
    ("src/store/x.cpp", "userapi/http/handler.hpp", True),
    ("src/store/x.cpp", "userapi/app/server.hpp", True),
    ("src/limit/x.cpp", "userapi/http/metrics.hpp", True),
    ("include/userapi/limit/x.hpp", "userapi/app/server.hpp", True),
    ("src/limit/x.cpp", "userapi/store/postgres_watch.hpp", True),
    ("src/http/x.cpp", "userapi/app/server.hpp", True),
    ("src/auth/x.cpp", "userapi/http/handler.hpp", True),
    # allowed: the same rooms looking down
    ("src/core/x.cpp", "userapi/core/clock.hpp", False),
    ("src/service/x.cpp", "userapi/core/lru_ttl_cache.hpp", False),
    ("src/store/x.cpp", "userapi/service/user_repository.hpp", False),
    ("src/limit/x.cpp", "userapi/core/token_bucket.hpp", False),
    ("src/http/x.cpp", "userapi/limit/redis_rate_limiter.hpp", False),
    ("src/app/x.cpp", "userapi/store/postgres_watch.hpp", False),
]


def check(cmake: str, script: pathlib.Path, path: str, include: str, spacing: str) -> bool:
    with tempfile.TemporaryDirectory() as root:
        f = pathlib.Path(root, path)
        f.parent.mkdir(parents=True)
        f.write_text(f"// a file of its room\n{spacing}<{include}>\nint x;\n")
        stamp = pathlib.Path(root, "stamp")
        r = subprocess.run([cmake, f"-DROOT={root}", f"-DSTAMP={stamp}", "-P", str(script)],
                           capture_output=True, text=True, timeout=60)
        refused = r.returncode != 0
        if refused and "layering broken" not in r.stderr:
            raise SystemExit(f"check failed for another reason: {r.stderr}")
        if refused == stamp.exists():
            raise SystemExit("the stamp must exist exactly when the check passes")
        return refused


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--script", required=True)
    a = ap.parse_args()
    bad = 0
    for path, include, forbidden in CASES:
        # `# include` with blanks is the same directive to the compiler: it must not slip past.
        for spacing in ("#include ", "#  include\t"):
            refused = check(a.cmake, pathlib.Path(a.script), path, include, spacing)
            ok = refused == forbidden
            print(f"{'ok  ' if ok else 'FAIL'} {path} includes {include} ({spacing.strip()!r}): "
                  f"{'refused' if refused else 'passed'}")
            bad += not ok
    print(f"{len(CASES) * 2 - bad} of {len(CASES) * 2} cases as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
