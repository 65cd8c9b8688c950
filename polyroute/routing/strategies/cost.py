"""cheapest: the lowest estimated cost first (see polyroute.routing.pricing); the rest in
rising cost order as fallbacks. Ties keep the configured order."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from polyroute.context import RequestContext
from polyroute.routing.pricing import DEFAULT_OUTPUT_TOKENS, estimate_cost
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class CheapestOptions(StrategyOptions):
    targets: list[str] = Field(min_length=1)
    expected_output_tokens: int = Field(
        DEFAULT_OUTPUT_TOKENS, ge=0, description="answer length assumed without max_tokens"
    )


class CheapestStrategy(Strategy):
    name = "cheapest"
    Options = CheapestOptions

    def __init__(self, options: CheapestOptions, resolve: Resolve) -> None:
        self._targets = [resolve(name, ("targets", i)) for i, name in enumerate(options.targets)]
        self._output = options.expected_output_tokens

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        costs = {t.name: estimate_cost(ctx, t, self._output) for t in candidates}
        ranked = sorted(candidates, key=lambda t: costs[t.name])
        return Ranking(ranked, {"estimated_usd": {k: round(v, 8) for k, v in costs.items()}})
