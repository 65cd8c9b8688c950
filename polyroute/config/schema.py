"""The config schema. Every model forbids unknown keys, so a typo fails at start, not later.

Routes are deliberately open (`extra="allow"`): a route names its strategy, and the
strategy's own options model validates the rest when the router is built (see
:mod:`polyroute.routing.build`), which is how plug-in strategies bring their own options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from polyroute.config.errors import ConfigError, ConfigProblem
from polyroute.kinds import EndpointKind

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
MIB = 1024 * 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Strict):
    """How the gateway listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(8 * MIB, gt=0, description="request bodies above this get 413")
    max_response_bytes: int = Field(32 * MIB, gt=0, description="upstream bodies above this: 502")
    expose_deployments: bool = Field(
        True, description="let clients name a deployment directly as `model`"
    )
    shutdown_timeout: float = Field(30.0, ge=0, description="seconds to drain on SIGTERM")


class PriceConfig(Strict):
    """USD prices; per million tokens for text, per image for image models."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    cached_input_per_mtok: float = Field(0.0, ge=0)
    per_image: float = Field(0.0, ge=0)


class TimeoutConfig(Strict):
    """Per-attempt limits in seconds (see polyroute.providers.base.Timeouts)."""

    connect: float = Field(5.0, gt=0)
    first_byte: float = Field(60.0, gt=0)
    idle: float = Field(60.0, gt=0)
    total: float = Field(600.0, gt=0)


class DeploymentConfig(Strict):
    """One upstream model a route can send requests to."""

    name: str = Field(pattern=NAME_PATTERN)
    provider: str = Field("openai", description="registered provider name or 'module:Class'")
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="upstream model id; defaults to `name`")
    api_key: SecretStr | None = Field(None, description="write it as ${ENV_VAR}")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="extra headers")
    kinds: list[EndpointKind] | None = Field(
        None, description="default: chat + completion (a simulator: its profile's kinds)"
    )
    weight: float = Field(1.0, gt=0)
    price: PriceConfig = Field(default_factory=PriceConfig)
    context_window: int | None = Field(None, gt=0)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    max_connections: int = Field(0, ge=0, description="connection pool size; 0 = unbounded")
    profile: str | dict[str, Any] | None = Field(
        None, description="simulator provider only: built-in profile name, file or inline"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, value: list[EndpointKind] | None) -> list[EndpointKind] | None:
        if value is not None and not value:
            raise ValueError("a deployment must serve at least one kind")
        return value

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


class RouteConfig(BaseModel):
    """A route alias: the strategy that orders its targets, plus that strategy's options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: str = Field("weighted", description="registered strategy name or 'module:Class'")
    description: str = ""

    def strategy_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class KeyConfig(Strict):
    """A client API key declared in the config (virtual keys come from the admin API)."""

    id: str = Field(pattern=NAME_PATTERN)
    key: SecretStr
    user: str | None = None
    team: str | None = None
    tier: str | None = None
    tags: list[str] = Field(default_factory=list)
    models: list[str] | None = Field(None, description="routes/deployments allowed; None = all")

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("keys must be at least 8 characters")
        return value


class GatewayConfig(Strict):
    """The whole file."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    models: list[DeploymentConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    default_route: str | None = Field(
        None, description="route used when a request names no model (the playground's 'auto')"
    )
    keys: list[KeyConfig] = Field(default_factory=list)

    _source: str = PrivateAttr("<config>")
    _locate: Callable[[tuple[str | int, ...]], int | None] | None = PrivateAttr(None)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.keys)

    @property
    def source(self) -> str:
        return self._source

    def error(self, problems: list[ConfigProblem]) -> ConfigError:
        """A ConfigError for problems found after loading (e.g. while building routes),
        with YAML lines filled in where the file is known."""
        locate = self._locate
        located = [
            ConfigProblem(p.path, p.message, p.line or (locate(p.path) if locate else None))
            for p in problems
        ]
        return ConfigError(self._source, located)
