"""Text helpers shared by the process log's formatters and the access log (compiled with
the access log: both run once per request)."""

from __future__ import annotations

import time
from typing import Any

import orjson

_clock: list[tuple[int, str]] = [(-1, "")]


def iso_time(epoch: float) -> str:
    """UTC, ISO 8601 with milliseconds (the second's text is cached; one tuple swapped
    whole, so threads never mix a second with another second's text)."""
    second = int(epoch)
    cached = _clock[0]
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _clock[0] = cached
    return f"{cached[1]}.{int((epoch - second) * 1000):03d}Z"


def field_text(value: Any) -> str:
    """A value as ``key=value`` text shows it: floats short, strings with spaces quoted."""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return orjson.dumps(text).decode() if (" " in text or not text) else text
