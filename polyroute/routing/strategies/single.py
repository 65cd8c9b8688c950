"""single: always the one target (an alias for a deployment, or a deployment named directly)."""

from __future__ import annotations

from collections.abc import Sequence

from polyroute.context import RequestContext
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class SingleOptions(StrategyOptions):
    target: str


class SingleStrategy(Strategy):
    name = "single"
    Options = SingleOptions

    def __init__(self, options: SingleOptions, resolve: Resolve) -> None:
        self._targets = [resolve(options.target, ("target",))]

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        return Ranking(list(candidates))
