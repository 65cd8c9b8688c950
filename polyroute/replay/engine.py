"""Replay: route logged traffic (or an evaluation set) again with other policies, offline,
and estimate what each policy would have cost, how fast and how good it would have been.

Nothing calls a model: each request is decided by the policy's router built offline (as
`polyroute route` does: every deployment healthy, no live statistics, learned routes at
their prior), and its figures come from what was logged:

- **cost**: the config's prices times the logged tokens (the prompt's reported tokens, else
  its estimate; the answer's reported tokens, else the mean answer length logged for that
  kind); cached prompt tokens only count as cached on the deployment that served them;
- **latency**: the mean latency logged for the chosen deployment (successful requests);
  deployments the log never saw have none (``latency_known`` counts the others);
- **quality**: the reward is the feedback score where feedback was logged, else (with
  ``reward="success"``) 1 for a successful request and 0 for a failed one. DM is the mean
  logged reward of the chosen deployment; IPS, SNIPS and DR (polyroute.replay.estimators)
  use the logged propensity where the policy picks what the log picked;
- on an evaluation set with per-model correctness (RouteLLM), quality is exact: whether
  the model the policy chose answered that prompt correctly (polyroute.replay.dataset).

Policies that read the prompt (content, adaptive categories, rules on text) need the
prompt in the log (``request_log.prompts: true``); without it they see an empty prompt of
the logged length. Random strategies (weighted, ab without a user) give one sample.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyroute.config import GatewayConfig
from polyroute.context import Caller, RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import GatewayError
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage
from polyroute.replay.estimators import Logged, estimate, mean_by
from polyroute.replay.sources import LoggedRequest
from polyroute.routing.router import Router
from polyroute.usage import cost_of

LOGGED = "(logged)"
_EMPTY_BODIES: dict[EndpointKind, dict[str, Any]] = {
    EndpointKind.CHAT: {"messages": [{"role": "user", "content": ""}]},
    EndpointKind.COMPLETION: {"prompt": ""},
    EndpointKind.EMBEDDING: {"input": ""},
    EndpointKind.IMAGE: {"prompt": ""},
}


class ReplayError(Exception):
    """A replay that cannot run as asked (unknown policy, bad mapping...)."""


@dataclass(slots=True)
class Policy:
    """A route of a config, replayed."""

    label: str
    route: str
    router: Router

    def decide(self, ctx: RequestContext) -> list[Deployment] | None:
        """The deployments the policy would call (its primary; an ensemble's members), or
        None when it cannot route the request."""
        ctx.model = self.route
        try:
            decision = self.router.decide(ctx)
        except GatewayError:
            return None
        return list(decision.plan) if decision.fan_out is not None else [decision.plan[0]]


def build_policies(
    configs: Sequence[tuple[str, GatewayConfig]],
    names: Sequence[str],
    build: Callable[[GatewayConfig], Router],
) -> list[Policy]:
    """One policy per (config, route name); labels carry the config's name when several
    configs are compared. Raises ReplayError for a name no config knows."""
    routers = [(label, build(config)) for label, config in configs]
    policies: list[Policy] = []
    for name in names:
        found = False
        for label, router in routers:
            if name in router.policies:
                found = True
                policy_label = name if len(routers) == 1 else f"{label}:{name}"
                policies.append(Policy(policy_label, name, router))
        if not found:
            known = sorted({n for _, r in routers for n in r.policies})
            raise ReplayError(f"unknown policy {name!r}; the config has: {', '.join(known)}")
    return policies


def default_policy_names(config: GatewayConfig, logged_routes: Iterable[str] = ()) -> list[str]:
    """Without --policy: the routes the log shows clients used, else the default route,
    else every route of the config."""
    routes = [r for r in dict.fromkeys(logged_routes) if r in config.routes]
    if routes:
        return routes
    if config.default_route:
        return [config.default_route]
    return list(config.routes)


@dataclass(slots=True)
class PolicyResult:
    """One row of the report."""

    label: str
    n: int = 0
    unroutable: int = 0
    distribution: Counter[str] = field(default_factory=Counter)
    cost_total: float = 0.0
    latency_total: float = 0.0
    latency_known: int = 0
    quality: float | None = None
    quality_n: int = 0
    ips: float | None = None
    snips: float | None = None
    dr: float | None = None
    matched: int = 0
    agreement: float | None = None
    strong_share: float | None = None
    gap_recovered: float | None = None
    reference: bool = False

    @property
    def cost_mean(self) -> float | None:
        return self.cost_total / self.n if self.n else None

    @property
    def latency_mean(self) -> float | None:
        return self.latency_total / self.latency_known if self.latency_known else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.label,
            "reference": self.reference,
            "requests": self.n,
            "unroutable": self.unroutable,
            "distribution": {
                name: round(count / self.n, 4) for name, count in self.distribution.most_common()
            }
            if self.n
            else {},
            "cost_total": round(self.cost_total, 8),
            "cost_per_request": _round(self.cost_mean, 10),
            "latency_ms": _round(None if self.latency_mean is None else self.latency_mean * 1e3, 2),
            "latency_known": self.latency_known,
            "quality": _round(self.quality, 4),
            "quality_n": self.quality_n,
            "ips": _round(self.ips, 4),
            "snips": _round(self.snips, 4),
            "dr": _round(self.dr, 4),
            "matched": self.matched,
            "agreement": _round(self.agreement, 4),
            "strong_share": _round(self.strong_share, 4),
            "gap_recovered": _round(self.gap_recovered, 4),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class Report:
    source: str
    reward: str
    """What quality means: feedback, success, or correct (an evaluation set)."""
    results: list[PolicyResult]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "reward": self.reward,
            "policies": [r.as_dict() for r in self.results],
            "notes": self.notes,
        }


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, label: str, enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.enabled = (sys.stderr.isatty() and total >= 200) if enabled is None else enabled
        self._step = max(1, total // 200)
        self._done = 0

    def advance(self) -> None:
        self._done += 1
        if self.enabled and (self._done % self._step == 0 or self._done == self.total):
            share = self._done / self.total if self.total else 1.0
            bar = "#" * int(share * 30)
            print(
                f"\r{self.label} [{bar:<30}] {share:6.1%} {self._done}/{self.total}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


# -- replaying a request log ------------------------------------------------------------------


def replay_log(
    requests: Sequence[LoggedRequest],
    policies: Sequence[Policy],
    *,
    reward: str = "auto",
    source: str = "log",
    progress: bool | None = None,
) -> Report:
    """The report for `policies` on logged `requests` (see the module doc); answers served
    from the response cache are left out (nothing was routed)."""
    hits = sum(1 for r in requests if r.cache_hit)
    requests = [r for r in requests if not r.cache_hit]
    if not requests:
        raise ReplayError("the log holds no routed request lines")
    has_feedback = any(r.feedback for r in requests)
    if reward == "auto":
        reward = "feedback" if has_feedback else "success"
    rewards = [_reward(r, reward) for r in requests]
    answer_tokens = _mean_answer_tokens(requests)
    latency = mean_by(
        [(r.deployment, r.latency) for r in requests if r.ok and r.deployment and r.latency]
    )
    reward_model = mean_by(
        [
            (r.chosen, value)
            for r, value in zip(requests, rewards, strict=True)
            if value is not None and r.chosen is not None
        ]
    )
    scored = [
        (index, Logged(r.chosen, r.propensity, value))
        for index, (r, value) in enumerate(zip(requests, rewards, strict=True))
        if value is not None and r.chosen is not None and r.propensity is not None
    ]
    results = [_logged_row(requests, rewards)]
    rows = [PolicyResult(policy.label) for policy in policies]
    choices: list[list[str | None]] = [[] for _ in policies]
    bar = Progress(len(requests), "replay", progress)
    for request in requests:
        ctx = _context(request)
        for policy, row, chosen in zip(policies, rows, choices, strict=True):
            plan = policy.decide(ctx)
            chosen.append(plan[0].name if plan else None)
            _account(row, request, plan, answer_tokens, latency)
        bar.advance()
    bar.close()
    for row, chosen in zip(rows, choices, strict=True):
        _quality(
            row,
            requests=requests,
            rewards=rewards,
            chosen=chosen,
            reward_model=reward_model,
            scored=scored,
        )
        results.append(row)
    notes = _log_notes(requests, reward, scored)
    if hits:
        notes.append(f"{hits} answers from the response cache were left out")
    return Report(source, reward, results, notes)


def _reward(request: LoggedRequest, source: str) -> float | None:
    if source == "feedback":
        return request.score
    return 1.0 if request.ok else 0.0


def _mean_answer_tokens(requests: Sequence[LoggedRequest]) -> dict[EndpointKind, float]:
    totals: dict[EndpointKind, list[int]] = {}
    for request in requests:
        if request.ok and request.completion_tokens is not None:
            entry = totals.setdefault(request.kind, [0, 0])
            entry[0] += request.completion_tokens
            entry[1] += 1
    return {kind: total / count for kind, (total, count) in totals.items()}


def _context(request: LoggedRequest) -> RequestContext:
    context = request.context
    logged_body = context.get("request")
    body: dict[str, Any] = dict(logged_body) if isinstance(logged_body, dict) else {}
    if not body:
        body = dict(_EMPTY_BODIES[request.kind])
    max_tokens = context.get("max_tokens")
    if isinstance(max_tokens, int):
        body["max_tokens"] = max_tokens
    if context.get("stream") is True:
        body["stream"] = True
    if isinstance(context.get("user_hash"), str):
        body["user"] = context["user_hash"]
    if isinstance(context.get("metadata"), dict):
        body["metadata"] = context["metadata"]
    tags = context.get("tags")
    caller = Caller(
        team=context.get("team") if isinstance(context.get("team"), str) else None,
        tier=context.get("tier") if isinstance(context.get("tier"), str) else None,
        tags=frozenset(t for t in tags if isinstance(t, str))
        if isinstance(tags, list)
        else frozenset(),
    )
    tokens = context.get("token_estimate")
    if not isinstance(tokens, int):
        tokens = request.prompt_tokens
    return RequestContext(
        request_id=request.request_id,
        kind=request.kind,
        model="",
        body=body,
        caller=caller,
        prompt_tokens=None if isinstance(logged_body, dict) and logged_body else tokens,
    )


def _account(
    row: PolicyResult,
    request: LoggedRequest,
    plan: list[Deployment] | None,
    answer_tokens: dict[EndpointKind, float],
    latency: dict[str, float],
) -> None:
    row.n += 1
    if plan is None:
        row.unroutable += 1
        row.distribution["(unroutable)"] += 1
        return
    row.distribution[plan[0].name] += 1
    prompt = request.prompt_tokens
    if prompt is None:
        estimate_ = request.context.get("token_estimate")
        prompt = estimate_ if isinstance(estimate_, int) else 0
    answer = request.completion_tokens
    if answer is None:
        answer = round(answer_tokens.get(request.kind, 0.0))
    for deployment in plan:
        cached = request.cached_tokens if deployment.name == request.deployment else 0
        usage = Usage(prompt, answer, cached, images=request.images)
        row.cost_total += cost_of(deployment, usage)
    known = [latency[d.name] for d in plan if d.name in latency]
    if len(known) == len(plan):
        row.latency_total += max(known)
        row.latency_known += 1


def _logged_row(requests: Sequence[LoggedRequest], rewards: list[float | None]) -> PolicyResult:
    row = PolicyResult(LOGGED, reference=True)
    values = []
    for request, value in zip(requests, rewards, strict=True):
        row.n += 1
        row.distribution[request.chosen or "(not routed)"] += 1
        row.cost_total += request.cost or 0.0
        if request.ok and request.latency is not None:
            row.latency_total += request.latency
            row.latency_known += 1
        if value is not None:
            values.append(value)
    row.quality = sum(values) / len(values) if values else None
    row.quality_n = len(values)
    row.agreement = 1.0
    return row


def _quality(
    row: PolicyResult,
    *,
    requests: Sequence[LoggedRequest],
    rewards: list[float | None],
    chosen: list[str | None],
    reward_model: dict[str, float],
    scored: list[tuple[int, Logged]],
) -> None:
    agree = sum(1 for r, c in zip(requests, chosen, strict=True) if c is not None and c == r.chosen)
    row.agreement = agree / len(requests)
    dm = [
        reward_model.get(c) if c is not None else 0.0
        for c, v in zip(chosen, rewards, strict=True)
        if v is not None
    ]
    if dm and all(v is not None for v in dm):
        row.quality = sum(v for v in dm if v is not None) / len(dm)
    row.quality_n = len(dm)
    if scored:
        estimates = estimate(
            [item for _, item in scored],
            [chosen[index] for index, _ in scored],
            reward_model.get,
        )
        row.ips, row.snips, row.dr, row.matched = (
            estimates.ips,
            estimates.snips,
            estimates.dr,
            estimates.matched,
        )


def _log_notes(requests: Sequence[LoggedRequest], reward: str, scored: list[Any]) -> list[str]:
    notes = [
        f"quality = mean {'feedback score' if reward == 'feedback' else 'success (ok=1)'}; "
        "DM: the chosen deployment's mean logged reward; IPS/SNIPS/DR: off-policy estimates "
        f"from {len(scored)} logged decisions with a propensity"
    ]
    unknown = sum(1 for r in requests if r.propensity is None and r.chosen is not None)
    if unknown:
        notes.append(f"{unknown} logged decisions had no propensity (random strategy)")
    if not any(isinstance(r.context.get("request"), dict) for r in requests):
        notes.append(
            "the log holds no prompts (request_log.prompts: false): policies that read the "
            "prompt text saw an empty prompt of the logged length"
        )
    return notes


def load_configs(paths: Sequence[str]) -> list[tuple[str, GatewayConfig]]:
    from polyroute.config import load_config

    configs = []
    for path in paths:
        configs.append((Path(path).stem, load_config(path)))
    return configs
