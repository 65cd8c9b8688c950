#!/usr/bin/env bash
# A copy of the working tree in which the request path's modules are the compiled ones of
# a wheel built the way `pip install .` builds it (setup.py: mypyc, isolated build), so
# that the test suite can run against the compiled build too:
#
#   bash scripts/compiled-tree.sh DEST
#   (cd DEST && PYTHONPATH=$PWD POLYROUTE_EXPECT_COMPILED=1 REPO/.venv/bin/pytest)
#
# The copy holds the tracked and untracked (not ignored) files, and each compiled module's
# shared library beside its source, where Python imports it first. Needs .venv (pip).
set -euo pipefail
DEST="$(realpath -m "${1:?usage: scripts/compiled-tree.sh DEST}")"  # before the cd below
cd "$(dirname "$0")/.."
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
rm -rf "$DEST"
mkdir -p "$DEST"
git ls-files -z --cached --others --exclude-standard |
  .venv/bin/python -c '
import os, shutil, sys
dest = sys.argv[1]
for path in sys.stdin.buffer.read().decode().split("\0"):
    if path and os.path.isfile(path):  # a tracked file deleted here is not copied
        os.makedirs(os.path.join(dest, os.path.dirname(path)), exist_ok=True)
        shutil.copy2(path, os.path.join(dest, path))
' "$DEST"
# built from the copy: a fresh tree has no build/ directory whose leftovers (the modules
# an earlier build compiled) setuptools would pack into the wheel
POLYROUTE_COMPILE=1 .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELS" "$DEST"
rm -rf "$DEST/build"
.venv/bin/python - "$WHEELS" "$DEST" <<'PY'
import glob, sys, zipfile
wheels, dest = sys.argv[1:]
(wheel,) = glob.glob(f"{wheels}/*.whl")
with zipfile.ZipFile(wheel) as archive:
    libraries = [name for name in archive.namelist() if name.endswith(".so")]
    if not libraries:
        sys.exit(f"{wheel} holds no compiled module")
    archive.extractall(dest, libraries)
print(f"compiled tree: {dest} ({len(libraries)} shared libraries)")
PY
