"""Synchronising the hot-path state (breakers, live statistics, retry budget) with Redis.

Routing reads this state synchronously on every request, so it is never awaited there:
each process keeps a local copy (the memory implementation) that serves every read, and
one background task, every `state.sync_interval` seconds (0.2 by default), pushes what
this process saw since the last round (deltas) and pulls the merged view of all processes,
one Lua script per kind of state. Readers therefore see other processes' outcomes at most
one interval (plus a round trip) late; their own at once. A view older than
`STALE_ROUNDS` intervals (Redis unreachable) is dropped, and each process goes on with its
own copy until Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from polyroute.state.redis_conn import REDIS_ERRORS, RedisConnection

log = logging.getLogger("polyroute.state")

STALE_ROUNDS = 5
"""A merged view older than this many sync intervals is not trusted any more."""

FMT = "local function fmt(x) return string.format('%.17g', x) end\n"


class Synced(Protocol):
    """A piece of state with a local copy kept in step with Redis."""

    async def sync(self, conn: RedisConnection) -> None:
        """Push local deltas and pull the merged view (one script call); raises one of
        REDIS_ERRORS when Redis does not answer."""
        ...

    def stale(self) -> None:
        """Forget the merged view: Redis is unreachable, local state only."""
        ...


class StateSync:
    """The background task that keeps every `Synced` part in step."""

    def __init__(self, conn: RedisConnection, parts: list[Synced], interval: float) -> None:
        self._conn = conn
        self._parts = parts
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.sync_once()

    async def sync_once(self) -> None:
        """One round (the loop's body; tests call it to sync at a moment they choose)."""
        if not self._conn.available:
            for part in self._parts:
                part.stale()
            return
        for part in self._parts:
            try:
                await part.sync(self._conn)
            except REDIS_ERRORS:
                for each in self._parts:
                    each.stale()
                return
            except Exception:
                log.exception("state: syncing %s with Redis failed", type(part).__name__)
        self.rounds += 1

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn.available:  # hand over this process's last deltas
            await self.sync_once()
