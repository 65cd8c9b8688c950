"""GET /admin/stats, the pages and their assets, the playground's request summaries, over
real HTTP against a `polyroute serve` process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from polyroute.api.app import create_app
from polyroute.config.schema import GatewayConfig
from polyroute.dashboard.views import ASSETS, PAGES
from polyroute.gateway import Gateway
from tests.dashboard.conftest import ADMIN_KEY, CLIENT_KEY, UPSTREAM_KEY, Dash

STATIC = Path(__file__).parents[2] / "polyroute" / "dashboard" / "static"


def test_stats_need_the_admin_key(dash: Dash) -> None:
    status, _, raw = dash.call("GET", "/admin/stats", key=None)
    assert status == 401
    status, _, raw = dash.call("GET", "/admin/stats", key=CLIENT_KEY)
    assert status == 401
    assert json.loads(raw)["error"]["message"] == "admin key required"


def test_stats_describe_routes_deployments_breakers_and_arms(dash: Dash) -> None:
    data = dash.stats()
    total = data["total"]
    assert total["qps"] > 0
    assert total["totals"]["requests"] >= 24
    assert total["p50_ms"] is not None
    assert total["p99_ms"] >= total["p50_ms"]
    assert total["tokens_out_1m"] > 0
    assert total["cost_1m"] > 0
    assert len(total["series"]["qps"]) == data["history_s"] // data["step_s"]

    routes = {route["name"]: route for route in data["routes"]}
    assert set(routes) >= {"chat", "exp", "fragile", "draw"}
    assert routes["chat"]["default"] is True
    assert routes["chat"]["strategy"] == "weighted"
    assert set(routes["chat"]["stats"]["decisions_1m"]) <= {"quick", "steady"}
    assert sum(routes["chat"]["stats"]["decisions_1m"].values()) >= 12  # (+ the pages' tests)
    assert routes["fragile"]["stats"]["error_rate"] == 1

    deployments = {d["name"]: d for d in data["deployments"]}
    assert set(deployments) == {"quick", "steady", "pictures", "broken"}
    assert deployments["broken"]["breaker"]["state"] == "open"
    assert deployments["broken"]["breaker"]["retry_in_s"] > 0
    assert deployments["broken"]["live"]["error_rate"] == 1  # every attempt failed
    assert deployments["quick"]["breaker"]["state"] == "closed"
    pictures = deployments["pictures"]["stats"]
    assert pictures["cost_1m"] == pytest.approx(0.04 * pictures["requests_1m"])  # $0.04 each

    arms = data["experiments"]["exp"]
    assert sum(arm["requests"] for arm in arms.values()) >= 8
    assert all("error_rate_ci95" in arm for arm in arms.values())


def test_no_secret_reaches_the_dashboard(dash: Dash) -> None:
    _, _, stats = dash.call("GET", "/admin/stats", key=ADMIN_KEY)
    pages = [dash.call("GET", path, key=None)[2] for path in PAGES]
    assets = [dash.call("GET", f"/dashboard/assets/{name}", key=None)[2] for name in ASSETS]
    for body in (stats, *pages, *assets):
        for secret in (ADMIN_KEY, CLIENT_KEY, UPSTREAM_KEY):
            assert secret.encode() not in body
    assert b"127.0.0.1" not in stats  # no upstream URL either


def test_pages_and_assets_are_served_from_the_package(dash: Dash) -> None:
    for path in PAGES:
        status, headers, body = dash.call("GET", path, key=None)
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert "connect-src 'self'" in headers["content-security-policy"]
        # everything the page loads is one of our assets: no CDN, no other origin
        for ref in re.findall(rb'(?:src|href)="([^"]+)"', body):
            assert ref in {b"data:,", b"dashboard", b"playground"} or (
                ref.startswith(b"dashboard/assets/") and ref.split(b"/")[-1].decode() in ASSETS
            ), ref
    for name, content_type in ASSETS.items():
        status, headers, body = dash.call("GET", f"/dashboard/assets/{name}", key=None)
        assert status == 200
        assert headers["content-type"].startswith(content_type)
        assert body == (STATIC / name).read_bytes()
    assert dash.call("GET", "/dashboard/assets/views.py", key=None)[0] == 404
    assert dash.call("GET", "/dashboard/assets/..%2Fviews.py", key=None)[0] == 404
    assert dash.call("POST", "/dashboard", {}, key=None)[0] == 405


def test_every_string_exists_in_english_and_chinese() -> None:
    common = (STATIC / "common.js").read_text()
    en = common[common.index("  en: {") : common.index("  zh: {")]
    zh = common[common.index("  zh: {") : common.index("PR.lang =")]
    keys_en = set(re.findall(r'^\s+"([\w.]+)":', en, re.M))
    keys_zh = set(re.findall(r'^\s+"([\w.]+)":', zh, re.M))
    assert keys_en == keys_zh, keys_en ^ keys_zh
    used = {"breaker.closed", "breaker.open", "breaker.half_open"}  # "breaker." + state
    namespaces = "|".join({key.split(".")[0] for key in keys_en})
    for path in STATIC.iterdir():
        if path.name != "common.js":
            used |= set(re.findall(rf'"((?:{namespaces})\.\w+)"', path.read_text()))
    assert used - keys_en == set()
    assert len(used) > 100
    assert re.search(r"[\u4e00-\u9fff]", zh)


def test_playground_summaries_are_for_the_sending_key_only(dash: Dash) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    status, headers, _ = dash.call(
        "POST", "/v1/chat/completions", body, headers={"x-polyroute-playground": "1"}
    )
    assert status == 200
    request_id = headers["x-request-id"]
    status, _, raw = dash.call("GET", f"/playground/api/requests/{request_id}")
    assert status == 200
    summary = json.loads(raw)
    assert summary["deployment"] == headers["x-polyroute-deployment"]
    assert summary["usage"]["completion_tokens"] > 0
    assert summary["cost_usd"] > 0
    assert dash.call("GET", f"/playground/api/requests/{request_id}", key=None)[0] == 401
    assert dash.call("GET", "/playground/api/requests/req_unknown")[0] == 404


async def test_without_an_admin_key_the_dashboard_is_off() -> None:
    config = GatewayConfig.model_validate(
        {
            "records": {"enabled": False},
            "models": [{"name": "m", "provider": "simulator", "profile": "instant"}],
        }
    )
    async with TestClient(TestServer(create_app(Gateway.from_config(config)))) as client:
        response = await client.get("/admin/stats", headers={"authorization": "Bearer x"})
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "admin_disabled"
        page = await client.get("/dashboard")
        assert page.status == 200  # the page itself loads and says how to turn it on
