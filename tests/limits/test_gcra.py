"""GCRA arithmetic, and the memory limiter built on it, on a virtual clock."""

from __future__ import annotations

import math

import pytest

from polyroute.limits import gcra
from polyroute.limits.checks import BUDGET, PARALLEL, REQUESTS, TOKENS, WINDOW, Check, Demand
from polyroute.limits.memory import MemoryLimiter, budget_allows
from polyroute.testing import FakeClock


def admit_all(limit: int, clock: FakeClock, count: int) -> list[bool]:
    """Admit `count` single units at the clock's current time, threading the TAT through."""
    tat: float | None = None
    allowed = []
    for _ in range(count):
        result = gcra.check(tat, clock.now(), limit, WINDOW, 1)
        if result.allowed:
            tat = result.tat
        allowed.append(result.allowed)
    return allowed


def test_an_idle_scope_may_spend_its_whole_quota_at_once() -> None:
    """Burst = the limit: exactly `limit` of a simultaneous burst pass."""
    clock = FakeClock()
    assert admit_all(60, clock, 100).count(True) == 60


def test_quota_comes_back_at_the_rate_and_retry_after_says_when() -> None:
    clock = FakeClock()
    limit = 60  # one per second
    tat = None
    for _ in range(limit):
        tat = gcra.check(tat, clock.now(), limit, WINDOW, 1).tat
    refused = gcra.check(tat, clock.now(), limit, WINDOW, 1)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.remaining == 0
    assert refused.reset == pytest.approx(60.0)
    clock.advance(0.999)
    assert not gcra.check(tat, clock.now(), limit, WINDOW, 1).allowed
    clock.advance(0.001)
    again = gcra.check(tat, clock.now(), limit, WINDOW, 1)
    assert again.allowed
    assert again.remaining == 0


def test_no_boundary_burst() -> None:
    """Unlike a fixed window, no moment lets two quotas through within one window: over any
    60 s, at most limit + limit x elapsed / 60 pass."""
    clock = FakeClock()
    limit = 10
    tat = None
    passed = 0
    for _ in range(600):  # one attempt every 0.1 s for 60 s
        result = gcra.check(tat, clock.now(), limit, WINDOW, 1)
        if result.allowed:
            tat = result.tat
            passed += 1
        clock.advance(0.1)
    assert passed <= limit + limit  # the burst plus 60 s of refill
    assert passed >= limit + limit - 1


def test_amounts_and_remaining() -> None:
    clock = FakeClock()
    result = gcra.check(None, clock.now(), 1000, WINDOW, 300)
    assert result.allowed
    assert result.remaining == 700
    assert result.reset == pytest.approx(18.0)  # 300 tokens at 1000/min
    too_much = gcra.check(result.tat, clock.now(), 1000, WINDOW, 701)
    assert not too_much.allowed
    assert too_much.remaining == 700
    assert too_much.retry_after == pytest.approx(0.06)  # one token's worth of time


def test_a_demand_larger_than_the_quota_never_fits() -> None:
    result = gcra.check(None, 0.0, 100, WINDOW, 101)
    assert not result.allowed
    assert math.isinf(result.retry_after)


def test_settling_refunds_and_charges_extra() -> None:
    clock = FakeClock()
    reserved = gcra.check(None, clock.now(), 1000, WINDOW, 800)
    # the answer used 100 of the 800 reserved: 700 come back at once
    tat = gcra.adjust(reserved.tat, clock.now(), 1000, WINDOW, -700)
    assert tat is not None
    assert gcra.check(tat, clock.now(), 1000, WINDOW, 900).allowed
    # an answer that used more than reserved puts the scope in debt
    debt = gcra.adjust(None, clock.now(), 1000, WINDOW, 1200)
    assert debt is not None
    refused = gcra.check(debt, clock.now(), 1000, WINDOW, 1)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(12.06)


def test_a_decayed_reservation_is_not_refunded_twice() -> None:
    clock = FakeClock()
    reserved = gcra.check(None, clock.now(), 1000, WINDOW, 500)
    clock.advance(60)  # the quota is whole again
    assert gcra.adjust(reserved.tat, clock.now(), 1000, WINDOW, -500) is None
    assert gcra.check(None, clock.now(), 1000, WINDOW, 1000).allowed


def demand(*checks: Check, request_id: str = "r1") -> Demand:
    tokens = int(next((c.amount for c in checks if c.dim == TOKENS), 0))
    cost = next((c.amount for c in checks if c.dim == BUDGET), 0.0)
    return Demand(request_id, list(checks), tokens, cost)


def test_memory_limiter_reserves_all_or_nothing() -> None:
    """A demand refused by one scope reserves nothing in the others."""
    clock = FakeClock()
    limiter = MemoryLimiter(clock, wall=lambda: 1_764_000_000.0)
    key_rpm = Check(REQUESTS, "key:a", "rq:key:a", 100, 1)
    global_rpm = Check(REQUESTS, "global", "rq:global", 2, 1)
    assert limiter.decide(demand(key_rpm, global_rpm)).allowed
    assert limiter.decide(demand(key_rpm, global_rpm)).allowed
    refused = limiter.decide(demand(key_rpm, global_rpm))
    assert not refused.allowed
    assert refused.failed == 1
    # the key's own quota was not charged by the refused request: 98 left, not 97
    alone = limiter.decide(demand(key_rpm))
    assert alone.remaining == [97.0]


def test_memory_limiter_parallel_slots_and_release() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    slot = Check(PARALLEL, "key:a", "pl:key:a", 2, 1)
    first, second = demand(slot, request_id="1"), demand(slot, request_id="2")
    assert limiter.decide(first).allowed
    assert limiter.decide(second).allowed
    third = limiter.decide(demand(slot, request_id="3"))
    assert not third.allowed
    assert third.retry_after == 1.0
    limiter.settle_now(first, 0, 0.0)
    assert limiter.decide(demand(slot, request_id="3")).allowed


def test_memory_limiter_tokens_reserve_then_settle() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    tokens = Check(TOKENS, "key:a", "tk:key:a", 1000, 900)
    big = demand(tokens)
    assert limiter.decide(big).allowed
    assert not limiter.decide(demand(Check(TOKENS, "key:a", "tk:key:a", 1000, 200))).allowed
    limiter.settle_now(big, 50, 0.0)  # the answer was short
    assert limiter.decide(demand(Check(TOKENS, "key:a", "tk:key:a", 1000, 900))).allowed


def test_memory_limiter_budget_reserve_then_settle() -> None:
    clock = FakeClock()
    wall = 1_764_000_000.0
    limiter = MemoryLimiter(clock, wall=lambda: wall)

    def spend(amount: float, request_id: str) -> Demand:
        return demand(
            Check(BUDGET, "key:a", "sp:key:a:d", 1.0, amount, "day"), request_id=request_id
        )

    first = spend(0.6, "1")
    assert limiter.decide(first).allowed
    refused = limiter.decide(spend(0.6, "2"))
    assert not refused.allowed
    assert refused.retry_after > 0  # until the day ends
    limiter.settle_now(first, 0, 0.1)  # it cost less than estimated
    assert limiter.spent("sp:key:a:d") == pytest.approx(0.1)
    assert limiter.decide(spend(0.6, "2")).allowed


@pytest.mark.parametrize(
    ("spent", "amount", "limit", "allowed"),
    [
        (0.0, 0.5, 1.0, True),
        (0.5, 0.5, 1.0, True),
        (0.5, 0.6, 1.0, False),
        (1.0, 0.0, 1.0, False),  # exhausted: even a free request is refused
        (0.0, 0.0, 0.0, False),  # a zero budget admits nothing
        (0.999, 0.0, 1.0, True),
    ],
)
def test_budget_rule(spent: float, amount: float, limit: float, allowed: bool) -> None:
    assert budget_allows(spent, amount, limit) is allowed
