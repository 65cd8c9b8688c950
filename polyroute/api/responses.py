"""Building responses: JSON bodies, decision headers, and errors in the OpenAI shape."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson
from aiohttp import web

from polyroute.errors import GatewayError
from polyroute.routing.decision import Decision

log = logging.getLogger("polyroute.api")
JSON = "application/json"


class _RequestIds:
    """Request ids that sort by time and cannot be guessed: ``req_``, the Unix time in
    milliseconds (12 hex digits), then 96 random bits.

    Time first, as in ULIDs and UUIDv7, so that the records' index on request ids grows
    at one end: with random ids every row of a batch dirtied its own index page (about
    one page write per record, half of what writing records cost the gateway's CPU).
    The random part is drawn from the OS 256 ids at a time (a getrandom call per request
    showed as ~5 % of the gateway's CPU under load). A forked worker empties its copy of
    the pool, so workers never share ids."""

    __slots__ = ("_offset", "_pool")
    _BATCH = 256

    def __init__(self) -> None:
        self._pool = ""
        self._offset = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._pool = ""
        self._offset = 0

    def next(self) -> str:
        offset = self._offset
        if offset >= len(self._pool):
            self._pool = os.urandom(12 * self._BATCH).hex()
            offset = 0
        self._offset = offset + 24
        millis = (time.time_ns() // 1_000_000).to_bytes(6, "big").hex()  # 12 hex digits
        return f"req_{millis}{self._pool[offset : offset + 24]}"


new_request_id = _RequestIds().next


def decision_headers(
    request_id: str, decision: Decision, deployment: str, attempts: int
) -> dict[str, str]:
    """The short form of a decision every proxied response carries."""
    headers = {
        "x-request-id": request_id,
        "x-polyroute-route": decision.route,
        "x-polyroute-deployment": deployment,
        "x-polyroute-strategy": decision.strategy,
        "x-polyroute-attempts": str(attempts),
    }
    if decision.degraded:
        headers["x-polyroute-degraded"] = "true"
    if decision.panic:
        headers["x-polyroute-panic"] = "true"
    if decision.arm is not None:
        headers["x-polyroute-arm"] = f"{decision.experiment}/{decision.arm}"
    return headers


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_response(
    error: GatewayError, request_id: str, decision: Decision | None = None
) -> web.Response:
    """The OpenAI error body for `error`, with the request id and any decision headers."""
    headers = {"x-request-id": request_id}
    if decision is not None:
        headers["x-polyroute-route"] = decision.route
        headers["x-polyroute-strategy"] = decision.strategy
    headers.update(error.headers)
    if error.should_retry is not None:
        headers["x-should-retry"] = "true" if error.should_retry else "false"
    return json_response(error.body(), status=error.status, headers=headers)


def internal_error(request_id: str) -> web.Response:
    """For bugs: logged with the traceback server-side, a plain message to the client."""
    log.exception("unhandled error in request %s", request_id)
    error = GatewayError(f"internal gateway error (request id {request_id})")
    return error_response(error, request_id)
