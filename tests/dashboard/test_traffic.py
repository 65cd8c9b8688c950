"""The dashboard's traffic observer: windows, percentiles, series, traced requests."""

from __future__ import annotations

from typing import Any

import pytest

from polyroute.clock import FakeClock
from polyroute.config.schema import GatewayConfig
from polyroute.context import Caller, RequestContext
from polyroute.dashboard.traffic import (
    HISTORY,
    STEP,
    TRACE_HEADER,
    UNROUTED,
    Traffic,
    bin_value,
    latency_bin,
)
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Outcome, Usage

CONFIG = {
    "records": {"enabled": False},  # nothing written next to the working directory
    "models": [
        {"name": "a", "provider": "simulator", "profile": "instant"},
        {"name": "b", "provider": "simulator", "profile": "instant"},
    ],
    "routes": {
        "only-a": {"strategy": "single", "target": "a"},
        "only-b": {"strategy": "single", "target": "b"},
    },
}


@pytest.fixture(scope="module")
def gateway() -> Gateway:
    return Gateway.from_config(GatewayConfig.model_validate(CONFIG))


def outcome(
    gateway: Gateway,
    route: str | None,
    *,
    ok: bool = True,
    latency: float = 0.1,
    usage: Usage | None = None,
    cost: float | None = None,
    headers: dict[str, str] | None = None,
    caller: Caller | None = None,
    request_id: str = "req_1",
) -> Outcome:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    if route is not None:
        body["model"] = route
    ctx = RequestContext(
        request_id=request_id,
        kind=EndpointKind.CHAT,
        model=route or "",
        body=body,
        caller=caller or Caller(),
        headers=headers or {},
    )
    decision = gateway.router.decide(ctx) if route is not None else None
    return Outcome(
        ctx,
        decision,
        decision.deployment if decision is not None else None,
        ok=ok,
        status=200 if ok else 502,
        latency=latency,
        attempts=1,
        usage=usage,
        cost=cost,
    )


def test_latency_bins_are_within_three_percent() -> None:
    for ms in (0.5, 3.0, 17.0, 99.0, 250.0, 1234.0, 60000.0):
        assert bin_value(latency_bin(ms)) == pytest.approx(ms, rel=0.03)


def test_window_figures_per_route_and_deployment(gateway: Gateway) -> None:
    clock = FakeClock()
    traffic = Traffic(clock)
    for i in range(100):  # 100 successes of 1..100 ms over 10 s, to only-a
        traffic.observe(
            outcome(gateway, "only-a", latency=(i + 1) / 1000, usage=Usage(10, 20), cost=0.001)
        )
        if i % 10 == 9:
            clock.advance(1.0)
    for _ in range(5):
        traffic.observe(outcome(gateway, "only-b", ok=False))
    traffic.observe(outcome(gateway, None, ok=False))  # refused before routing

    data = traffic.snapshot()
    total = data["total"]
    assert total["requests_1m"] == 106
    assert total["errors_1m"] == 6
    assert total["error_rate"] == pytest.approx(6 / 106, abs=1e-4)
    assert total["qps"] == pytest.approx(106 / 10, rel=0.01)  # 10 s of uptime so far
    assert total["p50_ms"] == pytest.approx(50, rel=0.06)
    assert total["p99_ms"] == pytest.approx(99, rel=0.06)
    assert total["tokens_in_1m"] == 1000
    assert total["tokens_out_1m"] == 2000
    assert total["cost_1m"] == pytest.approx(0.1)

    a = data["deployments"]["a"]
    assert a["requests_1m"] == 100
    assert a["error_rate"] == 0
    b = data["deployments"]["b"]
    assert b["error_rate"] == 1
    assert b["p50_ms"] is None  # no successful request: no latency
    assert data["routes"]["only-a"]["decisions_1m"] == {"a": 100}
    assert data["routes"]["only-b"]["decisions_1m"] == {"b": 5}
    assert data["routes"][UNROUTED]["requests_1m"] == 1
    assert "decisions_1m" not in data["routes"][UNROUTED]


def test_old_traffic_leaves_the_window_but_not_the_totals(gateway: Gateway) -> None:
    clock = FakeClock()
    traffic = Traffic(clock)
    for _ in range(30):
        traffic.observe(outcome(gateway, "only-a", usage=Usage(1, 2), cost=0.5))
    clock.advance(61)
    data = traffic.snapshot()
    a = data["deployments"]["a"]
    assert a["requests_1m"] == 0
    assert a["qps"] == 0
    assert a["p50_ms"] is None
    assert a["totals"] == {
        "requests": 30,
        "errors": 0,
        "tokens_in": 30,
        "tokens_out": 60,
        "cost": 15.0,
    }
    # the chart still shows them, about a minute ago
    series = a["series"]
    assert len(series["t"]) == HISTORY // STEP
    assert series["t"][-1] == 0
    assert sum(series["qps"]) * STEP == pytest.approx(30)
    clock.advance(HISTORY)  # ... until they are older than the charts' span
    assert sum(traffic.snapshot()["deployments"]["a"]["series"]["qps"]) == 0


def test_ring_reuses_buckets_without_mixing_seconds(gateway: Gateway) -> None:
    clock = FakeClock()
    traffic = Traffic(clock)
    traffic.observe(outcome(gateway, "only-a"))
    clock.advance(HISTORY)  # the same place in the ring, a later bucket
    traffic.observe(outcome(gateway, "only-a"))
    clock.advance(STEP)  # that bucket is complete: on the chart
    data = traffic.snapshot()
    assert data["deployments"]["a"]["requests_1m"] == 1
    assert sum(data["deployments"]["a"]["series"]["qps"]) * STEP == pytest.approx(1)
    assert data["total"]["totals"]["requests"] == 2


def test_merged_views_keep_only_the_newest_turn_of_the_ring(gateway: Gateway) -> None:
    """Recording keeps one series per route and deployment; the total merges them when read,
    and a part whose bucket at a ring position is a turn older than another's is left out
    there (it is history the charts no longer span)."""
    clock = FakeClock()
    traffic = Traffic(clock)
    traffic.observe(outcome(gateway, "only-a"))  # slot 0 of route only-a
    clock.advance(HISTORY)  # the same ring position, one turn later
    for _ in range(3):
        traffic.observe(outcome(gateway, "only-b"))
    data = traffic.snapshot()
    assert data["total"]["requests_1m"] == 3
    assert data["total"]["totals"]["requests"] == 4
    assert data["routes"]["only-b"]["decisions_1m"] == {"b": 3}
    assert data["routes"]["only-a"]["totals"]["requests"] == 1
    assert data["routes"]["only-a"]["requests_1m"] == 0


def test_chart_points_are_complete_buckets(gateway: Gateway) -> None:
    clock = FakeClock(1000.0)  # a bucket boundary: 1000 = 200 x STEP
    traffic = Traffic(clock)
    for _ in range(10):  # the bucket 1000..1005
        traffic.observe(outcome(gateway, "only-a", latency=0.2))
    clock.advance(STEP + 2)  # 1007: the bucket 1005..1010 has begun, not complete yet
    traffic.observe(outcome(gateway, "only-a", ok=False))
    data = traffic.snapshot()
    series = data["total"]["series"]
    assert series["t"][-1] == 0
    assert series["qps"][-1] == pytest.approx(10 / STEP)
    assert series["p50_ms"][-1] == pytest.approx(200, rel=0.03)
    assert series["error_rate"][-1] == 0
    assert series["qps"][-2] == 0
    assert series["error_rate"][-2] is None
    assert data["total"]["requests_1m"] == 11  # the window includes the current bucket
    assert data["total"]["qps"] == pytest.approx(11 / 7, abs=1e-3)  # over 7 s of uptime


def test_qps_is_exact_for_a_steady_load(gateway: Gateway) -> None:
    clock = FakeClock(1000.0)
    traffic = Traffic(clock)
    for _ in range(200):  # one request a second; the snapshot at 200.5 s, mid-bucket
        traffic.observe(outcome(gateway, "only-a"))
        clock.advance(1.0)
    clock.advance(0.5)
    traffic.observe(outcome(gateway, "only-a"))
    total = traffic.snapshot()["total"]
    assert total["requests_1m"] == 56  # 55.5 s of buckets: 1 a second, and the one just now
    assert total["qps"] == pytest.approx(1.0, rel=0.02)
    assert total["series"]["qps"][-1] == pytest.approx(1.0)


def test_snapshot_is_computed_once_a_second(gateway: Gateway) -> None:
    clock = FakeClock()
    traffic = Traffic(clock)
    first = traffic.snapshot()
    traffic.observe(outcome(gateway, "only-a"))
    assert traffic.snapshot() is first
    clock.advance(1)
    assert traffic.snapshot()["total"]["requests_1m"] == 1


def test_traced_requests_are_kept_for_the_key_that_sent_them(gateway: Gateway) -> None:
    traffic = Traffic(FakeClock())
    alice = Caller(key_id="alice")
    traffic.observe(outcome(gateway, "only-a", caller=alice, request_id="req_plain"))
    traffic.observe(
        outcome(
            gateway,
            "only-a",
            caller=alice,
            request_id="req_play",
            headers={TRACE_HEADER: "1"},
            usage=Usage(3, 4),
            cost=0.25,
            latency=0.0425,
        )
    )
    assert traffic.traced("req_plain", "alice") is None  # not a playground request
    assert traffic.traced("req_play", "bob") is None
    assert traffic.traced("req_play", None) is None
    summary = traffic.traced("req_play", "alice")
    assert summary is not None
    assert summary["deployment"] == "a"
    assert summary["strategy"] == "single"
    assert summary["latency_ms"] == 42.5
    assert summary["cost_usd"] == 0.25
    assert summary["usage"]["completion_tokens"] == 4
