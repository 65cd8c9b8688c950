"""The simulator as an in-process Provider: the server's bytes and timing, no sockets.

Unit tests of the executor and router use this instead of the HTTP server: it shares the
engine, so bodies and SSE events are byte-identical, and it maps wire faults onto the
exceptions a real HTTP provider raises (a reset is UpstreamConnectionError, a hang ends in
UpstreamTimeout at the first-byte deadline, a cut stream raises UpstreamBadResponse).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable

from polyroute.errors import UpstreamBadResponse, UpstreamConnectionError, UpstreamTimeout
from polyroute.kinds import UPSTREAM_PATHS
from polyroute.providers.base import BufferedResponse, Timeouts, UpstreamRequest, UpstreamResponse
from polyroute.providers.simulator.engine import SimEngine
from polyroute.providers.simulator.faults import FaultSchedule
from polyroute.providers.simulator.profiles import SimProfile
from polyroute.providers.simulator.stats import SimStats
from polyroute.providers.simulator.wire import Drop, Reply, StreamReply, paced


def _limit(*limits: float | None) -> float | None:
    """The tightest of several optional limits (None when there is none)."""
    present = [x for x in limits if x is not None]
    return max(0.0, min(present)) if present else None


class SimulatorProvider:
    """A Provider answering from a simulated model profile, in the event loop."""

    def __init__(
        self,
        profile: SimProfile,
        *,
        faults: FaultSchedule | None = None,
        deployment: str = "",
        image_base_url: str = "http://simulator.invalid",
    ) -> None:
        self.engine = SimEngine(profile, faults)
        self.deployment = deployment or profile.name
        self.image_base_url = image_base_url

    @property
    def profile(self) -> SimProfile:
        return self.engine.profile

    @property
    def faults(self) -> FaultSchedule:
        return self.engine.faults

    @property
    def stats(self) -> SimStats:
        return self.engine.stats

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Answer `request` as the HTTP simulator would, raising Upstream* on wire faults."""
        loop = asyncio.get_running_loop()
        timeouts = request.timeouts
        deadline = None if timeouts.total is None else loop.time() + timeouts.total
        body = request.body
        if bool(body.get("stream")) != request.stream:
            body = {**body, "stream": request.stream}
        stats = self.engine.stats
        stats.requests["/v1" + UPSTREAM_PATHS[request.kind]] += 1
        stats.record(None, body)
        outcome = self.engine.handle(request.kind, body, image_base_url=self.image_base_url)
        first_byte = _limit(timeouts.first_byte, timeouts.total)

        if isinstance(outcome, Drop):
            if outcome.mode == "reset":
                raise UpstreamConnectionError(
                    f"connection to {self.deployment} was reset (simulated)",
                    deployment=self.deployment,
                )
            await self._wait(asyncio.Event().wait(), first_byte, "first byte")
        if isinstance(outcome, Reply):
            if outcome.delay > 0:
                await self._wait(asyncio.sleep(outcome.delay), first_byte, "first byte")
            return BufferedResponse(outcome.status, outcome.headers, outcome.body)
        assert isinstance(outcome, StreamReply)
        chunks = self._chunks(outcome, timeouts, deadline)
        return BufferedResponse(outcome.status, outcome.headers, chunks=chunks)

    async def _wait(self, awaitable: Awaitable[object], limit: float | None, what: str) -> None:
        """Await `awaitable`, or raise UpstreamTimeout once `limit` seconds have passed."""
        try:
            async with asyncio.timeout(limit):
                await awaitable
        except TimeoutError:
            raise UpstreamTimeout(
                f"no {what} from {self.deployment} within {limit:g}s (simulated)",
                deployment=self.deployment,
            ) from None

    async def _chunks(
        self, outcome: StreamReply, timeouts: Timeouts, deadline: float | None
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        events = paced(outcome.sent_events(), outcome.ttft, outcome.interval)
        stats = self.engine.stats
        stats.in_flight += 1
        if outcome.stall:
            events = _then_silence(events)
        try:
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                limit = _limit(timeouts.idle, remaining)
                try:
                    async with asyncio.timeout(limit):
                        data = await anext(events)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UpstreamTimeout(
                        f"{self.deployment} sent nothing for {limit:g}s (simulated stream)",
                        deployment=self.deployment,
                    ) from None
                yield data
            if outcome.cut_after is not None:
                raise UpstreamBadResponse(
                    f"the stream from {self.deployment} was cut off before [DONE] (simulated)",
                    deployment=self.deployment,
                )
        except (GeneratorExit, asyncio.CancelledError):
            stats.disconnects += 1  # the consumer stopped reading mid-stream
            raise
        finally:
            stats.in_flight -= 1
            await events.aclose()

    async def aclose(self) -> None:
        """Nothing to release: there are no connections."""


async def _then_silence(events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """The events, then nothing ever again (a stalled upstream)."""
    async for data in events:
        yield data
    await asyncio.Event().wait()
    yield b""  # pragma: no cover - never reached
