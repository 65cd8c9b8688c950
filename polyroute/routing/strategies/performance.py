"""Performance strategies: rank by live statistics of real outcomes.

- lowest_latency: lowest EWMA latency (whole answers) or time to first chunk (streams);
- least_busy: fewest attempts and open streams in flight;
- power_of_two: two random candidates, the less loaded of them first (load = in flight,
  weighted by latency), which avoids herding every request onto one "best" deployment.

Deployments with no statistics yet rank first, so new ones get measured. With probability
`explore` the order is shuffled instead, so a deployment that was slow (or ejected and has
since recovered) keeps receiving a trickle of traffic and its figures stay current.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from polyroute.context import RequestContext
from polyroute.routing.runtime import Runtime
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target
from polyroute.state.base import DeploymentStats, LiveStats

_UNKNOWN = DeploymentStats()


class PerformanceOptions(StrategyOptions):
    targets: list[str] = Field(min_length=1)
    explore: float = Field(0.05, ge=0, le=1, description="share of requests ranked at random")


class LatencyOptions(PerformanceOptions):
    metric: Literal["auto", "latency", "ttft"] = Field(
        "auto", description="auto: time to first chunk for streams, whole latency otherwise"
    )


class _LiveStrategy(Strategy):
    """Shared plumbing: resolved targets, the stats source, exploration."""

    def __init__(self, options: PerformanceOptions, resolve: Resolve) -> None:
        self._targets = [resolve(name, ("targets", i)) for i, name in enumerate(options.targets)]
        self._explore = options.explore
        self._stats: LiveStats | None = None
        self._random = random.Random()

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def attach(self, runtime: Runtime) -> None:
        self._stats = runtime.stats

    def _get(self, target: Target) -> DeploymentStats:
        return self._stats.get(target.name) if self._stats is not None else _UNKNOWN

    def _explored(self, candidates: Sequence[Target]) -> Ranking | None:
        if self._explore and self._random.random() < self._explore:
            shuffled = list(candidates)
            self._random.shuffle(shuffled)
            return Ranking(shuffled, {"explored": True})
        return None


class LowestLatencyStrategy(_LiveStrategy):
    name = "lowest_latency"
    Options = LatencyOptions

    def __init__(self, options: LatencyOptions, resolve: Resolve) -> None:
        super().__init__(options, resolve)
        self._metric = options.metric

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        explored = self._explored(candidates)
        metric = self._metric if self._metric != "auto" else ("ttft" if ctx.stream else "latency")
        figures: dict[str, float | None] = {}
        for target in candidates:
            stats = self._get(target)
            value = stats.ttft if metric == "ttft" else stats.latency
            figures[target.name] = value
        signals: dict[str, Any] = {
            "metric": metric,
            "ms": {name: None if v is None else round(v * 1000, 1) for name, v in figures.items()},
        }
        if explored is not None:
            explored.signals.update(signals)
            return explored
        ranked = sorted(candidates, key=lambda t: _unknown_first(figures[t.name]))
        return Ranking(ranked, {**signals, "explored": False})


class LeastBusyStrategy(_LiveStrategy):
    name = "least_busy"
    Options = PerformanceOptions

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        busy = {t.name: self._get(t).in_flight for t in candidates}
        explored = self._explored(candidates)
        if explored is not None:
            explored.signals["in_flight"] = busy
            return explored
        tie = self._random.random
        ranked = sorted(candidates, key=lambda t: (busy[t.name], tie()))
        return Ranking(ranked, {"in_flight": busy, "explored": False})


class PowerOfTwoStrategy(_LiveStrategy):
    name = "power_of_two"
    Options = PerformanceOptions

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        scores = {t.name: self._load(t) for t in candidates}
        if len(candidates) <= 2:
            pair = list(candidates)
        else:
            pair = self._random.sample(list(candidates), 2)
        best = min(pair, key=lambda t: scores[t.name])
        rest = sorted((t for t in candidates if t is not best), key=lambda t: scores[t.name])
        signals = {
            "compared": [t.name for t in pair],
            "load": {name: round(score, 4) for name, score in scores.items()},
        }
        return Ranking([best, *rest], signals)

    def _load(self, target: Target) -> float:
        """Expected wait: requests in flight (plus this one) times the typical latency."""
        stats = self._get(target)
        latency = stats.latency or stats.ttft or 1.0
        return (stats.in_flight + 1) * latency


def _unknown_first(value: float | None) -> float:
    return -1.0 if value is None else value
