"""Performance strategies read live statistics that the executor records."""

from __future__ import annotations

import random
from pathlib import Path

import openai

from polyroute.config import parse_config
from polyroute.context import RequestContext
from polyroute.execution.executor import Executor
from polyroute.kinds import EndpointKind
from polyroute.routing.build import build_router
from polyroute.routing.runtime import Runtime
from polyroute.state.memory import MemoryBreakers, MemoryLiveStats, MemoryRetryBudget
from polyroute.testing import FakeClock, ScriptedProvider
from tests.support import gateway, simulator

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def setup(strategy: str, explore: float = 0) -> tuple[Runtime, object, Executor]:
    text = (
        "models:\n  - {name: a, base_url: http://127.0.0.1:9/v1}\n"
        "  - {name: b, base_url: http://127.0.0.1:9/v1}\n"
        "  - {name: c, base_url: http://127.0.0.1:9/v1}\n"
        f"routes:\n  r: {{strategy: {strategy}, targets: [a, b, c], explore: {explore}}}\n"
    )
    config = parse_config(text)
    clock = FakeClock()
    runtime = Runtime(
        MemoryBreakers(config.resilience.breaker, clock),
        MemoryLiveStats(config.stats, clock),
        clock,
    )
    router = build_router(config, runtime)
    executor = Executor(
        {n: ScriptedProvider() for n in "abc"},
        resilience=config.resilience,
        runtime=runtime,
        budget=MemoryRetryBudget(config.resilience.retry_budget, clock),
        rng=random.Random(1),
    )
    return runtime, router, executor


def decide(router: object, stream: bool = False) -> dict[str, object]:
    ctx = RequestContext(
        request_id="t", kind=EndpointKind.CHAT, model="r", body={**BODY, "stream": stream}
    )
    return router.decide(ctx).explain()  # type: ignore[attr-defined, no-any-return]


def test_lowest_latency_prefers_fast_and_measures_unknown_first() -> None:
    """Unmeasured deployments come first; then the lowest EWMA latency wins."""
    runtime, router, _ = setup("lowest_latency")
    runtime.stats.finished("a", ok=True, latency=0.40)
    runtime.stats.finished("b", ok=True, latency=0.10)
    assert decide(router)["deployment"] == "c"
    runtime.stats.finished("c", ok=True, latency=0.25)
    decision = decide(router)
    assert decision["deployment"] == "b"
    assert decision["fallbacks"] == ["c", "a"]
    assert decision["signals"]["r"]["ms"] == {"a": 400.0, "b": 100.0, "c": 250.0}  # type: ignore[index]


def test_lowest_latency_uses_time_to_first_chunk_for_streams() -> None:
    """For a streaming request the metric is time to first chunk."""
    runtime, router, _ = setup("lowest_latency")
    for name, ttft in (("a", 0.05), ("b", 0.3), ("c", 0.2)):
        runtime.stats.finished(name, ok=True, latency=1.0, ttft=ttft)
    decision = decide(router, stream=True)
    assert decision["deployment"] == "a"
    assert decision["signals"]["r"]["metric"] == "ttft"  # type: ignore[index]


def test_ewma_follows_recent_latency() -> None:
    """A deployment that got faster overtakes as its EWMA moves (alpha 0.2)."""
    runtime, router, _ = setup("lowest_latency")
    runtime.stats.finished("a", ok=True, latency=1.0)
    runtime.stats.finished("b", ok=True, latency=0.5)
    runtime.stats.finished("c", ok=True, latency=0.6)
    for _ in range(10):
        runtime.stats.finished("a", ok=True, latency=0.1)
    assert runtime.stats.get("a").latency is not None
    assert decide(router)["deployment"] == "a"


def test_exploration_shuffles_sometimes() -> None:
    """With explore=1 every ranking is a random one, marked as explored."""
    runtime, router, _ = setup("lowest_latency", explore=1)
    for name in "abc":
        runtime.stats.finished(name, ok=True, latency={"a": 0.1, "b": 0.2, "c": 0.3}[name])
    seen = {decide(router)["deployment"] for _ in range(60)}
    assert seen == {"a", "b", "c"}
    assert decide(router)["signals"]["r"]["explored"] is True  # type: ignore[index]


def test_least_busy_and_power_of_two_read_in_flight() -> None:
    """Busy deployments are avoided by least_busy and by power-of-two choices."""
    runtime, router, _ = setup("least_busy")
    for _ in range(3):
        runtime.stats.started("a")
    runtime.stats.started("b")
    assert decide(router)["deployment"] == "c"
    runtime2, router2, _ = setup("power_of_two")
    for _ in range(5):
        runtime2.stats.started("a")
        runtime2.stats.started("b")
    decisions = [decide(router2) for _ in range(30)]
    compared = [d["signals"]["r"]["compared"] for d in decisions]  # type: ignore[index]
    assert any("c" in pair for pair in compared)
    for decision, pair in zip(decisions, compared, strict=True):
        # c (idle) wins whenever it is one of the two compared; otherwise a busy one must
        assert (decision["deployment"] == "c") == ("c" in pair)


async def test_executor_records_outcomes_and_stream_lifetime() -> None:
    """Each attempt updates the statistics; a stream stays in flight until it is closed."""
    runtime, router, executor = setup("least_busy")
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="r", body=dict(BODY))
    decision = router.decide(ctx)  # type: ignore[attr-defined]
    done = await executor.complete(ctx, decision, ctx.body)
    stats = runtime.stats.get(done.deployment.name)
    assert (stats.samples, stats.in_flight) == (1, 0)
    assert stats.latency is not None


def test_lowest_latency_learns_over_http(tmp_path: Path) -> None:
    """Against a fast and a slow simulator, traffic settles on the fast one."""
    slow_profile = tmp_path / "slow.yaml"
    slow_profile.write_text("base: instant\nname: slow\nttft_ms: {median: 150}\n")
    with simulator("instant") as fast, simulator(str(slow_profile)) as slow:
        config = (
            f"models:\n  - {{name: fast, base_url: {fast}}}\n  - {{name: slow, base_url: {slow}}}\n"
            "routes:\n  r: {strategy: lowest_latency, targets: [slow, fast], explore: 0}\n"
        )
        with (
            gateway(config, tmp_path) as url,
            openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client,
        ):
            served = [
                client.chat.completions.with_raw_response.create(
                    model="r", messages=[{"role": "user", "content": "hi"}]
                ).headers["x-polyroute-deployment"]
                for _ in range(8)
            ]
    assert sorted(served[:2]) == ["fast", "slow"]  # both measured first
    assert served[2:] == ["fast"] * 6
