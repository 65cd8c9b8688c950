"""GCRA, the generic cell rate algorithm: a rate limit kept as one number per scope.

A quota of `limit` units per `window` seconds becomes an emission interval
``T = window / limit`` and a *theoretical arrival time* (TAT): the moment at which the
scope would be back to its full quota. Admitting `n` units moves the TAT by ``n x T``;
a demand is admitted when the new TAT stays within one window of now, so a scope that has
been idle may spend its whole quota at once (burst = limit) and then gets ``limit /
window`` units per second. It is a token bucket without a refill timer, and unlike a
fixed window it has no boundary where twice the quota can pass.

Reserve-then-settle: a token reservation moves the TAT by the estimate; settling moves it
again by ``(real - estimate) x T``, as if the real figure had been reserved in the first
place (a refund never takes the TAT below now: a decayed reservation cannot be refunded
twice). The Redis backend runs the same arithmetic in Lua (polyroute.limits.scripts), in
microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPSILON = 1e-9


@dataclass(slots=True)
class RateResult:
    """One GCRA decision (not frozen: made several times a request, and a frozen
    dataclass pays an ``object.__setattr__`` call per field)."""

    allowed: bool
    tat: float
    """The TAT to store when `allowed` (else the unchanged one, at least `now`)."""
    remaining: int
    """Whole units that could still be admitted right now (after this demand if allowed)."""
    reset: float
    """Seconds until the scope is back to its full quota."""
    retry_after: float
    """Seconds until this demand would be admitted (0 when allowed; inf when it never fits)."""


def check(tat: float | None, now: float, limit: int, window: float, amount: float) -> RateResult:
    """Whether `amount` units fit a quota of `limit` per `window` seconds, given the stored
    `tat` (None: never used or expired)."""
    return RateResult(*decide(tat, now, limit, window, amount))


def decide(
    tat: float | None, now: float, limit: float, window: float, amount: float
) -> tuple[bool, float, int, float, float]:
    """`check` as a plain tuple (allowed, tat, remaining, reset, retry_after), for the
    in-process limiter's request path, where the result object was a tenth of its cost."""
    interval = window / limit
    base = now if tat is None or tat < now else tat
    new_tat = base + amount * interval
    allow_at = new_tat - window
    if allow_at <= now + _EPSILON:
        remaining = math.floor((now + window - new_tat) / interval + _EPSILON)
        return True, new_tat, max(0, remaining), new_tat - now, 0.0
    remaining = math.floor((now + window - base) / interval + _EPSILON)
    retry = math.inf if amount > limit else allow_at - now
    return False, base, max(0, remaining), base - now, retry


def adjust(tat: float | None, now: float, limit: int, window: float, delta: float) -> float | None:
    """The TAT after settling a reservation by `delta` units (negative: a refund); None when
    the scope is back to its full quota (nothing to store)."""
    if tat is None or tat < now:
        if delta <= 0:
            return None  # the reservation has already decayed: nothing left to refund
        tat = now
    new_tat = tat + delta * (window / limit)
    return new_tat if new_tat > now else None
