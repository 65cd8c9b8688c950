"""A/B experiment results: per arm, requests, errors, latency, cost and feedback, with 95 %
confidence intervals, so a split can be judged without exporting anything.

An outcome observer (polyroute.outcomes). In-process for now (one gateway process);
durable per-request records come with the usage-records work. Feedback (POST /v1/feedback)
finds its arm through a bounded memory of recent request ids.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from polyroute.outcomes import Feedback, Outcome

Z95 = 1.96


@dataclass(slots=True)
class Moments:
    """Count, sum and sum of squares: enough for a mean and its confidence interval."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.squares += value * value

    def summary(self, digits: int = 4) -> dict[str, Any]:
        if self.n == 0:
            return {"n": 0, "mean": None, "ci95": None}
        mean = self.total / self.n
        variance = max(0.0, self.squares / self.n - mean * mean)
        half = Z95 * math.sqrt(variance / self.n) if self.n > 1 else None
        ci = None if half is None else [round(mean - half, digits), round(mean + half, digits)]
        return {"n": self.n, "mean": round(mean, digits), "ci95": ci}


def wilson(successes: int, n: int) -> list[float] | None:
    """Wilson score interval for a proportion: sane at 0 %, 100 % and small n."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


@dataclass(slots=True)
class ArmStats:
    requests: int = 0
    errors: int = 0
    latency: Moments = field(default_factory=Moments)
    cost: Moments = field(default_factory=Moments)
    feedback: Moments = field(default_factory=Moments)

    def report(self) -> dict[str, Any]:
        rate = self.errors / self.requests if self.requests else None
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": None if rate is None else round(rate, 4),
            "error_rate_ci95": wilson(self.errors, self.requests),
            "latency_ms": self.latency.summary(1),
            "cost_usd": {**self.cost.summary(8), "total": round(self.cost.total, 8)},
            "feedback": self.feedback.summary(),
        }


class Experiments:
    """Results of every A/B route, by experiment (route) and arm."""

    def __init__(self, remember: int = 100_000) -> None:
        self._arms: dict[str, dict[str, ArmStats]] = {}
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._remember = remember

    def _arm(self, experiment: str, arm: str) -> ArmStats:
        return self._arms.setdefault(experiment, {}).setdefault(arm, ArmStats())

    def record(
        self,
        experiment: str,
        arm: str,
        *,
        request_id: str,
        ok: bool,
        latency: float,
        cost: float | None,
    ) -> None:
        stats = self._arm(experiment, arm)
        stats.requests += 1
        if not ok:
            stats.errors += 1
            return
        stats.latency.add(latency * 1000)
        if cost is not None:
            stats.cost.add(cost)
        self._recent[request_id] = (experiment, arm)
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)

    def observe(self, outcome: Outcome) -> None:
        decision = outcome.decision
        if decision is None or decision.experiment is None or decision.arm is None:
            return
        self.record(
            decision.experiment,
            decision.arm,
            request_id=outcome.request_id,
            ok=outcome.ok,
            latency=outcome.latency,
            cost=None if outcome.usage is None or outcome.usage.estimated else outcome.cost,
        )

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        """Attach a score in [0, 1] to the arm that served the request; None if unknown."""
        where = self._recent.get(feedback.request_id)
        if where is None:
            return None
        self._arm(*where).feedback.add(feedback.score)
        return {"experiment": where[0], "arm": where[1]}

    def report(self) -> dict[str, Any]:
        return {
            experiment: {arm: stats.report() for arm, stats in arms.items()}
            for experiment, arms in self._arms.items()
        }
