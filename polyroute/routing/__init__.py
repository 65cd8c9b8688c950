"""Routing: a route alias's policy (filters, then one strategy) turns a RequestContext into a
Decision, a plan of deployments plus the explanation of why."""

from polyroute.routing.decision import Decision, Rejection
from polyroute.routing.policy import Policy
from polyroute.routing.router import Router

__all__ = ["Decision", "Policy", "Rejection", "Router"]
