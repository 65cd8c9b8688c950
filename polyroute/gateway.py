"""Gateway: the composition root that wires config -> router, executor, key store.

One object per process; the HTTP app (polyroute.api.app) and the CLI's offline commands
(`route`, `check`) both start here, so they always agree on what a config means.
"""

from __future__ import annotations

import logging
from pathlib import Path

from polyroute.api.auth import KeyStore
from polyroute.clock import Clock, MonotonicClock
from polyroute.config import GatewayConfig, load_config
from polyroute.execution.executor import Executor
from polyroute.experiments import Experiments
from polyroute.outcomes import Observers
from polyroute.providers.base import Provider
from polyroute.providers.registry import build_provider
from polyroute.registry import RegistryError
from polyroute.routing.build import build_router
from polyroute.routing.router import Router
from polyroute.routing.runtime import Runtime
from polyroute.state.memory import MemoryBreakers, MemoryLiveStats, MemoryRetryBudget

log = logging.getLogger("polyroute")


class Gateway:
    """Everything a request needs, built once from a config."""

    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        executor: Executor,
        keys: KeyStore,
    ) -> None:
        self.config = config
        self.router = router
        self.executor = executor
        self.keys = keys
        self.ready = False
        self.in_flight = 0  # requests being served now, for the gateway-wide limit
        self.experiments = Experiments()
        self.observers = Observers([self.experiments])

    @classmethod
    def from_config(cls, config: GatewayConfig, clock: Clock | None = None) -> Gateway:
        """Build routing and providers; raises ConfigError for anything unusable."""
        clock = clock or MonotonicClock()
        resilience = config.resilience
        runtime = Runtime(
            health=MemoryBreakers(resilience.breaker, clock),
            stats=MemoryLiveStats(config.stats, clock),
            clock=clock,
        )
        router = build_router(config, runtime)
        executor = Executor(
            build_providers(config),
            resilience=resilience,
            runtime=runtime,
            budget=MemoryRetryBudget(resilience.retry_budget, clock),
        )
        return cls(config, router, executor, KeyStore(config.keys))

    @classmethod
    def from_file(cls, path: str | Path) -> Gateway:
        return cls.from_config(load_config(path))

    async def start(self) -> None:
        """Open upstream pools before reporting ready."""
        for provider in self.executor.providers.values():
            start = getattr(provider, "start", None)
            if start is not None:
                await start()
        self.ready = True

    async def aclose(self) -> None:
        self.ready = False
        await self.executor.aclose()


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    from polyroute.config.errors import ConfigProblem

    providers: dict[str, Provider] = {}
    problems: list[ConfigProblem] = []
    for index, deployment in enumerate(config.models):
        try:
            providers[deployment.name] = build_provider(
                deployment, max_response_bytes=config.server.max_response_bytes
            )
        except (RegistryError, ValueError) as exc:
            problems.append(ConfigProblem(("models", index, "provider"), str(exc)))
    if problems:
        raise config.error(problems)
    return providers
