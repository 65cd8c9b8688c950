"""Test helpers shipped with the package (like structlog.testing): a scripted provider and
a virtual clock, for exercising routing and resilience without sockets or sleeping.

Real-socket tests use the simulator (`polyroute simulate`); these are for the unit tier,
where time must be virtual and each upstream answer scripted exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from polyroute.clock import FakeClock
from polyroute.errors import UpstreamError
from polyroute.providers.base import BufferedResponse, UpstreamRequest

__all__ = ["FakeClock", "Reply", "ScriptedProvider", "error_reply", "ok_completion"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted upstream answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def ok_completion(text: str = "ok") -> Reply:
    body = {
        "id": "scripted",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return Reply(200, orjson.dumps(body), {"content-type": "application/json"})


def error_reply(status: int, code: str | None = None, **headers: str) -> Reply:
    body = {"error": {"message": f"scripted {status}", "type": "error", "code": code}}
    return Reply(status, orjson.dumps(body), {"content-type": "application/json", **headers})


class ScriptedProvider:
    """A Provider that answers from a script: Reply objects or exceptions to raise.

    When the script runs out, it answers `default`. `requests` records what was sent.
    """

    def __init__(
        self, script: Iterable[Reply | UpstreamError] = (), default: Reply | None = None
    ) -> None:
        self.script: deque[Reply | UpstreamError] = deque(script)
        self.default = default or ok_completion()
        self.requests: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest) -> BufferedResponse:
        self.requests.append(request)
        step = self.script.popleft() if self.script else self.default
        if isinstance(step, UpstreamError):
            raise step
        return BufferedResponse(step.status, step.headers, step.body)

    async def aclose(self) -> None:
        return None
