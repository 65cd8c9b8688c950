"""GET /metrics: the Prometheus text exposition (see polyroute.observability.metrics).

Open by default, like most exporters (it shows names from the config and figures, never a
secret); with ``observability.metrics.key`` set, a scraper must send it as a bearer token
(Prometheus: ``authorization: {credentials: ...}``).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from polyroute.api.keys import GATEWAY
from polyroute.api.responses import error_response, new_request_id
from polyroute.errors import AuthenticationFailed, NotFound
from polyroute.gateway import Gateway
from polyroute.observability.metrics import Metrics


async def metrics(request: web.Request) -> web.Response:
    gateway: Gateway = request.app[GATEWAY]
    settings = gateway.config.observability.metrics
    registry = gateway.metrics
    if not isinstance(registry, Metrics):
        error = NotFound("metrics are off (observability.metrics.enabled: false)")
        return error_response(error, new_request_id())
    if settings.key is not None:
        sent = request.headers.get("authorization", "")
        expected = "Bearer " + settings.key.get_secret_value()
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            failure = AuthenticationFailed("/metrics needs the metrics key as a bearer token")
            return error_response(failure, new_request_id())
    body, content_type = registry.exposition()
    return web.Response(body=body, headers={"content-type": content_type})
