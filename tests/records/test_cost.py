"""Cost from real usage: cached prompt tokens at the cached-input price."""

from __future__ import annotations

import pytest

from polyroute.config.schema import DeploymentConfig
from polyroute.deployment import Deployment
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage
from polyroute.usage import cost_of, usage_of


def deployment(**price: float) -> Deployment:
    config = DeploymentConfig.model_validate(
        {"name": "d", "base_url": "http://127.0.0.1:1/v1", "price": price}
    )
    return Deployment.from_config(config)


def test_cached_tokens_are_read_from_prompt_tokens_details() -> None:
    answer = {
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 800},
        }
    }
    assert usage_of(EndpointKind.CHAT, answer) == Usage(1000, 10, cached_tokens=800)
    absent = {"usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    assert usage_of(EndpointKind.CHAT, absent) == Usage(5, 1)
    odd = {"usage": {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 99}}}
    assert usage_of(EndpointKind.CHAT, odd) == Usage(5, 0, cached_tokens=5)  # never > prompt


def test_cached_tokens_are_priced_at_the_cached_price() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=600_000)
    priced = deployment(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    assert cost_of(priced, usage) == pytest.approx(0.4 * 2.0 + 0.6 * 0.5 + 8.0)
    # no cached price configured: cached tokens cost what other input tokens cost
    plain = deployment(input_per_mtok=2.0, output_per_mtok=8.0)
    assert cost_of(plain, usage) == pytest.approx(2.0 + 8.0)


def test_images_are_priced_per_image() -> None:
    usage = usage_of(EndpointKind.IMAGE, {"data": [{}, {}, {}]})
    assert usage == Usage(images=3)
    assert cost_of(deployment(per_image=0.04), usage) == pytest.approx(0.12)
