"""Structured logs: JSON lines with the request's fields, secrets and tokens redacted
everywhere, prompts only when asked for, and a sink that never blocks."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polyroute.config import parse_config
from polyroute.observability.access_log import AccessLog
from polyroute.observability.logs import (
    LogSink,
    Redactor,
    SinkHandler,
    config_secrets,
    configure_logging,
)
from polyroute.observability.settings import LogSettings
from tests.observability.helpers import offline_gateway, outcome
from tests.support import free_port, polyroute_process, simulator

UPSTREAM_CANARY = "sk-upstream-canary-9f8e7d6c5b4a"
CLIENT_CANARY = "client-canary-key-0a1b2c3d4e5f"
ADMIN_CANARY = "admin-canary-key-55aa55aa55aa"
HEADER_CANARY = "header-canary-value-31337"
REDIS_PASSWORD = "redis-canary-pass-271828"
CANARIES = (UPSTREAM_CANARY, CLIENT_CANARY, ADMIN_CANARY, HEADER_CANARY, REDIS_PASSWORD)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the root logger's handlers and levels after a test that configures them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = logging.getLogger("polyroute").level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            if isinstance(handler, SinkHandler):
                handler.sink.close()
    root.setLevel(level)
    logging.getLogger("polyroute").setLevel(ours)


def test_redactor_removes_secrets_and_tokens() -> None:
    redact = Redactor(["s3cret-value-123", 'quo"ted-secret-456', "short"])
    text = (
        'key s3cret-value-123 in json {"k": "quo\\"ted-secret-456"} '
        "Authorization: Bearer abcdefghijklmnop, sk-proj-0123456789abcdefXYZ short"
    )
    clean = redact(text)
    assert "s3cret" not in clean
    assert "quo" not in clean
    assert "abcdefghijklmnop" not in clean
    assert "sk-proj" not in clean
    assert "Bearer [redacted]" in clean
    assert clean.endswith("short")  # under 8 characters: an ordinary word, left alone


def test_config_secrets_finds_every_secret_str() -> None:
    config = parse_config(
        f"""
server: {{admin_key: {ADMIN_CANARY}}}
state: {{redis_url: "redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"}}
records: {{enabled: false}}
models:
  - name: a
    base_url: http://127.0.0.1:9/v1
    api_key: {UPSTREAM_CANARY}
    headers: {{x-tenant: {HEADER_CANARY}}}
keys: [{{id: k, key: {CLIENT_CANARY}}}]
"""
    )
    found = config_secrets(config)
    for canary in CANARIES:
        assert any(canary in secret for secret in found), canary
    assert REDIS_PASSWORD in found  # the password alone too, not only the whole URL


def test_json_records_with_extra_fields_and_redaction(tmp_path: Path, root_logging: None) -> None:
    """Every record through the configured handler is one JSON object with the standard
    fields, the record's extras, and configured secrets redacted (in tracebacks too)."""
    config = parse_config(
        f"""
records: {{enabled: false}}
observability: {{logs: {{format: json, level: debug}}}}
models: [{{name: a, base_url: "http://127.0.0.1:9/v1", api_key: {UPSTREAM_CANARY}}}]
"""
    )
    path = tmp_path / "log.txt"
    with path.open("w") as stream:
        sink = configure_logging(config, stream)
        log = logging.getLogger("polyroute.test")
        log.debug("calling with %s", UPSTREAM_CANARY, extra={"request_id": "req_1", "n": 3})
        try:
            raise RuntimeError(f"upstream said: bad key {UPSTREAM_CANARY}")
        except RuntimeError:
            log.exception("failed")
        logging.getLogger("aiohttp.server").info("library info: below warning, not shown")
        assert sink.writer.flush()
    lines = path.read_text().splitlines()
    assert UPSTREAM_CANARY not in path.read_text()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    first, second = records
    assert first["level"] == "debug"
    assert first["logger"] == "polyroute.test"
    assert first["message"] == "calling with [redacted]"
    assert first["request_id"] == "req_1"
    assert first["n"] == 3
    assert first["time"].endswith("Z")
    assert "RuntimeError" in second["error"]
    assert "[redacted]" in second["error"]


@pytest.fixture
def access_enabled() -> Iterator[None]:
    """What configure_logging does for a worker: polyroute.* at info."""
    logger = logging.getLogger("polyroute.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_text_format_and_access_line(access_enabled: None) -> None:
    """The text format reads as `time LEVEL logger: message key=value`; access lines have
    the request's fields, and no prompt unless prompts logging is on."""
    gw = offline_gateway()
    stream = io.StringIO()
    sink = LogSink(stream, Redactor(), json=False)
    AccessLog(LogSettings(), sink).observe(outcome(gw, "chat", text="my private prompt"))
    sink.writer.flush()
    line = stream.getvalue().strip()
    assert " INFO    polyroute.access: request " in line
    assert "route=chat" in line
    assert "status=200" in line
    assert "tokens_in=100" in line
    assert "private" not in line
    stream = io.StringIO()
    sink = LogSink(stream, Redactor(), json=True)
    AccessLog(LogSettings(prompts=True), sink).observe(outcome(gw, "chat", text="my prompt"))
    sink.writer.flush()
    data = json.loads(stream.getvalue())
    assert data["prompt"] == "my prompt"
    for field in ("request_id", "route", "deployment", "strategy", "attempts", "latency_ms"):
        assert field in data
    assert data["tokens_in"] == 100
    assert data["tokens_out"] == 50
    assert data["cost"] > 0


def test_a_stuck_sink_drops_lines_instead_of_blocking() -> None:
    """When the stream cannot keep up, `put` never waits: lines beyond the queue are
    dropped and counted."""

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("stuck")

    sink = LogSink(Stuck(), Redactor(), json=True, queue_size=10)
    for index in range(25):  # not started: nothing drains the queue
        sink.put(f'{{"n": {index}}}')
    assert sink.dropped == 15
    sink.close(timeout=1)  # writes fail: counted, reported once, no exception
    assert sink.writer.failed == 10


def test_access_log_off() -> None:
    gw = offline_gateway()  # helpers' config: access_log false
    assert gw.telemetry.access_log is None
    assert not any(isinstance(o, AccessLog) for o in gw.observers)


def test_gateway_output_is_json_without_secrets(tmp_path: Path) -> None:
    """A real gateway with canary secrets in every secret field: every line of its output
    is JSON (but the start-up banner), access lines carry the request's fields, and no
    canary appears anywhere, even in a prompt that quotes one (prompts logging on)."""
    config = f"""
server: {{admin_key: "${{ADMIN_KEY}}"}}
records: {{enabled: false}}
observability: {{logs: {{format: json, prompts: true}}}}
models:
  - name: alpha
    base_url: SIM
    api_key: "${{UPSTREAM_KEY}}"
    headers: {{x-tenant: "${{HEADER_VALUE}}"}}
  - {{name: down, base_url: "http://127.0.0.1:{free_port()}/v1", api_key: "${{UPSTREAM_KEY}}"}}
keys: [{{id: team-a, key: "${{CLIENT_KEY}}", team: search}}]
routes:
  chat: {{strategy: single, target: alpha}}
  broken: {{strategy: single, target: down, max_retries: 0}}
"""
    env = {
        "ADMIN_KEY": ADMIN_CANARY,
        "UPSTREAM_KEY": UPSTREAM_CANARY,
        "HEADER_VALUE": HEADER_CANARY,
        "CLIENT_KEY": CLIENT_CANARY,
    }
    port = free_port()
    with simulator("instant") as sim:
        path = tmp_path / "gw.yaml"
        path.write_text(config.replace("SIM", sim))
        args = ("serve", "-c", str(path), "--port", str(port))
        with polyroute_process(*args, ready_path="/readyz", port=port, env=env) as proc:
            base = f"http://127.0.0.1:{port}/v1"
            auth = {"authorization": f"Bearer {CLIENT_CANARY}"}
            leaky = f"my key is {UPSTREAM_CANARY} and Bearer {CLIENT_CANARY}"
            with httpx.Client(base_url=base, timeout=10) as client:
                for text in ("hello", leaky):
                    body = {"model": "chat", "messages": [{"role": "user", "content": text}]}
                    assert client.post("/chat/completions", json=body, headers=auth).is_success
                body = {"model": "broken", "messages": [{"role": "user", "content": "x"}]}
                assert client.post("/chat/completions", json=body, headers=auth).status_code >= 500
                wrong = {"authorization": f"Bearer {ADMIN_CANARY}"}
                assert client.post("/chat/completions", json=body, headers=wrong).status_code == 401
                admin = client.get(
                    "/models", headers={"authorization": f"Bearer {UPSTREAM_CANARY}x"}
                )
                assert admin.status_code == 401
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            output = proc.stdout.read().decode() if proc.stdout else ""
    for canary in CANARIES:
        assert canary not in output
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if not line.startswith("polyroute listening")]
    access = [r for r in records if r.get("logger") == "polyroute.access"]
    assert len(access) == 3, output
    first = access[0]
    for field in (
        "time",
        "level",
        "message",
        "request_id",
        "route",
        "deployment",
        "strategy",
        "attempts",
        "latency_ms",
        "tokens_in",
        "tokens_out",
        "cost",
        "status",
        "key_id",
    ):
        assert field in first, field
    assert first["key_id"] == "team-a"
    assert "[redacted]" in access[1]["prompt"]
    failed = access[2]
    assert failed["route"] == "broken"
    assert failed["status"] >= 500
    assert failed["error_type"]


def test_writes_are_whole_lines_of_at_most_pipe_buf(tmp_path: Path) -> None:
    """Workers share stderr: each write is whole lines and at most 4096 bytes (a pipe
    keeps such writes in one piece), except a single longer line."""
    writes: list[bytes] = []
    path = tmp_path / "out"
    with path.open("w") as stream:
        sink = LogSink(stream, Redactor(), json=True)
        real = os.write

        def spy(fd: int, data: object) -> int:
            writes.append(bytes(data))
            return real(fd, data)

        lines = [f'{{"n": {i}, "pad": "{"x" * (i % 300)}"}}' for i in range(200)]
        lines.append('{"long": "' + "y" * 9000 + '"}')
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "write", spy)
            sink.writer._write(sink._render(lines))
    assert all(chunk.endswith(b"\n") for chunk in writes)
    assert all(len(chunk) <= 4096 for chunk in writes[:-1])
    assert path.read_text().splitlines() == lines


async def test_a_file_sink_is_drained_on_the_loop_and_a_pipe_keeps_its_thread(
    tmp_path: Path,
) -> None:
    """A regular file never blocks: once the loop runs its lines are written by a task, and
    nothing queued while the thread handed over is lost. A pipe keeps the thread."""
    path = tmp_path / "out"
    with path.open("w") as stream:
        sink = LogSink(stream, Redactor(), json=True)
        sink.writer.start()
        sink.put_clean(b'{"n": 0}')
        assert sink.drain_on_loop()
        assert sink.writer._worker is None
        assert sink.writer._task is not None
        for index in range(1, 5):
            sink.put_clean(b'{"n": %d}' % index)
        await sink.writer.aclose()
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [0, 1, 2, 3, 4]

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream:
        piped = LogSink(stream, Redactor(), json=True)
        piped.writer.start()
        assert not piped.drain_on_loop()
        assert piped.writer._worker is not None
        piped.close()
    os.close(read_end)
