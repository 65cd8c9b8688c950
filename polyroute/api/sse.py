"""Server-sent events: forwarding upstream chunks, and the terminal error event.

Chunks are forwarded as they arrive, byte for byte (no re-framing, no buffering). If the
upstream fails after the first byte went out, the stream ends with one
``data: {"error": ...}`` event and no ``[DONE]``: the openai SDK raises on it, whereas a
silently truncated stream would look like success.
"""

from __future__ import annotations

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
