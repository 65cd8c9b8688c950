"""The `polyroute` command: check, route, demo and multi-worker serve, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import openai

from tests.support import free_port, polyroute_process, simulator

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.yaml"


def polyroute(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polyroute", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_check_accepts_the_demo_config() -> None:
    """`polyroute check` validates a good config and summarises it."""
    result = polyroute("check", "-c", str(DEMO))
    assert result.returncode == 0, result.stderr
    assert "ok: 6 deployments" in result.stdout
    assert "experiment" in result.stdout


def test_check_reports_field_and_line(tmp_path: Path) -> None:
    """A bad config exits 2 with file:line: field: message, and no traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - name: a\n    base_url: http://x/v1\n    wieght: 3\n")
    result = polyroute("check", "-c", str(path))
    assert result.returncode == 2
    assert f"{path}:4: models.0.wieght: unknown field" in result.stderr
    assert "Traceback" not in result.stderr


def test_route_prints_the_decision() -> None:
    """`polyroute route` prints the decision JSON without calling a model."""
    result = polyroute("route", "-c", str(DEMO), "--model", "auto", "hello there")
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["path"] == ["auto", "chat"]
    assert decision["deployment"] in {"fast-chat", "smart-chat"}
    image = json.loads(polyroute("route", "-c", str(DEMO), "--endpoint", "image", "a cat").stdout)
    assert image["deployment"] == "image"


def test_route_unknown_model_exits_1() -> None:
    """An unknown model prints the OpenAI error and exits 1."""
    result = polyroute("route", "-c", str(DEMO), "--model", "nope", "hi")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "model_not_found"


def test_demo_serves_the_sdk_and_stops_on_ctrl_c() -> None:
    """`polyroute demo` answers chat, embeddings and images, and exits 0 on SIGINT."""
    port = free_port()
    with polyroute_process("demo", "--port", str(port), ready_path="/readyz", port=port) as proc:
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x") as client:
            chat = client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=8
            )
            assert (chat.choices[0].message.content or "").startswith("[simulated")
            assert client.embeddings.create(model="auto", input="hi").data
            image = client.images.generate(model="auto", prompt="a boat", size="256x256")
            assert image.data
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert "curl -s" in output
    assert "from openai import OpenAI" in output
    assert "polyroute demo: stopping" in output


def test_demo_with_key_requires_it() -> None:
    """`polyroute demo --key` turns authentication on."""
    port = free_port()
    key = "sk-demo-key-123456"
    with polyroute_process(
        "demo", "--port", str(port), "--key", key, ready_path="/readyz", port=port
    ):
        base = f"http://127.0.0.1:{port}/v1"
        with openai.OpenAI(base_url=base, api_key="sk-other-000000", max_retries=0) as client:
            try:
                client.models.list()
            except openai.AuthenticationError:
                pass
            else:
                raise AssertionError("a wrong key was accepted")
        with openai.OpenAI(base_url=base, api_key=key, max_retries=0) as client:
            assert client.models.list().data


def test_serve_with_two_workers(tmp_path: Path) -> None:
    """`serve --workers 2` runs two processes on one port and stops cleanly on SIGTERM."""
    with simulator("instant") as sim:
        config = tmp_path / "gw.yaml"
        config.write_text(f"models:\n  - name: m\n    base_url: {sim}\n")
        port = free_port()
        with polyroute_process(
            "serve",
            "-c",
            str(config),
            "--port",
            str(port),
            "--workers",
            "2",
            ready_path="/readyz",
            port=port,
        ) as proc:
            workers = [pid for pid in _children(proc.pid) if _is_worker(pid)]
            assert len(workers) == 2
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x") as client:
                for _ in range(10):
                    assert client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "hi"}]
                    ).choices
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0


def _is_worker(pid: int) -> bool:
    """spawn's children run `-c from multiprocessing.spawn import spawn_main`; the
    resource tracker is a child too, but runs resource_tracker instead."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    return b"spawn_main" in cmdline


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return []
    return [int(p) for p in path.read_text().split()]


def test_version() -> None:
    """`polyroute --version` prints the version."""
    from polyroute import __version__

    result = polyroute("--version")
    assert result.stdout.strip() == f"polyroute {__version__}"


def test_demo_rejects_a_short_key_without_echoing_it() -> None:
    """A bad --key is a usage error, not a traceback that repeats the key."""
    result = polyroute("demo", "--key", "abc")
    assert result.returncode == 2
    assert "8+ characters" in result.stderr
    assert "Traceback" not in result.stderr
