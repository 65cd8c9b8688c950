"""Router: maps the `model` a client asked for to its policy and returns the Decision.
Compiled (setup.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import InvalidRequest, NotFound, PermissionDenied
from polyroute.routing.decision import Decision
from polyroute.routing.policy import Policy

Decide = Callable[[RequestContext], Decision]
DecideWrapper = Callable[[Decide, RequestContext], Decision]


class Router:
    """All policies of a config, by the names clients use as `model`."""

    def __init__(
        self,
        policies: Mapping[str, Policy],
        deployments: Mapping[str, Deployment],
        *,
        default_route: str | None = None,
        listed: tuple[str, ...] = (),
    ) -> None:
        self.policies = dict(policies)
        self.deployments = dict(deployments)
        self.default_route = default_route
        self.listed = listed or tuple(self.policies)
        self.wrap_decide: DecideWrapper | None = None
        """Set by tracing: called with the undecorated `decide` and the context. A hook
        rather than a replaced method: compiled, an instance attribute cannot shadow one."""

    def policy_for(self, model: str) -> Policy:
        policy = self.policies.get(model)
        if policy is None:
            raise NotFound(
                f"The model {model!r} does not exist: it is neither a route nor a deployment "
                "(GET /v1/models lists them)",
                param="model",
            )
        return policy

    def decide(self, ctx: RequestContext) -> Decision:
        """The decision for `ctx`; raises NotFound / PermissionDenied / InvalidRequest."""
        wrap = self.wrap_decide
        if wrap is not None:
            return wrap(self._decide, ctx)
        return self._decide(ctx)

    def _decide(self, ctx: RequestContext) -> Decision:
        model = ctx.model
        if not model:
            if self.default_route is None:
                raise InvalidRequest("you must provide a model parameter", param="model")
            model = ctx.model = self.default_route
        if not ctx.caller.may_use(model):  # before the lookup: 403 says nothing of existence
            raise PermissionDenied(
                f"this API key may not use model {model!r}", param="model", code="model_not_allowed"
            )
        return self.policy_for(model).decide(ctx)
