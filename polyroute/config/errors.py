"""ConfigError: one message per problem, each naming the field path and, where known, the line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in a config file."""

    path: tuple[str | int, ...]
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        field = ".".join(str(part) for part in self.path) or "(top level)"
        return f"{where}: {field}: {self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; `str()` lists every problem found, one per line."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [problem.render(source) for problem in self.problems]
        super().__init__("invalid config:\n  " + "\n  ".join(lines))
