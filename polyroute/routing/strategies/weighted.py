"""weighted: random balancing across targets in proportion to their weights.

The whole candidate list is ordered by weighted sampling without replacement
(Efraimidis-Spirakis keys ``u ** (1 / w)``), so the primary is drawn with probability
``w / sum(w)`` and the fallbacks follow in a weighted order too. The primary's probability
is reported as `propensity` so that offline replay can weigh logged decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class WeightedTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    weight: float | None = Field(None, gt=0, description="defaults to the deployment's weight")


class WeightedOptions(StrategyOptions):
    targets: list[str | WeightedTarget] = Field(min_length=1)


class WeightedStrategy(Strategy):
    name = "weighted"
    Options = WeightedOptions

    def __init__(
        self, options: WeightedOptions, resolve: Resolve, rng: random.Random | None = None
    ):
        self._targets: list[Target] = []
        self._weights: dict[str, float] = {}
        for index, item in enumerate(options.targets):
            spec = WeightedTarget(name=item) if isinstance(item, str) else item
            target = resolve(spec.name, ("targets", index))
            self._targets.append(target)
            default = target.weight if isinstance(target, Deployment) else 1.0
            self._weights[target.name] = spec.weight if spec.weight is not None else default
        self._random = (rng or random.Random()).random

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        weights = self._weights
        if len(candidates) == 1:
            return Ranking(list(candidates), {"propensity": 1.0})
        rand = self._random
        keyed = sorted(candidates, key=lambda t: rand() ** (1.0 / weights[t.name]), reverse=True)
        total = sum(weights[t.name] for t in candidates)
        return Ranking(keyed, {"propensity": round(weights[keyed[0].name] / total, 4)})
