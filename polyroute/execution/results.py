"""What the executor hands back: a whole JSON answer, or a stream whose first chunk has come."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from polyroute.deployment import Deployment
from polyroute.outcomes import Usage
from polyroute.providers.base import UpstreamResponse


@dataclass(slots=True, init=False)
class Completed:
    """A whole JSON answer: the raw bytes (forwarded unchanged) and their parsed form
    (parsed once: it proves the upstream sent JSON, and usage accounting reads it)."""

    deployment: Deployment
    attempts: int
    status: int
    body: bytes
    data: dict[str, Any]
    usage: Usage | None
    """Set when the answer is not one upstream's (an ensemble's summed usage)."""
    cost: float | None
    headers: dict[str, str] | None
    """Extra response headers (an ensemble's summary)."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see outcomes.Usage)
        self,
        deployment: Deployment,
        attempts: int,
        status: int,
        body: bytes,
        data: dict[str, Any],
        usage: Usage | None = None,
        cost: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.deployment = deployment
        self.attempts = attempts
        self.status = status
        self.body = body
        self.data = data
        self.usage = usage
        self.cost = cost
        self.headers = headers


@dataclass(slots=True, init=False)
class Streaming:
    """An open stream whose first chunk has already arrived (so falling back is over)."""

    deployment: Deployment
    attempts: int
    status: int
    headers: Mapping[str, str]
    first_chunk: bytes
    rest: AsyncIterator[bytes]
    response: UpstreamResponse
    done: Callable[[bool], None]
    """Call once when the stream ends (True: it ended properly): the deployment stops
    counting it as in flight and records the outcome."""

    def __init__(  # noqa: PLR0917 - the dataclass's own order; compiled (see outcomes.Usage)
        self,
        deployment: Deployment,
        attempts: int,
        status: int,
        headers: Mapping[str, str],
        first_chunk: bytes,
        rest: AsyncIterator[bytes],
        response: UpstreamResponse,
        done: Callable[[bool], None] | None = None,
    ) -> None:
        self.deployment = deployment
        self.attempts = attempts
        self.status = status
        self.headers = headers
        self.first_chunk = first_chunk
        self.rest = rest
        self.response = response
        self.done = done or _nothing_to_record

    async def aclose(self, ok: bool) -> None:
        """Close the upstream response and record the stream's end."""
        try:
            await self.response.aclose()
        finally:
            self.done(ok)


def _nothing_to_record(ok: bool) -> None:
    return None
