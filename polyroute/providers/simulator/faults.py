"""Injected failures: random ones drawn from a profile's rates, scheduled ones from tests.

Tests need failures on demand ("the next two requests get a 429"), load tests and demos
need them at a rate. Scheduled faults always win over random ones so a test stays exact
even against a flaky profile.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from polyroute.providers.simulator.profiles import FaultRates

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "rate_limit",  # 429 with retry-after
        "server_error",  # 500
        "unavailable",  # 503
        "hang",  # accepts the request, never answers
        "reset",  # connection reset before the response headers
        "stream_cut",  # streams: some events, then the connection drops (no [DONE])
        "stall",  # streams: some events, then silence with the connection open
        "bad_json",  # 200 with a body that is not valid JSON
        "status",  # any status (opts: status, message, type, code) with an OpenAI error body
        "slow",  # opts: ttft_ms overriding the sampled latency
    }
)

EARLY_FAULTS: frozenset[str] = frozenset(
    {"rate_limit", "server_error", "unavailable", "hang", "reset", "status"}
)
"""Faults decided before the request is even validated, like a proxy in front of a model."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject into one request."""

    kind: str
    opts: dict[str, Any] = field(default_factory=dict)

    def opt_float(self, name: str, default: float) -> float:
        value = self.opts.get(name, default)
        return float(value) if isinstance(value, (int, float)) else default

    def opt_int(self, name: str, default: int) -> int:
        value = self.opts.get(name, default)
        return int(value) if isinstance(value, (int, float)) else default


def _check(kind: str, opts: dict[str, Any]) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    if kind == "status":
        status = opts.get("status")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("fault 'status' needs opts status: an HTTP status (100-599)")
    for name in ("after_chunks", "ttft_ms", "retry_after"):
        value = opts.get(name)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"fault option {name} must be a number >= 0")


class FaultSchedule:
    """A FIFO of faults that the next requests consume, one per request."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def push(self, kind: str, count: int = 1, **opts: Any) -> None:
        """Schedule `count` requests in a row to fail with `kind`."""
        _check(kind, opts)
        if count < 1:
            raise ValueError("count must be >= 1")
        self._queue.extend(Fault(kind, dict(opts)) for _ in range(count))

    def pop(self) -> Fault | None:
        """The next scheduled fault, or None."""
        return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


def draw_fault(rates: FaultRates, rng: random.Random) -> Fault | None:
    """A random fault by the profile's rates, or None for a normal answer."""
    u = rng.random()
    for kind, rate in rates.weighted():
        if u < rate:
            return Fault(kind)
        u -= rate
    return None
