"""Gateway processes whose whole output is kept, and a small admin API client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import HOST, free_port, wait_http

# the gateway under the most verbose logging there is: every library at DEBUG, so a secret
# that reaches any logger reaches the captured output
DEBUG_MAIN = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG); "
    "from polyroute.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Running:
    url: str  # …/v1
    base: str  # http://host:port
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (graceful shutdown); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gateway_process(
    config_text: str, tmp: Path, env: dict[str, str] | None = None, *, debug_logs: bool = False
) -> Iterator[Running]:
    """`polyroute serve` for `config_text` (written to `tmp`), output kept in a file."""
    port = free_port()
    config = tmp / f"gateway-{port}.yaml"
    config.write_text(config_text)
    log = tmp / f"gateway-{port}.log"
    args = ["serve", "-c", str(config), "--port", str(port)]
    command = (
        [sys.executable, "-c", DEBUG_MAIN, *args]
        if debug_logs
        else [
            sys.executable,
            "-m",
            "polyroute",
            *args,
        ]
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    running = Running(f"http://{HOST}:{port}/v1", f"http://{HOST}:{port}", proc, log)
    try:
        try:
            wait_http(f"{running.base}/readyz", proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{running.output()}") from None
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Admin:
    """The admin API over HTTP, keeping every response for later inspection."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key
        self.responses: list[httpx.Response] = []

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key or self.key}"} if (key or self.key) else {}
        response = httpx.request(method, self.base + path, headers=headers, timeout=10, **kwargs)
        self.responses.append(response)
        return response

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", "/admin/keys", json=fields)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def usage(self, **params: str) -> dict[str, Any]:
        response = self.call("GET", "/admin/usage", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())


def chat(url: str, key: str | None, model: str = "m", **extra: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    return httpx.post(url + "/chat/completions", json=body, headers=headers, timeout=10)
