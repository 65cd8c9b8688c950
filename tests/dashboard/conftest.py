"""A real `polyroute serve` process (in-process simulator deployments behind it) with an
admin key and a client key, and headless Chromium (Debian's package, driven by Playwright)
for the page tests."""

from __future__ import annotations

import json
import os
import shutil
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, gateway

ADMIN_KEY = "adm-dashboard-secret-4242"
CLIENT_KEY = "sk-client-dashboard-0123456789"
UPSTREAM_KEY = "sk-upstream-never-shown-987654"
CHROMIUM = os.environ.get("POLYROUTE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def dashboard_config(closed_port: int) -> str:
    return f"""
server:
  admin_key: ${{DASH_ADMIN_KEY}}
keys:
  - {{id: tester, key: "${{DASH_CLIENT_KEY}}"}}
resilience:
  breaker: {{consecutive_failures: 2, base_ejection: 600, max_ejection: 600}}
  backoff: {{base: 0.001, cap: 0.005}}
models:
  - name: quick
    provider: simulator
    profile: instant
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
  - name: steady
    provider: simulator
    profile: {{kinds: [chat, completion], ttft_ms: {{median: 30, p90: 60}},
              tokens_per_s: {{median: 2000, p90: 3000}}, output_tokens: {{median: 24, p90: 40}}}}
    price: {{input_per_mtok: 3.0, output_per_mtok: 6.0}}
  - name: pictures
    provider: simulator
    profile: instant
    kinds: [image]
    price: {{per_image: 0.04}}
  - name: broken
    base_url: http://127.0.0.1:{closed_port}/v1
    api_key: ${{DASH_UPSTREAM_KEY}}
routes:
  chat:
    strategy: weighted
    targets: [quick, steady]
  exp:
    strategy: ab
    arms:
      - {{name: control, target: quick, weight: 1}}
      - {{name: candidate, target: steady, weight: 1}}
  fragile:
    strategy: single
    target: broken
    max_retries: 0
  draw:
    strategy: single
    target: pictures
default_route: chat
"""


@dataclass
class Dash:
    base: str  # http://127.0.0.1:PORT (no /v1)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        key: str | None = CLIENT_KEY,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if key is not None:
            request.add_header("authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, _lower(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _lower(error.headers.items()), error.read()

    def chat(self, model: str, content: str = "hello", **extra: Any) -> int:
        body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
        return self.call("POST", "/v1/chat/completions", body)[0]

    def stats(self) -> dict[str, Any]:
        status, _, raw = self.call("GET", "/admin/stats", key=ADMIN_KEY)
        assert status == 200, raw
        return dict(json.loads(raw))


def _lower(items: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def send_traffic(dash: Dash) -> None:
    """A mix: two routes' chats (one streamed), an A/B split, failures that open a
    breaker, an image."""
    for i in range(12):
        assert dash.chat("chat", f"question {i}", stream=i % 3 == 0) == 200
    for i in range(8):
        assert dash.chat("exp", f"experiment {i}", user=f"user-{i}") == 200
    for _ in range(3):
        assert dash.chat("fragile") in {502, 503}
    image = {"model": "draw", "prompt": "a red circle", "response_format": "b64_json"}
    assert dash.call("POST", "/v1/images/generations", image)[0] == 200


@pytest.fixture(scope="session")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    tmp: Path = tmp_path_factory.mktemp("dashboard")
    env = {
        "DASH_ADMIN_KEY": ADMIN_KEY,
        "DASH_CLIENT_KEY": CLIENT_KEY,
        "DASH_UPSTREAM_KEY": UPSTREAM_KEY,
    }
    with gateway(dashboard_config(free_port()), tmp, env=env) as url:
        served = Dash(url.removesuffix("/v1"))
        send_traffic(served)
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium; skipped where it or Playwright is not installed
    (scripts/test.sh installs both). Module-scoped: Playwright's sync API keeps its own
    event loop marked as running while it is open, which async tests cannot share."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (own sessionStorage) that fails the test on any script error or any
    breach of the page's Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert not errors, errors


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG: a small stdlib
    decoder for screenshot checks (no Pillow needed)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        chunk = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour in (2, 6)  # RGB, RGBA
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line) if channels == 3 else _rgb(line))
        previous = line
    return width, height, rows


def _rgb(rgba: bytearray) -> bytes:
    return bytes(b for i, b in enumerate(rgba) if i % 4 != 3)


def count_colour(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within `tolerance` (per channel) of `rgb`."""
    width, _, rows = png_pixels(png)
    r0, g0, b0 = rgb
    found = 0
    for row in rows:
        for x in range(width):
            r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            if abs(r - r0) <= tolerance and abs(g - g0) <= tolerance and abs(b - b0) <= tolerance:
                found += 1
    return found
