"""The admin API for virtual keys, over HTTP against a real gateway process."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest

from polyroute.api.auth import BAD_KEY
from tests.keys.helpers import Admin, Running, chat, gateway_process

ADMIN_KEY = "adm-test-key-0123456789"
CONFIG_KEY = "sk-config-key-0123456789"
CONFIG = """
server: {admin_key: "${ADMIN_KEY}"}
records: {key_refresh: 0.2}
models:
  - {name: m, provider: simulator, profile: instant}
  - {name: other, provider: simulator, profile: instant}
routes:
  both: {strategy: weighted, targets: [m, other]}
keys:
  - {id: cfg, key: "${CONFIG_KEY}", team: config-team, models: [m]}
"""
ENV = {"ADMIN_KEY": ADMIN_KEY, "CONFIG_KEY": CONFIG_KEY}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with gateway_process(CONFIG, tmp_path_factory.mktemp("admin"), ENV) as running:
        yield running


@pytest.fixture
def admin(gw: Running) -> Admin:
    return Admin(gw.base, ADMIN_KEY)


def sdk(gw: Running, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=key, max_retries=0)


def test_created_key_works_at_once_and_is_shown_once(gw: Running, admin: Admin) -> None:
    created = admin.create(id="svc-a", team="search", tier="gold", tags=["beta"], rpm=100)
    plain = created["key"]
    assert plain.startswith("sk-pr-")
    assert len(plain) > 40
    assert created["id"] == "svc-a"
    assert created["status"] == "active"
    assert (created["team"], created["tier"], created["tags"], created["rpm"]) == (
        "search",
        "gold",
        ["beta"],
        100,
    )
    assert admin.responses[-1].headers["cache-control"] == "no-store"
    with sdk(gw, plain) as client:
        assert client.chat.completions.create(
            model="both", messages=[{"role": "user", "content": "hi"}]
        ).choices
    # the key appears nowhere after its creation: not in the list, not by id, nor its digest
    digest = hashlib.sha256(plain.encode()).hexdigest()
    listing = admin.call("GET", "/admin/keys")
    one = admin.call("GET", "/admin/keys/svc-a")
    for response in (listing, one):
        assert response.status_code == 200
        assert plain not in response.text
        assert plain[6:20] not in response.text
        assert digest not in response.text
        assert "key_hash" not in response.text
    assert one.json()["hint"] == f"sk-pr-…{plain[-4:]}"
    ids = {item["id"]: item for item in listing.json()["data"]}
    assert ids["cfg"]["source"] == "config"
    assert ids["svc-a"]["source"] == "api"
    assert CONFIG_KEY not in listing.text


def test_generated_id_and_validation_errors(admin: Admin) -> None:
    created = admin.create()
    assert created["id"].startswith("key-")
    for body, param in (
        ({"key": "sk-my-own-key-123"}, "key"),
        ({"rpm": 0}, "rpm"),
        ({"budget_period": "hour"}, "budget_period"),
        ({"colour": "red"}, "colour"),
        ({"id": "bad id!"}, "id"),
        ({"expires_at": "tomorrow"}, "expires_at"),
    ):
        response = admin.call("POST", "/admin/keys", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
    response = admin.call("POST", "/admin/keys", content=b"[1]")
    assert response.status_code == 400


def test_duplicate_and_config_ids_conflict(admin: Admin) -> None:
    admin.create(id="dup")
    for key_id in ("dup", "cfg"):
        response = admin.call("POST", "/admin/keys", json={"id": key_id})
        assert response.status_code == 409
        assert response.json()["error"]["code"] in ("duplicate_key_id", "config_key")
    assert admin.call("PATCH", "/admin/keys/cfg", json={"rpm": 1}).status_code == 409
    assert admin.call("DELETE", "/admin/keys/cfg").status_code == 409


def test_unknown_id_is_404(admin: Admin) -> None:
    for method in ("GET", "DELETE"):
        response = admin.call(method, "/admin/keys/nope")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "key_not_found"
    assert admin.call("PATCH", "/admin/keys/nope", json={"rpm": 1}).status_code == 404


def test_admin_endpoints_need_the_admin_key(gw: Running, admin: Admin) -> None:
    plain = admin.create()["key"]
    for key in (None, "wrong-admin-key", plain, CONFIG_KEY):
        for method, path in (
            ("GET", "/admin/keys"),
            ("POST", "/admin/keys"),
            ("GET", "/admin/keys/cfg"),
            ("PATCH", "/admin/keys/cfg"),
            ("DELETE", "/admin/keys/cfg"),
            ("GET", "/admin/usage"),
            ("GET", "/admin/experiments"),
        ):
            headers = {"authorization": f"Bearer {key}"} if key else {}
            response = httpx.request(method, gw.base + path, headers=headers, timeout=5)
            assert response.status_code == 401, (method, path, key)
            assert response.json()["error"]["type"] == "authentication_error"
    response = httpx.put(gw.base + "/admin/keys", timeout=5)
    assert response.status_code == 405


def test_update_changes_what_the_key_may_do(gw: Running, admin: Admin) -> None:
    created = admin.create(id="upd", models=["m"])
    plain = created["key"]
    assert chat(gw.url, plain, "other").status_code == 403
    response = admin.call(
        "PATCH", "/admin/keys/upd", json={"models": ["other"], "tier": "silver", "rpm": 7}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["models"], updated["tier"], updated["rpm"]) == (["other"], "silver", 7)
    assert updated["updated_at"] > updated["created_at"]
    assert chat(gw.url, plain, "other").status_code == 200
    assert chat(gw.url, plain, "m").status_code == 403
    cleared = admin.call("PATCH", "/admin/keys/upd", json={"models": None}).json()
    assert cleared["models"] is None
    assert cleared["tier"] == "silver"  # fields left out keep their value
    assert chat(gw.url, plain, "m").status_code == 200
    for body in ({"key": "x" * 10}, {"id": "other"}, {"rpm": -1}):
        assert admin.call("PATCH", "/admin/keys/upd", json=body).status_code == 400


def test_revoked_key_is_refused_like_a_wrong_one(gw: Running, admin: Admin) -> None:
    plain = admin.create(id="rev")["key"]
    assert chat(gw.url, plain).status_code == 200
    revoked = admin.call("DELETE", "/admin/keys/rev")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_at"]
    refused = chat(gw.url, plain)
    wrong = chat(gw.url, "sk-pr-not-a-key-at-all-000000")
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json()
    assert refused.json()["error"]["message"] == BAD_KEY
    assert admin.call("DELETE", "/admin/keys/rev").status_code == 200  # idempotent
    assert admin.call("PATCH", "/admin/keys/rev", json={"rpm": 1}).status_code == 409
    listed = {k["id"]: k for k in admin.call("GET", "/admin/keys").json()["data"]}
    assert listed["rev"]["status"] == "revoked"


def test_expired_key_is_refused(gw: Running, admin: Admin) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    created = admin.create(id="exp", expires_at=soon.isoformat())
    assert chat(gw.url, created["key"]).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    refused = chat(gw.url, created["key"])
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == BAD_KEY
    assert admin.call("GET", "/admin/keys/exp").json()["status"] == "expired"
    past = admin.create(expires_at="2020-01-01T00:00:00Z")
    assert chat(gw.url, past["key"]).status_code == 401


def test_keys_are_isolated(gw: Running, admin: Admin) -> None:
    """Key A (route m only) cannot use, list or probe anything else, nor see key B."""
    key_a = admin.create(id="iso-a", models=["m"], team="a")["key"]
    key_b = admin.create(id="iso-b", models=["other"], team="b")["key"]
    with sdk(gw, key_a) as client:
        assert [m.id for m in client.models.list()] == ["m"]
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(
                model="other", messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.PermissionDeniedError):  # no existence oracle: 403, not 404
            client.chat.completions.create(
                model="no-such-route", messages=[{"role": "user", "content": "x"}]
            )
    route = httpx.post(
        gw.url + "/route",
        json={"model": "other", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {key_a}"},
        timeout=5,
    )
    assert route.status_code == 403
    with sdk(gw, key_b) as client:
        assert [m.id for m in client.models.list()] == ["other"]
    # nothing a non-admin endpoint returns mentions the other key
    for response in (
        chat(gw.url, key_a),
        httpx.get(gw.url + "/models", headers={"authorization": f"Bearer {key_a}"}),
    ):
        assert "iso-b" not in response.text
        assert key_b not in response.text
    assert admin.call("GET", "/admin/keys", key=key_a).status_code == 401


def test_admin_api_is_off_without_an_admin_key(tmp_path: Path) -> None:
    config = "models:\n  - {name: m, provider: simulator, profile: instant}\n"
    with gateway_process(config, tmp_path) as running:
        for method, path in (
            ("GET", "/admin/keys"),
            ("POST", "/admin/keys"),
            ("GET", "/admin/usage"),
        ):
            response = httpx.request(
                method, running.base + path, headers={"authorization": "Bearer x"}, timeout=5
            )
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "admin_disabled"
        # no key anywhere: requests are served without one
        assert chat(running.url, None).status_code == 200


def test_key_made_on_one_instance_works_on_another(
    gw: Running, admin: Admin, tmp_path: Path
) -> None:
    """Two gateways on one database: a key created on A works on B at once; revoking it
    on A reaches B within records.key_refresh (0.2 s here)."""
    database = next(gw.log.parent.glob("*.db"))
    config = CONFIG.replace(
        "records: {key_refresh: 0.2}", f"records: {{key_refresh: 0.2, url: 'sqlite:///{database}'}}"
    )
    with gateway_process(config, tmp_path, ENV) as other:
        plain = admin.create(id="shared")["key"]
        assert chat(other.url, plain).status_code == 200
        listed = httpx.get(
            other.base + "/admin/keys/shared",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=5,
        )
        assert listed.status_code == 200
        admin.call("DELETE", "/admin/keys/shared")
        deadline = time.monotonic() + 5
        while chat(other.url, plain).status_code == 200:
            assert time.monotonic() < deadline, "revocation never reached the other instance"
            time.sleep(0.05)
        assert chat(other.url, plain).status_code == 401


def test_virtual_keys_need_records(tmp_path: Path) -> None:
    """records: off: config keys are listed, creating keys and usage are refused (403)."""
    config = CONFIG.replace("records: {key_refresh: 0.2}", "records: {enabled: false}")
    with gateway_process(config, tmp_path, ENV) as running:
        admin = Admin(running.base, ADMIN_KEY)
        listed = admin.call("GET", "/admin/keys")
        assert [k["id"] for k in listed.json()["data"]] == ["cfg"]
        for method, path in (("POST", "/admin/keys"), ("GET", "/admin/usage")):
            response = admin.call(method, path, json={} if method == "POST" else None)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "records_disabled"
        assert chat(running.url, CONFIG_KEY).status_code == 200
    assert not list(tmp_path.glob("*.db"))
