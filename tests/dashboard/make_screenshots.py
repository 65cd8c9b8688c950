"""Screenshots of the dashboard and the playground for the README, from `polyroute demo`.

    .venv/bin/python -m tests.dashboard.make_screenshots [--seconds 120] [--out docs]

Starts the demo (simulated models, real HTTP) with a throw-away admin key, sends a mix of
traffic for a while (chat, streams, content routing, the A/B route with feedback, the
flaky budget route, embeddings, images), then opens both pages in headless Chromium and
writes docs/dashboard.png, docs/dashboard-zh.png and docs/playground.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import HOST, free_port, wait_http

PROMPTS = {
    "auto": ["Hello! How are you?", "Summarise the plot of Hamlet", "你好 今天过得怎么样"],
    "assistant": [
        "write a python function that sorts a list",
        "tell me a joke",
        "why does my SQL query return duplicates",
        "What is the capital of Australia and why?",
    ],
    "experiment": ["Suggest a name for a cat", "Plan a weekend in Lisbon"],
    "budget": ["Translate 'good morning' to French"],
    "cheapest": ["List three prime numbers"],
    "fastest": ["Say hi"],
}


def post(base: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "authorization": "Bearer sk-demo"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def one_request(base: str, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.06:
        post(base, "/v1/embeddings", {"model": "auto", "input": "hello world"})
        return
    if roll < 0.09:
        post(base, "/v1/images/generations", {"model": "auto", "prompt": "a lighthouse"})
        return
    route = rng.choice(list(PROMPTS))
    body: dict[str, Any] = {
        "model": route,
        "messages": [{"role": "user", "content": rng.choice(PROMPTS[route])}],
        "max_tokens": rng.choice([40, 80, 160]),
        "user": f"user-{rng.randrange(40)}",
    }
    if rng.random() < 0.3:
        body["stream"] = True
    status, headers, _ = post(base, "/v1/chat/completions", body)
    if route == "experiment" and status == 200 and rng.random() < 0.6:
        arm = headers.get("x-polyroute-arm", "")
        good = 0.8 if arm.endswith("candidate") else 0.6  # the candidate does a bit better
        score = 1.0 if rng.random() < good else 0.0
        post(base, "/v1/feedback", {"request_id": headers["x-request-id"], "score": score})


def traffic(base: str, seconds: float) -> int:
    """A varying load (about 3 to 10 requests a second) for `seconds`."""
    stop = time.monotonic() + seconds
    sent = 0
    lock = threading.Lock()

    def worker(seed: int) -> None:
        nonlocal sent
        rng = random.Random(seed)
        while time.monotonic() < stop:
            one_request(base, rng)
            with lock:
                sent += 1
            phase = (stop - time.monotonic()) / seconds
            time.sleep(rng.uniform(0.2, 0.9) * (0.4 if 0.35 < phase < 0.6 else 1.0))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    return sent


def shoot(base: str, admin_key: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        page = context.new_page()
        page.goto(base + "/dashboard")
        page.fill("#admin-key", admin_key)
        page.click("#connect")
        page.wait_for_selector("#content:not([hidden])")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.select_option("#lang", "zh")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out / "dashboard-zh.png"), full_page=True)
        page.select_option("#lang", "en")

        page.goto(base + "/playground")
        page.fill("#api-key", "sk-demo")
        page.dispatch_event("#api-key", "change")
        page.wait_for_selector('#model option[value="assistant"]', state="attached")
        page.select_option("#model", "assistant")
        page.fill("#prompt", "Write a python function that checks whether a word is a palindrome")
        page.click("#send")
        expect(page.locator("#ex-cost")).not_to_have_text("\u2013", timeout=30_000)
        page.click("#thumbs-up")
        page.wait_for_selector("#feedback-result[data-outcome]")
        page.screenshot(path=str(out / "playground.png"), full_page=True)
        context.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    admin_key = "adm-" + secrets.token_hex(16)
    port = free_port()
    with tempfile.TemporaryDirectory() as state, open(Path(state) / "demo.log", "wb") as log:
        env = {**os.environ, "POLYROUTE_ADMIN_KEY": admin_key, "POLYROUTE_STATE_DIR": state}
        demo = subprocess.Popen(
            [sys.executable, "-m", "polyroute", "demo", "--port", str(port)],
            stdout=log,  # a file, not a pipe: nothing blocks however much it logs
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_http(f"http://{HOST}:{port}/readyz", demo)
            base = f"http://{HOST}:{port}"
            sent = traffic(base, args.seconds)
            print(f"sent {sent} requests in {args.seconds:g} s")
            shoot(base, admin_key, args.out)
        finally:
            demo.terminate()
            demo.wait(timeout=15)
    for name in ("dashboard.png", "dashboard-zh.png", "playground.png"):
        print(args.out / name, os.path.getsize(args.out / name), "bytes")


if __name__ == "__main__":
    main()
