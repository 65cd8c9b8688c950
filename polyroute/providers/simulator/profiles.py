"""Simulated model profiles: how fast, how flaky, how expensive and how good a model is.

A profile is data, so a demo or a test can describe a model in a few lines of YAML (or use
a built-in one) and the same numbers drive both the HTTP simulator and the in-process
provider. Latencies are distributions, not constants, so that latency-aware routing has
real variance to react to.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from polyroute.kinds import ALL_KINDS, EndpointKind

_Z90 = 1.2815515655446004
"""The standard normal quantile at 0.9: a lognormal's p90 is median * exp(sigma * _Z90)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Frozen):
    """A positive quantity described by its median and p90 (a fitted lognormal).

    Constant when `p90` is None or equal to `median`; `max` clamps the long tail.
    """

    median: float = Field(ge=0)
    p90: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check_order(self) -> Distribution:
        if self.p90 is not None and self.p90 < self.median:
            raise ValueError(f"p90 ({self.p90}) must be >= median ({self.median})")
        if self.p90 is not None and self.p90 > self.median and self.median == 0:
            raise ValueError("a spread (p90 > median) needs median > 0")
        return self

    @property
    def is_constant(self) -> bool:
        return self.p90 is None or self.p90 == self.median

    def sample(self, rng: random.Random) -> float:
        """One draw, >= 0 (and <= max when set)."""
        if self.is_constant:
            value = self.median
        else:
            assert self.p90 is not None
            sigma = (math.log(self.p90) - math.log(self.median)) / _Z90
            value = rng.lognormvariate(math.log(self.median), sigma)
        if self.max is not None:
            value = min(value, self.max)
        return max(0.0, value)


def constant(value: float) -> Distribution:
    """A distribution that always returns `value`."""
    return Distribution(median=value)


class FaultRates(_Frozen):
    """Per-request probabilities of each injected failure; they must sum to at most 1."""

    rate_limit: float = Field(default=0.0, ge=0, le=1)
    server_error: float = Field(default=0.0, ge=0, le=1)
    unavailable: float = Field(default=0.0, ge=0, le=1)
    hang: float = Field(default=0.0, ge=0, le=1)
    reset: float = Field(default=0.0, ge=0, le=1)
    stream_cut: float = Field(default=0.0, ge=0, le=1)
    retry_after: float = Field(default=2.0, ge=0)
    """Seconds advertised in the `retry-after` header of simulated 429s."""

    @model_validator(mode="after")
    def _check_sum(self) -> FaultRates:
        total = sum(rate for _, rate in self.weighted())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {total:g}, which is more than 1")
        return self

    def weighted(self) -> list[tuple[str, float]]:
        """(fault kind, probability) pairs, in a fixed order."""
        return [
            ("rate_limit", self.rate_limit),
            ("server_error", self.server_error),
            ("unavailable", self.unavailable),
            ("hang", self.hang),
            ("reset", self.reset),
            ("stream_cut", self.stream_cut),
        ]


class Price(_Frozen):
    """USD prices: per million tokens for text, per image for images."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    cached_input_per_mtok: float = Field(default=0.0, ge=0)
    per_image: float = Field(default=0.0, ge=0)

    def cost(self, prompt_tokens: int = 0, completion_tokens: int = 0, images: int = 0) -> float:
        """The price of one request's usage."""
        return (
            prompt_tokens * self.input_per_mtok / 1e6
            + completion_tokens * self.output_per_mtok / 1e6
            + images * self.per_image
        )


class SimProfile(_Frozen):
    """Everything that makes one simulated model behave the way it does."""

    name: str = Field(min_length=1)
    kinds: list[EndpointKind] = Field(min_length=1)
    ttft_ms: Distribution = Field(default_factory=lambda: constant(0.0))
    tokens_per_s: Distribution = Field(default_factory=lambda: constant(1e9))
    output_tokens: Distribution = Field(default_factory=lambda: constant(64))
    faults: FaultRates = Field(default_factory=FaultRates)
    price: Price = Field(default_factory=Price)
    context_window: int = Field(default=8192, ge=1)
    embedding_dim: int = Field(default=256, ge=1, le=8192)
    quality: dict[str, float] = Field(default_factory=dict)
    """Hidden quality per task category in [0, 1]; only surfaced in `x-sim-quality`."""
    seed: int = 0

    @model_validator(mode="after")
    def _check_quality(self) -> SimProfile:
        for category, value in self.quality.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"quality[{category!r}] = {value} is outside [0, 1]")
        return self

    def quality_for(self, category: str | None) -> float | None:
        """The category's quality, else the mean over categories; None without any."""
        if not self.quality:
            return None
        if category is not None and category in self.quality:
            return self.quality[category]
        return sum(self.quality.values()) / len(self.quality)


_CHAT = [EndpointKind.CHAT]
_TEXT = [EndpointKind.CHAT, EndpointKind.COMPLETION]

BUILTIN_PROFILES: dict[str, SimProfile] = {
    p.name: p
    for p in (
        SimProfile(
            name="fast-chat",
            kinds=_TEXT,
            ttft_ms=Distribution(median=40, p90=80, max=1000),
            tokens_per_s=Distribution(median=300, p90=380),
            output_tokens=Distribution(median=120, p90=300, max=2000),
            price=Price(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075),
            context_window=16_384,
            quality={"general": 0.62, "code": 0.5, "math": 0.4, "chinese": 0.55, "creative": 0.6},
            seed=1,
        ),
        SimProfile(
            name="smart-chat",
            kinds=_TEXT,
            ttft_ms=Distribution(median=250, p90=600, max=5000),
            tokens_per_s=Distribution(median=60, p90=80),
            output_tokens=Distribution(median=250, p90=600, max=4000),
            price=Price(input_per_mtok=5.0, output_per_mtok=15.0, cached_input_per_mtok=2.5),
            context_window=128_000,
            quality={"general": 0.9, "code": 0.85, "math": 0.88, "chinese": 0.8, "creative": 0.9},
            seed=2,
        ),
        SimProfile(
            name="flaky-chat",
            kinds=_CHAT,
            ttft_ms=Distribution(median=40, p90=100, max=2000),
            tokens_per_s=Distribution(median=250, p90=350),
            output_tokens=Distribution(median=100, p90=250, max=2000),
            faults=FaultRates(
                rate_limit=0.06, server_error=0.05, unavailable=0.04, reset=0.02, stream_cut=0.03
            ),
            price=Price(input_per_mtok=0.1, output_per_mtok=0.4),
            context_window=16_384,
            quality={"general": 0.55, "code": 0.45, "math": 0.4, "chinese": 0.5, "creative": 0.5},
            seed=3,
        ),
        SimProfile(
            name="coder",
            kinds=_TEXT,
            ttft_ms=Distribution(median=120, p90=300, max=3000),
            tokens_per_s=Distribution(median=120, p90=160),
            output_tokens=Distribution(median=200, p90=500, max=4000),
            price=Price(input_per_mtok=0.5, output_per_mtok=1.5),
            context_window=32_768,
            quality={"general": 0.6, "code": 0.92, "math": 0.7, "chinese": 0.45, "creative": 0.4},
            seed=4,
        ),
        SimProfile(
            name="embed",
            kinds=[EndpointKind.EMBEDDING],
            ttft_ms=Distribution(median=8, p90=20, max=500),
            price=Price(input_per_mtok=0.02),
            context_window=8192,
            embedding_dim=256,
            seed=5,
        ),
        SimProfile(
            name="image",
            kinds=[EndpointKind.IMAGE],
            ttft_ms=Distribution(median=300, p90=500, max=5000),
            price=Price(per_image=0.02),
            seed=6,
        ),
        SimProfile(
            name="instant",
            kinds=sorted(ALL_KINDS),
            ttft_ms=constant(0.0),
            tokens_per_s=constant(1e9),
            output_tokens=constant(16),
            price=Price(input_per_mtok=1.0, output_per_mtok=2.0, per_image=0.01),
            context_window=32_768,
            quality={"general": 0.5, "code": 0.5},
            seed=0,
        ),
    )
}


def load_profile(name_or_path: str) -> SimProfile:
    """A built-in profile by name, or one read from a YAML/JSON file.

    A file may name a built-in profile under `base:` and override only some fields.
    Raises ValueError with the offending file and field on a bad profile.
    """
    if name_or_path in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        names = ", ".join(sorted(BUILTIN_PROFILES))
        raise ValueError(
            f"unknown simulator profile {name_or_path!r}: not a built-in ({names}) and no such file"
        )
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"simulator profile {path}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"simulator profile {path}: expected a mapping at the top level")
    data.setdefault("name", path.stem)
    base_name = data.pop("base", None)
    if base_name is not None:
        if base_name not in BUILTIN_PROFILES:
            raise ValueError(f"simulator profile {path}: base {base_name!r} is not a built-in")
        data = BUILTIN_PROFILES[base_name].model_dump(mode="json") | data
    try:
        return SimProfile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid simulator profile {path}: {exc}") from exc
