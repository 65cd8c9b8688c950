"""Mapping upstream error responses: statuses, kept codes, masked secrets."""

from __future__ import annotations

import orjson
import pytest

from polyroute.errors import UpstreamAuthError, UpstreamStatusError, UpstreamTimeout
from polyroute.execution.upstream_errors import error_from_response, sanitize


def body(message: str, **extra: object) -> bytes:
    return orjson.dumps({"error": {"message": message, **extra}})


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("bad key sk-proj-abcdefghijklmnop", "sk-proj-abcdefghijklmnop"),
        ("header was Bearer abc.def.ghi", "abc.def.ghi"),
        ("token hf_AbCdEfGhIjKlMnOp rejected", "hf_AbCdEfGhIjKlMnOp"),
        ("id 0123456789abcdef0123456789abcdef seen", "0123456789abcdef0123456789abcdef"),
    ],
)
def test_key_like_strings_are_masked(text: str, hidden: str) -> None:
    """Anything shaped like a credential is masked, whatever the upstream."""
    assert hidden not in sanitize(text)
    assert "[redacted]" in sanitize(text)


def test_known_secrets_are_masked_whole_and_in_part() -> None:
    """The deployment's own key is masked even when echoed only in part."""
    secret = "plainsecretvalue-with-no-prefix-42"
    text = f"got {secret} and also {secret[5:25]}"
    cleaned = sanitize(text, [secret])
    assert secret not in cleaned
    assert secret[5:25] not in cleaned


def test_ordinary_messages_are_kept_and_capped() -> None:
    """Ordinary words survive; very long messages are cut."""
    assert sanitize("maximum context length is 8192 tokens") == (
        "maximum context length is 8192 tokens"
    )
    assert len(sanitize("x " * 1000)) <= 503


@pytest.mark.parametrize("status", [401, 402, 403])
def test_our_credentials_refused(status: int) -> None:
    """401/402/403 from the upstream are our account's problem: 502, and fall back."""
    error = error_from_response("d", status, {}, body("no"))
    assert isinstance(error, UpstreamAuthError)
    assert error.status == 502
    assert error.retryable


def test_408_is_a_retryable_timeout() -> None:
    """An upstream 408 is a timeout on its side, worth another deployment."""
    error = error_from_response("d", 408, {}, b"")
    assert isinstance(error, UpstreamTimeout)
    assert error.retryable


def test_client_error_keeps_code_and_param() -> None:
    """A 400 keeps the upstream's code and param and is not retried."""
    payload = body("too long", code="context_length_exceeded", param="messages")
    error = error_from_response("d", 400, {}, payload)
    assert isinstance(error, UpstreamStatusError)
    assert (error.status, error.code, error.param) == (400, "context_length_exceeded", "messages")
    assert not error.retryable


def test_redirect_is_a_retryable_bad_gateway() -> None:
    """A 3xx (redirects are not followed) is the deployment's problem: 502, try another."""
    error = error_from_response("d", 307, {}, b"")
    assert error.status == 502
    assert error.retryable


def test_429_keeps_retry_after() -> None:
    """429 stays 429 with the upstream's retry-after."""
    error = error_from_response("d", 429, {"retry-after": "3"}, body("slow down"))
    assert error.status == 429
    assert error.headers["retry-after"] == "3"
    assert error.retryable
