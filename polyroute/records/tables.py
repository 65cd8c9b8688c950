"""The database schema (SQLAlchemy Core): request records, virtual keys, and a small
name -> integer table for the schema version and the keys' change counter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and read back as aware UTC datetimes on every database
    (SQLite keeps no zone, so the conversion happens here, not in the driver)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

NAME = 128  # names follow polyroute.config.schema.NAME_PATTERN (128 characters at most)
SHORT = 64
USER = 256

requests = Table(
    "polyroute_requests",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("request_id", String(SHORT), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("day", String(10), nullable=False),  # UTC YYYY-MM-DD, for reports by day
    Column("key_id", String(NAME)),
    Column("end_user", String(USER)),
    Column("kind", String(16)),
    Column("model", String(NAME)),  # what the client asked for (route or deployment)
    Column("route", String(NAME)),
    Column("deployment", String(NAME)),
    Column("strategy", String(SHORT)),
    Column("experiment", String(NAME)),
    Column("arm", String(NAME)),
    Column("stream", Boolean),
    Column("status", Integer),
    Column("ok", Boolean, nullable=False),
    Column("error_type", String(SHORT)),
    Column("error_code", String(SHORT)),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("attempts", Integer),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("images", Integer),
    Column("estimated", Boolean),
    Column("cost", Float),
    Index("ix_polyroute_requests_time", "time"),
    Index("ix_polyroute_requests_key_time", "key_id", "time"),
    Index("ix_polyroute_requests_request_id", "request_id"),
)

keys = Table(
    "polyroute_keys",
    metadata,
    Column("id", String(NAME), primary_key=True),
    Column("key_hash", String(SHORT), nullable=False, unique=True),  # hex SHA-256, never the key
    Column("hint", String(32)),
    Column("end_user", String(USER)),
    Column("team", String(NAME)),
    Column("tier", String(NAME)),
    Column("tags", JSON(none_as_null=True)),
    Column("models", JSON(none_as_null=True)),
    Column("rpm", BigInteger),
    Column("tpm", BigInteger),
    Column("max_parallel", BigInteger),
    Column("budget", Float),
    Column("budget_period", String(16), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

meta = Table(
    "polyroute_meta",
    metadata,
    Column("name", String(SHORT), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

SCHEMA_VERSION = "schema_version"
KEYS_REVISION = "keys_revision"
