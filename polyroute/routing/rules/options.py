"""The rules strategy's options (pydantic models), apart from the compiled strategy in
routing/strategies/rules.py: mypyc cannot compile a pydantic model's class."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from polyroute.routing.strategies.options import StrategyOptions


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    when: dict[str, Any] = Field(min_length=1)
    target: str
    priority: int = Field(0, description="higher first; ties keep the order written")


class RulesOptions(StrategyOptions):
    rules: list[RuleSpec] = Field(min_length=1)
    default: str | None = Field(None, description="target when no rule matches")
    timezone: str = Field("UTC", description="for time.* fields, e.g. Asia/Shanghai")
