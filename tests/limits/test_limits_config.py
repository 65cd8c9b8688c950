"""The `limits` and `state` config sections: parsed, validated, errors that name the field."""

from __future__ import annotations

import pytest

from polyroute.config import ConfigError
from polyroute.config.loader import parse_config
from polyroute.gateway import Gateway
from polyroute.limits.redis_limiter import RedisLimiter
from polyroute.state.redis_breakers import RedisBreakers

MODELS = """
models:
  - {name: m, provider: simulator, profile: instant}
routes:
  chat: {strategy: single, target: m}
"""


def test_limits_section() -> None:
    config = parse_config(
        MODELS
        + """
limits:
  global: {rpm: 6000, tpm: 2000000, max_parallel: 256, budget: 500, budget_period: day}
  per_user: {rpm: 60}
  per_model: {chat: {tpm: 100000}, m: {max_parallel: 8}}
  expected_output_tokens: 512
"""
    )
    limits = config.limits
    assert limits.global_.rpm == 6000
    assert limits.global_.budget_period == "day"
    assert limits.per_user.rpm == 60
    assert limits.per_model["chat"].tpm == 100000
    gateway = Gateway.from_config(config)
    assert gateway.limits.config is limits
    assert gateway.state.redis is None  # memory by default


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("limits: {global: {rpm: 0}}", "limits.global.rpm"),
        ("limits: {global: {rps: 5}}", "limits.global.rps"),
        ("limits: {per_user: {budget_period: year}}", "limits.per_user.budget_period"),
        ("state: {backend: redis, redis_url: 'http://x'}", "state.redis_url"),
        ("state: {backend: etcd}", "state.backend"),
        ("state: {key_prefix: 'has space'}", "state.key_prefix"),
    ],
)
def test_bad_values_name_the_field(section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MODELS + section + "\n")
    assert field in str(caught.value)


def test_per_model_must_name_a_route_or_deployment() -> None:
    config = parse_config(MODELS + "limits:\n  per_model:\n    chatt: {rpm: 5}\n")
    with pytest.raises(ConfigError) as caught:
        Gateway.from_config(config)
    assert "limits.per_model.chatt" in str(caught.value)
    assert "names no route or deployment" in str(caught.value)


def test_redis_backend_needs_a_url() -> None:
    config = parse_config(MODELS + "state: {backend: redis}\n")
    with pytest.raises(ConfigError) as caught:
        Gateway.from_config(config)
    assert "state.redis_url" in str(caught.value)


def test_redis_backend_from_env_builds_without_connecting() -> None:
    """Building (`polyroute check`, the serve parent) never connects; workers do at start."""
    config = parse_config(
        MODELS + "state: {backend: redis, redis_url: '${REDIS_URL}', key_prefix: pr}\n",
        environ={"REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    gateway = Gateway.from_config(config)
    assert isinstance(gateway.state.limiter, RedisLimiter)
    assert isinstance(gateway.state.breakers, RedisBreakers)
    assert gateway.state.redis is not None
    assert gateway.state.redis.client is None
