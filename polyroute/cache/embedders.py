"""An embedding deployment as the semantic cache's embedder (instead of the local one)."""

from __future__ import annotations

import numpy as np

from polyroute.cache.semantic import Embed, Vector
from polyroute.context import ANONYMOUS, RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import GatewayError
from polyroute.execution.executor import Executor
from polyroute.kinds import EndpointKind
from polyroute.routing.decision import Decision


def deployment_embedder(executor: Executor, deployment: Deployment) -> Embed:
    """Embeds through `deployment` with the executor's retries and breaker; a failure
    makes the lookup a miss (None), never the request's failure."""

    async def embed(text: str) -> Vector | None:
        body = {"model": deployment.name, "input": text}
        ctx = RequestContext(
            request_id="cache-embedding",
            kind=EndpointKind.EMBEDDING,
            model=deployment.name,
            body=body,
            caller=ANONYMOUS,
        )
        decision = Decision(route=deployment.name, strategy="cache", plan=[deployment])
        try:
            done = await executor.complete(ctx, decision, body)
            values = done.data["data"][0]["embedding"]
            vector = np.asarray(values, dtype=np.float32)
        except (GatewayError, KeyError, IndexError, TypeError, ValueError):
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else None

    return embed
