"""Load a config file: YAML -> ${ENV} substitution -> pydantic -> cross-field checks.

Every problem is reported with its field path and the YAML line it came from, so
`polyroute check` can point at the exact place to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from polyroute.config.errors import ConfigError, ConfigProblem
from polyroute.config.schema import NAME_PATTERN, GatewayConfig

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(NAME_PATTERN)
Path_ = tuple[str | int, ...]


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate the config file at `path`; raises ConfigError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigProblem((), f"cannot read file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        problem = ConfigProblem((), f"not UTF-8 text (byte {exc.start})")
        raise ConfigError(source, [problem]) from exc
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate config text; `environ` (default os.environ) resolves ${VAR} references."""
    lines = _LineIndex.parse(text, source)
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ConfigError(source, [ConfigProblem((), "the file must be a YAML mapping", 1)])
    problems: list[ConfigProblem] = []
    data = _substitute(raw, (), environ if environ is not None else os.environ, problems)
    unresolved = {problem.path for problem in problems}
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _from_validation(exc) if p.path not in unresolved)
    else:
        problems.extend(cross_check(config))
        if not problems:
            config._source = source
            config._locate = lines.line_of
            return config
    located = [ConfigProblem(p.path, p.message, p.line or lines.line_of(p.path)) for p in problems]
    raise ConfigError(source, located)


def cross_check(config: GatewayConfig) -> list[ConfigProblem]:
    """Checks that span fields: unique names, routes that don't shadow deployments."""
    problems: list[ConfigProblem] = []
    names: set[str] = set()
    for index, deployment in enumerate(config.models):
        if deployment.name in names:
            problems.append(
                ConfigProblem(("models", index, "name"), f"duplicate name {deployment.name!r}")
            )
        names.add(deployment.name)
        if deployment.provider == "openai" and deployment.base_url is None:
            problems.append(
                ConfigProblem(("models", index, "base_url"), "required for provider 'openai'")
            )
    for alias in config.routes:
        if not _NAME.match(alias):
            problems.append(ConfigProblem(("routes", alias), "not a valid route name"))
        elif alias in names:
            problems.append(ConfigProblem(("routes", alias), "a deployment already has this name"))
    seen_ids: set[str] = set()
    for index, key in enumerate(config.keys):
        if key.id in seen_ids:
            problems.append(ConfigProblem(("keys", index, "id"), f"duplicate id {key.id!r}"))
        seen_ids.add(key.id)
    if config.default_route is not None and config.default_route not in config.routes:
        problems.append(ConfigProblem(("default_route",), "names no route in `routes`"))
    return problems


def _substitute(value: Any, path: Path_, env: Mapping[str, str], out: list[ConfigProblem]) -> Any:
    if isinstance(value, str):
        return _substitute_string(value, path, env, out)
    if isinstance(value, dict):
        return {key: _substitute(item, (*path, str(key)), env, out) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*path, index), env, out) for index, item in enumerate(value)]
    return value


def _substitute_string(
    value: str, path: Path_, env: Mapping[str, str], out: list[ConfigProblem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        out.append(ConfigProblem(path, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, value) if "${" in value else value


def _from_validation(exc: ValidationError) -> Iterator[ConfigProblem]:
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the config reference)"
        yield ConfigProblem(tuple(error["loc"]), message)


class _LineIndex:
    """Maps a field path to the 1-based line of its YAML node, and rejects duplicate keys."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    @classmethod
    def parse(cls, text: str, source: str) -> _LineIndex:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(source, [ConfigProblem((), f"YAML syntax: {problem}", line)]) from exc
        index = cls(root)
        duplicates = list(index._duplicates(root, ()))
        if duplicates:
            raise ConfigError(source, duplicates)
        return index

    def line_of(self, path: Path_) -> int | None:
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in path:
            node = self._child(node, part)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    @staticmethod
    def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    return value  # type: ignore[no-any-return]
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            return node.value[part]  # type: ignore[no-any-return]
        return None

    def _duplicates(self, node: yaml.Node | None, path: Path_) -> Iterator[ConfigProblem]:
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in keys:
                    yield ConfigProblem((*path, name), "duplicate key", key.start_mark.line + 1)
                keys.add(name)
                yield from self._duplicates(value, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield from self._duplicates(item, (*path, index))
