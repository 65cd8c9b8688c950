"""The `adaptive` strategy's options: targets, the reward, the prior and the optional
categories, validated when the config loads (the strategy itself is in
polyroute.routing.strategies.adaptive)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polyroute.routing.strategies.base import StrategyOptions

GLOBAL = "*"
"""The route-wide context."""


class RewardWeights(BaseModel):
    """How outcomes and feedback become a reward in [0, 1] (see
    polyroute.routing.strategies.adaptive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    success: float = Field(1.0, ge=0, description="observations an outcome counts for")
    feedback: float = Field(1.0, ge=0, description="observations a feedback score counts for")
    latency: float = Field(0.0, ge=0, description="reward lost per second of latency")
    cost: float = Field(0.0, ge=0, description="reward lost per USD of cost")

    @model_validator(mode="after")
    def _learns_something(self) -> RewardWeights:
        if self.success == 0 and self.feedback == 0:
            raise ValueError("success and feedback are both 0: the bandit would never learn")
        return self


class Prior(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(1.0, gt=0, description="pseudo-successes before any evidence")
    beta: float = Field(1.0, gt=0, description="pseudo-failures before any evidence")


class BanditCategory(BaseModel):
    """A category of prompts with a posterior of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: list[str] = Field(default_factory=list, description="example prompts")
    data: str | None = Field(None, description="labelled data file (.jsonl, .json or .csv)")
    label: str | None = Field(None, description="the label to take from `data` (default: name)")


class AdaptiveOptions(StrategyOptions):
    targets: list[str] = Field(min_length=2, description="deployments or routes to learn over")
    reward: RewardWeights = Field(default_factory=RewardWeights)
    prior: Prior = Field(default_factory=Prior)
    explore: float = Field(0.0, ge=0, le=1, description="share of requests sent at random")
    min_samples: int = Field(0, ge=0, description="outcomes each target gets before sampling")
    discount: float = Field(1.0, gt=0, le=1, description="decay per observation (1: none)")
    categories: dict[str, BanditCategory] | None = Field(
        None, description="optional: a posterior per category of the last user turn"
    )
    category_threshold: float = Field(0.0, ge=0, le=1, description="below: route-wide")
    category_prior: float = Field(10.0, gt=0, description="strength of the route-wide prior")
    max_chars: int = Field(2000, gt=0, description="longest text classified")
    persist: bool = True
    state_file: str | None = Field(None, description="default: <state dir>/adaptive-<route>.json")
    save_every: float = Field(60.0, gt=0, description="seconds between saves")
    seed: int | None = Field(None, description="fixes the random draws (tests, replays)")

    @field_validator("targets")
    @classmethod
    def _distinct(cls, targets: list[str]) -> list[str]:
        if len(set(targets)) != len(targets):
            raise ValueError("targets must be distinct")
        return targets

    @field_validator("categories")
    @classmethod
    def _classifiable(
        cls, value: dict[str, BanditCategory] | None
    ) -> dict[str, BanditCategory] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError("the classifier needs at least two categories")
        if GLOBAL in value:
            raise ValueError(f"{GLOBAL!r} names the route-wide posterior; rename the category")
        empty = [name for name, spec in value.items() if not spec.examples and not spec.data]
        if empty:
            raise ValueError(f"categories {empty} need `examples` or a `data` file")
        return value
