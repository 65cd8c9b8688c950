"""Cost/quality routing of the `quality` strategy on RouteLLM's MMLU and GSM8K responses.

    .venv/bin/python bench/eval_quality.py [--data DIR] [--export-train DIR] [--cv]

Data: ``routellm-evals`` (default ``../shared/data/routellm-evals`` beside the repository;
``--data`` names it or the folder holding it): per prompt, whether Mixtral-8x7B-Instruct
(weak) and GPT-4-1106-preview (strong) answered correctly. As its README says, the
contaminated prompts are dropped first and the split is by hash: test if
``int(sha256(NFC(prompt).strip())[:8], 16) % 10 < 2``.

Everything goes through the product's own path: the train side is written as a labelled
file (``prompt``, ``weak_ok``, ``strong_ok``; ``--export-train DIR`` keeps these files, one
per data set, to configure a route with), a gateway config with a `quality` route on it is
built by `build_router` (training at build, into a fresh cache, so the build time printed is
the cold start), and every test prompt is scored by that route's strategy. Each data set gets
its own model, trained on its own train side only.

Routing the test prompts whose expected strong gain is at least a threshold to the strong
model, and sweeping the threshold from above the highest score to below the lowest, traces
accuracy against the share of strong calls (every distinct cut, 0 % to 100 %). From it:

- ``95 % strong``: the smallest share of strong calls whose accuracy reaches 95 % of the
  strong model's accuracy (and the threshold that gives it on this test side);
- ``CPT(x)``: the smallest share of strong calls that recovers x of the gap between the weak
  and the strong model's accuracy (PGR, performance gap recovered = (acc - weak) /
  (strong - weak));
- ``APGR``: the area under PGR against the share of strong calls, as RouteLLM defines it
  (its `evaluate.py`, over the full 0-100 % range). Random routing has APGR 0.5 and
  CPT(x) = x in expectation; the oracle (strong only where the weak model fails and the
  strong one does not) exceeds 1 because it also avoids the strong model's own misses.

Latency: `Router.decide` on single test prompts, p50/p99, in process. ``--cv`` also runs
the model comparison behind the strategy's choice of target: 4-fold cross-validation by hash
bucket within the train side (no test prompt is read).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from polyroute.config import parse_config
from polyroute.context import RequestContext
from polyroute.kinds import EndpointKind
from polyroute.routing.build import build_router
from polyroute.routing.classify.quality import Outcome, QualityModel
from polyroute.routing.router import Router
from polyroute.routing.strategies.quality import QualityStrategy

REPO = Path(__file__).resolve().parent.parent
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
QUALITY_OF_STRONG = 0.95
MAX_CHARS = 2000  # the route's default max_chars: what it classifies of each prompt
MMLU_TARGET = 0.40  # share of strong calls at 95 % of the strong model's MMLU accuracy
Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Row:
    prompt: str
    weak_ok: bool
    strong_ok: bool


# --- data -----------------------------------------------------------------------------------


def bucket(text: str) -> int:
    digest = hashlib.sha256(unicodedata.normalize("NFC", text).strip().encode()).hexdigest()
    return int(digest[:8], 16) % 10


def contaminated(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["eval_prompt"] for line in lines if line.strip()}


def read_csv(path: Path, drop: set[str]) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as file:
        return [
            Row(r["prompt"], r[WEAK] == "True", r[STRONG] == "True")
            for r in csv.DictReader(file)
            if r["prompt"] not in drop
        ]


def load(root: Path, dataset: str) -> list[Row]:
    drop = contaminated(root / dataset / "contaminated_prompts.jsonl")
    if dataset == "gsm8k":
        return read_csv(root / "gsm8k" / "gsm8k_responses.csv", drop)
    rows: list[Row] = []
    for path in sorted((root / "mmlu" / "responses").glob("mmlu_*.csv")):
        rows.extend(read_csv(path, drop))
    return rows


def write_train(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", encoding="utf-8") as file:
        for row in rows:
            item = {"prompt": row.prompt, "weak_ok": row.weak_ok, "strong_ok": row.strong_ok}
            file.write(json.dumps(item, ensure_ascii=False) + "\n")


# --- the route --------------------------------------------------------------------------------


def build(data: Path, threshold: float) -> Router:
    text = (
        "models:\n  - {name: weak, base_url: http://127.0.0.1:9/v1}\n"
        "  - {name: strong, base_url: http://127.0.0.1:9/v1}\n"
        "routes:\n  smart:\n    strategy: quality\n    weak: weak\n    strong: strong\n"
        f"    threshold: {threshold}\n    data: {json.dumps(str(data))}\n"
    )
    return build_router(parse_config(text))


def strategy_of(router: Router) -> QualityStrategy:
    strategy = router.policies["smart"].strategy
    assert isinstance(strategy, QualityStrategy)
    return strategy


def context(prompt: str) -> RequestContext:
    body = {"model": "smart", "messages": [{"role": "user", "content": prompt}]}
    return RequestContext(request_id="b", kind=EndpointKind.CHAT, model="smart", body=body)


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Curve:
    """Accuracy at each share of strong calls, routing the highest scores to strong first."""

    share: Floats  # 0 .. 1, one point per distinct cut (ties move together)
    accuracy: Floats
    cut: Floats  # the lowest score sent to strong at that point (+inf at share 0)
    weak: float
    strong: float

    @property
    def pgr(self) -> Floats:
        return (self.accuracy - self.weak) / (self.strong - self.weak)

    def apgr(self) -> float:
        return float(np.trapezoid(self.pgr, self.share))

    def first(self, reached: NDArray[np.bool_]) -> int | None:
        hits = np.flatnonzero(reached)
        return int(hits[0]) if hits.size else None

    def cpt(self, gap: float) -> float:
        index = self.first(self.pgr >= gap - 1e-12)
        return float(self.share[index]) if index is not None else float("nan")

    def share_for_quality(self, fraction: float) -> tuple[float, float]:
        """(share of strong calls, threshold) at the first point with accuracy >= fraction x
        the strong model's."""
        index = self.first(self.accuracy >= fraction * self.strong - 1e-12)
        if index is None:
            return float("nan"), float("nan")
        return float(self.share[index]), float(self.cut[index])

    def accuracy_at(self, share: float) -> float:
        return float(np.interp(share, self.share, self.accuracy))


def curve(
    score: Floats,
    weak_ok: NDArray[np.bool_],
    strong_ok: NDArray[np.bool_],
    *,
    ties: bool = True,
) -> Curve:
    """`ties`: prompts with equal scores move to strong together, as a threshold moves them
    (the oracle, which knows each prompt, sets ties=False and takes them one at a time)."""
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    gain = strong_ok[order].astype(np.float64) - weak_ok[order].astype(np.float64)
    n = len(score)
    correct = weak_ok.sum() + np.concatenate([[0.0], np.cumsum(gain)])
    # keep only cuts between different scores: a threshold cannot split a tie
    boundaries = np.flatnonzero(np.diff(ranked) != 0) + 1 if ties else np.arange(1, n)
    ends = np.concatenate([[0], boundaries, [n]])
    cuts = np.concatenate([[np.inf], ranked[ends[1:] - 1]])
    return Curve(
        share=ends / n,
        accuracy=correct[ends] / n,
        cut=cuts,
        weak=float(weak_ok.mean()),
        strong=float(strong_ok.mean()),
    )


@dataclass(frozen=True, slots=True)
class Figures:
    share95: float
    threshold95: float
    cpt50: float
    cpt80: float
    apgr: float


def figures(c: Curve) -> Figures:
    share95, threshold95 = c.share_for_quality(QUALITY_OF_STRONG)
    return Figures(share95, threshold95, c.cpt(0.5), c.cpt(0.8), c.apgr())


def random_figures(weak: float, strong: float) -> Figures:
    """Expected figures of routing a random share to strong: accuracy is linear in the share."""
    share95 = (QUALITY_OF_STRONG * strong - weak) / (strong - weak)
    return Figures(max(0.0, share95), float("nan"), 0.5, 0.8, 0.5)


# --- the evaluation ---------------------------------------------------------------------------


def evaluate(name: str, rows: list[Row], tmp: Path, export: Path | None) -> tuple[Figures, Router]:
    train = [r for r in rows if bucket(r.prompt) >= 2]
    test = [r for r in rows if bucket(r.prompt) < 2]
    folder = export if export is not None else tmp
    path = folder / f"{name.lower()}-train.jsonl"
    write_train(path, train)
    started = time.perf_counter()
    router = build(path, threshold=0.1)
    built = time.perf_counter() - started
    strategy = strategy_of(router)
    weak_ok = np.array([r.weak_ok for r in test])
    strong_ok = np.array([r.strong_ok for r in test])
    exported = f" (train side exported to {path})" if export is not None else ""
    print(
        f"\n{name}: {len(rows)} prompts after dropping contaminated ones; {len(train)} train /"
        f" {len(test)} test; build (train) {built:.1f} s{exported}"
    )
    print(
        f"  test accuracy: weak {weak_ok.mean():.2%}, strong {strong_ok.mean():.2%},"
        f" either {(weak_ok | strong_ok).mean():.2%};"
        f" 95 % of strong = {QUALITY_OF_STRONG * strong_ok.mean():.2%}"
    )
    score = np.array([strategy.estimate(r.prompt).strong_gain for r in test])
    router_curve = curve(score, weak_ok, strong_ok)
    oracle_curve = curve(strong_ok.astype(float) - weak_ok, weak_ok, strong_ok, ties=False)
    ours = figures(router_curve)
    table = [
        ("quality (this)", ours),
        ("random (expected)", random_figures(router_curve.weak, router_curve.strong)),
        ("oracle", figures(oracle_curve)),
    ]
    print(f"  {'router':<18} {'95% strong':>10} {'CPT(50%)':>9} {'CPT(80%)':>9} {'APGR':>6}")
    for label, f in table:
        print(f"  {label:<18} {f.share95:>10.1%} {f.cpt50:>9.1%} {f.cpt80:>9.1%} {f.apgr:>6.3f}")
    print(f"  95 % of strong accuracy at threshold {ours.threshold95:.3f} (strong_gain >= it)")
    low, high, apgr_low, apgr_high = bootstrap(score, weak_ok, strong_ok)
    print(
        f"  bootstrap 95 % intervals over test prompts (1000 resamples): 95 % strong"
        f" {low:.1%}-{high:.1%}, APGR {apgr_low:.3f}-{apgr_high:.3f}"
    )
    print("  accuracy by share of strong calls:")
    shares = np.linspace(0.0, 1.0, 11)
    print("    " + "share  " + " ".join(f"{s:>6.0%}" for s in shares))
    for label, c in (("quality", router_curve), ("oracle", oracle_curve)):
        print(f"    {label:<7}" + " ".join(f"{c.accuracy_at(s):>6.1%}" for s in shares))
    random = [router_curve.weak + s * (router_curve.strong - router_curve.weak) for s in shares]
    print("    random " + " ".join(f"{a:>6.1%}" for a in random))
    print("  threshold sweep (strong when strong_gain >= threshold):")
    print("    threshold  " + " ".join(f"{t:>6.2f}" for t in THRESHOLDS))
    strong_calls = [(score >= t) for t in THRESHOLDS]
    print("    strong     " + " ".join(f"{m.mean():>6.1%}" for m in strong_calls))
    accuracies = [np.where(m, strong_ok, weak_ok).mean() for m in strong_calls]
    print("    accuracy   " + " ".join(f"{a:>6.1%}" for a in accuracies))
    # the route's own decisions agree with the scores (same strategy, same threshold)
    sample = test[:: max(1, len(test) // 200)]
    for row in sample:
        chosen = router.decide(context(row.prompt)).deployment.name
        expected = (
            "strong" if strategy.estimate(row.prompt).strong_gain >= strategy.threshold else "weak"
        )
        assert chosen == expected, (row.prompt[:60], chosen, expected)
    return ours, router


def bootstrap(
    score: Floats, weak_ok: NDArray[np.bool_], strong_ok: NDArray[np.bool_], n: int = 1000
) -> tuple[float, float, float, float]:
    """2.5 and 97.5 percentiles of the 95 %-strong share and of APGR over resampled prompts
    (the model and its scores fixed: the test side's sampling noise only)."""
    rng = np.random.default_rng(0)
    shares, apgrs = [], []
    for _ in range(n):
        pick = rng.integers(0, len(score), len(score))
        c = curve(score[pick], weak_ok[pick], strong_ok[pick])
        shares.append(c.share_for_quality(QUALITY_OF_STRONG)[0])
        apgrs.append(c.apgr())
    share_low, share_high = np.nanpercentile(shares, [2.5, 97.5])
    apgr_low, apgr_high = np.percentile(apgrs, [2.5, 97.5])
    return float(share_low), float(share_high), float(apgr_low), float(apgr_high)


THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def latency(router: Router, prompts: Sequence[str], n: int = 3000) -> float:
    """p50/p99 of one `Router.decide` (context built outside the timed part); returns p50 ms."""
    timings = []
    for i in range(n):
        ctx = context(prompts[i % len(prompts)])
        started = time.perf_counter_ns()
        router.decide(ctx)
        timings.append((time.perf_counter_ns() - started) / 1e6)
    timings.sort()
    p50, p99 = statistics.median(timings), timings[int(0.99 * len(timings))]
    print(f"  decision latency (Router.decide): p50 {p50:.3f} ms, p99 {p99:.3f} ms ({n} decisions)")
    return p50


def cross_validate(name: str, rows: list[Row], tmp: Path) -> None:
    """APGR of candidate targets on 4 folds of the train side (by hash bucket)."""
    train = [r for r in rows if bucket(r.prompt) >= 2]
    folds = np.array([(bucket(r.prompt) - 2) // 2 for r in train])
    variants: dict[str, Callable[[Row], Outcome]] = {
        "four outcomes, strong_gain (chosen)": lambda r: Outcome(r.prompt, r.weak_ok, r.strong_ok),
        "binary: strong needed": lambda r: Outcome(
            r.prompt, weak_ok=r.weak_ok or not r.strong_ok, strong_ok=True
        ),
        "binary: weak fails": lambda r: Outcome(r.prompt, weak_ok=r.weak_ok, strong_ok=True),
    }
    print(f"  {name}, 4-fold cross-validation on the train side ({len(train)} prompts):")
    for label, make in variants.items():
        results = []
        started = time.perf_counter()
        for fold in range(4):
            inside = [make(r) for r, f in zip(train, folds, strict=True) if f != fold]
            inside = [row._replace(text=row.text[:MAX_CHARS]) for row in inside]
            held = [r for r, f in zip(train, folds, strict=True) if f == fold]
            model = QualityModel.load_or_train(inside, tmp / "cv-cache")
            score = np.array([model.estimate(r.prompt[:MAX_CHARS]).strong_gain for r in held])
            weak_ok = np.array([r.weak_ok for r in held])
            strong_ok = np.array([r.strong_ok for r in held])
            results.append(figures(curve(score, weak_ok, strong_ok)))
        print(
            f"    {label:<36} APGR {statistics.mean(f.apgr for f in results):.3f}"
            f" (folds {', '.join(f'{f.apgr:.3f}' for f in results)}),"
            f" 95 % strong at {statistics.mean(f.share95 for f in results):.1%}"
            f" [{time.perf_counter() - started:.0f} s]"
        )


def report(name: str, value: float, target: float) -> None:
    """One target line for a 'lower is better' share."""
    if value <= target:
        print(f"  TARGET MET    {name}: {value:.1%} (target <= {target:.0%})")
    else:
        gap = (value - target) * 100
        print(
            f"  TARGET MISSED {name}: {value:.1%}"
            f" (target <= {target:.0%}, over by {gap:.1f} points)"
        )


def data_root(path: Path) -> Path:
    return path / "routellm-evals" if (path / "routellm-evals").is_dir() else path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="the routellm-evals folder, or the folder holding it (default ../shared/data)",
    )
    parser.add_argument(
        "--export-train", type=Path, help="keep the labelled train files in this folder"
    )
    parser.add_argument("--cv", action="store_true", help="also cross-validate on the train side")
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if not (root / "mmlu" / "responses").is_dir():
        sys.exit(f"no routellm-evals data at {root} (pass --data)")
    if args.export_train is not None:
        args.export_train.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["POLYROUTE_CACHE_DIR"] = str(Path(tmp) / "cache")
        results = {}
        for name, dataset in (("MMLU", "mmlu"), ("GSM8K", "gsm8k")):
            rows = load(root, dataset)
            results[name], router = evaluate(name, rows, Path(tmp), args.export_train)
            test = [r.prompt for r in rows if bucket(r.prompt) < 2]
            latency(router, test)
            if args.cv:
                cross_validate(name, rows, Path(tmp))
    print()
    report(
        "MMLU share of strong calls at 95 % of strong accuracy",
        results["MMLU"].share95,
        MMLU_TARGET,
    )
    print(f"(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
