"""The base of every strategy's options (a pydantic model), apart from the compiled
strategy seam in base.py: mypyc cannot compile a pydantic model's class."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrategyOptions(BaseModel):
    """Base for strategy options: unknown keys are config errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
