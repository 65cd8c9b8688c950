"""Client authentication: `Authorization: Bearer <key>` against keys stored as SHA-256 hashes.

Keys are looked up by their hash, so the plain key is never kept in memory after load,
and failures share one message, so a response never tells which part of a key was wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from polyroute.config.schema import KeyConfig
from polyroute.context import ANONYMOUS, Caller, KeyLimits
from polyroute.errors import AuthenticationFailed

_BAD_KEY = "Incorrect API key provided. Check the key you were given for this gateway."


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyStore:
    """The callers known to this gateway, by key hash. Empty store = auth off."""

    def __init__(self, keys: Iterable[KeyConfig] = ()) -> None:
        self._callers: dict[bytes, Caller] = {
            hash_key(key.key.get_secret_value()): Caller(
                key_id=key.id,
                user=key.user,
                team=key.team,
                tier=key.tier,
                tags=frozenset(key.tags),
                allowed_models=frozenset(key.models) if key.models is not None else None,
                limits=KeyLimits(
                    rpm=key.rpm,
                    tpm=key.tpm,
                    max_parallel=key.max_parallel,
                    budget=key.budget,
                    budget_period=key.budget_period,
                ),
            )
            for key in keys
        }

    @property
    def enabled(self) -> bool:
        return bool(self._callers)

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller for an Authorization header value; raises AuthenticationFailed."""
        if not self._callers:
            return ANONYMOUS
        if not authorization:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(_BAD_KEY)
        caller = self._callers.get(hash_key(token.strip()))
        if caller is None:
            raise AuthenticationFailed(_BAD_KEY)
        return caller
