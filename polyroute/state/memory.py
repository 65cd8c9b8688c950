"""In-process state: one gateway process (the embedded default)."""

from __future__ import annotations

from dataclasses import dataclass

from polyroute.clock import Clock
from polyroute.config.schema import BreakerConfig, RetryBudgetConfig, StatsConfig
from polyroute.state.base import DeploymentStats, HealthStatus
from polyroute.state.window import SlidingCounter

_OK, _FAILED = 0, 1
_CLOSED = HealthStatus("closed")
_REQUESTS, _RETRIES = 0, 1


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


class MemoryRetryBudget:
    """Retries within `ratio` x requests + `min_per_second` x `window` over the window."""

    def __init__(self, config: RetryBudgetConfig, clock: Clock) -> None:
        self._counter = SlidingCounter(config.window, clock)
        self._ratio = config.ratio
        self._floor = config.min_per_second * config.window

    def record_request(self) -> None:
        self._counter.add(_REQUESTS)

    def try_spend(self) -> bool:
        requests, retries = self._counter.totals()
        if retries >= self._ratio * requests + self._floor:
            return False
        self._counter.add(_RETRIES)
        return True


@dataclass(slots=True)
class _Live:
    outcomes: SlidingCounter
    latency: float | None = None
    ttft: float | None = None
    in_flight: int = 0
    samples: int = 0


class MemoryLiveStats:
    """EWMA latency and time to first chunk, windowed error rate, in-flight count."""

    def __init__(self, config: StatsConfig, clock: Clock) -> None:
        self._alpha = config.ewma_alpha
        self._window = config.error_window
        self._clock = clock
        self._live: dict[str, _Live] = {}

    def _get(self, deployment: str) -> _Live:
        live = self._live.get(deployment)
        if live is None:
            live = self._live[deployment] = _Live(SlidingCounter(self._window, self._clock))
        return live

    def started(self, deployment: str) -> None:
        self._get(deployment).in_flight += 1

    def finished(
        self, deployment: str, *, ok: bool, latency: float | None = None, ttft: float | None = None
    ) -> None:
        live = self._get(deployment)
        live.in_flight = max(0, live.in_flight - 1)
        live.samples += 1
        live.outcomes.add(_OK if ok else _FAILED)
        alpha = self._alpha
        if latency is not None:
            live.latency = (
                latency if live.latency is None else live.latency + alpha * (latency - live.latency)
            )
        if ttft is not None:
            live.ttft = ttft if live.ttft is None else live.ttft + alpha * (ttft - live.ttft)

    def get(self, deployment: str) -> DeploymentStats:
        live = self._live.get(deployment)
        if live is None:
            return _NO_STATS
        ok, failed = live.outcomes.totals()
        rate = failed / (ok + failed) if ok + failed else 0.0
        return DeploymentStats(live.latency, live.ttft, rate, live.in_flight, live.samples)

    def in_flight(self, deployment: str) -> int:
        live = self._live.get(deployment)
        return live.in_flight if live is not None else 0

    def snapshot(self) -> dict[str, DeploymentStats]:
        return {name: self.get(name) for name in self._live}


_NO_STATS = DeploymentStats()
