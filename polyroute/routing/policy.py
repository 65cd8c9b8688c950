"""Policy: a route's filters followed by its strategy; policies nest through targets."""

from __future__ import annotations

from collections.abc import Sequence

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import InvalidRequest
from polyroute.kinds import EndpointKind
from polyroute.routing.decision import Decision, Rejection
from polyroute.routing.filters import Filter
from polyroute.routing.strategies.base import Strategy


class Policy:
    """The routing policy of one route alias.

    Also a Target: a strategy of another route may choose this policy, which then decides
    among its own targets (e.g. ``auto`` --by_type--> ``chat`` --weighted--> deployments).
    """

    __slots__ = ("_strategy", "filters", "kinds", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.filters: tuple[Filter, ...] = ()
        self.kinds: frozenset[EndpointKind] = frozenset()
        self._strategy: Strategy | None = None

    def bind(self, strategy: Strategy, filters: Sequence[Filter]) -> None:
        """Second build phase: strategies resolve targets that may be policies themselves."""
        self._strategy = strategy
        self.filters = tuple(filters)
        self.kinds = frozenset(kind for target in strategy.targets for kind in target.kinds)

    @property
    def strategy(self) -> Strategy:
        if self._strategy is None:
            raise RuntimeError(f"route {self.name} was not built")
        return self._strategy

    @property
    def context_window(self) -> int | None:
        """The largest window among its targets: a sub-policy filters its own targets again."""
        windows = [t.context_window for t in self.strategy.targets]
        if any(w is None for w in windows):
            return None
        return max(w for w in windows if w is not None)

    def decide(self, ctx: RequestContext) -> Decision:
        """Filter, rank, and descend into a chosen sub-policy; raises InvalidRequest if
        nothing is left to serve the request."""
        strategy = self.strategy
        rejected: list[Rejection] = []
        candidates = []
        for target in strategy.targets:
            reason = None
            for check in self.filters:
                reason = check.reject(ctx, target)
                if reason is not None:
                    rejected.append(Rejection(target.name, reason, self.name))
                    break
            if reason is None:
                candidates.append(target)
        ranking = strategy.rank(ctx, candidates) if candidates else None
        if ranking is None or not ranking.targets:
            raise self._nothing_left(ctx, rejected)
        first = ranking.targets[0]
        signals = {self.name: {"strategy": strategy.name, **ranking.signals}}
        rest = [t for t in ranking.targets[1:] if isinstance(t, Deployment)]
        if isinstance(first, Policy):
            inner = first.decide(ctx)
            inner.path.insert(0, self.name)
            inner.route = self.name
            inner.signals = {**signals, **inner.signals}
            inner.rejected[:0] = rejected
            inner.plan.extend(d for d in rest if d not in inner.plan)
            return inner
        if not isinstance(first, Deployment):
            raise TypeError(f"route {self.name}: unsupported target {first!r}")
        return Decision(
            route=self.name,
            strategy=strategy.name,
            plan=[first, *rest],
            path=[self.name],
            signals=signals,
            rejected=rejected,
        )

    def _nothing_left(self, ctx: RequestContext, rejected: list[Rejection]) -> InvalidRequest:
        reasons = "; ".join(f"{r.target}: {r.reason}" for r in rejected)
        detail = f" ({reasons})" if reasons else ""
        return InvalidRequest(
            f"route {self.name!r} has no deployment for this {ctx.kind.value} request{detail}",
            param="model",
            code="no_eligible_deployment",
        )
