"""The context fields a rule can test, each compiled to a getter once at load.

Field paths:
  caller.key, caller.user, caller.team, caller.tier, caller.tags  the API key's identity
  user                      the request's `user` (or the key's user)
  metadata.<name>           the request's `metadata` object
  header.<name>             a request header (lower-case name; credentials never visible)
  model, kind               the requested model/route and the request kind
  tokens                    the prompt's estimated tokens
  text_length               characters of prompt text
  language, sentiment       detected from the latest user turn (computed only if a rule asks)
  time.hour, time.weekday, time.minute   the clock in the route's time zone
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from polyroute.context import RequestContext

Getter = Callable[[RequestContext], Any]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_SIMPLE: dict[str, Getter] = {
    "caller.key": lambda ctx: ctx.caller.key_id,
    "caller.user": lambda ctx: ctx.caller.user,
    "caller.team": lambda ctx: ctx.caller.team,
    "caller.tier": lambda ctx: ctx.caller.tier,
    "caller.tags": lambda ctx: ctx.caller.tags,
    "user": lambda ctx: ctx.user,
    "model": lambda ctx: ctx.model,
    "kind": lambda ctx: ctx.kind.value,
    "tokens": lambda ctx: ctx.token_estimate,
    "text_length": lambda ctx: len(ctx.text),
    "language": lambda ctx: ctx.language,
    "sentiment": lambda ctx: ctx.sentiment,
}


def compile_field(path: str, zone: tzinfo | None) -> Getter:
    """The getter for a field path; raises ValueError naming the unknown field."""
    simple = _SIMPLE.get(path)
    if simple is not None:
        return simple
    head, _, rest = path.partition(".")
    if head == "metadata" and rest:
        return lambda ctx: ctx.metadata.get(rest)
    if head == "header" and rest:
        name = rest.lower()
        return lambda ctx: ctx.headers.get(name)
    if head == "time" and rest in ("hour", "minute", "weekday"):
        return _clock(rest, zone)
    known = ", ".join([*_SIMPLE, "metadata.<name>", "header.<name>", "time.hour|minute|weekday"])
    raise ValueError(f"unknown field {path!r}; known fields: {known}")


def _clock(part: str, zone: tzinfo | None) -> Getter:
    def read(ctx: RequestContext) -> Any:
        now = datetime.now(zone)
        if part == "hour":
            return now.hour
        if part == "minute":
            return now.minute
        return WEEKDAYS[now.weekday()]

    return read
