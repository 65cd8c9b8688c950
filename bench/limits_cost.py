"""What rate limits and budgets add to a request, on the memory and on the Redis backend.

Two measurements:

``inproc`` (default): the limits service alone, in this process. One request's admission
(key rpm + tpm + max_parallel + daily budget, and a global rpm: 5 checks in one Lua script
on Redis) and its settlement, timed per request (wall µs: p50, p99) and as CPU per request
over the whole run, sequentially and with 32 requests at once.

``http``: whole requests through a `polyroute serve` process in front of an `instant`
simulator, for three configs (no limits, memory limits, Redis limits): client-side
latency p50/p99 and the gateway process's CPU time per request (from /proc), rounds
interleaved so that a noisy neighbour hits every variant alike.

    .venv/bin/python bench/limits_cost.py                 # inproc, Redis at 127.0.0.1:6379
    .venv/bin/python bench/limits_cost.py http --requests 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "sk-bench-limits-000000001"
LIMITS = f"""
keys:
  - {{id: bench, key: "{KEY}", rpm: 100000000, tpm: 1000000000, max_parallel: 100000,
     budget: 1000000000, budget_period: day}}
limits:
  global: {{rpm: 100000000}}
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def state_section(backend: str, prefix: str) -> str:
    if backend == "redis":
        return f"state: {{backend: redis, redis_url: '{REDIS_URL}', key_prefix: {prefix}}}\n"
    return "state: {backend: memory}\n"


# -- in-process ------------------------------------------------------------------------


async def inproc(requests: int) -> None:
    print(f"in-process: {requests} requests per run; Redis at {REDIS_URL}")
    print(f"{'backend':8} {'mode':13} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/req':>11} {'req/s':>8}")
    for backend in ("memory", "redis"):
        await measure(backend, requests)


async def measure(backend: str, requests: int) -> None:
    from polyroute.clock import MonotonicClock
    from polyroute.config.loader import parse_config
    from polyroute.context import Caller, KeyLimits, RequestContext
    from polyroute.kinds import EndpointKind
    from polyroute.limits.service import Limits
    from polyroute.routing.build import build_router
    from polyroute.routing.runtime import Runtime
    from polyroute.state.backend import build_state, slot_lease

    prefix = f"bench-limits-{os.urandom(3).hex()}"
    models = "models:\n  - {name: m, provider: simulator, profile: instant}\n"
    config = parse_config(state_section(backend, prefix) + models + LIMITS)
    clock = MonotonicClock()
    state = build_state(config, clock)
    router = build_router(config, Runtime(state.breakers, state.stats, clock))
    limits = Limits.from_config(
        config, state.limiter, set(router.policies), lease=slot_lease(config)
    )
    key = config.keys[0]
    caller = Caller(
        key_id=key.id,
        limits=KeyLimits(key.rpm, key.tpm, key.max_parallel, key.budget, key.budget_period),
    )
    await state.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hello " * 20}]}

    async def one(i: int) -> float:
        ctx = RequestContext(
            request_id=f"r{i}", kind=EndpointKind.CHAT, model="m", body=body, caller=caller
        )
        decision = router.decide(ctx)
        started = time.perf_counter()
        ticket = await limits.admit(ctx, decision)
        assert ticket is not None
        limits.finish(ticket)
        return time.perf_counter() - started

    try:
        for _ in range(200):  # warm-up: connections, script load, caches
            await one(0)
        await limits.aclose()
        for mode, width in (("sequential", 1), ("32 at once", 32)):
            times: list[float] = []
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for start in range(0, requests, width):
                batch = range(start, min(requests, start + width))
                times += await asyncio.gather(*(one(i) for i in batch))
            await limits.aclose()  # settlements finish inside the measured run
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            print(
                f"{backend:8} {mode:13} {percentile(times, 0.5) * 1e6:8.1f} "
                f"{percentile(times, 0.99) * 1e6:8.1f} {cpu / requests * 1e6:11.1f} "
                f"{requests / wall:8.0f}"
            )
        fallbacks = state.snapshot().get("fallbacks", 0)
        if fallbacks:
            print(f"  ({backend}: {fallbacks} decisions fell back to local state)")
    finally:
        await state.aclose()
        if backend == "redis":
            await drop(prefix)


async def drop(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# -- through a gateway process -----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(args: list[str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    import urllib.request

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "polyroute", *args], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready, timeout=1) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(log.read_text())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(url: str, requests: int, concurrency: int) -> list[float]:
    import aiohttp

    body = {"model": "m", "messages": [{"role": "user", "content": "hello " * 20}]}
    headers = {"authorization": f"Bearer {KEY}"}
    times: list[float] = []
    left = iter(range(requests))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for _ in left:
                started = time.perf_counter()
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def http(requests: int, rounds: int, concurrency: int, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    sim_port = free_port()
    sim = start(
        ["simulate", "--port", str(sim_port), "--profile", "instant"],
        f"http://127.0.0.1:{sim_port}/v1/models",
        workdir / "sim.log",
    )
    prefix = f"bench-limits-{os.urandom(3).hex()}"
    base = f"models:\n  - {{name: m, base_url: 'http://127.0.0.1:{sim_port}/v1'}}\n"
    base += "records: {enabled: false}\n" if _has_section("records") else ""
    variants = {
        "no limits": state_section("memory", prefix) + base,
        "memory": state_section("memory", prefix) + base + LIMITS,
        "redis": state_section("redis", prefix) + base + LIMITS,
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    try:
        for _ in range(rounds):
            for name, text in variants.items():
                port = free_port()
                path = workdir / f"{name.replace(' ', '-')}.yaml"
                path.write_text(text)
                gateway = start(
                    ["serve", "-c", str(path), "--port", str(port)],
                    f"http://127.0.0.1:{port}/readyz",
                    workdir / f"{path.stem}.log",
                )
                try:
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    asyncio.run(load(url, 300, concurrency))  # warm-up
                    cpu0 = cpu_seconds(gateway.pid)
                    times = asyncio.run(load(url, requests, concurrency))
                    cpu = cpu_seconds(gateway.pid) - cpu0
                finally:
                    gateway.terminate()
                    gateway.wait(timeout=15)
                results[name].append(
                    (percentile(times, 0.5), percentile(times, 0.99), cpu / requests)
                )
    finally:
        sim.terminate()
        sim.wait(timeout=15)
        asyncio.run(drop(prefix))
    print(
        f"through `polyroute serve`: {requests} requests x {rounds} rounds, {concurrency} at once"
    )
    print(
        f"{'variant':10} {'p50 ms':>7} {'p99 ms':>7} {'gateway CPU µs/req':>19}  (median of rounds)"
    )
    for name, rows in results.items():
        p50 = statistics.median(r[0] for r in rows) * 1e3
        p99 = statistics.median(r[1] for r in rows) * 1e3
        cpu = statistics.median(r[2] for r in rows) * 1e6
        print(f"{name:10} {p50:7.2f} {p99:7.2f} {cpu:19.0f}")


def _has_section(name: str) -> bool:
    from polyroute.config.schema import GatewayConfig

    return name in GatewayConfig.model_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["inproc", "http"], default="inproc")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/polyroute-limits-bench"))
    args: Any = parser.parse_args()
    if args.mode == "inproc":
        asyncio.run(inproc(args.requests or 5000))
    else:
        http(args.requests or 3000, args.rounds, args.concurrency, args.workdir)


if __name__ == "__main__":
    main()
