"""The limiter interface: where rate-limit, concurrency and budget counters live."""

from __future__ import annotations

from typing import Protocol

from polyroute.limits.checks import Demand, Verdict


class Limiter(Protocol):
    """Decides demands against shared counters. Implementations: `MemoryLimiter` (one
    process) and `RedisLimiter` (every worker and instance on one Redis, exact)."""

    async def admit(self, demand: Demand) -> Verdict:
        """Decide every check of `demand` together; when all pass, reserve them all
        (requests, token and cost estimates, a parallel slot), else reserve nothing. If the
        caller is cancelled while waiting (the client left), whatever was reserved for it
        must be given back."""
        ...

    def settle(self, demand: Demand, verdict: Verdict, tokens: int, cost: float) -> None:
        """True an admitted demand up to its real `tokens` and `cost` (USD) and free its
        parallel slots; exactly once per admitted demand (or `release` instead). Never
        waits: a backend that must write somewhere queues the write (see `flush`)."""
        ...

    def release(self, demand: Demand, verdict: Verdict) -> None:
        """Free the parallel slots of an admitted demand whose real usage is unknown (the
        client left first): its reservations stand as the charge."""
        ...

    async def flush(self) -> None:
        """Wait for queued settlements to be written."""
        ...

    async def aclose(self) -> None: ...
