"""POST /v1/feedback and GET /admin/experiments."""

from __future__ import annotations

from aiohttp import web

from polyroute.api.admin import require_admin
from polyroute.api.body import read_json
from polyroute.api.keys import GATEWAY
from polyroute.api.responses import error_response, json_response, new_request_id
from polyroute.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from polyroute.gateway import Gateway
from polyroute.outcomes import Feedback


async def feedback(request: web.Request) -> web.Response:
    """Score a served request: {"request_id": "...", "score": 0..1, "label": "..."}."""
    gateway: Gateway = request.app[GATEWAY]
    request_id = new_request_id()
    try:
        await gateway.keys.authenticate(request.headers.get("authorization"))
        body = await read_json(request, 65536)
        target = body.get("request_id")
        score = body.get("score")
        if not isinstance(target, str) or not target:
            raise InvalidRequest(
                "request_id must be the x-request-id of a response", param="request_id"
            )
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 1:
            raise InvalidRequest("score must be a number between 0 and 1", param="score")
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            raise InvalidRequest("label must be a string", param="label")
        found = gateway.observers.feedback(Feedback(target, float(score), label))
        if found is None:
            raise NotFound(
                "unknown request_id: feedback is kept for recent requests served by an A/B "
                "or adaptive route",
                param="request_id",
                code="unknown_request_id",
            )
    except (InvalidRequest, NotFound, AuthenticationFailed) as exc:
        return error_response(exc, request_id)
    return json_response(
        {"request_id": target, **found, "recorded": True},
        headers={"x-request-id": request_id},
    )


async def experiments(request: web.Request) -> web.Response:
    """GET /admin/experiments: per-arm results with 95 % confidence intervals."""
    gateway: Gateway = request.app[GATEWAY]
    request_id = new_request_id()
    try:
        require_admin(request, gateway)
    except (PermissionDenied, AuthenticationFailed) as exc:
        return error_response(exc, request_id)
    return json_response(
        {"experiments": gateway.experiments.report()}, headers={"x-request-id": request_id}
    )
