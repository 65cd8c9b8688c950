"""The database: where it is, the async engine, and the schema migration run at start.

Migrations are explicit and additive. `metadata.create_all` creates whatever table is
missing (a new database gets the current schema and is stamped with `LATEST`); an existing
database whose ``polyroute_meta.schema_version`` is older gets the statements of each later
version from `MIGRATIONS`, in order, in the same transaction. Nothing is ever dropped or
renamed, so an older gateway keeps working against a newer schema during a rolling
upgrade. PostgreSQL serializes concurrent starts with an advisory lock; SQLite (several
workers on one file) retries the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from polyroute.config.schema import GatewayConfig
from polyroute.records.tables import KEYS_REVISION, SCHEMA_VERSION, meta, metadata

log = logging.getLogger("polyroute.records")

LATEST = 1
"""The schema version this code writes."""

MIGRATIONS: Mapping[int, Sequence[str]] = {
    # version: statements that bring a database from version - 1 to it, e.g.
    # 2: ("ALTER TABLE polyroute_requests ADD COLUMN region VARCHAR(64)",),
}

STATE_DIR_ENV = "POLYROUTE_STATE_DIR"
DEFAULT_FILE = "polyroute.db"
_ADVISORY_LOCK = 0x706F6C79  # "poly": one id for every polyroute migration


def database_url(config: GatewayConfig) -> str:
    """The SQLAlchemy URL for `config.records`, with async drivers and SQLite paths made
    absolute (relative ones are relative to the state directory: $POLYROUTE_STATE_DIR,
    else the config file's directory, else the working directory)."""
    raw = config.records.url.get_secret_value() if config.records.url is not None else ""
    base = _state_dir(config.source)
    if not raw:
        return f"sqlite+aiosqlite:///{base / DEFAULT_FILE}"
    url = make_url(raw)
    driver = url.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        path = Path(url.database).expanduser()
        url = url.set(database=str(path if path.is_absolute() else base / path))
    return url.render_as_string(hide_password=False)


def _state_dir(source: str) -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    path = Path(source)
    if path.is_file():
        return path.resolve().parent
    return Path.cwd()


def user_state_dir() -> Path:
    """$XDG_STATE_HOME/polyroute (~/.local/state/polyroute): where `polyroute demo` keeps
    its records, since its config file lives inside the installed package."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "polyroute"


def describe(url: str | URL) -> str:
    """The URL with any password masked: the only form that may be logged."""
    return make_url(url).render_as_string(hide_password=True)


def is_transient(exc: BaseException) -> bool:
    """A failure another attempt may not have: the database down, locked or restarting."""
    if isinstance(exc, (OperationalError, InterfaceError, OSError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Database:
    """An async engine with the settings polyroute relies on."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        options: dict[str, Any] = {"hide_parameters": True}  # no values in logs or errors
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}  # wait for other writers' locks
        else:
            options["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(parsed, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        _quiet_library_loggers()

    def __repr__(self) -> str:
        return f"Database({describe(self.url)!r})"

    async def migrate(
        self, migrations: Mapping[int, Sequence[str]] = MIGRATIONS, latest: int = LATEST
    ) -> int:
        """Create or upgrade the schema; returns the version the database is at now."""
        for attempt in range(5):
            try:
                async with self.engine.begin() as conn:
                    return await _migrate(conn, self.dialect, migrations, latest)
            except (OperationalError, IntegrityError):
                if self.dialect != "sqlite" or attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))  # another worker is creating it
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.engine.dispose()


async def _migrate(
    conn: AsyncConnection, dialect: str, migrations: Mapping[int, Sequence[str]], latest: int
) -> int:
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK})
    await conn.run_sync(metadata.create_all)
    found = await conn.scalar(select(meta.c.value).where(meta.c.name == SCHEMA_VERSION))
    if found is None:  # a new database: create_all made the current schema
        await conn.execute(
            meta.insert(),
            [{"name": SCHEMA_VERSION, "value": latest}, {"name": KEYS_REVISION, "value": 0}],
        )
        log.info("records: created schema version %d", latest)
        return latest
    version = int(found)
    if version > latest:
        log.warning(
            "records: the database is at schema version %d, newer than this gateway's %d; "
            "continuing (migrations only ever add)",
            version,
            latest,
        )
        return version
    for step in range(version + 1, latest + 1):
        for statement in migrations.get(step, ()):
            await conn.execute(text(statement))
        log.info("records: migrated the schema to version %d", step)
    if latest != version:
        await conn.execute(update(meta).where(meta.c.name == SCHEMA_VERSION).values(value=latest))
    return latest


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL: readers never block the writer, and several processes can share the file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _quiet_library_loggers() -> None:
    """Keep row data (key digests) out of logs even under a DEBUG root logger: SQLAlchemy
    and aiosqlite log rows at DEBUG. An operator who configured these loggers wins."""
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "asyncpg"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
