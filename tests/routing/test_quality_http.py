"""The quality strategy through the real HTTP path: gateway and simulator processes, openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from polyroute.config import parse_config
from polyroute.routing.build import build_router
from tests.routing.test_quality import EASY, HARD, IMPOSSIBLE
from tests.support import gateway, simulator


def config(sim: str, data: Path) -> str:
    return (
        "models:\n"
        f"  - {{name: mixtral, base_url: {sim}}}\n"
        f"  - {{name: gpt-4, base_url: {sim}}}\n"
        "routes:\n"
        "  smart:\n    strategy: quality\n    weak: mixtral\n    strong: gpt-4\n"
        f"    threshold: 0.4\n    data: {json.dumps(str(data))}\n"
        "    examples: {strong: [derive the Navier-Stokes equations from first principles]}\n"
        "default_route: smart\n"
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    tmp: Path = tmp_path_factory.mktemp("quality")
    data = tmp / "outcomes.jsonl"
    rows = [(t, True, True) for t in EASY] + [(t, False, True) for t in HARD]
    rows += [(t, False, False) for t in IMPOSSIBLE]
    data.write_text(
        "".join(json.dumps({"prompt": t, "weak_ok": w, "strong_ok": s}) + "\n" for t, w, s in rows)
    )
    env = {"POLYROUTE_CACHE_DIR": str(tmp / "cache")}
    with pytest.MonkeyPatch.context() as patch:
        # train here, so that the gateway process starts from the cache (and fast)
        patch.setenv("POLYROUTE_CACHE_DIR", env["POLYROUTE_CACHE_DIR"])
        build_router(parse_config(config("http://127.0.0.1:9/v1", data)))
    assert list((tmp / "cache" / "classifiers").glob("*.npz"))
    with (
        simulator("instant") as sim,
        gateway(config(sim, data), tmp, env=env) as url,
        openai.OpenAI(base_url=url, api_key="sk-any", max_retries=0) as sdk,
    ):
        yield sdk


@pytest.mark.parametrize(
    ("prompt", "deployment"),
    [
        ("what is the capital of Spain", "mixtral"),
        ("prove that there are infinitely many primes of the form 6k+5", "gpt-4"),
        ("what will the winning lottery numbers be next week", "mixtral"),
    ],
)
def test_prompts_reach_the_model_they_need(
    client: openai.OpenAI, prompt: str, deployment: str
) -> None:
    """Easy prompts (and ones no model can answer) go to the weak model, hard ones to the
    strong model; the simulator's answer comes back through the gateway."""
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": prompt}]
    )
    assert raw.headers["x-polyroute-route"] == "smart"
    assert raw.headers["x-polyroute-strategy"] == "quality"
    assert raw.headers["x-polyroute-deployment"] == deployment
    assert (raw.parse().choices[0].message.content or "").startswith("[simulated instant]")


def test_route_explains_the_choice(client: openai.OpenAI) -> None:
    """POST /v1/route shows the predicted probabilities, the gain, the threshold and the
    choice, with the other model as the fallback."""
    for prompt, choice, primary, fallback in (
        ("derive the eigenvalues of the hydrogen atom and prove it", "strong", "gpt-4", "mixtral"),
        ("say good morning in French", "weak", "mixtral", "gpt-4"),
    ):
        body = {"model": "smart", "messages": [{"role": "user", "content": prompt}]}
        decision = client.post("/route", body=body, cast_to=object)
        assert isinstance(decision, dict)
        assert decision["strategy"] == "quality"
        assert decision["deployment"] == primary
        assert decision["fallbacks"] == [fallback]
        signals = decision["signals"]["smart"]
        assert signals["choice"] == choice
        assert signals["threshold"] == 0.4
        assert (signals["strong_gain"] >= 0.4) is (choice == "strong")
        assert signals["strong_gain"] == pytest.approx(
            signals["p_strong_ok"] - signals["p_weak_ok"], abs=1e-3
        )
        assert signals["classified"] == "last_user"
