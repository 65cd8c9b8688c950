"""RecordWriter: the outcome observer that makes every finished request a database row
without the request ever waiting for the database.

`observe` turns the Outcome into a row and appends it to a bounded queue (a deque: no lock,
no await). A background task writes the queue in batches of `batch_size` rows, as soon as
a batch is full or every `flush_interval` seconds. When the queue is full, new records are
dropped and counted (`dropped`), with a warning at most every 10 s; `lag` is the age of the
oldest record not yet written, warned about when it passes 10 flush intervals. A database
that is down or locked is retried with backoff (records keep queueing meanwhile); a batch
the database refuses (a bad value) is retried row by row, and only the refused rows are lost
(`failed`). `close` writes everything that is queued (graceful shutdown loses nothing unless
the database stays unreachable past `shutdown_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import suppress
from typing import Any

from polyroute.outcomes import Feedback, Outcome
from polyroute.records.db import Database, describe, is_transient
from polyroute.records.rows import RawRow, Row, prepare, raw_of, sqlite_batches
from polyroute.records.tables import requests

log = logging.getLogger("polyroute.records")
_WARN_EVERY = 10.0


class RecordWriter:
    """Bounded queue + batch writer for request records."""

    def __init__(
        self,
        db: Database,
        *,
        queue_size: int = 20_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self.db = db
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.shutdown_timeout = shutdown_timeout
        self._queue: deque[tuple[float, Row | RawRow]] = deque()
        self._batch: list[tuple[float, Row | RawRow]] = []  # being written now
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._warned = {"drop": -_WARN_EVERY, "lag": -_WARN_EVERY, "error": -_WARN_EVERY}
        self._dropped_since_warning = 0
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.batches = 0
        self.retries = 0

    # -- the request path: never awaits ---------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        self.enqueue(raw_of(outcome))

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None

    def enqueue(self, row: Row | RawRow) -> bool:
        """Queue `row`; False (and counted as dropped) when the queue is full or closed."""
        queue = self._queue
        if len(queue) >= self.queue_size or self._closing:
            self.dropped += 1
            self._dropped_since_warning += 1
            self._warn_dropped()
            return False
        queue.append((time.monotonic(), row))
        if len(queue) >= self.batch_size:
            self._wake.set()
        return True

    # -- figures for metrics ---------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Records not yet written (the queue and the batch being written)."""
        return len(self._queue) + len(self._batch)

    @property
    def lag(self) -> float:
        """Seconds the oldest unwritten record has waited (0 when none waits)."""
        oldest = self._batch[0][0] if self._batch else self._queue[0][0] if self._queue else None
        return 0.0 if oldest is None else time.monotonic() - oldest

    def stats(self) -> dict[str, float | int]:
        return {
            "queued": self.queued,
            "lag_seconds": round(self.lag, 3),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "batches": self.batches,
            "retries": self.retries,
        }

    # -- the background task ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="polyroute-record-writer"
            )

    async def flush(self) -> None:
        """Write everything queued now (the admin usage report calls this first)."""
        async with self._lock:
            await self._drain()

    async def close(self) -> None:
        """Stop taking records and write the queue; what cannot be written within
        `shutdown_timeout` is counted as dropped and logged."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                if task is not None:
                    await task
                else:
                    await self.flush()
        except TimeoutError:
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        lost = self.queued
        if lost:
            self.dropped += lost
            log.error(
                "records: %d records could not be written to %s before shutdown",
                lost,
                describe(self.db.url),
            )
        self._queue.clear()
        self._batch = []

    async def _run(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                async with self._lock:
                    await self._drain()
            except Exception:  # a bug of ours: keep the writer alive
                log.exception("records: the writer failed")
            self._warn_lag()
        async with self._lock:
            await self._drain()

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            size = min(self.batch_size, len(queue))
            self._batch = [queue.popleft() for _ in range(size)]
            await self._write([item for _, item in self._batch])
            self._batch = []

    async def _write(self, items: list[Row | RawRow]) -> None:
        # SQLite takes the values straight from the raw rows; other databases take
        # SQLAlchemy's insert of the prepared rows
        sqlite = self.db.engine.dialect.name == "sqlite"
        statements = sqlite_batches(items) if sqlite else []
        rows = [] if sqlite else [prepare(item) for item in items]
        delay = 0.05
        while True:
            try:
                async with self.db.engine.begin() as conn:
                    if sqlite:
                        for statement, values in statements:
                            await conn.exec_driver_sql(statement, values)
                    else:
                        await conn.execute(requests.insert(), rows)
            except Exception as exc:
                if is_transient(exc):
                    self.retries += 1
                    self._warn_error(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                await self._write_each(rows or [prepare(item) for item in items], exc)
                return
            self.written += len(items)
            self.batches += 1
            return

    async def _write_each(self, rows: list[Row], first: Exception) -> None:
        """A batch the database refused: save the rows it accepts, count the others."""
        self._warn_error(first)
        for row in rows:
            try:
                async with self.db.engine.begin() as conn:
                    await conn.execute(requests.insert(), [row])
            except Exception as exc:
                if is_transient(exc):
                    raise
                self.failed += 1
                log.warning(
                    "records: dropped the record of %s: %s", row.get("request_id"), _name(exc)
                )
            else:
                self.written += 1

    # -- warnings, rate-limited -------------------------------------------------------------

    def _due(self, what: str) -> bool:
        now = time.monotonic()
        if now - self._warned[what] < _WARN_EVERY:
            return False
        self._warned[what] = now
        return True

    def _warn_dropped(self) -> None:
        if self._due("drop"):
            log.warning(
                "records: the queue is full (%d waiting): dropped %d records (%d in all); "
                "the database is too slow or down",
                len(self._queue),
                self._dropped_since_warning,
                self.dropped,
            )
            self._dropped_since_warning = 0

    def _warn_lag(self) -> None:
        lag = self.lag
        if lag > 10 * self.flush_interval and self._due("lag"):
            log.warning("records: writing lags %.1f s behind (%d waiting)", lag, self.queued)

    def _warn_error(self, exc: BaseException) -> None:
        if self._due("error"):
            log.warning(
                "records: writing to %s failed (%s); retrying", describe(self.db.url), _name(exc)
            )


def _name(exc: BaseException) -> str:
    """The error's class and the driver's own error class: never its text, which may
    quote values."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__ + (f" ({type(orig).__name__})" if orig is not None else "")
