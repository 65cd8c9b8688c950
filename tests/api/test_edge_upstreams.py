"""Upstreams that misbehave in ways the simulator does not: a scripted aiohttp server on a
real socket (in a thread), behind a real gateway process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from tests.support import free_port, polyroute_process

EDGE_KEY = "sk-edge-canary-0123456789abcdef"
CLIENT_KEY = "sk-client-canary-9876543210fedcba"
MESSAGES = [{"role": "user", "content": "hello"}]
CHUNK = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)


class EdgeUpstream:
    """Each path is a behaviour; `seen` records what arrived (cookies, auth)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.port = free_port()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{mode}/v1/chat/completions", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        mode = request.match_info["mode"]
        body = await request.json()
        if mode == "no-done":  # a clean end of stream, but no [DONE]
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(CHUNK)
            await response.write_eof()
            return response
        if mode == "json-for-stream":
            return web.json_response({"not": "a stream"})
        if mode == "redirect":
            raise web.HTTPTemporaryRedirect("http://127.0.0.1:9/elsewhere")
        if mode == "cookie":
            response = web.json_response(_completion())
            response.set_cookie("session", "tenant-a-secret")
            return response
        if mode == "echo-key":
            auth = request.headers.get("authorization", "")
            return web.json_response(
                {"error": {"message": f"invalid request sent with {auth} and {EDGE_KEY[3:]}"}},
                status=400,
            )
        if body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(CHUNK + b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        return web.json_response(_completion())


def _completion() -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EdgeUpstream, Any]]:
    upstream = EdgeUpstream()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(upstream.app(), access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", upstream.port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{upstream.port}"
    modes = ["no-done", "json-for-stream", "redirect", "cookie", "echo-key", "ok"]
    models = "\n".join(
        f"  - {{name: {m}, base_url: {base}/{m}/v1, api_key: '${{EDGE_KEY}}'}}" for m in modes
    )
    config = f"""
models:
{models}
routes:
  json-then-ok: {{strategy: weighted, targets: [{{name: json-for-stream, weight: 1000000}}, ok]}}
keys:
  - {{id: tester, key: '${{CLIENT_KEY}}'}}
"""
    path: Path = tmp_path_factory.mktemp("edge") / "gw.yaml"
    path.write_text(config)
    port = free_port()
    env = {"EDGE_KEY": EDGE_KEY, "CLIENT_KEY": CLIENT_KEY}
    with polyroute_process(
        "serve", "-c", str(path), "--port", str(port), ready_path="/readyz", port=port, env=env
    ) as proc:
        yield f"http://127.0.0.1:{port}/v1", upstream, proc
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=CLIENT_KEY, max_retries=0)


def test_stream_ending_without_done_is_an_error(edge: Any) -> None:
    """A stream that stops cleanly but without [DONE] raises in the SDK, not silently."""
    url, _, _ = edge
    with client(url) as c:
        stream = c.chat.completions.create(model="no-done", messages=MESSAGES, stream=True)
        received: list[object] = []
        with pytest.raises(openai.APIError, match="without \\[DONE\\]"):
            received.extend(stream)
    assert len(received) == 1


def test_json_answer_to_a_stream_request_falls_back(edge: Any) -> None:
    """A 200 that is not an event stream is a bad response: the next deployment serves."""
    url, _, _ = edge
    with client(url) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="json-then-ok", messages=MESSAGES, stream=True
        )
        assert raw.headers["x-polyroute-deployment"] == "ok"
        assert raw.headers["x-polyroute-attempts"] == "2"
        raw.parse().close()


def test_redirects_are_not_followed(edge: Any) -> None:
    """An upstream redirect is a 502 naming the deployment; nothing goes to the new host."""
    url, upstream, _ = edge
    before = len(upstream.seen)
    response = httpx.post(
        url + "/chat/completions",
        json={"model": "redirect", "messages": MESSAGES},
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 502
    assert "deployment redirect" in response.json()["error"]["message"]
    assert response.headers["x-polyroute-attempts"] == "3"  # retried here, never redirected
    assert len(upstream.seen) == before + 3


def test_upstream_cookies_are_not_replayed(edge: Any) -> None:
    """A cookie set by an upstream is not sent with later requests (no shared jar)."""
    url, upstream, _ = edge
    with client(url) as c:
        c.chat.completions.create(model="cookie", messages=MESSAGES)
        c.chat.completions.create(model="cookie", messages=MESSAGES)
    assert "cookie" not in upstream.seen[-1]


def test_upstream_error_echoing_the_key_is_redacted(edge: Any) -> None:
    """An upstream message that repeats our key (whole or in part) reaches the client masked."""
    url, _, _ = edge
    response = httpx.post(
        url + "/chat/completions",
        json={"model": "echo-key", "messages": MESSAGES},
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 400
    assert "[redacted]" in response.text
    assert EDGE_KEY not in response.text
    assert EDGE_KEY[3:] not in response.text


def test_client_credentials_never_reach_upstream_or_routing(edge: Any) -> None:
    """The upstream receives the deployment's key, never the client's."""
    url, upstream, _ = edge
    with client(url) as c:
        c.chat.completions.create(model="ok", messages=MESSAGES)
    assert upstream.seen[-1]["authorization"] == f"Bearer {EDGE_KEY}"
    assert CLIENT_KEY not in str(upstream.seen[-1])


def test_zz_no_key_in_gateway_output(edge: Any) -> None:
    """After every request above (errors included), the gateway's own output holds no key.

    Named zz so it runs last in this module; it reads what the process printed so far.
    """
    url, _, proc = edge
    httpx.post(url + "/chat/completions", json={}, headers={"authorization": "Bearer sk-nope-x"})
    proc.terminate()
    proc.wait(timeout=10)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "polyroute listening" in output
    for secret in (EDGE_KEY, EDGE_KEY[3:], CLIENT_KEY, "sk-nope-x"):
        assert secret not in output
