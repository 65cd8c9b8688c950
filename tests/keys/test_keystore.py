"""KeyStore: config keys and stored virtual keys in one map; expiry, revocation, keys made
by another instance (miss lookups, negative cache, lookup budget), refresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from polyroute.api.auth import BAD_KEY, MISS_LOOKUPS_PER_SECOND, KeyStore, hash_key
from polyroute.config.schema import KeyConfig, KeySettings
from polyroute.context import ANONYMOUS
from polyroute.errors import AuthenticationFailed
from polyroute.records.db import Database
from polyroute.records.keys import KeyRepository


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[KeyRepository]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await db.migrate()
    yield KeyRepository(db)
    await db.aclose()


async def create(repo: KeyRepository, key_id: str, plain: str, **settings: object) -> None:
    await repo.create(key_id, hash_key(plain).hex(), None, KeySettings.model_validate(settings))


async def refused(store: KeyStore, plain: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        await store.authenticate(f"Bearer {plain}")
    assert caught.value.status == 401
    return caught.value.message


async def test_expired_config_key_is_refused_like_a_wrong_one() -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(days=1)
    store = KeyStore(
        [
            KeyConfig(id="old", key="sk-old-key-0001", expires_at=past),  # type: ignore[arg-type]
            KeyConfig(id="new", key="sk-new-key-0001", expires_at=future),  # type: ignore[arg-type]
        ]
    )
    assert (await store.authenticate("Bearer sk-new-key-0001")).key_id == "new"
    assert await refused(store, "sk-old-key-0001") == BAD_KEY
    assert await refused(store, "sk-not-a-key-01") == BAD_KEY


async def test_no_keys_anywhere_means_anonymous(repo: KeyRepository) -> None:
    store = KeyStore([], repo)
    await store.start()
    try:
        assert await store.authenticate(None) is ANONYMOUS
        assert await store.authenticate("Bearer sk-anything") is ANONYMOUS
        assert store.lookups == 0  # auth off: no database query on the request path
    finally:
        await store.aclose()


async def test_stored_keys_load_at_start_with_their_settings(repo: KeyRepository) -> None:
    await create(repo, "a", "sk-pr-aaaaaaaaaa", team="t", tier="vip", models=["m"], rpm=5)
    store = KeyStore([], repo)
    await store.start()
    try:
        caller = await store.authenticate("Bearer sk-pr-aaaaaaaaaa")
        assert (caller.key_id, caller.team, caller.tier) == ("a", "t", "vip")
        assert caller.allowed_models == frozenset({"m"})
        assert caller.limits.rpm == 5
        assert store.lookups == 0
    finally:
        await store.aclose()


async def test_key_made_elsewhere_works_at_once_and_misses_are_cached(
    repo: KeyRepository,
) -> None:
    """Instance B learns of a key instance A just created on its first use (one lookup);
    an unknown key costs one lookup per refresh period, however often it is sent."""
    await create(repo, "first", "sk-pr-first-0000")
    store = KeyStore([], repo, refresh=60)
    await store.start()
    try:
        await create(repo, "second", "sk-pr-second-000")  # "on another instance"
        callers = await asyncio.gather(
            *(store.authenticate("Bearer sk-pr-second-000") for _ in range(5))
        )
        assert {c.key_id for c in callers} == {"second"}
        assert store.lookups == 1  # concurrent first uses share one lookup
        for _ in range(5):
            await refused(store, "sk-pr-unknown-00")
        assert store.lookups == 2
    finally:
        await store.aclose()


async def test_made_up_keys_cannot_flood_the_database(repo: KeyRepository) -> None:
    await create(repo, "k", "sk-pr-kkkkkkkkkk")
    store = KeyStore([], repo, refresh=60)
    await store.start()
    try:
        for n in range(200):
            await refused(store, f"sk-made-up-{n:06d}")
        assert store.lookups <= MISS_LOOKUPS_PER_SECOND + 5
    finally:
        await store.aclose()


async def test_revocation_and_changes_reach_other_instances(repo: KeyRepository) -> None:
    await create(repo, "k", "sk-pr-kkkkkkkkkk", models=["m"])
    other = KeyStore([], repo, refresh=0.05)
    await other.start()
    try:
        assert (await other.authenticate("Bearer sk-pr-kkkkkkkkkk")).allowed_models == {"m"}
        await repo.update("k", KeySettings(models=["m", "n"]))
        await asyncio.sleep(0.3)
        assert (await other.authenticate("Bearer sk-pr-kkkkkkkkkk")).allowed_models == {"m", "n"}
        await repo.revoke("k")
        await asyncio.sleep(0.3)
        assert await refused(other, "sk-pr-kkkkkkkkkk") == BAD_KEY
        # the last key revoked: authentication stays on
        assert other.enabled
        await refused(other, "sk-anything-00")
    finally:
        await other.aclose()
