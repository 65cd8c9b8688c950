"""Executor: runs a Decision's plan, primary first, falling back on retryable failures.

This is the seam the resilience work extends (per-attempt timeouts, backoff, breakers,
budgets); the API layer only calls `complete` and `stream`. Today it tries each deployment
of the plan at most once, in order, moving on for failures another deployment may not
have (connection errors, timeouts, 429, 5xx, our upstream credential refused, an invalid
body) and stopping at the client's own errors (other 4xx), which no fallback can fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import NoDeploymentAvailable, UpstreamBadResponse, UpstreamError
from polyroute.execution.upstream_errors import error_from_response
from polyroute.providers.base import Provider, UpstreamRequest, UpstreamResponse
from polyroute.routing.decision import Decision


@dataclass(slots=True)
class Completed:
    """A whole JSON answer: the raw bytes (forwarded unchanged) and their parsed form
    (parsed once: it proves the upstream sent JSON, and usage accounting reads it)."""

    deployment: Deployment
    attempts: int
    status: int
    body: bytes
    data: dict[str, Any]


@dataclass(slots=True)
class Streaming:
    """An open stream whose first chunk has already arrived (so falling back is over)."""

    deployment: Deployment
    attempts: int
    status: int
    headers: Mapping[str, str]
    first_chunk: bytes
    rest: AsyncIterator[bytes]
    response: UpstreamResponse


class Executor:
    """Runs plans against the providers of a config's deployments."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self.providers = dict(providers)

    async def complete(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Completed:
        """Non-streaming: the first deployment of the plan that returns valid JSON."""
        last: UpstreamError | None = None
        for attempt, deployment in enumerate(decision.plan, start=1):
            try:
                response = await self._send(ctx, deployment, body, stream=False)
                payload = await response.read()
                if response.status >= 300:
                    raise error_from_response(
                        deployment.name,
                        response.status,
                        response.headers,
                        payload,
                        deployment.secrets,
                    )
                data = _parse_json(payload, deployment.name)
                return Completed(deployment, attempt, response.status, payload, data)
            except UpstreamError as exc:
                last = _annotate(exc, deployment, attempt)
                if not exc.retryable:
                    raise last from None
        raise _exhausted(last, decision)

    async def stream(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Streaming:
        """Streaming: the first deployment whose SSE stream yields a first chunk.

        The upstream response is closed on every way out except the hand-off, including
        cancellation (the client went away), so its connection never lingers.
        """
        last: UpstreamError | None = None
        for attempt, deployment in enumerate(decision.plan, start=1):
            response: UpstreamResponse | None = None
            try:
                response = await self._send(ctx, deployment, body, stream=True)
                first, chunks = await _first_chunk(response, deployment)
                opened = Streaming(
                    deployment, attempt, response.status, response.headers, first, chunks, response
                )
                response = None  # handed off: the caller closes it
                return opened
            except UpstreamError as exc:
                last = _annotate(exc, deployment, attempt)
                if not exc.retryable:
                    raise last from None
            finally:
                if response is not None:
                    await response.aclose()
        raise _exhausted(last, decision)

    async def _send(
        self, ctx: RequestContext, deployment: Deployment, body: dict[str, Any], *, stream: bool
    ) -> UpstreamResponse:
        upstream_body = {**body, "model": deployment.upstream_model}
        request = UpstreamRequest(
            kind=ctx.kind,
            body=upstream_body,
            stream=stream,
            request_id=ctx.request_id,
            timeouts=deployment.timeouts,
        )
        return await self.providers[deployment.name].send(request)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


async def _first_chunk(
    response: UpstreamResponse, target: Deployment
) -> tuple[bytes, AsyncIterator[bytes]]:
    """Check the stream is a successful SSE stream and read its first chunk; after that
    first byte reaches the client, falling back is no longer possible."""
    deployment = target.name
    if response.status >= 300:
        payload = await response.read()
        raise error_from_response(
            deployment, response.status, response.headers, payload, target.secrets
        )
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise UpstreamBadResponse(
            f"deployment {deployment}: expected an event stream, got {content_type or 'no type'}",
            deployment=deployment,
        )
    chunks = aiter(response.iter_chunks())
    first = await anext(chunks, b"")
    if not first:
        raise UpstreamBadResponse(f"deployment {deployment}: empty stream", deployment=deployment)
    return first, chunks


def _parse_json(payload: bytes, deployment: str) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamBadResponse(
            f"deployment {deployment}: the upstream answered with invalid JSON",
            deployment=deployment,
        )
    return data


def _annotate(error: UpstreamError, deployment: Deployment, attempts: int) -> UpstreamError:
    error.deployment = deployment.name
    error.headers["x-polyroute-deployment"] = deployment.name
    error.headers["x-polyroute-attempts"] = str(attempts)
    if attempts > 1 or not error.retryable:
        # the gateway already tried elsewhere (or retrying cannot help): tell the SDK not
        # to multiply attempts on top of ours
        error.should_retry = False
    return error


def _exhausted(last: UpstreamError | None, decision: Decision) -> UpstreamError:
    if last is None:
        return NoDeploymentAvailable(f"route {decision.route}: no deployment to try")
    return last
