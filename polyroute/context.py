"""RequestContext: the one normalized view of a request that routing strategies read.

Built once per request from the parsed body; strategies never re-parse it. Derived views
(the flattened prompt, the token estimate) are computed on first use and cached, so a
request routed by a static strategy never pays for text flattening it does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from polyroute.kinds import EndpointKind

_MESSAGE_OVERHEAD_TOKENS = 4
MAX_PRICE_HEADER = "x-polyroute-max-price"
PRIVATE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "api-key", "x-api-key"}
)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What one API key may use; None: no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget: float | None = None  # USD per budget_period
    budget_period: str = "month"  # day | week | month | total


NO_LIMITS = KeyLimits()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent the request: the API key's identity and attributes that rules can read."""

    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    tier: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    allowed_models: frozenset[str] | None = None
    limits: KeyLimits = NO_LIMITS

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


ANONYMOUS = Caller()


class RequestContext:
    """What the router knows about one request."""

    __slots__ = (
        "_headers",
        "_language",
        "_last_user_text",
        "_max_price",
        "_raw_headers",
        "_sentiment",
        "_text",
        "_tokens",
        "body",
        "budget_left",
        "caller",
        "kind",
        "model",
        "request_id",
        "stream",
    )

    def __init__(
        self,
        *,
        request_id: str,
        kind: EndpointKind,
        model: str,
        body: dict[str, Any],
        caller: Caller = ANONYMOUS,
        headers: Mapping[str, str] | None = None,
        prompt_tokens: int | None = None,
    ) -> None:
        """`prompt_tokens`: a known prompt size that stands in for the estimate (replay
        passes the logged count of a request whose prompt was not logged)."""
        self.request_id = request_id
        self.kind = kind
        self.model = model
        self.body = body
        self.stream = body.get("stream") is True
        self.caller = caller
        self.budget_left: float | None = None
        """USD the caller's budgets still allow, when they have any (set before routing,
        read by the `budget` filter)."""
        self._raw_headers = headers
        self._text: str | None = None
        self._last_user_text: str | None = None
        self._tokens: int | None = prompt_tokens
        self._headers: dict[str, str] | None = None
        self._max_price: float | bool | None = False  # False: not read yet
        self._language: str | None = None
        self._sentiment: float | None = None

    @property
    def max_price(self) -> float | None:
        """The caller's cap on this request's estimated cost (`x-polyroute-max-price`, USD)."""
        if self._max_price is False:
            raw = self._raw_headers.get(MAX_PRICE_HEADER) if self._raw_headers else None
            self._max_price = _parse_price(raw)
        return self._max_price

    @property
    def language(self) -> str:
        """Language of the latest user turn (e.g. "en", "zh"), detected on first use."""
        if self._language is None:
            from polyroute.routing.signals import detect_language

            self._language = detect_language(self.last_user_text)
        return self._language

    @property
    def sentiment(self) -> float:
        """Sentiment of the latest user turn in [-1, 1], computed on first use."""
        if self._sentiment is None:
            from polyroute.routing.signals import sentiment

            self._sentiment = sentiment(self.last_user_text)
        return self._sentiment

    @property
    def headers(self) -> Mapping[str, str]:
        """Request headers routing may read (lower-cased); credentials are never included."""
        if self._headers is None:
            raw = self._raw_headers or {}
            self._headers = {
                name.lower(): value
                for name, value in raw.items()
                if name.lower() not in PRIVATE_HEADERS
            }
        return self._headers

    def header(self, name: str) -> str | None:
        """One request header by its lower-case name, without building `headers`."""
        if name in PRIVATE_HEADERS or not self._raw_headers:
            return None
        return self._raw_headers.get(name)

    @property
    def user(self) -> str | None:
        """The end user: the body's OpenAI `user` field, else the key's user."""
        user = self.body.get("user")
        return user if isinstance(user, str) else self.caller.user

    @property
    def metadata(self) -> Mapping[str, Any]:
        metadata = self.body.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def text(self) -> str:
        """All prompt text of the request, in order (messages flattened, prompts joined)."""
        if self._text is None:
            self._text = "\n".join(_texts(self.kind, self.body))
        return self._text

    @property
    def last_user_text(self) -> str:
        """The latest user turn: what a multi-turn conversation is asking *now*."""
        if self._last_user_text is None:
            self._last_user_text = _last_user_text(self.kind, self.body) or self.text
        return self._last_user_text

    @property
    def token_estimate(self) -> int:
        """Prompt tokens, estimated without a tokenizer (~4 ASCII chars or 1 CJK char each)."""
        if self._tokens is None:
            overhead = 0
            messages = self.body.get("messages")
            if isinstance(messages, list):
                overhead = _MESSAGE_OVERHEAD_TOKENS * len(messages)
            self._tokens = estimate_tokens(self.text) + overhead
        return self._tokens


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ASCII runs at ~4 chars/token, other chars ~1 token each."""
    chars = len(text)
    if text.isascii():  # a flag of the string: no copy to count bytes
        return (chars + 3) // 4
    wide = (len(text.encode("utf-8")) - chars) // 2  # a 3-byte CJK char adds 2 bytes
    return (chars - wide + 3) // 4 + wide


def _texts(kind: EndpointKind, body: dict[str, Any]) -> list[str]:
    if kind is EndpointKind.CHAT:
        messages = body.get("messages")
        if isinstance(messages, list):
            return [text for m in messages if isinstance(m, dict) for text in _content(m)]
        return []
    source = body.get("input") if kind is EndpointKind.EMBEDDING else body.get("prompt")
    if isinstance(source, str):
        return [source]
    if isinstance(source, list):
        return [item for item in source if isinstance(item, str)]
    return []


def _content(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
    return []


def _last_user_text(kind: EndpointKind, body: dict[str, Any]) -> str:
    if kind is not EndpointKind.CHAT:
        return ""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "\n".join(_content(message))
    return ""


def _parse_price(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        from polyroute.errors import InvalidRequest

        raise InvalidRequest(
            f"{MAX_PRICE_HEADER} must be a number of US dollars >= 0", param=MAX_PRICE_HEADER
        )
    return value
