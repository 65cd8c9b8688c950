"""Health probes: a deployment that stops answering is ejected before any client request
fails on it; one that answers is left alone. Real gateway process, real simulator, and a
closed port for the dead deployment."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support import Sim, free_port, gateway, simulator


def config(sim: str, closed: int) -> str:
    return f"""
resilience:
  probes: {{interval: 0.2, timeout: 0.5}}
  breaker: {{consecutive_failures: 3, base_ejection: 30}}
models:
  - {{name: up, base_url: {sim}}}
  - {{name: down, base_url: "http://127.0.0.1:{closed}/v1"}}
routes:
  both:
    strategy: weighted
    targets: [{{name: down, weight: 1000000}}, up]
"""


def test_a_dead_deployment_is_ejected_by_probes_alone(tmp_path: Path) -> None:
    with simulator("instant") as sim_url, gateway(config(sim_url, free_port()), tmp_path) as url:
        sim = Sim(sim_url)
        body = {"model": "both", "messages": [{"role": "user", "content": "hi"}]}
        deadline = time.monotonic() + 10
        while True:
            explained = httpx.post(url + "/route", json=body).json()
            rejected = {r["target"]: r["reason"] for r in explained["rejected"]}
            if "down" in rejected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "down" in rejected, explained  # ejected with no client request sent to it
        assert explained["deployment"] == "up"
        assert "up" not in rejected
        answer = httpx.post(url + "/chat/completions", json=body)
        assert answer.status_code == 200
        assert answer.headers["x-polyroute-deployment"] == "up"
        assert answer.headers["x-polyroute-attempts"] == "1"
        assert sim.stats()["requests"].get("/v1/models", 0) >= 1  # `up` was probed too
