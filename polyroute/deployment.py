"""Deployment: the runtime view of one configured upstream model, shared by router and executor."""

from __future__ import annotations

from dataclasses import dataclass, field

from polyroute.config.schema import DeploymentConfig, PriceConfig, TimeoutConfig
from polyroute.kinds import TEXT_KINDS, EndpointKind
from polyroute.providers.request import Timeouts


@dataclass(eq=False, slots=True)
class Deployment:
    """A configured upstream, as routing sees it (the executor holds its Provider).

    Precomputes what the hot path needs (kinds as a frozenset, timeouts as one object) so
    nothing per request re-reads the config. Routing never needs a connection, which is why
    `polyroute route` and `polyroute check` can build the whole policy graph offline.
    """

    name: str
    upstream_model: str
    kinds: frozenset[EndpointKind]
    weight: float
    price: PriceConfig
    context_window: int | None
    timeouts: Timeouts
    secrets: tuple[str, ...]
    config: DeploymentConfig = field(repr=False)

    @classmethod
    def from_config(cls, config: DeploymentConfig) -> Deployment:
        secrets = [v.get_secret_value() for v in config.headers.values()]
        if config.api_key is not None:
            secrets.append(config.api_key.get_secret_value())
        return cls(
            name=config.name,
            upstream_model=config.upstream_model,
            kinds=served_kinds(config),
            weight=config.weight,
            price=config.price,
            context_window=config.context_window,
            timeouts=timeouts_of(config.timeouts),
            secrets=tuple(secret for secret in secrets if len(secret) >= 4),
            config=config,
        )


def served_kinds(config: DeploymentConfig) -> frozenset[EndpointKind]:
    """The configured kinds; by default text, or what a simulator's profile serves."""
    if config.kinds is not None:
        return frozenset(config.kinds)
    if config.provider == "simulator":
        from polyroute.providers.simulated import simulator_profile

        return frozenset(simulator_profile(config).kinds)
    return TEXT_KINDS


def timeouts_of(config: TimeoutConfig) -> Timeouts:
    return Timeouts(
        connect=config.connect, first_byte=config.first_byte, idle=config.idle, total=config.total
    )
