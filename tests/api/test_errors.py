"""Every client-visible error: OpenAI-shaped body, the right status, no stack trace, no key."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.api.conftest import ALPHA_KEY, Stack

MESSAGES = [{"role": "user", "content": "hello"}]


def post(stack: Stack, path: str, content: bytes | None = None, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {"content-type": "application/json"})
    timeout = kwargs.pop("timeout", 10)
    return httpx.post(stack.url + path, content=content, headers=headers, timeout=timeout, **kwargs)


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert "Traceback" not in response.text
    assert ALPHA_KEY not in response.text
    return dict(error)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"model": "chat", "temperature": NaN}', "not valid JSON"),
        (b'{"model": "chat", "x": "\\ud800"}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(stack: Stack, content: bytes, fragment: str) -> None:
    """Malformed JSON, NaN, lone surrogates, deep nesting, bad UTF-8: 400, never 500."""
    error = assert_error(post(stack, "/chat/completions", content), 400)
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": "hi"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat", "messages": [1]}, "messages[0]"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": 5, "messages": MESSAGES}, "model"),
        ({"model": "chat", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "chat", "messages": MESSAGES, "temperature": 5}, "temperature"),
        ({"model": "chat", "messages": MESSAGES, "max_tokens": -1}, "max_tokens"),
        ({"model": "chat", "messages": MESSAGES, "max_tokens": True}, "max_tokens"),
        ({"model": "chat", "messages": MESSAGES, "n": 1000}, "n"),
        ({"model": "chat", "messages": MESSAGES, "api_base": "http://evil"}, "api_base"),
        ({"model": "chat", "messages": MESSAGES, "extra_headers": {"a": "b"}}, "extra_headers"),
    ],
)
def test_invalid_chat_fields_are_400_with_param(
    stack: Stack, body: dict[str, Any], param: str
) -> None:
    """Wrong types, missing fields, out-of-range values and forbidden fields name `param`."""
    assert_error(post(stack, "/chat/completions", json=body, headers={}), 400, param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/completions", {"model": "chat"}, "prompt"),
        ("/embeddings", {"model": "emb"}, "input"),
        ("/embeddings", {"model": "emb", "input": []}, "input"),
        ("/images/generations", {"model": "img", "prompt": ""}, "prompt"),
    ],
)
def test_invalid_other_endpoints(stack: Stack, path: str, body: dict[str, Any], param: str) -> None:
    """Each endpoint checks the fields it needs."""
    assert_error(post(stack, path, json=body, headers={}), 400, param)


def test_unknown_model_is_404_via_sdk(stack: Stack) -> None:
    """An unknown model is a NotFoundError in the SDK, with code model_not_found."""
    with pytest.raises(openai.NotFoundError) as info:
        stack.client().chat.completions.create(model="no-such-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"


def test_kind_the_route_cannot_serve_is_400(stack: Stack) -> None:
    """Asking an image-only deployment for chat names every rejected target."""
    response = post(
        stack, "/chat/completions", json={"model": "img", "messages": MESSAGES}, headers={}
    )
    error = assert_error(response, 400, "model")
    assert "does not serve chat requests" in error["message"]


def test_body_over_limit_is_413(stack: Stack) -> None:
    """A body over max_body_bytes is refused with 413 (here 64 KiB)."""
    big = b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 70000 + b'"}]}'
    assert_error(post(stack, "/chat/completions", big), 413)


def test_chunked_body_over_limit_is_413(stack: Stack) -> None:
    """Without a Content-Length the limit is enforced while reading the chunks."""

    def chunks() -> Any:
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}]}'

    response = httpx.post(
        stack.url + "/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert_error(response, 413)


def test_wrong_content_type_is_415(stack: Stack) -> None:
    """Form bodies are refused with a hint to send JSON."""
    response = post(stack, "/chat/completions", b"a=b", headers={"content-type": "text/plain"})
    assert_error(response, 415)


def test_unknown_path_and_method(stack: Stack) -> None:
    """Unknown URLs are 404 and wrong methods 405, both in the OpenAI shape."""
    assert_error(httpx.get(stack.url + "/nope", timeout=5), 404)
    assert_error(httpx.get(stack.url + "/chat/completions", timeout=5), 405)


def test_connection_refused_is_503_naming_deployment(sims: Stack) -> None:
    """A deployment that refuses connections: 503 naming it, never its URL or key."""
    response = post(
        sims, "/chat/completions", json={"model": "down", "messages": MESSAGES}, headers={}
    )
    error = assert_error(response, 503)
    assert "deployment down" in error["message"]
    assert "127.0.0.1" not in error["message"]
    assert response.headers["x-polyroute-deployment"] == "down"


def test_refused_primary_falls_back(sims: Stack) -> None:
    """With another deployment in the route, a refused primary falls back transparently."""
    raw = sims.client().chat.completions.with_raw_response.create(
        model="down-first", messages=MESSAGES
    )
    assert raw.headers["x-polyroute-deployment"] == "alpha"
    assert raw.headers["x-polyroute-attempts"] == "2"


@pytest.mark.parametrize(
    ("fault", "opts", "status", "code"),
    [
        ("server_error", {}, 502, "upstream_error"),
        ("unavailable", {}, 502, "upstream_error"),
        ("reset", {}, 502, "upstream_reset"),
        ("bad_json", {}, 502, "upstream_invalid_response"),
        ("status", {"status": 401}, 502, "upstream_authentication_error"),
    ],
)
def test_upstream_failures_map_to_5xx(
    sims: Stack, fault: str, opts: dict[str, Any], status: int, code: str
) -> None:
    """Upstream 5xx, resets, garbage and a refused credential are the gateway's 502s,
    once its retries are spent (1 + max_retries = 3 attempts)."""
    sims.beta.fault(fault, 3, **opts)
    response = post(
        sims, "/chat/completions", json={"model": "only-beta", "messages": MESSAGES}, headers={}
    )
    error = assert_error(response, status)
    assert error["code"] == code
    assert "deployment beta" in error["message"]
    assert response.headers["x-polyroute-attempts"] == "3"
    assert response.headers["x-should-retry"] == "false"


def test_upstream_401_is_never_the_clients_fault(sims: Stack) -> None:
    """Our upstream credential refused -> 502 upstream_authentication_error, not 401."""
    sims.beta.fault("status", 3, status=401)
    with pytest.raises(openai.APIStatusError) as info:
        sims.client().chat.completions.create(model="only-beta", messages=MESSAGES)
    assert info.value.status_code == 502


def test_upstream_429_passes_retry_after(sims: Stack) -> None:
    """An upstream 429 with nothing to fall back to (and no retries) is a 429 with its
    retry-after."""
    sims.beta.fault("rate_limit", 1, retry_after=7)
    response = post(
        sims,
        "/chat/completions",
        json={"model": "only-beta-once", "messages": MESSAGES},
        headers={},
    )
    error = assert_error(response, 429)
    assert error["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "7"


def test_upstream_400_is_passed_through_without_fallback(sims: Stack) -> None:
    """An upstream 400 is the client's error: passed through, no other deployment tried."""
    sims.beta.fault("status", 1, status=400)
    response = post(
        sims,
        "/chat/completions",
        json={"model": "beta-then-alpha", "messages": MESSAGES},
        headers={},
    )
    assert_error(response, 400)
    assert response.headers["x-should-retry"] == "false"
    assert sims.alpha.stats()["requests_total"] == 0


@pytest.mark.parametrize("fault", ["server_error", "rate_limit", "reset", "status"])
def test_retryable_failures_fall_back(sims: Stack, fault: str) -> None:
    """5xx, 429, resets and a refused credential on the primary fall back to the next."""
    # retry_after=0: the 429 cool-down must not outlive this test on the shared gateway
    sims.beta.fault(fault, 1, status=403, retry_after=0)
    raw = sims.client().chat.completions.with_raw_response.create(
        model="beta-then-alpha", messages=MESSAGES
    )
    assert raw.headers["x-polyroute-deployment"] == "alpha"
    assert raw.headers["x-polyroute-attempts"] == "2"


def test_hanging_upstream_times_out_with_504(sims: Stack) -> None:
    """An upstream that never answers: 504 after each attempt's first-byte timeout."""
    sims.beta.fault("hang", 3)
    response = post(
        sims, "/chat/completions", json={"model": "slow", "messages": MESSAGES}, headers={}
    )
    error = assert_error(response, 504)
    assert "deployment slow" in error["message"]


def test_stream_cut_midway_raises_in_sdk(sims: Stack) -> None:
    """A stream cut after the first bytes ends with an error event the SDK raises on."""
    sims.beta.fault("stream_cut", 1, after_chunks=3)
    stream = sims.client().chat.completions.create(
        model="only-beta", messages=MESSAGES, stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="deployment beta"):
        received.extend(stream)  # list.extend keeps what arrived before the error
    assert received, "some chunks arrived before the cut"


def test_stream_failure_before_first_byte_falls_back(sims: Stack) -> None:
    """A stream whose upstream fails before any byte is served by the next deployment."""
    sims.beta.fault("server_error", 1)
    stream = sims.client().chat.completions.with_raw_response.create(
        model="beta-then-alpha", messages=MESSAGES, stream=True
    )
    assert stream.headers["x-polyroute-deployment"] == "alpha"
    chunks = list(stream.parse())
    assert any(c.choices and c.choices[0].delta.content for c in chunks)


def test_broken_content_encoding_is_400(stack: Stack) -> None:
    """A body whose Content-Encoding does not decode is a 400, not a 500."""
    response = post(
        stack,
        "/chat/completions",
        b"not gzip at all",
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    error = assert_error(response, 400)
    assert error["code"] == "invalid_body"


def test_stream_on_embeddings_is_400(stack: Stack) -> None:
    """Embeddings and images cannot stream; asking for it names the parameter."""
    body = {"model": "emb", "input": "x", "stream": True}
    assert_error(post(stack, "/embeddings", json=body, headers={}), 400, "stream")


def test_dimensions_checked_for_string_input(stack: Stack) -> None:
    """`dimensions` is validated whatever the shape of `input`."""
    body = {"model": "emb", "input": "x", "dimensions": 0}
    assert_error(post(stack, "/embeddings", json=body, headers={}), 400, "dimensions")


def test_upstream_body_over_limit_is_502(sims: Stack) -> None:
    """An upstream answer over server.max_response_bytes (64 KiB here) is a 502."""
    body = {"model": "emb", "input": ["a b c"] * 8, "dimensions": 4096, "encoding_format": "float"}
    error = assert_error(post(sims, "/embeddings", json=body, headers={}), 502)
    assert error["code"] == "upstream_invalid_response"
    assert "larger than 65536 bytes" in error["message"]


@pytest.mark.parametrize("status", [404, 422])
def test_upstream_client_errors_keep_their_code(sims: Stack, status: int) -> None:
    """Upstream 404/422 pass through with the upstream's code, and no fallback."""
    sims.beta.fault("status", 1, status=status, code="context_length_exceeded")
    response = post(
        sims,
        "/chat/completions",
        json={"model": "beta-then-alpha", "messages": MESSAGES},
        headers={},
    )
    error = assert_error(response, status)
    assert error["code"] == "context_length_exceeded"
    assert sims.alpha.stats()["requests_total"] == 0


def test_stream_failure_before_first_byte_without_fallback(sims: Stack) -> None:
    """A stream whose only deployment fails before any byte gets a plain JSON 502."""
    sims.beta.fault("server_error", 3)
    with pytest.raises(openai.APIStatusError) as info:
        sims.client().chat.completions.create(model="only-beta", messages=MESSAGES, stream=True)
    assert info.value.status_code == 502


def test_stream_client_disconnect_before_first_token_cancels_upstream(sims: Stack) -> None:
    """A streaming client that leaves while waiting for the first token frees the upstream."""
    import time

    sims.beta.fault("slow", 1, ttft_ms=3000)
    with pytest.raises(httpx.ReadTimeout):
        post(
            sims,
            "/chat/completions",
            json={"model": "only-beta", "messages": MESSAGES, "stream": True},
            headers={},
            timeout=0.5,
        )
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and sims.beta.stats()["in_flight"]:
        time.sleep(0.05)
    stats = sims.beta.stats()
    assert stats["in_flight"] == 0
    assert stats["disconnects"] == 1
