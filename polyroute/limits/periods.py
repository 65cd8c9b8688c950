"""Budget periods: which spend counter a request draws from, and when it resets (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

PERIODS = ("day", "week", "month", "total")
_KEEP = {"day": 2 * 86400, "week": 8 * 86400, "month": 32 * 86400}


def wall_now() -> float:
    """Seconds since the epoch (budget periods follow the calendar, not a monotonic clock)."""
    return time.time_ns() / 1e9


_NAMES: dict[tuple[str, int], str] = {}


def period_id(period: str, wall: float) -> str:
    """The name of the current `period` at `wall` seconds, e.g. ``d2026-11-25``,
    ``w2026-48`` (ISO week), ``m2026-11``, ``total`` (cached per UTC day)."""
    if period == "total":
        return "total"
    slot = (period, int(wall // 86400))
    name = _NAMES.get(slot)
    if name is None:
        if len(_NAMES) > 64:
            _NAMES.clear()
        name = _NAMES[slot] = _period_name(period, wall)
    return name


def _period_name(period: str, wall: float) -> str:
    day = datetime.fromtimestamp(wall, UTC)
    if period == "day":
        return day.strftime("d%Y-%m-%d")
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"w{year}-{week:02d}"
    if period == "month":
        return day.strftime("m%Y-%m")
    raise ValueError(f"unknown budget period {period!r}")


def seconds_left(period: str, wall: float) -> float | None:
    """Seconds until the current `period` ends (None for `total`, which never does)."""
    if period == "total":
        return None
    now = datetime.fromtimestamp(wall, UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(days=7 - now.weekday())
    else:
        end = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    return (end - now).total_seconds()


def keep_for(period: str) -> int | None:
    """Seconds a spend counter is kept after it was last written (None: for ever)."""
    return _KEEP.get(period)
