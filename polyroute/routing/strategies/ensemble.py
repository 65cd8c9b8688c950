"""ensemble: send one request to several models at once and answer with an aggregate.

::

    routes:
      panel:
        strategy: ensemble
        members: [gpt, claude, qwen]     # deployments or routes (a route adds its choice)
        aggregator: majority             # first_success | fastest | majority | judge | merge
        extract: "answer is ([A-D])"     # majority: vote on this part of each answer
        min_success: 2                   # fewer successful answers: the request fails

Aggregators (the fan-out itself is polyroute.execution.ensemble):

- ``first_success``: the answer of the first member, in the listed order, that succeeds:
  a hedge that keeps a preference order (later members answer only if earlier ones fail).
- ``fastest``: the first successful answer; the other calls are cancelled.
- ``majority``: the answer most members agree on, after normalizing (case, spacing,
  trailing punctuation) or extracting with `extract`; ties go to the earlier member.
- ``judge``: a `judge` deployment reads the question and the numbered answers and names
  the best; its tokens and cost are part of the request's.
- ``merge``: every answer, as the choices of one response (``choices[i]``, one per member).

Usage in the response is the sum over every member that answered (and the judge), and so
is the request's cost. Streaming: ``fastest`` races the members' streams and forwards the
first one to produce a token; every other aggregator needs whole answers, so the stream is
the aggregated answer sent as SSE events once it is known.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.kinds import TEXT_KINDS
from polyroute.routing.decision import FanOut
from polyroute.routing.policy import Policy
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target

Aggregator = Literal["first_success", "fastest", "majority", "judge", "merge"]


class EnsembleOptions(StrategyOptions):
    members: list[str] = Field(min_length=2, description="deployments or routes called at once")
    aggregator: Aggregator = "first_success"
    judge: str | None = Field(None, description="judge: the deployment that picks the answer")
    extract: str | None = Field(None, description="majority: regex; group 1 is voted on")
    min_success: int = Field(1, ge=1, description="successful answers needed")

    @field_validator("members")
    @classmethod
    def _distinct(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError("members must be distinct")
        return members

    @field_validator("extract")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
            if compiled.groups < 1:
                raise ValueError("needs a group: the part of the answer that is voted on")
        return pattern


class EnsembleStrategy(Strategy):
    name = "ensemble"
    Options = EnsembleOptions

    def __init__(self, options: EnsembleOptions, resolve: Resolve) -> None:
        self._members = [resolve(name, ("members", i)) for i, name in enumerate(options.members)]
        judge: Deployment | None = None
        if options.aggregator == "judge":
            if options.judge is None:
                raise ValueError("judge: the judge aggregator needs a `judge` deployment")
            found = resolve(options.judge, ("judge",))
            if isinstance(found, Policy):
                raise ValueError("judge: must name a deployment, not a route")
            if isinstance(found, Deployment):
                judge = found
        elif options.judge is not None:
            raise ValueError("judge: only the judge aggregator uses a judge")
        if options.extract is not None and options.aggregator != "majority":
            raise ValueError("extract: only the majority aggregator uses `extract`")
        if options.min_success > len(options.members):
            raise ValueError("min_success: more than there are members")
        self._plan = FanOut(options.aggregator, judge, options.extract, options.min_success)
        self._signals = {"aggregator": options.aggregator}

    @property
    def targets(self) -> Sequence[Target]:
        return self._members

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        if ctx.kind not in TEXT_KINDS:
            return Ranking([])  # answers can only be compared as text
        return Ranking(list(candidates), dict(self._signals), fan_out=self._plan)
