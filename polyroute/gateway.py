"""Gateway: the composition root that wires config -> router, executor, key store.

One object per process; the HTTP app (polyroute.api.app) and the CLI's offline commands
(`route`, `check`) both start here, so they always agree on what a config means.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from polyroute.api.auth import KeyStore
from polyroute.cache import ResponseCache, build_cache
from polyroute.cache.embedders import deployment_embedder
from polyroute.cache.semantic import Embed
from polyroute.clock import Clock, MonotonicClock
from polyroute.config import GatewayConfig, load_config
from polyroute.dashboard.traffic import Traffic
from polyroute.execution.executor import Executor
from polyroute.execution.probes import HealthProber
from polyroute.experiments import Experiments
from polyroute.kinds import EndpointKind
from polyroute.limits.service import Limits
from polyroute.observability.telemetry import Telemetry
from polyroute.outcomes import Observers
from polyroute.providers.base import Provider
from polyroute.providers.registry import build_provider
from polyroute.registry import RegistryError
from polyroute.routing.build import build_router
from polyroute.routing.router import Router
from polyroute.routing.runtime import Runtime
from polyroute.state.backend import StateBackend, build_state, slot_lease
from polyroute.state.bandit import Learner

if TYPE_CHECKING:
    from polyroute.records.service import Records
    from polyroute.state.redis_conn import RedisConnection

log = logging.getLogger("polyroute")


class Gateway:
    """Everything a request needs, built once from a config."""

    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        executor: Executor,
        keys: KeyStore,
        *,
        records: Records | None = None,
        cache: ResponseCache | None = None,
        state: StateBackend | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.executor = executor
        self.keys = keys
        self.records = records  # durable request records + virtual keys (records: on)
        self.cache = cache  # the response cache (cache: enabled)
        self.ready = False
        self.in_flight = 0  # requests being served now, for the gateway-wide limit
        self.experiments = Experiments()
        self.traffic = Traffic(executor.clock)  # live figures for /dashboard
        self.observers = Observers([self.experiments, self.traffic])
        self.state = state or build_state(config, executor.clock)  # shared state (`state:`)
        models = {*router.policies, *router.deployments}
        self.limits = Limits.from_config(
            config, self.state.limiter, models, lease=slot_lease(config)
        )
        self.observers.add(self.limits)  # settles each request's limits to its real usage
        if records is not None:
            self.observers.add(records.writer)
        # e.g. adaptive routes: observed, persisted (a file, or shared on Redis)
        self.learners = learners_of(router, self.state.redis)
        for learner in self.learners:
            self.observers.add(learner)
        self._learning: list[asyncio.Task[None]] = []
        # `resilience.probes`: dead deployments found before clients find them
        self.prober = HealthProber(executor.providers, executor.breakers, config.resilience.probes)
        # metrics (/metrics), access log, request log, tracing (`observability:`)
        self.telemetry = Telemetry.attach(self)
        self.metrics = self.telemetry.metrics

    @classmethod
    def from_config(cls, config: GatewayConfig, clock: Clock | None = None) -> Gateway:
        """Build routing and providers; raises ConfigError for anything unusable."""
        clock = clock or MonotonicClock()
        resilience = config.resilience
        state = build_state(config, clock)
        runtime = Runtime(health=state.breakers, stats=state.stats, clock=clock)
        router = build_router(config, runtime)
        executor = Executor(
            build_providers(config),
            resilience=resilience,
            runtime=runtime,
            budget=state.retry_budget,
        )
        records = build_records(config)
        source = records.keys if records is not None else None
        keys = KeyStore(config.keys, source, refresh=config.records.key_refresh)
        if config.cache.enabled and config.cache.backend == "redis" and state.redis is None:
            from polyroute.config.errors import ConfigProblem

            problem = ConfigProblem(("cache", "backend"), "redis needs state.backend: redis")
            raise config.error([problem])
        embed = semantic_embedder(config, router, executor)
        cache = build_cache(config.cache, redis=state.redis, embed=embed)
        return cls(config, router, executor, keys, records=records, cache=cache, state=state)

    @classmethod
    def from_file(cls, path: str | Path) -> Gateway:
        return cls.from_config(load_config(path))

    async def start(self) -> None:
        """Open upstream pools (and the records database) before reporting ready."""
        await self.state.start()  # Redis (when `state.backend: redis`), unreachable or not
        if self.records is not None:
            await self.records.start()
        await self.keys.start()
        for provider in self.executor.providers.values():
            start = getattr(provider, "start", None)
            if start is not None:
                await start()
        self._learning = [asyncio.create_task(x.persist_periodically()) for x in self.learners]
        await self.prober.start()  # one round before ready: also warms every pool
        await self.telemetry.start()
        self.ready = True

    async def aclose(self) -> None:
        self.ready = False
        await self.keys.aclose()
        await self.prober.aclose()
        for task in self._learning:
            task.cancel()
        await asyncio.gather(*self._learning, return_exceptions=True)
        await self.executor.aclose()
        await self.limits.aclose()  # settlements still on their way to Redis
        for learner in self.learners:
            await learner.flush()  # before Redis closes: a last sync there
        await self.state.aclose()
        if self.records is not None:
            await self.records.aclose()  # after the drain: writes every queued record
        await self.telemetry.aclose()  # after the drain: the request log's queue


def semantic_embedder(config: GatewayConfig, router: Router, executor: Executor) -> Embed | None:
    """The embedding deployment the semantic cache names (None: the local embedder)."""
    name = config.cache.semantic.embedder
    if not config.cache.semantic.enabled or name == "local":
        return None
    deployment = router.deployments.get(name)
    if deployment is None or EndpointKind.EMBEDDING not in deployment.kinds:
        from polyroute.config.errors import ConfigProblem

        problem = ConfigProblem(
            ("cache", "semantic", "embedder"),
            f"{name!r} is neither `local` nor a deployment that serves embeddings",
        )
        raise config.error([problem])
    return deployment_embedder(executor, deployment)


def learners_of(router: Router, redis: RedisConnection | None = None) -> list[Learner]:
    """The routes' learners (a strategy's `learner`), each bound to its route's name."""
    learners: list[Learner] = []
    for name, policy in router.policies.items():
        learner = getattr(policy.strategy, "learner", None)
        if isinstance(learner, Learner):
            learner.bind(name, redis)
            learners.append(learner)
    return learners


def build_records(config: GatewayConfig) -> Records | None:
    """The records database of `config` (not opened yet), or None when records are off."""
    if not config.records.enabled:
        return None
    from polyroute.config.errors import ConfigProblem
    from polyroute.records.service import Records

    try:
        return Records.from_config(config)
    except Exception as exc:  # the message may quote the URL, and with it a password
        problem = ConfigProblem(
            ("records", "url"),
            f"not a usable database URL ({type(exc).__name__}); e.g. "
            "sqlite+aiosqlite:///polyroute.db or postgresql+asyncpg://user:pass@host/db",
        )
        raise config.error([problem]) from None


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
