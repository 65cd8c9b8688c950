"""Routing strategies, one module each, registered by name in STRATEGIES."""

from polyroute.routing.strategies.base import STRATEGIES, Ranking, Resolve, Strategy

__all__ = ["STRATEGIES", "Ranking", "Resolve", "Strategy"]
