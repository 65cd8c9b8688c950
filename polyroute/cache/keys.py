"""Which requests may be answered from the cache, and the key they are stored under.

The key is a hash of what changes an answer: the endpoint kind, the route alias asked for,
the tenant (the API key's id: one key never reads another's answers) and the request body
in canonical form (sorted keys), minus the fields that only change how the answer is
delivered or attributed (`stream`, `stream_options`, `user`, `metadata`, `store`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from polyroute.config.schema import CacheConfig
from polyroute.context import RequestContext
from polyroute.kinds import EndpointKind

CACHED_KINDS = frozenset({EndpointKind.CHAT, EndpointKind.COMPLETION, EndpointKind.EMBEDDING})
DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})
OPENAI_DEFAULT_TEMPERATURE = 1.0
ANONYMOUS_TENANT = "-"


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What the cache may do for one request."""

    key: str
    tenant: str
    lookup: bool  # False with `cache-control: no-cache`: fetch fresh, then store


def plan_for(ctx: RequestContext, config: CacheConfig) -> CachePlan | None:
    """The cache plan for `ctx`, or None if its answer must not come from or go to the cache."""
    if ctx.kind not in CACHED_KINDS:
        return None
    if config.routes is not None and ctx.model not in config.routes:
        return None
    body = ctx.body
    if ctx.kind is not EndpointKind.EMBEDDING and config.max_temperature is not None:
        temperature = body.get("temperature", OPENAI_DEFAULT_TEMPERATURE)
        if temperature is None:
            temperature = OPENAI_DEFAULT_TEMPERATURE
        if not isinstance(temperature, (int, float)) or temperature > config.max_temperature:
            return None
    directives = _cache_control(ctx)
    if "no-store" in directives:
        return None
    tenant = ctx.caller.key_id or ANONYMOUS_TENANT
    lookup = "no-cache" not in directives
    return CachePlan(key=request_key(ctx, tenant), tenant=tenant, lookup=lookup)


def request_key(ctx: RequestContext, tenant: str) -> str:
    significant = {k: v for k, v in ctx.body.items() if k not in DELIVERY_FIELDS}
    canonical = orjson.dumps(significant, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    for part in (ctx.kind.value, ctx.model, tenant):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(canonical)
    return digest.hexdigest()


def _cache_control(ctx: RequestContext) -> set[str]:
    raw = ctx.header("cache-control")
    if not raw:
        return set()
    return {part.strip().lower() for part in raw.split(",")}
