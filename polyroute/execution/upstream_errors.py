"""Turn an upstream's error response into the gateway's error, sanitized for the client.

Upstream messages can echo what they were sent, keys included: the deployment's own
credentials and anything key-shaped are masked, and the message is shortened, before a
client sees it. The upstream's `code` and `param` (e.g. ``context_length_exceeded``) are
kept, since clients act on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import orjson

from polyroute.errors import UpstreamAuthError, UpstreamError, UpstreamStatusError, UpstreamTimeout

_SECRET_LIKE = re.compile(
    r"(sk|pk|rk|hf|gsk|key|tok|api)[-_][A-Za-z0-9_\-]{6,}|Bearer\s+\S+|\b[0-9a-f]{32,}\b", re.I
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{12,}")
_MAX_MESSAGE = 500
_OUR_CREDENTIALS = {401: "credentials", 402: "billing account", 403: "credentials"}


def error_from_response(
    deployment: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str] = (),
) -> UpstreamError:
    """The UpstreamError for a non-2xx upstream response."""
    prefix = f"deployment {deployment}"
    if status in _OUR_CREDENTIALS:
        return UpstreamAuthError(
            f"{prefix}: the upstream refused the gateway's {_OUR_CREDENTIALS[status]} ({status})",
            deployment=deployment,
        )
    if status == 408:
        return UpstreamTimeout(f"{prefix}: the upstream timed out (408)", deployment=deployment)
    message, error_type, code, param = _parse(body, secrets)
    text = f"{prefix}: upstream returned {status}" + (f": {message}" if message else "")
    error = UpstreamStatusError(
        text,
        upstream_status=status,
        upstream_type=error_type,
        deployment=deployment,
        code=code if status < 500 else None,
        param=param,
    )
    retry_after = headers.get("retry-after")
    if status == 429 and retry_after:
        error.headers["retry-after"] = retry_after
    return error


def sanitize(message: str, secrets: Iterable[str] = ()) -> str:
    """Mask the given secrets (whole, or any 12+ character piece of one) and key-like
    substrings; cap the length."""
    known = tuple(secrets)
    for secret in known:
        message = message.replace(secret, "[redacted]")
    if known:
        message = _TOKEN.sub(
            lambda m: "[redacted]" if any(m.group() in s for s in known) else m.group(), message
        )
    cleaned = _SECRET_LIKE.sub("[redacted]", message)
    return cleaned if len(cleaned) <= _MAX_MESSAGE else cleaned[:_MAX_MESSAGE] + "..."


def _parse(body: bytes, secrets: Iterable[str]) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-style error body, sanitized."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", None, None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return sanitize(error, secrets), None, None, None
    if not isinstance(error, dict):
        return "", None, None, None
    message = error.get("message")
    return (
        sanitize(message, secrets) if isinstance(message, str) else "",
        _short(error.get("type")),
        _short(error.get("code")),
        _short(error.get("param")),
    )


def _short(value: object) -> str | None:
    """A short identifier-like string from the upstream, or None."""
    if isinstance(value, str) and len(value) <= 64 and _SECRET_LIKE.search(value) is None:
        return value
    return None
