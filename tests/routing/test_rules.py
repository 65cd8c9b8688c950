"""The rules strategy: conditions, priority, indexing, defaults and config errors."""

from __future__ import annotations

from typing import Any

import pytest

from polyroute.config import ConfigError, parse_config
from polyroute.context import Caller, RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.routing.router import Router

MODELS = "models:\n" + "".join(
    f"  - {{name: {n}, base_url: http://127.0.0.1:9/v1}}\n" for n in ("a", "b", "c", "d")
)


def router(rules: str, extra: str = "    default: a\n") -> Router:
    text = MODELS + "routes:\n  r:\n    strategy: rules\n    rules:\n" + rules + extra
    return Gateway.from_config(parse_config(text)).router


def decide(
    r: Router, prompt: str = "hello", caller: Caller | None = None, **body: Any
) -> dict[str, Any]:
    request = {"messages": [{"role": "user", "content": prompt}], **body}
    ctx = RequestContext(
        request_id="t",
        kind=EndpointKind.CHAT,
        model="r",
        body=request,
        caller=caller or Caller(),
        headers={"X-Client-App": "mobile", "Authorization": "Bearer secret"},
    )
    return r.decide(ctx).explain()


@pytest.mark.parametrize(
    ("when", "kwargs", "matches"),
    [
        ("{caller.tier: vip}", {"caller": Caller(tier="vip")}, True),
        ("{caller.tier: vip}", {"caller": Caller(tier="free")}, False),
        ("{caller.tags: beta}", {"caller": Caller(tags=frozenset({"beta", "x"}))}, True),
        ("{caller.team: {in: [search, ads]}}", {"caller": Caller(team="ads")}, True),
        ("{caller.team: {not_in: [search]}}", {"caller": Caller(team="search")}, False),
        ("{tokens: {gte: 50}}", {"prompt": "word " * 100}, True),
        ("{tokens: {lt: 50}}", {"prompt": "word " * 100}, False),
        ("{text_length: {between: [1, 10]}}", {"prompt": "hi"}, True),
        ("{metadata.locale: zh-CN}", {"metadata": {"locale": "zh-CN"}}, True),
        ("{metadata.locale: {exists: false}}", {}, True),
        ("{header.x-client-app: mobile}", {}, True),
        ("{header.authorization: {exists: true}}", {}, False),
        ("{user: {regex: '^ops-'}}", {"user": "ops-42"}, True),
        ("{user: {regex: '^ops-'}}", {"user": "dev-1"}, False),
        ("{any: [{user: x}, {caller.tier: vip}]}", {"caller": Caller(tier="vip")}, True),
        ("{all: [{user: x}, {caller.tier: vip}]}", {"caller": Caller(tier="vip")}, False),
        ("{not: {caller.tier: vip}}", {}, True),
        ("{kind: chat, model: r}", {}, True),
        ("{time.hour: {between: [0, 24]}}", {}, True),
        ("{time.weekday: {in: [mon, tue, wed, thu, fri, sat, sun]}}", {}, True),
    ],
)
def test_conditions(when: str, kwargs: dict[str, Any], matches: bool) -> None:
    """Each operator and field reads the context as documented; credentials stay hidden."""
    r = router(f"      - {{name: hit, when: {when}, target: b}}\n")
    prompt = kwargs.pop("prompt", "hello")
    caller = kwargs.pop("caller", None)
    decision = decide(r, prompt, caller, **kwargs)
    assert (decision["deployment"] == "b") is matches
    assert decision["signals"]["r"]["rule"] == ("hit" if matches else None)


def test_priority_then_written_order() -> None:
    """Higher priority wins; equal priorities keep the order written."""
    r = router(
        "      - {name: first, when: {caller.tier: vip}, target: b}\n"
        "      - {name: second, when: {caller.tier: vip}, target: c}\n"
        "      - {name: urgent, when: {caller.team: ops}, target: d, priority: 10}\n"
    )
    assert decide(r, caller=Caller(tier="vip"))["signals"]["r"]["rule"] == "first"
    both = decide(r, caller=Caller(tier="vip", team="ops"))
    assert both["signals"]["r"]["rule"] == "urgent"


def test_default_and_no_default() -> None:
    """No match: the default target; without a default the route cannot serve."""
    r = router("      - {when: {caller.tier: vip}, target: b}\n")
    assert decide(r)["deployment"] == "a"
    bare = router("      - {when: {caller.tier: vip}, target: b}\n", extra="")
    with pytest.raises(Exception, match="no deployment"):
        decide(bare)


def test_index_keeps_decisions_independent_of_rule_count() -> None:
    """With 1,000 equality rules a decision tests only the rules for its own value."""
    rules = "".join(
        f"      - {{name: t{i}, when: {{caller.team: team{i}}}, target: {'bcd'[i % 3]}}}\n"
        for i in range(1000)
    )
    r = router(rules + "      - {name: catch, when: {tokens: {gte: 0}}, target: a}\n")
    decision = decide(r, caller=Caller(team="team731"))
    assert decision["signals"]["r"] == {"strategy": "rules", "rule": "t731", "rules_tested": 1}
    other = decide(r, caller=Caller(team="nobody"))
    assert other["signals"]["r"]["rules_tested"] == 1
    assert other["signals"]["r"]["rule"] == "catch"


def test_rule_target_can_be_a_route() -> None:
    """A rule hands off to a sub-policy; the path shows both routes."""
    text = MODELS + (
        "routes:\n"
        "  pool: {strategy: weighted, targets: [c, d]}\n"
        "  r:\n    strategy: rules\n    rules:\n"
        "      - {when: {caller.tier: vip}, target: pool}\n    default: a\n"
    )
    r = Gateway.from_config(parse_config(text)).router
    decision = decide(r, caller=Caller(tier="vip"))
    assert decision["path"] == ["r", "pool"]
    assert decision["deployment"] in {"c", "d"}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("      - {when: {caller.tierr: vip}, target: b}\n", "unknown field 'caller.tierr'"),
        ("      - {when: {tokens: {gte: many}}, target: b}\n", "expected a number"),
        ("      - {when: {tokens: {near: 5}}, target: b}\n", "unknown operator 'near'"),
        ("      - {when: {user: {regex: '('}}, target: b}\n", "invalid regular expression"),
        ("      - {when: {}, target: b}\n", "should have at least 1 item"),
        ("      - {when: {user: x}, target: ghost}\n", "'ghost' is neither"),
        ("      - {when: {any: []}, target: b}\n", "any takes a non-empty list"),
    ],
)
def test_bad_rules_fail_at_load(rules: str, message: str) -> None:
    """Mistakes in rules are config errors naming the rule, found before serving."""
    text = MODELS + "routes:\n  r:\n    strategy: rules\n    rules:\n" + rules
    with pytest.raises(ConfigError) as info:
        Gateway.from_config(parse_config(text))
    assert message in str(info.value)
    assert "routes.r.rules.0" in str(info.value)


def test_bad_timezone_fails_at_load() -> None:
    """An unknown time zone is a config error."""
    text = MODELS + (
        "routes:\n  r:\n    strategy: rules\n    timezone: Mars/Olympus\n"
        "    rules:\n      - {when: {time.hour: 3}, target: b}\n"
    )
    with pytest.raises(ConfigError, match="unknown time zone"):
        Gateway.from_config(parse_config(text))
