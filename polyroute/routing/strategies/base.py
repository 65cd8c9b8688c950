"""The strategy seam: a strategy ranks the targets that survived the policy's filters.

A strategy is built once at load from its options (its own pydantic model, so plug-ins
validate their own config) and a `resolve` callable that turns target names into targets
(deployments or sub-policies). Per request it only ranks; it never does I/O.

To add one: subclass Strategy, give it `name` and `Options`, and register it in STRATEGIES
(or name it in a config as ``"package.module:Class"``).

Compiled (setup.py): the policy calls a compiled strategy's `rank` natively; a plug-in's
subclass is plain Python (Strategy allows interpreted subclasses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mypy_extensions import mypyc_attr

from polyroute.context import RequestContext
from polyroute.registry import Registry
from polyroute.routing.decision import FanOut
from polyroute.routing.runtime import Runtime
from polyroute.routing.strategies.options import StrategyOptions
from polyroute.routing.target import Target

Resolve = Callable[[str, tuple[str | int, ...]], Target]
"""resolve(name, options_path) -> the deployment or route named; raises on unknown names."""


@dataclass(slots=True, init=False)
class Ranking:
    """The strategy's answer: targets best first, and the signals behind the order.
    (Its own `__init__`: compiled, the generated one would run interpreted.)"""

    targets: list[Target]
    signals: dict[str, Any]
    fan_out: FanOut | None
    """An ensemble's: call all `targets` at once instead of trying them in order."""

    def __init__(
        self,
        targets: list[Target],
        signals: dict[str, Any] | None = None,
        fan_out: FanOut | None = None,
    ) -> None:
        self.targets = targets
        self.signals = {} if signals is None else signals
        self.fan_out = fan_out


@mypyc_attr(allow_interpreted_subclasses=True)
class Strategy(ABC):
    """Orders a route's candidate targets for one request."""

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]]

    def __init__(self, options: Any, resolve: Resolve) -> None:  # noqa: B027 - the signature
        """Build from validated options; resolve target names here, once. (Not abstract:
        compiled, an abstract `__init__` with arguments does not build, mypyc 2.4.1.)"""

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

__all__ = ["STRATEGIES", "Ranking", "Resolve", "Strategy", "StrategyOptions"]
