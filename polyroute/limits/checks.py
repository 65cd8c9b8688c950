"""What one request asks of the limits: a `Demand` made of `Check`s, and the `Verdict`.

A check is one dimension of one scope: requests per minute of key `team-a`, tokens per
minute of user `alice`, requests in flight of model `chat`, the monthly budget of the
gateway. Every check of a demand is decided and reserved together (one Lua script on
Redis), so a refused request reserves nothing anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 60.0
"""Seconds that `rpm` and `tpm` quotas cover."""

REQUESTS, TOKENS, PARALLEL, BUDGET = "requests", "tokens", "parallel", "budget"


@dataclass(slots=True, init=False)
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
    period: str
    """Budgets: day | week | month | total."""
    rate: bool
    """A GCRA check (requests or tokens)."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see outcomes.Usage)
        self, dim: str, scope: str, key: str, limit: float, amount: float, period: str = ""
    ) -> None:
        self.dim = dim
        self.scope = scope
        self.key = key
        self.limit = limit
        self.amount = amount
        self.period = period
        self.rate = dim in (REQUESTS, TOKENS)


@dataclass(slots=True, init=False)
class Demand:
    """Everything one request reserves, and what to settle it against later."""

    request_id: str
    checks: list[Check]
    tokens: int
    """The reserved token estimate (the amount of every tokens check)."""
    cost: float
    """The reserved USD estimate (the amount of every budget check)."""
    lease: float
    """Seconds a parallel slot stays taken at most if its process dies before releasing it."""

    def __init__(  # compiled (see polyroute.outcomes.Usage)
        self,
        request_id: str,
        checks: list[Check],
        tokens: int = 0,
        cost: float = 0.0,
        lease: float = 630.0,
    ) -> None:
        self.request_id = request_id
        self.checks = checks
        self.tokens = tokens
        self.cost = cost
        self.lease = lease


@dataclass(slots=True, init=False)
class Verdict:
    """The decision on a demand: admitted (and reserved) or refused (nothing reserved)."""

    allowed: bool
    remaining: list[float]
    """Per check: units left (after this demand when admitted)."""
    reset: list[float]
    """Per check: seconds until a rate quota is whole again; -1 where it does not apply."""
    failed: int | None
    """The refusing check that keeps the request out longest."""
    retry_after: float
    local: bool
    """Decided by this process's own state (memory backend, or Redis unreachable)."""
    spent: dict[str, float]
    """Budget keys -> spend after this demand, as the backend reported it."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see outcomes.Usage)
        self,
        allowed: bool,
        remaining: list[float],
        reset: list[float],
        failed: int | None = None,
        retry_after: float = 0.0,
        local: bool = True,
        spent: dict[str, float] | None = None,
    ) -> None:
        self.allowed = allowed
        self.remaining = remaining
        self.reset = reset
        self.failed = failed
        self.retry_after = retry_after
        self.local = local
        self.spent = {} if spent is None else spent
