"""Profiles: distributions, validation and loading from names and files."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from polyroute.kinds import EndpointKind
from polyroute.providers.simulator import (
    BUILTIN_PROFILES,
    Distribution,
    FaultRates,
    SimProfile,
    load_profile,
)


def test_constant_distribution_returns_median() -> None:
    """Without a p90 a distribution is a constant."""
    rng = random.Random(1)
    assert {Distribution(median=7.5).sample(rng) for _ in range(10)} == {7.5}


def test_lognormal_distribution_matches_median_and_p90() -> None:
    """A fitted lognormal reproduces its median and p90 within sampling noise."""
    rng = random.Random(42)
    draws = sorted(Distribution(median=100, p90=200).sample(rng) for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(100, rel=0.05)
    assert draws[int(0.9 * len(draws))] == pytest.approx(200, rel=0.06)
    assert min(draws) >= 0


def test_distribution_max_clamps_the_tail() -> None:
    """`max` caps every draw."""
    rng = random.Random(3)
    dist = Distribution(median=10, p90=1000, max=50)
    assert max(dist.sample(rng) for _ in range(1000)) <= 50


def test_distribution_rejects_p90_below_median() -> None:
    """p90 < median is a validation error naming the values."""
    with pytest.raises(ValueError, match="p90"):
        Distribution(median=10, p90=5)


def test_fault_rates_summing_above_one_are_rejected() -> None:
    """Fault probabilities must sum to at most 1."""
    with pytest.raises(ValueError, match=r"sum to 1\.2"):
        FaultRates(rate_limit=0.6, server_error=0.6)


def test_unknown_profile_field_is_rejected() -> None:
    """Profiles forbid unknown fields, so typos fail loudly."""
    with pytest.raises(ValueError, match="ttft"):
        SimProfile.model_validate({"name": "x", "kinds": ["chat"], "ttft": 3})


def test_profiles_are_frozen() -> None:
    """A built-in profile cannot be mutated by accident."""
    with pytest.raises(ValueError, match="frozen"):
        BUILTIN_PROFILES["instant"].name = "other"  # type: ignore[misc]


def test_builtin_profiles_cover_the_documented_set() -> None:
    """The built-ins exist and serve what their names say."""
    expected = {"fast-chat", "smart-chat", "flaky-chat", "coder", "embed", "image", "instant"}
    assert expected <= set(BUILTIN_PROFILES)
    assert BUILTIN_PROFILES["embed"].kinds == [EndpointKind.EMBEDDING]
    assert set(BUILTIN_PROFILES["instant"].kinds) == set(EndpointKind)
    flaky = BUILTIN_PROFILES["flaky-chat"].faults
    assert sum(rate for _, rate in flaky.weighted()) == pytest.approx(0.2)


def test_load_profile_by_builtin_name() -> None:
    """A built-in name loads that profile."""
    assert load_profile("smart-chat") is BUILTIN_PROFILES["smart-chat"]


def test_load_profile_from_yaml_with_base(tmp_path: Path) -> None:
    """A YAML file may extend a built-in and override fields; the name defaults to the stem."""
    path = tmp_path / "slowpoke.yaml"
    path.write_text("base: fast-chat\nttft_ms: {median: 900}\nfaults: {server_error: 0.5}\n")
    profile = load_profile(str(path))
    assert profile.name == "slowpoke"
    assert profile.ttft_ms.median == 900
    assert profile.faults.server_error == 0.5
    assert profile.price == BUILTIN_PROFILES["fast-chat"].price


def test_load_profile_from_json_file(tmp_path: Path) -> None:
    """JSON files load too, with the file stem as the default name."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"kinds": ["embedding"], "embedding_dim": 8}))
    profile = load_profile(str(path))
    assert profile.name == "tiny"
    assert profile.embedding_dim == 8


def test_load_profile_errors_name_file_and_field(tmp_path: Path) -> None:
    """A bad file's error names the file and the offending field."""
    path = tmp_path / "bad.yaml"
    path.write_text("kinds: [chat]\nfaults: {rate_limit: 2}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml[\s\S]*faults\.rate_limit"):
        load_profile(str(path))


def test_load_profile_unknown_name() -> None:
    """An unknown name that is not a file lists the built-ins."""
    with pytest.raises(ValueError, match="fast-chat"):
        load_profile("no-such-profile")


def test_quality_for_category_or_mean() -> None:
    """Quality is per category, falling back to the mean across categories."""
    profile = SimProfile(name="q", kinds=["chat"], quality={"code": 0.9, "math": 0.5})
    assert profile.quality_for("code") == 0.9
    assert profile.quality_for(None) == pytest.approx(0.7)
    assert SimProfile(name="r", kinds=["chat"]).quality_for("code") is None
