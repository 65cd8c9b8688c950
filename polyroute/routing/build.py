"""Build the router from a config: resolve strategy and filter names, validate their options,
link target names to deployments or other routes, and reject cycles. All at load time, so a
bad policy fails `polyroute check` with the field and line, never a request."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from polyroute.config.errors import ConfigProblem
from polyroute.config.schema import GatewayConfig, RouteConfig
from polyroute.deployment import Deployment, timeouts_of
from polyroute.registry import RegistryError
from polyroute.routing.filters import DEFAULT_FILTERS, FILTERS, Filter
from polyroute.routing.policy import Policy, RouteResilience
from polyroute.routing.router import Router
from polyroute.routing.runtime import Runtime
from polyroute.routing.strategies.base import STRATEGIES, Strategy
from polyroute.routing.strategies.single import SingleOptions, SingleStrategy
from polyroute.routing.target import Target

Path_ = tuple[str | int, ...]


class _Invalid(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems


def build_router(config: GatewayConfig, runtime: Runtime | None = None) -> Router:
    """The Router for `config`; raises ConfigError naming each bad field.

    With a `runtime`, routing sets ejected deployments aside and strategies read live
    statistics; without one (offline commands) every deployment is healthy and unknown.
    """
    router = _Builder(config).build()
    if runtime is not None:
        for policy in router.policies.values():
            policy.health = runtime.health
            policy.strategy.attach(runtime)
    return router


class _Builder:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.problems: list[ConfigProblem] = []
        self.deployments: dict[str, Deployment] = {}
        for index, deployment in enumerate(config.models):
            try:
                self.deployments[deployment.name] = Deployment.from_config(deployment)
            except ValueError as exc:
                self.problems.append(ConfigProblem(("models", index, "profile"), str(exc)))
        self.policies = {name: Policy(name) for name in config.routes}
        self.state: dict[str, str] = {}  # route -> "building" | "built"

    def build(self) -> Router:
        for name in self.config.routes:
            self._build_route(name)
        if self.problems:
            raise self.config.error(self.problems)
        policies = dict(self.policies)
        if self.config.server.expose_deployments:
            for name, deployment in self.deployments.items():
                policies[name] = _direct_policy(deployment)
        return Router(
            policies,
            self.deployments,
            default_route=self.config.default_route,
            listed=tuple(policies),
        )

    def _build_route(self, name: str) -> None:
        if self.state.get(name) == "built":
            return
        self.state[name] = "building"
        route = self.config.routes[name]
        base: Path_ = ("routes", name)
        try:
            strategy = self._strategy(route, base)
            filters = self._filters(route, base)
            resilience = self._resilience(route, base)
        except _Invalid as exc:
            self.problems.extend(exc.problems)
        else:
            self.policies[name].bind(strategy, filters, resilience)
        self.state[name] = "built"

    def _strategy(self, route: RouteConfig, base: Path_) -> Strategy:
        try:
            cls = STRATEGIES.resolve(route.strategy)
        except RegistryError as exc:
            raise _Invalid([ConfigProblem((*base, "strategy"), str(exc))]) from None
        options_data: dict[str, Any] = route.strategy_options()
        options_data.pop("filters", None)
        try:
            options = cls.Options.model_validate(options_data)
        except ValidationError as exc:
            raise _Invalid(
                [
                    ConfigProblem((*base, *error["loc"]), _message(error))
                    for error in exc.errors(include_url=False, include_input=False)
                ]
            ) from None
        unresolved: list[ConfigProblem] = []

        def resolve(target: str, path: Path_) -> Target:
            found = self._resolve(target, (*base, *path), str(base[1]), unresolved)
            return found if found is not None else _Unresolved(target)

        try:
            strategy = cls(options, resolve)
        except ValueError as exc:  # problems only the strategy itself can see
            raise _Invalid([_located(base, str(exc))]) from None
        if unresolved:
            raise _Invalid(unresolved)
        return strategy

    def _resolve(
        self, target: str, path: Path_, current: str, problems: list[ConfigProblem]
    ) -> Target | None:
        """The deployment or route named `target`; an unknown name is added to `problems`."""
        if target in self.deployments:
            return self.deployments[target]
        if target not in self.policies:
            problems.append(ConfigProblem(path, f"{target!r} is neither a deployment nor a route"))
            return None
        if target == current or self.state.get(target) == "building":
            self.problems.append(ConfigProblem(path, f"route cycle through {target!r}"))
            return self.policies[target]
        self._build_route(target)
        return self.policies[target]

    def _resilience(self, route: RouteConfig, base: Path_) -> RouteResilience:
        problems: list[ConfigProblem] = []
        name = str(base[1])

        def targets(names: list[str], path: Path_) -> tuple[Target, ...]:
            found: list[Target] = []
            for index, target in enumerate(names):
                resolved = self._resolve(target, (*base, *path, index), name, problems)
                if resolved is not None:
                    found.append(resolved)
            return tuple(found)

        fallbacks: dict[str, tuple[Target, ...]] = {}
        if route.fallbacks:
            fallbacks["any"] = targets(route.fallbacks, ("fallbacks",))
        for error_class, names in route.fallbacks_on.items():
            resolved = targets(names, ("fallbacks_on", error_class))
            fallbacks[error_class] = fallbacks.get(error_class, ()) + resolved
        degraded = None
        if route.degraded is not None:
            degraded = self._resolve(route.degraded, (*base, "degraded"), name, problems)
        if problems:
            raise _Invalid(problems)
        timeouts = timeouts_of(route.timeouts) if route.timeouts is not None else None
        return RouteResilience(fallbacks, degraded, route.deadline, route.max_retries, timeouts)

    def _filters(self, route: RouteConfig, base: Path_) -> list[Filter]:
        names = route.strategy_options().get("filters", list(DEFAULT_FILTERS))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Invalid([ConfigProblem((*base, "filters"), "must be a list of filter names")])
        filters: list[Filter] = []
        for index, name in enumerate(names):
            try:
                filters.append(FILTERS.resolve(name)())
            except RegistryError as exc:
                raise _Invalid([ConfigProblem((*base, "filters", index), str(exc))]) from None
        return filters


class _Unresolved:
    """Placeholder so a strategy's constructor can finish while problems are collected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kinds: frozenset[Any] = frozenset()
        self.context_window: int | None = None
        self.weight = 1.0


def _direct_policy(deployment: Deployment) -> Policy:
    """Clients may name a deployment itself as `model`: a one-target policy."""
    policy = Policy(deployment.name)
    strategy = SingleStrategy(SingleOptions(target=deployment.name), lambda _n, _p: deployment)
    filters = [FILTERS.resolve(name)() for name in DEFAULT_FILTERS]
    policy.bind(strategy, filters)
    return policy


def _located(base: Path_, message: str) -> ConfigProblem:
    """A strategy's "field.path: problem" message as a problem at that path."""
    match = re.match(r"^([\w.\-]+): (.+)$", message, re.S)
    if match is None:
        return ConfigProblem(base, message)
    parts = tuple(int(p) if p.isdigit() else p for p in match.group(1).split("."))
    return ConfigProblem((*base, *parts), match.group(2))


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown option for this strategy"
    return str(error["msg"])
