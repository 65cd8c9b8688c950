"""The `budget` routing filter: a key running out of budget is served by the deployments it
can still afford, and refused (429 budget_exceeded) once nothing is left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import gateway, simulator

KEY = "sk-budget-filter-000000001"


def config(sim: str) -> str:
    return f"""
models:
  - {{name: dear, base_url: {sim}, price: {{input_per_mtok: 0, output_per_mtok: 1000}}}}
  - {{name: cheap, base_url: {sim}, price: {{input_per_mtok: 0, output_per_mtok: 100}}}}
routes:
  chat:
    strategy: weighted
    targets: [{{name: dear, weight: 1000000}}, {{name: cheap, weight: 0.000001}}]
keys:
  - {{id: thrifty, key: {KEY}, budget: 0.025, budget_period: day}}
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator("instant") as sim, gateway(config(sim), tmp_path_factory.mktemp("b")) as url:
        yield url


BODY = {"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"authorization": f"Bearer {KEY}"}


def test_expensive_targets_are_set_aside_as_the_budget_runs_out(url: str, tmp_path: Path) -> None:
    served: list[str] = []
    for _ in range(12):
        if len(served) == 2:  # $0.005 left: `dear` ($0.01) is set aside, with the reason
            explained = httpx.post(url + "/route", json=BODY, headers=HEADERS).json()
            assert explained["deployment"] == "cheap"
            reasons = {r["target"]: r["reason"] for r in explained["rejected"]}
            assert "left in the caller's budget" in reasons["dear"]
        answer = httpx.post(url + "/chat/completions", json=BODY, headers=HEADERS)
        if answer.status_code != 200:
            break
        served.append(answer.headers["x-polyroute-deployment"])
    # $0.01 per `dear` answer (10 tokens at $1000/M): two fit in $0.025, then only `cheap`
    assert served[:2] == ["dear", "dear"]
    assert set(served[2:]) == {"cheap"}
    assert len(served) >= 4
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "budget_exceeded"
