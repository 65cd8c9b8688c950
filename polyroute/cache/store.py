"""Where cached answers live: this process (a size-bounded LRU) or Redis (shared by every
worker and instance, with this process's LRU serving while Redis is unreachable)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from polyroute.outcomes import Usage

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An upstream's whole JSON answer, as it was sent to the client."""

    body: bytes
    deployment: str
    stored_at: float  # wall-clock seconds (shared by every process that reads the entry)
    usage: Usage | None = None
    """What producing it consumed (reported with hits; a hit itself costs nothing)."""

    def encode(self) -> bytes:
        usage = self.usage
        meta = {
            "d": self.deployment,
            "t": self.stored_at,
            "u": None if usage is None else [usage.prompt_tokens, usage.completion_tokens],
        }
        return orjson.dumps(meta) + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        """None for anything that is not an entry this module wrote."""
        head, sep, body = raw.partition(b"\n")
        if not sep:
            return None
        try:
            meta = orjson.loads(head)
            tokens = meta["u"]
            usage = None if tokens is None else Usage(int(tokens[0]), int(tokens[1]))
            return cls(body, str(meta["d"]), float(meta["t"]), usage)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            return None

    @property
    def age(self) -> float:
        return max(0.0, wall_clock() - self.stored_at)


def wall_clock() -> float:
    return time.time_ns() / 1e9


class CacheStore(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...

    async def set(self, key: str, answer: CachedAnswer, ttl: float) -> None: ...


class MemoryStore:
    """LRU bounded by entry count and by total body bytes; expired entries are dropped
    when met (an LRU evicts stale entries first anyway, as nothing reads them)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._entries: OrderedDict[str, tuple[float, CachedAnswer]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedAnswer | None:
        return self.get_now(key)

    def get_now(self, key: str) -> CachedAnswer | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, answer = found
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return answer

    async def set(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        self.set_now(key, answer, ttl)

    def set_now(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        size = len(answer.body)
        if size > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, answer)
        self.bytes += size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        _, answer = self._entries.pop(key)
        self.bytes -= len(answer.body)


class RedisStore:
    """Entries in Redis under `<prefix>:cache:<key>` with a TTL; while Redis is unreachable
    the local LRU answers (hits are then per process)."""

    def __init__(self, connection: RedisConnection, local: MemoryStore) -> None:
        self._redis = connection
        self._local = local
        self._prefix = f"{connection.prefix}:cache:"

    async def get(self, key: str) -> CachedAnswer | None:
        from polyroute.state.redis_conn import REDIS_ERRORS

        client = self._redis.client
        if client is None or not self._redis.usable():
            return self._local.get_now(key)
        try:
            raw = await client.get(self._prefix + key)
        except REDIS_ERRORS as exc:
            self._redis.failed(exc)
            return self._local.get_now(key)
        return CachedAnswer.decode(raw) if isinstance(raw, bytes) else None

    async def set(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        from polyroute.state.redis_conn import REDIS_ERRORS

        client = self._redis.client
        if client is None or not self._redis.usable():
            self._local.set_now(key, answer, ttl)
            return
        try:
            await client.set(self._prefix + key, answer.encode(), px=max(1, int(ttl * 1000)))
        except REDIS_ERRORS as exc:
            self._redis.failed(exc)
            self._local.set_now(key, answer, ttl)
