"""Read and parse a request body: size cap enforced while reading, strict JSON, one parse."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from polyroute.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

_JSON_TYPES = ("application/json", "")


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past `limit` bytes, 415 for non-JSON, 400 if malformed.

    orjson is strict where the standard library is lax: NaN/Infinity, lone surrogates and
    over-deep nesting are rejected rather than accepted or crashing the handler.
    """
    content_type = request.content_type if request.headers.get("content-type") else ""
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send application/json"
        )
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except RequestPayloadError:
        raise InvalidRequest(
            "the request body could not be read (bad Content-Encoding or chunking)",
            code="invalid_body",
        ) from None
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object", code="empty_body")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON ({_reason(exc)})", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    return data


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")


def _reason(exc: orjson.JSONDecodeError) -> str:
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
