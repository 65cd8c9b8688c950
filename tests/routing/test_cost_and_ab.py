"""cheapest, the max_price filter, and A/B splits with their experiment results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from polyroute.config import parse_config
from polyroute.context import Caller, RequestContext
from polyroute.errors import InvalidRequest
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.routing.router import Router
from tests.support import gateway, simulator

ADMIN = "admin-key-for-tests-123"
PRICED = """models:
  - {name: cheap, base_url: SIM, price: {input_per_mtok: 0.1, output_per_mtok: 0.4}}
  - {name: mid, base_url: SIM, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
  - {name: dear, base_url: SIM, price: {input_per_mtok: 10, output_per_mtok: 30}}
routes:
  budget: {strategy: cheapest, targets: [dear, mid, cheap]}
  capped: {strategy: weighted, targets: [dear, cheap]}
  exp:
    strategy: ab
    arms:
      - {name: control, target: mid, weight: 9}
      - {name: candidate, target: cheap, weight: 1}
server: {admin_key: "ADMIN"}
"""


def router() -> Router:
    text = PRICED.replace("SIM", "http://127.0.0.1:9/v1").replace("ADMIN", ADMIN)
    return Gateway.from_config(parse_config(text)).router


def decide(r: Router, model: str, user: str | None = None, **headers: str) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello " * 50}]}
    if user:
        body["user"] = user
    ctx = RequestContext(
        request_id="t",
        kind=EndpointKind.CHAT,
        model=model,
        body=body,
        caller=Caller(),
        headers=headers,
    )
    return r.decide(ctx).explain()


def test_cheapest_orders_by_estimated_cost() -> None:
    """The cheapest deployment first, the rest as fallbacks in rising cost."""
    decision = decide(router(), "budget")
    assert decision["deployment"] == "cheap"
    assert decision["fallbacks"] == ["mid", "dear"]
    costs = decision["signals"]["budget"]["estimated_usd"]
    assert costs["cheap"] < costs["mid"] < costs["dear"]


def test_max_price_filters_expensive_deployments() -> None:
    """x-polyroute-max-price removes deployments whose estimate is over it, with a reason."""
    decision = decide(router(), "capped", **{"x-polyroute-max-price": "0.001"})
    assert decision["deployment"] == "cheap"
    assert decision["fallbacks"] == []
    reasons = [r["reason"] for r in decision["rejected"]]
    assert any("over max_price $0.001000" in reason for reason in reasons)


def test_max_price_nothing_affordable_and_bad_value() -> None:
    """A cap nothing meets: no deployment (400); a malformed cap: 400 naming the header."""
    with pytest.raises(InvalidRequest, match="no deployment"):
        decide(router(), "capped", **{"x-polyroute-max-price": "0"})
    with pytest.raises(InvalidRequest, match="x-polyroute-max-price") as info:
        decide(router(), "capped", **{"x-polyroute-max-price": "cheap please"})
    assert info.value.param == "x-polyroute-max-price"


def test_ab_is_sticky_per_user_and_splits_by_weight() -> None:
    """The same user always gets the same arm; across users the split follows the weights."""
    r = router()
    first = decide(r, "exp", user="alice")
    assert all(decide(r, "exp", user="alice")["arm"] == first["arm"] for _ in range(20))
    arms = Counter(decide(r, "exp", user=f"user-{i}")["arm"] for i in range(2000))
    assert 0.86 <= arms["control"] / 2000 <= 0.94
    assert first["experiment"] == "exp"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator("instant") as sim:
        text = PRICED.replace("SIM", sim).replace("ADMIN", ADMIN)
        with gateway(text, tmp_path_factory.mktemp("ab")) as url:
            yield url


def test_ab_over_http_with_results_and_feedback(stack: str) -> None:
    """The arm is in the headers; results per arm, with feedback, are at /admin/experiments."""
    with openai.OpenAI(base_url=stack, api_key="x", max_retries=0) as client:
        served: dict[str, str] = {}
        for i in range(40):
            raw = client.chat.completions.with_raw_response.create(
                model="exp", messages=[{"role": "user", "content": "hi"}], user=f"u{i}"
            )
            arm = raw.headers["x-polyroute-arm"]
            assert arm in {"exp/control", "exp/candidate"}
            served[raw.headers["x-request-id"]] = arm
        request_id, arm = next(iter(served.items()))
        recorded = client.post(
            "/feedback", body={"request_id": request_id, "score": 1}, cast_to=object
        )
        assert recorded == {
            "request_id": request_id,
            "experiment": "exp",
            "arm": arm.split("/")[1],
            "recorded": True,
        }
        with pytest.raises(openai.NotFoundError):
            client.post("/feedback", body={"request_id": "req_nope", "score": 0.5}, cast_to=object)
        with pytest.raises(openai.BadRequestError):
            client.post("/feedback", body={"request_id": request_id, "score": 2}, cast_to=object)
    report = httpx.get(
        stack.removesuffix("/v1") + "/admin/experiments",
        headers={"authorization": f"Bearer {ADMIN}"},
    ).json()["experiments"]["exp"]
    assert sum(arm["requests"] for arm in report.values()) == 40
    control = report["control"]
    assert control["errors"] == 0
    assert control["error_rate_ci95"][0] == 0.0
    assert control["latency_ms"]["n"] == control["requests"]
    assert control["cost_usd"]["total"] > 0
    feedback_arm = report[arm.split("/")[1]]["feedback"]
    assert feedback_arm["n"] == 1
    assert feedback_arm["mean"] == 1.0


def test_admin_needs_the_admin_key(stack: str, tmp_path: Path) -> None:
    """/admin/experiments refuses other keys, and is off without server.admin_key."""
    base = stack.removesuffix("/v1")
    assert httpx.get(base + "/admin/experiments").status_code == 401
    wrong = httpx.get(base + "/admin/experiments", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    with simulator("instant") as sim:
        config = f"models:\n  - {{name: m, base_url: {sim}}}\n"
        with gateway(config, tmp_path) as url:
            off = httpx.get(url.removesuffix("/v1") + "/admin/experiments")
    assert off.status_code == 403
    assert off.json()["error"]["code"] == "admin_disabled"


def test_streamed_arm_costs_come_from_real_usage(stack: str) -> None:
    """Streams are priced from the upstream's usage event, which the gateway asks for; a
    client that did not ask never sees that extra chunk, one that did gets it unchanged."""
    base = stack.removesuffix("/v1")
    headers = {"authorization": f"Bearer {ADMIN}"}

    def cost_n() -> int:
        report = httpx.get(base + "/admin/experiments", headers=headers).json()["experiments"]
        return sum(arm["cost_usd"]["n"] for arm in report.get("exp", {}).values())

    before = cost_n()
    messages = [{"role": "user", "content": "tell me a story"}]
    with openai.OpenAI(base_url=stack, api_key="x", max_retries=0) as client:
        plain = list(
            client.chat.completions.create(model="exp", messages=messages, stream=True, user="s1")
        )
        assert plain
        assert all(chunk.choices for chunk in plain)
        assert all(chunk.usage is None for chunk in plain)
        asked = list(
            client.chat.completions.create(
                model="exp",
                messages=messages,
                stream=True,
                user="s2",
                stream_options={"include_usage": True},
            )
        )
    usage = asked[-1].usage
    assert usage is not None
    assert usage.completion_tokens > 0
    assert asked[-1].choices == []
    assert cost_n() == before + 2
