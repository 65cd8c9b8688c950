"""The HTTP simulator through the official openai SDK, faults included, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from polyroute.providers.simulator import (
    FaultRates,
    SimProfile,
    SimServer,
    key_fingerprint,
    start_server,
)

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "How do rivers form?"}]


async def _eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until `check()` is true (server-side effects of a client disconnect)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def _drain(stream: AsyncIterator[object], into: list[object]) -> None:
    async for item in stream:
        into.append(item)


async def test_chat_completion(client: AsyncOpenAI, server: SimServer) -> None:
    """A non-streaming chat answer echoes the model and has consistent usage."""
    result = await client.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    assert result.model == "gpt-sim"
    assert result.id.startswith("chatcmpl-sim-")
    assert result.choices[0].message.content.startswith("[simulated instant]")  # type: ignore[union-attr]
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


async def test_chat_stream_usage_matches_chunks(client: AsyncOpenAI) -> None:
    """Streamed content chunks are exactly usage.completion_tokens, ending with [DONE]."""
    stream = await client.chat.completions.create(
        model="gpt-sim",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=9,
    )
    pieces, finish, usage = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert usage is not None
    assert usage.completion_tokens == len(pieces) == 9
    assert finish == "length"


async def test_seed_makes_answers_reproducible(client: AsyncOpenAI) -> None:
    """The same seeded request returns the same text twice."""
    texts = [
        (await client.chat.completions.create(model="m", messages=MESSAGES, seed=11))
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert texts[0] == texts[1]


async def test_legacy_completions_stream_and_json(client: AsyncOpenAI) -> None:
    """/v1/completions answers JSON and streams text chunks."""
    result = await client.completions.create(model="m", prompt="Once upon a time", max_tokens=4)
    assert result.object == "text_completion"
    assert result.choices[0].finish_reason == "length"
    stream = await client.completions.create(model="m", prompt="Once", stream=True, seed=2)
    streamed = "".join([c.choices[0].text async for c in stream if c.choices])
    again = await client.completions.create(model="m", prompt="Once", seed=2)
    assert streamed == again.choices[0].text


async def test_embeddings_float_and_base64(client: AsyncOpenAI) -> None:
    """Float and the SDK's default base64 encodings decode to the same unit vectors."""
    texts = ["the cat sat on the mat", "a cat sat on a mat", "interest rates rose sharply"]
    as_b64 = await client.embeddings.create(model="emb", input=texts)  # SDK asks for base64
    as_float = await client.embeddings.create(model="emb", input=texts, encoding_format="float")
    vectors = [d.embedding for d in as_b64.data]
    assert len(vectors[0]) == 256
    for got, want in zip(vectors, (d.embedding for d in as_float.data), strict=True):
        assert got == pytest.approx(want, abs=1e-6)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert math.isclose(cos(vectors[0], vectors[0]), 1.0, rel_tol=1e-5)
    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    small = await client.embeddings.create(model="emb", input="hi", dimensions=16)
    assert len(small.data[0].embedding) == 16
    assert as_b64.usage.prompt_tokens == 6 + 6 + 4


async def test_images_b64_and_url(client: AsyncOpenAI, server: SimServer) -> None:
    """Images come back as real PNGs of the asked size, inline or by a URL that serves them."""
    inline = await client.images.generate(model="img", prompt="a red fox", size="64x48", n=2)
    assert inline.data is not None
    png = base64.b64decode(inline.data[0].b64_json or "")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 48)
    assert inline.data[0].b64_json != inline.data[1].b64_json
    linked = await client.images.generate(
        model="img", prompt="a red fox", size="64x48", response_format="url"
    )
    assert linked.data is not None
    url = linked.data[0].url or ""
    assert url.startswith(f"http://127.0.0.1:{server.port}/__sim/images/")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert await response.read() == png


async def test_bad_image_size_is_400(client: AsyncOpenAI) -> None:
    """A size beyond 1024x1024 is a 400 naming `size`."""
    with pytest.raises(openai.BadRequestError) as info:
        await client.images.generate(model="img", prompt="x", size="1792x1024")
    assert "size" in str(info.value)


async def test_models_lists_the_profile(client: AsyncOpenAI) -> None:
    """GET /v1/models lists the profile name as the one model."""
    models = [m.id async for m in client.models.list()]
    assert models == ["instant"]


async def test_stats_record_forwarded_body_and_key_fingerprint(
    client: AsyncOpenAI, server: SimServer
) -> None:
    """Stats keep the last body and a fingerprint of the key, never the key itself."""
    await client.chat.completions.create(
        model="upstream-id", messages=MESSAGES, seed=5, extra_body={"tools_hint": 1}
    )
    stats = server.stats.snapshot()
    assert stats["last_body"]["model"] == "upstream-id"
    assert stats["last_body"]["tools_hint"] == 1
    assert stats["last_headers"]["authorization"] == "<redacted>"
    assert stats["authorization_present"] is True
    assert stats["authorization_sha256"] == key_fingerprint("sk-test")
    assert "sk-test" not in repr(stats)
    assert stats["requests"] == {"/v1/chat/completions": 1}


async def test_rate_limit_fault_has_retry_after(client: AsyncOpenAI, server: SimServer) -> None:
    """A scheduled 429 reaches the SDK as RateLimitError with a retry-after header."""
    server.faults.push("rate_limit", retry_after=3)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("kind", "opts", "error"),
    [
        ("server_error", {}, openai.InternalServerError),
        ("unavailable", {}, openai.InternalServerError),
        ("status", {"status": 401}, openai.AuthenticationError),
        ("status", {"status": 400, "message": "nope"}, openai.BadRequestError),
    ],
)
async def test_status_faults(
    client: AsyncOpenAI, server: SimServer, kind: str, opts: dict[str, Any], error: type
) -> None:
    """500, 503 and arbitrary-status faults reach the SDK as the matching error class."""
    server.faults.push(kind, **opts)
    with pytest.raises(error):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert server.stats.faults[kind] == 1


async def test_reset_fault_is_connection_error(client: AsyncOpenAI, server: SimServer) -> None:
    """A reset (scheduled over HTTP) drops the connection before headers: the SDK raises
    APIConnectionError, and the next request is served normally."""
    async with aiohttp.ClientSession() as session:
        url = server.url.removesuffix("/v1") + "/__sim/faults"
        async with session.post(url, json={"kind": "reset"}) as response:
            assert response.status == 200
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    ok = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert ok.choices[0].message.content


async def test_hang_fault_times_out_and_counts_disconnect(server: SimServer) -> None:
    """A hang never answers; when the client gives up the server counts a disconnect."""
    server.faults.push("hang")
    impatient = AsyncOpenAI(base_url=server.url, api_key="k", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(model="m", messages=MESSAGES)
    await impatient.close()
    await _eventually(lambda: server.stats.disconnects == 1 and server.stats.in_flight == 0)


async def test_stream_cut_raises_mid_stream(client: AsyncOpenAI, server: SimServer) -> None:
    """stream_cut sends some events then drops the connection: the SDK raises mid-iteration
    (APIConnectionError over an incomplete chunked body) after the first deltas arrived."""
    server.faults.push("stream_cut", after_chunks=3)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    received: list[object] = []
    with pytest.raises(openai.APIConnectionError):
        await _drain(stream, received)
    assert len(received) == 3


async def test_bad_json_fault(client: AsyncOpenAI, server: SimServer) -> None:
    """bad_json answers 200 with a body that does not parse."""
    server.faults.push("bad_json")
    with pytest.raises(ValueError, match="Expecting"):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_unsupported_endpoint_is_404() -> None:
    """A profile that only embeds answers chat with 404 naming the endpoint."""
    embed_only = SimProfile(name="emb-only", kinds=["embedding"])
    srv = await start_server(embed_only)
    sdk = AsyncOpenAI(base_url=srv.url, api_key="k", max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError, match="chat/completions"):
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
    finally:
        await sdk.close()
        await srv.aclose()


@pytest.fixture
async def always_down() -> AsyncIterator[SimServer]:
    """A server whose profile fails every request with a 500."""
    profile = SimProfile(name="down", kinds=["chat"], faults=FaultRates(server_error=1.0))
    srv = await start_server(profile)
    yield srv
    await srv.aclose()


async def test_fault_rate_one_always_fails(always_down: SimServer) -> None:
    """A 1.0 server_error rate fails every request, and stats count each one."""
    sdk = AsyncOpenAI(base_url=always_down.url, api_key="k", max_retries=0)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
    await sdk.close()
    assert always_down.stats.faults["server_error"] == 3


async def test_fault_endpoint_schedules_and_clears(server: SimServer) -> None:
    """POST /__sim/faults schedules faults, rejects unknown kinds, and clears on request."""
    base = server.url.removesuffix("/v1")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/__sim/faults", json={"kind": "slow", "count": 2}) as r:
            assert (await r.json()) == {"scheduled": 2}
        async with session.post(f"{base}/__sim/faults", json={"kind": "boom"}) as r:
            assert r.status == 400
        async with session.post(f"{base}/__sim/faults", json={"clear": True}) as r:
            assert (await r.json()) == {"scheduled": 0}
        async with session.get(f"{base}/__sim/stats") as r:
            stats = await r.json()
    assert stats["faults"] == {}
    assert stats["in_flight"] == 0
