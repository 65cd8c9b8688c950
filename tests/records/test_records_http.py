"""Request records from a real gateway process, in SQLite and in real PostgreSQL: JSON and
streamed requests with their real usage, the usage report, and graceful shutdown writing
every queued record."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.keys.helpers import Admin, Running, chat, gateway_process
from tests.records.pg import pg_rows, postgres_database

ADMIN_KEY = "adm-records-key-0123456789"
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def config(url: str, records: str = "") -> str:
    return f"""
server: {{admin_key: "{ADMIN_KEY}"}}
records: {{url: "{url}"{records}}}
models:
  - {{name: m, provider: simulator, profile: instant, price: {orjson.dumps(PRICE).decode()}}}
  - {{name: other, provider: simulator, profile: instant}}
routes:
  r: {{strategy: single, target: m}}
"""


@dataclass
class Backend:
    name: str
    url: str

    def rows(self, where: str = "") -> list[dict[str, Any]]:
        query = f"SELECT * FROM polyroute_requests {where} ORDER BY id"
        if self.name == "sqlite":
            path = self.url.split("///", 1)[1]
            with sqlite3.connect(path) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(query)]
        with ThreadPoolExecutor(1) as pool:
            found = pool.submit(asyncio.run, pg_rows(self.url, query)).result()
        return [dict(r) for r in found]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "records.db"
        yield Backend("sqlite", f"sqlite+aiosqlite:///{path}")
        return
    with postgres_database() as url:
        yield Backend("postgresql", url)


@pytest.fixture(scope="module")
def gw(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with gateway_process(config(backend.url), tmp_path_factory.mktemp("gw")) as running:
        yield running


def stream(url: str, key: str, *, include_usage: bool) -> tuple[str, dict[str, Any] | None]:
    """A streamed chat request: its request id and the usage event, if asked for."""
    body: dict[str, Any] = {
        "model": "r",
        "messages": [{"role": "user", "content": "tell me a story"}],
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    usage = None
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream("POST", url + "/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {") and '"usage"' in line:
                usage = orjson.loads(line[6:]).get("usage") or usage
        return response.headers["x-request-id"], usage


def test_json_and_streamed_requests_are_recorded_with_real_usage(
    gw: Running, backend: Backend
) -> None:
    admin = Admin(gw.base, ADMIN_KEY)
    key = admin.create(id="rec-key", team="t")["key"]
    answer = chat(gw.url, key, "r", user="end-user-7")
    assert answer.status_code == 200
    json_id = answer.headers["x-request-id"]
    usage = answer.json()["usage"]
    stream_id, stream_usage = stream(gw.url, key, include_usage=True)
    assert stream_usage is not None
    quiet_id, _ = stream(gw.url, key, include_usage=False)  # usage asked for on its behalf
    admin.usage()  # the report writes what is queued first
    rows = {r["request_id"]: r for r in backend.rows("WHERE key_id = 'rec-key'")}
    assert set(rows) == {json_id, stream_id, quiet_id}

    json_row = rows[json_id]
    assert (json_row["model"], json_row["route"], json_row["deployment"]) == ("r", "r", "m")
    assert (json_row["status"], bool(json_row["ok"]), bool(json_row["stream"])) == (
        200,
        True,
        False,
    )
    assert json_row["prompt_tokens"] == usage["prompt_tokens"]
    assert json_row["completion_tokens"] == usage["completion_tokens"]
    assert not json_row["estimated"]
    assert json_row["end_user"] == "end-user-7"
    assert json_row["kind"] == "chat"
    assert json_row["strategy"] == "single"
    assert json_row["latency_ms"] > 0
    expected = (usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1e6
    assert json_row["cost"] == pytest.approx(expected)
    assert json_row["day"] == datetime.now(UTC).strftime("%Y-%m-%d")

    stream_row = rows[stream_id]
    assert bool(stream_row["stream"])
    assert stream_row["prompt_tokens"] == stream_usage["prompt_tokens"]
    assert stream_row["completion_tokens"] == stream_usage["completion_tokens"]
    assert not stream_row["estimated"]
    assert stream_row["ttft_ms"] is not None
    assert stream_row["ttft_ms"] <= stream_row["latency_ms"]
    assert rows[quiet_id]["completion_tokens"] > 0
    assert not rows[quiet_id]["estimated"]


def test_failures_are_recorded(gw: Running, backend: Backend) -> None:
    admin = Admin(gw.base, ADMIN_KEY)
    key = admin.create(id="rec-fail", models=["r"])["key"]
    denied = chat(gw.url, key, "other")
    assert denied.status_code == 403
    admin.usage()
    (row,) = backend.rows("WHERE key_id = 'rec-fail'")
    assert row["request_id"] == denied.headers["x-request-id"]
    assert not row["ok"]
    assert (row["status"], row["error_type"], row["error_code"]) == (
        403,
        "permission_error",
        "model_not_allowed",
    )
    assert row["cost"] is None


def test_usage_report_by_key_model_and_day(gw: Running) -> None:
    admin = Admin(gw.base, ADMIN_KEY)
    one = admin.create(id="u-one")["key"]
    two = admin.create(id="u-two", models=["other"])["key"]
    tokens = {"u-one": [0, 0], "u-two": [0, 0]}
    for key_id, key, model, count in (("u-one", one, "r", 3), ("u-two", two, "other", 2)):
        for _ in range(count):
            usage = chat(gw.url, key, model).json()["usage"]
            tokens[key_id][0] += usage["prompt_tokens"]
            tokens[key_id][1] += usage["completion_tokens"]
    assert chat(gw.url, two, "r").status_code == 403  # an error, on u-two's account

    by_key = {row["key"]: row for row in admin.usage(group_by="key")["data"]}
    assert by_key["u-one"]["requests"] == 3
    assert by_key["u-one"]["errors"] == 0
    assert [by_key["u-one"]["prompt_tokens"], by_key["u-one"]["completion_tokens"]] == tokens[
        "u-one"
    ]
    expected = (tokens["u-one"][0] * 1.0 + tokens["u-one"][1] * 2.0) / 1e6
    assert by_key["u-one"]["cost_usd"] == pytest.approx(expected)
    assert (by_key["u-two"]["requests"], by_key["u-two"]["errors"]) == (3, 1)
    assert by_key["u-two"]["cost_usd"] == 0  # `other` has no price

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    report = admin.usage(group_by="key,model,day", key="u-two")
    assert report["group_by"] == ["key", "model", "day"]
    assert [(r["key"], r["model"], r["day"], r["requests"]) for r in report["data"]] == [
        ("u-two", "other", today, 2),
        ("u-two", "r", today, 1),
    ]
    assert report["total"]["requests"] == 3
    repeated = admin.call(
        "GET", "/admin/usage", params=[("group_by", "model"), ("group_by", "key"), ("key", "u-one")]
    ).json()
    assert [(r["model"], r["key"], r["requests"]) for r in repeated["data"]] == [("r", "u-one", 3)]

    by_day = admin.usage(group_by="day", since=today, until=today)["data"]
    assert [row["day"] for row in by_day] == [today]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert admin.usage(since=tomorrow)["data"] == []
    assert (
        admin.usage(until=datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z"), key="u-one")["data"]
        == []
    )
    total = admin.usage()["data"]
    assert len(total) == 1
    assert total[0]["requests"] >= 6

    for params in ({"group_by": "colour"}, {"since": "yesterday"}, {"team": "x"}):
        response = admin.call("GET", "/admin/usage", params=params)
        assert response.status_code == 400, params


def test_graceful_shutdown_writes_every_queued_record(backend: Backend, tmp_path: Path) -> None:
    """Records are only queued (one write a minute, batches of 10 000); SIGTERM writes
    them all: N requests, N rows."""
    text = config(backend.url, ", flush_interval: 60, batch_size: 10000")
    with gateway_process(text, tmp_path) as running:
        admin = Admin(running.base, ADMIN_KEY)
        key = admin.create(id="shutdown-key")["key"]
        n = 40
        for i in range(n):
            if i % 4 == 0:
                stream(running.url, key, include_usage=False)
            else:
                assert chat(running.url, key, "r").status_code == 200
        assert backend.rows("WHERE key_id = 'shutdown-key'") == []  # still queued
        assert running.stop() == 0
        output = running.output()
    rows = backend.rows("WHERE key_id = 'shutdown-key'")
    assert len(rows) == n, output
    assert len({row["request_id"] for row in rows}) == n
    assert sum(bool(row["stream"]) for row in rows) == n // 4
