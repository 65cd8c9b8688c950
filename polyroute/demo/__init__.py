"""`polyroute demo`: simulated models on loopback and the gateway in front of them.

Everything runs in one process and one event loop, so Ctrl-C stops it all at once. The
simulators are real HTTP servers (each on its own port, callable directly too), and the
gateway reaches them over real sockets exactly as it would reach vLLM or OpenAI.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from polyroute.config import load_config
from polyroute.config.schema import KeyConfig
from polyroute.gateway import Gateway
from polyroute.runtime import run, wait_for_signal
from polyroute.server import start_site

if TYPE_CHECKING:
    from polyroute.providers.simulator.server import SimServer

DEMO_CONFIG = Path(str(files("polyroute.demo") / "demo.yaml"))

# the demo config's deployments, each served by the built-in simulator profile of its name
SIMULATED = ("fast-chat", "smart-chat", "coder", "flaky-chat", "embed", "image")


def port_variable(deployment: str) -> str:
    return "DEMO_" + deployment.upper().replace("-", "_") + "_PORT"


def run_demo(host: str = "127.0.0.1", port: int = 4000, key: str | None = None) -> int:
    """Start the simulators and the gateway; serve until Ctrl-C."""
    run(lambda: _demo(host, port, key))
    return 0


async def _demo(host: str, port: int, key: str | None) -> None:
    from polyroute.api.app import create_app
    from polyroute.providers.simulator.profiles import load_profile
    from polyroute.providers.simulator.server import start_server
    from polyroute.records.db import STATE_DIR_ENV, user_state_dir

    servers: list[SimServer] = []
    try:
        for index, deployment in enumerate(SIMULATED, start=101):
            profile = load_profile(deployment)
            server = await start_server(profile, "127.0.0.1", _free_or_any(port + index))
            os.environ[port_variable(deployment)] = str(server.port)
            servers.append(server)
        config = load_config(DEMO_CONFIG)
        # records: not next to the packaged config, but in the user's state directory
        os.environ.setdefault(STATE_DIR_ENV, str(user_state_dir()))
        if key:
            demo_key = KeyConfig.model_validate({"id": "demo", "key": key})
            config = config.model_copy(update={"keys": [demo_key]})
        gateway = Gateway.from_config(config)
        runner, bound = await start_site(
            create_app(gateway), host, port, reuse_port=False, shutdown_timeout=5
        )
        try:
            print(_banner(host, bound, servers, key), flush=True)
            await wait_for_signal()
            print("\npolyroute demo: stopping", flush=True)
        finally:
            await runner.cleanup()
    finally:
        for server in servers:
            await server.aclose()


def _free_or_any(port: int) -> int:
    """The preferred port if it is free, else 0 (the OS picks one)."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _banner(host: str, port: int, servers: list[SimServer], key: str | None) -> str:
    base = f"http://{host}:{port}/v1"
    api_key = "YOUR_KEY" if key else "sk-anything"
    auth = (
        "auth ON: send the key you gave with --key as 'Authorization: Bearer ...'"
        if key
        else "auth OFF (loopback demo: any key works; `polyroute demo --key sk-...` turns it on)"
    )
    sims = "\n".join(f"  {s.profile.name:<11} {s.url}" for s in servers)
    site = f"http://{host}:{port}"
    admin = (
        "admin key: the POLYROUTE_ADMIN_KEY you set"
        if os.environ.get("POLYROUTE_ADMIN_KEY")
        else "off: start with POLYROUTE_ADMIN_KEY=<a secret> to turn it on"
    )
    return f"""\
polyroute demo: gateway on {base}  ({auth})
simulated models (clearly simulated text, real HTTP servers):
{sims}
routes: auto (by request type) -> chat (weighted fast-chat 3 : smart-chat 1), embed, image;
        assistant (content), fastest (lowest latency), cheapest, smart (rules),
        experiment (A/B), panel (ensemble), learning (adaptive), budget, code;
        every deployment is also addressable by name.   Ctrl-C stops.

in a browser: {site}/playground  (chat or image prompts, with the routing decision)
              {site}/dashboard   (live traffic, breakers, A/B results; {admin})

try it:
  curl -s {base}/chat/completions -H 'Content-Type: application/json' \\
    -H 'Authorization: Bearer {api_key}' \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Hello!"}}]}}' -i

  curl -s {base}/route -H 'Content-Type: application/json' -H 'Authorization: Bearer {api_key}' \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

  python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base}", api_key="{api_key}")
for chunk in client.chat.completions.create(
        model="chat", stream=True, messages=[{{"role": "user", "content": "Tell me a story"}}]):
    print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="", flush=True)
print()
print(client.embeddings.create(model="auto", input="hello").data[0].embedding[:4])
print(client.images.generate(model="auto", prompt="a red circle").data[0].b64_json[:40], "...")
PY
"""
