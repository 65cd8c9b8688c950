"""The steps every routed request shares: authenticate, read the body once, validate, and
build the RequestContext (used by the proxied endpoints and the /v1/route dry run)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from polyroute.api.body import read_json
from polyroute.api.validation import validate
from polyroute.context import Caller, RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind


async def read_request(request: web.Request, gateway: Gateway) -> tuple[Caller, dict[str, Any]]:
    """The caller (checked before the body is read) and the parsed JSON body."""
    caller = await gateway.keys.authenticate(request.headers.get("authorization"))
    body = await read_json(request, gateway.config.server.max_body_bytes)
    return caller, body


def make_context(
    request: web.Request,
    kind: EndpointKind,
    body: dict[str, Any],
    caller: Caller,
    request_id: str,
) -> RequestContext:
    """Validate `body` as a `kind` request and wrap it for routing."""
    validate(kind, body)
    return RequestContext(
        request_id=request_id,
        kind=kind,
        model=body.get("model") or "",
        body=body,
        caller=caller,
        headers=request.headers,
    )
