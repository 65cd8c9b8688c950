"""Runtime: the live state routing reads (health, performance), handed to policies and
strategies after the router is built. Offline commands (`polyroute route`, `check`) build
routers without one, and strategies then treat every deployment as healthy and unknown."""

from __future__ import annotations

from dataclasses import dataclass

from polyroute.clock import Clock
from polyroute.state.base import CircuitBreakers, LiveStats


@dataclass(frozen=True, slots=True)
class Runtime:
    health: CircuitBreakers
    stats: LiveStats
    clock: Clock
