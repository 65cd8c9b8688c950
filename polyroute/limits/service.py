"""Limits: admission and settlement of every proxied request.

The request path calls `admit` once the request is routed (the budget check needs the
decision: it reserves the estimated cost of the plan's most expensive deployment), and
`finish` exactly once when the request is over, whatever way it ends. In between, the
request's `Outcome` (an observer) tells the real tokens and cost, so `finish` settles the
reservations to them; without an outcome (the client left before the answer) the
reservations stand as the charge. Parallel slots are freed in both cases.

Scopes (every one that applies is checked, in one atomic step):

- ``key:<id>``: the API key's own `rpm`, `tpm`, `max_parallel`, `budget`;
- ``user:<name>``: `limits.per_user`, for the body's OpenAI `user` field, else the key's
  `user` (a client can choose its `user` value: per-user limits divide one key's traffic
  among its end users, they do not protect one key from another);
- ``model:<name>``: `limits.per_model[name]` for the model the request names, every route
  it passes through and the first deployment of its plan (a fallback deployment is not
  charged again);
- ``global``: `limits.global`, all requests together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from polyroute.config.schema import GatewayConfig, LimitsConfig
from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.kinds import EndpointKind
from polyroute.limits.base import Limiter
from polyroute.limits.checks import BUDGET, PARALLEL, REQUESTS, TOKENS, Check, Demand, Verdict
from polyroute.limits.headers import rate_headers, refusal
from polyroute.limits.periods import period_id, wall_now
from polyroute.outcomes import Feedback, Outcome
from polyroute.routing.decision import Decision
from polyroute.routing.pricing import estimate_cost

log = logging.getLogger("polyroute.limits")
_MAX_NAME = 128


MAX_SPEND_VIEWS = 100_000


class _Spec(Protocol):
    """Limits of one scope (KeyLimits and ScopeLimitsConfig both fit)."""

    @property
    def rpm(self) -> int | None: ...
    @property
    def tpm(self) -> int | None: ...
    @property
    def max_parallel(self) -> int | None: ...
    @property
    def budget(self) -> float | None: ...
    @property
    def budget_period(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Plan:
    """The checks one caller's requests make: those asking one unit (built once), the
    token scopes (their amount is each request's estimate) and the budget scopes."""

    units: tuple[Check, ...]
    tokens: tuple[tuple[str, str, int], ...]
    """(scope, state key, tokens per minute)"""
    budgets: tuple[tuple[str, float, str], ...]
    """(scope, USD per period, period)"""


@dataclass(slots=True, init=False)
class Ticket:
    """One admitted request, until it is settled."""

    demand: Demand
    verdict: Verdict
    headers: dict[str, str]
    """The ``x-ratelimit-*`` headers of its answer."""
    tokens: int | None
    """Real tokens, from the outcome (None: no outcome came)."""
    cost: float
    finished: bool

    def __init__(  # compiled (see polyroute.outcomes.Usage)
        self, demand: Demand, verdict: Verdict, headers: dict[str, str]
    ) -> None:
        self.demand = demand
        self.verdict = verdict
        self.headers = headers
        self.tokens = None
        self.cost = 0.0
        self.finished = False


class Limits:
    """The gateway's limits, over a `Limiter` (memory or Redis)."""

    def __init__(self, config: LimitsConfig, limiter: Limiter, *, lease: float = 630.0) -> None:
        self.config = config
        self.limiter = limiter
        self._decide_now = getattr(limiter, "decide", None)  # MemoryLimiter: synchronous
        self._global = None if config.global_.empty else config.global_
        self._per_user = None if config.per_user.empty else config.per_user
        self._per_model = {name: spec for name, spec in config.per_model.items() if not spec.empty}
        self._expected_output = config.expected_output_tokens
        self._lease = lease
        self._open: dict[str, Ticket] = {}
        self._spent_of = getattr(limiter, "spent", None)  # MemoryLimiter: exact, settled
        self._spent_seen: dict[str, float] = {}  # budget key -> spend last reported
        self._unit_checks: dict[tuple[str, str, int], Check] = {}
        self._plans: dict[str | None, tuple[object, _Plan | None]] = {}
        self.admitted = 0
        self.refused = 0
        self.settled = 0

    @classmethod
    def from_config(
        cls, config: GatewayConfig, limiter: Limiter, models: Collection[str], *, lease: float
    ) -> Limits:
        """`config.limits` over `limiter`; `models` are the route and deployment names that
        `per_model` may use (ConfigError for any other)."""
        from polyroute.config.errors import ConfigProblem

        unknown = [name for name in config.limits.per_model if name not in models]
        if unknown:
            raise config.error(
                [
                    ConfigProblem(("limits", "per_model", name), "names no route or deployment")
                    for name in unknown
                ]
            )
        return cls(config.limits, limiter, lease=lease)

    # -- the request path -------------------------------------------------------------

    async def admit(self, ctx: RequestContext, decision: Decision) -> Ticket | None:
        """Check and reserve; None when no limit applies to this request. Raises
        RateLimited (429, with `retry-after` and ``x-ratelimit-*``) when one refuses."""
        demand = self.demand(ctx, decision)
        if demand is None:
            return None
        decide_now = self._decide_now  # in-process: no await, no task
        verdict = decide_now(demand) if decide_now is not None else await self.limiter.admit(demand)
        if verdict.spent:
            if len(self._spent_seen) > MAX_SPEND_VIEWS:  # user scopes are unbounded
                self._spent_seen.clear()
            self._spent_seen.update(verdict.spent)
        if not verdict.allowed:
            self.refused += 1
            raise refusal(demand, verdict)
        self.admitted += 1
        ticket = Ticket(demand, verdict, rate_headers(demand, verdict))
        self._open[demand.request_id] = ticket
        return ticket

    def finish(self, ticket: Ticket) -> None:
        """Settle `ticket` (once; later calls do nothing) without waiting for Redis."""
        if ticket.finished:
            return
        ticket.finished = True
        self._open.pop(ticket.demand.request_id, None)
        self.settled += 1
        demand, verdict = ticket.demand, ticket.verdict
        if ticket.tokens is None:
            self.limiter.release(demand, verdict)
        else:
            self.limiter.settle(demand, verdict, ticket.tokens, ticket.cost)

    # -- Observer ---------------------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        ticket = self._open.get(outcome.request_id)
        if ticket is None:
            return
        usage = outcome.usage
        ticket.tokens = usage.total_tokens if usage is not None else 0
        ticket.cost = outcome.cost or 0.0

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None

    # -- building a demand ------------------------------------------------------------

    def demand(self, ctx: RequestContext, decision: Decision) -> Demand | None:
        """What `ctx` asks of every scope that limits it; None when none does."""
        plan = self._plan(ctx, decision)
        if plan is None:
            return None
        checks = list(plan.units)
        tokens: int | None = None
        cost: float | None = None
        if plan.tokens:
            tokens = self.token_estimate(ctx, decision)
            for scope, key, limit in plan.tokens:
                checks.append(Check(TOKENS, scope, key, limit, tokens))
        if plan.budgets:
            cost = self.cost_estimate(ctx, decision)
            wall = wall_now()
            for scope, budget, period in plan.budgets:
                key = f"sp:{scope}:{period_id(period, wall)}"
                checks.append(Check(BUDGET, scope, key, budget, cost, period))
        return Demand(ctx.request_id, checks, tokens or 0, cost or 0.0, self._lease)

    def _plan(self, ctx: RequestContext, decision: Decision) -> _Plan | None:
        """The checks of the scopes that limit `ctx`. Without per-user or per-model limits
        they depend only on the caller's key, so they are kept per key (and its limits,
        which a key change replaces) instead of rebuilt every request."""
        if self._per_user is not None or self._per_model:
            return self._build_plan(self._scopes(ctx, decision))
        limits = ctx.caller.limits
        key_id = ctx.caller.key_id
        kept = self._plans.get(key_id)
        if kept is not None and kept[0] is limits:
            return kept[1]
        plan = self._build_plan(self._scopes(ctx, decision))
        if len(self._plans) > MAX_SPEND_VIEWS:
            self._plans.clear()
        self._plans[key_id] = (limits, plan)
        return plan

    def _build_plan(self, scopes: list[tuple[str, _Spec]]) -> _Plan | None:
        units: list[Check] = []
        tokens: list[tuple[str, str, int]] = []
        budgets: list[tuple[str, float, str]] = []
        for scope, spec in scopes:
            if spec.rpm is not None:
                units.append(self._unit_check(REQUESTS, scope, spec.rpm))
            if spec.tpm is not None:
                tokens.append((scope, "tk:" + scope, spec.tpm))
            if spec.max_parallel is not None:
                units.append(self._unit_check(PARALLEL, scope, spec.max_parallel))
            if spec.budget is not None:
                budgets.append((scope, spec.budget, spec.budget_period))
        if not (units or tokens or budgets):
            return None
        return _Plan(tuple(units), tuple(tokens), tuple(budgets))

    def _unit_check(self, dim: str, scope: str, limit: int) -> Check:
        """The check for one request or one slot of `scope`: the same every time, so it is
        built once (per limit: a key's limits can change) instead of per request."""
        cache_key = (dim, scope, limit)
        check = self._unit_checks.get(cache_key)
        if check is None:
            if len(self._unit_checks) > MAX_SPEND_VIEWS:  # user scopes are unbounded
                self._unit_checks.clear()
            prefix = "rq:" if dim == REQUESTS else "pl:"
            check = self._unit_checks[cache_key] = Check(dim, scope, prefix + scope, limit, 1)
        return check

    def budget_left(self, ctx: RequestContext) -> float | None:
        """USD the caller's key and user budgets still allow, as far as this process has
        seen (the spend each admission reported: exact in one process, at most one
        admission old per process with Redis); None without such budgets."""
        left: float | None = None
        wall: float | None = None
        for scope, spec in self._caller_scopes(ctx):
            if spec.budget is None:
                continue
            wall = wall if wall is not None else wall_now()
            key = f"sp:{scope}:{period_id(spec.budget_period, wall)}"
            spent = self._spent_of(key) if self._spent_of else self._spent_seen.get(key, 0.0)
            own = spec.budget - spent
            left = own if left is None else min(left, own)
        return left

    def _caller_scopes(self, ctx: RequestContext) -> list[tuple[str, _Spec]]:
        scopes: list[tuple[str, _Spec]] = []
        caller = ctx.caller
        if caller.key_id is not None:
            scopes.append(("key:" + caller.key_id, caller.limits))
        if self._per_user is not None:
            user = ctx.user
            if user:
                scopes.append(("user:" + _name(user), self._per_user))
        return scopes

    def _scopes(self, ctx: RequestContext, decision: Decision) -> list[tuple[str, _Spec]]:
        scopes = self._caller_scopes(ctx)
        if self._per_model:
            for name in _model_names(ctx, decision):
                spec = self._per_model.get(name)
                if spec is not None:
                    scopes.append(("model:" + name, spec))
        if self._global is not None:
            scopes.append(("global", self._global))
        return scopes

    def token_estimate(self, ctx: RequestContext, decision: Decision) -> int:
        """Tokens reserved: the prompt estimate plus `max_tokens` (or
        `max_completion_tokens`, times `n`), else the expected answer length; for an
        ensemble, once per member."""
        if ctx.kind is EndpointKind.IMAGE:
            return 0
        output = 0
        if ctx.kind is not EndpointKind.EMBEDDING:
            body = ctx.body
            cap = body.get("max_completion_tokens") or body.get("max_tokens")
            output = cap if isinstance(cap, int) and cap > 0 else self._expected_output
            n = body.get("n")
            if isinstance(n, int) and n > 1:
                output *= n
        members = len(decision.plan) if decision.fan_out is not None else 1
        return (ctx.token_estimate + output) * members

    def cost_estimate(self, ctx: RequestContext, decision: Decision) -> float:
        """USD reserved: the most expensive deployment the request may end on (plan and
        fallbacks), or, for an ensemble, every member plus its judge."""
        expected = self._expected_output
        if decision.fan_out is not None:
            total = sum(estimate_cost(ctx, d, expected) for d in decision.plan)
            judge = decision.fan_out.judge
            return total + (estimate_cost(ctx, judge, expected) if judge is not None else 0.0)
        costs = [estimate_cost(ctx, d, expected) for d in decision.plan]
        for targets in decision.fallbacks.values():
            costs.extend(estimate_cost(ctx, t, expected) for t in targets)
        return max(costs, default=0.0)

    # -- internals --------------------------------------------------------------------

    def snapshot(self) -> dict[str, int]:
        return {
            "admitted": self.admitted,
            "refused": self.refused,
            "settled": self.settled,
            "open": len(self._open),
        }

    async def aclose(self) -> None:
        """Wait for settlements still on their way to Redis."""
        try:
            await asyncio.wait_for(self.limiter.flush(), 5)
        except TimeoutError:
            log.warning("limits: settlements still unwritten at shutdown")
        await self.limiter.aclose()


def _model_names(ctx: RequestContext, decision: Decision) -> list[str]:
    names = [ctx.model, decision.route, *decision.path]
    if decision.plan:
        first: Deployment = decision.plan[0]
        names.append(first.name)
    return list(dict.fromkeys(name for name in names if name))


def _name(user: str) -> str:
    """A user name as a key part: long ones are hashed (the body's `user` is free text)."""
    if len(user) <= _MAX_NAME:
        return user
    return "sha256:" + hashlib.sha256(user.encode("utf-8")).hexdigest()
