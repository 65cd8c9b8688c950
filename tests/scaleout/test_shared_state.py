"""Breakers, live statistics and the retry budget shared through a real Redis: two sets of
objects on two connections stand for two gateway processes; `sync` is called by hand where
the gateway's background task would call it every `state.sync_interval`."""

from __future__ import annotations

import asyncio

import pytest

from polyroute.clock import MonotonicClock
from polyroute.config.schema import BreakerConfig, RetryBudgetConfig, StatsConfig
from polyroute.state.redis_breakers import RedisBreakers
from polyroute.state.redis_conn import RedisConnection
from polyroute.state.redis_retry import RedisRetryBudget
from polyroute.state.redis_stats import RedisLiveStats
from polyroute.state.redis_sync import StateSync
from polyroute.testing import FakeClock
from tests.scaleout.conftest import Connect
from tests.support import free_port

DEPLOYMENTS = ["x", "y"]


async def test_an_ejection_in_one_process_holds_in_the_other(connect: Connect) -> None:
    """Shared verdicts run on Redis's clock, so this test runs on real time (short
    ejections) rather than on a virtual clock."""
    config = BreakerConfig(consecutive_failures=3, base_ejection=0.5)
    conn_a, conn_b = await connect(), await connect()
    a = RedisBreakers(config, MonotonicClock(), conn_a, DEPLOYMENTS)
    b = RedisBreakers(config, MonotonicClock(), conn_b, DEPLOYMENTS)
    for _ in range(3):
        a.record_failure("x")
    assert a.status("x").state == "open"
    assert b.status("x").state == "closed"
    await a.sync(conn_a)
    await b.sync(conn_b)
    seen = b.status("x")
    assert seen.state == "open"
    assert 0.3 < seen.retry_in <= 0.5
    assert "3 consecutive failures" in seen.reason
    assert not b.acquire("x")
    assert b.status("y").state == "closed"
    # after the ejection both may probe; A's probe succeeds and B learns it at the next round
    await asyncio.sleep(0.55)
    assert b.status("x").state == "half_open"
    assert a.acquire("x")
    a.record_success("x")
    await a.sync(conn_a)
    await b.sync(conn_b)
    assert b.status("x").state == "closed"
    assert b.adopted == 2


async def test_a_429_cooldown_is_shared(connect: Connect) -> None:
    conn_a, conn_b = await connect(), await connect()
    a = RedisBreakers(BreakerConfig(), FakeClock(), conn_a, DEPLOYMENTS)
    b = RedisBreakers(BreakerConfig(), FakeClock(), conn_b, DEPLOYMENTS)
    a.record_rate_limited("y", 10.0)
    await a.sync(conn_a)
    await b.sync(conn_b)
    assert b.status("y").state == "open"
    assert not b.acquire("y")


async def test_live_statistics_merge_every_process(connect: Connect) -> None:
    config = StatsConfig(ewma_alpha=0.5, error_window=60)
    clock = FakeClock()
    conn_a, conn_b = await connect(), await connect()
    a = RedisLiveStats(config, clock, conn_a, DEPLOYMENTS, 0.2)
    b = RedisLiveStats(config, clock, conn_b, DEPLOYMENTS, 0.2)
    for _ in range(10):
        a.finished("x", ok=True, latency=0.1)
        b.finished("x", ok=False)
    for _ in range(3):
        a.started("x")
    b.started("x")
    await a.sync(conn_a)
    await b.sync(conn_b)
    await a.sync(conn_a)
    for stats in (a, b):
        merged = stats.get("x")
        assert merged.samples == 20
        assert merged.error_rate == pytest.approx(0.5)
        assert merged.latency == pytest.approx(0.1)
        assert merged.in_flight == 4  # every process's attempts in flight
    assert a.in_flight("x") == 3  # the executor's cap stays per process
    assert b.in_flight("x") == 1
    # a stale view (no sync for 5 intervals) is not trusted: own figures only
    clock.advance(1.1)
    assert a.get("x").samples == 10
    assert a.get("x").error_rate == 0.0


async def test_the_retry_budget_counts_every_process(connect: Connect) -> None:
    config = RetryBudgetConfig(ratio=0.5, min_per_second=0, window=10)
    clock = FakeClock()
    conn_a, conn_b = await connect(), await connect()
    a = RedisRetryBudget(config, clock, conn_a, 0.2)
    b = RedisRetryBudget(config, clock, conn_b, 0.2)
    for _ in range(10):
        a.record_request()
    await a.sync(conn_a)
    await b.sync(conn_b)
    # B saw no request itself, but the gateway's 10 allow 5 retries, wherever they happen
    assert [b.try_spend() for _ in range(6)] == [True] * 5 + [False]
    await b.sync(conn_b)
    await a.sync(conn_a)
    assert not a.try_spend()


async def test_sync_without_redis_keeps_local_state(connect: Connect) -> None:
    conn: RedisConnection = await connect(url=f"redis://127.0.0.1:{free_port()}/0")
    assert not conn.available
    clock = FakeClock()
    stats = RedisLiveStats(StatsConfig(), clock, conn, DEPLOYMENTS, 0.2)
    budget = RedisRetryBudget(RetryBudgetConfig(ratio=0, min_per_second=0.2), clock, conn, 0.2)
    sync = StateSync(conn, [stats, budget], 0.2)
    stats.finished("x", ok=True, latency=0.3)
    await sync.sync_once()
    assert sync.rounds == 0
    assert stats.get("x").latency == pytest.approx(0.3)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]  # floor 0.2 x 10 s
