"""Compile a rule's `when:` into a predicate, once, at load.

Grammar (YAML):
    when: {caller.tier: vip}                           # equality shorthand
    when: {tokens: {gte: 8000}}                        # operators: eq ne in not_in gt gte lt
                                                       #   lte between regex exists contains
    when: {all: [..], any: [..], not: {..}}            # combinators, nest freely
Several keys in one mapping must all hold. An equality on a field at the top level of a
rule (directly or inside a top-level `all`) is reported by `index_keys` so the rule set
can be indexed by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator
from datetime import tzinfo
from typing import Any

from polyroute.context import RequestContext
from polyroute.routing.rules.fields import compile_field

Predicate = Callable[[RequestContext], bool]
OPERATORS = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "regex", "exists", "contains"
)  # fmt: skip


class ConditionError(ValueError):
    """A condition that cannot be compiled; `path` locates it inside `when`."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def compile_condition(
    spec: Any, zone: tzinfo | None, path: tuple[str | int, ...] = ()
) -> Predicate:
    """The predicate for a `when:` mapping."""
    if not isinstance(spec, dict) or not spec:
        raise ConditionError(path, "a condition is a non-empty mapping")
    parts = [_compile_entry(key, value, zone, (*path, key)) for key, value in spec.items()]
    if len(parts) == 1:
        return parts[0]
    return lambda ctx: all(part(ctx) for part in parts)


def index_keys(spec: Any) -> Iterator[tuple[str, Hashable]]:
    """(field, value) equalities that must hold for the whole condition to hold."""
    if not isinstance(spec, dict):
        return
    for key, value in spec.items():
        if key == "all" and isinstance(value, list):
            for item in value:
                yield from index_keys(item)
        elif key in ("any", "not"):
            continue
        elif isinstance(value, dict):
            if set(value) == {"eq"} and isinstance(value["eq"], Hashable):
                yield key, value["eq"]
        elif isinstance(value, Hashable) and not isinstance(value, (bool, float)):
            yield key, value


def _compile_entry(
    key: str, value: Any, zone: tzinfo | None, path: tuple[str | int, ...]
) -> Predicate:
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise ConditionError(path, f"{key} takes a non-empty list of conditions")
        parts = [compile_condition(item, zone, (*path, i)) for i, item in enumerate(value)]
        if key == "all":
            return lambda ctx: all(part(ctx) for part in parts)
        return lambda ctx: any(part(ctx) for part in parts)
    if key == "not":
        inner = compile_condition(value, zone, path)
        return lambda ctx: not inner(ctx)
    try:
        get = compile_field(key, zone)
    except ValueError as exc:
        raise ConditionError(path, str(exc)) from None
    if not isinstance(value, dict):
        return _equals(get, value)
    tests = [_operator(get, op, arg, (*path, op)) for op, arg in value.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda ctx: all(test(ctx) for test in tests)


def _equals(get: Callable[[RequestContext], Any], expected: Any) -> Predicate:
    def test(ctx: RequestContext) -> bool:
        actual = get(ctx)
        if isinstance(actual, (frozenset, set, list, tuple)):
            return expected in actual  # e.g. caller.tags: vip
        return bool(actual == expected)

    return test


def _operator(
    get: Callable[[RequestContext], Any], op: str, arg: Any, path: tuple[str | int, ...]
) -> Predicate:
    build = _OPERATORS.get(op)
    if build is None:
        raise ConditionError(path, f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    return build(get, arg, path)


Getter_ = Callable[[RequestContext], Any]
Path_ = tuple[str | int, ...]


def _op_eq(get: Getter_, arg: Any, path: Path_) -> Predicate:
    return _equals(get, arg)


def _op_ne(get: Getter_, arg: Any, path: Path_) -> Predicate:
    equal = _equals(get, arg)
    return lambda ctx: not equal(ctx)


def _op_in(get: Getter_, arg: Any, path: Path_) -> Predicate:
    if not isinstance(arg, list):
        raise ConditionError(path, "in takes a list")
    values = frozenset(a for a in arg if isinstance(a, Hashable))
    return lambda ctx: _member(get(ctx), values)


def _op_not_in(get: Getter_, arg: Any, path: Path_) -> Predicate:
    member = _op_in(get, arg, path)
    return lambda ctx: not member(ctx)


def _op_compare(op: str) -> Callable[[Getter_, Any, Path_], Predicate]:
    compare = _COMPARE[op]

    def build(get: Getter_, arg: Any, path: Path_) -> Predicate:
        bound = _number(arg, path)
        return lambda ctx: _is_number(value := get(ctx)) and compare(value, bound)

    return build


def _op_between(get: Getter_, arg: Any, path: Path_) -> Predicate:
    if not isinstance(arg, list) or len(arg) != 2:
        raise ConditionError(path, "between takes [low, high] (inclusive low, exclusive high)")
    low, high = _number(arg[0], path), _number(arg[1], path)
    return lambda ctx: _is_number(value := get(ctx)) and low <= value < high


def _op_regex(get: Getter_, arg: Any, path: Path_) -> Predicate:
    try:
        pattern = re.compile(str(arg))
    except re.error as exc:
        raise ConditionError(path, f"invalid regular expression: {exc}") from None
    return lambda ctx: isinstance(value := get(ctx), str) and pattern.search(value) is not None


def _op_exists(get: Getter_, arg: Any, path: Path_) -> Predicate:
    wanted = bool(arg)
    return lambda ctx: (get(ctx) is not None) is wanted


def _op_contains(get: Getter_, arg: Any, path: Path_) -> Predicate:
    return lambda ctx: _contains(get(ctx), arg)


def _member(value: Any, values: frozenset[Any]) -> bool:
    if isinstance(value, (frozenset, set, list, tuple)):
        return any(v in values for v in value)
    return isinstance(value, Hashable) and value in values


def _contains(value: Any, item: Any) -> bool:
    if isinstance(value, str):
        return isinstance(item, str) and item in value
    if isinstance(value, (frozenset, set, list, tuple)):
        return item in value
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, path: tuple[str | int, ...]) -> float:
    if not _is_number(value):
        raise ConditionError(path, f"expected a number, got {value!r}")
    return float(value)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


_OPERATORS: dict[str, Callable[[Getter_, Any, Path_], Predicate]] = {
    "eq": _op_eq,
    "ne": _op_ne,
    "in": _op_in,
    "not_in": _op_not_in,
    "gt": _op_compare("gt"),
    "gte": _op_compare("gte"),
    "lt": _op_compare("lt"),
    "lte": _op_compare("lte"),
    "between": _op_between,
    "regex": _op_regex,
    "exists": _op_exists,
    "contains": _op_contains,
}
