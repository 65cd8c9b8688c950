"""The simulator as a real OpenAI-compatible HTTP server (aiohttp).

Faults happen on the wire the way real upstreams fail: `hang` holds the connection open
without answering, `reset` tears the TCP connection down (RST) before any header,
`stream_cut` sends part of an SSE stream then closes it without `[DONE]`. Handlers are
cancelled when the client goes away (aiohttp `handler_cancellation`), which is how
disconnects are counted and how hung requests are released.

Besides the OpenAI routes, `/__sim/...` lets tests schedule faults and read what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from polyroute.kinds import UPSTREAM_PATHS, EndpointKind
from polyroute.providers.simulator import images
from polyroute.providers.simulator.engine import SimEngine
from polyroute.providers.simulator.faults import FaultSchedule
from polyroute.providers.simulator.profiles import SimProfile
from polyroute.providers.simulator.stats import SimStats
from polyroute.providers.simulator.wire import Drop, Outcome, Reply, StreamReply, paced

ENGINE = web.AppKey("engine", SimEngine)
_PNG_HEADERS = {"content-type": "image/png", "cache-control": "max-age=86400"}


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _abort(request: web.Request, *, rst: bool) -> None:
    """Drop the connection now; with `rst` the peer sees ECONNRESET rather than EOF."""
    transport = request.transport
    if transport is None:
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _deliver(request: web.Request, outcome: Outcome, stats: SimStats) -> web.StreamResponse:
    if isinstance(outcome, Reply):
        if outcome.delay > 0:
            await asyncio.sleep(outcome.delay)
        return web.Response(status=outcome.status, body=outcome.body, headers=outcome.headers)
    if isinstance(outcome, Drop):
        if outcome.mode == "reset":
            _abort(request, rst=True)
            return web.Response()  # never sent: aiohttp sees the closed transport and stays quiet
        await asyncio.Event().wait()  # hang until the client (or shutdown) cancels us
    assert isinstance(outcome, StreamReply)
    response = web.StreamResponse(status=outcome.status, headers=outcome.headers)
    try:
        await response.prepare(request)
        async for data in paced(outcome.sent_events(), outcome.ttft, outcome.interval):
            await response.write(data)
        if outcome.cut_after is not None:
            if outcome.stall:
                await asyncio.Event().wait()  # silent until the client gives up
            _abort(request, rst=False)
            return response
        await response.write_eof()
    except ConnectionResetError:
        stats.disconnects += 1
    return response


def _model_route(kind: EndpointKind) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        engine = request.app[ENGINE]
        stats = engine.stats
        stats.requests[request.path] += 1
        stats.in_flight += 1
        try:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
            stats.record(request.headers, body)
            outcome = engine.handle(
                kind,
                body,
                category=request.headers.get("x-sim-category"),
                image_base_url=f"{request.scheme}://{request.host}",
            )
            return await _deliver(request, outcome, stats)
        except asyncio.CancelledError:
            stats.disconnects += 1
            raise
        finally:
            stats.in_flight -= 1

    handler.__name__ = f"{kind.value}_handler"
    return handler


async def _models(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.stats.requests[request.path] += 1
    name = engine.profile.name
    model = {"id": name, "object": "model", "created": 0, "owned_by": "polyroute-simulator"}
    return _json({"object": "list", "data": [model]})


async def _image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    png = images.png_for_key(name.removesuffix(".png")) if name.endswith(".png") else None
    if png is None:
        raise web.HTTPNotFound(text="no such simulated image")
    request.app[ENGINE].stats.requests["/__sim/images"] += 1
    return web.Response(body=png, headers=_PNG_HEADERS)


async def _faults(request: web.Request) -> web.Response:
    """Schedule faults: {"kind": ..., "count": N, ...opts}, or {"clear": true}."""
    schedule = request.app[ENGINE].faults
    try:
        spec = orjson.loads(await request.read())
        if not isinstance(spec, dict):
            raise TypeError("expected a JSON object")
        if spec.pop("clear", False):
            schedule.clear()
        if "kind" in spec:
            kind, count = spec.pop("kind"), spec.pop("count", 1)
            if not isinstance(kind, str) or not isinstance(count, int):
                raise TypeError("'kind' must be a string and 'count' an integer")
            schedule.push(kind, count, **spec)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        return _json({"error": {"message": str(exc), "type": "invalid_request_error"}}, 400)
    return _json({"scheduled": len(schedule)})


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE].stats.snapshot())


async def _reset(request: web.Request) -> web.Response:
    """Clear the stats and the fault schedule (between tests sharing one server)."""
    engine = request.app[ENGINE]
    engine.stats.reset()
    engine.faults.clear()
    return _json({"ok": True})


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok", "simulator": request.app[ENGINE].profile.name})


def create_app(
    profile: SimProfile, *, fault_schedule: FaultSchedule | None = None
) -> web.Application:
    """The aiohttp application serving one simulated model."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[ENGINE] = SimEngine(profile, fault_schedule)
    for kind, path in UPSTREAM_PATHS.items():
        app.router.add_post(f"/v1{path}", _model_route(kind))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/__sim/images/{name}", _image)
    app.router.add_post("/__sim/faults", _faults)
    app.router.add_get("/__sim/stats", _stats)
    app.router.add_post("/__sim/reset", _reset)
    return app


@dataclass(slots=True)
class SimServer:
    """A running simulator; `url` is the OpenAI base URL (ending in /v1)."""

    profile: SimProfile
    engine: SimEngine
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    @property
    def faults(self) -> FaultSchedule:
        return self.engine.faults

    @property
    def stats(self) -> SimStats:
        return self.engine.stats

    async def aclose(self) -> None:
        """Stop listening and cancel what is still running (hung requests included)."""
        await self.runner.cleanup()


async def start_server(
    profile: SimProfile,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    fault_schedule: FaultSchedule | None = None,
) -> SimServer:
    """Start a simulator on `host:port` (port 0 picks a free one) in the running loop."""
    app = create_app(profile, fault_schedule=fault_schedule)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return SimServer(profile, app[ENGINE], runner, host, int(bound))


def run(profile: SimProfile, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve `profile` until SIGINT/SIGTERM (the `polyroute simulate` command)."""

    from polyroute.runtime import run as run_loop
    from polyroute.runtime import wait_for_signal

    async def main() -> None:
        server = await start_server(profile, host, port)
        print(f"simulator {profile.name} listening on {server.url}", flush=True)
        try:
            await wait_for_signal()
        finally:
            await server.aclose()

    run_loop(main)
