"""/dashboard and /playground in headless Chromium, against a real gateway process."""

from __future__ import annotations

import re
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=15_000)

from tests.dashboard.conftest import ADMIN_KEY, CLIENT_KEY, Dash, count_colour  # noqa: E402

TOTAL_COLOUR = (0x1C, 0x3F, 0xAA)  # PR.TOTAL_COLOUR: the "all" line of every chart
P99_COLOUR = (0x70, 0x48, 0xE8)
TIMEOUT = 15_000  # ms
EMPTY = "\u2013"  # the en dash a page shows for a figure it does not have yet


def open_dashboard(page: Any, dash: Dash, key: str = ADMIN_KEY) -> None:
    page.goto(dash.base + "/dashboard")
    page.fill("#admin-key", key)
    page.click("#connect")


def test_dashboard_shows_live_figures_and_charts(page: Any, dash: Dash) -> None:
    open_dashboard(page, dash)
    page.wait_for_selector("#content:not([hidden])", timeout=TIMEOUT)
    expect(page.locator("#kpi-qps")).not_to_have_text(re.compile(rf"^({EMPTY}|0\.00)$"))
    assert float(page.inner_text("#kpi-qps")) > 0
    assert page.inner_text("#kpi-p50").endswith("ms")
    assert page.inner_text("#kpi-cost").startswith("$")
    for name in ("quick", "steady", "pictures", "broken"):
        assert page.locator(f'#deployments-body tr[data-deployment="{name}"]').count() == 1
    broken = page.locator('#deployments-body tr[data-deployment="broken"] td[data-state]')
    assert broken.get_attribute("data-state") == "open"
    assert broken.locator(".badge").inner_text() == "open"
    failed = page.locator('#deployments-body tr[data-deployment="broken"] td').nth(1)
    assert failed.inner_text() == "100.0 %"  # its failed attempts
    quick = page.locator('#deployments-body tr[data-deployment="quick"] td[data-state]')
    assert quick.locator(".badge").inner_text() == "closed"
    assert page.locator('#routes-body tr[data-route="chat"]').count() == 1
    assert page.locator('#decisions .decision[data-route="chat"] .part').count() >= 1
    assert page.locator('#experiments [data-experiment="exp"] tr[data-arm]').count() >= 1
    assert "[" in page.inner_text('#experiments [data-experiment="exp"] tbody')  # the CIs

    # the charts are drawn with data: their lines' colours are on screen
    for chart in ("#chart-qps", "#chart-tokens", "#chart-latency"):  # (a refresh may lag)
        points = re.compile(r"^[1-9][0-9]*$")
        expect(page.locator(f"{chart} svg")).to_have_attribute("data-points", points)
    qps = page.locator("#chart-qps").screenshot()
    assert count_colour(qps, TOTAL_COLOUR) > 20
    latency = page.locator("#chart-latency").screenshot()
    assert count_colour(latency, TOTAL_COLOUR) > 10
    assert count_colour(latency, P99_COLOUR) > 10
    page.screenshot(full_page=True)  # renders whole (a failure here is a layout crash)

    # auto-refresh: the "Updated hh:mm:ss" line moves on by itself
    first = page.inner_text("#status")
    expect(page.locator("#status")).not_to_have_text(first)


def test_dashboard_in_chinese(page: Any, dash: Dash) -> None:
    open_dashboard(page, dash)
    page.wait_for_selector("#content:not([hidden])", timeout=TIMEOUT)
    page.select_option("#lang", "zh")
    assert page.inner_text("#sec-routes") == "路由"
    assert page.inner_text("#sec-deployments") == "部署与熔断器"
    assert "每秒请求数" in page.inner_text(".kpis")
    assert page.inner_text("#connect") == "连接"
    # the tables are redrawn in Chinese too
    expect(page.locator('tr[data-deployment="broken"] .badge')).to_have_text("断开")
    assert re.search(r"更新于", page.inner_text("#status"))
    page.select_option("#lang", "en")
    assert page.inner_text("#sec-routes") == "Routes"


def test_dashboard_language_follows_the_browser(browser: Any, dash: Dash) -> None:
    context = browser.new_context(locale="zh-CN")
    try:
        tab = context.new_page()
        tab.goto(dash.base + "/dashboard")
        assert tab.inner_text("#connect") == "连接"
        assert "管理密钥" in tab.inner_text("#status")
    finally:
        context.close()


def test_dashboard_refuses_a_wrong_key(page: Any, dash: Dash) -> None:
    open_dashboard(page, dash, key="not-the-admin-key")
    expect(page.locator("#status")).to_contain_text("not accepted")
    assert page.locator("#content").is_hidden()
    # the key lives in this tab's sessionStorage only
    assert page.evaluate("sessionStorage.getItem('polyroute.adminKey')") == "not-the-admin-key"
    assert page.evaluate("localStorage.getItem('polyroute.adminKey')") is None


def ask(page: Any, prompt: str, model: str = "") -> None:
    page.fill("#prompt", prompt)
    if model:
        page.select_option("#model", model)
    page.click("#send")
    expect(page.locator("#ex-cost")).not_to_have_text(EMPTY)


def test_playground_streams_an_answer_beside_its_explanation(page: Any, dash: Dash) -> None:
    page.goto(dash.base + "/playground")
    page.fill("#api-key", CLIENT_KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_selector('#model option[value="exp"]', state="attached", timeout=TIMEOUT)
    ask(page, "Tell me a short story")  # the default route: chat (weighted)

    answer = page.inner_text("#answer")
    assert answer.startswith("[simulated")
    assert len(answer.split()) > 5
    assert page.inner_text("#ex-route") == "chat"
    assert page.inner_text("#ex-strategy") == "weighted"
    deployment = page.inner_text("#ex-deployment")
    assert deployment in {"quick", "steady"}
    assert page.inner_text("#ex-attempts") == "1"
    assert re.fullmatch(r"\d+ / \d+", page.inner_text("#ex-tokens"))
    assert page.inner_text("#ex-cost").startswith("$")
    assert page.inner_text("#ex-latency").endswith("ms")
    assert page.inner_text("#ex-request-id").startswith("req_")
    assert '"strategy": "weighted"' in page.inner_text("#ex-signals")

    # feedback on a route that does not learn from it: told so, no error
    page.click("#thumbs-up")
    page.wait_for_selector("#feedback-result[data-outcome]", timeout=TIMEOUT)
    assert page.get_attribute("#feedback-result", "data-outcome") == "unknown"
    assert "A/B" in page.inner_text("#feedback-result")

    # an A/B route: the arm is shown and the thumbs up is recorded against it
    ask(page, "Which arm am I in?", model="exp")
    assert page.inner_text("#answer").startswith("[simulated")
    assert page.inner_text("#ex-strategy") == "ab"
    assert re.fullmatch(r"exp / (control|candidate)", page.inner_text("#ex-arm"))
    page.click("#thumbs-down")
    page.wait_for_selector('#feedback-result[data-outcome="recorded"]', timeout=TIMEOUT)
    assert "experiment=exp" in page.inner_text("#feedback-result")
    assert page.evaluate("sessionStorage.getItem('polyroute.apiKey')") == CLIENT_KEY


def test_playground_draws_an_image(page: Any, dash: Dash) -> None:
    page.goto(dash.base + "/playground")
    page.fill("#api-key", CLIENT_KEY)
    page.dispatch_event("#api-key", "change")
    page.check("#mode-image")
    page.wait_for_selector('#model option[value="draw"]', state="attached", timeout=TIMEOUT)
    assert page.locator('#model option[value="steady"]').count() == 0  # text only: filtered
    ask(page, "a red circle on a blue square", model="draw")
    image = page.locator("#image")
    assert image.is_visible()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.getElementById('image').naturalWidth") > 0
    assert page.inner_text("#ex-deployment") == "pictures"
    assert page.inner_text("#ex-cost") == "$0.04"


def test_playground_shows_errors(page: Any, dash: Dash) -> None:
    page.goto(dash.base + "/playground")
    page.fill("#api-key", "sk-wrong-key-123456")
    page.dispatch_event("#api-key", "change")
    expect(page.locator("#status")).to_contain_text("Incorrect API key")
    page.fill("#prompt", "hello")
    page.click("#send")
    page.wait_for_selector("#answer.error", timeout=TIMEOUT)
    assert "401" in page.inner_text("#answer")
