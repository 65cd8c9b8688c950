"""The alarm wheel that holds every upstream attempt's time limits: alarms ring once their
time has come (at most a tick late), never when cleared, and move when their ring asks."""

from __future__ import annotations

import asyncio

from polyroute.providers.alarms import TICK, AlarmWheel, Ring, wheel_of


def recorder(into: dict[str, float], name: str, due: float) -> Ring:
    """A ring that notes how late it came and stays quiet afterwards."""

    def ring(now: float) -> None:
        into[name] = now - due

    return ring


async def test_alarms_ring_in_order_and_at_most_a_tick_late() -> None:
    loop = asyncio.get_running_loop()
    wheel = AlarmWheel(loop)
    rang: dict[str, float] = {}
    start = loop.time()
    for name, after in (("late", 0.08), ("early", 0.03), ("mid", 0.05)):
        due = start + after
        wheel.set(due, recorder(rang, name, due))
    await asyncio.sleep(0.15)
    assert list(rang) == ["early", "mid", "late"]
    assert all(0 <= late <= TICK + 0.02 for late in rang.values()), rang
    assert len(wheel) == 0


async def test_a_cleared_alarm_never_rings_and_the_wheel_goes_quiet() -> None:
    loop = asyncio.get_running_loop()
    wheel = AlarmWheel(loop)
    rang: list[float] = []
    alarms = [wheel.set(loop.time() + 0.02, rang.append) for _ in range(100)]
    for alarm in alarms:
        wheel.clear(alarm)
    wheel.clear(alarms[0])  # twice: nothing happens
    await asyncio.sleep(0.06)
    assert rang == []
    assert len(wheel) == 0
    assert wheel._handle is None  # no timer left running


async def test_a_ring_that_returns_a_later_time_stays_set_until_then() -> None:
    loop = asyncio.get_running_loop()
    wheel = AlarmWheel(loop)
    start = loop.time()
    calls: list[float] = []

    def ring(now: float) -> float | None:
        calls.append(now - start)
        return start + 0.06 if len(calls) == 1 else None

    wheel.set(start + 0.02, ring)
    await asyncio.sleep(0.12)
    assert len(calls) == 2
    assert 0.02 <= calls[0] < 0.06 <= calls[1] < 0.06 + TICK + 0.03


async def test_reset_moves_an_alarm_to_an_earlier_slot() -> None:
    loop = asyncio.get_running_loop()
    wheel = AlarmWheel(loop)
    start = loop.time()
    rang: dict[str, float] = {}
    alarm = wheel.set(start + 10, recorder(rang, "headers", start + 10))
    wheel.reset(alarm, start + 0.02, recorder(rang, "body", start + 0.02))
    await asyncio.sleep(0.07)
    assert list(rang) == ["body"]


async def test_one_wheel_per_loop_whoever_asks() -> None:
    """Every provider on a loop gets the same wheel, so one timer serves all attempts."""
    loop = asyncio.get_running_loop()
    first = wheel_of(loop, None)
    assert wheel_of(loop, None) is first
    assert wheel_of(loop, first) is first
    assert first.loop is loop
