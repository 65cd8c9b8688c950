"""HTTP side of the dashboard and the playground.

- GET /dashboard, GET /playground: the pages; GET /dashboard/assets/{name}: their CSS and
  JS, read from this package (`static/`), so an installed wheel serves them offline.
- GET /admin/stats: the dashboard's live figures, behind the admin key like every
  /admin/* endpoint. Without `server.admin_key` it answers 403 (the dashboard says how to
  turn it on) rather than opening on loopback: behind a reverse proxy on the same host
  every caller is "loopback", and a page of any web site could read a loopback endpoint
  through DNS rebinding. The figures hold names and numbers, never a key or a URL.
- GET /playground/api/requests/{request_id}: what the gateway measured for one
  playground request (latency, attempts, tokens, cost), for the API key that sent it.

The pages talk only to this origin (`connect-src 'self'` in their CSP); the keys typed
into them stay in the tab's sessionStorage and travel only as Authorization headers.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files
from typing import Any

from aiohttp import web

from polyroute.api.admin import admin_endpoint
from polyroute.api.keys import GATEWAY
from polyroute.api.responses import error_response, json_response, new_request_id
from polyroute.errors import GatewayError, NotFound
from polyroute.gateway import Gateway
from polyroute.state.base import HealthStatus

ASSETS = {
    "style.css": "text/css",
    "common.js": "text/javascript",
    "charts.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "playground.js": "text/javascript",
}
PAGES = {"/dashboard": "dashboard.html", "/playground": "playground.html"}
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob: https:; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


@cache
def asset(name: str) -> bytes:
    """A packaged file of `static/` (read once)."""
    return (files("polyroute.dashboard") / "static" / name).read_bytes()


def add_routes(app: web.Application) -> None:
    """Register the pages, their assets and their JSON endpoints on `app`."""
    from polyroute.api.info import method_not_allowed

    for path, page in PAGES.items():
        app.router.add_get(path, _page(page))
        app.router.add_get(path + "/", _redirect(path))
    app.router.add_get("/dashboard/assets/{name}", _asset)
    app.router.add_get("/admin/stats", admin_endpoint(stats))
    app.router.add_get("/playground/api/requests/{request_id}", traced_request)
    for path in ("/dashboard", "/playground", "/admin/stats"):
        app.router.add_route("*", path, method_not_allowed)


def _page(name: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(
            body=asset(name), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    return handle


def _redirect(path: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        raise web.HTTPFound("../" + path.rsplit("/", 1)[-1])

    return handle


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        error = NotFound(f"no such asset: {name}", code="unknown_url")
        return error_response(error, new_request_id())
    return web.Response(
        body=asset(name), content_type=content_type, charset="utf-8", headers=PAGE_HEADERS
    )


async def stats(request: web.Request, gateway: Gateway) -> web.Response:
    """GET /admin/stats: live figures per route and deployment (see polyroute.dashboard)."""
    return json_response(live_stats(gateway))


def live_stats(gateway: Gateway) -> dict[str, Any]:
    traffic = gateway.traffic.snapshot()
    router = gateway.router
    deployments = router.deployments
    seen_routes: dict[str, Any] = traffic["routes"]
    route_names = [name for name in router.policies if name not in deployments]
    route_names += [name for name in seen_routes if name not in route_names]
    routes = [
        {
            "name": name,
            "strategy": router.policies[name].strategy.name if name in router.policies else None,
            "direct": name in deployments,
            "default": name == router.default_route,
            "stats": seen_routes.get(name),
        }
        for name in route_names
    ]
    executor = gateway.executor
    rows = []
    for name, deployment in deployments.items():
        live = executor.stats.get(name)
        rows.append(
            {
                "name": name,
                "kinds": sorted(kind.value for kind in deployment.kinds),
                "breaker": _breaker(executor.breakers.status(name)),
                "live": {
                    "in_flight": live.in_flight,
                    "latency_ewma_ms": _ms(live.latency),
                    "ttft_ewma_ms": _ms(live.ttft),
                    "error_rate": round(live.error_rate, 4),
                },
                "stats": traffic["deployments"].get(name),
            }
        )
    return {
        "uptime_s": traffic["uptime_s"],
        "window_s": traffic["window_s"],
        "history_s": traffic["history_s"],
        "step_s": traffic["step_s"],
        "worker_pid": os.getpid(),
        "ready": gateway.ready,
        "in_flight": gateway.in_flight,
        "total": traffic["total"],
        "routes": routes,
        "deployments": rows,
        "experiments": gateway.experiments.report(),
    }


def _breaker(status: HealthStatus) -> dict[str, Any]:
    return {
        "state": status.state,
        "reason": status.reason,
        "retry_in_s": status.retry_in,
        "ejections": status.ejections,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def traced_request(request: web.Request) -> web.Response:
    """GET /playground/api/requests/{id}: the gateway's figures for one playground request
    (sent with `x-polyroute-playground: 1`), shown only to the API key that sent it."""
    gateway: Gateway = request.app[GATEWAY]
    request_id = new_request_id()
    try:
        caller = await gateway.keys.authenticate(request.headers.get("authorization"))
        summary = gateway.traffic.traced(request.match_info["request_id"], caller.key_id)
        if summary is None:
            raise NotFound(
                "unknown request_id: the playground's recent requests are kept for the key "
                "that sent them",
                param="request_id",
                code="unknown_request_id",
            )
    except GatewayError as exc:
        return error_response(exc, request_id)
    return json_response(summary, headers={"x-request-id": request_id, "cache-control": "no-store"})
