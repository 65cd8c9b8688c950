"""Request records as rows: what `RecordWriter` inserts, shaped off the request path.

`raw_of` keeps an outcome's figures as a flat tuple (all the request path pays); the
writer's task turns them into SQLite's bound values directly (`sqlite_batches`: multi-row
INSERTs of fixed sizes) or, for other databases, into dicts for SQLAlchemy (`prepare`).
Compiled (setup.py).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from polyroute.formatting import zero_padded
from polyroute.outcomes import Outcome, Usage
from polyroute.records.tables import NAME, SHORT, USER, requests

Row = dict[str, Any]


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


def sqlite_batches(items: list[Row | RawRow]) -> list[tuple[str, tuple[Any, ...]]]:
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
    and datetime `prepare` makes (a third of the writer's instructions per row)."""
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
    row = prepare(row)
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
    values `_row_values(prepare(item))` gives."""
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
    return prepare(raw_of(outcome))


def prepare(item: Row | RawRow) -> Row:
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
