"""Replay evaluation of the `adaptive` strategy (Thompson sampling) on routellm-evals.

    .venv/bin/python bench/eval_bandit.py [--data DIR] [--seeds 20] [--requests 5000]

Data: MMLU and GSM8K prompts with the per-prompt correctness of a weak model
(Mixtral-8x7B-Instruct) and a strong one (GPT-4-1106-preview). The data README's rules:
contaminated prompts dropped, sha256 bucket < 2 is the test side. The classifier of the
per-category variant trains on the train side only; the replays draw their requests from
the test side (uniformly, with replacement, a fresh draw per seed). The choices below
(the cost penalty, MMLU subcategories as the categories) were made from train-side
figures (`--side train` prints them).

Everything goes through the product's own path: a config with two deployments (`weak`,
`strong`, priced) and an `adaptive` route is built by `build_router`; per request
`Router.decide` picks the arm (the strategy's own Thompson draw), the outcome goes to the
strategy's learner (`observe`, with the request's cost from `cost_of` at the deployment's
prices) and the correctness comes back as feedback (`feedback`, score 0 or 1). Nothing of
the bandit is re-implemented here; the uniform A/B split is a seeded fair coin.

Rewards (both variants use the strategy's reward options, so the bandit learns exactly
the reward it is scored on):

- quality: reward = correct (0/1): `reward: {success: 0, feedback: 1}`;
- cost-aware: reward = clamp(correct - 100 x USD, 0, 1) (a correct answer is worth $0.01):
  `reward: {success: 0, feedback: 1, cost: 100}`. Prices are RouteLLM's blended figures
  (GPT-4 $24.7, Mixtral $0.24 per million tokens); tokens are the gateway's own estimate
  of the prompt, plus 1 answer token for MMLU and the model's estimated response length
  for GSM8K.

Figures, per task and reward, mean ± sd over seeds:

- regret after N requests against the best fixed arm (the arm with the higher mean reward
  on the test side, always chosen) and against the per-prompt oracle (the better arm for
  each prompt), both realised on the same sampled prompts;
- requests to identify the best arm. Bandit: the first n after which the posterior
  probability that the best arm is best, P(best), is >= 0.95 and stays so until N. Uniform
  A/B, three ways: (a) the same rule on the posteriors of the A/B's own observations (same
  prior and update); (b) a sequential two-sample z-test at 95 % (two-sided) that separates
  the arms in the right direction from n on and stays so; (c) the fixed-horizon sample
  size of an A/B test with alpha 0.05 (two-sided) and power 0.8 for the true effect
  (which a real test would not know). Runs that never identify count as N ("> N").
- per-category (MMLU, cost-aware reward): the same bandit with one posterior per MMLU
  subcategory (17, classifier trained on the train side), against the per-category
  oracle (best fixed arm per true subcategory) too, and the route-wide bandit on the same
  seeds. For the quality reward only the oracles are printed: one subcategory prefers
  the weak model and the per-category oracle is within 0.5 % of the best fixed arm, so
  there is nothing for categories to gain.

Runs in about 1.5 minutes on 2 busy cores once the subcategory classifier is cached;
its first training adds a minute or so (the cache is the gateway's usual one).
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bandit_stats import (
    Floats,
    Run,
    ab_posteriors,
    fixed_horizon,
    identified,
    identify_bayes,
    identify_ztest,
    neyman_bound,
    regret,
    summary,
)
from numpy.typing import NDArray

from polyroute.config import parse_config
from polyroute.context import RequestContext, estimate_tokens
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Feedback, Outcome, Usage
from polyroute.routing.build import build_router
from polyroute.routing.strategies.adaptive import AdaptiveStrategy
from polyroute.usage import cost_of

REPO = Path(__file__).resolve().parent.parent
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
ARMS = ("weak", "strong")
PRICE = {"weak": 0.24, "strong": 24.7}  # USD per million tokens, input and output
COST_PENALTY = 100.0  # reward lost per USD: a correct answer is worth $0.01
WARM_UP = 50  # the min_samples variant (chosen a priori, not tuned)


@dataclass
class Task:
    name: str
    prompts: list[str]
    correct: Floats  # (n, 2): weak, strong
    answer_tokens: NDArray[np.int64]  # (n, 2)
    labels: list[str] | None  # MMLU subcategory


def bucket(prompt: str) -> int:
    digest = hashlib.sha256(unicodedata.normalize("NFC", prompt).strip().encode()).hexdigest()
    return int(digest[:8], 16) % 10


def contaminated(path: Path) -> set[str]:
    return {json.loads(line)["eval_prompt"] for line in path.read_text().splitlines() if line}


def load_mmlu(root: Path) -> list[tuple[str, bool, bool, str]]:
    drop = contaminated(root / "mmlu" / "contaminated_prompts.jsonl")
    subcategory = json.loads((root / "mmlu" / "subject_categories.json").read_text())[
        "subcategories"
    ]
    rows = []
    for path in sorted(glob.glob(str(root / "mmlu" / "responses" / "mmlu_*.csv"))):
        subject = Path(path).stem.removeprefix("mmlu_")
        with open(path, encoding="utf-8", newline="") as file:
            for record in csv.DictReader(file):
                if record["prompt"] in drop:
                    continue
                rows.append(
                    (
                        record["prompt"],
                        record[WEAK] == "True",
                        record[STRONG] == "True",
                        subcategory[subject],
                    )
                )
    return rows


def tasks(root: Path, side: str) -> tuple[Task, Task, list[tuple[str, str]]]:
    """MMLU and GSM8K on `side`, and the train-side (prompt, subcategory) rows of MMLU."""
    test = side == "test"
    mmlu = load_mmlu(root)
    chosen = [r for r in mmlu if (bucket(r[0]) < 2) == test]
    train_labels = [(r[0], r[3]) for r in mmlu if bucket(r[0]) >= 2]
    mmlu_task = Task(
        "MMLU",
        [r[0] for r in chosen],
        np.array([[r[1], r[2]] for r in chosen], dtype=np.float64),
        np.ones((len(chosen), 2), dtype=np.int64),
        [r[3] for r in chosen],
    )
    drop = contaminated(root / "gsm8k" / "contaminated_prompts.jsonl")
    gsm: list[dict[str, str]] = []
    with open(root / "gsm8k" / "gsm8k_responses.csv", encoding="utf-8", newline="") as file:
        for record in csv.DictReader(file):
            if record["prompt"] not in drop and (bucket(record["prompt"]) < 2) == test:
                gsm.append(record)
    gsm_task = Task(
        "GSM8K",
        [r["prompt"] for r in gsm],
        np.array([[r[WEAK] == "True", r[STRONG] == "True"] for r in gsm], dtype=np.float64),
        np.array(
            [
                [estimate_tokens(r[f"{WEAK}_response"]), estimate_tokens(r[f"{STRONG}_response"])]
                for r in gsm
            ],
            dtype=np.int64,
        ),
        None,
    )
    return mmlu_task, gsm_task, train_labels


def config_text(
    reward: dict[str, float], seed: int, categories: dict[str, Any] | None, min_samples: int = 0
) -> str:
    route: dict[str, Any] = {
        "strategy": "adaptive",
        "targets": list(ARMS),
        "reward": reward,
        "persist": False,
        "seed": seed,
        "min_samples": min_samples,
    }
    if categories is not None:
        route["categories"] = categories
    config = {
        "models": [
            {
                "name": arm,
                "base_url": "http://127.0.0.1:9/v1",
                "price": {"input_per_mtok": PRICE[arm], "output_per_mtok": PRICE[arm]},
            }
            for arm in ARMS
        ],
        "routes": {"r": route},
    }
    return json.dumps(config)


def context_for(prompt: str, request_id: str) -> RequestContext:
    body = {"messages": [{"role": "user", "content": prompt}]}
    return RequestContext(request_id=request_id, kind=EndpointKind.CHAT, model="r", body=body)


def rewards_of(task: Task, penalty: float) -> tuple[Floats, Floats]:
    """Per prompt and arm: the reward as the strategy computes it, and the cost (USD)."""
    router = build_router(parse_config(config_text({"success": 0, "feedback": 1}, 0, None)))
    deployments = [router.deployments[arm] for arm in ARMS]
    costs = np.zeros((len(task.prompts), 2))
    for i, prompt in enumerate(task.prompts):
        tokens = context_for(prompt, "cost").token_estimate
        for a, deployment in enumerate(deployments):
            usage = Usage(prompt_tokens=tokens, completion_tokens=int(task.answer_tokens[i, a]))
            costs[i, a] = cost_of(deployment, usage)
    return np.clip(task.correct - penalty * costs, 0.0, 1.0), costs


def replay_bandit(
    task: Task,
    reward: dict[str, float],
    rewards: Floats,
    costs: Floats,
    sample: NDArray[np.int64],
    seed: int,
    categories: dict[str, Any] | None = None,
    min_samples: int = 0,
) -> Run:
    router = build_router(parse_config(config_text(reward, seed, categories, min_samples)))
    strategy = router.policies["r"].strategy
    assert isinstance(strategy, AdaptiveStrategy)
    learner = strategy.learner
    learner.bind("r")
    chosen = np.zeros(len(sample), dtype=np.int64)
    posteriors = np.zeros((len(sample), 2, 2))
    for t, index in enumerate(sample):
        request_id = f"{seed}-{t}"
        ctx = context_for(task.prompts[index], request_id)
        decision = router.decide(ctx)
        arm = ARMS.index(decision.signals["r"]["arm"])
        chosen[t] = arm
        learner.observe(
            Outcome(
                ctx,
                decision,
                decision.deployment,
                ok=True,
                status=200,
                latency=0.0,
                cost=float(costs[index, arm]),
            )
        )
        learner.feedback(Feedback(request_id, float(task.correct[index, arm])))
        for a, name in enumerate(ARMS):
            alpha, beta, _ = strategy.posterior(name)
            posteriors[t, a] = alpha, beta
    labels = None if task.labels is None else [task.labels[i] for i in sample]
    return Run(chosen, rewards[sample], posteriors, labels)


def replay_ab(rewards: Floats, sample: NDArray[np.int64], seed: int) -> Run:
    coin = np.random.default_rng(10_000 + seed).integers(0, 2, len(sample))
    return Run(coin.astype(np.int64), rewards[sample], None, None)


def evaluate(task: Task, variant: str, penalty: float, seeds: int, horizon: int) -> None:
    reward = {"success": 0.0, "feedback": 1.0, "cost": penalty}
    rewards, costs = rewards_of(task, penalty)
    means = rewards.mean(0)
    best = int(means.argmax())
    oracle = rewards.max(1).mean()
    print(
        f"\n== {task.name}, {variant} reward, {len(task.prompts)} test prompts, "
        f"{seeds} seeds x {horizon} requests"
    )
    print(
        f"   mean reward per request: weak {means[0]:.4f}, strong {means[1]:.4f}, "
        f"per-prompt oracle {oracle:.4f}; best fixed arm: {ARMS[best]} "
        f"(gap {abs(means[1] - means[0]):.4f}); mean cost weak ${costs[:, 0].mean():.6f}, "
        f"strong ${costs[:, 1].mean():.6f}"
    )
    bandit_regret: list[tuple[float, float]] = []
    ab_regret: list[tuple[float, float]] = []
    share: list[float] = []
    ids: dict[str, list[int | None]] = {"bandit": [], "ab_bayes": [], "ab_z": [], "warm": []}
    warm_regret: list[float] = []
    started = time.perf_counter()
    for seed in range(seeds):
        sample = np.random.default_rng(seed).integers(0, len(task.prompts), horizon)
        run = replay_bandit(task, reward, rewards, costs, sample, seed)
        ab = replay_ab(rewards, sample, seed)
        bandit_regret.append(regret(run, best))
        ab_regret.append(regret(ab, best))
        share.append(float((run.arms == best).mean()))
        assert run.posteriors is not None
        ids["bandit"].append(identify_bayes(run.posteriors, best))
        ids["ab_bayes"].append(identify_bayes(ab_posteriors(ab), best))
        ids["ab_z"].append(identify_ztest(ab, best))
        warm = replay_bandit(task, reward, rewards, costs, sample, seed, min_samples=WARM_UP)
        assert warm.posteriors is not None
        warm_regret.append(regret(warm, best)[0])
        ids["warm"].append(identify_bayes(warm.posteriors, best))
    elapsed = time.perf_counter() - started
    print(f"   cumulative regret after {horizon} requests (mean ± sd over seeds):")
    print(
        f"     adaptive : vs best fixed arm {summary([r[0] for r in bandit_regret])}, "
        f"vs per-prompt oracle {summary([r[1] for r in bandit_regret])}; "
        f"share to the best arm {summary(share, 3)}"
    )
    print(
        f"     A/B 50/50: vs best fixed arm {summary([r[0] for r in ab_regret])}, "
        f"vs per-prompt oracle {summary([r[1] for r in ab_regret])}"
    )
    ratio = statistics.fmean(r[0] for r in ab_regret) / max(
        1e-9, statistics.fmean(r[0] for r in bandit_regret)
    )
    print(f"     adaptive, min_samples {WARM_UP}: vs best fixed arm {summary(warm_regret)}")
    print(f"     regret vs best fixed arm, A/B / adaptive: {ratio:.1f}x")
    fixed = fixed_horizon(rewards)
    bandit_median, bandit_text = identified(ids["bandit"], horizon)
    bayes_median, bayes_text = identified(ids["ab_bayes"], horizon)
    z_median, z_text = identified(ids["ab_z"], horizon)
    print(f"   requests to identify the best arm ({ARMS[best]}):")
    print(f"     adaptive, P(best) >= 0.95 to the end   : {bandit_text}")
    print(f"     A/B, same rule on its own posteriors   : {bayes_text}")
    print(f"     A/B, sequential z-test at 95 %         : {z_text}")
    print(f"     A/B, fixed horizon (alpha .05, power .8): {fixed}")
    print(
        f"     adaptive, min_samples {WARM_UP}              : {identified(ids['warm'], horizon)[1]}"
    )
    print(
        "   speed-up of adaptive (A/B median / adaptive median): "
        f"same rule {bayes_median / bandit_median:.2f}x, z-test {z_median / bandit_median:.2f}x,"
        f" fixed horizon {fixed / bandit_median:.2f}x  (target >= 2x); the most any"
        f" allocation can gain over 50/50 at equal confidence here: {neyman_bound(rewards):.3f}x"
    )
    print(f"   [{elapsed:.1f} s]")


def evaluate_categories(
    task: Task,
    variant: str,
    penalty: float,
    seeds: int,
    horizon: int,
    categories: dict[str, Any],
) -> None:
    assert task.labels is not None
    reward = {"success": 0.0, "feedback": 1.0, "cost": penalty}
    rewards, costs = rewards_of(task, penalty)
    best = int(rewards.mean(0).argmax())
    labels = sorted(set(task.labels))
    label_of = np.array([labels.index(x) for x in task.labels])
    per_label_best = {
        label: int(rewards[label_of == i].mean(0).argmax()) for i, label in enumerate(labels)
    }
    category_oracle = np.array([rewards[i, per_label_best[x]] for i, x in enumerate(task.labels)])
    print(
        f"\n== {task.name} per category ({len(labels)} subcategories), {variant} reward"
        + (f", {seeds} seeds x {horizon} requests" if seeds else "")
    )
    winners = sorted(label for label, arm in per_label_best.items() if arm != best)
    print(
        f"   per-category oracle {category_oracle.mean():.4f} vs best fixed arm "
        f"{rewards[:, best].mean():.4f} per request; subcategories whose best arm is not "
        f"{ARMS[best]}: {', '.join(winners) or 'none'}"
    )
    if not seeds:
        gain = category_oracle.mean() / rewards[:, best].mean() - 1
        print(f"   not replayed: the per-category oracle gains only {gain:.2%} per request")
        return
    flat: list[float] = []
    split: list[tuple[float, float, float]] = []
    started = time.perf_counter()
    for seed in range(seeds):
        sample = np.random.default_rng(seed).integers(0, len(task.prompts), horizon)
        run = replay_bandit(task, reward, rewards, costs, sample, seed, categories)
        got = run.rewards[np.arange(horizon), run.arms]
        fixed_r, prompt_r = regret(run, best)
        split.append((fixed_r, float((category_oracle[sample] - got).sum()), prompt_r))
        plain = replay_bandit(task, reward, rewards, costs, sample, seed)
        flat.append(regret(plain, best)[0])
    elapsed = time.perf_counter() - started
    print(
        f"   per-category adaptive: regret vs best fixed arm {summary([s[0] for s in split])},"
        f" vs per-category oracle {summary([s[1] for s in split])},"
        f" vs per-prompt oracle {summary([s[2] for s in split])}"
    )
    print(f"   route-wide adaptive (same seeds): regret vs best fixed arm {summary(flat)}")
    print(f"   [{elapsed:.1f} s]")


def category_config(train: list[tuple[str, str]], directory: Path) -> dict[str, Any]:
    path = directory / "mmlu_train_subcategories.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for text, label in train:
            file.write(json.dumps({"text": text, "label": label}) + "\n")
    return {label: {"data": str(path)} for label in sorted({label for _, label in train})}


def classifier_accuracy(task: Task, categories: dict[str, Any]) -> float:
    router = build_router(parse_config(config_text({"feedback": 1}, 0, categories)))
    strategy = router.policies["r"].strategy
    assert isinstance(strategy, AdaptiveStrategy)
    assert strategy.classifier is not None
    assert task.labels is not None
    hits = [
        strategy.classifier.predict(p[:2000])[0] == label
        for p, label in zip(task.prompts, task.labels, strict=True)
    ]
    return sum(hits) / len(hits)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--category-seeds", type=int, default=5)
    parser.add_argument("--side", choices=["test", "train"], default="test")
    args = parser.parse_args(argv)
    root = args.data / "routellm-evals"
    if not root.is_dir():
        print(f"no routellm-evals under {args.data}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    mmlu, gsm8k, train = tasks(root, args.side)
    print(
        f"routellm-evals ({args.side} side): MMLU {len(mmlu.prompts)} prompts, "
        f"GSM8K {len(gsm8k.prompts)}; arms weak = Mixtral-8x7B, strong = GPT-4; "
        f"cost-aware reward = clamp(correct - {COST_PENALTY:g} x USD, 0, 1)"
    )
    for task in (mmlu, gsm8k):
        evaluate(task, "quality", 0.0, args.seeds, args.requests)
        evaluate(task, "cost-aware", COST_PENALTY, args.seeds, args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        categories = category_config(train, Path(tmp))
        built = time.perf_counter()
        accuracy = classifier_accuracy(mmlu, categories)
        print(
            f"\nsubcategory classifier (train side, {len(train)} prompts): accuracy on the "
            f"{args.side} side {accuracy:.3f} [build {time.perf_counter() - built:.1f} s]"
        )
        for variant, penalty, seeds in (
            ("quality", 0.0, 0),  # the oracle line only: nothing to gain (see the output)
            ("cost-aware", COST_PENALTY, args.category_seeds),
        ):
            evaluate_categories(mmlu, variant, penalty, seeds, args.requests, categories)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
