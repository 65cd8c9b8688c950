"""rules: the first matching rule (by priority) names the target.

Rules are compiled once at load. Rules that require an equality on some field (e.g.
``caller.team: search``) are indexed by that field's value, so a decision looks up the
few rules that can match instead of testing every rule: with 1,000 team rules a request
tests a handful (see bench/rules_scaling.py). Compiled (setup.py); the options, pydantic
models, live in routing/rules/options.py.
"""

from __future__ import annotations

import heapq
import zoneinfo
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from polyroute.context import RequestContext
from polyroute.routing.rules.conditions import (
    ConditionError,
    Predicate,
    compile_condition,
    index_keys,
)
from polyroute.routing.rules.fields import Getter, compile_field
from polyroute.routing.rules.options import RulesOptions, RuleSpec
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy
from polyroute.routing.target import Target


@dataclass(frozen=True, slots=True)
class _Rule:
    order: int  # position after sorting by priority: lower is tried first
    name: str
    test: Predicate
    target: Target


class RulesStrategy(Strategy):
    name = "rules"
    Options = RulesOptions

    def __init__(self, options: RulesOptions, resolve: Resolve) -> None:
        try:
            zone: tzinfo = zoneinfo.ZoneInfo(options.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {options.timezone!r}") from None
        ordered = sorted(enumerate(options.rules), key=lambda item: (-item[1].priority, item[0]))
        self._rules: list[_Rule] = []
        self._index: dict[str, dict[Hashable, list[_Rule]]] = {}
        self._getters: dict[str, Getter] = {}
        self._unindexed: list[_Rule] = []
        self._merged: dict[tuple[int, ...], list[_Rule]] = {}  # by the ids of its buckets
        for order, (index, spec) in enumerate(ordered):
            rule = self._compile(order, index, spec, zone, resolve)
            self._rules.append(rule)
            self._place(rule, spec, zone)
        self._default = resolve(options.default, ("default",)) if options.default else None
        targets = [rule.target for rule in self._rules]
        if self._default is not None:
            targets.append(self._default)
        self._targets = list(dict.fromkeys(targets))

    @staticmethod
    def _compile(order: int, index: int, spec: RuleSpec, zone: tzinfo, resolve: Resolve) -> _Rule:
        try:
            test = compile_condition(spec.when, zone)
        except ConditionError as exc:
            where = ".".join(str(p) for p in ("rules", index, "when", *exc.path))
            raise ValueError(f"{where}: {exc}") from None
        target = resolve(spec.target, ("rules", index, "target"))
        return _Rule(order, spec.name or f"rule {index}", test, target)

    def _place(self, rule: _Rule, spec: RuleSpec, zone: tzinfo) -> None:
        for field, value in index_keys(spec.when):
            if field not in self._getters:
                self._getters[field] = compile_field(field, zone)
            self._index.setdefault(field, {}).setdefault(value, []).append(rule)
            return  # one index entry is enough: the rule's other conditions are tested
        self._unindexed.append(rule)

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        tested = 0
        for rule in self._candidates(ctx):
            tested += 1
            if rule.target in candidates and rule.test(ctx):
                rest = [self._default] if self._default in candidates else []
                ranked = [rule.target, *(t for t in rest if t is not rule.target)]
                return Ranking(ranked, {"rule": rule.name, "rules_tested": tested})
        if self._default is not None and self._default in candidates:
            return Ranking([self._default], {"rule": None, "rules_tested": tested})
        return Ranking([], {"rule": None, "rules_tested": tested})

    def _candidates(self, ctx: RequestContext) -> Any:
        """Rules that may match, in priority order: the indexed buckets for this request's
        field values, merged with the rules that have no equality to index."""
        buckets = [self._unindexed] if self._unindexed else []
        for field, table in self._index.items():
            value = self._getters[field](ctx)
            if isinstance(value, (frozenset, set, list, tuple)):
                buckets.extend(table[v] for v in value if isinstance(v, Hashable) and v in table)
            else:
                try:  # not isinstance(value, Hashable): an ABC check is a Python call
                    bucket = table.get(value)
                except TypeError:  # unhashable (a dict or a list of a field's value)
                    bucket = None
                if bucket is not None:
                    buckets.append(bucket)
        if len(buckets) <= 1:
            return buckets[0] if buckets else ()
        # the buckets come from the config: the few ways they combine are merged once
        key = tuple(map(id, buckets))
        merged = self._merged.get(key)
        if merged is None:
            if len(self._merged) >= _MAX_MERGED:
                self._merged.clear()
            merged = self._merged[key] = list(heapq.merge(*buckets, key=_order))
        return merged


_MAX_MERGED = 1024


def _order(rule: _Rule) -> int:
    return rule.order


__all__ = ["RuleSpec", "RulesOptions", "RulesStrategy"]
