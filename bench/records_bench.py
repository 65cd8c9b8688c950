"""What records and keys cost: writer throughput into SQLite and PostgreSQL, the request
path's share (one observe = build a row + append), and authentication per request.

    .venv/bin/python bench/records_bench.py [--pg postgresql+asyncpg://postgres@127.0.0.1/DB]

Writer: 50,000 rows enqueued at once, then timed until all are written (batches of 500).
The PostgreSQL figure needs an existing, empty database (the tables are created).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from polyroute.api.auth import KeyStore, hash_key
from polyroute.config import parse_config
from polyroute.config.schema import KeyConfig, KeySettings
from polyroute.context import RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Outcome, Usage
from polyroute.records.db import Database
from polyroute.records.keys import KeyRepository
from polyroute.records.rows import row_of
from polyroute.records.writer import RecordWriter

CONFIG = (
    "models:\n  - {name: m, provider: simulator, profile: instant}\nrecords: {enabled: false}\n"
)
ROWS = 50_000


def outcome() -> Outcome:
    gateway = Gateway.from_config(parse_config(CONFIG))
    ctx = RequestContext(
        request_id="req_" + "0" * 24,
        kind=EndpointKind.CHAT,
        model="m",
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    decision = gateway.router.decide(ctx)
    return Outcome(
        ctx,
        decision,
        decision.plan[0],
        ok=True,
        status=200,
        latency=0.012,
        attempts=1,
        usage=Usage(12, 30),
        cost=0.0001,
    )


def median_ns(fn: object, n: int = 100_000, runs: int = 5) -> float:
    results = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        for _ in range(n):
            fn()  # type: ignore[operator]
        results.append((time.perf_counter_ns() - started) / n)
    return statistics.median(results)


async def writer_throughput(url: str) -> float:
    db = Database(url)
    await db.migrate()
    writer = RecordWriter(db, queue_size=ROWS, batch_size=500, flush_interval=0.05)
    row = row_of(outcome())
    for n in range(ROWS):
        writer.enqueue({**row, "request_id": f"req_{n}"})
    started = time.perf_counter()
    await writer.flush()
    elapsed = time.perf_counter() - started
    await writer.close()
    await db.aclose()
    assert writer.written == ROWS, writer.stats()
    return ROWS / elapsed


async def auth_cost(tmp: Path) -> dict[str, float]:
    config_store = KeyStore([KeyConfig(id="c", key="sk-config-key-000001")])  # type: ignore[arg-type]
    db = Database(f"sqlite+aiosqlite:///{tmp / 'keys.db'}")
    await db.migrate()
    repo = KeyRepository(db)
    for n in range(1000):
        plain = f"sk-pr-virtual-key-{n:06d}-xxxxxxxxxxxxxxxxxxxx"
        await repo.create(f"k{n}", hash_key(plain).hex(), None, KeySettings(team="t"))
    db_store = KeyStore([], repo, refresh=3600)
    await db_store.start()
    results = {}
    callers = {hash_key("sk-config-key-000001"): "caller"}

    def before() -> object:  # the synchronous check this replaces: parse, hash, look up
        scheme, _, token = "Bearer sk-config-key-000001".partition(" ")
        return scheme.lower() == "bearer" and callers.get(hash_key(token.strip()))

    results["sync hash + lookup (before)"] = median_ns(before)
    for name, store, header in (
        ("config key", config_store, "Bearer sk-config-key-000001"),
        (
            "virtual key (1,000 stored)",
            db_store,
            "Bearer sk-pr-virtual-key-000500-xxxxxxxxxxxxxxxxxxxx",
        ),
    ):
        runs = []
        for _ in range(5):
            started = time.perf_counter_ns()
            for _ in range(100_000):
                await store.authenticate(header)
            runs.append((time.perf_counter_ns() - started) / 100_000)
        results[name] = statistics.median(runs)
    await db_store.aclose()
    await db.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="an empty PostgreSQL database (postgresql+asyncpg://...)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        done = outcome()
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'observe.db'}")
        writer = RecordWriter(db, queue_size=10**9, batch_size=10**9)
        runs = []
        for _ in range(10):  # 20,000 queued at most, as at 20,000 requests/s: the writer
            writer._queue.clear()  # drains the queue every flush_interval (1 s)
            started = time.perf_counter_ns()
            for _ in range(20_000):
                writer.observe(done)
            runs.append((time.perf_counter_ns() - started) / 20_000)
        print(f"observe (tuple + enqueue): {statistics.median(runs):.0f} ns")
        print(f"row_of (the row, built by the writer): {median_ns(lambda: row_of(done)):.0f} ns")
        await db.aclose()
        for name, ns in (await auth_cost(Path(tmp))).items():
            print(f"authenticate, {name}: {ns:.0f} ns")
        rate = await writer_throughput(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        print(f"writer, SQLite: {rate:,.0f} rows/s")
    if args.pg:
        print(f"writer, PostgreSQL: {await writer_throughput(args.pg):,.0f} rows/s")


if __name__ == "__main__":
    asyncio.run(main())
