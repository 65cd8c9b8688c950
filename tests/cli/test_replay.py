"""`polyroute replay`: re-routing a generated request log and a RouteLLM-shaped evaluation
set offline, against figures worked out by hand; clean errors for bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_EVALS = ROOT.parent / "shared" / "data" / "routellm-evals"

CONFIG = """
records: {enabled: false}
models:
  - {name: a, base_url: "http://127.0.0.1:9/v1", price: {input_per_mtok: 1, output_per_mtok: 2}}
  - {name: b, base_url: "http://127.0.0.1:9/v1", price: {input_per_mtok: 10, output_per_mtok: 20}}
routes:
  logged: {strategy: weighted, targets: [{name: a, weight: 4}, {name: b, weight: 1}]}
  only-a: {strategy: single, target: a}
  only-b: {strategy: single, target: b}
  pro-to-b:
    strategy: rules
    rules: [{when: {caller.tier: pro}, target: b}]
    default: a
"""


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polyroute", "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def request_line(index: int, chosen: str, *, tier: str | None) -> dict[str, Any]:
    prices = {"a": (1, 2), "b": (10, 20)}[chosen]
    context: dict[str, Any] = {"model": "logged", "token_estimate": 1000, "stream": False}
    if tier:
        context["tier"] = tier
    return {
        "type": "request",
        "time": "2025-01-01T00:00:00.000Z",
        "request_id": f"req_{index:024x}",
        "kind": "chat",
        "context": context,
        "decision": {
            "route": "logged",
            "path": ["logged"],
            "strategy": "weighted",
            "chosen": chosen,
            "plan": [chosen],
            "propensity": 0.8 if chosen == "a" else 0.2,
        },
        "outcome": {
            "deployment": chosen,
            "ok": True,
            "status": 200,
            "latency_ms": 100.0 if chosen == "a" else 300.0,
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "cached_tokens": 0,
            "cost": (1000 * prices[0] + 500 * prices[1]) / 1e6,
        },
    }


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, Path]:
    """100 logged requests of a 4:1 weighted route that drew a 70 times and b 30 times;
    feedback 1.0 for every answer of a and 0.5 for b; 10 of each from `pro` callers."""
    lines: list[dict[str, Any]] = []
    for index in range(100):
        chosen = "a" if index < 70 else "b"
        pro = index < 10 or 70 <= index < 80
        lines.append(request_line(index, chosen, tier="pro" if pro else None))
    for line in list(lines):
        score = 1.0 if line["decision"]["chosen"] == "a" else 0.5
        lines.append({"type": "feedback", "request_id": line["request_id"], "score": score})
    cached = request_line(999, "a", tier=None)
    cached["outcome"]["cache"] = "hit"
    lines.append(cached)
    log = tmp_path / "requests.jsonl"
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    log.write_text(text)
    config = tmp_path / "replay.yaml"
    config.write_text(CONFIG)
    return config, log


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["policy"]: row for row in report["policies"]}


def test_replay_log_matches_the_analytic_answer(logged: tuple[Path, Path], tmp_path: Path) -> None:
    """Distribution, cost, latency, DM, IPS, SNIPS and DR per policy, as computed by hand
    (see the fixture): e.g. only-a: IPS = 70 x 1.0 / 0.8 / 100 = 0.875, SNIPS = DR = 1."""
    config, log = logged
    out = tmp_path / "report.json"
    png = tmp_path / "chart.png"
    args = ["-c", str(config), "--log", str(log), "--json", str(out), "--png", str(png)]
    for policy in ("only-a", "only-b", "pro-to-b"):
        args += ["--policy", policy]
    result = replay(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["reward"] == "feedback"
    by_policy = rows(report)
    base = by_policy["(logged)"]
    assert base["requests"] == 100  # the cache hit is left out
    assert base["quality"] == pytest.approx(0.85)
    assert base["cost_per_request"] == pytest.approx(0.0074)
    assert base["latency_ms"] == pytest.approx(160.0)
    only_a = by_policy["only-a"]
    assert only_a["distribution"] == {"a": 1.0}
    assert only_a["cost_per_request"] == pytest.approx(0.002)
    assert only_a["latency_ms"] == pytest.approx(100.0)
    assert only_a["quality"] == pytest.approx(1.0)
    assert only_a["ips"] == pytest.approx(0.875)
    assert only_a["snips"] == pytest.approx(1.0)
    assert only_a["dr"] == pytest.approx(1.0)
    assert only_a["matched"] == 70
    only_b = by_policy["only-b"]
    assert only_b["cost_per_request"] == pytest.approx(0.02)
    assert only_b["ips"] == pytest.approx(0.75)
    assert only_b["snips"] == pytest.approx(0.5)
    assert only_b["dr"] == pytest.approx(0.5)
    mixed = by_policy["pro-to-b"]
    assert mixed["distribution"] == {"a": 0.8, "b": 0.2}
    assert mixed["cost_per_request"] == pytest.approx(0.0056)
    assert mixed["latency_ms"] == pytest.approx(140.0)
    assert mixed["quality"] == pytest.approx(0.9)
    assert mixed["ips"] == pytest.approx(1.0)
    assert mixed["snips"] == pytest.approx(0.8)
    assert mixed["dr"] == pytest.approx(0.9)
    assert mixed["agreement"] == pytest.approx(0.7)
    table = result.stdout
    assert "only-a" in table
    assert "SNIPS" in table
    assert "1 answers from the response cache were left out" in table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_policy_is_the_logged_route_and_success_reward(
    logged: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without --policy the routes clients used are replayed; --reward success scores ok
    requests 1 (all were ok here)."""
    config, log = logged
    out = tmp_path / "r.json"
    result = replay("-c", str(config), "--log", str(log), "--reward", "success", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert [row["policy"] for row in report["policies"]] == ["(logged)", "logged"]
    assert rows(report)["logged"]["quality"] == pytest.approx(1.0)


def write_eval_set(folder: Path) -> None:
    """A RouteLLM-shaped MMLU set: 5 short prompts (weak right on all, strong on 4), 5
    long ones (weak right on 1, strong on all) and one contaminated prompt (dropped)."""
    responses = folder / "mmlu" / "responses"
    responses.mkdir(parents=True)
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    long_text = "Consider the following rather long question about many things. " * 3
    rows_: list[dict[str, str]] = []
    for index in range(5):
        rows_.append({"prompt": f"Q{index}?", weak: "True", strong: str(index != 0)})
    for index in range(5):
        rows_.append({"prompt": f"{long_text} {index}", weak: str(index == 0), strong: "True"})
    rows_.append({"prompt": "contaminated one", weak: "False", strong: "False"})
    with (responses / "mmlu_sample.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["prompt", weak, strong])
        writer.writeheader()
        writer.writerows(rows_)
    contaminated = {"train_prompt": "x", "eval_prompt": "contaminated one"}
    (folder / "mmlu" / "contaminated_prompts.jsonl").write_text(json.dumps(contaminated) + "\n")


DATASET_CONFIG = """
records: {enabled: false}
models:
  - name: weak
    base_url: "http://127.0.0.1:9/v1"
    price: {input_per_mtok: 1, output_per_mtok: 1}
  - name: strong
    base_url: "http://127.0.0.1:9/v1"
    price: {input_per_mtok: 10, output_per_mtok: 10}
routes:
  by-length:
    strategy: rules
    rules: [{when: {tokens: {gte: 20}}, target: strong}]
    default: weak
"""


def test_replay_dataset_exact_quality(tmp_path: Path) -> None:
    """On an evaluation set quality is exact: the length rule sends long prompts to the
    strong model and is right on all 10 (weak alone 6, strong alone 9)."""
    write_eval_set(tmp_path / "evals")
    config = tmp_path / "eval.yaml"
    config.write_text(DATASET_CONFIG)
    out = tmp_path / "r.json"
    result = replay(
        "-c", str(config),
        "--dataset", "routellm:mmlu",
        "--data-dir", str(tmp_path / "evals"),
        "--split", "all",
        "--map", "weak=weak",
        "--map", "strong=strong",
        "--policy", "by-length",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    by_policy = rows(json.loads(out.read_text()))
    assert by_policy["(all weak)"]["quality"] == pytest.approx(0.6)
    assert by_policy["(all strong)"]["quality"] == pytest.approx(0.9)
    assert by_policy["(oracle)"]["quality"] == pytest.approx(1.0)
    rule = by_policy["by-length"]
    assert rule["requests"] == 10
    assert rule["quality"] == pytest.approx(1.0)
    assert rule["strong_share"] == pytest.approx(0.5)
    assert rule["gap_recovered"] == pytest.approx(4 / 3, abs=1e-3)
    assert rule["distribution"] == {"weak": 0.5, "strong": 0.5}
    assert "gap rec." in result.stdout


@pytest.mark.skipif(not SHARED_EVALS.is_dir(), reason="shared routellm-evals data not present")
def test_routellm_splits_match_the_data_set_readme(tmp_path: Path) -> None:
    """The real data: contaminated prompts dropped and the hash split give the README's
    counts (GSM8K test 268; MMLU test 608 + 944 + 656 + 656 = 2,864)."""
    config = tmp_path / "eval.yaml"
    config.write_text(DATASET_CONFIG)
    for name, expected in (("gsm8k", 268), ("mmlu", 2864)):
        out = tmp_path / f"{name}.json"
        result = replay(
            "-c", str(config),
            "--dataset", f"routellm:{name}",
            "--data-dir", str(SHARED_EVALS),
            "--map", "weak=weak",
            "--map", "strong=strong",
            "--policy", "by-length",
            "--json", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        by_policy = rows(json.loads(out.read_text()))
        assert by_policy["(all weak)"]["requests"] == expected
        weak, strong = by_policy["(all weak)"]["quality"], by_policy["(all strong)"]["quality"]
        assert 0.55 < weak < strong < 0.95


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--log", "missing.jsonl"], "no such file"),
        (["--log", "LOG", "--policy", "nope"], "unknown policy 'nope'"),
        (["--dataset", "routellm:mmlu", "--data-dir", "nowhere"], "not found"),
        (["--dataset", "other:thing"], "unknown data set"),
        (["--dataset", "routellm:mmlu", "--data-dir", "EVALS"], "needs --map weak="),
        (["--log", "LOG", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_clean_errors(
    logged: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    config, log = logged
    write_eval_set(tmp_path / "evals")
    args = [
        str(log) if a == "LOG" else str(tmp_path / "evals") if a == "EVALS" else a for a in extra
    ]
    result = replay("-c", str(config), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Long replays show a one-line bar on stderr (only on a terminal by default)."""
    from polyroute.replay.engine import Progress

    bar = Progress(400, "replay", enabled=True)
    for _ in range(400):
        bar.advance()
    bar.close()
    err = capsys.readouterr().err
    assert "100.0% 400/400" in err
    assert err.count("\r") >= 100
    assert not Progress(400, "replay").enabled  # stderr is not a terminal here
