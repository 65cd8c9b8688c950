"""Several gateway processes on one Redis behave as one gateway: one global limit holds
across two instances on different ports, and across the workers of `serve --workers 2`.

The limit is GCRA at `rpm` per minute with a burst of `rpm`: over a run of `t` seconds the
gateway may admit ``rpm + rpm x t / 60`` requests (the burst plus what refills meanwhile),
and must admit at least the burst. Each test sends twice that, concurrently, split across
the processes, and checks the count admitted against it within 1 %.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from pathlib import Path

import httpx
import redis

from tests.scaleout.conftest import SHARED_REDIS, GatewayProcess, gateway_process
from tests.support import simulator

LIMIT = 300
CONCURRENCY = 64


def config(sim: str, prefix: str) -> str:
    return f"""
state: {{backend: redis, redis_url: '{SHARED_REDIS}', key_prefix: {prefix}, timeout: 0.25}}
limits:
  global: {{rpm: {LIMIT}}}
models:
  - {{name: m, base_url: {sim}}}
"""


async def hammer(urls: list[str], total: int) -> tuple[list[tuple[str, int]], float]:
    """`total` chat requests from CONCURRENCY workers, round robin over `urls`; returns
    (url, status) per request and the seconds from the first send to the last answer."""
    counter = itertools.count()
    results: list[tuple[str, int]] = []
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def worker() -> None:
            for i in counter:
                if i >= total:
                    return
                url = urls[i % len(urls)]
                response = await http.post(url + "/chat/completions", json=body)
                results.append((url, response.status_code))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return results, time.monotonic() - started


def check_one_limit(results: list[tuple[str, int]], elapsed: float) -> int:
    statuses = Counter(status for _, status in results)
    assert set(statuses) <= {200, 429}, statuses
    admitted = statuses[200]
    allowance = LIMIT + LIMIT * elapsed / 60  # an upper bound: the run measured client-side
    print(f"admitted {admitted} of {len(results)} in {elapsed:.2f}s; allowance {allowance:.1f}")
    assert admitted >= LIMIT
    assert admitted <= allowance + 1
    assert abs(admitted - allowance) <= 0.01 * allowance + 1
    return admitted


def instances(prefix: str) -> int:
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        return int(client.zcard(f"{prefix}:stats:instances"))
    finally:
        client.close()


def no_outage(*gateways: GatewayProcess) -> None:
    for gateway in gateways:
        assert "Redis unreachable" not in gateway.output()


def test_two_instances_share_one_global_limit(tmp_path: Path, prefix: str) -> None:
    with (
        simulator("instant") as sim,
        gateway_process(config(sim, prefix), tmp_path) as first,
        gateway_process(config(sim, prefix), tmp_path) as second,
    ):
        results, elapsed = asyncio.run(hammer([first.url, second.url], 2 * LIMIT))
        check_one_limit(results, elapsed)
        per_gateway = Counter(url for url, status in results if status == 200)
        assert per_gateway[first.url] > LIMIT * 0.3  # both admitted a fair share
        assert per_gateway[second.url] > LIMIT * 0.3
        assert instances(prefix) == 2
        no_outage(first, second)


def test_workers_of_one_serve_share_one_global_limit(tmp_path: Path, prefix: str) -> None:
    with (
        simulator("instant") as sim,
        gateway_process(config(sim, prefix), tmp_path, workers=2) as served,
    ):
        results, elapsed = asyncio.run(hammer([served.url], 2 * LIMIT))
        check_one_limit(results, elapsed)
        assert instances(prefix) == 2  # both workers joined the shared state
        no_outage(served)
