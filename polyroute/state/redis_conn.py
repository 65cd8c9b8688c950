"""One Redis for the whole process: a bounded connection pool, and whether Redis answers.

Every Redis-backed part (limits, breakers, statistics, retry budget) goes through one
`RedisConnection`. A call that fails, or takes longer than `state.timeout`, is answered
from this process's own state instead. A refused or broken connection marks Redis as
unreachable at once, timeouts when three come in a row: one warning is logged for the
whole outage, and a probe tries Redis again every `state.retry_interval` seconds. While
Redis is unreachable nobody waits on it, so an outage costs the requests that were talking
to Redis when it stopped answering one timeout each (at most three timeouts' worth of
requests when Redis hangs rather than refuses). When the probe gets an
answer, the pool is reconnected, recovery hooks run (e.g. budgets spent meanwhile are added
to Redis), and Redis is used again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from polyroute.config.schema import StateConfig

log = logging.getLogger("polyroute.state")

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
"""What a Redis call raises when Redis is down, slow or unreachable."""

TIMEOUTS: tuple[type[BaseException], ...] = (RedisTimeoutError, asyncio.TimeoutError)
TIMEOUTS_FOR_OUTAGE = 3
"""Timed-out calls in a row (no success between them) that make an outage."""
CONNECT_TIMEOUT = 1.0
"""Seconds to open a connection (a refused one fails at once; this is for lost hosts)."""
WARM_CONNECTIONS = 8

RecoverHook = Callable[[Redis], Awaitable[None]]


class Script:
    """A Lua script, sent by its SHA1 and loaded again when Redis does not know it (a fresh
    or restarted server)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    async def run(self, client: Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


class RedisConnection:
    """The process's Redis client, its health, and the counters the metrics read."""

    def __init__(self, config: StateConfig) -> None:
        if config.redis_url is None:
            raise ValueError("state.redis_url is required for backend redis")
        self.config = config
        self.prefix = config.key_prefix
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        """This process's name in shared state (per-process in-flight counts)."""
        self.client: Redis | None = None
        self.available = False
        self.outages = 0
        """Times Redis stopped answering (each logged once)."""
        self.errors = 0
        """Redis calls that failed or timed out."""
        self.fallbacks = 0
        """Decisions taken on this process's own state because Redis was unreachable."""
        self._down_since: float | None = None
        self._gate = asyncio.Semaphore(config.max_connections)
        self._probe: asyncio.Task[None] | None = None
        self._hooks: list[RecoverHook] = []
        self._timeouts = 0  # calls timed out in a row
        self._closed = False

    def script(self, text: str) -> Script:
        """A Lua script run by its SHA (loaded again by itself after a Redis restart)."""
        return Script(text)

    def on_recover(self, hook: RecoverHook) -> None:
        """Run `hook` each time Redis answers again after an outage (before it is used)."""
        self._hooks.append(hook)

    async def start(self) -> None:
        """Create the pool and check Redis once; unreachable is not fatal (local state
        serves and the probe keeps trying)."""
        url = self.config.redis_url.get_secret_value() if self.config.redis_url else ""
        timeout = self.config.timeout
        pool = ConnectionPool.from_url(
            url,
            max_connections=self.config.max_connections,
            socket_timeout=timeout,
            socket_connect_timeout=max(timeout, CONNECT_TIMEOUT),
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.client = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        try:
            await asyncio.wait_for(self.client.ping(), max(1.0, timeout))
            # open a few connections now, so that a first burst does not wait for them
            warm = min(WARM_CONNECTIONS, self.config.max_connections)
            await asyncio.gather(*(self.client.ping() for _ in range(warm)))
        except REDIS_ERRORS as exc:
            self.failed(exc, definite=True)
        else:
            self.available = True
            log.info("state: using Redis (key prefix %r)", self.prefix)

    async def call(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run `script`; raises one of REDIS_ERRORS (after marking the outage) on failure.
        At most `max_connections` calls are in flight; later ones queue here, not in Redis."""
        client = self.client
        if client is None or not self.available:
            raise ConnectionError("Redis is unreachable")
        async with self._gate:
            try:
                reply = await script.run(client, keys, args)
            except REDIS_ERRORS as exc:
                self.failed(exc)
                raise
        self._timeouts = 0
        return reply

    def usable(self) -> bool:
        """Whether to try Redis now; counts a fallback when not."""
        if self.available:
            return True
        self.fallbacks += 1
        return False

    def failed(self, exc: BaseException, *, definite: bool = False) -> None:
        """A Redis call failed. A refused or broken connection (or any other error) starts an
        outage at once; a timeout only as the `TIMEOUTS_FOR_OUTAGE`-th in a row, because a
        busy event loop can make a healthy Redis look late. The outage is logged once and
        starts the probe."""
        self.errors += 1
        if self._closed:
            return
        if isinstance(exc, TIMEOUTS) and not definite:
            self._timeouts += 1
            if self._timeouts < TIMEOUTS_FOR_OUTAGE:
                return
        self._timeouts = 0
        if self.available or self._down_since is None:
            self.available = False
            self.outages += 1
            self._down_since = time.monotonic()
            log.warning(
                "state: Redis unreachable (%s: %s); this process uses its own state "
                "(limits per process, no sharing) and retries every %gs",
                type(exc).__name__,
                str(exc)[:200] or "timeout",
                self.config.retry_interval,
            )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        client = self.client
        while not self._closed and client is not None:
            await asyncio.sleep(self.config.retry_interval)
            try:
                await client.connection_pool.disconnect()  # drop sockets to the old server
                await asyncio.wait_for(client.ping(), max(1.0, self.config.timeout))
                for hook in self._hooks:
                    await hook(client)
            except REDIS_ERRORS:
                self.errors += 1
                continue
            except Exception:
                log.exception("state: a Redis recovery hook failed")
            down = time.monotonic() - (self._down_since or time.monotonic())
            self.available = True
            self._down_since = None
            log.warning(
                "state: Redis answers again after %.1fs; shared state resumed "
                "(%d decisions were taken locally so far)",
                down,
                self.fallbacks,
            )
            return

    def snapshot(self) -> dict[str, Any]:
        """Figures for metrics and /readyz-style reports."""
        down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        return {
            "backend": "redis",
            "available": self.available,
            "outages": self.outages,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "down_for": round(down, 3),
        }

    async def aclose(self) -> None:
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
            await self.client.connection_pool.disconnect()
            self.client = None
        self.available = False
