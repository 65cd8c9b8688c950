"""Redis killed and restarted under load: the gateway keeps answering on its own state, at
bounded added latency, warns once, and goes back to Redis when it returns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.scaleout.conftest import RedisServer, gateway_process, unique_prefix
from tests.support import simulator


@dataclass
class Load:
    """Requests sent in a loop by a few workers until stopped."""

    url: str
    results: list[tuple[float, int, float]] = field(default_factory=list)  # (sent, status, s)
    running: bool = True

    async def run(self, workers: int = 8) -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        async with httpx.AsyncClient(timeout=30) as http:

            async def worker() -> None:
                while self.running:
                    sent = time.monotonic()
                    try:
                        response = await http.post(self.url + "/chat/completions", json=body)
                        status = response.status_code
                    except httpx.HTTPError:
                        status = -1
                    self.results.append((sent, status, time.monotonic() - sent))

            await asyncio.gather(*(worker() for _ in range(workers)))

    def between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [r for r in self.results if start <= r[0] < end]


def test_gateway_keeps_answering_while_redis_is_down(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    prefix = unique_prefix("outage")
    with simulator("instant") as sim:
        config = f"""
state:
  backend: redis
  redis_url: {own_redis.url}
  key_prefix: {prefix}
  retry_interval: 0.3
limits:
  global: {{rpm: 1000000, tpm: 100000000}}
models:
  - {{name: m, base_url: {sim}}}
"""
        with gateway_process(config, tmp_path) as gateway:
            client = own_redis.client()
            marker = f"{prefix}:limit:rq:global"

            async def scenario() -> dict[str, float]:
                load = Load(gateway.url)
                task = asyncio.ensure_future(load.run())
                await asyncio.sleep(1.0)
                assert client.exists(marker)  # limits were decided on Redis
                killed = time.monotonic()
                own_redis.kill()
                await asyncio.sleep(1.5)
                own_redis.start()  # a fresh, empty Redis on the same port
                restarted = time.monotonic()
                recovered = None
                while time.monotonic() - restarted < 10:
                    if client.exists(marker):  # written by an admission after recovery
                        recovered = time.monotonic()
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                load.running = False
                await task
                assert recovered is not None, "the gateway did not go back to Redis"
                during = load.between(killed, restarted)
                assert during, "no request was sent while Redis was down"
                assert {status for _, status, _ in load.results} == {200}
                return {
                    "requests": len(load.results),
                    "during": len(during),
                    "worst_during": max(seconds for _, _, seconds in during),
                    "recovered_after": recovered - restarted,
                }

            try:
                figures = asyncio.run(scenario())
            finally:
                client.close()
        print(figures)
        assert figures["worst_during"] < 1.0  # bounded: no request waited on a dead Redis
        assert figures["recovered_after"] < 3.0  # the probe runs every 0.3 s
        output = gateway.output()
        assert output.count("Redis unreachable") == 1
        assert output.count("Redis answers again") == 1
