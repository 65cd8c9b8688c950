"""The aiohttp application: routes, start-up and shutdown of the Gateway.

aiohttp serves the edge because the bench harness measured its server + client as the
cheapest Python hop on this machine kind; handlers catch their own errors (no middleware
layer), which keeps the per-request path to one function call deep.
"""

from __future__ import annotations

from aiohttp import web

from polyroute.api import admin, experiments, info, metrics
from polyroute.api.keys import GATEWAY
from polyroute.api.proxy import proxy_handler
from polyroute.dashboard import views as dashboard
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind

PROXIED = {
    "/v1/chat/completions": EndpointKind.CHAT,
    "/v1/completions": EndpointKind.COMPLETION,
    "/v1/embeddings": EndpointKind.EMBEDDING,
    "/v1/images/generations": EndpointKind.IMAGE,
}


def create_app(gateway: Gateway) -> web.Application:
    """The HTTP app serving `gateway`; start-up opens upstream pools, cleanup closes them."""
    app = web.Application(client_max_size=gateway.config.server.max_body_bytes)
    tracing = gateway.telemetry.tracing
    if tracing is not None:  # server spans; no middleware at all unless tracing is on
        app.middlewares.append(tracing.middleware)
    app[GATEWAY] = gateway
    for path, kind in PROXIED.items():
        app.router.add_post(path, proxy_handler(kind))
        app.router.add_route("*", path, info.method_not_allowed)
    for path, handler in (
        ("/v1/route", info.dry_run_route),
        ("/v1/feedback", experiments.feedback),
    ):
        app.router.add_post(path, handler)
        app.router.add_route("*", path, info.method_not_allowed)
    for path, get_handler in (
        ("/v1/models", info.list_models),
        ("/healthz", info.healthz),
        ("/readyz", info.readyz),
        ("/admin/experiments", experiments.experiments),
        ("/metrics", metrics.metrics),
    ):
        app.router.add_get(path, get_handler)
        app.router.add_route("*", path, info.method_not_allowed)
    for path, methods in (
        ("/admin/keys", {"GET": admin.list_keys, "POST": admin.create_key}),
        (
            "/admin/keys/{key_id}",
            {"GET": admin.get_key, "PATCH": admin.update_key, "DELETE": admin.revoke_key},
        ),
        ("/admin/usage", {"GET": admin.usage}),
    ):
        for method, admin_handler in methods.items():
            app.router.add_route(method, path, admin.admin_endpoint(admin_handler))
        app.router.add_route("*", path, info.method_not_allowed)
    dashboard.add_routes(app)  # /dashboard, /playground, /admin/stats
    app.router.add_route("*", "/{tail:.*}", info.not_found)
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop_ready)
    app.on_cleanup.append(_close)
    return app


async def _start(app: web.Application) -> None:
    await app[GATEWAY].start()


async def _stop_ready(app: web.Application) -> None:
    app[GATEWAY].ready = False


async def _close(app: web.Application) -> None:
    await app[GATEWAY].aclose()
