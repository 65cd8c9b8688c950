"""The gateway's error tree: every failure a client can see, with its status and OpenAI type.

::

    GatewayError
    ├── ClientError                       4xx, the request itself is wrong
    │   ├── InvalidRequest                400 invalid_request_error (names `param`)
    │   ├── AuthenticationFailed          401 authentication_error
    │   ├── PermissionDenied              403 permission_error
    │   ├── NotFound                      404 invalid_request_error / model_not_found
    │   ├── PayloadTooLarge               413 invalid_request_error
    │   ├── UnsupportedMediaType          415 invalid_request_error
    │   └── RateLimited                   429 rate_limit_error (+ retry-after)
    └── UpstreamError                     the model behind the gateway failed
        ├── UpstreamConnectionError       503 connect refused
        ├── UpstreamReset                 502 connection dropped before the response ended
        ├── UpstreamTimeout               504 connect, first byte, idle or total deadline
        ├── UpstreamBadResponse           502 invalid JSON, oversized body, cut stream
        ├── UpstreamAuthError             502 our credential for the upstream was refused
        ├── UpstreamStatusError           the upstream answered with an error status
        └── Overloaded                    503 too many requests in flight (+ retry-after)

Each class knows how to render itself as the OpenAI error body, so the HTTP layer has one
place that turns an exception into a response. Messages name deployments, never keys or URLs
with credentials.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}
        self.should_retry = should_retry

    def body(self) -> dict[str, Any]:
        """The OpenAI-shaped error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ClientError(GatewayError):
    """The request is wrong; retrying it unchanged cannot help."""

    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("should_retry", False)
        super().__init__(message, **kwargs)


class InvalidRequest(ClientError):
    status = 400


class AuthenticationFailed(ClientError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    error_type = "permission_error"


class NotFound(ClientError):
    status = 404
    default_code = "model_not_found"


class PayloadTooLarge(ClientError):
    status = 413
    default_code = "request_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimited(ClientError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_after is not None:
            headers["retry-after"] = str(max(1, round(retry_after)))
        kwargs.setdefault("should_retry", None)
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after


class UpstreamError(GatewayError):
    """A deployment failed. `retryable` says whether another attempt may succeed."""

    status = 502
    error_type = "upstream_error"
    retryable: bool = True

    def __init__(self, message: str, *, deployment: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.deployment = deployment


class UpstreamConnectionError(UpstreamError):
    status = 503
    default_code = "upstream_unavailable"


class UpstreamReset(UpstreamError):
    status = 502
    default_code = "upstream_reset"


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"


class UpstreamBadResponse(UpstreamError):
    status = 502
    default_code = "upstream_invalid_response"


class UpstreamAuthError(UpstreamError):
    """The upstream refused *our* credential: an operator problem, never the client's key."""

    status = 502
    default_code = "upstream_authentication_error"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error status; 4xx are the client's, 5xx are ours."""

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        upstream_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        if upstream_status == 429:
            self.status, self.error_type = 429, "rate_limit_error"
            self.code = self.code or "rate_limit_exceeded"
        elif 400 <= upstream_status < 500:
            self.status, self.error_type = upstream_status, upstream_type or "invalid_request_error"
        else:
            self.status, self.code = 502, self.code or "upstream_error"
        # 429 and 5xx may pass; 3xx (a redirect polyroute does not follow) is a deployment
        # problem another deployment may not have; other 4xx are the request's own fault
        self.retryable = not 400 <= upstream_status < 500 or upstream_status == 429


class Overloaded(UpstreamError):
    """Shed load fast instead of queueing: the client may retry shortly."""

    status = 503
    error_type = "overloaded_error"
    default_code = "overloaded"
    retryable = False

    def __init__(self, message: str, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("retry-after", "1")
        super().__init__(message, headers=headers, **kwargs)
