"""In-process live statistics and retry budget: what every request updates (compiled,
setup.py). The circuit breakers stay in `state/memory.py`, which a Redis-backed
subclass extends (an interpreted class cannot subclass a compiled one)."""

from __future__ import annotations

from dataclasses import dataclass

from polyroute.clock import Clock
from polyroute.config.schema import RetryBudgetConfig, StatsConfig
from polyroute.state.base import DeploymentStats
from polyroute.state.window import SlidingCounter

_OK, _FAILED = 0, 1
_REQUESTS, _RETRIES = 0, 1


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
