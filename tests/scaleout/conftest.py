"""Processes for the scale-out tests: gateways that log to a file, and private Redis servers.

The shared Redis (127.0.0.1:6379, see scripts/services.sh) serves most tests, each under a
key prefix of its own that is deleted afterwards; a test that kills Redis starts its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from polyroute.config.schema import StateConfig
from polyroute.state.redis_conn import RedisConnection
from tests.support import HOST, free_port, wait_http

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def unique_prefix(name: str) -> str:
    return f"prtest-{name}-{os.urandom(4).hex()}"


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of this test's own in the shared Redis, deleted afterwards."""
    name = request.node.name.split("[")[0].removeprefix("test_")[:24]
    value = unique_prefix(name)
    yield value
    drop_prefix(SHARED_REDIS, value)


@dataclass
class GatewayProcess:
    url: str  # …/v1
    log: Path
    proc: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gateway_process(
    config_text: str,
    tmp: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[GatewayProcess]:
    """`polyroute serve` (optionally --workers N), its output in a file read after exit."""
    port = free_port()
    config = tmp / f"gateway-{port}.yaml"
    config.write_text(config_text)
    log = tmp / f"gateway-{port}.log"
    args = ["serve", "-c", str(config), "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "polyroute", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        try:
            wait_http(f"http://{HOST}:{port}/readyz", proc, timeout=30)
        except RuntimeError:
            raise RuntimeError(log.read_text(errors="replace")) from None
        if workers > 1:  # every worker must be listening before the load starts
            time.sleep(1.0)
        yield GatewayProcess(f"http://{HOST}:{port}/v1", log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed (see scripts/services.sh)"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: Redis vanishes without a goodbye, its data with it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=1)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, on a free port (the test may kill it)."""
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


Connect = Callable[..., Coroutine[Any, Any, RedisConnection]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open RedisConnections (all on one fresh prefix unless told otherwise); closed after."""
    prefix = f"prtest-unit-{os.urandom(4).hex()}"
    opened: list[RedisConnection] = []

    async def open_one(url: str = SHARED_REDIS, **options: Any) -> RedisConnection:
        options.setdefault("key_prefix", prefix)
        config = StateConfig(backend="redis", redis_url=SecretStr(url), **options)
        conn = RedisConnection(config)
        await conn.start()
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        await conn.aclose()
    drop_prefix(SHARED_REDIS, prefix)
