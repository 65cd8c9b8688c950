"""One gateway process in front of two simulator processes, shared by the API tests.

Everything is real: `polyroute simulate` and `polyroute serve` run as processes on
loopback ports and the tests talk to them with the official openai SDK or raw HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support import Sim, free_port, gateway, simulator

ALPHA_KEY = "sk-upstream-alpha-0123456789"
CLIENT_KEY = "sk-client-canary-abcdef0123456789"


@dataclass
class Stack:
    url: str
    alpha: Sim
    beta: Sim
    clients: list[openai.OpenAI] = field(default_factory=list)

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """A sync SDK client (no SDK retries: tests see exactly what the gateway answers)."""
        kwargs.setdefault("api_key", "sk-any")
        client = openai.OpenAI(base_url=self.url, max_retries=0, **kwargs)
        self.clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """An async SDK client; the test closes it."""
        kwargs.setdefault("api_key", "sk-any")
        return openai.AsyncOpenAI(base_url=self.url, max_retries=0, **kwargs)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


def stack_config(alpha: str, beta: str, closed_port: int) -> str:
    return f"""
server:
  max_body_bytes: 65536
  max_response_bytes: 65536
# tests share this gateway: breakers and the retry budget must not carry one test's
# failures into the next (tests/resilience/ checks them on gateways of their own)
resilience:
  breaker: {{consecutive_failures: 100000, min_requests: 100000}}
  retry_budget: {{min_per_second: 100000}}
  backoff: {{base: 0.001, cap: 0.005}}
models:
  - name: alpha
    base_url: {alpha}
    model: alpha-upstream-id
    api_key: ${{ALPHA_KEY}}
    headers: {{x-team: routing}}
  - name: beta
    base_url: {beta}
  - name: beta-once  # its own breaker: a 429 cool-down here leaves `beta` alone
    base_url: {beta}
  - name: emb
    base_url: {alpha}
    kinds: [embedding]
  - name: img
    base_url: {beta}
    kinds: [image]
  - name: down
    base_url: http://127.0.0.1:{closed_port}/v1
  - name: slow
    base_url: {beta}
    timeouts: {{first_byte: 0.5, idle: 0.5, total: 5}}
routes:
  auto:
    strategy: by_type
    targets: {{chat: chat, completion: chat, embedding: emb, image: img}}
  chat:
    strategy: weighted
    targets: [alpha, beta]
  only-alpha: {{strategy: single, target: alpha}}
  only-beta: {{strategy: single, target: beta}}
  only-beta-once: {{strategy: single, target: beta-once, max_retries: 0}}
  down-first:
    strategy: weighted
    targets: [{{name: down, weight: 1000000}}, alpha]
  beta-then-alpha:
    strategy: weighted
    targets: [{{name: beta, weight: 1000000}}, alpha]
default_route: auto
"""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("stack")
    with simulator("instant") as alpha, simulator("instant") as beta:
        config = stack_config(alpha, beta, free_port())
        with gateway(config, tmp, env={"ALPHA_KEY": ALPHA_KEY}) as url:
            stack = Stack(url, Sim(alpha), Sim(beta))
            yield stack
            stack.close()


@pytest.fixture
def sims(stack: Stack) -> Iterator[Stack]:
    """The stack with both simulators' stats and fault queues cleared."""
    stack.alpha.reset()
    stack.beta.reset()
    yield stack
    stack.close()
    stack.alpha.reset()
    stack.beta.reset()
