"""The request log for replay: complete after a graceful shutdown, propensities of the
decisions, feedback lines, prompts only when asked, rotation shared by several writers."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from polyroute.observability.request_log import RequestLog, RotatingFile, propensity
from polyroute.observability.settings import RequestLogSettings
from polyroute.outcomes import Feedback
from tests.observability.helpers import offline_gateway, outcome
from tests.support import free_port, polyroute_process, simulator

MESSAGES = [{"role": "user", "content": "hello"}]


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_propensity_of_decisions() -> None:
    """weighted reports its probability (through an enclosing by_type route too), so does
    an A/B split (its arm's share); a deployment named directly is certain."""
    gw = offline_gateway()
    for model in ("chat", "auto"):
        decision = outcome(gw, model).decision
        assert decision is not None
        expected = 0.75 if decision.plan[0].name == "alpha" else 0.25
        assert propensity(decision) == expected
    split = outcome(gw, "split", user="u").decision
    assert split is not None
    assert propensity(split) == 0.5  # two arms of equal weight
    direct = outcome(gw, "alpha").decision
    assert direct is not None
    assert propensity(direct) == 1.0


def test_lines_feedback_and_prompts(tmp_path: Path) -> None:
    gw = offline_gateway()
    log = RequestLog(tmp_path / "r.jsonl", RequestLogSettings(path="r.jsonl"))
    first = outcome(gw, "chat", text="secret plan", request_id="req_" + "a" * 24)
    log.observe(first)
    assert log.feedback(Feedback("req_" + "a" * 24, 0.9)) == {}  # known: acknowledged
    assert log.feedback(Feedback("req_" + "b" * 24, 0.1)) is None  # another worker's?
    assert log.feedback(Feedback("not-a-request-id", 1.0)) is None  # ignored
    with_prompt = RequestLog(tmp_path / "p.jsonl", RequestLogSettings(path="p.jsonl", prompts=True))
    with_prompt.observe(outcome(gw, "chat", text="secret plan", user="alice"))
    for writer in (log, with_prompt):
        writer.writer.close()
    request, known, unknown = read_lines(tmp_path / "r.jsonl")
    assert request["type"] == "request"
    assert request["request_id"] == "req_" + "a" * 24
    context = request["context"]
    assert isinstance(context, dict)
    assert "secret" not in json.dumps(request)
    assert len(context["prompt_hash"]) == 16
    decision = request["decision"]
    assert isinstance(decision, dict)
    assert decision["chosen"] in ("alpha", "beta")
    assert decision["propensity"] in (0.75, 0.25)
    assert decision["strategy"] == "weighted"
    result = request["outcome"]
    assert isinstance(result, dict)
    assert result["ok"] is True
    assert result["prompt_tokens"] == 100
    assert result["cost"] > 0
    assert known == {**known, "type": "feedback", "score": 0.9, "known": True}
    assert unknown["known"] is False
    (prompted,) = read_lines(tmp_path / "p.jsonl")
    context = prompted["context"]
    assert isinstance(context, dict)
    assert context["request"]["messages"][0]["content"] == "secret plan"
    assert "alice" not in json.dumps(prompted)  # the user only as a hash
    assert context["user_hash"]


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    gw = offline_gateway()
    settings = RequestLogSettings(path="x.jsonl", queue_size=5)
    log = RequestLog(tmp_path / "x.jsonl", settings)  # not started: nothing drains
    for _ in range(8):
        log.observe(outcome(gw, "chat"))
    assert log.dropped == 3
    log.writer.close()
    assert len(read_lines(tmp_path / "x.jsonl")) == 5


def test_rotation_shared_by_two_writers(tmp_path: Path) -> None:
    """Two writers (two workers) appending to one path rotate it once between them and
    lose no line while the backups suffice."""
    path = tmp_path / "shared.jsonl"
    writers = [RotatingFile(path, max_bytes=4096, backups=20) for _ in range(2)]
    for index in range(300):
        line = json.dumps({"n": index, "pad": "x" * 40}) + "\n"
        writers[index % 2].write(line.encode())
    for writer in writers:
        writer.close()
    files = [path, *sorted(tmp_path.glob("shared.jsonl.*"))]
    numbers = sorted(json.loads(line)["n"] for f in files for line in f.read_text().splitlines())
    assert numbers == list(range(300))
    assert all(f.stat().st_size <= 4096 for f in files)
    assert len(files) > 3


def test_written_completely_by_a_gateway_on_sigterm(tmp_path: Path) -> None:
    """A real gateway: every request is in the log once it stopped gracefully, with the
    feedback that came for it; the path is relative to the config file."""
    config = """
records: {enabled: false}
observability:
  logs: {access_log: false}
  request_log: {path: logs/requests.jsonl, flush_interval: 5}
models:
  - {name: alpha, base_url: SIM, price: {input_per_mtok: 1, output_per_mtok: 2}}
  - {name: beta, base_url: SIM, price: {input_per_mtok: 5, output_per_mtok: 10}}
routes:
  chat: {strategy: weighted, targets: [{name: alpha, weight: 3}, {name: beta, weight: 1}]}
"""
    port = free_port()
    sent = 25
    with simulator("instant") as sim:
        path = tmp_path / "gw.yaml"
        path.write_text(config.replace("SIM", sim))
        args = ("serve", "-c", str(path), "--port", str(port))
        with polyroute_process(*args, ready_path="/readyz", port=port) as proc:
            ids = []
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=10) as client:
                for _ in range(sent):
                    body = {"model": "chat", "messages": MESSAGES}
                    response = client.post("/chat/completions", json=body)
                    assert response.status_code == 200
                    ids.append(response.headers["x-request-id"])
                for request_id, score in zip(ids[:3], (1.0, 0.0, 0.5), strict=True):
                    answer = client.post(
                        "/feedback", json={"request_id": request_id, "score": score}
                    )
                    assert answer.status_code == 200, answer.text
                unknown = client.post("/feedback", json={"request_id": "nope", "score": 1})
                assert unknown.status_code == 404
            proc.send_signal(signal.SIGTERM)  # flush_interval 5 s: only shutdown writes
            assert proc.wait(timeout=15) == 0
    lines = read_lines(tmp_path / "logs" / "requests.jsonl")
    requests = [line for line in lines if line["type"] == "request"]
    feedback = [line for line in lines if line["type"] == "feedback"]
    assert [r["request_id"] for r in requests] == ids
    assert len(feedback) == 3
    assert {f["request_id"]: f["score"] for f in feedback} == dict(
        zip(ids[:3], (1.0, 0.0, 0.5), strict=True)
    )
    for line in requests:
        decision = line["decision"]
        assert isinstance(decision, dict)
        assert decision["propensity"] == (0.75 if decision["chosen"] == "alpha" else 0.25)
        result = line["outcome"]
        assert isinstance(result, dict)
        assert result["deployment"] == decision["chosen"]
        assert result["latency_ms"] > 0
