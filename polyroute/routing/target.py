"""Target: what a strategy chooses between: a deployment, or another route (a sub-policy)."""

from __future__ import annotations

from typing import Protocol

from polyroute.kinds import EndpointKind


class Target(Protocol):
    """Anything a strategy can rank: it has a name, the kinds it serves and a context window."""

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> frozenset[EndpointKind]: ...

    @property
    def context_window(self) -> int | None: ...
