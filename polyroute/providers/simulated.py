"""Factory for `provider: simulator` deployments: the simulator running inside the gateway."""

from __future__ import annotations

from pathlib import Path

from polyroute.config.schema import DeploymentConfig
from polyroute.providers.base import Provider


def simulator_from_config(config: DeploymentConfig, *, max_response_bytes: int) -> Provider:
    """An in-process simulator for `config.profile` (built-in name, file path or inline)."""
    from polyroute.providers.simulator.profiles import SimProfile, load_profile
    from polyroute.providers.simulator.provider import SimulatorProvider

    del max_response_bytes  # in-process bodies are generated, not received
    spec = config.profile if config.profile is not None else "instant"
    if isinstance(spec, dict):
        profile = SimProfile.model_validate({"name": config.name, **spec})
    else:
        profile = load_profile(
            str(Path(spec)) if spec.endswith((".yaml", ".yml", ".json")) else spec
        )
    return SimulatorProvider(profile, deployment=config.name)
