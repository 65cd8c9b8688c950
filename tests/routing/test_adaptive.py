"""The adaptive strategy in process: posterior updates, learning, feedback, categories,
persistence and config errors. Seeded draws throughout, so every run is the same."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from polyroute.config import ConfigError, parse_config
from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Feedback, Outcome, Usage
from polyroute.routing.decision import Decision
from polyroute.routing.strategies.adaptive import AdaptiveStrategy
from polyroute.state.bandit import ArmCounts, BanditFile, MemoryBanditState, add_difference

MODELS = """models:
  - {name: a, base_url: http://127.0.0.1:9/v1, price: {input_per_mtok: 1, output_per_mtok: 1}}
  - {name: b, base_url: http://127.0.0.1:9/v1}
  - {name: c, base_url: http://127.0.0.1:9/v1}
"""
CATEGORIES = """    categories:
      code:
        examples:
          - write a python function that sorts a list
          - fix this bug in my javascript code
          - how do I reverse a string in java
          - why does this SQL query return duplicate rows
          - explain this compiler error in my rust program
      cooking:
        examples:
          - how long should I boil an egg
          - give me a recipe for tomato soup
          - what can I cook with rice and chicken
          - how do I bake sourdough bread at home
          - which spices go well with roasted vegetables
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Classifier cache and default state directory of each test in its own folder."""
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("POLYROUTE_STATE_DIR", str(tmp_path / "state"))


def gateway(options: str = "", targets: str = "[a, b]") -> Gateway:
    text = (
        MODELS + "routes:\n  r:\n    strategy: adaptive\n"
        f"    targets: {targets}\n    seed: 7\n" + options
    )
    return Gateway.from_config(parse_config(text))


def strategy_of(g: Gateway) -> AdaptiveStrategy:
    strategy = g.router.policies["r"].strategy
    assert isinstance(strategy, AdaptiveStrategy)
    return strategy


_ids = iter(range(10**9))


def decide(g: Gateway, prompt: str = "hello") -> tuple[RequestContext, Decision]:
    body = {"messages": [{"role": "user", "content": prompt}]}
    ctx = RequestContext(
        request_id=f"req_{next(_ids)}", kind=EndpointKind.CHAT, model="r", body=body
    )
    return ctx, g.router.decide(ctx)


def report(
    g: Gateway,
    ctx: RequestContext,
    decision: Decision,
    *,
    ok: bool = True,
    status: int = 200,
    latency: float = 0.1,
    cost: float | None = None,
    served: Deployment | None = None,
) -> None:
    deployment = served if served is not None else decision.deployment
    g.observers.report(
        Outcome(
            ctx,
            decision,
            deployment,
            ok=ok,
            status=status,
            latency=latency,
            usage=Usage(10, 10),
            cost=cost,
        )
    )


def serve(g: Gateway, quality: dict[str, float], rng: random.Random, prompt: str = "hi") -> str:
    """One request whose chosen deployment succeeds with probability quality[arm]."""
    ctx, decision = decide(g, prompt)
    arm = decision.signals["r"]["arm"]
    ok = rng.random() < quality[arm]
    report(g, ctx, decision, ok=ok, status=200 if ok else 500)
    return str(arm)


def test_outcomes_update_the_chosen_arms_posterior() -> None:
    """Success adds 1 - penalties to alpha (the rest to beta); failure adds 1 to beta."""
    g = gateway("    reward: {latency: 0.5}\n")
    s = strategy_of(g)
    assert s.posterior("a") == (1.0, 1.0, 0)
    ctx, decision = decide(g)
    arm = decision.signals["r"]["arm"]
    report(g, ctx, decision, latency=0.4)
    alpha, beta, n = s.posterior(arm)
    assert (round(alpha, 6), round(beta, 6), n) == (1.8, 1.2, 1)
    ctx, decision = decide(g)
    arm = decision.signals["r"]["arm"]
    before = s.posterior(arm)
    report(g, ctx, decision, ok=False, status=502)
    after = s.posterior(arm)
    assert after == (before[0], before[1] + 1.0, before[2] + 1)


def test_what_counts_as_the_arms_failure() -> None:
    """A fallback answering is the chosen arm's failure; a client error teaches nothing."""
    g = gateway()
    s = strategy_of(g)
    ctx, decision = decide(g)
    chosen = decision.signals["r"]["arm"]
    other = g.router.deployments["b" if chosen == "a" else "a"]
    report(g, ctx, decision, served=other)
    assert s.posterior(chosen) == (1.0, 2.0, 1)
    assert s.posterior(other.name) == (1.0, 1.0, 0)  # it was not chosen: no credit
    ctx, decision = decide(g)
    arm = decision.signals["r"]["arm"]
    before = s.posterior(arm)
    report(g, ctx, decision, ok=False, status=400)
    assert s.posterior(arm) == before
    report(g, ctx, decision, ok=False, status=429)
    assert s.posterior(arm)[1] == before[1] + 1


def test_learns_the_better_arm_in_simulated_traffic() -> None:
    """a answers 90 % of the time, b 60 %: after 300 requests a gets >= 90 % of traffic."""
    g = gateway()
    rng = random.Random(1)
    quality = {"a": 0.9, "b": 0.6}
    arms = [serve(g, quality, rng) for _ in range(400)]
    assert arms[300:].count("a") >= 90
    s = strategy_of(g)
    a_alpha, a_beta, a_n = s.posterior("a")
    assert abs(a_alpha / (a_alpha + a_beta) - 0.9) < 0.05
    assert a_n > 300
    _, decision = decide(g)
    signals = decision.explain()["signals"]["r"]
    assert signals["strategy"] == "adaptive"
    assert signals["context"] == "*"
    assert set(signals["estimate"]) == {"a", "b"}
    assert signals["estimate"]["a"]["n"] == a_n
    assert signals["estimate"]["a"]["mean"] > signals["estimate"]["b"]["mean"]
    assert 0 <= signals["sampled"] <= 1
    assert decision.experiment == "r"
    assert decision.arm == signals["arm"]
    assert decision.plan[1].name != decision.plan[0].name  # the other arm is the fallback


def test_three_arms_rank_by_posterior_mean_after_the_draw() -> None:
    g = gateway(targets="[a, b, c]")
    rng = random.Random(2)
    quality = {"a": 0.5, "b": 0.95, "c": 0.2}
    for _ in range(300):
        serve(g, quality, rng)
    _, decision = decide(g)
    assert decision.plan[0].name == "b"
    means = decision.signals["r"]["estimate"]
    rest = [d.name for d in decision.plan[1:]]
    assert rest == sorted(rest, key=lambda name: -means[name]["mean"])


def test_feedback_moves_the_posterior_with_the_requests_penalty() -> None:
    """Feedback only (success weight 0): the score minus the cost penalty, once per request."""
    g = gateway("    reward: {success: 0, feedback: 1, cost: 1000}\n")
    s = strategy_of(g)
    ctx, decision = decide(g)
    arm = decision.signals["r"]["arm"]
    report(g, ctx, decision, cost=0.0002)
    assert s.posterior(arm) == (1.0, 1.0, 1)  # an outcome of weight 0 only counts n
    answer = g.observers.feedback(Feedback(ctx.request_id, 0.9))
    assert answer is not None
    attached = answer["adaptive"]
    assert attached["route"] == "r"
    assert attached["arm"] == arm
    assert attached["counted"] is True
    assert attached["reward"] == pytest.approx(0.7)
    alpha, beta, _ = s.posterior(arm)
    assert (alpha, beta) == pytest.approx((1.7, 1.3))
    assert attached["estimate"]["mean"] == pytest.approx(1.7 / 3, abs=1e-4)
    again = g.observers.feedback(Feedback(ctx.request_id, 0.0))
    assert again is not None
    assert again["adaptive"]["counted"] is False
    assert s.posterior(arm)[:2] == pytest.approx((1.7, 1.3))
    assert g.observers.feedback(Feedback("req_unknown", 1.0)) is None


def test_feedback_steers_traffic() -> None:
    """With feedback as the only reward, the arm users rate well wins."""
    g = gateway("    reward: {success: 0, feedback: 1}\n")
    rng = random.Random(3)
    arms = []
    for _ in range(300):
        ctx, decision = decide(g)
        arm = decision.signals["r"]["arm"]
        arms.append(arm)
        report(g, ctx, decision)
        good = rng.random() < (0.85 if arm == "b" else 0.5)
        g.observers.feedback(Feedback(ctx.request_id, 1.0 if good else 0.0))
    assert arms[200:].count("b") >= 85


def test_categories_learn_separately() -> None:
    """a is good at code, b at cooking: each category's posterior finds its own best arm."""
    g = gateway(CATEGORIES)
    rng = random.Random(4)
    prompts = {
        "code": ["debug my python script", "write a java class", "optimise this sql query"],
        "cooking": ["a recipe for pancakes", "how to roast a chicken", "bake a chocolate cake"],
    }
    quality = {"code": {"a": 0.95, "b": 0.3}, "cooking": {"a": 0.3, "b": 0.95}}
    late: dict[str, list[str]] = {"code": [], "cooking": []}
    for i in range(400):
        category = "code" if i % 2 else "cooking"
        ctx, decision = decide(g, prompts[category][i % 3])
        signals = decision.signals["r"]
        assert signals["category"] == category
        assert signals["context"] == category
        ok = rng.random() < quality[category][signals["arm"]]
        report(g, ctx, decision, ok=ok, status=200 if ok else 500)
        if i >= 300:
            late[category].append(signals["arm"])
    assert late["code"].count("a") >= 40
    assert late["cooking"].count("b") >= 40
    s = strategy_of(g)
    mean = {
        (arm, category): alpha / (alpha + beta)
        for arm in ("a", "b")
        for category in ("code", "cooking")
        for alpha, beta, _ in [s.posterior(arm, category)]
    }
    assert mean["a", "code"] > 0.85
    assert mean["b", "cooking"] > 0.85
    assert mean["a", "cooking"] < mean["b", "cooking"] - 0.15
    assert mean["b", "code"] < mean["a", "code"] - 0.15


def test_new_category_starts_from_the_route_wide_posterior() -> None:
    """Category prior = route-wide mean at a strength of at most `category_prior`."""
    g = gateway(CATEGORIES + "    category_prior: 4\n")
    s = strategy_of(g)
    assert s.posterior("a", "code") == (1.0, 1.0, 0)  # the route-wide prior, strength 2
    s.state.update("*", "a", 1.0, 30.0)  # 30 route-wide successes
    alpha, beta, n = s.posterior("a", "cooking")
    mean = 31 / 32
    assert (alpha, beta, n) == pytest.approx((4 * mean, 4 * (1 - mean), 0))
    s.state.update("cooking", "a", 0.0, 6.0)
    alpha, beta, _ = s.posterior("a", "cooking")
    assert beta == pytest.approx(4 * (1 - mean) + 6)


def test_low_confidence_uses_the_route_wide_posterior() -> None:
    g = gateway(CATEGORIES + "    category_threshold: 1.0\n")
    _, decision = decide(g, "write a python function that sorts a list")
    assert decision.signals["r"]["category"] == "code"
    assert decision.signals["r"]["context"] == "*"


def test_discount_forgets_old_evidence() -> None:
    state = MemoryBanditState()
    for _ in range(10):
        state.update("*", "a", 1.0, 1.0, discount=0.5)
    counts = state.counts("*")["a"]
    assert counts.successes == pytest.approx(2 * (1 - 0.5**10))  # geometric series
    assert counts.n == 10
    state.update("*", "b", 0.0, 1.0, discount=0.5)
    assert state.counts("*")["a"].successes == pytest.approx(1 - 0.5**10)


def test_discounted_bandit_recovers_when_an_arm_improves() -> None:
    g = gateway("    discount: 0.95\n")
    rng = random.Random(5)
    for _ in range(200):
        serve(g, {"a": 0.9, "b": 0.2}, rng)
    arms = [serve(g, {"a": 0.2, "b": 0.9}, rng) for _ in range(300)]
    assert arms[200:].count("b") >= 80


def test_min_samples_and_explore() -> None:
    g = gateway("    min_samples: 3\n")
    seen = []
    for _ in range(6):
        ctx, decision = decide(g)
        assert decision.signals["r"]["explored"] == "min_samples"
        assert decision.signals["r"]["sampled"] is None
        seen.append(decision.signals["r"]["arm"])
        report(g, ctx, decision, ok=False, status=500)
    assert sorted(seen) == ["a", "a", "a", "b", "b", "b"]
    assert decide(g)[1].signals["r"]["explored"] is False
    g = gateway("    explore: 1.0\n")
    arms = [decide(g)[1].signals["r"] for _ in range(200)]
    assert all(s["explored"] == "explore" for s in arms)
    assert 60 <= sum(s["arm"] == "a" for s in arms) <= 140


def test_only_healthy_candidates_are_ranked() -> None:
    """Filters and ejections happen before the bandit: it ranks what is left."""
    g = gateway()
    s = strategy_of(g)
    ctx, _ = decide(g)
    ranking = s.rank(ctx, [g.router.deployments["b"]])
    assert [t.name for t in ranking.targets] == ["b"]
    assert ranking.signals["arm"] == "b"
    assert set(ranking.signals["estimate"]) == {"b"}


def test_persistence_round_trip(tmp_path: Path) -> None:
    """What one gateway learned is what the next one starts from."""
    path = tmp_path / "bandit.json"
    options = f"    state_file: {path}\n"
    first = gateway(options)
    rng = random.Random(6)
    for _ in range(50):
        serve(first, {"a": 0.9, "b": 0.4}, rng)
    learned = {arm: strategy_of(first).posterior(arm) for arm in ("a", "b")}
    strategy_of(first).learner.save()
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert data["route"] == "r"
    assert sum(arm["n"] for arm in data["contexts"]["*"].values()) == 50
    second = gateway(options)
    for arm, (alpha, beta, n) in learned.items():
        assert strategy_of(second).posterior(arm) == (
            pytest.approx(alpha),
            pytest.approx(beta),
            n,
        )
    assert not list(tmp_path.glob(".tmp-*"))  # written through a renamed temporary file


def test_default_state_file_and_persist_false(tmp_path: Path) -> None:
    g = gateway()
    rng = random.Random(7)
    serve(g, {"a": 1.0, "b": 1.0}, rng)
    strategy_of(g).learner.save()
    assert (tmp_path / "state" / "adaptive-r.json").is_file()
    memory_only = gateway("    persist: false\n    state_file: " + str(tmp_path / "x.json") + "\n")
    serve(memory_only, {"a": 1.0, "b": 1.0}, rng)
    strategy_of(memory_only).learner.save()
    assert not (tmp_path / "x.json").exists()


def test_two_writers_merge_into_one_file(tmp_path: Path) -> None:
    """Workers sharing a file: each save adds its own new counts to what the file holds."""
    path = tmp_path / "shared.json"
    options = f"    state_file: {path}\n"
    one, two = gateway(options), gateway(options)
    rng = random.Random(8)
    for _ in range(30):
        serve(one, {"a": 0.9, "b": 0.5}, rng)
    for _ in range(20):
        serve(two, {"a": 0.9, "b": 0.5}, rng)
    strategy_of(one).learner.save()
    strategy_of(two).learner.save()
    strategy_of(one).learner.save()  # nothing new: the file keeps both
    total = json.loads(path.read_text())["contexts"]["*"]
    assert sum(arm["n"] for arm in total.values()) == 50
    assert sum(c.n for c in strategy_of(two).state.counts("*").values()) == 50
    assert sum(c.n for c in strategy_of(one).state.counts("*").values()) == 50


def test_add_difference() -> None:
    base = {"*": {"a": ArmCounts(5, 5, 10, 0)}}
    baseline = {"*": {"a": ArmCounts(2, 2, 4, 0)}}
    current = {"*": {"a": ArmCounts(3, 4, 7, 1)}, "x": {"b": ArmCounts(1, 0, 1, 0)}}
    merged = add_difference(base, current, baseline)
    assert merged["*"]["a"] == ArmCounts(6, 7, 13, 1)
    assert merged["x"]["b"] == ArmCounts(1, 0, 1, 0)
    assert base["*"]["a"] == ArmCounts(5, 5, 10, 0)  # inputs untouched


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"format": 99, "contexts": {}}',
        '{"format": 1, "contexts": {"*": {"a": {"successes": -1, "failures": 0}}}}',
        '{"format": 1, "contexts": {"*": {"a": {"successes": 1, "failures": 0, "n": 1.5}}}}',
    ],
)
def test_unusable_state_file_starts_fresh(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="polyroute.state"):
        g = gateway(f"    state_file: {path}\n")
    assert strategy_of(g).posterior("a") == (1.0, 1.0, 0)
    assert "ignoring bandit state" in caplog.text
    assert BanditFile(path, "r").load() == {}


def test_explanation_offline_shows_the_prior() -> None:
    """`polyroute route` builds without a gateway: the estimate is the prior."""
    from polyroute.routing.build import build_router

    text = MODELS + "routes:\n  r: {strategy: adaptive, targets: [a, b], persist: false}\n"
    router = build_router(parse_config(text))
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="r", body=body)
    signals = router.decide(ctx).explain()["signals"]["r"]
    assert signals["estimate"] == {"a": {"mean": 0.5, "n": 0}, "b": {"mean": 0.5, "n": 0}}


@pytest.mark.parametrize(
    ("route", "field", "message"),
    [
        ("targets: [a]", "routes.r.targets", "at least 2"),
        ("targets: [a, a]", "routes.r.targets", "distinct"),
        ("targets: [a, nope]", "routes.r.targets.1", "neither a deployment nor a route"),
        (
            "targets: [a, b]\n    reward: {success: 0, feedback: 0}",
            "routes.r.reward",
            "never learn",
        ),
        ("targets: [a, b]\n    reward: {cost: -1}", "routes.r.reward.cost", "greater than"),
        ("targets: [a, b]\n    reward: {speed: 1}", "routes.r.reward.speed", "unknown option"),
        ("targets: [a, b]\n    discount: 0", "routes.r.discount", "greater than 0"),
        ("targets: [a, b]\n    explore: 2", "routes.r.explore", "less than or equal"),
        ("targets: [a, b]\n    prior: {alpha: 0}", "routes.r.prior.alpha", "greater than 0"),
        ("targets: [a, b]\n    bandit: yes", "routes.r.bandit", "unknown option"),
        (
            "targets: [a, b]\n    categories: {x: {examples: [hi]}}",
            "routes.r.categories",
            "at least two",
        ),
        (
            "targets: [a, b]\n    categories: {x: {examples: [hi]}, y: {}}",
            "routes.r.categories",
            "need `examples`",
        ),
        (
            'targets: [a, b]\n    categories: {"*": {examples: [hi]}, y: {examples: [yo]}}',
            "routes.r.categories",
            "route-wide",
        ),
        (
            "targets: [a, b]\n    categories: {x: {data: /no/such.jsonl}, y: {examples: [yo]}}",
            "routes.r.categories.x.data",
            "cannot read",
        ),
    ],
)
def test_bad_configs_are_load_errors(route: str, field: str, message: str) -> None:
    text = MODELS + "routes:\n  r:\n    strategy: adaptive\n    " + route + "\n"
    with pytest.raises(ConfigError) as info:
        Gateway.from_config(parse_config(text))
    problems = [(".".join(map(str, p.path)), p.message) for p in info.value.problems]
    assert any(path == field and message in text for path, text in problems), problems


def test_propensity_follows_the_posteriors() -> None:
    """The reported propensity estimates the chance of the chosen arm: near 1 for an arm
    far ahead, about its share for arms alike (replay weighs logged decisions by it)."""
    g = gateway("    explore: 0\n")
    state = strategy_of(g).state
    for _ in range(200):
        state.update("*", "a", 1.0, 1.0)
        state.update("*", "b", 0.0, 1.0)
    _, decision = decide(g)
    assert decision.signals["r"]["arm"] == "a"
    assert decision.signals["r"]["propensity"] > 0.95
    even = gateway("    explore: 0\n")
    shares = [decide(even)[1].signals["r"]["propensity"] for _ in range(50)]
    assert 0.3 < sum(shares) / len(shares) < 0.7
