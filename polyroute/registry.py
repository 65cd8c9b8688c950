"""Plug-ins by name: a registry maps short names to import strings (uvicorn's pattern).

A config names a strategy, filter or provider either by its registered name or by an
import path ``"package.module:Class"``, so users plug in their own class without touching
polyroute. Import strings keep start-up light: a plug-in is imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class RegistryError(LookupError):
    """A name that is neither registered nor an importable 'module:attr' path."""


def import_from_string(path: str) -> object:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"{path!r} is not of the form 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import module {module_name!r}: {exc}") from exc
    try:
        obj: object = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise RegistryError(f"module {module_name!r} has no attribute {attr!r}") from exc
    return obj


class Registry(Generic[T]):
    """Names -> import strings for one kind of plug-in; `accepts` vets what an import yields."""

    def __init__(
        self, kind: str, entries: dict[str, str], accepts: Callable[[object], bool]
    ) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._accepts = accepts

    def register(self, name: str, import_string: str) -> None:
        self._entries[name] = import_string

    def names(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def resolve(self, name: str) -> T:
        """The plug-in for `name` (a registered name or an import path)."""
        target = self._entries.get(name)
        if target is None:
            if ":" not in name:
                known = ", ".join(self.names())
                raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})")
            target = name
        obj = import_from_string(target)
        if not self._accepts(obj):
            raise RegistryError(f"{target!r} is not a valid {self.kind}")
        return cast("T", obj)
