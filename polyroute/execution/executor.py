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
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from polyroute.clock import Clock, MonotonicClock
from polyroute.config.schema import ResilienceConfig
from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import (
    NoDeploymentAvailable,
    Overloaded,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from polyroute.execution.candidates import Candidates
from polyroute.execution.retry import Backoff, error_class, retry_after
from polyroute.execution.upstream_errors import error_from_response
from polyroute.providers.base import Provider, Timeouts, UpstreamRequest, UpstreamResponse
from polyroute.routing.decision import Decision
from polyroute.state.base import CircuitBreakers, RetryBudget

T = TypeVar("T")
Attempt = Callable[[Deployment, Timeouts], Awaitable[T]]


@dataclass(slots=True)
class Completed:
    """A whole JSON answer: the raw bytes (forwarded unchanged) and their parsed form
    (parsed once: it proves the upstream sent JSON, and usage accounting reads it)."""

    deployment: Deployment
    attempts: int
    status: int
    body: bytes
    data: dict[str, Any]


@dataclass(slots=True)
class Streaming:
    """An open stream whose first chunk has already arrived (so falling back is over)."""

    deployment: Deployment
    attempts: int
    status: int
    headers: Mapping[str, str]
    first_chunk: bytes
    rest: AsyncIterator[bytes]
    response: UpstreamResponse


class Executor:
    """Runs plans against the providers of a config's deployments."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        resilience: ResilienceConfig,
        breakers: CircuitBreakers,
        budget: RetryBudget,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.config = resilience
        self.breakers = breakers
        self.budget = budget
        self.clock = clock or MonotonicClock()
        self._rng = rng or random.Random()
        self._backoff = Backoff(resilience.backoff.base, resilience.backoff.cap)
        self.in_flight: dict[str, int] = dict.fromkeys(self.providers, 0)

    async def complete(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Completed:
        """Non-streaming: the first answer that is valid JSON."""

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

    async def stream(
        self, ctx: RequestContext, decision: Decision, body: dict[str, Any]
    ) -> Streaming:
        """Streaming: the first SSE stream that yields a first chunk.

        The upstream response is closed on every way out except the hand-off, including
        cancellation (the client went away), so its connection never lingers.
        """

        async def attempt(deployment: Deployment, timeouts: Timeouts) -> Streaming:
            response: UpstreamResponse | None = None
            try:
                response = await self._send(ctx, deployment, body, timeouts, stream=True)
                first, chunks = await _first_chunk(response, deployment)
                opened = Streaming(
                    deployment, 0, response.status, response.headers, first, chunks, response
                )
                response = None  # handed off: the caller closes it
                return opened
            finally:
                if response is not None:
                    await response.aclose()

        opened, attempts = await self._run(ctx, decision, attempt)
        opened.attempts = attempts
        return opened

    async def _run(
        self, ctx: RequestContext, decision: Decision, attempt: Attempt[T]
    ) -> tuple[T, int]:
        config, clock = self.config, self.clock
        deadline_s = decision.deadline or config.deadline
        deadline = clock.now() + deadline_s
        max_retries = (
            decision.max_retries if decision.max_retries is not None else config.max_retries
        )
        self.budget.record_request()
        candidates = Candidates(ctx, decision)
        deployment = self._admit(candidates.first(), candidates)
        attempts = retries = same_retries = 0
        error: UpstreamError
        while True:
            attempts += 1
            remaining = deadline - clock.now()
            if remaining <= 0:
                raise _annotate(
                    UpstreamTimeout(f"the request deadline of {deadline_s:g}s passed"),
                    deployment,
                    attempts - 1,
                )
            self.in_flight[deployment.name] += 1
            try:
                result = await attempt(deployment, deployment.timeouts.within(remaining))
            except UpstreamError as exc:
                failure = exc
            else:
                self.breakers.record_success(deployment.name)
                return result, attempts
            finally:
                self.in_flight[deployment.name] -= 1
            self._record(deployment, failure)
            error = _annotate(failure, deployment, attempts)
            kind = error_class(failure)
            nxt, from_plan = candidates.next_after(deployment, kind, failure.retryable)
            if nxt is None and not failure.retryable:
                raise error
            if nxt is None:
                nxt = deployment
            counts = from_plan or nxt is deployment
            if counts and retries >= max_retries:
                raise error
            if not self.budget.try_spend():
                error.should_retry = False
                raise error
            if nxt is deployment:
                wait = self._wait_before_retry(failure, same_retries)
                if wait is None or clock.now() + wait >= deadline:
                    raise error
                same_retries += 1
                await clock.sleep(wait)
            else:
                nxt = self._admit(nxt, candidates)
            retries += counts
            deployment = nxt

    def _admit(self, deployment: Deployment | None, candidates: Candidates) -> Deployment:
        """`deployment`, or the next candidate if its breaker is open or it is at capacity;
        with nobody else left, the breaker is overridden (panic), capacity is not."""
        cap = self.config.max_in_flight_per_deployment
        skipped_full = []
        while deployment is not None:
            full = self.in_flight.get(deployment.name, 0) >= cap
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

    async def _send(
        self,
        ctx: RequestContext,
        deployment: Deployment,
        body: dict[str, Any],
        timeouts: Timeouts,
        *,
        stream: bool,
    ) -> UpstreamResponse:
        request = UpstreamRequest(
            kind=ctx.kind,
            body={**body, "model": deployment.upstream_model},
            stream=stream,
            request_id=ctx.request_id,
            timeouts=timeouts,
        )
        return await self.providers[deployment.name].send(request)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


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


__all__ = ["Completed", "Executor", "NoDeploymentAvailable", "Streaming"]
