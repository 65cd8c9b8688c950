"""Live traffic statistics for the dashboard: an outcome observer with rolling windows.

Every finished request lands in the current STEP-second bucket of one series, that of its
route (the name the client asked for, `decision.route`) and the deployment that answered;
the dashboard's views (the whole gateway, each route, each deployment) are sums of those
series, made when read. A series is a ring of HISTORY / STEP buckets reused in place, so
memory is bounded and recording is O(1): a few integer additions and one histogram
increment. A chart point is one bucket; the summary window is the current bucket and the
WINDOW / STEP - 1 before it (55 to 60 s of traffic), divided by the exact time they cover.

Latency (of successful requests; failures count in the error rate) goes into a sparse
log-scale histogram per bucket, bins about 5 % wide, so p50/p99 of any window is a merge
of its buckets' histograms, accurate to within half a bin (about 2.5 %).

Series are keyed by configured names only (routes, deployments), never by anything a
client sent, so their number is bounded by the config. Nothing here holds a key, a prompt
or an answer: the playground's request summaries (`traced`) keep names, figures and the
caller's key *id*.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from polyroute.clock import Clock
from polyroute.formatting import rounded
from polyroute.outcomes import Feedback, Outcome

HISTORY = 300
"""Seconds of buckets kept: the charts' time span."""
WINDOW = 60
"""Seconds the summary figures (QPS, percentiles, error rate, tokens, cost) cover."""
STEP = 5
"""Seconds per bucket, and per chart point."""
SLOTS = HISTORY // STEP
UNROUTED = "(unrouted)"
"""The route of requests refused before routing (limits, bad input)."""
TRACE_HEADER = "x-polyroute-playground"
"""Requests carrying it are remembered for the playground's explanation panel."""
TRACED_MAX = 512

_Sample = tuple[bool, int, int, int, float]
_BINS_PER_E = 20.0  # bin width exp(1/20) = 1.051
_MIN_MS = 0.01


def latency_bin(ms: float) -> int:
    return math.floor(math.log(max(ms, _MIN_MS)) * _BINS_PER_E)


def bin_value(index: int) -> float:
    """The geometric centre of a latency bin, in milliseconds."""
    return math.exp((index + 0.5) / _BINS_PER_E)


def percentile(histogram: dict[int, int], count: int, q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram holding `count` values."""
    if count <= 0:
        return None
    rank = max(1, math.ceil(q * count))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bin_value(index)
    return bin_value(max(histogram))


class _Bucket:
    __slots__ = (
        "cost",
        "errors",
        "latency",
        "ok",
        "requests",
        "slot",
        "targets",
        "tokens_in",
        "tokens_out",
    )

    def __init__(self, slot: int) -> None:
        self.latency: dict[int, int] = {}
        self.targets: dict[str, int] = {}
        self.reset(slot)

    def reset(self, slot: int) -> None:
        self.slot = slot
        self.requests = self.errors = self.ok = 0
        self.tokens_in = self.tokens_out = 0
        self.cost = 0.0
        if self.latency:
            self.latency.clear()
        if self.targets:
            self.targets.clear()


class Series:
    """STEP-second buckets over the last HISTORY seconds, plus totals since start."""

    __slots__ = ("cost", "errors", "requests", "ring", "tokens_in", "tokens_out")

    def __init__(self) -> None:
        self.ring: list[_Bucket | None] = [None] * SLOTS
        self.requests = self.errors = self.tokens_in = self.tokens_out = 0
        self.cost = 0.0

    def add(self, slot: int, sample: _Sample) -> None:
        """Count one outcome: `sample` is (ok, latency bin, tokens in, tokens out, cost)."""
        ok, bin_index, tokens_in, tokens_out, cost = sample
        index = slot % SLOTS
        bucket = self.ring[index]
        if bucket is None:
            bucket = self.ring[index] = _Bucket(slot)
        elif bucket.slot != slot:
            bucket.reset(slot)
        bucket.requests += 1
        self.requests += 1
        if ok:
            bucket.ok += 1
            latency = bucket.latency
            latency[bin_index] = latency.get(bin_index, 0) + 1
        else:
            bucket.errors += 1
            self.errors += 1
        if tokens_in or tokens_out:
            bucket.tokens_in += tokens_in
            bucket.tokens_out += tokens_out
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
        if cost:
            bucket.cost += cost
            self.cost += cost

    @classmethod
    def merged(cls, parts: Iterable[Series], targets: Iterable[str | None] | None = None) -> Series:
        """The sum of `parts` (recording keeps one series per route and deployment; the
        dashboard's views are merged when read, a few times a second at most, instead of
        three series being written per request). With `targets`, each part's requests are
        counted in the merged buckets' `targets` under that part's name."""
        total = cls()
        names: Iterable[str | None] = targets if targets is not None else itertools.repeat(None)
        for part, name in zip(parts, names, strict=False):
            total.requests += part.requests
            total.errors += part.errors
            total.tokens_in += part.tokens_in
            total.tokens_out += part.tokens_out
            total.cost += part.cost
            for index, bucket in enumerate(part.ring):
                if bucket is not None:
                    total._absorb(index, bucket, name)
        return total

    def _absorb(self, index: int, bucket: _Bucket, target: str | None) -> None:
        mine = self.ring[index]
        if mine is None or mine.slot < bucket.slot:
            mine = self.ring[index] = _Bucket(bucket.slot)
        elif mine.slot > bucket.slot:
            return  # an older turn of the ring: not in the merged view
        _accumulate(mine, bucket)
        if target is not None and bucket.requests:
            mine.targets[target] = mine.targets.get(target, 0) + bucket.requests

    def bucket(self, slot: int) -> _Bucket | None:
        """The bucket of `slot`, if it saw traffic."""
        bucket = self.ring[slot % SLOTS]
        return bucket if bucket is not None and bucket.slot == slot else None

    def buckets(self, first: int, last: int) -> Iterator[_Bucket]:
        """The buckets of slots first..last (inclusive) that saw traffic."""
        for slot in range(max(first, last - SLOTS + 1), last + 1):
            bucket = self.bucket(slot)
            if bucket is not None:
                yield bucket


class _Sum:
    """The merge of a run of buckets."""

    __slots__ = (
        "cost",
        "errors",
        "latency",
        "ok",
        "requests",
        "targets",
        "tokens_in",
        "tokens_out",
    )

    def __init__(self, buckets: Iterator[_Bucket]) -> None:
        self.requests = self.errors = self.ok = self.tokens_in = self.tokens_out = 0
        self.cost = 0.0
        self.latency: dict[int, int] = {}
        self.targets: dict[str, int] = {}
        for bucket in buckets:
            _accumulate(self, bucket)

    def p(self, q: float) -> float | None:
        return _rounded(percentile(self.latency, self.ok, q))


def _accumulate(total: _Bucket | _Sum, bucket: _Bucket) -> None:
    """Add `bucket`'s counts, latency histogram and decisions to `total`."""
    total.requests += bucket.requests
    total.errors += bucket.errors
    total.ok += bucket.ok
    total.tokens_in += bucket.tokens_in
    total.tokens_out += bucket.tokens_out
    total.cost += bucket.cost
    for index, count in bucket.latency.items():
        total.latency[index] = total.latency.get(index, 0) + count
    for name, count in bucket.targets.items():
        total.targets[name] = total.targets.get(name, 0) + count


class Traffic:
    """The outcome observer behind /admin/stats (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._started = clock.now()
        self._pairs: dict[tuple[str, str | None], Series] = {}  # (route, deployment)
        self._traced: OrderedDict[str, tuple[str | None, dict[str, Any]]] = OrderedDict()
        self._cache: tuple[int, dict[str, Any]] | None = None

    # -- recording (the request path) ------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        slot = int(self._clock.now() // STEP)
        ok = outcome.ok
        bin_index = latency_bin(outcome.latency * 1000.0) if ok else 0
        usage = outcome.usage
        tokens_in = usage.prompt_tokens if usage is not None else 0
        tokens_out = usage.completion_tokens if usage is not None else 0
        cost = outcome.cost or 0.0
        deployment = outcome.deployment
        name = deployment.name if deployment is not None else None
        decision = outcome.decision
        route = decision.route if decision is not None else UNROUTED
        pair = (route, name)
        series = self._pairs.get(pair)
        if series is None:
            series = self._pairs[pair] = Series()
        series.add(slot, (ok, bin_index, tokens_in, tokens_out, cost))
        if outcome.ctx.header(TRACE_HEADER):
            self._trace(outcome)

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None  # feedback is the experiments' and learners' business

    def _trace(self, outcome: Outcome) -> None:
        decision = outcome.decision
        usage = outcome.usage
        summary: dict[str, Any] = {
            "request_id": outcome.request_id,
            "kind": outcome.kind.value,
            "route": decision.route if decision is not None else None,
            "strategy": decision.strategy if decision is not None else None,
            "deployment": outcome.deployment.name if outcome.deployment is not None else None,
            "ok": outcome.ok,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "latency_ms": rounded(outcome.latency * 1000, 10),
            "ttft_ms": None if outcome.ttft is None else rounded(outcome.ttft * 1000, 10),
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": usage.cached_tokens,
                "images": usage.images,
                "estimated": usage.estimated,
            },
            "cost_usd": None if outcome.cost is None else rounded(outcome.cost, 100_000_000),
            "error_code": outcome.error_code,
        }
        self._traced[outcome.request_id] = (outcome.ctx.caller.key_id, summary)
        if len(self._traced) > TRACED_MAX:
            self._traced.popitem(last=False)

    def traced(self, request_id: str, key_id: str | None) -> dict[str, Any] | None:
        """A playground request's summary, only for the API key that sent it."""
        entry = self._traced.get(request_id)
        if entry is None or entry[0] != key_id:
            return None
        return entry[1]

    # -- reading (the dashboard) -----------------------------------------------------------

    @property
    def total(self) -> Series:
        """The whole gateway's series."""
        return Series.merged(self._pairs.values())

    @property
    def routes(self) -> dict[str, Series]:
        """A series per route, its buckets' `targets` counting the deployments it chose."""
        by_route: dict[str, list[tuple[Series, str | None]]] = {}
        for (route, name), series in self._pairs.items():
            by_route.setdefault(route, []).append((series, name))
        return {
            route: Series.merged(*zip(*parts, strict=True)) for route, parts in by_route.items()
        }

    @property
    def deployments(self) -> dict[str, Series]:
        by_name: dict[str, list[Series]] = {}
        for (_, name), series in self._pairs.items():
            if name is not None:
                by_name.setdefault(name, []).append(series)
        return {name: Series.merged(parts) for name, parts in by_name.items()}

    def snapshot(self) -> dict[str, Any]:
        """Summaries over the last WINDOW seconds and chart series over HISTORY seconds, for
        the whole gateway, each route and each deployment (computed at most once a second)."""
        now = self._clock.now()
        second = int(now)
        if self._cache is not None and self._cache[0] == second:
            return self._cache[1]
        uptime = now - self._started
        slot = int(now // STEP)
        first = slot - WINDOW // STEP + 1  # the current bucket and those before it
        span = max(1.0, min(now - first * STEP, uptime))
        data = {
            "uptime_s": round(uptime, 1),
            "window_s": WINDOW,
            "history_s": HISTORY,
            "step_s": STEP,
            "total": self._describe(self.total, first, slot, span),
            "routes": {
                name: self._describe(series, first, slot, span)
                for name, series in self.routes.items()
            },
            "deployments": {
                name: self._describe(series, first, slot, span)
                for name, series in self.deployments.items()
            },
        }
        self._cache = (second, data)
        return data

    @staticmethod
    def _describe(series: Series, first: int, slot: int, span: float) -> dict[str, Any]:
        window = _Sum(series.buckets(first, slot))
        summary: dict[str, Any] = {
            "qps": round(window.requests / span, 3),
            "requests_1m": window.requests,
            "errors_1m": window.errors,
            "error_rate": round(window.errors / window.requests, 4) if window.requests else None,
            "p50_ms": window.p(0.5),
            "p99_ms": window.p(0.99),
            "tokens_in_1m": window.tokens_in,
            "tokens_out_1m": window.tokens_out,
            "cost_1m": round(window.cost, 8),
            "totals": {
                "requests": series.requests,
                "errors": series.errors,
                "tokens_in": series.tokens_in,
                "tokens_out": series.tokens_out,
                "cost": round(series.cost, 8),
            },
            "series": _chart(series, slot - 1),
        }
        if window.targets:
            summary["decisions_1m"] = dict(sorted(window.targets.items(), key=lambda kv: -kv[1]))
        return summary


def _chart(series: Series, last: int) -> dict[str, list[Any]]:
    """Columns of SLOTS points, one per bucket, the last one the complete bucket `last`."""
    chart: dict[str, list[Any]] = {
        "t": [],
        "qps": [],
        "p50_ms": [],
        "p99_ms": [],
        "error_rate": [],
        "tokens_per_s": [],
        "cost": [],
    }
    for i in range(SLOTS):
        bucket = series.bucket(last - SLOTS + 1 + i)
        chart["t"].append((i - SLOTS + 1) * STEP)
        if bucket is None:
            for column in ("qps", "tokens_per_s", "cost"):
                chart[column].append(0)
            for column in ("p50_ms", "p99_ms", "error_rate"):
                chart[column].append(None)
            continue
        chart["qps"].append(round(bucket.requests / STEP, 3))
        chart["p50_ms"].append(_rounded(percentile(bucket.latency, bucket.ok, 0.5)))
        chart["p99_ms"].append(_rounded(percentile(bucket.latency, bucket.ok, 0.99)))
        chart["error_rate"].append(round(bucket.errors / bucket.requests, 4))
        chart["tokens_per_s"].append(round((bucket.tokens_in + bucket.tokens_out) / STEP, 2))
        chart["cost"].append(round(bucket.cost, 8))
    return chart


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
