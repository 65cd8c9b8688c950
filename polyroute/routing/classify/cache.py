"""Trained classifiers cached on disk, keyed by a hash of everything that shaped them.

Training on a labelled data file can take seconds to minutes; a restart with the same
config should not pay that again. The key is the sha256 of the examples (in order), the
training parameters, the cache format and the numpy and scikit-learn versions, so any
change to one of them trains afresh and an upgrade never loads a model it did not fit.

Files are numpy ``.npz`` archives of plain arrays, loaded with ``allow_pickle=False``: a
cache file can never execute code. A file that fails to load, or whose stored key is not
the expected one (corrupt, truncated, hand-copied), is ignored and overwritten. Writes go
to a temporary file renamed into place, so a crash never leaves half a model behind, and
a cache directory that cannot be written only costs the caching, never the route.

The directory is ``$POLYROUTE_CACHE_DIR/classifiers``, else ``~/.cache/polyroute/classifiers``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from polyroute.routing.classify.tfidf import DEFAULT_PARAMS, Params, TextClassifier

log = logging.getLogger("polyroute.routing")

FORMAT = 1
"""Bumped whenever the stored arrays change meaning."""


class Cacheable(Protocol):
    from_cache: bool

    def to_arrays(self) -> dict[str, NDArray[Any]]: ...


C = TypeVar("C", bound=Cacheable)


def cache_dir() -> Path:
    """Where classifiers are cached (see the module doc)."""
    root = os.environ.get("POLYROUTE_CACHE_DIR")
    if root:
        return Path(root) / "classifiers"
    return Path.home() / ".cache" / "polyroute" / "classifiers"


def cache_key(examples: Sequence[tuple[str, str]], params: Params = DEFAULT_PARAMS) -> str:
    """sha256 over examples, parameters, cache format and library versions."""
    versions = {name: _version(name) for name in ("numpy", "scikit-learn")}
    digest = hashlib.sha256()
    header = {"format": FORMAT, "params": params.as_dict(), "versions": versions}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for text, label in examples:
        digest.update(json.dumps([text, label], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_or_train(
    examples: Sequence[tuple[str, str]],
    params: Params = DEFAULT_PARAMS,
    directory: Path | None = None,
) -> TextClassifier:
    """The cached classifier for these inputs, else a freshly trained one (then cached).

    The result's `from_cache` says which.
    """
    return cached_or_trained(
        cache_key(examples, params),
        lambda: TextClassifier.train(examples, params),
        TextClassifier.from_arrays,
        directory,
    )


def cached_or_trained(
    key: str,
    train: Callable[[], C],
    rebuild: Callable[[Mapping[str, NDArray[Any]]], C],
    directory: Path | None = None,
) -> C:
    """The model cached under `key`, else `train()` (then cached); `from_cache` says which."""
    path = (directory if directory is not None else cache_dir()) / f"{key}.npz"
    cached = _load(path, key, rebuild)
    if cached is not None:
        cached.from_cache = True
        return cached
    model = train()
    _save(path, key, model)
    return model


def _load(path: Path, key: str, rebuild: Callable[[Mapping[str, NDArray[Any]]], C]) -> C | None:
    if not path.is_file():
        return None
    try:
        with path.open("rb") as file, np.load(file, allow_pickle=False) as archive:
            arrays: dict[str, NDArray[Any]] = {name: archive[name] for name in archive.files}
        if arrays["key"].tobytes().decode() != key:
            raise ValueError("the file belongs to other inputs")
        return rebuild(arrays)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring classifier cache %s (%s); retraining", path, exc)
        return None


def _save(path: Path, key: str, model: Cacheable) -> None:
    arrays = model.to_arrays()
    arrays["key"] = np.frombuffer(key.encode(), dtype=np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as file:
                np.savez(file, allow_pickle=False, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot cache classifier at %s (%s); it will be retrained", path, exc)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
