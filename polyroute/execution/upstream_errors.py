"""Turn an upstream's error response into the gateway's error, sanitized for the client.

Upstream messages can echo what they were sent, keys included; they are shortened and any
key-like token is masked before a client sees them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from polyroute.errors import UpstreamAuthError, UpstreamError, UpstreamStatusError

_SECRET_LIKE = re.compile(r"(sk|pk|rk|key|tok|api)[-_][A-Za-z0-9_\-]{6,}|Bearer\s+\S+", re.I)
_MAX_MESSAGE = 500


def error_from_response(
    deployment: str, status: int, headers: Mapping[str, str], body: bytes
) -> UpstreamError:
    """The UpstreamError for a non-2xx upstream response."""
    message, error_type = _parse(body)
    prefix = f"deployment {deployment}"
    if status in (401, 403):
        return UpstreamAuthError(
            f"{prefix}: the upstream rejected the gateway's credentials ({status})",
            deployment=deployment,
        )
    text = f"{prefix}: upstream returned {status}" + (f": {message}" if message else "")
    error = UpstreamStatusError(
        text, upstream_status=status, upstream_type=error_type, deployment=deployment
    )
    retry_after = headers.get("retry-after")
    if status == 429 and retry_after:
        error.headers["retry-after"] = retry_after
    return error


def sanitize(message: str) -> str:
    """Mask key-like substrings and cap the length of an upstream message."""
    cleaned = _SECRET_LIKE.sub("[redacted]", message)
    return cleaned if len(cleaned) <= _MAX_MESSAGE else cleaned[:_MAX_MESSAGE] + "..."


def _parse(body: bytes) -> tuple[str, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        error_type = error.get("type")
        return (
            sanitize(message) if isinstance(message, str) else "",
            error_type if isinstance(error_type, str) else None,
        )
    if isinstance(error, str):
        return sanitize(error), None
    return "", None
