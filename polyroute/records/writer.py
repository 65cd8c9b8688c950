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
import functools
import logging
import sqlite3
import time
from collections import deque
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from polyroute.formatting import zero_padded
from polyroute.outcomes import Feedback, Outcome, Usage
from polyroute.records.db import Database, describe, is_transient
from polyroute.records.tables import NAME, SHORT, USER, requests

log = logging.getLogger("polyroute.records")
Row = dict[str, Any]
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
        statements = _sqlite_batches(items) if sqlite else []
        rows = [] if sqlite else [_prepare(item) for item in items]
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
                await self._write_each(rows or [_prepare(item) for item in items], exc)
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


def _milliseconds(seconds: float) -> float:
    """Seconds as milliseconds to the microsecond (round() with digits is slow)."""
    return int(seconds * 1_000_000) / 1000


def _moment(stamp: int) -> datetime:
    """A nanosecond timestamp as a UTC datetime, truncated to the microsecond (integer
    arithmetic: its second is the one `_utc_second` and `_day` are given)."""
    return _EPOCH + timedelta(microseconds=stamp // 1000)


def _day(stamp: int) -> str:
    """The UTC day of a nanosecond timestamp, ``YYYY-MM-DD``."""
    return _utc_second(stamp // 1_000_000_000)[:10]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc_second(second: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` of a Unix second in UTC, shared by the rows of that second
    (datetime's isoformat, date() and the tz conversion were a tenth of a row's cost)."""
    text = _SECONDS.get(second)
    if text is None:
        if len(_SECONDS) > 64:
            _SECONDS.clear()
        text = _SECONDS[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return text


_SECONDS: dict[int, str] = {}


def _clip(value: object, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit]


RawRow = tuple[Any, ...]
"""An outcome's figures as `observe` keeps them: a flat tuple of plain values (no request
body is kept alive), made a row by the writer's task, off the request path."""


def raw_of(outcome: Outcome) -> RawRow:
    ctx = outcome.ctx
    decision = outcome.decision
    deployment = outcome.deployment
    if decision is None:
        route = strategy = experiment = arm = None
    else:
        route, strategy = decision.route, decision.strategy
        experiment, arm = decision.experiment, decision.arm
    return (
        ctx.request_id,
        time.time_ns(),
        ctx.caller.key_id,
        ctx.user,
        ctx.kind,
        ctx.model or route or "",
        route,
        None if deployment is None else deployment.name,
        strategy,
        experiment,
        arm,
        ctx.stream,
        outcome.status,
        outcome.ok,
        outcome.error_type,
        outcome.error_code,
        outcome.latency,
        outcome.ttft,
        outcome.attempts,
        outcome.usage,
        outcome.cost,
    )


def _sqlite_batches(items: list[Row | RawRow]) -> list[tuple[str, tuple[Any, ...]]]:
    """Rows as SQLite's driver takes them: multi-row INSERTs, one per group of rows that
    fill the same columns (nearly every row of a batch fills the same ones), each naming
    only the columns that are not NULL, with values in the form SQLAlchemy would have
    written (UTC time as naive ISO text, booleans as integers).

    Binding rows through SQLAlchemy's type processors cost about 0.09 ms per request of
    the gateway's CPU under load. Leaving NULLs out matters too: the driver binds a None
    through its adapter lookup (a failed attribute lookup each). And one statement for
    many rows rather than `executemany`, which steps (and releases and retakes the GIL
    around) one statement per row: the writer alone went from 67,000 to 85,000 rows/s
    (`bench/records_bench.py`). A raw row goes to its values directly, without the dict
    and datetime `_prepare` makes (a third of the writer's instructions per row)."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for item in items:
        names, values = _raw_values(item) if isinstance(item, tuple) else _row_values(item)
        group = groups.get(names)
        if group is None:
            groups[names] = values
        else:
            group.extend(values)
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for columns, flat in groups.items():
        width = len(columns)
        start = 0
        for size in statement_sizes(len(flat) // width, _SQLITE_MAX_VARIABLES // width):
            end = start + size * width
            statements.append((_sqlite_insert(columns, size), tuple(flat[start:end])))
            start = end
    return statements


def _row_values(row: Row) -> tuple[tuple[str, ...], list[Any]]:
    """A dict row's columns that are not NULL, and their values for SQLite."""
    row = _prepare(row)
    names: list[str] = []
    values: list[Any] = []
    for name, value in row.items():
        if value is None:
            continue
        names.append(name)
        kind = type(value)
        if kind is datetime:
            values.append(_naive_utc_text(value))
        elif kind is bool:
            values.append(int(value))
        else:
            values.append(value)
    return tuple(names), values


def _raw_values(item: RawRow) -> tuple[tuple[str, ...], list[Any]]:
    """A raw row's columns that are not NULL, and their values for SQLite: the same
    values `_row_values(_prepare(item))` gives."""
    full = _column_values(item)
    stamp: int = full[_TIME]
    second = _utc_second(stamp // 1_000_000_000)
    full[_TIME] = second + "." + zero_padded(stamp // 1000 % 1_000_000, 6)
    for index in _BOOLEANS:
        flag = full[index]
        if flag is not None:
            full[index] = int(flag)
    present = 0  # a bit per column that is not NULL: the key of the names' tuple
    bit = 1
    values: list[Any] = []
    for value in full:
        if value is not None:
            present |= bit
            values.append(value)
        bit <<= 1
    names = _NAMES.get(present)
    if names is None:
        if len(_NAMES) > 1024:
            _NAMES.clear()
        names = _NAMES[present] = tuple(
            name for index, name in enumerate(_COLUMNS) if present >> index & 1
        )
    return names, values


_NAMES: dict[int, tuple[str, ...]] = {}
"""The column names of each combination of non-NULL columns seen (a handful: the NULLs
follow the kind of outcome, e.g. errors have no usage)."""


_COLUMNS = (
    "request_id",
    "time",
    "day",
    "key_id",
    "end_user",
    "kind",
    "model",
    "route",
    "deployment",
    "strategy",
    "experiment",
    "arm",
    "stream",
    "status",
    "ok",
    "error_type",
    "error_code",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "images",
    "estimated",
    "cost",
)
"""The columns of a raw row's values, in `_column_values`' order."""


def statement_sizes(rows: int, fit: int) -> list[int]:
    """`rows` split into statements of a few fixed sizes: powers of two up to
    `_MAX_STATEMENT_ROWS` and to `fit` (the rows one statement's bound values allow).

    The driver keeps each distinct statement prepared (128 per connection), and a
    statement for hundreds of rows is large: one size per batch length made the gateway's
    memory grow by 14 MiB in a 10-minute soak. Fixed sizes keep at most nine shapes per
    column set (a batch of 500 rows: 256 + 128 + 64 + 32 + 16 + 4)."""
    size = 1
    while size * 2 <= min(fit, _MAX_STATEMENT_ROWS):
        size *= 2
    sizes: list[int] = []
    while rows:  # the largest size as often as it fits, then the binary digits of the rest
        if rows >= size:
            sizes.append(size)
            rows -= size
        else:
            size //= 2
    return sizes


_SQLITE_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
"""Bound values one statement may take: SQLite's default limit (999 before 3.32)."""
_MAX_STATEMENT_ROWS = 256


def _naive_utc_text(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, as SQLAlchemy writes a DateTime to SQLite."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return f"{_utc_second(int(moment.timestamp()))}.{zero_padded(moment.microsecond, 6)}"


@functools.lru_cache(maxsize=64)  # a few column sets x nine sizes
def _sqlite_insert(names: tuple[str, ...], rows: int) -> str:
    # table and column names come from our own schema; every value is bound
    one = f"({', '.join('?' for _ in names)})"
    return f"INSERT INTO {requests.name} ({', '.join(names)}) VALUES " + ", ".join(  # noqa: S608
        [one] * rows
    )


def row_of(outcome: Outcome) -> Row:
    """The database row for one outcome."""
    return _prepare(raw_of(outcome))


def _prepare(item: Row | RawRow) -> Row:
    """A row ready to insert: times as datetimes with their UTC day, strings clipped to
    their columns (and free of NUL, which PostgreSQL refuses)."""
    if isinstance(item, dict):
        stamp = item["time"]
        if isinstance(stamp, int):
            item["time"] = _moment(stamp)
            item["day"] = _day(stamp)
        return item
    values = _column_values(item)
    values[_TIME] = _moment(values[_TIME])
    return {name: values[index] for index, name in enumerate(_COLUMNS)}


def _column_values(item: RawRow) -> list[Any]:
    """A raw row's values in `_COLUMNS`' order: strings clipped to their columns (and free
    of NUL, which PostgreSQL refuses), the time still the nanosecond stamp."""
    (
        request_id,
        stamp,
        key_id,
        end_user,
        kind,
        model,
        route,
        deployment,
        strategy,
        experiment,
        arm,
        stream,
        status,
        ok,
        error_type,
        error_code,
        latency,
        ttft,
        attempts,
        usage,
        cost,
    ) = item
    values: list[Any] = [
        _clip(request_id, SHORT),
        stamp,
        _day(stamp),
        key_id,
        _clip(end_user, USER),
        str(kind),  # a StrEnum: its value
        _clip(model, NAME),
        route,
        deployment,
        _clip(strategy, SHORT),
        experiment,
        _clip(arm, NAME),
        stream,
        status,
        ok,
        _clip(error_type, SHORT),
        _clip(error_code, SHORT),
        _milliseconds(latency),
        None if ttft is None else _milliseconds(ttft),
        attempts,
    ]
    used = cast("Usage | None", usage)
    if used is None:
        values += (None, None, None, None, None)
    else:
        values += (
            used.prompt_tokens,
            used.completion_tokens,
            used.cached_tokens,
            used.images,
            used.estimated,
        )
    values.append(cost)
    return values


_TIME = 1
_BOOLEANS = (12, 14, 24)  # stream, ok, estimated: integers for SQLite
