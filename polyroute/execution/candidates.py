"""The order in which a request's deployments are tried: class-specific fallbacks first,
then the strategy's ranking, then the route's general fallbacks; each deployment once."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import GatewayError
from polyroute.routing.decision import Decision
from polyroute.routing.policy import Policy
from polyroute.routing.target import Target


class Candidates:
    """Deployments still to try for one request."""

    __slots__ = ("_classes", "_ctx", "_decision", "_fallbacks", "_plan", "_tried", "_used")

    def __init__(self, ctx: RequestContext, decision: Decision) -> None:
        self._ctx = ctx
        self._decision = decision
        self._plan: deque[Deployment] = deque(decision.plan)
        self._classes: deque[Deployment] = deque()
        self._fallbacks: deque[Deployment] | None = None  # resolved on first need
        self._used: set[str] = set()
        self._tried: set[str] = set()

    def first(self) -> Deployment:
        primary = self._plan.popleft()
        self._tried.add(primary.name)
        return primary

    def next_after(
        self, failed: Deployment, error_class: str | None, retryable: bool
    ) -> tuple[Deployment | None, bool]:
        """The next deployment after `failed` failed with `error_class`, and whether it
        came from the strategy's plan (which counts against max_retries)."""
        if error_class is not None and error_class not in self._used:
            self._used.add(error_class)
            targets = self._decision.fallbacks.get(error_class, [])
            self._classes.extend(self._resolve(targets))
        found = self._pop(self._classes)
        if found is not None:
            return found, False
        if not retryable:
            return None, False
        return self.next_plan_or_fallback_with_source()

    def next_plan_or_fallback(self) -> Deployment | None:
        """The next deployment regardless of error (used to skip an unavailable one)."""
        found = self._pop(self._classes)
        if found is not None:
            return found
        return self.next_plan_or_fallback_with_source()[0]

    def next_plan_or_fallback_with_source(self) -> tuple[Deployment | None, bool]:
        found = self._pop(self._plan)
        if found is not None:
            return found, True
        if self._fallbacks is None:
            self._fallbacks = deque(self._resolve(self._decision.fallbacks.get("any", [])))
        return self._pop(self._fallbacks), False

    def _pop(self, queue: deque[Deployment]) -> Deployment | None:
        while queue:
            deployment = queue.popleft()
            if deployment.name not in self._tried:
                self._tried.add(deployment.name)
                return deployment
        return None

    def _resolve(self, targets: Iterable[Target]) -> list[Deployment]:
        """Deployments for fallback targets; a route target contributes its own plan."""
        resolved: list[Deployment] = []
        for target in targets:
            if isinstance(target, Deployment):
                resolved.append(target)
            elif isinstance(target, Policy):
                try:
                    resolved.extend(target.decide(self._ctx).plan)
                except GatewayError:
                    continue  # that route cannot serve this request: skip it
        return resolved
