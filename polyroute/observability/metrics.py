"""Prometheus metrics: an outcome observer that counts requests, plus gauges read from the
gateway's state when scraped; served at GET /metrics.

Per request the observer only adds to plain Python numbers of the request's series
(polyroute.observability.series, compiled: one dict lookup, a few additions, a bisect for
the histogram bucket); the numbers are moved into prometheus-client's metrics at scrape
time, and every `refresh_interval` seconds when several workers share the figures. That
keeps the request path at about a microsecond (bench/observers_cost.py) instead of the
~10 microseconds of calling prometheus-client once per metric per request.

**Labels** are bounded: `route`, `deployment`, `strategy` and `arm` come from the config
(the decision's route, never the `model` string a client sent: a request that failed before
routing has ``route=""``), `kind` is one of four, `status` an HTTP status and `error_type`
one of the gateway's error types (``other`` for anything an upstream invented). As a last
guard, past `MAX_SERIES` label sets new ones are counted under ``"other"`` values.
Errors, retries, fallbacks and cache lookups are counted the same way and reach
prometheus-client at the same moments.

**Several workers** (``polyroute serve --workers N``): the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before starting the workers
(`polyroute.observability.multiprocess`), each worker writes its figures there (prometheus-client's
multiprocess mode: memory-mapped files) and whichever worker answers a scrape reads and
sums every worker's files, so totals are exact (within one `refresh_interval` for the
other workers). Gauges combine as: in-flight counts summed over live workers, breaker state
and ejections the maximum over live workers. prometheus-client's process collector cannot
see other processes, so in multiprocess mode ``process_cpu_seconds_total`` (all workers,
dead ones included) and ``process_resident_memory_bytes`` (live workers) are written by
each worker itself, and ``polyroute_workers`` counts the live ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from polyroute.observability.multiprocess import multiprocess_dir
from polyroute.observability.series import MAX_SERIES, OTHER, SeriesTable
from polyroute.observability.settings import MetricsSettings
from polyroute.outcomes import Feedback, Outcome

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from polyroute.gateway import Gateway

log = logging.getLogger("polyroute.metrics")
BREAKER_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
SERIES_LABELS = ("kind", "route", "deployment", "strategy", "arm")
SourceKind = Literal["counter", "gauge"]


@dataclass(slots=True)
class _Source:
    name: str
    read: Callable[[], float]
    kind: SourceKind
    metric: Any
    last: float = 0.0
    failed: bool = False


class Metrics:
    """The gateway's Prometheus metrics (one per Gateway; see the module doc)."""

    enabled = True
    observe: Callable[[Outcome], None]
    """The outcome observer: the compiled series table's own method (no Python frame
    of this class on the request path)."""

    def __init__(self, settings: MetricsSettings) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )
        from prometheus_client.process_collector import ProcessCollector

        no_created: Any = disable_created_metrics  # untyped upstream
        no_created()  # no `_created` twin of every series (process-wide)

        self.settings = settings
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        labels = SERIES_LABELS
        buckets = tuple(sorted(settings.latency_buckets))
        self._table = SeriesTable([*buckets, float("inf")])
        self.observe = self._table.observe
        self._requests = Counter(
            "polyroute_requests",
            "Finished requests, by endpoint kind, route, deployment, strategy, A/B arm and "
            "HTTP status",
            (*labels, "status"),
            registry=reg,
        )
        self._errors = Counter(
            "polyroute_request_errors",
            "Failed requests, by error type and HTTP status",
            ("kind", "route", "deployment", "error_type", "status"),
            registry=reg,
        )
        self._latency = Histogram(
            "polyroute_request_duration_seconds",
            "Seconds from the request's arrival to the end of its answer (or stream)",
            labels,
            buckets=buckets,
            registry=reg,
        )
        self._ttft = Histogram(
            "polyroute_time_to_first_token_seconds",
            "Seconds from the request's arrival to the first streamed chunk (streams only)",
            labels,
            buckets=buckets,
            registry=reg,
        )
        self._tokens = Counter(
            "polyroute_tokens",
            "Tokens as the upstream reported them (else estimated): direction in (prompt, "
            "cached prompt included), cached (of in) or out (completion)",
            (*labels, "direction"),
            registry=reg,
        )
        self._cost = Counter(
            "polyroute_cost_usd",
            "US dollars at the deployments' configured prices",
            labels,
            registry=reg,
        )
        self._retries = Counter(
            "polyroute_retries",
            "Attempts beyond the first (same deployment again or a fallback), by the "
            "deployment that answered last",
            ("kind", "route", "deployment"),
            registry=reg,
        )
        self._fallbacks = Counter(
            "polyroute_fallbacks",
            "Requests answered (or failed last) by another deployment than the planned primary",
            ("kind", "route", "primary", "deployment"),
            registry=reg,
        )
        self._cache = Counter(
            "polyroute_cache_lookups",
            "Response cache lookups by route and result (hit, miss)",
            ("route", "result"),
            registry=reg,
        )
        self._in_flight = Gauge(
            "polyroute_in_flight_requests",
            "Requests being served now (all workers)",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._deployment_in_flight = Gauge(
            "polyroute_deployment_in_flight",
            "Attempts and open streams per deployment now (all workers)",
            ("deployment",),
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._breaker = Gauge(
            "polyroute_breaker_state",
            "Circuit breaker per deployment: 0 closed (healthy), 1 half-open (probing), "
            "2 open (ejected); the worst over the workers",
            ("deployment",),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._ejections = Gauge(
            "polyroute_breaker_ejections",
            "Consecutive ejections of the deployment (0 once it recovered for long)",
            ("deployment",),
            registry=reg,
            multiprocess_mode="livemax",
        )
        if self.multiprocess:
            self._cpu = Counter(
                "process_cpu_seconds",
                "CPU seconds of the gateway's worker processes (exited ones included)",
                registry=reg,
            )
            self._rss = Gauge(
                "process_resident_memory_bytes",
                "Resident memory of the live worker processes, summed",
                registry=reg,
                multiprocess_mode="livesum",
            )
            self._workers = Gauge(
                "polyroute_workers",
                "Live worker processes",
                registry=reg,
                multiprocess_mode="livesum",
            )
            self._cpu_seen = 0.0
        else:
            ProcessCollector(registry=reg)
        self._Counter, self._Gauge = Counter, Gauge
        self._sources: list[_Source] = []
        self._gateway: Gateway | None = None
        self._deployments: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._exposition: CollectorRegistry | None = None

    def bind(self, gateway: Gateway) -> None:
        """Read gauges from `gateway` at scrape time."""
        self._gateway = gateway
        self._table.known_routes = frozenset(gateway.router.policies)
        self._deployments = tuple(gateway.router.deployments)

    # -- the request path (observe: the series table's, see above) ---------------------------

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None

    def cache_lookup(self, route: str, hit: bool) -> None:
        """Count a response-cache lookup that no Outcome reports (outcomes with `cache`
        set are counted by `observe`): `route` must be a configured name, anything else
        is counted as ``other``."""
        table = self._table
        table.lookup(route if route in table.known_routes else OTHER, hit)

    @property
    def series_count(self) -> int:
        """Label sets with a series of their own (at most MAX_SERIES; beyond that, new
        ones share one ``other`` set)."""
        return len(self._table.series)

    # -- moving figures into prometheus-client -------------------------------------------------

    def flush(self) -> None:
        """Add what the series gathered to the Prometheus metrics (scrape time, and
        periodically with several workers)."""
        table = self._table
        for series in table.take_dirty():
            labels = series.labels
            if series.requests:
                self._requests.labels(*labels, series.status).inc(series.requests)
                _add_histogram(self._latency.labels(*labels), series.latency, series.latency_sum)
                series.requests, series.latency_sum = 0, 0.0
            if series.ttft_count:
                _add_histogram(self._ttft.labels(*labels), series.ttft, series.ttft_sum)
                series.ttft_count, series.ttft_sum = 0, 0.0
            tokens = (
                ("in", series.tokens_in),
                ("out", series.tokens_out),
                ("cached", series.tokens_cached),
            )
            for direction, amount in tokens:
                if amount:
                    self._tokens.labels(*labels, direction).inc(amount)
            series.tokens_in = series.tokens_out = series.tokens_cached = 0
            if series.cost:
                self._cost.labels(*labels).inc(series.cost)
                series.cost = 0.0
        pending: list[tuple[Any, dict[Any, int]]] = [
            (self._errors, table.errors),
            (self._retries, table.retries),
            (self._fallbacks, table.fallbacks),
            (self._cache, table.cache),
        ]
        for metric, counts in pending:
            for labels, count in counts.items():
                metric.labels(*labels).inc(count)
            counts.clear()

    def refresh(self) -> None:
        """Flush the counters and set the gauges from the gateway's state now."""
        self.flush()
        gateway = self._gateway
        if gateway is not None:
            self._in_flight.set(gateway.in_flight)
            executor = gateway.executor
            stats = executor.stats.snapshot()
            health = executor.breakers.snapshot()
            for name in self._deployments:
                live = stats.get(name)
                self._deployment_in_flight.labels(name).set(live.in_flight if live else 0)
                status = health.get(name)
                state = BREAKER_STATES.get(status.state, 2.0) if status is not None else 0.0
                self._breaker.labels(name).set(state)
                self._ejections.labels(name).set(status.ejections if status is not None else 0)
        if self.multiprocess:
            cpu = time.process_time()
            if cpu > self._cpu_seen:
                self._cpu.inc(cpu - self._cpu_seen)
                self._cpu_seen = cpu
            self._rss.set(_resident_bytes())
        for source in self._sources:
            self._read_source(source)

    # -- figures other components own ----------------------------------------------------------

    def add_source(
        self,
        name: str,
        documentation: str,
        read: Callable[[], float],
        *,
        kind: SourceKind = "counter",
    ) -> None:
        """Publish a figure another component keeps (e.g. records dropped, Redis fallbacks):
        `read()` is called at each scrape/refresh. A counter source returns a running total
        (its increases are added); a gauge source the current value (summed over workers).
        `name` is the metric name without ``_total``."""
        if kind == "counter":
            metric: Any = self._Counter(name, documentation, registry=self.registry)
        else:
            metric = self._Gauge(
                name, documentation, registry=self.registry, multiprocess_mode="livesum"
            )
        self._sources.append(_Source(name, read, kind, metric))

    def _read_source(self, source: _Source) -> None:
        try:
            value = float(source.read())
        except Exception:
            if not source.failed:
                source.failed = True
                log.warning("metric source %s failed", source.name, exc_info=True)
            return
        if source.kind == "gauge":
            source.metric.set(value)
        elif value > source.last:
            source.metric.inc(value - source.last)
            source.last = value
        elif value < source.last:  # the component restarted its count
            source.last = value

    # -- exposition and the worker's refresh task -----------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition for GET /metrics, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.refresh()
        registry = self.registry
        if self.multiprocess:
            registry = self._exposition or self._multiprocess_registry()
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def _multiprocess_registry(self) -> CollectorRegistry:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry(auto_describe=True)
        collector: Any = MultiProcessCollector  # untyped upstream
        collector(registry)
        self._exposition = registry
        return registry

    async def start(self) -> None:
        """A serving worker: counted in polyroute_workers, its gauges refreshed."""
        if self.multiprocess and self._task is None:
            self._workers.set(1)  # not at build: `polyroute check` builds gateways too
            self._task = asyncio.create_task(self._refresh_periodically())

    async def _refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_interval)
            try:
                self.refresh()
            except Exception:
                log.exception("metrics refresh failed")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.refresh()  # several workers: what this one counted stays in its files
        if self.multiprocess:
            self._workers.set(0)


class NullMetrics:
    """Metrics switched off: the same calls, doing nothing."""

    enabled = False
    multiprocess = False

    def observe(self, outcome: Outcome) -> None:
        return None

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None

    def cache_lookup(self, route: str, hit: bool) -> None:
        return None

    def add_source(
        self,
        name: str,
        documentation: str,
        read: Callable[[], float],
        *,
        kind: SourceKind = "counter",
    ) -> None:
        return None

    def bind(self, gateway: Gateway) -> None:
        return None

    def refresh(self) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _add_histogram(child: Any, counts: list[int], total: float) -> None:
    """Add bucket counts (non-cumulative, as prometheus-client keeps them) and a sum."""
    buckets = child._buckets
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
            counts[index] = 0
    child._sum.inc(total)


def _resident_bytes() -> float:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return float(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


__all__ = ["MAX_SERIES", "Metrics", "NullMetrics"]
