"""The schema: created at start, stamped with its version, migrated by additive steps;
the database URL: defaults, relative SQLite paths, async drivers, no password in logs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from polyroute.config.loader import load_config, parse_config
from polyroute.gateway import Gateway
from polyroute.records.db import LATEST, Database, database_url, describe
from tests.records.pg import pg_rows, postgres_database

MODELS = "models:\n  - {name: m, provider: simulator, profile: instant}\n"


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        query = "SELECT value FROM polyroute_meta WHERE name = 'schema_version'"
        return int(conn.execute(query).fetchone()[0])


async def test_new_database_gets_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert await db.migrate() == LATEST
    assert await db.migrate() == LATEST  # a second start changes nothing
    await db.aclose()
    assert version(path) == LATEST
    assert {"request_id", "key_id", "cost", "cached_tokens", "ttft_ms"} <= columns(
        path, "polyroute_requests"
    )
    assert "key_hash" in columns(path, "polyroute_keys")
    assert "key" not in columns(path, "polyroute_keys")


async def test_an_older_database_is_migrated_by_additive_steps(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()  # the database as version LATEST left it
    steps = {
        LATEST + 1: ["ALTER TABLE polyroute_requests ADD COLUMN region VARCHAR(64)"],
        LATEST + 2: ["CREATE INDEX ix_region ON polyroute_requests (region)"],
    }
    assert await db.migrate(steps, LATEST + 2) == LATEST + 2
    assert await db.migrate(steps, LATEST + 2) == LATEST + 2  # steps run once
    # an older gateway against the newer schema keeps working (migrations only add)
    assert await db.migrate() == LATEST + 2
    await db.aclose()
    assert "region" in columns(path, "polyroute_requests")
    assert version(path) == LATEST + 2


async def test_postgresql_schema_and_migration() -> None:
    with postgres_database() as url:
        db = Database(url)
        assert await db.migrate() == LATEST
        steps = {LATEST + 1: ["ALTER TABLE polyroute_requests ADD COLUMN region VARCHAR(64)"]}
        assert await db.migrate(steps, LATEST + 1) == LATEST + 1
        await db.aclose()
        found = await pg_rows(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'polyroute_requests'",
        )
        assert "region" in {r["column_name"] for r in found}


def test_default_url_is_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLYROUTE_STATE_DIR", raising=False)
    path = tmp_path / "gw.yaml"
    path.write_text(MODELS)
    assert database_url(load_config(path)) == f"sqlite+aiosqlite:///{tmp_path}/polyroute.db"
    path.write_text(MODELS + "records: {url: 'sqlite:///data/r.db'}\n")
    assert database_url(load_config(path)) == f"sqlite+aiosqlite:///{tmp_path}/data/r.db"
    monkeypatch.setenv("POLYROUTE_STATE_DIR", str(tmp_path / "state"))
    path.write_text(MODELS)
    assert database_url(load_config(path)) == f"sqlite+aiosqlite:///{tmp_path}/state/polyroute.db"


def test_postgres_urls_get_asyncpg_and_passwords_stay_out_of_descriptions() -> None:
    config = parse_config(
        MODELS + "records: {url: '${DB_URL}'}\n",
        environ={"DB_URL": "postgresql://u:hunter2-secret@db.example:5432/pr"},
    )
    url = database_url(config)
    assert url.startswith("postgresql+asyncpg://u:hunter2-secret@")
    assert "hunter2-secret" not in describe(url)
    assert "hunter2-secret" not in repr(config)
    assert "hunter2-secret" not in repr(Gateway.from_config(config).records)


def test_an_unusable_url_is_a_config_error_without_the_url() -> None:
    from polyroute.config import ConfigError

    config = parse_config(MODELS + "records: {url: 'nosuchdb+driver://u:pw-secret-1@h/x'}\n")
    with pytest.raises(ConfigError) as caught:
        Gateway.from_config(config)
    assert "records" in str(caught.value)
    assert "pw-secret-1" not in str(caught.value)


def test_records_can_be_turned_off() -> None:
    gateway = Gateway.from_config(parse_config(MODELS + "records: {enabled: false}\n"))
    assert gateway.records is None
