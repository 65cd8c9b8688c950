"""A throwaway PostgreSQL database per test module on the real server at 127.0.0.1:5432.

scripts/services.sh starts the server in CI; without it (a developer machine without
PostgreSQL) the tests that need it are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import pytest

PG_HOST = os.environ.get("POLYROUTE_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("POLYROUTE_TEST_PG_USER", "postgres")
ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:5432/postgres"


async def _execute(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _admin(statement: str) -> None:
    """Run on a thread of its own: callers may be inside an event loop already."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _execute(statement)).result()


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create `polyroute_test_<random>`; yields its SQLAlchemy URL; drops it afterwards."""
    name = "polyroute_test_" + secrets.token_hex(6)
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at {PG_HOST}:5432 is not available ({type(exc).__name__})")
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def pg_rows(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Run `query` on the database of `url` (a postgresql+asyncpg URL)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
