"""The metrics' per-request half: plain counters per label set, compiled (setup.py).

`SeriesTable.observe` runs once per finished request and only adds to Python numbers (one
dict lookup, a few additions, a bisect for the histogram bucket); polyroute.observability
.metrics moves what gathered here into prometheus-client's metrics at scrape time (and
every `refresh_interval` with several workers). Label values are bounded as the metrics
module's docstring says; past `MAX_SERIES` label sets new ones are counted under
``"other"``.
"""

from __future__ import annotations

from bisect import bisect_left

from polyroute.kinds import EndpointKind
from polyroute.outcomes import Outcome

MAX_SERIES = 5_000
OTHER = "other"
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "upstream_error",
        "timeout_error",
        "overloaded_error",
        "server_error",
    }
)

SeriesKey = tuple[EndpointKind, str, str, str, str | None, int]
"""(kind, route, deployment, strategy, arm, HTTP status)"""


class Series:
    """What one label set (kind, route, deployment, strategy, arm; and a status) gathered
    since the last flush into prometheus-client. Histograms are kept per bucket, not
    cumulative, as prometheus-client keeps them."""

    def __init__(self, labels: tuple[str, str, str, str, str], status: str, buckets: int) -> None:
        self.labels = labels
        self.status = status
        self.requests = 0
        self.latency_sum = 0.0
        self.latency = [0] * buckets
        self.ttft_count = 0
        self.ttft_sum = 0.0
        self.ttft = [0] * buckets
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.cost = 0.0
        self.dirty = False


class SeriesTable:
    """Every label set's counters, and the counts of rarer events (errors, retries,
    fallbacks, cache lookups) by their own labels, until `take_*` hands them over."""

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        """Histogram upper bounds, ascending, ending with infinity."""
        self.known_routes: frozenset[str] = frozenset()
        self.series: dict[SeriesKey, Series] = {}
        self._dirty: list[Series] = []
        self._overflow: Series | None = None
        self.errors: dict[tuple[str, str, str, str, str], int] = {}
        """(kind, route, deployment, error type, status) -> failed requests"""
        self.retries: dict[tuple[str, str, str], int] = {}
        """(kind, route, deployment) -> attempts beyond the first"""
        self.fallbacks: dict[tuple[str, str, str, str], int] = {}
        """(kind, route, primary, deployment) -> requests another deployment answered"""
        self.cache: dict[tuple[str, str], int] = {}
        """(route, hit|miss) -> response-cache lookups"""

    def observe(self, outcome: Outcome) -> None:
        decision = outcome.decision
        deployment = outcome.deployment
        name = deployment.name if deployment is not None else ""
        ctx = outcome.ctx
        key: SeriesKey
        if decision is not None:
            key = (ctx.kind, decision.route, name, decision.strategy, decision.arm, outcome.status)
        else:  # failed before routing, or a cache hit: the route only if it is a known name
            model = ctx.model
            route = model if model in self.known_routes else ""
            key = (ctx.kind, route, name, "", None, outcome.status)
        series = self.series.get(key)
        if series is None:
            series = self._new_series(key)
        if not series.dirty:
            series.dirty = True
            self._dirty.append(series)
        series.requests += 1
        bounds = self.bounds
        latency = outcome.latency
        series.latency_sum += latency
        series.latency[bisect_left(bounds, latency)] += 1
        ttft = outcome.ttft
        if ttft is not None:
            series.ttft_count += 1
            series.ttft_sum += ttft
            series.ttft[bisect_left(bounds, ttft)] += 1
        usage = outcome.usage
        if usage is not None:
            series.tokens_in += usage.prompt_tokens
            series.tokens_out += usage.completion_tokens
            series.tokens_cached += usage.cached_tokens
        cost = outcome.cost
        if cost:
            series.cost += cost
        self._count_events(series, outcome)

    def _count_events(self, series: Series, outcome: Outcome) -> None:
        """An error, a cache lookup, retries, a fallback: counted by their own labels."""
        labels = series.labels
        if not outcome.ok:
            error_type = outcome.error_type or "server_error"
            if error_type not in ERROR_TYPES:
                error_type = OTHER
            error_key = (labels[0], labels[1], labels[2], error_type, series.status)
            self.errors[error_key] = self.errors.get(error_key, 0) + 1
        cache = outcome.cache
        if cache is not None:
            self.lookup(labels[1] or OTHER, cache == "hit")
        if outcome.attempts > 1:
            retry_key = (labels[0], labels[1], labels[2])
            self.retries[retry_key] = self.retries.get(retry_key, 0) + outcome.attempts - 1
        decision = outcome.decision
        deployment = outcome.deployment
        if (
            decision is not None
            and deployment is not None
            and decision.fan_out is None
            and decision.plan
            and deployment is not decision.plan[0]
        ):
            fallback_key = (labels[0], labels[1], decision.plan[0].name, labels[2])
            self.fallbacks[fallback_key] = self.fallbacks.get(fallback_key, 0) + 1

    def lookup(self, route: str, hit: bool) -> None:
        """Count a response-cache lookup under `route` (already a bounded label)."""
        key = (route, "hit" if hit else "miss")
        self.cache[key] = self.cache.get(key, 0) + 1

    def take_dirty(self) -> list[Series]:
        """The series that gathered something since the last call."""
        dirty, self._dirty = self._dirty, []
        for series in dirty:
            series.dirty = False
        return dirty

    def _new_series(self, key: SeriesKey) -> Series:
        size = len(self.bounds)
        kind = key[0].value
        if len(self.series) >= MAX_SERIES:  # e.g. a plug-in strategy with unbounded arms
            overflow = self._overflow
            if overflow is None:
                overflow = Series((kind, OTHER, OTHER, OTHER, OTHER), OTHER, size)
                self._overflow = overflow
            return overflow
        _, route, deployment, strategy, arm, status = key
        series = Series((kind, route, deployment, strategy, arm or ""), status_label(status), size)
        self.series[key] = series
        return series


_STATUS_TEXT: dict[int, str] = {}


def status_label(status: int) -> str:
    """An HTTP status as a label: its digits, or ``other`` outside 100-599."""
    text = _STATUS_TEXT.get(status)
    if text is None:
        text = str(status) if 100 <= status <= 599 else OTHER
        _STATUS_TEXT[status] = text
    return text
