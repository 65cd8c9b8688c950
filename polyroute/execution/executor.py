"""Executor: runs a Decision's plan: timeouts, retries, fallbacks, breakers, one deadline.

The one retry loop of the gateway (`_run`); the API layer only calls `complete` and
`stream`. For each attempt it picks the next candidate:

1. after a failure of class C (rate_limited, context_window, content_filter,
   unavailable), the route's `fallbacks_on[C]` come first;
2. then the rest of the strategy's ranking (the plan), then the route's `fallbacks`;
3. with nobody else left, the same deployment again after a backoff (or the upstream's
   Retry-After, capped and only within the deadline).

Moving to another deployment never sleeps. The client's own errors (400, 404, 422...) are
not retried, except into a configured fallback for their class. Every extra attempt
spends from the retry budget, retries of the plan count against `max_retries`, and the
whole request must finish within one deadline. Deployments whose breaker is open are
skipped while another candidate remains; outcomes feed the breakers.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import orjson

from polyroute.config.schema import ResilienceConfig
from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import (
    Overloaded,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from polyroute.execution import ensemble
from polyroute.execution.candidates import Candidates
from polyroute.execution.results import Completed, Streaming
from polyroute.execution.retry import Backoff, error_class, retry_after
from polyroute.execution.upstream_errors import error_from_response
from polyroute.providers.base import Provider, UpstreamResponse
from polyroute.providers.request import Timeouts, UpstreamRequest
from polyroute.routing.decision import Decision
from polyroute.routing.runtime import Runtime
from polyroute.state.base import RetryBudget
from polyroute.usage import wants_stream_usage

T = TypeVar("T")
Attempt = Callable[[Deployment, Timeouts], Awaitable[T]]
AttemptRunner = Callable[[Deployment, Timeouts, Attempt[T]], Awaitable[T | UpstreamError]]


class AttemptWrapper(Protocol):
    """Runs every attempt in its place (tracing: a span per attempt), by calling `run`."""

    def __call__(
        self, run: AttemptRunner[T], deployment: Deployment, limits: Timeouts, call: Attempt[T]
    ) -> Awaitable[T | UpstreamError]: ...


class _Progress:
    """Where one request stands in its retry loop."""

    __slots__ = (
        "attempts",
        "candidates",
        "deadline_s",
        "max_retries",
        "retries",
        "same_retries",
        "started",
    )

    def __init__(  # compiled (see polyroute.outcomes.Usage)
        self, deadline_s: float, started: float, max_retries: int, candidates: Candidates
    ) -> None:
        self.deadline_s = deadline_s
        self.started = started
        self.max_retries = max_retries
        self.candidates = candidates
        self.attempts = 0
        self.retries = 0  # attempts beyond the first that count against max_retries
        self.same_retries = 0  # retries of the same deployment, for the backoff exponent


class Executor:
    """Runs plans against the providers of a config's deployments."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        resilience: ResilienceConfig,
        runtime: Runtime,
        budget: RetryBudget,
        rng: random.Random | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.config = resilience
        self.breakers = runtime.health
        self.stats = runtime.stats
        self.budget = budget
        self.clock = runtime.clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(resilience.backoff.base, resilience.backoff.cap)
        self.wrap_attempt: AttemptWrapper | None = None
        """Set by tracing. A hook rather than a replaced method: the executor's methods
        are compiled (setup.py), and an instance attribute cannot shadow them."""

    def complete(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Awaitable[Completed]:
        """Non-streaming: the first answer that is valid JSON (an ensemble: the aggregate
        of its members' answers). A plain function handing back the coroutine that does
        the work: one frame fewer for every suspension of the request to pass through."""
        if decision.fan_out is not None:
            return self._aggregate(ctx, decision, body)
        return self._complete_one(ctx, decision, body)

    async def _aggregate(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Completed:
        result = await ensemble.aggregate(self._complete_one, ctx, decision, body)
        winner = result.winner
        header = ensemble.summary_header(result.summary, len(decision.plan))
        return Completed(
            winner.deployment,
            winner.attempts,
            200,
            ensemble.dumps(result.data),
            result.data,
            usage=result.usage,
            cost=result.cost,
            headers={"x-polyroute-ensemble": header},
        )

    async def _complete_one(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Completed:
        async def attempt(deployment: Deployment, timeouts: Timeouts) -> Completed:
            response = await self._send(ctx, deployment, body, timeouts, stream=False)
            payload = await response.read()
            if response.status >= 300:
                raise error_from_response(
                    deployment.name, response.status, response.headers, payload, deployment.secrets
                )
            data = _parse_json(payload, deployment.name)
            return Completed(deployment, 0, response.status, payload, data)

        done, attempts = await self._run(ctx, decision, attempt)
        done.attempts = attempts
        return done

    def stream(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Awaitable[Streaming]:
        """Streaming: the first SSE stream that yields a first chunk.

        The upstream response is closed on every way out except the hand-off, including
        cancellation (the client went away), so its connection never lingers. A `fastest`
        ensemble races its members' streams; other ensembles are not streamed from here
        (the API layer sends their aggregate as events).
        """
        if decision.fan_out is not None:
            return ensemble.race(self._stream_one, ctx, decision, body, _discard)
        return self._stream_one(ctx, decision, body)

    async def _stream_one(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Streaming:
        async def attempt(deployment: Deployment, timeouts: Timeouts) -> Streaming:
            response = await self._send(ctx, deployment, body, timeouts, stream=True)
            try:
                first, chunks = await _first_chunk(response, deployment)
            except BaseException:  # not a `finally` with an await: see setup.py
                await response.aclose()
                raise
            # handed off: the caller closes it
            return Streaming(
                deployment, 0, response.status, response.headers, first, chunks, response
            )

        opened, attempts = await self._run(ctx, decision, attempt)
        opened.attempts = attempts
        return opened

    async def _run(
        self, ctx: RequestContext, decision: Decision, attempt: Attempt[T]
    ) -> tuple[T, int]:
        config = self.config
        max_retries = decision.max_retries
        plan = _Progress(
            deadline_s=decision.deadline or config.deadline,
            started=self.clock.now(),
            max_retries=config.max_retries if max_retries is None else max_retries,
            candidates=Candidates(ctx, decision),
        )
        self.budget.record_request()
        deployment = self._admit(plan.candidates.first(), plan.candidates)
        while True:
            plan.attempts += 1
            remaining = plan.deadline_s - (self.clock.now() - plan.started)
            if remaining <= 0:
                timeout = UpstreamTimeout(f"the request deadline of {plan.deadline_s:g}s passed")
                raise _annotate(timeout, deployment, plan.attempts - 1)
            limits = (decision.timeouts or deployment.timeouts).within(remaining)
            wrap = self.wrap_attempt
            if wrap is None:
                outcome = await self._attempt(deployment, limits, attempt)
            else:
                outcome = await wrap(self._attempt, deployment, limits, attempt)
            if not isinstance(outcome, UpstreamError):
                return outcome, plan.attempts
            deployment = await self._next(deployment, outcome, plan)

    async def _attempt(
        self, deployment: Deployment, limits: Timeouts, attempt: Attempt[T]
    ) -> T | UpstreamError:
        """One attempt, with its outcome recorded in the live statistics and breaker."""
        name = deployment.name
        self.stats.started(name)
        started = self.clock.now()
        try:
            result = await attempt(deployment, limits)
        except UpstreamError as failure:
            self.stats.finished(name, ok=not failure.retryable)
            self._record(deployment, failure)
            return failure
        except BaseException:  # cancelled (the client left) or a bug: not the upstream's fault
            self.stats.finished(name, ok=True)
            raise
        self.breakers.record_success(name)
        elapsed = self.clock.now() - started
        if isinstance(result, Streaming):
            result.done = self._stream_done(name, elapsed)
        else:
            self.stats.finished(name, ok=True, latency=elapsed)
        return result

    async def _next(
        self, failed: Deployment, failure: UpstreamError, plan: _Progress
    ) -> Deployment:
        """Where the next attempt goes, after waiting if it is the same deployment; raises
        the (annotated) failure when nothing more may be tried."""
        error = _annotate(failure, failed, plan.attempts)
        nxt, from_plan = plan.candidates.next_after(failed, error_class(failure), failure.retryable)
        if nxt is None and not failure.retryable:
            raise error
        nxt = nxt or failed
        counts = from_plan or nxt is failed
        if counts and plan.retries >= plan.max_retries:
            raise error
        if not self.budget.try_spend():
            error.should_retry = False
            raise error
        if nxt is failed:
            wait = self._wait_before_retry(failure, plan.same_retries)
            elapsed = self.clock.now() - plan.started
            if wait is None or elapsed + wait >= plan.deadline_s:
                raise error
            plan.same_retries += 1
            await self.clock.sleep(wait)
        else:
            nxt = self._admit(nxt, plan.candidates)
        plan.retries += counts
        return nxt

    def _stream_done(self, name: str, ttft: float) -> Callable[[bool], None]:
        """The stream stays in flight until it ends; its time to first chunk is known now."""
        stats, breakers = self.stats, self.breakers

        def done(ok: bool) -> None:
            stats.finished(name, ok=ok, ttft=ttft)
            if not ok:  # failed after its first byte: the deployment is unhealthy too
                breakers.record_failure(name)

        return done

    def _admit(self, deployment: Deployment | None, candidates: Candidates) -> Deployment:
        """`deployment`, or the next candidate if its breaker is open or it is at capacity;
        with nobody else left, the breaker is overridden (panic), capacity is not."""
        cap = self.config.max_in_flight_per_deployment
        skipped_full = []
        while deployment is not None:
            full = self.stats.in_flight(deployment.name) >= cap
            if not full and self.breakers.acquire(deployment.name):
                return deployment
            if full:
                skipped_full.append(deployment.name)
            following = candidates.next_plan_or_fallback()
            if following is None:
                if full:
                    break
                return deployment  # nothing else: try it anyway rather than fail
            deployment = following
        names = ", ".join(skipped_full) or "none"
        raise Overloaded(f"every candidate deployment is at its in-flight limit ({names})")

    def _wait_before_retry(self, failure: UpstreamError, retry: int) -> float | None:
        """Seconds to wait before retrying the same deployment; None: do not retry it."""
        if isinstance(failure, UpstreamStatusError) and failure.upstream_status == 429:
            after = retry_after(failure.headers)
            if after is not None:
                return after if after <= self.config.retry_after_cap else None
        return self._backoff.delay(retry, self._rng)

    def _record(self, deployment: Deployment, failure: UpstreamError) -> None:
        if isinstance(failure, UpstreamStatusError):
            if failure.upstream_status == 429:
                self.breakers.record_rate_limited(deployment.name, retry_after(failure.headers))
                return
            if not failure.retryable:  # the request's fault: the deployment answered fine
                self.breakers.record_success(deployment.name)
                return
        self.breakers.record_failure(deployment.name)

    def _send(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        body: dict[str, Any],
        timeouts: Timeouts,
        *,
        stream: bool,
    ) -> Awaitable[UpstreamResponse]:
        """The provider's `send` coroutine for this attempt (returned, not awaited here)."""
        upstream_body = {**body, "model": deployment.upstream_model}
        if stream and deployment.config.stream_usage and not wants_stream_usage(body):
            # limits and budgets settle on real usage; the proxy withholds this event
            options = body.get("stream_options")
            extra = options if isinstance(options, dict) else {}
            upstream_body["stream_options"] = {**extra, "include_usage": True}
        request = UpstreamRequest(
            kind=ctx.kind,
            body=upstream_body,
            stream=stream,
            request_id=ctx.request_id,
            timeouts=timeouts,
        )
        return self.providers[deployment.name].send(request)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


async def _discard(stream: Streaming) -> None:
    await stream.aclose(True)


async def _first_chunk(
    response: UpstreamResponse, target: Deployment
) -> tuple[bytes, AsyncIterator[bytes]]:
    """Check the stream is a successful SSE stream and read its first chunk; after that
    first byte reaches the client, falling back is no longer possible."""
    deployment = target.name
    if response.status >= 300:
        payload = await response.read()
        raise error_from_response(
            deployment, response.status, response.headers, payload, target.secrets
        )
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise UpstreamBadResponse(
            f"deployment {deployment}: expected an event stream, got {content_type or 'no type'}",
            deployment=deployment,
        )
    chunks = aiter(response.iter_chunks())
    first = await anext(chunks, b"")
    if not first:
        raise UpstreamBadResponse(f"deployment {deployment}: empty stream", deployment=deployment)
    _check_first_event(first, target)
    return first, chunks


def _check_first_event(chunk: bytes, target: Deployment) -> None:
    """Peek at the first SSE event while falling back is still possible: an error event
    or unparseable JSON there is a failed attempt, not the start of an answer."""
    end = chunk.find(b"\n\n")
    if not chunk.startswith(b"data: ") or end < 0:
        return  # not a complete data event in this chunk: nothing to judge yet
    payload = chunk[6:end]
    if payload == b"[DONE]":
        raise UpstreamBadResponse(
            f"deployment {target.name}: the stream ended before any content",
            deployment=target.name,
        )
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse(
            f"deployment {target.name}: the stream's first event is not valid JSON",
            deployment=target.name,
        ) from None
    if isinstance(event, dict) and "error" in event:
        raise error_from_response(
            target.name, 500, {}, orjson.dumps({"error": event["error"]}), target.secrets
        )


def _parse_json(payload: bytes, deployment: str) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamBadResponse(
            f"deployment {deployment}: the upstream answered with invalid JSON",
            deployment=deployment,
        )
    return data


def _annotate(error: UpstreamError, deployment: Deployment, attempts: int) -> UpstreamError:
    error.deployment = deployment.name
    error.headers["x-polyroute-deployment"] = deployment.name
    error.headers["x-polyroute-attempts"] = str(attempts)
    if attempts > 1 or not error.retryable:
        # the gateway already tried again (or retrying cannot help): tell the SDK not to
        # multiply attempts on top of ours
        error.should_retry = False
    return error


__all__ = ["Completed", "Executor", "Streaming"]
