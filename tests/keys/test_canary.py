"""Secret hygiene: recognisable master, client, virtual and upstream keys never show up in
logs (every library at DEBUG), response bodies or headers, admin listings, or the records
database, whatever happens: success, bad keys, upstream 401/500 that quote our upstream
key, admin calls, usage reports; and request bodies cannot set upstream URLs or headers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polyroute.api.validation import FORBIDDEN_FIELDS
from tests.keys.helpers import Admin, Running, gateway_process
from tests.support import Sim, simulator

MASTER = "sk-admin-CANARY-7f3a9c2e1b5d"
CLIENT = "sk-client-CANARY-4d8e2f6a0c9b"
UPSTREAM = "sk-upstream-CANARY-9b1c5e7d3f2a"
UPSTREAM_HEADER = "hdr-upstream-CANARY-0e4b8d2c6a"
SECRETS = {
    "MASTER_KEY": MASTER,
    "CLIENT_KEY": CLIENT,
    "UPSTREAM_KEY": UPSTREAM,
    "UPSTREAM_HEADER": UPSTREAM_HEADER,
}
CONFIG = """
server: {admin_key: "${MASTER_KEY}"}
records: {flush_interval: 0.1}
models:
  - name: up
    base_url: SIM
    api_key: "${UPSTREAM_KEY}"
    headers: {x-upstream-token: "${UPSTREAM_HEADER}"}
    price: {input_per_mtok: 1, output_per_mtok: 1}
routes:
  once: {strategy: single, target: up, max_retries: 0}
keys:
  - {id: client, key: "${CLIENT_KEY}"}
"""
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Running, Sim]]:
    with simulator("instant") as sim_url:
        text = CONFIG.replace("SIM", sim_url)
        with gateway_process(text, tmp_path, SECRETS, debug_logs=True) as running:
            yield running, Sim(sim_url)


def test_no_secret_leaks_anywhere(stack: tuple[Running, Sim], tmp_path: Path) -> None:
    gw, sim = stack
    seen: list[httpx.Response] = []

    def send(method: str, path: str, key: str | None, **kwargs: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = httpx.request(method, gw.base + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]
        seen.append(response)
        return response

    def chat(key: str | None, **extra: object) -> httpx.Response:
        body = {"model": "once", "messages": MESSAGES, **extra}
        return send("POST", "/v1/chat/completions", key, json=body)

    admin = Admin(gw.base, MASTER)
    created = admin.create(id="canary-virtual", team="t")
    virtual = created["key"]
    creation = admin.responses.pop()  # the one answer that carries the virtual key

    # successes, JSON and streamed, with the config key and the virtual key
    assert chat(CLIENT).status_code == 200
    assert chat(virtual).status_code == 200
    assert chat(virtual, stream=True).status_code == 200
    assert send("GET", "/v1/models", virtual).status_code == 200
    route = {"model": "once", "messages": MESSAGES}
    assert send("POST", "/v1/route", virtual, json=route).status_code == 200
    request_id = seen[1].headers["x-request-id"]
    send("POST", "/v1/feedback", virtual, json={"request_id": request_id, "score": 1})

    # wrong keys: the master key as a client key, the upstream key, a near miss, a bad scheme
    for key in (MASTER, UPSTREAM, virtual[:-1], CLIENT + "x"):
        assert chat(key).status_code == 401
    assert send("POST", "/v1/chat/completions", None, json=route).status_code == 401
    response = httpx.post(
        gw.url + "/chat/completions",
        json=route,
        headers={"authorization": f"Basic {virtual}"},
        timeout=5,
    )
    seen.append(response)
    assert response.status_code == 401

    # upstream failures whose messages quote our upstream credentials
    quoting = f"Incorrect API key provided: {UPSTREAM} (header {UPSTREAM_HEADER})"
    for status in (401, 500, 400, 429):
        sim.fault("status", 1, status=status, message=quoting)
        assert chat(virtual).status_code >= 400
    assert any("[redacted]" in r.text for r in seen[-4:])  # quoted, then masked
    sim.fault("server_error", 1)
    assert chat(virtual).status_code == 502
    sim.fault("stream_cut", 1)
    chat(virtual, stream=True)

    # a client trying to point the gateway elsewhere
    for field in sorted(FORBIDDEN_FIELDS):
        assert chat(virtual, **{field: "http://evil.example/v1"}).status_code == 400

    # admin calls, good and bad
    for method, path in (
        ("GET", "/admin/keys"),
        ("GET", "/admin/keys/canary-virtual"),
        ("GET", "/admin/keys/client"),
        ("GET", "/admin/usage?group_by=key,model,day"),
        ("GET", "/admin/experiments"),
    ):
        assert send(method, path, MASTER).status_code == 200
        assert send(method, path, "not-the-admin-key").status_code == 401
        assert send(method, path, virtual).status_code == 401
    assert send("PATCH", "/admin/keys/canary-virtual", MASTER, json={"rpm": 9}).status_code == 200
    assert send("POST", "/admin/keys", MASTER, json={"key": virtual}).status_code == 400
    assert send("DELETE", "/admin/keys/canary-virtual", MASTER).status_code == 200
    assert chat(virtual).status_code == 401
    send("GET", "/no/such/path", virtual)

    assert gw.stop() == 0
    output = gw.output()
    assert "polyroute listening" in output
    assert "INFO:polyroute.records" in output  # the capture has every logger below WARNING

    secrets = {**SECRETS, "VIRTUAL": virtual}
    digests = {name: hashlib.sha256(value.encode()).hexdigest() for name, value in secrets.items()}
    captured = {
        "gateway output": output,
        **{
            f"response {i} ({r.request.method} {r.request.url.path} -> {r.status_code})": (
                r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
            )
            for i, r in enumerate(seen + admin.responses)
        },
    }
    database = b"".join(p.read_bytes() for p in tmp_path.glob("polyroute.db*"))
    assert database  # the records database was written
    captured["records database"] = database.decode("latin-1")
    for where, text in captured.items():
        for name, value in secrets.items():
            assert value not in text, f"{name} found in {where}"
            stored = name == "VIRTUAL" and where == "records database"  # its digest is kept
            assert stored or digests[name] not in text, f"the digest of {name} found in {where}"
    # the creation answer shows the virtual key once, and no other secret
    assert creation.text.count(virtual) == 1
    for name, value in SECRETS.items():
        assert value not in creation.text, name
