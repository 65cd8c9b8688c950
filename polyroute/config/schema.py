"""The config schema. Every model forbids unknown keys, so a typo fails at start, not later.

Routes are deliberately open (`extra="allow"`): a route names its strategy, and the
strategy's own options model validates the rest when the router is built (see
:mod:`polyroute.routing.build`), which is how plug-in strategies bring their own options.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from polyroute.config.errors import ConfigError, ConfigProblem
from polyroute.kinds import EndpointKind
from polyroute.observability.settings import ObservabilitySettings

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
    admin_key: SecretStr | None = Field(
        None, description="Bearer key for /admin/*; write it as ${ENV}; unset: admin API off"
    )


class PriceConfig(Strict):
    """USD prices; per million tokens for text, per image for image models."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    cached_input_per_mtok: float | None = Field(
        None, ge=0, description="cached prompt tokens; unset: the input price"
    )
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
    stream_usage: bool = Field(
        True, description="ask for usage on streams (stream_options.include_usage)"
    )
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


class BackoffConfig(Strict):
    """Exponential backoff with full jitter between attempts on the same deployment."""

    base: float = Field(0.025, gt=0, description="seconds before the first retry (at most)")
    cap: float = Field(1.0, gt=0, description="longest single backoff")


class RetryBudgetConfig(Strict):
    """Extra attempts allowed: `ratio` of the requests in the last `window` seconds, plus
    `min_per_second` x `window` so low traffic can still retry."""

    ratio: float = Field(0.2, ge=0, le=10)
    min_per_second: float = Field(10.0, ge=0)
    window: float = Field(10.0, gt=0)


class BreakerConfig(Strict):
    """Outlier ejection per deployment (defaults from Envoy's outlier detection)."""

    consecutive_failures: int = Field(5, ge=1)
    failure_rate: float = Field(0.5, gt=0, le=1, description="eject above this failure share")
    min_requests: int = Field(20, ge=1, description="requests in the window before the rate counts")
    window: float = Field(30.0, gt=0, description="seconds the failure rate is measured over")
    base_ejection: float = Field(30.0, gt=0, description="first ejection; n-th is n x this")
    max_ejection: float = Field(300.0, gt=0)
    rate_limit_cooldown: float = Field(5.0, ge=0, description="429 without retry-after")


class ProbeConfig(Strict):
    """Periodic health probes of every deployment (off unless `interval` is set)."""

    interval: float | None = Field(
        None, gt=0, description="seconds between probes; also one round before /readyz"
    )
    timeout: float = Field(2.0, gt=0, description="a probe slower than this failed")


class ResilienceConfig(Strict):
    """How hard the gateway tries before it gives an error back."""

    deadline: float = Field(600.0, gt=0, description="one request, all attempts included")
    max_retries: int = Field(2, ge=0, description="attempts beyond the first, fallbacks aside")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    retry_after_cap: float = Field(60.0, ge=0, description="longest Retry-After honoured")
    retry_budget: RetryBudgetConfig = Field(default_factory=RetryBudgetConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    max_in_flight: int = Field(4096, ge=1, description="gateway-wide; beyond it: fast 503")
    max_in_flight_per_deployment: int = Field(1024, ge=1)
    probes: ProbeConfig = Field(default_factory=ProbeConfig)


class StatsConfig(Strict):
    """How live per-deployment statistics are kept."""

    ewma_alpha: float = Field(0.2, gt=0, le=1, description="weight of the newest latency")
    error_window: float = Field(60.0, gt=0, description="seconds the error rate covers")


BudgetPeriod = Literal["day", "week", "month", "total"]


class ScopeLimitsConfig(Strict):
    """Limits of one scope (global, each user, one model); unset: no limit of that kind."""

    rpm: int | None = Field(None, gt=0, description="requests per minute (GCRA, burst = rpm)")
    tpm: int | None = Field(None, gt=0, description="tokens (in + out) per minute")
    max_parallel: int | None = Field(None, gt=0, description="requests in flight at once")
    budget: float | None = Field(None, ge=0, description="USD per budget_period")
    budget_period: BudgetPeriod = "month"

    @property
    def empty(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.max_parallel is None
            and self.budget is None
        )


class LimitsConfig(Strict):
    """Rate limits and budgets beyond each key's own (`keys[].rpm`, `tpm`, `budget`...)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    global_: ScopeLimitsConfig = Field(
        default_factory=ScopeLimitsConfig, alias="global", description="all requests together"
    )
    per_user: ScopeLimitsConfig = Field(
        default_factory=ScopeLimitsConfig,
        description="each end user (the body's `user`, else the key's `user`) separately",
    )
    per_model: dict[str, ScopeLimitsConfig] = Field(
        default_factory=dict,
        description="by route alias or deployment name: requests that name or pass through "
        "the route, or whose first planned deployment is the deployment",
    )
    expected_output_tokens: int = Field(
        256, ge=0, description="tokens reserved for the answer when a request sets no max_tokens"
    )


class StateConfig(Strict):
    """Where shared state lives: this process (`memory`) or one Redis for every worker and
    instance (`redis`)."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: SecretStr | None = Field(
        None, description="redis://[:password@]host:port/db; write it as ${ENV}"
    )
    key_prefix: str = Field("polyroute", min_length=1, pattern=r"^[A-Za-z0-9._:-]+$")
    timeout: float = Field(
        0.1, gt=0, description="seconds a Redis call may take before local state is used"
    )
    sync_interval: float = Field(
        0.2, gt=0, le=10, description="seconds between pushes/pulls of breakers and stats"
    )
    retry_interval: float = Field(
        1.0, gt=0, description="seconds between reconnection attempts while Redis is down"
    )
    max_connections: int = Field(64, ge=1, description="Redis connection pool size per process")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


ERROR_CLASSES = ("rate_limited", "context_window", "content_filter", "unavailable", "any")


class RouteConfig(BaseModel):
    """A route alias: the strategy that orders its targets, plus that strategy's options,
    plus what to do when the chosen deployments fail."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: str = Field("weighted", description="registered strategy name or 'module:Class'")
    description: str = ""
    fallbacks: list[str] = Field(
        default_factory=list, description="tried in order after the strategy's own targets"
    )
    fallbacks_on: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per error class: " + ", ".join(ERROR_CLASSES),
    )
    degraded: str | None = Field(
        None, description="served while every target of the route is ejected"
    )
    deadline: float | None = Field(None, gt=0, description="overrides resilience.deadline")
    max_retries: int | None = Field(None, ge=0, description="overrides resilience.max_retries")
    timeouts: TimeoutConfig | None = Field(
        None, description="per-attempt limits for this route, instead of each deployment's"
    )

    @field_validator("fallbacks_on")
    @classmethod
    def _known_classes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - set(ERROR_CLASSES)
        if unknown:
            raise ValueError(
                f"unknown error class {sorted(unknown)}; use {', '.join(ERROR_CLASSES)}"
            )
        return value

    def strategy_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class KeySettings(Strict):
    """What a client API key may do and who it speaks for: shared by keys declared in the
    config and virtual keys managed through the admin API (``/admin/keys``)."""

    user: str | None = Field(None, max_length=256)
    team: str | None = Field(None, max_length=128)
    tier: str | None = Field(None, max_length=128)
    tags: list[str] = Field(default_factory=list)
    models: list[str] | None = Field(None, description="routes/deployments allowed; None = all")
    rpm: int | None = Field(None, gt=0, description="requests per minute")
    tpm: int | None = Field(None, gt=0, description="tokens (in + out) per minute")
    max_parallel: int | None = Field(None, gt=0, description="requests in flight at once")
    budget: float | None = Field(None, ge=0, description="USD per budget_period")
    budget_period: Literal["day", "week", "month", "total"] = "month"
    expires_at: datetime | None = Field(
        None, description="ISO 8601 (UTC unless it names a zone); refused from then on"
    )


class KeyConfig(KeySettings):
    """A client API key declared in the config (virtual keys come from the admin API)."""

    id: str = Field(pattern=NAME_PATTERN)
    key: SecretStr

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("keys must be at least 8 characters")
        return value

    @property
    def settings(self) -> KeySettings:
        return KeySettings.model_validate(self.model_dump(exclude={"id", "key"}))


class RecordsConfig(Strict):
    """Durable request records and virtual API keys, in SQLite or PostgreSQL (SQLAlchemy).

    `url` unset: ``polyroute.db`` in $POLYROUTE_STATE_DIR, else next to the config file. A
    relative SQLite path is relative to that same directory. ``sqlite://`` and
    ``postgresql://`` URLs get the async drivers (aiosqlite, asyncpg) automatically.
    """

    enabled: bool = True
    url: SecretStr | None = Field(
        None,
        description="sqlite+aiosqlite:///path.db or postgresql+asyncpg://user:pass@host/db; "
        "write credentials as ${ENV}",
    )
    queue_size: int = Field(20_000, ge=1, description="records waiting to be written; more: drop")
    batch_size: int = Field(500, ge=1, description="rows per INSERT")
    flush_interval: float = Field(1.0, gt=0, description="seconds between writes at low traffic")
    shutdown_timeout: float = Field(30.0, gt=0, description="seconds to flush on shutdown")
    key_refresh: float = Field(
        1.0, gt=0, description="seconds between checks for keys changed by other instances"
    )


class SemanticCacheConfig(Strict):
    """Answers to prompts that mean the same, within one route and tenant."""

    enabled: bool = False
    threshold: float = Field(0.8, gt=0, le=1, description="cosine similarity for a hit")
    embedder: str = Field(
        "local", description="local (char n-gram hashing, no model) or an embedding deployment"
    )
    max_entries: int = Field(2000, gt=0, description="per route and tenant")


class CacheConfig(Strict):
    """The response cache (see polyroute.cache)."""

    enabled: bool = False
    ttl: float = Field(300.0, gt=0, description="seconds an answer stays servable")
    max_entries: int = Field(10_000, gt=0)
    max_bytes: int = Field(64 * MIB, gt=0, description="total size of cached bodies")
    max_temperature: float | None = Field(
        0.0,
        ge=0,
        description="cache only requests at or below this temperature (absent = 1.0, "
        "OpenAI's default); null: cache every request",
    )
    routes: list[str] | None = Field(None, description="routes whose answers are cached")
    backend: Literal["memory", "redis"] = "memory"
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


class GatewayConfig(Strict):
    """The whole file."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    models: list[DeploymentConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    default_route: str | None = Field(
        None, description="route used when a request names no model (the playground's 'auto')"
    )
    keys: list[KeyConfig] = Field(default_factory=list)
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    cache: CacheConfig = Field(default_factory=CacheConfig)

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
