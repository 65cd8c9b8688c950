"""The response cache: exact (by a hash of the normalized request) and semantic (by the
similarity of the latest user turn), scoped per route and tenant. See response_cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.cache.keys import CachePlan
from polyroute.cache.response_cache import Hit, ResponseCache
from polyroute.cache.semantic import Embed, SemanticIndex
from polyroute.cache.store import CachedAnswer, CacheStore, MemoryStore, RedisStore
from polyroute.config.schema import CacheConfig

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection


def build_cache(
    config: CacheConfig, redis: RedisConnection | None = None, embed: Embed | None = None
) -> ResponseCache | None:
    """The cache `config` asks for (None when off); `redis` for `backend: redis`, `embed`
    when the semantic cache uses an embedding deployment."""
    if not config.enabled:
        return None
    local = MemoryStore(config.max_entries, config.max_bytes)
    store: CacheStore = local
    if config.backend == "redis" and redis is not None:
        store = RedisStore(redis, local)
    semantic = None
    if config.semantic.enabled:
        semantic = SemanticIndex(config.semantic.threshold, config.semantic.max_entries, embed)
    return ResponseCache(config, store, semantic)


__all__ = [
    "CachePlan",
    "CacheStore",
    "CachedAnswer",
    "Hit",
    "MemoryStore",
    "RedisStore",
    "ResponseCache",
    "build_cache",
]
