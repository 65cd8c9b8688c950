"""The adaptive strategy through the real gateway: simulator upstreams, the openai SDK,
POST /v1/feedback, POST /v1/route, and state that survives a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support import Sim, gateway, simulator

MESSAGES: Any = [{"role": "user", "content": "hi"}]
CONFIG = """models:
  - {name: good, base_url: GOOD}
  - {name: bad, base_url: BAD}
routes:
  smart:
    strategy: adaptive
    targets: [good, bad]
    seed: 11
    state_file: STATE
    save_every: 0.2
resilience:
  max_retries: 1
  breaker: {consecutive_failures: 1000, failure_rate: 1.0, min_requests: 1000}
"""
# The breaker is off (in effect) so that only the bandit moves traffic away from `bad`.


@dataclass
class Stack:
    good: Sim
    bad: Sim
    tmp: Path

    def config(self, state: Path) -> str:
        return (
            CONFIG.replace("GOOD", self.good.url)
            .replace("BAD", self.bad.url)
            .replace("STATE", str(state))
        )


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with simulator("instant") as good, simulator("instant") as bad:
        yield Stack(Sim(good), Sim(bad), tmp_path_factory.mktemp("adaptive"))


@pytest.fixture(scope="module")
def stack(sims: Stack) -> Iterator[str]:
    with gateway(sims.config(sims.tmp / "state.json"), sims.tmp) as url:
        yield url


def explain(url: str) -> dict[str, Any]:
    response = httpx.post(url + "/route", json={"model": "smart", "messages": MESSAGES})
    assert response.status_code == 200
    return dict(response.json())


def test_failing_deployment_gets_less_traffic(stack: str, sims: Stack) -> None:
    """`bad` answers 500 to everything: the bandit learns it and stops choosing it. Every
    request still succeeds (the other target is the fallback)."""
    sims.bad.reset()
    sims.bad.fault("server_error", 1000)
    chosen = []
    with openai.OpenAI(base_url=stack, api_key="x", max_retries=0) as client:
        for _ in range(60):
            raw = client.chat.completions.with_raw_response.create(model="smart", messages=MESSAGES)
            assert raw.headers["x-polyroute-deployment"] == "good"
            assert raw.headers["x-polyroute-strategy"] == "adaptive"
            chosen.append(raw.headers["x-polyroute-arm"])
    assert set(chosen) <= {"smart/good", "smart/bad"}
    assert "smart/bad" in chosen[:20]  # it was tried
    assert chosen[30:].count("smart/bad") <= 3  # and then left alone
    signals = explain(stack)["signals"]["smart"]
    estimate = signals["estimate"]
    assert estimate["bad"]["n"] >= 1
    assert estimate["bad"]["mean"] <= 0.34  # Beta(1, 1 + failures): no success at all
    assert estimate["good"]["mean"] > 0.9
    assert estimate["good"]["n"] + estimate["bad"]["n"] >= 60
    sims.bad.reset()


def test_feedback_for_an_adaptive_request(stack: str) -> None:
    with openai.OpenAI(base_url=stack, api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="smart", messages=MESSAGES)
        request_id = raw.headers["x-request-id"]
        served = raw.headers["x-polyroute-deployment"]
        before = explain(stack)["signals"]["smart"]["estimate"][served]
        answer: Any = client.post(
            "/feedback", body={"request_id": request_id, "score": 0}, cast_to=object
        )
    assert answer["recorded"] is True
    assert answer["experiment"] == "smart"
    attached = answer["adaptive"]
    assert attached["route"] == "smart"
    assert attached["arm"] == served
    assert attached["counted"] is True
    assert attached["reward"] == 0.0
    after = explain(stack)["signals"]["smart"]["estimate"][served]
    assert after["mean"] < before["mean"]  # a zero score pulled the estimate down


def test_route_explanation_shows_the_bandit_estimate(stack: str) -> None:
    explanation = explain(stack)
    assert explanation["strategy"] == "adaptive"
    signals = explanation["signals"]["smart"]
    assert signals["strategy"] == "adaptive"
    assert signals["arm"] == explanation["arm"]
    assert signals["context"] == "*"
    assert set(signals["estimate"]) == {"good", "bad"}
    assert all(set(e) == {"mean", "n"} for e in signals["estimate"].values())
    assert 0.0 <= signals["sampled"] <= 1.0
    assert explanation["experiment"] == "smart"


def test_learning_survives_a_restart(sims: Stack, tmp_path: Path) -> None:
    """Saved while serving (every save_every seconds) and on shutdown; the next process
    starts from it."""
    state = tmp_path / "restart.json"
    config = sims.config(state)
    sims.bad.reset()
    sims.bad.fault("server_error", 1000)
    with gateway(config, tmp_path) as url:
        with openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client:
            for _ in range(25):
                client.chat.completions.create(model="smart", messages=MESSAGES)
        deadline = time.monotonic() + 10
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.exists()  # the periodic save, while still serving
        learned = explain(url)["signals"]["smart"]["estimate"]
    assert learned["good"]["n"] + learned["bad"]["n"] == 25
    saved = json.loads(state.read_text())["contexts"]["*"]
    assert saved["good"]["n"] + saved["bad"]["n"] == 25
    sims.bad.reset()
    with gateway(config, tmp_path) as url:
        restored = explain(url)["signals"]["smart"]["estimate"]
    assert restored == learned
