"""Client authentication: `Authorization: Bearer <key>` against keys stored as SHA-256 digests.

Keys come from the config (`keys:`) and, with `records` on, from the database (virtual keys
made through /admin/keys). Both live in one in-memory map from digest to Caller, so a
request costs one SHA-256 and one dict lookup, never a database query:

* the map is loaded at start and reloaded when ``polyroute_meta.keys_revision`` changes,
  checked every `records.key_refresh` seconds (default 1 s): a key created, changed or
  revoked on another gateway instance takes effect here within that delay;
* a key this instance has not seen yet (created on another instance a moment ago) is
  looked up in the database once, on the first request that presents it. Unknown digests
  are remembered for `key_refresh` seconds (a negative cache), and at most
  `MISS_LOOKUPS_PER_SECOND` lookups run per second, so a flood of made-up keys cannot turn
  into a flood of queries;
* revoked and expired keys fail exactly like wrong ones (same status, same message), so a
  response never tells whether a key ever existed.

Constant time: the presented key is hashed, and the digest is looked up in a dict. The
timing of a hash-table probe depends on the digest, which an attacker cannot steer towards
a stored one without knowing its key, so nothing about a stored key leaks; the admin key
is compared with `hmac.compare_digest`. Digests are of high-entropy keys (virtual keys
carry 256 random bits), so an unsalted SHA-256 is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from polyroute.config.schema import KeyConfig, KeySettings
from polyroute.context import ANONYMOUS, Caller, KeyLimits
from polyroute.errors import AuthenticationFailed
from polyroute.records.model import KeyRecord, expiry_of

log = logging.getLogger("polyroute.auth")

BAD_KEY = "Incorrect API key provided. Check the key you were given for this gateway."
MISS_LOOKUPS_PER_SECOND = 20.0
_NEGATIVE_CACHE_SIZE = 10_000
Entry = tuple[Caller, int | None]
"""A caller and the wall-clock nanosecond its key expires at (None: never)."""


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def caller_of(key_id: str, settings: KeySettings) -> Caller:
    return Caller(
        key_id=key_id,
        user=settings.user,
        team=settings.team,
        tier=settings.tier,
        tags=frozenset(settings.tags),
        allowed_models=frozenset(settings.models) if settings.models is not None else None,
        limits=KeyLimits(
            rpm=settings.rpm,
            tpm=settings.tpm,
            max_parallel=settings.max_parallel,
            budget=settings.budget,
            budget_period=settings.budget_period,
        ),
    )


def entry_of(key_id: str, settings: KeySettings) -> Entry:
    expires = expiry_of(settings)
    return caller_of(key_id, settings), (
        None if expires is None else int(expires.timestamp() * 1e9)
    )


class KeySource(Protocol):
    """Where virtual keys are stored (polyroute.records.keys.KeyRepository)."""

    async def all(self) -> list[KeyRecord]: ...

    async def by_hash(self, key_hash: str) -> KeyRecord | None: ...

    async def revision(self) -> int: ...


class KeyStore:
    """The callers known to this gateway, by key digest.

    Authentication is on when any key exists: one in the config, or one ever created in
    the database (revoked keys count, so revoking the last key never opens the gateway).
    """

    def __init__(
        self,
        keys: Iterable[KeyConfig] = (),
        source: KeySource | None = None,
        *,
        refresh: float = 1.0,
    ) -> None:
        self.config_keys: dict[str, KeyConfig] = {key.id: key for key in keys}
        self._config: dict[bytes, Entry] = {
            hash_key(key.key.get_secret_value()): entry_of(key.id, key.settings)
            for key in self.config_keys.values()
        }
        self._virtual: dict[bytes, Entry] = {}
        self._callers: dict[bytes, Entry] = dict(self._config)
        self._has_virtual = False
        self._source = source
        self._refresh = refresh
        self._revision: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._misses: dict[bytes, float] = {}
        self._lookups: dict[bytes, asyncio.Task[Entry | None]] = {}
        self._tokens = MISS_LOOKUPS_PER_SECOND
        self._tokens_at = time.monotonic()
        self._refresh_failed_at = -60.0
        self.lookups = 0  # database lookups made for unknown keys (for tests and metrics)

    @property
    def enabled(self) -> bool:
        return bool(self._config) or self._has_virtual

    # -- the request path --------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller for an Authorization header value; raises AuthenticationFailed."""
        if not self.enabled:
            return ANONYMOUS  # no key exists anywhere: every caller is anonymous, unhashed
        if not authorization:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed(BAD_KEY)
        digest = hash_key(token)
        entry = self._callers.get(digest)
        if entry is None:
            if self._source is not None:
                entry = await self._lookup(digest)
            if entry is None:
                raise AuthenticationFailed(BAD_KEY)
        caller, expires = entry
        if expires is not None and time.time_ns() >= expires:
            raise AuthenticationFailed(BAD_KEY)
        return caller

    async def _lookup(self, digest: bytes) -> Entry | None:
        """A key another instance may have created since the last refresh."""
        now = time.monotonic()
        until = self._misses.get(digest)
        if until is not None:
            if until > now:
                return None
            del self._misses[digest]
        task = self._lookups.get(digest)
        if task is None:
            if not self._take_token(now):
                return None
            task = asyncio.get_running_loop().create_task(self._fetch(digest))
            self._lookups[digest] = task
        return await asyncio.shield(task)  # a cancelled request leaves the lookup running

    def _take_token(self, now: float) -> bool:
        self._tokens = min(
            MISS_LOOKUPS_PER_SECOND,
            self._tokens + (now - self._tokens_at) * MISS_LOOKUPS_PER_SECOND,
        )
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def _fetch(self, digest: bytes) -> Entry | None:
        assert self._source is not None
        self.lookups += 1
        entry: Entry | None = None
        try:
            record = await self._source.by_hash(digest.hex())
            if record is not None and record.status() == "active":
                entry = entry_of(record.id, record.settings)
        except Exception as exc:
            log.warning("keys: looking up a key failed (%s)", type(exc).__name__)
        finally:
            self._lookups.pop(digest, None)
        if entry is not None:
            self._virtual[digest] = entry
            self._callers.setdefault(digest, entry)
            self._has_virtual = True
        else:
            if len(self._misses) >= _NEGATIVE_CACHE_SIZE:
                self._misses.clear()
            self._misses[digest] = time.monotonic() + self._refresh
        return entry

    # -- keeping the map current ---------------------------------------------------------

    async def start(self) -> None:
        """Load the stored keys and keep them current (no-op without a key source)."""
        if self._source is None:
            return
        await self.reload()
        self._task = asyncio.get_running_loop().create_task(
            self._refresh_loop(), name="polyroute-key-refresh"
        )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lookup in list(self._lookups.values()):
            lookup.cancel()

    async def reload(self) -> None:
        """Replace the virtual keys with what the database holds now."""
        if self._source is None:
            return
        revision = await self._source.revision()
        records = await self._source.all()
        virtual = {
            bytes.fromhex(record.key_hash): entry_of(record.id, record.settings)
            for record in records
            if record.status() == "active"
        }
        self._virtual = virtual
        self._callers = {**virtual, **self._config}
        self._has_virtual = bool(records)
        self._misses.clear()
        self._revision = revision

    async def _refresh_loop(self) -> None:
        assert self._source is not None
        while True:
            await asyncio.sleep(self._refresh)
            try:
                if await self._source.revision() != self._revision:
                    await self.reload()
            except Exception as exc:
                now = time.monotonic()
                if now - self._refresh_failed_at >= 60:
                    self._refresh_failed_at = now
                    log.warning(
                        "keys: refreshing from the database failed (%s); serving the keys "
                        "loaded before",
                        type(exc).__name__,
                    )

    def put(self, record: KeyRecord) -> None:
        """Apply a key this instance just created or changed (no refresh delay here)."""
        digest = bytes.fromhex(record.key_hash)
        self._has_virtual = True
        self._misses.pop(digest, None)
        if record.status() != "active":
            self._virtual.pop(digest, None)
            if digest not in self._config:
                self._callers.pop(digest, None)
            return
        entry = entry_of(record.id, record.settings)
        self._virtual[digest] = entry
        if digest not in self._config:
            self._callers[digest] = entry
