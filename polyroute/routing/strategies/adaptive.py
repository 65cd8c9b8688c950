"""adaptive: a Thompson-sampling bandit over a route's targets that learns from outcomes
and feedback, optionally per content category, and keeps what it learned across restarts.

::

    routes:
      smart:
        strategy: adaptive
        targets: [gpt-4o, llama-70b]
        reward: {success: 1, feedback: 1, latency: 0.05, cost: 20}
        categories:                       # optional: one posterior per category
          code: {examples: ["fix this python bug", "write a SQL query"]}
          chat: {data: data/chat.jsonl}
        state_file: /var/lib/polyroute/smart.json   # default: see below

**Reward.** Every observation is a reward r in [0, 1] and a weight w (how many
observations it counts for):

- an *outcome* (the request ended) has weight `reward.success` and
  r = clamp(q - latency x seconds - cost x USD, 0, 1), where q = 1 when the chosen target
  answered and 0 when it failed (5xx, 429, timeout, a broken stream, or a fallback had
  to answer instead); client errors (other 4xx) teach nothing. Seconds are the time to
  the first chunk for streams and the whole latency otherwise; USD is the outcome's cost.
- a *feedback* (POST /v1/feedback, score s in [0, 1]) has weight `reward.feedback` and
  r = clamp(s - the same penalties of that request, 0, 1). It goes to the target that
  answered, counts once per request, and is kept for the last 100,000 requests.

So ``{success: 0, feedback: 1, cost: 100}`` learns "quality minus cost, where a correct
answer is worth $0.01", and ``{success: 1, feedback: 0, latency: 0.1}`` learns
"answers, minus 0.1 per second". The penalties are clipped at 0: a failure is worth 0
whatever it cost.

**Posterior.** Each target has Beta(prior.alpha + S, prior.beta + F) where S and F are the
discounted sums of w·r and w·(1 - r): a fractional Beta update. (The alternative, the
"Bernoulli trick" of Agrawal & Goyal, draws a 0/1 reward with probability r and updates
with that; it has the same mean but adds noise and makes the state depend on random
draws.) The fractional update keeps the mean exact (the average reward) and its width is
conservative: a reward in [0, 1] with mean m has variance at most m(1 - m), the Bernoulli
variance the Beta assumes, so the bandit never believes itself surer than it is.
`discount` (g, default 1) multiplies a context's counts by g before each update, so a
target whose quality changes is re-learned within about 1 / (1 - g) observations (e.g.
0.999: ~1,000).

**Choice.** Per request, one draw from each candidate's posterior; the highest draw is
chosen (Thompson sampling), the others follow as fallbacks by posterior mean. With
probability `explore` a uniformly random candidate is chosen instead, and until every
candidate has `min_samples` outcomes the least-tried one is chosen (both default 0:
Thompson sampling explores by itself).

**Categories** (optional) classify the last user turn with the built-in classifier, as the
content strategy does (`examples` and/or a labelled `data` file with `label`, default the
category's name). Each category has its own posterior, whose prior is the route-wide one
(which learns from every request) at a strength of at most `category_prior`
observations: a new category starts from what the route already knows and moves away
with its own evidence. A prediction whose confidence is below `category_threshold`
(default 0: always use the category) uses the route-wide posterior.

**Signals** (shown by POST /v1/route, `polyroute route` and the x-polyroute-arm header):
`arm` (the chosen target), `context` (the category whose posterior was used, ``*`` for the
route-wide one), `category` and `confidence`, `sampled` (the winner's draw), `estimate`
(per candidate: posterior `mean` and `n`, the outcomes it was chosen for) and `explored`
(``explore``, ``min_samples`` or false). The chosen target is also reported as the route's
A/B arm, so GET /admin/experiments shows per-target results.

**State** persists in `state_file`, default ``<state dir>/adaptive-<route>.json`` with the
state dir ``$POLYROUTE_STATE_DIR``, else ``$XDG_STATE_HOME/polyroute``, else
``~/.local/state/polyroute``. It is loaded when the gateway starts, saved every
`save_every` seconds when something changed, and on shutdown (see polyroute.state.bandit:
atomic writes, and several workers merge into one file). With ``state.backend: redis``
the state lives in Redis instead, shared by every worker and instance and synced about once
a second (polyroute.state.redis_bandit); it lasts as long as Redis keeps its data.
``persist: false`` keeps it in memory only. Offline commands (`polyroute route`) read
nothing and show the prior.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.outcomes import Feedback, Outcome
from polyroute.routing.classify import TextClassifier, load_or_train
from polyroute.routing.classify.data import category_examples
from polyroute.routing.policy import Policy
from polyroute.routing.strategies.adaptive_options import (
    GLOBAL,
    AdaptiveOptions,
    BanditCategory,
)
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy
from polyroute.routing.target import Target
from polyroute.state.bandit import (
    BanditFile,
    BanditState,
    MemoryBanditState,
    Snapshot,
    add_difference,
    state_dir,
)
from polyroute.state.redis_bandit import RedisBanditStore

log = logging.getLogger("polyroute.routing")

if TYPE_CHECKING:
    from polyroute.state.redis_conn import RedisConnection

REMEMBER = 100_000
PROPENSITY_DRAWS = 64
REDIS_SYNC_INTERVAL = 1.0
"""Seconds between syncs of the counts with Redis (`state.backend: redis`)."""
"""Recent requests kept for feedback."""


Estimate = tuple[float, float, int]
"""A posterior: (alpha, beta, n)."""


class AdaptiveStrategy(Strategy):
    name = "adaptive"
    Options = AdaptiveOptions

    def __init__(self, options: AdaptiveOptions, resolve: Resolve) -> None:
        self.options = options
        self._targets = [resolve(name, ("targets", i)) for i, name in enumerate(options.targets)]
        self.arms = tuple(options.targets)
        self.state: BanditState = MemoryBanditState()
        self.random = random.Random(options.seed)
        self.classifier: TextClassifier | None = None
        if options.categories is not None:
            self.classifier = load_or_train(_examples(options.categories))
        self.learner = BanditLearner(self)

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    # --- per request --------------------------------------------------------------------

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        arms = [t for t in candidates if t.name in self.arms]
        if not arms:
            return Ranking([])
        signals: dict[str, Any] = {}
        context = GLOBAL
        if self.classifier is not None:
            label, confidence = self.classifier.predict(
                ctx.last_user_text[: self.options.max_chars]
            )
            signals["category"], signals["confidence"] = label, round(confidence, 3)
            if confidence >= self.options.category_threshold:
                context = label
        posteriors = {t.name: self.posterior(t.name, context) for t in arms}
        chosen, sampled, explored = self._choose(arms, posteriors)
        propensity = self._propensity(arms, posteriors, chosen, explored)
        rest = sorted(
            (t for t in arms if t is not chosen),
            key=lambda t: _mean(posteriors[t.name]),
            reverse=True,
        )
        signals.update(
            arm=chosen.name,
            context=context,
            sampled=None if sampled is None else round(sampled, 4),
            estimate={
                name: {"mean": round(_mean(post), 4), "n": post[2]}
                for name, post in posteriors.items()
            },
            explored=explored,
            propensity=propensity,
        )
        return Ranking([chosen, *rest], signals)

    def _propensity(
        self,
        arms: list[Target],
        posteriors: dict[str, Estimate],
        chosen: Target,
        explored: Literal["explore", "min_samples", False],
    ) -> float:
        """The probability of choosing `chosen` (for offline replay's IPS): Thompson
        sampling's share estimated from PROPENSITY_DRAWS joint draws, mixed with `explore`."""
        if explored == "min_samples":
            tried = {t.name: self._outcomes(t.name) for t in arms}
            fewest = min(tried.values())
            return round(1.0 / sum(1 for t in arms if tried[t.name] == fewest), 4)
        alphas = np.array([posteriors[t.name][0] for t in arms])
        betas = np.array([posteriors[t.name][1] for t in arms])
        rng = np.random.default_rng(self.random.getrandbits(64))
        wins = rng.beta(alphas, betas, size=(PROPENSITY_DRAWS, len(arms))).argmax(axis=1)
        index = arms.index(chosen)
        share = max(float(np.mean(wins == index)), 0.5 / PROPENSITY_DRAWS)
        explore = self.options.explore
        return round(explore / len(arms) + (1.0 - explore) * share, 4)

    def _choose(
        self, arms: list[Target], posteriors: dict[str, Estimate]
    ) -> tuple[Target, float | None, Literal["explore", "min_samples", False]]:
        draw = self.random
        minimum = self.options.min_samples
        if minimum:
            tried = {t.name: self._outcomes(t.name) for t in arms}
            fewest = min(tried.values())
            if fewest < minimum:
                least = [t for t in arms if tried[t.name] == fewest]
                return least[draw.randrange(len(least))], None, "min_samples"
        if self.options.explore and draw.random() < self.options.explore:
            return arms[draw.randrange(len(arms))], None, "explore"
        best, best_draw = arms[0], -1.0
        for target in arms:
            alpha, beta, _ = posteriors[target.name]
            value = draw.betavariate(alpha, beta)
            if value > best_draw:
                best, best_draw = target, value
        return best, best_draw, False

    def posterior(self, arm: str, context: str = GLOBAL) -> Estimate:
        """Beta(alpha, beta) of `arm` in `context` and the outcomes behind it (module doc)."""
        prior = self.options.prior
        counts = self.state.counts(GLOBAL).get(arm)
        alpha, beta, n = prior.alpha, prior.beta, 0
        if counts is not None:
            alpha, beta, n = alpha + counts.successes, beta + counts.failures, counts.n
        if context == GLOBAL:
            return alpha, beta, n
        strength = min(self.options.category_prior, alpha + beta)
        mean = alpha / (alpha + beta)
        alpha, beta, n = strength * mean, strength * (1 - mean), 0
        own = self.state.counts(context).get(arm)
        if own is not None:
            alpha, beta, n = alpha + own.successes, beta + own.failures, own.n
        return alpha, beta, n

    def _outcomes(self, arm: str) -> int:
        counts = self.state.counts(GLOBAL).get(arm)
        return 0 if counts is None else counts.n


class BanditLearner:
    """The adaptive strategy's outcome observer and persistence (polyroute.state.Learner)."""

    def __init__(self, strategy: AdaptiveStrategy) -> None:
        self.strategy = strategy
        self.options = strategy.options
        self.route: str | None = None
        self.file: BanditFile | None = None
        self._serves: dict[str, frozenset[str]] = {}
        self._recent: OrderedDict[str, _Served] = OrderedDict()
        self._lock = threading.Lock()  # updates vs. a save running in a worker thread
        self._saving = threading.Lock()
        self._baseline: Snapshot = {}
        self._dirty = False
        self.remote: RedisBanditStore | None = None

    def bind(self, route: str, redis: RedisConnection | None = None) -> None:
        self.route = route
        self._serves = {
            target.name: frozenset(_deployments(target)) for target in self.strategy.targets
        }
        if not self.options.persist:
            return
        if redis is not None:  # shared by every worker and instance; lives as long as Redis
            self.remote = RedisBanditStore(redis, route)
            return
        path = self.options.state_file or state_dir() / f"adaptive-{route}.json"
        self.file = BanditFile(Path(path), route)
        loaded = self.file.load()
        with self._lock:
            self.strategy.state.replace(loaded)
            self._baseline = loaded
        if loaded:
            log.info("route %s: bandit state loaded from %s", route, path)

    # --- learning -----------------------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        decision = outcome.decision
        if decision is None or self.route is None:
            return
        signals = decision.signals.get(self.route)
        if not signals or signals.get("strategy") != AdaptiveStrategy.name:
            return
        chosen = signals.get("arm")
        if chosen not in self._serves:
            return
        served = self._served_by(outcome, chosen)
        if outcome.ok:
            answered = served == chosen
        elif outcome.deployment is None or not _arm_fault(outcome.status):
            return  # the client's mistake, or nothing was called: nothing to learn
        else:
            answered = False
        context = str(signals.get("context", GLOBAL))
        penalty = self._penalty(outcome)
        reward = _clamp(1.0 - penalty) if answered else 0.0
        self._update(context, chosen, reward, self.options.reward.success, "outcome")
        if outcome.ok and served is not None:
            self._recent[outcome.request_id] = _Served(context, served, penalty)
            if len(self._recent) > REMEMBER:
                self._recent.popitem(last=False)

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        served = self._recent.get(feedback.request_id)
        if served is None:
            return None
        reward = _clamp(feedback.score - served.penalty)
        counted = not served.counted
        if counted:
            served.counted = True
            self._update(
                served.context, served.arm, reward, self.options.reward.feedback, "feedback"
            )
        alpha, beta, n = self.strategy.posterior(served.arm, served.context)
        return {
            "adaptive": {
                "route": self.route,
                "arm": served.arm,
                "context": served.context,
                "reward": round(reward, 4),
                "counted": counted,
                "estimate": {"mean": round(alpha / (alpha + beta), 4), "n": n},
            }
        }

    def _update(self, context: str, arm: str, reward: float, weight: float, kind: str) -> None:
        discount = self.options.discount if weight > 0 else 1.0
        state = self.strategy.state
        with self._lock:
            state.update(GLOBAL, arm, reward, weight, discount=discount, kind=kind)
            if context != GLOBAL:
                state.update(context, arm, reward, weight, discount=discount, kind=kind)
            self._dirty = True

    def _served_by(self, outcome: Outcome, chosen: str) -> str | None:
        """The arm whose deployments include the one that answered (the chosen one first)."""
        deployment = outcome.deployment
        if deployment is None:
            return None
        if deployment.name in self._serves[chosen]:
            return chosen
        for arm, names in self._serves.items():
            if deployment.name in names:
                return arm
        return None

    def _penalty(self, outcome: Outcome) -> float:
        weights = self.options.reward
        penalty = 0.0
        if weights.latency:
            seconds = outcome.ttft if outcome.ttft is not None else outcome.latency
            penalty += weights.latency * seconds
        if weights.cost and outcome.cost is not None:
            penalty += weights.cost * outcome.cost
        return penalty

    # --- persistence --------------------------------------------------------------------

    async def persist_periodically(self) -> None:
        if self.remote is not None:
            while True:
                await self.sync()
                await asyncio.sleep(REDIS_SYNC_INTERVAL)
        if self.file is None:
            return
        while True:
            await asyncio.sleep(self.options.save_every)
            if self._dirty:
                await asyncio.to_thread(self.save)

    async def flush(self) -> None:
        if self.remote is not None:
            await self.sync()
        elif self.file is not None:
            await asyncio.to_thread(self.save)

    async def sync(self) -> None:
        """Add what was learned here to Redis and adopt the totals (see redis_bandit)."""
        assert self.remote is not None
        with self._lock:
            current = self.strategy.state.snapshot()
            baseline = self._baseline
        merged = await self.remote.merge(current, baseline)
        if merged is None:
            return  # Redis unreachable: keep learning locally, add it all next time
        with self._lock:
            now = self.strategy.state.snapshot()
            self.strategy.state.replace(add_difference(merged, now, current))
            self._baseline = merged

    def save(self) -> None:
        """Merge what was learned since the last save into the file (module doc)."""
        if self.file is None:
            return
        with self._saving:
            with self._lock:
                current = self.strategy.state.snapshot()
                baseline = self._baseline
                self._dirty = False
            try:
                merged = self.file.merge_save(current, baseline)
            except OSError as exc:
                log.warning(
                    "route %s: cannot save bandit state to %s (%s)", self.route, self.file.path, exc
                )
                self._dirty = True
                return
            with self._lock:
                # adopt the merged file plus whatever arrived while it was being written
                now = self.strategy.state.snapshot()
                self.strategy.state.replace(add_difference(merged, now, current))
                self._baseline = merged


class _Served:
    """A recent request, for its feedback: where its outcome went and its penalty."""

    __slots__ = ("arm", "context", "counted", "penalty")

    def __init__(self, context: str, arm: str, penalty: float) -> None:
        self.context = context
        self.arm = arm
        self.penalty = penalty
        self.counted = False


def _arm_fault(status: int) -> bool:
    """A failure the chosen target answers for (server errors, rate limits, timeouts)."""
    return status >= 500 or status == 429


def _clamp(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def _mean(posterior: Estimate) -> float:
    return posterior[0] / (posterior[0] + posterior[1])


def _deployments(target: Target, seen: set[int] | None = None) -> set[str]:
    """Every deployment a target may answer with (a route's targets, fallbacks, degraded)."""
    if isinstance(target, Deployment):
        return {target.name}
    seen = seen if seen is not None else set()
    if id(target) in seen:
        return set()
    seen.add(id(target))
    if not isinstance(target, Policy):
        return set()
    found: set[str] = set()
    inner: list[Target] = list(target.strategy.targets)
    for targets in target.resilience.fallbacks.values():
        inner.extend(targets)
    if target.resilience.degraded is not None:
        inner.append(target.resilience.degraded)
    for each in inner:
        found |= _deployments(each, seen)
    return found


def _examples(categories: dict[str, BanditCategory]) -> list[tuple[str, str]]:
    return category_examples(categories)
