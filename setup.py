"""Build: the request path's modules compiled to C with mypyc, the rest pure Python.

The metadata lives in pyproject.toml; this file only adds the compiled modules. Compiling
them cuts the gateway's CPU per proxied request by about a tenth (README "Performance").

- ``pip install .`` (a wheel) compiles them when it can. Where it cannot (no C compiler,
  no Python headers) it says so and installs the pure-Python package, which behaves the
  same, only slower.
- ``pip install -e .`` never compiles: a compiled module would shadow its source, and an
  edited ``.py`` file would silently not run.
- ``POLYROUTE_COMPILE=0`` never compiles; ``POLYROUTE_COMPILE=1`` fails the build instead of
  falling back.

mypyc type-checks what it compiles with a build-only configuration that does not need the
runtime dependencies installed (pip builds wheels in an isolated environment): their
types are taken as ``Any`` there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The modules every proxied request runs through (py-spy and callgrind profiles of
# bench/overhead-full.yaml). Not here: modules with pydantic models (mypyc cannot build
# their classes: a strategy's options live in a module of their own for that reason),
# modules with async generators (mypyc does not compile them), and observability's logs
# and metrics (compiled, their subclasses of logging's and prometheus_client's classes
# failed the test suite; the access log is a module of its own for that reason).
#
# A compiled class that plug-ins or other modules subclass (Filter, Strategy,
# MemoryBreakers) carries `@mypyc_attr(allow_interpreted_subclasses=True)`
# (mypy_extensions, a runtime dependency); its built-in subclasses stay native calls.
# Compiled methods cannot be replaced per instance: give a hook attribute instead
# (Router.wrap_decide, Executor.wrap_attempt).
#
# In a compiled coroutine, no `await` inside a `finally` (tests/test_compiled_rules.py
# checks): with mypyc 2.4.1, when a task's awaited future fails, the exception is thrown
# down the chain of compiled coroutines; a callee that catches it and returns normally
# leaves it behind, and an await in the caller's `finally` raises it again (seen as
# aiohttp's ClientPayloadError escaping api/proxy.py's stream after `_Chunks.__anext__`
# had translated it, tests/keys/test_canary.py; reproduced outside the project in a
# small module, where the same code with `except BaseException: ...; raise` and the
# clean-up after the `try` works). Write the clean-up that way instead (or keep the
# exception, clean up after the `try`, then raise it, as api/proxy.py's `_stream` does).
COMPILED = [
    "polyroute/api/auth.py",
    "polyroute/api/body.py",
    "polyroute/api/incoming.py",
    "polyroute/api/proxy.py",
    "polyroute/api/responses.py",
    "polyroute/api/validation.py",
    "polyroute/clock.py",
    "polyroute/context.py",
    "polyroute/dashboard/traffic.py",
    "polyroute/events.py",
    "polyroute/execution/candidates.py",
    "polyroute/execution/executor.py",
    "polyroute/execution/results.py",
    "polyroute/execution/retry.py",
    "polyroute/experiments.py",
    "polyroute/formatting.py",
    "polyroute/limits/checks.py",
    "polyroute/limits/gcra.py",
    "polyroute/limits/headers.py",
    "polyroute/limits/memory.py",
    "polyroute/limits/service.py",
    "polyroute/observability/access_log.py",
    "polyroute/observability/series.py",
    "polyroute/observability/writer.py",
    "polyroute/outcomes.py",
    "polyroute/providers/alarms.py",
    "polyroute/providers/openai_compat.py",
    "polyroute/providers/request.py",
    "polyroute/records/rows.py",
    "polyroute/records/writer.py",
    "polyroute/routing/decision.py",
    "polyroute/routing/filters.py",
    "polyroute/routing/policy.py",
    "polyroute/routing/router.py",
    "polyroute/routing/rules/conditions.py",
    "polyroute/routing/rules/fields.py",
    "polyroute/routing/strategies/base.py",
    "polyroute/routing/strategies/rules.py",
    "polyroute/state/local_stats.py",
    "polyroute/state/memory.py",
    "polyroute/state/window.py",
    "polyroute/usage.py",
]

_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
ignore_missing_imports = True
follow_imports = silent
"""


class OptionalBuildExt(build_ext):
    """build_ext that, unless compiling was required, installs the pure-Python package
    when the C build fails (all or nothing: a module's shim without its shared library
    would not import)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # CompileError, LinkError, a missing compiler...
            if os.environ.get("POLYROUTE_COMPILE") == "1":
                raise
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            self.extensions = []
            _warn(f"compiling failed ({error}); installing the pure-Python package")


def _warn(message: str) -> None:
    print(f"polyroute setup: {message}", file=sys.stderr)


def _editable() -> bool:
    return any(arg in ("editable_wheel", "develop") for arg in sys.argv)


def _extensions() -> list[Any]:
    wanted = os.environ.get("POLYROUTE_COMPILE", "")
    if wanted == "0" or _editable() or "sdist" in sys.argv:
        return []
    try:
        from mypyc.build import mypycify

        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as config:
            config.write(_MYPY_CONFIG)
        try:
            return list(mypycify(["--config-file", config.name, *COMPILED], opt_level="3"))
        finally:
            os.unlink(config.name)
    except (Exception, SystemExit) as error:  # mypy missing, or a type error mypyc refuses
        if wanted == "1":
            raise
        _warn(f"not compiling ({error!r}); installing the pure-Python package")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
