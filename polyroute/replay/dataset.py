"""Replaying an evaluation set whose items say whether the weak and the strong model
answered each prompt correctly (RouteLLM's): quality is exact per prompt, and each report
holds the all-weak, all-strong and oracle references beside the policies (see
polyroute.replay.engine for replaying logged traffic)."""

from __future__ import annotations

from collections.abc import Sequence

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage
from polyroute.replay.engine import Policy, PolicyResult, Progress, ReplayError, Report
from polyroute.replay.sources import EvalItem
from polyroute.usage import cost_of


def replay_dataset(
    items: Sequence[EvalItem],
    policies: Sequence[Policy],
    mapping: dict[str, Deployment],
    *,
    source: str,
    output_tokens: int = 1,
    progress: bool | None = None,
) -> Report:
    """The report for `policies` on an evaluation set whose items say whether the weak and
    the strong model answered correctly; `mapping` names the deployment of each."""
    if not items:
        raise ReplayError("the data set selection is empty")
    by_name = {deployment.name: which for which, deployment in mapping.items()}
    accuracy = {
        which: sum(item.correct[which] for item in items) / len(items)
        for which in ("weak", "strong")
    }
    results = [
        _reference(
            f"(all {which})",
            items,
            mapping=mapping,
            which=which,
            accuracy=accuracy,
            output_tokens=output_tokens,
        )
        for which in ("weak", "strong")
    ]
    results.append(_oracle(items, mapping, accuracy, output_tokens))
    rows = [PolicyResult(policy.label) for policy in policies]
    correct = [0] * len(policies)
    judged = [0] * len(policies)
    strong = [0] * len(policies)
    bar = Progress(len(items), "replay", progress)
    for item in items:
        ctx = RequestContext(
            request_id="replay",
            kind=EndpointKind.CHAT,
            model="",
            body={"messages": [{"role": "user", "content": item.prompt}]},
        )
        for index, (policy, row) in enumerate(zip(policies, rows, strict=True)):
            plan = policy.decide(ctx)
            row.n += 1
            if plan is None:
                row.unroutable += 1
                row.distribution["(unroutable)"] += 1
                continue
            deployment = plan[0]
            row.distribution[deployment.name] += 1
            which = by_name.get(deployment.name)
            tokens = output_tokens
            if which is not None:
                judged[index] += 1
                correct[index] += item.correct[which]
                strong[index] += which == "strong"
                if item.output_tokens is not None:
                    tokens = item.output_tokens[which]
            row.cost_total += cost_of(deployment, Usage(ctx.token_estimate, tokens))
        bar.advance()
    bar.close()
    for index, row in enumerate(rows):
        if judged[index]:
            row.quality = correct[index] / judged[index]
            row.strong_share = strong[index] / judged[index]
            row.gap_recovered = _gap(row.quality, accuracy)
        row.quality_n = judged[index]
        results.append(row)
    notes = [
        f"quality = share answered correctly (exact per prompt); weak = {mapping['weak'].name}, "
        f"strong = {mapping['strong'].name}; gap recovered = (quality - weak) / (strong - weak)",
        "latency: not in the data set",
    ]
    unmapped = sum(row.n - row.unroutable - row.quality_n for row in rows)
    if unmapped:
        notes.append(f"{unmapped} decisions chose a deployment that is neither weak nor strong")
    return Report(source, "correct", results, notes)


def _gap(quality: float, accuracy: dict[str, float]) -> float | None:
    spread = accuracy["strong"] - accuracy["weak"]
    return (quality - accuracy["weak"]) / spread if spread else None


def _reference(
    label: str,
    items: Sequence[EvalItem],
    *,
    mapping: dict[str, Deployment],
    which: str,
    accuracy: dict[str, float],
    output_tokens: int,
) -> PolicyResult:
    row = PolicyResult(label, reference=True)
    deployment = mapping[which]
    for item in items:
        row.n += 1
        tokens = item.output_tokens[which] if item.output_tokens is not None else output_tokens
        row.cost_total += cost_of(deployment, Usage(_prompt_tokens(item.prompt), tokens))
    row.distribution[deployment.name] = row.n
    row.quality, row.quality_n = accuracy[which], row.n
    row.strong_share = 1.0 if which == "strong" else 0.0
    row.gap_recovered = _gap(accuracy[which], accuracy)
    return row


def _oracle(
    items: Sequence[EvalItem],
    mapping: dict[str, Deployment],
    accuracy: dict[str, float],
    output_tokens: int,
) -> PolicyResult:
    """The weak model wherever it is right, else the strong one: the ceiling of routing."""
    row = PolicyResult("(oracle)", reference=True)
    right = strong = 0
    for item in items:
        which = "weak" if item.correct["weak"] or not item.correct["strong"] else "strong"
        right += item.correct[which]
        strong += which == "strong"
        tokens = item.output_tokens[which] if item.output_tokens is not None else output_tokens
        row.cost_total += cost_of(mapping[which], Usage(_prompt_tokens(item.prompt), tokens))
        row.distribution[mapping[which].name] += 1
        row.n += 1
    row.quality, row.quality_n = right / row.n, row.n
    row.strong_share = strong / row.n
    row.gap_recovered = _gap(row.quality, accuracy)
    return row


def _prompt_tokens(prompt: str) -> int:
    ctx = RequestContext(
        request_id="replay",
        kind=EndpointKind.CHAT,
        model="",
        body={"messages": [{"role": "user", "content": prompt}]},
    )
    return ctx.token_estimate
