"""Rebuild a whole JSON answer from a stream's events, so a streamed answer can be cached
(and later served to JSON and streaming requests alike).

Only plain text answers are rebuilt; a stream carrying tool calls, function calls or
anything but text deltas is left uncached rather than stored in a shape we cannot vouch for.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyroute.events import event_ends
from polyroute.kinds import EndpointKind

_MAX_BYTES = 4 << 20


class AnswerAssembler:
    """Fed the raw stream bytes; `answer()` is the equivalent JSON body, or None."""

    def __init__(self, kind: EndpointKind) -> None:
        self._chat = kind is EndpointKind.CHAT
        self._pending = b""
        self._size = 0
        self._meta: dict[str, Any] = {}
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, Any] = {}
        self._usage: Any = None
        self.usable = True
        self.done = False  # saw `data: [DONE]`: the stream ended properly

    def feed(self, chunk: bytes) -> None:
        if not self.usable:
            return
        self._size += len(chunk)
        if self._size > _MAX_BYTES:
            self.usable = False
            return
        data = self._pending + chunk
        start = 0
        for end in event_ends(data):
            self._event(data[start:end])
            start = end
        self._pending = data[start:]

    def _event(self, raw: bytes) -> None:
        line = raw.strip()
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.usable = False
            return
        if not isinstance(event, dict) or "error" in event:
            self.usable = False
            return
        for field in ("id", "created", "model", "system_fingerprint"):
            if field in event and field not in self._meta:
                self._meta[field] = event[field]
        if event.get("usage"):
            self._usage = event["usage"]
        for choice in event.get("choices") or []:
            self._choice(choice)

    def _choice(self, choice: Any) -> None:
        if not isinstance(choice, dict) or not isinstance(choice.get("index", 0), int):
            self.usable = False
            return
        index = choice.get("index", 0)
        if self._chat:
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict) or set(delta) - {"role", "content", "refusal"}:
                self.usable = False  # tool calls, audio...: not rebuilt
                return
            text = delta.get("content")
        else:
            text = choice.get("text")
        parts = self._texts.setdefault(index, [])
        if isinstance(text, str):
            parts.append(text)
        if choice.get("finish_reason") is not None:
            self._finish[index] = choice["finish_reason"]

    def answer(self) -> dict[str, Any] | None:
        """The JSON answer the stream amounted to (None if it cannot be rebuilt)."""
        if not self.usable or not self.done or not self._texts:
            return None
        choices = []
        for index in sorted(self._texts):
            text = "".join(self._texts[index])
            choice: dict[str, Any] = {"index": index, "finish_reason": self._finish.get(index)}
            if self._chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choices.append(choice)
        answer: dict[str, Any] = {
            "id": self._meta.get("id", ""),
            "object": "chat.completion" if self._chat else "text_completion",
            "created": self._meta.get("created", 0),
            "model": self._meta.get("model", ""),
            "choices": choices,
        }
        if "system_fingerprint" in self._meta:
            answer["system_fingerprint"] = self._meta["system_fingerprint"]
        if self._usage is not None:
            answer["usage"] = self._usage
        return answer
