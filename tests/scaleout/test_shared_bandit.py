"""Adaptive routing on Redis: what one gateway instance learns, another one routes by."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.scaleout.conftest import SHARED_REDIS, drop_prefix, unique_prefix
from tests.support import gateway, simulator

MESSAGES = [{"role": "user", "content": "hello"}]


def config(good: str, bad: str, prefix: str) -> str:
    return f"""
state: {{backend: redis, redis_url: '{SHARED_REDIS}', key_prefix: {prefix}}}
resilience: {{max_retries: 0}}
models:
  - {{name: good, base_url: {good}}}
  - {{name: bad, base_url: {bad}}}
routes:
  smart: {{strategy: adaptive, targets: [good, bad], seed: 7}}
"""


def estimate(url: str) -> dict[str, Any]:
    explained = httpx.post(url + "/route", json={"model": "smart", "messages": MESSAGES})
    return dict(explained.json()["signals"]["smart"]["estimate"])


def test_instances_share_what_the_bandit_learned(tmp_path: Path) -> None:
    prefix = unique_prefix("bandit")
    try:
        with simulator("instant") as good, simulator("instant") as bad:
            httpx.post(
                bad.removesuffix("/v1") + "/__sim/faults",
                json={"kind": "server_error", "count": 1000},
            )
            text = config(good, bad, prefix)
            with gateway(text, tmp_path) as first, gateway(text, tmp_path) as second:
                for _ in range(40):
                    httpx.post(
                        first + "/chat/completions", json={"model": "smart", "messages": MESSAGES}
                    )
                deadline = time.monotonic() + 10
                learned = estimate(second)
                while learned["bad"]["n"] + learned["good"]["n"] < 40:
                    assert time.monotonic() < deadline, learned
                    time.sleep(0.2)
                    learned = estimate(second)
                assert learned["bad"]["n"] >= 1  # its failures were learned on `first`
                assert learned["good"]["mean"] > 0.9 > 0.4 > learned["bad"]["mean"]
    finally:
        drop_prefix(SHARED_REDIS, prefix)
