"""The Redis limiter against a real Redis: the same arithmetic as the memory limiter, exact
across processes (two connections stand for two processes), and its fallback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from polyroute.limits.checks import BUDGET, PARALLEL, REQUESTS, TOKENS, Check, Demand, Verdict
from polyroute.limits.memory import MemoryLimiter
from polyroute.limits.redis_limiter import RedisLimiter
from polyroute.testing import FakeClock
from tests.scaleout.conftest import Connect, RedisServer
from tests.support import free_port

NOW = 1_800_000_000.0


def demand(*checks: Check, request_id: str = "r1", lease: float = 630.0) -> Demand:
    tokens = int(next((c.amount for c in checks if c.dim == TOKENS), 0))
    cost = next((c.amount for c in checks if c.dim == BUDGET), 0.0)
    return Demand(request_id, list(checks), tokens, cost, lease)


async def limiter(connect: Connect, **options: object) -> RedisLimiter:
    conn = await connect(**options)
    return RedisLimiter(conn, MemoryLimiter(FakeClock()))


async def test_gcra_on_redis_matches_the_arithmetic(connect: Connect) -> None:
    """rpm 60 at a fixed time: 60 pass, the 61st waits exactly one second."""
    redis_limiter = await limiter(connect)
    redis_limiter.now = NOW
    rpm = Check(REQUESTS, "key:a", "rq:key:a", 60, 1)
    verdicts = [await redis_limiter.admit(demand(rpm)) for _ in range(61)]
    assert [v.allowed for v in verdicts].count(True) == 60
    assert all(not v.local for v in verdicts)
    assert [v.remaining[0] for v in verdicts[:3]] == [59, 58, 57]
    refused = verdicts[-1]
    assert refused.failed == 0
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.reset[0] == pytest.approx(60.0)
    redis_limiter.now = NOW + 0.999
    assert not (await redis_limiter.admit(demand(rpm))).allowed
    redis_limiter.now = NOW + 1.0
    assert (await redis_limiter.admit(demand(rpm))).allowed


async def test_all_scopes_or_none(connect: Connect) -> None:
    redis_limiter = await limiter(connect)
    redis_limiter.now = NOW
    key = Check(REQUESTS, "key:a", "rq:key:a", 100, 1)
    tight = Check(REQUESTS, "global", "rq:global", 1, 1)
    assert (await redis_limiter.admit(demand(key, tight))).allowed
    refused = await redis_limiter.admit(demand(key, tight))
    assert not refused.allowed
    assert refused.failed == 1
    assert refused.remaining[0] == 99  # the refused request took nothing from the key
    assert (await redis_limiter.admit(demand(key))).remaining == [98]


async def test_tokens_settle_and_parallel_slots(connect: Connect) -> None:
    redis_limiter = await limiter(connect)
    redis_limiter.now = NOW
    tokens = Check(TOKENS, "key:a", "tk:key:a", 1000, 900)
    slot = Check(PARALLEL, "key:a", "pl:key:a", 1, 1)
    first = demand(tokens, slot, request_id="1")
    verdict = await redis_limiter.admit(first)
    assert verdict.allowed
    assert verdict.remaining == [100, 0]
    second = demand(tokens, slot, request_id="2")
    refused = await redis_limiter.admit(second)
    assert not refused.allowed
    redis_limiter.settle(first, verdict, 40, 0.0)  # short answer, slot freed
    await redis_limiter.flush()
    again = await redis_limiter.admit(second)
    assert again.allowed
    assert again.remaining == [60, 0]  # 1000 - 40 - 900


async def test_a_dead_process_slot_expires_with_its_lease(connect: Connect) -> None:
    redis_limiter = await limiter(connect)
    slot = Check(PARALLEL, "key:a", "pl:key:a", 1, 1)
    redis_limiter.now = NOW
    assert (await redis_limiter.admit(demand(slot, request_id="dies", lease=30))).allowed
    redis_limiter.now = NOW + 29
    assert not (await redis_limiter.admit(demand(slot, request_id="2", lease=30))).allowed
    redis_limiter.now = NOW + 31  # never released: the lease ran out
    assert (await redis_limiter.admit(demand(slot, request_id="2", lease=30))).allowed


async def test_budget_is_exact_across_processes_under_concurrency(connect: Connect) -> None:
    """Two 'processes' fire 100 admissions at once at a budget that pays for 10 of them:
    exactly 10 are admitted; settling to the real (lower) cost lets more in later."""
    a, b = await limiter(connect), await limiter(connect)
    budget = Check(BUDGET, "key:a", "sp:key:a:total", 1.0, 0.1, "total")
    demands = [demand(budget, request_id=str(i)) for i in range(100)]
    verdicts = await asyncio.gather(*((a if i % 2 else b).admit(d) for i, d in enumerate(demands)))
    admitted = [(d, v) for d, v in zip(demands, verdicts, strict=True) if v.allowed]
    assert len(admitted) == 10
    assert {bool(v.spent) for _, v in admitted} == {True}
    for d, v in admitted:
        a.settle(d, v, 0, 0.05)  # each cost half its estimate
    await a.flush()
    assert a.local.spent("sp:key:a:total") == pytest.approx(1.0)  # last seen, before settling
    late = [await b.admit(demand(budget, request_id=f"late{i}")) for i in range(10)]
    assert [v.allowed for v in late].count(True) == 5
    assert late[-1].remaining[0] == pytest.approx(0.0)


async def test_unreachable_redis_falls_back_fast_and_warns_once(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens: every decision is local, none waits more than the timeout, one
    warning for the outage, and the counters say how many decisions were local."""
    caplog.set_level(logging.WARNING, logger="polyroute.state")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    redis_limiter = await limiter(connect, url=closed, timeout=0.05, retry_interval=0.2)
    conn = redis_limiter._conn
    rpm = Check(REQUESTS, "key:a", "rq:key:a", 2, 1)
    started = time.monotonic()
    verdicts = [await redis_limiter.admit(demand(rpm)) for _ in range(3)]
    assert time.monotonic() - started < 0.2
    assert [v.allowed for v in verdicts] == [True, True, False]  # local limits still hold
    assert all(v.local for v in verdicts)
    assert conn.outages == 1
    assert conn.fallbacks == 3
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1


async def test_outage_and_recovery(connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    """Redis killed: local decisions, budget continued from the last spend Redis reported
    and owed; Redis back (empty): the owed spend is added and Redis decides again."""
    caplog.set_level(logging.WARNING, logger="polyroute.state")
    server = RedisServer(free_port())
    server.start()
    try:
        redis_limiter = await limiter(connect, url=server.url, timeout=0.05, retry_interval=0.2)
        conn = redis_limiter._conn
        budget = Check(BUDGET, "key:a", "sp:key:a:total", 1.0, 0.3, "total")
        first = demand(budget, request_id="1")
        verdict = await redis_limiter.admit(first)
        assert verdict.allowed
        assert not verdict.local
        redis_limiter.settle(first, verdict, 0, 0.3)
        await redis_limiter.flush()

        server.kill()
        during = [await redis_limiter.admit(demand(budget, request_id=f"d{i}")) for i in range(3)]
        assert [v.allowed for v in during] == [True, True, False]  # 0.3 already spent
        assert all(v.local for v in during)
        for i, v in enumerate(during[:2]):
            redis_limiter.settle(demand(budget, request_id=f"d{i}"), v, 0, 0.25)
        assert redis_limiter.owed == pytest.approx(0.5)

        server.start()  # empty: a restarted Redis without persistence
        for _ in range(50):
            if conn.available:
                break
            await asyncio.sleep(0.05)
        assert conn.available
        assert redis_limiter.owed == 0
        client = server.client()
        try:
            key = f"{conn.prefix}:limit:sp:key:a:total"
            assert float(client.get(key) or 0) == pytest.approx(0.5)  # what was spent meanwhile
        finally:
            client.close()
        after = await redis_limiter.admit(demand(budget, request_id="after"))
        assert after.allowed
        assert not after.local
        messages = [r.getMessage() for r in caplog.records]
        assert sum("Redis unreachable" in m for m in messages) == 1
        assert sum("Redis answers again" in m for m in messages) == 1
    finally:
        server.kill()


async def test_a_caller_that_leaves_mid_admission_leaks_nothing(connect: Connect) -> None:
    """Cancelled while Redis decides (the client went away): the slot it was given is
    handed back, so the next request gets it."""
    redis_limiter = await limiter(connect)
    released: list[str] = []
    release = redis_limiter.release

    def spy(d: Demand, v: Verdict) -> None:
        released.append(d.request_id)
        release(d, v)

    redis_limiter.release = spy  # type: ignore[method-assign]
    slot = Check(PARALLEL, "key:a", "pl:key:a", 1, 1)
    leaving = asyncio.ensure_future(redis_limiter.admit(demand(slot, request_id="gone")))
    for _ in range(3):  # until its batch is on the wire
        await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    for _ in range(100):
        verdict = await redis_limiter.admit(demand(slot, request_id="next"))
        if verdict.allowed:
            break
        await redis_limiter.flush()
        await asyncio.sleep(0.01)
    assert verdict.allowed
    assert not verdict.local
    assert released == ["gone"]  # admitted by Redis after it left, then given back
