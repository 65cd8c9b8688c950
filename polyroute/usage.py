"""Usage: the tokens (or images) a request consumed, read from the upstream's answer, and
what they cost at the deployment's prices.

Streams report usage only in a final event, and only when asked
(``stream_options.include_usage``). Limits and budgets need real figures for streams too,
so the executor asks every deployment that supports it (``stream_usage: true``, the
default), and `StreamUsage` reads that event; when the client did not ask for it, the event
is withheld, because clients that read ``choices[0]`` of every chunk would break on it.
When no usage arrives at all, `estimate` gives a labelled estimate.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.events import event_ends
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage

_MAX_EVENT = 1 << 20
# OpenAI puts `"usage": null` in every chunk of a stream that asked for usage; such an
# event carries no figures and is not parsed (compact and spaced JSON; other spellings
# are parsed and give None all the same)
_NULL_USAGE = (b'"usage":null', b'"usage": null')


def usage_of(kind: EndpointKind, answer: dict[str, Any]) -> Usage | None:
    """The usage an upstream reported in a JSON answer (None if it reported none)."""
    if kind is EndpointKind.IMAGE:
        images = answer.get("data")
        return Usage(images=len(images)) if isinstance(images, list) else None
    return _parse_usage(answer.get("usage"))


def _parse_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens") or 0
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if not isinstance(cached, int) or isinstance(cached, bool) or cached < 0:
        cached = 0
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=min(cached, prompt)
    )


def cost_of(deployment: Deployment, usage: Usage) -> float:
    """USD for `usage` at `deployment`'s prices; cached prompt tokens (OpenAI's
    ``usage.prompt_tokens_details.cached_tokens``) at the cached-input price, which
    defaults to the input price."""
    price = deployment.price
    cached = usage.cached_tokens
    cached_price = price.input_per_mtok
    if price.cached_input_per_mtok is not None:
        cached_price = price.cached_input_per_mtok
    return (
        (usage.prompt_tokens - cached) * price.input_per_mtok
        + cached * cached_price
        + usage.completion_tokens * price.output_per_mtok
    ) / 1e6 + usage.images * price.per_image


def estimate(ctx: RequestContext, completion_tokens: int = 0) -> Usage:
    """A labelled estimate when the upstream reported nothing: the prompt from the
    context's token estimate, the answer as counted by the caller (streamed events)."""
    return Usage(ctx.token_estimate, completion_tokens, estimated=True)


def wants_stream_usage(body: dict[str, Any]) -> bool:
    """Whether the client itself asked for the usage event of a stream."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class StreamUsage:
    """Reads the usage event of an SSE stream as it passes, and withholds it if asked.

    Without withholding, chunks pass through unchanged and only the events that mention
    ``"usage"`` are parsed. With it, bytes are forwarded whole events at a time (a client
    cannot use half an event anyway) so the usage-only event can be dropped.
    """

    __slots__ = ("_pending", "_withhold", "events", "usage")

    def __init__(self, *, withhold: bool) -> None:
        self._withhold = withhold
        self._pending = b""
        self.usage: Usage | None = None
        self.events = 0  # data events seen (about one token each): an estimate's basis

    def feed(self, chunk: bytes) -> bytes:
        """The bytes of `chunk` to forward now."""
        data = self._pending + chunk if self._pending else chunk
        ends = event_ends(data)
        self.events += len(ends)
        if not ends:
            if len(data) > _MAX_EVENT:  # not SSE as we know it: stop holding bytes back
                self._pending = b""
                return data if self._withhold else chunk
            self._pending = data
            return b"" if self._withhold else chunk
        cut = ends[-1]
        self._pending = data[cut:]
        complete = data[:cut]
        at = complete.find(b'"usage"')
        if at < 0:
            return complete if self._withhold else chunk
        # only the events that mention usage are parsed; a usage-only one is cut out
        pieces: list[bytes] = []
        start = kept_from = 0
        for end in ends:
            if at >= end:
                start = end
                continue
            if self._read(complete[start:end]) and self._withhold:
                pieces.append(complete[kept_from:start])
                kept_from = end
            at = complete.find(b'"usage"', end)
            if at < 0:
                break
            start = end
        if not self._withhold:
            return chunk
        if not pieces:
            return complete
        pieces.append(complete[kept_from:])
        return b"".join(pieces)

    def finish(self) -> bytes:
        """What is still held back when the stream ends."""
        rest, self._pending = self._pending, b""
        if rest and self._read(rest) and self._withhold:
            return b""
        return rest if self._withhold else b""

    def _read(self, event: bytes) -> bool:
        """Record the usage of a usage-only event; True if `event` was one."""
        at = event.find(b'"usage"')
        if at < 0 or event.startswith(_NULL_USAGE, at):
            return False
        body = event.strip()
        if not body.startswith(b"data:"):
            return False
        try:
            data = orjson.loads(body[5:].strip())
        except orjson.JSONDecodeError:
            return False
        if not isinstance(data, dict):
            return False
        usage = _parse_usage(data.get("usage"))
        if usage is None:
            return False
        self.usage = usage
        return not data.get("choices")
