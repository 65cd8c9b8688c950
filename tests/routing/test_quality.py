"""The quality strategy in process: the outcome model, the threshold, signals, data files and
config errors found at load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polyroute.config import parse_config
from polyroute.context import RequestContext
from polyroute.kinds import EndpointKind
from polyroute.routing.build import build_router
from polyroute.routing.classify.quality import Outcome, QualityModel, load_outcomes
from polyroute.routing.router import Router
from polyroute.routing.strategies.quality import QualityStrategy

EASY = [
    "what is the capital of France",
    "say hello in Spanish",
    "what colour is the sky on a clear day",
    "name a fruit that is yellow",
    "how many days are there in a week",
    "translate the word cat into German",
    "who wrote Romeo and Juliet",
    "what is the opposite of hot",
]
HARD = [
    "prove that there are infinitely many prime numbers of the form 4k+3",
    "derive a closed form for the integral of x^3 e^x and prove it by induction",
    "prove rigorously that the halting problem is undecidable",
    "design a lock-free concurrent hash map and prove it linearizable",
    "derive the energy eigenvalues of the quantum harmonic oscillator",
    "prove that every bounded monotone sequence of reals converges",
    "derive the Black-Scholes partial differential equation step by step",
    "prove that the square root of 2 is irrational and generalise to primes",
]
IMPOSSIBLE = [  # neither model can answer these: the strong one brings nothing
    "what will the winning lottery numbers be next Saturday",
    "what exact price will the Apple stock close at tomorrow",
    "what number am I thinking of right now",
    "what is the name of my neighbour's cat",
    "what will the weather be in Paris on this day in ten years",
    "which card will I draw first from my shuffled deck tonight",
]
MODELS = "".join(
    f"  - {{name: {name}, base_url: http://127.0.0.1:9/v1{extra}}}\n"
    for name, extra in (("small", ""), ("big", ""), ("tiny-window", ", context_window: 50"))
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test trains into its own classifier cache."""
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def examples() -> str:
    weak = json.dumps(EASY)
    strong = json.dumps(HARD)
    return f"    examples: {{weak: {weak}, strong: {strong}}}\n"


def router(route: str) -> Router:
    text = "models:\n" + MODELS + "routes:\n  r:\n    strategy: quality\n" + route
    return build_router(parse_config(text))


def decide(r: Router, *turns: str) -> dict[str, Any]:
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(reversed(turns))]
    messages.reverse()
    body = {"model": "r", "messages": messages}
    ctx = RequestContext(request_id="t", kind=EndpointKind.CHAT, model="r", body=body)
    return r.decide(ctx).explain()


def strategy(r: Router) -> QualityStrategy:
    found = r.policies["r"].strategy
    assert isinstance(found, QualityStrategy)
    return found


def test_four_outcomes_separate_hard_from_impossible(tmp_path: Path) -> None:
    """A prompt both models fail has a low P(weak ok) but no gain from the strong model; a
    prompt only the strong model answers has the highest gain."""
    rows = [Outcome(t, weak_ok=True, strong_ok=True) for t in EASY]
    rows += [Outcome(t, weak_ok=False, strong_ok=True) for t in HARD]
    rows += [Outcome(t, weak_ok=False, strong_ok=False) for t in IMPOSSIBLE]
    model = QualityModel.load_or_train(rows, tmp_path / "models")
    easy = model.estimate("what is the capital of Italy")
    hard = model.estimate("prove that there are infinitely many primes and derive their density")
    impossible = model.estimate("what will the lottery numbers be next week")
    for estimate in (easy, hard, impossible):
        assert estimate.strong_gain == pytest.approx(estimate.p_strong_ok - estimate.p_weak_ok)
    assert easy.p_weak_ok > 0.5 > hard.p_weak_ok
    assert impossible.p_weak_ok < 0.5
    assert impossible.p_strong_ok < 0.5 < hard.p_strong_ok
    assert hard.strong_gain > 0.5
    assert hard.strong_gain > impossible.strong_gain + 0.3
    assert hard.strong_gain > easy.strong_gain + 0.3


def test_weak_only_labels_give_p_weak_fails(tmp_path: Path) -> None:
    """Without strong_ok the strong model is taken as right: gain = 1 - P(weak ok) >= 0."""
    rows = [Outcome(t, weak_ok=True) for t in EASY] + [Outcome(t, weak_ok=False) for t in HARD]
    model = QualityModel.load_or_train(rows, tmp_path / "models")
    for text in ("hello there", "prove the theorem", EASY[0], HARD[0]):
        estimate = model.estimate(text)
        assert estimate.p_strong_ok == pytest.approx(1.0)
        assert estimate.strong_gain == pytest.approx(1.0 - estimate.p_weak_ok)


def test_easy_goes_weak_hard_goes_strong_with_the_other_as_fallback() -> None:
    r = router("    weak: small\n    strong: big\n    threshold: 0.5\n" + examples())
    easy = decide(r, "what is the capital of Germany")
    assert easy["deployment"] == "small"
    assert easy["fallbacks"] == ["big"]
    signals = easy["signals"]["r"]
    assert signals["strategy"] == "quality"
    assert signals["choice"] == "weak"
    assert signals["threshold"] == 0.5
    assert signals["strong_gain"] < 0.5
    assert signals["p_strong_ok"] == 1.0
    assert signals["strong_gain"] == pytest.approx(1.0 - signals["p_weak_ok"], abs=1e-3)
    assert signals["classified"] == "last_user"
    hard = decide(r, "prove that there are infinitely many primes of the form 6k+5")
    assert hard["deployment"] == "big"
    assert hard["fallbacks"] == ["small"]
    assert hard["signals"]["r"]["choice"] == "strong"
    assert hard["signals"]["r"]["strong_gain"] >= 0.5


def test_threshold_trades_strong_calls_for_quality() -> None:
    """The same prompt flips from strong to weak as the threshold passes its gain, and the
    share of strong choices never grows with the threshold; 0 and 1 are the extremes."""
    prompts = [*EASY, *HARD, "tell me about the weather", "derive the formula", "hi"]
    shares = []
    gains: list[float] = []
    for threshold in (0.0, 0.3, 0.5, 0.7, 1.0):
        r = router(f"    weak: small\n    strong: big\n    threshold: {threshold}\n" + examples())
        decisions = [decide(r, p) for p in prompts]
        gains = [d["signals"]["r"]["strong_gain"] for d in decisions]
        for d, gain in zip(decisions, gains, strict=True):
            assert d["deployment"] == ("big" if gain >= threshold else "small")
        shares.append(sum(d["deployment"] == "big" for d in decisions))
    assert shares[0] == len(prompts)  # with weak-only labels every gain is >= 0
    assert shares[-1] == 0
    assert shares == sorted(shares, reverse=True)
    assert len(set(shares)) >= 3


def test_latest_user_turn_decides() -> None:
    """last_user routes by what the conversation asks now; conversation reads all of it."""
    turns = (
        "prove that the halting problem is undecidable, rigorously",
        "Assume a decider H exists and build D that contradicts it.",
        "thanks! and what is the capital of Spain",
    )
    last = router("    weak: small\n    strong: big\n    threshold: 0.5\n" + examples())
    assert decide(last, *turns)["deployment"] == "small"
    whole = router(
        "    weak: small\n    strong: big\n    threshold: 0.5\n    classify: conversation\n"
        + examples()
    )
    assert strategy(whole).estimate("\n".join(turns)).strong_gain >= 0.5
    decision = decide(whole, *turns)
    assert decision["deployment"] == "big"
    assert decision["signals"]["r"]["classified"] == "conversation"


def test_max_chars_bounds_what_is_classified() -> None:
    """Only the first max_chars of the turn count: a hard question after easy filler is
    not seen when the limit cuts it off."""
    r = router(
        "    weak: small\n    strong: big\n    threshold: 0.5\n    max_chars: 40\n" + examples()
    )
    s = strategy(r)
    padded = "what is the capital of France. " + HARD[0]
    assert s.estimate(padded) == s.estimate(padded[:40])
    assert decide(r, padded)["deployment"] == "small"


def test_filtered_choice_falls_back_to_the_other() -> None:
    """If the chosen target is filtered out (context window), the other serves and the
    explanation says so."""
    r = router("    weak: tiny-window\n    strong: big\n    threshold: 0.9\n" + examples())
    long_easy = "what is the capital of France? " * 20  # ~150 tokens > the 50-token window
    decision = decide(r, long_easy)
    assert decision["signals"]["r"]["choice"] == "weak"
    assert decision["signals"]["r"]["fell_back"] == "big"
    assert decision["deployment"] == "big"
    assert decision["fallbacks"] == []


def test_data_file_formats_and_the_cache(tmp_path: Path) -> None:
    """jsonl, json and csv files give the same rows; the same rows load from the cache."""
    rows = [(t, True, True) for t in EASY] + [(t, False, True) for t in HARD]
    rows += [(t, False, False) for t in IMPOSSIBLE]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"prompt": t, "weak_ok": w, "strong_ok": s}) + "\n" for t, w, s in rows)
        + "\n"
    )
    as_json = tmp_path / "rows.json"
    as_json.write_text(
        json.dumps([{"text": t, "weak_ok": int(w), "strong_ok": str(s)} for t, w, s in rows])
    )
    as_csv = tmp_path / "rows.csv"
    as_csv.write_text(
        "prompt,weak_ok,strong_ok,notes\n"
        + "".join(f'"{t}",{"yes" if w else "no"},{"TRUE" if s else "0"},x\n' for t, w, s in rows)
    )
    expected = [Outcome(t, w, s) for t, w, s in rows]
    for path in (jsonl, as_json, as_csv):
        assert load_outcomes(path) == expected
    first = router(f"    weak: small\n    strong: big\n    threshold: 0.4\n    data: {jsonl}\n")
    again = router(f"    weak: small\n    strong: big\n    threshold: 0.4\n    data: {as_csv}\n")
    assert not strategy(first).model.from_cache
    assert strategy(again).model.from_cache
    assert decide(again, "prove that every compact metric space is complete")["deployment"] == (
        "big"
    )
    assert decide(again, "what is the capital of Portugal")["deployment"] == "small"
    impossible = decide(again, "what will the lottery numbers be next Saturday")
    assert impossible["deployment"] == "small"  # the strong model would not help
    assert impossible["signals"]["r"]["p_weak_ok"] < 0.5


def test_jsonl_keeps_line_separators_inside_strings(tmp_path: Path) -> None:
    """U+2028 inside a JSON string is text, not a line break."""
    path = tmp_path / "rows.jsonl"
    text = "first\u2028second"
    path.write_text(json.dumps({"prompt": text, "weak_ok": True}, ensure_ascii=False) + "\n")
    assert load_outcomes(path) == [Outcome(text, True, True)]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"prompt": "a", "weak_ok": true}\n{"prompt": "b"}\n', ".jsonl", r"line 2: 'weak_ok'"),
        ('{"prompt": "a", "weak_ok": "maybe"}\n', ".jsonl", r"line 1: 'weak_ok' must be true"),
        ('{"prompt": "a", "weak_ok": true,\n', ".jsonl", r"line 1: invalid JSON"),
        ('{"weak_ok": true}\n', ".jsonl", r"'prompt' \(or 'text'\) must be"),
        ('{"prompt": "a", "weak_ok": 1, "strong_ok": 2}\n', ".jsonl", r"'strong_ok' must be"),
        ('{"prompt": "a"}', ".json", r"expected a JSON list"),
        ("text,label\na,b\n", ".csv", r"must name 'prompt' \(or 'text'\) and 'weak_ok'"),
        ("\n\n", ".jsonl", r"no rows"),
        ("prompt\tweak_ok\n", ".tsv", r"unknown format"),
    ],
)
def test_bad_data_files_fail_at_load(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"rows{suffix}"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"routes\.r\.data: .*" + message):
        router(f"    weak: small\n    strong: big\n    threshold: 0.5\n    data: {path}\n")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            "    weak: small\n    strong: small\n    threshold: 0.5\n" + examples(),
            r"routes\.r\.strong: .*must be different",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n",
            r"routes\.r: .*needs training data: a `data` file or `examples`",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n    examples: {weak: [a]}\n",
            r"routes\.r\.examples: .*same outcome",
        ),
        ("    weak: small\n    strong: big\n", r"routes\.r\.threshold: Field required"),
        ("    weak: small\n    strong: big\n    threshold: 1.5\n", r"routes\.r\.threshold: .*1"),
        ("    weak: small\n    threshold: 0.5\n", r"routes\.r\.strong: Field required"),
        (
            "    weak: small\n    strong: nowhere\n    threshold: 0.5\n" + examples(),
            r"routes\.r\.strong: 'nowhere' is neither",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n    treshold: 0.5\n",
            r"routes\.r\.treshold: unknown option",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n"
            "    examples: {weak: [a], hard: [b]}\n",
            r"routes\.r\.examples\.hard: unknown option",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n    max_chars: 0\n",
            r"routes\.r\.max_chars",
        ),
        (
            "    weak: small\n    strong: big\n    threshold: 0.5\n    data: /nonexistent.jsonl\n",
            r"routes\.r\.data: cannot read",
        ),
    ],
)
def test_bad_configs_fail_at_load(route: str, message: str) -> None:
    """Unusable quality routes are config errors naming the field, found at load."""
    with pytest.raises(ValueError, match=message):
        router(route)
