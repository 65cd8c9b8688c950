"""Process-level behaviour: in-process simulator deployments, client disconnects, SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.api.conftest import Sim
from tests.support import free_port, polyroute_process, simulator

MESSAGES = [{"role": "user", "content": "hello"}]


def test_in_process_simulator_deployment(tmp_path: Path) -> None:
    """`provider: simulator` serves from inside the gateway, no upstream socket."""
    config = tmp_path / "gw.yaml"
    config.write_text(
        "models:\n"
        "  - {name: local-sim, provider: simulator, profile: instant}\n"
        "  - {name: inline, provider: simulator, profile: {kinds: [embedding], embedding_dim: 8}}\n"
    )
    port = free_port()
    with (
        polyroute_process(
            "serve", "-c", str(config), "--port", str(port), ready_path="/readyz", port=port
        ),
        openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(model="local-sim", messages=MESSAGES)
        assert (reply.choices[0].message.content or "").startswith("[simulated instant]")
        chunks = list(
            client.chat.completions.create(model="local-sim", messages=MESSAGES, stream=True)
        )
        assert chunks
        vector = client.embeddings.create(model="inline", input="x", encoding_format="float")
        assert len(vector.data[0].embedding) == 8


@pytest.fixture
def hanging_stack(tmp_path: Path) -> Any:
    with simulator("instant") as url:
        config = tmp_path / "gw.yaml"
        config.write_text(
            f"models:\n  - {{name: m, base_url: {url}}}\nserver: {{shutdown_timeout: 10}}\n"
        )
        port = free_port()
        with polyroute_process(
            "serve", "-c", str(config), "--port", str(port), ready_path="/readyz", port=port
        ) as proc:
            yield f"http://127.0.0.1:{port}/v1", Sim(url), proc


def test_client_disconnect_cancels_the_upstream_call(hanging_stack: Any) -> None:
    """A client that gives up while the upstream works: the upstream sees the disconnect."""
    url, sim, _ = hanging_stack
    sim.fault("hang", 1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            url + "/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=0.5
        )
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and sim.stats()["disconnects"] == 0:
        time.sleep(0.05)
    stats = sim.stats()
    assert stats["disconnects"] == 1
    assert stats["in_flight"] == 0


def test_sigterm_drains_in_flight_requests(hanging_stack: Any) -> None:
    """C4: SIGTERM with ten slow requests in flight: all ten complete, then exit 0."""
    url, sim, proc = hanging_stack
    sim.fault("slow", 10, ttft_ms=1000)
    statuses: list[int] = []

    def call() -> None:
        response = httpx.post(
            url + "/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=10
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while sim.stats()["in_flight"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 10
    assert proc.wait(timeout=10) == 0
