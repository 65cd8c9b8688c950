"""Config loading: schema validation, ${ENV} secrets, line-precise errors, policy build."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyroute.config import ConfigError, load_config, parse_config
from polyroute.gateway import Gateway

MINIMAL = """\
models:
  - name: local
    base_url: http://127.0.0.1:8000/v1
"""


def test_minimal_config_gets_defaults() -> None:
    """A one-model config is valid and the defaults are the documented ones."""
    config = parse_config(MINIMAL)
    assert config.server.port == 4000
    assert config.server.max_body_bytes == 8 * 1024 * 1024
    assert config.models[0].upstream_model == "local"
    assert not config.auth_enabled


def test_unknown_key_names_field_and_line() -> None:
    """A misspelled key fails with its path and the line it is on."""
    text = MINIMAL + "    wieght: 2\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="gw.yaml")
    message = str(info.value)
    assert "gw.yaml:4: models.0.wieght: unknown field" in message


def test_wrong_value_names_field_and_line() -> None:
    """A value out of range reports the field and its line."""
    text = "server:\n  port: 99999\n" + MINIMAL
    with pytest.raises(ConfigError, match=r"<config>:2: server.port: Input should be less"):
        parse_config(text)


def test_env_reference_is_substituted_and_kept_secret() -> None:
    """${VAR} resolves from the environment; the key is a SecretStr that never prints."""
    text = MINIMAL + "    api_key: ${UPSTREAM_KEY}\n"
    config = parse_config(text, environ={"UPSTREAM_KEY": "sk-canary-123456"})
    key = config.models[0].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-canary-123456"
    assert "sk-canary" not in repr(config)


def test_missing_env_reference_is_an_error() -> None:
    """An unset ${VAR} without a default names the variable and the field."""
    text = MINIMAL + "    api_key: ${NOT_SET_ANYWHERE}\n"
    with pytest.raises(ConfigError, match=r":4: models.0.api_key: environment variable NOT_SET"):
        parse_config(text, environ={})


def test_env_default_is_used() -> None:
    """${VAR:-default} falls back to the default."""
    text = "models:\n  - name: a\n    base_url: ${URL:-http://127.0.0.1:9/v1}\n"
    assert parse_config(text, environ={}).models[0].base_url == "http://127.0.0.1:9/v1"


def test_duplicate_yaml_key_is_an_error() -> None:
    """PyYAML silently keeps the last duplicate key; the loader refuses it instead."""
    text = "models:\n  - name: a\n    name: b\n    base_url: http://x/v1\n"
    with pytest.raises(ConfigError, match=r":3: models.0.name: duplicate key"):
        parse_config(text)


def test_yaml_syntax_error_has_line() -> None:
    """A YAML syntax error is a ConfigError with the line, not a traceback."""
    with pytest.raises(ConfigError, match=r"<config>:3: \(top level\): YAML syntax"):
        parse_config("models:\n  - name: a\n  bad: [\n")


def test_duplicate_deployment_and_shadowing_route() -> None:
    """Two deployments with one name, or a route named like a deployment, are refused."""
    text = MINIMAL + "  - name: local\n    base_url: http://x/v1\nroutes:\n  local: {}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "models.1.name: duplicate name 'local'" in message
    assert "routes.local: a deployment already has this name" in message


def test_openai_provider_requires_base_url() -> None:
    """An OpenAI-compatible deployment without a base URL cannot work."""
    with pytest.raises(ConfigError, match=r"models.0.base_url: required"):
        parse_config("models:\n  - name: a\n")


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("  r: {strategy: nope, targets: [local]}\n", "routes.r.strategy: unknown strategy 'nope'"),
        ("  r: {strategy: weighted, targets: [ghost]}\n", "routes.r.targets.0: 'ghost' is neither"),
        ("  r: {strategy: weighted, targets: []}\n", "routes.r.targets: List should have at least"),
        (
            "  r: {strategy: weighted, targets: [local], extra: 1}\n",
            "routes.r.extra: unknown option",
        ),
        ("  r: {strategy: by_type, targets: {video: local}}\n", "routes.r.targets.video"),
        ("  r: {strategy: weighted, targets: [local], filters: [bogus]}\n", "unknown filter"),
        (
            "  r: {strategy: single, target: s}\n  s: {strategy: single, target: r}\n",
            "route cycle",
        ),
    ],
)
def test_bad_policies_fail_at_load(route: str, expected: str) -> None:
    """Routing mistakes are config errors with the field path, found before serving."""
    config = parse_config(MINIMAL + "routes:\n" + route)
    with pytest.raises(ConfigError) as info:
        Gateway.from_config(config)
    assert expected in str(info.value)


def test_policy_error_has_line() -> None:
    """Errors found while building routes still carry the YAML line."""
    text = MINIMAL + "routes:\n  r:\n    strategy: weighted\n    targets: [ghost]\n"
    with pytest.raises(ConfigError, match=r"<config>:7: routes.r.targets.0"):
        Gateway.from_config(parse_config(text))


def test_plugin_strategy_by_import_path() -> None:
    """A strategy named by import path is loaded like a built-in one."""
    text = MINIMAL + (
        "routes:\n  r:\n    strategy: polyroute.routing.strategies.single:SingleStrategy\n"
        "    target: local\n"
    )
    gateway = Gateway.from_config(parse_config(text))
    assert gateway.router.policies["r"].strategy.name == "single"


def test_example_configs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every config shipped under examples/ and bench/ loads and builds."""
    monkeypatch.setenv("UPSTREAM_URL", "http://127.0.0.1:18000/v1")
    root = Path(__file__).resolve().parents[2]
    paths = [*sorted((root / "examples").glob("*.yaml")), root / "bench" / "overhead.yaml"]
    assert len(paths) >= 3
    for path in paths:
        Gateway.from_config(load_config(path))


def test_unreadable_file() -> None:
    """A missing file is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config("/nonexistent/polyroute.yaml")


def test_simulator_deployment_takes_its_profiles_kinds() -> None:
    """A simulator deployment without `kinds` serves what its profile serves."""
    text = "models:\n  - {name: e, provider: simulator, profile: embed}\n"
    gateway = Gateway.from_config(parse_config(text))
    assert {k.value for k in gateway.router.deployments["e"].kinds} == {"embedding"}


def test_bad_simulator_profile_is_a_config_error() -> None:
    """An unknown built-in profile fails at load, naming the deployment's profile field."""
    text = "models:\n  - {name: e, provider: simulator, profile: no-such-profile}\n"
    with pytest.raises(ConfigError, match=r"<config>:2: models.0.profile"):
        Gateway.from_config(parse_config(text))
