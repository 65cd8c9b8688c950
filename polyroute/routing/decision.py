"""Decision: the plan the executor runs and the explanation the client can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polyroute.deployment import Deployment


@dataclass(frozen=True, slots=True)
class Rejection:
    """A target a filter removed, and why (shown in explanations)."""

    target: str
    reason: str
    route: str


@dataclass(slots=True)
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
    path: list[str] = field(default_factory=list)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)

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
            "signals": self.signals,
            "rejected": [
                {"target": r.target, "route": r.route, "reason": r.reason} for r in self.rejected
            ],
        }
