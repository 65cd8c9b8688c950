"""Provider plug-ins: a deployment's `provider:` names a factory here or by import path.

A factory takes the deployment's config and returns a Provider; `max_response_bytes` is the
gateway-wide cap on upstream bodies.
"""

from __future__ import annotations

from typing import Protocol

from polyroute.config.schema import DeploymentConfig
from polyroute.providers.base import Provider
from polyroute.registry import Registry


class ProviderFactory(Protocol):
    def __call__(self, config: DeploymentConfig, *, max_response_bytes: int) -> Provider: ...


PROVIDERS: Registry[ProviderFactory] = Registry(
    "provider",
    {
        "openai": "polyroute.providers.openai_compat:OpenAICompatibleProvider.from_config",
        "simulator": "polyroute.providers.simulated:simulator_from_config",
    },
    accepts=callable,
)


def build_provider(config: DeploymentConfig, *, max_response_bytes: int) -> Provider:
    """Construct the provider for one deployment (no I/O: pools open on first use/start)."""
    factory = PROVIDERS.resolve(config.provider)
    return factory(config, max_response_bytes=max_response_bytes)
