"""Outcomes: what happened to each request, told to everything that learns or accounts
from traffic (A/B results, bandits, usage records, limit settlement, metrics).

The request path builds one `Outcome` when a request ends (answer sent, stream closed or
error returned) and hands it to `Observers.report`; feedback that arrives later
(POST /v1/feedback) goes through `Observers.feedback`. Observers are synchronous and must
be cheap: anything slow (a database write) is queued by the observer itself. One failing
observer is logged and never fails the request or starves the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.kinds import EndpointKind
from polyroute.routing.decision import Decision

log = logging.getLogger("polyroute.outcomes")


@dataclass(slots=True, init=False)
class Usage:
    """Tokens as the upstream reported them (or as estimated, when it reported none).
    A value: never changed once made (not a frozen dataclass, which could not have the
    compiled constructor below)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    """Of `prompt_tokens`, those the upstream served from its prompt cache."""
    images: int
    estimated: bool

    # The dataclasses made once or more per request in compiled modules write their own
    # __init__: mypyc compiles it, while the one @dataclass generates runs interpreted
    # (mypyc/mypyc#671). A five-field class, compiled, on this machine kind: 60 ns to
    # make against 500 ns (1,400 ns frozen).
    def __init__(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        images: int = 0,
        estimated: bool = False,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.images = images
        self.estimated = estimated

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, init=False)
class Outcome:
    """One finished request."""

    ctx: RequestContext
    decision: Decision | None
    """None when the request failed before routing (bad input, auth, limits)."""
    deployment: Deployment | None
    """The deployment that answered (or last failed); None if none was called."""
    ok: bool
    status: int
    latency: float
    """Seconds from the start of handling to the end of the answer (or stream)."""
    attempts: int
    ttft: float | None
    """Seconds to the first streamed byte, for streams."""
    usage: Usage | None
    cost: float | None
    """USD from the reported (or estimated) usage and the deployment's prices."""
    error_type: str | None
    error_code: str | None
    cache: str | None
    """"hit" (answered from the response cache, no upstream call), "miss" (looked up, not
    found), None (the request was not cacheable)."""
    extra: dict[str, Any]
    """Figures a strategy adds for its own observer (e.g. an ensemble's other answers)."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see Usage)
        self,
        ctx: RequestContext,
        decision: Decision | None,
        deployment: Deployment | None,
        ok: bool,
        status: int,
        latency: float,
        attempts: int = 0,
        ttft: float | None = None,
        usage: Usage | None = None,
        cost: float | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        cache: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.ctx = ctx
        self.decision = decision
        self.deployment = deployment
        self.ok = ok
        self.status = status
        self.latency = latency
        self.attempts = attempts
        self.ttft = ttft
        self.usage = usage
        self.cost = cost
        self.error_type = error_type
        self.error_code = error_code
        self.cache = cache
        self.extra = {} if extra is None else extra

    @property
    def kind(self) -> EndpointKind:
        return self.ctx.kind

    @property
    def request_id(self) -> str:
        return self.ctx.request_id


@dataclass(frozen=True, slots=True)
class Feedback:
    """A client's later judgement of a served request."""

    request_id: str
    score: float  # 0 (bad) .. 1 (good)
    label: str | None = None


class Observer(Protocol):
    """Receives every outcome and every feedback."""

    def observe(self, outcome: Outcome) -> None: ...

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        """Record `feedback` if this observer knows the request; return what it attached
        the score to (shown to the client), else None."""
        ...


class Observers:
    """The gateway's observers, called in registration order."""

    def __init__(self, observers: list[Observer] | None = None) -> None:
        self._observers: list[Observer] = list(observers or [])

    def add(self, observer: Observer) -> None:
        self._observers.append(observer)

    def __iter__(self) -> Any:
        return iter(self._observers)

    def report(self, outcome: Outcome) -> None:
        for observer in self._observers:
            try:
                observer.observe(outcome)
            except Exception:
                log.exception("outcome observer %s failed", type(observer).__name__)

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        """Tell every observer; the merged answers, or None if no observer knew the id."""
        found: dict[str, Any] | None = None
        for observer in self._observers:
            try:
                answer = observer.feedback(feedback)
            except Exception:
                log.exception("feedback observer %s failed", type(observer).__name__)
                continue
            if answer is not None:
                found = {**(found or {}), **answer}
        return found
