"""What the engine decides a request gets, independent of how it is delivered.

The engine returns an outcome (a JSON reply, a paced SSE stream, or a dropped
connection); the HTTP server writes it to a socket and the in-process provider turns it
into an UpstreamResponse, so both deliver the same bytes with the same timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
DONE = b"data: [DONE]\n\n"

MIN_SLEEP = 0.005
"""Token intervals shorter than this are not slept one by one but batched per tick."""
TICK = 0.01


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete response, sent after `delay` seconds."""

    status: int
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0


@dataclass(slots=True)
class StreamReply:
    """An SSE stream: `events` are (token position, bytes), paced by ttft and interval.

    With `cut_after` set, only that many events are sent and the connection is dropped.
    """

    headers: dict[str, str]
    events: Sequence[tuple[int, bytes]]
    ttft: float = 0.0
    interval: float = 0.0
    cut_after: int | None = None
    status: int = 200
    stall: bool = False
    """After `cut_after` events, keep the connection open and send nothing more."""

    def sent_events(self) -> Sequence[tuple[int, bytes]]:
        """The events that go out before the stream ends or is cut."""
        return self.events if self.cut_after is None else self.events[: self.cut_after]


@dataclass(frozen=True, slots=True)
class Drop:
    """No response at all: `hang` never answers, `reset` drops the connection."""

    mode: Literal["hang", "reset"]


Outcome = Reply | StreamReply | Drop


class SimRequestError(Exception):
    """A request the simulator refuses, rendered as an OpenAI error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.param = message, status, param
        self.code, self.error_type = code, error_type

    def reply(self) -> Reply:
        return error_reply(self.status, self.message, self.error_type, self.param, self.code)


def error_reply(
    status: int,
    message: str,
    error_type: str,
    param: str | None = None,
    code: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An OpenAI-shaped error response."""
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return Reply(status, JSON_HEADERS | (headers or {}), orjson.dumps(body))


def sse(payload: object) -> bytes:
    """One SSE event carrying `payload` as JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def paced(
    events: Sequence[tuple[int, bytes]], ttft: float, interval: float
) -> AsyncGenerator[bytes, None]:
    """Yield the events as they fall due: the first token after `ttft`, then one per
    `interval`. Events due together go out in one chunk; below MIN_SLEEP per token the
    stream wakes once per TICK and sends what is due, and with no latency it never sleeps.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    batch: list[bytes] = []
    for position, data in events:
        due = ttft + position * interval
        if due > 0:
            elapsed = loop.time() - start
            if due > elapsed:
                if batch:
                    yield b"".join(batch)
                    batch = []
                wait = due - elapsed
                if position > 0 and interval < MIN_SLEEP:
                    wait = max(wait, TICK)
                await asyncio.sleep(wait)
        batch.append(data)
    if batch:
        yield b"".join(batch)
