"""What the executor hands a provider for one attempt: the request and its time limits.

Compiled (setup.py): both are made for every attempt, so they write their own
`__init__` (the one `@dataclass` generates runs interpreted in a compiled module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polyroute.kinds import EndpointKind


@dataclass(slots=True, init=False)
class Timeouts:
    """Per-attempt time limits in seconds (None = no limit for that phase).

    connect: opening the TCP connection; first_byte: from sending the request to the
    response headers; idle: between two chunks of the body; total: the whole attempt.
    Shared by every attempt at a deployment: treat as read-only.
    """

    connect: float | None
    first_byte: float | None
    idle: float | None
    total: float | None

    def __init__(
        self,
        connect: float | None = 5.0,
        first_byte: float | None = 60.0,
        idle: float | None = 60.0,
        total: float | None = 600.0,
    ) -> None:
        self.connect = connect
        self.first_byte = first_byte
        self.idle = idle
        self.total = total

    def within(self, remaining: float) -> Timeouts:
        """These limits, none longer than `remaining` (what is left of a request's deadline)."""
        total = self.total
        if total is not None and total <= remaining:
            return self
        return Timeouts(
            _capped(self.connect, remaining),
            _capped(self.first_byte, remaining),
            _capped(self.idle, remaining),
            remaining,
        )


def _capped(value: float | None, cap: float) -> float:
    return cap if value is None or value > cap else value


@dataclass(slots=True, init=False)
class UpstreamRequest:
    """One attempt against one deployment. `body` already carries the upstream model id."""

    kind: EndpointKind
    body: dict[str, Any]
    stream: bool
    request_id: str
    timeouts: Timeouts

    def __init__(
        self,
        kind: EndpointKind,
        body: dict[str, Any],
        stream: bool,
        request_id: str,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.kind = kind
        self.body = body
        self.stream = stream
        self.request_id = request_id
        self.timeouts = Timeouts() if timeouts is None else timeouts
