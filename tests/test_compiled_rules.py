"""House rules for the modules setup.py compiles with mypyc, checked on their source so
that the pure-Python pass catches a break before the compiled pass would (or would not)."""

from __future__ import annotations

import ast

from tests.conftest import ROOT, compiled_modules


def _awaits_in_finally(tree: ast.AST) -> list[int]:
    """Line numbers of `finally` clauses that await (await, async with, async for)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try | ast.TryStar) and node.finalbody:
            awaiting = (ast.Await, ast.AsyncWith, ast.AsyncFor)
            if any(isinstance(n, awaiting) for part in node.finalbody for n in ast.walk(part)):
                lines.append(node.finalbody[0].lineno)
    return lines


def test_no_await_in_finally_of_compiled_modules() -> None:
    """setup.py: compiled, an await in a `finally` can raise an exception again that a
    callee had already caught (mypyc 2.4.1)."""
    found = {
        name: lines
        for name in compiled_modules()
        if (
            lines := _awaits_in_finally(
                ast.parse((ROOT / f"{name.replace('.', '/')}.py").read_text())
            )
        )
    }
    assert found == {}


def test_the_check_finds_an_await_in_finally() -> None:
    source = "async def f(x):\n    try:\n        pass\n    finally:\n        await x\n"
    assert _awaits_in_finally(ast.parse(source)) == [5]
    clean = (
        "async def f(x):\n    try:\n        pass\n"
        "    except BaseException:\n        await x\n        raise\n"
    )
    assert _awaits_in_finally(ast.parse(clean)) == []


def _pydantic_models(module_name: str) -> list[str]:
    """The pydantic model classes that the module defines itself."""
    import importlib
    import inspect

    from pydantic import BaseModel

    module = importlib.import_module(module_name)
    return [
        f"{module_name}.{value.__qualname__}"
        for value in vars(module).values()
        if inspect.isclass(value)
        and value.__module__ == module_name
        and issubclass(value, BaseModel)
    ]


def test_no_pydantic_models_in_compiled_modules() -> None:
    """setup.py: mypyc cannot build a pydantic model's class (its C does not compile), so
    options and specs live in modules of their own (e.g. routing/rules/options.py)."""
    assert [model for name in compiled_modules() for model in _pydantic_models(name)] == []


def test_the_check_finds_pydantic_models() -> None:
    found = _pydantic_models("polyroute.routing.rules.options")
    assert "polyroute.routing.rules.options.RuleSpec" in found
