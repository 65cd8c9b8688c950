"""by_type: static routing by request kind (chat, completion, embedding, image).

The typical front door: ``auto`` sends images to an image route, embeddings to an
embedding model and text to a chat route, each of which may be a policy of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from polyroute.context import RequestContext
from polyroute.kinds import EndpointKind
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class ByTypeOptions(StrategyOptions):
    targets: dict[EndpointKind, str] = Field(min_length=1)


class ByTypeStrategy(Strategy):
    name = "by_type"
    Options = ByTypeOptions

    def __init__(self, options: ByTypeOptions, resolve: Resolve) -> None:
        self._by_kind: dict[EndpointKind, Target] = {
            kind: resolve(name, ("targets", kind.value)) for kind, name in options.targets.items()
        }
        self._targets = list(dict.fromkeys(self._by_kind.values()))

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        target = self._by_kind.get(ctx.kind)
        if target is None or target not in candidates:
            return Ranking([], {"kind": ctx.kind.value})
        return Ranking([target], {"kind": ctx.kind.value})
