"""Resilience under load and at the limits, over real sockets: 1,000 concurrent requests
with injected faults, the retry budget in a 50 % failure storm, load shedding, the request
deadline, ejection and degradation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import orjson
import pytest

from polyroute.kinds import EndpointKind
from polyroute.providers.simulator.engine import SimEngine
from polyroute.providers.simulator.profiles import load_profile
from polyroute.providers.simulator.wire import Reply
from tests.support import Sim, gateway, simulator


@contextmanager
def faulty_simulator(tmp: Path, **rates: float) -> Iterator[str]:
    """An `instant` simulator (same name, so the same text) failing at the given rates."""
    profile = tmp / f"faulty-{'-'.join(rates)}.yaml"
    faults = ", ".join(f"{kind}: {rate}" for kind, rate in rates.items())
    profile.write_text(f"base: instant\nname: instant\nfaults: {{{faults}}}\n")
    with simulator(str(profile)) as url:
        yield url


def expected_answer(prompt: str) -> str:
    """What the `instant` profile answers to `prompt` (deterministic), computed in-process."""
    engine = SimEngine(load_profile("instant"))
    body = {"model": "shared", "messages": [{"role": "user", "content": prompt}]}
    outcome = engine.handle(EndpointKind.CHAT, body)
    assert isinstance(outcome, Reply)
    return str(orjson.loads(outcome.body)["choices"][0]["message"]["content"])


async def test_1000_concurrent_requests_with_5_percent_faults(tmp_path: Path) -> None:
    """C1: every request gets exactly its own answer: none lost, duplicated or crossed;
    upstream attempts are the requests plus one fallback per injected fault."""
    with faulty_simulator(tmp_path, server_error=0.05) as primary, simulator("instant") as spare:
        config = f"""
models:
  - {{name: p, base_url: {primary}, model: shared}}
  - {{name: f, base_url: {spare}, model: shared}}
routes:
  r: {{strategy: single, target: p, fallbacks: [f]}}
"""
        with gateway(config, tmp_path) as url:
            client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=60)

            async def ask(i: int) -> tuple[int, str, str]:
                raw = await client.chat.completions.with_raw_response.create(
                    model="r", messages=[{"role": "user", "content": f"question number {i}"}]
                )
                text = raw.parse().choices[0].message.content or ""
                return i, raw.headers["x-request-id"], text

            results = await asyncio.gather(*(ask(i) for i in range(1000)))
            await client.close()
            p_stats, f_stats = Sim(primary).stats(), Sim(spare).stats()
    assert len(results) == 1000
    assert len({request_id for _, request_id, _ in results}) == 1000
    for i, _, text in results:
        assert text == expected_answer(f"question number {i}")
    injected = p_stats["faults"].get("server_error", 0)
    assert 20 <= injected <= 90  # ~5 % of 1,000
    assert p_stats["requests"]["/v1/chat/completions"] == 1000
    assert f_stats["requests"].get("/v1/chat/completions", 0) == injected


async def test_retry_budget_holds_in_a_failure_storm(tmp_path: Path) -> None:
    """A13: with half the upstream's answers failing, extra attempts stay within 20 % of
    the requests (no floor here), instead of the ~75 % that max_retries alone would add."""
    with faulty_simulator(tmp_path, server_error=0.5) as upstream:
        config = f"""
models:
  - {{name: p, base_url: {upstream}, model: shared}}
routes:
  r: {{strategy: single, target: p}}
resilience:
  max_retries: 2
  retry_budget: {{ratio: 0.2, min_per_second: 0, window: 60}}
  backoff: {{base: 0.001, cap: 0.002}}
  breaker: {{consecutive_failures: 100000, min_requests: 100000}}
"""
        with gateway(config, tmp_path) as url:
            client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
            semaphore = asyncio.Semaphore(20)

            async def ask(i: int) -> int:
                async with semaphore:
                    try:
                        await client.chat.completions.create(
                            model="r", messages=[{"role": "user", "content": f"q{i}"}]
                        )
                    except openai.APIStatusError as exc:
                        return exc.status_code
                    return 200

            outcomes = await asyncio.gather(*(ask(i) for i in range(300)))
            await client.close()
            attempts = Sim(upstream).stats()["requests"]["/v1/chat/completions"]
    retries = attempts - 300
    assert 0 < retries <= 0.2 * 300 + 1
    assert set(outcomes) == {200, 502}


async def test_overload_sheds_fast_per_deployment_and_globally(tmp_path: Path) -> None:
    """C2/C3: past the in-flight limits requests get an immediate 503 with retry-after,
    while the requests already admitted complete."""
    with simulator("instant") as upstream:
        sim = Sim(upstream)
        config = f"""
models:
  - {{name: a, base_url: {upstream}}}
  - {{name: b, base_url: {upstream}}}
resilience: {{max_in_flight: 4, max_in_flight_per_deployment: 2}}
"""
        with gateway(config, tmp_path) as url:
            client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
            sim.fault("slow", 4, ttft_ms=1500)
            message = [{"role": "user", "content": "slow"}]
            slow: list[asyncio.Task[object]] = []
            for model, reason in (("a", "in-flight limit"), ("b", "limit of requests")):
                slow += [
                    asyncio.create_task(
                        client.chat.completions.create(model=model, messages=message)
                    )
                    for _ in range(2)
                ]
                while sim.stats()["in_flight"] < len(slow):
                    await asyncio.sleep(0.02)
                started = time.monotonic()
                with pytest.raises(openai.APIStatusError) as info:
                    await client.chat.completions.create(model=model, messages=message)
                assert time.monotonic() - started < 1.0
                assert info.value.status_code == 503
                assert info.value.code == "overloaded"
                assert info.value.response.headers["retry-after"] == "1"
                assert reason in info.value.message
            assert all(await asyncio.gather(*slow))
            await client.close()


def test_request_deadline_bounds_all_attempts(tmp_path: Path) -> None:
    """Deadline: a hanging upstream with a 30 s first-byte limit still ends at the route's
    1 s deadline, retries included, with a 504."""
    with simulator("instant") as upstream:
        Sim(upstream).fault("hang", 5)
        config = f"""
models:
  - {{name: p, base_url: {upstream}, timeouts: {{first_byte: 30}}}}
routes:
  r: {{strategy: single, target: p, deadline: 1.0}}
"""
        with (
            gateway(config, tmp_path) as url,
            openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client,
        ):
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(
                    model="r", messages=[{"role": "user", "content": "x"}]
                )
            elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    assert 0.9 <= elapsed < 2.0


def test_ejection_then_degraded_target_in_headers(tmp_path: Path) -> None:
    """A12 + degradation: a deployment failing twice is ejected; its route then serves
    the degraded target, says so in a header, and /v1/route explains why."""
    with simulator("instant") as upstream, simulator("instant") as spare:
        Sim(upstream).fault("server_error", 2)
        config = f"""
models:
  - {{name: p, base_url: {upstream}}}
  - {{name: cheap, base_url: {spare}}}
routes:
  r: {{strategy: single, target: p, degraded: cheap, max_retries: 0}}
resilience:
  breaker: {{consecutive_failures: 2, base_ejection: 60}}
"""
        with (
            gateway(config, tmp_path) as url,
            openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client,
        ):
            messages = [{"role": "user", "content": "x"}]
            for _ in range(2):
                with pytest.raises(openai.APIStatusError):
                    client.chat.completions.create(model="r", messages=messages)
            raw = client.chat.completions.with_raw_response.create(model="r", messages=messages)
            assert raw.headers["x-polyroute-deployment"] == "cheap"
            assert raw.headers["x-polyroute-degraded"] == "true"
            decision = client.post(
                "/route", body={"model": "r", "messages": messages}, cast_to=object
            )
            assert isinstance(decision, dict)
            assert decision["degraded"] is True
            assert "2 consecutive failures" in decision["rejected"][0]["reason"]
        assert Sim(upstream).stats()["requests"]["/v1/chat/completions"] == 2


async def test_client_disconnects_cancel_upstream_calls(tmp_path: Path) -> None:
    """A11/B5: 32 clients that give up mid-request (half streaming): every upstream call
    is cancelled within a second and nothing is left in flight."""
    import httpx

    with simulator("instant") as upstream:
        sim = Sim(upstream)
        config = f"models:\n  - {{name: p, base_url: {upstream}}}\n"
        with gateway(config, tmp_path) as url:
            sim.fault("hang", 16)
            sim.fault("stall", 16, after_chunks=2)

            async def give_up(i: int) -> None:
                body = {
                    "model": "p",
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": i >= 16,
                }
                async with httpx.AsyncClient(timeout=0.5) as http:
                    with pytest.raises(httpx.ReadTimeout):
                        await _read_all(http, url + "/chat/completions", body)

            await asyncio.gather(*(give_up(i) for i in range(32)))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and sim.stats()["in_flight"]:
                await asyncio.sleep(0.05)
            stats = sim.stats()
    assert stats["in_flight"] == 0
    assert stats["disconnects"] == 32


def test_request_deadline_ends_an_open_stream(tmp_path: Path) -> None:
    """A stream still open when the request's deadline passes ends with a terminal
    upstream_timeout event, even though its idle limit is much longer."""
    with simulator("instant") as upstream:
        Sim(upstream).fault("stall", 1, after_chunks=3)
        config = (
            f"models:\n  - {{name: p, base_url: {upstream}}}\n"
            "routes:\n  r: {strategy: single, target: p, deadline: 1.0}\n"
        )
        with (
            gateway(config, tmp_path) as url,
            openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client,
        ):
            stream = client.chat.completions.create(
                model="r", messages=[{"role": "user", "content": "x"}], stream=True
            )
            with pytest.raises(openai.APIError) as info:
                list(stream)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upstream_timeout"


async def _read_all(http: object, url: str, body: dict[str, object]) -> None:
    """POST and read the whole response, streaming or not."""
    import httpx

    assert isinstance(http, httpx.AsyncClient)
    async with http.stream("POST", url, json=body) as response:
        async for _ in response.aiter_bytes():
            pass
