"""The content strategy in process: categories, thresholds, signals, turns and config errors."""

# ruff: noqa: RUF001 (Chinese test prompts use full-width punctuation)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polyroute.config import parse_config
from polyroute.context import RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.routing.router import Router
from polyroute.routing.strategies.content import ContentStrategy

STRATEGY = "polyroute.routing.strategies.content:ContentStrategy"
MODELS = "models:\n" + "".join(
    f"  - {{name: {n}, base_url: http://127.0.0.1:9/v1}}\n"
    for n in ("coder", "chef", "general", "zh-model", "support")
)
TOPICS = """    categories:
      code:
        target: coder
        examples:
          - write a python function that sorts a list
          - fix this bug in my javascript code
          - how do I reverse a string in java
          - why does this SQL query return duplicate rows
          - explain this compiler error in my rust program
          - refactor this class to use dependency injection
      cooking:
        target: chef
        examples:
          - how long should I boil an egg
          - give me a recipe for tomato soup
          - what can I cook with rice and chicken
          - how do I bake sourdough bread at home
          - which spices go well with roasted vegetables
          - how to make a pizza dough from scratch
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test trains into its own classifier cache."""
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def router(route: str) -> Router:
    text = MODELS + "routes:\n  r:\n    strategy: " + STRATEGY + "\n" + route
    return Gateway.from_config(parse_config(text)).router


def decide(r: Router, *turns: str, **body: Any) -> dict[str, Any]:
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(reversed(turns))]
    messages.reverse()
    ctx = RequestContext(
        request_id="t", kind=EndpointKind.CHAT, model="r", body={"messages": messages, **body}
    )
    return r.decide(ctx).explain()


def test_routes_by_category() -> None:
    """Prompts go to their category's target; signals carry the class and confidence."""
    r = router("    default: general\n    threshold: 0.5\n" + TOPICS)
    decision = decide(r, "can you debug this python function for me")
    assert decision["deployment"] == "coder"
    signals = decision["signals"]["r"]
    assert signals["strategy"] == "content"
    assert signals["category"] == "code"
    assert 0.5 <= signals["confidence"] <= 1.0
    assert signals["threshold"] == 0.5
    assert signals["classified"] == "last_user"
    assert decide(r, "a quick recipe for pancakes")["deployment"] == "chef"


def test_low_confidence_goes_to_default() -> None:
    """A prompt that fits no category is out of scope: the default target serves it."""
    r = router("    default: general\n    threshold: 0.5\n" + TOPICS)
    decision = decide(r, "who won the football world cup in 1998")
    assert decision["deployment"] == "general"
    assert decision["signals"]["r"]["out_of_scope"] is True
    assert decision["signals"]["r"]["confidence"] < 0.5


def test_latest_user_turn_decides() -> None:
    """last_user routes a conversation by what it asks now; conversation by all of it."""
    turns = (
        "give me a recipe for tomato soup",
        "Sure: tomatoes, onion, garlic, stock, simmer and blend.",
        "how do I bake sourdough bread at home, and what can I cook with rice",
        "Feed the starter, knead, proof overnight, bake hot.",
        "now write a python function",
    )
    last = router("    default: general\n    threshold: 0.0\n" + TOPICS)
    assert decide(last, *turns)["deployment"] == "coder"
    whole = router(
        "    default: general\n    threshold: 0.0\n    classify: conversation\n" + TOPICS
    )
    decision = decide(whole, *turns)
    assert decision["deployment"] == "chef"
    assert decision["signals"]["r"]["classified"] == "conversation"


def test_data_file_and_label(tmp_path: Path) -> None:
    """A category can take its examples from a labelled file, choosing its label."""
    data = tmp_path / "zh.jsonl"
    rows = [("写一首关于秋天的诗", "poem"), ("以月亮为题写一首七言绝句", "poem")]
    rows += [("用Python写一个快速排序", "code"), ("这段Java代码为什么报错", "code")]
    data.write_text("".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in rows))
    r = router(
        "    default: general\n    threshold: 0.0\n    categories:\n"
        f"      poetry: {{target: zh-model, data: {data}, label: poem}}\n"
        f"      code: {{target: coder, data: {data}, examples: [fix my code]}}\n"
    )
    assert decide(r, "写一首关于大海的诗")["deployment"] == "zh-model"
    assert decide(r, "用Java写一个函数")["deployment"] == "coder"


def test_language_signal() -> None:
    """signal: language routes by detected language; other languages go to the default."""
    r = router(
        "    signal: language\n    default: general\n"
        "    categories: {zh: {target: zh-model}, en: {target: coder}}\n"
    )
    decision = decide(r, "请帮我总结这篇文章的要点")
    assert decision["deployment"] == "zh-model"
    assert decision["signals"]["r"]["language"] == "zh"
    assert decide(r, "summarise this article")["deployment"] == "coder"
    french = decide(r, "Je voudrais réserver une table pour ce soir")
    assert french["deployment"] == "general"
    assert french["signals"]["r"]["out_of_scope"] is True


def test_sentiment_signal() -> None:
    """signal: sentiment sends upset users to support; calm prompts to the default."""
    r = router(
        "    signal: sentiment\n    default: general\n    threshold: 0.3\n"
        "    categories: {negative: {target: support}}\n"
    )
    angry = decide(r, "This is terrible, your product is broken and I am furious!")
    assert angry["deployment"] == "support"
    assert angry["signals"]["r"]["sentiment"] < -0.3
    assert decide(r, "太差了，我要投诉")["deployment"] == "support"
    assert decide(r, "What time is it in Tokyo?")["deployment"] == "general"


def test_category_target_may_be_a_route() -> None:
    """A category can hand off to a sub-policy (another route)."""
    text = (
        MODELS + "routes:\n  r:\n    strategy: " + STRATEGY + "\n    default: general\n"
        "    threshold: 0.0\n" + TOPICS.replace("target: chef", "target: kitchen") + "  kitchen:\n"
        "    strategy: single\n    target: chef\n"
    )
    r = Gateway.from_config(parse_config(text)).router
    decision = decide(r, "give me a recipe for lentil soup")
    assert decision["deployment"] == "chef"
    assert decision["path"] == ["r", "kitchen"]


def test_unavailable_category_target_falls_back_to_default() -> None:
    """When filters removed the chosen target, the default serves if it is still there."""
    r = router("    default: general\n    threshold: 0.0\n" + TOPICS)
    strategy = r.policies["r"].strategy
    assert isinstance(strategy, ContentStrategy)
    ctx = RequestContext(
        request_id="t",
        kind=EndpointKind.CHAT,
        model="r",
        body={"messages": [{"role": "user", "content": "fix my python code"}]},
    )
    general = [t for t in strategy.targets if t.name == "general"]
    ranking = strategy.rank(ctx, general)
    assert [t.name for t in ranking.targets] == ["general"]
    assert ranking.signals["fell_back"] == "default"
    assert strategy.rank(ctx, []).targets == []


def test_restart_loads_the_cached_classifier(cache_dir: Path) -> None:
    """A second build of the same config loads the classifier instead of training it."""
    route = "    default: general\n" + TOPICS
    first = router(route).policies["r"].strategy
    second = router(route).policies["r"].strategy
    assert isinstance(first, ContentStrategy)
    assert isinstance(second, ContentStrategy)
    assert first.classifier is not None
    assert not first.classifier.from_cache
    assert second.classifier is not None
    assert second.classifier.from_cache
    assert len(list((cache_dir / "classifiers").glob("*.npz"))) == 1


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            "    default: general\n" + TOPICS.replace("target: coder", "target: nowhere"),
            r"routes\.r\.categories\.code\.target: 'nowhere' is neither",
        ),
        ("    default: nobody\n" + TOPICS, r"routes\.r\.default: 'nobody' is neither"),
        (
            "    default: general\n    categories: {a: {target: coder}, b: {target: chef}}\n",
            r"routes\.r\.categories: .*need `examples` or a `data` file",
        ),
        (
            "    default: general\n    categories: {a: {target: coder, examples: [x]}}\n",
            r"routes\.r\.categories: .*at least two categories",
        ),
        ("    default: general\n    threshold: 1.5\n" + TOPICS, r"routes\.r\.threshold: .*1"),
        ("    default: general\n    thresold: 0.5\n" + TOPICS, r"routes\.r\.thresold: unknown"),
        (
            "    signal: language\n    default: general\n"
            "    categories: {klingon: {target: coder}}\n",
            r"unknown language codes \['klingon'\]",
        ),
        (
            "    signal: sentiment\n    default: general\n"
            "    categories: {angry: {target: coder}}\n",
            "sentiment categories must be among",
        ),
        (TOPICS, r"routes\.r\.default: Field required"),
    ],
)
def test_bad_configs_fail_at_load(route: str, message: str) -> None:
    """Unusable content routes are config errors naming the field, found at load."""
    with pytest.raises(ValueError, match=message):
        router(route)


def test_unreadable_data_file_fails_at_load(tmp_path: Path) -> None:
    """A data file that cannot be read fails the build, naming the category's field."""
    route = (
        "    default: general\n    categories:\n"
        f"      a: {{target: coder, data: {tmp_path / 'missing.jsonl'}}}\n"
        "      b: {target: chef, examples: [x]}\n"
    )
    with pytest.raises(ValueError, match=r"categories\.a\.data: cannot read"):
        router(route)


def test_data_file_without_the_label_fails_at_load(tmp_path: Path) -> None:
    """A category whose label has no rows in its file is an error, not an empty class."""
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "hello", "label": "greet"}) + "\n")
    route = (
        "    default: general\n    categories:\n"
        f"      a: {{target: coder, data: {data}}}\n"
        "      b: {target: chef, examples: [x]}\n"
    )
    with pytest.raises(ValueError, match=r"categories\.a\.data: no rows labelled 'a'"):
        router(route)
