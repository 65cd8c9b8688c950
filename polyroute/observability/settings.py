"""The `observability:` section of the config: metrics, logs, the request log, tracing.

::

    observability:
      metrics: {enabled: true, key: ${METRICS_KEY}}   # GET /metrics; key unset: open
      logs: {format: json, level: info, access_log: true, prompts: false}
      request_log: {path: /var/log/polyroute/requests.jsonl, max_bytes: 104857600}
      tracing: {enabled: true, exporter: otlp, endpoint: http://127.0.0.1:4318/v1/traces}

Every field has a default, so the section may be left out: metrics on (open), logs as
text on a terminal and JSON otherwise, one access-log line per request, no request log,
no tracing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

MIB = 1024 * 1024
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsSettings(_Strict):
    """Prometheus metrics at GET /metrics (text exposition format)."""

    enabled: bool = True
    key: SecretStr | None = Field(
        None, description="Bearer key a scraper must send; unset: /metrics is open"
    )
    latency_buckets: tuple[float, ...] = Field(
        SECONDS_BUCKETS, min_length=1, description="histogram bounds in seconds"
    )
    refresh_interval: float = Field(
        1.0, gt=0, description="seconds between gauge updates of each worker (several workers)"
    )


class LogSettings(_Strict):
    """The gateway's own log: one record per line on stderr."""

    format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON (one object per line) otherwise"
    )
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(True, description="one line per finished request, at level info")
    prompts: bool = Field(
        False, description="include the request's prompt text in access-log lines"
    )
    queue_size: int = Field(
        10_000, ge=1, description="lines waiting for stderr; beyond it lines are dropped"
    )


class RequestLogSettings(_Strict):
    """A JSONL log of routing decisions and outcomes for `polyroute replay`."""

    path: str | None = Field(
        None, description="JSONL file; relative: to the config file's directory; unset: off"
    )
    prompts: bool = Field(
        False, description="log the prompt itself (messages/prompt/input), not just its hash"
    )
    max_bytes: int = Field(100 * MIB, ge=4096, description="rotate when the file passes this")
    backups: int = Field(5, ge=0, description="rotated files kept: path.1 ... path.N")
    queue_size: int = Field(20_000, ge=1, description="lines waiting; more: dropped, counted")
    flush_interval: float = Field(0.5, gt=0, description="seconds between writes at low traffic")
    remember: int = Field(
        100_000, ge=0, description="recent request ids whose feedback is accepted"
    )


class TracingSettings(_Strict):
    """OpenTelemetry spans (needs ``pip install 'polyroute[otel]'``)."""

    enabled: bool = False
    exporter: Literal["otlp", "console", "global"] = Field(
        "otlp", description="global: the tracer provider the process already set up"
    )
    endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL; unset: OTEL_EXPORTER_OTLP_* or localhost:4318"
    )
    service_name: str = "polyroute"
    sample_ratio: float = Field(1.0, ge=0, le=1, description="share of requests traced")


class ObservabilitySettings(_Strict):
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    request_log: RequestLogSettings = Field(default_factory=RequestLogSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
