"""ensemble: fan-out to several deployments with each aggregator, through the real gateway.

Upstreams are real servers on loopback: simulator processes (`polyroute simulate`), the
in-process simulator provider for shaped latency, and, for the judge, a small
OpenAI-compatible aiohttp server started by the test whose answer the test controls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from polyroute.config import ConfigError, parse_config
from polyroute.gateway import Gateway
from tests.support import Sim, free_port, gateway, simulator

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class JudgeServer:
    """An OpenAI-compatible chat server that always answers `reply` (and counts calls)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[dict[str, Any]] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        return web.json_response(
            {
                "id": "judge-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
            }
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def config(sim_a: str, sim_b: str, judge: str, closed: int) -> str:
    return f"""
server: {{expose_deployments: true}}
resilience:
  breaker: {{consecutive_failures: 100000, min_requests: 100000}}
  retry_budget: {{min_per_second: 100000}}
  backoff: {{base: 0.001, cap: 0.002}}
models:
  - {{name: twin1, base_url: {sim_a}, model: twin}}
  - {{name: twin2, base_url: {sim_b}, model: twin}}
  - {{name: odd, base_url: {sim_a}, model: odd}}
  - {{name: down, base_url: "http://127.0.0.1:{closed}/v1"}}
  - name: slow
    provider: simulator
    profile: {{name: slow, kinds: [chat], ttft_ms: {{median: 1500}}}}
  - name: quick
    provider: simulator
    profile: {{name: quick, kinds: [chat], ttft_ms: {{median: 0}}}}
  - {{name: judge, base_url: {judge}}}
routes:
  vote:
    strategy: ensemble
    members: [odd, twin1, twin2]
    aggregator: majority
  vote-strict:
    strategy: ensemble
    members: [odd, twin1, twin2]
    aggregator: majority
    min_success: 3
  race: {{strategy: ensemble, members: [slow, quick], aggregator: fastest}}
  prefer: {{strategy: ensemble, members: [down, odd, twin1], aggregator: first_success}}
  panel:
    strategy: ensemble
    members: [odd, twin1]
    aggregator: judge
    judge: judge
  all: {{strategy: ensemble, members: [odd, twin1, quick], aggregator: merge}}
  nested: {{strategy: single, target: vote}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Sim, JudgeServer]]:
    with (
        simulator("instant") as sim_a,
        simulator("instant") as sim_b,
        JudgeServer("Answer 2 is best.") as judge,
    ):
        text = config(sim_a, sim_b, judge.url, free_port())
        with gateway(text, tmp_path_factory.mktemp("ensemble")) as url:
            yield url, Sim(sim_a), judge


def chat(url: str, model: str, **extra: Any) -> Any:
    with openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client:
        return client.chat.completions.with_raw_response.create(
            model=model, messages=QUESTION, **extra
        )


def content(raw: Any) -> str:
    return str(raw.parse().choices[0].message.content)


def test_majority_answers_what_most_members_say_and_sums_usage(
    stack: tuple[str, Sim, JudgeServer],
) -> None:
    url, _, _ = stack
    raw = chat(url, "vote")
    twin = chat(url, "twin1").parse()
    odd = chat(url, "odd").parse()
    assert content(raw) == twin.choices[0].message.content != odd.choices[0].message.content
    assert raw.headers["x-polyroute-strategy"] == "ensemble"
    assert raw.headers["x-polyroute-deployment"] == "twin1"
    assert raw.headers["x-polyroute-ensemble"] == "majority; winner=twin1; answered=3/3; votes=2"
    usage = raw.parse().usage
    assert twin.usage is not None
    assert odd.usage is not None
    assert usage.completion_tokens == 2 * twin.usage.completion_tokens + odd.usage.completion_tokens
    assert usage.prompt_tokens == 2 * twin.usage.prompt_tokens + odd.usage.prompt_tokens


def test_partial_failures_are_tolerated_down_to_min_success(
    stack: tuple[str, Sim, JudgeServer],
) -> None:
    url, sim_a, _ = stack
    sim_a.reset()
    sim_a.fault("server_error", count=1, model="odd")
    raw = chat(url, "vote")
    assert raw.headers["x-polyroute-ensemble"].startswith("majority; winner=twin1; answered=3/3")
    # a member that fails on every retry is missing from the vote; 3 of 3 are required here
    sim_a.fault("server_error", count=5)
    with pytest.raises(openai.APIStatusError) as failed:
        chat(url, "vote-strict")
    assert failed.value.status_code == 502
    sim_a.reset()


def test_fastest_answers_with_the_quickest_member_json_and_stream(
    stack: tuple[str, Sim, JudgeServer],
) -> None:
    url, _, _ = stack
    raw = chat(url, "race")
    assert raw.headers["x-polyroute-deployment"] == "quick"
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
    with (
        client,
        client.chat.completions.with_streaming_response.create(
            model="race", messages=QUESTION, stream=True
        ) as response,
    ):
        assert response.headers["x-polyroute-deployment"] == "quick"
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
    assert text.startswith("[simulated quick]")


def test_first_success_keeps_the_listed_preference(stack: tuple[str, Sim, JudgeServer]) -> None:
    url, _, _ = stack
    raw = chat(url, "prefer")
    assert raw.headers["x-polyroute-deployment"] == "odd"  # `down` refused the connection
    assert content(raw) == content(chat(url, "odd"))


def test_judge_picks_the_answer_and_its_cost_counts(stack: tuple[str, Sim, JudgeServer]) -> None:
    url, _, judge = stack
    before = len(judge.calls)
    raw = chat(url, "panel")
    assert raw.headers["x-polyroute-deployment"] == "twin1"  # the judge said "2"
    assert raw.headers["x-polyroute-ensemble"].endswith("judge=picked")
    assert len(judge.calls) == before + 1
    prompt = judge.calls[-1]["messages"][-1]["content"]
    assert "What is the capital of France?" in prompt
    assert "Answer 2:" in prompt
    usage = raw.parse().usage
    alone = chat(url, "odd").parse().usage
    assert alone is not None
    # two members' tokens plus the judge's 50 + 1
    assert usage.prompt_tokens == 2 * alone.prompt_tokens + 50


def test_merge_returns_every_answer_as_choices(stack: tuple[str, Sim, JudgeServer]) -> None:
    url, _, _ = stack
    answer = chat(url, "all").parse()
    assert [choice.index for choice in answer.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in answer.choices]
    assert texts[2].startswith("[simulated quick]")
    assert len(set(texts)) == 3


def test_aggregated_stream_sends_the_aggregate_as_events(
    stack: tuple[str, Sim, JudgeServer],
) -> None:
    url, _, _ = stack
    expected = content(chat(url, "vote"))
    with openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model="nested",
                messages=QUESTION,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_route_explains_the_ensemble(stack: tuple[str, Sim, JudgeServer]) -> None:
    url, _, _ = stack
    explained = httpx.post(url + "/route", json={"model": "nested", "messages": QUESTION}).json()
    assert explained["ensemble"] == {
        "aggregator": "majority",
        "members": ["odd", "twin1", "twin2"],
        "judge": None,
    }
    assert explained["path"] == ["nested", "vote"]
    embeddings = httpx.post(url + "/embeddings", json={"model": "vote", "input": "x"})
    assert embeddings.status_code == 400


BASE = """
models:
  - {name: a, base_url: "http://127.0.0.1:9/v1"}
  - {name: b, base_url: "http://127.0.0.1:9/v1"}
routes:
  other: {strategy: single, target: a}
  e:
"""


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("{strategy: ensemble, members: [a]}", "at least 2"),
        ("{strategy: ensemble, members: [a, a]}", "distinct"),
        ("{strategy: ensemble, members: [a, b], aggregator: judge}", "needs a `judge`"),
        ("{strategy: ensemble, members: [a, b], aggregator: judge, judge: other}", "not a route"),
        ("{strategy: ensemble, members: [a, b], judge: a}", "only the judge aggregator"),
        ("{strategy: ensemble, members: [a, b], aggregator: majority, extract: 'x'}", "group"),
        ("{strategy: ensemble, members: [a, b], extract: '(x)'}", "only the majority"),
        ("{strategy: ensemble, members: [a, b], min_success: 3}", "more than there are"),
        ("{strategy: ensemble, members: [a, nope]}", "neither a deployment nor a route"),
    ],
)
def test_bad_ensemble_configs_fail_at_load(route: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        Gateway.from_config(parse_config(BASE + "    " + route + "\n"))
    assert message in str(error.value)
    assert "routes.e" in str(error.value)


def _answer(name: str, text: str, price_in: float = 0.0, tokens: tuple[int, int] = (0, 0)) -> Any:
    from polyroute.config.schema import DeploymentConfig
    from polyroute.deployment import Deployment
    from polyroute.execution.ensemble import Answer
    from polyroute.outcomes import Usage

    config = DeploymentConfig.model_validate(
        {"name": name, "price": {"input_per_mtok": price_in, "output_per_mtok": 2 * price_in}}
    )
    data = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return Answer(Deployment.from_config(config), data, Usage(*tokens), 1)


def test_majority_normalizes_and_extracts() -> None:
    from polyroute.execution.ensemble import majority
    from polyroute.kinds import EndpointKind

    chat_kind = EndpointKind.CHAT
    answers = [_answer("a", "Paris"), _answer("b", "paris."), _answer("c", "  PARIS  !")]
    assert majority(chat_kind, answers, None) == (0, {"paris": 3})
    answers = [
        _answer("a", "I think the answer is B, because..."),
        _answer("b", "The answer is C."),
        _answer("c", "Clearly the answer is C!"),
        _answer("d", "no idea"),
    ]
    winner, votes = majority(chat_kind, answers, r"answer is ([A-D])")
    assert winner == 1
    assert votes == {"b": 1, "c": 2}
    tie = [_answer("a", "x"), _answer("b", "y")]
    assert majority(chat_kind, tie, None)[0] == 0  # ties go to the earlier member


def test_usage_and_cost_are_summed_at_each_members_prices() -> None:
    from polyroute.execution.ensemble import judged_index, total

    cheap = _answer("cheap", "1", price_in=1.0, tokens=(1000, 500))
    dear = _answer("dear", "2", price_in=10.0, tokens=(1000, 100))
    usage, cost = total([cheap, dear])
    assert (usage.prompt_tokens, usage.completion_tokens) == (2000, 600)
    expected = (1000 * 1 + 500 * 2) / 1e6 + (1000 * 10 + 100 * 20) / 1e6
    assert cost == pytest.approx(expected)
    assert judged_index(_answer("j", "Answer 2 is the best"), 3) == 1
    assert judged_index(_answer("j", "7"), 3) is None
    assert judged_index(_answer("j", "none of them"), 3) is None
