"""OpenTelemetry traces (optional: ``pip install 'polyroute[otel]'``).

::

    observability:
      tracing: {enabled: true, exporter: otlp, endpoint: http://collector:4318/v1/traces}

With tracing on, each HTTP request gets a server span (``POST /v1/chat/completions``)
with children: ``polyroute.route`` (the routing decision: route, strategy, chosen
deployment, propensity), one ``polyroute.attempt`` per attempt (deployment; error status
and type when it failed) and, inside each, ``polyroute.upstream`` (the upstream call up to
its response headers: upstream model, HTTP status). When the request ends its span gets
the request id, deployment, attempts, tokens and cost. A stream's attempt ends at its first
chunk; the server span lasts until the stream closes.

Exporters: ``otlp`` (OTLP over HTTP; `endpoint` or the standard OTEL_EXPORTER_OTLP_*
variables), ``console`` (spans as JSON on stdout, for a look) or ``global`` (the tracer
provider the process already configured, e.g. by ``opentelemetry-instrument``).

With tracing off nothing here is imported and the request path is unchanged: the spans
come from wrapping the router's `decide`, the executor's per-attempt method and each
provider's `send` of this gateway instance when it is built.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from polyroute.errors import UpstreamError
from polyroute.observability.settings import TracingSettings
from polyroute.outcomes import Feedback, Outcome
from polyroute.providers.base import UpstreamRequest, UpstreamResponse

if TYPE_CHECKING:
    from polyroute.context import RequestContext
    from polyroute.deployment import Deployment
    from polyroute.execution.executor import Attempt, AttemptRunner
    from polyroute.gateway import Gateway
    from polyroute.providers.request import Timeouts
    from polyroute.routing.decision import Decision
    from polyroute.routing.router import Decide

T = TypeVar("T")

UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


class OtelMissing(RuntimeError):
    """The otel extra (or the OTLP exporter) is not installed."""


def tracer_provider(settings: TracingSettings) -> Any:
    """A TracerProvider for `settings` (the global one for ``exporter: global``)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
    except ImportError:
        raise OtelMissing("tracing needs OpenTelemetry: pip install 'polyroute[otel]'") from None
    if settings.exporter == "global":
        return trace.get_tracer_provider()
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    if settings.exporter == "console":
        exporter: Any = ConsoleSpanExporter(out=sys.stdout)  # stdout now, not at import
    else:
        try:  # a module of its own (not in the sdk): imported by name, typed or not
            otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        except ImportError:
            raise OtelMissing(
                "tracing.exporter otlp needs the OTLP exporter: pip install 'polyroute[otel]'"
            ) from None
        exporter = otlp.OTLPSpanExporter(endpoint=settings.endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """Spans for one gateway (see the module doc); also an outcome observer."""

    def __init__(self, provider: Any, *, owned: bool = True) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.provider = provider
        self.owned = owned  # shut down with the gateway (not a provider set up elsewhere)
        self.tracer = provider.get_tracer("polyroute")
        self._trace = trace
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._Status, self._error = Status, StatusCode.ERROR

    @classmethod
    def from_settings(cls, settings: TracingSettings) -> Tracing:
        return cls(tracer_provider(settings), owned=settings.exporter != "global")

    def instrument(self, gateway: Gateway) -> None:
        """Wrap this gateway's router, executor and providers so they make spans."""
        router = gateway.router
        executor = gateway.executor
        router.wrap_decide = self._traced_decide  # hooks: both are compiled (setup.py)
        executor.wrap_attempt = self._traced_attempt
        executor.providers = {
            name: TracedProvider(provider, name, self)
            for name, provider in executor.providers.items()
        }

    def _traced_decide(self, decide: Decide, ctx: RequestContext) -> Decision:
        from polyroute.observability.request_log import propensity

        with self.tracer.start_as_current_span("polyroute.route") as span:
            decision = decide(ctx)
            span.set_attribute("polyroute.route", decision.route)
            span.set_attribute("polyroute.strategy", decision.strategy)
            span.set_attribute("polyroute.deployment", decision.deployment.name)
            span.set_attribute("polyroute.path", list(decision.path))
            chance = propensity(decision)
            if chance is not None:
                span.set_attribute("polyroute.propensity", chance)
            if decision.arm is not None:
                span.set_attribute("polyroute.arm", decision.arm)
            return decision

    async def _traced_attempt(
        self,
        run: AttemptRunner[T],
        deployment: Deployment,
        limits: Timeouts,
        call: Attempt[T],
    ) -> T | UpstreamError:
        with self.tracer.start_as_current_span("polyroute.attempt") as span:
            span.set_attribute("polyroute.deployment", deployment.name)
            result = await run(deployment, limits, call)
            if isinstance(result, UpstreamError):
                span.set_status(self._Status(self._error, result.error_type))
                span.set_attribute("error.type", type(result).__name__)
                span.set_attribute("http.response.status_code", result.status)
            return result

    async def send(self, provider: Any, name: str, request: UpstreamRequest) -> UpstreamResponse:
        with self.tracer.start_as_current_span("polyroute.upstream", kind=self._client) as span:
            span.set_attribute("polyroute.deployment", name)
            upstream_model = request.body.get("model")
            if isinstance(upstream_model, str):
                span.set_attribute("gen_ai.request.model", upstream_model)
            span.set_attribute("polyroute.stream", request.stream)
            response: UpstreamResponse = await provider.send(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                span.set_status(self._Status(self._error, f"HTTP {response.status}"))
            return response

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The server span of each request (not for /metrics and the health checks)."""
        if request.path in UNTRACED_PATHS:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        with self.tracer.start_as_current_span(
            f"{request.method} {route}", kind=self._server
        ) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.path", request.path)
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(self._Status(self._error, f"HTTP {response.status}"))
            return response

    def observe(self, outcome: Outcome) -> None:
        span = self._trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("polyroute.request_id", outcome.ctx.request_id)
        span.set_attribute("polyroute.attempts", outcome.attempts)
        decision = outcome.decision
        if decision is not None:
            span.set_attribute("polyroute.route", decision.route)
            span.set_attribute("polyroute.strategy", decision.strategy)
        if outcome.deployment is not None:
            span.set_attribute("polyroute.deployment", outcome.deployment.name)
        usage = outcome.usage
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        if outcome.cost is not None:
            span.set_attribute("polyroute.cost_usd", outcome.cost)
        if outcome.ttft is not None:
            span.set_attribute("polyroute.ttft_s", outcome.ttft)
        if outcome.error_type is not None:
            span.set_attribute("error.type", outcome.error_type)

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if self.owned and shutdown is not None:
            shutdown()


class TracedProvider:
    """A provider whose `send` makes a ``polyroute.upstream`` span; anything else is the
    wrapped provider's."""

    def __init__(self, provider: Any, name: str, tracing: Tracing) -> None:
        self._provider = provider
        self._name = name
        self._tracing = tracing

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        return await self._tracing.send(self._provider, self._name, request)

    async def aclose(self) -> None:
        await self._provider.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)
