"""Check the request fields the gateway relies on; everything else passes through unchanged.

Errors name the offending field in `param` (OpenAI style, e.g. ``messages[2].role``).
Only what routing, streaming and accounting read is checked here: the upstream remains the
judge of parameters the gateway merely forwards (tools, response_format, seed, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyroute.errors import InvalidRequest
from polyroute.kinds import EndpointKind

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields that would let a client redirect the gateway's upstream call (SSRF) or inject
# credentials/headers into it, as SDKs and other gateways spell them (refused with 400, so
# an upstream that honours them, e.g. another proxy, never sees them).
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "api_key",
        "api_type",
        "api_version",
        "azure_endpoint",
        "base_url",
        "custom_llm_provider",
        "default_headers",
        "extra_headers",
        "extra_query",
        "headers",
        "upstream",
    }
)


def validate(kind: EndpointKind, body: dict[str, Any]) -> None:
    """Raise InvalidRequest if `body` cannot be served as a `kind` request."""
    forbidden = FORBIDDEN_FIELDS.intersection(body)
    if forbidden:
        name = sorted(forbidden)[0]
        raise InvalidRequest(
            f"the field {name!r} cannot be set by a request; upstreams are configured "
            "by the gateway operator",
            param=name,
            code="forbidden_field",
        )
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _wrong("model", "a string")
    _CHECKS[kind](body)
    _common(body)


def _chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("missing required parameter: 'messages'", param="messages")
    if not isinstance(messages, list) or not messages:
        raise _wrong("messages", "a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _wrong(f"messages[{index}]", "an object")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise _wrong(f"messages[{index}].role", "one of " + ", ".join(sorted(ROLES)))
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _wrong(f"messages[{index}].content", "a string or an array of parts")


def _completion(body: dict[str, Any]) -> None:
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("missing required parameter: 'prompt'", param="prompt")
    if not isinstance(prompt, (str, list)):
        raise _wrong("prompt", "a string or an array")


def _embedding(body: dict[str, Any]) -> None:
    data = body.get("input")
    if data is None:
        raise InvalidRequest("missing required parameter: 'input'", param="input")
    if not isinstance(data, str) and (not isinstance(data, list) or not data):
        raise _wrong("input", "a string or a non-empty array")
    _integer(body, "dimensions", 1, 65536)
    _no_stream(body, "embeddings")


def _image(body: dict[str, Any]) -> None:
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("missing required parameter: 'prompt'", param="prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _wrong("prompt", "a non-empty string")
    size = body.get("size")
    if size is not None and not isinstance(size, str):
        raise _wrong("size", "a string such as '1024x1024'")
    _no_stream(body, "image generation")


def _no_stream(body: dict[str, Any], what: str) -> None:
    if body.get("stream") is True:
        raise InvalidRequest(
            f"streaming is not supported for {what}; omit `stream`",
            param="stream",
            code="unsupported_parameter",
        )


def _common(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong("stream", "a boolean")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _wrong("stream_options", "an object")
    _integer(body, "n", 1, 128)
    _integer(body, "max_tokens", 1, None)
    _integer(body, "max_completion_tokens", 1, None)
    _number(body, "temperature", 0.0, 2.0)
    _number(body, "top_p", 0.0, 1.0)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _wrong("user", "a string")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _wrong("metadata", "an object")


def _integer(body: dict[str, Any], name: str, low: int, high: int | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong(name, "an integer")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InvalidRequest(f"{name} must be {bound}, got {value}", param=name)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _wrong(name, "a number")
    if not low <= value <= high:
        raise InvalidRequest(
            f"{name} must be between {low:g} and {high:g}, got {value}", param=name
        )


def _wrong(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"invalid type for {param!r}: expected {expected}", param=param)


_CHECKS: dict[EndpointKind, Callable[[dict[str, Any]], None]] = {
    EndpointKind.CHAT: _chat,
    EndpointKind.COMPLETION: _completion,
    EndpointKind.EMBEDDING: _embedding,
    EndpointKind.IMAGE: _image,
}
