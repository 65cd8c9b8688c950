"""What one request asks of the limits: a `Demand` made of `Check`s, and the `Verdict`.

A check is one dimension of one scope: requests per minute of key `team-a`, tokens per
minute of user `alice`, requests in flight of model `chat`, the monthly budget of the
gateway. Every check of a demand is decided and reserved together (one Lua script on
Redis), so a refused request reserves nothing anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW = 60.0
"""Seconds that `rpm` and `tpm` quotas cover."""

REQUESTS, TOKENS, PARALLEL, BUDGET = "requests", "tokens", "parallel", "budget"


@dataclass(slots=True)
class Check:
    """One dimension of one scope. Treat as immutable: the checks that ask one unit (a
    request, a slot) are built once per scope and limit and shared by every demand."""

    dim: str
    """requests | tokens (GCRA over WINDOW) | parallel (slots) | budget (USD per period)."""
    scope: str
    """``key:<id>``, ``user:<name>``, ``model:<route or deployment>`` or ``global``."""
    key: str
    """Where its state lives (the backend adds its own prefix)."""
    limit: float
    amount: float
    """Units asked for: 1 request, the token estimate, 1 slot, the estimated USD."""
    period: str = ""
    """Budgets: day | week | month | total."""
    rate: bool = field(init=False)
    """A GCRA check (requests or tokens)."""

    def __post_init__(self) -> None:
        self.rate = self.dim in (REQUESTS, TOKENS)


@dataclass(slots=True)
class Demand:
    """Everything one request reserves, and what to settle it against later."""

    request_id: str
    checks: list[Check]
    tokens: int = 0
    """The reserved token estimate (the amount of every tokens check)."""
    cost: float = 0.0
    """The reserved USD estimate (the amount of every budget check)."""
    lease: float = 630.0
    """Seconds a parallel slot stays taken at most if its process dies before releasing it."""


@dataclass(slots=True)
class Verdict:
    """The decision on a demand: admitted (and reserved) or refused (nothing reserved)."""

    allowed: bool
    remaining: list[float]
    """Per check: units left (after this demand when admitted)."""
    reset: list[float]
    """Per check: seconds until a rate quota is whole again; -1 where it does not apply."""
    failed: int | None = None
    """The refusing check that keeps the request out longest."""
    retry_after: float = 0.0
    local: bool = True
    """Decided by this process's own state (memory backend, or Redis unreachable)."""
    spent: dict[str, float] = field(default_factory=dict)
    """Budget keys -> spend after this demand, as the backend reported it."""
