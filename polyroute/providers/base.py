"""The provider seam: one narrow async method between the executor and an upstream.

Like httpx's transports, a provider only moves one request to one upstream and hands back
the response once its status and headers are known. Routing, retries, fallbacks, metrics
and auth all live above it, so every provider (OpenAI-compatible HTTP, the in-process
simulator, a test double) is interchangeable.

Failures are raised as :mod:`polyroute.errors` ``Upstream*`` exceptions; an HTTP error
status is *not* raised: the response is returned and the executor decides what it means.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from polyroute.providers.request import Timeouts, UpstreamRequest

__all__ = [
    "BufferedResponse",
    "Provider",
    "Timeouts",
    "UpstreamRequest",
    "UpstreamResponse",
]


@runtime_checkable
class UpstreamResponse(Protocol):
    """A response whose status and headers have arrived; the body is read or iterated once."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body (raises UpstreamTimeout / UpstreamBadResponse on failure)."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive, for streaming; each chunk is forwarded unchanged."""
        ...

    def ended(self) -> bool:
        """Whether the body has arrived to its end (no chunk is left to come): the last
        bytes may then go to the client together with the end of its response."""
        ...

    async def aclose(self) -> None:
        """Release the connection (returned to the pool, or closed if the body is unread)."""
        ...


@runtime_checkable
class Provider(Protocol):
    """Sends one request to one upstream deployment."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send `request` and return once the response headers are in."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections; called once at shutdown."""
        ...


@dataclass(slots=True)
class BufferedResponse:
    """An UpstreamResponse whose body is already in memory (in-process providers, errors)."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None

    async def read(self) -> bytes:
        if self.chunks is None:
            return self.body
        parts = [chunk async for chunk in self.chunks]
        return b"".join(parts)

    def iter_chunks(self) -> AsyncIterator[bytes]:
        if self.chunks is not None:
            return self.chunks
        return _single(self.body)

    def ended(self) -> bool:
        return False  # not known before the iterator says so

    async def aclose(self) -> None:
        if self.chunks is not None and hasattr(self.chunks, "aclose"):
            await self.chunks.aclose()


async def _single(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body
