"""The response cache on Redis: an answer cached by one gateway instance is a hit on
another instance sharing the Redis, and a key's entries stay that key's."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from polyroute.config import ConfigError, parse_config
from polyroute.gateway import Gateway
from tests.scaleout.conftest import SHARED_REDIS, drop_prefix, unique_prefix
from tests.support import Sim, gateway, simulator

KEY_A = "sk-shared-cache-a-000001"
KEY_B = "sk-shared-cache-b-000002"


def config(sim: str, prefix: str) -> str:
    return f"""
state: {{backend: redis, redis_url: '{SHARED_REDIS}', key_prefix: {prefix}}}
models:
  - {{name: m, base_url: {sim}}}
keys:
  - {{id: a, key: {KEY_A}}}
  - {{id: b, key: {KEY_B}}}
cache: {{enabled: true, backend: redis, ttl: 60}}
"""


def ask(url: str, key: str, text: str) -> httpx.Response:
    body = {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": text}]}
    return httpx.post(
        url + "/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


def test_two_instances_share_cached_answers(tmp_path: Path) -> None:
    prefix = unique_prefix("cache")
    try:
        with simulator("instant") as sim_url:
            sim = Sim(sim_url)
            text = config(sim_url, prefix)
            with gateway(text, tmp_path) as first, gateway(text, tmp_path) as second:
                sim.reset()
                answer = ask(first, KEY_A, "shared across instances")
                assert answer.headers["x-polyroute-cache"] == "miss"
                hit = ask(second, KEY_A, "shared across instances")
                assert hit.headers["x-polyroute-cache"] == "hit"
                assert hit.content == answer.content
                assert (
                    ask(second, KEY_B, "shared across instances").headers["x-polyroute-cache"]
                    == "miss"
                )  # another key: another tenant
                assert sim.stats()["requests_total"] == 2
    finally:
        drop_prefix(SHARED_REDIS, prefix)


def test_a_redis_cache_needs_the_redis_state_backend() -> None:
    text = (
        "models: [{name: m, base_url: 'http://127.0.0.1:9/v1'}]\n"
        "cache: {enabled: true, backend: redis}\n"
    )
    with pytest.raises(ConfigError, match=r"cache\.backend.*state\.backend: redis"):
        Gateway.from_config(parse_config(text))
