"""RecordWriter: batches, the drop counter of a full queue, retries, flush on close."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from polyroute.records.db import Database
from polyroute.records.rows import statement_sizes
from polyroute.records.writer import RecordWriter


def row(n: int, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "request_id": f"req_{n}",
        "time": now,
        "day": now.strftime("%Y-%m-%d"),
        "key_id": "k",
        "kind": "chat",
        "model": "m",
        "ok": True,
        "status": 200,
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "cost": 0.5,
    }
    return {**base, **overrides}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    await database.migrate()
    yield database
    await database.aclose()


def count(db: Database) -> int:
    assert db.url.database is not None
    with sqlite3.connect(db.url.database) as conn:
        return int(conn.execute("SELECT count(*) FROM polyroute_requests").fetchone()[0])


async def test_full_queue_drops_counts_and_warns(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue of 3: the 4th and 5th records are dropped, counted and warned about once."""
    writer = RecordWriter(db, queue_size=3, batch_size=10, flush_interval=60)
    with caplog.at_level(logging.WARNING, logger="polyroute.records"):
        accepted = [writer.enqueue(row(n)) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert writer.dropped == 2
    assert writer.queued == 3
    assert writer.lag >= 0
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1  # rate-limited: one warning for the burst
    writer.start()
    await writer.close()
    assert writer.written == 3
    assert count(db) == 3
    assert writer.stats()["dropped"] == 2


async def test_rows_are_written_in_batches_and_flushed_on_close(db: Database) -> None:
    writer = RecordWriter(db, queue_size=100, batch_size=4, flush_interval=60)
    writer.start()
    for n in range(10):
        writer.enqueue(row(n))
    await writer.close()  # long flush_interval: only close writes the tail
    assert (writer.written, writer.batches, writer.queued, writer.dropped) == (10, 3, 0, 0)
    assert count(db) == 10
    assert not writer.enqueue(row(99))  # closed: refused and counted
    assert writer.dropped == 1


async def test_interval_flush_without_full_batch(db: Database) -> None:
    writer = RecordWriter(db, queue_size=100, batch_size=100, flush_interval=0.05)
    writer.start()
    writer.enqueue(row(1))
    for _ in range(100):
        if writer.written:
            break
        await _sleep(0.02)
    assert writer.written == 1
    await writer.close()


async def test_a_refused_row_is_isolated(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """A batch with one row the database refuses (NOT NULL): the others are still written."""
    writer = RecordWriter(db, queue_size=100, batch_size=10, flush_interval=60)
    writer.enqueue(row(1))
    writer.enqueue(row(2, ok=None))
    writer.enqueue(row(3))
    with caplog.at_level(logging.WARNING, logger="polyroute.records"):
        await writer.flush()
    assert (writer.written, writer.failed) == (2, 1)
    assert count(db) == 2
    assert "req_2" in caplog.text
    await writer.close()


class _Flaky:
    """A Database whose first `failures` transactions fail as if the server were down."""

    def __init__(self, db: Database, failures: int) -> None:
        self.db, self.url, self.failures = db, db.url, failures
        self.engine = self
        self.dialect = db.engine.dialect

    def begin(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("INSERT", {}, ConnectionRefusedError("down"))
        return self.db.engine.begin()


async def test_transient_failures_are_retried_not_lost(db: Database) -> None:
    writer = RecordWriter(_Flaky(db, 3), queue_size=100, batch_size=10)  # type: ignore[arg-type]
    for n in range(5):
        writer.enqueue(row(n))
    await writer.flush()
    assert (writer.written, writer.retries, writer.failed) == (5, 3, 0)
    assert count(db) == 5


async def test_close_gives_up_after_shutdown_timeout(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that stays down: close returns after shutdown_timeout, losses counted."""
    flaky = _Flaky(db, 10**9)
    writer = RecordWriter(flaky, batch_size=2, shutdown_timeout=0.3)  # type: ignore[arg-type]
    writer.start()
    for n in range(5):
        writer.enqueue(row(n))
    with caplog.at_level(logging.ERROR, logger="polyroute.records"):
        await writer.close()
    assert writer.dropped == 5
    assert writer.written == 0
    assert "could not be written" in caplog.text


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_sqlite_statements_come_in_a_few_sizes() -> None:
    """Every batch length splits into powers of two (each a prepared statement the driver
    keeps): at most nine shapes however the batches vary."""
    shapes: set[int] = set()
    for rows in range(2_000):
        sizes = statement_sizes(rows, 1_365)
        assert sum(sizes) == rows
        shapes.update(sizes)
    assert shapes == {1, 2, 4, 8, 16, 32, 64, 128, 256}
    assert statement_sizes(100, 41) == [32, 32, 32, 4]  # SQLite before 3.32: 999 values


def test_raw_rows_give_sqlite_the_values_of_their_prepared_rows() -> None:
    """The SQLite path's shortcut from an outcome's raw row to bound values agrees with
    the dict `prepare` makes (and the generic dict path): the same columns and values,
    NULLs left out, for outcomes with and without usage, stream and error figures."""
    from polyroute.outcomes import Usage
    from polyroute.records.rows import _raw_values, _row_values, prepare, raw_of
    from tests.observability.helpers import offline_gateway, outcome

    gateway = offline_gateway()
    cases = [
        outcome(gateway),
        outcome(gateway, ok=False, status=502, error_type="upstream_error", usage=None),
        outcome(gateway, ttft=0.0123456, usage=Usage(7, 3, cached_tokens=2, estimated=True)),
        outcome(gateway, routed=False, user="end-user\x00x", latency=1.5),
    ]
    for case in cases:
        raw = raw_of(case)
        names, values = _raw_values(raw)
        assert (names, values) == _row_values(prepare(raw))
        row = dict(zip(names, values, strict=True))
        assert row["day"] == row["time"][:10]
        assert len(row["time"]) == len("2026-11-26 14:00:00.000000")
        assert None not in values
    assert "estimated" in _raw_values(raw_of(cases[2]))[0]
    assert "completion_tokens" not in _raw_values(raw_of(cases[1]))[0]
