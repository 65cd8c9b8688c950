"""Telemetry: builds a gateway's metrics, access log, request log and tracing from the
config's `observability:` section and registers them as outcome observers.

`Gateway.__init__` calls `Telemetry.attach(gateway)`; nothing here opens a file or starts
a thread before `start()` (the CLI builds a Gateway just to validate a config).
Process-wide logging (format, level, redaction) is set up by the worker that serves
(`polyroute.observability.logs.configure_logging`), not per gateway.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyroute.observability.access_log import AccessLog
from polyroute.observability.logs import Redactor, config_secrets
from polyroute.observability.metrics import Metrics, NullMetrics
from polyroute.observability.request_log import RequestLog

if TYPE_CHECKING:
    from polyroute.config.schema import GatewayConfig
    from polyroute.gateway import Gateway
    from polyroute.observability.tracing import Tracing


class Telemetry:
    """The observability parts of one gateway."""

    def __init__(
        self,
        metrics: Metrics | NullMetrics,
        access_log: AccessLog | None = None,
        request_log: RequestLog | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.request_log = request_log
        self.tracing = tracing

    @classmethod
    def attach(cls, gateway: Gateway) -> Telemetry:
        """Build from `gateway.config` and register the observers on `gateway`."""
        config = gateway.config
        settings = config.observability
        metrics: Metrics | NullMetrics = (
            Metrics(settings.metrics) if settings.metrics.enabled else NullMetrics()
        )
        access_log = AccessLog(settings.logs) if settings.logs.access_log else None
        request_log = None
        if settings.request_log.path:
            path = request_log_path(config)
            redact = Redactor(config_secrets(config)) if settings.request_log.prompts else None
            request_log = RequestLog(path, settings.request_log, redact)
        tracing = _tracing(config) if settings.tracing.enabled else None
        telemetry = cls(metrics, access_log, request_log, tracing)
        metrics.bind(gateway)
        for observer in (metrics, access_log, request_log, tracing):
            if observer is not None and not isinstance(observer, NullMetrics):
                gateway.observers.add(observer)
        if tracing is not None:
            tracing.instrument(gateway)
        telemetry._sources(gateway)
        return telemetry

    def _sources(self, gateway: Gateway) -> None:
        """Counts other parts keep, published as metrics."""
        metrics = self.metrics
        request_log = self.request_log
        if request_log is not None:
            metrics.add_source(
                "polyroute_request_log_lines",
                "Lines written to the request log",
                lambda: request_log.written,
            )
            metrics.add_source(
                "polyroute_request_log_dropped",
                "Request-log lines dropped (queue full or write failed)",
                lambda: request_log.dropped + request_log.writer.failed,
            )
        from polyroute.observability.logs import current_sink

        metrics.add_source(
            "polyroute_log_lines_dropped",
            "Log lines dropped because stderr could not keep up",
            lambda: sink.dropped if (sink := current_sink()) is not None else 0,
        )
        state = getattr(gateway, "state", None)  # shared state: Redis health, if in use
        if getattr(state, "redis", None) is not None:
            for figure, kind, help_text in (
                ("fallbacks", "counter", "Decisions taken on local state while Redis was down"),
                ("errors", "counter", "Redis calls that failed or timed out"),
                ("outages", "counter", "Times Redis became unreachable"),
                ("available", "gauge", "Workers that reach Redis now"),
            ):
                metrics.add_source(
                    f"polyroute_redis_{figure}",
                    help_text,
                    _snapshot_reader(state, figure),
                    kind="counter" if kind == "counter" else "gauge",
                )
        records = getattr(gateway, "records", None)
        writer = getattr(records, "writer", None)
        if writer is not None:
            for attribute, kind, help_text in (
                ("written", "counter", "Request records written to the database"),
                ("dropped", "counter", "Request records dropped (queue full or shutdown)"),
                ("failed", "counter", "Request records the database refused"),
                ("queued", "gauge", "Request records waiting to be written"),
            ):
                metrics.add_source(
                    f"polyroute_records_{attribute}",
                    help_text,
                    _reader(writer, attribute),
                    kind="counter" if kind == "counter" else "gauge",
                )

    async def start(self) -> None:
        await self.metrics.start()
        if self.request_log is not None:
            self.request_log.start()

    async def aclose(self) -> None:
        """After the drain: write the request log's queue, flush the metrics."""
        if self.request_log is not None:
            await self.request_log.aclose()
        await self.metrics.aclose()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


def _reader(obj: Any, attribute: str) -> Any:
    return lambda: float(getattr(obj, attribute))


def _snapshot_reader(obj: Any, key: str) -> Any:
    return lambda: float(obj.snapshot().get(key, 0))


def request_log_path(config: GatewayConfig) -> Path:
    """`request_log.path`, relative to the config file's directory (or the working
    directory for a config that came from no file)."""
    raw = config.observability.request_log.path
    assert raw is not None
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    source = Path(config.source)
    base = source.parent if source.is_file() else Path.cwd()
    return base / path


def _tracing(config: GatewayConfig) -> Tracing:
    from polyroute.config.errors import ConfigProblem
    from polyroute.observability.tracing import OtelMissing, Tracing

    try:
        return Tracing.from_settings(config.observability.tracing)
    except OtelMissing as exc:
        raise config.error(
            [ConfigProblem(("observability", "tracing", "enabled"), str(exc))]
        ) from None
