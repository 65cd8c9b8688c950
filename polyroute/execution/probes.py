"""Health probes: find a dead deployment before a client request does.

With `resilience.probes.interval` set, every deployment whose provider can be probed
(`probe(limit)`: the OpenAI-compatible adapter asks `GET <base_url>/models`) is probed
once before the gateway reports ready (which also opens a pooled connection to each, the
warm-up) and then every `interval` seconds. A failed probe counts as a failure in the
deployment's breaker, so a deployment that stops answering is ejected after the breaker's
`consecutive_failures` probes without any client request failing on it. A successful probe
only proves the server is up, not that it answers chat well, so it does not close an
open breaker: real traffic (the breaker's half-open probe) does that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from polyroute.config.schema import ProbeConfig
from polyroute.providers.base import Provider
from polyroute.state.base import CircuitBreakers

log = logging.getLogger("polyroute.probes")


@runtime_checkable
class Probeable(Protocol):
    async def probe(self, limit: float) -> bool: ...


class HealthProber:
    def __init__(
        self, providers: Mapping[str, Provider], breakers: CircuitBreakers, config: ProbeConfig
    ) -> None:
        self.config = config
        self.breakers = breakers
        self.targets = {
            name: provider
            for name, provider in providers.items()
            if isinstance(provider, Probeable)
        }
        self.failures = 0
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.config.interval is not None and bool(self.targets)

    async def probe_all(self) -> dict[str, bool]:
        """One round: every deployment at once; failures go to the breakers."""
        names = list(self.targets)
        results = await asyncio.gather(
            *(self.targets[name].probe(self.config.timeout) for name in names)
        )
        self.rounds += 1
        for name, ok in zip(names, results, strict=True):
            if not ok:
                self.failures += 1
                self.breakers.record_failure(name)
                log.warning("probe: deployment %s did not answer", name)
        return dict(zip(names, results, strict=True))

    async def start(self) -> None:
        """The first round (before ready), then the periodic task."""
        if not self.enabled:
            return
        await self.probe_all()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self.config.interval is not None
        while True:
            await asyncio.sleep(self.config.interval)
            try:
                await self.probe_all()
            except Exception:  # a bug of ours must not end the probing
                log.exception("probe round failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
