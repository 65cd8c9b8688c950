"""What the key store needs to know about a stored virtual key, without SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from polyroute.config.schema import KeySettings


class DuplicateKey(Exception):
    """A key with this id (or digest) exists already."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One virtual API key as stored: never the key itself, only its SHA-256 digest."""

    id: str
    key_hash: str
    """Hex SHA-256 of the key."""
    hint: str | None
    """A non-secret reminder of which key this is (``sk-pr-…wxyz``)."""
    settings: KeySettings
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None

    def status(self, now: datetime | None = None) -> str:
        """active, revoked or expired."""
        if self.revoked_at is not None:
            return "revoked"
        expires = expiry_of(self.settings)
        if expires is not None and expires <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


def expiry_of(settings: KeySettings) -> datetime | None:
    """The expiry as an aware UTC datetime (a naive one in the config means UTC)."""
    expires = settings.expires_at
    if expires is None:
        return None
    if expires.tzinfo is None:
        return expires.replace(tzinfo=UTC)
    return expires.astimezone(UTC)
