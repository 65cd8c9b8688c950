"""OpenTelemetry spans (optional extra): a server span per request with children for the
routing decision, each attempt and each upstream call. Skipped without the SDK."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk.trace")

from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from polyroute.api.app import create_app
from polyroute.config import parse_config
from polyroute.gateway import Gateway
from polyroute.observability.tracing import Tracing
from tests.support import free_port

CONFIG = """
records: {enabled: false}
observability: {logs: {access_log: false}}
resilience: {backoff: {base: 0.001, cap: 0.002}}
models:
  - {name: sim, provider: simulator, profile: instant}
  - {name: down, base_url: "http://127.0.0.1:CLOSED/v1"}
routes:
  flaky: {strategy: weighted, targets: [{name: down, weight: 1000000}, sim]}
"""


async def test_spans_for_routing_attempts_and_upstream_calls() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway = Gateway.from_config(parse_config(CONFIG.replace("CLOSED", str(free_port()))))
    tracing = Tracing(provider)
    tracing.instrument(gateway)
    gateway.observers.add(tracing)
    gateway.telemetry.tracing = tracing  # what `tracing.enabled: true` sets up
    client = TestClient(TestServer(create_app(gateway)))
    await client.start_server()
    try:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "flaky", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status == 200
        assert response.headers["x-polyroute-attempts"] == "2"
        assert (await client.get("/metrics")).status == 200  # not traced
    finally:
        await client.close()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[object]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (server,) = by_name["POST /v1/chat/completions"]
    (route,) = by_name["polyroute.route"]
    attempts = by_name["polyroute.attempt"]
    upstream = by_name["polyroute.upstream"]
    assert len(attempts) == 2
    assert len(upstream) == 2
    assert "GET /metrics" not in by_name
    server_id = server.context.span_id
    assert route.parent.span_id == server_id
    assert all(a.parent.span_id == server_id for a in attempts)
    attempt_ids = {a.context.span_id for a in attempts}
    assert all(u.parent.span_id in attempt_ids for u in upstream)
    assert route.attributes["polyroute.route"] == "flaky"
    assert route.attributes["polyroute.deployment"] == "down"
    assert route.attributes["polyroute.propensity"] == pytest.approx(1.0, abs=1e-5)
    failed, answered = sorted(attempts, key=lambda s: s.start_time)
    assert failed.attributes["polyroute.deployment"] == "down"
    assert not failed.status.is_ok
    assert answered.attributes["polyroute.deployment"] == "sim"
    assert answered.status.is_ok
    attributes = server.attributes
    assert attributes["http.response.status_code"] == 200
    assert attributes["polyroute.deployment"] == "sim"
    assert attributes["polyroute.attempts"] == 2
    assert attributes["polyroute.request_id"] == response.headers["x-request-id"]
    assert attributes["gen_ai.usage.input_tokens"] > 0


def test_tracing_off_adds_nothing() -> None:
    gateway = Gateway.from_config(parse_config(CONFIG.replace("CLOSED", "9")))
    assert gateway.telemetry.tracing is None
    assert gateway.router.wrap_decide is None  # the router's own method, unwrapped
    assert not create_app(gateway).middlewares


def test_tracing_from_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`tracing.enabled: true` (console exporter) instruments the gateway it builds."""
    from polyroute.context import RequestContext
    from polyroute.kinds import EndpointKind

    text = CONFIG.replace("CLOSED", "9").replace(
        "observability: {logs: {access_log: false}}",
        "observability: {logs: {access_log: false}, tracing: {enabled: true, exporter: console}}",
    )
    gateway = Gateway.from_config(parse_config(text))
    tracing = gateway.telemetry.tracing
    assert tracing is not None
    assert gateway.router.wrap_decide is not None
    body = {"messages": [{"role": "user", "content": "hi"}]}
    ctx = RequestContext(request_id="r", kind=EndpointKind.CHAT, model="flaky", body=body)
    assert gateway.router.decide(ctx).plan
    tracing.shutdown()  # flushes the batch processor to the console exporter
    assert '"name": "polyroute.route"' in capsys.readouterr().out
