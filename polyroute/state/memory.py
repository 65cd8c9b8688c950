"""In-process state: one gateway process (the embedded default): the circuit breakers,
compiled (setup.py); live stats and the retry budget are in `state/local_stats.py`."""

from __future__ import annotations

from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from polyroute.clock import Clock
from polyroute.config.schema import BreakerConfig
from polyroute.state.base import HealthStatus
from polyroute.state.local_stats import MemoryLiveStats, MemoryRetryBudget
from polyroute.state.window import SlidingCounter

_OK, _FAILED = 0, 1
_CLOSED = HealthStatus("closed")

__all__ = ["MemoryBreakers", "MemoryLiveStats", "MemoryRetryBudget"]


@dataclass(slots=True)
class _Breaker:
    outcomes: SlidingCounter
    consecutive: int = 0
    ejections: int = 0
    open_until: float = 0.0
    reason: str = ""
    probing: bool = False
    half_open: bool = False
    last_ejected_at: float = float("-inf")


@mypyc_attr(allow_interpreted_subclasses=True)  # RedisBreakers extends it
class MemoryBreakers:
    """Circuit breakers for the deployments of one process (see state.base.CircuitBreakers).

    closed --(N consecutive failures, or failure rate >= R over >= M requests)--> open for
    min(base x ejections, max) --(time passes)--> half_open: one probe at a time;
    its success closes the breaker, its failure opens it again for longer. A 429 only cools
    the deployment down for Retry-After, without counting towards the ejection schedule.
    """

    def __init__(self, config: BreakerConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _get(self, deployment: str) -> _Breaker:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            outcomes = SlidingCounter(self._config.window, self._clock)
            breaker = self._breakers[deployment] = _Breaker(outcomes)
        return breaker

    def status(self, deployment: str) -> HealthStatus:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            return _CLOSED
        left = breaker.open_until - self._clock.now()
        if left > 0:
            return HealthStatus("open", breaker.reason, round(left, 3), breaker.ejections)
        if breaker.half_open:
            return HealthStatus("half_open", breaker.reason, 0.0, breaker.ejections)
        return HealthStatus("closed", "", 0.0, breaker.ejections)

    def acquire(self, deployment: str) -> bool:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            return True
        if breaker.open_until > self._clock.now():
            return False
        if breaker.half_open:
            if breaker.probing:
                return False
            breaker.probing = True
        return True

    def record_success(self, deployment: str) -> None:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            return  # never failed: nothing to track (keeps the healthy path allocation-free)
        breaker.outcomes.add(_OK)
        breaker.consecutive = 0
        if breaker.half_open:
            breaker.half_open = breaker.probing = False
            breaker.reason = ""

    def record_failure(self, deployment: str) -> None:
        breaker = self._get(deployment)
        breaker.outcomes.add(_FAILED)
        breaker.consecutive += 1
        if breaker.half_open:
            self._eject(breaker, "the probe after an ejection failed")
            return
        config = self._config
        if breaker.consecutive >= config.consecutive_failures:
            self._eject(breaker, f"{breaker.consecutive} consecutive failures")
            return
        ok, failed = breaker.outcomes.totals()
        total = ok + failed
        if total >= config.min_requests and failed / total >= config.failure_rate:
            self._eject(breaker, f"{failed} of the last {total} requests failed")

    def record_rate_limited(self, deployment: str, retry_after: float | None) -> None:
        breaker = self._get(deployment)
        cooldown = retry_after if retry_after is not None else self._config.rate_limit_cooldown
        until = self._clock.now() + cooldown
        if until > breaker.open_until:
            breaker.open_until = until
            breaker.reason = f"rate limited (429) for {cooldown:g}s"
        breaker.probing = False

    def _eject(self, breaker: _Breaker, reason: str) -> None:
        now = self._clock.now()
        if now - breaker.last_ejected_at > 2 * self._config.max_ejection:
            breaker.ejections = 0  # a long healthy stretch forgives earlier ejections
        breaker.last_ejected_at = now
        breaker.ejections += 1
        duration = min(self._config.base_ejection * breaker.ejections, self._config.max_ejection)
        breaker.open_until = now + duration
        breaker.reason = f"ejected for {duration:g}s: {reason}"
        breaker.half_open = True  # once the time is up, probe before trusting it again
        breaker.probing = False
        breaker.consecutive = 0
        breaker.outcomes.clear()

    def snapshot(self) -> dict[str, HealthStatus]:
        return {name: self.status(name) for name in self._breakers}
