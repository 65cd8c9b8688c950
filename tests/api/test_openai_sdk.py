"""The official openai SDK, sync and async, streaming and not, against the real gateway."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.api.conftest import ALPHA_KEY, Stack

MESSAGES = [{"role": "user", "content": "Say something about routing."}]


def test_sync_chat(sims: Stack) -> None:
    """A plain chat completion passes through with usage and decision headers."""
    raw = sims.client().chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    assert text.startswith("[simulated instant]")
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-polyroute-route"] == "chat"
    assert raw.headers["x-polyroute-strategy"] == "weighted"
    assert raw.headers["x-polyroute-deployment"] in {"alpha", "beta"}
    assert raw.headers["x-polyroute-attempts"] == "1"


def test_sync_chat_stream(sims: Stack) -> None:
    """Streaming chat arrives as chunks the SDK parses, ending with usage when asked."""
    stream = sims.client().chat.completions.create(
        model="only-alpha",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces).startswith("[simulated instant]")
    assert usage is not None
    assert usage.completion_tokens == len(pieces)


async def test_async_chat_and_stream(sims: Stack) -> None:
    """The async client works the same way, streaming and not."""
    client = sims.async_client()
    completion = await client.chat.completions.create(model="only-beta", messages=MESSAGES)
    assert completion.choices[0].finish_reason in {"stop", "length"}
    stream = await client.chat.completions.create(model="only-beta", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == completion.choices[0].message.content
    await client.close()


async def test_async_concurrent_requests_keep_their_own_answers(sims: Stack) -> None:
    """Fifty concurrent requests each get the answer to their own prompt (no cross-talk)."""
    import asyncio

    client = sims.async_client()

    async def ask(i: int) -> str:
        reply = await client.chat.completions.create(
            model="only-alpha", messages=[{"role": "user", "content": f"question {i}"}], seed=i
        )
        return reply.choices[0].message.content or ""

    concurrent = await asyncio.gather(*(ask(i) for i in range(50)))
    one_by_one = [await ask(i) for i in range(50)]
    assert concurrent == one_by_one
    assert len(set(concurrent)) == 50
    await client.close()


def test_completions(sims: Stack) -> None:
    """Legacy completions route through the `auto` front door to a chat-capable model."""
    completion = sims.client().completions.create(model="auto", prompt="Once upon a time")
    assert completion.choices[0].text.startswith("[simulated instant]")


def test_embeddings_default_base64(sims: Stack) -> None:
    """The SDK's default base64 embeddings round-trip; the same text gives the same vector."""
    client = sims.client()
    first = client.embeddings.create(model="auto", input=["hello world", "goodbye"])
    again = client.embeddings.create(model="emb", input="hello world")
    assert len(first.data) == 2
    assert len(first.data[0].embedding) > 8
    assert first.data[0].embedding == again.data[0].embedding


def test_embeddings_float_with_dimensions(sims: Stack) -> None:
    """encoding_format=float and dimensions pass through to the upstream."""
    result = sims.client().embeddings.create(
        model="emb", input="hi", dimensions=16, encoding_format="float"
    )
    assert len(result.data[0].embedding) == 16


def test_image_generation(sims: Stack) -> None:
    """Images come back as real PNGs."""
    result = sims.client().images.generate(model="auto", prompt="a red circle", size="256x256")
    assert result.data is not None
    png = base64.b64decode(result.data[0].b64_json or "")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_models_list(sims: Stack) -> None:
    """/v1/models lists routes and deployments by the names clients use."""
    ids = {model.id for model in sims.client().models.list()}
    assert {"auto", "chat", "alpha", "beta", "emb", "img"} <= ids


def test_unused_params_pass_through_and_model_is_rewritten(sims: Stack) -> None:
    """tools/response_format/seed reach the upstream unchanged; model becomes the upstream id;
    the upstream gets the deployment's key and extra header, never the client's key."""
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    sims.client(api_key="sk-client-should-not-travel").chat.completions.create(
        model="only-alpha",
        messages=MESSAGES,
        tools=tools,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
        seed=7,
        extra_body={"top_k": 3},
    )
    stats = sims.alpha.stats()
    body = stats["last_body"]
    assert body["model"] == "alpha-upstream-id"
    assert body["tools"] == tools
    assert body["response_format"] == {"type": "json_object"}
    assert body["seed"] == 7
    assert body["top_k"] == 3
    expected = hashlib.sha256(ALPHA_KEY.encode()).hexdigest()[:16]
    assert stats["authorization_sha256"] == expected
    assert stats["last_headers"]["x-team"] == "routing"
    assert stats["last_headers"]["x-request-id"].startswith("req_")


def test_weighted_balancing_uses_both_deployments(sims: Stack) -> None:
    """The weighted route spreads requests over its deployments."""
    client = sims.client()
    seen = {
        client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES).headers[
            "x-polyroute-deployment"
        ]
        for _ in range(40)
    }
    assert seen == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("body", "deployment", "strategy"),
    [
        ({"messages": MESSAGES}, "alpha|beta", "weighted"),
        ({"input": "hi"}, "emb", "by_type"),
        ({"prompt": "cat", "endpoint": "image"}, "img", "by_type"),
    ],
)
def test_dry_run_route_calls_no_model(
    sims: Stack, body: dict[str, object], deployment: str, strategy: str
) -> None:
    """POST /v1/route explains the decision and never calls an upstream."""
    client = sims.client()
    decision = client.post("/route", body={"model": "auto", **body}, cast_to=object)
    assert isinstance(decision, dict)
    assert decision["deployment"] in deployment.split("|")
    assert decision["strategy"] == strategy
    assert decision["path"][0] == "auto"
    assert decision["signals"]["auto"] == {"strategy": "by_type", "kind": decision["kind"]}
    assert any(r["reason"].startswith("does not serve") for r in decision["rejected"])
    assert sims.alpha.stats()["requests_total"] == 0
    assert sims.beta.stats()["requests_total"] == 0
