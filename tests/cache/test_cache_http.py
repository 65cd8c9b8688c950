"""The response cache through the real gateway: a simulator process upstream, the openai
SDK and raw HTTP as clients, the simulator's request counter as the witness of upstream
calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support import Sim, gateway, simulator

KEY_A = "sk-cache-tenant-a-0123456789"
KEY_B = "sk-cache-tenant-b-0123456789"


def config(sim: str) -> str:
    return f"""
server: {{expose_deployments: true}}
models:
  - {{name: m, base_url: {sim}}}
  - {{name: emb, base_url: {sim}, kinds: [embedding]}}
routes:
  chat: {{strategy: single, target: m}}
  other: {{strategy: single, target: m}}
keys:
  - {{id: a, key: {KEY_A}}}
  - {{id: b, key: {KEY_B}}}
cache:
  enabled: true
  ttl: 1.5
  routes: [chat, emb]
  semantic: {{enabled: true, threshold: 0.8}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Sim]]:
    with simulator("instant") as sim, gateway(config(sim), tmp_path_factory.mktemp("c")) as url:
        yield url, Sim(sim)


@pytest.fixture
def sim(stack: tuple[str, Sim]) -> Iterator[Sim]:
    stack[1].reset()
    yield stack[1]
    stack[1].reset()


def post(url: str, body: dict[str, Any], key: str = KEY_A, **headers: str) -> httpx.Response:
    return httpx.post(
        url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **headers},
    )


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}


def calls(sim: Sim) -> int:
    return int(sim.stats()["requests_total"])


def test_exact_hit_answers_without_calling_the_model(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = ask("exact hit please", temperature=0)
    first = post(url, body)
    second = post(url, body)
    assert first.headers["x-polyroute-cache"] == "miss"
    assert second.headers["x-polyroute-cache"] == "hit"
    assert second.headers["x-polyroute-strategy"] == "cache"
    assert second.headers["x-polyroute-deployment"] == "m"
    assert second.content == first.content
    assert calls(sim) == 1
    # `user` and `stream_options` change delivery, not the answer: same entry
    assert post(url, {**body, "user": "someone"}).headers["x-polyroute-cache"] == "hit"
    # anything else that changes the answer is another entry
    assert post(url, {**body, "max_tokens": 3}).headers["x-polyroute-cache"] == "miss"
    assert calls(sim) == 2


def test_sampling_requests_are_not_cached_by_default(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    for body in (ask("sampled"), ask("sampled", temperature=0.7)):
        answers = [post(url, body), post(url, body)]
        assert all("x-polyroute-cache" not in a.headers for a in answers)
    assert calls(sim) == 4


def test_cache_control_no_cache_and_no_store(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = ask("directives", temperature=0)
    assert post(url, body, **{"cache-control": "no-store"}).status_code == 200
    assert post(url, body).headers["x-polyroute-cache"] == "miss"  # no-store kept nothing
    fresh = post(url, body, **{"cache-control": "no-cache"})
    assert fresh.headers["x-polyroute-cache"] == "miss"  # looked past the entry
    assert post(url, body).headers["x-polyroute-cache"] == "hit"
    assert calls(sim) == 3


def test_stream_request_is_answered_from_the_cache_as_events(
    stack: tuple[str, Sim], sim: Sim
) -> None:
    url, _ = stack
    with openai.OpenAI(base_url=url, api_key=KEY_A, max_retries=0) as client:
        answer = client.chat.completions.create(**ask("stream me", temperature=0))
        raw = client.chat.completions.with_raw_response.create(
            **ask("stream me", temperature=0), stream=True
        )
        chunks = list(raw.parse())
    assert raw.headers["x-polyroute-cache"] == "hit"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == answer.choices[0].finish_reason
    assert calls(sim) == 1


def test_errors_are_never_cached(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = ask("fails first", temperature=0)
    sim.fault("status", count=1, status=400)
    assert post(url, body).status_code == 400
    ok = post(url, body)
    assert ok.status_code == 200
    assert ok.headers["x-polyroute-cache"] == "miss"
    assert post(url, body).headers["x-polyroute-cache"] == "hit"


def test_tenants_never_share_entries(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = ask("tenant scoped", temperature=0)
    assert post(url, body, KEY_A).headers["x-polyroute-cache"] == "miss"
    assert post(url, body, KEY_B).headers["x-polyroute-cache"] == "miss"
    assert post(url, body, KEY_B).headers["x-polyroute-cache"] == "hit"
    assert calls(sim) == 2


def test_entries_expire_and_uncached_routes_pass_through(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = ask("short lived", temperature=0)
    post(url, body)
    assert post(url, body).headers["x-polyroute-cache"] == "hit"
    time.sleep(1.6)
    assert post(url, body).headers["x-polyroute-cache"] == "miss"
    other = post(url, {**body, "model": "other"})
    assert "x-polyroute-cache" not in other.headers


def test_embeddings_are_cached(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    body = {"model": "emb", "input": "embed me once"}
    headers = {"authorization": f"Bearer {KEY_A}"}
    first = httpx.post(url + "/embeddings", json=body, headers=headers)
    second = httpx.post(url + "/embeddings", json=body, headers=headers)
    assert second.headers["x-polyroute-cache"] == "hit"
    assert second.json()["data"] == first.json()["data"]
    assert calls(sim) == 1


def test_semantic_hit_for_a_rewording_and_never_for_a_near_miss(
    stack: tuple[str, Sim], sim: Sim
) -> None:
    url, _ = stack
    post(url, ask("What is the capital of France?", temperature=0))
    time.sleep(0.05)  # stored after the answer went out
    reworded = post(url, ask("whats the capital of france", temperature=0))
    assert reworded.headers["x-polyroute-cache"] == "hit"
    assert float(reworded.headers["x-polyroute-cache-similarity"]) >= 0.8
    for near_miss in (
        "What is the capital of Spain?",
        "What is not the capital of France?",
        "What is the capital of France in 1700?",
    ):
        assert post(url, ask(near_miss, temperature=0)).headers["x-polyroute-cache"] == "miss"
    # the same words in another conversation are another bucket
    other = ask("whats the capital of france", temperature=0)
    other["messages"].insert(0, {"role": "system", "content": "answer in French"})
    assert post(url, other).headers["x-polyroute-cache"] == "miss"


def test_lru_bounds_entries_and_bytes(tmp_path: Path) -> None:
    import asyncio

    from polyroute.cache.store import CachedAnswer, MemoryStore

    async def run() -> None:
        store = MemoryStore(max_entries=2, max_bytes=10)
        for key in ("a", "b", "c"):
            await store.set(key, CachedAnswer(b"xxx", "m", 0.0), ttl=60)
        assert await store.get("a") is None  # the oldest went first
        assert await store.get("b") is not None
        await store.set("big", CachedAnswer(b"x" * 9, "m", 0.0), ttl=60)
        assert len(store) == 1  # 9 bytes + 3 would exceed 10: both older ones left
        assert store.bytes == 9
        await store.set("huge", CachedAnswer(b"x" * 11, "m", 0.0), ttl=60)
        assert await store.get("huge") is None  # larger than the whole cache: not kept
        await store.set("short", CachedAnswer(b"x", "m", 0.0), ttl=0.01)
        await asyncio.sleep(0.02)
        assert await store.get("short") is None

    asyncio.run(run())


def test_a_streamed_answer_is_stored_and_served_to_json_and_stream(
    stack: tuple[str, Sim], sim: Sim
) -> None:
    url, _ = stack
    with openai.OpenAI(base_url=url, api_key=KEY_A, max_retries=0) as client:
        first = client.chat.completions.with_raw_response.create(
            **ask("streamed first", temperature=0), stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in first.parse() if c.choices)
        time.sleep(0.05)
        again = client.chat.completions.with_raw_response.create(
            **ask("streamed first", temperature=0)
        )
    assert first.headers["x-polyroute-cache"] == "miss"
    assert again.headers["x-polyroute-cache"] == "hit"
    answer = again.parse()
    assert answer.choices[0].message.content == streamed
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    assert calls(sim) == 1


def test_a_cut_stream_is_not_stored(stack: tuple[str, Sim], sim: Sim) -> None:
    url, _ = stack
    sim.fault("stream_cut", count=1, after=2)
    with openai.OpenAI(base_url=url, api_key=KEY_A, max_retries=0) as client:
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(**ask("cut me", temperature=0), stream=True))
        time.sleep(0.05)
        again = client.chat.completions.with_raw_response.create(**ask("cut me", temperature=0))
    assert again.headers["x-polyroute-cache"] == "miss"
