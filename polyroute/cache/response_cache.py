"""The response cache the request path uses: exact hits first, then semantic ones.

Only successful whole answers are stored (never errors, never partial streams); an answer
to a streaming request is stored once its stream completed properly. A hit is answered
without routing or calling any model: as JSON, or replayed as SSE events for a streaming
request. Policy for non-deterministic requests: by default only requests at temperature 0
are cached (`cache.max_temperature`; an absent temperature counts as OpenAI's default of
1.0), because a client that samples at temperature 1 asks for a fresh answer each time;
set `max_temperature: null` to cache everything.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from polyroute.cache.keys import DELIVERY_FIELDS, CachePlan, plan_for
from polyroute.cache.semantic import SemanticIndex
from polyroute.cache.store import CachedAnswer, CacheStore, wall_clock
from polyroute.config.schema import CacheConfig
from polyroute.context import RequestContext
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage

SEMANTIC_KINDS = frozenset({EndpointKind.CHAT, EndpointKind.COMPLETION})


@dataclass(frozen=True, slots=True)
class Hit:
    answer: CachedAnswer
    similarity: float | None  # None: an exact hit

    def headers(self) -> dict[str, str]:
        headers = {"x-polyroute-cache": "hit", "x-polyroute-cache-age": f"{self.answer.age:.0f}"}
        if self.similarity is not None:
            headers["x-polyroute-cache-similarity"] = f"{self.similarity:.3f}"
        return headers


class ResponseCache:
    def __init__(
        self, config: CacheConfig, store: CacheStore, semantic: SemanticIndex | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.semantic = semantic
        self.hits = 0
        self.semantic_hits = 0
        self.misses = 0
        self._pending: set[asyncio.Task[None]] = set()

    def plan(self, ctx: RequestContext) -> CachePlan | None:
        return plan_for(ctx, self.config)

    async def lookup(self, ctx: RequestContext, plan: CachePlan) -> Hit | None:
        answer = await self.store.get(plan.key)
        if answer is not None:
            self.hits += 1
            return Hit(answer, None)
        if self.semantic is not None and ctx.kind in SEMANTIC_KINDS:
            match = await self.semantic.find(_bucket(ctx, plan.tenant), ctx.last_user_text)
            if match is not None:
                answer = await self.store.get(match.key)
                if answer is not None:
                    self.semantic_hits += 1
                    return Hit(answer, match.similarity)
        self.misses += 1
        return None

    def keep(
        self,
        ctx: RequestContext,
        plan: CachePlan,
        deployment: str,
        body: bytes,
        usage: Usage | None,
    ) -> None:
        """Store an answer without making the client wait for the store (Redis) or the
        semantic index (an embedding call)."""
        answer = CachedAnswer(body, deployment, wall_clock(), usage)
        task = asyncio.get_running_loop().create_task(self._keep(ctx, plan, answer))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _keep(self, ctx: RequestContext, plan: CachePlan, answer: CachedAnswer) -> None:
        await self.store.set(plan.key, answer, self.config.ttl)
        if self.semantic is not None and ctx.kind in SEMANTIC_KINDS:
            await self.semantic.add(_bucket(ctx, plan.tenant), ctx.last_user_text, plan.key)

    async def drain(self) -> None:
        """Finish pending stores (tests; graceful shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def snapshot(self) -> dict[str, Any]:
        return {"hits": self.hits, "semantic_hits": self.semantic_hits, "misses": self.misses}


def _bucket(ctx: RequestContext, tenant: str) -> str:
    """Everything but the latest user turn: what must be identical for a semantic hit."""
    body: dict[str, Any] = {k: v for k, v in ctx.body.items() if k not in DELIVERY_FIELDS}
    if ctx.kind is EndpointKind.CHAT:
        messages = list(body.get("messages") or [])
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if isinstance(message, dict) and message.get("role") == "user":
                messages[index] = {**message, "content": None}
                break
        body["messages"] = messages
    else:
        body["prompt"] = None
    digest = hashlib.sha256(f"{ctx.kind.value}\x00{ctx.model}\x00{tenant}\x00".encode())
    digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
