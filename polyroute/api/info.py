"""The gateway's own endpoints: model list, dry-run routing, liveness and readiness."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from polyroute.api.incoming import make_context, read_request
from polyroute.api.keys import GATEWAY
from polyroute.api.responses import error_response, internal_error, json_response, new_request_id
from polyroute.errors import GatewayError, InvalidRequest, NotFound
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models: the routes and deployments a client may name as `model`."""
    gateway: Gateway = request.app[GATEWAY]
    request_id = new_request_id()
    try:
        caller = await gateway.keys.authenticate(request.headers.get("authorization"))
    except GatewayError as exc:
        return error_response(exc, request_id)
    data = [_model_entry(gateway, name) for name in gateway.router.listed if caller.may_use(name)]
    return json_response({"object": "list", "data": data}, headers={"x-request-id": request_id})


def _model_entry(gateway: Gateway, name: str) -> dict[str, Any]:
    policy = gateway.router.policies[name]
    is_route = name not in gateway.router.deployments
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "polyroute",
        "polyroute": {
            "type": "route" if is_route else "deployment",
            "strategy": policy.strategy.name,
            "kinds": sorted(kind.value for kind in policy.kinds),
        },
    }


async def dry_run_route(request: web.Request) -> web.Response:
    """POST /v1/route: the decision for a request body, without calling any model.

    The body is any of the four request bodies; `endpoint` (chat, completion, embedding,
    image) says which, else it is inferred (messages -> chat, input -> embedding,
    prompt -> completion).
    """
    gateway: Gateway = request.app[GATEWAY]
    request_id = new_request_id()
    try:
        caller, body = await read_request(request, gateway)
        kind = _kind_of(body)
        body = {k: v for k, v in body.items() if k != "endpoint"}
        ctx = make_context(request, kind, body, caller, request_id)
        ctx.budget_left = gateway.limits.budget_left(ctx)
        decision = gateway.router.decide(ctx)
    except GatewayError as exc:
        return error_response(exc, request_id)
    except Exception:
        return internal_error(request_id)
    explanation = {
        "request_id": request_id,
        "kind": kind.value,
        "token_estimate": ctx.token_estimate,
        **decision.explain(),
    }
    return json_response(explanation, headers={"x-request-id": request_id})


def _kind_of(body: dict[str, Any]) -> EndpointKind:
    endpoint = body.get("endpoint")
    if endpoint is not None:
        try:
            return EndpointKind(endpoint)
        except ValueError:
            choices = ", ".join(kind.value for kind in EndpointKind)
            raise InvalidRequest(f"endpoint must be one of {choices}", param="endpoint") from None
    if "messages" in body:
        return EndpointKind.CHAT
    if "input" in body:
        return EndpointKind.EMBEDDING
    return EndpointKind.COMPLETION


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: start-up finished (upstream pools open) and not shutting down."""
    ready = request.app[GATEWAY].ready
    return json_response({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


async def not_found(request: web.Request) -> web.Response:
    error = NotFound(f"no such endpoint: {request.method} {request.path}", code="unknown_url")
    return error_response(error, new_request_id())


async def method_not_allowed(request: web.Request) -> web.Response:
    error = InvalidRequest(f"method {request.method} is not allowed on {request.path}")
    error.status = 405
    error.code = "method_not_allowed"
    return error_response(error, new_request_id())
