"""ab: a weighted split between arms, sticky per user (or API key) by a stable hash.

The same user lands in the same arm on every request and on every worker, because the
arm is a pure function of (the arms' names, the user id): no state to share. Requests
with no user and no key are split at random. The chosen arm is reported in the signals,
the `x-polyroute-arm` header and the experiment statistics (GET /admin/experiments).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from polyroute.context import RequestContext
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class ArmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    target: str
    weight: float = Field(1.0, gt=0)


class ABOptions(StrategyOptions):
    arms: list[ArmSpec] = Field(min_length=2)
    sticky: Literal["user", "key", "none"] = Field(
        "user", description="user: the request's user, else the API key; key: the API key"
    )

    @field_validator("arms")
    @classmethod
    def _distinct(cls, arms: list[ArmSpec]) -> list[ArmSpec]:
        if len({arm.name for arm in arms}) != len(arms):
            raise ValueError("arm names must be distinct")
        return arms


class ABStrategy(Strategy):
    name = "ab"
    Options = ABOptions

    def __init__(self, options: ABOptions, resolve: Resolve) -> None:
        self._arms = [
            (arm.name, resolve(arm.target, ("arms", i, "target")), arm.weight)
            for i, arm in enumerate(options.arms)
        ]
        self._salt = ("|".join(arm.name for arm in options.arms) + ":").encode()
        self._sticky = options.sticky
        self._targets = list(dict.fromkeys(target for _, target, _ in self._arms))
        self._random = random.Random()

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        arms = [arm for arm in self._arms if arm[1] in candidates]
        if not arms:
            return Ranking([])
        unit, sticky_by = self._position(ctx)
        total = sum(weight for _, _, weight in arms)
        point = unit * total
        chosen = arms[-1]
        for arm in arms:
            point -= arm[2]
            if point < 0:
                chosen = arm
                break
        others = [target for _, target, _ in arms if target is not chosen[1]]
        # the arm's share of the split: its probability for a request drawn at random
        # (per user it is fixed; across users the hash spreads them by weight)
        propensity = round(chosen[2] / total, 4)
        signals = {"arm": chosen[0], "sticky_by": sticky_by, "propensity": propensity}
        return Ranking([chosen[1], *dict.fromkeys(others)], signals)

    def _position(self, ctx: RequestContext) -> tuple[float, str | None]:
        """A number in [0, 1): stable for the sticky id, random without one."""
        identity, sticky_by = None, None
        if self._sticky == "user" and ctx.user:
            identity, sticky_by = ctx.user, "user"
        elif self._sticky in ("user", "key") and ctx.caller.key_id:
            identity, sticky_by = ctx.caller.key_id, "key"
        if identity is None:
            return self._random.random(), None
        digest = hashlib.sha256(self._salt + identity.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64, sticky_by
