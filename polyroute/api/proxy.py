"""The proxied endpoints: chat, completions, embeddings, images.

One request path for all four: authenticate, read and validate the body once, build the
RequestContext, route, execute, answer (JSON, or SSE for `stream: true`), then report the
Outcome to the gateway's observers (A/B results, learners, records). The upstream's bytes
are forwarded unchanged; only the `model` field sent upstream is rewritten, and a usage
event the gateway asked for on the client's behalf is withheld (see polyroute.usage).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from polyroute.api.incoming import make_context, read_request
from polyroute.api.keys import GATEWAY
from polyroute.api.responses import (
    JSON,
    decision_headers,
    error_response,
    internal_error,
    new_request_id,
)
from polyroute.api.sse import SSE_HEADERS, answer_as_events, ends_with_done, error_event
from polyroute.cache import CachePlan, Hit
from polyroute.cache.assemble import AnswerAssembler
from polyroute.context import RequestContext
from polyroute.errors import GatewayError, Overloaded, UpstreamBadResponse, UpstreamError
from polyroute.execution.results import Streaming
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.limits.service import Ticket
from polyroute.outcomes import Outcome, Usage
from polyroute.routing.decision import Decision
from polyroute.usage import StreamUsage, cost_of, estimate, usage_of, wants_stream_usage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("polyroute.api")


def proxy_handler(kind: EndpointKind) -> Handler:
    """The aiohttp handler for one endpoint kind."""

    async def handle(request: web.Request) -> web.StreamResponse:
        gateway: Gateway = request.app[GATEWAY]
        request_id = new_request_id()
        ctx: RequestContext | None = None
        decision: Decision | None = None
        ticket: Ticket | None = None
        if gateway.in_flight >= gateway.config.resilience.max_in_flight:
            overloaded = Overloaded("the gateway is at its limit of requests in flight")
            return error_response(overloaded, request_id)
        gateway.in_flight += 1
        started = time.monotonic()
        try:
            caller, body = await read_request(request, gateway)
            ctx = make_context(request, kind, body, caller, request_id)
            cache = gateway.cache
            plan = cache.plan(ctx) if cache is not None else None
            if cache is not None and plan is not None and plan.lookup:
                hit = await cache.lookup(ctx, plan)
                if hit is not None:
                    return await _from_cache(request, gateway, ctx, hit, started)
            ctx.budget_left = gateway.limits.budget_left(ctx)  # for the `budget` filter
            routed = gateway.router.decide(ctx)
            # limits after routing (a budget reserves the plan's estimated cost); a refusal
            # is reported without a decision, since nothing was sent anywhere
            ticket = await gateway.limits.admit(ctx, routed)
            decision = routed
            rate = ticket.headers if ticket is not None else None
            aggregated = decision.fan_out is not None and decision.fan_out.aggregator != "fastest"
            if ctx.stream and not aggregated:
                return await _stream(
                    request, gateway, ctx, decision, plan=plan, started=started, rate=rate
                )
            return await _complete(
                request, gateway, ctx, decision, plan=plan, started=started, rate=rate
            )
        except GatewayError as exc:
            if ctx is not None:
                _report_failure(gateway, ctx, decision, exc, started)
            return error_response(exc, request_id, decision)
        except Exception:
            return internal_error(request_id)
        finally:
            gateway.in_flight -= 1
            if ticket is not None:  # exactly once, however the request ended
                gateway.limits.finish(ticket)

    handle.__name__ = f"{kind.value}_handler"
    return handle


async def _complete(
    request: web.Request,
    gateway: Gateway,
    ctx: RequestContext,
    decision: Decision,
    *,
    plan: CachePlan | None,
    started: float,
    rate: dict[str, str] | None = None,
) -> web.StreamResponse:
    """A whole answer (also an ensemble's aggregate asked for as a stream)."""
    done = await gateway.executor.complete(ctx, decision, ctx.body)
    used = done.usage or usage_of(ctx.kind, done.data) or estimate(ctx)
    cache = gateway.cache
    if cache is not None and plan is not None and done.status == 200:
        cache.keep(ctx, plan, done.deployment.name, done.body, used)
    gateway.observers.report(
        Outcome(
            ctx,
            decision,
            done.deployment,
            ok=True,
            status=done.status,
            latency=time.monotonic() - started,
            attempts=done.attempts,
            usage=used,
            cost=done.cost if done.cost is not None else cost_of(done.deployment, used),
            cache=None if plan is None else "miss",
        )
    )
    headers = decision_headers(ctx.request_id, decision, done.deployment.name, done.attempts)
    if done.headers:
        headers.update(done.headers)
    if rate:
        headers.update(rate)
    if plan is not None:
        headers["x-polyroute-cache"] = "miss"
    if ctx.stream:  # an ensemble's aggregate: known whole before the stream starts
        return await _send_as_events(request, ctx, done.data, headers)
    return web.Response(body=done.body, status=done.status, content_type=JSON, headers=headers)


async def _stream(
    request: web.Request,
    gateway: Gateway,
    ctx: RequestContext,
    decision: Decision,
    *,
    plan: CachePlan | None,
    started: float,
    rate: dict[str, str] | None = None,
) -> web.StreamResponse:
    opened = await gateway.executor.stream(ctx, decision, ctx.body)
    ttft = time.monotonic() - started
    headers = {
        **SSE_HEADERS,
        **decision_headers(ctx.request_id, decision, opened.deployment.name, opened.attempts),
        **(rate or {}),
    }
    if plan is not None:
        headers["x-polyroute-cache"] = "miss"
    response = web.StreamResponse(status=opened.status, headers=headers)
    meter = StreamUsage(withhold=not wants_stream_usage(ctx.body))
    assembler = AnswerAssembler(ctx.kind) if plan is not None else None
    ok = True  # a client that leaves is not the upstream's failure
    failure: BaseException | None = None
    try:
        await response.prepare(request)
        name = opened.deployment.name
        tap = assembler.feed if assembler is not None else None
        ended = opened.response.ended
        ok = await _forward(
            response, opened.first_chunk, opened.rest, name, meter, ended=ended, tap=tap
        )
    except ConnectionResetError:
        pass  # the client went away; closing the upstream below cancels its work
    except BaseException as exc:  # cancelled, or a bug of ours: close and record all the same
        failure = exc
    # not a `finally`: compiled, an await there re-raised an exception the stream had
    # already handled (setup.py)
    await _settle(
        gateway,
        ctx,
        decision,
        opened,
        meter=meter,
        assembler=assembler,
        plan=plan,
        ok=ok,
        started=started,
        ttft=ttft,
    )
    if failure is not None:
        raise failure
    return response


async def _settle(
    gateway: Gateway,
    ctx: RequestContext,
    decision: Decision,
    opened: Streaming,
    *,
    meter: StreamUsage,
    assembler: AnswerAssembler | None,
    plan: CachePlan | None,
    ok: bool,
    started: float,
    ttft: float,
) -> None:
    """A stream's end, however it came: the upstream closed, the answer cached when it
    ended properly, the outcome reported."""
    await opened.aclose(ok)
    used = meter.usage or estimate(ctx, meter.events)
    answer = assembler.answer() if assembler is not None and ok else None
    if gateway.cache is not None and plan is not None and answer is not None:
        body = orjson.dumps(answer)
        gateway.cache.keep(ctx, plan, opened.deployment.name, body, used)
    gateway.observers.report(
        Outcome(
            ctx,
            decision,
            opened.deployment,
            ok=ok,
            status=opened.status,
            latency=time.monotonic() - started,
            attempts=opened.attempts,
            ttft=ttft,
            usage=used,
            cost=cost_of(opened.deployment, used),
            cache=None if plan is None else "miss",
        )
    )


async def _from_cache(
    request: web.Request, gateway: Gateway, ctx: RequestContext, hit: Hit, started: float
) -> web.StreamResponse:
    """A cached answer: no routing, no upstream call, no cost."""
    answer = hit.answer
    headers = {
        "x-request-id": ctx.request_id,
        "x-polyroute-route": ctx.model or gateway.router.default_route or "",
        "x-polyroute-deployment": answer.deployment,
        "x-polyroute-strategy": "cache",
        "x-polyroute-attempts": "0",
        **hit.headers(),
    }
    gateway.observers.report(
        Outcome(
            ctx,
            None,
            gateway.router.deployments.get(answer.deployment),
            ok=True,
            status=200,
            latency=time.monotonic() - started,
            usage=Usage(),
            cost=0.0,
            cache="hit",
            extra={"saved_usage": answer.usage},
        )
    )
    if ctx.stream:
        return await _send_as_events(request, ctx, orjson.loads(answer.body), headers)
    return web.Response(body=answer.body, status=200, content_type=JSON, headers=headers)


async def _send_as_events(
    request: web.Request, ctx: RequestContext, data: dict[str, Any], headers: dict[str, str]
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    await response.prepare(request)
    events = answer_as_events(
        data,
        chat=ctx.kind is EndpointKind.CHAT,
        include_usage=wants_stream_usage(ctx.body),
    )
    with contextlib.suppress(ConnectionResetError):  # the client left: already recorded
        await response.write_eof(events)  # with the headers: one write
    return response


def _report_failure(
    gateway: Gateway,
    ctx: RequestContext,
    decision: Decision | None,
    error: GatewayError,
    started: float,
) -> None:
    deployment = None
    attempts = 0
    if isinstance(error, UpstreamError) and error.deployment is not None:
        deployment = gateway.router.deployments.get(error.deployment)
        attempts = int(error.headers.get("x-polyroute-attempts", "1"))
    gateway.observers.report(
        Outcome(
            ctx,
            decision,
            deployment,
            ok=False,
            status=error.status,
            latency=time.monotonic() - started,
            attempts=attempts,
            error_type=error.error_type,
            error_code=error.code,
        )
    )


async def _forward(
    response: web.StreamResponse,
    first: bytes,
    rest: Any,
    deployment: str,
    meter: StreamUsage,
    *,
    ended: Callable[[], bool],
    tap: Callable[[bytes], None] | None = None,
) -> bool:
    """Copy chunks as they come; end with an error event unless the stream ended properly
    (returns whether it did).

    The bytes of the upstream's last chunk go out with the end of the response (one write,
    with the headers too when the whole answer came at once) instead of two writes.
    Once the headers are out, an error can only be reported inside the stream: a cut or a
    stream that stops without ``data: [DONE]`` gets the terminal error event, and so does a
    bug of ours (logged), rather than a second HTTP response written into the body.
    """
    tail = first
    last = b""  # the final chunk's bytes, held for the end of the response
    try:
        if tap is not None:
            tap(first)
        forward = meter.feed(first)
        if ended():
            last = forward
        elif forward:
            await response.write(forward)
        async for chunk in rest:
            if tap is not None:
                tap(chunk)
            forward = meter.feed(chunk)
            tail = chunk if len(chunk) >= 16 else tail[-16:] + chunk
            if ended():
                last = forward
            elif forward:
                await response.write(forward)
        held = meter.finish()
        if not ends_with_done(tail):
            raise UpstreamBadResponse(
                f"deployment {deployment}: the stream ended without [DONE]",
                deployment=deployment,
                code="stream_interrupted",
            )
    except UpstreamError as exc:
        await response.write(last + error_event(exc))
        return False
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("error while streaming from %s", deployment)
        failure = error_event(GatewayError("internal gateway error while streaming"))
        await response.write(last + failure)
        return True
    await response.write_eof(last + held if held else last)
    return True
