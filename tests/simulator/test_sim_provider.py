"""The in-process provider: same bytes as the server, wire faults as Upstream* errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from polyroute.errors import UpstreamBadResponse, UpstreamConnectionError, UpstreamTimeout
from polyroute.kinds import EndpointKind
from polyroute.providers.base import Provider, Timeouts, UpstreamRequest
from polyroute.providers.simulator import (
    BUILTIN_PROFILES,
    Distribution,
    SimProfile,
    SimServer,
    SimulatorProvider,
)
from polyroute.providers.simulator.wire import paced

INSTANT = BUILTIN_PROFILES["instant"]
BODY = {"model": "m", "messages": [{"role": "user", "content": "Compare two rivers"}], "seed": 4}


def _request(
    body: dict[str, Any] = BODY,
    *,
    stream: bool = False,
    kind: EndpointKind = EndpointKind.CHAT,
    timeouts: Timeouts | None = None,
) -> UpstreamRequest:
    return UpstreamRequest(
        kind=kind,
        body={**body, "stream": stream} if stream else dict(body),
        stream=stream,
        request_id="req-1",
        timeouts=timeouts or Timeouts(),
    )


def _strip_ids(payload: bytes) -> list[Any]:
    """Parse a JSON body or SSE stream and drop the per-response id and timestamp."""
    if payload.startswith(b"data: "):
        frames = [f.removeprefix(b"data: ") for f in payload.split(b"\n\n") if f]
        items = [f.decode() if f == b"[DONE]" else orjson.loads(f) for f in frames]
    else:
        items = [orjson.loads(payload)]
    for item in items:
        if isinstance(item, dict):
            item.pop("id", None)
            item.pop("created", None)
    return items


async def _collect(chunks: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in chunks:
        into.append(chunk)


def test_provider_satisfies_the_protocol() -> None:
    """SimulatorProvider is a Provider."""
    assert isinstance(SimulatorProvider(INSTANT), Provider)


@pytest.mark.parametrize("stream", [False, True])
async def test_provider_bytes_match_the_server(server: SimServer, stream: bool) -> None:
    """For the same seeded request, provider and HTTP server return the same body/events."""
    body = {**BODY, "stream": stream}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/chat/completions", json=body) as response,
    ):
        over_http = await response.read()
        http_type = response.headers["content-type"]
    provided = await SimulatorProvider(INSTANT).send(_request(stream=stream))
    assert provided.status == 200
    assert provided.headers["content-type"] == http_type
    assert _strip_ids(await provided.read()) == _strip_ids(over_http)


async def test_reset_raises_connection_error() -> None:
    """A reset fault raises UpstreamConnectionError naming the deployment."""
    provider = SimulatorProvider(INSTANT, deployment="sim-a")
    provider.faults.push("reset")
    with pytest.raises(UpstreamConnectionError) as info:
        await provider.send(_request())
    assert info.value.deployment == "sim-a"


async def test_hang_times_out_at_first_byte() -> None:
    """A hang ends in UpstreamTimeout once the first-byte deadline passes."""
    provider = SimulatorProvider(INSTANT, deployment="sim-a")
    provider.faults.push("hang")
    with pytest.raises(UpstreamTimeout):
        await provider.send(_request(timeouts=Timeouts(first_byte=0.05)))


async def test_slow_json_answer_times_out_at_first_byte() -> None:
    """A JSON answer slower than first_byte raises UpstreamTimeout (headers come last)."""
    provider = SimulatorProvider(INSTANT)
    provider.faults.push("slow", ttft_ms=5000)
    with pytest.raises(UpstreamTimeout):
        await provider.send(_request(timeouts=Timeouts(first_byte=0.05)))


async def test_slow_stream_times_out_on_idle() -> None:
    """A stream whose first token is later than `idle` raises UpstreamTimeout on iteration."""
    provider = SimulatorProvider(INSTANT)
    provider.faults.push("slow", ttft_ms=5000)
    response = await provider.send(_request(stream=True, timeouts=Timeouts(idle=0.05)))
    assert response.status == 200
    with pytest.raises(UpstreamTimeout):
        await response.read()


async def test_rate_limit_is_a_response_not_an_exception() -> None:
    """HTTP error statuses come back as responses with the OpenAI body and retry-after."""
    provider = SimulatorProvider(INSTANT)
    provider.faults.push("rate_limit")
    response = await provider.send(_request())
    assert response.status == 429
    assert response.headers["retry-after"] == "2"
    assert orjson.loads(await response.read())["error"]["type"] == "rate_limit_error"


async def test_stream_cut_raises_bad_response_after_some_chunks() -> None:
    """stream_cut yields the first events, then raises UpstreamBadResponse (no [DONE])."""
    provider = SimulatorProvider(INSTANT, deployment="sim-a")
    provider.faults.push("stream_cut", after_chunks=2)
    response = await provider.send(_request(stream=True))
    chunks: list[bytes] = []
    with pytest.raises(UpstreamBadResponse):
        await _collect(response.iter_chunks(), chunks)
    seen = b"".join(chunks)
    assert seen.count(b"data: ") == 2
    assert b"[DONE]" not in seen


async def test_closing_mid_stream_counts_a_disconnect() -> None:
    """Closing a stream before its end is counted as a disconnect."""
    provider = SimulatorProvider(
        INSTANT.model_copy(update={"tokens_per_s": Distribution(median=200)})
    )
    response = await provider.send(_request(stream=True))
    iterator = response.iter_chunks()
    await anext(iterator)
    await response.aclose()
    assert provider.stats.disconnects == 1
    assert provider.stats.in_flight == 0


async def test_embeddings_and_images_in_process() -> None:
    """Embeddings and images work in-process, with URLs on the configured base."""
    provider = SimulatorProvider(INSTANT, image_base_url="http://sim:9")
    emb = await provider.send(
        _request({"model": "e", "input": "hello"}, kind=EndpointKind.EMBEDDING)
    )
    assert len(orjson.loads(await emb.read())["data"][0]["embedding"]) == 256
    img = await provider.send(
        _request({"prompt": "x", "response_format": "url"}, kind=EndpointKind.IMAGE)
    )
    assert orjson.loads(await img.read())["data"][0]["url"].startswith("http://sim:9/__sim/")


async def test_latency_profile_paces_the_stream() -> None:
    """A timed profile waits ttft before the first token and spreads the rest over time."""
    timed = SimProfile(
        name="timed",
        kinds=["chat"],
        ttft_ms=Distribution(median=40),
        tokens_per_s=Distribution(median=400),
        output_tokens=Distribution(median=20),
    )
    provider = SimulatorProvider(timed)
    loop = asyncio.get_running_loop()
    start = loop.time()
    response = await provider.send(_request(stream=True))
    arrivals = [loop.time() - start async for _ in response.iter_chunks()]
    assert arrivals[0] >= 0.035
    assert arrivals[-1] >= 0.035 + 19 / 400
    assert 2 <= len(arrivals) < 20  # 2.5 ms per token: batched per ~10 ms tick, not per token


async def test_zero_latency_stream_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no latency the whole stream is one chunk and asyncio.sleep is never called."""

    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"slept {delay}")

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    chunks = [c async for c in paced([(0, b"a"), (1, b"b"), (2, b"c")], 0.0, 0.0)]
    assert chunks == [b"abc"]
