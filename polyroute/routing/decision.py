"""Decision: the plan the executor runs and the explanation the client can read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyroute.deployment import Deployment
from polyroute.providers.request import Timeouts
from polyroute.routing.target import Target

if TYPE_CHECKING:
    from polyroute.routing.policy import RouteResilience


@dataclass(frozen=True, slots=True)
class Rejection:
    """A target a filter removed, and why (shown in explanations)."""

    target: str
    reason: str
    route: str


@dataclass(frozen=True, slots=True)
class FanOut:
    """An ensemble: call every deployment of the plan at once and aggregate the answers
    (see polyroute.routing.strategies.ensemble and polyroute.execution.ensemble)."""

    aggregator: str  # first_success | fastest | majority | judge | merge
    judge: Deployment | None = None
    extract: str | None = None
    """majority: a regex whose first group is the part of an answer that is voted on."""
    min_success: int = 1


@dataclass(slots=True, init=False)
class Decision:
    """Which deployments to try, in order, and why.

    `plan[0]` is the primary; the rest are fallbacks in the order the strategy ranked them.
    `path` lists the routes traversed (e.g. ``["auto", "chat"]`` when a static route hands
    chat requests to the `chat` route); `strategy` is the strategy that chose the primary.
    `signals` holds each traversed route's figures keyed by route name.
    """

    route: str
    strategy: str
    plan: list[Deployment]
    path: list[str]
    signals: dict[str, dict[str, Any]]
    rejected: list[Rejection]
    fallbacks: dict[str, list[Target]]
    """Configured fallback targets by error class (inner routes' first), tried after `plan`."""
    deadline: float | None
    max_retries: int | None
    timeouts: Timeouts | None
    """Per-attempt limits set by a route; None: each deployment's own."""
    degraded: bool
    """The route's own targets were all ejected; its `degraded` target serves instead."""
    panic: bool
    """Every target was ejected and there was no degraded target: all are used anyway."""
    experiment: str | None
    """The A/B route this request took part in, and its arm."""
    arm: str | None
    fan_out: FanOut | None
    """Set by an ensemble: every deployment of `plan` is called, not just the first."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see outcomes.Usage)
        self,
        route: str,
        strategy: str,
        plan: list[Deployment],
        path: list[str] | None = None,
        signals: dict[str, dict[str, Any]] | None = None,
        rejected: list[Rejection] | None = None,
        fallbacks: dict[str, list[Target]] | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        timeouts: Timeouts | None = None,
        degraded: bool = False,
        panic: bool = False,
        experiment: str | None = None,
        arm: str | None = None,
        fan_out: FanOut | None = None,
    ) -> None:
        self.route = route
        self.strategy = strategy
        self.plan = plan
        self.path = [] if path is None else path
        self.signals = {} if signals is None else signals
        self.rejected = [] if rejected is None else rejected
        self.fallbacks = {} if fallbacks is None else fallbacks
        self.deadline = deadline
        self.max_retries = max_retries
        self.timeouts = timeouts
        self.degraded = degraded
        self.panic = panic
        self.experiment = experiment
        self.arm = arm
        self.fan_out = fan_out

    def merge_route_settings(self, settings: RouteResilience) -> None:
        """Add an enclosing route's fallbacks after the inner ones; inner settings win."""
        for error_class, targets in settings.fallbacks.items():
            self.fallbacks.setdefault(error_class, []).extend(targets)
        if self.deadline is None:
            self.deadline = settings.deadline
        if self.max_retries is None:
            self.max_retries = settings.max_retries
        if self.timeouts is None:
            self.timeouts = settings.timeouts

    @property
    def deployment(self) -> Deployment:
        return self.plan[0]

    def explain(self) -> dict[str, Any]:
        """The decision as JSON-ready data (for /v1/route, `polyroute route`, logs)."""
        return {
            "route": self.route,
            "path": self.path,
            "strategy": self.strategy,
            "deployment": self.deployment.name,
            "upstream_model": self.deployment.upstream_model,
            "fallbacks": [d.name for d in self.plan[1:]],
            "fallbacks_on": {
                error_class: [t.name for t in targets]
                for error_class, targets in self.fallbacks.items()
            },
            "degraded": self.degraded,
            "experiment": self.experiment,
            "arm": self.arm,
            "panic": self.panic,
            "ensemble": None
            if self.fan_out is None
            else {
                "aggregator": self.fan_out.aggregator,
                "members": [d.name for d in self.plan],
                "judge": None if self.fan_out.judge is None else self.fan_out.judge.name,
            },
            "signals": self.signals,
            "rejected": [
                {"target": r.target, "route": r.route, "reason": r.reason} for r in self.rejected
            ],
        }
