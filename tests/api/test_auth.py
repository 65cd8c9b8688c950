"""API keys declared in the config: 401 without a valid one, allowed models enforced."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.api.conftest import CLIENT_KEY
from tests.support import gateway, simulator

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = """
models:
  - {name: m, base_url: SIM}
  - {name: other, base_url: SIM}
keys:
  - {id: team-a, key: "${CLIENT_KEY}", team: a, tier: vip, models: [m]}
"""
    with simulator("instant") as sim:
        text = config.replace("SIM", sim)
        with gateway(text, tmp_path_factory.mktemp("auth"), env={"CLIENT_KEY": CLIENT_KEY}) as url:
            yield url


def test_valid_key_is_served(secured: str) -> None:
    """The configured key works with the SDK."""
    with openai.OpenAI(base_url=secured, api_key=CLIENT_KEY, max_retries=0) as client:
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices


@pytest.mark.parametrize("header", [None, "Bearer sk-wrong-key-000000", "Basic abc", "Bearer"])
def test_missing_or_wrong_key_is_401(secured: str, header: str | None) -> None:
    """No key, a wrong key or a wrong scheme: 401, and the key is never echoed."""
    headers = {"authorization": header} if header else {}
    response = httpx.post(
        secured + "/chat/completions",
        json={"model": "m", "messages": MESSAGES},
        headers=headers,
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "sk-wrong" not in response.text


def test_sdk_raises_authentication_error(secured: str) -> None:
    """The SDK sees a wrong key as AuthenticationError."""
    with (
        openai.OpenAI(base_url=secured, api_key="sk-not-a-key-123", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


def test_model_outside_allow_list_is_403(secured: str) -> None:
    """A key limited to some models gets 403 for others, and only sees its own in the list."""
    with openai.OpenAI(base_url=secured, api_key=CLIENT_KEY, max_retries=0) as client:
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="other", messages=MESSAGES)
        assert [m.id for m in client.models.list()] == ["m"]


def test_auth_is_checked_before_the_body_is_read(secured: str) -> None:
    """An unauthenticated oversized body is refused as 401, not read."""
    response = httpx.post(
        secured + "/chat/completions",
        content=b"{" + b" " * 100_000,
        headers={"content-type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 401
