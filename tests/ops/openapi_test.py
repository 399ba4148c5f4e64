#!/usr/bin/env python3
"""Runs tests/openapi/check.mjs: lints docs/openapi.yaml and checks the live server against it.

usage: openapi_test.py --binary build/userapi
"""
import argparse
import os
import subprocess
import sys

from harness import ROOT, find_tool, missing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir")
    args = ap.parse_args()
    node = find_tool("node") or find_tool("nodejs")
    if not node:
        missing("node (Debian package nodejs)")
    here = os.path.join(ROOT, "tests", "openapi")
    if not os.path.isdir(os.path.join(here, "node_modules")):
        missing("tests/openapi/node_modules (scripts/deps runs npm ci there)")
    r = subprocess.run([node, os.path.join(here, "check.mjs"), "--binary", args.binary], timeout=240)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
