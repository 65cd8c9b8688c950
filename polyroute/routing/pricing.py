"""What a request would cost on a deployment, estimated before calling it.

Input tokens come from the context's estimate; output tokens from the request's
`max_tokens` (or `max_completion_tokens`), else an expected length, since most answers stop
well before any cap. Images are priced per image; embeddings by input only.
"""

from __future__ import annotations

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.kinds import EndpointKind
from polyroute.routing.target import Target

DEFAULT_OUTPUT_TOKENS = 256


def estimate_cost(
    ctx: RequestContext, target: Target, expected_output: int = DEFAULT_OUTPUT_TOKENS
) -> float:
    """Estimated USD for `ctx` on `target` (a route: its cheapest deployment)."""
    if isinstance(target, Deployment):
        return _deployment_cost(ctx, target, expected_output)
    from polyroute.routing.policy import Policy

    if isinstance(target, Policy):
        costs = [estimate_cost(ctx, t, expected_output) for t in target.strategy.targets]
        return min(costs) if costs else 0.0
    return 0.0


def _deployment_cost(ctx: RequestContext, deployment: Deployment, expected_output: int) -> float:
    price = deployment.price
    body = ctx.body
    if ctx.kind is EndpointKind.IMAGE:
        n = body.get("n")
        return price.per_image * (n if isinstance(n, int) and n > 0 else 1)
    tokens_in = ctx.token_estimate
    if ctx.kind is EndpointKind.EMBEDDING:
        return tokens_in * price.input_per_mtok / 1e6
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    tokens_out = cap if isinstance(cap, int) and cap > 0 else expected_output
    return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
