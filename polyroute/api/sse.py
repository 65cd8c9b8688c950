"""Server-sent events: forwarding upstream chunks, and the terminal error event.

Chunks are forwarded as they arrive, byte for byte (no re-framing, no buffering). If the
upstream fails after the first byte went out, the stream ends with one
``data: {"error": ...}`` event and no ``[DONE]``: the openai SDK raises on it, whereas a
silently truncated stream would look like success.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyroute.errors import GatewayError

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def error_event(error: GatewayError) -> bytes:
    """Blank lines close any half-written event, then the error event itself."""
    body = error.body()
    body["error"]["code"] = body["error"]["code"] or "stream_interrupted"
    return b"\n\ndata: " + orjson.dumps(body) + b"\n\n"


_DONE = b"data: [DONE]"


def ends_with_done(tail: bytes) -> bool:
    """Whether the last bytes of a stream are its proper end, ``data: [DONE]``."""
    return tail.rstrip().endswith(_DONE)


def answer_as_events(data: dict[str, Any], *, chat: bool, include_usage: bool) -> bytes:
    """A whole JSON answer sent as a stream: per choice one content event and one finish
    event, then the usage event if the client asked for it, then ``[DONE]``. Used where
    the answer exists before the stream starts (an ensemble's aggregate)."""
    base = {
        "id": data.get("id", ""),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": data.get("created", 0),
        "model": data.get("model", ""),
    }
    events = []
    for choice in data.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0)
        if chat:
            message = choice.get("message") or {}
            delta = {"role": "assistant", "content": message.get("content") or ""}
            content = {"index": index, "delta": delta, "finish_reason": None}
            finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        else:
            content = {"index": index, "text": choice.get("text") or "", "finish_reason": None}
            finish = {"index": index, "text": "", "finish_reason": choice.get("finish_reason")}
        events.append({**base, "choices": [content]})
        events.append({**base, "choices": [finish]})
    if include_usage and isinstance(data.get("usage"), dict):
        events.append({**base, "choices": [], "usage": data["usage"]})
    body = b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events)
    return body + _DONE + b"\n\n"
