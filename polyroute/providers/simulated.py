"""Factory for `provider: simulator` deployments: the simulator running inside the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyroute.config.schema import DeploymentConfig
from polyroute.providers.base import Provider

if TYPE_CHECKING:
    from polyroute.providers.simulator.profiles import SimProfile


def simulator_profile(config: DeploymentConfig) -> SimProfile:
    """The profile a simulator deployment names: built-in name, file path or inline mapping.

    Raises ValueError (pydantic's ValidationError is one) for an unusable profile.
    """
    from polyroute.providers.simulator.profiles import SimProfile, load_profile

    spec = config.profile if config.profile is not None else "instant"
    if isinstance(spec, dict):
        return SimProfile.model_validate({"name": config.name, **spec})
    return load_profile(spec)


def simulator_from_config(config: DeploymentConfig, *, max_response_bytes: int) -> Provider:
    """An in-process simulator for the deployment's profile."""
    from polyroute.providers.simulator.provider import SimulatorProvider

    del max_response_bytes  # in-process bodies are generated, not received
    return SimulatorProvider(simulator_profile(config), deployment=config.name)
