"""The fault matrix over real sockets: each fault kind x streaming or not x with and without
a fallback, driven by the official openai SDK against simulator processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support import Sim, free_port, gateway, simulator

MESSAGES = [{"role": "user", "content": "Tell me about fallbacks."}]


@dataclass
class Matrix:
    url: str
    primary: Sim
    fallback: Sim

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key="sk-test", max_retries=0)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    with simulator("instant") as primary, simulator("instant") as fallback:
        config = f"""
models:
  - name: p
    base_url: {primary}
    model: shared
    timeouts: {{first_byte: 0.4, idle: 0.4, total: 10}}
  - name: f
    base_url: {fallback}
    model: shared
routes:
  with-fallback:
    strategy: single
    target: p
    fallbacks: [f]
  alone:
    strategy: single
    target: p
resilience:
  breaker: {{consecutive_failures: 100000, min_requests: 100000}}
  retry_budget: {{min_per_second: 100000}}
  backoff: {{base: 0.001, cap: 0.005}}
"""
        with gateway(config, tmp_path_factory.mktemp("matrix")) as url:
            yield Matrix(url, Sim(primary), Sim(fallback))


@pytest.fixture
def m(matrix: Matrix) -> Iterator[Matrix]:
    matrix.primary.reset()
    matrix.fallback.reset()
    yield matrix
    matrix.primary.reset()


# fault kind, its options, and what a client gets without a fallback once the gateway's
# three attempts (1 + max_retries) all met the fault: HTTP status and error code
BEFORE_FIRST_BYTE: list[tuple[str, dict[str, Any], int, str]] = [
    ("rate_limit", {"retry_after": 0}, 429, "rate_limit_exceeded"),
    ("server_error", {}, 502, "upstream_error"),
    ("unavailable", {}, 502, "upstream_error"),
    ("status", {"status": 502}, 502, "upstream_error"),
    ("reset", {}, 502, "upstream_reset"),
    ("hang", {}, 504, "upstream_timeout"),
    ("bad_json", {}, 502, "upstream_invalid_response"),
]
MID_STREAM: list[tuple[str, dict[str, Any], str]] = [
    ("stream_cut", {"after_chunks": 3}, "upstream_reset"),
    ("stall", {"after_chunks": 3}, "upstream_timeout"),
]


def _collect(stream: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("fault", "opts", "status", "code"), BEFORE_FIRST_BYTE)
def test_fault_before_first_byte_with_fallback(
    m: Matrix, fault: str, opts: dict[str, Any], status: int, code: str, stream: bool
) -> None:
    """B1/A-series: the fallback answers; the client sees one clean, complete answer."""
    m.primary.fault(fault, 3, **opts)
    with m.client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="with-fallback", messages=MESSAGES, stream=stream
        )
        assert raw.headers["x-polyroute-deployment"] == "f"
        parsed = raw.parse()
        text = _collect(parsed) if stream else parsed.choices[0].message.content or ""
    assert text.startswith("[simulated instant]")
    assert m.fallback.stats()["requests_total"] == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("fault", "opts", "status", "code"), BEFORE_FIRST_BYTE)
def test_fault_before_first_byte_without_fallback(
    m: Matrix, fault: str, opts: dict[str, Any], status: int, code: str, stream: bool
) -> None:
    """A-series: after its retries the gateway answers with the mapped status and code,
    tells the SDK not to retry again, and names the deployment."""
    m.primary.fault(fault, 3, **opts)
    with m.client() as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="alone", messages=MESSAGES, stream=stream)
    error = info.value
    assert error.status_code == status
    assert error.code == code
    assert error.response.headers["x-polyroute-attempts"] == "3"
    assert error.response.headers["x-should-retry"] == "false"
    assert "deployment p" in error.message
    assert m.primary.stats()["requests_total"] == 3
    _assert_nothing_left_running(m.primary)


def _assert_nothing_left_running(sim: Sim) -> None:
    """A8: an attempt the gateway gave up on is closed upstream, not left running."""
    import time

    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and sim.stats()["in_flight"]:
        time.sleep(0.02)
    assert sim.stats()["in_flight"] == 0


@pytest.mark.parametrize("model", ["with-fallback", "alone"])
@pytest.mark.parametrize(("fault", "opts", "code"), MID_STREAM)
def test_fault_mid_stream_is_a_terminal_error_event(
    m: Matrix, fault: str, opts: dict[str, Any], code: str, model: str
) -> None:
    """B2/B3: after bytes went out nothing can fall back: the SDK raises on the terminal
    error event (never a silent truncation), and the upstream is not retried."""
    m.primary.fault(fault, 1, **opts)
    received: list[Any] = []
    with m.client() as client:
        stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as info:
            received.extend(stream)  # keeps what arrived before the error
    assert received
    body = info.value.body
    assert isinstance(body, dict)
    assert body["code"] == code
    assert m.fallback.stats()["requests_total"] == 0


@pytest.mark.parametrize(("fault", "opts", "code"), MID_STREAM)
def test_mid_stream_faults_on_json_requests_fall_back(
    m: Matrix, fault: str, opts: dict[str, Any], code: str
) -> None:
    """The same faults on a non-streaming request happen before any byte: fallback."""
    m.primary.fault(fault, 1, **opts)
    with m.client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="with-fallback", messages=MESSAGES
        )
    assert raw.headers["x-polyroute-deployment"] == "f"


def test_stalled_stream_frees_the_upstream(m: Matrix) -> None:
    """B3: a stream silent past the idle limit is closed upstream, not left hanging."""
    import time

    m.primary.fault("stall", 1, after_chunks=2)
    with m.client() as client:
        stream = client.chat.completions.create(model="alone", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError):
            list(stream)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and m.primary.stats()["in_flight"]:
        time.sleep(0.05)
    assert m.primary.stats()["in_flight"] == 0
    assert m.primary.stats()["disconnects"] == 1


def test_connection_refused_without_fallback_is_503(tmp_path: Path) -> None:
    """A7: a deployment whose port is closed, with nothing else to try: 503."""
    port = free_port()
    config = f"models:\n  - {{name: gone, base_url: 'http://127.0.0.1:{port}/v1'}}\n"
    with (
        gateway(config, tmp_path) as url,
        openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as info,
    ):
        client.chat.completions.create(model="gone", messages=MESSAGES)
    assert info.value.status_code == 503
