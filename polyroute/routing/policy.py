"""Policy: a route's filters followed by its strategy; policies nest through targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import InvalidRequest
from polyroute.kinds import EndpointKind
from polyroute.providers.request import Timeouts
from polyroute.routing.decision import Decision, Rejection
from polyroute.routing.filters import Filter
from polyroute.routing.strategies.base import Ranking, Strategy
from polyroute.routing.target import Target
from polyroute.state.base import CircuitBreakers


@dataclass(slots=True)
class RouteResilience:
    """What a route says about failure: fallbacks by error class, a degraded target, and
    overrides of the gateway-wide deadline and retry count."""

    fallbacks: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    degraded: Target | None = None
    deadline: float | None = None
    max_retries: int | None = None
    timeouts: Timeouts | None = None


class Policy:
    """The routing policy of one route alias.

    Also a Target: a strategy of another route may choose this policy, which then decides
    among its own targets (e.g. ``auto`` --by_type--> ``chat`` --weighted--> deployments).

    Health is applied after the filters: deployments whose breaker is open are set aside
    (and listed in the explanation). If that leaves nothing, the route's `degraded` target
    serves; without one, the policy routes over all of them anyway ("panic", as Envoy
    does), because ejecting every deployment on a false alarm would fail every request.
    """

    __slots__ = ("_strategy", "filters", "health", "kinds", "name", "resilience")

    def __init__(self, name: str) -> None:
        self.name = name
        self.filters: tuple[Filter, ...] = ()
        self.kinds: frozenset[EndpointKind] = frozenset()
        self.health: CircuitBreakers | None = None
        self.resilience = RouteResilience()
        self._strategy: Strategy | None = None

    def bind(
        self,
        strategy: Strategy,
        filters: Sequence[Filter],
        resilience: RouteResilience | None = None,
    ) -> None:
        """Second build phase: strategies resolve targets that may be policies themselves."""
        self._strategy = strategy
        self.filters = tuple(filters)
        self.kinds = frozenset(kind for target in strategy.targets for kind in target.kinds)
        if resilience is not None:
            self.resilience = resilience

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
        """Filter, set ejected deployments aside, rank, and descend into a chosen
        sub-policy; raises InvalidRequest if nothing can serve the request."""
        strategy = self.strategy
        rejected: list[Rejection] = []
        candidates = self._filtered(ctx, strategy.targets, rejected)
        if not candidates:
            raise self._nothing_left(ctx, rejected)
        panic = False
        if self.health is not None:
            healthy = self._healthy(candidates, rejected)
            if not healthy:
                degraded = self.resilience.degraded
                if degraded is not None:
                    return self._degraded(ctx, degraded, rejected)
                panic = True
            else:
                candidates = healthy
        ranking = strategy.rank(ctx, candidates)
        if not ranking.targets:
            raise self._nothing_left(ctx, rejected)
        signals = {self.name: {"strategy": strategy.name, **ranking.signals}}
        if panic:
            signals[self.name]["panic"] = True
        if ranking.fan_out is not None:  # an ensemble: every target is called
            return self._fan_out(ctx, ranking, signals, rejected, panic)
        rest = [t for t in ranking.targets[1:] if isinstance(t, Deployment)]
        decision = self._descend(ctx, ranking.targets[0], rest, signals, rejected)
        decision.panic = decision.panic or panic
        arm = ranking.signals.get("arm")
        if arm is not None and decision.experiment is None:
            decision.experiment, decision.arm = self.name, str(arm)
        return decision

    def _filtered(
        self, ctx: RequestContext, targets: Sequence[Target], rejected: list[Rejection]
    ) -> list[Target]:
        """The targets every filter accepts; the others are added to `rejected`. Targets
        only an advisory filter rejects are set aside while others remain, and kept when
        nothing else would (see Filter.advisory)."""
        candidates: list[Target] = []
        advised: list[tuple[Target, Rejection]] = []
        for target in targets:
            hard, soft = None, None
            for check in self.filters:
                reason = check.reject(ctx, target)
                if reason is None:
                    continue
                if not check.advisory:
                    hard = reason
                    break
                soft = soft or reason
            if hard is not None:
                rejected.append(Rejection(target.name, hard, self.name))
            elif soft is not None:
                advised.append((target, Rejection(target.name, soft, self.name)))
            else:
                candidates.append(target)
        if candidates or not advised:
            rejected.extend(rejection for _, rejection in advised)
            return candidates
        return [target for target, _ in advised]

    def _fan_out(
        self,
        ctx: RequestContext,
        ranking: Ranking,
        signals: dict[str, dict[str, Any]],
        rejected: list[Rejection],
        panic: bool,
    ) -> Decision:
        """An ensemble's decision: every ranked target joins (a route by its own choice)."""
        members: list[Deployment] = []
        for target in ranking.targets:
            member = target
            if isinstance(target, Policy):
                try:
                    inner = target.decide(ctx)
                except InvalidRequest as exc:
                    rejected.append(Rejection(target.name, exc.message, self.name))
                    continue
                signals.update(inner.signals)
                member = inner.deployment
            if isinstance(member, Deployment) and member not in members:
                members.append(member)
        if not members:
            raise self._nothing_left(ctx, rejected)
        decision = Decision(
            route=self.name,
            strategy=self.strategy.name,
            plan=members,
            path=[self.name],
            signals=signals,
            rejected=rejected,
            panic=panic,
            fan_out=ranking.fan_out,
        )
        decision.merge_route_settings(self.resilience)
        return decision

    def _healthy(self, candidates: list[Target], rejected: list[Rejection]) -> list[Target]:
        health = self.health
        assert health is not None
        healthy = []
        for target in candidates:
            if isinstance(target, Deployment):
                status = health.status(target.name)
                if status.state == "open":
                    reason = f"{status.reason} (tried again in {status.retry_in:g}s)"
                    rejected.append(Rejection(target.name, reason, self.name))
                    continue
            healthy.append(target)
        return healthy

    def _degraded(self, ctx: RequestContext, target: Target, rejected: list[Rejection]) -> Decision:
        signals = {self.name: {"strategy": self.strategy.name, "degraded": target.name}}
        decision = self._descend(ctx, target, [], signals, rejected)
        decision.degraded = True
        return decision

    def _descend(
        self,
        ctx: RequestContext,
        first: Target,
        rest: list[Deployment],
        signals: dict[str, dict[str, Any]],
        rejected: list[Rejection],
    ) -> Decision:
        settings = self.resilience
        if isinstance(first, Policy):
            inner = first.decide(ctx)
            inner.path.insert(0, self.name)
            inner.route = self.name
            inner.signals = {**signals, **inner.signals}
            inner.rejected[:0] = rejected
            if inner.fan_out is None:  # an ensemble's plan is its members, nothing more
                inner.plan.extend(d for d in rest if d not in inner.plan)
            inner.merge_route_settings(settings)
            return inner
        if not isinstance(first, Deployment):
            raise TypeError(f"route {self.name}: unsupported target {first!r}")
        decision = Decision(
            route=self.name,
            strategy=self.strategy.name,
            plan=[first, *rest],
            path=[self.name],
            signals=signals,
            rejected=rejected,
        )
        decision.merge_route_settings(settings)
        return decision

    def _nothing_left(self, ctx: RequestContext, rejected: list[Rejection]) -> InvalidRequest:
        reasons = "; ".join(f"{r.target}: {r.reason}" for r in rejected)
        detail = f" ({reasons})" if reasons else ""
        return InvalidRequest(
            f"route {self.name!r} has no deployment for this {ctx.kind.value} request{detail}",
            param="model",
            code="no_eligible_deployment",
        )
