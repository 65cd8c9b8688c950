"""KeyRepository: virtual API keys in the database.

Only the key's SHA-256 digest is stored. Every change (create, update, revoke) also bumps
``polyroute_meta.keys_revision`` in the same transaction, so gateways sharing the database
notice a change by reading one integer (see polyroute.api.auth.KeyStore).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from polyroute.config.schema import KeySettings
from polyroute.records.db import Database
from polyroute.records.model import DuplicateKey, KeyRecord
from polyroute.records.tables import KEYS_REVISION, keys, meta

_SETTING_COLUMNS = {
    "user": "end_user",
    "team": "team",
    "tier": "tier",
    "tags": "tags",
    "models": "models",
    "rpm": "rpm",
    "tpm": "tpm",
    "max_parallel": "max_parallel",
    "budget": "budget",
    "budget_period": "budget_period",
    "expires_at": "expires_at",
}


class KeyRepository:
    """Create, read, update and revoke virtual keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, key_id: str, key_hash: str, hint: str | None, settings: KeySettings
    ) -> KeyRecord:
        now = datetime.now(UTC)
        values = {
            "id": key_id,
            "key_hash": key_hash,
            "hint": hint,
            **_columns(settings),
            "created_at": now,
            "updated_at": now,
            "revoked_at": None,
        }
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(keys.insert().values(**values))
                await _bump(conn)
        except IntegrityError:
            raise DuplicateKey(key_id) from None
        return KeyRecord(key_id, key_hash, hint, settings, now, now)

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(keys).where(keys.c.id == key_id))).first()
        return None if row is None else _record(row._mapping)

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(keys).where(keys.c.key_hash == key_hash))).first()
        return None if row is None else _record(row._mapping)

    async def all(self) -> list[KeyRecord]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(keys).order_by(keys.c.created_at, keys.c.id))).all()
        return [_record(row._mapping) for row in rows]

    async def update(self, key_id: str, settings: KeySettings) -> KeyRecord | None:
        """Replace the key's settings; None if there is no such key."""
        now = datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(keys).where(keys.c.id == key_id).values(**_columns(settings), updated_at=now)
            )
            if result.rowcount == 0:
                return None
            await _bump(conn)
        return await self.get(key_id)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Mark the key revoked (kept for the records that name it); None if unknown."""
        now = datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(keys)
                .where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                .values(revoked_at=now, updated_at=now)
            )
            if result.rowcount:
                await _bump(conn)
        return await self.get(key_id)

    async def revision(self) -> int:
        """A counter that changes whenever any key does."""
        async with self.db.engine.connect() as conn:
            value = await conn.scalar(select(meta.c.value).where(meta.c.name == KEYS_REVISION))
        return int(value or 0)


async def _bump(conn: AsyncConnection) -> None:
    await conn.execute(
        update(meta).where(meta.c.name == KEYS_REVISION).values(value=meta.c.value + 1)
    )


def _columns(settings: KeySettings) -> dict[str, Any]:
    return {column: getattr(settings, field) for field, column in _SETTING_COLUMNS.items()}


def _record(row: RowMapping) -> KeyRecord:
    settings = KeySettings.model_validate(
        {field: row[column] for field, column in _SETTING_COLUMNS.items()}
        | {"tags": row["tags"] or []}
    )
    return KeyRecord(
        id=row["id"],
        key_hash=row["key_hash"],
        hint=row["hint"],
        settings=settings,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        revoked_at=row["revoked_at"],
    )
