"""Filters: remove targets that cannot serve a request, each with a reason for the explanation.

A filter answers one question about one target; the policy runs its filters in order and
keeps the first reason. Register new filters in FILTERS or name them by import path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from mypy_extensions import mypyc_attr

from polyroute.context import RequestContext
from polyroute.registry import Registry
from polyroute.routing.pricing import estimate_cost
from polyroute.routing.target import Target


@mypyc_attr(allow_interpreted_subclasses=True)  # plug-in filters subclass it
class Filter(ABC):
    """Rejects a target for a request, or lets it through (returns None).

    Compiled (setup.py), so the policy calls the built-in filters natively; a plug-in's
    subclass is plain Python and is called through its method as before."""

    name: ClassVar[str]
    advisory: ClassVar[bool] = False
    """An advisory filter sets targets aside only while other targets remain; when it
    would leave none, they all stay (and something else, e.g. a limit, answers)."""

    @abstractmethod
    def reject(self, ctx: RequestContext, target: Target) -> str | None:
        """The reason `target` cannot serve `ctx`, or None if it can."""


class CapabilityFilter(Filter):
    """The target must serve the request's kind (chat, completion, embedding, image)."""

    name = "capability"

    def reject(self, ctx: RequestContext, target: Target) -> str | None:
        if ctx.kind in target.kinds:
            return None
        return f"does not serve {ctx.kind.value} requests"


class ContextWindowFilter(Filter):
    """The request's estimated prompt tokens must fit the target's context window."""

    name = "context_window"

    def reject(self, ctx: RequestContext, target: Target) -> str | None:
        window = target.context_window
        if window is None or ctx.token_estimate <= window:
            return None
        return f"~{ctx.token_estimate} prompt tokens exceed its context window of {window}"


class MaxPriceFilter(Filter):
    """The caller's `x-polyroute-max-price` header (USD per request) caps the estimate."""

    name = "max_price"

    def reject(self, ctx: RequestContext, target: Target) -> str | None:
        limit = ctx.max_price
        if limit is None:
            return None
        cost = estimate_cost(ctx, target)
        if cost <= limit:
            return None
        return f"estimated ${cost:.6f} is over max_price ${limit:.6f}"


class BudgetFilter(Filter):
    """Targets whose estimated cost exceeds what the caller's budget has left are set aside,
    so a key that is running out of budget is served by the deployments it can still
    afford. When it can afford none, the filter steps back (it is advisory) and the budget
    limit itself answers: 429 budget_exceeded, with the time the period resets."""

    name = "budget"
    advisory = True

    def reject(self, ctx: RequestContext, target: Target) -> str | None:
        left = ctx.budget_left
        if left is None:
            return None
        cost = estimate_cost(ctx, target)
        if cost <= left * (1 + 1e-9):
            return None
        return f"estimated ${cost:.6f} is over the ${left:.6f} left in the caller's budget"


FILTERS: Registry[type[Filter]] = Registry(
    "filter",
    {
        "capability": "polyroute.routing.filters:CapabilityFilter",
        "context_window": "polyroute.routing.filters:ContextWindowFilter",
        "max_price": "polyroute.routing.filters:MaxPriceFilter",
        "budget": "polyroute.routing.filters:BudgetFilter",
    },
    accepts=lambda obj: isinstance(obj, type) and issubclass(obj, Filter),
)

DEFAULT_FILTERS: tuple[str, ...] = ("capability", "context_window", "max_price", "budget")
