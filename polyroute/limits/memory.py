"""In-process limiter: exact for one process (the default, and the Redis fallback)."""

from __future__ import annotations

from collections.abc import Callable

from polyroute.clock import Clock
from polyroute.limits import gcra
from polyroute.limits.checks import BUDGET, PARALLEL, TOKENS, WINDOW, Check, Demand, Verdict
from polyroute.limits.periods import keep_for, seconds_left, wall_now

_SWEEP_EVERY = 4096


class MemoryLimiter:
    """GCRA TATs, slot counts and spend per key, in dicts. Every method is synchronous
    underneath (`decide`, `settle_now`), so a demand is checked and reserved atomically."""

    def __init__(self, clock: Clock, wall: Callable[[], float] = wall_now) -> None:
        self._clock = clock
        self._wall = wall
        self._tat: dict[str, float] = {}
        self._slots: dict[str, int] = {}
        self._spend: dict[str, float] = {}
        self._spend_until: dict[str, float] = {}  # wall time after which a counter is dropped
        self._decisions = 0

    async def admit(self, demand: Demand) -> Verdict:
        return self.decide(demand)

    def settle(self, demand: Demand, verdict: Verdict, tokens: int, cost: float) -> None:
        self.settle_now(demand, tokens, cost)

    def release(self, demand: Demand, verdict: Verdict) -> None:
        self.settle_now(demand, demand.tokens, demand.cost)

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def decide(self, demand: Demand) -> Verdict:
        """Check every dimension; reserve them all only if all pass."""
        self._decisions += 1
        if self._decisions % _SWEEP_EVERY == 0:
            self._sweep()
        now = self._clock.now()
        checks = demand.checks
        remaining: list[float] = []
        reset: list[float] = []
        passed: list[bool] = []
        tats: list[float | None] = []  # the TAT to store, for rate checks
        failed: int | None = None
        retry = 0.0
        for index, check in enumerate(checks):
            if check.rate:
                ok, new_tat, units, until, wait = gcra.decide(
                    self._tat.get(check.key), now, check.limit, WINDOW, check.amount
                )
                remaining.append(float(units))  # compiled (mypyc): an int is not a float
                tats.append(new_tat)
                reset.append(until)
            else:
                ok, left, wait = self._check(check)
                remaining.append(left)
                tats.append(None)
                reset.append(-1.0)
            passed.append(ok)
            if not ok and (failed is None or wait > retry):
                failed, retry = index, wait
        if failed is not None:
            refused(checks, passed, remaining, reset)
            return Verdict(False, remaining, reset, failed, retry)
        spent: dict[str, float] = {}
        for index in range(len(checks)):  # not zip(strict=True): a generic call compiled
            check, stored = checks[index], tats[index]
            if stored is not None:
                self._tat[check.key] = stored
            elif check.dim == PARALLEL:
                self._slots[check.key] = self._slots.get(check.key, 0) + 1
            else:
                spent[check.key] = self._add_spend(check, check.amount)
        return Verdict(True, remaining, reset, spent=spent)

    def _check(self, check: Check) -> tuple[bool, float, float]:
        """A slot or budget check: (allowed, remaining, retry_after)."""
        if check.dim == PARALLEL:
            taken = self._slots.get(check.key, 0)
            return taken + 1 <= check.limit, check.limit - taken - 1, 1.0
        spent = self._spent(check.key)
        if budget_allows(spent, check.amount, check.limit):
            return True, check.limit - spent - check.amount, 0.0
        wait = seconds_left(check.period, self._wall())
        return False, check.limit - spent, wait if wait is not None else float("inf")

    def settle_now(self, demand: Demand, tokens: int, cost: float) -> None:
        """Adjust the token and spend reservations to the real figures; free the slots."""
        now = self._clock.now()
        for check in demand.checks:
            if check.dim == TOKENS:
                delta = tokens - check.amount
                if delta:
                    tat = gcra.adjust(
                        self._tat.get(check.key), now, int(check.limit), WINDOW, delta
                    )
                    if tat is None:
                        self._tat.pop(check.key, None)
                    else:
                        self._tat[check.key] = tat
            elif check.dim == PARALLEL:
                left = self._slots.get(check.key, 0) - 1
                if left > 0:
                    self._slots[check.key] = left
                else:
                    self._slots.pop(check.key, None)
            elif check.dim == BUDGET and cost != check.amount:
                self._add_spend(check, cost - check.amount)

    def spent(self, key: str) -> float:
        """USD spent (and reserved) on a budget key."""
        return self._spent(key)

    def adopt_spend(self, key: str, period: str, value: float) -> None:
        """Take a budget counter's value from elsewhere (the Redis backend seeds its local
        fallback with the last spend Redis reported, so an outage does not reset budgets)."""
        self._spend[key] = value
        keep = keep_for(period)
        self._spend_until[key] = self._wall() + keep if keep is not None else float("inf")

    def _spent(self, key: str) -> float:
        return self._spend.get(key, 0.0)

    def _add_spend(self, check: Check, amount: float) -> float:
        value = max(0.0, self._spend.get(check.key, 0.0) + amount)
        self.adopt_spend(check.key, check.period, value)
        return value

    def _sweep(self) -> None:
        """Forget state that no longer limits anything: decayed TATs, past periods."""
        now = self._clock.now()
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
        wall = self._wall()
        for key in [key for key, until in self._spend_until.items() if until <= wall]:
            del self._spend_until[key]
            self._spend.pop(key, None)

    def snapshot(self) -> dict[str, int]:
        return {"rate_keys": len(self._tat), "slots": sum(self._slots.values())}


def budget_allows(spent: float, amount: float, limit: float) -> bool:
    """Whether a reservation of `amount` fits a budget with `spent` already taken: nothing
    once the limit is reached (a zero budget admits nothing), never beyond it."""
    if spent >= limit:
        return False
    return spent + amount <= limit + limit * 1e-9


def refused(
    checks: list[Check], passed: list[bool], remaining: list[float], reset: list[float]
) -> None:
    """In a refused demand, report the checks that would have passed as they stand (their
    reservation was not made): what is left now, not what would have been left."""
    for index, check in enumerate(checks):
        if not passed[index]:
            continue
        remaining[index] += check.amount
        if check.rate and reset[index] > 0:
            reset[index] = max(0.0, reset[index] - check.amount * WINDOW / check.limit)
