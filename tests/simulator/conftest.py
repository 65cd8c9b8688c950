"""Fixtures: one real simulator server per module (instant profile) and an SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from polyroute.providers.simulator import BUILTIN_PROFILES, SimServer, start_server


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[SimServer]:
    """A live simulator on a free loopback port with the zero-latency profile."""
    srv = await start_server(BUILTIN_PROFILES["instant"])
    yield srv
    await srv.aclose()


@pytest.fixture(autouse=True)
def _clean_server(request: pytest.FixtureRequest) -> None:
    """Each test starts with an empty fault queue and zeroed stats."""
    if "server" in request.fixturenames:
        srv: SimServer = request.getfixturevalue("server")
        srv.faults.clear()
        srv.stats.reset()


@pytest.fixture
async def client(server: SimServer) -> AsyncIterator[AsyncOpenAI]:
    """The official SDK pointed at the simulator, without retries."""
    sdk = AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0, timeout=10)
    yield sdk
    await sdk.close()
