"""The state interfaces the request path depends on, independent of where state lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """What routing needs to know about one deployment's health right now."""

    state: str  # "closed" (healthy), "open" (ejected), "half_open" (probing)
    reason: str = ""
    retry_in: float = 0.0  # seconds until an ejected deployment is tried again
    ejections: int = 0


class CircuitBreakers(Protocol):
    """Per-deployment outlier ejection shared by every request (and, with Redis, every
    worker): consecutive failures or a failure rate eject a deployment for a time that
    grows with each ejection; after it, one probe at a time decides whether it recovered."""

    def status(self, deployment: str) -> HealthStatus:
        """Read-only view, for routing filters and explanations."""
        ...

    def acquire(self, deployment: str) -> bool:
        """Whether an attempt may go to `deployment` now (claims the probe if half-open)."""
        ...

    def record_success(self, deployment: str) -> None: ...

    def record_failure(self, deployment: str) -> None: ...

    def record_rate_limited(self, deployment: str, retry_after: float | None) -> None:
        """A 429: cool the deployment down for `retry_after` (or the default) without
        counting it as broken."""
        ...

    def snapshot(self) -> dict[str, HealthStatus]: ...


class RetryBudget(Protocol):
    """Bounds extra attempts to a share of recent requests, so retries cannot multiply
    load on an upstream that is already failing (Finagle/Linkerd/Envoy retry budgets)."""

    def record_request(self) -> None: ...

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when the budget is used up."""
        ...


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """Live figures for one deployment, from real outcomes."""

    latency: float | None = None  # EWMA seconds of whole non-streaming answers
    ttft: float | None = None  # EWMA seconds to the first streamed chunk
    error_rate: float = 0.0  # share of failed attempts in the recent window
    in_flight: int = 0  # attempts and open streams right now
    samples: int = 0  # outcomes seen


class LiveStats(Protocol):
    """Per-deployment performance, fed by the executor and read by routing strategies."""

    def started(self, deployment: str) -> None:
        """An attempt (or stream) began: counts as in flight until `finished`."""
        ...

    def finished(
        self, deployment: str, *, ok: bool, latency: float | None = None, ttft: float | None = None
    ) -> None: ...

    def get(self, deployment: str) -> DeploymentStats: ...

    def in_flight(self, deployment: str) -> int:
        """The in-flight count alone (cheap: the executor checks it on every attempt)."""
        ...

    def snapshot(self) -> dict[str, DeploymentStats]: ...
