"""The state backend of one gateway process, from the config's `state` section.

`memory` (the default): every piece of state lives in this process. `redis`: rate limits
and budgets are decided on Redis (exact across processes, one Lua script per request);
breakers, live statistics and the retry budget keep a local copy that a background task
syncs with Redis every `state.sync_interval`; when Redis is unreachable everything carries
on with this process's own state (see polyroute.state.redis_conn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyroute.clock import Clock
from polyroute.config.schema import GatewayConfig
from polyroute.limits.base import Limiter
from polyroute.limits.memory import MemoryLimiter
from polyroute.state.base import CircuitBreakers, LiveStats, RetryBudget
from polyroute.state.local_stats import MemoryLiveStats, MemoryRetryBudget
from polyroute.state.memory import MemoryBreakers

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection
    from polyroute.state.redis_sync import StateSync


@dataclass(slots=True)
class StateBackend:
    """What the gateway's parts share with other processes (or keep to themselves)."""

    breakers: CircuitBreakers
    stats: LiveStats
    retry_budget: RetryBudget
    limiter: Limiter
    redis: RedisConnection | None = None
    sync: StateSync | None = None
    parts: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> None:
        """Connect (an unreachable Redis is not fatal) and start syncing."""
        if self.redis is not None:
            await self.redis.start()
        if self.sync is not None:
            self.sync.start()

    async def aclose(self) -> None:
        if self.sync is not None:
            await self.sync.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    def snapshot(self) -> dict[str, Any]:
        """Backend health for metrics: Redis availability, outages, local fallbacks."""
        if self.redis is None:
            return {"backend": "memory"}
        report = self.redis.snapshot()
        report["sync_rounds"] = self.sync.rounds if self.sync is not None else 0
        return report


def build_state(config: GatewayConfig, clock: Clock) -> StateBackend:
    """The backend `config.state` asks for (nothing connects before `start`)."""
    resilience = config.resilience
    local_limiter = MemoryLimiter(clock)
    if config.state.backend == "memory":
        return StateBackend(
            breakers=MemoryBreakers(resilience.breaker, clock),
            stats=MemoryLiveStats(config.stats, clock),
            retry_budget=MemoryRetryBudget(resilience.retry_budget, clock),
            limiter=local_limiter,
        )
    if config.state.redis_url is None:
        from polyroute.config.errors import ConfigProblem

        raise config.error([ConfigProblem(("state", "redis_url"), "required for backend redis")])
    from polyroute.limits.redis_limiter import RedisLimiter
    from polyroute.state.redis_breakers import RedisBreakers
    from polyroute.state.redis_conn import RedisConnection
    from polyroute.state.redis_retry import RedisRetryBudget
    from polyroute.state.redis_stats import RedisLiveStats
    from polyroute.state.redis_sync import StateSync

    conn = RedisConnection(config.state)
    interval = config.state.sync_interval
    names = [deployment.name for deployment in config.models]
    breakers = RedisBreakers(resilience.breaker, clock, conn, names)
    stats = RedisLiveStats(config.stats, clock, conn, names, interval)
    retry_budget = RedisRetryBudget(resilience.retry_budget, clock, conn, interval)
    return StateBackend(
        breakers=breakers,
        stats=stats,
        retry_budget=retry_budget,
        limiter=RedisLimiter(conn, local_limiter),
        redis=conn,
        sync=StateSync(conn, [breakers, stats, retry_budget], interval),
    )


def slot_lease(config: GatewayConfig) -> float:
    """Seconds a parallel slot may stay taken by a process that died: the longest deadline
    a request can have, plus a margin."""
    deadlines = [config.resilience.deadline]
    deadlines += [route.deadline for route in config.routes.values() if route.deadline]
    return max(deadlines) + 30.0
