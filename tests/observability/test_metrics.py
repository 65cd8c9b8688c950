"""Prometheus metrics: the observer's counters and histograms, bounded labels, GET /metrics
over HTTP after real requests, the metrics key, and totals across `serve --workers 2`."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polyroute.observability.exposition import parse_exposition, sum_samples
from polyroute.observability.metrics import MAX_SERIES
from tests.observability.helpers import offline_gateway, outcome
from tests.support import HOST, free_port, gateway, polyroute_process, simulator

MESSAGES = [{"role": "user", "content": "hello"}]


def scrape(gw: object) -> dict[str, float]:
    body, content_type = gw.metrics.exposition()
    assert content_type.startswith("text/plain")
    return parse_exposition(body.decode())


def test_requests_latency_tokens_cost_by_labels() -> None:
    """Each outcome counts once under its route/deployment/strategy/arm/status labels, with
    its latency in the right bucket, its tokens and its cost."""
    gw = offline_gateway()
    for latency in (0.02, 0.2, 0.2):
        gw.observers.report(outcome(gw, "chat", deployment="alpha", latency=latency))
    gw.observers.report(outcome(gw, "chat", deployment="alpha", ttft=0.03, latency=1.5))
    samples = scrape(gw)
    labels = {"route": "chat", "deployment": "alpha", "strategy": "weighted", "kind": "chat"}
    assert sum_samples(samples, "polyroute_requests_total", status="200", **labels) == 4
    bucket = "polyroute_request_duration_seconds_bucket"
    assert sum_samples(samples, bucket, le="0.025", **labels) == 1
    assert sum_samples(samples, bucket, le="0.25", **labels) == 3
    assert sum_samples(samples, bucket, le="+Inf", **labels) == 4
    count = "polyroute_request_duration_seconds_count"
    assert sum_samples(samples, count, **labels) == 4
    total = sum_samples(samples, "polyroute_request_duration_seconds_sum", **labels)
    assert total == pytest.approx(1.92)
    assert sum_samples(samples, "polyroute_time_to_first_token_seconds_count", **labels) == 1
    assert sum_samples(samples, "polyroute_tokens_total", direction="in", **labels) == 400
    assert sum_samples(samples, "polyroute_tokens_total", direction="out", **labels) == 200
    # alpha: $1 / $2 per million in/out: 4 x (100 x 1 + 50 x 2) / 1e6
    assert sum_samples(samples, "polyroute_cost_usd_total", **labels) == pytest.approx(0.0008)
    # a second scrape adds nothing new
    assert sum_samples(scrape(gw), "polyroute_requests_total", **labels) == 4


def test_errors_retries_fallbacks_and_arms() -> None:
    """Failures by error type, extra attempts, answers from a non-primary deployment, and
    the A/B arm as a label."""
    gw = offline_gateway()
    failed = outcome(
        gw, "chat", ok=False, status=502, error_type="upstream_error", attempts=3, usage=None
    )
    gw.observers.report(failed)
    invented = outcome(gw, "chat", ok=False, status=418, error_type="teapot_error_from_upstream")
    gw.observers.report(invented)
    primary = None
    while primary != "alpha":  # weighted: draw until the plan starts with alpha
        rerouted = outcome(gw, "chat", deployment="beta", attempts=2)
        primary = rerouted.decision.plan[0].name if rerouted.decision else None
    gw.observers.report(rerouted)
    gw.observers.report(outcome(gw, "split", user="u1"))
    samples = scrape(gw)
    errors = "polyroute_request_errors_total"
    assert sum_samples(samples, errors, error_type="upstream_error", status="502") == 1
    assert sum_samples(samples, errors, error_type="other", status="418") == 1
    assert not any("teapot" in key for key in samples)
    assert sum_samples(samples, "polyroute_retries_total", route="chat") == 3
    fallbacks = "polyroute_fallbacks_total"
    assert sum_samples(samples, fallbacks, primary="alpha", deployment="beta") == 1
    arms = [k for k in samples if k.startswith("polyroute_requests_total") and 'route="split"' in k]
    assert len(arms) == 1
    assert 'arm="control"' in arms[0] or 'arm="treatment"' in arms[0]


def test_client_input_never_becomes_a_label() -> None:
    """A request that failed before routing has route="" (the model it named is not a
    label); cache lookups for unknown routes count as "other"; the series are capped."""
    gw = offline_gateway()
    bogus = outcome(gw, "chat", routed=False, ok=False, status=404, usage=None)
    bogus.ctx.model = "../../etc/passwd-ish-model"
    gw.observers.report(bogus)
    gw.metrics.cache_lookup("chat", True)
    gw.metrics.cache_lookup("made-up-route", False)
    samples = scrape(gw)
    assert not any("passwd" in key for key in samples)
    assert sum_samples(samples, "polyroute_requests_total", route="", status="404") == 1
    assert sum_samples(samples, "polyroute_cache_lookups_total", route="chat", result="hit") == 1
    assert sum_samples(samples, "polyroute_cache_lookups_total", route="other") == 1
    metrics = gw.metrics
    unbounded = outcome(gw, "split", user="u1")
    assert unbounded.decision is not None
    for index in range(MAX_SERIES + 10):  # a strategy inventing arms: new label sets
        unbounded.decision.arm = f"arm-{index}"
        metrics.observe(unbounded)
    assert metrics.series_count <= MAX_SERIES
    capped = scrape(gw)
    assert sum_samples(capped, "polyroute_requests_total", route="other", arm="other") > 0
    assert sum(1 for key in capped if key.startswith("polyroute_requests_total")) <= MAX_SERIES + 1


def test_sources_and_breaker_gauge() -> None:
    """A registered counter source adds its increases; the breaker gauge reads state."""
    gw = offline_gateway()
    count = [5.0]
    gw.metrics.add_source("polyroute_test_things", "things", lambda: count[0])
    assert scrape(gw)["polyroute_test_things_total{}"] == 5
    count[0] = 8
    assert scrape(gw)["polyroute_test_things_total{}"] == 8
    for _ in range(10):
        gw.executor.breakers.record_failure("beta")
    samples = scrape(gw)
    assert samples['polyroute_breaker_state{deployment="beta"}'] == 2
    assert samples['polyroute_breaker_state{deployment="alpha"}'] == 0
    assert "process_cpu_seconds_total{}" in samples


# -- over HTTP -----------------------------------------------------------------------------

HTTP_CONFIG = """
records: {enabled: false}
observability:
  logs: {access_log: false}
  metrics: {refresh_interval: 0.2}
resilience:
  breaker: {consecutive_failures: 1, base_ejection: 60}
  backoff: {base: 0.001, cap: 0.005}
models:
  - {name: alpha, base_url: SIM, price: {input_per_mtok: 1, output_per_mtok: 2}}
  - {name: beta, base_url: SIM}
  - {name: down, base_url: "http://127.0.0.1:CLOSED/v1"}
routes:
  chat: {strategy: weighted, targets: [alpha, beta]}
  down-first: {strategy: weighted, targets: [{name: down, weight: 1000000}, alpha]}
  split:
    strategy: ab
    arms: [{name: control, target: alpha}, {name: treatment, target: beta}]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator("instant") as sim:
        text = HTTP_CONFIG.replace("SIM", sim).replace("CLOSED", str(free_port()))
        with gateway(text, tmp_path_factory.mktemp("metrics")) as url:
            yield url.removesuffix("/v1")


def http_scrape(base: str, **headers: str) -> dict[str, float]:
    response = httpx.get(base + "/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse_exposition(response.text)


def test_metrics_endpoint_after_real_requests(served: str) -> None:
    """Counters move with the right labels after chat, stream, fallback, A/B and unknown
    model requests; the breaker of the dead deployment shows open."""
    with httpx.Client(base_url=served + "/v1", timeout=10) as client:
        for _ in range(5):
            ok = client.post("/chat/completions", json={"model": "chat", "messages": MESSAGES})
            assert ok.status_code == 200
        stream = {"model": "chat", "messages": MESSAGES, "stream": True}
        with client.stream("POST", "/chat/completions", json=stream) as response:
            assert response.status_code == 200
            response.read()
        for user in ("u1", "u2", "u3"):
            body = {"model": "split", "messages": MESSAGES, "user": user}
            assert client.post("/chat/completions", json=body).status_code == 200
        for _ in range(2):
            body = {"model": "down-first", "messages": MESSAGES}
            assert client.post("/chat/completions", json=body).status_code == 200
        nope = client.post("/chat/completions", json={"model": "no-such-x", "messages": MESSAGES})
        assert nope.status_code == 404
    samples = http_scrape(served)
    requests = "polyroute_requests_total"
    assert sum_samples(samples, requests, route="chat", status="200") == 6
    assert sum_samples(samples, requests, route="split") == 3
    assert sum_samples(samples, requests, route="down-first", deployment="alpha") == 2
    assert sum_samples(samples, requests, route="", status="404") == 1
    assert not any("no-such-x" in key for key in samples)
    assert sum_samples(samples, "polyroute_time_to_first_token_seconds_count", route="chat") == 1
    assert sum_samples(samples, "polyroute_tokens_total", route="chat", direction="in") > 0
    assert sum_samples(samples, "polyroute_cost_usd_total", deployment="alpha") > 0
    # the first down-first request fell back from `down` (then ejected) to alpha
    assert sum_samples(samples, "polyroute_fallbacks_total", primary="down") >= 1
    assert samples['polyroute_breaker_state{deployment="down"}'] == 2
    assert samples["polyroute_in_flight_requests{}"] == 0
    assert samples["process_resident_memory_bytes{}"] > 0


def test_metrics_key(tmp_path: Path) -> None:
    """With observability.metrics.key set, /metrics needs it as a bearer token."""
    config = """
records: {enabled: false}
observability: {metrics: {key: "${METRICS_KEY}"}, logs: {access_log: false}}
models: [{name: a, base_url: "http://127.0.0.1:9/v1"}]
"""
    key = "metrics-key-canary-0123456789"
    with gateway(config, tmp_path, env={"METRICS_KEY": key}) as url:
        base = url.removesuffix("/v1")
        assert httpx.get(base + "/metrics", timeout=5).status_code == 401
        wrong = httpx.get(base + "/metrics", headers={"authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401
        assert key not in wrong.text
        assert http_scrape(base, authorization=f"Bearer {key}")


def test_totals_across_two_workers(tmp_path: Path) -> None:
    """`serve --workers 2`: every scrape (whichever worker answers it) reports the total of
    the requests both workers served; PROMETHEUS_MULTIPROC_DIR, when set, is used and
    emptied of old files at start."""
    from prometheus_client.mmap_dict import MmapedDict

    port = free_port()
    shared = tmp_path / "multiproc"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"stale")  # a previous run's: removed
    with simulator("instant") as sim:
        text = HTTP_CONFIG.replace("SIM", sim).replace("CLOSED", str(free_port()))
        path = tmp_path / "workers.yaml"
        path.write_text(text)
        args = ("serve", "-c", str(path), "--port", str(port), "--workers", "2")
        env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
        with polyroute_process(*args, ready_path="/readyz", port=port, env=env):
            base = f"http://{HOST}:{port}"
            wait_for(lambda: http_scrape(base).get("polyroute_workers{}") == 2)
            time.sleep(1.0)  # both listening (the gauge is set just before)
            sent = 60
            for index in range(sent):  # a new connection each: the kernel spreads them
                data = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}'
                request = urllib.request.Request(
                    f"{base}/v1/chat/completions",
                    data=data,
                    headers={"content-type": "application/json", "connection": "close"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200, index
            route = {"route": "chat"}
            wait_for(
                lambda: sum_samples(http_scrape(base), "polyroute_requests_total", **route) == sent
            )
            for _ in range(4):  # any worker answers with the same totals
                again = http_scrape(base)
                assert sum_samples(again, "polyroute_requests_total", route="chat") == sent
                count = "polyroute_request_duration_seconds_count"
                assert sum_samples(again, count, route="chat") == sent
            assert again["polyroute_workers{}"] == 2
            assert again["process_cpu_seconds_total{}"] > 0
            served = {}  # requests per worker, from each worker's own file
            for file in shared.glob("counter_*.db"):
                values = MmapedDict.read_all_values_from_file(str(file))
                served[file.name] = sum(v for k, v, *_ in values if '"polyroute_requests' in k)
            assert "counter_999999.db" not in served
            assert len(served) == 2, served
            assert all(count > 0 for count in served.values()), served


def wait_for(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_component_counts_are_published() -> None:
    """Figures other parts keep (Redis fallbacks, request-log drops) appear as metrics."""
    from polyroute.config import parse_config
    from polyroute.gateway import Gateway

    gw = Gateway.from_config(
        parse_config(
            """
records: {enabled: false}
state: {backend: redis, redis_url: "redis://127.0.0.1:1/0"}
observability: {request_log: {path: /nonexistent/never-opened.jsonl}}
models: [{name: a, base_url: "http://127.0.0.1:9/v1"}]
"""
        )
    )
    assert gw.state.redis is not None
    gw.state.redis.fallbacks = 7  # what a Redis outage counts
    samples = scrape(gw)
    assert samples["polyroute_redis_fallbacks_total{}"] == 7
    assert samples["polyroute_request_log_dropped_total{}"] == 0
    assert "polyroute_log_lines_dropped_total{}" in samples
