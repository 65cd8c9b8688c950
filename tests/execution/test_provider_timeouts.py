"""The OpenAI-compatible provider's time limits over real sockets, against a local upstream
that trickles: never silent long enough for the idle limit, but never done either. The
attempt's `total` must end it in every phase (headers, a JSON body, a stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from polyroute.errors import UpstreamTimeout
from polyroute.kinds import EndpointKind
from polyroute.providers.base import Timeouts, UpstreamRequest
from polyroute.providers.openai_compat import AiohttpResponse, OpenAICompatibleProvider

TICK = 0.05


async def _trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once (or after `?wait=` seconds), then a byte every TICK, forever."""
    await asyncio.sleep(float(request.query.get("wait", "0")))
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    while True:
        await response.write(b": keep-alive\n\n")
        await asyncio.sleep(TICK)


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def _drain(response: AiohttpResponse, into: list[bytes]) -> None:
    async for chunk in response.iter_chunks():
        into.append(chunk)


@pytest.fixture
async def provider(upstream: str) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(name="u", base_url=upstream)
    yield provider
    await provider.aclose()


def _request(timeouts: Timeouts, stream: bool) -> UpstreamRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return UpstreamRequest(
        kind=EndpointKind.CHAT, body=body, stream=stream, request_id="t", timeouts=timeouts
    )


async def test_total_ends_a_stream_that_never_goes_silent(
    provider: OpenAICompatibleProvider,
) -> None:
    limits = Timeouts(connect=1, first_byte=5, idle=5, total=0.4)
    started = time.monotonic()
    response = await provider.send(_request(limits, stream=True))
    chunks: list[bytes] = []
    with pytest.raises(UpstreamTimeout, match="ran out of time mid-stream"):
        await _drain(response, chunks)
    elapsed = time.monotonic() - started
    assert len(chunks) >= 3  # it did stream until the limit
    assert 0.35 <= elapsed < 2.0


async def test_total_ends_a_body_that_never_completes(provider: OpenAICompatibleProvider) -> None:
    limits = Timeouts(connect=1, first_byte=5, idle=5, total=0.4)
    started = time.monotonic()
    response = await provider.send(_request(limits, stream=False))
    with pytest.raises(UpstreamTimeout):
        await response.read()
    assert 0.35 <= time.monotonic() - started < 2.0


async def test_total_shorter_than_first_byte_bounds_the_wait_for_headers(
    provider: OpenAICompatibleProvider,
) -> None:
    limits = Timeouts(connect=1, first_byte=5, idle=5, total=0.3)
    started = time.monotonic()
    provider._urls[EndpointKind.CHAT] += "?wait=3"
    with pytest.raises(UpstreamTimeout, match="before the response headers"):
        await provider.send(_request(limits, stream=False))
    assert time.monotonic() - started < 1.5


async def test_idle_still_ends_a_silent_stream(provider: OpenAICompatibleProvider) -> None:
    limits = Timeouts(connect=1, first_byte=5, idle=0.02, total=10)
    response = await provider.send(_request(limits, stream=True))
    with pytest.raises(UpstreamTimeout, match=r"sent nothing for 0\.02s mid-stream"):
        await _drain(response, [])
