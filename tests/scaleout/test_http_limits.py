"""Rate limits and budgets through a real gateway process, on each state backend.

One `polyroute serve` per backend (memory; Redis on the shared server under a prefix of its
own) in front of an `instant` simulator; every test uses keys of its own, so the tests do
not share counters. Clients are the official openai SDK (no retries) and httpx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
import redis

from polyroute.context import estimate_tokens
from tests.scaleout.conftest import SHARED_REDIS, drop_prefix, gateway_process, unique_prefix
from tests.support import Sim, simulator

INPUT_PRICE, OUTPUT_PRICE = 100.0, 1000.0  # USD per million tokens, on the gateway's side
BUDGET = 0.17
KEYS = {
    "rpm": "sk-limits-rpm-0000000001",
    "tpm": "sk-limits-tpm-0000000002",
    "stream": "sk-limits-stream-00000003",
    "budget": "sk-limits-budget-0000004",
    "parallel": "sk-limits-parallel-00005",
    "free": "sk-limits-free-0000000006",
}


@dataclass
class Stack:
    url: str
    backend: str
    prefix: str
    sim: Sim

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=KEYS[key], max_retries=0, timeout=20)


def config(sim: str, backend: str, prefix: str) -> str:
    state = (
        f"state: {{backend: redis, redis_url: '{SHARED_REDIS}', key_prefix: {prefix}}}"
        if backend == "redis"
        else "state: {backend: memory}"
    )
    return f"""
{state}
models:
  - name: m
    base_url: {sim}
    price: {{input_per_mtok: {INPUT_PRICE}, output_per_mtok: {OUTPUT_PRICE}}}
keys:
  - {{id: k-rpm, key: "{KEYS["rpm"]}", rpm: 3}}
  - {{id: k-tpm, key: "{KEYS["tpm"]}", tpm: 2000}}
  - {{id: k-stream, key: "{KEYS["stream"]}", tpm: 2000}}
  - {{id: k-budget, key: "{KEYS["budget"]}", budget: {BUDGET}, budget_period: day}}
  - {{id: k-parallel, key: "{KEYS["parallel"]}", max_parallel: 1}}
  - {{id: k-free, key: "{KEYS["free"]}"}}
"""


@pytest.fixture(scope="module", params=["memory", "redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    backend: str = request.param
    prefix = unique_prefix(f"http-{backend}")
    with simulator("instant") as sim:
        text = config(sim, backend, prefix)
        with gateway_process(text, tmp_path_factory.mktemp(f"limits-{backend}")) as gateway:
            yield Stack(gateway.url, backend, prefix, Sim(sim))
    drop_prefix(SHARED_REDIS, prefix)


def ask(client: openai.OpenAI, **extra: object) -> openai.APIResponse[object]:
    return client.chat.completions.with_raw_response.create(  # type: ignore[return-value]
        model="m", messages=[{"role": "user", "content": "hello there"}], **extra
    )


def prompt_estimate(text: str) -> int:
    """The gateway's prompt estimate for one user message (see RequestContext)."""
    return estimate_tokens(text) + 4


def test_key_rpm_refuses_with_openai_429_and_headers(stack: Stack) -> None:
    """A key with rpm 3: three answers counting down, then a 429 the SDK understands."""
    with stack.client("rpm") as client:
        remaining = []
        for _ in range(3):
            raw = ask(client)
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
            remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
            assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        assert remaining == [2, 1, 0]
        with pytest.raises(openai.RateLimitError) as caught:
            ask(client)
    response = caught.value.response
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert "key 'k-rpm'" in error["message"]
    # one request comes back every 20 s at 3 per minute
    assert 19 <= int(response.headers["retry-after"]) <= 20
    assert 19_000 <= int(response.headers["retry-after-ms"]) <= 20_000
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_other_keys_are_not_limited(stack: Stack) -> None:
    """A key without limits gets no rate headers and no 429."""
    with stack.client("free") as client:
        for _ in range(5):
            raw = ask(client)
            assert "x-ratelimit-limit-requests" not in raw.headers


def wait_for_settlement(stack: Stack) -> None:
    """The Redis backend settles right after the answer, without the client waiting."""
    if stack.backend == "redis":
        time.sleep(0.2)


def test_tokens_reserve_the_estimate_then_settle_to_real_usage(stack: Stack) -> None:
    """tpm 2000: a request reserves prompt + max_tokens; its short answer gives the rest
    back, so a second large request fits where the reservation alone would not."""
    reserve = prompt_estimate("hello there") + 1500
    with stack.client("tpm") as client:
        first = ask(client, max_tokens=1500)
        assert int(first.headers["x-ratelimit-limit-tokens"]) == 2000
        assert int(first.headers["x-ratelimit-remaining-tokens"]) == 2000 - reserve
        used = first.parse().usage.total_tokens  # type: ignore[attr-defined]
        assert used < 100
        wait_for_settlement(stack)
        started = time.monotonic()
        second = ask(client, max_tokens=1500)  # 2 x 1508 > 2000: only fits after the refund
        refill = (time.monotonic() - started + 1.0) * 2000 / 60
        left = int(second.headers["x-ratelimit-remaining-tokens"])
        expected = 2000 - used - reserve
        assert expected <= left <= expected + refill
        # a request that can never fit the quota is refused for good
        with pytest.raises(openai.RateLimitError) as caught:
            ask(client, max_tokens=5000)
    body = caught.value.response.json()["error"]
    assert "Request too large" in body["message"]
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_streams_settle_from_their_usage_event(stack: Stack) -> None:
    """A stream's real usage (from the usage event the gateway asks for) settles it."""
    reserve = prompt_estimate("hello there") + 1500
    with stack.client("stream") as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m",
            messages=[{"role": "user", "content": "hello there"}],
            max_tokens=1500,
            stream=True,
        )
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 2000 - reserve
        chunks = list(raw.parse())
        assert chunks
        assert all(chunk.usage is None for chunk in chunks)  # the client did not ask for it
        wait_for_settlement(stack)
        second = ask(client, max_tokens=1500)
    left = int(second.headers["x-ratelimit-remaining-tokens"])
    assert left >= 2000 - reserve - 100  # the stream kept only its real ~30 tokens


def test_parallel_slots_are_released_whatever_happens(stack: Stack) -> None:
    """max_parallel 1: sequential requests all pass (each freed its slot, also after an
    upstream error); concurrent ones beyond the first are refused."""
    with stack.client("parallel") as client:
        for _ in range(3):
            ask(client)
        with pytest.raises(openai.BadRequestError):
            ask(client, max_tokens=-1)  # the upstream refuses it: the slot is still freed
        wait_for_settlement(stack)
        ask(client)

    async def burst() -> tuple[int, list[int]]:
        async with httpx.AsyncClient(timeout=20) as http:
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            headers = {"authorization": f"Bearer {KEYS['parallel']}"}

            def post() -> Awaitable[httpx.Response]:
                return http.post(stack.url + "/chat/completions", json=body, headers=headers)

            stack.sim.fault("slow", ttft_ms=1500)  # the next upstream answer takes 1.5 s
            held = asyncio.ensure_future(post())
            await asyncio.sleep(0.5)  # it holds the only slot now
            others = await asyncio.gather(*(post() for _ in range(3)))
            return (await held).status_code, [response.status_code for response in others]

    assert asyncio.run(burst()) == (200, [429, 429, 429])


def test_budget_is_not_overspent_under_concurrency(stack: Stack) -> None:
    """50 concurrent requests against a budget that pays for about 10: what was spent
    (real usage at the deployment's prices) stays within the budget plus one estimate."""
    max_tokens = 16  # the instant simulator answers 16 tokens: estimates are tight

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as http:
            headers = {"authorization": f"Bearer {KEYS['budget']}"}

            async def one(i: int) -> httpx.Response:
                body = {
                    "model": "m",
                    "messages": [{"role": "user", "content": f"question {i:03d}"}],
                    "max_tokens": max_tokens,
                }
                return await http.post(stack.url + "/chat/completions", json=body, headers=headers)

            return await asyncio.gather(*(one(i) for i in range(50)))

    responses = asyncio.run(run())
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served) + len(refused) == 50
    assert refused
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert all(r.headers["x-should-retry"] == "false" for r in refused)

    def cost(usage: dict[str, int]) -> float:
        return (
            usage["prompt_tokens"] * INPUT_PRICE + usage["completion_tokens"] * OUTPUT_PRICE
        ) / 1e6

    spent = sum(cost(r.json()["usage"]) for r in served)
    estimate = (prompt_estimate("question 000") * INPUT_PRICE + max_tokens * OUTPUT_PRICE) / 1e6
    assert spent <= BUDGET + estimate
    assert spent >= BUDGET - 2 * estimate  # and the budget was actually used, not refused early
    if stack.backend == "redis":  # the shared counter holds the settled spend
        time.sleep(0.3)
        client = redis.Redis.from_url(SHARED_REDIS)
        try:
            keys = list(client.scan_iter(match=f"{stack.prefix}:limit:sp:key:k-budget:*"))
            assert len(keys) == 1
            assert float(client.get(keys[0]) or 0) == pytest.approx(spent, rel=1e-6)
        finally:
            client.close()
