"""Bandit state shared on Redis: every worker and instance learns into one set of counts.

The strategy reads its counts on the routing hot path, so each process keeps them locally
(`MemoryBanditState`) and syncs about once a second: it adds what it learned since the last
sync (its counts minus the baseline, the same merge the state file uses) to one Redis hash
per route and adopts the hash's totals, both in one transaction. Other processes' learning
therefore arrives within one sync interval. The counts persist as long as Redis does (its
own RDB/AOF persistence); while Redis is unreachable each process keeps learning locally and
adds it all at the first sync after Redis returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.state.bandit import ArmCounts, Snapshot

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection

_SEP = "\x1f"
_FIELDS = {"s": "successes", "f": "failures", "n": "n", "b": "feedback"}


class RedisBanditStore:
    """One route's counts in the hash `<prefix>:bandit:<route>`."""

    def __init__(self, connection: RedisConnection, route: str) -> None:
        self.connection = connection
        self.key = f"{connection.prefix}:bandit:{route}"

    async def merge(self, current: Snapshot, baseline: Snapshot) -> Snapshot | None:
        """Add `current` - `baseline` to Redis and return Redis's totals; None while Redis
        is unreachable (the caller keeps its local counts and tries again later)."""
        from polyroute.state.redis_conn import REDIS_ERRORS

        client = self.connection.client
        if client is None or not self.connection.usable():
            return None
        try:
            async with client.pipeline(transaction=True) as pipe:
                for field, delta in _deltas(current, baseline):
                    pipe.hincrbyfloat(self.key, field, delta)
                pipe.hgetall(self.key)
                replies = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.connection.failed(exc)
            return None
        totals = replies[-1]
        return _snapshot(totals if isinstance(totals, dict) else {})


def _deltas(current: Snapshot, baseline: Snapshot) -> list[tuple[str, float]]:
    changes: list[tuple[str, float]] = []
    for context, arms in current.items():
        before = baseline.get(context, {})
        for arm, now in arms.items():
            was = before.get(arm, ArmCounts())
            for code, name in _FIELDS.items():
                delta = float(getattr(now, name)) - float(getattr(was, name))
                if delta:
                    changes.append((f"{code}{_SEP}{context}{_SEP}{arm}", delta))
    return changes


def _snapshot(totals: dict[bytes | str, bytes | str]) -> Snapshot:
    snapshot: Snapshot = {}
    for raw_field, raw_value in totals.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        parts = field.split(_SEP)
        if len(parts) != 3 or parts[0] not in _FIELDS:
            continue
        code, context, arm = parts
        try:
            value = float(raw_value)
        except ValueError:
            continue
        counts = snapshot.setdefault(context, {}).setdefault(arm, ArmCounts())
        name = _FIELDS[code]
        if name in ("n", "feedback"):
            setattr(counts, name, max(0, round(value)))
        else:
            setattr(counts, name, max(0.0, value))
    return snapshot
