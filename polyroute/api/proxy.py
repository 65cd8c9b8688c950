"""The proxied endpoints: chat, completions, embeddings, images.

One request path for all four: authenticate, read and validate the body once, build the
RequestContext, route, execute, answer (JSON, or SSE for `stream: true`). The upstream's
bytes are forwarded unchanged; only the `model` field sent upstream is rewritten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from polyroute.api.body import read_json
from polyroute.api.keys import GATEWAY
from polyroute.api.responses import (
    JSON,
    decision_headers,
    error_response,
    internal_error,
    new_request_id,
)
from polyroute.api.sse import SSE_HEADERS, error_event
from polyroute.api.validation import validate
from polyroute.context import RequestContext
from polyroute.errors import GatewayError, UpstreamError
from polyroute.gateway import Gateway
from polyroute.kinds import TEXT_KINDS, EndpointKind
from polyroute.routing.decision import Decision

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def proxy_handler(kind: EndpointKind) -> Handler:
    """The aiohttp handler for one endpoint kind."""

    async def handle(request: web.Request) -> web.StreamResponse:
        gateway: Gateway = request.app[GATEWAY]
        request_id = new_request_id()
        decision: Decision | None = None
        try:
            caller = gateway.keys.authenticate(request.headers.get("authorization"))
            body = await read_json(request, gateway.config.server.max_body_bytes)
            validate(kind, body)
            ctx = RequestContext(
                request_id=request_id,
                kind=kind,
                model=body.get("model") or "",
                body=body,
                caller=caller,
                headers=request.headers,
            )
            decision = gateway.router.decide(ctx)
            if ctx.stream and kind in TEXT_KINDS:
                return await _stream(request, gateway, ctx, decision, body)
            done = await gateway.executor.complete(ctx, decision, body)
            headers = decision_headers(request_id, decision, done.deployment.name, done.attempts)
            return web.Response(
                body=done.body, status=done.status, content_type=JSON, headers=headers
            )
        except GatewayError as exc:
            return error_response(exc, request_id, decision)
        except Exception:
            return internal_error(request_id)

    handle.__name__ = f"{kind.value}_handler"
    return handle


async def _stream(
    request: web.Request,
    gateway: Gateway,
    ctx: RequestContext,
    decision: Decision,
    body: dict[str, Any],
) -> web.StreamResponse:
    opened = await gateway.executor.stream(ctx, decision, body)
    headers = {
        **SSE_HEADERS,
        **decision_headers(ctx.request_id, decision, opened.deployment.name, opened.attempts),
    }
    response = web.StreamResponse(status=opened.status, headers=headers)
    try:
        await response.prepare(request)
        await response.write(opened.first_chunk)
        try:
            async for chunk in opened.rest:
                await response.write(chunk)
        except UpstreamError as exc:
            await response.write(error_event(exc))
            return response
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; closing the upstream below cancels its work
    finally:
        await opened.response.aclose()
    return response
