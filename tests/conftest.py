"""Suite-wide: with POLYROUTE_EXPECT_COMPILED=1 (scripts/test.sh's second pass, in the tree
of scripts/compiled-tree.sh) the run stops at once unless every module setup.py compiles
is imported compiled, so that pass cannot quietly test the pure-Python modules again."""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> list[str]:
    """The module names of setup.py's COMPILED list."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED" for target in node.targets
        ):
            paths = ast.literal_eval(node.value)
            return [path.removesuffix(".py").replace("/", ".") for path in paths]
    raise AssertionError("setup.py has no COMPILED list")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("POLYROUTE_EXPECT_COMPILED") != "1":
        return
    pure = [
        name
        for name in compiled_modules()
        if not str(importlib.import_module(name).__file__).endswith(".so")
    ]
    if pure:
        raise pytest.UsageError(f"POLYROUTE_EXPECT_COMPILED=1 but not compiled: {pure}")
