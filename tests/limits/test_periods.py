"""Budget periods follow the UTC calendar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from polyroute.limits.periods import period_id, seconds_left


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "when", "name", "left"),
    [
        ("day", "2026-11-25T23:59:00", "d2026-11-25", 60),
        ("day", "2026-11-26T00:00:00", "d2026-11-26", 86400),
        ("week", "2026-11-29T23:00:00", "w2026-48", 3600),  # a Sunday: Monday starts the next
        ("week", "2026-11-30T00:00:00", "w2026-49", 7 * 86400),
        ("month", "2026-12-31T12:00:00", "m2026-12", 12 * 3600),
        ("month", "2027-02-01T00:00:00", "m2027-02", 28 * 86400),
    ],
)
def test_period_names_and_resets(period: str, when: str, name: str, left: float) -> None:
    assert period_id(period, at(when)) == name
    assert seconds_left(period, at(when)) == pytest.approx(left)


def test_total_never_resets() -> None:
    assert period_id("total", at("2026-01-01T00:00:00")) == "total"
    assert seconds_left("total", 0.0) is None
