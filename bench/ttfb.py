"""Streaming time to first byte: the mock upstream directly, the bench's thin reference proxy,
and polyroute, under the same concurrent streaming load.

    .venv/bin/python bench/ttfb.py [--config bench/overhead-full.yaml] [--conns 32]
        [--duration 15] [--delay-ms 50] [--chunks 5] [--chunk-delay-ms 20]

wrk reports when a whole answer has arrived; this measures when its first byte did. The
mock (`../shared/bench/mock_upstream.py`, run with the bench's own virtualenv from
`../shared/bench/setup.sh`) waits `--delay-ms` before the first event and
`--chunk-delay-ms` between events, so the first byte and the end are far apart. Each target
gets `--conns` streams at once for `--duration` seconds (after 3 s of warm-up); the gateway
and the reference are pinned to CPU 1, the mock and this client to CPU 0 (as in
overhead.sh). Prints p50/p90/p99 of the time to the first body byte and the overhead over
the direct figure; the client is an aiohttp session in this process (light: about 250
streams a second at the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"
BENCH_HOME = Path(os.environ.get("POLYROUTE_BENCH_HOME", Path.home() / ".cache/polyroute-bench"))
BENCH_PYTHON = BENCH_HOME / ".venv-bench" / "bin" / "python"
MOCK_PORT, REFERENCE_PORT, GATEWAY_PORT = 18100, 18101, 18102
KEY = "sk-bench-overhead-key-0001"
BODY = (
    b'{"model":"mock-gpt","messages":[{"role":"system","content":"You are a helpful '
    b'assistant."},{"role":"user","content":"Say hello in one short sentence."}],'
    b'"max_tokens":64,"temperature":0,"stream":true}'
)


def pinned(cpus: str, command: list[str]) -> list[str]:
    return (["taskset", "-c", cpus] if shutil.which("taskset") else []) + command


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


async def wait_ready(url: str, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {patience:g}s")


async def load(url: str, conns: int, seconds: float, headers: dict[str, str]) -> list[float]:
    """Seconds to the first body byte of every stream finished within `seconds`."""
    samples: list[float] = []
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                    first = await response.content.readany()
                    ttfb = time.perf_counter() - started
                    if not first:
                        raise RuntimeError(f"{url}: empty stream")
                    while await response.content.readany():
                        pass
                samples.append(ttfb)

        await asyncio.gather(*(worker() for _ in range(conns)))
    return samples


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(name: str, url: str, args: argparse.Namespace) -> dict[float, float]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    await load(url, args.conns, 3.0, headers)  # warm-up: pools, caches
    samples = await load(url, args.conns, args.duration, headers)
    figures = {q: quantile(samples, q) * 1000 for q in (0.5, 0.9, 0.99)}
    print(
        f"{name:<10} {len(samples):7d} streams  p50 {figures[0.5]:7.2f}  "
        f"p90 {figures[0.9]:7.2f}  p99 {figures[0.99]:7.2f} ms",
        flush=True,
    )
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "bench/overhead-full.yaml"))
    parser.add_argument(
        "--polyroute",
        default=str(ROOT / ".venv/bin/polyroute"),
        help="the console script to serve with (.venv-release/bin/polyroute: the compiled build)",
    )
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--chunk-delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    if not BENCH_PYTHON.exists():
        sys.exit(f"{BENCH_PYTHON} is missing: run ../shared/bench/setup.sh first")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # the client shares CPU 0 with the mock
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "polyroute-ttfb"
    logs.mkdir(exist_ok=True)
    upstream = f"http://127.0.0.1:{MOCK_PORT}/v1"
    env = {**os.environ, "UPSTREAM_URL": upstream, "POLYROUTE_BENCH_DB": "sqlite+aiosqlite:///"}
    env["POLYROUTE_BENCH_DB"] += str(logs / "records.db")
    mock = [
        str(BENCH_PYTHON),
        str(SHARED_BENCH / "mock_upstream.py"),
        "--port",
        str(MOCK_PORT),
        "--delay-ms",
        str(args.delay_ms),
        "--chunks",
        str(args.chunks),
        "--chunk-delay-ms",
        str(args.chunk_delay_ms),
    ]
    reference = [str(BENCH_PYTHON), str(SHARED_BENCH / "null_gateway/null_proxy_aiohttp.py")]
    gateway = [args.polyroute, "serve", "-c", args.config]
    gateway += ["--port", str(GATEWAY_PORT)]
    print(
        f"{args.conns} streams at once, {args.duration:g} s per target; upstream: first event "
        f"after {args.delay_ms:g} ms, {args.chunks} events {args.chunk_delay_ms:g} ms apart"
    )
    chat = "/v1/chat/completions"
    with process(pinned("0", mock), env, logs / "mock.log"):
        await wait_ready(upstream + "/models")
        direct = await measure("direct", upstream.removesuffix("/v1") + chat, args)
        reference_env = {**env, "GW_PORT": str(REFERENCE_PORT)}
        with process(pinned("1", reference), reference_env, logs / "reference.log"):
            base = f"http://127.0.0.1:{REFERENCE_PORT}"
            await wait_ready(base + "/v1/models")
            null = await measure("reference", base + chat, args)
        with process(pinned("1", gateway), env, logs / "gateway.log"):
            base = f"http://127.0.0.1:{GATEWAY_PORT}"
            await wait_ready(base + "/readyz")
            ours = await measure("polyroute", base + chat, args)
    for name, figures in (("reference", null), ("polyroute", ours)):
        print(
            f"{name} overhead over direct: p50 {figures[0.5] - direct[0.5]:+.2f} ms, "
            f"p99 {figures[0.99] - direct[0.99]:+.2f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
