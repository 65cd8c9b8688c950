"""The content strategy through the real HTTP path: gateway and simulator processes, openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from polyroute.config import parse_config
from polyroute.gateway import Gateway
from tests.routing.test_content import STRATEGY, TOPICS
from tests.support import gateway, simulator


def config(sim: str) -> str:
    models = "".join(
        f"  - {{name: {name}, base_url: {sim}}}\n"
        for name in ("coder", "chef", "general", "zh-model")
    )
    return (
        f"models:\n{models}routes:\n"
        f"  assistant:\n    strategy: {STRATEGY}\n    signal: language\n"
        "    default: general\n"
        "    categories: {zh: {target: zh-model}, en: {target: topics}}\n"
        f"  topics:\n    strategy: {STRATEGY}\n    default: general\n    threshold: 0.5\n"
        + TOPICS
        + "default_route: assistant\n"
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    tmp: Path = tmp_path_factory.mktemp("content")
    env = {"POLYROUTE_CACHE_DIR": str(tmp / "cache")}
    with pytest.MonkeyPatch.context() as patch:
        # train here, so that the gateway process starts from the cache (and fast)
        patch.setenv("POLYROUTE_CACHE_DIR", env["POLYROUTE_CACHE_DIR"])
        Gateway.from_config(parse_config(config("http://127.0.0.1:9/v1")))
    assert list((tmp / "cache" / "classifiers").glob("*.npz"))
    with (
        simulator("instant") as sim,
        gateway(config(sim), tmp, env=env) as url,
        openai.OpenAI(base_url=url, api_key="sk-any", max_retries=0) as sdk,
    ):
        yield sdk


@pytest.mark.parametrize(
    ("prompt", "deployment"),
    [
        ("please fix the bug in this python function", "coder"),
        ("what can I cook tonight with potatoes and eggs", "chef"),
        ("请把这段话翻译成英文", "zh-model"),
        ("who won the football world cup in 1998", "general"),
        ("Je voudrais réserver une table pour ce soir", "general"),
    ],
)
def test_prompts_reach_their_category_target(
    client: openai.OpenAI, prompt: str, deployment: str
) -> None:
    """Language first, then topic: each prompt is served by its category's deployment."""
    raw = client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "user", "content": prompt}]
    )
    assert raw.headers["x-polyroute-deployment"] == deployment
    assert raw.headers["x-polyroute-strategy"] == "content"
    assert (raw.parse().choices[0].message.content or "").startswith("[simulated instant]")


def test_route_explains_category_and_confidence(client: openai.OpenAI) -> None:
    """POST /v1/route shows both content decisions with their signals."""
    body = {"model": "assistant", "messages": [{"role": "user", "content": "debug my java code"}]}
    decision = client.post("/route", body=body, cast_to=object)
    assert isinstance(decision, dict)
    assert decision["strategy"] == "content"
    assert decision["deployment"] == "coder"
    assert decision["path"] == ["assistant", "topics"]
    outer, inner = decision["signals"]["assistant"], decision["signals"]["topics"]
    assert outer["strategy"] == "content"
    assert outer["language"] == "en"
    assert inner["category"] == "code"
    assert inner["confidence"] >= inner["threshold"] == 0.5
    assert inner["classified"] == "last_user"
