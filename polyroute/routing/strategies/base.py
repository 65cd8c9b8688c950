"""The strategy seam: a strategy ranks the targets that survived the policy's filters.

A strategy is built once at load from its options (its own pydantic model, so plug-ins
validate their own config) and a `resolve` callable that turns target names into targets
(deployments or sub-policies). Per request it only ranks; it never does I/O.

To add one: subclass Strategy, give it `name` and `Options`, and register it in STRATEGIES
(or name it in a config as ``"package.module:Class"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from polyroute.context import RequestContext
from polyroute.registry import Registry
from polyroute.routing.decision import FanOut
from polyroute.routing.runtime import Runtime
from polyroute.routing.target import Target

Resolve = Callable[[str, tuple[str | int, ...]], Target]
"""resolve(name, options_path) -> the deployment or route named; raises on unknown names."""


class StrategyOptions(BaseModel):
    """Base for strategy options: unknown keys are config errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(slots=True)
class Ranking:
    """The strategy's answer: targets best first, and the signals behind the order."""

    targets: list[Target]
    signals: dict[str, Any] = field(default_factory=dict)
    fan_out: FanOut | None = None
    """An ensemble's: call all `targets` at once instead of trying them in order."""


class Strategy(ABC):
    """Orders a route's candidate targets for one request."""

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]]

    @abstractmethod
    def __init__(self, options: Any, resolve: Resolve) -> None:
        """Build from validated options; resolve target names here, once."""

    @property
    @abstractmethod
    def targets(self) -> Sequence[Target]:
        """Every target this strategy may choose, in config order (filters run over these)."""

    @abstractmethod
    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        """Order `candidates` (the filtered subset of `targets`) for `ctx`, best first."""

    def attach(self, runtime: Runtime) -> None:  # noqa: B027 - optional hook, default no-op
        """Receive the live state (health, statistics) once the gateway is built; a
        strategy that needs it keeps a reference. Offline routers never call this."""


STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy",
    {
        "weighted": "polyroute.routing.strategies.weighted:WeightedStrategy",
        "by_type": "polyroute.routing.strategies.by_type:ByTypeStrategy",
        "single": "polyroute.routing.strategies.single:SingleStrategy",
        "rules": "polyroute.routing.strategies.rules:RulesStrategy",
        "lowest_latency": "polyroute.routing.strategies.performance:LowestLatencyStrategy",
        "least_busy": "polyroute.routing.strategies.performance:LeastBusyStrategy",
        "power_of_two": "polyroute.routing.strategies.performance:PowerOfTwoStrategy",
        "cheapest": "polyroute.routing.strategies.cost:CheapestStrategy",
        "ab": "polyroute.routing.strategies.ab:ABStrategy",
        "content": "polyroute.routing.strategies.content:ContentStrategy",
        "adaptive": "polyroute.routing.strategies.adaptive:AdaptiveStrategy",
        "ensemble": "polyroute.routing.strategies.ensemble:EnsembleStrategy",
        "quality": "polyroute.routing.strategies.quality:QualityStrategy",
    },
    accepts=lambda obj: isinstance(obj, type) and issubclass(obj, Strategy),
)
