"""When and how long to wait before another attempt: the one retry schedule everything uses.

Full jitter (AWS's "exponential backoff and jitter"): attempt n waits a uniform random time
in [0, min(cap, base x 2^n)], which spreads synchronized clients apart. A Retry-After from
the upstream replaces it, but only up to a cap and only if it fits in the deadline.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from polyroute.errors import UpstreamError, UpstreamStatusError

CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float
    cap: float

    def delay(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (0-based) on the same deployment."""
        return rng.uniform(0.0, min(self.cap, self.base * (2**retry)))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header; HTTP dates are ignored."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def error_class(error: UpstreamError) -> str | None:
    """Which `fallbacks_on` class an error belongs to; None for the client's own errors."""
    if isinstance(error, UpstreamStatusError):
        if error.upstream_status == 429:
            return "rate_limited"
        if error.code in CONTEXT_WINDOW_CODES:
            return "context_window"
        if error.code in CONTENT_FILTER_CODES:
            return "content_filter"
    return "unavailable" if error.retryable else None
