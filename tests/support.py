"""Helpers that start real processes (gateway, simulators) on free loopback ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Poll `url` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {out}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def polyroute_process(
    *args: str, ready_path: str, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m polyroute ARGS` until the block ends (SIGTERM, then kill)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyroute", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_http(f"http://{HOST}:{port}{ready_path}", proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def simulator(profile: str = "instant") -> Iterator[str]:
    """A `polyroute simulate` server; yields its base URL (…/v1)."""
    port = free_port()
    with polyroute_process(
        "simulate", "--port", str(port), "--profile", profile, ready_path="/v1/models", port=port
    ):
        yield f"http://{HOST}:{port}/v1"


@contextmanager
def gateway(config_text: str, tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A `polyroute serve` process for `config_text`; yields its base URL (…/v1)."""
    port = free_port()
    path = tmp / f"gateway-{port}.yaml"
    path.write_text(config_text)
    with polyroute_process(
        "serve", "-c", str(path), "--port", str(port), ready_path="/readyz", port=port, env=env
    ):
        yield f"http://{HOST}:{port}/v1"


@dataclass
class Sim:
    url: str

    def control(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        base = self.url.removesuffix("/v1")
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def fault(self, kind: str, count: int = 1, **opts: Any) -> None:
        self.control("/__sim/faults", {"kind": kind, "count": count, **opts})

    def stats(self) -> dict[str, Any]:
        return dict(self.control("/__sim/stats"))

    def reset(self) -> None:
        self.control("/__sim/reset", {})
