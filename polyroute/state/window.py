"""A sliding-window counter in fixed buckets: O(1) per event, bounded memory."""

from __future__ import annotations

import math

from polyroute.clock import Clock


class SlidingCounter:
    """Counts events of a few kinds over the last `window` seconds, in `buckets` slices.

    Old slices are zeroed lazily when time reaches them again, so nothing runs unless an
    event is recorded or the total is read.
    """

    __slots__ = ("_clock", "_counts", "_kinds", "_slot_width", "_stamps")

    def __init__(self, window: float, clock: Clock, kinds: int = 2, buckets: int = 10) -> None:
        self._clock = clock
        self._slot_width = window / buckets
        self._kinds = kinds
        self._counts = [[0] * kinds for _ in range(buckets)]
        self._stamps = [-1] * buckets

    def add(self, kind: int, amount: int = 1) -> None:
        slot = self._current()
        self._counts[slot][kind] += amount

    def totals(self) -> list[int]:
        """Events of each kind within the window."""
        now_slot = math.floor(self._clock.now() / self._slot_width)
        totals = [0] * self._kinds
        oldest = now_slot - len(self._stamps) + 1
        for stamp, counts in zip(self._stamps, self._counts, strict=True):
            if stamp >= oldest:
                for kind in range(self._kinds):
                    totals[kind] += counts[kind]
        return totals

    def clear(self) -> None:
        for counts in self._counts:
            counts[:] = [0] * self._kinds
        self._stamps = [-1] * len(self._stamps)

    def _current(self) -> int:
        absolute = math.floor(self._clock.now() / self._slot_width)
        slot = absolute % len(self._stamps)
        if self._stamps[slot] != absolute:
            self._stamps[slot] = absolute
            self._counts[slot] = [0] * self._kinds
        return slot
